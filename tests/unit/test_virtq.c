/* Unit tests for the split virtqueue engine (src/core/virtq.c).
 *
 * Every test runs against both guest-memory flavours: translating (the
 * persistent strategy: rings through pointers) and copying (map-per-access:
 * every ring access a gmem call). The hostile cases each check the exact
 * error, that the queue stays broken, and that it then touches nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/virtq.h"
#include "sim_guest.h"

#define FEAT_ALL (CW_BIT(VIRTIO_RING_F_EVENT_IDX) | CW_BIT(VIRTIO_RING_F_INDIRECT_DESC))

struct fx {
    struct sim_guest *g;
    struct sim_vring r;
    struct cw_vq vq;
    struct cw_chain c;
};

static bool translating_flavour = true;
static bool copying_flavour = false;

static int fx_setup(void **state)
{
    bool tr = *(bool *)*state;
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->g = sim_guest_new(tr);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    sim_guest_free(f->g);
    free(f);
    return 0;
}

static void start_at(struct fx *f, uint16_t num, uint64_t features, uint16_t idx)
{
    sim_vring_init(&f->r, f->g, num);
    f->r.avail_idx = idx;
    f->r.used_seen = idx;
    sim_avail_set_idx(&f->r, idx);
    sim_used_set_idx(&f->r, idx);
    assert_int_equal(cw_vq_setup(&f->vq, &f->g->gmem, num, f->r.desc, f->r.avail, f->r.used,
                                 features, idx),
                     CW_VQ_OK);
    assert_true(cw_vq_ready(&f->vq));
}

static void start(struct fx *f, uint16_t num, uint64_t features)
{
    start_at(f, num, features, 0);
}

/* Publish a chain of one buffer. */
static uint16_t post1(struct fx *f, uint32_t len, bool write)
{
    struct sim_seg s = {.len = len, .write = write};
    uint16_t h = sim_chain(&f->r, &s, 1);
    sim_avail_push(&f->r, h);
    return h;
}

/* The queue is broken with `e`: pops fail, and no call reads or writes guest
 * memory any more (counted for the copying flavour, compared for both). */
static void expect_broken(struct fx *f, enum cw_vq_error e)
{
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), -1);
    assert_int_equal(f->vq.error, e);
    assert_true(cw_vq_broken(&f->vq));
    assert_false(cw_vq_ready(&f->vq));

    /* Even a perfectly valid new chain is not served. */
    struct sim_seg s = {.len = 64, .gpa = SIM_R0_GPA + 0x1000};
    sim_desc_write(f->g, f->r.desc, 0, s.gpa, s.len, 0, 0);
    sim_avail_set_ring(&f->r, f->vq.last_avail_idx & (f->r.num - 1), 0);

    uint8_t *snap = malloc(f->g->mem_size);
    assert_non_null(snap);
    memcpy(snap, f->g->mem, f->g->mem_size);
    uint64_t acc = sim_accesses(f->g);
    uint16_t last = f->vq.last_avail_idx;

    uint8_t buf[16];
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), -1);
    assert_int_equal(cw_vq_avail_count(&f->vq), 0);
    cw_vq_push(&f->vq, 0, 10);
    cw_vq_unpush(&f->vq, 1);
    cw_vq_unpop(&f->vq, 1);
    cw_vq_flush(&f->vq);
    assert_false(cw_vq_need_interrupt(&f->vq));
    assert_false(cw_vq_set_notify(&f->vq, true));
    assert_false(cw_vq_set_notify(&f->vq, false));
    f->c.n_out = 1;
    f->c.n_in = 1;
    f->c.seg[0] = (struct cw_seg){.gpa = s.gpa, .len = 16};
    f->c.seg[1] = (struct cw_seg){.gpa = s.gpa, .len = 16};
    assert_int_equal(cw_vq_read_out(&f->vq, &f->c, 0, buf, sizeof(buf)), -1);
    assert_int_equal(cw_vq_write_in(&f->vq, &f->c, 0, buf, sizeof(buf)), -1);

    assert_int_equal(sim_accesses(f->g), acc);
    assert_memory_equal(snap, f->g->mem, f->g->mem_size);
    assert_int_equal(f->vq.error, e); /* the first reason is kept */
    assert_int_equal(f->vq.last_avail_idx, last);
    free(snap);
}

/* ---------------- setup ---------------- */

static void test_setup_strategy(void **state)
{
    struct fx *f = *state;
    start(f, 256, FEAT_ALL);
    if (f->g->translating) {
        assert_non_null(f->vq.desc);
        assert_non_null(f->vq.avail);
        assert_non_null(f->vq.used);
    } else {
        assert_null(f->vq.desc);
        assert_null(f->vq.avail);
        assert_null(f->vq.used);
    }
    assert_true(f->vq.event_idx);
    assert_true(f->vq.indirect);
    start(f, 1, 0);
    assert_false(f->vq.event_idx);
    assert_false(f->vq.indirect);
    start(f, 1024, 0);
}

static void test_setup_bad_size(void **state)
{
    struct fx *f = *state;
    sim_vring_init(&f->r, f->g, 1024);
    static const uint16_t bad[] = {0, 3, 6, 1000, 1023, 2048, 4096, 65535};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cw_vq_setup(&f->vq, &f->g->gmem, bad[i], f->r.desc, f->r.avail,
                                     f->r.used, 0, 0),
                         CW_VQ_ERR_RING_SIZE);
        assert_false(cw_vq_ready(&f->vq));
        assert_int_equal(cw_vq_pop(&f->vq, &f->c), -1);
    }
}

