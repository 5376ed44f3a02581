/* probe: UDP echo round-trip latency probe, for the guest's RFC 862 echo service (port 7).
 *
 * Each probe is one datagram of --size bytes whose first 16 bytes carry a run tag, a sequence number and the
 * send time; the rest is padding. Echoes are matched to probes by sequence number, so they may come back in
 * any order; duplicates are ignored, and an echo that comes back after --timeout-ms is counted as late, not
 * received.
 *
 * Round-trip times come from the kernel's software timestamps (SO_TIMESTAMPING): the TX timestamp is taken
 * by the outgoing driver as it hands the frame over (read back from the socket's error queue, matched by the
 * OPT_ID counter), the RX timestamp as the echo enters the stack. Neither includes this process's scheduling
 * or system-call time. Without them (the setsockopt fails, --user-ts, or a received echo lacks one), RTTs
 * are taken with CLOCK_MONOTONIC_RAW just before sendto() and just after recvmsg() returns. The summary line
 * says which: method=kernel or method=user. tools/README.md has the details and the accuracy limits.
 *
 * Exit status: 0 if at least one echo was received in time, 1 if none was, 2 for bad arguments, 3 if the
 * run could not be done (socket or memory errors). */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* After <time.h>: linux/errqueue.h uses struct timespec without including it. */
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>

#include "args.h"
#include "pace.h"
#include "stats.h"

#define PROBE_HDR_SIZE       16
#define PROBE_MAX_SIZE       65507 /* 65535 - 20 (IPv4 header) - 8 (UDP header) */
#define PROBE_MAX_PROBES     100000000ull
#define PROBE_SPIN_NS        50000ull   /* busy-wait (polling the socket) for the last 50 us before a send */
#define PROBE_SLIP_NS        1000000ull /* a send this late moves the rest of the schedule (see pace_delay) */
#define PROBE_TX_TS_GRACE_NS 20000000ull
#define PROBE_EXIT_OK        0
#define PROBE_EXIT_NO_ECHO   1
#define PROBE_EXIT_USAGE     2
#define PROBE_EXIT_FAILED    3

enum probe_state { PROBE_UNSENT, PROBE_PENDING, PROBE_RECEIVED, PROBE_TIMED_OUT, PROBE_LATE, PROBE_SEND_FAILED };

/* One probe. *_user are CLOCK_MONOTONIC_RAW, *_kern and tx_real CLOCK_REALTIME (the clock of the kernel's
 * software timestamps), all in ns; 0 means not known. */
struct probe_rec {
	uint64_t tx_user;
	uint64_t rx_user;
	uint64_t tx_real;
	uint64_t tx_kern;
	uint64_t rx_kern;
	uint8_t state;
};

struct probe_opts {
	struct args_target to;
	uint64_t count;
	double duration_s;
	double rate;
	enum pace_pattern pattern;
	unsigned burst;
	unsigned size;
	const char *csv;
	unsigned timeout_ms;
	uint64_t warmup;
	uint64_t seed;
	double hist_us;
	int quiet;
	int user_ts;
	int have_count, have_duration, have_burst, pattern_ok;
};

struct probe_run {
	const struct probe_opts *o;
	int fd;
	int kernel_ts;
	uint32_t tag;
	uint64_t timeout_ns;
	struct probe_rec *recs;
	size_t nrecs, cap;
	uint32_t *key_seq; /* OPT_ID key (index among successful sends) -> sequence number */
	size_t nkeys, key_cap;
	uint8_t *buf;   /* receive buffer */
	uint8_t *txbuf; /* the probe being sent: 16 header bytes, then zeros */
	uint64_t duplicates, stray, send_errors, tx_ts_rejected;
	uint64_t slips, max_lag_ns;
	int last_send_errno;
};

