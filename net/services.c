#include "services.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "loop.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"
#include "lwip/udp.h"
#include "lwip/apps/lwiperf.h"
#include "mm.h"
#include "net.h"
#include "ethif.h"
#include "tcp_guard.h"
#include "cpu.h"
#include "time.h"

#define STATUS_MAX 4096

static struct {
	uint64_t udp_echo, udp_echo_fail, tcp_echo_conns, tcp_echo_bytes, discard_bytes, discard_datagrams, status_queries;
	uint64_t iperf_reports, iperf_clients;
	uint64_t tcp_reaped; /* TCP connections closed because they were idle for services_tcp_idle_s */
} svc;

/* lwIP calls a connection's poll callback every SERVICES_POLL_TICKS coarse timer ticks (TCP_SLOW_INTERVAL,
 * 500 ms): often enough to reap within a second of the deadline, rarely enough to cost nothing. */
#define SERVICES_POLL_TICKS 2
static unsigned services_tcp_idle_s;

/* Ends a connection whose peer is done or that has answered: no more receive callbacks, a graceful close,
 * or an abort if lwIP has no memory to queue the FIN. */
static err_t services_tcp_finish(struct tcp_pcb *pcb)
{
	tcp_recv(pcb, NULL);
	tcp_poll(pcb, NULL, 0);
	if (tcp_close(pcb) == ERR_OK)
		return ERR_OK;
	/* The pcb is gone: a receive callback must say so to lwIP (ERR_ABRT), or lwIP would use it again. */
	tcp_abort(pcb);
	return ERR_ABRT;
}

/* For receive callbacks of services that answer and close: the peer closed (p NULL) or an error came, so
 * the connection is finished here (and p freed). Returns 1 if so, with what the callback must return in
 * *ret. */
static int services_tcp_ended(struct tcp_pcb *pcb, struct pbuf *p, err_t err, err_t *ret)
{
	if (p && err == ERR_OK)
		return 0;
	if (p)
		pbuf_free(p);
	*ret = services_tcp_finish(pcb);
	return 1;
}

/* Whether pcb has received nothing for at least services_tcp_idle_s. lwIP stamps pcb->tmr with its coarse clock
 * (tcp_ticks, one tick per TCP_SLOW_INTERVAL) whenever a segment arrives for the connection, so this needs no
 * state of our own; one tick less is counted because the stamp may have been taken just before a tick. */
static int services_tcp_idle(const struct tcp_pcb *pcb)
{
	u32_t ticks = tcp_ticks - pcb->tmr;
	return services_tcp_idle_s && ticks &&
	       (uint64_t)(ticks - 1) * TCP_SLOW_INTERVAL >= (uint64_t)services_tcp_idle_s * 1000;
}

/* Poll callback of the stateless services: closes an idle connection. Returns ERR_ABRT if it had to abort. */
static err_t services_tcp_poll(void *arg, struct tcp_pcb *pcb)
{
	(void)arg;
	if (!services_tcp_idle(pcb))
		return ERR_OK;
	svc.tcp_reaped++;
	tcp_recv(pcb, NULL);
	tcp_poll(pcb, NULL, 0);
	if (tcp_close(pcb) != ERR_OK) {
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	return ERR_OK;
}

/* Accepts a connection for a service that needs no per-connection state: the listener's arg is the service's
 * receive callback. */
static err_t services_tcp_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	tcp_recv(pcb, (tcp_recv_fn)arg);
	tcp_poll(pcb, services_tcp_poll, SERVICES_POLL_TICKS);
	return ERR_OK;
}

/* ---- echo ---- */

static void echo_udp_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr, u16_t port)
{
	(void)arg;
	/* The same pbuf goes back out: the driver sends the payload from the receive buffer it arrived in,
	 * without a copy, and the NIC completes its checksum. */
	ethif_udp_csum_hint(pcb, addr, p->tot_len, ip_current_input_netif());
	if (udp_sendto(pcb, p, addr, port) == ERR_OK)
		svc.udp_echo++;
	else
		svc.udp_echo_fail++;
	pbuf_free(p);
}

/* TCP echo: what could not be queued for sending yet waits in `pending` until the peer acknowledges data.
 * When the peer half-closes, the connection is closed only once everything received has been echoed: lwIP
 * answers a close with unconsumed received data with a reset, which would lose the tail. */
