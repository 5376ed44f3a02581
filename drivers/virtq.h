/* Virtqueues, driver side: split (virtio 1.x §2.7, this file's layout and drivers/virtq.c) and packed (virtio
 * 1.1 §2.8, drivers/virtq_packed.c) behind one API. The layout is chosen at virtq_init (VIRTQ_INIT_PACKED, i.e.
 * VIRTIO_F_RING_PACKED negotiated) and nothing above this interface knows which one it runs on.
 *
 * Split: the rings live in one block of identity-mapped memory laid out as the legacy interface requires (descriptor
 * table, available ring, then the used ring on the next 4096-byte boundary), which also satisfies the modern
 * interface's alignments, so both transports share one layout.
 *
 * Packed: one descriptor ring that both sides write (the driver makes descriptors available with the AVAIL/USED
 * flag bits and its wrap counter, the device overwrites them as used), plus the driver and device event
 * suppression structures (§2.8.10) in place of used_event/avail_event and the two flags words.
 *
 * Nothing the device writes is trusted: every used entry is checked (id in range and currently outstanding,
 * length within what was posted) before use; a bad entry is rejected and counted, and after
 * VIRTQ_BROKEN_THRESHOLD violations the queue is marked broken and returns nothing more.
 *
 * Not reentrant: one queue is used from one context (the main loop) at a time. Interrupt handlers only call
 * virtq_disable_cb(); the read-modify-write of the interrupt flag is done with interrupts masked, so such a
 * handler cannot slip in between the main loop's update of our copy of the flags and its store to the ring. */
#ifndef VIRTQ_H
#define VIRTQ_H

#include <stddef.h>
#include <stdint.h>

#include "virtio_le.h"

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

/* Packed ring (§2.8): descriptor flag bits beside NEXT/WRITE/INDIRECT, and the event suppression flags. */
#define VIRTQ_PACKED_DESC_F_AVAIL (1u << 7)
#define VIRTQ_PACKED_DESC_F_USED (1u << 15)
#define VIRTQ_EVENT_F_ENABLE 0
#define VIRTQ_EVENT_F_DISABLE 1
#define VIRTQ_EVENT_F_DESC 2 /* only with VIRTIO_F_RING_EVENT_IDX */
#define VIRTQ_EVENT_WRAP_SHIFT 15 /* off_wrap: descriptor offset in bits 0-14, wrap counter in bit 15 */

/* virtq_init flags: what was negotiated. VIRTQ_INIT_EVENT_IDX is 1, so a 0/1 "has EVENT_IDX" works too. */
#define VIRTQ_INIT_EVENT_IDX 1u
#define VIRTQ_INIT_PACKED 2u

#define VIRTQ_MAX_SIZE 32768
#define VIRTQ_BROKEN_THRESHOLD 16
#define VIRTQ_LEGACY_ALIGN 4096
/* virtq_kick_overdue: a queue that stays stalled is notified again after 2, 4, 8, ... ticks, the last time
 * this many ticks after the one before (6 tries, 126 ticks in all); then not until the next publish. */
#define VIRTQ_KICK_BACKOFF_MAX 64

struct virtq_desc {
	le64 addr;
	le32 len;
	le16 flags;
	le16 next;
};

struct virtq_avail {
	le16 flags;
	le16 idx;
	le16 ring[]; /* then le16 used_event (VIRTIO_F_EVENT_IDX) */
};

struct virtq_used_elem {
	le32 id; /* head of the used descriptor chain (le32 for padding reasons, spec §2.7.8) */
	le32 len; /* bytes written into the chain's device-writable buffers */
};

struct virtq_used {
	le16 flags;
	le16 idx;
	struct virtq_used_elem ring[]; /* then le16 avail_event (VIRTIO_F_EVENT_IDX) */
};

/* A packed-ring descriptor (§2.8.13): the driver writes it available, the device overwrites it used. */
struct virtq_packed_desc {
	le64 addr;
	le32 len;
	le16 id;    /* buffer id: ours, returned by the device in the used descriptor */
	le16 flags; /* NEXT, WRITE, AVAIL, USED */
};

