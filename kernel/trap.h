/* Interrupt descriptor table, exception reports and interrupt-vector registration. */
#ifndef TRAP_H
#define TRAP_H

#include <stdint.h>

/* Pushed by isr.S, lowest address first. */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

typedef void (*irq_handler_fn)(struct trap_frame *frame, void *ctx);

#define IRQ_VECTOR_FIRST 0x30 /* dynamically allocated device vectors start here */
#define IRQ_VECTOR_LAST 0xDF
#define VECTOR_TIMER 0x20
#define VECTOR_PIC_BASE 0xE0 /* the masked 8259s, remapped out of the way */
#define VECTOR_SPURIOUS 0xFF

void idt_init(void);

/* Installs handler for vector (>= 32). The dispatcher sends the LAPIC EOI after the handler returns. */
int irq_register(unsigned vector, irq_handler_fn fn, void *ctx);

/* Removes vector's handler (it becomes free for irq_alloc_vector); an interrupt on it now counts as spurious. */
void irq_unregister(unsigned vector);

/* A free device vector in [IRQ_VECTOR_FIRST, IRQ_VECTOR_LAST], or -ENOSPC. */
int irq_alloc_vector(void);

/* At most n device vectors in use at once from now on (command line irq_vectors=; 0: no limit). */
void irq_limit_vectors(unsigned n);

/* Counts of external interrupts taken per vector, and spurious/unexpected ones. */
extern uint64_t irq_counts[256];
extern uint64_t irq_spurious;

void trap_dispatch(struct trap_frame *frame);

/* Prints a stack trace starting at the given frame pointer (bounded, checked against the page tables). */
void trap_backtrace(uint64_t rip, uint64_t rbp);

#endif
