/* Simulated one-region guest memory (see fuzz_mem.h). */
#include "fuzz_mem.h"

#include <stdlib.h>
#include <string.h>

uint64_t fuzz_mem_off(const struct fuzz_mem *m, uint64_t gpa)
{
    if (gpa < m->base || gpa - m->base >= m->size)
        return UINT64_MAX;
    return gpa - m->base;
}

/* Written so no sum can wrap: the offset is taken only once gpa is known to
 * be inside, and len is compared with what is left. A zero-length range is
 * inside if its start is. */
uint8_t *fuzz_mem_host(const struct fuzz_mem *m, uint64_t gpa, uint64_t len)
{
    uint64_t off = fuzz_mem_off(m, gpa);
    if (off == UINT64_MAX || len > m->size - off)
        return NULL;
    return m->host + off;
}

static int f_valid(void *ctx, uint64_t gpa, size_t len)
{
    struct fuzz_mem *m = ctx;
    m->accesses++;
    if (fuzz_mem_failing(m))
        return 0;
    return fuzz_mem_host(m, gpa, len) != NULL;
}

static int f_read(void *ctx, uint64_t gpa, void *dst, size_t len)
{
    struct fuzz_mem *m = ctx;
    m->accesses++;
    uint8_t *p = fuzz_mem_failing(m) ? NULL : fuzz_mem_host(m, gpa, len);
    if (!p)
        return -1;
    if (len)
        memcpy(dst, p, len);
    return 0;
}

static int f_write(void *ctx, uint64_t gpa, const void *src, size_t len)
{
    struct fuzz_mem *m = ctx;
    m->accesses++;
    uint8_t *p = fuzz_mem_failing(m) ? NULL : fuzz_mem_host(m, gpa, len);
    if (!p)
        return -1;
    if (len)
        memcpy(p, src, len);
    return 0;
}

static void *f_translate(void *ctx, uint64_t gpa, size_t len)
{
    struct fuzz_mem *m = ctx;
    m->accesses++;
    return fuzz_mem_failing(m) ? NULL : fuzz_mem_host(m, gpa, len);
}

static const struct cw_gmem_ops translating_ops = {
    .valid = f_valid, .read = f_read, .write = f_write, .translate = f_translate,
};
static const struct cw_gmem_ops copying_ops = {
    .valid = f_valid, .read = f_read, .write = f_write, .translate = NULL,
};

int fuzz_mem_init(struct fuzz_mem *m, uint64_t base, uint64_t size, bool translating)
{
    memset(m, 0, sizeof(*m));
    /* base + size may equal 2^64 (the region ends at the top), not pass it. */
    if (size == 0 || size - 1 > UINT64_MAX - base)
        return -1;
    m->host = malloc((size_t)size);
    if (!m->host)
        return -1;
    memset(m->host, 0, (size_t)size);
    m->base = base;
    m->size = size;
    m->translating = translating;
    m->gmem.ops = translating ? &translating_ops : &copying_ops;
    m->gmem.ctx = m;
    return 0;
}

void fuzz_mem_free(struct fuzz_mem *m)
{
    free(m->host);
    m->host = NULL;
}
