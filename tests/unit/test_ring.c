/* Unit tests for the SPSC frame ring (src/port/ring.c).
 *
 * The shared area is a heap block of exactly cw_ring_shared_size(capacity)
 * bytes, so AddressSanitizer reports any access past the area. Hostile peer
 * values are written straight into the shared struct, as a peer process
 * could, and each must leave the ring broken without reading or writing
 * anything further. A two-thread test exercises the barriers for real. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "port/ring.h"

#define CAP 8192u
#define MAXREC (CAP / 2u - 8u) /* header + MAXREC == CAP / 2 exactly */

struct pair {
    struct cw_ring_shared *sh;
    struct cw_ring p, c;
};

static size_t round64(size_t n) { return (n + 63u) & ~(size_t)63u; }

static struct cw_ring_shared *alloc_shared(uint32_t cap)
{
    /* aligned_alloc needs a multiple of the alignment; CAP is one, so the
     * block ends exactly at the end of data[] and ASan sees overreads. */
    size_t n = cw_ring_shared_size(cap);
    assert_int_equal(n, round64(n));
    struct cw_ring_shared *sh = aligned_alloc(64, n);
    assert_non_null(sh);
    memset(sh, 0xA5, n); /* garbage: initialize must clear the header */
    return sh;
}

static void pair_setup(struct pair *x, uint32_t cap, uint32_t maxrec)
{
    x->sh = alloc_shared(cap);
    assert_int_equal(cw_ring_attach_producer(&x->p, x->sh, cap, maxrec, true), 0);
    assert_int_equal(cw_ring_attach_consumer(&x->c, x->sh, cap, maxrec, false), 0);
    assert_int_equal(x->sh->prod, 0);
    assert_int_equal(x->sh->cons, 0);
    assert_int_equal(x->sh->prod_wants_space, 0);
    assert_int_equal(x->sh->cons_wants_data, 0);
}

