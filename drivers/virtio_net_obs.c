/* virtio-net observability and run-time control, as netdev operations: counters as text, stage histograms,
 * the per-frame trace, delivery settings. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "loop.h"
#include "time.h"
#include "virtio_net.h"

/* The first segment holds at least the Ethernet header (checked by the consumer), and the hash covers what
 * the first segment holds of the next 64 bytes. */
void virtio_net_trace_begin(struct virtio_net *n, const struct netdev_rx_frame *f, uint64_t t_deq)
{
	struct vnet_trace_entry *e = &n->trace[n->trace_next++ % VNET_TRACE_SIZE];
	uint32_t h = 2166136261u;
	uint32_t end = f->seg[0].len < 14 + VNET_TRACE_HASH_BYTES ? f->seg[0].len : 14 + VNET_TRACE_HASH_BYTES;

	for (uint32_t i = 14; i < end; i++)
		h = (h ^ f->seg[0].data[i]) * 16777619u;
	e->key = h;
	e->len = f->total_len;
	e->t_irq = n->cur_irq_tsc;
	e->t_poll = n->cur_poll_tsc;
	e->t_deq = t_deq;
	e->t_done = 0;
	e->t_txkick = 0;
	n->trace_cur = e;
}

/* Appends to buf at *used, never past len (snprintf semantics: *used may exceed len when truncated). */
static void vnet_append(char *buf, size_t len, size_t *used, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void vnet_append(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(buf + (*used < len ? *used : len), *used < len ? len - *used : 0, fmt, ap);
	va_end(ap);
	if (k > 0)
		*used += (size_t)k;
}

size_t virtio_net_format_stats(struct netdev *nd, char *buf, size_t len)
{
	struct virtio_net *n = virtio_net_of(nd);
	const struct vnet_rx_stats *r = &n->rx.stats;
	const struct virtio_net_stats *s = &n->stats;
	const struct virtq_stats *q = &n->rxq.stats, *t = &n->txq.stats;
	size_t used = 0;

	vnet_append(buf, len, &used,
		    "net%u: rx_frames=%llu rx_bytes=%llu rx_buffers=%llu irq_rx=%llu irq_tx=%llu irq_config=%llu "
		    "polls=%llu budget_exhausted=%llu race_rechecks=%llu\n",
		    n->id, (unsigned long long)r->frames, (unsigned long long)r->bytes, (unsigned long long)r->buffers,
		    (unsigned long long)s->irq_rx, (unsigned long long)s->irq_tx, (unsigned long long)s->irq_config,
		    (unsigned long long)s->polls, (unsigned long long)s->budget_exhausted,
		    (unsigned long long)s->race_rechecks);
	vnet_append(buf, len, &used,
		    "net%u: refills=%llu refill_failures=%llu posted=%llu ring_empty=%llu rx_runts=%llu "
		    "rx_bad_num_buffers=%llu rx_malformed=%llu rx_bad_used=%llu rx_bad_id=%llu rx_bad_len=%llu "
		    "rx_not_outstanding=%llu rx_bad_flags=%llu rx_kicks=%llu pool_free=%u pool_size=%u rx_drained=%llu\n",
		    n->id, (unsigned long long)r->refills, (unsigned long long)r->refill_failures,
		    (unsigned long long)r->posted, (unsigned long long)r->ring_empty, (unsigned long long)r->runts,
		    (unsigned long long)r->bad_num_buffers, (unsigned long long)s->rx_malformed,
		    (unsigned long long)r->bad_used, (unsigned long long)q->bad_id, (unsigned long long)q->bad_len,
		    (unsigned long long)q->bad_not_outstanding, (unsigned long long)q->bad_flags,
		    (unsigned long long)q->kicks, n->pool_free,
		    n->pool_size, (unsigned long long)r->drained);
	vnet_append(buf, len, &used,
		    "net%u: tx_frames=%llu tx_bytes=%llu tx_completions=%llu tx_ring_full=%llu tx_bad_used=%llu "
		    "tx_kicks=%llu link_changes=%llu tx_rekicks=%llu rx_rekicks=%llu rx_lost_irqs=%llu resets=%llu "
		    "tx_dropped_reset=%llu dead=%d\n",
		    n->id, (unsigned long long)s->tx_frames, (unsigned long long)s->tx_bytes,
		    (unsigned long long)s->tx_completions, (unsigned long long)s->tx_ring_full,
		    (unsigned long long)s->tx_bad_used, (unsigned long long)t->kicks,
		    (unsigned long long)s->link_changes, (unsigned long long)s->tx_rekicks,
		    (unsigned long long)s->rx_rekicks, (unsigned long long)s->rx_lost_irqs, (unsigned long long)s->resets,
		    (unsigned long long)s->tx_dropped_reset, n->dead);
	vnet_append(buf, len, &used,
		    "net%u: irq_intx_spurious=%llu intx_storms_masked=%llu tx_space_wakeups=%llu rx_kicks_overdue=%llu "
		    "tx_kicks_overdue=%llu tx_len_ignored=%llu\n",
		    n->id, (unsigned long long)s->irq_intx_spurious, (unsigned long long)virtio_net_intx_storms,
		    (unsigned long long)s->tx_space_wakeups, (unsigned long long)q->kicks_overdue,
		    (unsigned long long)t->kicks_overdue, (unsigned long long)t->len_ignored);
	vnet_append(buf, len, &used,
		    "net%u: rx_bad_hdr=%llu rx_csum_none=%llu rx_csum_valid=%llu rx_csum_partial=%llu rx_gso_frames=%llu "
		    "rx_gso_bytes=%llu tx_csum_offloaded=%llu tx_hdr_inplace=%llu\n",
		    n->id, (unsigned long long)r->bad_hdr, (unsigned long long)r->csum_none,
		    (unsigned long long)r->csum_valid, (unsigned long long)r->csum_partial,
		    (unsigned long long)r->gso_frames, (unsigned long long)r->gso_bytes,
		    (unsigned long long)s->tx_csum_offloaded, (unsigned long long)s->tx_hdr_inplace);
	vnet_append(buf, len, &used, "net%u: ethertypes", n->id);
	for (unsigned i = 0; i < VNET_ETHERTYPES && s->ethertype[i].count; i++)
		vnet_append(buf, len, &used, " %04x=%llu", s->ethertype[i].type, (unsigned long long)s->ethertype[i].count);
	vnet_append(buf, len, &used, " other=%llu\n", (unsigned long long)s->ethertype_other);
	return used;
}

size_t virtio_net_format_summary(struct netdev *nd, char *buf, size_t len)
{
	struct virtio_net *n = virtio_net_of(nd);
	size_t used = 0;

	vnet_append(buf, len, &used, "net%u: mode=%s budget=%u coalesce_frames=%u irq_per_frame=%.3f coalesce_timeouts=%llu\n",
		    n->id, netdev_mode_name(n->mode), n->budget, n->coalesce_frames,
		    n->rx.stats.frames ? (double)n->stats.irq_rx / (double)n->rx.stats.frames : 0.0,
		    (unsigned long long)n->stats.coalesce_timeouts);
	return used;
}

void virtio_net_set_queue_config(struct netdev *nd, unsigned queue, const struct netdev_queue_config *qc)
{
	struct virtio_net *n = virtio_net_of(nd);
	(void)queue;

	uint64_t flags = irq_save();
	n->mode = qc->mode;
	n->budget = qc->budget ? qc->budget : 1;
	n->coalesce_frames = qc->coalesce_frames ? qc->coalesce_frames : 1;
	n->coalesce_tsc = ns_to_tsc((uint64_t)qc->coalesce_us * 1000);
	/* Hand the queue to the poller once: it leaves interrupts the way the new mode wants them. */
	virtq_disable_cb(&n->rxq);
	n->rx_pending = 1;
	irq_restore(flags);
	loop_kick();
}

size_t virtio_net_format_hist(struct netdev *nd, char *buf, size_t len, int with_buckets)
{
	struct virtio_net *n = virtio_net_of(nd);
	size_t used = 0;
	for (int i = 0; i < VNET_H_COUNT && used + 1 < len; i++) {
		used += (size_t)snprintf(buf + used, len - used, "net%u.", n->id);
		if (used + 1 < len)
			used += hist_format(&n->hist[i], buf + used, len - used, with_buckets);
	}
	return used < len ? used : len - 1;
}

uint64_t virtio_net_stamp_cost_ns(void)
{
	/* What one stage stamp costs: a TSC read, the conversion to ns and a histogram update, as on the
	 * receive path. Measured once at boot and printed, so the overhead of leaving the stamps on is known. */
	static struct hist h;
	const unsigned iterations = 256; /* enough for a mean; each costs boot time */
	hist_init(&h, "calibration");
	uint64_t t0 = rdtsc(), prev = t0;
	for (unsigned i = 0; i < iterations; i++) {
		uint64_t t = rdtsc();
		hist_record(&h, tsc_to_ns(t - prev));
		prev = t;
	}
	return tsc_to_ns(rdtsc() - t0) / iterations;
}

int virtio_net_trace(struct netdev *nd, int on)
{
	struct virtio_net *n = virtio_net_of(nd);
	if (on && !n->trace) {
		n->trace = calloc(VNET_TRACE_SIZE, sizeof(*n->trace));
		if (!n->trace)
			return -ENOMEM;
	}
	if (on)
		n->trace_next = 0;
	n->trace_on = on;
	return 0;
}

size_t virtio_net_format_trace(struct netdev *nd, unsigned start, unsigned max, char *buf, size_t len)
{
	struct virtio_net *n = virtio_net_of(nd);
	size_t used = 0;
	unsigned first = n->trace_next > VNET_TRACE_SIZE ? n->trace_next - VNET_TRACE_SIZE : 0;

	if (!n->trace)
		return (size_t)snprintf(buf, len, "trace: none\n");
	if (start < first)
		start = first;
	used += (size_t)snprintf(buf, len, "trace: net%u entries %u..%u tsc_hz=%llu\n", n->id, first, n->trace_next,
				 (unsigned long long)tsc_hz);
	for (unsigned i = start; i < n->trace_next && i < start + max && used + 160 < len; i++) {
		const struct vnet_trace_entry *e = &n->trace[i % VNET_TRACE_SIZE];
		used += (size_t)snprintf(buf + used, len - used,
					 "trace: i=%u key=%08x len=%u irq=%llu poll=%llu deq=%llu done=%llu txkick=%llu\n", i,
					 e->key, e->len, (unsigned long long)tsc_to_ns(e->t_irq - tsc_boot),
					 (unsigned long long)tsc_to_ns(e->t_poll - tsc_boot),
					 (unsigned long long)tsc_to_ns(e->t_deq - tsc_boot),
					 (unsigned long long)(e->t_done ? tsc_to_ns(e->t_done - tsc_boot) : 0),
					 (unsigned long long)(e->t_txkick ? tsc_to_ns(e->t_txkick - tsc_boot) : 0));
	}
	return used < len ? used : len - 1;
}

void virtio_net_reset_hist(struct netdev *nd)
{
	struct virtio_net *n = virtio_net_of(nd);
	for (int i = 0; i < VNET_H_COUNT; i++)
		hist_reset(&n->hist[i]);
}

void virtio_net_reset_stats(struct netdev *nd)
{
	struct virtio_net *n = virtio_net_of(nd);
	memset(&n->stats, 0, sizeof(n->stats));
	memset(&n->rx.stats, 0, sizeof(n->rx.stats));
	memset(&n->rxq.stats, 0, sizeof(n->rxq.stats));
	memset(&n->txq.stats, 0, sizeof(n->txq.stats));
}
