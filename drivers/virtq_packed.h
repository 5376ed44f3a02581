/* Internal to the virtqueue implementation (drivers/virtq.c and drivers/virtq_packed.c): the packed layout's
 * half of each public function, and what both layouts share. Nothing else includes this file. */
#ifndef VIRTQ_PACKED_H
#define VIRTQ_PACKED_H

#include "virtq.h"

/* The three barriers on the ring, for both layouts, and why each is enough on x86, where write-back memory is
 * TSO (loads are not reordered with older loads, stores not with older stores, but a load may pass an older
 * store):
 *  - publish: descriptor (and split: ring-slot) stores before the store that exposes them, avail->idx
 *    (split) or the flags of the batch's first head descriptor (packed); packed also uses it for the
 *    driver event suppression's off_wrap before its flags (store->store: only the compiler must be stopped);
 *  - read used: the load that says an entry is used (split: used->idx, packed: the descriptor's flags)
 *    before the loads of the entry's id and len (load->load: compiler only);
 *  - check event/notify: our index or flags store before the load of the device's suppression state
 *    (avail_event, NO_NOTIFY or the device event suppression structure, or the used ring after re-enabling
 *    interrupts) (store->load: needs a real fence). */
#define virtq_barrier_publish() __asm__ volatile("" ::: "memory")
#define virtq_barrier_read_used() __asm__ volatile("" ::: "memory")
#define virtq_barrier_check_event() __asm__ volatile("mfence" ::: "memory")

/* Lays the packed ring out in vq->desc's memory and resets the layout's state (ring memory already zeroed). */
void virtq_packed_layout(struct virtq *vq);
void virtq_packed_reset_state(struct virtq *vq);

/* Writes a chain of n descriptors (the first out_n device-readable) under a free buffer id and returns the id.
 * The caller has checked there is room and does the common bookkeeping. */
uint16_t virtq_packed_write(struct virtq *vq, const struct virtq_sg *sg, unsigned out_n, unsigned n);
/* Hands the batch added since the last publish to the device (before the check-event barrier). */
void virtq_packed_expose(struct virtq *vq);
/* After the check-event barrier: whether the device wants a notification for the batch (device event
 * suppression); ends the batch. */
int virtq_packed_need_kick(struct virtq *vq);
/* The chains the device has returned, as a count comparable with avail_idx (the role of used->idx for the
 * stall watchdog). */
uint16_t virtq_packed_dev_used(struct virtq *vq);

int virtq_packed_get_used(struct virtq *vq, uint16_t *id, uint32_t *len);
void virtq_packed_disable_cb(struct virtq *vq);
void virtq_packed_enable_cb(struct virtq *vq);
int virtq_packed_enable_cb_delayed(struct virtq *vq, uint16_t after);

/* A rejected device entry: counted by the caller; the queue breaks after VIRTQ_BROKEN_THRESHOLD of them. */
static inline void virtq_violation(struct virtq *vq)
{
	if (++vq->violations >= VIRTQ_BROKEN_THRESHOLD)
		vq->broken = 1;
}

#endif