/* Packed-ring event suppression structure (§2.8.10): the driver's says when the device should interrupt,
 * the device's says when the driver should notify. */
struct virtq_event {
	le16 off_wrap;
	le16 flags; /* VIRTQ_EVENT_F_* */
};

/* One buffer of a chain: device-readable ("out") buffers come first, then device-writable ("in") ones. */
struct virtq_sg {
	uint64_t addr;
	uint32_t len;
};

struct virtq_stats {
	uint64_t added;        /* chains posted */
	uint64_t used;         /* good used entries returned */
	uint64_t kicks;        /* notifications the device asked for */
	uint64_t kicks_suppressed; /* publishes after which the device did not want a notification */
	uint64_t bad_id;       /* used id >= queue size */
	uint64_t bad_not_outstanding; /* used id not a posted head (duplicate or invented completion) */
	uint64_t bad_len;      /* used len larger than the writable space posted (chains with a writable part) */
	uint64_t len_ignored;  /* nonzero used len on a chain with no writable part: ignored (reported as 0), not a
				* violation, since a device has nothing to report there and some report the bytes read */
	uint64_t bad_idx;      /* used->idx ran more than a ring ahead of what we consumed */
	uint64_t full;         /* virtq_add refused: no free descriptors */
	uint64_t kicks_overdue; /* virtq_kick_overdue said: notify again, the device did nothing since a publish */
	uint64_t bad_flags;    /* packed: a descriptor we made available carries AVAIL/USED bits that neither we
				* nor a device following the protocol could have written there */
};

/* The driver's own record of a descriptor (packed: of a buffer id). For a chain's head: the caller's token
 * (NULL = not outstanding), the descriptors in the chain and the device-writable bytes posted, and (packed)
 * avail_idx when it was added (seq), which tells a chain not yet published from one the device may return.
 * For every descriptor: its free-list/chain link (packed: the free buffer-id list), kept here because the
 * device can write guest memory, so the driver never follows a link it reads back from the shared table. */
struct virtq_slot {
	void *token;
	uint32_t in_len;
	uint16_t chain_len;
	uint16_t seq;
	uint16_t next;
};

struct virtq {
	uint16_t index; /* queue number on the device */
	uint16_t size;  /* entries, a power of two */
	int event_idx;  /* VIRTIO_F_EVENT_IDX negotiated */
	int broken;
	uint32_t violations;

	int packed;     /* packed layout (VIRTQ_INIT_PACKED) */

	struct virtq_desc *desc;  /* split: the descriptor table; both layouts: the start of the rings' memory */
	struct virtq_avail *avail; /* split only */
	struct virtq_used *used;   /* split only */

	/* Packed layout (drivers/virtq_packed.c). Positions are ring slots; wrap counters start at 1 (§2.8.1). */
	struct virtq_packed_desc *ring;
	struct virtq_event *driver_event; /* ours: when the device interrupts us */
	struct virtq_event *device_event; /* the device's: when we notify it */
	uint16_t avail_pos, used_pos;     /* next slot to make available / to look for a used descriptor in */
	uint8_t avail_wrap, used_wrap;
	uint16_t batch_pos;   /* head slot of the first chain added since the last publish ... */
	uint16_t batch_flags; /* ... and its flags, stored by virtq_publish, which hands the whole batch over */
	uint16_t batch_descs; /* descriptors added since the last publish */
	uint16_t scan_pos, scan_count; /* watchdog cursor: slot and chain count up to which the device has */
	uint8_t scan_wrap;             /* returned chains (see virtq_packed_dev_used) */

	uint16_t free_head;     /* first free descriptor (packed: first free buffer id) */
	uint16_t num_free;      /* free descriptors (both layouts) */
	uint16_t avail_idx;     /* our copy of avail->idx: the next slot to fill (packed: chains added) */
	uint16_t kicked_idx;    /* avail_idx at the last notification check (EVENT_IDX window start) */
	uint16_t last_used_idx; /* next used entry to consume (packed: chains consumed) */
	uint16_t avail_flags;   /* our copy of avail->flags: changed and stored only in virtq_set_avail_flags */

