/* virtio-net transmit: frames go out as chains of device-readable descriptors (header + the caller's pieces,
 * no copy), completions are reclaimed by polling. Also the txtest hook, which sends from the driver's own
 * buffers so its completions never reach the consumer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "time.h"
#include "virtio_net.h"

#define TXTEST_ETHERTYPE 0x88B5 /* IEEE local experimental */

/* The transmit header of every frame without a checksum to complete: all zero, read-only for the device, so
 * one copy serves them all (frames with one use a slot of their own: tx_slots). */
static const struct virtio_net_hdr vnet_tx_hdr;

int virtio_net_txtest_done(struct virtio_net *n, void *token)
{
	struct vnet_txtest *t = n->txtest;
	uint8_t *p = token;

	if (!t || p < &t->frame[0][0] || p >= &t->frame[0][0] + sizeof(t->frame))
		return 0;
	t->busy[(p - &t->frame[0][0]) / VNET_TXTEST_LEN] = 0;
	return 1;
}

/* Frees completed chains, giving each token back (tx_done). Safe inside virtio_net_xmit: it never calls back
 * into the sender's transmit path. */
static unsigned vnet_tx_reclaim(struct virtio_net *n)
{
	struct netdev *nd = &n->nd;
	unsigned done = 0;
	void *token;
	uint32_t len;

	/* Bounded by the ring: at most one pass over it. */
	for (unsigned i = 0; i < n->txq.size && virtq_has_used(&n->txq); i++) {
		int rc = virtq_get_used(&n->txq, &token, &len);
		if (rc == -EAGAIN || rc == -ENODEV)
			break;
		if (rc && !token) {
			n->stats.tx_bad_used++;
			continue;
		}
		if (rc)
			n->stats.tx_bad_used++; /* rejected, but its descriptors were reclaimed: still ours to free */
		n->stats.tx_completions++;
		n->tx_inflight--;
		done++;
		if (n->tx_tsc_tail != n->tx_tsc_head) {
			uint64_t t0 = n->tx_tsc[n->tx_tsc_tail++ & (n->txq.size - 1)];
			hist_record(&n->hist[VNET_H_TX_COMPLETE], tsc_to_ns(rdtsc() - t0));
		}
		token = virtio_net_tx_unwrap(n, token);
		if (!virtio_net_txtest_done(n, token) && nd->consumer.tx_done)
			nd->consumer.tx_done(nd, 0, token, nd->consumer.ctx);
	}
	return done;
}

void *virtio_net_tx_unwrap(struct virtio_net *n, void *token)
{
	struct vnet_tx_slot *s = token;

	if (!n->tx_slots || s < n->tx_slots || s >= n->tx_slots + n->txq.size)
		return token;
	n->tx_slot_free[n->tx_slot_nfree++] = (uint16_t)(s - n->tx_slots);
	return s->token;
}

/* The poller's reclaim. Only here is the consumer told that a ring which refused it has room again: from
 * inside virtio_net_xmit that call would re-enter the consumer's own transmit path (lwIP's tcp_output inside
 * tcp_output, which loses track of its segments: found by test_full_tx_ring_resumes_tcp_at_once). */
unsigned virtio_net_tx_reclaim(struct netdev *nd, unsigned queue)
{
	struct virtio_net *n = virtio_net_of(nd);
	unsigned done = vnet_tx_reclaim(n);

	(void)queue;
	if (n->tx_was_full && n->tx_inflight < n->tx_limit && n->txq.num_free) {
		n->tx_was_full = 0;
		n->stats.tx_space_wakeups++;
		if (nd->consumer.tx_space)
			nd->consumer.tx_space(nd, 0, nd->consumer.ctx);
	}
	return done;
}

static int vnet_tx_full(struct virtio_net *n)
{
	n->stats.tx_ring_full++;
	n->tx_was_full = 1;
	/* Ask for an interrupt when the device frees space, so a waiting sender is woken. */
	virtq_enable_cb(&n->txq);
	return -ENOSPC;
}

static int vnet_tx_add(struct virtio_net *n, const struct virtq_sg *sg, unsigned nsg, void *token)
{
	return nsg == 1 ? virtq_add_one(&n->txq, sg->addr, sg->len, 0, token) : virtq_add(&n->txq, sg, nsg, 0, token);
}

