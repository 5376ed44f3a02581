/* The kernel's own function symbols, for symbolised stack traces. The table is generated from a first link
 * (tools/gensyms.sh) and linked into the final image's .ksyms section. */
#ifndef KSYMS_H
#define KSYMS_H

#include <stdint.h>

/* Name of the function containing addr and the offset into it; NULL if unknown. */
const char *ksyms_lookup(uint64_t addr, uint64_t *offset);

#endif
