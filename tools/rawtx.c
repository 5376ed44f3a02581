/* rawtx: Ethernet frames for tools/load's --packet mode; see rawtx.h. */
#define _GNU_SOURCE
#include "rawtx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

uint16_t rawtx_csum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void rawtx_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

size_t rawtx_build(uint8_t *buf, const struct rawtx_flow *flow, unsigned payload, uint16_t ip_id)
{
	if (payload > 65535 - 20 - 8)
		return 0;
	uint8_t *eth = buf, *ip = buf + 14, *udp = ip + 20;
	memcpy(eth, flow->dst_mac, 6);
	memcpy(eth + 6, flow->src_mac, 6);
	rawtx_put16(eth + 12, ETHERTYPE_IP);
	memset(ip, 0, 20);
	ip[0] = 0x45; /* version 4, 5 words of header */
	rawtx_put16(ip + 2, (uint16_t)(20 + 8 + payload));
	rawtx_put16(ip + 4, ip_id);
	rawtx_put16(ip + 6, 0x4000); /* DF: these frames are never fragmented */
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	memcpy(ip + 12, &flow->src, 4);
	memcpy(ip + 16, &flow->dst, 4);
	rawtx_put16(ip + 10, rawtx_csum(ip, 20));
	rawtx_put16(udp, flow->sport);
	rawtx_put16(udp + 2, flow->dport);
	rawtx_put16(udp + 4, (uint16_t)(8 + payload));
	rawtx_put16(udp + 6, 0);
	memset(udp + 8, 0, payload);
	return RAWTX_HDR_LEN + payload;
}

int rawtx_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
		return -1;
	if (strlen(s) != 17)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

int rawtx_open(const char *ifname, struct rawtx_flow *flow)
{
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0); /* protocol 0: send only, receive nothing */
	if (fd < 0) {
		fprintf(stderr, "load: AF_PACKET socket: %s (needs CAP_NET_RAW)\n", strerror(errno));
		return -1;
	}
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	const char *what = NULL;
	if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0)
		what = "no such interface";
	int index = ifr.ifr_ifindex;
	if (!what && ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		what = "no hardware address";
	if (!what)
		memcpy(flow->src_mac, ifr.ifr_hwaddr.sa_data, 6);
	if (!what && ioctl(fd, SIOCGIFADDR, &ifr) < 0)
		what = "no IPv4 address";
	if (!what)
		flow->src = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr;
	/* Straight to the driver: no qdisc, so no qdisc drops or requeues between the sender and the tap. */
	int one = 1;
	if (!what && setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0)
		what = "PACKET_QDISC_BYPASS refused";
	struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_ifindex = index};
	if (!what && bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		what = "cannot bind";
	if (what) {
		fprintf(stderr, "load: --packet %s: %s (%s)\n", ifname, what, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}
