/* virtio-net receive ring management: posting buffers, consuming used ones into frames (one buffer each, or
 * a chain of num_buffers with VIRTIO_NET_F_MRG_RXBUF), with every device-written value checked. No MMIO and
 * no allocator of its own (the layer above provides buffers), so the host unit tests run it unchanged
 * against a simulated device. */
#ifndef VIRTIO_NET_RX_H
#define VIRTIO_NET_RX_H

#include <stdint.h>

#include "netdev.h"
#include "virtio_le.h"
#include "virtq.h"

/* struct virtio_net_hdr (virtio 1.x §5.1.6): 12 bytes with VERSION_1 or MRG_RXBUF, 10 bytes (without
 * num_buffers) for a legacy device without MRG_RXBUF. */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	le16 hdr_len;
	le16 gso_size;
	le16 csum_start;
	le16 csum_offset;
	le16 num_buffers;
} __attribute__((packed));

#define VIRTIO_NET_HDR_LEN 12
#define VIRTIO_NET_HDR_LEN_LEGACY 10
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP 3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN 0x80

/* Receive offloads negotiated: what a header may legitimately say (§5.1.6.4). */
#define VNET_RX_OFF_CSUM (1u << 0) /* VIRTIO_NET_F_GUEST_CSUM: flags NEEDS_CSUM / DATA_VALID */
#define VNET_RX_OFF_TSO4 (1u << 1) /* VIRTIO_NET_F_GUEST_TSO4: gso_type TCPV4 */
#define VNET_RX_OFF_TSO6 (1u << 2) /* VIRTIO_NET_F_GUEST_TSO6: gso_type TCPV6 */
#define VNET_RX_OFF_ECN  (1u << 3) /* VIRTIO_NET_F_GUEST_ECN: the ECN bit on a TSO gso_type */

/* Most buffers one frame may span: a 64 KiB GSO frame in 1.5 KiB mergeable buffers needs 44. Frames are
 * assembled directly as the netdev interface hands them up. */
#define VNET_RX_MAX_SEGS NETDEV_RX_MAX_SEGS
/* Buffers taken from the provider and posted per pass of a refill. */
#define VNET_RX_REFILL_CHUNK 32

struct vnet_rx_ops {
	/* A buffer of buf_size bytes for the device to write, or NULL when none is free. */
	void *(*buf_alloc)(void *ctx);
	void (*buf_free)(void *ctx, void *buf);
	/* A complete frame and its virtio-net header: the consumer now owns the buffers and returns each
	 * through buf_free. */
	void (*deliver)(void *ctx, struct netdev_rx_frame *f, const struct virtio_net_hdr *hdr);
};

struct vnet_rx_stats {
	uint64_t frames, bytes, buffers;
	uint64_t runts;           /* first buffer shorter than the header: dropped */
	uint64_t bad_num_buffers; /* num_buffers 0 or more than VNET_RX_MAX_SEGS: dropped */
	uint64_t bad_used;        /* entries the virtqueue rejected (bad id/len/duplicate) */
	uint64_t posted;          /* buffers posted */
	uint64_t refills, refill_failures;
	uint64_t ring_empty;      /* polls that left no buffer posted: the device drops frames until refilled */
	uint64_t drained;         /* posted buffers taken back unused (device reset) */
	uint64_t bad_hdr;         /* header the negotiated features do not allow, or ranges outside the frame */
	uint64_t csum_none, csum_valid, csum_partial; /* frames by what the header says of their checksum */
	uint64_t gso_frames, gso_bytes;               /* super-segments (gso_type != NONE) */
};

struct vnet_rx {
	struct virtq *vq;
	uint32_t buf_size;
	unsigned hdr_len;
	int mrg_rxbuf;
	unsigned offloads;        /* VNET_RX_OFF_* */
	const struct vnet_rx_ops *ops;
	void *ctx;
	struct netdev_rx_frame cur;   /* frame being assembled (MRG_RXBUF may spread it over polls) */
	struct virtio_net_hdr cur_hdr; /* copy of its header (the device may still write the buffer's copy) */
	unsigned cur_need;        /* buffers still missing from cur; 0 = no frame in progress */
	struct vnet_rx_stats stats;
};

void vnet_rx_init(struct vnet_rx *rx, struct virtq *vq, uint32_t buf_size, unsigned hdr_len, int mrg_rxbuf,
		  const struct vnet_rx_ops *ops, void *ctx);

/* Which receive offloads were negotiated (VNET_RX_OFF_*; none after vnet_rx_init). */
void vnet_rx_set_offloads(struct vnet_rx *rx, unsigned offloads);

/* Checks a complete frame's header against the negotiated offloads and fills the frame's offload fields;
 * -EINVAL for a header the device must not send (the caller drops the frame). Exposed for the unit tests. */
int vnet_rx_parse_hdr(const struct vnet_rx *rx, const struct virtio_net_hdr *h, struct netdev_rx_frame *f);

/* Posts buffers until the ring is full. Returns the number posted, or -ENOMEM if the provider ran out first
 * (whatever was posted is still published). *kick is set if the device must be notified. */
int vnet_rx_refill(struct vnet_rx *rx, int *kick);

/* True when at least half the ring is unposted: the poll loop refills then (batching the notification). */
int vnet_rx_needs_refill(const struct vnet_rx *rx);

/* Consumes up to budget used buffers (a frame in progress may finish a few beyond it), delivering complete
 * frames. Returns the number of used buffers consumed. */
unsigned vnet_rx_poll(struct vnet_rx *rx, unsigned budget);

/* After a device reset: frees every posted buffer and any frame in progress. */
void vnet_rx_drain(struct vnet_rx *rx);

#endif
