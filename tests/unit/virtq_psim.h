/* A simulated virtio device for host unit tests and the fuzzer: it plays the device side of a packed virtqueue
 * (virtio 1.1 §2.8) on the same ring memory the driver (drivers/virtq.c, virtq_packed.c) uses.
 *
 * It sees only what a device sees: the descriptor ring and the two event suppression structures at the
 * addresses the transport would be given, the queue size and whether VIRTIO_F_EVENT_IDX was negotiated. It
 * reads available descriptors in ring order, writes used descriptors in order (completions may be in any
 * order of buffer ids), and decides interrupts from the driver event suppression structure and asks for
 * notifications through the device one exactly as §2.8.10 says. The well-behaved API (pop, push, flush) checks
 * the driver's side of the protocol and records the first violation in `error`; the hostile API writes
 * whatever a buggy or malicious device might. */
#ifndef VIRTQ_PSIM_H
#define VIRTQ_PSIM_H

#include <stdbool.h>
#include <stdint.h>

#include "virtq.h"
#include "virtq_sim.h" /* struct sim_chain (seg[].id is the ring slot, head the buffer id) */

struct virtq_psim {
	struct virtq_packed_desc *ring;
	struct virtq_event *driver_event; /* read: whether to interrupt */
	struct virtq_event *device_event; /* written: whether we want notifications */
	uint16_t size;
	bool event_idx;

	uint16_t avail_pos, used_pos; /* next slot to read / to write a used descriptor in */
	uint8_t avail_wrap, used_wrap;
	uint16_t signalled_pos; /* used_pos at the last flush (the interrupt decision's "old") */
	uint8_t signalled_wrap;
	bool want_kicks;

	/* Per buffer id: descriptors of the chain the device holds under it (0: none), writable bytes. */
	uint16_t *chain_n;
	uint32_t *chain_in;
	unsigned held_chains;
	/* Used descriptors written by push but not yet made visible (flags) by flush. */
	uint16_t *pend_pos;
	uint16_t *pend_flags;
	unsigned npend;

	unsigned long pops, completions, flushes, interrupts;
	const char *error;
};

int psim_attach(struct virtq_psim *s, uint64_t ring, uint64_t driver_event, uint64_t device_event, uint16_t size,
		bool event_idx);
void psim_detach(struct virtq_psim *s);
void psim_reset(struct virtq_psim *s);

/* Takes the next available chain: 1 with *c filled (c->head = buffer id), 0 if none, -1 on a driver
 * protocol violation. With EVENT_IDX and kicks wanted, asks to be notified at the next slot to read. */
int psim_pop(struct virtq_psim *s, struct sim_chain *c);
/* Chains available and not yet taken (walks, takes nothing). */
unsigned psim_avail_pending(const struct virtq_psim *s);
/* Returns a held chain: writes its used descriptor (id, len) at the used position, flags only at flush.
 * 0, or -1 if id is not held or len exceeds its writable bytes (a test bug). */
int psim_push(struct virtq_psim *s, uint16_t id, uint32_t len);
/* Makes pushed used descriptors visible (flags last); true if the device raises an interrupt. */
bool psim_flush(struct virtq_psim *s);
/* Notification suppression (device event suppression structure). */
void psim_want_kicks(struct virtq_psim *s, bool want);

/* Hostile: writes a complete descriptor at slot pos now (flags last); if it claims a held id, the device
 * forgets that chain. psim_used_bits: AVAIL|USED as a device marks a used descriptor in the current lap. */
void psim_hostile_write(struct virtq_psim *s, uint16_t pos, uint16_t id, uint32_t len, uint16_t flags);
uint16_t psim_used_bits(const struct virtq_psim *s);
/* Hostile: a used descriptor for id at the used position, visible at once, moving on by `advance` slots. */
void psim_hostile_used(struct virtq_psim *s, uint16_t id, uint32_t len, uint16_t advance);

#endif
