/* Unit tests for drivers/virtio_pci.c (the modern transport), compiled for the host with the real source. PCI
 * configuration space is an array with the virtio vendor capabilities (§4.1.4) in it, and the BAR is plain
 * memory: the common configuration's registers then read back what was written, and queue_notify_off is
 * whatever the test puts there, as a device could. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "virtio_pci.h"
#include "virtq.h"

/* Register offsets from the spec (§4.1.4.3), not from virtio_pci.c. */
#define COMMON_Q_SELECT 0x16
#define COMMON_Q_ENABLE 0x1C
#define COMMON_Q_NOFF 0x1E

#define BAR 4
#define BAR_SIZE 0x4000
#define COMMON_AT 0x0000
#define ISR_AT 0x1000
#define DEVICE_AT 0x2000
#define NOTIFY_AT 0x3000
#define SENTINEL 0xA5

static uint8_t cfg[256];
static uint8_t *bar;
static struct pci_dev dev;
static struct virtio_dev vd;

/* ---- the PCI layer, faked ---- */

uint8_t pci_read8(const struct pci_dev *d, uint16_t off)
{
	(void)d;
	return cfg[off];
}

uint16_t pci_read16(const struct pci_dev *d, uint16_t off)
{
	(void)d;
	return (uint16_t)(cfg[off] | cfg[off + 1] << 8);
}

uint32_t pci_read32(const struct pci_dev *d, uint16_t off)
{
	(void)d;
	return (uint32_t)cfg[off] | (uint32_t)cfg[off + 1] << 8 | (uint32_t)cfg[off + 2] << 16 |
	       (uint32_t)cfg[off + 3] << 24;
}

uint8_t pci_find_cap(const struct pci_dev *d, uint8_t id, uint8_t start)
{
	(void)d;
	for (uint8_t off = start ? cfg[start + 1] : cfg[0x34]; off; off = cfg[off + 1])
		if (cfg[off] == id)
			return off;
	return 0;
}

uintptr_t pci_map_bar(struct pci_dev *d, unsigned b)
{
	(void)d;
	return b == BAR ? (uintptr_t)bar : 0;
}

void pci_enable(struct pci_dev *d, int mem, int io)
{
	(void)d;
	(void)mem;
	(void)io;
}

const struct virtio_ops virtio_pci_legacy_ops = { .name = "legacy (not under test)" };

/* ---- a device ---- */

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint8_t cap_at = 0x40;

/* struct virtio_pci_cap (§4.1.4): vndr, next, len, cfg_type, bar, id, padding[2], offset, length[, multiplier]. */
static void add_cap(uint8_t type, uint32_t offset, uint32_t length, uint32_t mult)
{
	uint8_t *c = &cfg[cap_at], len = type == 2 ? 20 : 16;
	c[0] = PCI_CAP_VENDOR;
	c[1] = 0;
	c[2] = len;
	c[3] = type;
	c[4] = BAR;
	put32(c + 8, offset);
	put32(c + 12, length);
	if (type == 2)
		put32(c + 16, mult);
	/* Link it at the end of the list. */
	uint8_t *link = &cfg[0x34];
	while (*link)
		link = &cfg[*link + 1];
	*link = cap_at;
	cap_at = (uint8_t)(cap_at + len);
}

/* A modern device: common, ISR, device config of cfg_len bytes (none if 0), notify of notify_len bytes. */
static void device_setup(uint32_t notify_len, uint32_t mult, uint32_t cfg_len)
{
	free(bar);
	bar = aligned_alloc(4096, BAR_SIZE);
	assert_non_null(bar);
	memset(bar, SENTINEL, BAR_SIZE);
	memset(bar + COMMON_AT, 0, 0x38);
	memset(cfg, 0, sizeof(cfg));
	cap_at = 0x40;
	memset(&dev, 0, sizeof(dev));
	dev.bar[BAR].size = BAR_SIZE;
	add_cap(1, COMMON_AT, 0x38, 0);
	add_cap(3, ISR_AT, 4, 0);
	if (cfg_len)
		add_cap(4, DEVICE_AT, cfg_len, 0);
	add_cap(2, NOTIFY_AT, notify_len, mult);
	memset(&vd, 0, sizeof(vd));
	assert_int_equal(virtio_pci_probe(&dev, &vd), 0);
	assert_string_equal(vd.ops->name, "modern");
}

static struct virtq vq;
static void *ring;

static void queue_make(uint16_t index)
{
	virtq_destroy(&vq);
	free(ring);
	ring = aligned_alloc(4096, (virtq_mem_size(8) + 4095) & ~(size_t)4095);
	assert_non_null(ring);
	memset(ring, 0, virtq_mem_size(8));
	assert_int_equal(virtq_init(&vq, index, 8, ring, 1), 0);
}

static void set_noff(uint16_t v)
{
	bar[COMMON_AT + COMMON_Q_NOFF] = (uint8_t)v;
	bar[COMMON_AT + COMMON_Q_NOFF + 1] = (uint8_t)(v >> 8);
}

static uint16_t bar16(size_t off)
{
	return (uint16_t)(bar[off] | bar[off + 1] << 8);
}

