/* lwIP netif over virtio-net. Receive is zero-copy: the buffers posted on the RX ring carry a pbuf_custom
 * in their headroom, so the frame QEMU copied in is handed to lwIP where it lies, and lwIP freeing the pbuf
 * returns the buffer to the driver's pool. Transmit posts lwIP's pbufs themselves as descriptors and frees
 * them when the device has read them. */
#include "netif_virtio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/dhcp.h"
#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/ip4_addr.h"
#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/snmp.h"
#include "netif/ethernet.h"
#include "virtio_net.h"

#define NETIF_MTU 1500
#define TX_MAX_FRAGS 16 /* descriptors per frame besides the header; longer chains are copied */

/* What lives in a receive buffer's headroom. */
struct netif_rx_buf {
	struct pbuf_custom pc;
	struct netif_virtio *nv;
};

_Static_assert(sizeof(struct netif_rx_buf) <= VNET_BUF_HEADROOM, "receive headroom too small for the pbuf");

static void netif_rx_pbuf_free(struct pbuf *p)
{
	struct netif_rx_buf *rb = (struct netif_rx_buf *)p;
	virtio_net_pool_free(rb->nv->nic, (uint8_t *)rb + VNET_BUF_HEADROOM);
}

/* A copy is taken only when the pool is nearly empty: lwIP may hold ring buffers for a long time
 * (reassembly, out-of-order TCP segments), and a ring that cannot be refilled stops receive altogether. */
static int netif_rx_under_pressure(struct virtio_net *n) { return n->pool_free < n->pool_size / 8; }

static struct pbuf *netif_rx_copy(struct netif_virtio *nv, struct vnet_rx_frame *f)
{
	struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)f->total_len, PBUF_POOL);
	uint32_t off = 0;

	if (p) {
		for (unsigned i = 0; i < f->nseg; i++) {
			pbuf_take_at(p, f->seg[i].data, (u16_t)f->seg[i].len, (u16_t)off);
			off += f->seg[i].len;
		}
		nv->stats.rx_copied_frames++;
		nv->stats.rx_copied_bytes += f->total_len;
	}
	for (unsigned i = 0; i < f->nseg; i++)
		virtio_net_pool_free(nv->nic, f->seg[i].buf);
	return p;
}

#define ETH_TYPE_IPV6 0x86DD
#define IP6_HLEN_BYTES 40
#define IP6_NH_HOPOPTS 0
#define IP6_NH_ROUTING 43
#define IP6_NH_FRAGMENT 44
#define IP6_NH_DSTOPTS 60
#define IP6_NH_ICMP6 58
#define ICMP6_PACKET_TOO_BIG 2
#define IPV6_MIN_MTU 1280
#define IP6_EXT_MAX 8

/* Two IPv6 inputs that break lwIP 2.1.3 (found by tests/system/test_robustness.py), refused before lwIP sees
 * them:
 *  - a fragment whose fragmentable part starts with another extension header (fragment, hop-by-hop, routing,
 *    destination options: any of them can lead to a second fragment header after reassembly): lwIP's second
 *    reassembly pass works with a stale header pointer and asserts (a remote kernel panic);
 *  - an ICMPv6 Packet Too Big below the IPv6 minimum MTU: lwIP stores it, and ip6_frag() then loops for ever
 *    making empty fragments (RFC 8201 §4: such a message must not lower the MTU below 1280 anyway).
 * Only the first receive segment is inspected (the headers of a frame this stack answers live there). The walk
 * over extension headers is bounded, and a chain longer than the walk is refused rather than let through.
 * Returns nonzero to drop. */