static uint32_t rng_state;
static uint32_t rng(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

static void fill(uint8_t *p, uint32_t len, uint32_t seq)
{
    for (uint32_t i = 0; i < len; i++)
        p[i] = (uint8_t)(seq * 31u + i * 7u + (i >> 8));
}

static void check(const uint8_t *p, uint32_t len, uint32_t seq)
{
    for (uint32_t i = 0; i < len; i++)
        if (p[i] != (uint8_t)(seq * 31u + i * 7u + (i >> 8)))
            fail_msg("record %u byte %u corrupt", seq, i);
}

static void send1(struct pair *x, uint32_t len, uint32_t seq)
{
    uint8_t *d = cw_ring_reserve(&x->p, len);
    assert_non_null(d);
    fill(d, len, seq);
    cw_ring_commit(&x->p, len);
}

static void recv1(struct pair *x, uint32_t want_len, uint32_t seq)
{
    uint32_t len = 0;
    const uint8_t *d = cw_ring_peek(&x->c, &len);
    assert_non_null(d);
    assert_int_equal(len, want_len);
    check(d, len, seq);
    cw_ring_release(&x->c);
}

/* ---- attach ---- */

static void test_attach_limits(void **state)
{
    (void)state;
    struct cw_ring r;
    struct cw_ring_shared *sh = alloc_shared(CAP);
    assert_int_equal(cw_ring_attach_producer(&r, sh, CAP, MAXREC, true), 0);
    assert_false(r.broken);
    /* capacity not a power of two, or outside the range */
    assert_int_equal(cw_ring_attach_producer(&r, sh, CAP - 16, 100, true), -1);
    assert_true(r.broken);
    assert_int_equal(cw_ring_attach_producer(&r, sh, 3 * 4096, 100, true), -1);
    assert_int_equal(cw_ring_attach_consumer(&r, sh, 0, 100, true), -1);
    assert_int_equal(cw_ring_attach_consumer(&r, sh, 2048, 100, true), -1);
    assert_int_equal(cw_ring_attach_consumer(&r, sh, 1u << 31, 100, true), -1);
    /* max_record larger than capacity, or whose record exceeds capacity/2 */
    assert_int_equal(cw_ring_attach_producer(&r, sh, CAP, CAP + 1, true), -1);
    assert_int_equal(cw_ring_attach_producer(&r, sh, CAP, UINT32_MAX, true), -1);
    assert_int_equal(cw_ring_attach_producer(&r, sh, CAP, MAXREC + 1, true), -1);
    assert_int_equal(cw_ring_attach_consumer(&r, sh, CAP, CAP / 2, true), -1);
    /* shared memory not 64-byte aligned, or absent */
    assert_int_equal(cw_ring_attach_consumer(&r, (uint8_t *)sh + 16, CAP, 100, true), -1);
    assert_int_equal(cw_ring_attach_consumer(&r, NULL, CAP, 100, true), -1);
    /* a failed attach leaves a ring on which every operation is inert */
    uint32_t len;
    assert_null(cw_ring_reserve(&r, 10));
    assert_null(cw_ring_peek(&r, &len));
    assert_false(cw_ring_publish(&r));
    assert_false(cw_ring_consumer_publish(&r));
    assert_false(cw_ring_prepare_wait_data(&r));
    assert_false(cw_ring_prepare_wait_space(&r, 10));
    cw_ring_woken(&r);
    free(sh);
}

/* ---- data path ---- */

static void test_fifo_random_wrap(void **state)
{
    (void)state;
    struct pair x;
    pair_setup(&x, CAP, MAXREC);
    rng_state = 12345;
    uint32_t sent = 0, got = 0, bytes = 0;
    uint32_t lens[1024];
    uint32_t pads_seen = 0;
    /* Enough traffic to wrap the area hundreds of times. */
    while (got < 6000) {
        /* producer burst: random count, random sizes, until full */
        uint32_t burst = 1 + rng() % 8;
        for (uint32_t i = 0; i < burst && sent - got < 1024; i++) {
            uint32_t len = (rng() % 4 == 0) ? MAXREC : 1 + rng() % MAXREC;
            if (rng() % 16 == 0)
                len = 1;
            uint32_t head_before = x.p.head;
            uint8_t *d = cw_ring_reserve(&x.p, len);
            if (d == NULL)
                break;
            fill(d, len, sent);
            cw_ring_commit(&x.p, len);
            if (x.p.head - head_before > ((CW_RING_REC_HDR + len + 15u) & ~15u))
                pads_seen++;
            lens[sent % 1024] = len;
            sent++;
            bytes += len;
        }
        cw_ring_publish(&x.p);
        /* consumer: drain a random number */
        uint32_t take = 1 + rng() % 8;
        for (uint32_t i = 0; i < take && got < sent; i++) {
            uint32_t len = 0;
            const uint8_t *d = cw_ring_peek(&x.c, &len);
            assert_non_null(d);
            assert_int_equal(len, lens[got % 1024]);
            check(d, len, got);
            cw_ring_release(&x.c);
            got++;
        }
        cw_ring_consumer_publish(&x.c);
        assert_false(x.p.broken);
        assert_false(x.c.broken);
    }
    assert_true(bytes > 100u * CAP);
    assert_true(pads_seen > 100);
    /* drain what is left: exactly the sent records, then empty */
    while (got < sent) {
        recv1(&x, lens[got % 1024], got);
        got++;
    }
    uint32_t len;
    assert_null(cw_ring_peek(&x.c, &len));
    assert_false(x.c.broken);
    free(x.sh);
}

static void test_full_detection(void **state)
{
    (void)state;
    struct pair x;
    pair_setup(&x, CAP, MAXREC);
    /* 100-byte payload -> 112-byte records: 73 fit in 8192 (8176 bytes). */
    uint32_t n = 0;
    while (cw_ring_reserve(&x.p, 100) != NULL) {
        cw_ring_commit(&x.p, 100);
        n++;
        assert_true(n <= CAP / 112);
    }
    assert_int_equal(n, CAP / 112);
    assert_false(x.p.broken);
    /* 16 bytes left: a zero-length record (16 bytes) still fits, nothing more */
    assert_null(cw_ring_reserve(&x.p, 9));
    assert_non_null(cw_ring_reserve(&x.p, 8));
    cw_ring_commit(&x.p, 8);
    assert_null(cw_ring_reserve(&x.p, 0));
    /* nothing is visible before publish */
    uint32_t len;
    assert_null(cw_ring_peek(&x.c, &len));
    cw_ring_publish(&x.p);
    assert_int_equal(x.sh->prod, CAP);
    /* consuming without publishing frees nothing for the producer */
    assert_non_null(cw_ring_peek(&x.c, &len));
    cw_ring_release(&x.c);
    assert_null(cw_ring_reserve(&x.p, 1));
    cw_ring_consumer_publish(&x.c);
    /* now exactly one 112-byte record fits again (at the area's start) */
    assert_null(cw_ring_reserve(&x.p, 105));
    assert_non_null(cw_ring_reserve(&x.p, 100));
    assert_null(cw_ring_reserve(&x.p, MAXREC + 1)); /* too big: refused, not broken */
    assert_false(x.p.broken);
    free(x.sh);
}

static void test_pad_record(void **state)
{
    (void)state;
    struct pair x;
    pair_setup(&x, CAP, MAXREC);
    /* Move both indexes to offset 8000 (192 bytes to the end). */
    for (uint32_t i = 0; i < 4; i++) {
        send1(&x, 2000 - 8, i);
        cw_ring_publish(&x.p);
        recv1(&x, 2000 - 8, i);
        cw_ring_consumer_publish(&x.c);
    }
    /* 4 * 2000 = 8000 */
    assert_int_equal(x.p.head, 8000);
    /* a record of 184 + 8 = 192 bytes fits exactly: no pad */
    uint8_t *d = cw_ring_reserve(&x.p, 184);
    assert_ptr_equal(d, x.sh->data + 8000 + 8);
    /* a bigger one goes to offset 0 behind a PAD */
    d = cw_ring_reserve(&x.p, 300);
    assert_ptr_equal(d, x.sh->data + 8);
    fill(d, 300, 77);
    cw_ring_commit(&x.p, 250); /* commit less than reserved: stays at 0 */
    uint32_t h[2];
    memcpy(h, x.sh->data + 8000, 8);
    assert_int_equal(h[0], 192 - 8);
    assert_int_equal(h[1], CW_RING_REC_PAD);
    memcpy(h, x.sh->data, 8);
    assert_int_equal(h[0], 250);
    assert_int_equal(h[1], CW_RING_REC_FRAME);
    assert_int_equal(x.p.head, 8192 + 272); /* 8 + 250 -> 272 */
    cw_ring_publish(&x.p);
    /* the consumer skips the PAD transparently */
    recv1(&x, 250, 77);
    uint32_t len;
    assert_null(cw_ring_peek(&x.c, &len));
    cw_ring_consumer_publish(&x.c);
    assert_int_equal(x.sh->cons, 8192 + 272);
    free(x.sh);
}

static void test_commit_misuse(void **state)
{
    (void)state;
    struct pair x;
    pair_setup(&x, CAP, MAXREC);
    cw_ring_commit(&x.p, 10); /* no reservation: ignored */
    assert_int_equal(x.p.head, 0);
    assert_false(x.p.broken);
    assert_non_null(cw_ring_reserve(&x.p, 10));
    cw_ring_commit(&x.p, 11); /* more than reserved: refused */
    assert_true(x.p.broken);
    assert_false(cw_ring_publish(&x.p));
    assert_int_equal(x.sh->prod, 0);
    /* the consumer's release without a peek does nothing */
    cw_ring_release(&x.c);
    assert_int_equal(x.c.head, 0);
    free(x.sh);
}

/* ---- notification protocol ---- */

static void test_notify_data(void **state)
{
    (void)state;
    struct pair x;
    pair_setup(&x, CAP, MAXREC);
    /* nobody asked: publish does not request a signal */
    send1(&x, 10, 0);
    assert_false(cw_ring_publish(&x.p));
    /* data present: prepare_wait_data says "don't sleep" and leaves no flag */
    assert_true(cw_ring_prepare_wait_data(&x.c));
    assert_int_equal(x.sh->cons_wants_data, 0);
    recv1(&x, 10, 0);
    cw_ring_consumer_publish(&x.c);
    /* empty: flag armed, sleep */
    assert_false(cw_ring_prepare_wait_data(&x.c));
    assert_int_equal(x.sh->cons_wants_data, 1);
    /* publish with nothing committed: no signal */
    assert_false(cw_ring_publish(&x.p));
    /* a real publish sees the flag */
    send1(&x, 20, 1);
    assert_true(cw_ring_publish(&x.p));
    send1(&x, 20, 2);
    assert_true(cw_ring_publish(&x.p)); /* still asleep as far as we know */
    cw_ring_woken(&x.c);
    assert_int_equal(x.sh->cons_wants_data, 0);
    send1(&x, 20, 3);
    assert_false(cw_ring_publish(&x.p));
    recv1(&x, 20, 1);
    recv1(&x, 20, 2);
    recv1(&x, 20, 3);
    /* released but not published, nothing left: sleep is right */
    assert_false(cw_ring_prepare_wait_data(&x.c));
    free(x.sh);
}

static void test_notify_space(void **state)
{
    (void)state;
    struct pair x;
    pair_setup(&x, CAP, MAXREC);
    /* room available: no sleep, no flag */
    assert_true(cw_ring_prepare_wait_space(&x.p, MAXREC));
    assert_int_equal(x.sh->prod_wants_space, 0);
    /* nobody asked: consumer publish requests no signal */
    send1(&x, 10, 0);
    cw_ring_publish(&x.p);
    recv1(&x, 10, 0);
    assert_false(cw_ring_consumer_publish(&x.c));
    /* fill up */
    uint32_t n = 0;
    while (cw_ring_reserve(&x.p, 1000) != NULL) {
        cw_ring_commit(&x.p, 1000);
        n++;
    }
    /* head = 32 + 8 * 1008 = 8096: 96 bytes to the end, 128 free in all */
    assert_int_equal(n, 8);
    cw_ring_publish(&x.p);
    assert_true(cw_ring_prepare_wait_space(&x.p, 88)); /* 96: fits before the end */
    assert_int_equal(x.sh->prod_wants_space, 0);
    /* 112 bytes would need a 96-byte PAD first: 208 > 128 */
    assert_false(cw_ring_prepare_wait_space(&x.p, 100));
    cw_ring_woken(&x.p);
    assert_false(cw_ring_prepare_wait_space(&x.p, 1000));
    assert_int_equal(x.sh->prod_wants_space, 1);
    /* woken with no space yet: the next prepare re-arms the flag */
    cw_ring_woken(&x.p);
    assert_int_equal(x.sh->prod_wants_space, 0);
    assert_false(cw_ring_prepare_wait_space(&x.p, 1000));
    assert_int_equal(x.sh->prod_wants_space, 1);
    free(x.sh);
}

static void test_notify_space_signal(void **state)
{
    (void)state;
    struct pair x;
    pair_setup(&x, CAP, MAXREC);
    uint32_t n = 0;
    while (cw_ring_reserve(&x.p, 1000) != NULL)
        send1(&x, 1000, n++);
    cw_ring_publish(&x.p);
    assert_false(cw_ring_prepare_wait_space(&x.p, 1000));
    assert_int_equal(x.sh->prod_wants_space, 1);
    recv1(&x, 1000, 0);
    assert_true(cw_ring_consumer_publish(&x.c));
    /* nothing newly released: no second signal */
    assert_false(cw_ring_consumer_publish(&x.c));
    cw_ring_woken(&x.p);
    assert_int_equal(x.sh->prod_wants_space, 0);
    recv1(&x, 1000, 1);
    assert_false(cw_ring_consumer_publish(&x.c));
    /* woken producer finds room */
    assert_non_null(cw_ring_reserve(&x.p, 1000));
    free(x.sh);
}

/* ---- hostile peers ---- */

/* A consumer with one legitimately consumed record, so its head is not 0. */
static void consumer_advanced(struct pair *x)
{
    pair_setup(x, CAP, MAXREC);
    send1(x, 40, 0);
    send1(x, 40, 1);
    cw_ring_publish(&x->p);
    recv1(x, 40, 0);
    cw_ring_consumer_publish(&x->c); /* cons = 48 */
    recv1(x, 40, 1);                 /* head = 96, pending 48 */
}

static void assert_consumer_dead(struct pair *x)
{
    uint32_t len = 0xdead;
    assert_true(x->c.broken);
    uint32_t cons = x->sh->cons, flag = x->sh->cons_wants_data;
    assert_null(cw_ring_peek(&x->c, &len));
    assert_int_equal(len, 0xdead);
    cw_ring_release(&x->c);
    assert_false(cw_ring_consumer_publish(&x->c));
    assert_false(cw_ring_prepare_wait_data(&x->c));
    cw_ring_woken(&x->c);
    /* nothing written to shared memory any more */
    assert_int_equal(x->sh->cons, cons);
    assert_int_equal(x->sh->cons_wants_data, flag);
    free(x->sh);
}

/* Fresh ring whose consumer has consumed and published `at` bytes. */
static void consumer_at(struct pair *x, uint32_t at)
{
    pair_setup(x, CAP, MAXREC);
    x->c.head = at;
    x->c.peer_seen = at; /* everything before `at` was published and read */
    x->sh->cons = at;
}

/* The producer has used the room it last saw: its next reserve must read
 * the shared cons (which the tests below make hostile). */
static void producer_needs_cons(struct pair *x)
{
    x->p.peer_seen = x->p.head - CAP;
}

static void put_hdr(struct pair *x, uint32_t off, uint32_t len, uint32_t type)
{
    uint32_t h[2] = { len, type };
    memcpy(x->sh->data + off, h, 8);
}

static void test_hostile_prod_far_ahead(void **state)
{
    (void)state;
    struct pair x;
    consumer_advanced(&x);
    x.sh->prod = 48 + CAP + 16; /* more than capacity beyond the published cons */
    uint32_t len;
    assert_null(cw_ring_peek(&x.c, &len));
    assert_consumer_dead(&x);

    consumer_advanced(&x);
    x.sh->prod = 48 + CAP; /* exactly capacity: allowed index, but the */
    put_hdr(&x, 96, 40, CW_RING_REC_FRAME); /* records must still parse */
    assert_non_null(cw_ring_peek(&x.c, &len));
    assert_false(x.c.broken);
    free(x.sh);
}

static void test_hostile_prod_behind(void **state)
{
    (void)state;
    struct pair x;
    uint32_t len;
    consumer_advanced(&x);
    x.sh->prod = 32; /* behind the published cons (48) */
    assert_null(cw_ring_peek(&x.c, &len));
    assert_consumer_dead(&x);

    consumer_advanced(&x);
    x.sh->prod = 64; /* behind what we consumed privately (96) */
    put_hdr(&x, 96, 0, CW_RING_REC_FRAME); /* a record the lie would expose */
    /* prepare_wait sees a changed prod and refuses to sleep; the peek it
     * leads to finds the lie */
    assert_true(cw_ring_prepare_wait_data(&x.c));
    assert_null(cw_ring_peek(&x.c, &len));
    assert_consumer_dead(&x);

    consumer_advanced(&x);
    put_hdr(&x, 96, 40, CW_RING_REC_FRAME);
    x.sh->prod = 96 + 48 + 8; /* misaligned, though the record is covered */
    assert_null(cw_ring_peek(&x.c, &len));
    assert_consumer_dead(&x);
}

static void test_hostile_record_len(void **state)
{
    (void)state;
    struct pair x;
    uint32_t len;
    /* len > max_record, even though the index covers it */
    consumer_advanced(&x);
    put_hdr(&x, 96, MAXREC + 1, CW_RING_REC_FRAME);
    x.sh->prod = 48 + CAP;
    assert_null(cw_ring_peek(&x.c, &len));
    assert_consumer_dead(&x);

    /* huge len (would overflow a naive rec computation) */
    consumer_advanced(&x);
    put_hdr(&x, 96, UINT32_MAX - 4, CW_RING_REC_FRAME);
    x.sh->prod = 48 + CAP;
    assert_null(cw_ring_peek(&x.c, &len));
    assert_consumer_dead(&x);

    /* len beyond the published bytes */
    consumer_advanced(&x);
    put_hdr(&x, 96, 100, CW_RING_REC_FRAME);
    x.sh->prod = 96 + 64;
    assert_null(cw_ring_peek(&x.c, &len));
    assert_consumer_dead(&x);

    /* record crossing the end of the area */
    consumer_at(&x, CAP - 32);
    put_hdr(&x, CAP - 32, 200, CW_RING_REC_FRAME);
    x.sh->prod = CAP - 32 + 512;
    assert_null(cw_ring_peek(&x.c, &len));
    assert_consumer_dead(&x);
}

static void test_hostile_type(void **state)
{
    (void)state;
    struct pair x;
    uint32_t len;
    consumer_advanced(&x);
    put_hdr(&x, 96, 40, 7);
    x.sh->prod = 96 + 48;
    assert_null(cw_ring_peek(&x.c, &len));
    assert_consumer_dead(&x);

    consumer_advanced(&x);
    put_hdr(&x, 96, 40, 0);
    x.sh->prod = 96 + 48;
    assert_null(cw_ring_peek(&x.c, &len));
    assert_consumer_dead(&x);
}

static void test_hostile_pad(void **state)
{
    (void)state;
    struct pair x;
    uint32_t len;
    /* PAD longer than the rest of the area */
    consumer_at(&x, CAP - 64);
    put_hdr(&x, CAP - 64, 64, CW_RING_REC_PAD);
    put_hdr(&x, 0, 5, CW_RING_REC_FRAME);
    x.sh->prod = CAP + 64;
    assert_null(cw_ring_peek(&x.c, &len));
    assert_consumer_dead(&x);

    /* PAD shorter than the rest (would leave us mid-area, misparsing) */
    consumer_at(&x, CAP - 64);
    put_hdr(&x, CAP - 64, 16 - 8, CW_RING_REC_PAD);
    put_hdr(&x, CAP - 48, 5, CW_RING_REC_FRAME);
    put_hdr(&x, 0, 5, CW_RING_REC_FRAME);
    x.sh->prod = CAP + 64;
    assert_null(cw_ring_peek(&x.c, &len));
    assert_consumer_dead(&x);

    /* PAD at offset 0 covering a full, published area (the producer never
     * needs one there; accepting it would let a peer spin us around) */
    consumer_at(&x, CAP); /* offset 0 */
    put_hdr(&x, 0, CAP - 8, CW_RING_REC_PAD);
    x.sh->prod = 2 * CAP;
    assert_null(cw_ring_peek(&x.c, &len));
    assert_consumer_dead(&x);

    /* PAD not fully published */
    consumer_at(&x, CAP - 64);
    put_hdr(&x, CAP - 64, 64 - 8, CW_RING_REC_PAD);
    put_hdr(&x, 0, 5, CW_RING_REC_FRAME);
    x.sh->prod = CAP - 32;
    assert_null(cw_ring_peek(&x.c, &len));
    assert_consumer_dead(&x);

    /* a well-formed PAD followed by a second PAD at 0 */
    consumer_at(&x, CAP - 64);
    put_hdr(&x, CAP - 64, 64 - 8, CW_RING_REC_PAD);
    put_hdr(&x, 0, CAP - 8, CW_RING_REC_PAD);
    x.sh->prod = CAP + 64;
    assert_null(cw_ring_peek(&x.c, &len));
    assert_consumer_dead(&x);

    /* and the valid case, as control */
    consumer_at(&x, CAP - 64);
    put_hdr(&x, CAP - 64, 64 - 8, CW_RING_REC_PAD);
    put_hdr(&x, 0, 5, CW_RING_REC_FRAME);
    x.sh->prod = CAP + 16;
    const uint8_t *d = cw_ring_peek(&x.c, &len);
    assert_ptr_equal(d, x.sh->data + 8);
    assert_int_equal(len, 5);
    assert_false(x.c.broken);
    free(x.sh);
}

static void assert_producer_dead(struct pair *x)
{
    assert_true(x->p.broken);
    uint32_t prod = x->sh->prod, flag = x->sh->prod_wants_space;
    assert_null(cw_ring_reserve(&x->p, 1));
    cw_ring_commit(&x->p, 1);
    assert_false(cw_ring_publish(&x->p));
    assert_false(cw_ring_prepare_wait_space(&x->p, 1));
    cw_ring_woken(&x->p);
    assert_int_equal(x->sh->prod, prod);
    assert_int_equal(x->sh->prod_wants_space, flag);
    free(x->sh);
}

static void test_hostile_cons(void **state)
{
    (void)state;
    struct pair x;
    /* misaligned cons */
    consumer_advanced(&x);
    x.sh->cons = 8;
    producer_needs_cons(&x);
    assert_null(cw_ring_reserve(&x.p, 10));
    assert_producer_dead(&x);

    /* cons ahead of what was published */
    consumer_advanced(&x);
    x.sh->cons = 96 + 16;
    producer_needs_cons(&x);
    assert_null(cw_ring_reserve(&x.p, 10));
    assert_producer_dead(&x);

    /* cons ahead of published prod, but within committed-unpublished bytes:
     * a consumer cannot have seen those */
    consumer_advanced(&x);
    send1(&x, 40, 2); /* head 144, published 96 */
    x.sh->cons = 96 + 48;
    producer_needs_cons(&x);
    assert_null(cw_ring_reserve(&x.p, 10));
    assert_producer_dead(&x);

    /* cons far behind (more than capacity) */
    consumer_advanced(&x);
    x.sh->cons = 96 - CAP - 16;
    producer_needs_cons(&x);
    assert_false(cw_ring_prepare_wait_space(&x.p, 10));
    assert_producer_dead(&x);

    /* cons within capacity of the published prod, but more than capacity
     * behind our committed head: the room computation would wrap */
    consumer_advanced(&x);
    send1(&x, 40, 2); /* head 144, published 96 */
    x.sh->cons = 144 - CAP - 16;
    producer_needs_cons(&x);
    assert_null(cw_ring_reserve(&x.p, 10));
    assert_producer_dead(&x);

    /* cons moved backwards but within range: less room, not broken */
    consumer_advanced(&x);
    x.sh->cons = 0;
    producer_needs_cons(&x);
    assert_non_null(cw_ring_reserve(&x.p, 10));
    assert_false(x.p.broken);
    free(x.sh);
}

/* The peer's index is read once per burst, not per record: a value the
 * peer writes while the cached one still suffices is not looked at, and a
 * lie is caught as soon as it is needed. */
static void test_peer_index_read_when_needed(void **state)
{
    (void)state;
    struct pair x;
    uint32_t len;
    pair_setup(&x, CAP, MAXREC);
    send1(&x, 40, 0);
    send1(&x, 40, 1);
    cw_ring_publish(&x.p);
    recv1(&x, 40, 0);           /* reads prod: both records */
    x.sh->prod = 8;             /* now a lie (misaligned) */
    recv1(&x, 40, 1);           /* from the cached prod */
    assert_false(x.c.broken);
    assert_null(cw_ring_peek(&x.c, &len)); /* used up: reads the lie */
    assert_true(x.c.broken);
    free(x.sh);

    pair_setup(&x, CAP, MAXREC);
    x.sh->cons = 8;             /* a lie the producer has no need to read */
    uint32_t sent = 0;
    while (cw_ring_reserve(&x.p, MAXREC) != NULL) {
        cw_ring_commit(&x.p, MAXREC);
        sent++;
    }
    assert_true(sent >= 1);     /* the first capacity went by the cache */
    assert_true(x.p.broken);    /* then it needed cons, and cons lied */
    free(x.sh);
}

/* ---- real concurrency ---- */

#define MT_RECORDS 40000u
#define MT_CAP 4096u
#define MT_MAX 1000u

static struct cw_ring mt_p, mt_c;

static void *mt_producer(void *arg)
{
    (void)arg;
    uint32_t seed = 99;
    for (uint32_t seq = 0; seq < MT_RECORDS;) {
        seed = seed * 1664525u + 1013904223u;
        uint32_t len = 4 + (seed >> 8) % (MT_MAX - 4);
        uint8_t *d;
        while ((d = cw_ring_reserve(&mt_p, len)) == NULL) {
            if (mt_p.broken)
                return (void *)1;
            cw_ring_publish(&mt_p);
            sched_yield();
        }
        memcpy(d, &seq, 4);
        fill(d + 4, len - 4, seq);
        cw_ring_commit(&mt_p, len);
        if (++seq % 4 == 0)
            cw_ring_publish(&mt_p);
    }
    cw_ring_publish(&mt_p);
    return NULL;
}

static void test_two_threads(void **state)
{
    (void)state;
    struct cw_ring_shared *sh = alloc_shared(MT_CAP);
    assert_int_equal(cw_ring_attach_producer(&mt_p, sh, MT_CAP, MT_MAX, true), 0);
    assert_int_equal(cw_ring_attach_consumer(&mt_c, sh, MT_CAP, MT_MAX, false), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, mt_producer, NULL), 0);
    uint32_t seed = 99;
    for (uint32_t seq = 0; seq < MT_RECORDS; seq++) {
        seed = seed * 1664525u + 1013904223u;
        uint32_t want = 4 + (seed >> 8) % (MT_MAX - 4);
        uint32_t len;
        const uint8_t *d;
        while ((d = cw_ring_peek(&mt_c, &len)) == NULL) {
            assert_false(mt_c.broken);
            cw_ring_consumer_publish(&mt_c);
            sched_yield();
        }
        assert_int_equal(len, want);
        uint32_t s;
        memcpy(&s, d, 4);
        assert_int_equal(s, seq);
        check(d + 4, len - 4, seq);
        cw_ring_release(&mt_c);
        if (seq % 3 == 0)
            cw_ring_consumer_publish(&mt_c);
    }
    void *ret;
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_null(ret);
    uint32_t len;
    assert_null(cw_ring_peek(&mt_c, &len));
    assert_false(mt_c.broken);
    free(sh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attach_limits),
        cmocka_unit_test(test_fifo_random_wrap),
        cmocka_unit_test(test_full_detection),
        cmocka_unit_test(test_pad_record),
        cmocka_unit_test(test_commit_misuse),
        cmocka_unit_test(test_notify_data),
        cmocka_unit_test(test_notify_space),
        cmocka_unit_test(test_notify_space_signal),
        cmocka_unit_test(test_hostile_prod_far_ahead),
        cmocka_unit_test(test_hostile_prod_behind),
        cmocka_unit_test(test_hostile_record_len),
        cmocka_unit_test(test_hostile_type),
        cmocka_unit_test(test_hostile_pad),
        cmocka_unit_test(test_hostile_cons),
        cmocka_unit_test(test_peer_index_read_when_needed),
        cmocka_unit_test(test_two_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
