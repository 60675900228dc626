/* Frame builder for the switch tests: port records (12-byte virtio header +
 * Ethernet frame) with ARP, IPv4 or IPv6 and a TCP/UDP/ICMP header. */
#ifndef CAUSEWAY_TESTS_SW_FRAMES_H
#define CAUSEWAY_TESTS_SW_FRAMES_H

#include <stdint.h>

enum fl3 { F_RAW, F_ARP, F_IP4, F_IP6 };

struct fspec {
    uint8_t dst[6], src[6];
    unsigned vlans;        /* 802.1Q tags in front of the L3 type */
    uint16_t ethertype;    /* F_RAW only */
    enum fl3 l3;
    /* ARP (request) */
    uint8_t sha[6];
    uint32_t spa, tpa;
    /* IP */
    uint32_t src4, dst4;
    uint8_t src6[16], dst6[16];
    uint8_t proto;         /* 6 tcp (20-byte header), 17 udp (8), 1/58 icmp (8), else 4 bytes */
    uint16_t sport, dport;
    uint8_t icmp_type;
    uint8_t ip4_opts;      /* IPv4 option bytes (multiple of 4) */
    uint16_t frag_off;     /* IPv4 fragment offset in 8-byte units / IPv6 fragment header offset */
    unsigned ext6;         /* IPv6: 8-byte destination-options headers before L4 */
    int frag6;             /* IPv6: add a fragment header */
    uint32_t payload;      /* bytes after the L4 header */
    /* virtio header */
    uint8_t flags, gso_type;
    uint16_t gso_size, csum_start, csum_offset;
};

/* Build into rec (cap bytes); returns the record length. */
uint32_t sw_build(uint8_t *rec, uint32_t cap, const struct fspec *s);

/* Convenience specs. */
struct fspec sw_udp4(const uint8_t src[6], const uint8_t dst[6], uint32_t sip, uint32_t dip,
                     uint16_t sport, uint16_t dport);
struct fspec sw_ip6(const uint8_t src[6], const uint8_t dst[6], const uint8_t *sip,
                    const uint8_t *dip, uint8_t proto);
struct fspec sw_arp(const uint8_t src[6], uint32_t spa, uint32_t tpa);

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

/* Offsets inside a record built without VLAN tags / options. */
#define REC_ETH 12u
#define REC_IP (REC_ETH + 14u)
#define REC_L4_4 (REC_IP + 20u)
#define REC_L4_6 (REC_IP + 40u)

#endif
