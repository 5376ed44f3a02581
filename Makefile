# vnetk: a bare-metal x86_64 unikernel network stack. `make` builds the kernel (PVH-bootable ELF) and the
# UEFI loader; `make test` runs the unit and system tests; `./run-qemu.sh` boots it.
.DEFAULT_GOAL := all
.SUFFIXES:
.DELETE_ON_ERROR:

BUILD := build
CACHE := .cache
CC := gcc
HOSTCC := gcc
PYTHON := /usr/bin/python3

GCC_INC := $(shell $(CC) -print-file-name=include)
LIBGCC := $(shell $(CC) -print-libgcc-file-name)

# -mno-red-zone: interrupts arrive on the interrupted stack's neighbourhood in kernel mode, so the 128 bytes
# below %rsp are not ours to use. Frame pointers stay on for the exception handler's stack trace.
# Recursive (=) on purpose: NEWLIB_PREFIX and LWIP_DIR come from mk/deps.mk.
# -fbuiltin undoes the -fno-builtin that -ffreestanding implies: newlib is our libc, so GCC may inline a
# fixed-size memcpy/memset (lwIP's address and header copies, the virtio-net header) instead of calling newlib's
# byte loops, ~30 of the ~1300 guest instructions a received UDP datagram cost.
# LTO (make LTO=0 to leave it out): the kernel, lwIP and their glue are optimised as one program, so the
# per-packet path's small functions across files (pbuf header moves, netif glue, the virtqueue calls) are inlined;
# 3608 -> 3235 guest instructions per echoed UDP datagram when it came in. -O3 took another 5 % (3023 -> 2850)
# for 11 % more distinct instructions executed at boot (15.3 k -> 17.1 k, which TCG translates once: ~1 ms of
# ready time under TCG, within that figure's run-to-run spread), and 6 % fewer executed there.
LTO ?= 1
LTO_FLAGS := $(if $(filter 1,$(LTO)),-flto=auto)
KERNEL_CODEGEN = -O2 --param=max-inline-insns-auto=30 --param=early-inlining-insns=14 -g $(LTO_FLAGS) -ffreestanding -fbuiltin -fno-pie -fno-pic -mno-red-zone -fno-stack-protector \
	-fno-omit-frame-pointer -momit-leaf-frame-pointer -fno-asynchronous-unwind-tables -fno-common
KERNEL_CFLAGS = -std=gnu11 $(KERNEL_CODEGEN) \
	-nostdinc -isystem $(NEWLIB_PREFIX)/include -isystem $(GCC_INC) \
	-Wall -Wextra -Werror -MMD -MP -I kernel
# The layering, enforced by include paths: kernel/ and boot/ see kernel/ and drivers/ (kernel start-up brings
# the devices up); drivers/ see kernel/ and drivers/; net/ sees kernel/ (the netdev interface) and lwIP, never
# a driver's header.
KERNEL_INC := -I drivers
NET_INC = -I net -I net/include -I $(LWIP_DIR)/src/include
$(BUILD)/obj/net/%.o: KERNEL_INC = $(NET_INC)

include mk/deps.mk

KERNEL_ELF := $(BUILD)/kernel.elf
include mk/efi.mk

