#include "tcp_isn.h"

#include <string.h>

#include "lwip/ip_addr.h"
#include "lwip_hooks.h"
#include "random.h"
#include "siphash.h"
#include "time.h"

static struct siphash_key tcp_isn_key;

void tcp_isn_init(void) { random_bytes(&tcp_isn_key, sizeof(tcp_isn_key)); }

/* Appends an address's bytes; the family byte keeps an IPv4 tuple distinct from an IPv6 one with the same bytes. */
static size_t tcp_isn_put_addr(uint8_t *buf, const ip_addr_t *a)
{
	if (IP_IS_V6(a)) {
		buf[0] = 6;
		memcpy(buf + 1, ip_2_ip6(a)->addr, 16);
		return 17;
	}
	buf[0] = 4;
	memcpy(buf + 1, &ip_2_ip4(a)->addr, 4);
	return 5;
}

/* LWIP_HOOK_TCP_ISN: lwIP calls it for every new connection, active (tcp_connect) or passive (a SYN to a
 * listener). The clock term keeps ISNs of successive incarnations of one 4-tuple increasing (RFC 793's reason for
 * a clock), the keyed hash makes them unrelated across tuples. */
u32_t tcp_isn_hook(const ip_addr_t *local_ip, u16_t local_port, const ip_addr_t *remote_ip, u16_t remote_port)
{
	uint8_t msg[2 * 17 + 4];
	size_t n = 0;

	n += tcp_isn_put_addr(msg + n, local_ip);
	n += tcp_isn_put_addr(msg + n, remote_ip);
	msg[n++] = (uint8_t)(local_port >> 8);
	msg[n++] = (uint8_t)local_port;
	msg[n++] = (uint8_t)(remote_port >> 8);
	msg[n++] = (uint8_t)remote_port;
	return (u32_t)siphash24(&tcp_isn_key, msg, n) + (u32_t)(time_ns() / 4000);
}
