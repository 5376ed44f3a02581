/* Packed virtqueue, driver side (virtio 1.1 §2.8): the packed layout's half of the functions in virtq.c,
 * which does the bookkeeping both layouts share (tokens, lengths, free counts, the stall watchdog). See
 * virtq.h for the contract.
 *
 * One ring of descriptors that both sides write. We make a descriptor available by writing it with
 * AVAIL = our avail wrap counter and USED = its inverse; the device returns a chain by overwriting the slot
 * at its used position with the buffer id, the length written, and AVAIL = USED = its used wrap counter,
 * then moves on by the chain's descriptor count. Both counters start at 1 and flip at each lap (§2.8.1).
 *
 * What the device writes is checked as for split: a used descriptor's id must be one of ours, outstanding and
 * published, and its length within what was posted; and since we know what we last wrote to every slot we
 * expect a used descriptor in, a slot holding neither that nor a used mark is rejected (stats.bad_flags).
 * Unlike split, where every used entry has its own slot, the next used descriptor lies as many slots on as
 * the previous chain had descriptors: an id we cannot trust leaves no way to find it, so a bad id or bad flags
 * mark the queue broken at once (through the device reset path), while a bad length, whose chain we know,
 * counts towards VIRTQ_BROKEN_THRESHOLD as for split. The chain length comes from our own record of the id,
 * never from the ring. */
#include "virtq_packed.h"

#include <errno.h>
#include <string.h>

/* The AVAIL/USED bits of a descriptor we make available in a lap with wrap counter w (§2.8.1). */
static uint16_t virtq_packed_avail_bits(uint8_t w) { return w ? VIRTQ_PACKED_DESC_F_AVAIL : VIRTQ_PACKED_DESC_F_USED; }

/* Used in the lap with wrap counter w: AVAIL and USED both equal to w (§2.8.1). */
static int virtq_packed_is_used(uint16_t flags, uint8_t w)
{
	uint16_t both = VIRTQ_PACKED_DESC_F_AVAIL | VIRTQ_PACKED_DESC_F_USED;
	return (flags & both) == (w ? both : 0);
}

static int virtq_packed_is_avail(uint16_t flags, uint8_t w)
{
	uint16_t both = VIRTQ_PACKED_DESC_F_AVAIL | VIRTQ_PACKED_DESC_F_USED;
	return (flags & both) == virtq_packed_avail_bits(w);
}

static void virtq_packed_step(const struct virtq *vq, uint16_t *pos, uint8_t *wrap, uint16_t by)
{
	uint32_t p = (uint32_t)*pos + by;
	if (p >= vq->size) {
		p -= vq->size;
		*wrap ^= 1;
	}
	*pos = (uint16_t)p;
}

void virtq_packed_layout(struct virtq *vq)
{
	/* §2.8.10 alignment: descriptor ring 16 bytes, event suppression structures 4; both hold here. */
	vq->ring = (struct virtq_packed_desc *)(void *)vq->desc;
	vq->driver_event = (struct virtq_event *)(void *)&vq->ring[vq->size];
	vq->device_event = vq->driver_event + 1;
	vq->avail = NULL;
	vq->used = NULL;
}

void virtq_packed_reset_state(struct virtq *vq)
{
	vq->avail_pos = vq->used_pos = vq->batch_pos = vq->scan_pos = 0;
	vq->avail_wrap = vq->used_wrap = vq->scan_wrap = 1;
	vq->batch_flags = 0;
	vq->batch_descs = 0;
	vq->scan_count = 0;
	/* The zeroed ring reads as "not used" for wrap 1, and zeroed event suppression as ENABLE: interrupts on,
	 * notifications wanted, as for a fresh split ring. */
}

uint16_t virtq_packed_write(struct virtq *vq, const struct virtq_sg *sg, unsigned out_n, unsigned n)
{
	uint16_t id = vq->free_head, pos = vq->avail_pos, head_pos = pos, head_flags = 0;
	uint8_t wrap = vq->avail_wrap;

	vq->free_head = vq->slot[id].next;
	for (unsigned k = 0; k < n; k++) {
		struct virtq_packed_desc *d = &vq->ring[pos];
		uint16_t flags = (uint16_t)((k >= out_n ? VIRTQ_DESC_F_WRITE : 0) | (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0) |
					    virtq_packed_avail_bits(wrap));
		d->addr = cpu_to_le64(sg[k].addr);
		d->len = cpu_to_le32(sg[k].len);
		d->id = cpu_to_le16(id); /* §2.8.6 wants it in the last; every descriptor carries it, as Linux does */
		if (k == 0)
			head_flags = flags;
		else
			le16_write(&d->flags, flags);
		virtq_packed_step(vq, &pos, &wrap, 1);
	}
	/* The device reads descriptors in ring order and stops at the first one not available. The first head
	 * of a batch is left as it was, so the device stops there, and virtq_packed_expose stores its flags at
	 * publish; the heads after it can be stored now, since the device cannot reach them before that. */
	if (vq->batch_descs == 0) {
		vq->batch_pos = head_pos;
		vq->batch_flags = head_flags;
	} else {
		le16_write(&vq->ring[head_pos].flags, head_flags);
	}
	vq->batch_descs = (uint16_t)(vq->batch_descs + n);
	vq->avail_pos = pos;
	vq->avail_wrap = wrap;
	return id;
}

