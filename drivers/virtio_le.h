/* Little-endian field types for structures shared with a virtio device (virtio 1.x §1.4: all ring and
 * configuration fields of modern devices are little-endian).
 *
 * The types are one-member structs, so a field cannot be read or written without going through the
 * conversion helpers: forgetting one is a compile error rather than a silent bug on a big-endian target. On
 * x86 the conversions compile to nothing. */
#ifndef VIRTIO_LE_H
#define VIRTIO_LE_H

#include <stdint.h>

typedef struct {
	uint16_t v;
} le16;
typedef struct {
	uint32_t v;
} le32;
typedef struct {
	uint64_t v;
} le64;

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "virtio_le.h: add byte swaps for big-endian targets"
#endif

static inline uint16_t le16_to_cpu(le16 x) { return x.v; }
static inline uint32_t le32_to_cpu(le32 x) { return x.v; }
static inline uint64_t le64_to_cpu(le64 x) { return x.v; }
static inline le16 cpu_to_le16(uint16_t x) { return (le16){ x }; }
static inline le32 cpu_to_le32(uint32_t x) { return (le32){ x }; }
static inline le64 cpu_to_le64(uint64_t x) { return (le64){ x }; }

/* Single accesses to memory the device writes concurrently: volatile, so each is one load or store that the
 * compiler neither caches nor tears. */
static inline uint16_t le16_read(const le16 *p) { return le16_to_cpu(*(const volatile le16 *)p); }
static inline uint32_t le32_read(const le32 *p) { return le32_to_cpu(*(const volatile le32 *)p); }
static inline void le16_write(le16 *p, uint16_t v) { *(volatile le16 *)p = cpu_to_le16(v); }
static inline void le32_write(le32 *p, uint32_t v) { *(volatile le32 *)p = cpu_to_le32(v); }
static inline void le64_write(le64 *p, uint64_t v) { *(volatile le64 *)p = cpu_to_le64(v); }

#endif
