/* virtio-net receive processing, NAPI style: the interrupt only marked the queue; the main loop's poller
 * takes at most `budget` buffers per call, hands complete frames to the netdev consumer, refills the ring and
 * re-arms the interrupt, so other pollers (timers, other NICs) get a turn between calls however fast frames
 * arrive. Also the once-per-tick stall watchdog. */
#include <errno.h>
#include <stdio.h>

#include "cpu.h"
#include "time.h"
#include "virtio_net.h"


static void vnet_count_ethertype(struct virtio_net *n, uint16_t type)
{
	/* Most frames have the type the previous one had. */
	unsigned last = n->ethertype_last;
	if (n->stats.ethertype[last].count && n->stats.ethertype[last].type == type) {
		n->stats.ethertype[last].count++;
		return;
	}
	for (unsigned i = 0; i < VNET_ETHERTYPES; i++) {
		if (n->stats.ethertype[i].count && n->stats.ethertype[i].type == type) {
			n->stats.ethertype[i].count++;
			n->ethertype_last = i;
			return;
		}
		if (!n->stats.ethertype[i].count) {
			n->stats.ethertype[i].type = type;
			n->stats.ethertype[i].count = 1;
			n->ethertype_last = i;
			return;
		}
	}
	n->stats.ethertype_other++;
}

/* Counts the frame; the consumer takes it, or (none attached: the no-op consumer) it is recycled here. */
static void vnet_consume(struct virtio_net *n, struct netdev_rx_frame *f)
{
	if (f->total_len < VNET_ETH_HLEN || f->seg[0].len < VNET_ETH_HLEN) {
		n->stats.rx_malformed++;
	} else {
		vnet_count_ethertype(n, (uint16_t)(f->seg[0].data[12] << 8 | f->seg[0].data[13]));
		if (n->nd.consumer.rx) {
			n->nd.consumer.rx(&n->nd, 0, f, n->nd.consumer.ctx);
			return;
		}
	}
	for (unsigned i = 0; i < f->nseg; i++)
		virtio_net_pool_free(n, f->seg[i].buf);
}

static void vnet_deliver(void *ctx, struct netdev_rx_frame *f, const struct virtio_net_hdr *hdr)
{
	struct virtio_net *n = ctx;
	uint64_t t_deq = rdtsc();

	(void)hdr; /* no receive offloads are negotiated: the header carries nothing to act on */
	hist_record(&n->hist[VNET_H_POLL_TO_DEQ], tsc_to_ns(t_deq - n->cur_poll_tsc));
	if (n->trace_on)
		virtio_net_trace_begin(n, f, t_deq);
	n->in_rx = 1;
	vnet_consume(n, f);
	n->in_rx = 0;
	uint64_t t_done = rdtsc();
	hist_record(&n->hist[VNET_H_INPUT], tsc_to_ns(t_done - t_deq));
	if (n->trace_cur) {
		n->trace_cur->t_done = t_done;
		n->trace_cur = NULL;
	}
}

const struct vnet_rx_ops virtio_net_rx_ops = {
	.buf_alloc = virtio_net_pool_alloc,
	.buf_free = virtio_net_pool_free,
	.deliver = vnet_deliver,
};

/* A receive ring with buffers left to post (and a pool to post them from: with the pool empty, the buffers'
 * return is the event). The tick it went short is noted so the top-up waits VNET_RX_TOPUP_MS: a steady flow
 * refills in batches by itself, and would otherwise pay a timer wake-up per tick for nothing. */
#define VNET_RX_TOPUP_MS 100

static unsigned vnet_rx_topup_ticks(void)
{
	unsigned t = timer_hz * VNET_RX_TOPUP_MS / 1000;
	return t ? t : 1;
}

static int vnet_rx_short(struct virtio_net *n)
{
	if (!n->rxq.num_free || !n->pool_free) {
		n->rx_short_tick = 0;
		return 0;
	}
	if (!n->rx_short_tick)
		n->rx_short_tick = timer_ticks ? timer_ticks : 1;
	return 1;
}

/* Once per tick: a queue the device has not served since a publish a tick old gets another notification
 * (virtq_kick_overdue decides, with back-off). It recovers from a lost kick (a VMM that reorders our index
 * store with its event-index check, or a device that ignored a kick), which would otherwise stop that queue
 * for good. */