static void test_setup_bad_addr(void **state)
{
    struct fx *f = *state;
    sim_vring_init(&f->r, f->g, 16);
    uint64_t d = f->r.desc, a = f->r.avail, u = f->r.used;
    const uint64_t hole = SIM_R0_GPA + SIM_R0_SIZE + 0x1000;
    const uint64_t r0_end = SIM_R0_GPA + SIM_R0_SIZE;
    struct {
        uint64_t d, a, u;
    } cases[] = {
        {d + 8, a, u},     /* desc not 16-aligned */
        {d, a + 1, u},     /* avail not 2-aligned */
        {d, a, u + 2},     /* used not 4-aligned */
        {hole, a, u},      /* desc outside memory */
        {d, hole, u},      /* avail outside */
        {d, a, hole},      /* used outside */
        {r0_end - 128, a, u}, /* desc straddles the end of a region (256 bytes) */
        {d, r0_end - 36, u},  /* avail is 38 bytes: the used_event field is outside */
        {d, a, r0_end - 132}, /* used is 134 bytes: avail_event is outside */
        {0xfffffffffffffff0ull, a, u}, /* desc wraps around 2^64 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t rw = f->g->n_read + f->g->n_write + f->g->n_translate;
        assert_int_equal(cw_vq_setup(&f->vq, &f->g->gmem, 16, cases[i].d, cases[i].a,
                                     cases[i].u, FEAT_ALL, 0),
                         CW_VQ_ERR_RING_ADDR);
        assert_false(cw_vq_ready(&f->vq));
        /* Refused on the validity checks alone: nothing read or written. */
        assert_int_equal(f->g->n_read + f->g->n_write + f->g->n_translate, rw);
    }
    /* The aligned, in-memory areas work. */
    assert_int_equal(cw_vq_setup(&f->vq, &f->g->gmem, 16, d, a, u, FEAT_ALL, 0), CW_VQ_OK);
}

static void test_setup_resume_used_idx(void **state)
{
    struct fx *f = *state;
    sim_vring_init(&f->r, f->g, 8);
    /* Two chains were popped and never returned before a backend restart. */
    sim_used_set_idx(&f->r, 998);
    assert_int_equal(cw_vq_setup(&f->vq, &f->g->gmem, 8, f->r.desc, f->r.avail, f->r.used, 0,
                                 1000),
                     CW_VQ_OK);
    assert_int_equal(f->vq.used_idx, 998);
    assert_int_equal(f->vq.last_avail_idx, 1000);
    assert_int_equal(cw_vq_stop(&f->vq), 1000);
    assert_false(cw_vq_ready(&f->vq));

    /* A used index ahead of what was consumed, or more than num behind, is
     * a scribbled ring. */
    sim_used_set_idx(&f->r, 1001);
    assert_int_equal(cw_vq_setup(&f->vq, &f->g->gmem, 8, f->r.desc, f->r.avail, f->r.used, 0,
                                 1000),
                     CW_VQ_ERR_USED);
    assert_false(cw_vq_ready(&f->vq));
    sim_used_set_idx(&f->r, 991);
    assert_int_equal(cw_vq_setup(&f->vq, &f->g->gmem, 8, f->r.desc, f->r.avail, f->r.used, 0,
                                 1000),
                     CW_VQ_ERR_USED);
}

/* ---------------- normal operation ---------------- */

static void test_pop_empty(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    assert_int_equal(cw_vq_avail_count(&f->vq), 0);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 0);
    assert_false(cw_vq_broken(&f->vq));
    /* A stopped queue serves nothing but is not broken. */
    post1(f, 100, false);
    cw_vq_stop(&f->vq);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 0);
    assert_false(cw_vq_broken(&f->vq));
}

static void test_pop_single(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    struct sim_seg s = {.len = 100};
    uint16_t h = sim_chain(&f->r, &s, 1);
    memset(sim_host(f->g, s.gpa, 100), 0xab, 100);
    sim_avail_push(&f->r, h);

    assert_int_equal(cw_vq_avail_count(&f->vq), 1);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    assert_int_equal(f->c.head, h);
    assert_int_equal(f->c.n_out, 1);
    assert_int_equal(f->c.n_in, 0);
    assert_int_equal(f->c.out_bytes, 100);
    assert_int_equal(f->c.in_bytes, 0);
    assert_int_equal(f->c.seg[0].gpa, s.gpa);
    assert_int_equal(f->c.seg[0].len, 100);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 0);

    uint8_t buf[128];
    memset(buf, 0, sizeof(buf));
    /* Asking for more than the chain holds copies what there is. */
    assert_int_equal(cw_vq_read_out(&f->vq, &f->c, 0, buf, sizeof(buf)), 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(buf[i], 0xab);
    assert_int_equal(buf[100], 0);
    /* Nothing writable: nothing written. */
    assert_int_equal(cw_vq_write_in(&f->vq, &f->c, 0, buf, 10), 0);

    cw_vq_push(&f->vq, h, 0);
    cw_vq_flush(&f->vq);
    assert_int_equal(sim_used_idx(&f->r), 1);
    struct vring_used_elem e = sim_used_elem(&f->r, 0);
    assert_int_equal(e.id, h);
    assert_int_equal(e.len, 0);
    assert_false(cw_vq_broken(&f->vq));
}

static void test_pop_chain_mixed(void **state)
{
    struct fx *f = *state;
    start(f, 16, FEAT_ALL);
    struct sim_seg s[4] = {{.len = 10}, {.len = 20}, {.len = 7, .write = true},
                           {.len = 30, .write = true}};
    /* Put one readable buffer in the second region. */
    s[1].gpa = SIM_R1_GPA + 0x40;
    uint16_t h = sim_chain(&f->r, s, 4);
    for (int i = 0; i < 10; i++)
        ((uint8_t *)sim_host(f->g, s[0].gpa, 10))[i] = (uint8_t)i;
    for (int i = 0; i < 20; i++)
        ((uint8_t *)sim_host(f->g, s[1].gpa, 20))[i] = (uint8_t)(10 + i);
    sim_avail_push(&f->r, h);

    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    assert_int_equal(f->c.n_out, 2);
    assert_int_equal(f->c.n_in, 2);
    assert_int_equal(f->c.out_bytes, 30);
    assert_int_equal(f->c.in_bytes, 37);

    /* Read from an offset that starts inside the first segment and ends
     * inside the second. */
    uint8_t buf[64];
    assert_int_equal(cw_vq_read_out(&f->vq, &f->c, 5, buf, 12), 12);
    for (int i = 0; i < 12; i++)
        assert_int_equal(buf[i], 5 + i);
    /* An offset past the readable part copies nothing. */
    assert_int_equal(cw_vq_read_out(&f->vq, &f->c, 30, buf, 12), 0);

    /* Write across both writable segments, starting 3 bytes in. */
    uint8_t src[40];
    for (int i = 0; i < 40; i++)
        src[i] = (uint8_t)(0x80 + i);
    assert_int_equal(cw_vq_write_in(&f->vq, &f->c, 3, src, 40), 34);
    uint8_t *w0 = sim_host(f->g, s[2].gpa, 7), *w1 = sim_host(f->g, s[3].gpa, 30);
    assert_int_equal(w0[0], 0);
    assert_int_equal(w0[2], 0);
    assert_memory_equal(w0 + 3, src, 4);
    assert_memory_equal(w1, src + 4, 30);
    /* The readable buffers were not written. */
    assert_int_equal(((uint8_t *)sim_host(f->g, s[0].gpa, 10))[0], 0);
    cw_vq_push(&f->vq, h, 37);
    cw_vq_flush(&f->vq);
    assert_int_equal(sim_used_elem(&f->r, 0).len, 37);
}

