/* Unit tests for drivers/virtio_mmio.c, compiled for the host with the real source. The register window is
 * plain memory (registers read back what was written, as a device's would not, which is enough for what is
 * checked here), and the DSDT is a hand-built table with LNRO0005 devices in QEMU microvm's layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "acpi.h"
#include "mm.h"
#include "virtio_mmio.h"

/* Offsets from the spec (§4.2.2), not from virtio_mmio.c. */
#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_INTERRUPT_STATUS 0x060
#define R_INTERRUPT_ACK 0x064
#define R_CONFIG 0x100
#define WINDOW 0x200

static uint32_t regs[WINDOW / 4 + 64]; /* the window, then memory past it (the "next device") */
static const struct acpi_sdt_header *fake_dsdt;

/* ---- what virtio_mmio.c needs from the kernel ---- */

int paging_map(uint64_t phys, uint64_t size, enum page_cache cache)
{
	(void)phys, (void)size, (void)cache;
	return 0;
}

const struct acpi_sdt_header *acpi_find_table(const char *sig) { return !strcmp(sig, "DSDT") ? fake_dsdt : NULL; }

static void reg_set(unsigned off, uint32_t v) { regs[off / 4] = v; }

static struct virtio_mmio_window window(void)
{
	struct virtio_mmio_window w = { (uint64_t)(uintptr_t)regs, WINDOW, 12, 1, 0 };
	return w;
}

static int reset(void **state)
{
	(void)state;
	memset(regs, 0, sizeof(regs));
	virtio_mmio_count = 0;
	fake_dsdt = NULL;
	return 0;
}

static void test_probe(void **state)
{
	(void)state;
	struct virtio_mmio_window w = window();
	struct virtio_dev vd = { 0 };

	/* Not virtio at all: refused with a log line. */
	assert_int_equal(virtio_mmio_probe(&w, &vd), -ENODEV);
	reg_set(R_MAGIC, 0x74726976);
	reg_set(R_VERSION, 3);
	assert_int_equal(virtio_mmio_probe(&w, &vd), -ENODEV);
	/* An empty slot (device ID 0), as microvm has eight of: not an error, no device. */
	reg_set(R_VERSION, 2);
	assert_int_equal(virtio_mmio_probe(&w, &vd), 0);
	/* A network device, version 2 and legacy version 1. */
	reg_set(R_DEVICE_ID, VIRTIO_ID_NET);
	memset(&vd, 0, sizeof(vd));
	assert_int_equal(virtio_mmio_probe(&w, &vd), VIRTIO_ID_NET);
	assert_string_equal(vd.ops->name, "modern");
	assert_false(vd.ops->legacy);
	assert_int_equal(vd.gsi, 12);
	reg_set(R_VERSION, 1);
	memset(&vd, 0, sizeof(vd));
	assert_int_equal(virtio_mmio_probe(&w, &vd), VIRTIO_ID_NET);
	assert_string_equal(vd.ops->name, "legacy");
	assert_true(vd.ops->legacy);
	/* A window too small for the registers. */
	w.size = 0x80;
	assert_int_equal(virtio_mmio_probe(&w, &vd), -EINVAL);
}

/* The device configuration ends where the window ends: a read beyond would reach the next device. */
static void test_config_read_stays_in_the_window(void **state)
{
	(void)state;
	struct virtio_mmio_window w = window();
	struct virtio_dev vd = { 0 };

	reg_set(R_MAGIC, 0x74726976);
	reg_set(R_VERSION, 2);
	reg_set(R_DEVICE_ID, VIRTIO_ID_NET);
	assert_int_equal(virtio_mmio_probe(&w, &vd), VIRTIO_ID_NET);
	reg_set(R_CONFIG, 0x12345678);
	reg_set(WINDOW - 4, 0xCAFEF00D);
	reg_set(WINDOW, 0xDEADBEEF); /* past the window */
	assert_int_equal(vd.ops->config_read(&vd, 0, 4), 0x12345678);
	assert_int_equal(vd.ops->config_read(&vd, 1, 1), 0x56);
	assert_int_equal(vd.ops->config_read(&vd, WINDOW - R_CONFIG - 4, 4), 0xCAFEF00D);
	assert_int_equal(vd.ops->config_read(&vd, WINDOW - R_CONFIG - 2, 4), 0);
	assert_int_equal(vd.ops->config_read(&vd, WINDOW - R_CONFIG, 1), 0);
	assert_int_equal(vd.device_cfg_oob_logged, 1);
}

