/* Guest memory as the device core sees it: guest-physical ranges that can be
 * read, written, and - where the strategy keeps memory mapped - translated to
 * a stable host pointer.
 *
 * This is the seam between the portable core and the host: on Linux the
 * strategies live in src/gmem/ (persistent mapping, the seed's "translation
 * vspace", and map-per-access, the seed's upstream behaviour); a microkernel
 * VMM supplies its own. Every call validates the whole range against the
 * guest's regions (no wrap-around, no straddling a region's end) and fails
 * rather than touching anything outside them. */
#ifndef CAUSEWAY_CORE_GMEM_H
#define CAUSEWAY_CORE_GMEM_H

#include <stddef.h>
#include <stdint.h>

struct cw_gmem_ops {
    /* Non-zero if [gpa, gpa+len) lies wholly inside one guest region. */
    int (*valid)(void *ctx, uint64_t gpa, size_t len);
    /* Copy len bytes at guest-physical gpa into dst. 0 on success, -1 if any
     * byte lies outside the guest's memory (nothing is copied then). */
    int (*read)(void *ctx, uint64_t gpa, void *dst, size_t len);
    /* Copy len bytes from src to guest-physical gpa. 0 or -1 as read. */
    int (*write)(void *ctx, uint64_t gpa, const void *src, size_t len);
    /* A host pointer to [gpa, gpa+len) that stays valid until the memory
     * table changes, or NULL when the range is invalid or the strategy does
     * not keep memory mapped. May itself be NULL (never translates). */
    void *(*translate)(void *ctx, uint64_t gpa, size_t len);
};

struct cw_gmem {
    const struct cw_gmem_ops *ops;
    void *ctx;
};

static inline int cw_gmem_valid(const struct cw_gmem *m, uint64_t gpa, size_t len)
{
    return m->ops->valid(m->ctx, gpa, len);
}

static inline int cw_gmem_read(const struct cw_gmem *m, uint64_t gpa, void *dst, size_t len)
{
    return m->ops->read(m->ctx, gpa, dst, len);
}

static inline int cw_gmem_write(const struct cw_gmem *m, uint64_t gpa, const void *src, size_t len)
{
    return m->ops->write(m->ctx, gpa, src, len);
}

static inline void *cw_gmem_translate(const struct cw_gmem *m, uint64_t gpa, size_t len)
{
    return m->ops->translate ? m->ops->translate(m->ctx, gpa, len) : NULL;
}

#endif
