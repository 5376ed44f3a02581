/* Unit tests for the packed layout of drivers/virtq.c + virtq_packed.c: the real driver against a simulated
 * packed-ring device (virtq_psim.c) on the same memory, virtio 1.1 §2.8. The split layout's tests are in
 * test_virtq.c; these cover the same ground for packed: chain shapes, wrapping past the ring size many times
 * with out-of-order completion, event suppression both ways (EVENT_IDX on and off, one-shot, delayed),
 * lost-wake-up re-checks, the stall watchdog, reset, and a hostile device (ids, lengths, flags, corrupted
 * descriptors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "virtq.h"
#include "virtq_psim.h"

#define TOK(i)         ((void *)(uintptr_t)(0x1000 + (uintptr_t)(i)))
#define ROUND_UP(x, a) (((x) + (a)-1) & ~(size_t)((a)-1))

#define assert_dev_ok()                                                                                                \
	do {                                                                                                           \
		if (sim.error)                                                                                         \
			fail_msg("device saw a protocol violation: %s", sim.error);                                    \
	} while (0)

static struct virtq vq;
static struct virtq_psim sim;
static void *mem;

static void ring_free(void)
{
	if (!mem)
		return;
	virtq_destroy(&vq);
	psim_detach(&sim);
	free(mem);
	mem = NULL;
}

static void ring_setup(uint16_t size, int event_idx)
{
	ring_free();
	size_t bytes = ROUND_UP(virtq_mem_size(size), 4096);
	mem = aligned_alloc(4096, bytes);
	assert_non_null(mem);
	memset(mem, 0xA5, bytes); /* virtq_init must clear it */
	assert_int_equal(virtq_init(&vq, 0, size, mem, (event_idx ? VIRTQ_INIT_EVENT_IDX : 0) | VIRTQ_INIT_PACKED), 0);
	assert_int_equal(psim_attach(&sim, virtq_desc_addr(&vq), virtq_avail_addr(&vq), virtq_used_addr(&vq), size,
				     event_idx != 0),
			 0);
}

static int teardown(void **state)
{
	(void)state;
	ring_free();
	return 0;
}

static void make_sg(struct virtq_sg *sg, unsigned n, uint64_t base)
{
	for (unsigned k = 0; k < n; k++) {
		sg[k].addr = base + k * 0x1000;
		sg[k].len = 64 + 8 * k;
	}
}

static void post(const struct virtq_sg *sg, unsigned out_n, unsigned in_n, void *token)
{
	assert_int_equal(virtq_add(&vq, sg, out_n, in_n, token), 0);
}

/* One device-writable buffer of 100 bytes. */
static void post1(void *token)
{
	struct virtq_sg sg = { 0x200000 + (uintptr_t)token, 100 };
	post(&sg, 0, 1, token);
}

static struct sim_chain pop(void)
{
	struct sim_chain c;
	int rc = psim_pop(&sim, &c);
	assert_dev_ok();
	assert_int_equal(rc, 1);
	return c;
}

static void push(uint16_t id, uint32_t len)
{
	assert_int_equal(psim_push(&sim, id, len), 0);
	assert_dev_ok();
}

static void expect_used(void *token, uint32_t len)
{
	void *t = (void *)1;
	uint32_t l = 12345;
	assert_int_equal(virtq_get_used(&vq, &t, &l), 0);
	assert_ptr_equal(t, token);
	assert_int_equal(l, len);
}

static void expect_get(int rc, void *token)
{
	void *t = (void *)1;
	uint32_t l = 12345;
	assert_int_equal(virtq_get_used(&vq, &t, &l), rc);
	assert_ptr_equal(t, token);
	assert_int_equal(l, 0);
}

/* ---- layout and chains ---- */

