#ifndef GDT_H
#define GDT_H

#define GDT_KERNEL_CODE 0x08
#define GDT_KERNEL_DATA 0x10
#define GDT_TSS 0x18

/* Interrupt stack table slots (1-based, as in the IDT gate). Faults that may hit a broken stack get their own
 * stack; external interrupts get one too, so a handler never runs on whatever stack it interrupted. */
#define IST_DOUBLE_FAULT 1
#define IST_NMI 2
#define IST_MACHINE_CHECK 3
#define IST_IRQ 4

void gdt_init(void);

#endif
