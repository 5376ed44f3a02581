/* Virtqueue, driver side: the public functions, the split layout (virtio 1.x §2.7) and what both layouts
 * share; the packed layout's half of each function is in virtq_packed.c. See virtq.h for the contract. */
#include "virtq.h"
#include "virtq_packed.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Interrupt masking around the read-modify-write of avail_flags and its store (see virtq_set_avail_flags).
 * The kernel masks interrupts; host builds (unit tests, fuzzer) have none, and instead let a test run a
 * stand-in handler at the point where an interrupt could arrive (virtq_irq_window), delivered at once when
 * not masked and at the unmask otherwise, so a test can show the section is closed. -ffreestanding (the
 * kernel build) is what makes __STDC_HOSTED__ 0. */
#if __STDC_HOSTED__
void (*virtq_host_irq)(struct virtq *vq);
static unsigned virtq_host_masked;
static struct virtq *virtq_host_pending;

static void virtq_host_deliver(struct virtq *vq)
{
	void (*handler)(struct virtq *) = virtq_host_irq;
	virtq_host_irq = NULL; /* one interrupt; the handler's own disable must not re-enter it */
	handler(vq);
}

static uint64_t virtq_irq_save(void)
{
	virtq_host_masked++;
	return 0;
}

static void virtq_irq_restore(uint64_t flags)
{
	(void)flags;
	if (--virtq_host_masked == 0 && virtq_host_pending) {
		struct virtq *vq = virtq_host_pending;
		virtq_host_pending = NULL;
		virtq_host_deliver(vq);
	}
}

static void virtq_irq_window(struct virtq *vq)
{
	if (!virtq_host_irq)
		return;
	if (virtq_host_masked)
		virtq_host_pending = vq;
	else
		virtq_host_deliver(vq);
}
#else
#include "cpu.h"
#define virtq_irq_save() irq_save()
#define virtq_irq_restore(flags) irq_restore(flags)
#define virtq_irq_window(vq) ((void)(vq))
#endif

/* The three barriers (virtq_barrier_publish, _read_used, _check_event) and what each orders: virtq_packed.h. */

static size_t virtq_avail_bytes(uint16_t size) { return sizeof(struct virtq_avail) + sizeof(le16) * ((size_t)size + 1); }

static size_t virtq_used_offset(uint16_t size)
{
	size_t off = sizeof(struct virtq_desc) * size + virtq_avail_bytes(size);
	return (off + VIRTQ_LEGACY_ALIGN - 1) & ~(size_t)(VIRTQ_LEGACY_ALIGN - 1);
}

size_t virtq_mem_size(uint16_t size)
{
	return virtq_used_offset(size) + sizeof(struct virtq_used) + sizeof(struct virtq_used_elem) * size +
	       sizeof(le16);
}

static le16 *virtq_used_event(struct virtq *vq) { return &vq->avail->ring[vq->size]; }
static le16 *virtq_avail_event(struct virtq *vq) { return (le16 *)&vq->used->ring[vq->size]; }

static void virtq_reset_state(struct virtq *vq)
{
	vq->free_head = 0;
	vq->num_free = vq->size;
	vq->avail_idx = 0;
	vq->kicked_idx = 0;
	vq->last_used_idx = 0;
	vq->avail_flags = 0;
	vq->wd_armed = 0;
	vq->wd_stamped = 0;
	vq->in_chains = 0;
	for (uint16_t i = 0; i < vq->size; i++)
		vq->slot[i] = (struct virtq_slot){ .next = (uint16_t)(i + 1) };
	memset(vq->desc, 0, virtq_mem_size(vq->size));
	if (vq->packed)
		virtq_packed_reset_state(vq);
}

int virtq_init(struct virtq *vq, uint16_t index, uint16_t size, void *mem, unsigned flags)
{
	memset(vq, 0, sizeof(*vq));
	if (!mem || size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1)))
		return -EINVAL;
	vq->index = index;
	vq->size = size;
	vq->event_idx = (flags & VIRTQ_INIT_EVENT_IDX) != 0;
	vq->packed = (flags & VIRTQ_INIT_PACKED) != 0;
	vq->desc = mem;
	if (vq->packed) {
		virtq_packed_layout(vq);
	} else {
		vq->avail = (struct virtq_avail *)((char *)mem + sizeof(struct virtq_desc) * size);
		vq->used = (struct virtq_used *)((char *)mem + virtq_used_offset(size));
	}
	vq->slot = calloc(size, sizeof(*vq->slot));
	if (!vq->slot)
		return -ENOMEM;
	virtq_reset_state(vq);
	return 0;
}