static void test_layout(void **state)
{
	(void)state;
	ring_setup(256, 1);
	assert_true(virtq_is_packed(&vq));
	/* §2.8.10: descriptor ring, then the two event suppression structures (driver's, device's). */
	assert_int_equal(virtq_desc_addr(&vq), (uint64_t)(uintptr_t)mem);
	assert_int_equal(virtq_avail_addr(&vq), (uint64_t)(uintptr_t)mem + 16 * 256);
	assert_int_equal(virtq_used_addr(&vq), (uint64_t)(uintptr_t)mem + 16 * 256 + 4);
	assert_true(virtq_used_addr(&vq) + 4 <= (uint64_t)(uintptr_t)mem + virtq_mem_size(256));
	assert_int_equal(vq.num_free, 256);
	expect_get(-EAGAIN, NULL);
	assert_false(virtq_has_used(&vq));
	/* Zeroed event suppression: ENABLE both ways. */
	assert_int_equal(le16_read(&vq.driver_event->flags), VIRTQ_EVENT_F_ENABLE);
}

/* virtq_add_one on the packed layout: the same single descriptors as virtq_add with one piece. */
static void test_add_one_packed(void **state)
{
	(void)state;
	ring_setup(8, 1);
	assert_int_equal(virtq_add_one(&vq, 0x10000, 1500, 1, TOK(1)), 0);
	assert_int_equal(virtq_add_one(&vq, 0x20000, 60, 0, TOK(2)), 0);
	assert_int_equal(virtq_add_one(&vq, 0x30000, 10, 1, NULL), -EINVAL);
	virtq_publish(&vq);
	struct sim_chain a = pop(), b = pop();
	assert_int_equal(a.n_in, 1);
	assert_int_equal(a.n_out, 0);
	assert_int_equal(a.in_bytes, 1500);
	assert_int_equal(b.n_out, 1);
	assert_int_equal(b.n_in, 0);
	assert_int_equal(b.out_bytes, 60);
	push(a.head, 700);
	push(b.head, 0);
	psim_flush(&sim);
	expect_used(TOK(1), 700);
	expect_used(TOK(2), 0);
	expect_get(-EAGAIN, NULL);
	assert_int_equal(vq.num_free, 8);

	/* virtq_add_in_bufs: the same through virtq_add_one, up to the ring's room. */
	void *bufs[10];
	for (unsigned i = 0; i < 10; i++)
		bufs[i] = (void *)(uintptr_t)(0x100000 + i * 0x1000);
	assert_int_equal(virtq_add_in_bufs(&vq, bufs, 10, 512), 8);
	virtq_publish(&vq);
	for (unsigned i = 0; i < 8; i++) {
		struct sim_chain c = pop();
		assert_int_equal(c.n_in, 1);
		assert_int_equal(c.seg[0].addr, 0x100000 + i * 0x1000);
		push(c.head, 1);
	}
	psim_flush(&sim);
	for (unsigned i = 0; i < 8; i++)
		expect_used(bufs[i], 1);
}

static void test_round_trip_chain_shapes(void **state)
{
	(void)state;
	ring_setup(16, 1);
	static const unsigned shapes[][2] = { { 1, 0 }, { 0, 1 }, { 1, 1 }, { 3, 2 }, { 0, 5 }, { 4, 0 }, { 2, 3 } };
	for (unsigned r = 0; r < 5; r++) {
		for (unsigned s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
			unsigned out_n = shapes[s][0], in_n = shapes[s][1], n = out_n + in_n;
			struct virtq_sg sg[8];
			make_sg(sg, n, 0x100000 * (s + 1));
			post(sg, out_n, in_n, TOK(s));
			virtq_publish(&vq);
			struct sim_chain c = pop();
			assert_int_equal(c.n_out, out_n);
			assert_int_equal(c.n_in, in_n);
			for (unsigned k = 0; k < n; k++) {
				assert_int_equal(c.seg[k].addr, sg[k].addr);
				assert_int_equal(c.seg[k].len, sg[k].len);
				assert_int_equal(!!(c.seg[k].flags & VIRTQ_DESC_F_WRITE), k >= out_n);
				assert_int_equal(!!(c.seg[k].flags & VIRTQ_DESC_F_NEXT), k + 1 < n);
			}
			uint32_t len = in_n ? c.in_bytes - 1 : 0;
			push(c.head, len);
			psim_flush(&sim);
			expect_used(TOK(s), len);
			assert_int_equal(vq.num_free, 16);
		}
	}
	assert_int_equal(vq.stats.used, 35);
}

