/* Unit tests for the software offload fallbacks (src/core/offload.c).
 *
 * Frames are built here the way Linux hands them to virtio-net: full IPv4
 * header checksum, TCP checksum field holding the folded pseudo-header sum
 * (CHECKSUM_PARTIAL), IP lengths covering the whole GSO payload. Everything
 * the code under test produces is checked against a separate, deliberately
 * naive reference checksum written in this file, never against the
 * cw_csum_* helpers themselves. Hostile frames are copied into heap buffers
 * of exactly their length so AddressSanitizer catches any read past len. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/offload.h"

/* ---- reference helpers (independent of the code under test) ---- */

static uint32_t ref_sum(uint32_t s, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s += (i % 2 == 0) ? (uint32_t)p[i] << 8 : p[i];
    return s;
}

static uint16_t ref_fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xFFFF) + (s >> 16);
    return (uint16_t)s;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void wr32(uint8_t *p, uint32_t v)
{
    wr16(p, (uint16_t)(v >> 16));
    wr16(p + 2, (uint16_t)v);
}

/* Pseudo-header sum (unfolded) for TCP over the IP header at ip. */
static uint32_t ref_pseudo(const uint8_t *ip, int v6, uint32_t tcp_len)
{
    uint32_t s;
    if (v6) {
        s = ref_sum(0, ip + 8, 32);
        s += (tcp_len >> 16) + (tcp_len & 0xFFFF) + 6;
    } else {
        s = ref_sum(0, ip + 12, 8);
        s += tcp_len + 6;
    }
    return s;
}

/* A TCP segment (header + data) whose checksum field is correct sums, with
 * the pseudo-header, to 0xFFFF. */
static int tcp_csum_ok(const uint8_t *ip, int v6, const uint8_t *tcp, uint32_t tcp_len)
{
    return ref_fold(ref_sum(ref_pseudo(ip, v6, tcp_len), tcp, tcp_len)) == 0xFFFF;
}

static int ipv4_csum_ok(const uint8_t *ip)
{
    return ref_fold(ref_sum(0, ip, (size_t)(ip[0] & 0xF) * 4)) == 0xFFFF;
}

/* ---- frame builder ---- */

struct fopts {
    int v6;
    int vlan;
    uint32_t ip_opt;  /* IPv4 option bytes, multiple of 4 */
    uint32_t tcp_opt; /* TCP option bytes, multiple of 4 */
    uint32_t payload;
    uint32_t pad;     /* Ethernet padding after the IP datagram */
    uint32_t seq;
    uint16_t id;
    uint8_t flags;
    uint16_t frag;    /* IPv4 flags+fragment offset field */
};

struct layout {
    uint32_t l3, l4, hlen, len;
};

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_ECE 0x40
#define TCP_CWR 0x80

static uint8_t pattern(uint32_t i) { return (uint8_t)(i * 131u + (i >> 9) * 7u + 11u); }

/* Build a frame as Linux would pass it with NEEDS_CSUM (+ GSO): returns its
 * length, the layout in *lo. buf must be large enough. */