void virtq_packed_expose(struct virtq *vq)
{
	/* Barrier (publish): every descriptor of the batch, and the heads of its later chains, are stored before
	 * the first head's flags, the store that makes the whole batch available. */
	virtq_barrier_publish();
	le16_write(&vq->ring[vq->batch_pos].flags, vq->batch_flags);
}

int virtq_packed_need_kick(struct virtq *vq)
{
	/* The caller's check-event barrier orders the expose store before this load. One 32-bit load reads
	 * off_wrap and flags together: the device writes off_wrap before flags, and a torn pair could pair a
	 * new DESC with a stale offset. */
	uint32_t ev = le32_read((const le32 *)(const void *)vq->device_event);
	uint16_t off_wrap = (uint16_t)ev, flags = (uint16_t)(ev >> 16);
	uint16_t new = vq->avail_pos, old = (uint16_t)(new - vq->batch_descs);

	vq->batch_descs = 0;
	if (!vq->event_idx || flags != VIRTQ_EVENT_F_DESC)
		return flags != VIRTQ_EVENT_F_DISABLE; /* DESC without EVENT_IDX is meaningless: read as ENABLE */
	/* §2.8.10 with EVENT_IDX: notify if the batch covered the slot the device names. Positions of the
	 * previous lap count as negative, so old (possibly in the previous lap) and the event compare in one
	 * 16-bit window, as vring_need_event wants. */
	uint16_t event = (uint16_t)(off_wrap & ~(1u << VIRTQ_EVENT_WRAP_SHIFT));
	if ((off_wrap >> VIRTQ_EVENT_WRAP_SHIFT) != vq->avail_wrap)
		event = (uint16_t)(event - vq->size);
	return virtq_need_event(event, new, old);
}

/* Chain its slot's seq says was added since the last publish: the device cannot have seen it. */
static int virtq_packed_unpublished(const struct virtq *vq, uint16_t id)
{
	return (uint16_t)(vq->slot[id].seq - vq->kicked_idx) < (uint16_t)(vq->avail_idx - vq->kicked_idx);
}

/* A used descriptor whose id can be followed: in range, outstanding, published. */
static int virtq_packed_id_ok(const struct virtq *vq, uint16_t id)
{
	return id < vq->size && vq->slot[id].token && !virtq_packed_unpublished(vq, id);
}

uint16_t virtq_packed_dev_used(struct virtq *vq)
{
	/* The cursor stays within [last_used_idx, kicked_idx] in chains; behind it (get_used consumed past it)
	 * or ahead of it (a reset), it restarts at the consumer. Each used descriptor is walked once, so the
	 * cost per publish or tick is the chains returned since the last look. Only what can be followed is
	 * walked (get_used will reject the rest, or has already). */
	if ((uint16_t)(vq->scan_count - vq->last_used_idx) > (uint16_t)(vq->kicked_idx - vq->last_used_idx)) {
		vq->scan_pos = vq->used_pos;
		vq->scan_wrap = vq->used_wrap;
		vq->scan_count = vq->last_used_idx;
	}
	while (vq->scan_count != vq->kicked_idx) {
		const struct virtq_packed_desc *d = &vq->ring[vq->scan_pos];
		if (!virtq_packed_is_used(le16_read(&d->flags), vq->scan_wrap))
			break;
		virtq_barrier_read_used();
		uint16_t id = le16_read(&d->id);
		if (!virtq_packed_id_ok(vq, id))
			break;
		virtq_packed_step(vq, &vq->scan_pos, &vq->scan_wrap, vq->slot[id].chain_len);
		vq->scan_count++;
	}
	return vq->scan_count;
}

