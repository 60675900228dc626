/* Fuzz target: the split virtqueue engine against a hostile guest.
 *
 * Input layout:
 *   u8  cfg      bit0 translating gmem, bit1 EVENT_IDX, bit2 INDIRECT_DESC,
 *                bit3 ring addresses from the input (else packed at offset 0),
 *                bits4-5 region base: 0, 1 MiB, the top of 64-bit space, or
 *                from the input, bit6 fault injection: every gmem call fails
 *                from the u16 fail_after'th on
 *   u8  num_sel  queue size 2 << (num_sel % 10); bit7: a raw u16 size instead
 *   u16 last_avail_idx
 *   u16 ops_len, then ops_len bytes of operations (see run_op)
 *   [u64 base][3 x u32 ring offsets][u16 fail_after] when cfg asks for them
 *   the rest: the initial guest memory image (descriptor table, rings, buffers)
 *
 * Checked, beyond "no crash, no hang, no access outside the region" (ASan and
 * the copying gmem's bounds): every popped chain is valid (head < num,
 * non-empty segments inside the region, out before in, byte counts that
 * add up); read_out copies exactly the guest's bytes; a broken queue makes no
 * further guest memory access; and at the end, the device has written guest
 * memory only inside the used ring area and the writable buffers it was told
 * to fill. */
#include <stdbool.h>

#include "core/virtq.h"
#include "fuzz.h"
#include "fuzz_mem.h"

#define MAX_MEM (1u << 20)
#define BUF_SPACE 8192u
#define MAX_OPS 4096u
#define MAX_HELD 2048u
#define COPY_MAX 65536u

struct state {
    struct fuzz_mem mem;
    struct cw_vq vq;
    uint16_t num;
    uint64_t features;
    uint64_t desc, avail, used;
    uint8_t *shadow;  /* the guest's view: initial image plus the guest's own writes */
    uint8_t *allowed; /* bytes the device may legitimately have written */
    uint16_t held[MAX_HELD];
    uint32_t nheld;
    uint32_t unpopped; /* chains given back with unpop since setup */
    bool have_last;
    bool setup_ok;
};

static struct cw_chain last_chain;
static int trace; /* FUZZ_VERBOSE: print each operation and the queue's indexes */
static uint8_t copy_buf[COPY_MAX];
static uint8_t pattern[COPY_MAX];

static void allow(struct state *s, uint64_t gpa, uint64_t len)
{
    uint64_t off = fuzz_mem_off(&s->mem, gpa);
    if (off == UINT64_MAX)
        return;
    if (len > s->mem.size - off)
        len = s->mem.size - off;
    memset(s->allowed + off, 1, (size_t)len);
}

static void setup(struct state *s, uint16_t last_avail)
{
    enum cw_vq_error e = cw_vq_setup(&s->vq, &s->mem.gmem, s->num, s->desc, s->avail, s->used,
                                     s->features, last_avail);
    s->setup_ok = e == CW_VQ_OK;
    FUZZ_CHECK(s->setup_ok == cw_vq_ready(&s->vq));
    if (s->setup_ok) {
        /* The one area the device itself owns. */
        allow(s, s->used, vring_used_size(s->num));
        FUZZ_CHECK(s->vq.desc_gpa == s->desc && s->vq.avail_gpa == s->avail &&
                   s->vq.used_gpa == s->used);
        /* Translated pointers only with a translating gmem, and then for
         * all three areas (unless injected faults made translation fail). */
        FUZZ_CHECK((s->vq.desc != NULL) == s->mem.translating || fuzz_mem_failing(&s->mem));
        FUZZ_CHECK((s->vq.desc != NULL) == (s->vq.avail != NULL));
        FUZZ_CHECK((s->vq.desc != NULL) == (s->vq.used != NULL));
    }
    s->nheld = 0;
    s->unpopped = 0;
    s->have_last = false;
}

/* A popped chain must be exactly what the engine promises its callers. */
static void check_chain(const struct state *s, const struct cw_chain *c)
{
    FUZZ_CHECK(c->head < s->num);
    FUZZ_CHECK((uint32_t)c->n_out + c->n_in <= CW_VQ_MAX_SEGS);
    uint64_t out = 0, in = 0;
    for (uint32_t i = 0; i < (uint32_t)c->n_out + c->n_in; i++) {
        const struct cw_seg *g = &c->seg[i];
        FUZZ_CHECK(g->len > 0);
        FUZZ_CHECK(fuzz_mem_host(&s->mem, g->gpa, g->len) != NULL);
        if (i < c->n_out)
            out += g->len;
        else
            in += g->len;
    }
    FUZZ_CHECK(c->out_bytes == (out > UINT32_MAX ? UINT32_MAX : out));
    FUZZ_CHECK(c->in_bytes == (in > UINT32_MAX ? UINT32_MAX : in));
}

