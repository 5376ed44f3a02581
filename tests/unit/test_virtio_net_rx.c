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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
