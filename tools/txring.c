/* txring: the PACKET_TX_RING mode of tools/load (--tx-ring); see txring.h. */
#define _GNU_SOURCE
#include "txring.h"

#include <endian.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

/* A slot the kernel still owns, or one it refused as malformed. */
#define TXRING_BUSY (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING | TP_STATUS_WRONG_FORMAT)

_Static_assert(TXRING_DATA_OFF == TPACKET2_HDRLEN - sizeof(struct sockaddr_ll), "TPACKET_V2 data offset");
_Static_assert(TXRING_VNET_LEN == sizeof(struct virtio_net_hdr), "PACKET_VNET_HDR length");

int txring_geometry(unsigned frame_len, unsigned batch, unsigned page_size, struct txring_geom *g)
{
	if (!batch || !page_size || (page_size & (page_size - 1)) || frame_len > page_size)
		return -EINVAL;
	unsigned need = TXRING_FRAME_OFF + frame_len;
	unsigned frame_size = 64;
	while (frame_size < need)
		frame_size <<= 1;
	if (frame_size > page_size)
		return -EINVAL;
	uint64_t nr = TXRING_MIN_FRAMES;
	if (4ull * batch > nr)
		nr = 4ull * batch;
	unsigned per_block = page_size / frame_size;
	nr = (nr + per_block - 1) / per_block * per_block;
	if (nr * frame_size > TXRING_MAX_BYTES)
		return -E2BIG;
	g->frame_size = frame_size;
	g->frame_nr = (unsigned)nr;
	g->block_size = page_size;
	g->block_nr = (unsigned)(nr / per_block);
	return 0;
}

static struct tpacket2_hdr *txring_hdr(const struct txring *r, unsigned slot)
{
	return (struct tpacket2_hdr *)(r->map + (size_t)(slot % r->g.frame_nr) * r->g.frame_size);
}

static uint32_t txring_status(const struct txring *r, unsigned slot)
{
	return __atomic_load_n(&txring_hdr(r, slot)->tp_status, __ATOMIC_ACQUIRE);
}

static void txring_set_status(struct txring *r, unsigned slot, uint32_t status)
{
	__atomic_store_n(&txring_hdr(r, slot)->tp_status, status, __ATOMIC_RELEASE);
}

void txring_layout(struct txring *r, uint8_t *map, const struct txring_geom *g, const struct rawtx_flow *flow,
                   unsigned payload)
{
	r->map = map;
	r->g = *g;
	r->payload = payload;
	r->frame_len = RAWTX_HDR_LEN + payload;
	r->head = 0;
	r->wait_polls = TXRING_WAIT_POLLS;
	for (unsigned i = 0; i < g->frame_nr; i++) {
		struct tpacket2_hdr *h = txring_hdr(r, i);
		memset(h, 0, g->frame_size);
		/* No checksum or GSO work; hdr_len: copy the whole frame into the skb. */
		struct virtio_net_hdr vh = {.hdr_len = htole16((uint16_t)r->frame_len)};
		memcpy((uint8_t *)h + TXRING_DATA_OFF, &vh, sizeof(vh));
		rawtx_build((uint8_t *)h + TXRING_FRAME_OFF, flow, payload, (uint16_t)i);
		h->tp_len = TXRING_VNET_LEN + r->frame_len;
		txring_set_status(r, i, TP_STATUS_AVAILABLE);
	}
}

/* The interface's MTU; 0 or a negative errno. */
static int txring_if_mtu(int fd, const char *ifname, unsigned *mtu)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFMTU, &ifr) < 0)
		return -errno;
	*mtu = (unsigned)ifr.ifr_mtu;
	return 0;
}

