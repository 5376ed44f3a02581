#include "ksyms.h"

#include <stddef.h>

struct ksym {
	uint64_t addr;
	uint32_t name_off;
	uint32_t reserved;
};

/* Defined by the generated table; weak so that the first link (without a table) resolves them to NULL. */
extern const struct ksym ksym_table[] __attribute__((weak));
extern const uint64_t ksym_count __attribute__((weak));
extern const char ksym_names[] __attribute__((weak));

const char *ksyms_lookup(uint64_t addr, uint64_t *offset)
{
	if (!ksym_table || !&ksym_count || ksym_count == 0 || addr < ksym_table[0].addr)
		return NULL;
	/* Binary search for the last symbol at or below addr; the table is sorted by address. */
	uint64_t lo = 0, hi = ksym_count;
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (ksym_table[mid].addr <= addr)
			lo = mid;
		else
			hi = mid;
	}
	*offset = addr - ksym_table[lo].addr;
	return ksym_names + ksym_table[lo].name_off;
}
