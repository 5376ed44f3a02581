#include "virtio_net_rx.h"

#include <errno.h>
#include <string.h>

void vnet_rx_init(struct vnet_rx *rx, struct virtq *vq, uint32_t buf_size, unsigned hdr_len, int mrg_rxbuf,
		  const struct vnet_rx_ops *ops, void *ctx)
{
	memset(rx, 0, sizeof(*rx));
	rx->vq = vq;
	rx->buf_size = buf_size;
	rx->hdr_len = hdr_len;
	rx->mrg_rxbuf = mrg_rxbuf;
	rx->ops = ops;
	rx->ctx = ctx;
}

void vnet_rx_set_offloads(struct vnet_rx *rx, unsigned offloads) { rx->offloads = offloads; }

/* §5.1.6.4.1/2. Every field is device input: a header the negotiated features do not allow, or a range
 * outside the frame, makes the frame unusable (the stack would trust a checksum we cannot place, or take a
 * super-segment for a wire segment). hdr_len is left alone: the driver "MUST NOT rely on" it (it is a hint
 * for drivers that copy headers out; we hand the frame over where it lies). Unknown flag bits are ignored, as
 * the driver requirements say. */
int vnet_rx_parse_hdr(const struct vnet_rx *rx, const struct virtio_net_hdr *h, struct netdev_rx_frame *f)
{
	unsigned flags = h->flags & (VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID);
	unsigned gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN, ecn = h->gso_type & VIRTIO_NET_HDR_GSO_ECN;

	f->csum = NETDEV_RX_CSUM_NONE;
	f->gso = NETDEV_GSO_NONE;
	f->gso_ecn = 0;
	f->gso_size = 0;
	f->csum_start = f->csum_offset = 0;
	/* Without GUEST_CSUM the device "MUST set flags to zero". */
	if (flags && !(rx->offloads & VNET_RX_OFF_CSUM))
		return -EINVAL;
	if (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		uint32_t start = le16_to_cpu(h->csum_start), off = le16_to_cpu(h->csum_offset);
		/* The checksum field (2 bytes) must lie inside the frame, past the Ethernet header. */
		if (start < 14 || start + off + 2 > f->total_len)
			return -EINVAL;
		f->csum = NETDEV_RX_CSUM_PARTIAL;
		f->csum_start = (uint16_t)start;
		f->csum_offset = (uint16_t)off;
	} else if (flags & VIRTIO_NET_HDR_F_DATA_VALID) {
		f->csum = NETDEV_RX_CSUM_VALID;
	}
	if (gso == VIRTIO_NET_HDR_GSO_NONE) {
		if (ecn)
			return -EINVAL;
		return 0;
	}
	if (!((gso == VIRTIO_NET_HDR_GSO_TCPV4 && (rx->offloads & VNET_RX_OFF_TSO4)) ||
	      (gso == VIRTIO_NET_HDR_GSO_TCPV6 && (rx->offloads & VNET_RX_OFF_TSO6))))
		return -EINVAL; /* UDP (UFO) and anything else were never negotiated */
	if (ecn && !(rx->offloads & VNET_RX_OFF_ECN))
		return -EINVAL;
	/* A super-segment's TCP checksum is partial by construction; one without NEEDS_CSUM carries a checksum
	 * that matches no segment, and one with a zero gso_size describes no segmentation. */
	if (f->csum != NETDEV_RX_CSUM_PARTIAL || le16_to_cpu(h->gso_size) == 0)
		return -EINVAL;
	f->gso = gso == VIRTIO_NET_HDR_GSO_TCPV4 ? NETDEV_GSO_TCPV4 : NETDEV_GSO_TCPV6;
	f->gso_ecn = ecn != 0;
	f->gso_size = le16_to_cpu(h->gso_size);
	return 0;
}

int vnet_rx_refill(struct vnet_rx *rx, int *kick)
{
	void *bufs[VNET_RX_REFILL_CHUNK];
	int posted = 0, rc = 0;

	*kick = 0;
	rx->stats.refills++;
	/* Bounded: every chunk but the last fills the ring further, and the ring holds at most size buffers. */
	while (rx->vq->num_free > 0 && !rc) {
		unsigned n = 0, want = rx->vq->num_free < VNET_RX_REFILL_CHUNK ? rx->vq->num_free : VNET_RX_REFILL_CHUNK;
		while (n < want && (bufs[n] = rx->ops->buf_alloc(rx->ctx)))
			n++;
		if (n < want) {
			rx->stats.refill_failures++;
			rc = -ENOMEM;
		}
		/* One device-writable descriptor per buffer: header and frame share it (VERSION_1 / ANY_LAYOUT). */
		unsigned k = virtq_add_in_bufs(rx->vq, bufs, n, rx->buf_size);
		for (unsigned i = k; i < n; i++)
			rx->ops->buf_free(rx->ctx, bufs[i]);
		posted += (int)k;
		if (k < n)
			break; /* the queue refused: broken */
	}
	rx->stats.posted += (uint64_t)posted;
	/* Publish even after a partial refill: whatever is posted must reach the device, or a ring it found
	 * empty stays empty for good. */
	*kick = virtq_publish(rx->vq);
	return rc ? rc : posted;
}