/* Expected result of copying from segments [first, first+count) of c at
 * offset, len bytes, into exp; returns the byte count. */
static uint32_t expect_read(const struct state *s, const struct cw_chain *c, uint32_t first,
                            uint32_t count, uint32_t offset, uint8_t *exp, uint32_t len)
{
    uint32_t done = 0;
    for (uint32_t i = first; i < first + count && done < len; i++) {
        uint32_t slen = c->seg[i].len;
        if (offset >= slen) {
            offset -= slen;
            continue;
        }
        uint32_t n = slen - offset;
        if (n > len - done)
            n = len - done;
        memcpy(exp + done, fuzz_mem_host(&s->mem, c->seg[i].gpa + offset, n), n);
        offset = 0;
        done += n;
    }
    return done;
}

/* Do the writable segments of c overlap each other? (Then the bytes a
 * write_in leaves depend on the copy order, and are not compared.) */
static bool in_segs_overlap(const struct cw_chain *c)
{
    uint32_t end = (uint32_t)c->n_out + c->n_in;
    if (c->n_in > 64)
        return true; /* not worth the quadratic check */
    for (uint32_t i = c->n_out; i < end; i++)
        for (uint32_t j = i + 1; j < end; j++) {
            uint64_t a = c->seg[i].gpa, b = c->seg[j].gpa;
            if (a < b + c->seg[j].len && b < a + c->seg[i].len)
                return true;
        }
    return false;
}

static void do_pop(struct state *s)
{
    int r = cw_vq_pop(&s->vq, &last_chain);
    FUZZ_CHECK(r >= -1 && r <= 1);
    FUZZ_CHECK((r < 0) == cw_vq_broken(&s->vq));
    if (r == 1) {
        check_chain(s, &last_chain);
        s->have_last = true;
        if (s->nheld < MAX_HELD)
            s->held[s->nheld++] = last_chain.head;
    }
}