/* Nothing is visible to the device before publish, however many chains were added. */
static void test_batch_hidden_until_publish(void **state)
{
	(void)state;
	ring_setup(8, 1);
	for (int i = 0; i < 5; i++)
		post1(TOK(i));
	assert_int_equal(psim_avail_pending(&sim), 0);
	assert_true(virtq_publish(&vq));
	assert_int_equal(psim_avail_pending(&sim), 5);
	/* A second batch, across the wrap: again hidden until publish. */
	for (int i = 0; i < 5; i++)
		push(pop().head, 1);
	psim_flush(&sim);
	for (int i = 0; i < 5; i++)
		expect_used(TOK(i), 1);
	for (int i = 5; i < 12; i++)
		post1(TOK(i));
	assert_int_equal(psim_avail_pending(&sim), 0);
	virtq_publish(&vq);
	assert_int_equal(psim_avail_pending(&sim), 7);
	assert_dev_ok();
}

static void test_ring_full(void **state)
{
	(void)state;
	ring_setup(4, 0);
	struct virtq_sg sg[3];
	make_sg(sg, 3, 0x5000);
	post(sg, 1, 2, TOK(0));
	assert_int_equal(virtq_add(&vq, sg, 1, 1, TOK(1)), -ENOSPC);
	assert_int_equal(vq.stats.full, 1);
	post1(TOK(2));
	assert_int_equal(vq.num_free, 0);
	virtq_publish(&vq);
	struct sim_chain a = pop(), b = pop();
	push(b.head, 7); /* out of order: the one-descriptor chain first */
	psim_flush(&sim);
	expect_used(TOK(2), 7);
	assert_int_equal(vq.num_free, 1);
	push(a.head, 0);
	psim_flush(&sim);
	expect_used(TOK(0), 0);
	assert_int_equal(vq.num_free, 4);
}

/* ---- wrapping many times, out of order, against a model ---- */

static uint32_t rng = 12345;
static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

static void model_run(uint16_t size, int event_idx, unsigned rounds)
{
	struct held {
		uint16_t id;
		uint32_t in;
		void *tok;
	} held[64];
	uint32_t want_len[4096];
	unsigned nheld = 0;
	unsigned long added = 0, done = 0;
	unsigned wraps = 0;
	uint8_t last_wrap = 1;
	ring_setup(size, event_idx);
	memset(want_len, 0, sizeof(want_len));
	for (unsigned round = 0; round < rounds; round++) {
		unsigned batch = rnd() % (size + 1u);
		for (unsigned i = 0; i < batch; i++) {
			unsigned n = 1 + rnd() % 4, out_n = rnd() % (n + 1);
			struct virtq_sg sg[4];
			if (vq.num_free < n)
				break;
			make_sg(sg, n, added << 16);
			post(sg, out_n, n - out_n, TOK(added % 4096));
			added++;
		}
		virtq_publish(&vq);
		assert_dev_ok();
		unsigned take = rnd() % (size + 1u);
		struct sim_chain c;
		while (take-- && nheld < 64 && psim_pop(&sim, &c) == 1) {
			held[nheld].id = c.head;
			held[nheld].in = c.in_bytes;
			nheld++;
		}
		assert_dev_ok();
		/* Complete a random subset in a random order. */
		unsigned complete = nheld ? rnd() % (nheld + 1) : 0;
		for (unsigned i = 0; i < complete; i++) {
			unsigned j = rnd() % nheld;
			uint32_t len = held[j].in ? rnd() % (held[j].in + 1) : 0;
			/* Which token is under this id: the driver's own record (tests may peek). */
			void *tok = vq.slot[held[j].id].token;
			want_len[((uintptr_t)tok - 0x1000) % 4096] = len;
			push(held[j].id, len);
			held[j] = held[--nheld];
		}
		psim_flush(&sim);
		void *t;
		uint32_t l;
		int rc;
		while ((rc = virtq_get_used(&vq, &t, &l)) == 0) {
			assert_int_equal(l, want_len[((uintptr_t)t - 0x1000) % 4096]);
			done++;
		}
		assert_int_equal(rc, -EAGAIN);
		if (vq.used_wrap != last_wrap) {
			wraps++;
			last_wrap = vq.used_wrap;
		}
		assert_int_equal((uint16_t)(vq.avail_idx - vq.last_used_idx), (uint16_t)(added - done));
	}
	assert_int_equal(vq.stats.used, done);
	assert_int_equal(vq.stats.bad_id + vq.stats.bad_not_outstanding + vq.stats.bad_len + vq.stats.bad_flags, 0);
	assert_true(wraps > 50); /* past the ring size many times */
	assert_false(virtq_is_broken(&vq));
}

