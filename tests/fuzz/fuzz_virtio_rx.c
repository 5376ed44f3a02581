/* libFuzzer harness: a hostile device against the real receive path (drivers/virtq.c, drivers/virtq_packed.c
 * and drivers/virtio_net_rx.c), on either ring layout (bit 2 of the first byte: packed). The input is a script
 * of device actions — used entries with any id and length (split), used descriptors with any id, length,
 * AVAIL/USED flags and wrap counter, advancing by any number of slots (packed), used->idx jumps, device event
 * suppression garbage, arbitrary bytes in the virtio-net header (num_buffers included) or whole offload headers
 * (flags, gso_type, csum_start/csum_offset, gso_size near the frame's edges, against any set of negotiated
 * offloads), garbage anywhere in the shared ring memory — interleaved with driver polls, refills, interrupt
 * enable/disable and resets. Under
 * ASan and UBSan every out-of-bounds access or undefined behaviour is a crash; the harness also checks that
 * buffers are conserved (none lost, none returned twice) and that accepted frames respect the bounds, and that
 * a broken queue offers no work and does not turn its interrupt back on (a poller would spin on it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio_net_rx.h"
#include "virtq.h"

#define QSIZE 16
#define NBUF 40
#define BUF_SIZE 256
#define HDR 12

static uint8_t bufs[NBUF][BUF_SIZE];
static int owner[NBUF]; /* 0 free in pool, 1 posted or delivered-and-freed */
static void *pool[NBUF];
static unsigned npool;
static unsigned delivered_frames;

static int buf_index(void *b)
{
	uintptr_t off = (uintptr_t)b - (uintptr_t)bufs;
	if ((uintptr_t)b < (uintptr_t)bufs || off >= sizeof(bufs) || off % BUF_SIZE)
		abort(); /* the driver returned a pointer that was never a buffer */
	return (int)(off / BUF_SIZE);
}

static void *f_alloc(void *ctx)
{
	(void)ctx;
	if (!npool)
		return NULL;
	void *b = pool[--npool];
	owner[buf_index(b)] = 1;
	return b;
}

static void f_free(void *ctx, void *b)
{
	(void)ctx;
	int i = buf_index(b);
	if (!owner[i])
		abort(); /* returned twice */
	owner[i] = 0;
	pool[npool++] = b;
}

static unsigned fz_offloads; /* VNET_RX_OFF_* of this run (input byte 0, bits 3-6; bit 2 picks the ring layout) */

static void f_deliver(void *ctx, struct netdev_rx_frame *f, const struct virtio_net_hdr *hdr)
{
	uint32_t total = 0;
	if (!hdr || f->nseg == 0 || f->nseg > VNET_RX_MAX_SEGS)
		abort();
	for (unsigned i = 0; i < f->nseg; i++) {
		int k = buf_index(f->seg[i].buf);
		/* Every byte the consumer may read lies inside the posted buffer. */
		if (f->seg[i].data < bufs[k] || f->seg[i].data + f->seg[i].len > bufs[k] + BUF_SIZE)
			abort();
		total += f->seg[i].len;
		volatile uint8_t sink = f->seg[i].len ? f->seg[i].data[f->seg[i].len - 1] : 0;
		(void)sink;
	}
	if (total != f->total_len)
		abort();
	/* The offload fields keep their promises: a partial checksum's field lies inside the frame, a
	 * super-segment has a size and a partial checksum, nothing beyond what was negotiated. */
	if (f->csum != NETDEV_RX_CSUM_NONE && !(fz_offloads & VNET_RX_OFF_CSUM))
		abort();
	if (f->csum == NETDEV_RX_CSUM_PARTIAL &&
	    (f->csum_start < 14 || (uint32_t)f->csum_start + f->csum_offset + 2 > f->total_len))
		abort();
	if (f->gso != NETDEV_GSO_NONE &&
	    (f->gso_size == 0 || f->csum != NETDEV_RX_CSUM_PARTIAL ||
	     !(fz_offloads & (f->gso == NETDEV_GSO_TCPV4 ? VNET_RX_OFF_TSO4 : VNET_RX_OFF_TSO6)) ||
	     (f->gso_ecn && !(fz_offloads & VNET_RX_OFF_ECN))))
		abort();
	delivered_frames++;
	for (unsigned i = 0; i < f->nseg; i++)
		f_free(ctx, f->seg[i].buf);
}

static const struct vnet_rx_ops ops = { f_alloc, f_free, f_deliver };

/* Once broken, whatever the device writes: no work reported, nothing polled, no interrupt re-armed. Checked
 * after every step: the device keeps scribbling over the ring after the queue broke. */
