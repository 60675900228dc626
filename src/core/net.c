/* virtio-net device model (virtio 1.2, 5.1), device side, one queue pair.
 *
 * TX (queue 1): guest chain -> validated virtio header + frame -> port.
 * RX (queue 0): port frame -> validated header -> (software offload where
 * the guest lacks the feature) -> guest buffers, merged with MRG_RXBUF.
 *
 * Trust: guest chains are validated by the virtqueue engine; the guest's
 * header and the port's header are each read once into a local and only the
 * local is used. Frames in the port are shared with the peer, so whatever is
 * computed from a frame's bytes (checksum, segmentation) runs on a private
 * copy in n->scratch. Work per call is bounded by n->budget frames. */
#include "net.h"

#include "offload.h"

/* Local copies of shared memory must not be re-read by the compiler. */
#define COMPILER_BARRIER() __atomic_signal_fence(__ATOMIC_SEQ_CST)

#define HAS(feat, bit) (((feat) & CW_BIT(bit)) != 0)

/* How many chains ahead of the one being handled the next guest buffers are
 * prefetched: a frame takes 60-180 ns here, a line from the driver's CPU
 * about as long, so four frames hide it with room to spare. */
#define CW_NET_PREFETCH_AHEAD 4u

/* Copy a guest virtio header (hlen is 10 or 12, set by cw_net_set_features)
 * as a constant-size copy the compiler inlines, not a libc call per frame. */
static inline void copy_hdr(void *dst, const void *src, uint32_t hlen)
{
    if (hlen == sizeof(struct virtio_net_hdr_mrg_rxbuf))
        __builtin_memcpy(dst, src, sizeof(struct virtio_net_hdr_mrg_rxbuf));
    else
        __builtin_memcpy(dst, src, sizeof(struct virtio_net_hdr));
}

static const char *const drop_names[CW_DROP__COUNT] = {
    [CW_DROP_TX_SHORT] = "tx_short",
    [CW_DROP_TX_OVERSIZE] = "tx_oversize",
    [CW_DROP_TX_BAD_OFFLOAD] = "tx_bad_offload",
    [CW_DROP_TX_LINK_DOWN] = "tx_link_down",
    [CW_DROP_RX_BAD_FRAME] = "rx_bad_frame",
    [CW_DROP_RX_NO_ROOM] = "rx_no_room",
    [CW_DROP_RX_OFFLOAD] = "rx_offload",
    [CW_DROP_GUEST_FAULT] = "guest_fault",
};

const char *cw_net_drop_name(enum cw_net_drop d)
{
    if ((unsigned)d >= CW_DROP__COUNT)
        return "unknown";
    return drop_names[d];
}

/* ---------------- configuration ---------------- */

/* The smallest MTU the spec lets a device advertise ("Device configuration
 * layout", device requirements); below it the MTU feature is not offered. */
#define MIN_MTU 68u

uint64_t cw_net_offered_features(const struct cw_net_params *p)
{
    /* VERSION_1 implies the any-layout framing, so ANY_LAYOUT (a legacy bit)
     * is not offered; UFO, the control queue, multiqueue and packed rings
     * are not implemented and never offered.
     * IN_ORDER promises what the engine does anyway: every chain goes back
     * in the order it was made available (sent or dropped, one at a time;
     * a blocked frame gives back only the chains it took last). A driver
     * that knows it may skip its per-buffer bookkeeping: DPDK's virtio
     * driver then takes its in-order paths, which touch fewer of the
     * lines this device writes (64 B frames, far CPUs: 5.1 -> 7.0 M/s). */
    uint64_t f = CW_BIT(VIRTIO_F_VERSION_1) | CW_BIT(VIRTIO_RING_F_EVENT_IDX) |
                 CW_BIT(VIRTIO_F_IN_ORDER) |
                 CW_BIT(VIRTIO_RING_F_INDIRECT_DESC) | CW_BIT(VIRTIO_NET_F_STATUS) |
                 CW_BIT(VIRTIO_NET_F_MAC);
    if (p->mtu >= MIN_MTU)
        f |= CW_BIT(VIRTIO_NET_F_MTU);
    if (p->mrg_rxbuf)
        f |= CW_BIT(VIRTIO_NET_F_MRG_RXBUF);
    if (p->offloads)
        f |= CW_BIT(VIRTIO_NET_F_CSUM) | CW_BIT(VIRTIO_NET_F_GUEST_CSUM) |
             CW_BIT(VIRTIO_NET_F_HOST_TSO4) | CW_BIT(VIRTIO_NET_F_HOST_TSO6) |
             CW_BIT(VIRTIO_NET_F_HOST_ECN) | CW_BIT(VIRTIO_NET_F_GUEST_TSO4) |
             CW_BIT(VIRTIO_NET_F_GUEST_TSO6) | CW_BIT(VIRTIO_NET_F_GUEST_ECN);
    return f;
}

