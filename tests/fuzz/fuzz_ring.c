/* Fuzz target: the shared-memory frame ring against a hostile peer.
 *
 * Input layout:
 *   u8  mode      0: consumer vs a hostile producer (shared area from the
 *                 input), 1: producer vs a hostile consumer, 2: an honest
 *                 pair that a hostile op may corrupt
 *   u8  cap_sel   capacity 4096 << (cap_sel % 5)
 *   u32 max_record (raw: attach must refuse what does not fit)
 *   u8  flags     bit0 attach with initialize
 *   mode 0: u32 prod, then the data area image (capacity bytes, zero-padded)
 *   the rest: operations
 *
 * Checked: attach accepts exactly the documented parameters; a peeked record
 * lies wholly inside the data area and inside what the producer published,
 * with len <= max_record; a reservation never overlaps what the consumer has
 * not released (by the last cons it published that the producer read: the
 * ring caches it) and never passes the end of
 * the area; published indexes stay aligned and within capacity; once broken,
 * a side returns nothing and writes nothing more to the shared area; an
 * honest pair delivers exactly the committed records, in order. */
#include <stdbool.h>
#include <stdlib.h>

#include "fuzz.h"
#include "port/ring.h"

#define MAX_OPS 2048
#define FIFO 4096

static uint32_t rec_size(uint32_t len)
{
    return (CW_RING_REC_HDR + len + CW_RING_ALIGN - 1) & ~(CW_RING_ALIGN - 1);
}

struct sent {
    uint32_t len;
    uint8_t seed;
};

struct st {
    struct cw_ring_shared *sh;
    uint32_t cap, max_record;
    struct cw_ring prod, cons;
    bool have_prod, have_cons;
    bool trust;
    /* honest pair model: committed records in order, how many published */
    struct sent fifo[FIFO];
    uint32_t f_head, f_tail, f_published;
    uint32_t res_len;
    bool res_open;
    uint8_t res_seed;
    uint8_t *res_ptr;
};

static bool attach_ok(uint32_t cap, uint32_t max_record)
{
    return max_record <= cap / 2 && rec_size(max_record) <= cap / 2;
}

/* Consumer side: validate what peek hands out. */
static void do_peek(struct st *s)
{
    struct cw_ring *r = &s->cons;
    bool was_broken = r->broken;
    uint32_t cons_before = __atomic_load_n(&s->sh->cons, __ATOMIC_RELAXED);
    uint32_t prod_shared = __atomic_load_n(&s->sh->prod, __ATOMIC_RELAXED);
    uint32_t seen_before = r->peer_seen;
    uint32_t head = r->head;
    uint32_t len = 0xDEADBEEF;
    const uint8_t *p = cw_ring_peek(r, &len);
    /* peek writes nothing shared. */
    FUZZ_CHECK(__atomic_load_n(&s->sh->cons, __ATOMIC_RELAXED) == cons_before);
    /* The prod peek works from is one the producer did publish: the cached
     * one or the shared one just read. */
    uint32_t prod = r->peer_seen;
    if (!r->broken)
        FUZZ_CHECK(prod == seen_before || prod == prod_shared);
    if (was_broken)
        FUZZ_CHECK(p == NULL);
    if (!p)
        return;
    FUZZ_CHECK(len <= s->max_record);
    const uint8_t *data = s->sh->data;
    FUZZ_CHECK(p >= data + CW_RING_REC_HDR && p <= data + s->cap);
    uint32_t off = (uint32_t)(p - data) - CW_RING_REC_HDR;
    FUZZ_CHECK(off % CW_RING_ALIGN == 0);
    FUZZ_CHECK((uint64_t)off + rec_size(len) <= s->cap);
    /* The record's start, as a free-running index at or after our head
     * (after at most one PAD), and its end inside what was published. */
    uint32_t start = head + ((off - (head & (s->cap - 1))) & (s->cap - 1));
    FUZZ_CHECK((uint32_t)(start + rec_size(len) - head) <= (uint32_t)(prod - head));
    if (s->trust && s->have_prod) {
        /* Honest pair: the oldest published record, byte for byte. */
        FUZZ_CHECK(s->f_head < s->f_published);
        const struct sent *e = &s->fifo[s->f_head % FIFO];
        FUZZ_CHECK(len == e->len);
        for (uint32_t i = 0; i < len; i++)
            FUZZ_CHECK(p[i] == (uint8_t)(e->seed + i));
    }
}

