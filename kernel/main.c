/* Kernel entry common to both boot paths: copy the boot information, bring up the CPU, memory, interrupts
 * and time, then run the main loop. */
#include <stdio.h>
#include <string.h>

#include "acpi.h"
#include "cmdline.h"
#include "random.h"
#include "console.h"
#include "cpu.h"
#include "edu.h"
#include "gdt.h"
#include "initcall.h"
#include "ioapic.h"
#include "kernel.h"
#include "lapic.h"
#include "loop.h"
#include "memmap.h"
#include "mm.h"
#include "pci.h"
#include "pic.h"
#include "selftest.h"
#include "serial.h"
#include "time.h"
#include "trap.h"
#include "virtio_net.h"

#define HEAP_MAX (64ull << 20)
#define HEAP_MIN (1ull << 20)

static struct boot_info kernel_boot_info;
static struct boot_mem_region kernel_memmap[BOOT_MEMMAP_MAX];
static unsigned kernel_memmap_count;
struct kernel_config kernel_config;
static uint64_t heartbeat_next;

/* Where kernel entry -> ready goes, stage by stage (TSC at each stage's end), printed after the ready line:
 * under TCG most of it is the first execution (translation) of each stage's code, not its work. */
enum { BOOT_STAGES_MAX = 8 };
static uint64_t boot_stage_tsc[BOOT_STAGES_MAX];
static const char *boot_stage_name[BOOT_STAGES_MAX];
static unsigned boot_stages;

static void boot_stage(const char *name)
{
	if (boot_stages < BOOT_STAGES_MAX) {
		boot_stage_tsc[boot_stages] = rdtsc();
		boot_stage_name[boot_stages++] = name;
	}
}

static void boot_stages_print(void)
{
	uint64_t prev = tsc_boot;
	printf("boot stages (us):");
	for (unsigned i = 0; i < boot_stages; i++) {
		printf(" %s=%llu", boot_stage_name[i], (unsigned long long)(tsc_to_ns(boot_stage_tsc[i] - prev) / 1000));
		prev = boot_stage_tsc[i];
	}
	printf("\n");
}

void kernel_start(const struct boot_info *bi)
{
	uint64_t t = rdtsc();

	/* Before anything allocates: the loader's memory (where *bi lives) becomes free memory. */
	memcpy(&kernel_boot_info, bi, sizeof(kernel_boot_info));
	tsc_boot = t;
	serial_init();
	/* Unbuffered stdout: nothing waits in a buffer if the kernel dies, and printf needs no heap. */
	setvbuf(stdout, NULL, _IONBF, 0);
	if (kernel_boot_info.magic != BOOT_INFO_MAGIC || kernel_boot_info.version != BOOT_INFO_VERSION)
		early_fatal("boot_info: bad magic or version from the loader");
	kernel_main(&kernel_boot_info);
}

static void cmdline_print_problem(void *ctx, const char *msg)
{
	(void)ctx;
	printf("%s\n", msg);
}

static void memmap_print_summary(void)
{
	printf("memory map (%u entries):\n", kernel_memmap_count);
	for (unsigned i = 0; i < kernel_memmap_count; i++) {
		const struct boot_mem_region *r = &kernel_memmap[i];
		printf("  %016llx-%016llx %-8s %8llu KiB\n", (unsigned long long)r->base,
		       (unsigned long long)(r->base + r->length - 1), memmap_type_name(r->type),
		       (unsigned long long)(r->length >> 10));
	}
	printf("memory: %llu MiB usable, %llu KiB loader, RAM top %#llx\n",
	       (unsigned long long)(memmap_bytes(kernel_memmap, kernel_memmap_count, MEM_USABLE) >> 20),
	       (unsigned long long)(memmap_bytes(kernel_memmap, kernel_memmap_count, MEM_LOADER) >> 10),
	       (unsigned long long)memmap_ram_top(kernel_memmap, kernel_memmap_count));
}

