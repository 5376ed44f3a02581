/* txring: tools/load's --tx-ring mode, an AF_PACKET PACKET_TX_RING (TPACKET_V2) on the --packet socket.
 *
 * sendmmsg() costs the sender about 1.15 us of CPU per 64-byte frame (the message headers are copied in, each
 * frame is copied into a fresh skb), so against a running guest on a 2-core host the generator topped out
 * near 700 kpps. With a TX ring the frames live in memory shared with the kernel: every slot is built once
 * (rawtx_build()); a batch rewrites only the sequence numbers, marks its slots TP_STATUS_SEND_REQUEST and
 * hands them all over with one send(fd, NULL, 0, MSG_DONTWAIT).
 *
 * Each slot starts with a struct virtio_net_hdr (PACKET_VNET_HDR) that asks for no offload and whose hdr_len
 * is the whole frame, so that tpacket_snd() copies the whole frame into the skb. Without it the kernel copies
 * only the Ethernet header and attaches the rest of the slot as a page fragment marked zero-copy, which veth
 * and tun then copy into a freshly allocated page for every frame (skb_copy_ubufs()): the ring was slower
 * than sendmmsg() that way (763 against 854 kpps into a veth sink), and ~25 % faster with the header.
 *
 * Slots and the kernel. The kernel sends slots in ring order from its own head, each only while it reads
 * exactly TP_STATUS_SEND_REQUEST, sets it TP_STATUS_SENDING, and the skb's destructor sets it back to
 * TP_STATUS_AVAILABLE (possibly with timestamp bits). txring keeps a copy of that head: after every send()
 * the slots it had requested that no longer read SEND_REQUEST are the ones the kernel took (counted `sent`).
 * A slot is rewritten only once it reads available again; a slot still in flight is waited for, bounded
 * (txring.wait_polls polls of TXRING_POLL_US), and then the run fails. (A tap orphans each skb as it queues
 * it, so its slot reads available while the frame waits for QEMU; the frame is a copy in the skb by then.)
 *
 * Frames the device refuses. When the driver refuses a frame (the tap's queue to QEMU is full: tun drops it,
 * or dev_direct_xmit() finds the queue stopped), tpacket_snd() puts that slot back to SEND_REQUEST, leaves
 * its head on it and fails the whole send() with ENOBUFS, even if earlier frames of the batch went out.
 * PACKET_LOSS does not change that: it only lets the kernel skip malformed slots (bad length, bad header)
 * instead of stopping on them with TP_STATUS_WRONG_FORMAT; a driver drop never reaches that path. Left
 * alone, the refused frame would be retried by every later send(): back-pressure, so the generator would
 * offer only what the guest takes. Instead, txring ends the batch at the refusal: the refused frame and the
 * rest of the batch behind it are counted in `errors` (last error ENOBUFS) and their slots are set back to
 * available (nothing else touches a slot between send() calls: only this thread sends on the socket), so the
 * next batch reuses them from the same head. sent + errors stays the number of frames offered. The
 * difference to the sendmmsg() path, which tries each remaining frame of the batch with one more system call
 * per refused frame: frames after a refused one within the same few microseconds are counted lost without
 * being tried. The tap's queue is full at that moment and QEMU empties it a frame at a time, so at most a
 * frame or so per refused batch would have got in, and while the guest is saturated the number the tap
 * accepts is its drain rate either way.
 *
 * A send() that stops for want of socket buffer (EAGAIN, or a short count: skbs of earlier frames not yet
 * freed) leaves the slots requested; txring_send() retries, bounded like the slot wait, then counts the rest
 * as errors with EAGAIN. Any other error (ENETDOWN, ...) counts the rest of the batch like a refusal.
 *
 * The geometry, the slot layout and the bookkeeping after a send() are separate from the socket so that the
 * unit test (tests/unit/test_txring.c) can run them on plain memory. */
#ifndef TOOLS_TXRING_H
#define TOOLS_TXRING_H

#include <stddef.h>
#include <stdint.h>

#include "rawtx.h"

