/* Guest memory on Linux: the two strategies behind struct cw_gmem.
 *
 * The region table comes from the frontend and is untrusted: every sum is
 * checked for overflow, regions may not overlap (in guest-physical or in
 * frontend space, or a translation would be ambiguous), and each fd must be
 * large enough for the bytes the region claims, so no access can reach past
 * the end of the file (which would raise SIGBUS).
 *
 * A frontend that shrinks an unsealed region file after the table was
 * accepted makes the next access fault: every mapping is registered with the
 * fault guard (fault_guard.h), which turns that SIGBUS into a tripped flag the
 * event loop answers by dropping the frontend. */
#define _GNU_SOURCE
#include "guest_memory.h"
#include "fault_guard.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int cw_gmem_strategy_parse(const char *s, enum cw_gmem_strategy *out)
{
    if (s && strcmp(s, "persistent") == 0) {
        *out = CW_GMEM_PERSISTENT;
        return 0;
    }
    if (s && strcmp(s, "map-per-access") == 0) {
        *out = CW_GMEM_MAP_PER_ACCESS;
        return 0;
    }
    return -1;
}

const char *cw_gmem_strategy_name(enum cw_gmem_strategy s)
{
    return s == CW_GMEM_MAP_PER_ACCESS ? "map-per-access" : "persistent";
}

static uint64_t host_page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (uint64_t)p : 4096u;
}

/* The region wholly holding guest-physical [gpa, gpa+len), with gpa's offset
 * into it. Written so nothing can wrap: the offset is taken only once gpa is
 * known to be at or above the start, and len is compared with what is left. */
static const struct cw_region *find_gpa(const struct cw_guest_memory *m, uint64_t gpa,
                                        uint64_t len, uint64_t *off)
{
    for (unsigned i = 0; i < m->n; i++) {
        const struct cw_region *r = &m->r[i];
        if (gpa < r->d.gpa)
            continue;
        uint64_t o = gpa - r->d.gpa;
        if (o >= r->d.size || len > r->d.size - o)
            continue;
        *off = o;
        return r;
    }
    return NULL;
}

/* --- persistent: mapped once, accesses are a bounds check and a memcpy --- */

static int p_valid(void *ctx, uint64_t gpa, size_t len)
{
    uint64_t off;
    return find_gpa(ctx, gpa, len, &off) != NULL;
}

static int p_read(void *ctx, uint64_t gpa, void *dst, size_t len)
{
    struct cw_guest_memory *m = ctx;
    uint64_t off;
    const struct cw_region *r = find_gpa(m, gpa, len, &off);
    if (!r) {
        m->faults++;
        return -1;
    }
    if (len)
        memcpy(dst, r->host + off, len);
    return 0;
}

static int p_write(void *ctx, uint64_t gpa, const void *src, size_t len)
{
    struct cw_guest_memory *m = ctx;
    uint64_t off;
    const struct cw_region *r = find_gpa(m, gpa, len, &off);
    if (!r) {
        m->faults++;
        return -1;
    }
    if (len)
        memcpy(r->host + off, src, len);
    return 0;
}

static void *p_translate(void *ctx, uint64_t gpa, size_t len)
{
    struct cw_guest_memory *m = ctx;
    uint64_t off;
    const struct cw_region *r = find_gpa(m, gpa, len, &off);
    if (!r) {
        m->faults++;
        return NULL;
    }
    return r->host + off;
}

static const struct cw_gmem_ops persistent_ops = {
    .valid = p_valid,
    .read = p_read,
    .write = p_write,
    .translate = p_translate,
};

/* --- map-per-access: map the touched pages, copy, unmap, every time --- */

/* Map the pages of region r covering [off, off+len) (len > 0), returning the
 * address of off's byte; *base and *maplen are what munmap needs. The caller
 * has checked off+len <= size, and the table check guaranteed
 * mmap_offset+size fits the file, so none of these sums can overflow. */
