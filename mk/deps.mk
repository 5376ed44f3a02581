# mk/deps.mk -- third-party dependencies: Debian packages, newlib, lwIP.
#
# Included by the top-level Makefile, which defines first:
#   CACHE          downloaded / built third-party trees (.cache)
#   BUILD          our own build output (build)
#   KERNEL_CFLAGS  the kernel's compile flags (also used for lwIP, minus -Werror)
#   KERNEL_CC      optional; the compiler for kernel code (default: gcc)
# and it is run from the repository root (paths below are relative to it).
#
# Provides:
#   NEWLIB_PREFIX  $(CACHE)/newlib      -> include/*.h, lib/libc.a, lib/libm.a
#   LWIP_DIR       $(CACHE)/lwip-2.1.3  -> upstream lwIP tree (src/include ...)
#   DEPS_STAMP     $(CACHE)/deps.ok     -> Debian packages checked/installed once
#   NEWLIB_STAMP   newlib built and installed (tools/build-newlib.sh)
#   LWIP_STAMP     lwIP fetched, SHA256-verified, unpacked (tools/fetch-lwip.sh)
#   DEPS_READY     both stamps: make every kernel object depend on it, since
#                  kernel code includes newlib's and lwIP's headers
#   LWIP_LIB       $(BUILD)/lwip/liblwip.a: lwIP core (IPv4+IPv6), ethernet,
#                  lwiperf; objects in $(BUILD)/lwip/
#   deps           phony: tools/deps.sh install
#
# The clean-clone problem: lwIP's file list ($(LWIP_DIR)/src/Filelists.mk)
# does not exist when make parses the Makefiles of a fresh clone. So the
# library is built by a recursive make of THIS file (LWIP_SUBMAKE=1), started
# only after $(LWIP_STAMP) exists; that sub-make includes Filelists.mk and has
# the per-object rules and -MMD dependencies. The outer rule always runs the
# sub-make (a no-op costing ~0.1 s when all is current); make looks at the
# library's mtime afterwards, so nothing that depends on $(LWIP_LIB) is
# relinked unless the library really changed.

DEPS_MK := $(lastword $(MAKEFILE_LIST))

CACHE ?= .cache
BUILD ?= build

NEWLIB_PREFIX := $(CACHE)/newlib
LWIP_DIR      := $(CACHE)/lwip-2.1.3
DEPS_STAMP    := $(CACHE)/deps.ok
NEWLIB_STAMP  := $(NEWLIB_PREFIX)/.stamp
LWIP_STAMP    := $(LWIP_DIR)/.stamp-verified
DEPS_READY    := $(NEWLIB_STAMP) $(LWIP_STAMP)
LWIP_OBJDIR   := $(BUILD)/lwip
LWIP_LIB      := $(LWIP_OBJDIR)/liblwip.a
LWIP_PORT_HEADERS := net/include/lwipopts.h net/include/arch/cc.h net/include/lwip_hooks.h

ifneq ($(LWIP_SUBMAKE),1)
# ===================== included by the top-level Makefile =====================

# Do not let the first rule below become the top-level Makefile's default goal.
deps_mk_saved_goal := $(.DEFAULT_GOAL)

LWIP_CC ?= $(if $(KERNEL_CC),$(KERNEL_CC),gcc)
# lwIP is third-party code: same ABI flags as the kernel, warnings not fatal.
LWIP_CFLAGS = $(filter-out -Werror -Werror=%,$(KERNEL_CFLAGS)) $(NET_INC)

.PHONY: deps
deps:
	tools/deps.sh install

$(DEPS_STAMP): tools/deps.sh
	@mkdir -p $(@D)
	@tools/deps.sh install
	@touch $@

# Order-only on DEPS_STAMP: re-checking the package list must not trigger a
# rebuild of newlib or a refetch of lwIP.
$(NEWLIB_STAMP): tools/build-newlib.sh tools/dep-script.sh | $(DEPS_STAMP)
	@tools/build-newlib.sh $(CACHE)

$(LWIP_STAMP): tools/fetch-lwip.sh tools/apt-src.sh tools/dep-script.sh $(wildcard patches/lwip/*.patch) | $(DEPS_STAMP)
	@tools/fetch-lwip.sh $(CACHE)

.PHONY: deps-lwip-submake
$(LWIP_LIB): $(LWIP_STAMP) $(NEWLIB_STAMP) deps-lwip-submake
	+@$(MAKE) --no-print-directory -f $(DEPS_MK) LWIP_SUBMAKE=1 \
	    CACHE='$(CACHE)' BUILD='$(BUILD)' LWIP_CC='$(LWIP_CC)' CFLAGS_STAMP='$(CFLAGS_STAMP)' \
	    LWIP_CFLAGS='$(LWIP_CFLAGS)' deps-lwip-lib

.DEFAULT_GOAL := $(deps_mk_saved_goal)

else
# ============ sub-make: run as `make -f mk/deps.mk LWIP_SUBMAKE=1` ============
# (only once $(LWIP_STAMP) exists, so Filelists.mk can be included)

LWIPDIR := $(LWIP_DIR)/src
include $(LWIPDIR)/Filelists.mk

LWIP_SRCS := $(COREFILES) $(CORE4FILES) $(CORE6FILES) \
             $(LWIPDIR)/netif/ethernet.c $(LWIPERFFILES)
LWIP_OBJS := $(patsubst $(LWIPDIR)/%.c,$(LWIP_OBJDIR)/%.o,$(LWIP_SRCS))

ifeq ($(V),1)
lwip_at :=
else
lwip_at := @
endif

.PHONY: deps-lwip-lib
deps-lwip-lib: $(LWIP_LIB)
	@:

# gcc-ar: with LTO the objects hold GCC's intermediate code, which only the compiler's plugin can index.
$(LWIP_LIB): $(LWIP_OBJS)
	@echo "  AR      $@"
	@rm -f $@
	$(lwip_at)gcc-ar rcsD $@ $^

# Every object also depends on the port headers, both trees and this file
# (-MMD records lwIP's own headers; newlib's are -isystem, hence the stamp).
$(LWIP_OBJDIR)/%.o: $(LWIPDIR)/%.c $(LWIP_PORT_HEADERS) $(NEWLIB_STAMP) \
                    $(LWIP_STAMP) $(DEPS_MK) $(CFLAGS_STAMP)
	@mkdir -p $(@D)
	@echo "  CC      lwip/$*.c"
	$(lwip_at)$(LWIP_CC) $(LWIP_CFLAGS) -c $< -o $@

-include $(LWIP_OBJS:.o=.d)

endif