/* clock_gettime() in nanoseconds. */
static uint64_t probe_now(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static volatile sig_atomic_t probe_stop;

static void probe_on_signal(int sig)
{
	(void)sig;
	probe_stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: probe --dst ADDR --port N [--count N | --duration S] [--rate PPS]\n"
	           "             [--pattern fixed|poisson|burst] [--burst K] [--seed N] [--size BYTES]\n"
	           "             [--timeout-ms MS] [--warmup N] [--csv FILE] [--hist US] [--user-ts] [--quiet]\n"
	           "  --count N         probes to measure (default 100)\n"
	           "  --duration S      measure for S seconds instead of a count\n"
	           "  --rate PPS        mean probe rate (default 100)\n"
	           "  --pattern P       fixed (default), poisson or burst\n"
	           "  --burst K         probes per burst (pattern burst; default 8); bursts come every K/rate s\n"
	           "  --seed N          seed of the poisson schedule (default 1)\n"
	           "  --size BYTES      UDP payload bytes, 16..65507 (default 64)\n"
	           "  --timeout-ms MS   an echo later than this is late, not received (default 1000)\n"
	           "  --warmup N        probes sent first and left out of every count (default 0)\n"
	           "  --csv FILE        seq,send_ns,recv_ns,rtt_ns per measured probe\n"
	           "  --hist US         also print an RTT histogram with bins US microseconds wide\n"
	           "  --user-ts         do not ask for kernel timestamps (method=user)\n"
	           "  --quiet           print nothing but the summary line\n"
	           "exit: 0 echoes received, 1 none received, 2 bad arguments, 3 run failed\n");
}

enum {
	OPT_COUNT = ARGS_OPT_TOOL,
	OPT_DURATION,
	OPT_RATE,
	OPT_PATTERN,
	OPT_BURST,
	OPT_SIZE,
	OPT_CSV,
	OPT_TIMEOUT,
	OPT_WARMUP,
	OPT_QUIET,
	OPT_SEED,
	OPT_HIST,
	OPT_USER_TS,
	OPT_HELP,
};

static const struct option probe_longopts[] = {
    ARGS_TARGET_OPTIONS,
    {"count", required_argument, NULL, OPT_COUNT},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"rate", required_argument, NULL, OPT_RATE},
    {"pattern", required_argument, NULL, OPT_PATTERN},
    {"burst", required_argument, NULL, OPT_BURST},
    {"size", required_argument, NULL, OPT_SIZE},
    {"csv", required_argument, NULL, OPT_CSV},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"seed", required_argument, NULL, OPT_SEED},
    {"hist", required_argument, NULL, OPT_HIST},
    {"user-ts", no_argument, NULL, OPT_USER_TS},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

static void probe_set_defaults(struct probe_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->count = 100;
	o->rate = 100;
	o->pattern = PACE_FIXED;
	o->pattern_ok = 1;
	o->burst = 8;
	o->size = 64;
	o->timeout_ms = 1000;
	o->seed = 1;
}

/* One option (c, from args_next()) into *o. Returns -1 for --help, else 0. */
static int probe_parse_option(struct args *a, int c, struct probe_opts *o)
{
	if (args_target_option(a, c, &o->to))
		return 0;
	switch (c) {
	case OPT_COUNT:
		args_u64(a, 1, PROBE_MAX_PROBES, "is not a count (1..100000000)", &o->count);
		o->have_count = 1;
		break;
	case OPT_DURATION:
		args_double(a, 1e-3, 86400, "is not a number of seconds (0.001..86400)", &o->duration_s);
		o->have_duration = 1;
		break;
	case OPT_RATE:
		args_double(a, 1e-3, 1e7, "is not a rate in packets/s (0.001..10000000)", &o->rate);
		break;
	case OPT_PATTERN:
		o->pattern_ok = pace_parse_pattern(optarg, &o->pattern) == 0;
		if (!o->pattern_ok)
			args_bad(a, a->opt, optarg, "is not one of fixed, poisson, burst");
		break;
	case OPT_BURST:
		args_unsigned(a, 1, 65536, "is not a burst length (1..65536)", &o->burst);
		o->have_burst = 1;
		break;
	case OPT_SIZE:
		args_unsigned(a, PROBE_HDR_SIZE, PROBE_MAX_SIZE, "is not a payload size (16..65507 bytes)", &o->size);
		break;
	case OPT_CSV:
		o->csv = optarg;
		break;
	case OPT_TIMEOUT:
		args_unsigned(a, 1, 3600000, "is not a timeout (1..3600000 ms)", &o->timeout_ms);
		break;
	case OPT_WARMUP:
		args_u64(a, 0, PROBE_MAX_PROBES, "is not a count (0..100000000)", &o->warmup);
		break;
	case OPT_QUIET:
		o->quiet = 1;
		break;
	case OPT_SEED:
		args_u64(a, 0, UINT64_MAX, "is not an unsigned 64-bit number", &o->seed);
		break;
	case OPT_HIST:
		args_double(a, 0.001, 1e6, "is not a bin width (0.001..1000000 us)", &o->hist_us);
		break;
	case OPT_USER_TS:
		o->user_ts = 1;
		break;
	case OPT_HELP:
		usage(stdout);
		return -1;
	}
	return 0;
}