static void run_op(struct state *s, struct fuzz_in *ops)
{
    uint8_t op = fuzz_u8(ops) % 16;
    bool was_broken = cw_vq_broken(&s->vq);
    uint64_t acc_before = s->mem.accesses;
    bool guest_side = false; /* ops that are the guest's or a restart */

    switch (op) {
    case 0:
        do_pop(s);
        break;
    case 1: {
        /* Drain: every pop terminates, and the queue runs dry within a
         * bounded number of pops: what was left of the last index read
         * (at most num, plus chains given back since with unpop), then at
         * most num more after one re-read. */
        uint32_t bound = 2u * s->num + s->unpopped;
        uint32_t i;
        for (i = 0; i <= bound + 1; i++) {
            int r = cw_vq_pop(&s->vq, &last_chain);
            if (r != 1)
                break;
            check_chain(s, &last_chain);
            s->have_last = true;
            if (s->nheld < MAX_HELD)
                s->held[s->nheld++] = last_chain.head;
        }
        FUZZ_CHECK(i <= bound);
        break;
    }
    case 2: {
        uint32_t len = fuzz_u32(ops);
        if (s->nheld) {
            uint16_t head = s->held[0];
            memmove(s->held, s->held + 1, (s->nheld - 1) * sizeof(s->held[0]));
            s->nheld--;
            cw_vq_push(&s->vq, head, len);
        }
        break;
    }
    case 3:
        cw_vq_flush(&s->vq);
        break;
    case 4:
        (void)cw_vq_need_interrupt(&s->vq);
        break;
    case 5: {
        bool en = fuzz_u8(ops) & 1;
        bool more = cw_vq_set_notify(&s->vq, en);
        FUZZ_CHECK(!more || en);
        break;
    }
    case 6: {
        uint32_t off = fuzz_u16(ops), len = fuzz_u16(ops);
        if (!s->have_last)
            break;
        int64_t n = cw_vq_read_out(&s->vq, &last_chain, off, copy_buf, len);
        if (n < 0) {
            FUZZ_CHECK(cw_vq_broken(&s->vq) || !s->vq.ready);
            break;
        }
        uint32_t want = expect_read(s, &last_chain, 0, last_chain.n_out, off, pattern, len);
        FUZZ_CHECK((uint64_t)n == want);
        FUZZ_CHECK(memcmp(copy_buf, pattern, want) == 0);
        break;
    }
    case 7: {
        uint32_t off = fuzz_u16(ops), len = fuzz_u16(ops);
        uint8_t seed = fuzz_u8(ops);
        if (!s->have_last)
            break;
        for (uint32_t i = 0; i < len; i++)
            pattern[i] = (uint8_t)(seed + i * 7u);
        /* The device may write wherever this chain's writable part lies. */
        for (uint32_t i = last_chain.n_out; i < (uint32_t)last_chain.n_out + last_chain.n_in; i++)
            allow(s, last_chain.seg[i].gpa, last_chain.seg[i].len);
        int64_t n = cw_vq_write_in(&s->vq, &last_chain, off, pattern, len);
        if (n < 0) {
            FUZZ_CHECK(cw_vq_broken(&s->vq) || !s->vq.ready);
            break;
        }
        if (!in_segs_overlap(&last_chain)) {
            uint32_t want = expect_read(s, &last_chain, last_chain.n_out, last_chain.n_in, off,
                                        copy_buf, len);
            FUZZ_CHECK((uint64_t)n == want);
            FUZZ_CHECK(memcmp(copy_buf, pattern, want) == 0);
        }
        break;
    }
    case 8: {
        /* The guest rewrites its memory between two device steps, as a
         * driver on another CPU can at any time. */
        uint32_t off = fuzz_u32(ops);
        uint8_t n = fuzz_u8(ops) % 9;
        uint8_t v[8];
        fuzz_bytes(ops, v, n);
        off %= (uint32_t)s->mem.size;
        if (n > s->mem.size - off)
            n = (uint8_t)(s->mem.size - off);
        memcpy(s->mem.host + off, v, n);
        memcpy(s->shadow + off, v, n);
        guest_side = true;
        break;
    }
    case 9: {
        uint16_t n = fuzz_u8(ops) % 4;
        cw_vq_unpop(&s->vq, n);
        if (!cw_vq_broken(&s->vq)) {
            s->nheld = n > s->nheld ? 0 : s->nheld - n;
            s->unpopped += n;
        }
        break;
    }
    case 10:
        cw_vq_unpush(&s->vq, fuzz_u8(ops) % 4);
        break;
    case 11: {
        /* Stop and resume where the device left off (GET/SET_VRING_BASE). */
        uint16_t idx = cw_vq_stop(&s->vq);
        FUZZ_CHECK(!s->vq.ready);
        setup(s, idx);
        guest_side = true;
        break;
    }
    case 12: {
        uint16_t n = cw_vq_avail_count(&s->vq);
        FUZZ_CHECK(n <= s->num);
        break;
    }
    case 13: {
        /* A device bug the engine must contain: returning an id it does
         * not hold. */
        uint16_t head = fuzz_u16(ops);
        uint32_t len = fuzz_u32(ops);
        cw_vq_push(&s->vq, head, len);
        break;
    }
    case 14:
    case 15: {
        /* The fast path: a pointer only for a range inside one segment of
         * the right part, only with a translating gmem, and exactly where
         * that segment's bytes are. */
        uint32_t off = fuzz_u16(ops), len = fuzz_u16(ops);
        if (!s->have_last)
            break;
        bool in = op == 15;
        uint32_t first = in ? last_chain.n_out : 0, count = in ? last_chain.n_in : last_chain.n_out;
        const uint8_t *p = in ? cw_vq_in_ptr(&s->vq, &last_chain, off, len)
                              : cw_vq_out_ptr(&s->vq, &last_chain, off, len);
        const uint8_t *want = NULL;
        uint32_t o = off;
        for (uint32_t i = first; i < first + count; i++) {
            const struct cw_seg *g = &last_chain.seg[i];
            if (o < g->len) {
                if (len <= g->len - o)
                    want = fuzz_mem_host(&s->mem, g->gpa + o, len);
                break;
            }
            o -= g->len;
        }
        if (!s->mem.translating || len == 0 || !cw_vq_ready(&s->vq))
            want = NULL;
        FUZZ_CHECK(p == want || (p == NULL && fuzz_mem_failing(&s->mem)));
        if (p && in) {
            /* The caller writes through it: only into a writable buffer. */
            allow(s, s->mem.base + (uint64_t)(p - s->mem.host), len);
            memset((uint8_t *)p, 0xA5, len);
        }
        break;
    }
    }

    if (trace)
        fprintf(stderr, "fuzz_virtq: op %2u -> ready %d error %s avail %u last %u used %u pub %u held %u\n",
                op, s->vq.ready, cw_vq_strerror(s->vq.error), s->vq.avail_idx,
                s->vq.last_avail_idx, s->vq.used_idx, s->vq.published_used, s->nheld);

    /* "Serves nothing more": a broken queue leaves guest memory alone. */
    if (was_broken && !guest_side)
        FUZZ_CHECK(s->mem.accesses == acc_before);
    /* (No bound on avail_idx - last_avail_idx between operations: after an
     * unpop it can exceed num when a hostile guest re-offered heads it never
     * got back; the next refresh then breaks the queue, as it should. The
     * bound is checked where the engine re-reads the index: avail_count.) */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct state s;
    struct fuzz_in in;
    fuzz_in_init(&in, data, size);

    memset(&s, 0, sizeof(s));
    trace = getenv("FUZZ_VERBOSE") != NULL;
    uint8_t cfg = fuzz_u8(&in);
    uint8_t num_sel = fuzz_u8(&in);
    uint16_t last_avail = fuzz_u16(&in);
    uint16_t ops_len = fuzz_u16(&in) % (MAX_OPS + 1);
    struct fuzz_in ops;
    size_t got;
    const uint8_t *opp = fuzz_take(&in, ops_len, &got);
    fuzz_in_init(&ops, opp, got);

    s.num = (num_sel & 0x80) ? fuzz_u16(&in) : (uint16_t)(2u << (num_sel % 10));
    s.features = ((cfg & 2) ? CW_BIT(VIRTIO_RING_F_EVENT_IDX) : 0) |
                 ((cfg & 4) ? CW_BIT(VIRTIO_RING_F_INDIRECT_DESC) : 0);
    uint64_t base_in = 0;
    uint32_t roff[3] = {0, 0, 0};
    if (((cfg >> 4) & 3) == 3)
        base_in = fuzz_u64(&in);
    if (cfg & 8)
        for (int i = 0; i < 3; i++)
            roff[i] = fuzz_u32(&in);
    uint64_t fail_after = (cfg & 0x40) ? (uint64_t)fuzz_u16(&in) + 1 : 0;

    /* Default layout: rings packed from offset 0, as a driver lays them out,
     * buffers after them; the image may be larger still. */
    uint32_t n = s.num <= CW_VQ_MAX_SIZE ? s.num : CW_VQ_MAX_SIZE;
    uint64_t d_off = 0;
    uint64_t a_off = vring_desc_size(n);
    uint64_t u_off = (a_off + vring_avail_size(n) + 3) & ~3ull;
    uint64_t msize = u_off + vring_used_size(n) + BUF_SPACE;
    if (in.left > msize)
        msize = in.left;
    if (msize > MAX_MEM)
        msize = MAX_MEM;

    uint64_t base;
    switch ((cfg >> 4) & 3) {
    case 0: base = 0; break;
    case 1: base = 0x100000; break;
    case 2: base = 0 - msize; break; /* ends exactly at 2^64 */
    default:
        base = base_in & ~0xFFFull;
        if (msize - 1 > UINT64_MAX - base)
            base = 0 - msize;
        break;
    }
    if (fuzz_mem_init(&s.mem, base, msize, cfg & 1) < 0)
        return 0;
    s.mem.fail_after = fail_after;
    fuzz_bytes(&in, s.mem.host, (size_t)(in.left < msize ? in.left : msize));
    s.shadow = malloc((size_t)msize);
    s.allowed = calloc(1, (size_t)msize);
    if (!s.shadow || !s.allowed)
        abort();
    memcpy(s.shadow, s.mem.host, (size_t)msize);

    if (cfg & 8) {
        /* Hostile placement: anywhere, misaligned, overlapping, wrapping. */
        s.desc = base + roff[0];
        s.avail = base + roff[1];
        s.used = base + roff[2];
    } else {
        s.desc = base + d_off;
        s.avail = base + a_off;
        s.used = base + u_off;
    }

    setup(&s, last_avail);
    for (uint32_t i = 0; i < MAX_OPS && !fuzz_empty(&ops); i++)
        run_op(&s, &ops);

    /* The device wrote nowhere it had no business writing. */
    for (uint64_t i = 0; i < msize; i++)
        if (s.mem.host[i] != s.shadow[i])
            FUZZ_CHECK(s.allowed[i]);

    free(s.shadow);
    free(s.allowed);
    fuzz_mem_free(&s.mem);
    return 0;
}
