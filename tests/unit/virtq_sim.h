/* A simulated virtio device for host unit tests: it plays the device side of a split virtqueue (virtio 1.x
 * §2.7) on the same ring memory the driver (drivers/virtq.c) uses.
 *
 * It sees only what a device sees: the three ring addresses, the queue size and whether VIRTIO_F_EVENT_IDX
 * was negotiated. It reads the available ring and the descriptor table, writes the used ring, and decides
 * interrupts and notification suppression exactly as the spec says. A well-behaved API (pop, push, flush)
 * checks the driver's side of the protocol and records the first violation in `error`; a hostile API writes
 * whatever a buggy or malicious device might. */
#ifndef VIRTQ_SIM_H
#define VIRTQ_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "virtq.h"

#define SIM_MAX_SEGS 16 /* longest chain the simulator accepts */

struct sim_seg {
	uint16_t id;    /* descriptor index */
	uint16_t flags; /* as found in the table */
	uint64_t addr;
	uint32_t len;
};

/* One chain taken from the available ring: seg[0 .. n_out) device-readable, then seg[n_out .. n_out + n_in)
 * device-writable. */
struct sim_chain {
	uint16_t head;
	unsigned n_out, n_in;
	uint32_t out_bytes, in_bytes;
	struct sim_seg seg[SIM_MAX_SEGS];
};

struct virtq_sim {
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
	le16 *used_event;  /* after avail->ring[size], written by the driver */
	le16 *avail_event; /* after used->ring[size], written by the device */
	uint16_t size;
	bool event_idx;

	uint16_t last_avail; /* next available ring entry to read */
	uint16_t used_idx;   /* next used slot to write; runs ahead of used->idx until sim_flush */
	uint16_t published;  /* used->idx as last written */
	bool want_kicks;

	/* The device's own record of chains it holds (taken, not yet returned). */
	uint8_t *held;      /* per descriptor */
	uint16_t *link;     /* per descriptor: next in its held chain, as read when taken */
	uint16_t *chain_n;  /* per head: descriptors in the held chain, 0 if not a held head */
	uint32_t *chain_in; /* per head: writable bytes */
	unsigned held_chains;

	unsigned long pops, completions, flushes, interrupts;
	const char *error; /* first driver-side protocol violation seen, or NULL */
};

/* The spec's vring_need_event (§2.7.7.2, §2.7.10): true if the index moving from old to new_idx passed
 * event, i.e. event lies in [old, new_idx) modulo 2^16. */
bool sim_need_event(uint16_t event, uint16_t new_idx, uint16_t old);

/* Attaches to rings at the given addresses (as the transport would tell a device). 0, or -1 on allocation
 * failure. The device starts wanting kicks. */
int sim_attach(struct virtq_sim *s, uint64_t desc, uint64_t avail, uint64_t used, uint16_t size, bool event_idx);
void sim_detach(struct virtq_sim *s);
/* Device reset: forgets held chains, indices back to 0 (the driver reinitialises the memory). */
void sim_reset(struct virtq_sim *s);

/* Takes the next available chain: 1 with *c filled, 0 if the ring is empty, -1 on a driver protocol
 * violation (s->error says which). With EVENT_IDX and kicks wanted, writes avail_event = next index to read. */
int sim_pop_avail(struct virtq_sim *s, struct sim_chain *c);
/* Published entries not yet taken. */
uint16_t sim_avail_pending(const struct virtq_sim *s);

/* Returns a held chain: writes a used element, not yet visible (see sim_flush). 0, or -1 if head is not a
 * held chain or len exceeds its writable bytes (a test bug; s->error is set). */
int sim_push_used(struct virtq_sim *s, uint16_t head, uint32_t len);
/* Publishes used->idx; returns true if the device raises an interrupt (EVENT_IDX: the index passed
 * used_event; otherwise: VIRTQ_AVAIL_F_NO_INTERRUPT clear). Nothing new: no interrupt. */
bool sim_flush(struct virtq_sim *s);

/* Notification suppression: without EVENT_IDX sets/clears VIRTQ_USED_F_NO_NOTIFY; with it, avail_event =
 * next index to read (want) or one behind it, which the driver cannot pass for 65535 entries (don't). */
void sim_want_kicks(struct virtq_sim *s, bool want);

/* Hostile device, no checks. sim_hostile_used writes any used element (not yet visible); if id happens to be
 * the head of a chain the device holds, the device forgets that chain, so its descriptors may be reposted. */
void sim_hostile_used(struct virtq_sim *s, uint32_t id, uint32_t len);
void sim_hostile_set_used_idx(struct virtq_sim *s, uint16_t idx); /* writes used->idx now */
void sim_set_avail_event(struct virtq_sim *s, uint16_t v);

#endif
