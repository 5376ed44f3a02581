/* IDT setup, exception reports and dispatch of external interrupts. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmdline.h"
#include "cpu.h"
#include "gdt.h"
#include "kernel.h"
#include "ksyms.h"
#include "lapic.h"
#include "mm.h"
#include "trap.h"

#define BACKTRACE_MAX 16

struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
} __attribute__((packed));

struct idt_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

extern const uint64_t isr_stub_table[256];

static struct idt_gate idt[256] __attribute__((aligned(16)));
static struct {
	irq_handler_fn fn;
	void *ctx;
} irq_table[256];
uint64_t irq_counts[256];
uint64_t irq_spurious;
static int trap_nesting;

static const char *const exception_names[32] = {
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow", "#BR bound range",
	"#UD invalid opcode", "#NM device not available", "#DF double fault", "coprocessor segment overrun",
	"#TS invalid TSS", "#NP segment not present", "#SS stack fault", "#GP general protection",
	"#PF page fault", "reserved 15", "#MF x87 error", "#AC alignment check", "#MC machine check",
	"#XM SIMD error", "#VE virtualisation", "#CP control protection", "reserved 22", "reserved 23",
	"reserved 24", "reserved 25", "reserved 26", "reserved 27", "#HV hypervisor injection",
	"#VC VMM communication", "#SX security", "reserved 31",
};

static void idt_set(unsigned vec, uint64_t handler, unsigned ist)
{
	idt[vec].offset_lo = handler & 0xFFFF;
	idt[vec].selector = GDT_KERNEL_CODE;
	idt[vec].ist = ist;
	idt[vec].type_attr = 0x8E; /* present, DPL0, 64-bit interrupt gate (IF cleared on entry) */
	idt[vec].offset_mid = (handler >> 16) & 0xFFFF;
	idt[vec].offset_hi = handler >> 32;
	idt[vec].reserved = 0;
}

void idt_init(void)
{
	for (unsigned v = 0; v < 256; v++) {
		unsigned ist = v >= 32 ? IST_IRQ : 0;
		if (v == 8)
			ist = IST_DOUBLE_FAULT;
		else if (v == 2)
			ist = IST_NMI;
		else if (v == 18)
			ist = IST_MACHINE_CHECK;
		idt_set(v, isr_stub_table[v], ist);
	}
	struct idt_ptr ptr = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
	__asm__ volatile("lidt %0" ::"m"(ptr) : "memory");
}

int irq_register(unsigned vector, irq_handler_fn fn, void *ctx)
{
	if (vector < 32 || vector > 255)
		return -EINVAL;
	if (irq_table[vector].fn && irq_table[vector].fn != fn)
		return -EBUSY;
	irq_table[vector].ctx = ctx;
	irq_table[vector].fn = fn;
	return 0;
}

_Static_assert(IRQ_VECTOR_LAST - IRQ_VECTOR_FIRST + 1 == IRQ_DEVICE_VECTORS, "cmdline.h's vector count");

void irq_unregister(unsigned vector)
{
	if (vector < 32 || vector > 255)
		return;
	uint64_t flags = irq_save();
	irq_table[vector].fn = NULL;
	irq_table[vector].ctx = NULL;
	irq_restore(flags);
}

static unsigned irq_vector_limit = IRQ_VECTOR_LAST - IRQ_VECTOR_FIRST + 1;

void irq_limit_vectors(unsigned n) { irq_vector_limit = n ? n : IRQ_VECTOR_LAST - IRQ_VECTOR_FIRST + 1; }

int irq_alloc_vector(void)
{
	unsigned used = 0;
	for (int v = IRQ_VECTOR_FIRST; v <= IRQ_VECTOR_LAST; v++)
		used += irq_table[v].fn != NULL;
	if (used >= irq_vector_limit)
		return -ENOSPC;
	for (int v = IRQ_VECTOR_FIRST; v <= IRQ_VECTOR_LAST; v++)
		if (!irq_table[v].fn)
			return v;
	return -ENOSPC;
}

