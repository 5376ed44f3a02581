/* virtio-net device driver (virtio 1.x §5.1): device setup over the virtio PCI transport, MSI-X (or INTx via
 * the IOAPIC), the budgeted NAPI-style receive poll and transmit with completion reclaim. */
#ifndef VIRTIO_NET_H
#define VIRTIO_NET_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "pci.h"
#include "virtio_net_rx.h"
#include "virtio_pci.h"
#include "virtq.h"

/* Feature bits (§5.1.3). */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_F_ANY_LAYOUT 27

#define VIRTIO_NET_S_LINK_UP 1
/* Bytes before every receive buffer that the layer above may use for its own descriptor (lwIP's
 * pbuf_custom), so a received frame needs no separate allocation to be handed up. */
#define VNET_BUF_HEADROOM 64
#define VNET_MAX_NICS 4
#define VNET_ETHERTYPES 8

enum vnet_mode { VNET_MODE_IRQ, VNET_MODE_NAPI, VNET_MODE_POLL, VNET_MODE_COALESCE };

/* Receive-path stage latencies (ns), measured with the TSC on every frame. */
enum vnet_stage {
	VNET_H_IRQ_TO_POLL,    /* MSI-X handler entry -> poll start */
	VNET_H_POLL_TO_DEQ,    /* poll start -> frame taken from the used ring */
	VNET_H_INPUT,          /* frame taken -> netif->input (lwIP, reply included) returned */
	VNET_H_IRQ_TO_TXKICK,  /* handler entry -> a reply queued on the TX ring during that frame */
	VNET_H_TX_COMPLETE,    /* TX queued -> its completion reclaimed */
	VNET_H_COUNT
};

/* Per-frame stamps for the host's timeline tool (tools/timeline.py): the last VNET_TRACE_SIZE frames, each
 * identified by a hash of its bytes after the Ethernet header so the host can find it in a pcap. */
#define VNET_TRACE_SIZE 1024
#define VNET_TRACE_HASH_BYTES 64
struct vnet_trace_entry {
	uint32_t key; /* FNV-1a of frame bytes [14, 14 + min(len - 14, 64)) */
	uint32_t len;
	uint64_t t_irq, t_poll, t_deq, t_done, t_txkick; /* TSC; t_txkick 0 if no reply was queued */
};

struct virtio_net_stats {
	uint64_t irq_rx, irq_tx, irq_config, irq_intx_spurious;
	uint64_t polls, budget_exhausted, race_rechecks;
	uint64_t tx_frames, tx_bytes, tx_completions, tx_ring_full, tx_bad_used;
	uint64_t rx_malformed; /* shorter than an Ethernet header */
	uint64_t link_changes;
	uint64_t pool_overflow;
	uint64_t coalesce_timeouts;
	uint64_t tx_rekicks, rx_rekicks; /* notifications repeated by the stall watchdog */
	uint64_t rx_lost_irqs;           /* used entries found waiting a tick without an interrupt */
	struct {
		uint16_t type;
		uint64_t count;
	} ethertype[VNET_ETHERTYPES];
	uint64_t ethertype_other;
};

/* What the layer above does with frames and transmit completions. By default (no consumer attached) the
 * driver counts frames by ethertype and recycles the buffers at once. */
struct virtio_net;
struct virtio_net_consumer {
	void (*rx)(struct virtio_net *n, struct vnet_rx_frame *f, void *ctx);
	void (*tx_done)(struct virtio_net *n, void *token, void *ctx);
	void (*link)(struct virtio_net *n, int up, void *ctx);
	void *ctx;
};