static void do_release(struct st *s)
{
    bool had = s->cons.peek_len != 0 && !s->cons.broken;
    cw_ring_release(&s->cons);
    if (had && s->trust && s->have_prod)
        s->f_head++;
}

static void do_cons_publish(struct st *s)
{
    struct cw_ring *r = &s->cons;
    bool was_broken = r->broken;
    uint32_t before = __atomic_load_n(&s->sh->cons, __ATOMIC_RELAXED);
    cw_ring_consumer_publish(r);
    uint32_t after = __atomic_load_n(&s->sh->cons, __ATOMIC_RELAXED);
    if (was_broken) {
        FUZZ_CHECK(after == before);
        return;
    }
    if (after != before) {
        FUZZ_CHECK(after % CW_RING_ALIGN == 0);
        FUZZ_CHECK(after == r->head);
    }
}

/* Producer side: a reservation must lie in space the consumer gave back. */
static void do_reserve(struct st *s, uint32_t len, uint8_t seed)
{
    struct cw_ring *r = &s->prod;
    bool was_broken = r->broken;
    uint32_t cons_shared = __atomic_load_n(&s->sh->cons, __ATOMIC_RELAXED);
    uint32_t seen_before = r->peer_seen;
    uint32_t head = r->head;
    uint8_t *p = cw_ring_reserve(r, len);
    if (was_broken)
        FUZZ_CHECK(p == NULL);
    /* The cons reserve works from is one the consumer did publish (the
     * cached one or the shared one just read); space below it was handed
     * back, whatever the consumer claims later. */
    uint32_t cons = r->peer_seen;
    if (!r->broken)
        FUZZ_CHECK(cons == seen_before || cons == cons_shared);
    if (!p) {
        /* Nothing to commit on (the device never commits after a failed
         * reserve either). */
        s->res_open = false;
        return;
    }
    FUZZ_CHECK(len <= s->max_record);
    uint8_t *data = s->sh->data;
    FUZZ_CHECK(p >= data + CW_RING_REC_HDR && p <= data + s->cap);
    uint32_t off = (uint32_t)(p - data) - CW_RING_REC_HDR;
    FUZZ_CHECK(off % CW_RING_ALIGN == 0);
    FUZZ_CHECK((uint64_t)off + rec_size(len) <= s->cap);
    uint32_t start = head + ((off - (head & (s->cap - 1))) & (s->cap - 1));
    /* Everything written (PAD and record) ends within cons + capacity. */
    FUZZ_CHECK((uint32_t)(start + rec_size(len) - cons) <= s->cap);
    FUZZ_CHECK((uint32_t)(head - cons) <= s->cap);
    for (uint32_t i = 0; i < len; i++)
        p[i] = (uint8_t)(seed + i);
    s->res_open = true;
    s->res_len = len;
    s->res_seed = seed;
    s->res_ptr = p;
}

static void do_commit(struct st *s, uint32_t len)
{
    struct cw_ring *r = &s->prod;
    bool ok = s->res_open && !r->broken && len <= s->res_len;
    if (len > s->res_len)
        s->trust = false; /* a caller bug the ring must refuse (it breaks) */
    cw_ring_commit(r, len);
    if (len > s->res_len)
        FUZZ_CHECK(r->broken);
    if (ok && s->trust && s->have_cons) {
        FUZZ_CHECK(s->f_tail - s->f_head < FIFO);
        s->fifo[s->f_tail % FIFO] = (struct sent){.len = len, .seed = s->res_seed};
        s->f_tail++;
    }
    if (s->res_open)
        s->res_open = false;
}

static void do_prod_publish(struct st *s)
{
    struct cw_ring *r = &s->prod;
    bool was_broken = r->broken;
    uint32_t before = __atomic_load_n(&s->sh->prod, __ATOMIC_RELAXED);
    cw_ring_publish(r);
    uint32_t after = __atomic_load_n(&s->sh->prod, __ATOMIC_RELAXED);
    if (was_broken) {
        FUZZ_CHECK(after == before);
        return;
    }
    if (after != before) {
        FUZZ_CHECK(after % CW_RING_ALIGN == 0);
        FUZZ_CHECK(after == r->head);
        uint32_t cons = __atomic_load_n(&s->sh->cons, __ATOMIC_RELAXED);
        if (s->trust)
            FUZZ_CHECK((uint32_t)(after - cons) <= s->cap);
    }
    if (s->trust && s->have_cons)
        s->f_published = s->f_tail;
}

