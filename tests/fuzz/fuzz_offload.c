/* Fuzz target: the software offloads on frames from a hostile peer.
 *
 * Input layout:
 *   u8  mode       bit0: the emit callback stops the walk at segment
 *                  (stop_at); bit1: seg_buf sized from the input
 *   virtio_net_hdr (10 bytes: gso_type, gso_size, csum_start/offset used)
 *   u16 seg_buf_len, u8 stop_at, u32 csum_init
 *   the rest: the frame
 *
 * Each function gets its own exact-size copy of the frame and seg_buf, so
 * AddressSanitizer reports any byte read or written past either. Checked
 * against independent reference code:
 *  - cw_csum_add/cw_csum_fold equal a byte-at-a-time RFC 1071 sum, for any
 *    start alignment and odd length;
 *  - cw_offload_finish_csum succeeds exactly when the field fits inside
 *    [csum_start, len), changes only those two bytes, and leaves a range
 *    whose checksum verifies; on refusal the frame is untouched;
 *  - cw_offload_segment emits, in order, segments whose payloads concatenate
 *    to the original payload, each at most gso_size, with consecutive
 *    sequence numbers, consistent IP lengths, and correct IPv4 header and TCP
 *    checksums; an emit error stops the walk and is returned. */
#include <stdbool.h>

#include "core/offload.h"
#include "fuzz.h"

/* Room for the largest frame the device moves (CW_NET_MAX_FRAME). */
#define SEG_BUF_DEFAULT (65535u + 18u)

/* ---- reference arithmetic, deliberately naive ---- */

static uint32_t ref_sum(uint32_t sum, const uint8_t *p, uint32_t len)
{
    uint64_t s = sum;
    for (uint32_t i = 0; i < len; i += 2) {
        uint32_t w = (uint32_t)p[i] << 8;
        if (i + 1 < len)
            w |= p[i + 1];
        s += w;
    }
    while (s >> 16)
        s = (s & 0xFFFF) + (s >> 16);
    return (uint32_t)s;
}

static uint16_t g16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t g32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* ---- segmentation oracle ---- */

struct parsed {
    uint32_t l3, l4, hlen, end;
    bool v6;
};

/* Independent parse of Ethernet [+VLAN] + IPv4/IPv6 + TCP; returns false for
 * anything the segmenter must refuse. */
static bool ref_parse(const uint8_t *f, uint32_t len, bool v6, struct parsed *t)
{
    if (len < 14)
        return false;
    uint32_t l3 = 14;
    uint16_t type = g16(f + 12);
    if (type == 0x8100) {
        if (len < 18)
            return false;
        type = g16(f + 16);
        l3 = 18;
    }
    uint32_t l4, end;
    if (!v6) {
        if (type != 0x0800 || len < l3 + 20)
            return false;
        uint32_t ihl = (f[l3] & 15u) * 4u, tot = g16(f + l3 + 2);
        if ((f[l3] >> 4) != 4 || ihl < 20 || l3 + ihl > len)
            return false;
        if (tot < ihl + 20 || l3 + tot > len)
            return false;
        if ((g16(f + l3 + 6) & 0x3FFF) || f[l3 + 9] != 6)
            return false;
        l4 = l3 + ihl;
        end = l3 + tot;
    } else {
        if (type != 0x86DD || len < l3 + 40)
            return false;
        uint32_t plen = g16(f + l3 + 4);
        if ((f[l3] >> 4) != 6 || f[l3 + 6] != 6)
            return false;
        if (plen < 20 || l3 + 40 + plen > len)
            return false;
        l4 = l3 + 40;
        end = l4 + plen;
    }
    uint32_t doff = (uint32_t)(f[l4 + 12] >> 4) * 4u;
    if (doff < 20 || l4 + doff > end)
        return false;
    t->l3 = l3;
    t->l4 = l4;
    t->hlen = l4 + doff;
    t->end = end;
    t->v6 = v6;
    return true;
}

struct seg_state {
    const uint8_t *frame;
    struct parsed t;
    uint32_t mss;
    uint8_t *seg_buf;
    uint32_t seg_buf_len;
    uint32_t payload;  /* bytes of payload in the original */
    uint32_t off;      /* payload bytes seen so far */
    uint32_t n;        /* segments seen */
    uint32_t stop_at;  /* return an error at this segment (UINT32_MAX: never) */
};

