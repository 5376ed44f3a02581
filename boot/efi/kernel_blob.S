/* The kernel ELF, embedded verbatim in the EFI application.
 *
 * KERNEL_ELF_PATH is a quoted path given on the command line: mk/efi.mk passes the absolute path of
 * $(EFI_KERNEL), a stripped copy of $(KERNEL_ELF). .incbin is not seen by -MMD: mk/efi.mk adds that
 * dependency by hand.
 *
 * GNU-EFI's linker script folds .rodata* into the PE .data section, so the blob ends up in the image without
 * any extra objcopy -j. The loader only reads it. */
#ifndef KERNEL_ELF_PATH
#error "define KERNEL_ELF_PATH (quoted path of kernel.elf)"
#endif

	.section .rodata.kernel_blob, "a"
	.balign 4096
	.globl kernel_blob_start
	.globl kernel_blob_end
kernel_blob_start:
	.incbin KERNEL_ELF_PATH
kernel_blob_end:
	.byte 0

	.section .note.GNU-stack, "", @progbits