int txring_open(struct txring *r, int fd, const char *ifname, const struct rawtx_flow *flow, unsigned payload,
                unsigned batch)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	const char *what;
	unsigned mtu = 0;
	int rc = txring_if_mtu(fd, ifname, &mtu);
	if (rc) {
		what = "cannot read its MTU";
		goto fail;
	}
	/* With a virtio-net header the kernel checks no MTU, and a frame over it would go out: refuse it here, as
	 * the sendmmsg() path's kernel would (EMSGSIZE). */
	if (20 + 8 + payload > mtu) {
		rc = -EMSGSIZE;
		what = "frames larger than the interface's MTU";
		goto fail;
	}
	struct txring_geom g;
	rc = txring_geometry(RAWTX_HDR_LEN + payload, batch, (unsigned)sysconf(_SC_PAGESIZE), &g);
	if (rc) {
		what = "no ring geometry for these frames";
		goto fail;
	}
	int one = 1;
	if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0) {
		rc = -errno;
		what = "PACKET_VNET_HDR refused";
		goto fail;
	}
	int version = TPACKET_V2;
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) < 0) {
		rc = -errno;
		what = "PACKET_VERSION TPACKET_V2 refused";
		goto fail;
	}
	struct tpacket_req req = {.tp_block_size = g.block_size,
	                          .tp_block_nr = g.block_nr,
	                          .tp_frame_size = g.frame_size,
	                          .tp_frame_nr = g.frame_nr};
	if (setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0) {
		rc = -errno;
		what = "PACKET_TX_RING refused";
		goto fail;
	}
	size_t len = (size_t)g.block_size * g.block_nr;
	void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		what = "cannot mmap() the ring";
		goto unring;
	}
	/* Best effort (capped by net.core.wmem_max): skbs not yet freed count against it, and a send() that runs
	 * out of it stops short. */
	int sndbuf = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	txring_layout(r, map, &g, flow, payload);
	r->map_len = len;
	return 0;

unring:
	memset(&req, 0, sizeof(req));
	setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req));
fail:
	fprintf(stderr, "load: --tx-ring on %s: %s (%s)\n", ifname, what, strerror(-rc));
	return rc;
}

void txring_close(struct txring *r)
{
	if (r->map_len)
		munmap(r->map, r->map_len);
	r->map = NULL;
	r->map_len = 0;
}

int txring_fill(struct txring *r, unsigned n, uint64_t seq)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned slot = r->head + i;
		for (unsigned polls = 0; txring_status(r, slot) & TXRING_BUSY; polls++) {
			if (polls >= r->wait_polls)
				return -ETIMEDOUT;
			usleep(TXRING_POLL_US);
		}
		if (r->payload >= 8) {
			uint64_t le = htole64(seq + i);
			memcpy((uint8_t *)txring_hdr(r, slot) + TXRING_FRAME_OFF + RAWTX_HDR_LEN, &le, 8);
		}
		txring_set_status(r, slot, TP_STATUS_SEND_REQUEST);
	}
	return 0;
}

int txring_settle(struct txring *r, unsigned pending, int hard_errno, struct txring_result *res)
{
	while (pending) {
		uint32_t status = txring_status(r, r->head);
		if (status == TP_STATUS_SEND_REQUEST)
			break;
		if (status & TP_STATUS_WRONG_FORMAT)
			return -EPROTO;
		r->head = (r->head + 1) % r->g.frame_nr;
		pending--;
		res->sent++;
	}
	if (pending && hard_errno) {
		for (unsigned i = 0; i < pending; i++)
			txring_set_status(r, r->head + i, TP_STATUS_AVAILABLE);
		res->errors += pending;
		res->last_errno = hard_errno;
		pending = 0;
	}
	return (int)pending;
}

int txring_send(struct txring *r, unsigned n, uint64_t seq, struct txring_result *res)
{
	memset(res, 0, sizeof(*res));
	int rc = txring_fill(r, n, seq);
	if (rc)
		return rc;
	unsigned pending = n, polls = 0;
	while (pending) {
		int err = send(r->fd, NULL, 0, MSG_DONTWAIT) < 0 ? errno : 0;
		/* No socket buffer (EAGAIN, or a short count without an error) or a signal: the slots are still
		 * requested, try again. Anything else (ENOBUFS: the device refused a frame) ends the batch. */
		int hard = err == EAGAIN || err == EWOULDBLOCK || err == EINTR ? 0 : err;
		rc = txring_settle(r, pending, hard, res);
		if (rc < 0)
			return rc;
		if ((unsigned)rc == pending) {
			if (polls++ >= r->wait_polls)
				return txring_settle(r, pending, EAGAIN, res) < 0 ? -EPROTO : 0;
			usleep(TXRING_POLL_US);
		}
		pending = (unsigned)rc;
	}
	return 0;
}
