/* load: paced UDP load generator for receive-rate (MLFRR) measurements, aimed at the guest's discard service
 * (port 9) or echo service (port 7).
 *
 * Datagrams go out in sendmmsg() batches of --batch. With --rate, batch k is due at start + k * batch / rate
 * on CLOCK_MONOTONIC; the sender sleeps (clock_nanosleep) until 50 us before that and busy-waits the rest.
 * If it is held up by more than 1 ms (descheduled), the rest of the schedule moves later rather than the
 * missed batches going out back to back, so the offered rate falls short instead of turning into a burst;
 * the summary line reports the rate actually offered. With --flat it sends as fast as it can.
 *
 * Each datagram's first 8 bytes (if --size allows) are a little-endian sequence number, so that a receiver
 * can count loss and reordering.
 *
 * Send errors (ENOBUFS, EAGAIN, ...) are counted, not fatal: the failing datagram is skipped. The socket is
 * not connected and IP_RECVERR is off, so an ICMP port unreachable from the target is ignored instead of
 * failing the next send with ECONNREFUSED (which would turn every other datagram into an error). The flip
 * side: a datagram dropped by the qdisc or the tap device after sendmmsg() accepted it is not seen here;
 * `ip -s link` on the tap shows those.
 *
 * A UDP socket cannot outrun the guest under TCG (every datagram crosses the host's UDP/IP/neighbour/qdisc
 * layers). --packet IFNAME sends whole Ethernet frames on an AF_PACKET socket with PACKET_QDISC_BYPASS
 * (tools/rawtx.c) to --dst-mac instead, and --threads N runs N senders, each on its own socket with 1/N of the
 * rate; together they offer several times what the guest takes. Each thread's sequence numbers start at
 * thread << 48. --tx-ring (with --packet) hands the frames over through a PACKET_TX_RING instead of
 * sendmmsg(), one send() per batch (tools/txring.c; txring.h says how frames the device refuses are counted).
 * Exit status: 0 after the run, 2 for bad arguments, 3 if the run could not start or a ring failed. */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "pace.h"
#include "rawtx.h"
#include "txring.h"

#define LOAD_DEFAULT_SIZE          18 /* 14 Ethernet + 20 IPv4 + 8 UDP + 18 = 60 B frame, 64 B with the FCS */
#define LOAD_MAX_SIZE              65507
#define LOAD_MAX_BATCH             1024 /* UIO_MAXIOV, the kernel's limit on one sendmmsg() */
#define LOAD_FLAT_BATCH            64
#define LOAD_MIN_BATCH_INTERVAL_NS 10000.0 /* automatic --batch: at most one sendmmsg() per 10 us */
#define LOAD_SPIN_NS               50000ull
#define LOAD_SLIP_NS               1000000ull
#define LOAD_MAX_THREADS           16
#define LOAD_EXIT_OK               0
#define LOAD_EXIT_USAGE            2
#define LOAD_EXIT_FAILED           3

struct load_opts {
	struct args_target to;
	double rate;
	int flat;
	double duration_s;
	unsigned size;
	unsigned batch; /* 0: automatic */
	int quiet;
	int have_rate, have_duration;
	const char *packet_if; /* --packet: AF_PACKET on this interface */
	const char *dst_mac;
	unsigned threads;
	int tx_ring; /* --tx-ring: a PACKET_TX_RING instead of sendmmsg() */
};

static volatile sig_atomic_t load_stop;

#if defined(__x86_64__) || defined(__i386__)
#define load_cpu_relax() __builtin_ia32_pause()
#else
#define load_cpu_relax()                                                                                               \
	do {                                                                                                           \
	} while (0)
#endif

static uint64_t load_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Waits until CLOCK_MONOTONIC reaches deadline_ns: clock_nanosleep() until LOAD_SPIN_NS before it, then a
 * busy wait, since a sleep's wake-up comes tens of microseconds late. Returns early once load_stop is set
 * (SIGINT, SIGTERM). Returns the time it returned at. */
