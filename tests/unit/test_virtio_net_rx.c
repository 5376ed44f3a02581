/* Unit tests for drivers/virtio_net_rx.c: the real receive-ring code against the simulated device
 * (tests/unit/virtq_sim.c), which writes frames into the posted buffers as QEMU's virtio_net_receive does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "virtio_net_rx.h"
#include "virtq_sim.h"

#define BUF_SIZE 2048
#define POOL_MAX 1024
#define HDR 12

/* A buffer pool whose size the test controls, to exercise refill failure. */
static struct {
	void *free[POOL_MAX];
	unsigned nfree;
	unsigned allocated; /* outstanding: posted or held by the consumer */
	unsigned deny;      /* when nonzero, buf_alloc fails */
} pool;

/* What the consumer saw. */
static struct {
	unsigned frames;
	uint32_t last_len;
	unsigned last_nseg;
	uint8_t last_first_byte;
	uint32_t lens[4096];
	struct netdev_rx_frame last; /* offload fields of the last frame (segments not kept) */
} seen;

static struct virtq vq;
static struct virtq_sim sim;
static struct vnet_rx rx;
static void *ring_mem;

static void *t_alloc(void *ctx)
{
	(void)ctx;
	if (pool.deny || pool.nfree == 0)
		return NULL;
	pool.allocated++;
	return pool.free[--pool.nfree];
}

static void t_free(void *ctx, void *buf)
{
	(void)ctx;
	assert_true(pool.nfree < POOL_MAX);
	pool.allocated--;
	pool.free[pool.nfree++] = buf;
}

static void t_deliver(void *ctx, struct netdev_rx_frame *f, const struct virtio_net_hdr *hdr)
{
	assert_non_null(hdr);
	if (seen.frames < 4096)
		seen.lens[seen.frames] = f->total_len;
	seen.frames++;
	seen.last_len = f->total_len;
	seen.last_nseg = f->nseg;
	seen.last_first_byte = f->seg[0].len ? f->seg[0].data[0] : 0;
	seen.last.csum = f->csum;
	seen.last.gso = f->gso;
	seen.last.gso_ecn = f->gso_ecn;
	seen.last.gso_size = f->gso_size;
	seen.last.csum_start = f->csum_start;
	seen.last.csum_offset = f->csum_offset;
	/* Zero-copy: the data the consumer sees lies inside the buffer that was posted. */
	assert_ptr_equal(f->seg[0].data, (uint8_t *)f->seg[0].buf + HDR);
	for (unsigned i = 0; i < f->nseg; i++)
		t_free(ctx, f->seg[i].buf);
}

static const struct vnet_rx_ops ops = { t_alloc, t_free, t_deliver };

static void setup_rx(uint16_t size, unsigned pool_bufs, int event_idx, int mrg)
{
	memset(&pool, 0, sizeof(pool));
	memset(&seen, 0, sizeof(seen));
	for (unsigned i = 0; i < pool_bufs; i++)
		pool.free[pool.nfree++] = aligned_alloc(64, BUF_SIZE);
	size_t bytes = (virtq_mem_size(size) + 4095) & ~(size_t)4095;
	ring_mem = aligned_alloc(4096, bytes);
	memset(ring_mem, 0, bytes);
	assert_int_equal(virtq_init(&vq, 0, size, ring_mem, event_idx), 0);
	assert_int_equal(sim_attach(&sim, virtq_desc_addr(&vq), virtq_avail_addr(&vq), virtq_used_addr(&vq), size,
				    event_idx),
			 0);
	vnet_rx_init(&rx, &vq, BUF_SIZE, HDR, mrg, &ops, NULL);
}

static int teardown(void **state)
{
	(void)state;
	/* Take back what is still posted, then every buffer must be in the pool: nothing leaked. */
	void *b;
	while ((b = virtq_detach_unused(&vq)))
		t_free(NULL, b);
	assert_int_equal(pool.allocated, 0);
	sim_detach(&sim);
	virtq_destroy(&vq);
	free(ring_mem);
	while (pool.nfree)
		free(pool.free[--pool.nfree]);
	return 0;
}

