/* Simulated device side of a split virtqueue. See virtq_sim.h. */
#include "virtq_sim.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(struct virtq_desc) == 16, "descriptor layout (spec 2.7.5)");
_Static_assert(sizeof(struct virtq_used_elem) == 8, "used element layout (spec 2.7.8)");

static int fail(struct virtq_sim *s, const char *why)
{
	if (!s->error)
		s->error = why;
	return -1;
}

bool sim_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

int sim_attach(struct virtq_sim *s, uint64_t desc, uint64_t avail, uint64_t used, uint16_t size, bool event_idx)
{
	memset(s, 0, sizeof(*s));
	s->desc = (struct virtq_desc *)(uintptr_t)desc;
	s->avail = (struct virtq_avail *)(uintptr_t)avail;
	s->used = (struct virtq_used *)(uintptr_t)used;
	/* Byte offsets straight from the spec rather than from the driver's helpers: flags, idx, ring[size]. */
	s->used_event = (le16 *)(uintptr_t)(avail + 4 + 2 * (uint64_t)size);
	s->avail_event = (le16 *)(uintptr_t)(used + 4 + 8 * (uint64_t)size);
	s->size = size;
	s->event_idx = event_idx;
	s->want_kicks = true;
	s->held = calloc(size, sizeof(*s->held));
	s->link = calloc(size, sizeof(*s->link));
	s->chain_n = calloc(size, sizeof(*s->chain_n));
	s->chain_in = calloc(size, sizeof(*s->chain_in));
	if (!s->held || !s->link || !s->chain_n || !s->chain_in) {
		sim_detach(s);
		return -1;
	}
	return 0;
}

void sim_detach(struct virtq_sim *s)
{
	free(s->held);
	free(s->link);
	free(s->chain_n);
	free(s->chain_in);
	s->held = NULL;
	s->link = NULL;
	s->chain_n = NULL;
	s->chain_in = NULL;
}

void sim_reset(struct virtq_sim *s)
{
	memset(s->held, 0, s->size * sizeof(*s->held));
	memset(s->chain_n, 0, s->size * sizeof(*s->chain_n));
	s->held_chains = 0;
	s->last_avail = 0;
	s->used_idx = 0;
	s->published = 0;
	s->want_kicks = true;
}

uint16_t sim_avail_pending(const struct virtq_sim *s)
{
	return (uint16_t)(le16_read(&s->avail->idx) - s->last_avail);
}

int sim_pop_avail(struct virtq_sim *s, struct sim_chain *c)
{
	uint16_t avail_idx = le16_read(&s->avail->idx);

	if (avail_idx == s->last_avail)
		return 0;
	if ((uint16_t)(avail_idx - s->last_avail) > s->size)
		return fail(s, "pop: avail->idx more than a ring ahead of the device");
	__sync_synchronize(); /* idx before the entries it covers */

	uint16_t head = le16_to_cpu(s->avail->ring[s->last_avail & (s->size - 1)]);
	if (head >= s->size)
		return fail(s, "pop: head index out of range");

	memset(c, 0, sizeof(*c));
	c->head = head;
	unsigned n = 0;
	uint64_t out_bytes = 0, in_bytes = 0;
	for (uint16_t i = head;;) {
		if (n == SIM_MAX_SEGS || n == s->size)
			return fail(s, "pop: chain longer than the queue (or than SIM_MAX_SEGS)");
		for (unsigned k = 0; k < n; k++)
			if (c->seg[k].id == i)
				return fail(s, "pop: loop in the descriptor chain");
		if (s->held[i])
			return fail(s, "pop: descriptor is still held by the device");
		const struct virtq_desc *d = &s->desc[i];
		struct sim_seg *g = &c->seg[n++];
		g->id = i;
		g->flags = le16_to_cpu(d->flags);
		g->addr = le64_to_cpu(d->addr);
		g->len = le32_to_cpu(d->len);
		if (g->flags & VIRTQ_DESC_F_INDIRECT)
			return fail(s, "pop: INDIRECT descriptor without VIRTIO_F_INDIRECT_DESC");
		if (g->flags & VIRTQ_DESC_F_WRITE) {
			c->n_in++;
			in_bytes += g->len;
		} else {
			if (c->n_in)
				return fail(s, "pop: device-readable descriptor after a writable one");
			c->n_out++;
			out_bytes += g->len;
		}
		if (!(g->flags & VIRTQ_DESC_F_NEXT))
			break;
		i = le16_to_cpu(d->next);
		if (i >= s->size)
			return fail(s, "pop: next index out of range");
	}
	if (out_bytes > UINT32_MAX || in_bytes > UINT32_MAX)
		return fail(s, "pop: chain of 4 GiB or more (the simulator keeps byte counts in 32 bits)");
	c->out_bytes = (uint32_t)out_bytes;
	c->in_bytes = (uint32_t)in_bytes;

	for (unsigned k = 0; k < n; k++) {
		s->held[c->seg[k].id] = 1;
		s->link[c->seg[k].id] = k + 1 < n ? c->seg[k + 1].id : 0;
	}
	s->chain_n[head] = (uint16_t)n;
	s->chain_in[head] = c->in_bytes;
	s->held_chains++;
	s->last_avail++;
	s->pops++;
	if (s->event_idx && s->want_kicks)
		le16_write(s->avail_event, s->last_avail);
	return 1;
}