static uint64_t load_wait_until(uint64_t deadline_ns)
{
	uint64_t now = load_now();
	if (now + LOAD_SPIN_NS < deadline_ns) {
		uint64_t wake = deadline_ns - LOAD_SPIN_NS;
		struct timespec ts = {.tv_sec = (time_t)(wake / 1000000000ull),
		                      .tv_nsec = (long)(wake % 1000000000ull)};
		while (!load_stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
		now = load_now();
	}
	while (now < deadline_ns && !load_stop) {
		load_cpu_relax();
		now = load_now();
	}
	return now;
}

static void load_on_signal(int sig)
{
	(void)sig;
	load_stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: load --dst ADDR --port N (--rate PPS | --flat) --duration S [--size BYTES] [--batch N]\n"
	           "            [--packet IFNAME --dst-mac MAC [--tx-ring]] [--threads N] [--quiet]\n"
	           "  --rate PPS      datagrams per second, paced on CLOCK_MONOTONIC\n"
	           "  --flat          no pacing: as fast as sendmmsg() goes\n"
	           "  --duration S    seconds to send for\n"
	           "  --size BYTES    UDP payload bytes, 0..65507 (default 18: a 64-byte Ethernet frame with FCS)\n"
	           "  --batch N       datagrams per sendmmsg(), 1..1024 (default: the smallest batch that keeps\n"
	           "                  sendmmsg() calls at least 10 us apart; 64 with --flat)\n"
	           "  --packet IFNAME whole Ethernet frames on an AF_PACKET socket on IFNAME with PACKET_QDISC_BYPASS\n"
	           "                  (IPv4 only; source MAC and address are IFNAME's; needs CAP_NET_RAW)\n"
	           "  --dst-mac MAC   the destination MAC for --packet, aa:bb:cc:dd:ee:ff\n"
	           "  --tx-ring       with --packet: frames from a PACKET_TX_RING, one send() per batch; a refused\n"
	           "                  frame ends its batch (it and the rest count as errors)\n"
	           "  --threads N     N senders, 1..16, each with its own socket and 1/N of --rate (default 1)\n"
	           "  --quiet         print nothing but the summary line\n"
	           "exit: 0 done, 2 bad arguments, 3 run failed\n");
}

enum {
	OPT_RATE = ARGS_OPT_TOOL,
	OPT_FLAT,
	OPT_DURATION,
	OPT_SIZE,
	OPT_BATCH,
	OPT_QUIET,
	OPT_PACKET,
	OPT_DST_MAC,
	OPT_THREADS,
	OPT_TX_RING,
	OPT_HELP
};

static const struct option load_longopts[] = {
    ARGS_TARGET_OPTIONS,
    {"rate", required_argument, NULL, OPT_RATE},
    {"flat", no_argument, NULL, OPT_FLAT},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"size", required_argument, NULL, OPT_SIZE},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"packet", required_argument, NULL, OPT_PACKET},
    {"dst-mac", required_argument, NULL, OPT_DST_MAC},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"tx-ring", no_argument, NULL, OPT_TX_RING},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* One option (c, from args_next()) into *o. Returns -1 for --help, else 0. */
static int load_parse_option(struct args *a, int c, struct load_opts *o)
{
	if (args_target_option(a, c, &o->to))
		return 0;
	switch (c) {
	case OPT_RATE:
		args_double(a, 1, 1e8, "is not a rate in packets/s (1..100000000)", &o->rate);
		o->have_rate = 1;
		break;
	case OPT_FLAT:
		o->flat = 1;
		break;
	case OPT_DURATION:
		args_double(a, 1e-3, 86400, "is not a number of seconds (0.001..86400)", &o->duration_s);
		o->have_duration = 1;
		break;
	case OPT_SIZE:
		args_unsigned(a, 0, LOAD_MAX_SIZE, "is not a payload size (0..65507 bytes)", &o->size);
		break;
	case OPT_BATCH:
		args_unsigned(a, 1, LOAD_MAX_BATCH, "is not a batch size (1..1024)", &o->batch);
		break;
	case OPT_QUIET:
		o->quiet = 1;
		break;
	case OPT_PACKET:
		o->packet_if = optarg;
		break;
	case OPT_DST_MAC: {
		uint8_t mac[6];
		if (rawtx_parse_mac(optarg, mac))
			args_bad(a, "--dst-mac", optarg, "is not a MAC address (aa:bb:cc:dd:ee:ff)");
		o->dst_mac = optarg;
		break;
	}
	case OPT_THREADS:
		args_unsigned(a, 1, LOAD_MAX_THREADS, "is not a thread count (1..16)", &o->threads);
		break;
	case OPT_TX_RING:
		o->tx_ring = 1;
		break;
	case OPT_HELP:
		usage(stdout);
		return -1;
	}
	return 0;
}

/* Parses argv into *o; every bad argument is reported by name and counted in a->errors. Returns -1 after
 * --help, else 0. */
