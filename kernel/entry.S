/* The kernel's 64-bit entry (ELF e_entry), used by the UEFI loader: long mode, interrupts off,
 * %rdi = struct boot_info *. The PVH path reaches kernel_start() through pvh_main() instead. */

	.section .text
	.global kernel_entry64
kernel_entry64:
	cli
	cld
	lea boot_stack_top(%rip), %rsp
	xor %ebp, %ebp
	push %rdi
	call cpu_enable_sse
	pop %rdi
	call kernel_start
1:	cli
	hlt
	jmp 1b

/* newlib and the compiler use SSE (e.g. for printf of doubles and block copies), so it must be on before any
 * C code runs: CR0.EM off, CR0.MP on, CR4.OSFXSR and CR4.OSXMMEXCPT on. The interrupt entry saves the SSE
 * state (isr.S), so handlers may use it too. */
	.global cpu_enable_sse
cpu_enable_sse:
	mov %cr0, %rax
	and $~(1 << 2), %rax
	or $(1 << 1), %rax
	mov %rax, %cr0
	mov %cr4, %rax
	or $((1 << 9) | (1 << 10)), %rax
	mov %rax, %cr4
	fninit
	ret

	.section .bss
	.balign 4096
	.global boot_stack_top, boot_stack_guard
boot_stack_guard: /* unmapped once the kernel's page tables are live */
	.skip 4096
boot_stack:
	.skip 65536
boot_stack_top:
