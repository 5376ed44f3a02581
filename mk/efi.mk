# UEFI boot path: build/efi/BOOTX64.EFI, a GNU-EFI application embedding $(KERNEL_ELF).
#
# Included by the top-level Makefile, which defines BUILD and KERNEL_ELF (and the rule for the latter) first.
# Paths are relative to the repository root (make runs there).
#
# Defines:
#   EFI_APP      $(BUILD)/efi/BOOTX64.EFI    the PE32+ application
#   EFI_ESP      $(BUILD)/efi/esp.img        a FAT ESP image holding it (tools/mkesp.sh); its
#                                            \EFI\BOOT\CMDLINE.TXT holds $(EFI_CMDLINE) when that is non-empty
#   EFI_CMDLINE  (default empty)             kernel command line written into the ESP image
#   EFI_KERNEL   $(BUILD)/efi/kernel.stripped.elf $(KERNEL_ELF) without symbols/debug info: what gets embedded
#                                            (same PT_LOAD contents, a much smaller BOOTX64.EFI)
#   EFI_BUILD, EFI_SRCDIR, EFI_OBJS, EFI_SO, EFI_CC, EFI_LD, EFI_OBJCOPY, EFI_STRIP, EFI_CFLAGS, EFI_LDFLAGS,
#   EFI_LIBS
# Recipes use $(Q) (empty or @) if the includer defines it.

ifndef BUILD
$(error mk/efi.mk: define BUILD before including it)
endif
ifndef KERNEL_ELF
$(error mk/efi.mk: define KERNEL_ELF before including it)
endif

EFI_SRCDIR ?= boot/efi
EFI_BUILD := $(BUILD)/efi
EFI_APP := $(EFI_BUILD)/BOOTX64.EFI
EFI_SO := $(EFI_BUILD)/BOOTX64.so
EFI_ESP := $(EFI_BUILD)/esp.img
EFI_KERNEL := $(EFI_BUILD)/kernel.stripped.elf
EFI_CMDLINE ?=

EFI_CC ?= gcc
EFI_LD ?= ld
EFI_OBJCOPY ?= objcopy
EFI_STRIP ?= strip

GNUEFI_INC ?= /usr/include/efi
GNUEFI_LIB ?= /usr/lib

EFI_CFLAGS := -std=gnu11 -O2 -g -fpic -ffreestanding -fno-stack-protector -fno-stack-check -mno-red-zone \
	-maccumulate-outgoing-args -DGNU_EFI_USE_MS_ABI \
	-I$(GNUEFI_INC) -I$(GNUEFI_INC)/x86_64 -Wall -Wextra -Werror -MMD -MP
EFI_LDFLAGS := -nostdlib -znocombreloc -z noexecstack -shared -Bsymbolic --no-undefined \
	-T $(GNUEFI_LIB)/elf_x86_64_efi.lds
EFI_LIBS := -L$(GNUEFI_LIB) -lefi -lgnuefi
EFI_CRT0 := $(GNUEFI_LIB)/crt0-efi-x86_64.o

EFI_OBJS := $(EFI_BUILD)/efi_loader.o $(EFI_BUILD)/kernel_blob.o

$(EFI_BUILD)/efi_loader.o: $(EFI_SRCDIR)/efi_loader.c | $(EFI_BUILD)/
	@echo "  CC      $<"
	$(Q)$(EFI_CC) $(EFI_CFLAGS) -c -o $@ $<

$(EFI_KERNEL): $(KERNEL_ELF) | $(EFI_BUILD)/
	@echo "  STRIP   $@"
	$(Q)$(EFI_STRIP) -o $@ $<

# .incbin is invisible to -MMD: depend on the embedded kernel explicitly.
$(EFI_BUILD)/kernel_blob.o: $(EFI_SRCDIR)/kernel_blob.S $(EFI_KERNEL) | $(EFI_BUILD)/
	@echo "  AS      $<"
	$(Q)$(EFI_CC) $(EFI_CFLAGS) -DKERNEL_ELF_PATH='"$(abspath $(EFI_KERNEL))"' -c -o $@ $<

$(EFI_SO): $(EFI_OBJS) $(EFI_CRT0)
	@echo "  LD      $@"
	$(Q)$(EFI_LD) $(EFI_LDFLAGS) $(EFI_CRT0) $(EFI_OBJS) -o $@ $(EFI_LIBS)

# Only the sections GNU-EFI's linker script produces for a PE image (.rodata lives inside .data).
$(EFI_APP): $(EFI_SO)
	@echo "  OBJCOPY $@"
	$(Q)$(EFI_OBJCOPY) -j .text -j .sdata -j .data -j .dynamic -j .dynsym -j '.rel*' -j '.rela*' -j .reloc \
		--target efi-app-x86_64 --subsystem=10 $< $@

# The ESP image is rebuilt when the app or the command line changes. $(EFI_CMDLINE_STAMP) holds the command
# line of the last image; at parse time it is rewritten (so its mtime moves) only if it exists and differs.
EFI_CMDLINE_STAMP := $(EFI_BUILD)/cmdline.stamp
efi_cmdline_quoted = '$(subst ','\'',$(EFI_CMDLINE))'
$(shell [ -f $(EFI_CMDLINE_STAMP) ] && ! printf '%s' $(efi_cmdline_quoted) | cmp -s - $(EFI_CMDLINE_STAMP) && \
	printf '%s' $(efi_cmdline_quoted) > $(EFI_CMDLINE_STAMP))

$(EFI_CMDLINE_STAMP): | $(EFI_BUILD)/
	$(Q)printf '%s' $(efi_cmdline_quoted) > $@

$(EFI_ESP): $(EFI_APP) $(EFI_CMDLINE_STAMP) tools/mkesp.sh
	@echo "  MKESP   $@"
	$(Q)tools/mkesp.sh $@ $(EFI_APP) $(if $(EFI_CMDLINE),$(efi_cmdline_quoted))

$(EFI_BUILD)/:
	@mkdir -p $@

-include $(EFI_OBJS:.o=.d)
