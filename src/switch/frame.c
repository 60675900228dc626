/* Header parsing on the switch's private copy (see frame.h).
 *
 * Every read goes through take(), which checks that the bytes lie inside
 * both the copy and the frame and moves decided_end past them; a header that
 * does not fit leaves its fields unknown. */
#include "frame.h"

struct cursor {
    const uint8_t *eth; /* the Ethernet frame in the copy */
    uint32_t avail;     /* bytes of it in the copy (<= frame_len) */
    struct cw_frame *f;
};

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* n bytes at frame offset off, or NULL if they are not all in the copy. */
static inline const uint8_t *take(struct cursor *c, uint32_t off, uint32_t n)
{
    /* off and n are small (offsets inside a 256-byte copy, header sizes of
     * at most 2 KiB from one byte): the sum cannot wrap. */
    if (off > c->avail || n > c->avail - off)
        return 0;
    if (off + n > c->f->decided_end)
        c->f->decided_end = off + n;
    return c->eth + off;
}

static bool is_ported(uint8_t proto)
{
    return proto == CW_IPPROTO_TCP || proto == CW_IPPROTO_UDP || proto == CW_IPPROTO_SCTP ||
           proto == CW_IPPROTO_UDPLITE;
}

/* The start of the L4 header is known: read ports or the ICMP type. */
static inline void parse_l4(struct cursor *c, uint8_t icmp_proto)
{
    struct cw_frame *f = c->f;
    if (f->fragment)
        return;
    if (is_ported(f->proto)) {
        const uint8_t *p = take(c, f->l4_off, 4);
        if (p) {
            f->sport = be16(p);
            f->dport = be16(p + 2);
            f->has_ports = true;
        }
    } else if (f->proto == icmp_proto) {
        const uint8_t *p = take(c, f->l4_off, 1);
        if (p) {
            f->icmp_type = p[0];
            f->has_icmp = true;
        }
    }
}

static void parse_ipv4(struct cursor *c)
{
    struct cw_frame *f = c->f;
    const uint8_t *h = take(c, f->l3_off, 20);
    if (!h || (h[0] >> 4) != 4)
        return;
    uint32_t ihl = (uint32_t)(h[0] & 15u) * 4u;
    if (ihl < 20 || be16(h + 2) < ihl || !take(c, f->l3_off, ihl))
        return;
    f->src4 = be32(h + 12);
    f->dst4 = be32(h + 16);
    f->l3_ok = true;
    f->proto = h[9];
    f->has_proto = true;
    /* Fragment offset (13 bits): non-zero means no L4 header here. */
    f->fragment = (be16(h + 6) & 0x1FFFu) != 0;
    f->l4_off = f->l3_off + ihl;
    parse_l4(c, CW_IPPROTO_ICMP);
}

static void parse_ipv6(struct cursor *c)
{
    struct cw_frame *f = c->f;
    const uint8_t *h = take(c, f->l3_off, 40);
    if (!h || (h[0] >> 4) != 6)
        return;
    __builtin_memcpy(f->src6, h + 8, 16);
    __builtin_memcpy(f->dst6, h + 24, 16);
    f->l3_ok = true;
    uint8_t nh = h[6];
    uint32_t off = f->l3_off + 40;
    /* Walk extension headers; bounded by the copy (each is >= 8 bytes) and
     * by a count, so the walk always ends. An unresolved chain leaves the
     * protocol unknown. */
    for (int n = 0; n < 8; n++) {
        const uint8_t *e;
        switch (nh) {
        case 0:  /* hop-by-hop options */
        case 43: /* routing */
        case 60: /* destination options */
            if (!(e = take(c, off, 2)))
                return;
            nh = e[0];
            off += ((uint32_t)e[1] + 1u) * 8u;
            continue;
        case 51: /* authentication header */
            if (!(e = take(c, off, 2)))
                return;
            nh = e[0];
            off += ((uint32_t)e[1] + 2u) * 4u;
            continue;
        case 44: /* fragment */
            if (!(e = take(c, off, 8)))
                return;
            nh = e[0];
            if ((be16(e + 2) & 0xFFF8u) != 0)
                f->fragment = true;
            off += 8;
            continue;
        default:
            f->proto = nh;
            f->has_proto = true;
            f->l4_off = off;
            parse_l4(c, CW_IPPROTO_ICMPV6);
            return;
        }
    }
}

static void parse_arp(struct cursor *c)
{
    struct cw_frame *f = c->f;
    const uint8_t *a = take(c, f->l3_off, 28);
    /* Ethernet/IPv4 ARP only: htype 1, ptype IPv4, hlen 6, plen 4. */
    if (!a || be16(a) != 1 || be16(a + 2) != CW_ETH_IPV4 || a[4] != 6 || a[5] != 4)
        return;
    __builtin_memcpy(f->arp_sha, a + 8, 6);
    f->arp_spa = be32(a + 14);
    f->arp_tpa = be32(a + 24);
    f->l3_ok = true;
}

void cw_frame_parse(struct cw_frame *f, const uint8_t *rec, uint32_t copied, uint32_t len)
{
    *f = (struct cw_frame){ .l3 = CW_L3_OTHER };
    /* Caller guarantees len >= META + 14 and copied >= META + 14. */
    f->flags = rec[0];
    f->gso_type = rec[1];
    f->gso_size = le16(rec + 4);
    f->csum_start = le16(rec + 6);
    f->csum_offset = le16(rec + 8);
    f->frame_len = len - CW_NET_META_LEN;

    struct cursor c = { .eth = rec + CW_NET_META_LEN, .avail = copied - CW_NET_META_LEN, .f = f };
    /* The caller guarantees the 14 bytes (see above): take() cannot fail
     * here, it only moves decided_end; reading through c.eth keeps a NULL
     * the compiler cannot rule out off this path. */
    (void)take(&c, 0, 14);
    const uint8_t *e = c.eth;
    __builtin_memcpy(f->dst, e, 6);
    __builtin_memcpy(f->src, e + 6, 6);
    f->ethertype = f->l3_type = be16(e + 12);
    f->l3_off = 14;
    while (f->l3_type == CW_ETH_VLAN || f->l3_type == CW_ETH_QINQ) {
        if (f->vlans == CW_FRAME_MAX_VLANS) {
            f->vlan_overflow = true;
            return;
        }
        const uint8_t *t = take(&c, f->l3_off, 4);
        if (!t) {
            f->vlan_overflow = true; /* cut short: the inner type is unknown */
            return;
        }
        f->l3_type = be16(t + 2);
        f->l3_off += 4;
        f->vlans++;
    }
    switch (f->l3_type) {
    case CW_ETH_IPV4:
        f->l3 = CW_L3_IPV4;
        parse_ipv4(&c);
        break;
    case CW_ETH_IPV6:
        f->l3 = CW_L3_IPV6;
        parse_ipv6(&c);
        break;
    case CW_ETH_ARP:
        f->l3 = CW_L3_ARP;
        parse_arp(&c);
        break;
    default:
        break;
    }
}