/* The device receives one frame of len bytes spread over bufs buffers (MRG_RXBUF) or one buffer, writing the
 * header (num_buffers) and the payload bytes as QEMU does. Returns 0 or -1 if no buffer was available. */
static int dev_receive(uint32_t len, unsigned bufs, uint8_t fill)
{
	struct sim_chain c[8];
	uint32_t left = len + HDR;
	for (unsigned i = 0; i < bufs; i++) {
		if (sim_pop_avail(&sim, &c[i]) != 1)
			return -1;
		uint32_t n = left < c[i].in_bytes ? left : c[i].in_bytes;
		if (i + 1 == bufs)
			n = left;
		uint8_t *p = (uint8_t *)(uintptr_t)c[i].seg[0].addr;
		memset(p, fill, n);
		if (i == 0) {
			memset(p, 0, HDR);
			struct virtio_net_hdr *h = (void *)p;
			h->num_buffers = cpu_to_le16((uint16_t)bufs);
		}
		assert_int_equal(sim_push_used(&sim, c[i].head, n), 0);
		left -= n;
	}
	return 0;
}

/* The same with the rest of the header (flags, gso, csum fields) taken from *t. */
static int dev_receive_hdr(uint32_t len, unsigned bufs, const struct virtio_net_hdr *t)
{
	struct sim_chain c[8];
	uint32_t left = len + HDR;
	for (unsigned i = 0; i < bufs; i++) {
		if (sim_pop_avail(&sim, &c[i]) != 1)
			return -1;
		uint32_t n = left < c[i].in_bytes ? left : c[i].in_bytes;
		if (i + 1 == bufs)
			n = left;
		uint8_t *p = (uint8_t *)(uintptr_t)c[i].seg[0].addr;
		memset(p, 0x5A, n);
		if (i == 0) {
			memcpy(p, t, HDR);
			((struct virtio_net_hdr *)p)->num_buffers = cpu_to_le16((uint16_t)bufs);
		}
		assert_int_equal(sim_push_used(&sim, c[i].head, n), 0);
		left -= n;
	}
	return 0;
}

static void refill(void)
{
	int kick;
	vnet_rx_refill(&rx, &kick);
}

static void test_fill_receive_single_buffers(void **state)
{
	(void)state;
	setup_rx(64, 200, 1, 0);
	refill();
	assert_int_equal(vq.num_free, 0);
	assert_int_equal(rx.stats.posted, 64);
	for (int i = 0; i < 10; i++)
		assert_int_equal(dev_receive(60 + (uint32_t)i * 100, 1, (uint8_t)(0x10 + i)), 0);
	sim_flush(&sim);
	assert_int_equal(vnet_rx_poll(&rx, 64), 10);
	assert_int_equal(seen.frames, 10);
	assert_int_equal(seen.lens[0], 60);
	assert_int_equal(seen.lens[9], 960);
	assert_int_equal(seen.last_first_byte, 0x19);
	assert_int_equal(rx.stats.bytes, 10 * 60 + 100 * 45);
}

static void test_budget_bounds_work(void **state)
{
	(void)state;
	setup_rx(64, 200, 1, 0);
	refill();
	for (int i = 0; i < 50; i++)
		dev_receive(100, 1, 1);
	sim_flush(&sim);
	assert_int_equal(vnet_rx_poll(&rx, 16), 16);
	assert_int_equal(seen.frames, 16);
	assert_int_equal(vnet_rx_poll(&rx, 16), 16);
	assert_int_equal(vnet_rx_poll(&rx, 64), 18);
	assert_int_equal(vnet_rx_poll(&rx, 64), 0);
	assert_int_equal(seen.frames, 50);
}

static void test_refill_on_half_empty(void **state)
{
	(void)state;
	setup_rx(64, 200, 1, 0);
	refill();
	for (int i = 0; i < 31; i++)
		dev_receive(100, 1, 1);
	sim_flush(&sim);
	vnet_rx_poll(&rx, 64);
	assert_false(vnet_rx_needs_refill(&rx)); /* 31 of 64 unposted: not yet */
	dev_receive(100, 1, 1);
	sim_flush(&sim);
	vnet_rx_poll(&rx, 64);
	assert_true(vnet_rx_needs_refill(&rx)); /* 32: half */
	refill();
	assert_int_equal(vq.num_free, 0);
	/* The device sees the 32 new buffers beside the 32 it had not used yet. */
	assert_int_equal(sim_avail_pending(&sim), 64);
}