static void test_copies_per_segment(void **state)
{
    struct fx *f = *state;
    start(f, 16, FEAT_ALL);
    struct sim_seg s[3] = {{.len = 100}, {.len = 200}, {.len = 300}};
    sim_avail_push(&f->r, sim_chain(&f->r, s, 3));
    uint64_t t0 = f->g->n_translate;
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    uint8_t buf[600];
    uint64_t r0 = f->g->n_read, t1 = f->g->n_translate;
    assert_int_equal(cw_vq_read_out(&f->vq, &f->c, 0, buf, sizeof(buf)), 600);
    /* One access per segment: for the persistent strategy a translate, made
     * once when the chain is walked (the copy uses it), for the copying one
     * a read; never per byte or per ring field. */
    if (f->g->translating) {
        assert_int_equal(t1 - t0, 3);
        assert_int_equal(f->g->n_translate - t1, 0);
        assert_int_equal(f->g->n_read - r0, 0);
    } else {
        assert_int_equal(f->g->n_read - r0, 3);
    }
}

static void test_pop_indirect(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    struct sim_seg s[3] = {{.len = 12}, {.len = 1500}, {.len = 2048, .write = true}};
    uint64_t table;
    uint16_t h = sim_chain_indirect(&f->r, s, 3, &table);
    sim_avail_push(&f->r, h);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    assert_int_equal(f->c.head, h);
    assert_int_equal(f->c.n_out, 2);
    assert_int_equal(f->c.n_in, 1);
    assert_int_equal(f->c.out_bytes, 1512);
    assert_int_equal(f->c.in_bytes, 2048);
    assert_int_equal(f->c.seg[1].gpa, s[1].gpa);
    assert_int_equal(f->c.seg[2].gpa, s[2].gpa);
}

static void test_indirect_unaligned(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    /* The spec sets no alignment for indirect tables: one at an odd
     * address works (and must not be read through a misaligned struct). */
    uint64_t t = sim_alloc(f->g, 16 * 2 + 1, 16) + 1;
    uint64_t b = sim_alloc(f->g, 64, 8);
    sim_desc_write(f->g, t, 0, b, 20, VRING_DESC_F_NEXT, 1);
    sim_desc_write(f->g, t, 1, b + 20, 40, VRING_DESC_F_WRITE, 0);
    sim_desc_write(f->g, f->r.desc, 3, t, 32, VRING_DESC_F_INDIRECT, 0);
    sim_avail_push(&f->r, 3);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    assert_int_equal(f->c.n_out, 1);
    assert_int_equal(f->c.n_in, 1);
    assert_int_equal(f->c.seg[0].gpa, b);
    assert_int_equal(f->c.seg[1].gpa, b + 20);
    assert_int_equal(f->c.seg[1].len, 40);
}

static void test_pop_direct_then_indirect(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    /* Queue descriptor 2 (readable) -> queue descriptor 3 (indirect table of
     * one readable and one writable entry). */
    struct sim_seg t[2] = {{.len = 64}, {.len = 128, .write = true}};
    uint64_t table;
    uint16_t ih = sim_chain_indirect(&f->r, t, 2, &table);
    uint64_t b = sim_alloc(f->g, 32, 8);
    sim_desc_write(f->g, f->r.desc, 5, b, 32, VRING_DESC_F_NEXT, ih);
    sim_avail_push(&f->r, 5);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    assert_int_equal(f->c.head, 5);
    assert_int_equal(f->c.n_out, 2);
    assert_int_equal(f->c.n_in, 1);
    assert_int_equal(f->c.seg[0].gpa, b);
    assert_int_equal(f->c.seg[1].gpa, t[0].gpa);
}

static void test_indirect_max_entries(void **state)
{
    struct fx *f = *state;
    start(f, 4, FEAT_ALL);
    /* A table of exactly CW_VQ_MAX_SEGS entries is fine; all buffers may
     * share memory (the device does not care). */
    uint64_t buf = sim_alloc(f->g, 16, 8);
    uint64_t t = sim_alloc(f->g, 16ull * CW_VQ_MAX_SEGS, 16);
    for (uint32_t i = 0; i < CW_VQ_MAX_SEGS; i++)
        sim_desc_write(f->g, t, i, buf, 16, i + 1 < CW_VQ_MAX_SEGS ? VRING_DESC_F_NEXT : 0,
                       (uint16_t)(i + 1));
    sim_desc_write(f->g, f->r.desc, 0, t, 16 * CW_VQ_MAX_SEGS, VRING_DESC_F_INDIRECT, 0);
    sim_avail_push(&f->r, 0);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    assert_int_equal(f->c.n_out, CW_VQ_MAX_SEGS);
    assert_int_equal(f->c.out_bytes, 16 * CW_VQ_MAX_SEGS);
}