static int emit(void *ctx, const uint8_t *seg, uint32_t len)
{
    struct seg_state *s = ctx;
    const struct parsed *t = &s->t;
    FUZZ_CHECK(seg == s->seg_buf);
    FUZZ_CHECK(len >= t->hlen && len <= s->seg_buf_len);
    uint32_t n = len - t->hlen;
    FUZZ_CHECK(n <= s->mss);
    FUZZ_CHECK(s->off + n <= s->payload);
    /* Headers up to the IP header are the original's; payload is the next
     * slice of the original payload. */
    FUZZ_CHECK(memcmp(seg, s->frame, t->l3) == 0);
    FUZZ_CHECK(memcmp(seg + t->hlen, s->frame + t->hlen + s->off, n) == 0);
    bool last = s->off + n == s->payload;
    FUZZ_CHECK(last || n == s->mss);

    const uint8_t *ip = seg + t->l3, *tcp = seg + t->l4;
    uint32_t tcp_len = len - t->l4;
    uint32_t ps;
    if (t->v6) {
        FUZZ_CHECK(g16(ip + 4) == tcp_len);
        ps = ref_sum(0, ip + 8, 32);
    } else {
        uint32_t ihl = t->l4 - t->l3;
        FUZZ_CHECK(g16(ip + 2) == ihl + tcp_len);
        FUZZ_CHECK(g16(ip + 4) == (uint16_t)(g16(s->frame + t->l3 + 4) + s->n));
        FUZZ_CHECK(ref_sum(0, ip, ihl) == 0xFFFF); /* header checksum verifies */
        ps = ref_sum(0, ip + 12, 8);
    }
    ps = ref_sum(ps, (const uint8_t[]){0, 6}, 2);
    uint8_t l[4] = {(uint8_t)(tcp_len >> 24), (uint8_t)(tcp_len >> 16), (uint8_t)(tcp_len >> 8),
                    (uint8_t)tcp_len};
    ps = ref_sum(ps, l, 4);
    FUZZ_CHECK(ref_sum(ps, tcp, tcp_len) == 0xFFFF); /* TCP checksum verifies */
    FUZZ_CHECK(g32(tcp + 4) == g32(s->frame + t->l4 + 4) + s->off);
    uint8_t fl = s->frame[t->l4 + 13];
    uint8_t want = fl;
    if (!last)
        want &= (uint8_t)~0x09; /* FIN, PSH */
    if (s->n)
        want &= (uint8_t)~0x80; /* CWR */
    FUZZ_CHECK(tcp[13] == want);

    s->off += n;
    if (s->n++ == s->stop_at)
        return 7;
    return 0;
}

static void fuzz_segment(const uint8_t *frame, uint32_t len, const struct virtio_net_hdr *h,
                         uint32_t seg_buf_len, uint32_t stop_at)
{
    uint8_t *seg = malloc(seg_buf_len ? seg_buf_len : 1);
    if (!seg)
        abort();
    struct seg_state s = {.frame = frame, .mss = h->gso_size, .seg_buf = seg,
                          .seg_buf_len = seg_buf_len, .stop_at = stop_at};
    uint8_t base = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    bool ok = (base == VIRTIO_NET_HDR_GSO_TCPV4 || base == VIRTIO_NET_HDR_GSO_TCPV6) &&
              h->gso_size != 0 && ref_parse(frame, len, base == VIRTIO_NET_HDR_GSO_TCPV6, &s.t);
    if (ok) {
        s.payload = s.t.end - s.t.hlen;
        uint32_t first = s.payload < s.mss ? s.payload : s.mss;
        ok = seg_buf_len >= s.t.hlen + first;
    }
    int rc = cw_offload_segment(frame, len, h, seg, seg_buf_len, emit, &s);
    if (!ok) {
        FUZZ_CHECK(rc == -1 && s.n == 0);
    } else if (stop_at < UINT32_MAX && s.n > stop_at) {
        FUZZ_CHECK(rc == 7 && s.n == stop_at + 1);
    } else {
        FUZZ_CHECK(rc == 0);
        FUZZ_CHECK(s.off == s.payload);
        FUZZ_CHECK(s.n >= 1);
    }
    free(seg);
}

static void fuzz_finish_csum(const uint8_t *frame, uint32_t len, uint16_t start, uint16_t off)
{
    uint8_t *a = malloc(len ? len : 1);
    if (!a)
        abort();
    memcpy(a, frame, len);
    int rc = cw_offload_finish_csum(a, len, start, off);
    uint32_t field = (uint32_t)start + off;
    if (field + 2u > len) {
        FUZZ_CHECK(rc == -1);
        FUZZ_CHECK(len == 0 || memcmp(a, frame, len) == 0);
    } else {
        FUZZ_CHECK(rc == 0);
        for (uint32_t i = 0; i < len; i++)
            if (i != field && i != field + 1)
                FUZZ_CHECK(a[i] == frame[i]);
        /* The stored value is the complement of the sum over the range as
         * it was (the field holding the sender's pseudo-header sum). */
        uint16_t want = (uint16_t)~ref_sum(0, frame + start, len - start);
        if (want == 0)
            want = 0xFFFF;
        FUZZ_CHECK(g16(a + field) == want);
    }
    free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in;
    fuzz_in_init(&in, data, size);
    uint8_t mode = fuzz_u8(&in);
    struct virtio_net_hdr h;
    fuzz_bytes(&in, &h, sizeof(h));
    uint16_t sbl = fuzz_u16(&in);
    uint8_t stop_at = fuzz_u8(&in);
    uint32_t init = fuzz_u32(&in);
    size_t len;
    const uint8_t *p = fuzz_take(&in, 70000, &len);
    uint8_t *frame = malloc(len ? len : 1);
    if (!frame)
        abort();
    memcpy(frame, p, len);

    /* Checksum helpers against the reference, from several start offsets. */
    for (uint32_t start = 0; start < 4 && start <= len; start++) {
        uint32_t n = (uint32_t)len - start;
        uint32_t got = cw_csum_fold(cw_csum_add(init, frame + start, n));
        FUZZ_CHECK(got == ref_sum(cw_csum_fold(init), frame + start, n));
    }

    fuzz_finish_csum(frame, (uint32_t)len, h.csum_start, h.csum_offset);
    uint32_t seg_buf_len = (mode & 2) ? sbl : SEG_BUF_DEFAULT;
    fuzz_segment(frame, (uint32_t)len, &h, seg_buf_len, (mode & 1) ? stop_at : UINT32_MAX);
    free(frame);
    return 0;
}
