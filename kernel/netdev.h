/* The boundary between NIC drivers (drivers/) and the network layer (net/).
 *
 * A NIC is a `struct netdev`: a handle with a name, MAC, MTU, features, link state and N receive/transmit
 * queue pairs, plus an ops table the driver fills. The network layer sees only this: it attaches a consumer
 * (frames, transmit completions, link changes come back through it), transmits scatter-gather frames, gives
 * receive buffers back, and sets each queue's delivery mode, budget and coalescing. Counters, histograms and
 * the per-frame trace are formatted by the driver that owns them. The driver's own state sits behind `priv`
 * and is never read from above.
 *
 * Every per-queue operation takes a queue number, so several queues per NIC need no new interface (one pair
 * today). The per-packet calls are one indirect call each.
 *
 * Pure code (no MMIO): the host unit tests compile it. */
#ifndef NETDEV_H
#define NETDEV_H

#include <stddef.h>
#include <stdint.h>

#define NETDEV_MAX 4
#define NETDEV_MAX_QUEUES 1
#define NETDEV_NAME_LEN 8
/* Segments one received frame may span: a 64 KiB frame in 1.5 KiB buffers needs 44. */
#define NETDEV_RX_MAX_SEGS 48
/* Pieces one transmitted frame may have (besides whatever header the driver adds). */
#define NETDEV_TX_MAX_FRAGS 16

/* How a queue's received frames reach the consumer. */
enum netdev_mode {
	NETDEV_MODE_IRQ,      /* one frame per interrupt */
	NETDEV_MODE_NAPI,     /* interrupt, then budgeted polls until the queue is empty */
	NETDEV_MODE_POLL,     /* no interrupts: poll on every main-loop round */
	NETDEV_MODE_COALESCE, /* interrupt after N frames or a time bound during bursts, per frame otherwise */
	NETDEV_MODE_COUNT
};

/* The mode names, indexed by enum netdev_mode, NULL-terminated (the command line and the control language
 * take their choices from here). */
extern const char *const netdev_mode_names[NETDEV_MODE_COUNT + 1];
const char *netdev_mode_name(unsigned mode);
/* 0 and *mode set, or -EINVAL for an unknown name. */
int netdev_mode_parse(const char *s, enum netdev_mode *mode);

/* Feature bits a driver may report. */
#define NETDEV_F_MRG_RXBUF (1u << 0) /* frames may span several receive buffers */
#define NETDEV_F_EVENT_IDX (1u << 1) /* interrupt/notification thresholds (coalescing is exact) */
#define NETDEV_F_RX_CSUM   (1u << 2) /* received frames may say their checksum is valid or partial (rx_frame.csum) */
#define NETDEV_F_TX_CSUM   (1u << 3) /* xmit completes a TCP/UDP checksum when asked (netdev_tx_offload) */
#define NETDEV_F_RX_GSO    (1u << 4) /* received TCP frames may be super-segments of up to 64 KiB (rx_frame.gso) */

/* What the device says about a received frame's TCP/UDP checksum. */
enum netdev_rx_csum {
	NETDEV_RX_CSUM_NONE,    /* nothing: the stack verifies it */
	NETDEV_RX_CSUM_VALID,   /* the device (or host) verified it */
	NETDEV_RX_CSUM_PARTIAL, /* a local sender left it partial (pseudo-header sum only) at csum_start +
				   csum_offset: the data never crossed a wire, there is nothing to verify */
};

/* A received super-segment: the device merged what would have been several wire segments of gso_size
 * payload bytes each (the IP and TCP headers describe the whole). */
enum netdev_gso {
	NETDEV_GSO_NONE,
	NETDEV_GSO_TCPV4,
	NETDEV_GSO_TCPV6,
};

/* One piece of a frame to transmit (device-readable memory; physical == virtual). */
struct netdev_sg {
	uint64_t addr;
	uint32_t len;
};