/* The rules that involve more than one option. */
static void probe_check_options(struct args *a, const struct probe_opts *o)
{
	args_target_check(a, &o->to);
	if (o->have_count && o->have_duration)
		args_bad(a, "--duration", NULL, "cannot be combined with --count");
	if (o->have_burst && o->pattern_ok && o->pattern != PACE_BURST)
		args_bad(a, "--burst", NULL, "only applies to --pattern burst");
	if (o->have_duration && o->duration_s * o->rate > (double)PROBE_MAX_PROBES)
		args_bad(a, "--duration", NULL, "--rate x --duration exceeds 100000000 probes");
	if (o->count + o->warmup > PROBE_MAX_PROBES)
		args_bad(a, "--warmup", NULL, "--count + --warmup exceeds 100000000 probes");
}

/* Parses argv into *o; every bad option is reported by name and counted in a->errors. Returns -1 after
 * --help, else 0. */
static int probe_parse_args(struct args *a, int argc, char **argv, struct probe_opts *o)
{
	probe_set_defaults(o);
	args_init(a, "probe", argc, argv, probe_longopts);
	int c;
	while ((c = args_next(a)) != -1)
		if (probe_parse_option(a, c, o))
			return -1;
	probe_check_options(a, o);
	return 0;
}

static int probe_same_peer(const struct probe_run *r, const struct sockaddr_storage *a, socklen_t len)
{
	if (a->ss_family != r->o->to.addr.ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)&r->o->to.addr;
		return len >= sizeof(*x) && x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)&r->o->to.addr;
		return len >= sizeof(*x) && x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return 0;
}

static int probe_open_socket(struct probe_run *r)
{
	r->fd = socket(r->o->to.addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (r->fd < 0) {
		perror("probe: socket");
		return -1;
	}
	/* Room for a burst of echoes while we are busy sending; best effort (capped by net.core.rmem_max). */
	int rcvbuf = 4 << 20;
	setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	/* The socket is not connected, and IP_RECVERR stays off: ICMP port-unreachable replies then neither fail
	 * later sends with ECONNREFUSED nor land in the error queue beside the TX timestamps. */
	if (!r->o->user_ts) {
		unsigned flags = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_RX_SOFTWARE |
		                 SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY;
		r->kernel_ts = setsockopt(r->fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof(flags)) == 0;
		if (!r->kernel_ts && !r->o->quiet)
			fprintf(stderr, "probe: SO_TIMESTAMPING unavailable (%s); using user-space timestamps\n",
			        strerror(errno));
	}
	return 0;
}

static int probe_grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, n * elem);
	if (!q)
		return -1;
	memset((char *)q + *cap * elem, 0, (n - *cap) * elem);
	*p = q;
	*cap = n;
	return 0;
}

static uint64_t probe_ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