struct echo_conn {
	struct pbuf *pending;
	int closing;
};

/* Returns ERR_ABRT if the connection had to be aborted (lwIP callbacks must then return ERR_ABRT). */
static err_t echo_tcp_close(struct tcp_pcb *pcb, struct echo_conn *c)
{
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	tcp_poll(pcb, NULL, 0);
	if (c) {
		if (c->pending)
			pbuf_free(c->pending);
		mem_free(c);
	}
	if (tcp_close(pcb) != ERR_OK) {
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	return ERR_OK;
}

/* An idle echo connection is closed like a finished one; what it had not echoed yet is dropped with it. */
static err_t echo_tcp_poll(void *arg, struct tcp_pcb *pcb)
{
	if (!services_tcp_idle(pcb))
		return ERR_OK;
	svc.tcp_reaped++;
	return echo_tcp_close(pcb, arg);
}

static err_t echo_tcp_flush(struct tcp_pcb *pcb, struct echo_conn *c)
{
	while (c->pending) {
		struct pbuf *p = c->pending;
		u16_t n = p->len < tcp_sndbuf(pcb) ? p->len : tcp_sndbuf(pcb);
		if (n == 0 || tcp_write(pcb, p->payload, n, TCP_WRITE_FLAG_COPY) != ERR_OK)
			break;
		svc.tcp_echo_bytes += n;
		tcp_recved(pcb, n);
		if (n < p->len) {
			pbuf_remove_header(p, n);
			break;
		}
		c->pending = p->next;
		if (c->pending)
			pbuf_ref(c->pending);
		pbuf_free(p);
	}
	tcp_output(pcb);
	if (c->closing && !c->pending)
		return echo_tcp_close(pcb, c);
	return ERR_OK;
}

static err_t echo_tcp_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	(void)len;
	return arg ? echo_tcp_flush(pcb, arg) : ERR_OK;
}

static err_t echo_tcp_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct echo_conn *c = arg;

	if (err != ERR_OK) {
		if (p)
			pbuf_free(p);
		return echo_tcp_close(pcb, c);
	}
	if (!p) {
		/* The peer is done sending: finish echoing, then close (echo_tcp_flush). */
		c->closing = 1;
		return echo_tcp_flush(pcb, c);
	}
	if (c->pending)
		pbuf_cat(c->pending, p);
	else
		c->pending = p;
	return echo_tcp_flush(pcb, c);
}

static void echo_tcp_err(void *arg, err_t err)
{
	struct echo_conn *c = arg;
	(void)err;
	/* The pcb is already gone. */
	if (c) {
		if (c->pending)
			pbuf_free(c->pending);
		mem_free(c);
	}
}

static err_t echo_tcp_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	(void)arg;
	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	struct echo_conn *c = mem_calloc(1, sizeof(*c));
	if (!c)
		return ERR_MEM;
	svc.tcp_echo_conns++;
	tcp_arg(pcb, c);
	tcp_recv(pcb, echo_tcp_recv);
	tcp_sent(pcb, echo_tcp_sent);
	tcp_err(pcb, echo_tcp_err);
	tcp_poll(pcb, echo_tcp_poll, SERVICES_POLL_TICKS);
	tcp_nagle_disable(pcb);
	return ERR_OK;
}

/* ---- discard ---- */

static void discard_udp_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr, u16_t port)
{
	(void)arg;
	(void)pcb;
	(void)addr;
	(void)port;
	svc.discard_bytes += p->tot_len;
	svc.discard_datagrams++;
	pbuf_free(p);
}

static err_t discard_tcp_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	err_t ret;
	(void)arg;
	if (services_tcp_ended(pcb, p, err, &ret))
		return ret;
	svc.discard_bytes += p->tot_len;
	tcp_recved(pcb, p->tot_len);
	pbuf_free(p);
	return ERR_OK;
}

/* ---- iperf (lwIP's lwiperf app) ---- */

static void iperf_report(void *arg, enum lwiperf_report_type type, const ip_addr_t *local_addr, u16_t local_port,
			 const ip_addr_t *remote_addr, u16_t remote_port, u32_t bytes, u32_t ms, u32_t kbits)
{
	(void)arg;
	(void)local_addr;
	(void)local_port;
	(void)remote_port;
	svc.iperf_reports++;
	printf("iperf: report type %d from %s: %lu bytes in %lu ms, %lu kbit/s\n", (int)type, ipaddr_ntoa(remote_addr),
	       (unsigned long)bytes, (unsigned long)ms, (unsigned long)kbits);
}

/* lwiperf's client (iperf2's protocol): 10 s of data towards an iperf2 server, guest -> host. lwIP 2.1.3
 * fixes the duration (its settings TODO). Only an on-link IPv4 address is accepted: the command also arrives
 * over the network (the status service), and must not make the guest send 10 s of TCP anywhere a remote
 * requester names. */
size_t services_iperf_client(const char *addr, const char *port, char *out, size_t len)
{
	ip_addr_t ip;
	char *end = NULL;
	unsigned long p = port ? strtoul(port, &end, 10) : LWIPERF_TCP_PORT_DEFAULT;
	struct netif *netif;
	int onlink = 0;

	if (!addr || !ipaddr_aton(addr, &ip) || !IP_IS_V4(&ip) || (port && (*end || p == 0 || p > 65535)))
		return (size_t)snprintf(out, len, "error: usage: iperf IPV4ADDR [PORT]\n");
	NETIF_FOREACH(netif)
		if (netif_is_up(netif) && !ip4_addr_isany_val(*netif_ip4_addr(netif)) &&
		    ip4_addr_netcmp(ip_2_ip4(&ip), netif_ip4_addr(netif), netif_ip4_netmask(netif)))
			onlink = 1;
	if (!onlink)
		return (size_t)snprintf(out, len, "error: iperf: %s is not on a local subnet\n", addr);
	if (!lwiperf_start_tcp_client(&ip, (u16_t)p, LWIPERF_CLIENT, iperf_report, NULL))
		return (size_t)snprintf(out, len, "error: iperf: no memory for a client\n");
	svc.iperf_clients++;
	return (size_t)snprintf(out, len, "iperf: client sending to %s:%lu for 10 s\n", addr, p);
}

/* ---- status ---- */

static char status_buf[STATUS_MAX];