static void test_model_event_idx(void **state)
{
	(void)state;
	model_run(16, 1, 20000);
	model_run(8, 1, 5000);
}

static void test_model_no_event_idx(void **state)
{
	(void)state;
	model_run(16, 0, 20000);
	model_run(32, 0, 5000);
}

/* ---- event suppression: interrupts ---- */

static void test_interrupts_event_idx(void **state)
{
	(void)state;
	ring_setup(8, 1);
	for (unsigned i = 0; i < 200; i++) {
		post1(TOK(i));
		virtq_publish(&vq);
		uint16_t id = pop().head;
		/* Armed: exactly the next used descriptor interrupts, once. */
		assert_int_equal(virtq_enable_cb(&vq), 0);
		push(id, 1);
		assert_true(psim_flush(&sim));
		post1(TOK(1000 + i));
		virtq_publish(&vq);
		push(pop().head, 2);
		assert_false(psim_flush(&sim)); /* one interrupt per arming */
		expect_used(TOK(i), 1);
		expect_used(TOK(1000 + i), 2);
		/* Disabled: nothing. */
		virtq_disable_cb(&vq);
		post1(TOK(2000 + i));
		virtq_publish(&vq);
		push(pop().head, 3);
		assert_false(psim_flush(&sim));
		expect_used(TOK(2000 + i), 3);
	}
	assert_dev_ok();
}

static void test_interrupts_flags(void **state)
{
	(void)state;
	ring_setup(8, 0);
	for (unsigned i = 0; i < 40; i++) {
		assert_int_equal(virtq_enable_cb(&vq), 0);
		for (int k = 0; k < 3; k++) {
			post1(TOK(k));
			virtq_publish(&vq);
			push(pop().head, 1);
			assert_true(psim_flush(&sim)); /* without EVENT_IDX: every used descriptor */
			expect_used(TOK(k), 1);
		}
		virtq_disable_cb(&vq);
		assert_int_equal(le16_read(&vq.driver_event->flags), VIRTQ_EVENT_F_DISABLE);
		post1(TOK(9));
		virtq_publish(&vq);
		push(pop().head, 1);
		assert_false(psim_flush(&sim));
		expect_used(TOK(9), 1);
	}
	assert_dev_ok();
}

/* Re-enable then re-check: a completion that landed while interrupts were off is reported by enable. */
static void test_enable_reports_race(void **state)
{
	(void)state;
	for (int ev = 0; ev < 2; ev++) {
		ring_setup(4, ev);
		virtq_disable_cb(&vq);
		post1(TOK(1));
		virtq_publish(&vq);
		push(pop().head, 5);
		assert_false(psim_flush(&sim));
		assert_int_equal(virtq_enable_cb(&vq), 1); /* the caller must poll instead of sleeping */
		expect_used(TOK(1), 5);
		assert_int_equal(virtq_enable_cb(&vq), 0);
	}
}