void cw_net_init(struct cw_net *n, const struct cw_net_params *p, const struct cw_gmem *mem,
                 const struct cw_net_port_ops *port, void *port_ctx,
                 void (*interrupt)(void *ctx, int q), void *irq_ctx)
{
    /* Once, outside the data path: every field starts from a known value. */
    __builtin_memset(n, 0, sizeof(*n));
    n->mem = mem;
    n->offered = cw_net_offered_features(p);
    n->features = 0;
    n->guest_hdr_len = sizeof(struct virtio_net_hdr);
    n->budget = p->budget ? p->budget : CW_NET_DEFAULT_BUDGET;
    n->link_up = false;
    __builtin_memcpy(n->config.mac, p->mac, sizeof(n->config.mac));
    n->config.status = 0;
    n->config.max_virtqueue_pairs = 1;
    n->config.mtu = p->mtu;
    n->port = port;
    n->port_ctx = port_ctx;
    n->interrupt = interrupt;
    n->irq_ctx = irq_ctx;
}

int cw_net_set_features(struct cw_net *n, uint64_t f)
{
    if (f & ~n->offered)
        return -1;
    /* Spec "Feature bit requirements" (virtio-net). */
    bool host_tso = HAS(f, VIRTIO_NET_F_HOST_TSO4) || HAS(f, VIRTIO_NET_F_HOST_TSO6);
    bool guest_tso = HAS(f, VIRTIO_NET_F_GUEST_TSO4) || HAS(f, VIRTIO_NET_F_GUEST_TSO6);
    if (host_tso && !HAS(f, VIRTIO_NET_F_CSUM))
        return -1;
    if (guest_tso && !HAS(f, VIRTIO_NET_F_GUEST_CSUM))
        return -1;
    if (HAS(f, VIRTIO_NET_F_HOST_ECN) && !host_tso)
        return -1;
    if (HAS(f, VIRTIO_NET_F_GUEST_ECN) && !guest_tso)
        return -1;
    n->features = f;
    /* Spec "Device Operation": the 12-byte header (with num_buffers) with VERSION_1 or
     * MRG_RXBUF, the 10-byte legacy one otherwise. */
    n->guest_hdr_len = (HAS(f, VIRTIO_F_VERSION_1) || HAS(f, VIRTIO_NET_F_MRG_RXBUF))
                           ? sizeof(struct virtio_net_hdr_mrg_rxbuf)
                           : sizeof(struct virtio_net_hdr);
    return 0;
}

enum cw_vq_error cw_net_queue_start(struct cw_net *n, int q, uint16_t num, uint64_t desc_gpa,
                                    uint64_t avail_gpa, uint64_t used_gpa,
                                    uint16_t last_avail_idx)
{
    /* The index comes from the frontend: no such queue, no such ring. */
    if (q < 0 || q >= CW_NET_NUM_QUEUES)
        return CW_VQ_ERR_RING_ADDR;
    return cw_vq_setup(&n->vq[q], n->mem, num, desc_gpa, avail_gpa, used_gpa, n->features,
                       last_avail_idx);
}

uint16_t cw_net_queue_stop(struct cw_net *n, int q)
{
    if (q < 0 || q >= CW_NET_NUM_QUEUES)
        return 0;
    return cw_vq_stop(&n->vq[q]);
}

void cw_net_reset(struct cw_net *n)
{
    /* A reset forgets the queues entirely, including a broken state: the
     * driver starts over. Features stay until renegotiated. */
    __builtin_memset(n->vq, 0, sizeof(n->vq));
    n->rx_seg_done = 0;
}

void cw_net_set_link(struct cw_net *n, bool up)
{
    n->link_up = up;
    n->config.status = up ? VIRTIO_NET_S_LINK_UP : 0;
}

