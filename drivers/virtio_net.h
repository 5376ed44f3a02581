/* virtio-net device driver (virtio 1.x §5.1): device setup over the virtio PCI transport, MSI-X (or INTx via
 * the IOAPIC), the budgeted NAPI-style receive poll and transmit with completion reclaim.
 *
 * Each NIC is registered as a `struct netdev` (kernel/netdev.h), and that is all the layers above see: this
 * header is for the driver's own files and for the kernel's start-up (virtio_net_init_all). */
#ifndef VIRTIO_NET_H
#define VIRTIO_NET_H

#include <stddef.h>
#include <stdint.h>

#include "cmdline.h"
#include "hist.h"
#include "netdev.h"
#include "pci.h"
#include "virtio_net_rx.h"
#include "virtio_pci.h"
#include "virtq.h"

/* Feature bits (§5.1.3). */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_F_ANY_LAYOUT 27

#define VIRTIO_NET_S_LINK_UP 1
#define VNET_ETH_HLEN 14
/* Bytes before every receive buffer that the layer above may use for its own descriptor (lwIP's
 * pbuf_custom, and a guard for headers a reply prepends in place: net/ethif.c needs 112), so a received frame
 * needs no separate allocation to be handed up. */
#define VNET_BUF_HEADROOM 128
#define VNET_ETHERTYPES 8
#define VNET_TXTEST_SLOTS 256
#define VNET_TXTEST_LEN 60

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
	uint64_t resets;                 /* device resets (NEEDS_RESET, a broken queue) */
	uint64_t tx_dropped_reset;       /* frames the device still held when it was reset */
	uint64_t tx_space_wakeups;       /* the consumer told that a full transmit ring has room again */
	uint64_t tx_csum_offloaded;      /* frames sent with NEEDS_CSUM: the device completes the checksum */
	uint64_t tx_hdr_inplace;         /* frames whose header went in front of them, in their first descriptor */
	struct {
		uint16_t type;
		uint64_t count;
	} ethertype[VNET_ETHERTYPES];
	uint64_t ethertype_other;
};

/* txtest (the netdev tx_test hook): frames from the driver's own buffers, each busy until its completion. */
struct vnet_txtest {
	unsigned left, sent;
	uint8_t busy[VNET_TXTEST_SLOTS];
	uint8_t frame[VNET_TXTEST_SLOTS][VNET_TXTEST_LEN];
};

struct virtio_net {
	struct netdev nd; /* what the layers above see; nd.priv points back here */
	unsigned id;      /* == nd.id */
	struct virtio_dev vd;
	struct pci_msix msix;
	int use_msix;
	int vec_rx, vec_tx, vec_cfg; /* LAPIC vectors */
	struct virtq rxq, txq;
	struct vnet_rx rx;
	unsigned hdr_len;
	unsigned ring;   /* enum virtio_net_ring: what negotiation asks for (again after a reset) */
	unsigned rx_offloads;     /* VNET_RX_OFF_*, from the negotiated features */
	unsigned budget;
	enum netdev_mode mode;
	volatile int rx_pending; /* set by the RX interrupt, cleared when a poll finishes under budget */
	volatile int cfg_pending;
	int reset_pending;        /* the device asked for a reset (NEEDS_RESET) */
	int fault_needs_reset;    /* test hook: treat the next configuration change as NEEDS_RESET */
	int dead;                 /* too many resets: no longer driven */
	uint64_t rx_irq_tsc;     /* TSC of the last RX interrupt not yet polled (0: none) */
	uint64_t cur_irq_tsc, cur_poll_tsc; /* stamps of the poll in progress */
	int in_rx;                /* delivering a frame: transmits now are replies */
	int tx_was_full;          /* a transmit was refused for want of descriptors since the last completion */
	unsigned tx_inflight, tx_limit; /* frames posted and not yet completed; at most tx_limit (txring=) */
	uint64_t *tx_tsc;         /* FIFO of transmit stamps (completions come back in order) */
	/* Headers of frames sent with a checksum to complete: one per frame in flight, owned by the device
	 * until its completion (which may come back in any order: hence a free list, not a FIFO). Such a
	 * frame's ring token is its slot; the slot holds the caller's token. */
	struct vnet_tx_slot {
		struct virtio_net_hdr hdr;
		void *token;
	} *tx_slots;
	uint16_t *tx_slot_free;   /* stack of free slot indices */
	unsigned tx_slot_nfree;
	unsigned tx_tsc_head, tx_tsc_tail;
	unsigned coalesce_frames; /* coalesce mode: interrupt after this many frames ... */
	uint64_t coalesce_tsc;    /* ... or when the oldest waits this long (checked every main-loop round) */
	uint64_t coalesce_deadline;
	struct hist hist[VNET_H_COUNT];
	int trace_on;
	unsigned trace_next; /* entries written so far (the ring holds the last VNET_TRACE_SIZE) */
	struct vnet_trace_entry *trace, *trace_cur;
	uint64_t wd_tick;     /* watchdog: tick of the last check ... */
	uint16_t wd_rx_used;  /* ... and the device's RX used index then */
	uint64_t rx_short_tick; /* tick the receive ring was first seen with buffers to post (0: full) */
	unsigned ethertype_last; /* stats.ethertype entry the previous frame counted in */
	struct vnet_txtest *txtest; /* allocated on first use */
	/* The receive buffers (VNET_BUF_HEADROOM + VNET_BUF_SIZE bytes each): posted, held by the consumer, or
	 * free here. */
	void **pool;
	void *pool_mem;
	unsigned pool_free, pool_size;
	struct virtio_net_stats stats;
};

