/* The kernel's own GDT (flat 64-bit code and data) and a TSS carrying the interrupt stack table. */
#include <stdint.h>

#include "gdt.h"

#define IST_STACK_SIZE 16384

struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

struct gdt_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

static uint64_t gdt[5];
static struct tss tss;
static uint8_t ist_stacks[4][IST_STACK_SIZE] __attribute__((aligned(16)));

void gdt_init(void)
{
	uint64_t base = (uint64_t)(uintptr_t)&tss, limit = sizeof(tss) - 1;

	for (int i = 0; i < 4; i++)
		tss.ist[i] = (uint64_t)(uintptr_t)(ist_stacks[i] + IST_STACK_SIZE);
	tss.iomap_base = sizeof(tss); /* no I/O permission bitmap */

	gdt[0] = 0;
	gdt[1] = 0x00AF9A000000FFFFull; /* code: present, DPL0, long mode */
	gdt[2] = 0x00CF92000000FFFFull; /* data: present, DPL0, writable */
	/* 64-bit TSS descriptor: type 9 (available), present; the base spans both quadwords. */
	gdt[3] = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x89ull << 40) | (((limit >> 16) & 0xF) << 48) |
		 (((base >> 24) & 0xFF) << 56);
	gdt[4] = base >> 32;

	struct gdt_ptr ptr = { sizeof(gdt) - 1, (uint64_t)(uintptr_t)gdt };
	__asm__ volatile("lgdt %0\n\t"
			 "pushq %1\n\t"
			 "leaq 1f(%%rip), %%rax\n\t"
			 "pushq %%rax\n\t"
			 "lretq\n"
			 "1:\n\t"
			 "movw %2, %%ax\n\t"
			 "movw %%ax, %%ds\n\t"
			 "movw %%ax, %%es\n\t"
			 "movw %%ax, %%ss\n\t"
			 "xorw %%ax, %%ax\n\t"
			 "movw %%ax, %%fs\n\t"
			 "movw %%ax, %%gs\n\t"
			 "ltr %w3"
			 :
			 : "m"(ptr), "i"(GDT_KERNEL_CODE), "i"(GDT_KERNEL_DATA), "r"((uint16_t)GDT_TSS)
			 : "rax", "memory");
}
