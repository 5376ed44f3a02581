/* virtio-net transmit: frames go out as chains of device-readable descriptors (header + the caller's pieces,
 * no copy), completions are reclaimed by polling. */
#include <errno.h>

#include "cpu.h"
#include "time.h"
#include "virtio_net.h"

/* The transmit header: all zero (no offloads requested), read-only for the device, so one copy serves
 * every frame. */
static const struct virtio_net_hdr vnet_tx_hdr;

/* ---- transmit ---- */

unsigned virtio_net_tx_reclaim(struct virtio_net *n)
{
	unsigned done = 0;
	void *token;
	uint32_t len;

	/* Bounded by the ring: at most one pass over it. */
	for (unsigned i = 0; i < n->txq.size; i++) {
		int rc = virtq_get_used(&n->txq, &token, &len);
		if (rc == -EAGAIN || rc == -ENODEV)
			break;
		if (rc && !token) {
			n->stats.tx_bad_used++;
			continue;
		}
		if (rc)
			n->stats.tx_bad_used++; /* a length on a read-only chain: still ours to free */
		n->stats.tx_completions++;
		done++;
		if (n->tx_tsc_tail != n->tx_tsc_head) {
			uint64_t t0 = n->tx_tsc[n->tx_tsc_tail++ % n->txq.size];
			hist_record(&n->hist[VNET_H_TX_COMPLETE], tsc_to_ns(rdtsc() - t0));
		}
		if (n->consumer.tx_done)
			n->consumer.tx_done(n, token, n->consumer.ctx);
	}
	return done;
}

int virtio_net_xmit(struct virtio_net *n, const struct virtq_sg *frags, unsigned nfrags, void *token)
{
	struct virtq_sg sg[1 + 16];
	uint32_t bytes = 0;
	int rc;

	if (nfrags == 0 || nfrags > 16)
		return -EINVAL;
	sg[0].addr = (uint64_t)(uintptr_t)&vnet_tx_hdr;
	sg[0].len = n->hdr_len;
	for (unsigned i = 0; i < nfrags; i++) {
		sg[1 + i] = frags[i];
		bytes += frags[i].len;
	}
	rc = virtq_add(&n->txq, sg, 1 + nfrags, 0, token);
	if (rc == -ENOSPC && virtio_net_tx_reclaim(n))
		rc = virtq_add(&n->txq, sg, 1 + nfrags, 0, token);
	if (rc == -ENOSPC) {
		n->stats.tx_ring_full++;
		/* Ask for an interrupt when the device frees space, so a waiting sender is woken. */
		virtq_enable_cb(&n->txq);
		return rc;
	}
	if (rc)
		return rc;
	n->stats.tx_frames++;
	n->stats.tx_bytes += bytes;
	uint64_t t = rdtsc();
	if (n->in_rx) {
		hist_record(&n->hist[VNET_H_IRQ_TO_TXKICK], tsc_to_ns(t - n->cur_irq_tsc));
		if (n->trace_cur && !n->trace_cur->t_txkick)
			n->trace_cur->t_txkick = t;
	}
	if (n->tx_tsc_head - n->tx_tsc_tail < n->txq.size)
		n->tx_tsc[n->tx_tsc_head++ % n->txq.size] = t;
	if (virtq_publish(&n->txq))
		n->vd.ops->notify(&n->vd, &n->txq);
	return 0;
}