static int load_parse_args(struct args *a, int argc, char **argv, struct load_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->size = LOAD_DEFAULT_SIZE;
	o->threads = 1;
	args_init(a, "load", argc, argv, load_longopts);
	int c;
	while ((c = args_next(a)) != -1)
		if (load_parse_option(a, c, o))
			return -1;
	args_target_check(a, &o->to);
	if (!o->have_duration)
		args_bad(a, "--duration", NULL, "is required");
	if (o->have_rate && o->flat)
		args_bad(a, "--flat", NULL, "cannot be combined with --rate");
	else if (!o->have_rate && !o->flat)
		args_bad(a, "--rate", NULL, "is required (or --flat)");
	if (o->packet_if && !o->dst_mac)
		args_bad(a, "--packet", o->packet_if, "needs --dst-mac");
	else if (!o->packet_if && o->dst_mac)
		args_bad(a, "--dst-mac", o->dst_mac, "is only for --packet");
	if (o->tx_ring && !o->packet_if)
		args_bad(a, "--tx-ring", NULL, "is only for --packet");
	if (o->packet_if && o->size > 1500 - 28)
		args_bad(a, "--size", NULL, "is at most 1472 with --packet (one frame, no fragments)");
	return 0;
}

/* Opens the (unconnected) socket for --dst; -1 if it cannot. */
static int load_open(const struct args_target *to)
{
	int fd = socket(to->addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("load: socket");
		return -1;
	}
	/* Best effort (capped by net.core.wmem_max): room for whole batches in the socket's send buffer. */
	int sndbuf = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	return fd;
}

struct load_stats {
	uint64_t sent;
	uint64_t errors;
	uint64_t slips;
	uint64_t lost_ns; /* schedule time given up after slips */
	uint64_t max_lag_ns;
	int last_errno;
};

/* Sends msgs[0..n) with sequence numbers from *seq on; a datagram that fails is counted and skipped. */
static void load_send_batch(int fd, struct mmsghdr *msgs, unsigned n, unsigned size, unsigned hdr, uint64_t *seq,
                            struct load_stats *st)
{
	if (size >= 8) {
		for (unsigned i = 0; i < n; i++) {
			uint64_t le = htole64(*seq + i);
			memcpy((uint8_t *)msgs[i].msg_hdr.msg_iov->iov_base + hdr, &le, 8);
		}
	}
	*seq += n;
	unsigned off = 0;
	while (off < n) {
		int r = sendmmsg(fd, msgs + off, n - off, 0);
		if (r > 0) {
			st->sent += (unsigned)r;
			off += (unsigned)r;
		} else if (r < 0 && errno == EINTR) {
			continue;
		} else {
			st->errors++;
			st->last_errno = r < 0 ? errno : EIO;
			off++;
		}
	}
}

/* --batch, or the automatic choice: the smallest batch that keeps sendmmsg() calls LOAD_MIN_BATCH_INTERVAL_NS
 * apart, at most LOAD_FLAT_BATCH. */
static unsigned load_batch_size(const struct load_opts *o)
{
	if (o->batch)
		return o->batch;
	if (o->flat)
		return LOAD_FLAT_BATCH;
	double b = ceil(LOAD_MIN_BATCH_INTERVAL_NS * o->rate / o->threads / 1e9);
	return b > LOAD_FLAT_BATCH ? LOAD_FLAT_BATCH : (unsigned)b;
}

/* The datagrams of one batch, all to --dst, each with a buffer of its own (the sequence numbers differ). With
 * --packet each buffer is a whole frame and the payload starts hdr bytes in. */
struct load_batch {
	unsigned n;
	unsigned hdr;
	uint8_t *bufs;
	struct iovec *iov;
	struct mmsghdr *msgs;
};

static int load_batch_alloc(struct load_batch *b, unsigned n, unsigned size, struct args_target *to,
                            const struct rawtx_flow *flow)
{
	b->hdr = flow ? RAWTX_HDR_LEN : 0;
	size_t bufsz = b->hdr + (size ? size : 1);
	b->n = n;
	b->bufs = calloc(n, bufsz);
	b->iov = calloc(n, sizeof(*b->iov));
	b->msgs = calloc(n, sizeof(*b->msgs));
	if (!b->bufs || !b->iov || !b->msgs)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		b->iov[i].iov_base = b->bufs + (size_t)i * bufsz;
		b->iov[i].iov_len = b->hdr + size;
		b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
		b->msgs[i].msg_hdr.msg_iovlen = 1;
		if (flow) {
			/* The socket is bound to the interface: no address per message. */
			rawtx_build(b->iov[i].iov_base, flow, size, (uint16_t)i);
		} else {
			b->msgs[i].msg_hdr.msg_name = &to->addr;
			b->msgs[i].msg_hdr.msg_namelen = to->addr_len;
		}
	}
	return 0;
}