static void hostile_write(struct st *s, struct fuzz_in *in)
{
    uint8_t what = fuzz_u8(in);
    switch (what % 4) {
    case 0: /* the peer's index */
        if (s->have_prod && !s->have_cons)
            __atomic_store_n(&s->sh->cons, fuzz_u32(in), __ATOMIC_RELAXED);
        else
            __atomic_store_n(&s->sh->prod, fuzz_u32(in), __ATOMIC_RELAXED);
        break;
    case 1: { /* a record header anywhere in the area */
        uint32_t off = (fuzz_u32(in) % s->cap) & ~(CW_RING_ALIGN - 1);
        uint32_t h[2] = {fuzz_u32(in), fuzz_u32(in) % 4};
        memcpy(s->sh->data + off, h, sizeof(h));
        break;
    }
    case 2: { /* raw bytes */
        uint32_t off = fuzz_u32(in) % s->cap;
        uint8_t n = fuzz_u8(in) % 16;
        if (n > s->cap - off)
            n = (uint8_t)(s->cap - off);
        fuzz_bytes(in, s->sh->data + off, n);
        break;
    }
    case 3: /* the peer's wake flag */
        if (s->have_prod && !s->have_cons)
            __atomic_store_n(&s->sh->cons_wants_data, fuzz_u32(in), __ATOMIC_RELAXED);
        else
            __atomic_store_n(&s->sh->prod_wants_space, fuzz_u32(in), __ATOMIC_RELAXED);
        break;
    }
    s->trust = false;
}