static void test_zero_len_skipped(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    /* A zero-length descriptor carries nothing (even a writable one between
     * readable ones, even with a garbage address) and is skipped. */
    uint64_t b = sim_alloc(f->g, 64, 8);
    sim_desc_write(f->g, f->r.desc, 0, b, 10, VRING_DESC_F_NEXT, 1);
    sim_desc_write(f->g, f->r.desc, 1, 0xdead000000000000ull, 0,
                   VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
    sim_desc_write(f->g, f->r.desc, 2, b + 10, 20, 0, 0);
    sim_avail_push(&f->r, 0);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    assert_int_equal(f->c.n_out, 2);
    assert_int_equal(f->c.n_in, 0);
    assert_int_equal(f->c.out_bytes, 30);
    assert_int_equal(f->c.seg[1].gpa, b + 10);
}

static void test_chain_exactly_num(void **state)
{
    struct fx *f = *state;
    start(f, 4, FEAT_ALL);
    struct sim_seg s[4] = {{.len = 1}, {.len = 2}, {.len = 3, .write = true},
                           {.len = 4, .write = true}};
    sim_avail_push(&f->r, sim_chain(&f->r, s, 4));
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    assert_int_equal(f->c.n_out + f->c.n_in, 4);
}

static void test_full_ring_and_index_wrap(void **state)
{
    struct fx *f = *state;
    /* Start just below the 16-bit wrap; run the ring full twice. */
    start_at(f, 4, FEAT_ALL, 65533);
    for (int round = 0; round < 3; round++) {
        uint16_t heads[4];
        for (int i = 0; i < 4; i++)
            heads[i] = post1(f, 10 + (uint32_t)i, i & 1);
        /* Exactly num ahead is allowed. */
        assert_int_equal(cw_vq_avail_count(&f->vq), 4);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
            assert_int_equal(f->c.head, heads[i]);
            cw_vq_push(&f->vq, f->c.head, (uint32_t)i);
        }
        assert_int_equal(cw_vq_pop(&f->vq, &f->c), 0);
        cw_vq_flush(&f->vq);
        uint16_t u = sim_used_idx(&f->r);
        assert_int_equal(u, (uint16_t)(65533 + 4 * (round + 1)));
        for (int i = 0; i < 4; i++) {
            struct vring_used_elem e = sim_used_elem(&f->r, (uint16_t)(u - 4 + i));
            assert_int_equal(e.id, heads[i]);
            assert_int_equal(e.len, i);
        }
    }
    assert_false(cw_vq_broken(&f->vq));
}

static void test_batching_one_idx_update(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    for (int i = 0; i < 3; i++)
        post1(f, 10, true);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
        cw_vq_push(&f->vq, f->c.head, 5);
    }
    /* Pushed, not yet visible. */
    assert_int_equal(sim_used_idx(&f->r), 0);
    uint64_t w0 = f->g->n_write;
    cw_vq_flush(&f->vq);
    assert_int_equal(sim_used_idx(&f->r), 3);
    /* One store for three entries (a gmem write in the copying flavour). */
    assert_int_equal(f->g->n_write - w0, f->g->translating ? 0 : 1);
    /* Nothing new: a flush writes nothing. */
    uint8_t *snap = malloc(f->g->mem_size);
    memcpy(snap, f->g->mem, f->g->mem_size);
    uint64_t acc = sim_accesses(f->g);
    cw_vq_flush(&f->vq);
    assert_int_equal(sim_accesses(f->g), acc);
    assert_memory_equal(snap, f->g->mem, f->g->mem_size);
    free(snap);
}

static void test_unpop_unpush(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    uint16_t h0 = post1(f, 10, true), h1 = post1(f, 20, true);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    assert_int_equal(f->c.head, h1);
    cw_vq_unpop(&f->vq, 1);
    assert_int_equal(cw_vq_avail_count(&f->vq), 1);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    assert_int_equal(f->c.head, h1);

    cw_vq_push(&f->vq, h0, 1);
    cw_vq_push(&f->vq, h1, 2);
    cw_vq_unpush(&f->vq, 1);
    cw_vq_unpop(&f->vq, 1);
    cw_vq_flush(&f->vq);
    assert_int_equal(sim_used_idx(&f->r), 1);
    assert_int_equal(sim_used_elem(&f->r, 0).id, h0);
    /* h1 is available again. */
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    assert_int_equal(f->c.head, h1);
    assert_false(cw_vq_broken(&f->vq));
}

static void test_device_misuse(void **state)
{
    struct fx *f = *state;
    /* Returning more than was popped is a device bug; the queue stops
     * rather than corrupting the driver's view. */
    start(f, 8, FEAT_ALL);
    cw_vq_push(&f->vq, 0, 0);
    assert_int_equal(f->vq.error, CW_VQ_ERR_USED);

    start(f, 8, FEAT_ALL);
    post1(f, 10, false);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    cw_vq_push(&f->vq, 8, 0); /* id out of range */
    assert_int_equal(f->vq.error, CW_VQ_ERR_USED);

    start(f, 8, FEAT_ALL);
    post1(f, 10, false);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    cw_vq_unpop(&f->vq, 2);
    assert_int_equal(f->vq.error, CW_VQ_ERR_USED);

    start(f, 8, FEAT_ALL);
    cw_vq_unpush(&f->vq, 1);
    assert_int_equal(f->vq.error, CW_VQ_ERR_USED);
}

static void test_gmem_fault_breaks(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    struct sim_seg s = {.len = 100, .gpa = SIM_R1_GPA + 0x100};
    sim_avail_push(&f->r, sim_chain(&f->r, &s, 1));
    if (f->g->translating) {
        /* Buffers are translated when the chain is walked (the device never
         * holds a chain across a memory-table change: both happen on its
         * one thread, and chains go back within the call that took them).
         * A buffer outside the table is refused right there. */
        f->g->nregions = 1;
        assert_int_equal(cw_vq_pop(&f->vq, &f->c), -1);
        assert_int_equal(f->vq.error, CW_VQ_ERR_BUF_ADDR);
        f->g->nregions = 2;
        expect_broken(f, CW_VQ_ERR_BUF_ADDR);
        return;
    }
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    /* The copying strategy checks at every access: the memory table
     * shrinks under us (region 1 removed). */
    f->g->nregions = 1;
    uint8_t buf[100];
    assert_int_equal(cw_vq_read_out(&f->vq, &f->c, 0, buf, 100), -1);
    assert_int_equal(f->vq.error, CW_VQ_ERR_BUF_ADDR);
    f->g->nregions = 2;
    expect_broken(f, CW_VQ_ERR_BUF_ADDR);
}

static void test_stop_resume(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    post1(f, 10, false);
    uint16_t h1 = post1(f, 10, false);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    cw_vq_push(&f->vq, f->c.head, 0);
    cw_vq_flush(&f->vq);
    uint16_t base = cw_vq_stop(&f->vq);
    assert_int_equal(base, 1);
    assert_int_equal(cw_vq_setup(&f->vq, &f->g->gmem, 8, f->r.desc, f->r.avail, f->r.used,
                                 FEAT_ALL, base),
                     CW_VQ_OK);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    assert_int_equal(f->c.head, h1);
    cw_vq_push(&f->vq, f->c.head, 0);
    cw_vq_flush(&f->vq);
    assert_int_equal(sim_used_idx(&f->r), 2);
}

/* ---------------- notifications ---------------- */

static void push_n(struct fx *f, int n)
{
    for (int i = 0; i < n; i++) {
        post1(f, 8, true);
        assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
        cw_vq_push(&f->vq, f->c.head, 8);
    }
    cw_vq_flush(&f->vq);
}

static void test_interrupt_event_idx(void **state)
{
    struct fx *f = *state;
    start(f, 16, FEAT_ALL);
    /* Nothing published: nothing to signal. */
    push_n(f, 1);
    /* First decision after setup: always signal (we cannot know what the
     * driver saw before). */
    assert_true(cw_vq_need_interrupt(&f->vq));
    /* Already signalled for idx 1. */
    assert_false(cw_vq_need_interrupt(&f->vq));

    /* The driver wants an interrupt once entry 3 is used (idx passes 3). */
    sim_set_used_event(&f->r, 3);
    push_n(f, 2); /* idx 3: entry 3 not used yet */
    assert_false(cw_vq_need_interrupt(&f->vq));
    push_n(f, 1); /* idx 4 */
    assert_true(cw_vq_need_interrupt(&f->vq));
    /* Event in the past: the driver is not waiting. */
    push_n(f, 2);
    assert_false(cw_vq_need_interrupt(&f->vq));
    /* Crossing the event by more than one in one batch still signals. */
    sim_set_used_event(&f->r, 7);
    push_n(f, 5); /* 6 -> 11 */
    assert_true(cw_vq_need_interrupt(&f->vq));
    /* The flags field is ignored with EVENT_IDX. */
    sim_avail_set_flags(&f->r, VRING_AVAIL_F_NO_INTERRUPT);
    sim_set_used_event(&f->r, 11);
    push_n(f, 1);
    assert_true(cw_vq_need_interrupt(&f->vq));
}

static void test_interrupt_event_idx_wrap(void **state)
{
    struct fx *f = *state;
    start_at(f, 8, FEAT_ALL, 65534);
    push_n(f, 1); /* 65535 */
    assert_true(cw_vq_need_interrupt(&f->vq));
    sim_set_used_event(&f->r, 0); /* entry 0 after the wrap */
    push_n(f, 1); /* idx 0: entry 0 not used yet */
    assert_false(cw_vq_need_interrupt(&f->vq));
    push_n(f, 1); /* idx 1 */
    assert_true(cw_vq_need_interrupt(&f->vq));
}

static void test_interrupt_flags(void **state)
{
    struct fx *f = *state;
    start(f, 8, CW_BIT(VIRTIO_RING_F_INDIRECT_DESC));
    push_n(f, 1);
    assert_true(cw_vq_need_interrupt(&f->vq));
    assert_false(cw_vq_need_interrupt(&f->vq)); /* nothing new */
    sim_avail_set_flags(&f->r, VRING_AVAIL_F_NO_INTERRUPT);
    push_n(f, 1);
    assert_false(cw_vq_need_interrupt(&f->vq));
    sim_avail_set_flags(&f->r, 0);
    push_n(f, 1);
    assert_true(cw_vq_need_interrupt(&f->vq));
    /* used_event is ignored without EVENT_IDX. */
    sim_set_used_event(&f->r, 100);
    push_n(f, 1);
    assert_true(cw_vq_need_interrupt(&f->vq));
}

static void test_notify_flags(void **state)
{
    struct fx *f = *state;
    start(f, 8, 0);
    assert_false(cw_vq_set_notify(&f->vq, false));
    assert_int_equal(sim_used_flags(&f->r), VRING_USED_F_NO_NOTIFY);
    assert_false(cw_vq_set_notify(&f->vq, true));
    assert_int_equal(sim_used_flags(&f->r), 0);
    /* A buffer that arrived while kicks were off: enabling says "process". */
    cw_vq_set_notify(&f->vq, false);
    post1(f, 10, false);
    assert_true(cw_vq_set_notify(&f->vq, true));
    assert_int_equal(sim_used_flags(&f->r), 0);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    assert_false(cw_vq_set_notify(&f->vq, true));
    /* avail_event is not used without EVENT_IDX. */
    assert_int_equal(sim_avail_event(&f->r), 0);
}

static void test_notify_event_idx(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    assert_false(cw_vq_set_notify(&f->vq, true));
    assert_int_equal(sim_avail_event(&f->r), 0);
    post1(f, 10, false);
    post1(f, 10, false);
    assert_true(cw_vq_set_notify(&f->vq, true));
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    /* Kick me when entry 2 is published. */
    assert_false(cw_vq_set_notify(&f->vq, true));
    assert_int_equal(sim_avail_event(&f->r), 2);
    /* Disabled: an event index the driver will not reach. */
    assert_false(cw_vq_set_notify(&f->vq, false));
    uint16_t ev = sim_avail_event(&f->r);
    assert_int_equal(ev, 1);
    /* The driver's kick test (vring_need_event) for publishing 2 -> 3. */
    assert_false(sim_need_event(ev, 3, 2));
    /* used->flags are left alone with EVENT_IDX. */
    assert_int_equal(sim_used_flags(&f->r), 0);
}

/* Disabling again while disabled stores nothing (the driver reads that
 * field before each kick it might send: a store per batch would move its
 * line between CPUs every time), until the stored event index is
 * CW_VQ_EVENT_REWRITE chains old; at every point a driver publishing a
 * whole ring ahead must not be asked to kick. */
static void test_notify_disabled_store_kept(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    assert_false(cw_vq_set_notify(&f->vq, false));
    uint16_t ev0 = sim_avail_event(&f->r);
    assert_int_equal(ev0, 0xffff);
    for (uint32_t i = 1; i <= CW_VQ_EVENT_REWRITE; i++) {
        struct sim_seg seg = {.len = 64, .gpa = SIM_R0_GPA + 0x1000};
        sim_avail_push(&f->r, sim_chain(&f->r, &seg, 1));
        assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
        cw_vq_push(&f->vq, f->c.head, 0);
        cw_vq_flush(&f->vq);
        assert_false(cw_vq_set_notify(&f->vq, false));
        uint16_t ev = sim_avail_event(&f->r);
        assert_false(sim_need_event(ev, (uint16_t)(i + 8), (uint16_t)i));
        if (i < CW_VQ_EVENT_REWRITE)
            assert_int_equal(ev, ev0);
    }
    assert_int_equal(sim_avail_event(&f->r), (uint16_t)(CW_VQ_EVENT_REWRITE - 1));
    /* Enabling always stores (and so does the next disable). */
    assert_false(cw_vq_set_notify(&f->vq, true));
    assert_int_equal(sim_avail_event(&f->r), (uint16_t)CW_VQ_EVENT_REWRITE);
    assert_false(cw_vq_set_notify(&f->vq, false));
    assert_int_equal(sim_avail_event(&f->r), (uint16_t)(CW_VQ_EVENT_REWRITE - 1));
}

/* Chains popped and given back (an RX frame needing more buffers than the
 * driver has posted): asking for a kick must ask for one on the driver's
 * NEXT entry, not on the first given-back one, which the driver published
 * already and whose publication it will never kick for again. A lost kick
 * here stalled a receiving guest for good. */
static void test_notify_event_idx_after_unpop(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    post1(f, 10, false);
    post1(f, 10, false);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 0);
    cw_vq_unpop(&f->vq, 2);
    /* Two chains are still available, so the call says so... */
    assert_true(cw_vq_set_notify(&f->vq, true));
    /* ...but the kick it arms is for entry 2, the driver's next. */
    uint16_t ev = sim_avail_event(&f->r);
    assert_int_equal(ev, 2);
    /* The driver's kick test (vring_need_event) for publishing 2 -> 3. */
    assert_true(sim_need_event(ev, 3, 2));
}

/* ---------------- hostile guests ---------------- */

static void test_hostile_avail_idx_ahead(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    post1(f, 10, false);
    sim_avail_set_idx(&f->r, 9);
    expect_broken(f, CW_VQ_ERR_AVAIL_IDX);
}

static void test_hostile_avail_idx_backwards(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    post1(f, 10, false);
    post1(f, 10, false);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    sim_avail_set_idx(&f->r, 1);
    expect_broken(f, CW_VQ_ERR_AVAIL_IDX);
}

static void test_hostile_avail_count(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    sim_avail_set_idx(&f->r, 0x8000);
    assert_int_equal(cw_vq_avail_count(&f->vq), 0);
    assert_int_equal(f->vq.error, CW_VQ_ERR_AVAIL_IDX);
    expect_broken(f, CW_VQ_ERR_AVAIL_IDX);
}

static void test_hostile_head(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    sim_avail_push(&f->r, 8);
    expect_broken(f, CW_VQ_ERR_HEAD);
}

static void test_hostile_next(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    uint64_t b = sim_alloc(f->g, 16, 8);
    sim_desc_write(f->g, f->r.desc, 0, b, 16, VRING_DESC_F_NEXT, 8);
    sim_avail_push(&f->r, 0);
    expect_broken(f, CW_VQ_ERR_NEXT);
}

static void test_hostile_loop(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    uint64_t b = sim_alloc(f->g, 16, 8);
    sim_desc_write(f->g, f->r.desc, 3, b, 16, VRING_DESC_F_NEXT, 5);
    sim_desc_write(f->g, f->r.desc, 5, b, 16, VRING_DESC_F_NEXT, 3);
    sim_avail_push(&f->r, 3);
    expect_broken(f, CW_VQ_ERR_CHAIN_LONG);
}

static void test_hostile_self_loop(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    uint64_t b = sim_alloc(f->g, 16, 8);
    sim_desc_write(f->g, f->r.desc, 2, b, 16, VRING_DESC_F_NEXT, 2);
    sim_avail_push(&f->r, 2);
    expect_broken(f, CW_VQ_ERR_CHAIN_LONG);
}

static void test_hostile_self_loop_zero_len(void **state)
{
    struct fx *f = *state;
    /* Zero-length descriptors are skipped but still counted: a loop of
     * empty descriptors must end too. */
    start(f, 8, FEAT_ALL);
    sim_desc_write(f->g, f->r.desc, 2, 0, 0, VRING_DESC_F_NEXT, 2);
    sim_avail_push(&f->r, 2);
    expect_broken(f, CW_VQ_ERR_CHAIN_LONG);
}

static void test_hostile_chain_longer_than_num(void **state)
{
    struct fx *f = *state;
    start(f, 4, FEAT_ALL);
    /* 0 -> 1 -> 2 -> 3 -> 0: the fifth descriptor is one too many. */
    uint64_t b = sim_alloc(f->g, 16, 8);
    for (uint16_t i = 0; i < 4; i++)
        sim_desc_write(f->g, f->r.desc, i, b, 16, VRING_DESC_F_NEXT, (uint16_t)((i + 1) & 3));
    sim_avail_push(&f->r, 0);
    expect_broken(f, CW_VQ_ERR_CHAIN_LONG);
}

