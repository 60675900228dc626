/* A simulated guest for unit tests (see sim_guest.h). */
#include "sim_guest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- memory ---- */

/* The region holding [gpa, gpa+len) entirely, or NULL. Written so that no
 * intermediate sum can wrap: gpa - r->gpa is the offset into the region. */
static struct sim_region *find_region(struct sim_guest *g, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < g->nregions; i++) {
        struct sim_region *r = &g->region[i];
        if (gpa < r->gpa)
            continue;
        uint64_t off = gpa - r->gpa;
        if (off >= r->size && !(off == r->size && len == 0))
            continue;
        if (len > r->size - off)
            continue;
        return r;
    }
    return NULL;
}

static struct sim_region *find_byte(struct sim_guest *g, uint64_t gpa)
{
    return find_region(g, gpa, 1);
}

static int sim_valid(void *ctx, uint64_t gpa, size_t len)
{
    struct sim_guest *g = ctx;
    g->n_valid++;
    if (g->naive_valid) {
        /* Weak on purpose: first and last byte only, end computed with
         * wrap-around. */
        if (len == 0)
            return find_byte(g, gpa) != NULL;
        return find_byte(g, gpa) && find_byte(g, gpa + len - 1);
    }
    return find_region(g, gpa, len) != NULL;
}

static int sim_read(void *ctx, uint64_t gpa, void *dst, size_t len)
{
    struct sim_guest *g = ctx;
    g->n_read++;
    struct sim_region *r = find_region(g, gpa, len);
    if (!r)
        return -1;
    memcpy(dst, r->host + (gpa - r->gpa), len);
    return 0;
}

static int sim_write(void *ctx, uint64_t gpa, const void *src, size_t len)
{
    struct sim_guest *g = ctx;
    g->n_write++;
    struct sim_region *r = find_region(g, gpa, len);
    if (!r)
        return -1;
    memcpy(r->host + (gpa - r->gpa), src, len);
    if (g->write_hook)
        g->write_hook(g, gpa, len, g->hook_arg);
    return 0;
}

static void *sim_translate(void *ctx, uint64_t gpa, size_t len)
{
    struct sim_guest *g = ctx;
    g->n_translate++;
    struct sim_region *r = find_region(g, gpa, len);
    return r ? r->host + (gpa - r->gpa) : NULL;
}

static const struct cw_gmem_ops translating_ops = {
    .valid = sim_valid, .read = sim_read, .write = sim_write, .translate = sim_translate,
};
static const struct cw_gmem_ops copying_ops = {
    .valid = sim_valid, .read = sim_read, .write = sim_write, .translate = NULL,
};

struct sim_guest *sim_guest_new_layout(bool translating, const struct sim_region_cfg *cfg,
                                       unsigned n)
{
    assert_true(n >= 1 && n <= SIM_MAX_REGIONS);
    struct sim_guest *g = calloc(1, sizeof(*g));
    assert_non_null(g);
    size_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += cfg[i].size;
    g->mem = calloc(1, total);
    assert_non_null(g->mem);
    g->mem_size = total;
    size_t off = 0;
    for (unsigned i = 0; i < n; i++) {
        g->region[i].gpa = cfg[i].gpa;
        g->region[i].size = cfg[i].size;
        g->region[i].host = g->mem + off;
        off += cfg[i].size;
    }
    g->nregions = n;
    g->translating = translating;
    g->gmem.ops = translating ? &translating_ops : &copying_ops;
    g->gmem.ctx = g;
    /* Leave the first page unused so no test structure sits at gpa 0. */
    g->alloc_next = cfg[0].gpa + 0x1000;
    return g;
}

struct sim_guest *sim_guest_new(bool translating)
{
    static const struct sim_region_cfg def[2] = {
        {SIM_R0_GPA, SIM_R0_SIZE},
        {SIM_R1_GPA, SIM_R1_SIZE},
    };
    return sim_guest_new_layout(translating, def, 2);
}

void sim_guest_free(struct sim_guest *g)
{
    if (!g)
        return;
    free(g->mem);
    free(g);
}

void *sim_host(struct sim_guest *g, uint64_t gpa, size_t len)
{
    struct sim_region *r = find_region(g, gpa, len);
    assert_non_null(r);
    return r->host + (gpa - r->gpa);
}

uint64_t sim_alloc(struct sim_guest *g, size_t len, size_t align)
{
    if (align == 0)
        align = 1;
    uint64_t a = (g->alloc_next + align - 1) & ~(uint64_t)(align - 1);
    struct sim_region *r0 = &g->region[0];
    assert_true(a + len <= r0->gpa + r0->size); /* the test asked for too much */
    g->alloc_next = a + len;
    memset(r0->host + (a - r0->gpa), 0, len);
    return a;
}

uint64_t sim_accesses(const struct sim_guest *g)
{
    return g->n_valid + g->n_read + g->n_write + g->n_translate;
}

/* ---- driver ---- */