static int teardown(void **state)
{
	(void)state;
	virtq_destroy(&vq);
	free(ring);
	free(bar);
	ring = NULL;
	bar = NULL;
	return 0;
}

/* ---- tests ---- */

/* Inside the capability: accepted, the address cached, and a notification lands exactly there. */
static void test_notify_address_checked_and_cached(void **state)
{
	(void)state;
	device_setup(16, 4, 8);
	static const struct {
		uint16_t noff;
		size_t at;
	} ok[] = { { 0, 0 }, { 3, 12 }, { 2, 8 } };
	for (unsigned i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		queue_make((uint16_t)(i + 1));
		set_noff(ok[i].noff);
		assert_int_equal(vd.ops->queue_setup(&vd, &vq, VIRTIO_MSI_NO_VECTOR), 0);
		assert_int_equal(vq.notify_addr, (uintptr_t)bar + NOTIFY_AT + ok[i].at);
		assert_int_equal(bar16(COMMON_AT + COMMON_Q_ENABLE), 1);
		/* The cached address is used: a device changing queue_notify_off afterwards does not matter. */
		set_noff(0x7777);
		memset(bar + NOTIFY_AT, 0, 16);
		vd.ops->notify(&vd, &vq);
		assert_int_equal(bar16(NOTIFY_AT + ok[i].at), i + 1);
		for (size_t k = 0; k < 16; k += 2)
			if (k != ok[i].at)
				assert_int_equal(bar16(NOTIFY_AT + k), 0);
		virtq_destroy(&vq);
	}
	/* The last 2 bytes of the capability are still inside it. */
	device_setup(16, 2, 8);
	queue_make(0);
	set_noff(7);
	assert_int_equal(vd.ops->queue_setup(&vd, &vq, VIRTIO_MSI_NO_VECTOR), 0);
	assert_int_equal(vq.notify_addr, (uintptr_t)bar + NOTIFY_AT + 14);
	/* A multiplier of 0: every queue notifies at the start (§4.1.4.4). */
	device_setup(2, 0, 8);
	queue_make(5);
	set_noff(0xffff);
	assert_int_equal(vd.ops->queue_setup(&vd, &vq, VIRTIO_MSI_NO_VECTOR), 0);
	assert_int_equal(vq.notify_addr, (uintptr_t)bar + NOTIFY_AT);
}

/* Outside: -EINVAL, and the queue is left alone (not enabled, no address cached). */
static void test_notify_address_outside_capability_rejected(void **state)
{
	(void)state;
	static const struct {
		uint32_t len, mult;
		uint16_t noff;
	} bad[] = {
		{ 16, 4, 4 },           /* 16 + 2 > 16 */
		{ 16, 2, 8 },           /* exactly at the end: the 2-byte write would not fit */
		{ 16, 4, 0xffff },      /* far outside */
		{ 0x1000, 0xffffffffu, 0xffff }, /* the product needs more than 32 bits */
		{ 1, 0, 0 },            /* a capability too short for any notification */
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		device_setup(bad[i].len, bad[i].mult, 8);
		queue_make(1);
		set_noff(bad[i].noff);
		assert_int_equal(vd.ops->queue_setup(&vd, &vq, VIRTIO_MSI_NO_VECTOR), -EINVAL);
		assert_int_equal(bar16(COMMON_AT + COMMON_Q_ENABLE), 0);
		assert_int_equal(vq.notify_addr, 0);
		virtq_destroy(&vq);
	}
}

/* Device-config reads inside the capability's length read the device; outside (or with no capability) they
 * read 0 and touch nothing beyond it. */
static void test_device_config_reads_bounded(void **state)
{
	(void)state;
	device_setup(16, 4, 8);
	for (unsigned i = 0; i < 8; i++)
		bar[DEVICE_AT + i] = (uint8_t)(0x10 + i);
	assert_int_equal(vd.ops->config_read(&vd, 0, 1), 0x10);
	assert_int_equal(vd.ops->config_read(&vd, 6, 2), 0x1716);
	assert_int_equal(vd.ops->config_read(&vd, 4, 4), 0x17161514);
	assert_int_equal(vd.ops->config_read(&vd, 7, 1), 0x17);
	/* Straddling or past the end: the BAR holds SENTINEL there, which must not be returned. */
	assert_int_equal(vd.ops->config_read(&vd, 7, 2), 0);
	assert_int_equal(vd.ops->config_read(&vd, 6, 4), 0);
	assert_int_equal(vd.ops->config_read(&vd, 8, 1), 0);
	assert_int_equal(vd.ops->config_read(&vd, 0xfffffffeu, 4), 0); /* offset + width wraps in 32 bits */
	assert_int_equal(vd.ops->config_read(&vd, 0, 1), 0x10);

	/* No device-config capability at all (virtio-net without MAC/STATUS may have none). */
	device_setup(16, 4, 0);
	assert_int_equal(vd.ops->config_read(&vd, 0, 1), 0);
	assert_int_equal(vd.ops->config_read(&vd, 6, 2), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_notify_address_checked_and_cached, teardown),
		cmocka_unit_test_teardown(test_notify_address_outside_capability_rejected, teardown),
		cmocka_unit_test_teardown(test_device_config_reads_bounded, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
