/* Fuzz target: the virtio-net device model, both directions.
 *
 * A simulated guest (one memory region, translating or copying gmem) plays
 * an honest driver whose data is hostile: TX chains carry virtio_net_hdr and
 * frames straight from the input (bad offload requests, lengths, GSO fields),
 * RX buffers have input-chosen sizes and layouts, and the port delivers
 * input frames with hostile meta headers (GSO type and size, checksum
 * offsets) to a guest with or without MRG_RXBUF, GUEST_CSUM and GUEST_TSO,
 * so the software offload paths (checksum, segmentation) run. Optionally the
 * guest also scribbles on its rings (then only "no crash" is checked).
 *
 * Input layout:
 *   u8  cfg     bit0 translating gmem, bit1 offer offloads, bit2 offer
 *               MRG_RXBUF, bit3 link up, bit4 TX chains as indirect tables,
 *               bit5 RX buffers as two-descriptor chains, bit6 features
 *               unmasked, bit7 allow hostile memory writes and injected
 *               gmem faults
 *   u64 features (negotiated: masked to the offer unless bit6)
 *   u8  budget, u8 rx ring size sel, u8 tx ring size sel
 *   u8  TX packets, each: u8 segments (1-4), u16 length each, then the
 *       packet's bytes (virtio header + frame), zero-padded
 *   u8  RX buffers, each: u16 size
 *   u8  port frames, each: u16 len, u8 len_hi, then the bytes
 *   the rest: operations (see the op switch)
 *
 * Oracles while the guest is honest: every TX frame the port receives has a
 * canonical header (only NEEDS_CSUM, offloads only as negotiated, checksum
 * field inside the frame, num_buffers 0) and is byte-for-byte a frame the
 * guest queued, in order; every used entry names a chain the guest had
 * outstanding with a length within it; every RX frame's guest header obeys
 * the negotiated features (no flags without GUEST_CSUM, GSO only with
 * GUEST_TSO4/6, num_buffers 1 without MRG_RXBUF, merged buffers filled
 * completely but the last); the device's counters match what happened. */
#include <stdbool.h>

#include "core/net.h"
#include "fuzz.h"
#include "fuzz_mem.h"
#include "fuzz_port.h"

#define HAS(f, bit) (((f) & CW_BIT(bit)) != 0)
#define MAX_MEM (4u << 20)
#define MAX_ITEMS 256
#define MAX_SEG 4
#define MAX_OPS 96
#define TX_LOG 4096
#define BASE_GPA 0x40000000ull

struct item {
    uint8_t nseg;
    uint32_t len[MAX_SEG];
    uint64_t gpa[MAX_SEG];
    uint32_t total;
    uint64_t table; /* indirect table gpa, 0 if direct */
    uint8_t *bytes; /* TX: the packet as queued */
    const uint8_t *src; /* plan: input bytes (src_len of them; the rest zero) */
    size_t src_len;
};

struct drvq {
    uint16_t num;
    uint64_t desc, avail, used;
    uint16_t avail_idx, used_seen;
    uint16_t next_desc;
    int16_t head_item[CW_VQ_MAX_SIZE]; /* item a head stands for, -1: none */
    bool outstanding[CW_VQ_MAX_SIZE];
    unsigned nitems;
    struct item items[MAX_ITEMS];
};

struct ctx {
    struct cw_net *net;
    struct fuzz_mem mem;
    struct fuzz_port port;
    struct drvq q[CW_NET_NUM_QUEUES];
    bool trust;        /* the guest has not scribbled on its memory */
    bool indirect_tx, chained_rx;
    uint64_t irqs[CW_NET_NUM_QUEUES];
    uint64_t bump;     /* next free gpa */
    int tx_log[TX_LOG]; /* items in the order they were made available */
    unsigned tx_logged, tx_cursor;
    uint64_t tx_matched;
};

static struct cw_net net_storage;
static struct ctx C;

static uint64_t feats(void) { return C.net->features; }

/* ---- layout ---- */