/* Appends to buf[*used..len) and advances *used, never past len - 1 (the output is cut, still terminated). */
static void status_append(char *buf, size_t len, size_t *used, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void status_append(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(buf + *used, *used < len ? len - *used : 0, fmt, ap);
	va_end(ap);
	if (k > 0)
		*used += (size_t)k;
	if (*used >= len)
		*used = len - 1;
}

size_t services_format_status(char *buf, size_t len)
{
	size_t used = 0;

#define APPEND(...) status_append(buf, len, &used, __VA_ARGS__)

	APPEND("uptime_ms=%llu ticks=%llu heap_used=%zu heap_size=%zu free_pages=%llu\n",
	       (unsigned long long)(time_ns() / 1000000), (unsigned long long)timer_ticks, heap_used(), heap_size(),
	       (unsigned long long)kernel_pmm.free_pages);
	uint64_t elapsed = rdtsc() - loop_start_tsc;
	APPEND("idle_pct=%.1f\n", elapsed ? 100.0 * (double)loop_idle_tsc / (double)elapsed : 0.0);
	/* Since boot, like uptime_ms: two readings give the halted share of the time between them. */
	APPEND("idle_ms=%llu\n", (unsigned long long)(tsc_to_ns(loop_idle_tsc) / 1000000));
	APPEND("timer: wakeups=%llu early=%llu\n", (unsigned long long)timer_wakeups, (unsigned long long)timer_early);
	for (unsigned i = 0; i < netdev_count() && used < len - 1; i++)
		used += netdev_get(i)->ops->format_summary(netdev_get(i), buf + used, len - used);
	if (used >= len)
		used = len - 1;
	for (unsigned i = 0; i < netdev_count() && used < len - 1; i++)
		used += netdev_get(i)->ops->format_stats(netdev_get(i), buf + used, len - used);
	if (used >= len)
		used = len - 1;
	for (unsigned i = 0; i < netdev_count() && used < len - 1; i++)
		if (net_ethif(i))
			used += ethif_format_stats(net_ethif(i), buf + used, len - used);
	if (used >= len)
		used = len - 1;
	APPEND("services: udp_echo=%llu udp_echo_fail=%llu tcp_echo_conns=%llu tcp_echo_bytes=%llu "
	       "discard_bytes=%llu discard_datagrams=%llu status_queries=%llu iperf_reports=%llu iperf_clients=%llu\n",
	       (unsigned long long)svc.udp_echo, (unsigned long long)svc.udp_echo_fail,
	       (unsigned long long)svc.tcp_echo_conns, (unsigned long long)svc.tcp_echo_bytes,
	       (unsigned long long)svc.discard_bytes, (unsigned long long)svc.discard_datagrams,
	       (unsigned long long)svc.status_queries,
	       (unsigned long long)svc.iperf_reports, (unsigned long long)svc.iperf_clients);
	struct tcp_guard_counts tc;
	tcp_guard_count(&tc);
	APPEND("tcp: conns=%u max_conns=%u syn_rcvd=%u time_wait=%u syn_evicted=%llu refused=%llu reaped=%llu "
	       "idle_s=%u\n",
	       tc.conns, tcp_guard_max_conns, tc.syn_rcvd, tc.time_wait,
	       (unsigned long long)tcp_guard_stats.syn_evicted, (unsigned long long)tcp_guard_stats.refused,
	       (unsigned long long)svc.tcp_reaped, services_tcp_idle_s);
	APPEND("lwip: link_recv=%u link_xmit=%u link_drop=%u ip_recv=%u ip_drop=%u ip_chkerr=%u ip_lenerr=%u ip_proterr=%u "
	       "ipfrag_recv=%u ipfrag_drop=%u icmp_recv=%u icmp_xmit=%u udp_recv=%u udp_drop=%u udp_chkerr=%u "
	       "tcp_recv=%u tcp_drop=%u tcp_chkerr=%u tcp_xmit=%u etharp_recv=%u etharp_drop=%u "
	       "pbuf_pool_used=%u pbuf_pool_err=%u mem_used=%lu mem_err=%u\n",
	       lwip_stats.link.recv, lwip_stats.link.xmit, lwip_stats.link.drop, lwip_stats.ip.recv, lwip_stats.ip.drop, lwip_stats.ip.chkerr,
	       lwip_stats.ip.lenerr, lwip_stats.ip.proterr, lwip_stats.ip_frag.recv, lwip_stats.ip_frag.drop,
	       lwip_stats.icmp.recv, lwip_stats.icmp.xmit, lwip_stats.udp.recv, lwip_stats.udp.drop,
	       lwip_stats.udp.chkerr, lwip_stats.tcp.recv, lwip_stats.tcp.drop, lwip_stats.tcp.chkerr,
	       lwip_stats.tcp.xmit, lwip_stats.etharp.recv, lwip_stats.etharp.drop,
	       (unsigned)lwip_stats.memp[MEMP_PBUF_POOL]->used, (unsigned)lwip_stats.memp[MEMP_PBUF_POOL]->err,
	       (unsigned long)lwip_stats.mem.used, (unsigned)lwip_stats.mem.err);
	APPEND("lwip6: ip6_recv=%u ip6_drop=%u ip6frag_recv=%u ip6frag_drop=%u icmp6_recv=%u icmp6_xmit=%u\n",
	       lwip_stats.ip6.recv, lwip_stats.ip6.drop, lwip_stats.ip6_frag.recv, lwip_stats.ip6_frag.drop,
	       lwip_stats.icmp6.recv, lwip_stats.icmp6.xmit);
#undef APPEND
	return used;
}

void services_reset_counters(void)
{
	memset(&svc, 0, sizeof(svc));
	memset(&tcp_guard_stats, 0, sizeof(tcp_guard_stats));
	for (unsigned i = 0; i < netdev_count(); i++) {
		netdev_get(i)->ops->reset_stats(netdev_get(i));
		if (net_ethif(i))
			ethif_reset_stats(net_ethif(i));
	}
}

static void status_udp_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr, u16_t port)
{
	char cmd[96] = { 0 };
	(void)arg;

	pbuf_copy_partial(p, cmd, sizeof(cmd) - 1, 0);
	pbuf_free(p);
	svc.status_queries++;
	size_t n = net_control(cmd, status_buf, sizeof(status_buf));
	struct pbuf *r = pbuf_alloc(PBUF_TRANSPORT, (u16_t)n, PBUF_RAM);
	if (!r)
		return;
	pbuf_take(r, status_buf, (u16_t)n);
	ethif_udp_csum_hint(pcb, addr, r->tot_len, ip_current_input_netif());
	udp_sendto(pcb, r, addr, port);
	pbuf_free(r);
}