/* A received frame, in the buffers the device wrote. The consumer owns the buffers and gives each back with
 * netdev_rx_buf_free (at once, or when the stack is done with it: zero-copy receive). */
struct netdev_rx_seg {
	void *buf;     /* the buffer as posted: what netdev_rx_buf_free takes; the rx_headroom bytes before it
			  belong to the consumer while it holds the buffer */
	uint8_t *data; /* frame bytes */
	uint32_t len;
};

struct netdev_rx_frame {
	unsigned nseg;
	uint32_t total_len;
	/* Offload information, already validated by the driver (ranges lie inside the frame). */
	uint8_t csum;         /* enum netdev_rx_csum */
	uint8_t gso;          /* enum netdev_gso */
	uint8_t gso_ecn;      /* the super-segment's first wire segment had CWR set */
	uint16_t gso_size;    /* payload bytes per wire segment (gso != NONE) */
	uint16_t csum_start;  /* PARTIAL: checksum covers [csum_start, end), from the frame's first byte ... */
	uint16_t csum_offset; /* ... and is stored at csum_start + csum_offset */
	struct netdev_rx_seg seg[NETDEV_RX_MAX_SEGS];
};

/* What one transmitted frame asks of the driver beyond sending its pieces (NULL: nothing). */
struct netdev_tx_offload {
	uint16_t flags;       /* NETDEV_TX_F_* */
	uint16_t csum_start;  /* NETDEV_TX_F_CSUM: the device computes the Internet checksum over [csum_start, end
			       * of frame) and stores it at csum_start + csum_offset, where the stack left the
			       * pseudo-header sum (NETDEV_F_TX_CSUM) */
	uint16_t csum_offset;
};

#define NETDEV_TX_F_CSUM 1u
/* The nd->tx_headroom bytes before frags[0] are the driver's to write until the frame's tx_done: it builds
 * its own per-frame header there, in front of the frame, instead of in a piece of its own. */
#define NETDEV_TX_F_HEADROOM 2u

struct netdev;

/* What the layer above does with a NIC's events. Without a consumer (or with rx NULL) the driver counts
 * frames by ethertype and recycles their buffers at once (the no-op consumer: the ceiling of device and
 * driver alone). */
struct netdev_consumer {
	void (*rx)(struct netdev *nd, unsigned queue, struct netdev_rx_frame *f, void *ctx);
	void (*tx_done)(struct netdev *nd, unsigned queue, void *token, void *ctx);
	void (*link)(struct netdev *nd, int up, void *ctx);
	/* The transmit ring refused a frame (-ENOSPC) and completions have since freed room: output that was
	 * held back can go now, instead of waiting for the stack's next timer. */
	void (*tx_space)(struct netdev *nd, unsigned queue, void *ctx);
	void *ctx;
};

/* A queue's delivery settings (what the status output shows). */
struct netdev_queue_config {
	enum netdev_mode mode;
	unsigned budget;          /* frames per poll */
	unsigned coalesce_frames; /* coalesce mode: interrupt after this many frames ... */
	unsigned coalesce_us;     /* ... or when the oldest has waited this long */
};