/* Sends probe number r->nrecs now. Returns -1 only if memory ran out. */
static int probe_send(struct probe_run *r)
{
	if (probe_grow((void **)&r->recs, &r->cap, r->nrecs + 1, sizeof(*r->recs)) ||
	    probe_grow((void **)&r->key_seq, &r->key_cap, r->nkeys + 1, sizeof(*r->key_seq)))
		return -1;
	uint32_t seq = (uint32_t)r->nrecs++;
	struct probe_rec *p = &r->recs[seq];
	uint32_t w32;
	uint64_t w64;

	p->tx_real = probe_now(CLOCK_REALTIME);
	p->tx_user = probe_now(CLOCK_MONOTONIC_RAW);
	w32 = htole32(r->tag);
	memcpy(r->txbuf, &w32, 4);
	w32 = htole32(seq);
	memcpy(r->txbuf + 4, &w32, 4);
	w64 = htole64(p->tx_user);
	memcpy(r->txbuf + 8, &w64, 8);
	ssize_t n = sendto(r->fd, r->txbuf, r->o->size, 0, (const struct sockaddr *)&r->o->to.addr, r->o->to.addr_len);
	if (n == (ssize_t)r->o->size) {
		p->state = PROBE_PENDING;
		/* With OPT_ID the kernel numbers successful sends from 0; the n-th TX timestamp is this probe's. */
		r->key_seq[r->nkeys++] = seq;
	} else {
		p->state = PROBE_SEND_FAILED;
		r->send_errors++;
		r->last_send_errno = n < 0 ? errno : EMSGSIZE;
	}
	return 0;
}

/* TX timestamps from the error queue. A timestamp is accepted only if it is not earlier than the clock read
 * just before that probe's sendto(): if the key count ever drifted (an older kernel that used up a key on a
 * failed send), the stamps would land on later probes than theirs and be rejected here rather than
 * shorten RTTs. */
static void probe_drain_errqueue(struct probe_run *r)
{
	for (;;) {
		char control[512];
		char data[64];
		struct iovec iov = {data, sizeof(data)};
		struct msghdr msg = {
		    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control)};
		if (recvmsg(r->fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
			return;
		const struct scm_timestamping *tss = NULL;
		const struct sock_extended_err *serr = NULL;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING)
				tss = (const void *)CMSG_DATA(c);
			else if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
			         (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR))
				serr = (const void *)CMSG_DATA(c);
		}
		if (!tss || !serr || serr->ee_errno != ENOMSG || serr->ee_origin != SO_EE_ORIGIN_TIMESTAMPING ||
		    serr->ee_info != SCM_TSTAMP_SND)
			continue;
		uint64_t t = probe_ts_ns(&tss->ts[0]);
		if (serr->ee_data >= r->nkeys || t == 0)
			continue;
		struct probe_rec *p = &r->recs[r->key_seq[serr->ee_data]];
		if (p->tx_kern)
			continue;
		if (t >= p->tx_real)
			p->tx_kern = t;
		else
			r->tx_ts_rejected++;
	}
}

static void probe_drain_rx(struct probe_run *r)
{
	for (;;) {
		char control[256];
		struct sockaddr_storage from;
		struct iovec iov = {r->buf, PROBE_MAX_SIZE + 1};
		struct msghdr msg = {.msg_name = &from,
		                     .msg_namelen = sizeof(from),
		                     .msg_iov = &iov,
		                     .msg_iovlen = 1,
		                     .msg_control = control,
		                     .msg_controllen = sizeof(control)};
		ssize_t n = recvmsg(r->fd, &msg, MSG_DONTWAIT);
		uint64_t rx_user = probe_now(CLOCK_MONOTONIC_RAW);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		uint32_t tag, seq;
		memcpy(&tag, r->buf, 4);
		memcpy(&seq, r->buf + 4, 4);
		if (!probe_same_peer(r, &from, msg.msg_namelen) || n != (ssize_t)r->o->size || le32toh(tag) != r->tag ||
		    le32toh(seq) >= r->nrecs) {
			r->stray++;
			continue;
		}
		struct probe_rec *p = &r->recs[le32toh(seq)];
		if (p->state == PROBE_RECEIVED || p->state == PROBE_LATE) {
			r->duplicates++;
			continue;
		}
		if (p->state != PROBE_PENDING && p->state != PROBE_TIMED_OUT) {
			r->stray++;
			continue;
		}
		p->rx_user = rx_user;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPING)
				p->rx_kern = probe_ts_ns(&((const struct scm_timestamping *)CMSG_DATA(c))->ts[0]);
		if (p->state == PROBE_PENDING && rx_user - p->tx_user <= r->timeout_ns)
			p->state = PROBE_RECEIVED;
		else
			p->state = PROBE_LATE;
	}
}