static void test_refill_failure_and_recovery(void **state)
{
	(void)state;
	/* Only 40 buffers for a 64-entry ring: refill runs dry, posts what it has, reports -ENOMEM. */
	setup_rx(64, 40, 1, 0);
	int kick;
	assert_int_equal(vnet_rx_refill(&rx, &kick), -ENOMEM);
	assert_int_equal(rx.stats.refill_failures, 1);
	assert_int_equal(vq.num_free, 24);
	assert_int_equal(sim_avail_pending(&sim), 40); /* published despite the failure */
	/* The device uses every buffer: the ring is empty. */
	for (int i = 0; i < 40; i++)
		assert_int_equal(dev_receive(100, 1, 1), 0);
	assert_int_equal(dev_receive(100, 1, 1), -1);
	sim_want_kicks(&sim, true); /* the device asks to be told when buffers come back */
	sim_flush(&sim);
	/* The consumer holds nothing, so buffers return to the pool as frames are delivered. */
	assert_int_equal(vnet_rx_poll(&rx, 64), 40);
	assert_int_equal(rx.stats.ring_empty, 1);
	pool.deny = 1;
	assert_int_equal(vnet_rx_refill(&rx, &kick), -ENOMEM);
	assert_int_equal(kick, 0);
	pool.deny = 0;
	/* Recovery: the refill posts everything and must notify the device that found the ring empty. */
	assert_int_equal(vnet_rx_refill(&rx, &kick), -ENOMEM); /* 40 buffers again for 64 slots */
	assert_int_equal(kick, 1);
	assert_int_equal(dev_receive(100, 1, 7), 0);
	sim_flush(&sim);
	assert_int_equal(vnet_rx_poll(&rx, 64), 1);
	assert_int_equal(seen.last_first_byte, 7);
}

static void test_mergeable_frames(void **state)
{
	(void)state;
	setup_rx(64, 200, 1, 1);
	refill();
	dev_receive(5000, 3, 0xAB);
	dev_receive(100, 1, 0xCD);
	sim_flush(&sim);
	assert_int_equal(vnet_rx_poll(&rx, 64), 4);
	assert_int_equal(seen.frames, 2);
	assert_int_equal(seen.lens[0], 5000);
	assert_int_equal(seen.lens[1], 100);
	assert_int_equal(seen.last_nseg, 1);
	assert_int_equal(rx.stats.buffers, 4);
}

static void test_mergeable_frame_split_across_polls(void **state)
{
	(void)state;
	setup_rx(64, 200, 1, 1);
	refill();
	/* Budget 1 stops after one buffer, yet a frame in progress is finished in the same poll. */
	dev_receive(3000, 2, 0x11);
	dev_receive(50, 1, 0x22);
	sim_flush(&sim);
	assert_int_equal(vnet_rx_poll(&rx, 1), 2);
	assert_int_equal(seen.frames, 1);
	assert_int_equal(seen.lens[0], 3000);
	assert_int_equal(vnet_rx_poll(&rx, 1), 1);
	assert_int_equal(seen.frames, 2);
}

static void test_mrg_off_ignores_num_buffers(void **state)
{
	(void)state;
	setup_rx(64, 200, 0, 0);
	refill();
	/* Without MRG_RXBUF the header has no meaningful num_buffers: every buffer is a frame. */
	struct sim_chain c;
	assert_int_equal(sim_pop_avail(&sim, &c), 1);
	uint8_t *p = (uint8_t *)(uintptr_t)c.seg[0].addr;
	memset(p, 0, HDR + 64);
	((struct virtio_net_hdr *)p)->num_buffers = cpu_to_le16(9);
	sim_push_used(&sim, c.head, HDR + 64);
	sim_flush(&sim);
	assert_int_equal(vnet_rx_poll(&rx, 64), 1);
	assert_int_equal(seen.frames, 1);
	assert_int_equal(seen.last_len, 64);
}