#define TXRING_MIN_FRAMES 4096u
#define TXRING_MAX_BYTES  (64u << 20) /* the largest ring txring_geometry() lays out */
#define TXRING_DATA_OFF   32u         /* TPACKET_ALIGN(sizeof(struct tpacket2_hdr)): where a slot's data starts */
#define TXRING_VNET_LEN   10u         /* the struct virtio_net_hdr in front of each frame (PACKET_VNET_HDR) */
#define TXRING_FRAME_OFF  (TXRING_DATA_OFF + TXRING_VNET_LEN) /* the frame's offset in its slot */
#define TXRING_POLL_US    50u
#define TXRING_WAIT_POLLS 20000u /* x TXRING_POLL_US: a slot may stay in flight for about 1 s */

/* What PACKET_TX_RING is given (struct tpacket_req): frame_nr slots of frame_size bytes, in block_nr blocks
 * of block_size bytes (frame_size divides block_size, so no slot straddles two blocks). */
struct txring_geom {
	unsigned frame_size, frame_nr, block_size, block_nr;
};

/* The ring for frames of frame_len bytes sent batch at a time: frame_size is the smallest power of two >=
 * TXRING_FRAME_OFF + frame_len (at least 64); frame_nr is the larger of TXRING_MIN_FRAMES and 4 batches,
 * rounded up to whole blocks; a block is one page (page_size, a power of two). 0, or -EINVAL (a slot larger
 * than a page, page_size not a power of two, no batch) or -E2BIG (more than TXRING_MAX_BYTES). */
int txring_geometry(unsigned frame_len, unsigned batch, unsigned page_size, struct txring_geom *g);

struct txring {
	int fd;         /* the AF_PACKET socket, not owned: the caller closes it after txring_close() */
	uint8_t *map;   /* the ring, g.frame_nr slots */
	size_t map_len; /* 0 when map is not an mmap() of the socket (the unit test's memory) */
	struct txring_geom g;
	unsigned frame_len;
	unsigned payload;    /* UDP payload bytes; the first 8 carry the sequence number if there are 8 */
	unsigned head;       /* the slot the kernel looks at next: its tx_ring head */
	unsigned wait_polls; /* how many TXRING_POLL_US polls a slot or a stalled send() is waited for */
};

/* What one batch came to. */
struct txring_result {
	unsigned sent;   /* frames the kernel took */
	unsigned errors; /* frames refused or given up: offered and lost */
	int last_errno;  /* the errno behind the last of them */
};

/* Lays the ring out over map (g->frame_nr slots): every slot gets the virtio-net header, the frame for flow
 * (rawtx_build(), IP id = slot number), their length, and TP_STATUS_AVAILABLE; head 0. */
void txring_layout(struct txring *r, uint8_t *map, const struct txring_geom *g, const struct rawtx_flow *flow,
                   unsigned payload);

/* Sets up the TX ring on fd, an AF_PACKET socket bound to ifname (rawtx_open()): PACKET_VNET_HDR, TPACKET_V2,
 * the geometry for frames of payload bytes and batches of batch, mmap(), txring_layout(). Frames larger than
 * ifname's MTU are refused here (the kernel would mark them TP_STATUS_WRONG_FORMAT and stop the ring). 0, or
 * a negative errno with one line on stderr (the caller closes fd). */
int txring_open(struct txring *r, int fd, const char *ifname, const struct rawtx_flow *flow, unsigned payload,
                unsigned batch);

/* Unmaps the ring (the socket is the caller's). */
void txring_close(struct txring *r);

/* Writes sequence numbers seq, seq + 1, ... into the n slots from head on and marks them SEND_REQUEST,
 * waiting (bounded) for any still in flight. 0, or -ETIMEDOUT (slots before the stuck one are left
 * requested: the caller gives up on the ring). n is at most g.frame_nr / 4 (txring_geometry()). */
int txring_fill(struct txring *r, unsigned n, uint64_t seq);

/* The bookkeeping after a send() with `pending` slots requested from head on: moves head past the slots the
 * kernel took (adding them to res->sent). If hard_errno is set, the slots still requested are set available
 * again and counted in res->errors with that errno. Returns the number still requested (0 after hard_errno),
 * or -EPROTO if the kernel marked a slot TP_STATUS_WRONG_FORMAT. */
int txring_settle(struct txring *r, unsigned pending, int hard_errno, struct txring_result *res);

/* One batch: txring_fill(), send(), txring_settle(), retried while send() stalls for socket buffer. res is
 * reset first. 0, or a negative errno (-ETIMEDOUT, -EPROTO) after which the ring is unusable. */
int txring_send(struct txring *r, unsigned n, uint64_t seq, struct txring_result *res);

#endif
