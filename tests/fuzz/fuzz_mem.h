/* A simulated guest memory for the fuzz targets: one region of guest-physical
 * space [base, base + size), backed by exactly `size` malloc'd bytes so that
 * AddressSanitizer reports any access the core makes outside it (through a
 * translated pointer) as a heap overflow. Served as a struct cw_gmem in either
 * flavour the core supports: translating (persistent strategy: stable host
 * pointers) or copying (map-per-access: every access through read/write).
 * The region may end exactly at 2^64, so wrap-around checks are exercised. */
#ifndef CAUSEWAY_TESTS_FUZZ_MEM_H
#define CAUSEWAY_TESTS_FUZZ_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/gmem.h"

struct fuzz_mem {
    struct cw_gmem gmem;
    uint64_t base;
    uint64_t size;     /* >= 1; base + size <= 2^64 */
    uint8_t *host;
    bool translating;
    uint64_t accesses; /* every gmem call the core made */
    /* Fault injection: once this many calls were made (0: never), every
     * call fails, as when the memory table changes under the device or a
     * map-per-access mmap fails after validation passed. */
    uint64_t fail_after;
};

/* Has fault injection started failing calls? */
static inline bool fuzz_mem_failing(const struct fuzz_mem *m)
{
    return m->fail_after != 0 && m->accesses > m->fail_after;
}

/* 0, or -1 if base + size passes 2^64 or size is 0 (or malloc fails). */
int fuzz_mem_init(struct fuzz_mem *m, uint64_t base, uint64_t size, bool translating);
void fuzz_mem_free(struct fuzz_mem *m);

/* Host view of [gpa, gpa + len) if it lies wholly inside the region. */
uint8_t *fuzz_mem_host(const struct fuzz_mem *m, uint64_t gpa, uint64_t len);

/* Offset of gpa in the region, or UINT64_MAX if gpa is outside. */
uint64_t fuzz_mem_off(const struct fuzz_mem *m, uint64_t gpa);

#endif