static int netif_rx_refuse_ipv6(const struct vnet_rx_frame *f)
{
	const uint8_t *p = f->seg[0].data;
	uint32_t len = f->seg[0].len, off = 14 + IP6_HLEN_BYTES;

	if (len < off || (p[12] << 8 | p[13]) != ETH_TYPE_IPV6)
		return 0;
	uint8_t nh = p[14 + 6];
	/* Up to IP6_EXT_MAX extension headers are walked; whatever follows them is inspected too. */
	for (int walked = 0; off + 8 <= len; walked++) {
		int ext = nh == IP6_NH_HOPOPTS || nh == IP6_NH_ROUTING || nh == IP6_NH_DSTOPTS || nh == IP6_NH_FRAGMENT;
		if (ext && walked == IP6_EXT_MAX)
			return 1; /* a longer chain than this walk checks: too long to accept */
		switch (nh) {
		case IP6_NH_HOPOPTS:
		case IP6_NH_ROUTING:
		case IP6_NH_DSTOPTS:
			nh = p[off];
			off += 8u * (p[off + 1] + 1u);
			break;
		case IP6_NH_FRAGMENT: {
			uint8_t next = p[off];
			int atomic = ((p[off + 2] << 8 | p[off + 3]) & 0xFFF9) == 0; /* offset 0, no more fragments */
			if (!atomic)
				return next == IP6_NH_FRAGMENT || next == IP6_NH_HOPOPTS || next == IP6_NH_ROUTING ||
				       next == IP6_NH_DSTOPTS;
			nh = next;
			off += 8;
			break;
		}
		case IP6_NH_ICMP6:
			return p[off] == ICMP6_PACKET_TOO_BIG &&
			       ((uint32_t)p[off + 4] << 24 | (uint32_t)p[off + 5] << 16 | (uint32_t)p[off + 6] << 8 | p[off + 7]) <
				       IPV6_MIN_MTU;
		default:
			return 0;
		}
	}
	/* The headers run past what the first segment holds: refuse an unfinished extension chain. */
	return nh == IP6_NH_HOPOPTS || nh == IP6_NH_ROUTING || nh == IP6_NH_DSTOPTS || nh == IP6_NH_FRAGMENT;
}

static void netif_virtio_rx(struct virtio_net *n, struct vnet_rx_frame *f, void *ctx)
{
	struct netif_virtio *nv = ctx;
	struct pbuf *head = NULL;

	if (netif_rx_refuse_ipv6(f)) {
		nv->stats.rx_refused_ipv6++;
		for (unsigned i = 0; i < f->nseg; i++)
			virtio_net_pool_free(n, f->seg[i].buf);
		return;
	}

	if (f->total_len > 0xFFFF) {
		/* lwIP pbufs hold at most 64 KiB; only a GSO frame could be larger, and none is negotiated. */
		nv->stats.rx_dropped_nomem++;
		for (unsigned i = 0; i < f->nseg; i++)
			virtio_net_pool_free(n, f->seg[i].buf);
		return;
	}
	if (netif_rx_under_pressure(n)) {
		head = netif_rx_copy(nv, f);
	} else {
		for (unsigned i = 0; i < f->nseg; i++) {
			struct netif_rx_buf *rb = (struct netif_rx_buf *)((uint8_t *)f->seg[i].buf - VNET_BUF_HEADROOM);
			rb->nv = nv;
			rb->pc.custom_free_function = netif_rx_pbuf_free;
			struct pbuf *q = pbuf_alloced_custom(PBUF_RAW, (u16_t)f->seg[i].len, PBUF_REF, &rb->pc,
							     f->seg[i].data, (u16_t)f->seg[i].len);
			if (head)
				pbuf_cat(head, q);
			else
				head = q;
		}
		nv->stats.rx_zero_copy_frames++;
	}
	if (!head) {
		nv->stats.rx_dropped_nomem++;
		return;
	}
	if (nv->netif.input(head, &nv->netif) != ERR_OK) {
		nv->stats.rx_dropped_nomem++;
		pbuf_free(head);
	}
}

static void netif_virtio_tx_done(struct virtio_net *n, void *token, void *ctx)
{
	(void)n;
	(void)ctx;
	pbuf_free(token);
}

static void netif_virtio_link(struct virtio_net *n, int up, void *ctx)
{
	struct netif_virtio *nv = ctx;
	(void)n;
	if (up)
		netif_set_link_up(&nv->netif);
	else
		netif_set_link_down(&nv->netif);
}

