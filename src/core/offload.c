/* Software fallbacks for virtio-net offloads: finishing a partial checksum
 * and TCP segmentation (TSO) of a GSO frame.
 *
 * The frame comes from another guest, so nothing in it is trusted: every
 * offset is derived from fields we bound-check against the frame length
 * before use, all multi-byte fields are read byte-wise (frames are not
 * aligned and are big-endian on the wire), and a frame that is not exactly
 * the shape we can segment is refused rather than "best effort" handled.
 * The virtio header's hdr_len is only a hint from the sender; the real
 * header length is computed from the parsed headers.
 *
 * Portable and freestanding: no OS calls, no allocation, no libc beyond the
 * compiler builtins for memcpy. */
#include "offload.h"

#include <stddef.h>

#define ETH_HLEN 14u
#define VLAN_HLEN 4u
#define ETHERTYPE_IPV4 0x0800u
#define ETHERTYPE_IPV6 0x86DDu
#define ETHERTYPE_VLAN 0x8100u

#define IPV4_MIN_HLEN 20u
#define IPV6_HLEN 40u
#define IPPROTO_TCP_NUM 6u
#define IPV4_FRAG_MASK 0x3FFFu /* MF flag + fragment offset; DF is fine */

#define TCP_MIN_HLEN 20u
#define TCP_FLAG_FIN 0x01u
#define TCP_FLAG_PSH 0x08u
#define TCP_FLAG_CWR 0x80u

static inline uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static inline uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Reduce a 64-bit accumulator to 32 bits without losing carries (end-around
 * carry is what makes the ones' complement sum associative). */
static uint32_t fold64(uint64_t s)
{
    s = (s & 0xFFFFFFFFu) + (s >> 32);
    s = (s & 0xFFFFFFFFu) + (s >> 32);
    return (uint32_t)s;
}

uint32_t cw_csum_add(uint32_t sum, const void *data, uint32_t len)
{
    const uint8_t *p = data;
    uint64_t acc = 0;
    uint32_t i = 0;

    /* The ones' complement sum is byte-order independent (RFC 1071 2(B)):
     * summing native-order words and byte-swapping the folded result equals
     * summing big-endian words. So read 8 bytes at a time natively (memcpy:
     * no alignment assumed) and add them as two 32-bit halves; the 64-bit
     * accumulator cannot overflow for any uint32_t length (2^29 steps of
     * two addends below 2^32 each). */
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        __builtin_memcpy(&w, p + i, 8);
        acc += (w & 0xFFFFFFFFu) + (w >> 32);
    }
    for (; i + 2 <= len; i += 2) {
        uint16_t w;
        __builtin_memcpy(&w, p + i, 2);
        acc += w;
    }
    if (i < len) {
        /* Odd tail: the first byte of a word padded with a zero byte. */
        uint8_t b[2] = {p[i], 0};
        uint16_t w;
        __builtin_memcpy(&w, b, 2);
        acc += w;
    }
    uint16_t folded = cw_csum_fold(fold64(acc));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    folded = (uint16_t)((folded << 8) | (folded >> 8));
#endif
    return fold64((uint64_t)sum + folded);
}

uint16_t cw_csum_fold(uint32_t sum)
{
    sum = (sum & 0xFFFFu) + (sum >> 16);
    sum = (sum & 0xFFFFu) + (sum >> 16);
    return (uint16_t)sum;
}

int cw_offload_finish_csum(uint8_t *frame, uint32_t len, uint16_t csum_start,
                           uint16_t csum_offset)
{
    /* 32-bit arithmetic: two uint16_t plus 2 cannot wrap. */
    uint32_t field = (uint32_t)csum_start + csum_offset;

    /* field >= csum_start, so this one test also keeps csum_start <= len
     * (the summed range is non-empty and holds the field). */
    if (frame == NULL || field + 2u > len)
        return -1;
    uint16_t c = (uint16_t)~cw_csum_fold(cw_csum_add(0, frame + csum_start, len - csum_start));
    /* Like Linux's skb_checksum_help: a result of 0 is sent as 0xFFFF. Both
     * are the same value in ones' complement (so a TCP receiver verifies
     * either), and for UDP a zero would mean "no checksum". Doing it always
     * keeps this function protocol-agnostic, as the virtio semantics are. */
    if (c == 0)
        c = 0xFFFF;
    put16(frame + field, c);
    return 0;
}