static uint64_t alloc_gpa(uint64_t len, uint64_t align)
{
    uint64_t a = (C.bump + align - 1) & ~(align - 1);
    C.bump = a + len;
    return a;
}

static uint8_t *host(uint64_t gpa, uint64_t len)
{
    uint8_t *p = fuzz_mem_host(&C.mem, gpa, len);
    FUZZ_CHECK(p != NULL);
    return p;
}

static void put16(uint64_t gpa, uint16_t v) { memcpy(host(gpa, 2), &v, 2); }
static uint16_t get16(uint64_t gpa)
{
    uint16_t v;
    memcpy(&v, host(gpa, 2), 2);
    return v;
}

static void write_desc(uint64_t table, uint32_t i, uint64_t addr, uint32_t len, uint16_t flags,
                       uint16_t next)
{
    struct vring_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};
    memcpy(host(table + 16ull * i, 16), &d, 16);
}

/* Descriptors an item takes in the queue's own table. */
static unsigned item_slots(const struct item *it, bool indirect)
{
    return indirect ? 1 : it->nseg;
}

/* Write item i's descriptors (buffers already placed) and return its head. */
static uint16_t build_chain(struct drvq *q, struct item *it, bool writable, bool indirect)
{
    uint16_t fl = writable ? VRING_DESC_F_WRITE : 0;
    uint16_t head = q->next_desc;
    if (indirect) {
        for (unsigned s = 0; s < it->nseg; s++)
            write_desc(it->table, s, it->gpa[s], it->len[s],
                       (uint16_t)(fl | (s + 1 < it->nseg ? VRING_DESC_F_NEXT : 0)),
                       (uint16_t)(s + 1));
        write_desc(q->desc, head, it->table, 16u * it->nseg, VRING_DESC_F_INDIRECT, 0);
        q->next_desc++;
        return head;
    }
    for (unsigned s = 0; s < it->nseg; s++) {
        uint16_t slot = q->next_desc++;
        bool more = s + 1 < it->nseg;
        write_desc(q->desc, slot, it->gpa[s], it->len[s],
                   (uint16_t)(fl | (more ? VRING_DESC_F_NEXT : 0)), more ? (uint16_t)(slot + 1) : 0);
    }
    return head;
}

/* Make head available, as a driver does: ring entry, then idx. */
static void publish(struct drvq *q, uint16_t head)
{
    put16(q->avail + 4 + 2ull * (q->avail_idx & (q->num - 1u)), head);
    q->avail_idx++;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    put16(q->avail + 2, q->avail_idx);
    q->outstanding[head] = true;
    if (q == &C.q[CW_NET_TXQ] && C.tx_logged < TX_LOG)
        C.tx_log[C.tx_logged++] = q->head_item[head];
}

/* ---- checks ---- */

static bool frame_matches(const struct item *it, const uint8_t *f, uint32_t flen)
{
    uint32_t hlen = C.net->guest_hdr_len;
    return it->total >= hlen && it->total - hlen == flen && memcmp(it->bytes + hlen, f, flen) == 0;
}