/* One interrupt per call, only if something was published and the driver
 * asked for it. */
static void maybe_interrupt(struct cw_net *n, int q, uint16_t published_before)
{
    struct cw_vq *vq = &n->vq[q];
    if (vq->published_used == published_before || !cw_vq_need_interrupt(vq))
        return;
    n->stats.interrupts[q]++;
    if (n->interrupt)
        n->interrupt(n->irq_ctx, q);
}

/* ---------------- TX: guest -> port ---------------- */

enum tx_rc { TX_DONE, TX_SENT, TX_BLOCKED, TX_BROKEN };

static void drop(struct cw_net *n, enum cw_net_drop d)
{
    n->stats.drops[d]++;
}

/* Is the guest's offload request one we agreed to (spec "Packet Transmission")? */
static bool tx_offload_ok(const struct cw_net *n, const struct virtio_net_hdr *h, uint32_t flen)
{
    uint64_t f = n->features;
    uint8_t gso = h->gso_type;
    uint8_t base = gso & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    switch (base) {
    case VIRTIO_NET_HDR_GSO_NONE:
        if (gso & VIRTIO_NET_HDR_GSO_ECN)
            return false;
        break;
    case VIRTIO_NET_HDR_GSO_TCPV4:
        if (!HAS(f, VIRTIO_NET_F_HOST_TSO4))
            return false;
        break;
    case VIRTIO_NET_HDR_GSO_TCPV6:
        if (!HAS(f, VIRTIO_NET_F_HOST_TSO6))
            return false;
        break;
    default: /* UDP (never offered) and unknown types */
        return false;
    }
    if (base != VIRTIO_NET_HDR_GSO_NONE) {
        if ((gso & VIRTIO_NET_HDR_GSO_ECN) && !HAS(f, VIRTIO_NET_F_HOST_ECN))
            return false;
        if (h->gso_size == 0)
            return false;
    }
    if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        if (!HAS(f, VIRTIO_NET_F_CSUM))
            return false;
        /* The 16-bit field must lie inside the frame; 32-bit sum of two
         * 16-bit values plus 2 cannot wrap. */
        if ((uint32_t)h->csum_start + h->csum_offset + 2u > flen)
            return false;
    }
    return true;
}

static enum tx_rc tx_one(struct cw_net *n, const struct cw_chain *c)
{
    struct cw_vq *vq = &n->vq[CW_NET_TXQ];
    uint32_t hlen = n->guest_hdr_len;

    if (!n->link_up || !n->port) {
        drop(n, CW_DROP_TX_LINK_DOWN);
        return TX_DONE;
    }
    /* out_bytes >= hlen + 14 before any subtraction: no underflow. */
    if (c->out_bytes < hlen + CW_NET_MIN_FRAME) {
        drop(n, CW_DROP_TX_SHORT);
        return TX_DONE;
    }
    uint32_t flen = c->out_bytes - hlen;
    if (flen > CW_NET_MAX_FRAME) {
        drop(n, CW_DROP_TX_OVERSIZE);
        return TX_DONE;
    }