/* Sends on schedule and collects echoes until every probe has come back or timed out. */
static int probe_loop(struct probe_run *r)
{
	const struct probe_opts *o = r->o;
	struct pace pace;
	uint64_t now = probe_now(CLOCK_MONOTONIC_RAW);
	pace_init(&pace, o->pattern, o->rate, o->burst, o->seed, now);
	uint64_t next = pace_next(&pace);
	uint64_t end = UINT64_MAX; /* duration mode: no measured probe is scheduled at or after this */
	uint64_t total = o->have_duration ? UINT32_MAX : o->warmup + o->count;
	int sending = 1;
	size_t oldest = 0; /* every probe before this one is settled (received, timed out, failed) */

	for (;;) {
		now = probe_now(CLOCK_MONOTONIC_RAW);
		if (sending && (probe_stop || r->nrecs >= total || next >= end)) {
			sending = 0;
		} else if (sending && now >= next) {
			if (now - next > PROBE_SLIP_NS) {
				r->slips++;
				if (now - next > r->max_lag_ns)
					r->max_lag_ns = now - next;
				pace_delay(&pace, now - next);
				next = now;
			}
			if (o->have_duration && r->nrecs == o->warmup)
				end = next + (uint64_t)(o->duration_s * 1e9);
			if (next < end) {
				if (probe_send(r))
					return -1;
				next = pace_next(&pace);
			}
			continue;
		}
		if (r->kernel_ts)
			probe_drain_errqueue(r);
		probe_drain_rx(r);

		now = probe_now(CLOCK_MONOTONIC_RAW);
		while (oldest < r->nrecs &&
		       (r->recs[oldest].state != PROBE_PENDING || now - r->recs[oldest].tx_user > r->timeout_ns)) {
			if (r->recs[oldest].state == PROBE_PENDING)
				r->recs[oldest].state = PROBE_TIMED_OUT;
			oldest++;
		}
		if (!sending && oldest == r->nrecs)
			break;

		uint64_t wake = sending ? next : r->recs[oldest].tx_user + r->timeout_ns + 1;
		if (wake > now + PROBE_SPIN_NS) {
			uint64_t d = wake - now - (sending ? PROBE_SPIN_NS : 0);
			struct timespec ts = {.tv_sec = (time_t)(d / 1000000000ull),
			                      .tv_nsec = (long)(d % 1000000000ull)};
			struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
			ppoll(&pfd, 1, &ts, NULL);
		}
	}

	/* The last TX timestamps may still be on their way (a qdisc can send after sendto() returned). */
	if (r->kernel_ts) {
		uint64_t give_up = probe_now(CLOCK_MONOTONIC_RAW) + PROBE_TX_TS_GRACE_NS;
		for (;;) {
			probe_drain_errqueue(r);
			size_t missing = 0;
			for (size_t i = 0; i < r->nrecs; i++)
				if (r->recs[i].state == PROBE_RECEIVED && !r->recs[i].tx_kern)
					missing++;
			if (!missing || probe_now(CLOCK_MONOTONIC_RAW) >= give_up)
				break;
			struct pollfd pfd = {.fd = r->fd, .events = 0};
			poll(&pfd, 1, 1);
		}
	}
	return 0;
}

static int probe_kernel_rtt_ok(const struct probe_rec *p)
{
	return p->tx_kern && p->rx_kern && p->rx_kern >= p->tx_kern;
}

static void probe_fmt_us(char *s, size_t n, double ns, int valid)
{
	if (valid)
		snprintf(s, n, "%.3f", ns / 1000.0);
	else
		snprintf(s, n, "-");
}