/* Every frame the device sends must carry the canonical port header. */
static void on_tx_frame(void *unused, const uint8_t *frame, uint32_t len)
{
    (void)unused;
    uint64_t f = feats();
    FUZZ_CHECK(len >= CW_NET_META_LEN + CW_NET_MIN_FRAME && len <= CW_NET_META_LEN + CW_NET_MAX_FRAME);
    struct virtio_net_hdr_mrg_rxbuf h;
    memcpy(&h, frame, sizeof(h));
    uint32_t flen = len - CW_NET_META_LEN;
    FUZZ_CHECK((h.hdr.flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM) == 0);
    FUZZ_CHECK(h.num_buffers == 0);
    if (h.hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        FUZZ_CHECK(HAS(f, VIRTIO_NET_F_CSUM));
        FUZZ_CHECK((uint32_t)h.hdr.csum_start + h.hdr.csum_offset + 2u <= flen);
    } else {
        FUZZ_CHECK(h.hdr.csum_start == 0 && h.hdr.csum_offset == 0);
    }
    uint8_t base = h.hdr.gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    if (base == VIRTIO_NET_HDR_GSO_NONE) {
        FUZZ_CHECK(h.hdr.gso_type == VIRTIO_NET_HDR_GSO_NONE && h.hdr.gso_size == 0);
    } else {
        FUZZ_CHECK((base == VIRTIO_NET_HDR_GSO_TCPV4 && HAS(f, VIRTIO_NET_F_HOST_TSO4)) ||
                   (base == VIRTIO_NET_HDR_GSO_TCPV6 && HAS(f, VIRTIO_NET_F_HOST_TSO6)));
        FUZZ_CHECK(h.hdr.gso_size != 0);
        if (h.hdr.gso_type & VIRTIO_NET_HDR_GSO_ECN)
            FUZZ_CHECK(HAS(f, VIRTIO_NET_F_HOST_ECN));
    }
    if (!C.trust)
        return;
    /* A frame the guest queued, in queue order (dropped ones skipped). */
    struct drvq *q = &C.q[CW_NET_TXQ];
    while (C.tx_cursor < C.tx_logged &&
           !frame_matches(&q->items[C.tx_log[C.tx_cursor]], frame + CW_NET_META_LEN, flen))
        C.tx_cursor++;
    FUZZ_CHECK(C.tx_cursor < C.tx_logged || C.tx_logged == TX_LOG);
    C.tx_cursor++;
    C.tx_matched++;
}

static void on_irq(void *unused, int q)
{
    (void)unused;
    FUZZ_CHECK(q == CW_NET_RXQ || q == CW_NET_TXQ);
    C.irqs[q]++;
}

/* Gather len bytes from offset 0 of an item's buffers. */
static void gather(const struct item *it, uint8_t *dst, uint32_t len)
{
    uint32_t done = 0;
    for (unsigned s = 0; s < it->nseg && done < len; s++) {
        uint32_t n = it->len[s] < len - done ? it->len[s] : len - done;
        memcpy(dst + done, host(it->gpa[s], n), n);
        done += n;
    }
}