static void load_batch_free(struct load_batch *b)
{
	free(b->bufs);
	free(b->iov);
	free(b->msgs);
}

/* SIGINT and SIGTERM end the run early (with its summary line); the second one kills. */
static void load_prepare_process(void)
{
	struct sigaction sa = {.sa_handler = load_on_signal, .sa_flags = SA_RESETHAND};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* 1 ns of timer slack instead of 50 us, so that sleeps end on time. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
}

/* One sender: its own socket and batch (or TX ring), 1/threads of the rate, its own counts. */
struct load_worker {
	const struct load_opts *o;
	unsigned index;
	int fd;
	struct load_batch b;
	struct txring ring;
	int ring_on;
	int failed; /* its ring stopped working (reported) */
	uint64_t seq;
	struct load_stats st;
	uint64_t t0, end;
	pthread_t thread;
};

/* One batch of w->b.n datagrams from w->seq on. 0, or -1 (reported) once the TX ring has failed. */
static int load_send(struct load_worker *w)
{
	if (!w->ring_on) {
		load_send_batch(w->fd, w->b.msgs, w->b.n, w->o->size, w->b.hdr, &w->seq, &w->st);
		return 0;
	}
	struct txring_result res;
	int rc = txring_send(&w->ring, w->b.n, w->seq, &res);
	w->seq += w->b.n;
	w->st.sent += res.sent;
	w->st.errors += res.errors;
	if (res.errors)
		w->st.last_errno = res.last_errno;
	if (rc) {
		fprintf(stderr, "load: thread %u: --tx-ring stopped: %s\n", w->index,
		        rc == -EPROTO ? "the kernel refused a frame as malformed" : "a slot stayed in flight for 1 s");
		w->failed = 1;
		load_stop = 1; /* the run has failed: the other senders stop too */
		return -1;
	}
	return 0;
}

/* --flat: batches back to back until the end. Returns when it stopped. */
static uint64_t load_run_flat(struct load_worker *w)
{
	uint64_t end = w->t0 + (uint64_t)(w->o->duration_s * 1e9);
	uint64_t now = w->t0;
	while (!load_stop && now < end) {
		if (load_send(w))
			break;
		now = load_now();
	}
	return now;
}

/* --rate: batches of b.n datagrams at a fixed interval (the fixed pattern at rate / batch); a batch held up by
 * more than LOAD_SLIP_NS moves the rest of the schedule. Returns when it stopped. */
static uint64_t load_run_paced(struct load_worker *w)
{
	const struct load_opts *o = w->o;
	struct load_stats *st = &w->st;
	uint64_t end = w->t0 + (uint64_t)(o->duration_s * 1e9);
	struct pace pace;
	pace_init(&pace, PACE_FIXED, o->rate / o->threads / w->b.n, 1, 0, w->t0);
	for (;;) {
		uint64_t due = pace_next(&pace);
		if (load_stop || due >= end)
			break;
		uint64_t now = load_wait_until(due);
		if (load_stop)
			break;
		if (now - due > LOAD_SLIP_NS) {
			pace_delay(&pace, now - due);
			st->slips++;
			st->lost_ns += now - due;
			if (now - due > st->max_lag_ns)
				st->max_lag_ns = now - due;
		}
		if (load_send(w))
			return load_now();
	}
	/* The run lasts its full duration even though the last batch left before the end. */
	return load_wait_until(end);
}

static void load_report(const struct load_opts *o, const struct load_stats *st, uint64_t t0, uint64_t now)
{
	double duration = (double)(now - t0) / 1e9;
	printf("load: sent=%" PRIu64 " duration_s=%.3f offered_pps=%.0f errors=%" PRIu64 "\n", st->sent, duration,
	       duration > 0 ? (double)st->sent / duration : 0.0, st->errors);
	fflush(stdout);
	if (!o->quiet && (st->errors || st->slips))
		fprintf(stderr, "load: last_error=%s schedule_slips=%" PRIu64 " slipped_ms=%.1f max_lag_us=%.1f\n",
		        st->errors ? strerror(st->last_errno) : "none", st->slips, st->lost_ns / 1e6,
		        st->max_lag_ns / 1e3);
}

static void *load_worker_run(void *arg)
{
	struct load_worker *w = arg;
	w->seq = (uint64_t)w->index << 48;
	w->end = w->o->flat ? load_run_flat(w) : load_run_paced(w);
	return NULL;
}