int vnet_rx_needs_refill(const struct vnet_rx *rx) { return rx->vq->num_free >= rx->vq->size / 2; }

static void vnet_rx_drop_cur(struct vnet_rx *rx)
{
	for (unsigned i = 0; i < rx->cur.nseg; i++)
		rx->ops->buf_free(rx->ctx, rx->cur.seg[i].buf);
	rx->cur.nseg = 0;
	rx->cur_need = 0;
}

/* Takes one used buffer into the frame being assembled. */
static void vnet_rx_take(struct vnet_rx *rx, void *buf, uint32_t len)
{
	struct netdev_rx_frame *f = &rx->cur;
	struct virtio_net_hdr *h = &rx->cur_hdr;

	rx->stats.buffers++;
	if (rx->cur_need == 0) {
		/* First buffer of a frame: it starts with the header. */
		if (len < rx->hdr_len) {
			rx->stats.runts++;
			rx->ops->buf_free(rx->ctx, buf);
			return;
		}
		/* Two constant-size copies (inlined) rather than one of rx->hdr_len bytes (a call into newlib's
		 * byte loop on every frame): 12 bytes with VERSION_1 or MRG_RXBUF, else the legacy 10. */
		if (rx->hdr_len == sizeof(*h)) {
			memcpy(h, buf, sizeof(*h));
		} else {
			memset(h, 0, sizeof(*h));
			memcpy(h, buf, VIRTIO_NET_HDR_LEN_LEGACY);
		}
		unsigned nb = rx->mrg_rxbuf ? le16_to_cpu(h->num_buffers) : 1;
		if (nb == 0 || nb > VNET_RX_MAX_SEGS) {
			rx->stats.bad_num_buffers++;
			rx->ops->buf_free(rx->ctx, buf);
			return;
		}
		f->nseg = 1;
		f->seg[0].buf = buf;
		f->seg[0].data = (uint8_t *)buf + rx->hdr_len;
		f->seg[0].len = len - rx->hdr_len;
		f->total_len = f->seg[0].len;
		rx->cur_need = nb - 1;
	} else {
		f->seg[f->nseg].buf = buf;
		f->seg[f->nseg].data = buf;
		f->seg[f->nseg].len = len;
		f->nseg++;
		f->total_len += len;
		rx->cur_need--;
	}
	if (rx->cur_need == 0) {
		if (vnet_rx_parse_hdr(rx, h, f)) {
			rx->stats.bad_hdr++;
			vnet_rx_drop_cur(rx);
			return;
		}
		rx->stats.frames++;
		rx->stats.bytes += f->total_len;
		if (f->csum == NETDEV_RX_CSUM_VALID)
			rx->stats.csum_valid++;
		else if (f->csum == NETDEV_RX_CSUM_PARTIAL)
			rx->stats.csum_partial++;
		else
			rx->stats.csum_none++;
		if (f->gso != NETDEV_GSO_NONE) {
			rx->stats.gso_frames++;
			rx->stats.gso_bytes += f->total_len;
		}
		rx->ops->deliver(rx->ctx, f, h);
		f->nseg = 0;
	}
}

unsigned vnet_rx_poll(struct vnet_rx *rx, unsigned budget)
{
	unsigned consumed = 0;
	/* A merged frame in progress may run past the budget, but never by more than one frame's buffers. */
	unsigned limit = budget + VNET_RX_MAX_SEGS;

	while (consumed < limit && (consumed < budget || rx->cur_need) && virtq_has_used(rx->vq)) {
		void *buf;
		uint32_t len;
		int rc = virtq_get_used(rx->vq, &buf, &len);

		if (rc == -EAGAIN || rc == -ENODEV)
			break;
		consumed++;
		if (rc) {
			rx->stats.bad_used++;
			if (buf)
				rx->ops->buf_free(rx->ctx, buf);
			/* The rest of a merged frame is meaningless once one of its buffers was bad. */
			if (rx->cur_need)
				vnet_rx_drop_cur(rx);
			continue;
		}
		vnet_rx_take(rx, buf, len);
	}
	if (rx->vq->num_free == rx->vq->size)
		rx->stats.ring_empty++;
	return consumed;
}

void vnet_rx_drain(struct vnet_rx *rx)
{
	void *buf;

	vnet_rx_drop_cur(rx);
	while ((buf = virtq_detach_unused(rx->vq))) {
		rx->stats.drained++;
		rx->ops->buf_free(rx->ctx, buf);
	}
}