void sim_vring_init(struct sim_vring *r, struct sim_guest *g, uint16_t num)
{
    memset(r, 0, sizeof(*r));
    r->g = g;
    r->num = num;
    r->desc = sim_alloc(g, vring_desc_size(num), 16);
    r->avail = sim_alloc(g, vring_avail_size(num), 2);
    r->used = sim_alloc(g, vring_used_size(num), 4);
}

void sim_desc_write(struct sim_guest *g, uint64_t table, uint32_t i, uint64_t addr, uint32_t len,
                    uint16_t flags, uint16_t next)
{
    struct vring_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};
    memcpy(sim_host(g, table + 16ull * i, sizeof(d)), &d, sizeof(d));
}

static void put16(struct sim_guest *g, uint64_t gpa, uint16_t v)
{
    memcpy(sim_host(g, gpa, 2), &v, 2);
}

static uint16_t get16(struct sim_guest *g, uint64_t gpa)
{
    uint16_t v;
    memcpy(&v, sim_host(g, gpa, 2), 2);
    return v;
}

void sim_avail_set_ring(struct sim_vring *r, uint16_t slot, uint16_t head)
{
    put16(r->g, r->avail + 4 + 2ull * slot, head);
}

void sim_avail_set_idx(struct sim_vring *r, uint16_t idx)
{
    __atomic_thread_fence(__ATOMIC_RELEASE); /* entries before idx, as a driver does */
    put16(r->g, r->avail + 2, idx);
}

void sim_avail_set_flags(struct sim_vring *r, uint16_t flags)
{
    put16(r->g, r->avail, flags);
}

void sim_set_used_event(struct sim_vring *r, uint16_t ev)
{
    put16(r->g, r->avail + 4 + 2ull * r->num, ev);
}

void sim_used_set_idx(struct sim_vring *r, uint16_t idx)
{
    put16(r->g, r->used + 2, idx);
}

void sim_avail_push(struct sim_vring *r, uint16_t head)
{
    sim_avail_set_ring(r, r->avail_idx & (r->num - 1), head);
    r->avail_idx++;
    sim_avail_set_idx(r, r->avail_idx);
}

uint16_t sim_used_idx(struct sim_vring *r)
{
    return get16(r->g, r->used + 2);
}

struct vring_used_elem sim_used_elem(struct sim_vring *r, uint16_t i)
{
    struct vring_used_elem e;
    memcpy(&e, sim_host(r->g, r->used + 4 + 8ull * (i & (r->num - 1)), sizeof(e)), sizeof(e));
    return e;
}

uint16_t sim_used_flags(struct sim_vring *r)
{
    return get16(r->g, r->used);
}

uint16_t sim_avail_event(struct sim_vring *r)
{
    return get16(r->g, r->used + 4 + 8ull * r->num);
}

static void fill_segs(struct sim_guest *g, struct sim_seg *segs, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (segs[i].gpa == 0)
            segs[i].gpa = sim_alloc(g, segs[i].len ? segs[i].len : 1, 8);
}

uint16_t sim_chain(struct sim_vring *r, struct sim_seg *segs, unsigned n)
{
    assert_true(n >= 1 && n <= r->num);
    fill_segs(r->g, segs, n);
    uint16_t slots[1024]; /* CW_VQ_MAX_SIZE */
    for (unsigned i = 0; i < n; i++) {
        slots[i] = r->next_desc;
        r->next_desc = (uint16_t)((r->next_desc + 1) & (r->num - 1));
    }
    for (unsigned i = 0; i < n; i++) {
        bool last = i + 1 == n;
        uint16_t flags = (uint16_t)((segs[i].write ? VRING_DESC_F_WRITE : 0) |
                                    (last ? 0 : VRING_DESC_F_NEXT));
        sim_desc_write(r->g, r->desc, slots[i], segs[i].gpa, segs[i].len, flags,
                       last ? 0 : slots[i + 1]);
    }
    return slots[0];
}

uint16_t sim_chain_indirect(struct sim_vring *r, struct sim_seg *segs, unsigned n,
                            uint64_t *table)
{
    assert_true(n >= 1);
    fill_segs(r->g, segs, n);
    uint64_t t = sim_alloc(r->g, 16ull * n, 16);
    for (unsigned i = 0; i < n; i++) {
        bool last = i + 1 == n;
        uint16_t flags = (uint16_t)((segs[i].write ? VRING_DESC_F_WRITE : 0) |
                                    (last ? 0 : VRING_DESC_F_NEXT));
        sim_desc_write(r->g, t, i, segs[i].gpa, segs[i].len, flags, last ? 0 : (uint16_t)(i + 1));
    }
    uint16_t head = r->next_desc;
    r->next_desc = (uint16_t)((r->next_desc + 1) & (r->num - 1));
    sim_desc_write(r->g, r->desc, head, t, (uint32_t)(16 * n), VRING_DESC_F_INDIRECT, 0);
    if (table)
        *table = t;
    return head;
}