static void trap_print_addr(const char *prefix, uint64_t addr)
{
	uint64_t off;
	const char *name = ksyms_lookup(addr, &off);

	if (name)
		printf("%s%016llx <%s+%#llx>\n", prefix, (unsigned long long)addr, name, (unsigned long long)off);
	else
		printf("%s%016llx\n", prefix, (unsigned long long)addr);
}

void trap_backtrace(uint64_t rip, uint64_t rbp)
{
	trap_print_addr("  at ", rip);
	for (int i = 0; i < BACKTRACE_MAX && rbp; i++) {
		/* The kernel keeps frame pointers; check each link before following it so a corrupt chain ends
		 * the trace instead of faulting inside the fault handler. */
		if ((rbp & 7) || !paging_is_mapped(rbp) || !paging_is_mapped(rbp + 15))
			break;
		uint64_t ret = ((uint64_t *)(uintptr_t)rbp)[1];
		uint64_t next = ((uint64_t *)(uintptr_t)rbp)[0];
		if (ret == 0)
			break;
		trap_print_addr("  by ", ret);
		if (next <= rbp)
			break; /* stacks grow down: callers' frames are higher */
		rbp = next;
	}
}

static void trap_exception(struct trap_frame *f)
{
	unsigned v = (unsigned)f->vector;

	if (trap_nesting++) {
		/* A fault while reporting a fault: say so and get out without touching more state. */
		static const char msg[] = "\nFATAL: nested exception while reporting an exception\n";
		printf("%s", msg);
		kernel_exit(KEXIT_EXCEPTION_BASE + (int)v);
	}
	printf("\n*** EXCEPTION %u (%s), error code %#llx\n", v, exception_names[v], (unsigned long long)f->error);
	trap_print_addr("RIP ", f->rip);
	printf("CS %#llx RFLAGS %#llx RSP %#llx SS %#llx CR2 %#llx CR3 %#llx\n", (unsigned long long)f->cs,
	       (unsigned long long)f->rflags, (unsigned long long)f->rsp, (unsigned long long)f->ss,
	       (unsigned long long)read_cr2(), (unsigned long long)read_cr3());
	printf("RAX %016llx RBX %016llx RCX %016llx RDX %016llx\n", (unsigned long long)f->rax,
	       (unsigned long long)f->rbx, (unsigned long long)f->rcx, (unsigned long long)f->rdx);
	printf("RSI %016llx RDI %016llx RBP %016llx R8  %016llx\n", (unsigned long long)f->rsi,
	       (unsigned long long)f->rdi, (unsigned long long)f->rbp, (unsigned long long)f->r8);
	printf("R9  %016llx R10 %016llx R11 %016llx R12 %016llx\n", (unsigned long long)f->r9,
	       (unsigned long long)f->r10, (unsigned long long)f->r11, (unsigned long long)f->r12);
	printf("R13 %016llx R14 %016llx R15 %016llx\n", (unsigned long long)f->r13, (unsigned long long)f->r14,
	       (unsigned long long)f->r15);
	printf("Stack trace:\n");
	trap_backtrace(f->rip, f->rbp);
	if (kernel_test_mode) {
		printf("test mode: exiting with code %d\n", KEXIT_EXCEPTION_BASE + (int)v);
		kernel_exit(KEXIT_EXCEPTION_BASE + (int)v);
	}
	printf("System halted.\n");
	fflush(stdout);
	cpu_halt_forever();
}

void trap_dispatch(struct trap_frame *f)
{
	unsigned v = (unsigned)f->vector;

	if (v < 32) {
		trap_exception(f);
		return;
	}
	if (v == VECTOR_SPURIOUS || (v >= VECTOR_PIC_BASE && v < VECTOR_PIC_BASE + 16)) {
		/* LAPIC spurious vectors and stray 8259 interrupts take no EOI. */
		irq_spurious++;
		return;
	}
	irq_counts[v]++;
	if (irq_table[v].fn)
		irq_table[v].fn(f, irq_table[v].ctx);
	else
		irq_spurious++;
	lapic_eoi();
}