/* Ring layout wanted (command line ring=; the order of kernel/cmdline.c's choices). */
enum virtio_net_ring { VNET_RING_AUTO, VNET_RING_SPLIT, VNET_RING_PACKED };

/* Boot-time settings (command line rxpool=, txring=, ring=) and the virtio-mmio windows of the command line. */
struct virtio_net_params {
	unsigned rxpool; /* receive buffers per NIC (0: twice the ring) */
	unsigned txring; /* transmit frames in flight at most (0: the ring's capacity) */
	unsigned ring;   /* enum virtio_net_ring */
	const struct cmdline_virtio_mmio *mmio; /* virtio_mmio.device= entries (NULL: none) */
};

/* Finds every virtio-net device (PCI functions, then virtio-mmio windows from the command line and ACPI),
 * initialises it and registers it as a netdev with its poller. Returns the
 * number of NICs. */
int virtio_net_init_all(const struct virtio_net_params *p);

/* ---- shared by the driver's files (virtio_net*.c) ---- */

static inline struct virtio_net *virtio_net_of(struct netdev *nd) { return nd->priv; }

/* Set-up and the buffer pool (virtio_net.c), interrupts (virtio_net_irq.c), the poller (virtio_net_poll.c). */
void *virtio_net_pool_alloc(void *ctx);
void virtio_net_pool_free(void *ctx, void *buf);
void virtio_net_config_change(struct virtio_net *n);
int virtio_net_irq_setup(struct virtio_net *n);
/* Undoes virtio_net_irq_setup: no vector of this NIC's stays registered, MSI-X is off. */
void virtio_net_irq_teardown(struct virtio_net *n);
int virtio_net_negotiate(struct virtio_net *n);
int virtio_net_queues_attach(struct virtio_net *n);
void virtio_net_go(struct virtio_net *n);
/* The MSI-X table entry for config (0), RX (1) or TX (2), or VIRTIO_MSI_NO_VECTOR on INTx. */
uint16_t virtio_net_irq_entry(const struct virtio_net *n, unsigned which);
int virtio_net_poll(void *ctx);
/* Shared INTx lines masked because of an unclaimed interrupt storm (virtio_net_irq.c). */
extern uint64_t virtio_net_intx_storms;
/* Resets and restarts the device (virtio_net_reset.c); after too many, or if it fails, the NIC is dead. */
int virtio_net_reset(struct virtio_net *n, const char *why);
int virtio_net_inject_fault(struct netdev *nd, const char *what);
/* A txtest frame's completion: its slot is free again. Returns 0 if token is not a txtest frame. */
int virtio_net_txtest_done(struct virtio_net *n, void *token);
extern const struct vnet_rx_ops virtio_net_rx_ops;

/* The netdev operations, by file: transmit (virtio_net_tx.c), observability and control
 * (virtio_net_obs.c). */
/* The caller's token for a completed (or reset-returned) ring token: a checksum slot is freed and unwrapped. */
void *virtio_net_tx_unwrap(struct virtio_net *n, void *token);
int virtio_net_xmit(struct netdev *nd, unsigned queue, const struct netdev_sg *frags, unsigned nfrags,
		    void *token, const struct netdev_tx_offload *off);
unsigned virtio_net_tx_reclaim(struct netdev *nd, unsigned queue);
int virtio_net_tx_test(struct netdev *nd, unsigned count);
/* Continues a txtest; returns nonzero while frames are left to send. */
int virtio_net_txtest_poll(struct virtio_net *n);
void virtio_net_set_queue_config(struct netdev *nd, unsigned queue, const struct netdev_queue_config *qc);
size_t virtio_net_format_stats(struct netdev *nd, char *buf, size_t len);
size_t virtio_net_format_summary(struct netdev *nd, char *buf, size_t len);
void virtio_net_reset_stats(struct netdev *nd);
size_t virtio_net_format_hist(struct netdev *nd, char *buf, size_t len, int with_buckets);
void virtio_net_reset_hist(struct netdev *nd);
int virtio_net_trace(struct netdev *nd, int on);
size_t virtio_net_format_trace(struct netdev *nd, unsigned start, unsigned max, char *buf, size_t len);

/* Cost of one stage stamp (TSC read + histogram update), ns; measured once at boot. */
uint64_t virtio_net_stamp_cost_ns(void);

/* Records a trace entry for the frame being delivered. */
void virtio_net_trace_begin(struct virtio_net *n, const struct netdev_rx_frame *f, uint64_t t_deq);

#endif
