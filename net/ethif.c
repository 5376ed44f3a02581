/* lwIP netif over a netdev. Receive is zero-copy: the buffers posted on the RX ring carry a pbuf_custom in
 * their headroom, so the frame the device wrote is handed to lwIP where it lies, and lwIP freeing the pbuf
 * returns the buffer to the driver's pool. Transmit posts lwIP's pbufs themselves as descriptors and frees
 * them when the device has read them. */
#include "ethif.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/dhcp.h"
#include "lwip/etharp.h"
#include "lwip/ethip6.h"
#include "lwip/ip4.h"
#include "lwip/ip4_addr.h"
#include "lwip/ip6.h"
#include "lwip/ip_addr.h"
#include "lwip/pbuf.h"
#include "lwip/snmp.h"
#include "lwip/priv/tcp_priv.h" /* tcp_txnow */
#include "lwip/stats.h"
#include "lwip/tcp.h"
#include "lwip/udp.h"
#include "netdev.h"
#include "netif/ethernet.h"
#include "ethif_offload.h"
#include "ip6_guard.h"

/* What lives in a receive buffer's headroom, just before the buffer: where to return the buffer when lwIP
 * frees it, the pbuf lwIP gets, and a guard up to the buffer itself.
 *
 * The pbuf says "struct and data contiguous" (ETHIF_RX_PBUF_INPLACE), so a reply that reuses it (UDP echo,
 * ICMP echo) gets its headers prepended in place, where the request's were, instead of in a pbuf of its own;
 * lwIP stops prepending only at the end of the struct pbuf, i.e. at the free function, so the guard keeps
 * what it may prepend beyond the request's own headers (another IP version, options; lwIP's largest is
 * Ethernet + VLAN + IPv4 with options + UDP, 86 bytes, of which a received datagram's own headers already
 * make at least 42) away from it. Once the buffer has been handed to the NIC it becomes PBUF_REF: lwIP then
 * puts the headers of any further send of it in a pbuf of their own (ethif_linkoutput). */
#define ETHIF_RX_GUARD 64
struct ethif_rx_buf {
	struct ethif *e;
	unsigned queue;
	struct pbuf_custom pc;
	uint8_t guard[ETHIF_RX_GUARD];
};

/* Data follows the struct (lwIP may prepend headers), allocated by us (lwIP frees it only through pc's free
 * function), data not volatile (queued by reference, as PBUF_RAM is). */
#define ETHIF_RX_PBUF_INPLACE ((pbuf_type)(PBUF_TYPE_FLAG_STRUCT_DATA_CONTIGUOUS | PBUF_TYPE_ALLOC_SRC_MASK_APP_MIN))

#define ETHIF_ETH_HLEN 14

static struct ethif_rx_buf *ethif_rx_buf_of(void *buf) { return (struct ethif_rx_buf *)buf - 1; }

static struct ethif_rx_buf *ethif_rx_buf_of_pbuf(struct pbuf *p)
{
	return (struct ethif_rx_buf *)((char *)p - offsetof(struct ethif_rx_buf, pc));
}

static void ethif_rx_pbuf_free(struct pbuf *p)
{
	struct ethif_rx_buf *rb = ethif_rx_buf_of_pbuf(p);
	netdev_rx_buf_free(rb->e->nd, rb->queue, rb + 1);
}

static int ethif_is_rx_pbuf(const struct pbuf *p)
{
	return (p->flags & PBUF_FLAG_IS_CUSTOM) &&
	       ((const struct pbuf_custom *)p)->custom_free_function == ethif_rx_pbuf_free;
}

static void ethif_rx_drop(struct ethif *e, unsigned queue, struct netdev_rx_frame *f)
{
	LINK_STATS_INC(link.drop);
	for (unsigned i = 0; i < f->nseg; i++)
		netdev_rx_buf_free(e->nd, queue, f->seg[i].buf);
}

/* A copy is taken only when the pool is nearly empty: lwIP may hold ring buffers for a long time
 * (reassembly, out-of-order TCP segments), and a ring that cannot be refilled stops receive altogether. */