	/* Stall watchdog (virtq_kick_overdue). */
	uint16_t wd_used;       /* used->idx when armed, or at the last progress seen */
	uint16_t wd_base;       /* avail index published before the publish that armed the watchdog */
	uint8_t wd_armed;       /* published chains are outstanding: the device owes us progress */
	uint8_t wd_stamped;     /* wd_tick is set (a publish is stamped at the watchdog's next look) */
	uint8_t wd_clock_valid; /* wd_clock is set */
	uint32_t wd_wait;       /* ticks from wd_tick to the next notification (doubles while stalled) */
	uint64_t wd_tick;       /* lower bound of when the device last owed/made progress, or last re-kick */
	uint64_t wd_clock;      /* the tick of the watchdog's previous look */

	/* Transport's per-queue state: where to write a notification (modern PCI: checked and cached at
	 * queue setup; 0 for transports that do not use it). */
	uintptr_t notify_addr;

	/* Per descriptor (packed: per buffer id), one entry each (struct virtq_slot). */
	struct virtq_slot *slot;
	uint16_t in_chains;     /* outstanding chains with a device-writable part */

	struct virtq_stats stats;
};

/* Bytes needed for a queue of size entries (legacy-compatible split layout, which is larger than the packed
 * one: the same block serves both), to be allocated aligned to 4096. */
size_t virtq_mem_size(uint16_t size);

/* Lays the rings out in mem (zeroed, 4096-aligned, virtq_mem_size bytes) and allocates the side tables.
 * flags: VIRTQ_INIT_EVENT_IDX and/or VIRTQ_INIT_PACKED, as negotiated. Returns 0, -EINVAL (size not a power
 * of two or too large) or -ENOMEM. */
int virtq_init(struct virtq *vq, uint16_t index, uint16_t size, void *mem, unsigned flags);
void virtq_destroy(struct virtq *vq);

static inline int virtq_is_packed(const struct virtq *vq) { return vq->packed; }

/* Physical (== virtual) addresses of the three parts, for the transport: descriptor table / available ring /
 * used ring (split), or descriptor ring / driver event suppression / device event suppression (packed):
 * the modern PCI transport's queue_desc, queue_driver and queue_device either way. */
uint64_t virtq_desc_addr(const struct virtq *vq);
uint64_t virtq_avail_addr(const struct virtq *vq);
uint64_t virtq_used_addr(const struct virtq *vq);

/* Queues a chain of out_n device-readable then in_n device-writable buffers, with token returned by
 * virtq_get_used. Not visible to the device until virtq_publish. Returns 0, -ENOSPC (ring full),
 * -EINVAL (empty chain, NULL token) or -EIO (queue broken). */
int virtq_add(struct virtq *vq, const struct virtq_sg *sg, unsigned out_n, unsigned in_n, void *token);

/* One buffer as a chain of its own, device-writable if write (a receive buffer) or else device-readable: the
 * common case on both virtio-net queues, without virtq_add's loop. The same results as virtq_add with one
 * piece. */
int virtq_add_one(struct virtq *vq, uint64_t addr, uint32_t len, int write, void *token);

/* Receive buffers in bulk: posts bufs[0..n) (none NULL), each a device-writable chain of its own of len bytes
 * with the buffer as its token, as many as the ring has room for; returns how many. What n virtq_add_one
 * calls would do, in one pass over the ring. */
unsigned virtq_add_in_bufs(struct virtq *vq, void *const *bufs, unsigned n, uint32_t len);

/* Makes everything added so far visible to the device and returns 1 if the device must be notified
 * (EVENT_IDX avail_event crossed, or NO_NOTIFY clear), else 0. */
int virtq_publish(struct virtq *vq);

/* Next used chain: 0 with *token and *len set (*len is 0 for a chain with no device-writable part, whatever
 * the device wrote there; see stats.len_ignored); -EAGAIN when none is pending; -EIO when the entry was
 * rejected (then *token is the chain's token if its descriptors could be reclaimed — bad length — so the
 * caller can recycle it, else NULL); -ENODEV when the queue is broken. */
