/* echo.c — the services of the stock Linux baseline guest (bench/linux), one static binary, one epoll loop.
 *
 *   UDP+TCP port 7      echo (RFC 862)
 *   UDP+TCP port 9      discard (RFC 863); UDP datagrams and bytes are counted
 *   UDP port 9999       counter: "count" -> the number of datagrams received on UDP port 9 since the last
 *   UDP port 7007       reset, as one decimal line; "reset" -> zero the counters, then the status below;
 *                       anything else -> the status: key=value lines in the style of vnetk's status service,
 *                       plus the kernel's own UDP and eth counters (/proc/net/snmp, /proc/net/dev).
 *
 * Usage: echo [-r RCVBUF] [-d]   (-r: SO_RCVBUF(FORCE) of the UDP sockets; -d: run in the background)
 * Build: gcc -static -O2 -o echo echo.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ECHO_PORT 7
#define DISCARD_PORT 9
#define COUNT_PORT 9999
#define STATUS_PORT 7007
#define BATCH 64
#define DGRAM_MAX 65536
#define TCP_BUF 65536

enum kind { UDP_ECHO, UDP_DISCARD, UDP_CONTROL, TCP_LISTEN_ECHO, TCP_LISTEN_DISCARD, TCP_ECHO, TCP_DISCARD };

struct ent {
	enum kind kind;
	int fd;
	/* TCP echo: bytes read but not yet written back (reading pauses while any are pending) */
	size_t off, len;
	char *buf;
};

static struct {
	uint64_t udp_echo, udp_echo_fail, tcp_echo_conns, tcp_echo_bytes, discard_bytes;
	uint64_t udp_discard, udp_discard_bytes, tcp_discard_conns, tcp_discard_bytes, status_queries;
} st;

static int ep;
static int rcvbuf;
static char dgram[BATCH][2048];
static char bigbuf[DGRAM_MAX];

static void die(const char *what)
{
	fprintf(stderr, "echo: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void watch(struct ent *e, uint32_t events, int op)
{
	struct epoll_event ev = { .events = events, .data.ptr = e };
	if (epoll_ctl(ep, op, e->fd, &ev) < 0)
		die("epoll_ctl");
}

static struct ent *add(enum kind kind, int fd)
{
	struct ent *e = calloc(1, sizeof(*e));
	if (!e)
		die("calloc");
	e->kind = kind;
	e->fd = fd;
	return e;
}

static void drop(struct ent *e)
{
	close(e->fd); /* also removes it from the epoll set */
	free(e->buf);
	free(e);
}

static int bound(int type, int port)
{
	int one = 1, fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY) };
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (type == SOCK_DGRAM && rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("bind");
	if (type == SOCK_STREAM && listen(fd, 128) < 0)
		die("listen");
	return fd;
}

/* ---- status ---- */

static size_t append_file_lines(char *out, size_t used, size_t cap, const char *path, const char *prefix,
				const char *label)
{
	/* /proc/net/snmp: a header line "Udp: InDatagrams ..." followed by a value line "Udp: 12 ...": zip them. */
	char line[2][1024];
	int have = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return used;
	while (fgets(line[have], sizeof(line[0]), f)) {
		if (strncmp(line[have], prefix, strlen(prefix))) {
			have = 0;
			continue;
		}
		if (++have < 2)
			continue;
		char *sk, *sv, *k = strtok_r(line[0] + strlen(prefix), " \n", &sk), *v = strtok_r(line[1] + strlen(prefix), " \n", &sv);
		used += (size_t)snprintf(out + used, cap - used, "%s:", label);
		for (; k && v && used < cap; k = strtok_r(NULL, " \n", &sk), v = strtok_r(NULL, " \n", &sv))
			used += (size_t)snprintf(out + used, cap - used, " %s=%s", k, v);
		if (used < cap)
			used += (size_t)snprintf(out + used, cap - used, "\n");
		break;
	}
	fclose(f);
	return used < cap ? used : cap - 1;
}

static size_t append_netdev(char *out, size_t used, size_t cap)
{
	/* /proc/net/dev: "  eth0: rx_bytes rx_packets rx_errs rx_drop rx_fifo rx_frame rx_compressed rx_multicast
	 *                  tx_bytes tx_packets tx_errs tx_drop ..." */
	char line[512];
	FILE *f = fopen("/proc/net/dev", "r");
	if (!f)
		return used;
	while (fgets(line, sizeof(line), f) && used < cap) {
		char name[32];
		unsigned long long v[12];
		if (sscanf(line, " %31[^:]: %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", name, &v[0], &v[1],
			   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11]) != 13 ||
		    !strcmp(name, "lo"))
			continue;
		used += (size_t)snprintf(out + used, cap - used,
					 "netdev %s: rx_packets=%llu rx_bytes=%llu rx_errs=%llu rx_drop=%llu rx_fifo=%llu "
					 "tx_packets=%llu tx_bytes=%llu tx_errs=%llu tx_drop=%llu\n",
					 name, v[1], v[0], v[2], v[3], v[4], v[9], v[8], v[10], v[11]);
	}
	fclose(f);
	return used < cap ? used : cap - 1;
}