static int ethif_rx_under_pressure(struct ethif *e, unsigned queue)
{
	unsigned size, free = e->nd->ops->rx_pool_free(e->nd, queue, &size);
	return free < size / 8;
}

/* Both builders leave out the frame's first skip bytes (the Ethernet header of a super-segment, which goes
 * straight to IP: see ethif_rx). */
static struct pbuf *ethif_rx_copy(struct ethif *e, unsigned queue, struct netdev_rx_frame *f, unsigned skip)
{
	struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)(f->total_len - skip), PBUF_POOL);
	uint32_t off = 0;

	if (p) {
		for (unsigned i = 0; i < f->nseg; i++) {
			unsigned cut = i == 0 ? skip : 0;
			pbuf_take_at(p, f->seg[i].data + cut, (u16_t)(f->seg[i].len - cut), (u16_t)off);
			off += f->seg[i].len - cut;
		}
		e->stats.rx_copied_frames++;
		e->stats.rx_copied_bytes += f->total_len;
	}
	for (unsigned i = 0; i < f->nseg; i++)
		netdev_rx_buf_free(e->nd, queue, f->seg[i].buf);
	return p;
}

/* Hands the frame's buffers to lwIP as a pbuf chain, each pbuf living in its buffer's headroom. */
static struct pbuf *ethif_rx_zero_copy(struct ethif *e, unsigned queue, struct netdev_rx_frame *f, unsigned skip)
{
	struct pbuf *head = NULL;

	for (unsigned i = 0; i < f->nseg; i++) {
		struct ethif_rx_buf *rb = ethif_rx_buf_of(f->seg[i].buf);
		unsigned cut = i == 0 ? skip : 0;
		rb->e = e;
		rb->queue = queue;
		rb->pc.custom_free_function = ethif_rx_pbuf_free;
		struct pbuf *q = pbuf_alloced_custom(PBUF_RAW, (u16_t)(f->seg[i].len - cut), ETHIF_RX_PBUF_INPLACE,
						     &rb->pc, f->seg[i].data + cut, (u16_t)(f->seg[i].len - cut));
		if (head)
			pbuf_cat(head, q);
		else
			head = q;
	}
	e->stats.rx_zero_copy_frames++;
	return head;
}

/* A super-segment's IP packet (the Ethernet header left out) straight to IPv4 or IPv6 input. */
static err_t ethif_rx_ip(struct ethif *e, const struct netdev_rx_frame *f, struct pbuf *p)
{
	uint16_t type = (uint16_t)(f->seg[0].data[12] << 8 | f->seg[0].data[13]);

	e->stats.rx_gso_to_ip++;
	if (type == ETHTYPE_IP)
		return ip4_input(p, &e->netif);
	if (type == ETHTYPE_IPV6)
		return ip6_input(p, &e->netif);
	/* A TCP super-segment that is not IP (a VLAN tag, a lying device): nothing here handles it. */
	e->stats.rx_gso_not_ip++;
	pbuf_free(p);
	return ERR_OK;
}