int virtq_get_used(struct virtq *vq, void **token, uint32_t *len);

/* True if the device has returned entries not yet consumed. False on a broken queue (nothing more will be
 * returned from it, so a poller must not be told there is work). Inline: pollers ask it before every
 * virtq_get_used that would otherwise only find the ring empty. */
int virtq_packed_has_used(const struct virtq *vq); /* the packed layout's half (drivers/virtq_packed.c) */
static inline int virtq_has_used(const struct virtq *vq)
{
	if (vq->broken)
		return 0;
	return vq->packed ? virtq_packed_has_used(vq) : le16_read(&vq->used->idx) != vq->last_used_idx;
}

/* The device's count of chains returned so far (consumed or not), modulo 2^16: used->idx for split; for packed
 * as far as the ring shows used descriptors we can follow (walked incrementally, each once). For progress
 * checks (a count that did not move in a tick); never a reason to trust an entry. */
uint16_t virtq_device_used(struct virtq *vq);

/* True once the queue is broken (a garbage used->idx, or VIRTQ_BROKEN_THRESHOLD bad used entries): it
 * returns nothing more and takes no buffers until the device is reset and virtq_detach_unused has run. */
int virtq_is_broken(const struct virtq *vq);

/* The stall watchdog, to be called about once per timer tick with the current tick count: returns 1 (and
 * counts stats.kicks_overdue) when the device must be notified again, because published chains are
 * outstanding and the device has not returned a single one for at least a tick since a publish (the
 * watchdog's look before that publish was at least 2 ticks ago). That covers a lost notification in any
 * state, including a refill of a ring the device had just emptied (both indices moved, nothing returned).
 * Chains with a device-writable part (receive buffers) wait for input, so while such chains are outstanding
 * only a device that has returned everything published before that publish, and nothing since, counts as
 * stalled (it ran dry and waits for the notification); an idle receive queue is not re-kicked. While the
 * stall lasts it returns 1 again after 4, 8, ... VIRTQ_KICK_BACKOFF_MAX ticks, then gives up until the next
 * publish. Pure function of the queue's state: no MMIO, no clock. 0 on a broken queue. */
int virtq_kick_overdue(struct virtq *vq, uint64_t now_tick);

/* Interrupt suppression. disable is cheap and safe from an interrupt handler. enable returns 1 if entries
 * arrived meanwhile (the caller must poll again instead of sleeping, or an interrupt could be lost).
 * enable_delayed asks for the next interrupt only after `after` more entries (EVENT_IDX), which coalesces;
 * `after` is clamped to the chains outstanding (added and not yet returned), since the device can never
 * complete more than those and a used_event beyond them would leave the last ones without an interrupt.
 * On a broken queue enable and enable_delayed leave interrupts off and return 0.
 * With EVENT_IDX an enable arms ONE interrupt (get_used does not move used_event on), so the intended use is
 * the NAPI cycle: disable in the handler, poll, enable when done; without EVENT_IDX interrupts stay on until
 * disable. */
void virtq_disable_cb(struct virtq *vq);
int virtq_enable_cb(struct virtq *vq);
int virtq_enable_cb_delayed(struct virtq *vq, uint16_t after);

/* After a device reset: returns the tokens of all outstanding chains one by one (NULL when done) and puts
 * the queue back to its initial state. */
void *virtq_detach_unused(struct virtq *vq);

#if __STDC_HOSTED__
/* Host builds only (unit tests, fuzzer), which have no interrupts: a test may point this at a stand-in for an
 * interrupt handler. It runs once (the pointer is cleared first) at the point inside virtq_disable_cb /
 * virtq_enable_cb where a real interrupt could arrive between our update of avail_flags and its store to the
 * ring: at once if interrupts are not masked there, else as soon as they are unmasked, as a CPU would. */
extern void (*virtq_host_irq)(struct virtq *vq);
#endif

/* The EVENT_IDX test from the spec (§2.7.7.2 / §2.7.10, vring_need_event): notify if the index moving from
 * old to new_idx passed event_idx, i.e. event_idx lies in [old, new_idx) modulo 2^16. */
static inline int virtq_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}

#endif