static void test_hostile_too_many_segments(void **state)
{
    struct fx *f = *state;
    /* 600 direct descriptors then an indirect table of 500: each part is
     * within its own bound, the total is not. */
    start(f, 1024, FEAT_ALL);
    uint64_t b = sim_alloc(f->g, 16, 8);
    for (uint16_t i = 0; i < 600; i++)
        sim_desc_write(f->g, f->r.desc, i, b, 16, VRING_DESC_F_NEXT, (uint16_t)(i + 1));
    uint64_t t = sim_alloc(f->g, 16 * 500, 16);
    for (uint16_t i = 0; i < 500; i++)
        sim_desc_write(f->g, t, i, b, 16, i < 499 ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
    sim_desc_write(f->g, f->r.desc, 600, t, 16 * 500, VRING_DESC_F_INDIRECT, 0);
    sim_avail_push(&f->r, 0);
    expect_broken(f, CW_VQ_ERR_CHAIN_LONG);
}

static void test_hostile_indirect_without_feature(void **state)
{
    struct fx *f = *state;
    start(f, 8, CW_BIT(VIRTIO_RING_F_EVENT_IDX));
    struct sim_seg s[1] = {{.len = 10}};
    sim_avail_push(&f->r, sim_chain_indirect(&f->r, s, 1, NULL));
    expect_broken(f, CW_VQ_ERR_INDIRECT);
}

static void test_hostile_indirect_nested(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    struct sim_seg s[2] = {{.len = 10}, {.len = 10}};
    uint64_t table;
    uint16_t h = sim_chain_indirect(&f->r, s, 2, &table);
    /* Entry 1 of the table points to the table itself, as indirect. */
    sim_desc_write(f->g, table, 1, table, 32, VRING_DESC_F_INDIRECT, 0);
    sim_avail_push(&f->r, h);
    expect_broken(f, CW_VQ_ERR_INDIRECT);
}

static void test_hostile_indirect_with_next(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    struct sim_seg s[1] = {{.len = 10}};
    uint64_t table;
    uint16_t h = sim_chain_indirect(&f->r, s, 1, &table);
    uint64_t b = sim_alloc(f->g, 16, 8);
    sim_desc_write(f->g, f->r.desc, 6, b, 16, 0, 0);
    sim_desc_write(f->g, f->r.desc, h, table, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 6);
    sim_avail_push(&f->r, h);
    expect_broken(f, CW_VQ_ERR_INDIRECT);
}

static void test_hostile_indirect_bad_len(void **state)
{
    struct fx *f = *state;
    static const uint32_t lens[] = {0, 8, 24, 16 * CW_VQ_MAX_SEGS + 16, 0xfffffff0u};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        start(f, 8, FEAT_ALL);
        uint64_t t = sim_alloc(f->g, 16 * (CW_VQ_MAX_SEGS + 1), 16);
        uint64_t b = sim_alloc(f->g, 16, 8);
        for (uint32_t k = 0; k <= CW_VQ_MAX_SEGS; k++)
            sim_desc_write(f->g, t, k, b, 16, 0, 0);
        sim_desc_write(f->g, f->r.desc, 0, t, lens[i], VRING_DESC_F_INDIRECT, 0);
        sim_avail_push(&f->r, 0);
        expect_broken(f, CW_VQ_ERR_INDIRECT);
    }
}

static void test_hostile_indirect_outside(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    /* Table in the hole between the regions. */
    sim_desc_write(f->g, f->r.desc, 0, SIM_R0_GPA + SIM_R0_SIZE + 0x100, 32,
                   VRING_DESC_F_INDIRECT, 0);
    sim_avail_push(&f->r, 0);
    expect_broken(f, CW_VQ_ERR_INDIRECT);
    /* Table straddling the end of region 0. */
    start(f, 8, FEAT_ALL);
    sim_desc_write(f->g, f->r.desc, 0, SIM_R0_GPA + SIM_R0_SIZE - 16, 32, VRING_DESC_F_INDIRECT,
                   0);
    sim_avail_push(&f->r, 0);
    expect_broken(f, CW_VQ_ERR_INDIRECT);
}

static void test_hostile_indirect_next(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    struct sim_seg s[2] = {{.len = 10}, {.len = 10}};
    uint64_t table;
    uint16_t h = sim_chain_indirect(&f->r, s, 2, &table);
    /* next == table length: beyond the table (the queue's num is bigger). */
    sim_desc_write(f->g, table, 0, s[0].gpa, 10, VRING_DESC_F_NEXT, 2);
    sim_avail_push(&f->r, h);
    expect_broken(f, CW_VQ_ERR_NEXT);
}

static void test_hostile_indirect_loop(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    struct sim_seg s[3] = {{.len = 10}, {.len = 10}, {.len = 10}};
    uint64_t table;
    uint16_t h = sim_chain_indirect(&f->r, s, 3, &table);
    sim_desc_write(f->g, table, 1, s[1].gpa, 10, VRING_DESC_F_NEXT, 0);
    sim_avail_push(&f->r, h);
    expect_broken(f, CW_VQ_ERR_CHAIN_LONG);
}

static void test_hostile_buf_outside(void **state)
{
    struct fx *f = *state;
    static const struct {
        uint64_t addr;
        uint32_t len;
    } cases[] = {
        {SIM_R0_GPA + SIM_R0_SIZE + 0x10, 16}, /* in the hole */
        {SIM_R0_GPA + SIM_R0_SIZE - 8, 16},    /* straddles region 0's end */
        {SIM_R0_GPA - 8, 16},                  /* straddles region 0's start */
        {SIM_R1_GPA + SIM_R1_SIZE - 1, 2},     /* straddles region 1's end */
        {0, 64},                               /* below all memory */
        {SIM_R0_GPA, 0xffffffffu},             /* far too long */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        start(f, 8, FEAT_ALL);
        sim_desc_write(f->g, f->r.desc, 0, cases[i].addr, cases[i].len, 0, 0);
        sim_avail_push(&f->r, 0);
        expect_broken(f, CW_VQ_ERR_BUF_ADDR);
    }
    /* The same inside an indirect table. */
    start(f, 8, FEAT_ALL);
    struct sim_seg s[2] = {{.len = 10}, {.len = 10}};
    uint64_t table;
    uint16_t h = sim_chain_indirect(&f->r, s, 2, &table);
    sim_desc_write(f->g, table, 1, SIM_R0_GPA + SIM_R0_SIZE + 0x10, 16, 0, 0);
    sim_avail_push(&f->r, h);
    expect_broken(f, CW_VQ_ERR_BUF_ADDR);
}

