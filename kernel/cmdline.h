/* The kernel command line (PVH cmdline or UEFI load options / CMDLINE.TXT) and every run-time knob.
 *
 * One table (cmdline_knobs) describes each knob: name, type, range or choices, default, help, and whether the
 * control language may change it at run time. The command-line parser, the control language's `set`,
 * cmdline_format (the `config:` line) and the README's option table (tools/knobs.c) are all driven by it.
 *
 * Words are whitespace-separated key=value options, parsed once at boot into struct kernel_config. An unknown
 * option or a malformed value is reported by name and the previous value is kept. Pure code: the host unit
 * tests run it unchanged. */
#ifndef CMDLINE_H
#define CMDLINE_H

#include <stddef.h>

/* virtio_mmio.device= entries: QEMU microvm (without ACPI) appends one per virtio-mmio device, in Linux's
 * form SIZE@ADDR:IRQ (drivers/virtio_mmio.c reads them; nothing else does). */
#define CMDLINE_VIRTIO_MMIO_MAX 8
struct cmdline_virtio_mmio {
	unsigned count;
	struct {
		unsigned long long base;
		unsigned size, irq;
	} dev[CMDLINE_VIRTIO_MMIO_MAX];
};

struct kernel_config {
	unsigned test;        /* index into cmdline_tests: a self-test to run and exit with (0 = normal boot) */
	unsigned mode;        /* enum netdev_mode */
	unsigned budget;
	unsigned coalesce;
	unsigned coalesce_us;
	unsigned consumer;    /* enum cmdline_consumer */
	unsigned rxpool;      /* 0: twice the ring */
	unsigned txring;      /* 0: as many frames in flight as the ring holds */
	unsigned ring;        /* enum virtio_net_ring: auto, split, packed */
	unsigned hz;
	unsigned heartbeat;
	unsigned irq_vectors; /* 0: all */
	char ip[48];
	char gw[48];
	char ip1[48];
	char gw1[48];
	int ipv6;
	char services[64];
	unsigned tcp_conns;   /* TCP connections held at once; a SYN beyond them gets RST */
	unsigned tcp_idle_s;  /* services close a TCP connection idle this long (0 = never) */
	unsigned timer_slack_ms; /* lwIP housekeeping wake-ups coalesce on this grid while no TCP is live */
	struct cmdline_virtio_mmio virtio_mmio; /* platform-supplied device windows; each word adds one */
};

/* lwIP's pcb pool is static (net/include/lwipopts.h TCP_CONNS_MAX): tcp_conns= can only lower the limit. */
#define CMDLINE_TCP_CONNS_MAX 2048

/* Vectors IRQ_VECTOR_FIRST..IRQ_VECTOR_LAST (kernel/trap.h). */
#define IRQ_DEVICE_VECTORS 176

enum cmdline_consumer { CMDLINE_CONSUMER_LWIP, CMDLINE_CONSUMER_NOOP };

/* CMDLINE_VIRTIO_MMIO: a list; every word adds entries (SIZE@ADDR:IRQ, comma-separated), never replaces. */
enum cmdline_kind { CMDLINE_UINT, CMDLINE_STR, CMDLINE_ENUM, CMDLINE_BOOL, CMDLINE_VIRTIO_MMIO };

#define CMDLINE_RUNTIME 1u   /* the control language may change it (`set KEY VALUE`) */
#define CMDLINE_ZERO_AUTO 2u /* CMDLINE_UINT: 0 is also accepted, meaning "chosen by the kernel" */

struct cmdline_knob {
	const char *name;
	enum cmdline_kind kind;
	size_t offset, size; /* the field in struct kernel_config */
	unsigned min, max;   /* CMDLINE_UINT */
	const char *const *choices; /* CMDLINE_ENUM: NULL-terminated; the field holds the index */
	const char *def;     /* the default as written on the command line ("" for an unset string) */
	unsigned flags;
	const char *help;
};

extern const struct cmdline_knob cmdline_knobs[];
extern const size_t cmdline_knob_count;

/* The knob called name, or NULL. */
const struct cmdline_knob *cmdline_knob_find(const char *name);

/* Called once per problem with a full message (no trailing newline). */
typedef void (*cmdline_report_fn)(void *ctx, const char *msg);

/* The names test= takes, NULL-terminated; index 0 is "" (no test). */
extern const char *const cmdline_tests[];

/* Every knob at its default. */
void cmdline_defaults(struct kernel_config *cfg);

/* Parses s into cfg (which should hold defaults). Returns the number of problems reported. */
int cmdline_parse(const char *s, struct kernel_config *cfg, cmdline_report_fn report, void *ctx);

/* Sets one knob from its textual value (val NULL: a bare word, which only booleans accept). Returns 0, or
 * -EINVAL with a one-line reason in err (naming the knob and what it expects); cfg is unchanged then. */
int cmdline_set(struct kernel_config *cfg, const char *key, const char *val, char *err, size_t errlen);

/* One knob's value as it would be written on the command line. */
int cmdline_format_value(const struct kernel_config *cfg, const struct cmdline_knob *k, char *buf, size_t len);

/* "key=value ..." for every knob (empty strings left out), which parses back to the same configuration;
 * returns what snprintf would. */
int cmdline_format(const struct kernel_config *cfg, char *buf, size_t len);

/* The README's option table (Markdown), from the knob table. */
int cmdline_format_markdown(char *buf, size_t len);

#endif