static uint8_t *map_range(struct cw_guest_memory *m, const struct cw_region *r, uint64_t off,
                          size_t len, int prot, void **base, size_t *maplen)
{
    uint64_t file_off = r->d.mmap_offset + off;
    uint64_t aligned = file_off & ~(r->align - 1);
    uint64_t delta = file_off - aligned;
    uint64_t total = delta + (uint64_t)len;
#if SIZE_MAX < UINT64_MAX
    if (total > SIZE_MAX)
        return NULL;
#endif
    void *p = mmap(NULL, (size_t)total, prot, MAP_SHARED, r->fd, (off_t)aligned);
    if (p == MAP_FAILED)
        return NULL;
    m->maps++;
    cw_fault_guard_add(p, (size_t)total);
    *base = p;
    *maplen = (size_t)total;
    return (uint8_t *)p + delta;
}

static void unmap_range(struct cw_guest_memory *m, void *base, size_t maplen)
{
    cw_fault_guard_remove(base);
    munmap(base, maplen);
    m->unmaps++;
}

static int m_read(void *ctx, uint64_t gpa, void *dst, size_t len)
{
    struct cw_guest_memory *m = ctx;
    uint64_t off;
    const struct cw_region *r = find_gpa(m, gpa, len, &off);
    if (!r) {
        m->faults++;
        return -1;
    }
    if (!len)
        return 0;
    void *base;
    size_t maplen;
    uint8_t *p = map_range(m, r, off, len, PROT_READ, &base, &maplen);
    if (!p) {
        m->faults++;
        return -1;
    }
    memcpy(dst, p, len);
    unmap_range(m, base, maplen);
    return 0;
}

static int m_write(void *ctx, uint64_t gpa, const void *src, size_t len)
{
    struct cw_guest_memory *m = ctx;
    uint64_t off;
    const struct cw_region *r = find_gpa(m, gpa, len, &off);
    if (!r) {
        m->faults++;
        return -1;
    }
    if (!len)
        return 0;
    void *base;
    size_t maplen;
    uint8_t *p = map_range(m, r, off, len, PROT_READ | PROT_WRITE, &base, &maplen);
    if (!p) {
        m->faults++;
        return -1;
    }
    memcpy(p, src, len);
    unmap_range(m, base, maplen);
    return 0;
}

/* Nothing stays mapped, so there is no stable pointer to hand out. The
 * function exists (rather than a NULL op) so a caller calling through the
 * ops table directly gets NULL too. */
static void *m_translate(void *ctx, uint64_t gpa, size_t len)
{
    (void)ctx;
    (void)gpa;
    (void)len;
    return NULL;
}

static const struct cw_gmem_ops map_per_access_ops = {
    .valid = p_valid,
    .read = m_read,
    .write = m_write,
    .translate = m_translate,
};

/* --- the table --- */

void cw_guest_memory_init(struct cw_guest_memory *m, enum cw_gmem_strategy s)
{
    memset(m, 0, sizeof(*m));
    m->strategy = s;
    m->gmem.ops = s == CW_GMEM_MAP_PER_ACCESS ? &map_per_access_ops : &persistent_ops;
    m->gmem.ctx = m;
    for (unsigned i = 0; i < CW_GMEM_MAX_REGIONS; i++)
        m->r[i].fd = -1;
}

void cw_guest_memory_clear(struct cw_guest_memory *m)
{
    for (unsigned i = 0; i < m->n && i < CW_GMEM_MAX_REGIONS; i++) {
        struct cw_region *r = &m->r[i];
        if (r->map_base) {
            cw_fault_guard_remove(r->map_base);
            munmap(r->map_base, (size_t)r->map_len);
        }
        if (r->fd >= 0)
            close(r->fd);
        memset(r, 0, sizeof(*r));
        r->fd = -1;
    }
    m->n = 0;
}

/* Close each fd once, even if the caller listed the same number twice. */
static void close_fds(const int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (fds[i] < 0)
            continue;
        bool seen = false;
        for (unsigned j = 0; j < i && !seen; j++)
            seen = fds[j] == fds[i];
        if (!seen)
            close(fds[i]);
    }
}

static bool ranges_overlap(uint64_t a, uint64_t a_end, uint64_t b, uint64_t b_end)
{
    return a < b_end && b < a_end;
}

