/* virtio-net device model (virtio 1.2, 5.1), device side, one queue pair.
 *
 * Queue 0 receives (device -> guest), queue 1 transmits (guest -> device).
 * Frames leave and enter the device through a port (struct cw_net_port_ops):
 * each frame crossing a port is a 12-byte struct virtio_net_hdr_mrg_rxbuf
 * (num_buffers zero) followed by the Ethernet frame, so offload metadata
 * (checksum-needed, TSO segment size) travels with the frame and a 64 KiB TSO
 * segment crosses as one frame. Where the receiving guest did not negotiate an
 * offload the sender used, the device finishes the work in software
 * (checksum, segmentation) before writing into the guest.
 *
 * Portable: no OS calls, no allocation; the caller owns the struct (it is
 * large: it holds two chains and two frame-sized buffers, ~180 KiB). */
#ifndef CAUSEWAY_CORE_NET_H
#define CAUSEWAY_CORE_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio_spec.h"
#include "virtq.h"

#define CW_NET_RXQ 0
#define CW_NET_TXQ 1
#define CW_NET_NUM_QUEUES 2

/* Largest Ethernet frame (without virtio header) the device moves: an IP
 * datagram of 65535 bytes plus an Ethernet header with one VLAN tag. */
#define CW_NET_MAX_FRAME (65535u + 18u)
#define CW_NET_MIN_FRAME 14u
#define CW_NET_META_LEN 12u /* virtio_net_hdr_mrg_rxbuf in front of every port frame */
#define CW_NET_MAX_MTU 65535u

/* Default work per call (frames), so one busy queue cannot starve others. */
#define CW_NET_DEFAULT_BUDGET 256u

enum cw_net_drop {
    CW_DROP_TX_SHORT,      /* chain shorter than the virtio header or a minimal frame */
    CW_DROP_TX_OVERSIZE,   /* frame longer than CW_NET_MAX_FRAME */
    CW_DROP_TX_BAD_OFFLOAD,/* offload request not negotiated or inconsistent */
    CW_DROP_TX_LINK_DOWN,  /* no peer attached */
    CW_DROP_RX_BAD_FRAME,  /* malformed frame from the port */
    CW_DROP_RX_NO_ROOM,    /* guest buffers too small for the frame (no MRG_RXBUF) */
    CW_DROP_RX_OFFLOAD,    /* frame needs software segmentation that could not be done */
    CW_DROP_GUEST_FAULT,   /* queue broken by a guest error; frame lost with it */
    CW_DROP__COUNT
};

const char *cw_net_drop_name(enum cw_net_drop d);

struct cw_net_stats {
    uint64_t tx_frames, tx_bytes; /* guest -> port, frames accepted */
    uint64_t rx_frames, rx_bytes; /* port -> guest, frames delivered */
    uint64_t interrupts[CW_NET_NUM_QUEUES]; /* interrupt callbacks made */
    uint64_t sw_csum, sw_segments; /* software offload work done for the guest */
    uint64_t drops[CW_DROP__COUNT];
};

/* The port a device sends to and receives from (a link, a switch port, or
 * a test double). Frames are CW_NET_META_LEN bytes of header + frame. */
struct cw_net_port_ops {
    /* Contiguous room for a frame of up to len bytes, or NULL when full. */
    void *(*tx_reserve)(void *ctx, uint32_t len);
    /* Hand over the frame written into the last reservation (len <= reserved). */
    void (*tx_commit)(void *ctx, uint32_t len);
    /* End of a batch: make committed frames visible, notify the peer once. */
    void (*tx_flush)(void *ctx);
    /* Next inbound frame, or NULL when none; *len is its length. */
    const void *(*rx_peek)(void *ctx, uint32_t *len);
    /* Done with the frame returned by the last rx_peek. */
    void (*rx_release)(void *ctx);
    /* End of a batch: return the space to the peer, notify it once. */
    void (*rx_flush)(void *ctx);
};

