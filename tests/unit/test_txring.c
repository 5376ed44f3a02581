/* Unit tests for tools/txring.c, the PACKET_TX_RING of tools/load --tx-ring, on plain memory: the ring
 * geometry, the slot layout, and the bookkeeping after a send() (the test plays the kernel's part by setting
 * slot statuses as tpacket_snd() would: taken slots SENDING or AVAILABLE, a refused one back to
 * SEND_REQUEST). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <stdlib.h>
#include <string.h>

#include "../../tools/txring.h"

static void test_geometry_small_frames(void **state)
{
	(void)state;
	struct txring_geom g;
	assert_int_equal(txring_geometry(60, 64, 4096, &g), 0);
	assert_int_equal(g.frame_size, 128); /* 32 + 10 + 60 = 102 -> 128 */
	assert_int_equal(g.frame_nr, 4096);
	assert_int_equal(g.block_size, 4096);
	assert_int_equal(g.block_nr, 128);
	assert_int_equal(g.frame_nr * g.frame_size, g.block_nr * g.block_size);
	assert_int_equal(txring_geometry(0, 1, 4096, &g), 0);
	assert_int_equal(g.frame_size, 64);
}

static void test_geometry_large_frames(void **state)
{
	(void)state;
	struct txring_geom g;
	assert_int_equal(txring_geometry(1514, 64, 4096, &g), 0);
	assert_int_equal(g.frame_size, 2048);
	assert_int_equal(g.frame_nr, 4096);
	assert_int_equal(g.block_nr, 2048);
	assert_int_equal(txring_geometry(4096 - 42, 1, 4096, &g), 0);
	assert_int_equal(g.frame_size, 4096);
	assert_int_equal(txring_geometry(4096 - 41, 1, 4096, &g), -EINVAL); /* a slot larger than a page */
}

static void test_geometry_frame_count(void **state)
{
	(void)state;
	struct txring_geom g;
	assert_int_equal(txring_geometry(60, 1024, 4096, &g), 0);
	assert_int_equal(g.frame_nr, 4096); /* 4 batches */
	assert_int_equal(txring_geometry(60, 1500, 4096, &g), 0);
	assert_int_equal(g.frame_nr, 6016); /* 4 batches, rounded up to whole pages of 32 slots */
	assert_int_equal(g.block_nr, 188);
	assert_int_equal(txring_geometry(1514, 8192, 4096, &g), 0);      /* 32768 x 2048 bytes: 64 MiB */
	assert_int_equal(txring_geometry(1514, 8193, 4096, &g), -E2BIG); /* 4 slots more */
	assert_int_equal(txring_geometry(60, 0, 4096, &g), -EINVAL);
	assert_int_equal(txring_geometry(60, 64, 3000, &g), -EINVAL);
}

struct fixture {
	struct txring r;
	uint8_t *mem;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct txring_geom g;
	if (!f || txring_geometry(60, 16, 4096, &g))
		return -1;
	g.frame_nr = 64; /* a small ring, so that the tests wrap round it */
	g.block_nr = 2;
	f->mem = malloc((size_t)g.frame_nr * g.frame_size);
	if (!f->mem)
		return -1;
	memset(f->mem, 0xee, (size_t)g.frame_nr * g.frame_size);
	struct rawtx_flow flow = {
	    .dst_mac = {2, 0, 0, 0, 0, 2}, .src_mac = {2, 0, 0, 0, 0, 1}, .sport = 40000, .dport = 9};
	inet_pton(AF_INET, "10.99.0.1", &flow.src);
	inet_pton(AF_INET, "10.99.0.2", &flow.dst);
	txring_layout(&f->r, f->mem, &g, &flow, 18);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	free(f->mem);
	free(f);
	return 0;
}

static struct tpacket2_hdr *slot(struct fixture *f, unsigned i)
{
	return (struct tpacket2_hdr *)(f->mem + (size_t)(i % f->r.g.frame_nr) * f->r.g.frame_size);
}

static uint8_t *frame(struct fixture *f, unsigned i)
{
	return (uint8_t *)slot(f, i) + TXRING_FRAME_OFF;
}

static uint64_t seq_of(struct fixture *f, unsigned i)
{
	uint64_t le;
	memcpy(&le, frame(f, i) + RAWTX_HDR_LEN, 8);
	return le64toh(le);
}

static void test_layout(void **state)
{
	struct fixture *f = *state;
	for (unsigned i = 0; i < f->r.g.frame_nr; i++) {
		assert_int_equal(slot(f, i)->tp_status, TP_STATUS_AVAILABLE);
		assert_int_equal(slot(f, i)->tp_len, 70); /* virtio-net header + frame */
		uint8_t *vh = (uint8_t *)slot(f, i) + TXRING_DATA_OFF;
		assert_int_equal(vh[0], 0);               /* no flags: no checksum offload */
		assert_int_equal(vh[1], 0);               /* no GSO */
		assert_int_equal(vh[2] | vh[3] << 8, 60); /* hdr_len: the whole frame goes into the skb */
		assert_int_equal(frame(f, i)[12] << 8 | frame(f, i)[13], 0x0800);
		assert_int_equal(frame(f, i)[18] << 8 | frame(f, i)[19], i); /* IP id: the slot */
		assert_int_equal(frame(f, i)[59], 0);
	}
	assert_int_equal(f->r.head, 0);
}

/* The kernel takes the first `taken` requested slots from head (each left SENDING or, once its skb is freed,
 * AVAILABLE with a timestamp bit) and leaves the rest SEND_REQUEST. */