static int probe_write_csv(const struct probe_run *r, FILE *f, int kernel)
{
	fprintf(f, "seq,send_ns,recv_ns,rtt_ns\n");
	for (size_t i = r->o->warmup; i < r->nrecs; i++) {
		const struct probe_rec *p = &r->recs[i];
		if (p->state == PROBE_SEND_FAILED)
			continue;
		uint64_t tx = kernel ? p->tx_kern : p->tx_user;
		uint64_t rx = kernel ? p->rx_kern : p->rx_user;
		int got = p->state == PROBE_RECEIVED || p->state == PROBE_LATE;
		fprintf(f, "%zu,", i);
		if (tx)
			fprintf(f, "%" PRIu64, tx);
		fputc(',', f);
		if (got && rx)
			fprintf(f, "%" PRIu64, rx);
		fputc(',', f);
		if (got && tx && rx && rx >= tx)
			fprintf(f, "%" PRIu64, rx - tx);
		fputc('\n', f);
	}
	return ferror(f) ? -1 : 0;
}

static void probe_print_hist(const double *rtt, size_t n, const struct stats_summary *s, double width_us)
{
	double w = width_us * 1000.0;
	double lo = floor(s->min / w) * w;
	double nb = floor((s->max - lo) / w) + 1;
	if (nb > 1e6) {
		fprintf(stderr, "probe: --hist: %.0f bins would be needed; use wider bins\n", nb);
		return;
	}
	struct stats_hist h;
	if (stats_hist_init(&h, lo, w, (size_t)nb))
		return;
	for (size_t i = 0; i < n; i++)
		stats_hist_add(&h, rtt[i]);
	for (size_t i = 0; i < h.nbins; i++)
		if (h.bins[i])
			printf("probe: hist_us lo=%.3f hi=%.3f count=%" PRIu64 "\n", (lo + i * w) / 1000.0,
			       (lo + (i + 1) * w) / 1000.0, h.bins[i]);
	stats_hist_free(&h);
}

/* Counts, statistics, the summary line, the CSV file. Returns the exit status. */
static int probe_report(struct probe_run *r, FILE *csv)
{
	const struct probe_opts *o = r->o;
	uint64_t sent = 0, received = 0, late = 0, lost = 0, no_kernel = 0;
	for (size_t i = o->warmup; i < r->nrecs; i++) {
		const struct probe_rec *p = &r->recs[i];
		switch (p->state) {
		case PROBE_RECEIVED:
			received++;
			if (!probe_kernel_rtt_ok(p))
				no_kernel++;
			break;
		case PROBE_LATE:
			late++;
			break;
		case PROBE_SEND_FAILED:
			continue;
		default:
			lost++;
			break;
		}
		sent++;
	}
	int kernel = r->kernel_ts && no_kernel == 0;
	if (r->kernel_ts && no_kernel && !o->quiet)
		fprintf(stderr,
		        "probe: %" PRIu64 " of %" PRIu64 " echoes lack a kernel timestamp; all RTTs use "
		        "user-space timestamps\n",
		        no_kernel, received);

	double *rtt = malloc((received ? received : 1) * sizeof(*rtt));
	if (!rtt) {
		fprintf(stderr, "probe: out of memory\n");
		return PROBE_EXIT_FAILED;
	}
	size_t n = 0;
	for (size_t i = o->warmup; i < r->nrecs; i++) {
		const struct probe_rec *p = &r->recs[i];
		if (p->state == PROBE_RECEIVED)
			rtt[n++] = kernel ? (double)(p->rx_kern - p->tx_kern) : (double)(p->rx_user - p->tx_user);
	}
	static const double ps[] = {50, 90, 99, 99.9};
	double pv[4] = {0};
	struct stats_summary s = {0};
	int valid = n > 0 && stats_summarize(rtt, n, &s) == 0 && stats_percentiles(rtt, n, ps, 4, pv) == 0;
	char f[7][32];
	probe_fmt_us(f[0], sizeof(f[0]), s.min, valid);
	for (int i = 0; i < 4; i++)
		probe_fmt_us(f[1 + i], sizeof(f[1 + i]), pv[i], valid);
	probe_fmt_us(f[5], sizeof(f[5]), s.max, valid);
	probe_fmt_us(f[6], sizeof(f[6]), s.mean, valid);
	double loss = sent ? 100.0 * (double)lost / (double)sent : 100.0;
	printf("probe: sent=%" PRIu64 " received=%" PRIu64 " lost=%" PRIu64 " loss=%.2f%% late=%" PRIu64
	       " rtt_us min=%s p50=%s p90=%s p99=%s p99.9=%s max=%s mean=%s method=%s\n",
	       sent, received, lost, loss, late, f[0], f[1], f[2], f[3], f[4], f[5], f[6], kernel ? "kernel" : "user");
	if (valid && o->hist_us > 0)
		probe_print_hist(rtt, n, &s, o->hist_us);
	fflush(stdout);
	free(rtt);

	if (!o->quiet && (r->duplicates || r->stray || r->send_errors || r->tx_ts_rejected || r->slips))
		fprintf(stderr,
		        "probe: duplicates=%" PRIu64 " stray=%" PRIu64 " send_errors=%" PRIu64 "%s%s%s"
		        " tx_ts_rejected=%" PRIu64 " schedule_slips=%" PRIu64 " max_lag_us=%.1f\n",
		        r->duplicates, r->stray, r->send_errors, r->send_errors ? " (" : "",
		        r->send_errors ? strerror(r->last_send_errno) : "", r->send_errors ? ")" : "",
		        r->tx_ts_rejected, r->slips, r->max_lag_ns / 1000.0);
	if (csv) {
		int bad_csv = probe_write_csv(r, csv, kernel);
		if (fclose(csv) || bad_csv) {
			fprintf(stderr, "probe: --csv: write failed: %s\n", strerror(errno));
			return PROBE_EXIT_FAILED;
		}
	}
	return received ? PROBE_EXIT_OK : PROBE_EXIT_NO_ECHO;
}

