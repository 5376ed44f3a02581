/*
 * arch/cc.h -- lwIP 2.1.3 port: compiler and C library glue.
 *
 * Target: x86_64, gcc, newlib 3.3.0 headers (-nostdinc -isystem newlib),
 * no OS. The kernel defines lwip_port_assert(), lwip_port_rand() and
 * u32_t sys_now(void) (declared by lwip/sys.h).
 *
 * lwip/arch.h includes this file; lwIP's own defaults cover the rest:
 * newlib provides <stdint.h>, <inttypes.h>, <limits.h>, <ctype.h> and
 * <stddef.h> (via gcc), so none of the LWIP_NO_*_H switches is needed, and
 * the GCC packed-struct defaults apply.
 */
#ifndef NET_ARCH_CC_H
#define NET_ARCH_CC_H

/*
 * Byte order. lwip/arch.h defines LITTLE_ENDIAN 1234 / BIG_ENDIAN 4321 just
 * before including us (unless already defined); newlib's <machine/endian.h>,
 * pulled in by almost every libc header, defines them as _LITTLE_ENDIAN /
 * _BIG_ENDIAN -- the same values spelled differently, which gcc reports as a
 * macro redefinition (an error under the kernel's -Werror). Drop arch.h's
 * spelling and take newlib's, whatever the include order of the user.
 */
#if defined(LITTLE_ENDIAN) && !defined(__MACHINE_ENDIAN_H__)
#undef LITTLE_ENDIAN
#undef BIG_ENDIAN
#endif
#include <machine/endian.h>
#ifndef LITTLE_ENDIAN           /* not __BSD_VISIBLE (e.g. strict -std=c11) */
#define LITTLE_ENDIAN _LITTLE_ENDIAN
#define BIG_ENDIAN    _BIG_ENDIAN
#endif
#ifndef BYTE_ORDER
#define BYTE_ORDER    LITTLE_ENDIAN
#endif
#if BYTE_ORDER != LITTLE_ENDIAN
#error "lwIP port: x86_64 is little-endian"
#endif

/* lwIP's documented hook (lwip/def.h): byte swaps as compiler builtins, one instruction inlined, instead of
 * lwIP's out-of-line functions (a call on every header field of every packet). */
#define lwip_htons(x) ((u16_t)__builtin_bswap16((u16_t)(x)))
#define lwip_htonl(x) ((u32_t)__builtin_bswap32((u32_t)(x)))

#include <stdint.h>
#include <stddef.h>
#include <limits.h>
#include <stdio.h>              /* printf, for LWIP_PLATFORM_DIAG */

/*
 * ssize_t: without SSIZE_MAX, lwip/arch.h does `typedef int ssize_t`, which
 * clashes with newlib's (long on x86_64). With SSIZE_MAX defined, arch.h takes
 * ssize_t from <unistd.h> instead. newlib's <limits.h> has no SSIZE_MAX.
 */
#ifndef SSIZE_MAX
#define SSIZE_MAX LONG_MAX
#endif

/* lwip/errno.h (only used by the socket/netconn layers, which are off) takes
 * the error numbers from newlib's <errno.h>. */
#define LWIP_ERRNO_STDINCLUDE 1

/* Diagnostics: LWIP_PLATFORM_DIAG(("fmt", args)) -- note the double parens. */
#define LWIP_PLATFORM_DIAG(x) do { printf x; } while (0)

/* Assertions (on unless LWIP_NOASSERT): the kernel decides what to do. */
void lwip_port_assert(const char *msg, const char *file, int line);
#define LWIP_PLATFORM_ASSERT(x) lwip_port_assert((x), __FILE__, __LINE__)

/* Randomness for DHCP xids, ephemeral ports, IPv6 and MLD timers: newlib's arc4random() (kernel/random.c).
 * TCP initial sequence numbers do not use it: see LWIP_HOOK_TCP_ISN in lwipopts.h. */
uint32_t lwip_port_rand(void);
#define LWIP_RAND() ((u32_t)lwip_port_rand())

#endif /* NET_ARCH_CC_H */