/* Layout of a TCP frame, derived from (and bounded by) the frame itself. */
struct tcp_frame {
    uint32_t l3;      /* offset of the IP header */
    uint32_t l4;      /* offset of the TCP header */
    uint32_t hlen;    /* all headers: Ethernet [+VLAN] + IP + TCP */
    uint32_t end;     /* end of the IP datagram (Ethernet padding excluded) */
    int ipv6;
};

/* Parse Ethernet [+ one 802.1Q tag] + IPv4/IPv6 + TCP. Returns 0 and fills
 * *t only for a frame whose every header lies inside len and whose lengths
 * agree with each other; want_v6 is the IP version the GSO type promised. */
static int parse_tcp_frame(const uint8_t *f, uint32_t len, int want_v6, struct tcp_frame *t)
{
    uint32_t l3 = ETH_HLEN;

    if (len < ETH_HLEN)
        return -1;
    uint16_t type = get16(f + 12);
    if (type == ETHERTYPE_VLAN) {
        if (len < ETH_HLEN + VLAN_HLEN)
            return -1;
        type = get16(f + 16);
        l3 += VLAN_HLEN;
    }

    uint32_t l4, end;
    if (!want_v6) {
        if (type != ETHERTYPE_IPV4 || len - l3 < IPV4_MIN_HLEN)
            return -1;
        const uint8_t *ip = f + l3;
        uint32_t ihl = (uint32_t)(ip[0] & 0x0Fu) * 4u;
        uint32_t tot = get16(ip + 2);
        if ((ip[0] >> 4) != 4 || ihl < IPV4_MIN_HLEN || ihl > len - l3)
            return -1;
        /* Total length must cover the IP and a minimal TCP header and stay
         * within the frame; bytes after it are Ethernet padding. */
        if (tot < ihl + TCP_MIN_HLEN || tot > len - l3)
            return -1;
        if ((get16(ip + 6) & IPV4_FRAG_MASK) != 0 || ip[9] != IPPROTO_TCP_NUM)
            return -1;
        l4 = l3 + ihl;
        end = l3 + tot;
    } else {
        if (type != ETHERTYPE_IPV6 || len - l3 < IPV6_HLEN)
            return -1;
        const uint8_t *ip = f + l3;
        uint32_t plen = get16(ip + 4);
        /* Extension headers (including hop-by-hop jumbograms, whose payload
         * length is 0) are refused: TCP must follow the fixed header. */
        if ((ip[0] >> 4) != 6 || ip[6] != IPPROTO_TCP_NUM)
            return -1;
        if (plen < TCP_MIN_HLEN || plen > len - l3 - IPV6_HLEN)
            return -1;
        l4 = l3 + IPV6_HLEN;
        end = l4 + plen;
    }

    /* end - l4 >= TCP_MIN_HLEN was established above. */
    uint32_t doff = (uint32_t)(f[l4 + 12] >> 4) * 4u;
    if (doff < TCP_MIN_HLEN || doff > end - l4)
        return -1;

    t->l3 = l3;
    t->l4 = l4;
    t->hlen = l4 + doff;
    t->end = end;
    t->ipv6 = want_v6;
    return 0;
}

/* Ones' complement sum of the TCP pseudo-header for a TCP length. */
static uint32_t pseudo_sum(const uint8_t *seg, const struct tcp_frame *t, uint32_t tcp_len)
{
    const uint8_t *ip = seg + t->l3;
    uint32_t s;

    if (t->ipv6) {
        s = cw_csum_add(0, ip + 8, 32); /* source and destination */
        s = fold64((uint64_t)s + (tcp_len >> 16) + (tcp_len & 0xFFFFu) + IPPROTO_TCP_NUM);
    } else {
        s = cw_csum_add(0, ip + 12, 8);
        s = fold64((uint64_t)s + tcp_len + IPPROTO_TCP_NUM);
    }
    return s;
}

