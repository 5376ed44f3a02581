/* Random numbers: newlib's arc4random() (OpenBSD's ChaCha20 generator) is the CSPRNG, keyed from the entropy
 * this file gathers (RDSEED, else RDRAND, else TSC jitter) through getentropy(). */
#ifndef RANDOM_H
#define RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Picks the entropy source and keys the generator; call once, before anything draws random numbers. */
void random_init(void);

/* The source getentropy() uses: "RDSEED", "RDRAND" or "TSC jitter". */
extern const char *random_source;

uint32_t random_u32(void);
void random_bytes(void *buf, size_t len);

#endif