static int heartbeat_poll(void *ctx)
{
	(void)ctx;
	uint64_t now = timer_ticks;
	if (kernel_config.heartbeat == 0)
		return 0;
	if (now < heartbeat_next) {
		timer_wake_at(timer_tick_tsc(heartbeat_next));
		return 0;
	}
	heartbeat_next = now + (uint64_t)kernel_config.heartbeat * timer_hz;
	timer_wake_at(timer_tick_tsc(heartbeat_next));
	uint64_t ns = time_ns();
	uint64_t elapsed = rdtsc() - loop_start_tsc;
	unsigned idle_pm = elapsed ? (unsigned)(loop_idle_tsc * 1000 / elapsed) : 0;
	printf("[%6llu.%03llu] ticks=%llu idle=%u.%u%%\n", (unsigned long long)(ns / 1000000000ull),
	       (unsigned long long)(ns / 1000000 % 1000), (unsigned long long)now, idle_pm / 10, idle_pm % 10);
	return 0;
}

static void fatal_boot(const char *what, int rc)
{
	printf("boot: %s failed (%d)\n", what, rc);
	if (kernel_test_mode)
		kernel_exit(KEXIT_FAIL);
	cpu_halt_forever();
}

/* The command line, then the configuration in force (which the system tests read back). */
static void kernel_parse_cmdline(const struct boot_info *bi)
{
	char buf[1024]; /* eight virtio_mmio.device entries make the longest config line */
	int problems;

	cmdline_defaults(&kernel_config);
	printf("cmdline: \"%s\"\n", bi->cmdline);
	problems = cmdline_parse(bi->cmdline, &kernel_config, cmdline_print_problem, NULL);
	kernel_test_mode = kernel_config.test != 0;
	cmdline_format(&kernel_config, buf, sizeof(buf));
	printf("config: %s%s\n", buf, problems ? " (after command-line problems above)" : "");
}

/* Memory map, ACPI, page allocator, our own page tables, then the heap (a quarter of free memory, within
 * bounds). */
static void kernel_memory_init(const struct boot_info *bi)
{
	int rc = memmap_normalize(bi->memmap, bi->memmap_count, kernel_memmap, BOOT_MEMMAP_MAX);
	if (rc < 0)
		fatal_boot("memory map normalisation", rc);
	kernel_memmap_count = (unsigned)rc;
	memmap_print_summary();

	rc = acpi_init(bi->rsdp);
	if (!rc)
		printf("acpi: RSDP %#llx, %u CPU(s), %u IOAPIC(s), LAPIC %#llx, %u ECAM window(s), HPET %#llx\n",
		       (unsigned long long)acpi_info.rsdp, acpi_info.num_cpus, acpi_info.num_ioapics,
		       (unsigned long long)acpi_info.lapic_base, acpi_info.num_mcfg,
		       (unsigned long long)acpi_info.hpet_base);

	rc = mm_init(kernel_memmap, kernel_memmap_count);
	if (rc)
		fatal_boot("page allocator", rc);
	rc = paging_init(kernel_memmap, kernel_memmap_count);
	if (rc)
		fatal_boot("paging", rc);
	if (acpi_map_tables())
		printf("acpi: could not map every table\n");
	/* Only now, on our own page tables, may the loader's memory (which held its page tables) be reused. */
	mm_release_loader(kernel_memmap, kernel_memmap_count);
	/* The page below the boot stack stays unmapped: an overflow faults (and becomes a #DF) instead of
	 * silently overwriting .bss. */
	paging_unmap((uint64_t)(uintptr_t)boot_stack_guard, PAGE_SIZE);

	uint64_t free_bytes = kernel_pmm.free_pages * PAGE_SIZE;
	uint64_t heap = free_bytes / 4;
	heap = heap > HEAP_MAX ? HEAP_MAX : heap < HEAP_MIN ? HEAP_MIN : heap;
	rc = heap_init(heap);
	if (rc)
		fatal_boot("heap", rc);
	printf("mm: %llu MiB free in pages, heap %llu MiB\n",
	       (unsigned long long)(kernel_pmm.free_pages * PAGE_SIZE >> 20), (unsigned long long)(heap >> 20));
}

