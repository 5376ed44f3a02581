/* The legacy 8259 pair: remapped away from the exception vectors and masked. Everything here is routed
 * through the LAPIC (timer, MSI-X) or the IOAPIC. */
#include "cpu.h"
#include "pic.h"
#include "trap.h"

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xA0
#define PIC2_DATA 0xA1

void pic_disable(void)
{
	/* ICW1-4: edge, cascade, vectors VECTOR_PIC_BASE.., 8086 mode. A spurious IRQ 7/15 then lands on a
	 * vector trap_dispatch counts and ignores instead of on an exception vector. */
	outb(PIC1_CMD, 0x11);
	outb(PIC2_CMD, 0x11);
	outb(PIC1_DATA, VECTOR_PIC_BASE);
	outb(PIC2_DATA, VECTOR_PIC_BASE + 8);
	outb(PIC1_DATA, 4);
	outb(PIC2_DATA, 2);
	outb(PIC1_DATA, 1);
	outb(PIC2_DATA, 1);
	outb(PIC1_DATA, 0xFF);
	outb(PIC2_DATA, 0xFF);
}