int cw_offload_segment(const uint8_t *frame, uint32_t len, const struct virtio_net_hdr *h,
                       uint8_t *seg_buf, uint32_t seg_buf_len, cw_segment_emit emit, void *ctx)
{
    struct tcp_frame t;

    if (frame == NULL || h == NULL || seg_buf == NULL || emit == NULL)
        return -1;
    /* Read the header fields once: h may point into memory a peer shares. */
    uint8_t gso_type = *(const volatile uint8_t *)&h->gso_type;
    uint32_t mss = *(const volatile uint16_t *)&h->gso_size;
    int v6;

    switch (gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN) {
    case VIRTIO_NET_HDR_GSO_TCPV4:
        v6 = 0;
        break;
    case VIRTIO_NET_HDR_GSO_TCPV6:
        v6 = 1;
        break;
    default:
        return -1;
    }
    if (mss == 0 || parse_tcp_frame(frame, len, v6, &t) != 0)
        return -1;

    uint32_t payload = t.end - t.hlen;
    /* The largest segment actually built must fit; checked before the
     * first emit so a frame is either fully segmented or not at all. */
    uint32_t first = payload < mss ? payload : mss;
    if (seg_buf_len < t.hlen || seg_buf_len - t.hlen < first)
        return -1;

    uint32_t tcp_hlen = t.hlen - t.l4;
    uint8_t *ip = seg_buf + t.l3;
    uint8_t *tcp = seg_buf + t.l4;
    uint32_t seq0 = get32(frame + t.l4 + 4);
    uint16_t id0 = v6 ? 0 : get16(frame + t.l3 + 4);
    uint8_t flags0 = frame[t.l4 + 13];

    /* A header-only GSO frame still goes out, as one segment. */
    uint32_t off = 0;
    uint32_t i = 0;
    do {
        uint32_t n = payload - off < mss ? payload - off : mss;
        int last = off + n >= payload;

        /* Copy the headers every time rather than patching: the previous
         * segment's fields were rewritten, and copies are cheap next to the
         * payload checksum. */
        __builtin_memcpy(seg_buf, frame, t.hlen);
        __builtin_memcpy(seg_buf + t.hlen, frame + t.hlen + off, n);

        uint32_t tcp_len = tcp_hlen + n;
        if (v6) {
            put16(ip + 4, (uint16_t)tcp_len); /* <= the original payload length */
        } else {
            uint32_t ihl = t.l4 - t.l3;
            put16(ip + 2, (uint16_t)(ihl + tcp_len)); /* <= the original total */
            put16(ip + 4, (uint16_t)(id0 + i));        /* ids wrap, as on the wire */
            put16(ip + 10, 0);
            put16(ip + 10, (uint16_t)~cw_csum_fold(cw_csum_add(0, ip, ihl)));
        }

        put32(tcp + 4, seq0 + off); /* sequence space wraps mod 2^32 */
        uint8_t fl = flags0;
        if (!last)
            fl &= (uint8_t)~(TCP_FLAG_FIN | TCP_FLAG_PSH);
        if (i != 0)
            fl &= (uint8_t)~TCP_FLAG_CWR; /* congestion window reduced once */
        tcp[13] = fl;

        put16(tcp + 16, 0);
        uint32_t s = pseudo_sum(seg_buf, &t, tcp_len);
        s = cw_csum_add(s, tcp, tcp_len);
        put16(tcp + 16, (uint16_t)~cw_csum_fold(s));

        int rc = emit(ctx, seg_buf, t.hlen + n);
        if (rc != 0)
            return rc;
        off += n;
        i++;
    } while (off < payload);
    return 0;
}