static void check_rx_header(const struct virtio_net_hdr_mrg_rxbuf *h, uint32_t hlen)
{
    uint64_t f = feats();
    FUZZ_CHECK((h->hdr.flags & ~(VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID)) == 0);
    if (!HAS(f, VIRTIO_NET_F_GUEST_CSUM))
        FUZZ_CHECK(h->hdr.flags == 0);
    if (!(h->hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
        FUZZ_CHECK(h->hdr.csum_start == 0 && h->hdr.csum_offset == 0);
    uint8_t base = h->hdr.gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    if (base == VIRTIO_NET_HDR_GSO_NONE) {
        FUZZ_CHECK(h->hdr.gso_type == VIRTIO_NET_HDR_GSO_NONE && h->hdr.gso_size == 0);
    } else {
        FUZZ_CHECK((base == VIRTIO_NET_HDR_GSO_TCPV4 && HAS(f, VIRTIO_NET_F_GUEST_TSO4)) ||
                   (base == VIRTIO_NET_HDR_GSO_TCPV6 && HAS(f, VIRTIO_NET_F_GUEST_TSO6)));
        FUZZ_CHECK(h->hdr.gso_size != 0);
        if (h->hdr.gso_type & VIRTIO_NET_HDR_GSO_ECN)
            FUZZ_CHECK(HAS(f, VIRTIO_NET_F_GUEST_ECN));
    }
    if (hlen == sizeof(struct virtio_net_hdr_mrg_rxbuf) && !HAS(f, VIRTIO_NET_F_MRG_RXBUF))
        FUZZ_CHECK(h->num_buffers == 1);
}

/* The driver's used-ring processing: check each new entry, then make the
 * chain available again (a real driver refills its RX ring and recycles TX
 * buffers the same way). */
static void recycle(int qi)
{
    struct drvq *q = &C.q[qi];
    uint32_t hlen = C.net->guest_hdr_len;
    bool mrg = HAS(feats(), VIRTIO_NET_F_MRG_RXBUF);
    uint16_t used_idx = get16(q->used + 2);
    uint16_t fresh = (uint16_t)(used_idx - q->used_seen);
    unsigned outstanding = 0;
    for (unsigned h = 0; h < q->num; h++)
        outstanding += q->outstanding[h];
    if (C.trust)
        FUZZ_CHECK(fresh <= outstanding);
    if (fresh > q->num)
        fresh = q->num;

    uint32_t frame_left = 0, frame_bytes = 0;
    struct virtio_net_hdr_mrg_rxbuf fh;
    memset(&fh, 0, sizeof(fh));
    for (uint16_t i = 0; i < fresh; i++) {
        struct vring_used_elem e;
        memcpy(&e, host(q->used + 4 + 8ull * ((q->used_seen + i) & (q->num - 1u)), 8), 8);
        bool known = e.id < q->num && q->outstanding[e.id] && q->head_item[e.id] >= 0;
        if (C.trust)
            FUZZ_CHECK(known);
        if (!known)
            continue;
        const struct item *it = &q->items[q->head_item[e.id]];
        q->outstanding[e.id] = false;
        if (C.trust) {
            FUZZ_CHECK(e.len <= it->total);
            if (qi == CW_NET_TXQ) {
                FUZZ_CHECK(e.len == 0);
            } else {
                if (frame_left == 0) {
                    /* First buffer of a frame: holds the whole header. */
                    FUZZ_CHECK(e.len >= hlen);
                    gather(it, (uint8_t *)&fh, hlen);
                    if (hlen < sizeof(fh))
                        fh.num_buffers = 1;
                    check_rx_header(&fh, hlen);
                    frame_left = mrg ? fh.num_buffers : 1;
                    FUZZ_CHECK(frame_left >= 1 && frame_left <= (uint32_t)(fresh - i));
                    frame_bytes = 0;
                }
                frame_bytes += e.len;
                frame_left--;
                /* Merged buffers: all but the last filled completely. */
                if (frame_left > 0)
                    FUZZ_CHECK(e.len == it->total);
                if (frame_left == 0) {
                    uint32_t flen = frame_bytes - hlen;
                    FUZZ_CHECK(flen >= CW_NET_MIN_FRAME && flen <= CW_NET_MAX_FRAME);
                    if (fh.hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)
                        FUZZ_CHECK((uint32_t)fh.hdr.csum_start + fh.hdr.csum_offset + 2u <= flen);
                }
            }
        }
        publish(q, (uint16_t)e.id);
    }
    if (C.trust)
        FUZZ_CHECK(frame_left == 0);
    q->used_seen = used_idx;
}

/* ---- setup from the input ---- */

static uint16_t ring_size(uint8_t sel)
{
    return (uint16_t)(2u << (sel % 8)); /* 2..256 */
}

static void plan_tx(struct fuzz_in *in, uint64_t *need)
{
    struct drvq *q = &C.q[CW_NET_TXQ];
    unsigned n = fuzz_u8(in) % 65;
    unsigned slots = 0;
    for (unsigned i = 0; i < n && q->nitems < MAX_ITEMS; i++) {
        struct item *it = &q->items[q->nitems];
        memset(it, 0, sizeof(*it));
        it->nseg = (uint8_t)(1 + fuzz_u8(in) % MAX_SEG);
        for (unsigned s = 0; s < it->nseg; s++) {
            it->len[s] = fuzz_u16(in);
            it->total += it->len[s];
        }
        it->src = fuzz_take(in, it->total, &it->src_len);
        uint64_t bytes = it->total + 8ull * it->nseg + (C.indirect_tx ? 16ull * it->nseg + 16 : 0);
        unsigned sl = item_slots(it, C.indirect_tx);
        if (*need + bytes > MAX_MEM || slots + sl > q->num)
            break;
        *need += bytes;
        slots += sl;
        q->nitems++;
    }
}

static void plan_rx(struct fuzz_in *in, uint64_t *need)
{
    struct drvq *q = &C.q[CW_NET_RXQ];
    unsigned n = fuzz_u8(in) % 129;
    unsigned slots = 0;
    for (unsigned i = 0; i < n && q->nitems < MAX_ITEMS; i++) {
        struct item *it = &q->items[q->nitems];
        memset(it, 0, sizeof(*it));
        uint32_t size = fuzz_u16(in);
        if (C.chained_rx) {
            it->nseg = 2;
            it->len[0] = size / 2;
            it->len[1] = size - size / 2;
        } else {
            it->nseg = 1;
            it->len[0] = size;
        }
        it->total = size;
        if (*need + size + 16 > MAX_MEM || slots + it->nseg > q->num)
            break;
        *need += size + 16;
        slots += it->nseg;
        q->nitems++;
    }
}

static void place(struct drvq *q, bool tx)
{
    for (unsigned i = 0; i < q->nitems; i++) {
        struct item *it = &q->items[i];
        for (unsigned s = 0; s < it->nseg; s++)
            it->gpa[s] = alloc_gpa(it->len[s], 8);
        if (tx && C.indirect_tx)
            it->table = alloc_gpa(16ull * it->nseg, 16);
        if (tx) {
            it->bytes = calloc(1, it->total ? it->total : 1);
            if (!it->bytes)
                abort();
            memcpy(it->bytes, it->src, it->src_len);
            uint32_t off = 0;
            for (unsigned s = 0; s < it->nseg; s++) {
                memcpy(host(it->gpa[s], it->len[s]), it->bytes + off, it->len[s]);
                off += it->len[s];
            }
        }
        uint16_t head = build_chain(q, it, !tx, tx && C.indirect_tx);
        q->head_item[head] = (int16_t)i;
    }
}

/* A driver reset: the device forgets both queues (cw_net_reset), the driver
 * lays its rings out afresh and offers every buffer again. A frame left
 * half segmented in the port must start over, not resume. */
static void driver_reset(void)
{
    cw_net_reset(C.net);
    for (int qi = 0; qi < CW_NET_NUM_QUEUES; qi++) {
        struct drvq *q = &C.q[qi];
        memset(host(q->avail, vring_avail_size(q->num)), 0, vring_avail_size(q->num));
        memset(host(q->used, vring_used_size(q->num)), 0, vring_used_size(q->num));
        q->avail_idx = q->used_seen = 0;
        memset(q->outstanding, 0, sizeof(q->outstanding));
        FUZZ_CHECK(cw_net_queue_start(C.net, qi, q->num, q->desc, q->avail, q->used, 0) ==
                   CW_VQ_OK || !C.trust);
        for (unsigned h = 0; h < q->num; h++)
            if (q->head_item[h] >= 0)
                publish(q, (uint16_t)h);
    }
}

static void check_counters(void)
{
    const struct cw_net_stats *st = &C.net->stats;
    FUZZ_CHECK(st->interrupts[0] == C.irqs[0] && st->interrupts[1] == C.irqs[1]);
    FUZZ_CHECK(st->tx_frames == C.port.commits);
    if (C.trust)
        FUZZ_CHECK(C.tx_matched == C.port.commits);
}

static void check_result(enum cw_net_result r, int qi)
{
    FUZZ_CHECK(r == CW_NET_IDLE || r == CW_NET_MORE || r == CW_NET_BLOCKED || r == CW_NET_BROKEN);
    FUZZ_CHECK((r == CW_NET_BROKEN) == cw_vq_broken(&C.net->vq[qi]));
    /* An honest guest never breaks a queue. */
    if (C.trust)
        FUZZ_CHECK(r != CW_NET_BROKEN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in;
    fuzz_in_init(&in, data, size);
    memset(&C, 0, sizeof(C));
    C.net = &net_storage;
    C.trust = true;

    uint8_t cfg = fuzz_u8(&in);
    uint64_t feat_in = fuzz_u64(&in);
    uint8_t budget = fuzz_u8(&in);
    C.q[CW_NET_RXQ].num = ring_size(fuzz_u8(&in));
    C.q[CW_NET_TXQ].num = ring_size(fuzz_u8(&in));
    for (int qi = 0; qi < CW_NET_NUM_QUEUES; qi++)
        for (unsigned h = 0; h < CW_VQ_MAX_SIZE; h++)
            C.q[qi].head_item[h] = -1;

    /* Features first: they decide the header length and indirect use. */
    struct cw_net_params p = {.mac = {0x52, 0x54, 0, 0, 0, 1}, .mtu = 1500,
                              .offloads = cfg & 2, .mrg_rxbuf = cfg & 4, .budget = budget % 17};
    fuzz_port_init(&C.port);
    C.port.on_frame = on_tx_frame;
    cw_net_init(C.net, &p, NULL, &fuzz_port_ops, &C.port, on_irq, NULL);
    uint64_t f = (cfg & 0x40) ? feat_in : feat_in & C.net->offered;
    int rc = cw_net_set_features(C.net, f);
    if (f & ~C.net->offered)
        FUZZ_CHECK(rc < 0);
    if (rc < 0) {
        /* Keep the bits without dependencies. */
        f &= C.net->offered & (CW_BIT(VIRTIO_F_VERSION_1) | CW_BIT(VIRTIO_RING_F_EVENT_IDX) |
                               CW_BIT(VIRTIO_RING_F_INDIRECT_DESC) | CW_BIT(VIRTIO_NET_F_MRG_RXBUF) |
                               CW_BIT(VIRTIO_NET_F_MAC) | CW_BIT(VIRTIO_NET_F_STATUS) |
                               CW_BIT(VIRTIO_NET_F_MTU) | CW_BIT(VIRTIO_NET_F_CSUM) |
                               CW_BIT(VIRTIO_NET_F_GUEST_CSUM));
        FUZZ_CHECK(cw_net_set_features(C.net, f) == 0);
    }
    FUZZ_CHECK(C.net->guest_hdr_len == ((HAS(f, VIRTIO_F_VERSION_1) || HAS(f, VIRTIO_NET_F_MRG_RXBUF)) ? 12u : 10u));
    C.indirect_tx = (cfg & 0x10) && HAS(f, VIRTIO_RING_F_INDIRECT_DESC);
    C.chained_rx = cfg & 0x20;

    /* Plan, then lay out exactly that much memory. */
    uint64_t need = 0;
    for (int qi = 0; qi < CW_NET_NUM_QUEUES; qi++)
        need += vring_desc_size(C.q[qi].num) + vring_avail_size(C.q[qi].num) +
                vring_used_size(C.q[qi].num) + 32;
    plan_tx(&in, &need);
    plan_rx(&in, &need);
    need += 64;
    if (fuzz_mem_init(&C.mem, BASE_GPA, need, cfg & 1) < 0)
        abort();
    C.bump = BASE_GPA;
    for (int qi = 0; qi < CW_NET_NUM_QUEUES; qi++) {
        struct drvq *q = &C.q[qi];
        q->desc = alloc_gpa(vring_desc_size(q->num), 16);
        q->avail = alloc_gpa(vring_avail_size(q->num), 2);
        q->used = alloc_gpa(vring_used_size(q->num), 4);
    }
    place(&C.q[CW_NET_TXQ], true);
    place(&C.q[CW_NET_RXQ], false);
    FUZZ_CHECK(C.bump <= BASE_GPA + need);
    C.net->mem = &C.mem.gmem;

    unsigned nframes = fuzz_u8(&in) % (FUZZ_PORT_MAX_RX + 1);
    for (unsigned i = 0; i < nframes; i++) {
        uint32_t len = fuzz_u16(&in) | ((uint32_t)(fuzz_u8(&in) & 1) << 16);
        if (len > CW_NET_META_LEN + CW_NET_MAX_FRAME + 16)
            len = CW_NET_META_LEN + CW_NET_MAX_FRAME + 16;
        uint8_t *tmp = calloc(1, len ? len : 1);
        if (!tmp)
            abort();
        fuzz_bytes(&in, tmp, len);
        fuzz_port_add_rx(&C.port, tmp, len);
        free(tmp);
    }

    for (int qi = 0; qi < CW_NET_NUM_QUEUES; qi++) {
        struct drvq *q = &C.q[qi];
        FUZZ_CHECK(cw_net_queue_start(C.net, qi, q->num, q->desc, q->avail, q->used, 0) == CW_VQ_OK);
        for (unsigned h = 0; h < q->num; h++)
            if (q->head_item[h] >= 0)
                publish(q, (uint16_t)h);
    }
    cw_net_set_link(C.net, cfg & 8);

    for (unsigned i = 0; i < MAX_OPS && !fuzz_empty(&in); i++) {
        uint8_t op = fuzz_u8(&in);
        switch (op % 8) {
        case 0:
        case 1:
            check_result(cw_net_tx(C.net), CW_NET_TXQ);
            break;
        case 2:
        case 3:
            check_result(cw_net_rx(C.net), CW_NET_RXQ);
            break;
        case 4:
            C.port.full = (op >> 3) & 1;
            break;
        case 5:
            recycle((op >> 3) & 1);
            break;
        case 6: {
            if (op & 0x10) {
                driver_reset();
                break;
            }
            /* Stop and resume a queue (GET_VRING_BASE / SET_VRING_BASE). */
            int qi = (op >> 3) & 1;
            struct drvq *q = &C.q[qi];
            uint16_t idx = cw_net_queue_stop(C.net, qi);
            FUZZ_CHECK(cw_net_queue_start(C.net, qi, q->num, q->desc, q->avail, q->used, idx) ==
                           CW_VQ_OK || !C.trust);
            break;
        }
        case 7:
            if ((cfg & 0x80) && (op & 8)) {
                /* The memory table changes under the device: every gmem
                 * call fails from a few calls on. */
                C.mem.fail_after = C.mem.accesses + 1 + fuzz_u8(&in);
                C.trust = false;
            } else if (cfg & 0x80) {
                uint32_t off = fuzz_u32(&in) % (uint32_t)C.mem.size;
                uint8_t n = fuzz_u8(&in) % 9;
                if (n > C.mem.size - off)
                    n = (uint8_t)(C.mem.size - off);
                fuzz_bytes(&in, C.mem.host + off, n);
                C.trust = false;
            } else {
                cw_net_set_link(C.net, (op >> 3) & 1);
            }
            break;
        }
        check_counters();
    }
    /* Let everything settle, then check what the guest got. */
    check_result(cw_net_tx(C.net), CW_NET_TXQ);
    check_result(cw_net_rx(C.net), CW_NET_RXQ);
    recycle(CW_NET_TXQ);
    recycle(CW_NET_RXQ);
    check_counters();
    if (getenv("FUZZ_VERBOSE")) {
        /* What a seed reaches: frames each way, software offload work, drops. */
        const struct cw_net_stats *st = &C.net->stats;
        fprintf(stderr, "fuzz_net: tx %llu rx %llu sw_csum %llu sw_seg %llu irq %llu/%llu drops",
                (unsigned long long)st->tx_frames, (unsigned long long)st->rx_frames,
                (unsigned long long)st->sw_csum, (unsigned long long)st->sw_segments,
                (unsigned long long)st->interrupts[0], (unsigned long long)st->interrupts[1]);
        for (int d = 0; d < CW_DROP__COUNT; d++)
            if (st->drops[d])
                fprintf(stderr, " %s=%llu", cw_net_drop_name((enum cw_net_drop)d),
                        (unsigned long long)st->drops[d]);
        fprintf(stderr, "%s\n", C.trust ? "" : " (guest scribbled)");
    }

    for (unsigned i = 0; i < C.q[CW_NET_TXQ].nitems; i++)
        free(C.q[CW_NET_TXQ].items[i].bytes);
    fuzz_port_free(&C.port);
    fuzz_mem_free(&C.mem);
    return 0;
}
