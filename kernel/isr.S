/* Interrupt and exception entry: one stub per vector pushes a uniform frame (error code or 0, vector,
 * general registers), saves the SSE state (handlers are ordinary C and newlib uses SSE) and calls
 * trap_dispatch(struct trap_frame *). The frame layout is struct trap_frame in trap.h. */

	.altmacro
	.macro ISR_STUB vec
	.balign 16
isr_\vec:
	/* Vectors with a CPU-pushed error code: #DF #TS #NP #SS #GP #PF #AC #CP #VC #SX. */
	.if (\vec == 8) || (\vec == 10) || (\vec == 11) || (\vec == 12) || (\vec == 13) || (\vec == 14) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
	.else
	pushq $0
	.endif
	pushq $\vec
	jmp isr_common
	.endm

	.macro ISR_ADDR vec
	.quad isr_\vec
	.endm

	.section .text
	.set vec, 0
	.rept 256
	ISR_STUB %vec
	.set vec, vec + 1
	.endr

isr_common:
	cld
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	mov %rsp, %rbx /* callee-saved: the frame, and the stack to return to */
	sub $512, %rsp
	and $~15, %rsp
	fxsave64 (%rsp)
	mov %rbx, %rdi
	call trap_dispatch
	fxrstor64 (%rsp)
	mov %rbx, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	add $16, %rsp /* vector and error code */
	iretq

	.section .rodata
	.balign 8
	.global isr_stub_table
isr_stub_table:
	.set vec, 0
	.rept 256
	ISR_ADDR %vec
	.set vec, vec + 1
	.endr