static void ethif_rx(struct netdev *nd, unsigned queue, struct netdev_rx_frame *f, void *ctx)
{
	struct ethif *e = ctx;
	struct pbuf *head;

	(void)nd;
	if (ip6_guard_refuse(f)) {
		e->stats.rx_refused_ipv6++;
		ethif_rx_drop(e, queue, f);
		return;
	}
	/* A super-segment (GSO) is handed to IP without its Ethernet header, so the largest IP packet (65535
	 * bytes) fits a pbuf chain (tot_len is 16 bits; with the header it would not). It is TCP by
	 * construction (the driver accepts no other gso type) and is addressed to us: ethernet_input would only
	 * have dispatched it by type. Anything still longer cannot be an IP packet: dropped and counted. */
	unsigned skip = f->gso != NETDEV_GSO_NONE ? ETHIF_ETH_HLEN : 0;
	if (f->total_len - skip > 0xFFFF) {
		e->stats.rx_too_long++;
		ethif_rx_drop(e, queue, f);
		return;
	}
	LINK_STATS_INC(link.recv);
	uint16_t trust = ethif_rx_csum_trust(f);
	if (trust)
		e->stats.rx_csum_trusted++;
	else if (f->csum != NETDEV_RX_CSUM_NONE)
		e->stats.rx_csum_untrusted++; /* a fragment, or not TCP/UDP: lwIP verifies it anyway */
	head = ethif_rx_under_pressure(e, queue) ? ethif_rx_copy(e, queue, f, skip) : ethif_rx_zero_copy(e, queue, f, skip);
	if (!head) {
		e->stats.rx_dropped_nomem++;
		LINK_STATS_INC(link.memerr);
		return;
	}
	/* Per-frame checksum policy (ethif_offload.h): the checks this frame earned are off for exactly this
	 * synchronous input call; the generation flags are never touched. */
	uint16_t flags = e->netif.chksum_flags;
	uint32_t chkerr = ethif_chkerr_total();
	e->netif.chksum_flags = (uint16_t)(flags & ~trust);
	err_t err = skip ? ethif_rx_ip(e, f, head) : e->netif.input(head, &e->netif);
	e->netif.chksum_flags = flags;
	if (ethif_chkerr_total() != chkerr)
		e->stats.rx_csum_bad++;
	if (err != ERR_OK) {
		e->stats.rx_dropped_nomem++;
		LINK_STATS_INC(link.drop);
		pbuf_free(head);
	}
}

static void ethif_tx_done(struct netdev *nd, unsigned queue, void *token, void *ctx)
{
	(void)nd;
	(void)queue;
	(void)ctx;
	pbuf_free(token);
}

/* A TCP segment that linkoutput refused with ERR_MEM while the ring was full stays on its connection's unsent
 * queue, flagged TF_NAGLEMEMERR, until lwIP's fast timer retries it (up to 250 ms later). The ring has room
 * again: lwIP's tcp_txnow() retries every such connection now. */
static void ethif_tx_space(struct netdev *nd, unsigned queue, void *ctx)
{
	struct ethif *e = ctx;

	(void)nd;
	(void)queue;
	if (!e->tx_refused)
		return;
	e->tx_refused = 0;
	e->stats.tx_tcp_resumed++;
	tcp_txnow();
}

static void ethif_link(struct netdev *nd, int up, void *ctx)
{
	struct ethif *e = ctx;
	(void)nd;
	if (up)
		netif_set_link_up(&e->netif);
	else
		netif_set_link_down(&e->netif);
}

/* Whether the nd->tx_headroom bytes before p's payload are free for the driver's header: in lwIP's own
 * contiguous pbufs (PBUF_RAM, PBUF_POOL), whose layers keep PBUF_LINK_ENCAPSULATION_HLEN bytes for it, down
 * to the struct; in a receive buffer down to its guard. Never in a PBUF_REF or PBUF_ROM pbuf, whose memory is
 * not lwIP's. */
static int ethif_tx_headroom(const struct ethif *e, struct pbuf *p)
{
	const uint8_t *lim;

	if (!e->nd->tx_headroom || !p->len || !(p->type_internal & PBUF_TYPE_FLAG_STRUCT_DATA_CONTIGUOUS))
		return 0;
	if (ethif_is_rx_pbuf(p))
		lim = ethif_rx_buf_of_pbuf(p)->guard;
	else if (p->flags & PBUF_FLAG_IS_CUSTOM)
		return 0;
	else
		lim = (const uint8_t *)p + LWIP_MEM_ALIGN_SIZE(sizeof(struct pbuf));
	return (const uint8_t *)p->payload >= lim + e->nd->tx_headroom;
}