static uint32_t build(uint8_t *buf, const struct fopts *o, struct layout *lo)
{
    static const uint8_t dmac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    static const uint8_t smac[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
    uint32_t p = 0;

    memcpy(buf, dmac, 6);
    memcpy(buf + 6, smac, 6);
    p = 12;
    if (o->vlan) {
        wr16(buf + p, 0x8100);
        wr16(buf + p + 2, 0x2064); /* PCP 1, VID 100 */
        p += 4;
    }
    wr16(buf + p, o->v6 ? 0x86DD : 0x0800);
    p += 2;
    lo->l3 = p;

    uint32_t tcp_hlen = 20 + o->tcp_opt;
    uint32_t tcp_len = tcp_hlen + o->payload;
    uint8_t *ip = buf + p;
    if (o->v6) {
        memset(ip, 0, 40);
        ip[0] = 0x60;
        ip[1] = 0x0b; /* traffic class bits, just to have non-zero fields */
        ip[3] = 0x42; /* flow label */
        wr16(ip + 4, (uint16_t)tcp_len);
        ip[6] = 6;
        ip[7] = 64;
        for (int i = 0; i < 16; i++) {
            ip[8 + i] = (uint8_t)(0xfd + i * 3);
            ip[24 + i] = (uint8_t)(0x20 + i * 5);
        }
        p += 40;
    } else {
        uint32_t ihl = 20 + o->ip_opt;
        memset(ip, 0, ihl);
        ip[0] = (uint8_t)(0x40 | (ihl / 4));
        ip[1] = 0x02; /* ECT(0) */
        wr16(ip + 2, (uint16_t)(ihl + tcp_len));
        wr16(ip + 4, o->id);
        wr16(ip + 6, o->frag);
        ip[8] = 64;
        ip[9] = 6;
        ip[12] = 10; ip[13] = 0; ip[14] = 0; ip[15] = 1;
        ip[16] = 192; ip[17] = 168; ip[18] = 77; ip[19] = 250;
        for (uint32_t i = 0; i < o->ip_opt; i++)
            ip[20 + i] = 1; /* NOP options */
        wr16(ip + 10, (uint16_t)~ref_fold(ref_sum(0, ip, ihl)));
        p += ihl;
    }
    lo->l4 = p;
    uint8_t *tcp = buf + p;
    memset(tcp, 0, tcp_hlen);
    wr16(tcp, 45678);
    wr16(tcp + 2, 5201);
    wr32(tcp + 4, o->seq);
    wr32(tcp + 8, 0x01020304);
    tcp[12] = (uint8_t)((tcp_hlen / 4) << 4);
    tcp[13] = o->flags;
    wr16(tcp + 14, 64240);
    for (uint32_t i = 0; i < o->tcp_opt; i++)
        tcp[20 + i] = (i + 1 == o->tcp_opt) ? 0 : 1; /* NOPs then EOL */
    p += tcp_hlen;
    lo->hlen = p;
    for (uint32_t i = 0; i < o->payload; i++)
        buf[p + i] = pattern(i);
    p += o->payload;
    /* Linux CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum. */
    wr16(tcp + 16, ref_fold(ref_pseudo(ip, o->v6, tcp_len)));
    for (uint32_t i = 0; i < o->pad; i++)
        buf[p + i] = 0xA5; /* padding that must never reach a segment */
    p += o->pad;
    lo->len = p;
    return p;
}

static struct virtio_net_hdr gso_hdr(const struct fopts *o, const struct layout *lo, uint16_t mss)
{
    struct virtio_net_hdr h = {
        .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
        .gso_type = o->v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4,
        .hdr_len = (uint16_t)lo->hlen,
        .gso_size = mss,
        .csum_start = (uint16_t)lo->l4,
        .csum_offset = 16,
    };
    return h;
}

/* Heap copy of exactly n bytes (n may be 0), so ASan flags any over-read. */
static uint8_t *exact_copy(const uint8_t *src, uint32_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    assert_non_null(b);
    if (n)
        memcpy(b, src, n);
    return b;
}

/* ---- checksum helpers ---- */

static void test_csum_helpers(void **state)
{
    (void)state;
    /* RFC 1071 section 3 example: the sum of these words is 0xddf2. */
    static const uint8_t v[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    assert_int_equal(cw_csum_fold(cw_csum_add(0, v, sizeof v)), 0xddf2);
    /* Odd length: the last byte counts as the high byte of a padded word. */
    static const uint8_t odd[] = {0x12, 0x34, 0x56};
    assert_int_equal(cw_csum_fold(cw_csum_add(0, odd, 3)), 0x1234 + 0x5600);
    assert_int_equal(cw_csum_fold(cw_csum_add(0, odd, 0)), 0);
    /* Carries wrap around: 0xFFFF + 0x0001 -> 0x0001. */
    static const uint8_t carry[] = {0xff, 0xff, 0x00, 0x01};
    assert_int_equal(cw_csum_fold(cw_csum_add(0, carry, 4)), 0x0001);
    /* An initial sum is folded in, including one with the top bits set. */
    assert_int_equal(cw_csum_fold(cw_csum_add(0xFFFFFFFFu, v, sizeof v)),
                     ref_fold(ref_fold(0xFFFFFFFFu) + 0xddf2));

    /* Large buffers of every length near a word/step boundary agree with the
     * naive reference, whole or chained in even-sized pieces. */
    enum { N = 70001 };
    uint8_t *big = malloc(N);
    assert_non_null(big);
    for (uint32_t i = 0; i < N; i++)
        big[i] = (i % 5 == 0) ? 0xFF : pattern(i);
    for (uint32_t n = N - 17; n <= N; n++) {
        uint16_t want = ref_fold(ref_sum(0, big, n));
        assert_int_equal(cw_csum_fold(cw_csum_add(0, big, n)), want);
        uint32_t s = cw_csum_add(0, big, 1000);
        s = cw_csum_add(s, big + 1000, 30002);
        s = cw_csum_add(s, big + 31002, n - 31002);
        assert_int_equal(cw_csum_fold(s), want);
    }
    /* All ones: 0xFFFF is ones' complement zero, so the odd tail 0xFF00 is
     * what remains; an even length sums to 0xFFFF itself. */
    /* Any start address (no alignment assumed) and short lengths. */
    for (uint32_t a = 0; a < 8; a++)
        for (uint32_t n = 0; n < 40; n++)
            assert_int_equal(cw_csum_fold(cw_csum_add(0x1234, big + a, n)),
                             ref_fold(ref_sum(0x1234, big + a, n)));
    memset(big, 0xFF, N);
    assert_int_equal(cw_csum_fold(cw_csum_add(0, big, N)), 0xFF00);
    assert_int_equal(cw_csum_fold(cw_csum_add(0, big, N - 1)), 0xFFFF);
    free(big);
}

/* ---- finish_csum ---- */

static void check_finish(const struct fopts *o)
{
    static uint8_t buf[70000];
    struct layout lo;
    uint32_t len = build(buf, o, &lo);
    uint8_t *f = exact_copy(buf, len);
    uint32_t tcp_len = len - o->pad - lo.l4;

    assert_false(tcp_csum_ok(f + lo.l3, o->v6, f + lo.l4, tcp_len));
    /* Linux's csum_start is the TCP header; csum_offset 16 is th->check. The
     * sum runs to the end of the buffer, so padding would be summed too: the
     * callers pass frames without it, as here. */
    assert_int_equal(o->pad, 0);
    assert_int_equal(cw_offload_finish_csum(f, len, (uint16_t)lo.l4, 16), 0);
    assert_true(tcp_csum_ok(f + lo.l3, o->v6, f + lo.l4, tcp_len));

    /* The exact value equals the reference's complete checksum (no 0 case
     * in these frames), and nothing but the two checksum bytes changed. */
    uint8_t *r = exact_copy(buf, len);
    wr16(r + lo.l4 + 16, 0);
    uint16_t want = (uint16_t)~ref_fold(ref_sum(ref_pseudo(r + lo.l3, o->v6, tcp_len),
                                                r + lo.l4, tcp_len));
    assert_int_equal(rd16(f + lo.l4 + 16), want);
    wr16(r + lo.l4 + 16, want);
    assert_memory_equal(f, r, len);
    if (!o->v6)
        assert_true(ipv4_csum_ok(f + lo.l3));
    free(r);
    free(f);
}

static void test_finish_csum_ipv4(void **state)
{
    (void)state;
    struct fopts o = {.payload = 1000, .seq = 7, .id = 1, .flags = TCP_ACK | TCP_PSH};
    check_finish(&o);
    o.payload = 999; /* odd length exercises the padded last byte */
    check_finish(&o);
    o.payload = 0;
    check_finish(&o);
    o.vlan = 1;
    o.ip_opt = 8;
    o.tcp_opt = 12;
    o.payload = 1449;
    check_finish(&o);
}

static void test_finish_csum_ipv6(void **state)
{
    (void)state;
    struct fopts o = {.v6 = 1, .payload = 1440, .seq = 0xdeadbeef, .flags = TCP_ACK};
    check_finish(&o);
    o.vlan = 1;
    o.tcp_opt = 12;
    o.payload = 65000; /* near the largest IPv6 payload */
    check_finish(&o);
}

static void test_finish_csum_zero_result(void **state)
{
    (void)state;
    /* Data summing to 0xFFFF complements to 0: sent as 0xFFFF, which is the
     * same ones' complement value and is what UDP requires. */
    uint8_t f[8] = {0xAB, 0xCD, 0xFF, 0x00, 0x00, 0xFF, 0x00, 0x00};
    assert_int_equal(cw_offload_finish_csum(f, 8, 2, 4), 0);
    assert_int_equal(rd16(f + 6), 0xFFFF);
    assert_int_equal(f[0], 0xAB);
    assert_int_equal(f[1], 0xCD);
    /* All zero data: complement of 0 is 0xFFFF as well. */
    uint8_t z[4] = {0};
    assert_int_equal(cw_offload_finish_csum(z, 4, 0, 2), 0);
    assert_int_equal(rd16(z + 2), 0xFFFF);
    /* Ordinary case: a seeded field is included in the sum. */
    uint8_t s[6] = {0x12, 0x34, 0x00, 0x01, 0x00, 0x00};
    assert_int_equal(cw_offload_finish_csum(s, 6, 0, 4), 0);
    assert_int_equal(rd16(s + 4), (uint16_t)~(0x1234 + 1));
}

static void test_finish_csum_bounds(void **state)
{
    (void)state;
    uint8_t ref[64];
    for (int i = 0; i < 64; i++)
        ref[i] = (uint8_t)(i * 3 + 1);

    struct { uint32_t len; uint16_t start, off; int ok; } cases[] = {
        {64, 62, 0, 1},     /* field is the last two bytes */
        {64, 0, 62, 1},
        {64, 63, 0, -1},    /* field would straddle the end */
        {64, 0, 63, -1},
        {64, 64, 0, -1},    /* start at the end: no room for the field */
        {64, 65, 0, -1},    /* start beyond the frame */
        {64, 40, 30, -1},
        {64, 0xFFFF, 0xFFFF, -1},
        {64, 1, 0xFFFF, -1},
        {64, 0xFFFF, 1, -1},
        {2, 0, 0, 1},
        {1, 0, 0, -1},
        {0, 0, 0, -1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t *f = exact_copy(ref, cases[c].len);
        int rc = cw_offload_finish_csum(f, cases[c].len, cases[c].start, cases[c].off);
        if (cases[c].ok == 1) {
            assert_int_equal(rc, 0);
            /* The stored value completes the sum of the original range (the
             * seeded field included), exactly as a receiver that re-adds the
             * pseudo-header would check it. */
            uint32_t field = (uint32_t)cases[c].start + cases[c].off;
            uint32_t n = cases[c].len - cases[c].start;
            assert_int_equal(ref_fold(ref_sum(0, ref + cases[c].start, n) + rd16(f + field)),
                             0xFFFF);
            assert_memory_equal(f, ref, field);
            assert_memory_equal(f + field + 2, ref + field + 2, cases[c].len - field - 2);
        } else {
            assert_int_equal(rc, -1);
            if (cases[c].len)
                assert_memory_equal(f, ref, cases[c].len); /* untouched */
        }
        free(f);
    }
    assert_int_equal(cw_offload_finish_csum(NULL, 64, 0, 0), -1);
}

/* ---- segmentation ---- */

struct collector {
    const struct fopts *o;
    const struct layout *lo;
    const uint8_t *orig;   /* the original frame */
    uint32_t mss;
    uint32_t expect_segs;  /* total segments the frame should yield */
    uint32_t seg_buf_len;
    uint32_t count;
    uint32_t bytes;        /* payload bytes seen so far */
    uint8_t *payload;      /* concatenated payload */
    uint32_t stop_at;      /* return stop_rc from this call (1-based); 0: never */
    int stop_rc;
};

/* Check one emitted segment completely; cmocka asserts fail the test. */
static int collect(void *ctx, const uint8_t *seg, uint32_t len)
{
    struct collector *c = ctx;
    const struct fopts *o = c->o;
    const struct layout *lo = c->lo;
    uint32_t i = c->count;
    uint32_t hlen = lo->hlen;
    int first = (i == 0);
    int last = (i + 1 == c->expect_segs);

    assert_true(i < c->expect_segs);
    assert_true(len >= hlen);
    assert_true(len <= c->seg_buf_len);
    uint32_t n = len - hlen;
    assert_true(n <= c->mss);
    if (!last)
        assert_int_equal(n, c->mss);
    else
        assert_int_equal(n, o->payload - c->mss * i);

    /* Link layer (and VLAN tag) untouched. */
    assert_memory_equal(seg, c->orig, lo->l3);
    const uint8_t *ip = seg + lo->l3;
    const uint8_t *oip = c->orig + lo->l3;
    uint32_t tcp_len = len - lo->l4;
    if (o->v6) {
        assert_int_equal(rd16(ip + 4), tcp_len);
        assert_memory_equal(ip, oip, 4);
        assert_memory_equal(ip + 6, oip + 6, 34);
    } else {
        uint32_t ihl = lo->l4 - lo->l3;
        assert_int_equal(rd16(ip + 2), len - lo->l3);
        assert_int_equal(rd16(ip + 4), (uint16_t)(o->id + i));
        assert_true(ipv4_csum_ok(ip));
        assert_memory_equal(ip, oip, 2);
        assert_memory_equal(ip + 6, oip + 6, 4);
        assert_memory_equal(ip + 12, oip + 12, ihl - 12);
    }
    const uint8_t *tcp = seg + lo->l4;
    const uint8_t *otcp = c->orig + lo->l4;
    assert_memory_equal(tcp, otcp, 4);                      /* ports */
    assert_int_equal(rd32(tcp + 4), (uint32_t)(o->seq + c->mss * i));
    assert_memory_equal(tcp + 8, otcp + 8, 5);              /* ack, doff */
    uint8_t want = o->flags;
    if (!last)
        want &= (uint8_t)~(TCP_FIN | TCP_PSH);
    if (!first)
        want &= (uint8_t)~TCP_CWR;
    assert_int_equal(tcp[13], want);
    assert_memory_equal(tcp + 14, otcp + 14, 2);            /* window */
    assert_memory_equal(tcp + 18, otcp + 18, hlen - lo->l4 - 18); /* urg, options */
    assert_true(tcp_csum_ok(ip, o->v6, tcp, tcp_len));

    memcpy(c->payload + c->bytes, seg + hlen, n);
    c->bytes += n;
    c->count++;
    if (c->stop_at && c->count == c->stop_at)
        return c->stop_rc;
    return 0;
}

/* Segment a frame built from o with MSS mss and verify everything. With
 * junk_hints the virtio header's hint fields (hdr_len, csum_*, flags) hold
 * nonsense, which must not matter. */
static void check_segment_h(const struct fopts *o, uint16_t mss, uint8_t ecn, int junk_hints)
{
    static uint8_t buf[70000];
    struct layout lo;
    uint32_t len = build(buf, o, &lo);
    uint8_t *f = exact_copy(buf, len);
    struct virtio_net_hdr h = gso_hdr(o, &lo, mss);
    h.gso_type |= ecn;
    if (junk_hints) {
        h.hdr_len = 0xFFFF;
        h.csum_start = 0xFFFF;
        h.csum_offset = 0xFFFF;
        h.flags = 0xFF;
    }
    uint32_t segs = o->payload ? (o->payload + mss - 1) / mss : 1;
    uint32_t sbl = lo.hlen + (o->payload < mss ? o->payload : mss);
    uint8_t *sb = malloc(sbl);
    assert_non_null(sb);
    struct collector c = {
        .o = o, .lo = &lo, .orig = f, .mss = mss, .expect_segs = segs,
        .seg_buf_len = sbl, .payload = malloc(o->payload + 1),
    };
    assert_non_null(c.payload);

    assert_int_equal(cw_offload_segment(f, len, &h, sb, sbl, collect, &c), 0);
    assert_int_equal(c.count, segs);
    assert_int_equal(c.bytes, o->payload);
    for (uint32_t i = 0; i < o->payload; i++)
        if (c.payload[i] != pattern(i))
            fail_msg("payload byte %u differs", i);
    assert_memory_equal(f, buf, len); /* input frame not modified */
    free(c.payload);
    free(sb);
    free(f);
}

static void check_segment(const struct fopts *o, uint16_t mss, uint8_t ecn)
{
    check_segment_h(o, mss, ecn, 0);
}

static void test_segment_ipv4_64k(void **state)
{
    (void)state;
    struct fopts o = {.payload = 64000, .seq = 1000000, .id = 0x1234,
                      .flags = TCP_ACK | TCP_PSH | TCP_FIN};
    check_segment(&o, 1448, 0); /* 44 full segments + 288 bytes */
    o.vlan = 1;
    check_segment(&o, 1448, 0);
    o.ip_opt = 12;
    o.tcp_opt = 12;
    o.pad = 0;
    check_segment(&o, 1448, 0);
}

static void test_segment_ipv6_64k(void **state)
{
    (void)state;
    struct fopts o = {.v6 = 1, .payload = 64000, .seq = 42, .flags = TCP_ACK | TCP_PSH};
    check_segment(&o, 1448, 0);
    o.vlan = 1;
    o.tcp_opt = 12;
    check_segment(&o, 1428, 0);
    o.payload = 65535 - 32; /* largest IPv6 payload length this frame can carry */
    check_segment(&o, 1448, 0);
}

static int count_only(void *ctx, const uint8_t *seg, uint32_t len)
{
    (void)seg;
    uint32_t *n = ctx;
    n[0]++;
    n[1] = len;
    return 0;
}

static void test_segment_count_and_sizes(void **state)
{
    (void)state;
    static uint8_t buf[70000];
    struct layout lo;
    struct fopts o = {.payload = 64000, .flags = TCP_ACK};
    uint32_t len = build(buf, &o, &lo);
    struct virtio_net_hdr h = gso_hdr(&o, &lo, 1448);
    static uint8_t sb[2000];
    uint32_t n[2] = {0, 0};
    assert_int_equal(cw_offload_segment(buf, len, &h, sb, sizeof sb, count_only, n), 0);
    assert_int_equal(n[0], 45);           /* ceil(64000 / 1448) */
    assert_int_equal(n[1], 54 + 288);     /* 64000 - 44 * 1448 */
    /* Exact multiple of the MSS: no empty trailing segment. */
    o.payload = 1448 * 3;
    len = build(buf, &o, &lo);
    n[0] = n[1] = 0;
    assert_int_equal(cw_offload_segment(buf, len, &h, sb, sizeof sb, count_only, n), 0);
    assert_int_equal(n[0], 3);
    assert_int_equal(n[1], 54 + 1448);
}

static void test_segment_small_and_odd(void **state)
{
    (void)state;
    /* Payload <= gso_size: one segment, checksums completed. */
    struct fopts o = {.payload = 100, .seq = 5, .id = 9, .flags = TCP_ACK | TCP_PSH | TCP_CWR};
    check_segment(&o, 1448, 0);
    o.payload = 1448;
    check_segment(&o, 1448, 0);
    /* Header-only GSO frame: one header-only segment. */
    o.payload = 0;
    check_segment(&o, 1448, 0);
    /* Tiny and odd MSS, odd payload: checksum over odd lengths. */
    o.payload = 1001;
    check_segment(&o, 7, 0);
    o.v6 = 1;
    check_segment(&o, 1, 0);
    /* Ethernet padding after the datagram is not payload. */
    o.v6 = 0;
    o.payload = 3000;
    o.pad = 6;
    check_segment(&o, 1448, 0);
    o.v6 = 1;
    check_segment(&o, 1448, 0);
}

static void test_segment_wrap(void **state)
{
    (void)state;
    /* Sequence numbers and IPv4 ids wrap modulo their width. */
    struct fopts o = {.payload = 10000, .seq = 0xFFFFF000u, .id = 0xFFFE, .flags = TCP_ACK};
    check_segment(&o, 1448, 0);
}

static void test_segment_ecn(void **state)
{
    (void)state;
    /* CWR only on the first segment; ECE (and ACK) kept on all; FIN/PSH only
     * on the last. With the ECN bit in gso_type and without it. */
    struct fopts o = {.payload = 5000, .seq = 77, .id = 3,
                      .flags = TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR | TCP_ECE};
    check_segment(&o, 1448, VIRTIO_NET_HDR_GSO_ECN);
    check_segment(&o, 1448, 0);
    o.v6 = 1;
    o.vlan = 1;
    check_segment(&o, 1000, VIRTIO_NET_HDR_GSO_ECN);
    /* A one-segment frame keeps CWR and FIN together. */
    o.payload = 10;
    check_segment(&o, 1000, VIRTIO_NET_HDR_GSO_ECN);
}

static int must_not_emit(void *ctx, const uint8_t *seg, uint32_t len)
{
    (void)ctx;
    (void)seg;
    (void)len;
    fail_msg("emit called for a refused frame");
    return 0;
}

/* Refused: -1, emit never called, no access outside [frame, frame+len) or
 * outside seg_buf (both exact-size heap copies). */
static void expect_refused(const uint8_t *frame, uint32_t len, const struct virtio_net_hdr *h,
                           uint32_t sbl)
{
    uint8_t *f = exact_copy(frame, len);
    uint8_t *sb = malloc(sbl ? sbl : 1);
    assert_non_null(sb);
    assert_int_equal(cw_offload_segment(f, len, h, sb, sbl, must_not_emit, NULL), -1);
    free(sb);
    free(f);
}

static void test_segment_truncated(void **state)
{
    (void)state;
    static uint8_t buf[4096];
    struct layout lo;
    /* Every truncation of valid frames is refused: inside the headers the
     * header bounds catch it, inside the payload the IP length does. */
    for (int v6 = 0; v6 <= 1; v6++) {
        for (int vlan = 0; vlan <= 1; vlan++) {
            struct fopts o = {.v6 = v6, .vlan = vlan, .ip_opt = v6 ? 0 : 4, .tcp_opt = 8,
                              .payload = 300, .flags = TCP_ACK};
            uint32_t len = build(buf, &o, &lo);
            struct virtio_net_hdr h = gso_hdr(&o, &lo, 100);
            for (uint32_t l = 0; l < len; l++)
                expect_refused(buf, l, &h, 4096);
        }
    }
}

static void test_segment_bad_ipv4(void **state)
{
    (void)state;
    static uint8_t buf[4096];
    static uint8_t bad[4096];
    struct layout lo;
    struct fopts o = {.payload = 300, .flags = TCP_ACK};
    uint32_t len = build(buf, &o, &lo);
    struct virtio_net_hdr h = gso_hdr(&o, &lo, 100);
    uint8_t *ip = bad + lo.l3;

    /* ihl < 5 */
    for (uint8_t ihl = 0; ihl < 5; ihl++) {
        memcpy(bad, buf, len);
        ip[0] = (uint8_t)(0x40 | ihl);
        expect_refused(bad, len, &h, 4096);
    }
    /* ihl beyond the frame: 60-byte header in a frame with 40 bytes after l3. */
    memcpy(bad, buf, len);
    ip[0] = 0x4F;
    expect_refused(bad, lo.l3 + 40, &h, 4096);
    /* ihl that leaves no room for TCP within the total length. */
    memcpy(bad, buf, len);
    ip[0] = 0x4F;
    wr16(ip + 2, 60 + 19);
    expect_refused(bad, len, &h, 4096);
    /* Wrong version. */
    memcpy(bad, buf, len);
    ip[0] = 0x65;
    expect_refused(bad, len, &h, 4096);
    /* Total length larger than the frame, and too small for IP + TCP. */
    memcpy(bad, buf, len);
    wr16(ip + 2, (uint16_t)(len - lo.l3 + 1));
    expect_refused(bad, len, &h, 4096);
    wr16(ip + 2, 0xFFFF);
    expect_refused(bad, len, &h, 4096);
    for (uint16_t t = 0; t < 40; t++) {
        wr16(ip + 2, t);
        expect_refused(bad, len, &h, 4096);
        /* Same with the frame ending where the datagram says it does, so
         * touching the TCP header before checking it fits is caught. */
        if (t >= 20)
            expect_refused(bad, lo.l3 + t, &h, 4096);
    }
    /* Fragments: MF, any offset, both. DF alone is fine (checked below). */
    static const uint16_t frags[] = {0x2000, 0x0001, 0x1FFF, 0x2001, 0x4001, 0x6000};
    for (size_t i = 0; i < sizeof frags / sizeof frags[0]; i++) {
        memcpy(bad, buf, len);
        wr16(ip + 6, frags[i]);
        expect_refused(bad, len, &h, 4096);
    }
    /* Not TCP. */
    static const uint8_t protos[] = {17, 1, 0, 41, 255};
    for (size_t i = 0; i < sizeof protos; i++) {
        memcpy(bad, buf, len);
        ip[9] = protos[i];
        expect_refused(bad, len, &h, 4096);
    }
    /* TCP data offset < 5, or beyond the datagram. */
    for (uint8_t d = 0; d < 5; d++) {
        memcpy(bad, buf, len);
        bad[lo.l4 + 12] = (uint8_t)(d << 4);
        expect_refused(bad, len, &h, 4096);
    }
    struct fopts s = {.payload = 10, .flags = TCP_ACK};
    uint32_t slen = build(bad, &s, &lo);
    bad[lo.l4 + 12] = 0xF0; /* 60-byte TCP header, only 30 bytes in datagram */
    expect_refused(bad, slen, &h, 4096);
    /* Ethernet types: unknown, IPv6 under a TCPV4 request, double VLAN. */
    memcpy(bad, buf, len);
    wr16(bad + 12, 0x0806);
    expect_refused(bad, len, &h, 4096);
    wr16(bad + 12, 0x86DD);
    expect_refused(bad, len, &h, 4096);
    struct fopts ov = {.vlan = 1, .payload = 300, .flags = TCP_ACK};
    uint32_t vlen = build(bad, &ov, &lo);
    wr16(bad + 16, 0x8100);
    expect_refused(bad, vlen, &h, 4096);
    wr16(bad + 16, 0x88A8);
    expect_refused(bad, vlen, &h, 4096);

    /* DF set is a normal TCP frame and is accepted. */
    o.frag = 0x4000;
    check_segment(&o, 100, 0);
}

static void test_segment_bad_ipv6(void **state)
{
    (void)state;
    static uint8_t buf[4096];
    static uint8_t bad[4096];
    struct layout lo;
    struct fopts o = {.v6 = 1, .vlan = 1, .payload = 300, .flags = TCP_ACK};
    uint32_t len = build(buf, &o, &lo);
    struct virtio_net_hdr h = gso_hdr(&o, &lo, 100);
    uint8_t *ip = bad + lo.l3;

    /* Extension headers before TCP (hop-by-hop, routing, fragment, dest). */
    static const uint8_t nh[] = {0, 43, 44, 60, 17, 59};
    for (size_t i = 0; i < sizeof nh; i++) {
        memcpy(bad, buf, len);
        ip[6] = nh[i];
        expect_refused(bad, len, &h, 4096);
    }
    /* Payload length beyond the frame, zero (jumbogram), below a TCP header. */
    memcpy(bad, buf, len);
    wr16(ip + 4, (uint16_t)(len - lo.l3 - 40 + 1));
    expect_refused(bad, len, &h, 4096);
    wr16(ip + 4, 0xFFFF);
    expect_refused(bad, len, &h, 4096);
    for (uint16_t p = 0; p < 20; p++) {
        wr16(ip + 4, p);
        expect_refused(bad, len, &h, 4096);
        expect_refused(bad, lo.l3 + 40 + p, &h, 4096); /* frame ends there too */
    }
    /* Wrong version; IPv4 under a TCPV6 request. */
    memcpy(bad, buf, len);
    ip[0] = 0x45;
    expect_refused(bad, len, &h, 4096);
    memcpy(bad, buf, len);
    wr16(bad + 16, 0x0800);
    expect_refused(bad, len, &h, 4096);
    /* TCP data offset < 5 or beyond the payload length. */
    for (uint8_t d = 0; d < 5; d++) {
        memcpy(bad, buf, len);
        bad[lo.l4 + 12] = (uint8_t)(d << 4);
        expect_refused(bad, len, &h, 4096);
    }
    memcpy(bad, buf, len);
    wr16(ip + 4, 40); /* TCP header of 60 bytes would run past the payload */
    bad[lo.l4 + 12] = 0xF0;
    expect_refused(bad, len, &h, 4096);
}

static void test_segment_bad_gso(void **state)
{
    (void)state;
    static uint8_t buf[4096];
    struct layout lo;
    struct fopts o = {.payload = 300, .flags = TCP_ACK};
    uint32_t len = build(buf, &o, &lo);
    struct virtio_net_hdr h = gso_hdr(&o, &lo, 100);

    h.gso_size = 0;
    expect_refused(buf, len, &h, 4096);
    h.gso_size = 100;
    static const uint8_t types[] = {VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_UDP,
                                    VIRTIO_NET_HDR_GSO_TCPV6, 2, 5, 0x41, 0xFF,
                                    VIRTIO_NET_HDR_GSO_ECN};
    for (size_t i = 0; i < sizeof types; i++) {
        h.gso_type = types[i];
        expect_refused(buf, len, &h, 4096);
    }
    h.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;

    /* hdr_len and csum fields are hints only: nonsense values do not matter,
     * for IPv4 and IPv6. */
    check_segment_h(&o, 100, 0, 1);
    struct fopts o6 = {.v6 = 1, .vlan = 1, .payload = 300, .flags = TCP_ACK};
    check_segment_h(&o6, 100, 0, 1);
    uint8_t sb[200];
    uint32_t n[2] = {0, 0};

    /* NULL arguments. */
    assert_int_equal(cw_offload_segment(NULL, len, &h, sb, sizeof sb, count_only, n), -1);
    assert_int_equal(cw_offload_segment(buf, len, NULL, sb, sizeof sb, count_only, n), -1);
    assert_int_equal(cw_offload_segment(buf, len, &h, NULL, sizeof sb, count_only, n), -1);
    assert_int_equal(cw_offload_segment(buf, len, &h, sb, sizeof sb, NULL, n), -1);
}

static void test_segment_seg_buf_size(void **state)
{
    (void)state;
    static uint8_t buf[4096];
    struct layout lo;
    struct fopts o = {.payload = 300, .flags = TCP_ACK};
    uint32_t len = build(buf, &o, &lo);
    struct virtio_net_hdr h = gso_hdr(&o, &lo, 100);

    /* Too small by one byte, or smaller than the headers: refused up front. */
    expect_refused(buf, len, &h, lo.hlen + 99);
    expect_refused(buf, len, &h, lo.hlen - 1);
    expect_refused(buf, len, &h, 0);
    /* Exactly enough (exact-size heap buffer, so ASan checks the writes). */
    uint8_t *sb = malloc(lo.hlen + 100);
    assert_non_null(sb);
    uint32_t n[2] = {0, 0};
    assert_int_equal(cw_offload_segment(buf, len, &h, sb, lo.hlen + 100, count_only, n), 0);
    assert_int_equal(n[0], 3);
    free(sb);
    /* A payload shorter than gso_size needs only headers + payload. */
    h.gso_size = 1000;
    expect_refused(buf, len, &h, lo.hlen + 299);
    sb = malloc(lo.hlen + 300);
    assert_non_null(sb);
    n[0] = 0;
    assert_int_equal(cw_offload_segment(buf, len, &h, sb, lo.hlen + 300, count_only, n), 0);
    assert_int_equal(n[0], 1);
    free(sb);
}

static void test_segment_emit_stops(void **state)
{
    (void)state;
    static uint8_t buf[70000];
    static uint8_t sb[2000];
    struct layout lo;
    struct fopts o = {.payload = 64000, .seq = 1, .id = 1, .flags = TCP_ACK | TCP_FIN};
    uint32_t len = build(buf, &o, &lo);
    struct virtio_net_hdr h = gso_hdr(&o, &lo, 1448);
    static const uint32_t stops[] = {1, 2, 30, 45};
    static const int rcs[] = {1, -5, 7, 99};
    for (size_t k = 0; k < 4; k++) {
        struct collector c = {
            .o = &o, .lo = &lo, .orig = buf, .mss = 1448, .expect_segs = 45,
            .seg_buf_len = sizeof sb, .payload = malloc(64000),
            .stop_at = stops[k], .stop_rc = rcs[k],
        };
        assert_non_null(c.payload);
        assert_int_equal(cw_offload_segment(buf, len, &h, sb, sizeof sb, collect, &c), rcs[k]);
        assert_int_equal(c.count, stops[k]); /* no call after the stop */
        free(c.payload);
    }
}

/* Deterministic mutation fuzzing: random byte flips in the headers of valid
 * frames and random lengths. Whatever happens, no out-of-bounds access
 * (exact-size buffers under ASan), and an accepted frame only yields
 * segments whose checksums verify and which fit seg_buf. */
struct fuzz_ctx {
    uint32_t sbl;
    uint32_t count;
};

static int fuzz_emit(void *ctx, const uint8_t *seg, uint32_t len)
{
    struct fuzz_ctx *c = ctx;
    assert_true(len <= c->sbl);
    assert_true(len >= 14 + 20 + 20);
    uint32_t l3 = rd16(seg + 12) == 0x8100 ? 18 : 14;
    const uint8_t *ip = seg + l3;
    int v6 = (ip[0] >> 4) == 6;
    uint32_t l4 = l3 + (v6 ? 40 : (uint32_t)(ip[0] & 0xF) * 4);
    if (v6)
        assert_int_equal(rd16(ip + 4), len - l4);
    else {
        assert_true(ipv4_csum_ok(ip));
        assert_int_equal(rd16(ip + 2), len - l3);
    }
    assert_true(tcp_csum_ok(ip, v6, seg + l4, len - l4));
    c->count++;
    return 0;
}

static uint32_t rng_state = 0x12345678u;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void test_segment_fuzz(void **state)
{
    (void)state;
    static uint8_t buf[4096];
    struct layout lo;
    uint32_t accepted = 0;
    for (int iter = 0; iter < 3000; iter++) {
        struct fopts o = {.v6 = (int)(rng() & 1), .vlan = (int)(rng() & 1),
                          .payload = rng() % 2000, .seq = rng(), .id = (uint16_t)rng(),
                          .flags = (uint8_t)rng(), .tcp_opt = (rng() % 3) * 4};
        if (!o.v6)
            o.ip_opt = (rng() % 3) * 4;
        uint32_t len = build(buf, &o, &lo);
        struct virtio_net_hdr h = gso_hdr(&o, &lo, (uint16_t)(1 + rng() % 1500));
        int flips = (int)(rng() % 4);
        for (int k = 0; k < flips; k++)
            buf[rng() % lo.hlen] ^= (uint8_t)(1u << (rng() % 8));
        if (rng() % 4 == 0)
            len = rng() % (len + 1);
        if (rng() % 8 == 0)
            h.gso_type = (uint8_t)rng();
        uint32_t sbl = lo.hlen + h.gso_size - (rng() % 2);
        uint8_t *f = exact_copy(buf, len);
        uint8_t *sb = malloc(sbl);
        assert_non_null(sb);
        struct fuzz_ctx c = {.sbl = sbl};
        int rc = cw_offload_segment(f, len, &h, sb, sbl, fuzz_emit, &c);
        assert_true(rc == 0 || rc == -1);
        if (rc == 0) {
            assert_true(c.count >= 1);
            accepted++;
        } else {
            assert_int_equal(c.count, 0);
        }
        free(sb);
        free(f);
    }
    /* The mix must exercise both outcomes to mean anything. */
    assert_true(accepted > 300);
    assert_true(accepted < 2900);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csum_helpers),
        cmocka_unit_test(test_finish_csum_ipv4),
        cmocka_unit_test(test_finish_csum_ipv6),
        cmocka_unit_test(test_finish_csum_zero_result),
        cmocka_unit_test(test_finish_csum_bounds),
        cmocka_unit_test(test_segment_ipv4_64k),
        cmocka_unit_test(test_segment_ipv6_64k),
        cmocka_unit_test(test_segment_count_and_sizes),
        cmocka_unit_test(test_segment_small_and_odd),
        cmocka_unit_test(test_segment_wrap),
        cmocka_unit_test(test_segment_ecn),
        cmocka_unit_test(test_segment_truncated),
        cmocka_unit_test(test_segment_bad_ipv4),
        cmocka_unit_test(test_segment_bad_ipv6),
        cmocka_unit_test(test_segment_bad_gso),
        cmocka_unit_test(test_segment_seg_buf_size),
        cmocka_unit_test(test_segment_emit_stops),
        cmocka_unit_test(test_segment_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
