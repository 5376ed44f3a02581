/* Simulated device side of a packed virtqueue. See virtq_psim.h. */
#include "virtq_psim.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(struct virtq_packed_desc) == 16, "packed descriptor layout (spec 2.8.13)");
_Static_assert(sizeof(struct virtq_event) == 4, "event suppression layout (spec 2.8.14)");

#define BOTH (VIRTQ_PACKED_DESC_F_AVAIL | VIRTQ_PACKED_DESC_F_USED)

static int fail(struct virtq_psim *s, const char *why)
{
	if (!s->error)
		s->error = why;
	return -1;
}

static void step(const struct virtq_psim *s, uint16_t *pos, uint8_t *wrap, unsigned by)
{
	unsigned p = *pos + by;
	while (p >= s->size) {
		p -= s->size;
		*wrap ^= 1;
	}
	*pos = (uint16_t)p;
}

/* Available in the lap with the device's avail wrap counter w: AVAIL == w, USED != w (§2.8.1). */
static bool is_avail(uint16_t flags, uint8_t w) { return (flags & BOTH) == (w ? VIRTQ_PACKED_DESC_F_AVAIL : VIRTQ_PACKED_DESC_F_USED); }

uint16_t psim_used_bits(const struct virtq_psim *s) { return s->used_wrap ? BOTH : 0; }

int psim_attach(struct virtq_psim *s, uint64_t ring, uint64_t driver_event, uint64_t device_event, uint16_t size,
		bool event_idx)
{
	memset(s, 0, sizeof(*s));
	s->ring = (struct virtq_packed_desc *)(uintptr_t)ring;
	s->driver_event = (struct virtq_event *)(uintptr_t)driver_event;
	s->device_event = (struct virtq_event *)(uintptr_t)device_event;
	s->size = size;
	s->event_idx = event_idx;
	s->chain_n = calloc(size, sizeof(*s->chain_n));
	s->chain_in = calloc(size, sizeof(*s->chain_in));
	s->pend_pos = calloc(size, sizeof(*s->pend_pos));
	s->pend_flags = calloc(size, sizeof(*s->pend_flags));
	if (!s->chain_n || !s->chain_in || !s->pend_pos || !s->pend_flags) {
		psim_detach(s);
		return -1;
	}
	psim_reset(s);
	return 0;
}

void psim_detach(struct virtq_psim *s)
{
	free(s->chain_n);
	free(s->chain_in);
	free(s->pend_pos);
	free(s->pend_flags);
	s->chain_n = NULL;
	s->chain_in = NULL;
	s->pend_pos = NULL;
	s->pend_flags = NULL;
}

void psim_reset(struct virtq_psim *s)
{
	memset(s->chain_n, 0, s->size * sizeof(*s->chain_n));
	s->held_chains = 0;
	s->npend = 0;
	s->avail_pos = s->used_pos = s->signalled_pos = 0;
	s->avail_wrap = s->used_wrap = s->signalled_wrap = 1;
	psim_want_kicks(s, true);
}

/* Reads the chain at (pos, w) without taking it: descriptors, or 0 if none is available, -1 if malformed. */
static int peek(struct virtq_psim *s, uint16_t pos, uint8_t w, struct sim_chain *c)
{
	memset(c, 0, sizeof(*c));
	if (!is_avail(le16_read(&s->ring[pos].flags), w))
		return 0;
	__sync_synchronize(); /* the head's flags before the rest of the chain */
	uint64_t out_bytes = 0, in_bytes = 0;
	unsigned n = 0;
	for (;;) {
		if (n == SIM_MAX_SEGS || n == s->size)
			return fail(s, "pop: chain longer than the queue (or than SIM_MAX_SEGS)");
		const struct virtq_packed_desc *d = &s->ring[pos];
		struct sim_seg *g = &c->seg[n++];
		g->id = pos;
		g->flags = le16_read(&d->flags);
		g->addr = le64_to_cpu(d->addr);
		g->len = le32_to_cpu(d->len);
		if (!is_avail(g->flags, w))
			return fail(s, "pop: descriptor in a chain not available (flags or wrap counter wrong)");
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
		uint16_t id = le16_read(&d->id);
		if (n > 1 && id != c->head)
			return fail(s, "pop: descriptors of one chain carry different buffer ids");
		c->head = id;
		step(s, &pos, &w, 1);
		if (!(g->flags & VIRTQ_DESC_F_NEXT))
			break;
	}
	if (c->head >= s->size)
		return fail(s, "pop: buffer id out of range");
	if (s->chain_n[c->head])
		return fail(s, "pop: buffer id still held by the device");
	if (out_bytes > UINT32_MAX || in_bytes > UINT32_MAX)
		return fail(s, "pop: chain of 4 GiB or more");
	c->out_bytes = (uint32_t)out_bytes;
	c->in_bytes = (uint32_t)in_bytes;
	return 1;
}