static void test_runts_and_bad_num_buffers_dropped(void **state)
{
	(void)state;
	setup_rx(64, 200, 1, 1);
	refill();
	unsigned before = pool.nfree;
	struct sim_chain c;
	/* Shorter than the header. */
	sim_pop_avail(&sim, &c);
	sim_push_used(&sim, c.head, HDR - 1);
	/* num_buffers 0 and 1000. */
	sim_pop_avail(&sim, &c);
	memset((void *)(uintptr_t)c.seg[0].addr, 0, HDR);
	sim_push_used(&sim, c.head, HDR + 10);
	sim_pop_avail(&sim, &c);
	((struct virtio_net_hdr *)(uintptr_t)c.seg[0].addr)->num_buffers = cpu_to_le16(1000);
	sim_push_used(&sim, c.head, HDR + 10);
	dev_receive(80, 1, 3);
	sim_flush(&sim);
	assert_int_equal(vnet_rx_poll(&rx, 64), 4);
	assert_int_equal(rx.stats.runts, 1);
	assert_int_equal(rx.stats.bad_num_buffers, 2);
	assert_int_equal(seen.frames, 1);
	/* Dropped buffers went back to the pool. */
	assert_int_equal(pool.nfree, before + 4);
}

static void test_hostile_used_entries(void **state)
{
	(void)state;
	setup_rx(64, 200, 1, 1);
	refill();
	struct sim_chain c;
	sim_pop_avail(&sim, &c);
	/* A length beyond the buffer: rejected, the buffer recycled. */
	sim_hostile_used(&sim, c.head, BUF_SIZE + 1);
	/* An id out of range, and a duplicate of the same head. */
	sim_hostile_used(&sim, 1000, 100);
	sim_hostile_used(&sim, c.head, 100);
	sim_flush(&sim);
	unsigned before = pool.nfree;
	assert_int_equal(vnet_rx_poll(&rx, 64), 3);
	assert_int_equal(rx.stats.bad_used, 3);
	assert_int_equal(vq.stats.bad_len, 1);
	assert_int_equal(vq.stats.bad_id, 1);
	assert_int_equal(vq.stats.bad_not_outstanding, 1);
	assert_int_equal(seen.frames, 0);
	assert_int_equal(pool.nfree, before + 1);
}

static void test_bad_buffer_in_merged_frame_drops_frame(void **state)
{
	(void)state;
	setup_rx(64, 200, 1, 1);
	refill();
	struct sim_chain a, b;
	sim_pop_avail(&sim, &a);
	sim_pop_avail(&sim, &b);
	uint8_t *p = (uint8_t *)(uintptr_t)a.seg[0].addr;
	memset(p, 0, HDR);
	((struct virtio_net_hdr *)p)->num_buffers = cpu_to_le16(2);
	sim_push_used(&sim, a.head, BUF_SIZE);
	sim_hostile_used(&sim, b.head, BUF_SIZE + 100); /* second buffer lies about its length */
	dev_receive(70, 1, 9);
	sim_flush(&sim);
	unsigned before = pool.nfree;
	assert_int_equal(vnet_rx_poll(&rx, 64), 3);
	assert_int_equal(seen.frames, 1); /* only the good frame after it */
	assert_int_equal(seen.last_len, 70);
	assert_int_equal(pool.nfree, before + 3);
}

static void test_drain_returns_everything(void **state)
{
	(void)state;
	setup_rx(64, 200, 1, 0);
	refill();
	dev_receive(100, 1, 1);
	sim_flush(&sim);
	vnet_rx_drain(&rx);
	assert_int_equal(pool.nfree, 200);
	assert_int_equal(vq.num_free, 64);
	assert_int_equal(pool.allocated, 0);
}

static struct virtio_net_hdr hdr(uint8_t flags, uint8_t gso, uint16_t hdr_len, uint16_t gso_size, uint16_t start,
			       uint16_t off)
{
	struct virtio_net_hdr h = { flags, gso, cpu_to_le16(hdr_len), cpu_to_le16(gso_size), cpu_to_le16(start),
				    cpu_to_le16(off), cpu_to_le16(0) };
	return h;
}