static err_t netif_virtio_linkoutput(struct netif *netif, struct pbuf *p)
{
	struct netif_virtio *nv = netif->state;
	struct virtq_sg frags[TX_MAX_FRAGS];
	unsigned n = 0;
	struct pbuf *send = p;

	for (struct pbuf *q = p; q && n <= TX_MAX_FRAGS; q = q->next)
		if (q->len)
			n++;
	if (n > TX_MAX_FRAGS) {
		send = pbuf_clone(PBUF_RAW, PBUF_RAM, p);
		if (!send) {
			nv->stats.tx_dropped_nomem++;
			return ERR_MEM;
		}
		nv->stats.tx_copied_frames++;
		nv->stats.tx_copied_bytes += p->tot_len;
	} else {
		/* The driver holds its own reference until the device has read the frame. */
		pbuf_ref(p);
		nv->stats.tx_zero_copy_frames++;
	}
	n = 0;
	for (struct pbuf *q = send; q; q = q->next) {
		if (!q->len)
			continue;
		frags[n].addr = (uint64_t)(uintptr_t)q->payload;
		frags[n].len = q->len;
		n++;
	}
	int rc = virtio_net_xmit(nv->nic, frags, n, send);
	if (rc) {
		pbuf_free(send);
		nv->stats.tx_dropped_full++;
		return ERR_MEM;
	}
	return ERR_OK;
}

static err_t netif_virtio_init(struct netif *netif)
{
	struct netif_virtio *nv = netif->state;

	netif->name[0] = 'e';
	netif->name[1] = 'n';
	netif->mtu = NETIF_MTU;
	netif->hwaddr_len = ETH_HWADDR_LEN;
	memcpy(netif->hwaddr, nv->nic->mac, ETH_HWADDR_LEN);
	netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_MLD6;
	netif->output = etharp_output;
	netif->output_ip6 = ethip6_output;
	netif->linkoutput = netif_virtio_linkoutput;
	return ERR_OK;
}

static void netif_virtio_status(struct netif *netif)
{
	struct netif_virtio *nv = netif->state;
	char a[IPADDR_STRLEN_MAX], m[IPADDR_STRLEN_MAX], g[IPADDR_STRLEN_MAX];
	uint32_t ip = ip4_addr_get_u32(netif_ip4_addr(netif)), gw = ip4_addr_get_u32(netif_ip4_gw(netif));
	uint8_t v6 = 0;

	for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; i++)
		if (ip6_addr_isvalid(netif_ip6_addr_state(netif, i)))
			v6 |= (uint8_t)(1u << i);
	if (ip != nv->shown_ip4 || gw != nv->shown_gw4) {
		nv->shown_ip4 = ip;
		nv->shown_gw4 = gw;
	} else {
		ip = 0; /* unchanged: not announced again */
	}
	if (ip) {
		ip4addr_ntoa_r(netif_ip4_addr(netif), a, sizeof(a));
		ip4addr_ntoa_r(netif_ip4_netmask(netif), m, sizeof(m));
		ip4addr_ntoa_r(netif_ip4_gw(netif), g, sizeof(g));
		printf("net%u: IPv4 %s netmask %s gw %s%s\n", netif->num, a, m, g,
		       dhcp_supplied_address(netif) ? " (DHCP)" : "");
	}
	for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; i++)
		if ((v6 & ~nv->shown_ip6) & (1u << i))
			printf("net%u: IPv6 %s\n", netif->num, ip6addr_ntoa_r(netif_ip6_addr(netif, i), a, sizeof(a)));
	nv->shown_ip6 = v6;
}