/* The non-empty pbufs of a chain as pieces; NETDEV_TX_MAX_FRAGS + 1 if there are more than that. */
static unsigned ethif_tx_frags(struct pbuf *p, struct netdev_sg *frags)
{
	unsigned n = 0;

	for (struct pbuf *q = p; q; q = q->next) {
		if (!q->len)
			continue;
		if (n == NETDEV_TX_MAX_FRAGS)
			return NETDEV_TX_MAX_FRAGS + 1;
		frags[n].addr = (uint64_t)(uintptr_t)q->payload;
		frags[n].len = q->len;
		n++;
	}
	return n;
}

static err_t ethif_linkoutput(struct netif *netif, struct pbuf *p)
{
	struct ethif *e = netif->state;
	struct netdev_sg frags[NETDEV_TX_MAX_FRAGS];
	struct netdev_tx_offload off = { 0 };
	struct pbuf *send = p;
	int csum = 0;

	unsigned n = ethif_tx_frags(p, frags);
	if (e->tx_csum) {
		/* lwIP left this TCP segment's checksum out (NETIF_CHECKSUM_GEN_TCP off), or this UDP datagram's
		 * (ethif_udp_csum_hint): the NIC completes it. */
		csum = ethif_tx_csum_prepare(p, &off);
		if (csum < 0)
			n = NETDEV_TX_MAX_FRAGS + 1; /* headers split over pbufs: make the frame contiguous first */
	}
	if (n > NETDEV_TX_MAX_FRAGS) {
		/* PBUF_RAW_TX: with room for the driver's header in front. */
		send = pbuf_clone(PBUF_RAW_TX, PBUF_RAM, p);
		if (!send) {
			e->stats.tx_dropped_nomem++;
			LINK_STATS_INC(link.memerr);
			return ERR_MEM;
		}
		e->stats.tx_copied_frames++;
		e->stats.tx_copied_bytes += p->tot_len;
		if (csum < 0)
			csum = ethif_tx_csum_prepare(send, &off);
		n = ethif_tx_frags(send, frags);
	} else {
		/* The driver holds its own reference until the device has read the frame. */
		pbuf_ref(p);
		e->stats.tx_zero_copy_frames++;
	}
	/* TCP segments keep a header descriptor of their own: with the header in front of them, guest-to-host
	 * TCP ran at 0.6x and erratic (lwiperf's client: 230-1020 against 1020-1390 Mbit/s in back-to-back
	 * runs), for a cause not found yet; the replies and datagrams that gain from it are not TCP. */
	int inplace = ethif_tx_headroom(e, send) && !ethif_tx_is_tcp(send, csum > 0 ? &off : NULL);
	off.flags = (csum > 0 ? NETDEV_TX_F_CSUM : 0) | (inplace ? NETDEV_TX_F_HEADROOM : 0);
	/* A receive buffer reused for a reply has had its headers prepended once; a later send of the same pbuf
	 * (lwIP does not restore the payload pointer) gets them in a pbuf of its own, away from the guard. */
	if (ethif_is_rx_pbuf(send)) {
		send->type_internal = (u8_t)PBUF_REF;
		e->stats.tx_rx_buf_reused++;
	}
	int rc = netdev_xmit(e->nd, 0, frags, n, send, off.flags ? &off : NULL);
	if (!rc && csum > 0)
		e->stats.tx_csum_requested++;
	if (rc) {
		pbuf_free(send);
		e->stats.tx_dropped_full++;
		e->tx_refused = 1;
		LINK_STATS_INC(link.drop);
		return ERR_MEM;
	}
	LINK_STATS_INC(link.xmit);
	return ERR_OK;
}

static err_t ethif_init(struct netif *netif)
{
	struct ethif *e = netif->state;

	netif->name[0] = 'e';
	netif->name[1] = 'n';
	netif->mtu = (u16_t)e->nd->mtu;
	netif->hwaddr_len = ETH_HWADDR_LEN;
	memcpy(netif->hwaddr, e->nd->mac, ETH_HWADDR_LEN);
	netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_MLD6;
	netif->output = etharp_output;
	netif->output_ip6 = ethip6_output;
	netif->linkoutput = ethif_linkoutput;
	/* Transmit checksum offload: every TCP segment, since TCP segments are never fragmented. lwIP computes a
	 * UDP checksum before it fragments a datagram, and the NIC could only complete it over one frame, so UDP
	 * is offloaded per datagram instead (ethif_udp_csum_hint). */
	if (e->nd->features & NETDEV_F_TX_CSUM) {
		e->tx_csum = 1;
		NETIF_SET_CHECKSUM_CTRL(netif, NETIF_CHECKSUM_ENABLE_ALL & ~NETIF_CHECKSUM_GEN_TCP);
	}
	return ERR_OK;
}