static void test_enable_delayed(void **state)
{
	(void)state;
	ring_setup(16, 1);
	for (unsigned lap = 0; lap < 40; lap++) { /* 40 x 10 buffers: many wraps of a 16-slot ring */
		for (int i = 0; i < 10; i++)
			post1(TOK(i));
		virtq_publish(&vq);
		uint16_t ids[10];
		for (int i = 0; i < 10; i++)
			ids[i] = pop().head;
		assert_int_equal(virtq_enable_cb_delayed(&vq, 4), 0);
		for (int i = 0; i < 10; i++) {
			push(ids[i], 1);
			assert_int_equal(psim_flush(&sim), i == 3); /* the 4th completion interrupts, nothing else */
		}
		for (int i = 0; i < 10; i++)
			expect_used(TOK(i), 1);
	}
	/* Clamped to what is outstanding: 3 posted, after=8 interrupts at the 3rd. */
	for (int i = 0; i < 3; i++)
		post1(TOK(i));
	virtq_publish(&vq);
	uint16_t ids[3];
	for (int i = 0; i < 3; i++)
		ids[i] = pop().head;
	assert_int_equal(virtq_enable_cb_delayed(&vq, 8), 0);
	for (int i = 0; i < 3; i++) {
		push(ids[i], 1);
		assert_int_equal(psim_flush(&sim), i == 2);
	}
	/* Already there: reported, so the caller polls. */
	for (int i = 0; i < 3; i++)
		expect_used(TOK(i), 1);
	for (int i = 0; i < 4; i++)
		post1(TOK(i));
	virtq_publish(&vq);
	for (int i = 0; i < 4; i++)
		push(pop().head, 1);
	psim_flush(&sim);
	assert_int_equal(virtq_enable_cb_delayed(&vq, 2), 1);
	assert_dev_ok();
}

/* Multi-descriptor chains outstanding: the slot a delayed event names would not match a chain count, so it
 * falls back to a plain enable (the next completion interrupts). */
static void test_enable_delayed_multi_descriptor(void **state)
{
	(void)state;
	ring_setup(16, 1);
	struct virtq_sg sg[2];
	make_sg(sg, 2, 0x7000);
	for (int i = 0; i < 4; i++)
		post(sg, 1, 1, TOK(i));
	virtq_publish(&vq);
	uint16_t ids[4];
	for (int i = 0; i < 4; i++)
		ids[i] = pop().head;
	assert_int_equal(virtq_enable_cb_delayed(&vq, 3), 0);
	push(ids[0], 1);
	assert_true(psim_flush(&sim));
}

/* ---- event suppression: notifications ---- */

static void test_kicks_event_idx(void **state)
{
	(void)state;
	ring_setup(8, 1);
	for (unsigned i = 0; i < 100; i++) {
		post1(TOK(0));
		assert_true(virtq_publish(&vq)); /* the device asked for the slot we just filled */
		post1(TOK(1));
		assert_false(virtq_publish(&vq)); /* not taken yet: the device still owes the first look */
		push(pop().head, 0);
		push(pop().head, 0);
		psim_flush(&sim);
		expect_used(TOK(0), 0);
		expect_used(TOK(1), 0);
		/* Refill from empty: the device took everything and waits at the next slot. */
		post1(TOK(2));
		assert_true(virtq_publish(&vq));
		push(pop().head, 0);
		psim_flush(&sim);
		expect_used(TOK(2), 0);
	}
	psim_want_kicks(&sim, false);
	post1(TOK(3));
	assert_false(virtq_publish(&vq));
	assert_int_equal(vq.stats.kicks_suppressed, 101);
	assert_dev_ok();
}

static void test_kicks_flags(void **state)
{
	(void)state;
	ring_setup(4, 0);
	post1(TOK(0));
	assert_true(virtq_publish(&vq));
	psim_want_kicks(&sim, false);
	post1(TOK(1));
	assert_false(virtq_publish(&vq));
	psim_want_kicks(&sim, true);
	post1(TOK(2));
	assert_true(virtq_publish(&vq));
	assert_false(virtq_publish(&vq)); /* nothing new */
}

/* ---- the stall watchdog ---- */

