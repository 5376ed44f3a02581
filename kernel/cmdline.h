/* The kernel command line (PVH cmdline or UEFI load options / CMDLINE.TXT): whitespace-separated key=value
 * options, parsed once at boot into struct kernel_config. An unknown option or a malformed value is reported
 * by name and the default is kept. Pure code: the host unit tests run it unchanged. */
#ifndef CMDLINE_H
#define CMDLINE_H

#include <stddef.h>

struct kernel_config {
	char test[24];     /* test=NAME: run a self-test and exit QEMU with its result ("" = normal boot) */
	char mode[12];     /* mode=irq|napi|poll|coalesce: receive delivery mode */
	unsigned budget;   /* budget=N: frames per poll (1..4096) */
	unsigned hz;       /* hz=N: timer ticks per second (10..10000) */
	unsigned heartbeat; /* heartbeat=S: print the tick counter every S seconds (0 = never) */
	char ip[48];       /* ip=ADDR/PREFIX or ip=dhcp, for net0 */
	char gw[48];       /* gw=ADDR */
	char ip1[48];      /* ip1=, gw1=: the second NIC */
	char gw1[48];
	int ipv6;          /* ipv6=0|1: link-local + SLAAC (default on) */
	char services[64]; /* services=all|none|echo,discard,iperf,status */
	unsigned coalesce; /* coalesce=FRAMES: coalesce mode's interrupt threshold (1..256) */
	unsigned coalesce_us; /* coalesce_us=USEC: ... and its time bound */
	char consumer[8];  /* consumer=lwip|noop */
	unsigned rxpool;   /* rxpool=N: receive buffers per NIC (0 = twice the ring) */
	int quiet;         /* quiet: fewer boot messages */
	unsigned tcp_conns;  /* tcp_conns=N: TCP connections held at once; a SYN beyond them gets RST */
	unsigned tcp_idle_s; /* tcp_idle_s=S: services close a TCP connection idle this long (0 = never) */
};

/* lwIP's pcb pool is static (net/include/lwipopts.h TCP_CONNS_MAX): tcp_conns= can only lower the limit. */
#define CMDLINE_TCP_CONNS_MAX 2048
#define CMDLINE_TCP_CONNS_DEFAULT 1024
#define CMDLINE_TCP_IDLE_S_DEFAULT 300

/* Called once per problem with a full message (no trailing newline). */
typedef void (*cmdline_report_fn)(void *ctx, const char *msg);

void cmdline_defaults(struct kernel_config *cfg);

/* Parses s into cfg (which should hold defaults). Returns the number of problems reported. */
int cmdline_parse(const char *s, struct kernel_config *cfg, cmdline_report_fn report, void *ctx);

/* Writes "key=value ..." of the effective configuration; returns what snprintf would. */
int cmdline_format(const struct kernel_config *cfg, char *buf, size_t len);

/* The names accepted by test= (NULL-terminated), for help messages. */
extern const char *const cmdline_tests[];

#endif
