/* Virtio 1.2 wire structures and constants used by the device core.
 *
 * Everything here is little-endian in guest memory. Causeway's hosts are
 * little-endian (x86-64, AArch64) and the core only serves VIRTIO_F_VERSION_1
 * style little-endian layouts, so fields are read as native integers.
 * Portable: no OS headers beyond the freestanding ones. */
#ifndef CAUSEWAY_CORE_VIRTIO_SPEC_H
#define CAUSEWAY_CORE_VIRTIO_SPEC_H

#include <stdint.h>

/* Feature bits (virtio 1.2, section 6 and 5.1.3). */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU 3
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_GUEST_UFO 10
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_HOST_UFO 14
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_MQ 22
#define VIRTIO_F_NOTIFY_ON_EMPTY 24
#define VIRTIO_F_ANY_LAYOUT 27
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_F_RING_PACKED 34
#define VIRTIO_F_IN_ORDER 35

#define CW_BIT(n) (1ULL << (n))

/* Split virtqueue descriptor (2.7.5). */
#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

/* Driver area: flags, idx, ring[num], used_event (with EVENT_IDX). */
#define VRING_AVAIL_F_NO_INTERRUPT 1
struct vring_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[];
};

/* Device area: flags, idx, ring[num], avail_event (with EVENT_IDX). */
#define VRING_USED_F_NO_NOTIFY 1
struct vring_used_elem {
    uint32_t id;
    uint32_t len;
};
struct vring_used {
    uint16_t flags;
    uint16_t idx;
    struct vring_used_elem ring[];
};

static inline uint64_t vring_desc_size(uint32_t num) { return 16ULL * num; }
static inline uint64_t vring_avail_size(uint32_t num) { return 4ULL + 2ULL * num + 2ULL; }
static inline uint64_t vring_used_size(uint32_t num) { return 4ULL + 8ULL * num + 2ULL; }

/* virtio_net_hdr (5.1.6). The 10-byte form; with VERSION_1 or MRG_RXBUF the
 * driver's header is 12 bytes, the extra field being num_buffers. */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE 0
#define VIRTIO_NET_HDR_GSO_TCPV4 1
#define VIRTIO_NET_HDR_GSO_UDP 3
#define VIRTIO_NET_HDR_GSO_TCPV6 4
#define VIRTIO_NET_HDR_GSO_ECN 0x80

struct virtio_net_hdr {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
};

struct virtio_net_hdr_mrg_rxbuf {
    struct virtio_net_hdr hdr;
    uint16_t num_buffers;
};

/* Device configuration layout (5.1.4). */
#define VIRTIO_NET_S_LINK_UP 1
struct virtio_net_config {
    uint8_t mac[6];
    uint16_t status;
    uint16_t max_virtqueue_pairs;
    uint16_t mtu;
} __attribute__((packed));

_Static_assert(sizeof(struct vring_desc) == 16, "vring_desc layout");
_Static_assert(sizeof(struct virtio_net_hdr) == 10, "virtio_net_hdr layout");
_Static_assert(sizeof(struct virtio_net_hdr_mrg_rxbuf) == 12, "mrg hdr layout");
_Static_assert(sizeof(struct virtio_net_config) == 12, "net config layout");

#endif