    /* The guest header, read once; only this copy is validated and sent.
     * Where the whole chain is one buffer (Linux puts the header in front
     * of the frame), one translation serves the header and the frame. */
    struct virtio_net_hdr_mrg_rxbuf h;
    __builtin_memset(&h, 0, sizeof(h));
    const uint8_t *src = cw_vq_out_ptr(vq, c, 0, hlen + flen);
    if (src) {
        copy_hdr(&h, src, hlen);
        COMPILER_BARRIER(); /* the guest may rewrite it; use the copy */
    } else if (cw_vq_read_out(vq, c, 0, &h, hlen) != (int64_t)hlen) {
        return TX_BROKEN;
    }
    if (!tx_offload_ok(n, &h.hdr, flen)) {
        drop(n, CW_DROP_TX_BAD_OFFLOAD);
        return TX_DONE;
    }
    /* Canonical port header: only NEEDS_CSUM may come from a driver
     * (DATA_VALID is receive-only: "Packet Transmission", driver
     * requirements), fields without meaning zeroed, num_buffers 0. */
    h.hdr.flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM;
    if (!(h.hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
        h.hdr.csum_start = h.hdr.csum_offset = 0;
    if (h.hdr.gso_type == VIRTIO_NET_HDR_GSO_NONE)
        h.hdr.gso_size = 0;
    h.num_buffers = 0;

    uint8_t *dst = n->port->tx_reserve(n->port_ctx, CW_NET_META_LEN + flen);
    if (!dst)
        return TX_BLOCKED;
    __builtin_memcpy(dst, &h, CW_NET_META_LEN);
    /* The one copy of the frame: guest memory straight into the port. An
     * uncommitted reservation is simply reused by the next reserve. */
    if (src)
        __builtin_memcpy(dst + CW_NET_META_LEN, src + hlen, flen);
    else if (cw_vq_read_out(vq, c, hlen, dst + CW_NET_META_LEN, flen) != (int64_t)flen)
        return TX_BROKEN;
    n->port->tx_commit(n->port_ctx, CW_NET_META_LEN + flen);
    n->stats.tx_frames++;
    n->stats.tx_bytes += flen;
    return TX_SENT;
}

enum cw_net_result cw_net_tx(struct cw_net *n)
{
    struct cw_vq *vq = &n->vq[CW_NET_TXQ];
    if (cw_vq_broken(vq))
        return CW_NET_BROKEN;
    if (!vq->ready)
        return CW_NET_IDLE;

    uint16_t published = vq->published_used;
    bool sent = false;
    uint32_t done = 0;
    enum cw_net_result res = CW_NET_IDLE;

    /* No kicks while we are draining anyway. */
    cw_vq_set_notify(vq, false);
    for (;;) {
        if (done >= n->budget) {
            res = CW_NET_MORE;
            break;
        }
        cw_vq_prefetch(vq, CW_NET_PREFETCH_AHEAD, false);
        int r = cw_vq_pop(vq, &n->chain);
        if (r < 0) {
            drop(n, CW_DROP_GUEST_FAULT);
            res = CW_NET_BROKEN;
            break;
        }
        if (r == 0) {
            /* Empty: re-arm kicks, then look once more for a chain that
             * raced with the re-arming. */
            if (n->polling)
                break;
            if (cw_vq_set_notify(vq, true)) {
                cw_vq_set_notify(vq, false);
                continue;
            }
            res = CW_NET_IDLE;
            break;
        }
        enum tx_rc rc = tx_one(n, &n->chain);
        if (rc == TX_BLOCKED) {
            /* Port full: the chain stays available and is sent on the
             * next call, after the peer frees space. */
            cw_vq_unpop(vq, 1);
            res = CW_NET_BLOCKED;
            break;
        }
        if (rc == TX_BROKEN) {
            drop(n, CW_DROP_GUEST_FAULT);
            res = CW_NET_BROKEN;
            break;
        }
        sent |= rc == TX_SENT;
        /* Sent or dropped, the buffer goes back to the guest. */
        cw_vq_push(vq, n->chain.head, 0);
        done++;
    }

    cw_vq_flush(vq);
    if (sent)
        n->port->tx_flush(n->port_ctx);
    maybe_interrupt(n, CW_NET_TXQ, published);
    return cw_vq_broken(vq) ? CW_NET_BROKEN : res;
}

/* ---------------- RX: port -> guest ---------------- */

/* Outcomes of delivering one frame (positive: cw_offload_segment passes a
 * non-zero emit result through, and -1 is its own "malformed"). */
enum rx_rc {
    RX_OK = 0,     /* delivered, or dropped and counted: release the frame */
    RX_NOBUF = 1,  /* no (or not enough) guest buffers: keep the frame */
    RX_BROKEN = 2, /* the queue broke */
    RX_NOROOM = 3, /* the frame can never fit the guest's buffers */
};

/* Write one frame, preceded by the guest header *hdr, into guest buffers.
 * On RX_NOBUF *popped tells how many chains were tried (all given back). */
static enum rx_rc deliver(struct cw_net *n, struct virtio_net_hdr_mrg_rxbuf *hdr,
                          const uint8_t *data, uint32_t dlen, uint16_t *popped)
{
    struct cw_vq *vq = &n->vq[CW_NET_RXQ];
    uint32_t hlen = n->guest_hdr_len;
    struct cw_chain *first = &n->chain;

    *popped = 0;
    cw_vq_prefetch(vq, CW_NET_PREFETCH_AHEAD, true);
    int r = cw_vq_pop(vq, first);
    if (r < 0)
        return RX_BROKEN;
    if (r == 0)
        return RX_NOBUF;

    if (!HAS(n->features, VIRTIO_NET_F_MRG_RXBUF)) {
        /* "Setting Up Receive Buffers": without MRG_RXBUF each buffer holds
         * a whole frame. */
        if (first->in_bytes < hlen + dlen) {
            cw_vq_unpop(vq, 1);
            return RX_NOROOM;
        }
        hdr->num_buffers = 1; /* "Processing of Incoming Packets": 1 without MRG */
        uint8_t *dst = cw_vq_in_ptr(vq, first, 0, hlen + dlen);
        if (dst) {
            copy_hdr(dst, hdr, hlen);
            __builtin_memcpy(dst + hlen, data, dlen);
        } else if (cw_vq_write_in(vq, first, 0, hdr, hlen) < 0 ||
                   cw_vq_write_in(vq, first, hlen, data, dlen) < 0) {
            return RX_BROKEN;
        }
        cw_vq_push(vq, first->head, hlen + dlen);
        return RX_OK;
    }

    /* MRG_RXBUF: the header sits at the start of the first buffer; each
     * buffer but the last is filled completely ("Processing of Incoming
     * Packets", device requirements). */
    if (first->in_bytes < hlen) {
        cw_vq_unpop(vq, 1);
        return RX_NOROOM;
    }
    uint32_t part = first->in_bytes - hlen;
    if (part > dlen)
        part = dlen;
    /* Header and first part in one buffer (Linux's mergeable buffers are
     * single descriptors): one translation for both writes. */
    uint8_t *head = cw_vq_in_ptr(vq, first, 0, hlen + part);
    if (head)
        __builtin_memcpy(head + hlen, data, part);
    else if (cw_vq_write_in(vq, first, hlen, data, part) < 0)
        return RX_BROKEN;
    cw_vq_push(vq, first->head, hlen + part);
    uint32_t off = part;
    uint16_t k = 1;

    while (off < dlen) {
        /* All of the ring's buffers are not enough: they never will be. */
        if (k >= vq->num) {
            cw_vq_unpush(vq, k);
            cw_vq_unpop(vq, k);
            return cw_vq_broken(vq) ? RX_BROKEN : RX_NOROOM;
        }
        r = cw_vq_pop(vq, &n->rx_more);
        if (r < 0)
            return RX_BROKEN;
        if (r == 0) {
            /* Give everything back; the guest saw none of it (nothing was
             * flushed), so the bytes already written are harmless. */
            cw_vq_unpush(vq, k);
            cw_vq_unpop(vq, k);
            *popped = k;
            return cw_vq_broken(vq) ? RX_BROKEN : RX_NOBUF;
        }
        part = n->rx_more.in_bytes;
        if (part > dlen - off)
            part = dlen - off;
        uint8_t *dst = cw_vq_in_ptr(vq, &n->rx_more, 0, part);
        if (dst)
            __builtin_memcpy(dst, data + off, part);
        else if (cw_vq_write_in(vq, &n->rx_more, 0, data + off, part) < 0)
            return RX_BROKEN;
        cw_vq_push(vq, n->rx_more.head, part);
        off += part;
        k++;
    }
    /* Now that the count is known, the header goes in last. */
    hdr->num_buffers = k;
    if (head)
        copy_hdr(head, hdr, hlen);
    else if (cw_vq_write_in(vq, first, 0, hdr, hlen) < 0)
        return RX_BROKEN;
    return cw_vq_broken(vq) ? RX_BROKEN : RX_OK;
}

/* Account for a delivery outcome; returns what the caller acts on. */
static enum rx_rc rx_account(struct cw_net *n, enum rx_rc rc, uint32_t dlen)
{
    switch (rc) {
    case RX_OK:
        n->stats.rx_frames++;
        n->stats.rx_bytes += dlen;
        return RX_OK;
    case RX_NOROOM:
        drop(n, CW_DROP_RX_NO_ROOM);
        return RX_OK;
    case RX_BROKEN:
        drop(n, CW_DROP_GUEST_FAULT);
        return RX_BROKEN;
    case RX_NOBUF:
    default:
        return RX_NOBUF;
    }
}

struct seg_ctx {
    struct cw_net *n;
    uint32_t idx;    /* segment being emitted */
    uint16_t popped; /* on RX_NOBUF: chains tried for it */
};

/* cw_offload_segment's callback: each segment is a frame of its own, with
 * complete checksums and no offload left to do. */
static int emit_segment(void *ctx, const uint8_t *seg, uint32_t len)
{
    struct seg_ctx *s = ctx;
    struct cw_net *n = s->n;
    /* Delivered by an earlier call that ran out of buffers midway. */
    if (s->idx < n->rx_seg_done) {
        s->idx++;
        return 0;
    }
    struct virtio_net_hdr_mrg_rxbuf h;
    __builtin_memset(&h, 0, sizeof(h));
    /* The checksums were just computed: a guest that can use the hint may
     * skip verifying them (only allowed with GUEST_CSUM). */
    if (HAS(n->features, VIRTIO_NET_F_GUEST_CSUM))
        h.hdr.flags = VIRTIO_NET_HDR_F_DATA_VALID;
    enum rx_rc rc = deliver(n, &h, seg, len, &s->popped);
    if (rc == RX_OK) {
        n->stats.rx_frames++;
        n->stats.rx_bytes += len;
        n->stats.sw_segments++;
        s->idx++;
        n->rx_seg_done = s->idx;
    }
    return (int)rc;
}

/* Segment a GSO frame for a guest that cannot take it whole. */
static enum rx_rc rx_segment(struct cw_net *n, const struct virtio_net_hdr_mrg_rxbuf *meta,
                             const uint8_t *data, uint32_t flen, uint16_t *popped)
{
    /* Private copy: the peer can still write the port's copy, and the
     * segmenter reads headers more than once. */
    __builtin_memcpy(n->scratch, data, flen);
    struct seg_ctx s = {.n = n, .idx = 0, .popped = 0};
    int rc = cw_offload_segment(n->scratch, flen, &meta->hdr, n->seg_buf, sizeof(n->seg_buf),
                                emit_segment, &s);
    *popped = s.popped;
    if (rc < 0) {
        drop(n, CW_DROP_RX_OFFLOAD);
        return RX_OK;
    }
    if (rc == RX_NOROOM) {
        drop(n, CW_DROP_RX_NO_ROOM);
        return RX_OK;
    }
    if (rc == RX_BROKEN) {
        drop(n, CW_DROP_GUEST_FAULT);
        return RX_BROKEN;
    }
    return (enum rx_rc)rc; /* RX_OK or RX_NOBUF */
}

/* Is the port frame's header well formed? (It came from another domain.) */
static bool rx_header_ok(const struct virtio_net_hdr *h, uint32_t flen)
{
    uint8_t base = h->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    if (base == VIRTIO_NET_HDR_GSO_NONE) {
        if (h->gso_type & VIRTIO_NET_HDR_GSO_ECN)
            return false;
    } else if (base == VIRTIO_NET_HDR_GSO_TCPV4 || base == VIRTIO_NET_HDR_GSO_TCPV6) {
        if (h->gso_size == 0)
            return false;
    } else {
        return false;
    }
    if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
        (uint32_t)h->csum_start + h->csum_offset + 2u > flen)
        return false;
    return true;
}

/* Handle the port's head frame. RX_OK: release it; RX_NOBUF: keep it. */
static enum rx_rc rx_one(struct cw_net *n, const uint8_t *frame, uint32_t len, uint16_t *popped)
{
    *popped = 0;
    if (len < CW_NET_META_LEN + CW_NET_MIN_FRAME || len > CW_NET_META_LEN + CW_NET_MAX_FRAME) {
        drop(n, CW_DROP_RX_BAD_FRAME);
        return RX_OK;
    }
    struct virtio_net_hdr_mrg_rxbuf meta;
    __builtin_memcpy(&meta, frame, sizeof(meta));
    COMPILER_BARRIER(); /* the peer may rewrite the header; use the copy */
    const uint8_t *data = frame + CW_NET_META_LEN;
    uint32_t flen = len - CW_NET_META_LEN;
    if (!rx_header_ok(&meta.hdr, flen)) {
        drop(n, CW_DROP_RX_BAD_FRAME);
        return RX_OK;
    }