/* The same over TCP (for QEMU's user network, whose restricted mode drops the guest's UDP replies): the
 * client sends one command line, gets the answer, and the guest closes. */
static err_t status_tcp_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	char cmd[96] = { 0 };
	err_t ret;
	(void)arg;

	if (services_tcp_ended(pcb, p, err, &ret))
		return ret;
	pbuf_copy_partial(p, cmd, sizeof(cmd) - 1, 0);
	tcp_recved(pcb, p->tot_len);
	pbuf_free(p);
	svc.status_queries++;
	size_t n = net_control(cmd, status_buf, sizeof(status_buf));
	if (n > tcp_sndbuf(pcb))
		n = tcp_sndbuf(pcb);
	tcp_write(pcb, status_buf, (u16_t)n, TCP_WRITE_FLAG_COPY);
	return services_tcp_finish(pcb);
}

/* ---- start ---- */

static int services_enabled(const char *names, const char *name)
{
	size_t n = strlen(name);
	if (!strcmp(names, "all") || !*names)
		return 1;
	for (const char *p = names; (p = strstr(p, name)); p += n)
		if ((p == names || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}

static int services_udp(u16_t port, udp_recv_fn fn)
{
	struct udp_pcb *pcb = udp_new_ip_type(IPADDR_TYPE_ANY);
	if (!pcb || udp_bind(pcb, IP_ANY_TYPE, port) != ERR_OK) {
		printf("services: cannot bind UDP port %u\n", port);
		return -1;
	}
	udp_recv(pcb, fn, NULL);
	return 0;
}

/* Listens on port; accept is called with arg as its argument. */
static int services_tcp(u16_t port, tcp_accept_fn fn, void *arg)
{
	struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_ANY), *l;
	if (!pcb || tcp_bind(pcb, IP_ANY_TYPE, port) != ERR_OK || !(l = tcp_listen(pcb))) {
		printf("services: cannot listen on TCP port %u\n", port);
		return -1;
	}
	tcp_arg(l, arg);
	tcp_accept(l, fn);
	return 0;
}

int services_start(const char *names, unsigned tcp_idle_s)
{
	int rc = 0;
	char list[96] = "";

	services_tcp_idle_s = tcp_idle_s;
	if (!strcmp(names, "none")) {
		printf("services: none\n");
		return 0;
	}
	if (services_enabled(names, "echo")) {
		rc |= services_udp(SERVICE_ECHO_PORT, echo_udp_recv) | services_tcp(SERVICE_ECHO_PORT, echo_tcp_accept, NULL);
		strcat(list, " echo/7");
	}
	if (services_enabled(names, "discard")) {
		rc |= services_udp(SERVICE_DISCARD_PORT, discard_udp_recv) |
		      services_tcp(SERVICE_DISCARD_PORT, services_tcp_accept, (void *)discard_tcp_recv);
		strcat(list, " discard/9");
	}
	if (services_enabled(names, "iperf")) {
		/* Not lwiperf_start_tcp_server_default(): it binds IP_ADDR_ANY, which narrows the pcb to IPv4. */
		if (!lwiperf_start_tcp_server(IP_ANY_TYPE, LWIPERF_TCP_PORT_DEFAULT, iperf_report, NULL))
			rc = -1;
		strcat(list, " iperf/5001");
	}
	if (services_enabled(names, "status")) {
		rc |= services_udp(SERVICE_STATUS_PORT, status_udp_recv) | services_tcp(SERVICE_STATUS_PORT, services_tcp_accept, (void *)status_tcp_recv);
		strcat(list, " status/7007");
	}
	printf("services:%s\n", list);
	return rc;
}