void virtq_destroy(struct virtq *vq)
{
	free(vq->slot);
	vq->slot = NULL;
}

uint64_t virtq_desc_addr(const struct virtq *vq) { return (uint64_t)(uintptr_t)vq->desc; }
uint64_t virtq_avail_addr(const struct virtq *vq)
{
	return (uint64_t)(uintptr_t)(vq->packed ? (void *)vq->driver_event : (void *)vq->avail);
}
uint64_t virtq_used_addr(const struct virtq *vq)
{
	return (uint64_t)(uintptr_t)(vq->packed ? (void *)vq->device_event : (void *)vq->used);
}

/* Split: the chain in free descriptors linked by our own slot links, returned as its head. */
static uint16_t virtq_split_write(struct virtq *vq, const struct virtq_sg *sg, unsigned out_n, unsigned n)
{
	struct virtq_slot *slot = vq->slot;
	uint16_t head = vq->free_head, i = head;

	for (unsigned k = 0; k < n; k++) {
		struct virtq_desc *d = &vq->desc[i];
		uint16_t flags = (k >= out_n ? VIRTQ_DESC_F_WRITE : 0) | (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
		d->addr = cpu_to_le64(sg[k].addr);
		d->len = cpu_to_le32(sg[k].len);
		d->flags = cpu_to_le16(flags);
		d->next = cpu_to_le16(slot[i].next);
		i = slot[i].next;
	}
	vq->free_head = i;
	vq->avail->ring[vq->avail_idx & (vq->size - 1)] = cpu_to_le16(head);
	return head;
}

uint16_t virtq_device_used(struct virtq *vq)
{
	return vq->packed ? virtq_packed_dev_used(vq) : le16_read(&vq->used->idx);
}

int virtq_add(struct virtq *vq, const struct virtq_sg *sg, unsigned out_n, unsigned in_n, void *token)
{
	unsigned n = out_n + in_n;
	uint64_t in_total = 0;

	if (__builtin_expect(vq->broken, 0))
		return -EIO;
	if (__builtin_expect(n == 0 || !token, 0))
		return -EINVAL;
	for (unsigned k = out_n; k < n; k++)
		in_total += sg[k].len;
	if (in_total > UINT32_MAX)
		return -EINVAL; /* the used ring's len is 32-bit: such a chain could never be completed validly */
	if (__builtin_expect(n > vq->num_free, 0)) {
		vq->stats.full++;
		return -ENOSPC;
	}

	uint16_t head = vq->packed ? virtq_packed_write(vq, sg, out_n, n) : virtq_split_write(vq, sg, out_n, n);
	struct virtq_slot *s = &vq->slot[head];
	s->token = token;
	s->chain_len = (uint16_t)n;
	s->in_len = (uint32_t)in_total;
	s->seq = vq->avail_idx;
	vq->num_free = (uint16_t)(vq->num_free - n);
	vq->in_chains = (uint16_t)(vq->in_chains + (in_total != 0));
	vq->avail_idx++;
	vq->stats.added++;
	return 0;
}

/* Split: one buffer as a chain of its own, in free descriptor head and avail slot idx; returns the next free
 * descriptor. The caller has checked there is room, and updates the queue's indices and counts. */
static inline uint16_t virtq_split_put1(struct virtq *vq, uint16_t head, uint16_t idx, uint64_t addr, uint32_t len,
					int write, void *token)
{
	struct virtq_desc *d = &vq->desc[head];
	struct virtq_slot *s = &vq->slot[head];

	d->addr = cpu_to_le64(addr);
	d->len = cpu_to_le32(len);
	d->flags = cpu_to_le16(write ? VIRTQ_DESC_F_WRITE : 0);
	vq->avail->ring[idx & (vq->size - 1)] = cpu_to_le16(head);
	s->token = token;
	s->chain_len = 1;
	s->in_len = write ? len : 0;
	s->seq = idx;
	return s->next;
}

int virtq_add_one(struct virtq *vq, uint64_t addr, uint32_t len, int write, void *token)
{
	if (__builtin_expect(vq->packed | vq->broken || !token || !vq->num_free, 0)) {
		struct virtq_sg sg = { addr, len };
		return virtq_add(vq, &sg, write ? 0 : 1, write ? 1 : 0, token);
	}
	vq->free_head = virtq_split_put1(vq, vq->free_head, vq->avail_idx, addr, len, write, token);
	vq->num_free--;
	vq->in_chains = (uint16_t)(vq->in_chains + (write && len));
	vq->avail_idx++;
	vq->stats.added++;
	return 0;
}

unsigned virtq_add_in_bufs(struct virtq *vq, void *const *bufs, unsigned n, uint32_t len)
{
	unsigned k = 0;

	if (vq->packed | vq->broken) {
		while (k < n && !virtq_add_one(vq, (uint64_t)(uintptr_t)bufs[k], len, 1, bufs[k]))
			k++;
		return k;
	}
	uint16_t head = vq->free_head, idx = vq->avail_idx;
	if (n > vq->num_free)
		n = vq->num_free;
	for (; k < n; k++, idx++)
		head = virtq_split_put1(vq, head, idx, (uint64_t)(uintptr_t)bufs[k], len, 1, bufs[k]);
	vq->free_head = head;
	vq->avail_idx = idx;
	vq->num_free = (uint16_t)(vq->num_free - n);
	vq->in_chains = (uint16_t)(vq->in_chains + (len ? n : 0));
	vq->stats.added += n;
	return n;
}

int virtq_publish(struct virtq *vq)
{
	uint16_t old = vq->kicked_idx, new = vq->avail_idx;
	int need;

	if (old == new)
		return 0;
	if (vq->packed) {
		virtq_packed_expose(vq);
	} else {
		virtq_barrier_publish();
		le16_write(&vq->avail->idx, new);
	}
	virtq_barrier_check_event();
	vq->kicked_idx = new;
	uint16_t used = virtq_device_used(vq);
	if (!vq->wd_armed || used != vq->wd_used) {
		/* Start the stall watchdog's clock: from now on the device owes us progress. While the device
		 * makes none the watchdog is left as it is, or a steady stream of publishes to a stalled device
		 * would keep restarting it. wd_base: what the device had before this publish. */
		vq->wd_armed = 1;
		vq->wd_stamped = 0;
		vq->wd_used = used;
		vq->wd_base = old;
		vq->wd_wait = 2;
	}
	if (vq->packed)
		need = virtq_packed_need_kick(vq);
	else if (vq->event_idx)
		need = virtq_need_event(le16_read(virtq_avail_event(vq)), new, old);
	else
		need = !(le16_read(&vq->used->flags) & VIRTQ_USED_F_NO_NOTIFY);
	if (need)
		vq->stats.kicks++;
	else
		vq->stats.kicks_suppressed++;
	return need;
}

static inline void virtq_free_chain(struct virtq *vq, uint16_t head)
{
	struct virtq_slot *slot = vq->slot, *h = &slot[head];
	uint16_t last = head;

	/* Split frees the chain's descriptors, packed only its buffer id (ring slots are reused in order). */
	for (uint16_t k = 1; !vq->packed && k < h->chain_len; k++)
		last = slot[last].next;
	slot[last].next = vq->free_head;
	vq->free_head = head;
	vq->num_free = (uint16_t)(vq->num_free + h->chain_len);
	vq->in_chains = (uint16_t)(vq->in_chains - (h->in_len != 0));
	h->token = NULL;
	h->chain_len = 0;
}

int virtq_is_broken(const struct virtq *vq) { return vq->broken; }

int virtq_kick_overdue(struct virtq *vq, uint64_t now_tick)
{
	/* Ticks are coarse, so "at least one tick ago" is reckoned from lower bounds: anything first seen at
	 * this call happened after the previous call (prev), and is overdue when now_tick - prev >= 2. Called
	 * once per tick, that is 2 ticks after the previous look, and never less than a full tick after the
	 * event itself. A stale previous call (a long busy period) only makes a kick come early, which is
	 * harmless. */
	uint64_t prev = vq->wd_clock_valid ? vq->wd_clock : now_tick;
	vq->wd_clock = now_tick;
	vq->wd_clock_valid = 1;

	if (vq->broken || !vq->wd_armed)
		return 0;
	uint16_t used = virtq_device_used(vq);
	if (used == vq->kicked_idx) {
		vq->wd_armed = 0; /* the device returned everything published: nothing it could be waiting for */
		return 0;
	}
	if (used != vq->wd_used) {
		/* Progress. It does not prove the device saw the last publish (its completions of older chains
		 * can land after our index store and its stale read of it), so the clock restarts, not stops. */
		vq->wd_used = used;
		vq->wd_tick = prev;
		vq->wd_stamped = 1;
		vq->wd_wait = 2;
		return 0;
	}
	/* Device-writable chains (receive buffers) may wait for input as long as it takes, so an idle receive
	 * queue is not stalled. There only a device that returned everything it had before the publish and
	 * nothing since counts: it ran dry, and is waiting for the notification. */
	if (vq->in_chains && used != vq->wd_base) {
		vq->wd_stamped = 0;
		return 0;
	}
	if (!vq->wd_stamped) {
		vq->wd_tick = prev;
		vq->wd_stamped = 1;
	}
	if (now_tick - vq->wd_tick < vq->wd_wait)
		return 0;
	/* Overdue: the caller notifies now. If that does not help either, back off, and after the try
	 * VIRTQ_KICK_BACKOFF_MAX ticks after the one before, give up until the next publish: a device that
	 * ignores notifications needs a reset, and a receive queue filled for a link that stays idle looks
	 * exactly like one that ran dry. */
	vq->stats.kicks_overdue++;
	if (vq->wd_wait >= VIRTQ_KICK_BACKOFF_MAX) {
		vq->wd_armed = 0;
	} else {
		vq->wd_tick = now_tick;
		vq->wd_wait *= 2;
	}
	return 1;
}

/* The rare outcomes of virtq_get_used, out of line so that its common path stays short. */
static __attribute__((noinline)) int virtq_used_bad_idx(struct virtq *vq)
{
	/* More completions than buffers could ever be outstanding: the index itself is garbage, and every entry
	 * behind it is suspect. */
	vq->stats.bad_idx++;
	vq->broken = 1;
	return -ENODEV;
}

static __attribute__((noinline)) int virtq_used_bad_id(struct virtq *vq, uint32_t id)
{
	if (id >= vq->size)
		vq->stats.bad_id++;
	else
		vq->stats.bad_not_outstanding++;
	virtq_violation(vq);
	return -EIO;
}

static __attribute__((noinline)) int virtq_used_bad_len(struct virtq *vq)
{
	vq->stats.bad_len++;
	virtq_violation(vq);
	return -EIO;
}

/* Packed, or a broken queue. */
static __attribute__((noinline)) int virtq_get_used_other(struct virtq *vq, void **token, uint32_t *len)
{
	uint16_t pid = 0;
	uint32_t n = 0;

	if (vq->broken)
		return -ENODEV;
	int rc = virtq_packed_get_used(vq, &pid, &n);
	if (rc)
		return rc;
	vq->last_used_idx++;
	/* pid checked: in range, outstanding and published. */
	struct virtq_slot *s = &vq->slot[pid];
	void *tok = s->token;
	uint32_t posted = s->in_len;
	virtq_free_chain(vq, pid);
	*token = tok;
	if (posted == 0) {
		if (n)
			vq->stats.len_ignored++;
		vq->stats.used++;
		return 0;
	}
	if (n > posted)
		return virtq_used_bad_len(vq);
	*len = n;
	vq->stats.used++;
	return 0;
}

/* Split: takes the entry at last_used_idx, which the device's used->idx says is there. */
static __attribute__((noinline)) int virtq_split_take(struct virtq *vq, uint16_t last, void **token, uint32_t *len)
{
	virtq_barrier_read_used();
	const struct virtq_used_elem *e = &vq->used->ring[last & (vq->size - 1)];
	uint32_t id = le32_read(&e->id), n = le32_read(&e->len);
	vq->last_used_idx = (uint16_t)(last + 1);
	if (__builtin_expect(id >= vq->size || !vq->slot[id].token, 0))
		return virtq_used_bad_id(vq, id);

	struct virtq_slot *s = &vq->slot[id];
	void *tok = s->token;
	uint32_t posted = s->in_len;
	virtq_free_chain(vq, (uint16_t)id);
	*token = tok;
	if (posted == 0) {
		/* Nothing device-writable (a transmit chain): the length means nothing, and some devices report
		 * the bytes they read there. Counting it as a violation would break the transmit queue after
		 * VIRTQ_BROKEN_THRESHOLD frames. */
		if (n)
			vq->stats.len_ignored++;
		vq->stats.used++;
		return 0;
	}
	if (__builtin_expect(n > posted, 0))
		return virtq_used_bad_len(vq); /* *token set: the chain's descriptors are back, the caller recycles it */
	*len = n;
	vq->stats.used++;
	return 0;
}

int virtq_get_used(struct virtq *vq, void **token, uint32_t *len)
{
	*token = NULL;
	*len = 0;
	if (__builtin_expect(vq->packed | vq->broken, 0))
		return virtq_get_used_other(vq, token, len);
	/* The read-used barrier between this load and the entry's is in virtq_split_take. */
	uint16_t last = vq->last_used_idx, used_idx = le16_read(&vq->used->idx);
	if (used_idx == last)
		return -EAGAIN;
	if (__builtin_expect((uint16_t)(used_idx - last) > vq->size, 0))
		return virtq_used_bad_idx(vq);
	return virtq_split_take(vq, last, token, len);
}

/* The one place avail->flags is changed (without EVENT_IDX): our copy and the ring are updated together with
 * interrupts masked. Otherwise an interrupt handler's virtq_disable_cb between the main loop's update of the
 * copy and its store would be undone by that store: the ring would say "interrupt" while our copy says "no
 * interrupt", every later disable would see nothing to do, and the queue would interrupt per frame for the
 * rest of a flood. */
static void virtq_set_avail_flags(struct virtq *vq, uint16_t set, uint16_t clear)
{
	uint64_t irq = virtq_irq_save();
	uint16_t flags = (uint16_t)((vq->avail_flags | set) & ~clear);

	if (flags != vq->avail_flags) {
		vq->avail_flags = flags;
		virtq_irq_window(vq); /* where a handler would run, were interrupts not masked */
		le16_write(&vq->avail->flags, flags);
	}
	virtq_irq_restore(irq);
}

void virtq_disable_cb(struct virtq *vq)
{
	if (vq->packed) {
		virtq_packed_disable_cb(vq);
		return;
	}
	if (vq->event_idx) {
		/* The device ignores avail->flags with EVENT_IDX (§2.7.7): park used_event just behind the
		 * consumer, which the device's index cannot cross again for 65535 entries. A single store of a
		 * value that does not depend on a copy, so a racing enable/disable pair cannot leave it stale:
		 * the last writer wins and says what it means. */
		le16_write(virtq_used_event(vq), (uint16_t)(vq->last_used_idx - 1));
		return;
	}
	virtq_set_avail_flags(vq, VIRTQ_AVAIL_F_NO_INTERRUPT, 0);
}

int virtq_enable_cb(struct virtq *vq)
{
	/* A broken queue returns nothing more, so it must not interrupt either: interrupts stay as they are
	 * (off, after the handler's disable) until the device is reset. */
	if (vq->broken)
		return 0;
	if (vq->packed)
		virtq_packed_enable_cb(vq);
	else if (vq->event_idx)
		le16_write(virtq_used_event(vq), vq->last_used_idx);
	else
		virtq_set_avail_flags(vq, 0, VIRTQ_AVAIL_F_NO_INTERRUPT);
	virtq_barrier_check_event();
	return virtq_has_used(vq);
}

int virtq_enable_cb_delayed(struct virtq *vq, uint16_t after)
{
	/* The device can complete at most the chains outstanding (added, published or about to be, and not
	 * yet consumed): a used_event beyond the last of them would never be crossed, and the frames it was
	 * meant to bound would wait for the next unrelated completion. */
	uint16_t outstanding = (uint16_t)(vq->avail_idx - vq->last_used_idx);

	if (after > outstanding)
		after = outstanding;
	if (vq->broken || !vq->event_idx || after <= 1)
		return virtq_enable_cb(vq);
	if (vq->packed) {
		int raced = virtq_packed_enable_cb_delayed(vq, after);
		return raced < 0 ? virtq_enable_cb(vq) : raced;
	}
	/* The device interrupts when its used index passes used_event, i.e. after `after` more entries. */
	le16_write(virtq_used_event(vq), (uint16_t)(vq->last_used_idx + after - 1));
	virtq_barrier_check_event();
	return (uint16_t)(le16_read(&vq->used->idx) - vq->last_used_idx) >= after;
}

void *virtq_detach_unused(struct virtq *vq)
{
	for (uint16_t i = 0; i < vq->size; i++) {
		if (vq->slot[i].token) {
			void *tok = vq->slot[i].token;
			virtq_free_chain(vq, i);
			return tok;
		}
	}
	virtq_reset_state(vq);
	vq->broken = 0;
	vq->violations = 0;
	return NULL;
}