/* Reading the interrupt status acknowledges exactly the bits it returns (§4.2.3.4). */
static void test_isr_acknowledges(void **state)
{
	(void)state;
	struct virtio_mmio_window w = window();
	struct virtio_dev vd = { 0 };

	reg_set(R_MAGIC, 0x74726976);
	reg_set(R_VERSION, 2);
	reg_set(R_DEVICE_ID, VIRTIO_ID_NET);
	assert_int_equal(virtio_mmio_probe(&w, &vd), VIRTIO_ID_NET);
	reg_set(R_INTERRUPT_STATUS, 0);
	reg_set(R_INTERRUPT_ACK, 0x55);
	assert_int_equal(vd.ops->isr(&vd), 0);
	assert_int_equal(regs[R_INTERRUPT_ACK / 4], 0x55); /* nothing pending: no write */
	reg_set(R_INTERRUPT_STATUS, VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG | 0x80);
	assert_int_equal(vd.ops->isr(&vd), VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG);
	assert_int_equal(regs[R_INTERRUPT_ACK / 4], VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG);
}

/* ---- the DSDT ---- */

static uint8_t aml[512];
static size_t aml_len;

static void put(const void *p, size_t n)
{
	memcpy(aml + aml_len, p, n);
	aml_len += n;
}

static void put32(uint32_t v) { put(&v, 4); }

/* Device (VRnn) { _HID "LNRO0005", _UID n, _CCA 1, _CRS { Memory32Fixed (base, size), Interrupt (irq) } } as
 * QEMU's acpi-microvm.c emits it (names and package framing abbreviated: the scanner looks at the strings and
 * the resource descriptors). */
static void put_device(uint32_t base, uint32_t size, uint32_t irq, uint8_t irq_flags)
{
	static const uint8_t dev_head[] = { 0x5B, 0x82, 0x30, 'V', 'R', '0', '0', 0x08, '_', 'H', 'I', 'D', 0x0D };
	static const uint8_t crs_head[] = { 0x08, '_', 'C', 'R', 'S', 0x11, 0x1A, 0x0A, 0x17 };
	put(dev_head, sizeof(dev_head));
	put("LNRO0005", 9);
	put(crs_head, sizeof(crs_head));
	const uint8_t mem[] = { 0x86, 0x09, 0x00, 0x01 };
	put(mem, sizeof(mem));
	put32(base);
	put32(size);
	const uint8_t irqd[] = { 0x89, 0x06, 0x00, irq_flags, 0x01 };
	put(irqd, sizeof(irqd));
	put32(irq);
	const uint8_t end_tag[] = { 0x79, 0x00 };
	put(end_tag, sizeof(end_tag));
}

static void test_dsdt_scan(void **state)
{
	(void)state;
	struct acpi_sdt_header h = { .signature = { 'D', 'S', 'D', 'T' } };

	aml_len = sizeof(h);
	put_device(0xfeb02e00, 0x200, 47, 0x09); /* level, active-high, exclusive, consumer (QEMU's flags) */
	put_device(0xfeb02c00, 0x200, 46, 0x07); /* edge, active-low */
	put("LNRO0005", 9);                       /* a _HID with no resources after it: skipped */
	h.length = (uint32_t)aml_len;
	memcpy(aml, &h, sizeof(h));
	fake_dsdt = (const void *)aml;

	assert_int_equal(virtio_mmio_scan_acpi(), 2);
	assert_int_equal(virtio_mmio_count, 2);
	assert_int_equal(virtio_mmio_windows[0].base, 0xfeb02e00);
	assert_int_equal(virtio_mmio_windows[0].size, 0x200);
	assert_int_equal(virtio_mmio_windows[0].gsi, 47);
	assert_true(virtio_mmio_windows[0].level);
	assert_false(virtio_mmio_windows[0].low);
	assert_int_equal(virtio_mmio_windows[1].gsi, 46);
	assert_false(virtio_mmio_windows[1].level);
	assert_true(virtio_mmio_windows[1].low);
	/* The command line named one of them already: not added twice. */
	assert_int_equal(virtio_mmio_scan_acpi(), 0);
	assert_int_equal(virtio_mmio_count, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_probe, reset),
		cmocka_unit_test_setup(test_config_read_stays_in_the_window, reset),
		cmocka_unit_test_setup(test_isr_acknowledges, reset),
		cmocka_unit_test_setup(test_dsdt_scan, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