#define ALL_OFF (VNET_RX_OFF_CSUM | VNET_RX_OFF_TSO4 | VNET_RX_OFF_TSO6 | VNET_RX_OFF_ECN)
#define NEEDS VIRTIO_NET_HDR_F_NEEDS_CSUM
#define VALID VIRTIO_NET_HDR_F_DATA_VALID

/* Each gso_type / flag combination the spec defines, with and without the feature that allows it, and the
 * hostile values: what is accepted and what the frame then says. */
static void test_header_cases(void **state)
{
	static const struct {
		unsigned offloads;
		uint16_t h[6]; /* flags, gso_type, hdr_len, gso_size, csum_start, csum_offset */
		uint32_t len;
		int ok;
		uint8_t csum, gso;
	} cases[] = {
		/* plain frames */
		{ 0, { 0, 0, 0, 0, 0, 0 }, 60, 1, NETDEV_RX_CSUM_NONE, NETDEV_GSO_NONE },
		{ ALL_OFF, { 0, 0, 0, 0, 0, 0 }, 60, 1, NETDEV_RX_CSUM_NONE, NETDEV_GSO_NONE },
		/* flags need GUEST_CSUM */
		{ 0, { VALID, 0, 0, 0, 0, 0 }, 60, 0, 0, 0 },
		{ 0, { NEEDS, 0, 0, 0, 34, 6 }, 60, 0, 0, 0 },
		{ VNET_RX_OFF_CSUM, { VALID, 0, 0, 0, 0, 0 }, 60, 1, NETDEV_RX_CSUM_VALID, NETDEV_GSO_NONE },
		/* unknown flag bits are ignored (§5.1.6.4.2), RSC_INFO (4) included */
		{ VNET_RX_OFF_CSUM, { 0xFC, 0, 0, 0, 0, 0 }, 60, 1, NETDEV_RX_CSUM_NONE, NETDEV_GSO_NONE },
		{ VNET_RX_OFF_CSUM, { 0xF8 | VALID, 0, 0, 0, 0, 0 }, 60, 1, NETDEV_RX_CSUM_VALID, NETDEV_GSO_NONE },
		/* NEEDS_CSUM: the 2-byte field inside the frame, start past the Ethernet header; NEEDS wins over VALID */
		{ VNET_RX_OFF_CSUM, { NEEDS, 0, 0, 0, 34, 6 }, 60, 1, NETDEV_RX_CSUM_PARTIAL, 0 },
		{ VNET_RX_OFF_CSUM, { NEEDS | VALID, 0, 0, 0, 34, 16 }, 60, 1, NETDEV_RX_CSUM_PARTIAL, 0 },
		{ VNET_RX_OFF_CSUM, { NEEDS, 0, 0, 0, 34, 24 }, 60, 1, NETDEV_RX_CSUM_PARTIAL, 0 },
		{ VNET_RX_OFF_CSUM, { NEEDS, 0, 0, 0, 34, 25 }, 60, 0, 0, 0 },
		{ VNET_RX_OFF_CSUM, { NEEDS, 0, 0, 0, 60, 0 }, 60, 0, 0, 0 },
		{ VNET_RX_OFF_CSUM, { NEEDS, 0, 0, 0, 13, 6 }, 60, 0, 0, 0 },
		{ VNET_RX_OFF_CSUM, { NEEDS, 0, 0, 0, 0xFFFF, 0xFFFF }, 60, 0, 0, 0 },
		/* hdr_len is a hint the driver must not rely on: past the frame is harmless */
		{ VNET_RX_OFF_CSUM, { NEEDS, 0, 0xFFFF, 0, 34, 6 }, 60, 1, NETDEV_RX_CSUM_PARTIAL, 0 },
		/* GSO: the type must be negotiated, with NEEDS_CSUM and a nonzero gso_size */
		{ ALL_OFF, { NEEDS, 1, 66, 1448, 34, 16 }, 30000, 1, NETDEV_RX_CSUM_PARTIAL, NETDEV_GSO_TCPV4 },
		{ ALL_OFF, { NEEDS, 4, 86, 1428, 54, 16 }, 30000, 1, NETDEV_RX_CSUM_PARTIAL, NETDEV_GSO_TCPV6 },
		{ ALL_OFF, { NEEDS, 0x81, 66, 1448, 34, 16 }, 30000, 1, NETDEV_RX_CSUM_PARTIAL, NETDEV_GSO_TCPV4 },
		{ ALL_OFF & ~VNET_RX_OFF_ECN, { NEEDS, 0x81, 66, 1448, 34, 16 }, 30000, 0, 0, 0 },
		{ VNET_RX_OFF_CSUM | VNET_RX_OFF_TSO6, { NEEDS, 1, 66, 1448, 34, 16 }, 30000, 0, 0, 0 },
		{ VNET_RX_OFF_CSUM | VNET_RX_OFF_TSO4, { NEEDS, 4, 66, 1448, 54, 16 }, 30000, 0, 0, 0 },
		{ ALL_OFF, { NEEDS, 1, 66, 0, 34, 16 }, 30000, 0, 0, 0 },    /* gso_size 0 */
		{ ALL_OFF, { VALID, 1, 66, 1448, 34, 16 }, 30000, 0, 0, 0 }, /* GSO, no NEEDS */
		{ ALL_OFF, { NEEDS, 3, 42, 1472, 34, 6 }, 30000, 0, 0, 0 },  /* UDP: never negotiated */
		{ ALL_OFF, { NEEDS, 5, 42, 1472, 34, 6 }, 30000, 0, 0, 0 },  /* UDP_L4 */
		{ ALL_OFF, { NEEDS, 2, 66, 1448, 34, 16 }, 30000, 0, 0, 0 },
		{ ALL_OFF, { 0, 0x80, 0, 0, 0, 0 }, 60, 0, 0, 0 }, /* ECN bit without a GSO type */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct netdev_rx_frame f = { .nseg = 1, .total_len = cases[i].len };
		const uint16_t *v = cases[i].h;
		struct virtio_net_hdr h = hdr((uint8_t)v[0], (uint8_t)v[1], v[2], v[3], v[4], v[5]);
		rx.offloads = cases[i].offloads;
		int rc = vnet_rx_parse_hdr(&rx, &h, &f);
		if ((rc == 0) != cases[i].ok)
			fail_msg("case %zu: rc %d, expected %s", i, rc, cases[i].ok ? "accepted" : "refused");
		if (rc == 0 && (f.csum != cases[i].csum || f.gso != cases[i].gso))
			fail_msg("case %zu: csum %u gso %u", i, f.csum, f.gso);
	}
}