    uint64_t f = n->features;
    uint8_t gso = meta.hdr.gso_type;
    uint8_t base = gso & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    if (base != VIRTIO_NET_HDR_GSO_NONE) {
        bool whole = base == VIRTIO_NET_HDR_GSO_TCPV4 ? HAS(f, VIRTIO_NET_F_GUEST_TSO4)
                                                      : HAS(f, VIRTIO_NET_F_GUEST_TSO6);
        if ((gso & VIRTIO_NET_HDR_GSO_ECN) && !HAS(f, VIRTIO_NET_F_GUEST_ECN))
            whole = false;
        if (!whole)
            return rx_segment(n, &meta, data, flen, popped);
    }

    struct virtio_net_hdr_mrg_rxbuf out = meta;
    out.num_buffers = 0;
    out.hdr.flags &= VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID;
    const uint8_t *src = data;
    bool sw_csum = false;
    if (!HAS(f, VIRTIO_NET_F_GUEST_CSUM)) {
        if (out.hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
            /* The guest expects complete checksums: finish it on a private
             * copy (the sum must match the bytes the guest receives). */
            __builtin_memcpy(n->scratch, data, flen);
            if (cw_offload_finish_csum(n->scratch, flen, meta.hdr.csum_start,
                                       meta.hdr.csum_offset) < 0) {
                drop(n, CW_DROP_RX_OFFLOAD);
                return RX_OK;
            }
            sw_csum = true;
            src = n->scratch;
        }
        /* Neither flag may reach a guest without GUEST_CSUM ("Processing of
         * Incoming Packets", device requirements). */
        out.hdr.flags = 0;
    }
    if (!(out.hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
        out.hdr.csum_start = out.hdr.csum_offset = 0;
    if (base == VIRTIO_NET_HDR_GSO_NONE)
        out.hdr.gso_size = 0;
    enum rx_rc rc = deliver(n, &out, src, flen, popped);
    if (rc == RX_OK && sw_csum)
        n->stats.sw_csum++; /* counted once, when the result reached the guest */
    return rx_account(n, rc, flen);
}

enum cw_net_result cw_net_rx(struct cw_net *n)
{
    struct cw_vq *vq = &n->vq[CW_NET_RXQ];
    if (cw_vq_broken(vq))
        return CW_NET_BROKEN;
    /* Not started, or no peer: frames wait in the port. */
    if (!vq->ready || !n->link_up || !n->port)
        return CW_NET_IDLE;

    uint16_t published = vq->published_used;
    bool released = false;
    /* Buffers were asked for (the queue ran dry) and we are here to use
     * them: no more refill kicks until it runs dry again. A driver that
     * reads used->flags (no EVENT_IDX: DPDK's virtio PMD) would otherwise
     * kick on every refill from then on. */
    if (vq->notify_enabled)
        cw_vq_set_notify(vq, false);
    uint32_t done = 0;
    enum cw_net_result res = CW_NET_IDLE;

    for (;;) {
        if (done >= n->budget) {
            res = CW_NET_MORE;
            break;
        }
        uint32_t len = 0;
        const uint8_t *frame = n->port->rx_peek(n->port_ctx, &len);
        if (!frame) {
            /* Nothing to deliver: the guest need not kick us for refills. */
            cw_vq_set_notify(vq, false);
            res = CW_NET_IDLE;
            break;
        }
        uint16_t popped = 0;
        enum rx_rc rc = rx_one(n, frame, len, &popped);
        if (rc == RX_NOBUF) {
            if (n->polling) {
                res = CW_NET_BLOCKED;
                break;
            }
            /* Ask for a kick on the next refill, then look again: buffers
             * added meanwhile (more than the ones just given back) would
             * otherwise go unnoticed until the next kick that never comes. */
            cw_vq_set_notify(vq, true);
            if (!cw_vq_broken(vq) && cw_vq_avail_count(vq) > popped)
                continue;
            res = cw_vq_broken(vq) ? CW_NET_BROKEN : CW_NET_BLOCKED;
            break;
        }
        n->port->rx_release(n->port_ctx);
        n->rx_seg_done = 0;
        released = true;
        done++;
        if (rc == RX_BROKEN) {
            res = CW_NET_BROKEN;
            break;
        }
    }

    cw_vq_flush(vq);
    if (released)
        n->port->rx_flush(n->port_ctx);
    maybe_interrupt(n, CW_NET_RXQ, published);
    return cw_vq_broken(vq) ? CW_NET_BROKEN : res;
}
