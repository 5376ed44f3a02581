/* SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit hash for short inputs, a PRF when the key is
 * secret. Pure code: the host unit tests run it against the reference test vectors. */
#ifndef SIPHASH_H
#define SIPHASH_H

#include <stddef.h>
#include <stdint.h>

struct siphash_key {
	uint64_t k0, k1; /* the 16 key bytes read as two little-endian words, as in the reference code */
};

uint64_t siphash24(const struct siphash_key *key, const void *data, size_t len);

#endif