struct virtio_net {
	unsigned id; /* net0, net1, ... */
	struct virtio_dev vd;
	struct pci_msix msix;
	int use_msix;
	int vec_rx, vec_tx, vec_cfg; /* LAPIC vectors */
	struct virtq rxq, txq;
	struct vnet_rx rx;
	uint8_t mac[6];
	int link_up;
	unsigned hdr_len;
	unsigned budget;
	enum vnet_mode mode;
	volatile int rx_pending; /* set by the RX interrupt, cleared when a poll finishes under budget */
	volatile int cfg_pending;
	uint64_t rx_irq_tsc;     /* TSC of the last RX interrupt not yet polled (0: none) */
	uint64_t cur_irq_tsc, cur_poll_tsc; /* stamps of the poll in progress */
	int in_rx;                /* delivering a frame: transmits now are replies */
	uint64_t *tx_tsc;         /* FIFO of transmit stamps (completions come back in order) */
	unsigned tx_tsc_head, tx_tsc_tail;
	unsigned coalesce_frames; /* coalesce mode: interrupt after this many frames ... */
	uint64_t coalesce_tsc;    /* ... or when the oldest waits this long (checked every main-loop round) */
	uint64_t coalesce_deadline;
	struct hist hist[VNET_H_COUNT];
	int trace_on;
	unsigned trace_next; /* entries written so far (the ring holds the last VNET_TRACE_SIZE) */
	struct vnet_trace_entry *trace, *trace_cur;
	uint64_t wd_tick; /* watchdog: tick of the last check and the indices seen then */
	uint16_t wd_tx_used, wd_rx_used, wd_rx_avail;
	struct virtio_net_consumer consumer;
	/* Buffer pool used when the consumer does not provide RX buffers. */
	void **pool;
	unsigned pool_free, pool_size;
	struct virtio_net_stats stats;
};

extern struct virtio_net *virtio_net_nics[VNET_MAX_NICS];
extern unsigned virtio_net_count;

/* Finds every virtio-net function, initialises it and registers its poller. Returns the number of NICs. */
int virtio_net_init_all(unsigned budget, enum vnet_mode mode);

/* Receive buffers per NIC instead of twice the ring (command line rxpool=): a pool smaller than the ring
 * exercises refill failure and recovery. Set before virtio_net_init_all. */
extern unsigned virtio_net_pool_override;

/* Transmits a frame given as nfrags device-readable pieces (the virtio-net header is added here). token
 * comes back through consumer.tx_done once the device has read the frame. -ENOSPC: ring full (the caller
 * keeps the frame); -EIO: device broken. */
int virtio_net_xmit(struct virtio_net *n, const struct virtq_sg *frags, unsigned nfrags, void *token);

/* Switches the delivery mode (and budget, if nonzero) at run time. */
void virtio_net_set_mode(struct virtio_net *n, enum vnet_mode mode, unsigned budget);
const char *virtio_net_mode_name(enum vnet_mode mode);
int virtio_net_mode_parse(const char *s, enum vnet_mode *mode);
void virtio_net_set_coalesce(struct virtio_net *n, unsigned frames, unsigned usec);

/* Per-frame trace: on/off (allocates the ring on first use), and entries [start, start + max) as text lines
 * "trace: i=… key=%08x len=… irq=… poll=… deq=… done=… txkick=…" in ns since boot. */
int virtio_net_trace(struct virtio_net *n, int on);
size_t virtio_net_format_trace(struct virtio_net *n, unsigned start, unsigned max, char *buf, size_t len);

/* Cost of one stage stamp (TSC read + histogram update), ns; measured at boot. */
uint64_t virtio_net_stamp_cost_ns(void);

/* Stage histograms as text (with buckets if asked), and their reset. */
size_t virtio_net_format_hist(struct virtio_net *n, char *buf, size_t len, int with_buckets);
void virtio_net_reset_hist(struct virtio_net *n);

/* Frees completed transmit chains; returns how many. */
unsigned virtio_net_tx_reclaim(struct virtio_net *n);

/* Writes the counters as "netN: key=value ..." lines; returns the length snprintf would have produced. */
size_t virtio_net_format_stats(struct virtio_net *n, char *buf, size_t len);
void virtio_net_reset_stats(struct virtio_net *n);

/* Internal to the driver's files: records a trace entry for the frame being delivered. */
void virtio_net_trace_begin(struct virtio_net *n, const struct vnet_rx_frame *f, uint64_t t_deq);

/* Default RX buffer pool (buf_size bytes each). */
void *virtio_net_pool_alloc(void *ctx);
void virtio_net_pool_free(void *ctx, void *buf);

#endif