void ethif_udp_csum_hint(struct udp_pcb *pcb, const ip_addr_t *dst, u16_t len, const struct netif *out)
{
	/* lwIP skips the checksum of an IPv4 datagram on a pcb flagged NOCHKSUM (RFC 768 allows none) and never
	 * of an IPv6 one; the flag is set for exactly the datagrams this NIC will complete in one frame, so a
	 * datagram that is fragmented, or leaves through another netif, still gets lwIP's checksum. */
	u8_t flags = udp_flags(pcb) & (u8_t)~UDP_FLAGS_NOCHKSUM;
	if (out && out->linkoutput == ethif_linkoutput && ((struct ethif *)out->state)->tx_csum && IP_IS_V4(dst) &&
	    (u32_t)len + UDP_HLEN + IP_HLEN <= out->mtu)
		flags |= UDP_FLAGS_NOCHKSUM;
	udp_setflags(pcb, flags);
}

static void ethif_status(struct netif *netif)
{
	struct ethif *e = netif->state;
	char a[IPADDR_STRLEN_MAX], m[IPADDR_STRLEN_MAX], g[IPADDR_STRLEN_MAX];
	uint32_t ip = ip4_addr_get_u32(netif_ip4_addr(netif)), gw = ip4_addr_get_u32(netif_ip4_gw(netif));
	uint8_t v6 = 0;

	for (int i = 0; i < LWIP_IPV6_NUM_ADDRESSES; i++)
		if (ip6_addr_isvalid(netif_ip6_addr_state(netif, i)))
			v6 |= (uint8_t)(1u << i);
	if (ip != e->shown_ip4 || gw != e->shown_gw4) {
		e->shown_ip4 = ip;
		e->shown_gw4 = gw;
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
		if ((v6 & ~e->shown_ip6) & (1u << i))
			printf("net%u: IPv6 %s\n", netif->num, ip6addr_ntoa_r(netif_ip6_addr(netif, i), a, sizeof(a)));
	e->shown_ip6 = v6;
}

/* "A.B.C.D/P" into address and netmask; -1 if malformed. */
static int ethif_parse_cidr(const char *s, ip4_addr_t *addr, ip4_addr_t *mask)
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

static const struct netdev_consumer ethif_consumer_template = {
	.rx = ethif_rx,
	.tx_done = ethif_tx_done,
	.link = ethif_link,
	.tx_space = ethif_tx_space,
};

/* Addresses from the command line's words; a malformed one is reported and left unset. */
static void ethif_parse_addrs(const struct netdev *nd, const char *ip, const char *gw, ip4_addr_t *addr,
			      ip4_addr_t *mask, ip4_addr_t *gateway)
{
	ip4_addr_set_zero(addr);
	ip4_addr_set_zero(mask);
	ip4_addr_set_zero(gateway);
	if (*ip && strcmp(ip, "dhcp") && ethif_parse_cidr(ip, addr, mask)) {
		printf("%s: ip '%s' is not ADDR/PREFIX or dhcp; no IPv4 address\n", nd->name, ip);
		ip4_addr_set_zero(addr);
		ip4_addr_set_zero(mask);
	}
	if (*gw && !ip4addr_aton(gw, gateway)) {
		printf("%s: gw '%s' is not an IPv4 address; no gateway\n", nd->name, gw);
		ip4_addr_set_zero(gateway);
	}
}

struct ethif *ethif_add(struct netdev *nd, const char *ip, const char *gw, int ipv6, int is_default)
{
	struct netdev_consumer c = ethif_consumer_template;
	ip4_addr_t addr, mask, gateway;
	struct ethif *e;

	if (nd->rx_headroom < sizeof(struct ethif_rx_buf)) {
		printf("%s: %u bytes of receive headroom, %zu needed for zero-copy receive\n", nd->name, nd->rx_headroom,
		       sizeof(struct ethif_rx_buf));
		return NULL;
	}
	e = mem_calloc(1, sizeof(*e));
	if (!e) {
		printf("%s: no memory for a netif\n", nd->name);
		return NULL;
	}
	ethif_parse_addrs(nd, ip, gw, &addr, &mask, &gateway);
	e->nd = nd;
	if (!netif_add(&e->netif, &addr, &mask, &gateway, e, ethif_init, ethernet_input)) {
		printf("%s: netif_add failed\n", nd->name);
		mem_free(e);
		return NULL;
	}
	netif_set_status_callback(&e->netif, ethif_status);
	c.ctx = e;
	netdev_attach(nd, &c);
	if (is_default)
		netif_set_default(&e->netif);
	if (ipv6) {
		netif_create_ip6_linklocal_address(&e->netif, 1);
		netif_set_ip6_autoconfig_enabled(&e->netif, 1);
	}
	netif_set_up(&e->netif);
	if (nd->link_up)
		netif_set_link_up(&e->netif);
	if (!strcmp(ip, "dhcp") && dhcp_start(&e->netif) != ERR_OK)
		printf("%s: DHCP could not start\n", nd->name);
	return e;
}

void ethif_set_noop(struct ethif *e, int noop)
{
	void (*rx)(struct netdev *, unsigned, struct netdev_rx_frame *, void *) = noop ? NULL : ethif_rx;

	if (e->nd->consumer.rx == rx)
		return;
	e->nd->consumer.rx = rx;
	printf("%s: consumer %s\n", e->nd->name, noop ? "noop" : "lwip");
}

void ethif_reset_stats(struct ethif *e) { memset(&e->stats, 0, sizeof(e->stats)); }

size_t ethif_format_stats(struct ethif *e, char *buf, size_t len)
{
	const struct ethif_stats *s = &e->stats;
	int k = snprintf(buf, len,
			 "%s: rx_zero_copy_frames=%llu rx_copied_frames=%llu rx_copied_bytes=%llu "
			 "rx_dropped_nomem=%llu tx_zero_copy_frames=%llu tx_rx_buf_reused=%llu tx_copied_frames=%llu "
			 "tx_copied_bytes=%llu "
			 "tx_dropped_full=%llu tx_dropped_nomem=%llu rx_refused_ipv6=%llu tx_tcp_resumed=%llu "
			 "rx_csum_trusted=%llu rx_csum_untrusted=%llu rx_csum_bad=%llu tx_csum_requested=%llu "
			 "rx_gso_to_ip=%llu rx_gso_not_ip=%llu rx_too_long=%llu\n",
			 e->nd->name, (unsigned long long)s->rx_zero_copy_frames, (unsigned long long)s->rx_copied_frames,
			 (unsigned long long)s->rx_copied_bytes, (unsigned long long)s->rx_dropped_nomem,
			 (unsigned long long)s->tx_zero_copy_frames, (unsigned long long)s->tx_rx_buf_reused,
			 (unsigned long long)s->tx_copied_frames,
			 (unsigned long long)s->tx_copied_bytes, (unsigned long long)s->tx_dropped_full,
			 (unsigned long long)s->tx_dropped_nomem, (unsigned long long)s->rx_refused_ipv6,
			 (unsigned long long)s->tx_tcp_resumed, (unsigned long long)s->rx_csum_trusted,
			 (unsigned long long)s->rx_csum_untrusted, (unsigned long long)s->rx_csum_bad,
			 (unsigned long long)s->tx_csum_requested, (unsigned long long)s->rx_gso_to_ip,
			 (unsigned long long)s->rx_gso_not_ip, (unsigned long long)s->rx_too_long);
	return k < 0 ? 0 : (size_t)k;
}