KERNEL_SRCS := $(wildcard boot/pvh/*.S boot/pvh/*.c kernel/*.S kernel/*.c drivers/*.c net/*.c)
KERNEL_OBJS := $(patsubst %,$(BUILD)/obj/%.o,$(basename $(KERNEL_SRCS)))
KERNEL_LIBS = $(LWIP_LIB) -Wl,--start-group $(NEWLIB_PREFIX)/lib/libc.a $(NEWLIB_PREFIX)/lib/libm.a $(LIBGCC) \
	-Wl,--end-group
# Linked through the compiler driver, which runs the link-time optimisation with the same code generation
# options the objects were compiled with.
KERNEL_LDFLAGS = $(KERNEL_CODEGEN) -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,max-page-size=0x1000 \
	-Wl,-z,noexecstack -Wl,--no-warn-rwx-segments -Wl,-T,linker/kernel.ld

ifeq ($(V),1)
Q :=
else
Q := @
endif

.PHONY: all kernel efi tools plugin report loadlat readme-knobs test unit-test fuzz-test system-test soak bench modes plot size clean distclean
all: $(KERNEL_ELF) $(EFI_APP)
kernel: $(KERNEL_ELF)
efi: $(EFI_APP)

# kernel/ is mostly start-up code that runs once, and under TCG each instruction's first execution costs its
# translation: GCC's loop vectorizer turned idt_init's 256-entry loop into ~400 SSE instructions, about 1.3 ms
# of boot under TCG against 0.05 ms for the scalar loop. No vectorizing there (drivers/ and net/ keep it).
$(BUILD)/obj/kernel/%.o: KERNEL_CFLAGS += -fno-tree-vectorize

# make tracks files, not flags: every object also depends on a file holding KERNEL_CFLAGS, rewritten only when
# they change, so that a changed flag rebuilds what it applies to (lwIP too, mk/deps.mk).
CFLAGS_STAMP := $(BUILD)/kernel-cflags
$(CFLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(KERNEL_CFLAGS)' | cmp -s - $@ || echo '$(KERNEL_CFLAGS)' > $@
.PHONY: FORCE
FORCE:

$(BUILD)/obj/%.o: %.c $(CFLAGS_STAMP) | $(DEPS_READY)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	$(Q)$(CC) $(KERNEL_CFLAGS) $(KERNEL_INC) -c $< -o $@

$(BUILD)/obj/%.o: %.S $(CFLAGS_STAMP) | $(DEPS_READY)
	@mkdir -p $(@D)
	@echo "  AS      $<"
	$(Q)$(CC) $(KERNEL_CFLAGS) $(KERNEL_INC) -c $< -o $@

# Two links: the first gives the addresses for the symbol table (tools/gensyms.sh), the second adds the table
# in .ksyms, which the linker script places after all code and data so that no address moves.
$(BUILD)/kernel.pass1.elf: $(KERNEL_OBJS) $(LWIP_LIB) linker/kernel.ld
	@echo "  LD      $@"
	$(Q)$(CC) $(KERNEL_LDFLAGS) -o $@ $(KERNEL_OBJS) $(KERNEL_LIBS)

$(BUILD)/ksyms.S: $(BUILD)/kernel.pass1.elf tools/gensyms.sh
	$(Q)tools/gensyms.sh $< $@

$(BUILD)/ksyms.o: $(BUILD)/ksyms.S
	$(Q)$(CC) -c $< -o $@

$(KERNEL_ELF): $(BUILD)/kernel.pass1.elf $(BUILD)/ksyms.o
	@echo "  LD      $@"
	$(Q)$(CC) $(KERNEL_LDFLAGS) -o $@ $(KERNEL_OBJS) $(BUILD)/ksyms.o $(KERNEL_LIBS)
	$(Q)tools/check-ksyms.sh $(BUILD)/kernel.pass1.elf $@
	$(Q)strip -o $(BUILD)/kernel.stripped.elf $@

size: $(KERNEL_ELF)
	@size $(KERNEL_ELF)
	@echo "stripped kernel: $$(stat -c %s $(BUILD)/kernel.stripped.elf) bytes"

# ---- host tools (tools/README.md): the latency workbench's probe and load generator ----
TOOLS_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -MMD -MP
TOOLS_BINS := $(BUILD)/tools/probe $(BUILD)/tools/load $(BUILD)/tools/knobs
tools: $(TOOLS_BINS)
all: $(TOOLS_BINS)
$(BUILD)/tools/probe: tools/probe.c tools/args.c tools/stats.c tools/pace.c tools/args.h tools/stats.h tools/pace.h
$(BUILD)/tools/load: tools/load.c tools/args.c tools/pace.c tools/rawtx.c tools/txring.c tools/args.h tools/pace.h \
	tools/rawtx.h tools/txring.h
$(BUILD)/tools/knobs: TOOLS_CFLAGS += -I kernel
$(BUILD)/tools/knobs: tools/knobs.c kernel/cmdline.c kernel/netdev.c kernel/cmdline.h kernel/netdev.h
$(TOOLS_BINS):
	@mkdir -p $(@D)
	@echo "  HOSTCC  $@"
	$(Q)$(HOSTCC) $(TOOLS_CFLAGS) -o $@ $(filter %.c,$^) -lm -pthread

# The TCG plugin that counts guest instructions (tools/plugin/icount.c) for make bench / make report. Its
# header comes from Debian's qemu source package (tools/fetch-qemu-plugin-h.sh: ~24 MB, once, into .cache/),
# so it is not part of `all`.
ICOUNT_PLUGIN := $(BUILD)/tools/libicount.so
QEMU_PLUGIN_STAMP := $(CACHE)/qemu-plugin/.stamp-verified
$(QEMU_PLUGIN_STAMP): tools/fetch-qemu-plugin-h.sh tools/apt-src.sh tools/dep-script.sh | $(DEPS_STAMP)
	@tools/fetch-qemu-plugin-h.sh $(CACHE)
$(ICOUNT_PLUGIN): tools/plugin/icount.c $(QEMU_PLUGIN_STAMP)
	@mkdir -p $(@D)
	@echo "  HOSTCC  $@"
	$(Q)$(HOSTCC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -fPIC -shared -I $(CACHE)/qemu-plugin -o $@ $<
plugin: $(ICOUNT_PLUGIN)

# README.md's option table is generated from the knob table (the cmdline unit test fails when they differ).
readme-knobs: $(BUILD)/tools/knobs
	$(Q)$(BUILD)/tools/knobs >$(BUILD)/knobs.md
	$(Q)$(PYTHON) tools/readme_section.py README.md knobs $(BUILD)/knobs.md

# ---- tests ----
# Each unit test is compiled for the host with the real kernel/driver sources it exercises.
UNIT_TESTS := cmdline memmap pmm hist siphash
UNIT_SRCS_hist := kernel/hist.c
UNIT_SRCS_siphash := kernel/siphash.c
UNIT_SRCS_cmdline := kernel/cmdline.c kernel/netdev.c
UNIT_SRCS_memmap := kernel/memmap.c
UNIT_SRCS_pmm := kernel/pmm.c
ifneq ($(wildcard tests/unit/test_virtq.c),)
UNIT_TESTS += virtq
UNIT_SRCS_virtq := drivers/virtq.c drivers/virtq_packed.c tests/unit/virtq_sim.c
endif
ifneq ($(wildcard tests/unit/test_virtq_packed.c),)
UNIT_TESTS += virtq_packed
UNIT_SRCS_virtq_packed := drivers/virtq.c drivers/virtq_packed.c tests/unit/virtq_psim.c tests/unit/virtq_sim.c
endif
ifneq ($(wildcard tests/unit/test_virtio_net_rx.c),)
UNIT_TESTS += virtio_net_rx
UNIT_SRCS_virtio_net_rx := drivers/virtio_net_rx.c drivers/virtq.c drivers/virtq_packed.c tests/unit/virtq_sim.c
endif
ifneq ($(wildcard tests/unit/test_virtio_pci.c),)
UNIT_TESTS += virtio_pci
UNIT_SRCS_virtio_pci := drivers/virtio_pci.c drivers/virtq.c drivers/virtq_packed.c
endif
UNIT_TESTS += virtio_mmio
UNIT_SRCS_virtio_mmio := drivers/virtio_mmio.c drivers/virtq.c drivers/virtq_packed.c
UNIT_TESTS += stats
UNIT_SRCS_stats := tools/stats.c tools/pace.c
$(BUILD)/unit/test_stats: tools/stats.h tools/pace.h
UNIT_TESTS += args
UNIT_SRCS_args := tools/args.c
$(BUILD)/unit/test_args: tools/args.h
UNIT_TESTS += rawtx
UNIT_SRCS_rawtx := tools/rawtx.c
$(BUILD)/unit/test_rawtx: tools/rawtx.h
UNIT_TESTS += txring
UNIT_SRCS_txring := tools/txring.c tools/rawtx.c
$(BUILD)/unit/test_txring: tools/txring.h tools/rawtx.h
UNIT_BINS := $(patsubst %,$(BUILD)/unit/test_%,$(UNIT_TESTS))
UNIT_CFLAGS := -std=gnu11 -O1 -g -Wall -Wextra -Werror -MMD -MP -fsanitize=address,undefined \
	-fno-sanitize-recover=all -I kernel -I drivers -I tests/unit

.SECONDEXPANSION:
$(BUILD)/unit/test_%: tests/unit/test_%.c $$(UNIT_SRCS_$$*) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  HOSTCC  $@"
	$(Q)$(HOSTCC) $(UNIT_CFLAGS) -o $@ $(filter %.c,$^) -lcmocka -lm

unit-test: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done
	$(PYTHON) -m pytest -q tests/unit

# A hostile device against the real used-ring consumer and virtio-net header handling (libFuzzer, ASan,
# UBSan). `make test` runs a bounded number of executions, `make soak` ten million.
FUZZ_BIN := $(BUILD)/fuzz/fuzz_virtio_rx
FUZZ_RUNS ?= 300000
$(FUZZ_BIN): tests/fuzz/fuzz_virtio_rx.c drivers/virtq.c drivers/virtq_packed.c drivers/virtio_net_rx.c drivers/virtq.h drivers/virtq_packed.h drivers/virtio_net_rx.h | $(DEPS_STAMP)
	@mkdir -p $(@D)
	@echo "  FUZZ    $@"
	$(Q)clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I drivers -I kernel \
		tests/fuzz/fuzz_virtio_rx.c drivers/virtq.c drivers/virtq_packed.c drivers/virtio_net_rx.c -o $@

fuzz-test: $(FUZZ_BIN)
	@mkdir -p $(BUILD)/fuzz/corpus
	@if $(FUZZ_BIN) -runs=$(FUZZ_RUNS) -max_len=1024 -seed=1 $(BUILD)/fuzz/corpus >$(BUILD)/fuzz/log 2>&1; then \
		tail -n 1 $(BUILD)/fuzz/log; \
	else \
		tail -n 40 $(BUILD)/fuzz/log; echo "fuzz-test: FAILED (crash input and log in $(BUILD)/fuzz/)"; exit 1; \
	fi

# Long versions: 10^7 fuzz executions, and the robustness tests with ten times the frames (SOAK=1).
soak: all $(FUZZ_BIN)
	$(MAKE) fuzz-test FUZZ_RUNS=10000000
	SOAK=1 $(PYTHON) -m pytest -ra tests/system/test_robustness.py $(PYTEST_ARGS)

system-test: all plugin
	$(PYTHON) -m pytest -ra tests/system $(PYTEST_ARGS)

test: unit-test fuzz-test system-test

# Benchmarks against a stock Linux guest in the same run (bench/bench.py; needs root). Figures and ratios are
# printed and written to build/bench/; nothing here is a pass/fail test.
bench: all plugin
	bench/linux/build.sh
	$(PYTHON) bench/bench.py $(BENCH_ARGS)

# UDP echo RTT per delivery mode on one guest in its own namespace (bench/modes.py; needs root).
modes: all
	$(PYTHON) bench/modes.py $(MODES_ARGS)

# RTT p50/p99/p99.9 under a background load at LEVELS rates per delivery mode, and the coalesce grid
# (bench/loadlat.py; needs root).
loadlat: all
	$(PYTHON) bench/loadlat.py $(LOADLAT_ARGS)

# One Markdown report with every table and PNG, stamped with QEMU version, host CPU, accelerator, date and
# commit (bench/report.py: bench, loadlat --sweep, plot; ~10 min here). REPORT_ARGS=--reuse: no measuring.
report: all plugin
	$(PYTHON) bench/report.py $(REPORT_ARGS)

# PNGs into build/plots/ from make modes, make bench and tools/timeline.py run.
plot:
	$(PYTHON) tools/plot.py $(PLOT_ARGS)

clean:
	rm -rf $(BUILD)

distclean: clean
	rm -rf $(CACHE)

-include $(KERNEL_OBJS:.o=.d) $(UNIT_BINS:=.d) $(TOOLS_BINS:=.d)