static void test_watchdog_lost_kick_after_refill(void **state)
{
	(void)state;
	for (int ev = 0; ev < 2; ev++) {
		ring_setup(8, ev);
		for (int i = 0; i < 8; i++)
			post1(TOK(i));
		virtq_publish(&vq);
		assert_int_equal(virtq_kick_overdue(&vq, 100), 0);
		while (psim_avail_pending(&sim))
			push(pop().head, 1);
		psim_flush(&sim);
		for (int i = 0; i < 8; i++)
			expect_used(TOK(i), 1);
		/* Refill of a ring the device emptied; the notification is lost (the device never looks). */
		for (int i = 0; i < 8; i++)
			post1(TOK(i));
		virtq_publish(&vq);
		/* The watchdog's look at 100 came before the publish: the device is overdue two ticks after it. */
		assert_int_equal(virtq_kick_overdue(&vq, 101), 0);
		assert_int_equal(virtq_kick_overdue(&vq, 102), 1);
		assert_int_equal(vq.stats.kicks_overdue, 1);
		assert_int_equal(virtq_kick_overdue(&vq, 103), 0); /* backing off */
		/* The device wakes up: progress, then everything returned disarms it. */
		push(pop().head, 1);
		psim_flush(&sim);
		assert_int_equal(virtq_kick_overdue(&vq, 104), 0);
		while (psim_avail_pending(&sim))
			push(pop().head, 1);
		psim_flush(&sim);
		assert_int_equal(virtq_device_used(&vq), (uint16_t)16);
		for (int t = 105; t < 400; t++)
			assert_int_equal(virtq_kick_overdue(&vq, (uint64_t)t), 0);
	}
}

static void test_watchdog_idle_receive_queue(void **state)
{
	(void)state;
	ring_setup(8, 1);
	for (int i = 0; i < 8; i++)
		post1(TOK(i));
	virtq_publish(&vq);
	for (int i = 0; i < 3; i++)
		push(pop().head, 1);
	psim_flush(&sim);
	for (int i = 0; i < 3; i++)
		expect_used(TOK(i), 1);
	for (int i = 0; i < 3; i++)
		post1(TOK(i));
	virtq_publish(&vq);
	/* The device holds buffers from before the publish: waiting for input, not stalled. */
	for (int t = 10; t < 300; t++)
		assert_int_equal(virtq_kick_overdue(&vq, (uint64_t)t), 0);
}

/* ---- hostile device ---- */

static void test_hostile_bad_id(void **state)
{
	(void)state;
	static const uint16_t bad[] = { 8, 0xffff, 0x8000 };
	for (unsigned b = 0; b < 3; b++) {
		ring_setup(8, 1);
		post1(TOK(1));
		virtq_publish(&vq);
		pop();
		psim_hostile_used(&sim, bad[b], 0, 1);
		assert_true(virtq_has_used(&vq));
		expect_get(-EIO, NULL);
		assert_int_equal(vq.stats.bad_id, 1);
		/* The next used descriptor cannot be found without a trusted id: broken, reset path. */
		assert_true(virtq_is_broken(&vq));
		expect_get(-ENODEV, NULL);
		assert_false(virtq_has_used(&vq));
		assert_int_equal(virtq_enable_cb(&vq), 0);
	}
}

static void test_hostile_not_outstanding(void **state)
{
	(void)state;
	/* A free id, a duplicate, and an id added but not yet published. */
	for (int kind = 0; kind < 3; kind++) {
		ring_setup(8, 1);
		post1(TOK(1));
		post1(TOK(2));
		virtq_publish(&vq);
		uint16_t id = pop().head;
		pop();
		if (kind == 0) {
			uint16_t free_id = 0;
			while (vq.slot[free_id].token)
				free_id++;
			psim_hostile_used(&sim, free_id, 0, 1);
		} else if (kind == 1) {
			push(id, 4); /* returned once, properly ... */
			psim_flush(&sim);
			expect_used(TOK(1), 4);
			psim_hostile_used(&sim, id, 0, 1); /* ... and again */
		} else {
			post1(TOK(3)); /* added, not published: the device cannot know its id */
			for (uint16_t i = 0; i < 8; i++)
				if (vq.slot[i].token == TOK(3))
					psim_hostile_used(&sim, i, 0, 1);
		}
		expect_get(-EIO, NULL);
		assert_int_equal(vq.stats.bad_not_outstanding, 1);
		assert_true(virtq_is_broken(&vq));
	}
}

/* A used descriptor when nothing is published: invented. */
static void test_hostile_used_when_idle(void **state)
{
	(void)state;
	ring_setup(8, 0);
	psim_hostile_used(&sim, 0, 0, 1);
	assert_true(virtq_has_used(&vq));
	expect_get(-EIO, NULL);
	assert_int_equal(vq.stats.bad_not_outstanding, 1);
	assert_true(virtq_is_broken(&vq));
}