/* Everything about region i that can be checked without mapping it. */
static const char *check_region(const struct cw_region_desc *d, const int *fds, unsigned i,
                                uint64_t *align)
{
    uint64_t gpa_end, uva_end, file_end;
    if (fds[i] < 0)
        return "memory region without a valid fd";
    for (unsigned j = 0; j < i; j++)
        if (fds[j] == fds[i])
            return "the same fd listed for two memory regions";
    if (d[i].size == 0)
        return "empty memory region";
    if (__builtin_add_overflow(d[i].gpa, d[i].size, &gpa_end))
        return "memory region wraps guest-physical space";
    if (__builtin_add_overflow(d[i].uva, d[i].size, &uva_end))
        return "memory region wraps frontend address space";
    if (__builtin_add_overflow(d[i].mmap_offset, d[i].size, &file_end) || file_end > INT64_MAX)
        return "memory region wraps its file offset";
    for (unsigned j = 0; j < i; j++) {
        if (ranges_overlap(d[i].gpa, gpa_end, d[j].gpa, d[j].gpa + d[j].size))
            return "memory regions overlap in guest-physical space";
        if (ranges_overlap(d[i].uva, uva_end, d[j].uva, d[j].uva + d[j].size))
            return "memory regions overlap in frontend address space";
    }
    struct stat st;
    if (fstat(fds[i], &st) < 0)
        return "cannot stat a memory region fd";
    if (st.st_size < 0 || (uint64_t)st.st_size < file_end)
        return "memory region fd is smaller than the region";
    /* Map on the fd's own granule: hugetlbfs reports its huge page size
     * here and refuses mappings at offsets that are not multiples of it. */
    uint64_t page = host_page_size();
    uint64_t blk = st.st_blksize > 0 ? (uint64_t)st.st_blksize : page;
    *align = (blk >= page && blk <= (1ull << 30) && (blk & (blk - 1)) == 0) ? blk : page;
    return NULL;
}

static const char *map_region(struct cw_region *r)
{
    uint64_t aligned = r->d.mmap_offset & ~(r->align - 1);
    uint64_t delta = r->d.mmap_offset - aligned;
    uint64_t len = delta + r->d.size;
#if SIZE_MAX < UINT64_MAX
    if (len > SIZE_MAX)
        return "memory region too large for this host";
#endif
    void *p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, (off_t)aligned);
    if (p == MAP_FAILED)
        return "cannot map a memory region";
    /* Guest memory has no business in this process's core dumps. */
    (void)madvise(p, (size_t)len, MADV_DONTDUMP);
    cw_fault_guard_add(p, (size_t)len);
    r->map_base = p;
    r->map_len = len;
    r->host = (uint8_t *)p + delta;
    return NULL;
}

int cw_guest_memory_set(struct cw_guest_memory *m, const struct cw_region_desc *d,
                        const int *fds, unsigned n, const char **why)
{
    static const char *unused;
    if (!why)
        why = &unused;
    cw_guest_memory_clear(m);

    const char *reason = NULL;
    uint64_t align[CW_GMEM_MAX_REGIONS];
    if (n > CW_GMEM_MAX_REGIONS)
        reason = "too many memory regions";
    for (unsigned i = 0; !reason && i < n; i++)
        reason = check_region(d, fds, i, &align[i]);
    if (reason) {
        close_fds(fds, n);
        *why = reason;
        return -1;
    }

    for (unsigned i = 0; i < n; i++) {
        struct cw_region *r = &m->r[i];
        memset(r, 0, sizeof(*r));
        r->d = d[i];
        r->fd = fds[i];
        r->align = align[i];
    }
    /* Count the regions in as they become usable, so that clearing after a
     * failed mapping unmaps exactly what was mapped and closes every fd. */
    m->n = n;
    if (m->strategy == CW_GMEM_PERSISTENT) {
        for (unsigned i = 0; i < n; i++) {
            reason = map_region(&m->r[i]);
            if (reason) {
                cw_guest_memory_clear(m);
                *why = reason;
                return -1;
            }
        }
    }
    return 0;
}

int cw_guest_memory_uva_to_gpa(const struct cw_guest_memory *m, uint64_t uva, uint64_t len,
                               uint64_t *gpa)
{
    for (unsigned i = 0; i < m->n; i++) {
        const struct cw_region *r = &m->r[i];
        if (uva < r->d.uva)
            continue;
        uint64_t o = uva - r->d.uva;
        if (o >= r->d.size || len > r->d.size - o)
            continue;
        *gpa = r->d.gpa + o;
        return 0;
    }
    return -1;
}