int main(int argc, char **argv)
{
	struct probe_opts o;
	struct args a;
	if (probe_parse_args(&a, argc, argv, &o))
		return PROBE_EXIT_OK;
	struct probe_run r = {.o = &o, .fd = -1, .timeout_ns = (uint64_t)o.timeout_ms * 1000000ull};
	if (!a.errors)
		args_target_resolve(&a, &o.to);
	FILE *csv = NULL;
	if (!a.errors && o.csv) {
		csv = fopen(o.csv, "w");
		if (!csv) {
			fprintf(stderr, "probe: --csv: cannot open '%s': %s\n", o.csv, strerror(errno));
			a.errors++;
		}
	}
	if (args_finish(&a))
		return PROBE_EXIT_USAGE;

	r.buf = calloc(1, PROBE_MAX_SIZE + 1);
	r.txbuf = calloc(1, o.size);
	if (!r.buf || !r.txbuf) {
		fprintf(stderr, "probe: out of memory\n");
		return PROBE_EXIT_FAILED;
	}
	if (probe_open_socket(&r))
		return PROBE_EXIT_FAILED;
	/* A tag per run, so that echoes of an earlier run's probes are not taken for this run's. */
	r.tag = (uint32_t)(probe_now(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 16));

	struct sigaction sa = {.sa_handler = probe_on_signal, .sa_flags = SA_RESETHAND};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* 1 ns of timer slack instead of 50 us, so that poll timeouts end on time. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);

	if (!o.quiet) {
		char what[64];
		if (o.have_duration)
			snprintf(what, sizeof(what), "duration=%gs", o.duration_s);
		else
			snprintf(what, sizeof(what), "count=%" PRIu64, o.count);
		fprintf(stderr, "probe: %s port %u %s warmup=%" PRIu64 " rate=%g pattern=%s", o.to.dst, o.to.port, what,
		        o.warmup, o.rate, pace_pattern_name(o.pattern));
		if (o.pattern == PACE_BURST)
			fprintf(stderr, " burst=%u", o.burst);
		fprintf(stderr, " size=%u timeout_ms=%u timestamps=%s\n", o.size, o.timeout_ms,
		        r.kernel_ts ? "kernel" : "user");
	}
	if (probe_loop(&r)) {
		fprintf(stderr, "probe: out of memory after %zu probes\n", r.nrecs);
		return PROBE_EXIT_FAILED;
	}
	int rc = probe_report(&r, csv);
	close(r.fd);
	free(r.recs);
	free(r.key_seq);
	free(r.buf);
	free(r.txbuf);
	return rc;
}