/* The device gives back (or drops) a chain it holds: its descriptors may be posted again. */
static void release(struct virtq_sim *s, uint16_t head)
{
	uint16_t i = head;
	for (uint16_t k = 0; k < s->chain_n[head]; k++) {
		s->held[i] = 0;
		i = s->link[i];
	}
	s->chain_n[head] = 0;
	s->held_chains--;
}

void sim_hostile_used(struct virtq_sim *s, uint32_t id, uint32_t len)
{
	if (id < s->size && s->chain_n[id])
		release(s, (uint16_t)id);
	struct virtq_used_elem *e = &s->used->ring[s->used_idx & (s->size - 1)];
	le32_write(&e->id, id);
	le32_write(&e->len, len);
	s->used_idx++;
}

int sim_push_used(struct virtq_sim *s, uint16_t head, uint32_t len)
{
	if (head >= s->size || !s->chain_n[head])
		return fail(s, "push_used: not the head of a chain the device holds");
	if (len > s->chain_in[head])
		return fail(s, "push_used: len exceeds the chain's writable bytes");
	s->completions++;
	sim_hostile_used(s, head, len);
	return 0;
}

bool sim_flush(struct virtq_sim *s)
{
	uint16_t old = s->published, new_idx = s->used_idx;
	bool irq;

	if (old == new_idx)
		return false;
	__sync_synchronize(); /* entries before the index that exposes them */
	le16_write(&s->used->idx, new_idx);
	s->published = new_idx;
	s->flushes++;
	__sync_synchronize(); /* index store before reading the driver's suppression state */
	uint16_t flags = le16_read(&s->avail->flags);
	if (s->event_idx) {
		if (flags != 0)
			fail(s, "flush: avail->flags must be 0 with EVENT_IDX (spec 2.7.7.1)");
		irq = sim_need_event(le16_read(s->used_event), new_idx, old);
	} else {
		if (flags > VIRTQ_AVAIL_F_NO_INTERRUPT)
			fail(s, "flush: avail->flags must be 0 or 1 (spec 2.7.7.1)");
		irq = !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
	}
	if (irq)
		s->interrupts++;
	return irq;
}

void sim_want_kicks(struct virtq_sim *s, bool want)
{
	s->want_kicks = want;
	if (s->event_idx) {
		le16_write(s->avail_event, want ? s->last_avail : (uint16_t)(s->last_avail - 1));
	} else {
		uint16_t flags = le16_read(&s->used->flags);
		flags = want ? (uint16_t)(flags & ~VIRTQ_USED_F_NO_NOTIFY) : (uint16_t)(flags | VIRTQ_USED_F_NO_NOTIFY);
		le16_write(&s->used->flags, flags);
	}
	__sync_synchronize(); /* suppression state before the device re-reads avail->idx */
}

void sim_hostile_set_used_idx(struct virtq_sim *s, uint16_t idx)
{
	le16_write(&s->used->idx, idx);
	s->used_idx = idx;
	s->published = idx;
}

void sim_set_avail_event(struct virtq_sim *s, uint16_t v)
{
	le16_write(s->avail_event, v);
}
