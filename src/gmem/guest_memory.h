/* A guest's memory on Linux: up to CW_GMEM_MAX_REGIONS regions, each backed
 * by an fd the frontend handed over (vhost-user SET_MEM_TABLE), served to the
 * device core through struct cw_gmem with one of two strategies:
 *
 *  persistent      each region is mmap'ed once when the table arrives and
 *                  stays mapped (the seed's "translation vspace"); accesses
 *                  are a bounds check and a memcpy; translate() works.
 *  map-per-access  nothing stays mapped; every read or write maps the pages
 *                  it touches from the region's fd, copies, and unmaps (the
 *                  seed's upstream behaviour: ring_avail, ring_desc, packet
 *                  copies each map and unmap). translate() returns NULL.
 *
 * Only this guest's fds are ever mapped: a device process holds no other
 * guest's memory. */
#ifndef CAUSEWAY_GMEM_GUEST_MEMORY_H
#define CAUSEWAY_GMEM_GUEST_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/gmem.h"

#define CW_GMEM_MAX_REGIONS 8

enum cw_gmem_strategy {
    CW_GMEM_PERSISTENT,
    CW_GMEM_MAP_PER_ACCESS,
};

/* Parse "persistent" / "map-per-access"; -1 if neither. */
int cw_gmem_strategy_parse(const char *s, enum cw_gmem_strategy *out);
const char *cw_gmem_strategy_name(enum cw_gmem_strategy s);

/* A region as the frontend describes it (vhost-user VhostUserMemoryRegion). */
struct cw_region_desc {
    uint64_t gpa;         /* guest-physical start */
    uint64_t size;        /* bytes */
    uint64_t uva;         /* frontend's virtual address of gpa */
    uint64_t mmap_offset; /* offset of gpa's byte in the fd */
};

struct cw_region {
    struct cw_region_desc d;
    int fd;
    uint8_t *host;   /* persistent: host address of gpa's byte */
    void *map_base;  /* persistent: what mmap returned (for munmap) */
    uint64_t map_len;
    uint64_t align;  /* mapping granule of the fd (page, or huge page on hugetlbfs) */
};

struct cw_guest_memory {
    struct cw_gmem gmem; /* what the core uses; ctx points back here */
    enum cw_gmem_strategy strategy;
    unsigned n;
    struct cw_region r[CW_GMEM_MAX_REGIONS];
    uint64_t maps, unmaps; /* mmap/munmap calls made by map-per-access */
    uint64_t faults;       /* accesses refused: outside every region */
};

/* m->gmem.ctx points at m itself: initialise the struct where it will live
 * (do not copy it afterwards). */
void cw_guest_memory_init(struct cw_guest_memory *m, enum cw_gmem_strategy s);

/* Replace the table. Takes ownership of fds[0..n) in every case (closes them
 * on failure). Fails (-1, with *why set to a static reason) on n > max, an
 * empty or wrapping region, overlapping guest-physical or frontend ranges,
 * an fd too small for mmap_offset + size, or a failed mmap. On failure the
 * previous table is already gone: the memory is empty. Also refused: an
 * invalid fd, or the same fd number given for two regions. */
int cw_guest_memory_set(struct cw_guest_memory *m, const struct cw_region_desc *d,
                        const int *fds, unsigned n, const char **why);

/* Unmap and close everything. */
void cw_guest_memory_clear(struct cw_guest_memory *m);

/* Frontend virtual address -> guest-physical, whole range in one region. */
int cw_guest_memory_uva_to_gpa(const struct cw_guest_memory *m, uint64_t uva, uint64_t len,
                               uint64_t *gpa);

#endif