struct cw_net_params {
    uint8_t mac[6];
    uint16_t mtu;      /* offered with VIRTIO_NET_F_MTU; 0: feature not offered */
    bool offloads;     /* offer CSUM, GUEST_CSUM, TSO4/6, ECN */
    bool mrg_rxbuf;    /* offer MRG_RXBUF */
    uint32_t budget;   /* frames per cw_net_tx / cw_net_rx call; 0: default */
};

/* Result of one processing call. */
enum cw_net_result {
    CW_NET_IDLE,    /* nothing left; notifications armed (unless polling) */
    CW_NET_MORE,    /* budget used up, work remains: call again soon */
    CW_NET_BLOCKED, /* TX: port full. RX: guest has no buffers (kick armed). */
    CW_NET_BROKEN,  /* a queue is broken; see the queue's error */
};

struct cw_net {
    struct cw_vq vq[CW_NET_NUM_QUEUES];
    const struct cw_gmem *mem;
    uint64_t offered;    /* features this device offers */
    uint64_t features;   /* negotiated */
    uint32_t guest_hdr_len; /* 10 or 12 */
    uint32_t budget;
    bool link_up;
    /* The caller will look again soon without waiting for a notification
     * (it is polling while traffic flows): an empty TX queue or a full RX
     * queue does not ask the driver for a kick. A driver kick costs it a
     * syscall and wakes us for work we would find anyway. Clear it, and
     * call again, before sleeping: that pass arms and re-checks. */
    bool polling;
    struct virtio_net_config config;
    const struct cw_net_port_ops *port;
    void *port_ctx;
    /* Interrupt injection for queue q (an eventfd write, an IRQ line, ...). */
    void (*interrupt)(void *ctx, int q);
    void *irq_ctx;
    struct cw_net_stats stats;
    struct cw_chain chain;                              /* scratch chain */
    uint8_t scratch[CW_NET_META_LEN + CW_NET_MAX_FRAME]; /* software offload */
    /* MRG_RXBUF: the chains after the first of one frame (the first stays
     * in `chain` until its header, with num_buffers, is written last). */
    struct cw_chain rx_more;
    /* Segments of the port's head frame already delivered, when software
     * segmentation ran out of guest buffers midway: on the next call the
     * frame is segmented again and these are skipped (no duplicates). */
    uint32_t rx_seg_done;
    /* Software segmentation builds each segment here; `scratch` holds the
     * private copy of the frame being segmented. */
    uint8_t seg_buf[CW_NET_MAX_FRAME];
};

/* Features offered for a parameter set (always VERSION_1, EVENT_IDX,
 * INDIRECT_DESC, STATUS, MAC; MTU when params->mtu; offloads and MRG_RXBUF
 * when asked for). */
uint64_t cw_net_offered_features(const struct cw_net_params *p);

/* Initialise everything (queues stopped, no features, stats zero). The link
 * starts down: call cw_net_set_link(n, true) once a peer is attached. */
void cw_net_init(struct cw_net *n, const struct cw_net_params *p, const struct cw_gmem *mem,
                 const struct cw_net_port_ops *port, void *port_ctx,
                 void (*interrupt)(void *ctx, int q), void *irq_ctx);

/* Accept the driver's feature set: -1 if it holds a bit not offered or
 * breaks a dependency of the spec (e.g. GUEST_TSO4 without GUEST_CSUM). */
int cw_net_set_features(struct cw_net *n, uint64_t features);

/* Start / stop a queue (see cw_vq_setup / cw_vq_stop). */
enum cw_vq_error cw_net_queue_start(struct cw_net *n, int q, uint16_t num, uint64_t desc_gpa,
                                    uint64_t avail_gpa, uint64_t used_gpa,
                                    uint16_t last_avail_idx);
uint16_t cw_net_queue_stop(struct cw_net *n, int q);

/* Reset both queues (driver reset or frontend gone); keeps stats. */
void cw_net_reset(struct cw_net *n);

/* Link (carrier) state: while down, guest frames are dropped and counted. */
void cw_net_set_link(struct cw_net *n, bool up);

/* Move guest TX frames to the port, at most `budget` frames. */
enum cw_net_result cw_net_tx(struct cw_net *n);

/* Move port frames into guest RX buffers, at most `budget` frames. */
enum cw_net_result cw_net_rx(struct cw_net *n);

#endif