/* "A.B.C.D/P" into address and netmask; -1 if malformed. */
static int netif_parse_cidr(const char *s, ip4_addr_t *addr, ip4_addr_t *mask)
{
	char tmp[48];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	unsigned prefix = 24;

	if (n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (!ip4addr_aton(tmp, addr))
		return -1;
	if (slash) {
		char *end;
		prefix = (unsigned)strtoul(slash + 1, &end, 10);
		if (end == slash + 1 || *end || prefix > 32)
			return -1;
	}
	ip4_addr_set_u32(mask, prefix ? lwip_htonl(0xFFFFFFFFu << (32 - prefix)) : 0);
	return 0;
}

struct netif_virtio *netif_virtio_add(struct virtio_net *nic, const char *ip, const char *gw, int ipv6,
				      int is_default)
{
	struct netif_virtio *nv = mem_calloc(1, sizeof(*nv));
	ip4_addr_t addr, mask, gateway;
	int dhcp = !strcmp(ip, "dhcp");

	if (!nv) {
		printf("net: no memory for a netif\n");
		return NULL;
	}
	ip4_addr_set_zero(&addr);
	ip4_addr_set_zero(&mask);
	ip4_addr_set_zero(&gateway);
	if (*ip && !dhcp && netif_parse_cidr(ip, &addr, &mask)) {
		printf("net%u: ip '%s' is not ADDR/PREFIX or dhcp; no IPv4 address\n", nic->id, ip);
		ip4_addr_set_zero(&addr);
		ip4_addr_set_zero(&mask);
	}
	if (*gw && !ip4addr_aton(gw, &gateway)) {
		printf("net%u: gw '%s' is not an IPv4 address; no gateway\n", nic->id, gw);
		ip4_addr_set_zero(&gateway);
	}
	nv->nic = nic;
	if (!netif_add(&nv->netif, &addr, &mask, &gateway, nv, netif_virtio_init, ethernet_input)) {
		printf("net%u: netif_add failed\n", nic->id);
		mem_free(nv);
		return NULL;
	}
	netif_set_status_callback(&nv->netif, netif_virtio_status);
	nic->consumer.rx = netif_virtio_rx;
	nic->consumer.tx_done = netif_virtio_tx_done;
	nic->consumer.link = netif_virtio_link;
	nic->consumer.ctx = nv;
	if (is_default)
		netif_set_default(&nv->netif);
	if (ipv6) {
		netif_create_ip6_linklocal_address(&nv->netif, 1);
		netif_set_ip6_autoconfig_enabled(&nv->netif, 1);
	}
	netif_set_up(&nv->netif);
	if (nic->link_up)
		netif_set_link_up(&nv->netif);
	if (dhcp && dhcp_start(&nv->netif) != ERR_OK)
		printf("net%u: DHCP could not start\n", nic->id);
	return nv;
}

void netif_virtio_set_noop(struct netif_virtio *nv, int noop)
{
	nv->nic->consumer.rx = noop ? NULL : netif_virtio_rx;
	printf("net%u: consumer %s\n", nv->nic->id, noop ? "noop" : "lwip");
}

size_t netif_virtio_format_stats(struct netif_virtio *nv, char *buf, size_t len)
{
	const struct netif_virtio_stats *s = &nv->stats;
	int k = snprintf(buf, len,
			 "net%u: rx_zero_copy_frames=%llu rx_copied_frames=%llu rx_copied_bytes=%llu "
			 "rx_dropped_nomem=%llu tx_zero_copy_frames=%llu tx_copied_frames=%llu tx_copied_bytes=%llu "
			 "tx_dropped_full=%llu tx_dropped_nomem=%llu rx_refused_ipv6=%llu\n",
			 nv->nic->id, (unsigned long long)s->rx_zero_copy_frames, (unsigned long long)s->rx_copied_frames,
			 (unsigned long long)s->rx_copied_bytes, (unsigned long long)s->rx_dropped_nomem,
			 (unsigned long long)s->tx_zero_copy_frames, (unsigned long long)s->tx_copied_frames,
			 (unsigned long long)s->tx_copied_bytes, (unsigned long long)s->tx_dropped_full,
			 (unsigned long long)s->tx_dropped_nomem, (unsigned long long)s->rx_refused_ipv6);
	return k < 0 ? 0 : (size_t)k;
}