/* Every flags / gso_type byte against every offload set, with hostile numbers: whatever is accepted keeps
 * the promises the consumer relies on. */
static void test_header_sweep_invariants(void **state)
{
	static const uint16_t nums[] = { 0, 1, 13, 14, 34, 58, 59, 60, 1448, 0x7FFF, 0xFFFE, 0xFFFF };
	unsigned accepted = 0;
	(void)state;
	for (unsigned off = 0; off < 16; off++)
		for (unsigned flags = 0; flags < 256; flags += 1)
			for (unsigned gso = 0; gso < 256; gso++)
				for (unsigned k = 0; k < 12; k += 3) {
					struct virtio_net_hdr h = hdr((uint8_t)flags, (uint8_t)gso, nums[(k + 7) % 12],
								      nums[(k + flags) % 12], nums[(k + gso) % 12],
								      nums[(k + 1) % 12]);
					struct netdev_rx_frame f = { .nseg = 1, .total_len = 60 + 1000 * (k % 2) };
					rx.offloads = off;
					if (vnet_rx_parse_hdr(&rx, &h, &f))
						continue;
					accepted++;
					if (flags & 3)
						assert_true(off & VNET_RX_OFF_CSUM);
					if (f.csum == NETDEV_RX_CSUM_PARTIAL) {
						assert_true(f.csum_start >= 14);
						assert_true((uint32_t)f.csum_start + f.csum_offset + 2 <= f.total_len);
					}
					if (f.gso != NETDEV_GSO_NONE) {
						assert_true(f.gso_size > 0);
						assert_int_equal(f.csum, NETDEV_RX_CSUM_PARTIAL);
						assert_true(off & (f.gso == NETDEV_GSO_TCPV4 ? VNET_RX_OFF_TSO4 : VNET_RX_OFF_TSO6));
						if (f.gso_ecn)
							assert_true(off & VNET_RX_OFF_ECN);
					}
				}
	assert_true(accepted > 1000);
}