/* Opens worker w's socket and batch or ring; -1 (reported) if it cannot. */
static int load_worker_open(struct load_worker *w, struct load_opts *o, unsigned index)
{
	struct rawtx_flow flow, *fp = NULL;
	memset(w, 0, sizeof(*w));
	w->o = o;
	w->index = index;
	if (o->packet_if) {
		memset(&flow, 0, sizeof(flow));
		rawtx_parse_mac(o->dst_mac, flow.dst_mac);
		flow.dst = ((struct sockaddr_in *)&o->to.addr)->sin_addr;
		/* A source port per thread: distinct flows, as distinct sockets would be. */
		flow.sport = (uint16_t)(40000 + index);
		flow.dport = (uint16_t)o->to.port;
		w->fd = rawtx_open(o->packet_if, &flow);
		fp = &flow;
	} else {
		w->fd = load_open(&o->to);
	}
	if (w->fd < 0)
		return -1;
	if (o->tx_ring) {
		w->b.n = load_batch_size(o);
		if (txring_open(&w->ring, w->fd, o->packet_if, &flow, o->size, w->b.n))
			goto err_close;
		w->ring_on = 1;
		return 0;
	}
	if (load_batch_alloc(&w->b, load_batch_size(o), o->size, &o->to, fp)) {
		fprintf(stderr, "load: out of memory\n");
		goto err_free;
	}
	return 0;

err_free:
	load_batch_free(&w->b);
err_close:
	close(w->fd);
	return -1;
}

/* Closes what load_worker_open() opened. */
static void load_worker_close(struct load_worker *w)
{
	if (w->ring_on)
		txring_close(&w->ring);
	close(w->fd);
	load_batch_free(&w->b);
}

int main(int argc, char **argv)
{
	struct load_opts o;
	struct args a;
	if (load_parse_args(&a, argc, argv, &o))
		return LOAD_EXIT_OK;
	if (!a.errors)
		args_target_resolve(&a, &o.to);
	if (!a.errors && o.packet_if && o.to.addr.ss_family != AF_INET)
		args_bad(&a, "--dst", o.to.dst, "must be an IPv4 address with --packet");
	if (args_finish(&a))
		return LOAD_EXIT_USAGE;
	static struct load_worker w[LOAD_MAX_THREADS];
	unsigned n = 0;
	int rc = LOAD_EXIT_OK;
	for (; n < o.threads; n++)
		if (load_worker_open(&w[n], &o, n)) {
			rc = LOAD_EXIT_FAILED;
			goto out;
		}
	load_prepare_process();
	if (!o.quiet) {
		fprintf(stderr, "load: %s port %u ", o.to.dst, o.to.port);
		if (o.flat)
			fprintf(stderr, "flat");
		else
			fprintf(stderr, "rate=%g", o.rate);
		fprintf(stderr, " duration=%gs size=%u batch=%u threads=%u%s%s", o.duration_s, o.size, w[0].b.n,
		        o.threads, o.packet_if ? " packet=" : "", o.packet_if ? o.packet_if : "");
		if (o.tx_ring)
			fprintf(stderr, " tx-ring=%ux%u", w[0].ring.g.frame_nr, w[0].ring.g.frame_size);
		fprintf(stderr, "\n");
	}
	uint64_t t0 = load_now();
	unsigned started = 0;
	for (; started < n; started++) {
		w[started].t0 = t0;
		if (pthread_create(&w[started].thread, NULL, load_worker_run, &w[started])) {
			fprintf(stderr, "load: cannot start sender thread %u\n", started);
			load_stop = 1;
			rc = LOAD_EXIT_FAILED;
			break;
		}
	}
	struct load_stats sum = {0};
	uint64_t end = t0;
	for (unsigned i = 0; i < started; i++) {
		pthread_join(w[i].thread, NULL);
		sum.sent += w[i].st.sent;
		sum.errors += w[i].st.errors;
		sum.slips += w[i].st.slips;
		sum.lost_ns += w[i].st.lost_ns;
		if (w[i].st.max_lag_ns > sum.max_lag_ns)
			sum.max_lag_ns = w[i].st.max_lag_ns;
		if (w[i].st.errors)
			sum.last_errno = w[i].st.last_errno;
		if (w[i].end > end)
			end = w[i].end;
		if (w[i].failed)
			rc = LOAD_EXIT_FAILED;
	}
	if (rc == LOAD_EXIT_OK)
		load_report(&o, &sum, t0, end);
out:
	while (n--)
		load_worker_close(&w[n]);
	return rc;
}