static void check_broken(struct virtq *vq, struct vnet_rx *rx)
{
	if (!virtq_is_broken(vq))
		return;
	/* The interrupt suppression state we write: avail->flags and used_event, or the driver event structure. */
	le16 *flags_p = vq->packed ? &vq->driver_event->flags : &vq->avail->flags;
	le16 *ev_p = vq->packed ? &vq->driver_event->off_wrap : &vq->avail->ring[vq->size];
	uint16_t flags = le16_read(flags_p), ev = le16_read(ev_p);
	if (virtq_has_used(vq) || vnet_rx_poll(rx, 8) != 0)
		abort();
	if (virtq_enable_cb(vq) || virtq_enable_cb_delayed(vq, 4))
		abort();
	if (le16_read(flags_p) != flags || le16_read(ev_p) != ev)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *mem;
	static size_t mem_size;
	struct virtq vq;
	struct vnet_rx rx;
	int kick;

	if (!mem) {
		mem_size = (virtq_mem_size(QSIZE) + 4095) & ~(size_t)4095;
		mem = aligned_alloc(4096, mem_size);
	}
	memset(mem, 0, mem_size);
	npool = 0;
	for (int i = 0; i < NBUF; i++) {
		owner[i] = 0;
		pool[npool++] = bufs[i];
	}
	if (size < 2)
		return 0;
	int packed = (data[0] >> 2) & 1;
	if (virtq_init(&vq, 0, QSIZE, mem, (data[0] & 1 ? VIRTQ_INIT_EVENT_IDX : 0) | (packed ? VIRTQ_INIT_PACKED : 0)))
		abort();
	vnet_rx_init(&rx, &vq, BUF_SIZE, HDR, (data[0] >> 1) & 1, &ops, NULL);
	fz_offloads = (data[0] >> 3) & 0xF;
	vnet_rx_set_offloads(&rx, fz_offloads);
	vnet_rx_refill(&rx, &kick);

	uint16_t dev_used = 0;
	uint8_t dev_wrap = 1; /* packed: the device's used wrap counter (dev_used is then its slot) */
	struct virtq_used *used = vq.used;
	for (size_t i = 1; i + 3 < size; i += 4) {
		uint8_t op = data[i], a = data[i + 1], b = data[i + 2], c = data[i + 3];
		if (packed && op % 8 == 0) {
			/* A used descriptor at the device's slot: the id of a descriptor in the ring (maybe one it
			 * holds) or any id; mostly the right flags for its lap, sometimes any; then it moves on by
			 * 1..4 slots, as if the chain had that many descriptors. */
			struct virtq_packed_desc *d = &vq.ring[dev_used % QSIZE];
			uint16_t id = (op & 0x80) ? le16_to_cpu(vq.ring[a % QSIZE].id) : (uint16_t)(a | (op & 0x40 ? 0x100 : 0));
			uint16_t both = VIRTQ_PACKED_DESC_F_AVAIL | VIRTQ_PACKED_DESC_F_USED;
			uint16_t flags = (op & 0x20) ? (uint16_t)(b << 8 | c) : (dev_wrap ? both : 0);
			d->id = cpu_to_le16(id);
			d->len = cpu_to_le32((uint32_t)b * 2 + (c & 1));
			d->flags = cpu_to_le16(flags);
			dev_used = (uint16_t)(dev_used + 1 + ((op & 0x10) ? (c >> 1) % 4 : 0));
			if (dev_used >= QSIZE) {
				dev_used -= QSIZE;
				dev_wrap ^= 1;
			}
			check_broken(&vq, &rx);
			continue;
		}
		if (packed && op % 8 == 1) {
			/* Device event suppression garbage (what we read to decide notifications), or a device that
			 * loses track of its wrap counter. */
			if (op & 0x80)
				dev_wrap ^= 1;
			else
				*vq.device_event = (struct virtq_event){ cpu_to_le16((uint16_t)(a | b << 8)), cpu_to_le16(c % 4) };
			check_broken(&vq, &rx);
			continue;
		}
		switch (op % 8) {
		case 0: { /* device completes something: an avail entry (maybe), or any id */
			uint16_t id = (op & 0x80) ? le16_to_cpu(vq.avail->ring[a % QSIZE]) : (uint16_t)(a | (op & 0x40 ? 0x100 : 0));
			used->ring[dev_used % QSIZE].id = cpu_to_le32(id);
			used->ring[dev_used % QSIZE].len = cpu_to_le32((uint32_t)b * 2 + (c & 1));
			dev_used++;
			break;
		}
		case 1: /* publish used->idx, sometimes garbage */
			used->idx = cpu_to_le16((op & 0x80) ? (uint16_t)(a | b << 8) : dev_used);
			break;
		case 2: /* write header bytes into a posted buffer (num_buffers included) */
			if (op & 0x80) {
				/* a whole plausible offload header: flags, gso_type, and csum_start / csum_offset /
				 * gso_size near the frame's edges */
				struct virtio_net_hdr *h = (void *)bufs[a % NBUF];
				h->flags = (uint8_t)(b & 0x7);
				h->gso_type = (uint8_t)((b >> 3 & 0x7) | (b & 0x80));
				h->csum_start = cpu_to_le16((uint16_t)(c & 0x7F) * 2);
				h->csum_offset = cpu_to_le16((uint16_t)(c >> 7) * 6 + (op >> 3 & 0xF));
				h->gso_size = cpu_to_le16((uint16_t)(op >> 3 & 0x3) * 700);
				h->hdr_len = cpu_to_le16((uint16_t)(c * 3));
			} else {
				bufs[a % NBUF][b % HDR] = c;
			}
			break;
		case 3: /* garbage anywhere in the shared ring memory */
			mem[((size_t)a << 8 | b) % mem_size] = c;
			break;
		case 4:
			vnet_rx_poll(&rx, 1 + a % 32);
			break;
		case 5:
			if (vnet_rx_needs_refill(&rx) || (a & 1))
				vnet_rx_refill(&rx, &kick);
			break;
		case 6:
			if (a & 1)
				virtq_disable_cb(&vq);
			else
				virtq_enable_cb_delayed(&vq, (uint16_t)(b % 8));
			break;
		case 7: /* device reset */
			if (a == 0x5a) {
				vnet_rx_drain(&rx);
				dev_used = 0;
				dev_wrap = 1;
				vnet_rx_refill(&rx, &kick);
			}
			break;
		}
		check_broken(&vq, &rx);
	}
	vnet_rx_poll(&rx, 64);
	/* Conservation: after a drain every buffer is back in the pool exactly once. */
	vnet_rx_drain(&rx);
	if (npool != NBUF)
		abort();
	virtq_destroy(&vq);
	return 0;
}