struct netdev_ops {
	/* Transmits a frame of n pieces (1..NETDEV_TX_MAX_FRAGS) on queue, with what off asks (may be NULL;
	 * NETDEV_TX_F_CSUM only with NETDEV_F_TX_CSUM). token comes back through the consumer's tx_done once the
	 * device has read the frame. -ENOSPC: ring full (the caller keeps the frame); -EIO: device broken;
	 * -EINVAL: bad arguments. */
	int (*xmit)(struct netdev *nd, unsigned queue, const struct netdev_sg *frags, unsigned n, void *token,
		    const struct netdev_tx_offload *off);
	/* Frees completed transmit chains (calling tx_done for each); returns how many. */
	unsigned (*tx_reclaim)(struct netdev *nd, unsigned queue);
	/* Gives a receive buffer back to the queue's pool. */
	void (*rx_buf_free)(struct netdev *nd, unsigned queue, void *buf);
	/* Receive buffers free in the queue's pool; *size (if not NULL) is the pool's size. */
	unsigned (*rx_pool_free)(struct netdev *nd, unsigned queue, unsigned *size);
	/* Delivery settings; the driver clamps nothing: the caller validates against the knob table. */
	void (*set_queue_config)(struct netdev *nd, unsigned queue, const struct netdev_queue_config *qc);
	/* Counters as "NAME: key=value ..." lines; returns what snprintf would have written. */
	size_t (*format_stats)(struct netdev *nd, char *buf, size_t len);
	/* One summary line for the status output: mode, budget, coalescing, interrupts per frame. */
	size_t (*format_summary)(struct netdev *nd, char *buf, size_t len);
	void (*reset_stats)(struct netdev *nd);
	/* Receive-path stage histograms as text (with buckets if asked), and their reset. */
	size_t (*format_hist)(struct netdev *nd, char *buf, size_t len, int with_buckets);
	void (*reset_hist)(struct netdev *nd);
	/* Per-frame trace on/off (may allocate: -ENOMEM), and entries [start, start + max) as text. */
	int (*trace)(struct netdev *nd, int on);
	size_t (*format_trace)(struct netdev *nd, unsigned start, unsigned max, char *buf, size_t len);
	/* Test hook: transmits count broadcast frames of the local experimental ethertype 0x88b5 from the
	 * driver's own buffers, as fast as the ring takes them; completions of these never reach the consumer. */
	int (*tx_test)(struct netdev *nd, unsigned count);
	/* Test hook: makes the driver see a fault its detectors would report ("rx-broken", "tx-broken",
	 * "needs-reset"), so its recovery path runs; -EINVAL for an unknown fault. */
	int (*inject_fault)(struct netdev *nd, const char *what);
};

struct netdev {
	char name[NETDEV_NAME_LEN]; /* "net0", "net1", ... */
	unsigned id;
	uint8_t mac[6];
	unsigned mtu;
	uint32_t features;       /* NETDEV_F_* */
	int link_up;
	unsigned num_queues;     /* receive/transmit queue pairs */
	unsigned rx_headroom;    /* bytes before each receive buffer the consumer may use while it holds it */
	unsigned tx_headroom;    /* bytes the driver writes before a frame sent with NETDEV_TX_F_HEADROOM (0: it
				  * cannot, and ignores the flag) */
	struct netdev_queue_config queue[NETDEV_MAX_QUEUES];
	const struct netdev_ops *ops;
	struct netdev_consumer consumer;
	void *priv; /* the driver's */
};

/* Registers a NIC the driver has filled in (id and name are assigned here). -ENOSPC when NETDEV_MAX are
 * registered. */
int netdev_register(struct netdev *nd);
unsigned netdev_count(void);
struct netdev *netdev_get(unsigned i);

/* Attaches (or, with NULL, detaches) the layer above. */
void netdev_attach(struct netdev *nd, const struct netdev_consumer *c);

/* Called by drivers when the link changes: records it and tells the consumer. */
void netdev_link_changed(struct netdev *nd, int up);

/* Sets one queue's (or with NETDEV_ALL_QUEUES every queue's) delivery settings and tells the driver. */
#define NETDEV_ALL_QUEUES (~0u)
void netdev_set_queue_config(struct netdev *nd, unsigned queue, const struct netdev_queue_config *qc);

/* The per-packet calls, one indirection each. */
static inline int netdev_xmit(struct netdev *nd, unsigned queue, const struct netdev_sg *frags, unsigned n,
			      void *token, const struct netdev_tx_offload *off)
{
	return nd->ops->xmit(nd, queue, frags, n, token, off);
}

static inline void netdev_rx_buf_free(struct netdev *nd, unsigned queue, void *buf)
{
	nd->ops->rx_buf_free(nd, queue, buf);
}

#endif