int virtq_packed_has_used(const struct virtq *vq)
{
	uint16_t flags = le16_read(&vq->ring[vq->used_pos].flags);

	if (virtq_packed_is_used(flags, vq->used_wrap))
		return 1;
	/* A published slot holding neither our descriptor nor a used one: work for get_used, which rejects it
	 * (a poller told "nothing" would never find out). */
	return vq->kicked_idx != vq->last_used_idx && !virtq_packed_is_avail(flags, vq->used_wrap);
}

static int virtq_packed_reject(struct virtq *vq, uint64_t *counter)
{
	(*counter)++;
	vq->violations++;
	vq->broken = 1;
	return -EIO;
}

int virtq_packed_get_used(struct virtq *vq, uint16_t *id_out, uint32_t *len)
{
	const struct virtq_packed_desc *d = &vq->ring[vq->used_pos];
	uint16_t flags = le16_read(&d->flags);
	/* Published chains outstanding: then the slot at used_pos is one we wrote in this lap (descriptors are
	 * made available and returned in ring order, so it is the first one not yet returned). */
	int published = vq->kicked_idx != vq->last_used_idx;

	if (!virtq_packed_is_used(flags, vq->used_wrap)) {
		/* Without published chains the slot holds whatever the last lap left: any of it means "nothing". */
		if (!published || virtq_packed_is_avail(flags, vq->used_wrap))
			return -EAGAIN;
		return virtq_packed_reject(vq, &vq->stats.bad_flags);
	}
	if (!published)
		return virtq_packed_reject(vq, &vq->stats.bad_not_outstanding); /* a completion nobody asked for */
	/* Barrier (read used): the flags that say "used" are loaded before the id and length they cover. */
	virtq_barrier_read_used();
	uint16_t id = le16_read(&d->id);
	*len = le32_read(&d->len);
	if (id >= vq->size)
		return virtq_packed_reject(vq, &vq->stats.bad_id);
	if (!virtq_packed_id_ok(vq, id))
		return virtq_packed_reject(vq, &vq->stats.bad_not_outstanding);
	virtq_packed_step(vq, &vq->used_pos, &vq->used_wrap, vq->slot[id].chain_len);
	*id_out = id;
	return 0;
}

void virtq_packed_disable_cb(struct virtq *vq)
{
	/* One store of a constant, no copy kept: a handler's disable racing the main loop's enable leaves
	 * whatever was written last, meant as written, never a copy and a ring that disagree. */
	le16_write(&vq->driver_event->flags, VIRTQ_EVENT_F_DISABLE);
}

/* Asks for an interrupt when the device returns the descriptor at pos in the lap with wrap counter w
 * (EVENT_IDX), or for every used descriptor (without). */
static void virtq_packed_arm(struct virtq *vq, uint16_t pos, uint8_t w)
{
	if (vq->event_idx) {
		le16_write(&vq->driver_event->off_wrap, (uint16_t)(pos | (uint16_t)w << VIRTQ_EVENT_WRAP_SHIFT));
		/* Barrier (publish): the offset is stored before the flags that tell the device to use it. */
		virtq_barrier_publish();
		le16_write(&vq->driver_event->flags, VIRTQ_EVENT_F_DESC);
	} else {
		le16_write(&vq->driver_event->flags, VIRTQ_EVENT_F_ENABLE);
	}
}

void virtq_packed_enable_cb(struct virtq *vq)
{
	/* The caller then fences (check event) and re-checks for used descriptors: a completion that landed
	 * before the device could see the flags would otherwise wait without an interrupt. */
	virtq_packed_arm(vq, vq->used_pos, vq->used_wrap);
}

int virtq_packed_enable_cb_delayed(struct virtq *vq, uint16_t after)
{
	uint16_t pos = vq->used_pos;
	uint8_t w = vq->used_wrap;

	/* `after` (>= 2, at most the chains outstanding) is counted in chains; the event is a slot. They agree
	 * when every outstanding chain is one descriptor (receive buffers), the case that coalesces; otherwise
	 * the caller's plain enable is exact. */
	if ((uint16_t)(vq->size - vq->num_free) != (uint16_t)(vq->avail_idx - vq->last_used_idx))
		return -1;
	virtq_packed_step(vq, &pos, &w, (uint16_t)(after - 1));
	virtq_packed_arm(vq, pos, w);
	/* Barrier (check event): the flags store before the load of the slot; if the device already returned
	 * it, the interrupt may have been decided without our event, and the caller must poll. */
	virtq_barrier_check_event();
	return virtq_packed_is_used(le16_read(&vq->ring[pos].flags), w);
}