static void test_hostile_bad_len(void **state)
{
	(void)state;
	ring_setup(8, 1);
	for (int i = 0; i < 3; i++)
		post1(TOK(i));
	virtq_publish(&vq);
	uint16_t a = pop().head, b = pop().head, c = pop().head;
	psim_hostile_used(&sim, a, 101, 1);
	psim_hostile_used(&sim, b, 0xffffffff, 1);
	psim_hostile_used(&sim, c, 100, 1);
	/* The chain is known, so its buffer comes back for recycling and the ring goes on. */
	expect_get(-EIO, TOK(0));
	expect_get(-EIO, TOK(1));
	expect_used(TOK(2), 100);
	assert_int_equal(vq.stats.bad_len, 2);
	assert_false(virtq_is_broken(&vq));
	assert_int_equal(vq.num_free, 8);
	/* VIRTQ_BROKEN_THRESHOLD of them (2 so far) break the queue. */
	for (int i = 0; i < VIRTQ_BROKEN_THRESHOLD - 2; i++) {
		assert_false(virtq_is_broken(&vq));
		post1(TOK(i));
		virtq_publish(&vq);
		psim_hostile_used(&sim, pop().head, 1000, 1);
		expect_get(-EIO, TOK(i));
	}
	assert_true(virtq_is_broken(&vq));
}

/* A device that writes flag combinations no lap can produce into a slot we made available. */
static void test_hostile_flags(void **state)
{
	(void)state;
	const uint16_t A = VIRTQ_PACKED_DESC_F_AVAIL, U = VIRTQ_PACKED_DESC_F_USED;
	/* Lap 1 (wrap 1): available is A, used is A|U; 0 and U cannot happen in an outstanding slot. */
	static const uint16_t bad[] = { 0, VIRTQ_PACKED_DESC_F_USED };
	for (unsigned b = 0; b < 2; b++) {
		ring_setup(8, 1);
		post1(TOK(1));
		virtq_publish(&vq);
		pop();
		psim_hostile_write(&sim, 0, 0, 0, bad[b]);
		assert_true(virtq_has_used(&vq)); /* work, so the poller finds out */
		expect_get(-EIO, NULL);
		assert_int_equal(vq.stats.bad_flags, 1);
		assert_true(virtq_is_broken(&vq));
	}
	/* The same in the second lap, where the meanings of the bits swap. */
	ring_setup(4, 0);
	for (int i = 0; i < 4; i++) {
		post1(TOK(i));
		virtq_publish(&vq);
		push(pop().head, 1);
		psim_flush(&sim);
		expect_used(TOK(i), 1);
	}
	assert_int_equal(vq.used_wrap, 0);
	post1(TOK(9));
	virtq_publish(&vq);
	pop();
	psim_hostile_write(&sim, 0, 0, 0, A);
	expect_get(-EIO, NULL);
	assert_int_equal(vq.stats.bad_flags, 1);
	(void)U;
}

/* The device overwrites descriptors it holds (addresses, lengths, ids, NEXT flags): the driver's bookkeeping
 * comes from its own copy, so the ring keeps working and every buffer comes back exactly once. */
static void test_corrupted_descriptors(void **state)
{
	(void)state;
	ring_setup(8, 1);
	struct virtq_sg sg[3];
	make_sg(sg, 3, 0x9000);
	for (unsigned r = 0; r < 50; r++) {
		post(sg, 1, 2, TOK(r));
		post1(TOK(1000 + r));
		virtq_publish(&vq);
		struct sim_chain a = pop(), b = pop();
		for (unsigned k = 0; k < 3; k++) {
			struct virtq_packed_desc *d = &vq.ring[a.seg[k].id];
			le64_write(&d->addr, 0xdead0000);
			le32_write(&d->len, 0xffffffff);
			d->id = cpu_to_le16(0x7777);
			/* Keep the flags a device would not touch, except NEXT, which it clears. */
			le16_write(&d->flags, (uint16_t)(le16_read(&d->flags) & ~VIRTQ_DESC_F_NEXT));
		}
		push(b.head, 9);
		push(a.head, 10);
		psim_flush(&sim);
		expect_used(TOK(1000 + r), 9);
		expect_used(TOK(r), 10);
		expect_get(-EAGAIN, NULL);
		assert_int_equal(vq.num_free, 8);
	}
	assert_int_equal(vq.stats.bad_id + vq.stats.bad_not_outstanding + vq.stats.bad_len + vq.stats.bad_flags, 0);
}

static void test_tx_len_ignored(void **state)
{
	(void)state;
	ring_setup(4, 1);
	struct virtq_sg sg = { 0x1000, 60 };
	post(&sg, 1, 0, TOK(1));
	virtq_publish(&vq);
	psim_hostile_used(&sim, pop().head, 60, 1);
	expect_used(TOK(1), 0);
	assert_int_equal(vq.stats.len_ignored, 1);
	assert_false(virtq_is_broken(&vq));
}

/* Broken, reset, detach: every outstanding token back (published or not), and the ring works from scratch. */
static void test_detach_and_reset(void **state)
{
	(void)state;
	ring_setup(8, 1);
	for (int i = 0; i < 5; i++)
		post1(TOK(i));
	virtq_publish(&vq);
	post1(TOK(5));
	pop();
	pop();
	psim_hostile_used(&sim, 0x100, 0, 1);
	expect_get(-EIO, NULL);
	assert_true(virtq_is_broken(&vq));
	assert_int_equal(virtq_add(&vq, &(struct virtq_sg){ 1, 1 }, 0, 1, TOK(9)), -EIO);
	unsigned seen = 0;
	void *t;
	while ((t = virtq_detach_unused(&vq)))
		seen |= 1u << ((uintptr_t)t - 0x1000);
	assert_int_equal(seen, 0x3f);
	assert_false(virtq_is_broken(&vq));
	assert_int_equal(vq.num_free, 8);
	psim_reset(&sim);
	for (unsigned i = 0; i < 30; i++) {
		post1(TOK(i));
		assert_true(virtq_publish(&vq));
		push(pop().head, 3);
		psim_flush(&sim);
		expect_used(TOK(i), 3);
	}
	assert_dev_ok();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_layout, teardown),
	    cmocka_unit_test_teardown(test_add_one_packed, teardown),
		cmocka_unit_test_teardown(test_round_trip_chain_shapes, teardown),
	    cmocka_unit_test_teardown(test_batch_hidden_until_publish, teardown),
	    cmocka_unit_test_teardown(test_ring_full, teardown),
	    cmocka_unit_test_teardown(test_model_event_idx, teardown),
	    cmocka_unit_test_teardown(test_model_no_event_idx, teardown),
	    cmocka_unit_test_teardown(test_interrupts_event_idx, teardown),
	    cmocka_unit_test_teardown(test_interrupts_flags, teardown),
	    cmocka_unit_test_teardown(test_enable_reports_race, teardown),
	    cmocka_unit_test_teardown(test_enable_delayed, teardown),
	    cmocka_unit_test_teardown(test_enable_delayed_multi_descriptor, teardown),
	    cmocka_unit_test_teardown(test_kicks_event_idx, teardown),
	    cmocka_unit_test_teardown(test_kicks_flags, teardown),
	    cmocka_unit_test_teardown(test_watchdog_lost_kick_after_refill, teardown),
	    cmocka_unit_test_teardown(test_watchdog_idle_receive_queue, teardown),
	    cmocka_unit_test_teardown(test_hostile_bad_id, teardown),
	    cmocka_unit_test_teardown(test_hostile_not_outstanding, teardown),
	    cmocka_unit_test_teardown(test_hostile_used_when_idle, teardown),
	    cmocka_unit_test_teardown(test_hostile_bad_len, teardown),
	    cmocka_unit_test_teardown(test_hostile_flags, teardown),
	    cmocka_unit_test_teardown(test_corrupted_descriptors, teardown),
	    cmocka_unit_test_teardown(test_tx_len_ignored, teardown),
	    cmocka_unit_test_teardown(test_detach_and_reset, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