static size_t format_status(char *out, size_t cap)
{
	struct timespec ts;
	size_t used;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	used = (size_t)snprintf(out, cap,
				"uptime_ms=%llu\n"
				"services: udp_echo=%llu udp_echo_fail=%llu tcp_echo_conns=%llu tcp_echo_bytes=%llu "
				"discard_bytes=%llu udp_discard=%llu udp_discard_bytes=%llu tcp_discard_conns=%llu "
				"tcp_discard_bytes=%llu status_queries=%llu\n",
				(unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000,
				(unsigned long long)st.udp_echo, (unsigned long long)st.udp_echo_fail,
				(unsigned long long)st.tcp_echo_conns, (unsigned long long)st.tcp_echo_bytes,
				(unsigned long long)st.discard_bytes, (unsigned long long)st.udp_discard,
				(unsigned long long)st.udp_discard_bytes, (unsigned long long)st.tcp_discard_conns,
				(unsigned long long)st.tcp_discard_bytes, (unsigned long long)st.status_queries);
	used = append_file_lines(out, used, cap, "/proc/net/snmp", "Udp:", "linux udp");
	used = append_netdev(out, used, cap);
	return used;
}

static void control(struct ent *e)
{
	static char out[4096];
	struct sockaddr_storage from;
	socklen_t fl;
	char cmd[32];
	ssize_t n;
	while (fl = sizeof(from), (n = recvfrom(e->fd, cmd, sizeof(cmd) - 1, 0, (struct sockaddr *)&from, &fl)) >= 0) {
		size_t len;
		cmd[n] = 0;
		st.status_queries++;
		if (!strncmp(cmd, "count", 5)) {
			len = (size_t)snprintf(out, sizeof(out), "%llu\n", (unsigned long long)st.udp_discard);
		} else {
			if (!strncmp(cmd, "reset", 5))
				memset(&st, 0, sizeof(st));
			len = format_status(out, sizeof(out));
		}
		sendto(e->fd, out, len, 0, (struct sockaddr *)&from, fl);
	}
}

/* ---- UDP ---- */

static void udp_echo(struct ent *e)
{
	struct sockaddr_storage from;
	socklen_t fl;
	ssize_t n;
	while (fl = sizeof(from), (n = recvfrom(e->fd, bigbuf, sizeof(bigbuf), 0, (struct sockaddr *)&from, &fl)) >= 0) {
		if (sendto(e->fd, bigbuf, (size_t)n, 0, (struct sockaddr *)&from, fl) == n)
			st.udp_echo++;
		else
			st.udp_echo_fail++;
	}
}

static void udp_discard(struct ent *e)
{
	static struct mmsghdr m[BATCH];
	static struct iovec iov[BATCH];
	int n;
	for (;;) {
		for (int i = 0; i < BATCH; i++) {
			iov[i] = (struct iovec){ dgram[i], sizeof(dgram[i]) };
			m[i].msg_hdr = (struct msghdr){ .msg_iov = &iov[i], .msg_iovlen = 1 };
		}
		n = recvmmsg(e->fd, m, BATCH, MSG_DONTWAIT | MSG_TRUNC, NULL); /* MSG_TRUNC: real lengths */
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			st.udp_discard_bytes += m[i].msg_len;
			st.discard_bytes += m[i].msg_len;
		}
		st.udp_discard += (uint64_t)n;
	}
}