static void vnet_watchdog_check(struct virtio_net *n)
{
	n->wd_tick = timer_ticks;
	if (virtq_kick_overdue(&n->txq, timer_ticks)) {
		n->stats.tx_rekicks++;
		n->vd.ops->notify(&n->vd, &n->txq);
	}
	if (virtq_kick_overdue(&n->rxq, timer_ticks)) {
		n->stats.rx_rekicks++;
		n->vd.ops->notify(&n->vd, &n->rxq);
	}
	/* The other direction: used entries that sat a whole tick with no poll pending mean an interrupt the
	 * device should have raised never came (the same lost-ordering race seen from the device side). */
	uint16_t rx_used = virtq_device_used(&n->rxq);
	if (!n->rx_pending && rx_used == n->wd_rx_used && virtq_has_used(&n->rxq)) {
		n->stats.rx_lost_irqs++;
		virtq_disable_cb(&n->rxq);
		n->rx_pending = 1;
	}
	n->wd_rx_used = rx_used;
}

/* There is no periodic tick, so the watchdog asks for its own wake-ups, and only while something could be
 * overdue: at the next tick for used receive entries waiting unpolled or a receive queue whose device ran dry
 * before the last refill (the one case virtq_kick_overdue watches there; it backs off and disarms if the link
 * just stays idle); a tick after the oldest transmit chain in flight was sent (completions raise no
 * interrupt, so this also reclaims them within a tick, as the periodic tick did); and VNET_RX_TOPUP_MS after
 * a receive ring went short, for its top-up. An idle NIC asks for nothing. */
static void vnet_watchdog(struct virtio_net *n)
{
	if (timer_ticks != n->wd_tick)
		vnet_watchdog_check(n);
	/* Chains outstanding; once every one is back there is nothing to watch (virtq_kick_overdue disarms at
	 * its next look), so the transmit queue's armed watchdog alone asks for no wake-up. */
	int tx_in_flight = n->txq.num_free < n->txq.size;
	int rx_unpolled = virtq_has_used(&n->rxq) && !n->rx_pending;
	int rx_ran_dry = n->rxq.wd_armed && virtq_device_used(&n->rxq) == n->rxq.wd_base;
	uint64_t next_tick = timer_tick_tsc(n->wd_tick + 1);
	if (rx_unpolled || rx_ran_dry)
		timer_wake_at(next_tick);
	if (tx_in_flight) {
		/* A tick after the oldest frame in flight was sent, and never before the next tick (the stall
		 * watchdog counts ticks): while replies go out and come back faster than that, as in any steady
		 * flow, the deadline keeps moving and the guest is not woken for it at all. */
		uint64_t due = next_tick;
		if (n->tx_tsc_tail != n->tx_tsc_head) {
			uint64_t oldest = n->tx_tsc[n->tx_tsc_tail & (n->txq.size - 1)] + timer_ticks_len(1);
			due = oldest > next_tick ? oldest : next_tick;
		}
		timer_wake_at(due);
	}
	if (vnet_rx_short(n) && !virtq_is_broken(&n->rxq)) {
		uint64_t due = n->rx_short_tick + vnet_rx_topup_ticks();
		if (timer_ticks >= due && !n->rx_pending) {
			/* The rest of a batch (vnet_poll_refill), posted a while after the ring went short. */
			int kick;
			vnet_rx_refill(&n->rx, &kick);
			if (kick)
				n->vd.ops->notify(&n->vd, &n->rxq);
		} else {
			timer_wake_at(timer_tick_tsc(due > n->wd_tick + 1 ? due : n->wd_tick + 1));
		}
	}
}

/* Coalesce mode's time bound. The wake-up timer may fire a little early (count rounding): within 1/8 of the
 * bound counts as due, otherwise it is armed again. When due, frames that did not reach the threshold are
 * polled now; with none waiting, the burst is over and the next frame interrupts at once. */
static void vnet_coalesce_check(struct virtio_net *n)
{
	if (n->rx_pending || n->mode != NETDEV_MODE_COALESCE || !n->coalesce_deadline)
		return;
	if (rdtsc() + n->coalesce_tsc / 8 < n->coalesce_deadline) {
		timer_wake_at(n->coalesce_deadline);
		return;
	}
	n->coalesce_deadline = 0;
	if (virtq_has_used(&n->rxq) || virtq_enable_cb(&n->rxq)) {
		virtq_disable_cb(&n->rxq);
		n->rx_pending = 1;
		n->stats.coalesce_timeouts++;
	}
}

