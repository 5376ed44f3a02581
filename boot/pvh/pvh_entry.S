/* PVH direct boot (QEMU -kernel build/kernel.elf, no firmware).
 *
 * QEMU finds the 32-bit entry in the XEN_ELFNOTE_PHYS32_ENTRY note and jumps there in flat 32-bit protected
 * mode, paging off, %ebx = physical address of struct hvm_start_info. We identity-map the first 4 GiB with
 * 2 MiB pages (just enough to run C; the kernel builds its real tables from the memory map), enter long mode
 * and continue in pvh_main().
 *
 * .bss is not zeroed here: it is the zero-filled tail (p_memsz > p_filesz) of the kernel's RW PT_LOAD segment
 * (linker/kernel.ld), and an ELF loader zero-fills that tail by the ELF contract -- QEMU's PVH loader does (its
 * ROM blob is memsz long with the tail cleared at reset), as does boot/efi. Clearing its 1.5 MiB again with
 * `rep stosb` was 1.5 M of the 3.07 M guest instructions from QEMU start to the end of a test boot (under TCG
 * each iteration of a rep string instruction counts as one more pass through its translated block). */

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define PAGE_PRESENT_RW_HUGE 0x83
#define PAGE_PRESENT_RW 0x03

	.section .note.Xen, "a", @note
	.balign 4
	.long 4 /* name size: "Xen\0" */
	.long 4 /* descriptor size */
	.long XEN_ELFNOTE_PHYS32_ENTRY
	.asciz "Xen"
	.balign 4
	.long pvh_start32
	.balign 4

	.section .boot32, "ax"
	.code32
	.global pvh_start32
pvh_start32:
	cli
	cld
	mov %ebx, %esi /* keep hvm_start_info across the setup */

	/* PML4[0] -> PDPT; PDPT[0..3] -> four page directories of 2 MiB pages covering 0..4 GiB. */
	mov $pvh_pdpt, %eax
	or $PAGE_PRESENT_RW, %eax
	mov %eax, pvh_pml4
	mov $pvh_pd, %eax
	or $PAGE_PRESENT_RW, %eax
	mov $pvh_pdpt, %edi
	mov $4, %ecx
1:	mov %eax, (%edi)
	add $4096, %eax
	add $8, %edi
	loop 1b

	mov $pvh_pd, %edi
	mov $PAGE_PRESENT_RW_HUGE, %eax
	mov $2048, %ecx
2:	mov %eax, (%edi)
	add $0x200000, %eax
	add $8, %edi
	loop 2b

	mov %cr4, %eax
	or $(1 << 5), %eax /* PAE */
	mov %eax, %cr4
	mov $pvh_pml4, %eax
	mov %eax, %cr3
	mov $0xC0000080, %ecx /* EFER */
	rdmsr
	or $(1 << 8), %eax /* LME */
	wrmsr
	mov %cr0, %eax
	or $0x80000001, %eax /* PG | PE */
	mov %eax, %cr0

	lgdt pvh_gdt_desc
	ljmp $0x08, $pvh_start64

	.code64
pvh_start64:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	xor %ax, %ax
	mov %ax, %fs
	mov %ax, %gs
	lea boot_stack_top(%rip), %rsp
	xor %ebp, %ebp
	call cpu_enable_sse
	mov %esi, %edi /* zero-extends: hvm_start_info is below 4 GiB */
	call pvh_main
3:	cli
	hlt
	jmp 3b

	.section .rodata
	.balign 8
pvh_gdt:
	.quad 0
	.quad 0x00AF9A000000FFFF /* 0x08: 64-bit code */
	.quad 0x00CF92000000FFFF /* 0x10: data */
pvh_gdt_end:
pvh_gdt_desc:
	.word pvh_gdt_end - pvh_gdt - 1
	.long pvh_gdt

	.section .bss
	.balign 4096
pvh_pml4:
	.skip 4096
pvh_pdpt:
	.skip 4096
pvh_pd:
	.skip 4 * 4096