static void kernel_takes(struct fixture *f, unsigned taken)
{
	for (unsigned i = 0; i < taken; i++)
		slot(f, f->r.head + i)->tp_status =
		    i & 1 ? TP_STATUS_SENDING : TP_STATUS_AVAILABLE | TP_STATUS_TS_SOFTWARE;
}

static void test_batch_all_sent(void **state)
{
	struct fixture *f = *state;
	struct txring_result res = {0};
	assert_int_equal(txring_fill(&f->r, 16, 1000), 0);
	for (unsigned i = 0; i < 16; i++) {
		assert_int_equal(slot(f, i)->tp_status, TP_STATUS_SEND_REQUEST);
		assert_int_equal(seq_of(f, i), 1000 + i);
	}
	assert_int_equal(slot(f, 16)->tp_status, TP_STATUS_AVAILABLE);
	kernel_takes(f, 16);
	assert_int_equal(txring_settle(&f->r, 16, 0, &res), 0);
	assert_int_equal(res.sent, 16);
	assert_int_equal(res.errors, 0);
	assert_int_equal(f->r.head, 16);
}

/* ENOBUFS after 5 frames: the refused one and the 10 behind it are errors, their slots available again, and
 * the next batch starts on the refused slot. */
static void test_batch_refused(void **state)
{
	struct fixture *f = *state;
	struct txring_result res = {0};
	assert_int_equal(txring_fill(&f->r, 16, 0), 0);
	kernel_takes(f, 5);
	assert_int_equal(txring_settle(&f->r, 16, ENOBUFS, &res), 0);
	assert_int_equal(res.sent, 5);
	assert_int_equal(res.errors, 11);
	assert_int_equal(res.last_errno, ENOBUFS);
	assert_int_equal(f->r.head, 5);
	for (unsigned i = 5; i < 16; i++)
		assert_int_equal(slot(f, i)->tp_status, TP_STATUS_AVAILABLE);
	memset(&res, 0, sizeof(res));
	assert_int_equal(txring_fill(&f->r, 16, 16), 0);
	assert_int_equal(seq_of(f, 5), 16);
	kernel_takes(f, 16);
	assert_int_equal(txring_settle(&f->r, 16, 0, &res), 0);
	assert_int_equal(res.sent, 16);
	assert_int_equal(f->r.head, 21);
}

/* A short send() without an error (no socket buffer): the rest stays requested for the next try. */
static void test_batch_stalled(void **state)
{
	struct fixture *f = *state;
	struct txring_result res = {0};
	assert_int_equal(txring_fill(&f->r, 16, 0), 0);
	kernel_takes(f, 6);
	assert_int_equal(txring_settle(&f->r, 16, 0, &res), 10);
	assert_int_equal(res.sent, 6);
	assert_int_equal(slot(f, 6)->tp_status, TP_STATUS_SEND_REQUEST);
	assert_int_equal(txring_settle(&f->r, 10, 0, &res), 10); /* no progress */
	kernel_takes(f, 10);
	assert_int_equal(txring_settle(&f->r, 10, 0, &res), 0);
	assert_int_equal(res.sent, 16);
	assert_int_equal(res.errors, 0);
}

/* Round the ring: a slot comes back once its skb is freed (the destructor sets it AVAILABLE). */
static void test_wraps_round(void **state)
{
	struct fixture *f = *state;
	struct txring_result res = {0};
	for (unsigned b = 0; b < 10; b++) { /* 160 frames through 64 slots */
		assert_int_equal(txring_fill(&f->r, 16, b * 16), 0);
		kernel_takes(f, 16);
		assert_int_equal(txring_settle(&f->r, 16, 0, &res), 0);
		for (unsigned i = 0; i < f->r.g.frame_nr; i++)
			if (slot(f, i)->tp_status == TP_STATUS_SENDING)
				slot(f, i)->tp_status = TP_STATUS_AVAILABLE;
	}
	assert_int_equal(res.sent, 160);
	assert_int_equal(f->r.head, 160 % 64);
	assert_int_equal(seq_of(f, 159 % 64), 159);
}

/* A slot still in flight is waited for, bounded; one the kernel marked malformed stops the ring. */
static void test_in_flight_and_malformed(void **state)
{
	struct fixture *f = *state;
	struct txring_result res = {0};
	f->r.wait_polls = 2;
	slot(f, 3)->tp_status = TP_STATUS_SENDING;
	assert_int_equal(txring_fill(&f->r, 16, 0), -ETIMEDOUT);
	assert_int_equal(slot(f, 2)->tp_status, TP_STATUS_SEND_REQUEST);
	slot(f, 3)->tp_status = TP_STATUS_AVAILABLE;
	for (unsigned i = 0; i < 3; i++)
		slot(f, i)->tp_status = TP_STATUS_AVAILABLE;
	assert_int_equal(txring_fill(&f->r, 16, 0), 0);
	kernel_takes(f, 2);
	slot(f, 2)->tp_status = TP_STATUS_WRONG_FORMAT;
	assert_int_equal(txring_settle(&f->r, 16, EMSGSIZE, &res), -EPROTO);
	assert_int_equal(res.sent, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_geometry_small_frames),
	    cmocka_unit_test(test_geometry_large_frames),
	    cmocka_unit_test(test_geometry_frame_count),
	    cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batch_all_sent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batch_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batch_stalled, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wraps_round, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_in_flight_and_malformed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