/* ---- TCP ---- */

static void tcp_accept(struct ent *l)
{
	int fd, one = 1;
	while ((fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct ent *c = add(l->kind == TCP_LISTEN_ECHO ? TCP_ECHO : TCP_DISCARD, fd);
		if (c->kind == TCP_ECHO) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			if (!(c->buf = malloc(TCP_BUF)))
				die("malloc");
			st.tcp_echo_conns++;
		} else {
			st.tcp_discard_conns++;
		}
		watch(c, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_ADD);
	}
}

static void tcp_discard(struct ent *c)
{
	ssize_t n;
	while ((n = read(c->fd, bigbuf, sizeof(bigbuf))) > 0) {
		st.tcp_discard_bytes += (uint64_t)n;
		st.discard_bytes += (uint64_t)n;
	}
	if (n == 0 || (errno != EAGAIN && errno != EINTR))
		drop(c);
}

static void tcp_echo(struct ent *c)
{
	for (;;) {
		while (c->len) {
			ssize_t w = write(c->fd, c->buf + c->off, c->len);
			if (w < 0) {
				if (errno == EAGAIN) { /* wait for room, stop reading meanwhile */
					watch(c, EPOLLOUT, EPOLL_CTL_MOD);
					return;
				}
				if (errno == EINTR)
					continue;
				drop(c);
				return;
			}
			st.tcp_echo_bytes += (uint64_t)w;
			c->off += (size_t)w;
			c->len -= (size_t)w;
		}
		ssize_t n = read(c->fd, c->buf, TCP_BUF);
		if (n > 0) {
			c->off = 0;
			c->len = (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			watch(c, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
			return;
		}
		drop(c); /* EOF or error */
		return;
	}
}

int main(int argc, char **argv)
{
	int opt, daemon_mode = 0;
	struct epoll_event evs[64];
	while ((opt = getopt(argc, argv, "r:d")) != -1) {
		switch (opt) {
		case 'r': rcvbuf = atoi(optarg); break;
		case 'd': daemon_mode = 1; break;
		default: fprintf(stderr, "usage: echo [-r RCVBUF] [-d]\n"); return 2;
		}
	}
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1");
	watch(add(UDP_ECHO, bound(SOCK_DGRAM, ECHO_PORT)), EPOLLIN, EPOLL_CTL_ADD);
	watch(add(UDP_DISCARD, bound(SOCK_DGRAM, DISCARD_PORT)), EPOLLIN, EPOLL_CTL_ADD);
	watch(add(UDP_CONTROL, bound(SOCK_DGRAM, COUNT_PORT)), EPOLLIN, EPOLL_CTL_ADD);
	watch(add(UDP_CONTROL, bound(SOCK_DGRAM, STATUS_PORT)), EPOLLIN, EPOLL_CTL_ADD);
	watch(add(TCP_LISTEN_ECHO, bound(SOCK_STREAM, ECHO_PORT)), EPOLLIN, EPOLL_CTL_ADD);
	watch(add(TCP_LISTEN_DISCARD, bound(SOCK_STREAM, DISCARD_PORT)), EPOLLIN, EPOLL_CTL_ADD);
	if (daemon_mode && daemon(0, 1) < 0)
		die("daemon");
	fprintf(stderr, "echo: echo/7 discard/9 count/udp9999 status/udp7007 (udp rcvbuf %s)\n",
		rcvbuf > 0 ? "set" : "default");
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			struct ent *e = evs[i].data.ptr;
			switch (e->kind) {
			case UDP_ECHO: udp_echo(e); break;
			case UDP_DISCARD: udp_discard(e); break;
			case UDP_CONTROL: control(e); break;
			case TCP_LISTEN_ECHO:
			case TCP_LISTEN_DISCARD: tcp_accept(e); break;
			case TCP_ECHO: tcp_echo(e); break;
			case TCP_DISCARD: tcp_discard(e); break;
			}
		}
	}
}