/* A broken side writes nothing shared: its own index and flag stay put. */
static void run_op(struct st *s, struct fuzz_in *in)
{
    uint8_t op = fuzz_u8(in);
    bool pb = s->have_prod && s->prod.broken, cb = s->have_cons && s->cons.broken;
    uint32_t prod_v = s->sh->prod, pws = s->sh->prod_wants_space;
    uint32_t cons_v = s->sh->cons, cwd = s->sh->cons_wants_data;
    bool hostile = false;

    switch (op % 12) {
    case 0:
    case 1:
        if (s->have_cons)
            do_peek(s);
        break;
    case 2:
        if (s->have_cons)
            do_release(s);
        break;
    case 3:
        if (s->have_cons)
            do_cons_publish(s);
        break;
    case 4:
        if (s->have_cons)
            cw_ring_prepare_wait_data(&s->cons);
        else if (s->have_prod)
            cw_ring_prepare_wait_space(&s->prod, fuzz_u16(in));
        break;
    case 5:
        if (s->have_cons)
            cw_ring_woken(&s->cons);
        if (s->have_prod)
            cw_ring_woken(&s->prod);
        break;
    case 6:
    case 7: {
        uint32_t len = fuzz_u16(in) % (s->max_record + 2);
        uint8_t seed = fuzz_u8(in);
        if (s->have_prod)
            do_reserve(s, len, seed);
        break;
    }
    case 8: {
        /* Commit what was reserved, or a prefix of it; rarely more. */
        uint8_t how = fuzz_u8(in);
        uint32_t len = s->res_len;
        if (how & 1)
            len = s->res_len ? (uint32_t)(how >> 1) % (s->res_len + 1) : 0;
        if ((how & 0xF0) == 0xF0)
            len = s->res_len + 1; /* caller bug: the ring must refuse */
        if (s->have_prod && s->res_open)
            do_commit(s, len);
        break;
    }
    case 9:
        if (s->have_prod)
            do_prod_publish(s);
        break;
    case 10:
        if (s->have_prod)
            cw_ring_prepare_wait_space(&s->prod, fuzz_u16(in) % (s->max_record + 1));
        break;
    case 11:
        hostile_write(s, in);
        hostile = true;
        break;
    }
    if (!hostile) {
        /* Neither side ever writes the other's fields. */
        if (!s->have_prod)
            FUZZ_CHECK(s->sh->prod == prod_v && s->sh->prod_wants_space == pws);
        if (!s->have_cons)
            FUZZ_CHECK(s->sh->cons == cons_v && s->sh->cons_wants_data == cwd);
        if (pb && !s->have_cons)
            FUZZ_CHECK(s->sh->prod == prod_v && s->sh->prod_wants_space == pws);
        if (cb && !s->have_prod)
            FUZZ_CHECK(s->sh->cons == cons_v && s->sh->cons_wants_data == cwd);
        if (pb && s->have_cons)
            FUZZ_CHECK(s->sh->prod == prod_v);
        if (cb && s->have_prod)
            FUZZ_CHECK(s->sh->cons == cons_v);
    }
    /* An honest pair never breaks. */
    if (s->trust)
        FUZZ_CHECK(!(s->have_prod && s->prod.broken) && !(s->have_cons && s->cons.broken));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct st s;
    struct fuzz_in in;
    fuzz_in_init(&in, data, size);
    memset(&s, 0, sizeof(s));

    uint8_t mode = fuzz_u8(&in) % 3;
    s.cap = 4096u << (fuzz_u8(&in) % 5);
    uint32_t max_record = fuzz_u32(&in);
    uint8_t flags = fuzz_u8(&in);
    /* Mostly a usable max_record; the raw value tests attach's checks. */
    if (!(flags & 0x80))
        max_record %= s.cap / 2;

    size_t shsize = cw_ring_shared_size(s.cap);
    s.sh = aligned_alloc(64, shsize);
    if (!s.sh)
        abort();
    memset(s.sh, 0, shsize);
    s.trust = mode == 2;

    bool init = flags & 1;
    bool want = attach_ok(s.cap, max_record);
    if (mode == 0 || mode == 2) {
        if (mode == 0) {
            /* The hostile producer's area, before we attach. */
            s.sh->prod = fuzz_u32(&in);
            fuzz_bytes(&in, s.sh->data, s.cap);
            init = false;
        }
        int rc = cw_ring_attach_consumer(&s.cons, s.sh, s.cap, max_record, init);
        FUZZ_CHECK((rc == 0) == want);
        s.have_cons = rc == 0;
        /* Attach without initialize reads nothing and writes nothing. */
    }
    if (mode == 1 || mode == 2) {
        if (mode == 1) {
            /* The hostile consumer's index; aligned unless flags bit1. */
            uint32_t c = fuzz_u32(&in);
            if (!(flags & 2))
                c &= ~(CW_RING_ALIGN - 1u);
            s.sh->cons = c;
        }
        int rc = cw_ring_attach_producer(&s.prod, s.sh, s.cap, max_record, mode == 1 && init);
        FUZZ_CHECK((rc == 0) == want);
        s.have_prod = rc == 0;
    }
    /* Misaligned shared memory, or a capacity that is not a power of two
     * within bounds, is refused; the refused ring serves nothing. */
    struct cw_ring tmp;
    FUZZ_CHECK(cw_ring_attach_consumer(&tmp, (uint8_t *)s.sh + 8, s.cap, 0, false) < 0);
    FUZZ_CHECK(tmp.broken && cw_ring_peek(&tmp, &(uint32_t){0}) == NULL);
    const uint32_t bad_caps[] = {s.cap + 16, s.cap - 16, CW_RING_MIN_CAPACITY / 2,
                                 CW_RING_MAX_CAPACITY * 2u, 0};
    for (unsigned i = 0; i < sizeof(bad_caps) / sizeof(bad_caps[0]); i++) {
        FUZZ_CHECK(cw_ring_attach_producer(&tmp, s.sh, bad_caps[i], 0, false) < 0);
        FUZZ_CHECK(cw_ring_reserve(&tmp, 0) == NULL);
    }

    s.max_record = max_record;
    if (s.have_prod || s.have_cons)
        for (unsigned i = 0; i < MAX_OPS && !fuzz_empty(&in); i++)
            run_op(&s, &in);

    /* Honest pair: draining delivers everything published, in order. */
    if (mode == 2 && s.trust && s.have_cons) {
        do_prod_publish(&s);
        for (unsigned i = 0; i < FIFO + 2; i++) {
            do_peek(&s);
            if (s.cons.peek_len == 0)
                break;
            do_release(&s);
        }
        FUZZ_CHECK(s.f_head == s.f_published);
    }
    free(s.sh);
    return 0;
}
