/* Frame builder for the switch tests (see sw_frames.h). */
#include "sw_frames.h"

#include <string.h>

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static void le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint32_t l4_len(uint8_t proto)
{
    switch (proto) {
    case 6: return 20;
    case 17: return 8;
    case 1:
    case 58: return 8;
    default: return 4;
    }
}

static uint32_t put_l4(uint8_t *p, const struct fspec *s)
{
    uint32_t n = l4_len(s->proto);
    memset(p, 0, n);
    if (s->proto == 1 || s->proto == 58) {
        p[0] = s->icmp_type;
    } else {
        put16(p, s->sport);
        put16(p + 2, s->dport);
        if (s->proto == 6)
            p[12] = 5u << 4; /* data offset */
    }
    return n;
}

uint32_t sw_build(uint8_t *rec, uint32_t cap, const struct fspec *s)
{
    memset(rec, 0, cap);
    rec[0] = s->flags;
    rec[1] = s->gso_type;
    le16(rec + 4, s->gso_size);
    le16(rec + 6, s->csum_start);
    le16(rec + 8, s->csum_offset);
    uint8_t *e = rec + 12;
    memcpy(e, s->dst, 6);
    memcpy(e + 6, s->src, 6);
    uint32_t off = 12;
    for (unsigned v = 0; v < s->vlans; v++) {
        put16(e + off, 0x8100);
        put16(e + off + 2, (uint16_t)(100 + v));
        off += 4;
    }
    uint16_t type = s->l3 == F_ARP ? 0x0806 : s->l3 == F_IP4 ? 0x0800 : s->l3 == F_IP6 ? 0x86DD
                                                                                      : s->ethertype;
    put16(e + off, type);
    off += 2;
    uint8_t *l3 = e + off;
    if (s->l3 == F_ARP) {
        put16(l3, 1);
        put16(l3 + 2, 0x0800);
        l3[4] = 6;
        l3[5] = 4;
        put16(l3 + 6, 1);
        memcpy(l3 + 8, s->sha, 6);
        put32(l3 + 14, s->spa);
        put32(l3 + 24, s->tpa);
        off += 28;
    } else if (s->l3 == F_IP4) {
        uint32_t ihl = 20u + s->ip4_opts;
        uint32_t l4 = l4_len(s->proto);
        l3[0] = (uint8_t)(0x40 | (ihl / 4));
        put16(l3 + 2, (uint16_t)(ihl + l4 + s->payload));
        put16(l3 + 6, s->frag_off);
        l3[8] = 64;
        l3[9] = s->proto;
        put32(l3 + 12, s->src4);
        put32(l3 + 16, s->dst4);
        off += ihl;
        off += put_l4(e + off, s);
    } else if (s->l3 == F_IP6) {
        l3[0] = 0x60;
        uint8_t first = s->ext6 ? 60 : s->frag6 ? 44 : s->proto;
        l3[6] = first;
        l3[7] = 64;
        memcpy(l3 + 8, s->src6, 16);
        memcpy(l3 + 24, s->dst6, 16);
        off += 40;
        for (unsigned k = 0; k < s->ext6; k++) {
            uint8_t next = k + 1 < s->ext6 ? 60 : s->frag6 ? 44 : s->proto;
            e[off] = next;
            e[off + 1] = 0; /* 8 bytes */
            memset(e + off + 2, 0, 6);
            off += 8;
        }
        if (s->frag6) {
            e[off] = s->proto;
            e[off + 1] = 0;
            put16(e + off + 2, (uint16_t)(s->frag_off << 3));
            memset(e + off + 4, 0, 4);
            off += 8;
        }
        put16(l3 + 4, (uint16_t)(off - 14 - 4 * s->vlans - 40 + l4_len(s->proto) + s->payload));
        off += put_l4(e + off, s);
    }
    off += s->payload;
    for (uint32_t i = 0; i < s->payload; i++)
        e[off - s->payload + i] = (uint8_t)(i * 7u + 3u);
    if (off < 60)
        off = 60; /* Ethernet minimum (without FCS) */
    return 12 + off;
}

struct fspec sw_udp4(const uint8_t src[6], const uint8_t dst[6], uint32_t sip, uint32_t dip,
                     uint16_t sport, uint16_t dport)
{
    struct fspec s = {.l3 = F_IP4, .proto = 17, .src4 = sip, .dst4 = dip, .sport = sport,
                      .dport = dport, .payload = 32};
    memcpy(s.src, src, 6);
    memcpy(s.dst, dst, 6);
    return s;
}

struct fspec sw_ip6(const uint8_t src[6], const uint8_t dst[6], const uint8_t *sip,
                    const uint8_t *dip, uint8_t proto)
{
    struct fspec s = {.l3 = F_IP6, .proto = proto, .sport = 1000, .dport = 2000, .payload = 16};
    memcpy(s.src, src, 6);
    memcpy(s.dst, dst, 6);
    memcpy(s.src6, sip, 16);
    memcpy(s.dst6, dip, 16);
    return s;
}

struct fspec sw_arp(const uint8_t src[6], uint32_t spa, uint32_t tpa)
{
    struct fspec s = {.l3 = F_ARP, .spa = spa, .tpa = tpa};
    memset(s.dst, 0xff, 6);
    memcpy(s.src, src, 6);
    memcpy(s.sha, src, 6);
    return s;
}
