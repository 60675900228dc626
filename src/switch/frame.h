/* Header parsing for the switch: what anti-spoofing and the policy look at.
 *
 * The parser runs on the switch's private copy of the first bytes of a port
 * record (CW_FRAME_PREFIX: the 12-byte virtio_net_hdr_mrg_rxbuf, then the
 * Ethernet frame), never on the sender's ring, so the sender cannot change a
 * header between the check and its use. It reads nothing beyond that copy:
 * a header that does not fit in it is reported as unknown, which makes every
 * check that needs it fail closed (see switch.c).
 *
 * decided_end records how far into the Ethernet frame the parse read: the
 * switch delivers exactly these bytes from its copy, and refuses a checksum
 * offload that would make the receiver rewrite any of them.
 *
 * Portable: no OS calls, no allocation. */
#ifndef CAUSEWAY_SWITCH_FRAME_H
#define CAUSEWAY_SWITCH_FRAME_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/net.h"

/* Bytes of a record (header + frame) the switch copies before deciding:
 * room for the virtio header, two VLAN tags, an IPv6 header with a few
 * extension headers and the start of the L4 header. */
#define CW_FRAME_PREFIX 256u
#define CW_FRAME_MAX_VLANS 2u

#define CW_ETH_IPV4 0x0800u
#define CW_ETH_ARP 0x0806u
#define CW_ETH_IPV6 0x86DDu
#define CW_ETH_VLAN 0x8100u
#define CW_ETH_QINQ 0x88A8u

#define CW_IPPROTO_ICMP 1u
#define CW_IPPROTO_TCP 6u
#define CW_IPPROTO_UDP 17u
#define CW_IPPROTO_ICMPV6 58u
#define CW_IPPROTO_SCTP 132u
#define CW_IPPROTO_UDPLITE 136u

enum cw_l3 { CW_L3_OTHER, CW_L3_ARP, CW_L3_IPV4, CW_L3_IPV6 };

struct cw_frame {
    /* The virtio header of the record. */
    uint8_t flags, gso_type;
    uint16_t gso_size, csum_start, csum_offset;
    uint32_t frame_len;     /* Ethernet bytes (record length minus the header) */

    uint8_t dst[6], src[6];
    uint16_t ethertype;     /* outermost */
    uint16_t l3_type;       /* after the VLAN tags */
    uint8_t vlans;          /* tags walked, at most CW_FRAME_MAX_VLANS */
    bool vlan_overflow;     /* more tags than that: l3_type is still a tag */
    uint32_t l3_off;        /* frame offset of the L3 header */

    enum cw_l3 l3;          /* by l3_type; meaningful fields only if l3_ok */
    bool l3_ok;             /* the L3 header is complete and well formed */
    uint8_t arp_sha[6];
    uint32_t arp_spa, arp_tpa; /* host byte order */
    uint32_t src4, dst4;       /* host byte order */
    uint8_t src6[16], dst6[16];

    bool has_proto;         /* the upper-layer protocol is known */
    uint8_t proto;
    bool fragment;          /* a non-first fragment: no L4 header in it */
    uint32_t l4_off;        /* frame offset of the L4 header (if has_proto) */
    bool has_ports;         /* tcp/udp/sctp/udplite ports were read */
    uint16_t sport, dport;
    bool has_icmp;          /* ICMP (v4 proto 1, v6 proto 58) type was read */
    uint8_t icmp_type;

    uint32_t decided_end;   /* frame offset: every byte parsed lies below it */
};

static inline bool cw_mac_is_group(const uint8_t mac[6]) { return (mac[0] & 1u) != 0; }

/* Parse `copied` bytes of a record (header + frame) whose full length is
 * `len`. Requires len >= CW_NET_META_LEN + CW_NET_MIN_FRAME and copied ==
 * min(len, CW_FRAME_PREFIX) (the caller checks the first and copies). */
void cw_frame_parse(struct cw_frame *f, const uint8_t *rec, uint32_t copied, uint32_t len);

#endif