static void vnet_poll_stamp(struct virtio_net *n)
{
	n->stats.polls++;
	n->cur_poll_tsc = rdtsc();
	if (n->rx_irq_tsc) {
		hist_record(&n->hist[VNET_H_IRQ_TO_POLL], tsc_to_ns(n->cur_poll_tsc - n->rx_irq_tsc));
		n->cur_irq_tsc = n->rx_irq_tsc;
		n->rx_irq_tsc = 0;
	} else {
		n->cur_irq_tsc = n->cur_poll_tsc; /* polled without an interrupt: the poll is the first stamp */
	}
}

/* Refills in batches: at half the ring while busy, and every sixteenth of the ring when a poll finished under
 * budget, so a request/response flow pays one publish per batch rather than one per frame; the watchdog tops
 * up what is left VNET_RX_TOPUP_MS later (vnet_watchdog), so an idle NIC has every buffer posted for the next
 * burst. Returns 1 when not a single buffer could be posted: the caller then counts it as a full budget and
 * comes back, rather than sleep on an empty ring (the device would drop everything, silently, for good). A
 * partly filled ring still receives, and the next poll refills it further. */
static int vnet_poll_refill(struct virtio_net *n, int under_budget)
{
	int kick;
	unsigned batch = n->rxq.size / 16 ? n->rxq.size / 16 : 1;

	if (!vnet_rx_needs_refill(&n->rx) && !(under_budget && n->rxq.num_free >= batch))
		return 0;
	int rc = vnet_rx_refill(&n->rx, &kick);
	if (kick)
		n->vd.ops->notify(&n->vd, &n->rxq);
	return rc < 0 && n->rxq.num_free == n->rxq.size;
}

/* Re-arms the receive interrupt after a poll under budget and looks again. An entry that arrived after the
 * last look but before the device saw the re-enable raised no interrupt; without the second look it would
 * wait for the next frame. Returns 1 if the poller must run again. */
static int vnet_poll_rearm(struct virtio_net *n, unsigned done)
{
	int raced;

	n->rx_pending = 0;
	if (n->mode == NETDEV_MODE_COALESCE && done * 2 >= n->coalesce_frames) {
		/* Frames are coming in bursts: interrupt only after coalesce_frames more (EVENT_IDX used_event set
		 * ahead), with a time bound so the tail of a burst is not stranded. A poll that found fewer re-arms
		 * the ordinary per-frame interrupt, so a lone frame never waits for the bound. */
		n->coalesce_deadline = rdtsc() + n->coalesce_tsc;
		timer_wake_at(n->coalesce_deadline);
		raced = virtq_enable_cb_delayed(&n->rxq, (uint16_t)n->coalesce_frames);
	} else {
		raced = virtq_enable_cb(&n->rxq);
	}
	if (!raced)
		return 0;
	virtq_disable_cb(&n->rxq);
	n->rx_pending = 1;
	n->stats.race_rechecks++;
	return 1;
}

int virtio_net_poll(void *ctx)
{
	struct virtio_net *n = ctx;
	int more = 0;

	if (n->dead)
		return 0;
	if (n->cfg_pending)
		virtio_net_config_change(n);
	/* A queue the device corrupted returns nothing more, and a device in NEEDS_RESET does nothing more:
	 * either way only a reset brings the NIC back. */
	if (n->reset_pending || virtq_is_broken(&n->rxq) || virtq_is_broken(&n->txq))
		return virtio_net_reset(n, n->reset_pending		 ? "needs reset"
					   : virtq_is_broken(&n->rxq) ? "receive queue broken"
								       : "transmit queue broken") == 0;
	virtio_net_tx_reclaim(&n->nd, 0);
	if (n->txtest)
		more = virtio_net_txtest_poll(n);
	vnet_watchdog(n);
	vnet_coalesce_check(n);
	if (!n->rx_pending && n->mode != NETDEV_MODE_POLL)
		return more;

	vnet_poll_stamp(n);
	n->coalesce_deadline = 0;
	unsigned budget = n->mode == NETDEV_MODE_IRQ ? 1 : n->budget;
	unsigned done = vnet_rx_poll(&n->rx, budget);
	more |= vnet_poll_refill(n, done < budget);
	if (done >= budget && n->mode != NETDEV_MODE_IRQ) {
		n->stats.budget_exhausted++;
		more = 1;
	}
	if (n->mode == NETDEV_MODE_POLL || more)
		return 1;
	return vnet_poll_rearm(n, done);
}