static int vnet_xmit(struct virtio_net *n, const struct netdev_sg *frags, unsigned nfrags, void *token,
		     const struct netdev_tx_offload *off)
{
	struct virtq_sg sg[1 + NETDEV_TX_MAX_FRAGS];
	struct vnet_tx_slot *slot = NULL;
	struct virtio_net_hdr *hdr = NULL;
	unsigned flags = off ? off->flags : 0, first = 0; /* sg[first] is the chain's first piece */
	uint32_t bytes = 0;
	int rc;

	for (unsigned i = 0; i < nfrags; i++) {
		sg[1 + i].addr = frags[i].addr;
		sg[1 + i].len = frags[i].len;
		bytes += frags[i].len;
	}
	/* §5.1.6.2: the device checksums [csum_start, end) and stores it at csum_start + csum_offset; a range
	 * outside the frame is the caller's bug, refused rather than handed to the device. */
	if ((flags & NETDEV_TX_F_CSUM) && (!virtio_has(&n->vd, VIRTIO_NET_F_CSUM) ||
					   (uint32_t)off->csum_start + off->csum_offset + 2 > bytes))
		return -EINVAL;
	if ((flags & NETDEV_TX_F_HEADROOM) && n->nd.tx_headroom) {
		/* The header goes in front of the frame and shares its first descriptor (VERSION_1 or ANY_LAYOUT:
		 * message framing does not depend on how the chain is split), so a frame takes one descriptor per
		 * piece and no more. */
		hdr = (struct virtio_net_hdr *)(uintptr_t)(frags[0].addr - sizeof(*hdr));
		sg[1].addr -= sizeof(*hdr);
		sg[1].len += (uint32_t)sizeof(*hdr);
		first = 1;
	} else if (flags & NETDEV_TX_F_CSUM) {
		if (!n->tx_slot_nfree)
			return vnet_tx_full(n); /* as many frames in flight as the ring has entries */
		slot = &n->tx_slots[n->tx_slot_free[--n->tx_slot_nfree]];
		slot->token = token;
		token = slot;
		hdr = &slot->hdr;
		sg[0].addr = (uint64_t)(uintptr_t)hdr;
		sg[0].len = n->hdr_len;
	} else {
		sg[0].addr = (uint64_t)(uintptr_t)&vnet_tx_hdr;
		sg[0].len = n->hdr_len;
	}
	if (hdr) {
		*hdr = (struct virtio_net_hdr){ 0 };
		if (flags & NETDEV_TX_F_CSUM) {
			hdr->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
			hdr->csum_start = cpu_to_le16(off->csum_start);
			hdr->csum_offset = cpu_to_le16(off->csum_offset);
		}
	}
	/* txring= caps the frames in flight below what the ring holds; beyond it a frame waits as for a full
	 * ring. */
	rc = n->tx_inflight < n->tx_limit ? vnet_tx_add(n, sg + first, 1 + nfrags - first, token) : -ENOSPC;
	if (rc == -ENOSPC && vnet_tx_reclaim(n))
		rc = n->tx_inflight < n->tx_limit ? vnet_tx_add(n, sg + first, 1 + nfrags - first, token) : -ENOSPC;
	if (rc && slot)
		n->tx_slot_free[n->tx_slot_nfree++] = (uint16_t)(slot - n->tx_slots);
	if (rc == -ENOSPC)
		return vnet_tx_full(n);
	if (rc)
		return rc;
	if (flags & NETDEV_TX_F_CSUM)
		n->stats.tx_csum_offloaded++;
	if (first)
		n->stats.tx_hdr_inplace++;
	n->tx_inflight++;
	n->stats.tx_frames++;
	n->stats.tx_bytes += bytes;
	uint64_t t = rdtsc();
	if (n->in_rx) {
		hist_record(&n->hist[VNET_H_IRQ_TO_TXKICK], tsc_to_ns(t - n->cur_irq_tsc));
		if (n->trace_cur && !n->trace_cur->t_txkick)
			n->trace_cur->t_txkick = t;
	}
	if (n->tx_tsc_head - n->tx_tsc_tail < n->txq.size)
		n->tx_tsc[n->tx_tsc_head++ & (n->txq.size - 1)] = t; /* sizes are powers of two */
	if (virtq_publish(&n->txq))
		n->vd.ops->notify(&n->vd, &n->txq);
	/* Completions raise no interrupt and there is no periodic tick: the poll loop must come round within a
	 * tick of a send to reclaim it. While frames are in flight the watchdog asks for that each round; this
	 * covers the first frame, sent after the watchdog had its turn (a reply from the receive poll, an lwIP
	 * timer). */
	if (n->tx_inflight == 1)
		timer_wake_at(t + timer_ticks_len(1));
	return 0;
}

int virtio_net_xmit(struct netdev *nd, unsigned queue, const struct netdev_sg *frags, unsigned nfrags,
		    void *token, const struct netdev_tx_offload *off)
{
	if (queue != 0 || nfrags == 0 || nfrags > NETDEV_TX_MAX_FRAGS)
		return -EINVAL;
	return vnet_xmit(virtio_net_of(nd), frags, nfrags, token, off);
}

int virtio_net_tx_test(struct netdev *nd, unsigned count)
{
	struct virtio_net *n = virtio_net_of(nd);

	if (!n->txtest) {
		n->txtest = calloc(1, sizeof(*n->txtest));
		if (!n->txtest)
			return -ENOMEM;
	}
	n->txtest->left = count;
	n->txtest->sent = 0;
	return 0;
}

/* Broadcast frames carrying a sequence number, sent as fast as the ring takes them; a full ring or a slot
 * still in flight is retried on the next round (back-pressure, not loss). */
int virtio_net_txtest_poll(struct virtio_net *n)
{
	struct vnet_txtest *t = n->txtest;

	/* Bounded: one pass over the slots per call. */
	for (unsigned i = 0; t->left && i < VNET_TXTEST_SLOTS; i++) {
		unsigned slot = t->sent % VNET_TXTEST_SLOTS;
		uint8_t *f = t->frame[slot];
		if (t->busy[slot])
			return 1;
		memset(f, 0xff, 6);
		memcpy(f + 6, n->nd.mac, 6);
		f[12] = TXTEST_ETHERTYPE >> 8;
		f[13] = TXTEST_ETHERTYPE & 0xff;
		memcpy(f + 14, &t->sent, sizeof(t->sent));
		struct netdev_sg sg = { (uint64_t)(uintptr_t)f, VNET_TXTEST_LEN };
		if (virtio_net_xmit(&n->nd, 0, &sg, 1, f, NULL))
			return 1;
		t->busy[slot] = 1;
		t->sent++;
		t->left--;
		if (!t->left)
			printf("txtest: sent %u frames\n", t->sent);
	}
	return t->left != 0;
}