int psim_pop(struct virtq_psim *s, struct sim_chain *c)
{
	int rc = peek(s, s->avail_pos, s->avail_wrap, c);
	if (rc <= 0)
		return rc;
	unsigned n = c->n_out + c->n_in;
	s->chain_n[c->head] = (uint16_t)n;
	s->chain_in[c->head] = c->in_bytes;
	s->held_chains++;
	step(s, &s->avail_pos, &s->avail_wrap, n);
	s->pops++;
	if (s->want_kicks)
		psim_want_kicks(s, true);
	return 1;
}

unsigned psim_avail_pending(const struct virtq_psim *s)
{
	struct virtq_psim copy = *s; /* peek only fails through copy.error */
	uint16_t pos = s->avail_pos;
	uint8_t w = s->avail_wrap;
	unsigned n = 0, slots = 0;
	struct sim_chain c;

	while (slots < s->size && peek(&copy, pos, w, &c) == 1) {
		step(s, &pos, &w, c.n_out + c.n_in);
		slots += c.n_out + c.n_in;
		n++;
	}
	return n;
}

int psim_push(struct virtq_psim *s, uint16_t id, uint32_t len)
{
	if (id >= s->size || !s->chain_n[id])
		return fail(s, "push: not a buffer id the device holds");
	if (len > s->chain_in[id])
		return fail(s, "push: len exceeds the chain's writable bytes");
	struct virtq_packed_desc *d = &s->ring[s->used_pos];
	le16_write(&d->id, id);
	le32_write(&d->len, len);
	s->pend_pos[s->npend] = s->used_pos;
	s->pend_flags[s->npend++] = psim_used_bits(s);
	step(s, &s->used_pos, &s->used_wrap, s->chain_n[id]);
	s->chain_n[id] = 0;
	s->held_chains--;
	s->completions++;
	return 0;
}

bool psim_flush(struct virtq_psim *s)
{
	if (!s->npend)
		return false;
	__sync_synchronize(); /* ids and lengths before the flags that expose them */
	for (unsigned i = 0; i < s->npend; i++)
		le16_write(&s->ring[s->pend_pos[i]].flags, s->pend_flags[i]);
	s->npend = 0;
	s->flushes++;
	__sync_synchronize(); /* flags stores before reading the driver's suppression state */

	uint16_t old = s->signalled_pos, new_pos = s->used_pos;
	if (s->signalled_wrap != s->used_wrap)
		old = (uint16_t)(old - s->size); /* the previous lap counts as negative */
	s->signalled_pos = s->used_pos;
	s->signalled_wrap = s->used_wrap;
	uint16_t flags = le16_read(&s->driver_event->flags), off_wrap = le16_read(&s->driver_event->off_wrap);
	bool irq;
	if (flags == VIRTQ_EVENT_F_DISABLE) {
		irq = false;
	} else if (flags == VIRTQ_EVENT_F_ENABLE) {
		irq = true;
	} else if (flags == VIRTQ_EVENT_F_DESC && s->event_idx) {
		uint16_t off = off_wrap & 0x7fff;
		if ((off_wrap >> 15) != s->used_wrap)
			off = (uint16_t)(off - s->size);
		if ((off_wrap & 0x7fff) >= s->size)
			fail(s, "flush: driver event offset beyond the ring");
		irq = sim_need_event(off, new_pos, old);
	} else {
		fail(s, "flush: driver event flags invalid (DESC needs EVENT_IDX; 3 is reserved)");
		irq = true;
	}
	if (irq)
		s->interrupts++;
	return irq;
}

void psim_want_kicks(struct virtq_psim *s, bool want)
{
	s->want_kicks = want;
	if (!want) {
		le16_write(&s->device_event->flags, VIRTQ_EVENT_F_DISABLE);
	} else if (s->event_idx) {
		le16_write(&s->device_event->off_wrap, (uint16_t)(s->avail_pos | s->avail_wrap << 15));
		__sync_synchronize(); /* offset before the flags that make it count */
		le16_write(&s->device_event->flags, VIRTQ_EVENT_F_DESC);
	} else {
		le16_write(&s->device_event->flags, VIRTQ_EVENT_F_ENABLE);
	}
	__sync_synchronize(); /* suppression state before the device looks at the ring again */
}

void psim_hostile_write(struct virtq_psim *s, uint16_t pos, uint16_t id, uint32_t len, uint16_t flags)
{
	struct virtq_packed_desc *d = &s->ring[pos % s->size];
	if (id < s->size && s->chain_n[id]) {
		s->chain_n[id] = 0;
		s->held_chains--;
	}
	le16_write(&d->id, id);
	le32_write(&d->len, len);
	__sync_synchronize();
	le16_write(&d->flags, flags);
}

void psim_hostile_used(struct virtq_psim *s, uint16_t id, uint32_t len, uint16_t advance)
{
	psim_hostile_write(s, s->used_pos, id, len, psim_used_bits(s));
	step(s, &s->used_pos, &s->used_wrap, advance);
}