static void test_hostile_buf_wrap(void **state)
{
    struct fx *f = *state;
    bool tr = f->g->translating;
    sim_guest_free(f->g);
    /* Memory at both ends of the address space, and a gmem strategy that
     * only checks the first and last byte: an addr+len that wraps past 2^64
     * would pass it. The core must catch the wrap itself. */
    static const struct sim_region_cfg layout[2] = {
        {0, 1u << 20},
        {0xffffffffffff0000ull, 0x10000},
    };
    f->g = sim_guest_new_layout(tr, layout, 2);
    f->g->naive_valid = true;
    start(f, 8, FEAT_ALL);
    sim_desc_write(f->g, f->r.desc, 0, 0xffffffffffffff00ull, 0x200, 0, 0);
    sim_avail_push(&f->r, 0);
    expect_broken(f, CW_VQ_ERR_BUF_ADDR);
    /* An indirect table that wraps. */
    start(f, 8, FEAT_ALL);
    sim_desc_write(f->g, f->r.desc, 0, 0xfffffffffffffff0ull, 32, VRING_DESC_F_INDIRECT, 0);
    sim_avail_push(&f->r, 0);
    expect_broken(f, CW_VQ_ERR_INDIRECT);
    /* A buffer at the very top that does not wrap is fine. */
    start(f, 8, FEAT_ALL);
    sim_desc_write(f->g, f->r.desc, 0, 0xffffffffffffff00ull, 0x100, 0, 0);
    sim_avail_push(&f->r, 0);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
}

static void test_hostile_order(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    struct sim_seg s[3] = {{.len = 10}, {.len = 10, .write = true}, {.len = 10}};
    sim_avail_push(&f->r, sim_chain(&f->r, s, 3));
    expect_broken(f, CW_VQ_ERR_ORDER);
    /* Also across the boundary into an indirect table. */
    start(f, 8, FEAT_ALL);
    struct sim_seg t[1] = {{.len = 10}};
    uint16_t ih = sim_chain_indirect(&f->r, t, 1, NULL);
    uint64_t b = sim_alloc(f->g, 16, 8);
    sim_desc_write(f->g, f->r.desc, 7, b, 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, ih);
    sim_avail_push(&f->r, 7);
    expect_broken(f, CW_VQ_ERR_ORDER);
}

static void test_hostile_breaks_after_good_chains(void **state)
{
    struct fx *f = *state;
    start(f, 8, FEAT_ALL);
    post1(f, 10, false);
    sim_avail_push(&f->r, 9); /* bad head after a good chain */
    post1(f, 10, false);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
    cw_vq_push(&f->vq, f->c.head, 0);
    cw_vq_flush(&f->vq);
    assert_int_equal(sim_used_idx(&f->r), 1);
    expect_broken(f, CW_VQ_ERR_HEAD);
    /* A driver reset (new setup) brings the queue back. */
    start(f, 8, FEAT_ALL);
    post1(f, 10, false);
    assert_int_equal(cw_vq_pop(&f->vq, &f->c), 1);
}

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(cw_vq_strerror(CW_VQ_OK), "ok");
    assert_string_equal(cw_vq_strerror(CW_VQ_ERR_CHAIN_LONG), "chain_long");
    assert_string_equal(cw_vq_strerror(CW_VQ_ERR_BUF_ADDR), "buf_addr");
    assert_string_equal(cw_vq_strerror((enum cw_vq_error)999), "unknown");
    for (int e = 0; e < CW_VQ_ERR__COUNT; e++) {
        const char *s = cw_vq_strerror((enum cw_vq_error)e);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown");
        for (const char *p = s; *p; p++)
            assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
    }
}

/* Each test twice, once per guest-memory flavour, with the flavour in the name. */
#define BOTH(t)                                                                   \
    {#t " (translating)", t, fx_setup, fx_teardown, &translating_flavour},        \
    {#t " (copying)", t, fx_setup, fx_teardown, &copying_flavour}

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_setup_strategy),
        BOTH(test_setup_bad_size),
        BOTH(test_setup_bad_addr),
        BOTH(test_setup_resume_used_idx),
        BOTH(test_pop_empty),
        BOTH(test_pop_single),
        BOTH(test_pop_chain_mixed),
        BOTH(test_copies_per_segment),
        BOTH(test_pop_indirect),
        BOTH(test_pop_direct_then_indirect),
        BOTH(test_indirect_unaligned),
        BOTH(test_indirect_max_entries),
        BOTH(test_zero_len_skipped),
        BOTH(test_chain_exactly_num),
        BOTH(test_full_ring_and_index_wrap),
        BOTH(test_batching_one_idx_update),
        BOTH(test_unpop_unpush),
        BOTH(test_device_misuse),
        BOTH(test_gmem_fault_breaks),
        BOTH(test_stop_resume),
        BOTH(test_interrupt_event_idx),
        BOTH(test_interrupt_event_idx_wrap),
        BOTH(test_interrupt_flags),
        BOTH(test_notify_flags),
        BOTH(test_notify_event_idx),
        BOTH(test_notify_disabled_store_kept),
        BOTH(test_notify_event_idx_after_unpop),
        BOTH(test_hostile_avail_idx_ahead),
        BOTH(test_hostile_avail_idx_backwards),
        BOTH(test_hostile_avail_count),
        BOTH(test_hostile_head),
        BOTH(test_hostile_next),
        BOTH(test_hostile_loop),
        BOTH(test_hostile_self_loop),
        BOTH(test_hostile_self_loop_zero_len),
        BOTH(test_hostile_chain_longer_than_num),
        BOTH(test_hostile_too_many_segments),
        BOTH(test_hostile_indirect_without_feature),
        BOTH(test_hostile_indirect_nested),
        BOTH(test_hostile_indirect_with_next),
        BOTH(test_hostile_indirect_bad_len),
        BOTH(test_hostile_indirect_outside),
        BOTH(test_hostile_indirect_next),
        BOTH(test_hostile_indirect_loop),
        BOTH(test_hostile_buf_outside),
        BOTH(test_hostile_buf_wrap),
        BOTH(test_hostile_order),
        BOTH(test_hostile_breaks_after_good_chains),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