/* The TSC and the LAPIC timer against a fixed-rate reference, in one window (kernel/tsc.c). */
static void kernel_time_init(void)
{
	pic_disable();
	int rc = lapic_init(acpi_info.lapic_base);
	if (rc)
		fatal_boot("LAPIC", rc);
	rc = tsc_init();
	if (rc)
		fatal_boot("TSC calibration", rc);
	printf("time: TSC %llu.%03llu MHz (%s; checked against %s: %llu.%03llu MHz; %llu us)\n",
	       (unsigned long long)(tsc_hz / 1000000), (unsigned long long)(tsc_hz / 1000 % 1000), tsc_source,
	       tsc_check, (unsigned long long)(tsc_check_hz / 1000000),
	       (unsigned long long)(tsc_check_hz / 1000 % 1000), (unsigned long long)(tsc_calib_ns / 1000));
	rc = lapic_timer_start(kernel_config.hz, lapic_calib_hz);
	if (rc)
		fatal_boot("LAPIC timer", rc);
}

/* Buses, interrupt routing and the NIC drivers; each NIC registers itself as a netdev. */
static void kernel_devices_init(void)
{
	irq_limit_vectors(kernel_config.irq_vectors);
	pci_init();
	if (ioapic_init())
		printf("devices: no IOAPIC; devices without MSI-X cannot interrupt\n");
	else
		console_irq_init();
	printf("devices: stage stamp cost %llu ns (TSC read + histogram update; 4 per received frame)\n",
	       (unsigned long long)virtio_net_stamp_cost_ns());
	struct virtio_net_params vp = { kernel_config.rxpool, kernel_config.txring, kernel_config.ring,
					 &kernel_config.virtio_mmio };
	virtio_net_init_all(&vp);
	edu_init();
}

/* The layers above the kernel (kernel/initcall.h). A failure is reported and the kernel goes on without
 * that layer. */
static void kernel_run_initcalls(void)
{
	for (const struct kernel_initcall *c = __initcall_start; c < __initcall_end; c++) {
		int rc = c->fn(&kernel_config);
		if (rc)
			printf("init: %s failed (%d); continuing without it\n", c->name, rc);
	}
}

void kernel_main(const struct boot_info *bi)
{
	printf("\n%s %s: x86_64 unikernel network stack (boot: %s)\n", KERNEL_NAME, KERNEL_VERSION,
	       bi->boot_path == BOOT_PATH_UEFI ? "uefi" : "pvh");
	printf("kernel image %#llx-%#llx (%llu KiB)\n", (unsigned long long)(uintptr_t)_kernel_start,
	       (unsigned long long)(uintptr_t)_kernel_end,
	       (unsigned long long)((_kernel_end - _kernel_start) >> 10));
	kernel_parse_cmdline(bi);
	boot_stage("banner+cmdline");
	gdt_init();
	idt_init();
	boot_stage("cpu");
	kernel_memory_init(bi);
	boot_stage("memory");
	kernel_time_init();
	boot_stage("time");
	/* Before the network: lwIP's first random numbers (DHCP xid, ports) and the ISN key come from it. */
	random_init();
	console_init();
	boot_stage("random+console");
	kernel_devices_init();
	boot_stage("devices");
	kernel_run_initcalls();
	boot_stage("net");

	loop_add_poller("heartbeat", heartbeat_poll, NULL);
	heartbeat_next = (uint64_t)kernel_config.heartbeat * timer_hz;
	sti();
	uint64_t ready_ns = time_ns();
	/* The TSC counts from the vCPU's reset (QEMU, TCG and KVM alike): its value at the loader's entry is the
	 * firmware's share of the boot, which no change in this kernel can shorten. */
	printf("ready in %llu.%03llu ms since kernel entry (loader entry to kernel: %llu us; CPU reset to loader, "
	       "the firmware: %llu us)\n",
	       (unsigned long long)(ready_ns / 1000000), (unsigned long long)(ready_ns / 1000 % 1000),
	       (unsigned long long)(bi->loader_tsc ? tsc_to_ns(tsc_boot - bi->loader_tsc) / 1000 : 0),
	       (unsigned long long)(bi->loader_tsc ? tsc_to_ns(bi->loader_tsc) / 1000 : 0));
	boot_stages_print();

	if (kernel_test_mode)
		selftest_start(cmdline_tests[kernel_config.test]);
	loop_run();
}