/* Through the ring: a refused header drops the whole (merged) frame, counts it and returns every buffer;
 * accepted ones carry their offload fields to the consumer and are counted by kind. */
static void test_bad_header_drops_frame(void **state)
{
	(void)state;
	setup_rx(64, 200, 1, 1);
	vnet_rx_set_offloads(&rx, ALL_OFF);
	refill();
	unsigned before = pool.nfree;
	struct virtio_net_hdr bad = hdr(NEEDS, 1, 66, 0, 34, 16);       /* gso_size 0 */
	struct virtio_net_hdr out = hdr(NEEDS, 0, 0, 0, 34, 5000);      /* field past the frame */
	struct virtio_net_hdr gso = hdr(NEEDS, 0x81, 66, 1448, 34, 16);
	struct virtio_net_hdr valid = hdr(VALID, 0, 0, 0, 0, 0);
	assert_int_equal(dev_receive_hdr(5000, 3, &bad), 0);
	assert_int_equal(dev_receive_hdr(3000, 2, &out), 0);
	assert_int_equal(dev_receive_hdr(100, 1, &valid), 0);
	assert_int_equal(dev_receive_hdr(6000, 3, &gso), 0);
	sim_flush(&sim);
	assert_int_equal(vnet_rx_poll(&rx, 64), 9);
	assert_int_equal(rx.stats.bad_hdr, 2);
	assert_int_equal(seen.frames, 2);
	assert_int_equal(seen.lens[0], 100);
	assert_int_equal(seen.last.gso, NETDEV_GSO_TCPV4);
	assert_int_equal(seen.last.gso_ecn, 1);
	assert_int_equal(seen.last.gso_size, 1448);
	assert_int_equal(seen.last.csum, NETDEV_RX_CSUM_PARTIAL);
	assert_int_equal(seen.last.csum_start, 34);
	assert_int_equal(rx.stats.csum_valid, 1);
	assert_int_equal(rx.stats.csum_partial, 1);
	assert_int_equal(rx.stats.gso_frames, 1);
	assert_int_equal(rx.stats.gso_bytes, 6000);
	assert_int_equal(pool.nfree, before + 9);
	/* Without the features, the same flags are a device fault. */
	vnet_rx_set_offloads(&rx, 0);
	refill();
	assert_int_equal(dev_receive_hdr(100, 1, &valid), 0);
	sim_flush(&sim);
	vnet_rx_poll(&rx, 64);
	assert_int_equal(rx.stats.bad_hdr, 3);
	assert_int_equal(seen.frames, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_fill_receive_single_buffers, teardown),
		cmocka_unit_test_teardown(test_budget_bounds_work, teardown),
		cmocka_unit_test_teardown(test_refill_on_half_empty, teardown),
		cmocka_unit_test_teardown(test_refill_failure_and_recovery, teardown),
		cmocka_unit_test_teardown(test_mergeable_frames, teardown),
		cmocka_unit_test_teardown(test_mergeable_frame_split_across_polls, teardown),
		cmocka_unit_test_teardown(test_mrg_off_ignores_num_buffers, teardown),
		cmocka_unit_test_teardown(test_runts_and_bad_num_buffers_dropped, teardown),
		cmocka_unit_test_teardown(test_hostile_used_entries, teardown),
		cmocka_unit_test_teardown(test_bad_buffer_in_merged_frame_drops_frame, teardown),
		cmocka_unit_test_teardown(test_drain_returns_everything, teardown),
		cmocka_unit_test(test_header_cases),
		cmocka_unit_test(test_header_sweep_invariants),
		cmocka_unit_test_teardown(test_bad_header_drops_frame, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
