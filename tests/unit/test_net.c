/* Unit tests for the virtio-net device model (src/core/net.c).
 *
 * A simulated guest (sim_guest) plays the driver; a test-double port (two
 * in-memory FIFOs with a capacity) plays the peer. Frames are built here the
 * way Linux hands them to virtio-net; checksums of what the device produces
 * are verified with a naive reference implementation in this file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/net.h"
#include "sim_guest.h"

/* ---------------- test-double port ---------------- */

#define FIFO_MAX 512

struct fifo {
    uint8_t *frame[FIFO_MAX];
    uint32_t len[FIFO_MAX];
    unsigned head, count, cap;
};

struct test_port {
    struct fifo *out; /* device -> peer (the device's TX) */
    struct fifo *in;  /* peer -> device (the device's RX) */
    uint8_t *reserved;
    uint32_t reserved_len;
    unsigned reserves, commits, tx_flushes, peeks, releases, rx_flushes;
};

static void fifo_init(struct fifo *q, unsigned cap)
{
    memset(q, 0, sizeof(*q));
    assert_true(cap <= FIFO_MAX);
    q->cap = cap;
}

static void fifo_put(struct fifo *q, uint8_t *frame, uint32_t len)
{
    assert_true(q->count < q->cap);
    unsigned i = (q->head + q->count) % FIFO_MAX;
    q->frame[i] = frame;
    q->len[i] = len;
    q->count++;
}

/* Take the oldest frame (caller frees). */
static uint8_t *fifo_take(struct fifo *q, uint32_t *len)
{
    if (q->count == 0)
        return NULL;
    uint8_t *f = q->frame[q->head];
    *len = q->len[q->head];
    q->head = (q->head + 1) % FIFO_MAX;
    q->count--;
    return f;
}

static void fifo_clear(struct fifo *q)
{
    uint32_t len;
    uint8_t *f;
    while ((f = fifo_take(q, &len)))
        free(f);
}

static void *tp_tx_reserve(void *ctx, uint32_t len)
{
    struct test_port *p = ctx;
    p->reserves++;
    if (p->out->count >= p->out->cap)
        return NULL;
    /* An abandoned reservation is replaced, as a ring would reuse it. */
    free(p->reserved);
    p->reserved = malloc(len);
    assert_non_null(p->reserved);
    p->reserved_len = len;
    return p->reserved;
}

static void tp_tx_commit(void *ctx, uint32_t len)
{
    struct test_port *p = ctx;
    assert_non_null(p->reserved);
    assert_true(len <= p->reserved_len);
    p->commits++;
    fifo_put(p->out, p->reserved, len);
    p->reserved = NULL;
}

static void tp_tx_flush(void *ctx)
{
    ((struct test_port *)ctx)->tx_flushes++;
}

static const void *tp_rx_peek(void *ctx, uint32_t *len)
{
    struct test_port *p = ctx;
    p->peeks++;
    if (p->in->count == 0)
        return NULL;
    *len = p->in->len[p->in->head];
    return p->in->frame[p->in->head];
}

static void tp_rx_release(void *ctx)
{
    struct test_port *p = ctx;
    uint32_t len;
    uint8_t *f = fifo_take(p->in, &len);
    assert_non_null(f);
    free(f);
    p->releases++;
}

static void tp_rx_flush(void *ctx)
{
    ((struct test_port *)ctx)->rx_flushes++;
}

static const struct cw_net_port_ops test_port_ops = {
    .tx_reserve = tp_tx_reserve,
    .tx_commit = tp_tx_commit,
    .tx_flush = tp_tx_flush,
    .rx_peek = tp_rx_peek,
    .rx_release = tp_rx_release,
    .rx_flush = tp_rx_flush,
};

/* ---------------- frames ---------------- */

static uint32_t ref_sum(uint32_t s, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s += (i % 2 == 0) ? (uint32_t)p[i] << 8 : p[i];
    return s;
}

static uint16_t ref_fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xFFFF) + (s >> 16);
    return (uint16_t)s;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void wr32(uint8_t *p, uint32_t v)
{
    wr16(p, (uint16_t)(v >> 16));
    wr16(p + 2, (uint16_t)v);
}

#define ETH 14u
#define IP4 20u
#define TCPH 20u
#define HDRS (ETH + IP4 + TCPH)

/* Ethernet + IPv4 + TCP with `pay` payload bytes (pattern from seq). The
 * IP checksum is complete; the TCP checksum field holds the folded
 * pseudo-header sum, as with CHECKSUM_PARTIAL (csum_start 34, offset 16).
 * Returns the frame length. */
static uint32_t build_tcp4(uint8_t *f, uint32_t pay, uint32_t seq, uint8_t tcp_flags)
{
    memset(f, 0, HDRS);
    memcpy(f, "\x52\x54\x00\x00\x00\x02\x52\x54\x00\x00\x00\x01\x08\x00", ETH);
    uint8_t *ip = f + ETH;
    ip[0] = 0x45;
    wr16(ip + 2, (uint16_t)(IP4 + TCPH + pay));
    wr16(ip + 4, 0x1234);
    wr16(ip + 6, 0x4000); /* DF */
    ip[8] = 64;
    ip[9] = 6;
    memcpy(ip + 12, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
    wr16(ip + 10, (uint16_t)~ref_fold(ref_sum(0, ip, IP4)));
    uint8_t *tcp = ip + IP4;
    wr16(tcp, 40000);
    wr16(tcp + 2, 5201);
    wr32(tcp + 4, seq);
    wr32(tcp + 8, 777);
    tcp[12] = 5 << 4;
    tcp[13] = tcp_flags;
    wr16(tcp + 14, 65535);
    for (uint32_t i = 0; i < pay; i++)
        tcp[TCPH + i] = (uint8_t)((seq + i) * 7 + 3);
    uint32_t ps = ref_sum(0, ip + 12, 8) + 6 + TCPH + pay;
    wr16(tcp + 16, ref_fold(ps));
    return HDRS + pay;
}

/* A TCP/IPv4 frame (no VLAN) has valid IP and TCP checksums. */
static void assert_tcp4_valid(const uint8_t *f, uint32_t len)
{
    assert_true(len >= HDRS);
    const uint8_t *ip = f + ETH;
    assert_int_equal(ref_fold(ref_sum(0, ip, IP4)), 0xffff);
    uint32_t tot = rd16(ip + 2);
    assert_int_equal(tot, len - ETH);
    uint32_t tcp_len = tot - IP4;
    uint32_t s = ref_sum(0, ip + 12, 8) + 6 + tcp_len;
    s = ref_sum(s, ip + IP4, tcp_len);
    assert_int_equal(ref_fold(s), 0xffff);
}

/* A plain frame of len bytes, tagged with a sequence number at 14..17. */
static uint32_t build_plain(uint8_t *f, uint32_t len, uint32_t tag)
{
    memcpy(f, "\x52\x54\x00\x00\x00\x02\x52\x54\x00\x00\x00\x01\x88\xb5", ETH);
    for (uint32_t i = ETH; i < len; i++)
        f[i] = (uint8_t)(i * 13 + tag);
    if (len >= ETH + 4)
        wr32(f + ETH, tag);
    return len;
}

static struct virtio_net_hdr_mrg_rxbuf hdr_none(void)
{
    struct virtio_net_hdr_mrg_rxbuf h;
    memset(&h, 0, sizeof(h));
    return h;
}

/* ---------------- fixture ---------------- */

#define F_V1 CW_BIT(VIRTIO_F_VERSION_1)
#define F_EVIDX CW_BIT(VIRTIO_RING_F_EVENT_IDX)
#define F_INDIR CW_BIT(VIRTIO_RING_F_INDIRECT_DESC)
#define F_MRG CW_BIT(VIRTIO_NET_F_MRG_RXBUF)
#define F_CSUM CW_BIT(VIRTIO_NET_F_CSUM)
#define F_GCSUM CW_BIT(VIRTIO_NET_F_GUEST_CSUM)
#define F_HTSO4 CW_BIT(VIRTIO_NET_F_HOST_TSO4)
#define F_HTSO6 CW_BIT(VIRTIO_NET_F_HOST_TSO6)
#define F_HECN CW_BIT(VIRTIO_NET_F_HOST_ECN)
#define F_GTSO4 CW_BIT(VIRTIO_NET_F_GUEST_TSO4)
#define F_GTSO6 CW_BIT(VIRTIO_NET_F_GUEST_TSO6)
#define F_GECN CW_BIT(VIRTIO_NET_F_GUEST_ECN)
#define F_INORDER CW_BIT(VIRTIO_F_IN_ORDER)
#define F_BASE (F_V1 | F_EVIDX | F_INDIR)
#define F_HOST_OFF (F_CSUM | F_HTSO4 | F_HTSO6 | F_HECN)
#define F_GUEST_OFF (F_GCSUM | F_GTSO4 | F_GTSO6 | F_GECN)

struct nfx {
    struct sim_guest *g;
    struct sim_vring rx, tx;
    struct cw_net *n;
    struct fifo out, in;
    struct test_port port;
    unsigned irqs[CW_NET_NUM_QUEUES];
    uint64_t buf_of_head[CW_NET_NUM_QUEUES][1024]; /* guest buffer per posted head */
    uint32_t len_of_head[CW_NET_NUM_QUEUES][1024];
};

static void on_irq(void *ctx, int q)
{
    struct nfx *f = ctx;
    assert_true(q == CW_NET_RXQ || q == CW_NET_TXQ);
    f->irqs[q]++;
}

static bool translating_flavour = true;
static bool copying_flavour = false;

/* The initial state selects the guest-memory flavour (translating when
 * none is given). */
static int nfx_setup(void **state)
{
    bool translating = *state ? *(bool *)*state : true;
    struct nfx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->n = calloc(1, sizeof(*f->n));
    assert_non_null(f->n);
    f->g = sim_guest_new(translating);
    fifo_init(&f->out, 64);
    fifo_init(&f->in, 64);
    f->port.out = &f->out;
    f->port.in = &f->in;
    *state = f;
    return 0;
}

static int nfx_teardown(void **state)
{
    struct nfx *f = *state;
    fifo_clear(&f->out);
    fifo_clear(&f->in);
    free(f->port.reserved);
    sim_guest_free(f->g);
    free(f->n);
    free(f);
    return 0;
}

static const struct cw_net_params all_params = {
    .mac = {0x52, 0x54, 0, 0, 0, 1}, .mtu = 1500, .offloads = true, .mrg_rxbuf = true,
};

/* Init the device with `params`, negotiate `features`, start both queues. */
static void nfx_start_p(struct nfx *f, const struct cw_net_params *p, uint64_t features,
                        uint16_t rxnum, uint16_t txnum)
{
    cw_net_init(f->n, p, &f->g->gmem, &test_port_ops, &f->port, on_irq, f);
    assert_int_equal(cw_net_set_features(f->n, features), 0);
    sim_vring_init(&f->rx, f->g, rxnum);
    sim_vring_init(&f->tx, f->g, txnum);
    assert_int_equal(cw_net_queue_start(f->n, CW_NET_RXQ, rxnum, f->rx.desc, f->rx.avail,
                                        f->rx.used, 0),
                     CW_VQ_OK);
    assert_int_equal(cw_net_queue_start(f->n, CW_NET_TXQ, txnum, f->tx.desc, f->tx.avail,
                                        f->tx.used, 0),
                     CW_VQ_OK);
    cw_net_set_link(f->n, true);
}

static void nfx_start(struct nfx *f, uint64_t features, uint16_t rxnum, uint16_t txnum)
{
    nfx_start_p(f, &all_params, features, rxnum, txnum);
}

/* Guest TX: post header + frame. layout 0: one buffer; 1: header and frame
 * in two descriptors; 2: indirect table, frame split in two. */
static uint16_t guest_tx(struct nfx *f, const void *hdr, uint32_t hlen, const uint8_t *frame,
                         uint32_t flen, int layout)
{
    uint16_t h;
    if (layout == 0) {
        struct sim_seg s = {.len = hlen + flen};
        h = sim_chain(&f->tx, &s, 1);
        uint8_t *p = sim_host(f->g, s.gpa, s.len);
        memcpy(p, hdr, hlen);
        memcpy(p + hlen, frame, flen);
    } else if (layout == 1) {
        struct sim_seg s[2] = {{.len = hlen}, {.len = flen}};
        h = sim_chain(&f->tx, s, 2);
        memcpy(sim_host(f->g, s[0].gpa, hlen), hdr, hlen);
        memcpy(sim_host(f->g, s[1].gpa, flen), frame, flen);
    } else {
        uint32_t a = flen / 2;
        struct sim_seg s[3] = {{.len = hlen}, {.len = a}, {.len = flen - a}};
        h = sim_chain_indirect(&f->tx, s, 3, NULL);
        memcpy(sim_host(f->g, s[0].gpa, hlen), hdr, hlen);
        memcpy(sim_host(f->g, s[1].gpa, a), frame, a);
        memcpy(sim_host(f->g, s[2].gpa, flen - a), frame + a, flen - a);
    }
    sim_avail_push(&f->tx, h);
    return h;
}

/* Guest RX: post `count` writable buffers of `size` bytes; their heads in
 * order into heads[] unless it is NULL. */
static void guest_rx_post_heads(struct nfx *f, unsigned count, uint32_t size, uint16_t *heads)
{
    for (unsigned i = 0; i < count; i++) {
        struct sim_seg s = {.len = size, .write = true};
        uint16_t h = sim_chain(&f->rx, &s, 1);
        f->buf_of_head[CW_NET_RXQ][h] = s.gpa;
        f->len_of_head[CW_NET_RXQ][h] = size;
        sim_avail_push(&f->rx, h);
        if (heads)
            heads[i] = h;
    }
}

static void guest_rx_post(struct nfx *f, unsigned count, uint32_t size)
{
    guest_rx_post_heads(f, count, size, NULL);
}

/* Peer: put a frame (meta header + frame bytes) into the device's RX. */
static void peer_send(struct nfx *f, const struct virtio_net_hdr_mrg_rxbuf *meta,
                      const uint8_t *frame, uint32_t flen)
{
    uint8_t *b = malloc(CW_NET_META_LEN + flen);
    assert_non_null(b);
    memcpy(b, meta, CW_NET_META_LEN);
    memcpy(b + CW_NET_META_LEN, frame, flen);
    fifo_put(&f->in, b, CW_NET_META_LEN + flen);
}

/* Driver: take the next received frame from the used ring. Returns false if
 * none. With MRG_RXBUF, follows num_buffers across used entries. */
static bool guest_rx_take(struct nfx *f, struct virtio_net_hdr_mrg_rxbuf *hdr, uint8_t *out,
                          uint32_t *outlen, bool mrg, uint32_t hlen)
{
    struct sim_vring *r = &f->rx;
    if (r->used_seen == sim_used_idx(r))
        return false;
    struct vring_used_elem e = sim_used_elem(r, r->used_seen++);
    assert_true(e.id < r->num);
    assert_true(e.len >= hlen && e.len <= f->len_of_head[CW_NET_RXQ][e.id]);
    const uint8_t *b = sim_host(f->g, f->buf_of_head[CW_NET_RXQ][e.id], e.len);
    memset(hdr, 0, sizeof(*hdr));
    memcpy(hdr, b, hlen);
    uint32_t n = e.len - hlen;
    memcpy(out, b + hlen, n);
    uint16_t nb = mrg ? hdr->num_buffers : 1;
    assert_true(nb >= 1);
    for (uint16_t i = 1; i < nb; i++) {
        assert_true(r->used_seen != sim_used_idx(r));
        e = sim_used_elem(r, r->used_seen++);
        assert_true(e.len <= f->len_of_head[CW_NET_RXQ][e.id]);
        memcpy(out + n, sim_host(f->g, f->buf_of_head[CW_NET_RXQ][e.id], e.len), e.len);
        n += e.len;
    }
    *outlen = n;
    return true;
}

/* Peer: take the next frame the device sent (caller frees). */
static uint8_t *peer_take(struct nfx *f, uint32_t *len)
{
    return fifo_take(&f->out, len);
}

static uint8_t *big_buf(void)
{
    uint8_t *b = malloc(CW_NET_META_LEN + CW_NET_MAX_FRAME + 64);
    assert_non_null(b);
    return b;
}

/* ---------------- features and configuration ---------------- */

static void test_offered_features(void **state)
{
    (void)state;
    struct cw_net_params p = {.mtu = 0};
    uint64_t f = cw_net_offered_features(&p);
    assert_int_equal(f, F_V1 | F_EVIDX | F_INDIR | F_INORDER | CW_BIT(VIRTIO_NET_F_STATUS) |
                            CW_BIT(VIRTIO_NET_F_MAC));
    f = cw_net_offered_features(&all_params);
    assert_int_equal(f, F_BASE | F_INORDER | CW_BIT(VIRTIO_NET_F_STATUS) |
                            CW_BIT(VIRTIO_NET_F_MAC) | CW_BIT(VIRTIO_NET_F_MTU) | F_MRG |
                            F_HOST_OFF | F_GUEST_OFF);
    /* Never offered, whatever the parameters. */
    static const int never[] = {VIRTIO_NET_F_GUEST_UFO, VIRTIO_NET_F_HOST_UFO,
                                VIRTIO_NET_F_CTRL_VQ,   VIRTIO_NET_F_MQ,
                                VIRTIO_F_RING_PACKED,   VIRTIO_F_ANY_LAYOUT,
                                VIRTIO_F_NOTIFY_ON_EMPTY, VIRTIO_F_ACCESS_PLATFORM};
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        assert_false(f & CW_BIT(never[i]));
    p.mrg_rxbuf = true;
    assert_true(cw_net_offered_features(&p) & F_MRG);
    assert_false(cw_net_offered_features(&p) & F_CSUM);
    p.offloads = true;
    p.mrg_rxbuf = false;
    assert_false(cw_net_offered_features(&p) & F_MRG);
    assert_true(cw_net_offered_features(&p) & F_GTSO6);
}

static void test_set_features(void **state)
{
    struct nfx *f = *state;
    cw_net_init(f->n, &all_params, &f->g->gmem, &test_port_ops, &f->port, on_irq, f);
    uint64_t offered = f->n->offered;
    /* Dependencies of the spec (5.1.3.1), and bits never offered. */
    static const uint64_t bad[] = {
        F_HTSO4,                      /* HOST_TSO4 without CSUM */
        F_HTSO6,                      /* HOST_TSO6 without CSUM */
        F_GTSO4,                      /* GUEST_TSO4 without GUEST_CSUM */
        F_GTSO6 | F_CSUM,             /* GUEST_TSO6 without GUEST_CSUM */
        F_CSUM | F_HECN,              /* HOST_ECN without a HOST_TSO */
        F_GCSUM | F_GECN,             /* GUEST_ECN without a GUEST_TSO */
        F_CSUM | F_HTSO4 | F_GECN | F_GCSUM, /* GUEST_ECN with only host TSO */
        CW_BIT(VIRTIO_NET_F_CTRL_VQ), /* not offered */
        CW_BIT(VIRTIO_F_RING_PACKED),
        CW_BIT(VIRTIO_NET_F_GUEST_UFO) | F_GCSUM,
        CW_BIT(63),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cw_net_set_features(f->n, F_BASE | bad[i]), -1);
        assert_int_equal(f->n->features, 0); /* unchanged */
    }
    assert_int_equal(cw_net_set_features(f->n, offered), 0);
    assert_int_equal(f->n->features, offered);
    assert_int_equal(f->n->guest_hdr_len, 12);
    assert_int_equal(cw_net_set_features(f->n, F_CSUM | F_HTSO6 | F_HECN), 0);
    assert_int_equal(f->n->guest_hdr_len, 10); /* legacy header */
    assert_int_equal(cw_net_set_features(f->n, F_MRG), 0);
    assert_int_equal(f->n->guest_hdr_len, 12);
    assert_int_equal(cw_net_set_features(f->n, F_V1), 0);
    assert_int_equal(f->n->guest_hdr_len, 12);
    assert_int_equal(cw_net_set_features(f->n, 0), 0);
    assert_int_equal(f->n->guest_hdr_len, 10);

    /* Without offloads offered, even a consistent offload set is refused. */
    struct cw_net_params p = {.mtu = 0};
    cw_net_init(f->n, &p, &f->g->gmem, &test_port_ops, &f->port, on_irq, f);
    assert_int_equal(cw_net_set_features(f->n, F_BASE | F_CSUM), -1);
    assert_int_equal(cw_net_set_features(f->n, F_BASE | F_MRG), -1);
    assert_int_equal(cw_net_set_features(f->n, F_BASE | CW_BIT(VIRTIO_NET_F_MTU)), -1);
}

static void test_config(void **state)
{
    struct nfx *f = *state;
    cw_net_init(f->n, &all_params, &f->g->gmem, &test_port_ops, &f->port, on_irq, f);
    assert_memory_equal(f->n->config.mac, all_params.mac, 6);
    assert_int_equal(f->n->config.max_virtqueue_pairs, 1);
    assert_int_equal(f->n->config.mtu, 1500);
    assert_false(f->n->link_up); /* no peer yet */
    assert_int_equal(f->n->config.status, 0);
    cw_net_set_link(f->n, true);
    assert_int_equal(f->n->config.status, VIRTIO_NET_S_LINK_UP);
    cw_net_set_link(f->n, false);
    assert_int_equal(f->n->config.status, 0);
    assert_int_equal(f->n->budget, CW_NET_DEFAULT_BUDGET);
    /* Queue indexes from the frontend are checked. */
    assert_int_not_equal(cw_net_queue_start(f->n, 2, 8, 0x100000, 0x101000, 0x102000, 0), CW_VQ_OK);
    assert_int_not_equal(cw_net_queue_start(f->n, -1, 8, 0x100000, 0x101000, 0x102000, 0),
                         CW_VQ_OK);
    assert_int_equal(cw_net_queue_stop(f->n, 7), 0);
}

static void test_drop_names(void **state)
{
    (void)state;
    assert_string_equal(cw_net_drop_name(CW_DROP_TX_SHORT), "tx_short");
    assert_string_equal(cw_net_drop_name(CW_DROP_RX_NO_ROOM), "rx_no_room");
    assert_string_equal(cw_net_drop_name(CW_DROP_GUEST_FAULT), "guest_fault");
    assert_string_equal(cw_net_drop_name((enum cw_net_drop)77), "unknown");
    for (int d = 0; d < CW_DROP__COUNT; d++) {
        const char *s = cw_net_drop_name((enum cw_net_drop)d);
        assert_string_not_equal(s, "unknown");
        for (const char *p = s; *p; p++)
            assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
        for (int e = 0; e < d; e++)
            assert_string_not_equal(s, cw_net_drop_name((enum cw_net_drop)e));
    }
}

/* ---------------- TX ---------------- */

static void test_tx_basic(void **state)
{
    struct nfx *f = *state;
    nfx_start(f, F_BASE | F_HOST_OFF | F_GUEST_OFF | F_MRG, 8, 8);
    uint8_t frame[3][2000];
    uint32_t flen[3];
    struct virtio_net_hdr_mrg_rxbuf h[3];
    for (int i = 0; i < 3; i++) {
        h[i] = hdr_none();
        h[i].num_buffers = 0x5555; /* garbage from the driver: not forwarded */
    }
    flen[0] = build_plain(frame[0], 60, 1);
    flen[1] = build_tcp4(frame[1], 1000, 100, 0x18);
    h[1].hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    h[1].hdr.csum_start = 34;
    h[1].hdr.csum_offset = 16;
    flen[2] = build_tcp4(frame[2], 1900, 5000, 0x10);
    h[2].hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    h[2].hdr.csum_start = 34;
    h[2].hdr.csum_offset = 16;
    h[2].hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN;
    h[2].hdr.gso_size = 1448;
    h[2].hdr.hdr_len = 54;
    uint16_t heads[3];
    for (int i = 0; i < 3; i++)
        heads[i] = guest_tx(f, &h[i], 12, frame[i], flen[i], i);

    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    assert_int_equal(f->out.count, 3);
    for (int i = 0; i < 3; i++) {
        uint32_t len;
        uint8_t *p = peer_take(f, &len);
        assert_int_equal(len, CW_NET_META_LEN + flen[i]);
        struct virtio_net_hdr_mrg_rxbuf m;
        memcpy(&m, p, sizeof(m));
        struct virtio_net_hdr_mrg_rxbuf want = h[i];
        want.num_buffers = 0;
        assert_memory_equal(&m, &want, sizeof(m));
        assert_memory_equal(p + CW_NET_META_LEN, frame[i], flen[i]);
        free(p);
    }
    /* All chains returned in order, with nothing written. */
    assert_int_equal(sim_used_idx(&f->tx), 3);
    for (int i = 0; i < 3; i++) {
        struct vring_used_elem e = sim_used_elem(&f->tx, (uint16_t)i);
        assert_int_equal(e.id, heads[i]);
        assert_int_equal(e.len, 0);
    }
    assert_int_equal(f->n->stats.tx_frames, 3);
    assert_int_equal(f->n->stats.tx_bytes, flen[0] + flen[1] + flen[2]);
    /* One flush to the peer, one interrupt, for the whole batch. */
    assert_int_equal(f->port.tx_flushes, 1);
    assert_int_equal(f->irqs[CW_NET_TXQ], 1);
    assert_int_equal(f->n->stats.interrupts[CW_NET_TXQ], 1);
    /* Idle: kicks re-armed for the next entry. */
    assert_int_equal(sim_avail_event(&f->tx), 3);
    for (int d = 0; d < CW_DROP__COUNT; d++)
        assert_int_equal(f->n->stats.drops[d], 0);

    /* Nothing to do: no flush, no interrupt. */
    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    assert_int_equal(f->port.tx_flushes, 1);
    assert_int_equal(f->irqs[CW_NET_TXQ], 1);
}

static void test_tx_legacy_header(void **state)
{
    struct nfx *f = *state;
    /* No VERSION_1, no MRG_RXBUF: the driver's header is 10 bytes. */
    nfx_start(f, F_EVIDX | F_CSUM, 8, 8);
    uint8_t frame[100];
    build_plain(frame, 100, 9);
    struct virtio_net_hdr h = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 20,
                               .csum_offset = 6};
    guest_tx(f, &h, 10, frame, 100, 1);
    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    uint32_t len;
    uint8_t *p = peer_take(f, &len);
    assert_non_null(p);
    assert_int_equal(len, CW_NET_META_LEN + 100);
    struct virtio_net_hdr_mrg_rxbuf m;
    memcpy(&m, p, sizeof(m));
    assert_memory_equal(&m.hdr, &h, sizeof(h));
    assert_int_equal(m.num_buffers, 0);
    assert_memory_equal(p + CW_NET_META_LEN, frame, 100);
    free(p);
}

/* Post one TX frame with header h; run TX; expect it dropped for `why`. */
static void expect_tx_drop(struct nfx *f, const struct virtio_net_hdr_mrg_rxbuf *h,
                           uint32_t flen, enum cw_net_drop why)
{
    uint8_t *frame = big_buf();
    build_plain(frame, flen, 3);
    uint64_t before = f->n->stats.drops[why];
    uint16_t used0 = sim_used_idx(&f->tx);
    uint16_t head = guest_tx(f, h, f->n->guest_hdr_len, frame, flen, 0);
    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    assert_int_equal(f->n->stats.drops[why], before + 1);
    assert_int_equal(f->out.count, 0);
    /* The chain still goes back to the guest. */
    assert_int_equal(sim_used_idx(&f->tx), (uint16_t)(used0 + 1));
    assert_int_equal(sim_used_elem(&f->tx, used0).id, head);
    assert_int_equal(sim_used_elem(&f->tx, used0).len, 0);
    free(frame);
}

static void test_tx_drops(void **state)
{
    struct nfx *f = *state;
    /* Host offloads: CSUM and TSO4 only (no TSO6, no ECN). */
    nfx_start(f, F_BASE | F_CSUM | F_HTSO4, 256, 256);
    struct virtio_net_hdr_mrg_rxbuf h = hdr_none();

    /* Too short: header + 13 bytes; header only; a partial header. */
    expect_tx_drop(f, &h, 13, CW_DROP_TX_SHORT);
    expect_tx_drop(f, &h, 0, CW_DROP_TX_SHORT);
    {
        struct sim_seg s = {.len = 5};
        sim_avail_push(&f->tx, sim_chain(&f->tx, &s, 1));
        assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
        assert_int_equal(f->n->stats.drops[CW_DROP_TX_SHORT], 3);
    }
    /* A chain with only writable buffers has nothing to send. */
    {
        struct sim_seg s = {.len = 1500, .write = true};
        sim_avail_push(&f->tx, sim_chain(&f->tx, &s, 1));
        assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
        assert_int_equal(f->n->stats.drops[CW_DROP_TX_SHORT], 4);
    }
    /* Exactly the minimum is fine. */
    {
        uint8_t fr[14];
        build_plain(fr, 14, 1);
        guest_tx(f, &h, 12, fr, 14, 0);
        assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
        assert_int_equal(f->out.count, 1);
        fifo_clear(&f->out);
    }
    /* Too long by one byte. */
    expect_tx_drop(f, &h, CW_NET_MAX_FRAME + 1, CW_DROP_TX_OVERSIZE);

    /* Offload requests not negotiated or inconsistent. */
    struct {
        uint8_t flags, gso;
        uint16_t gso_size, cs, co;
    } bad[] = {
        {0, VIRTIO_NET_HDR_GSO_TCPV6, 1448, 0, 0},                           /* no HOST_TSO6 */
        {0, VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, 1448, 0, 0},  /* no HOST_ECN */
        {0, VIRTIO_NET_HDR_GSO_UDP, 1448, 0, 0},                             /* never offered */
        {0, 0x7f, 1448, 0, 0},                                               /* unknown */
        {0, VIRTIO_NET_HDR_GSO_ECN, 0, 0, 0},                                /* ECN alone */
        {0, VIRTIO_NET_HDR_GSO_TCPV4, 0, 0, 0},                              /* gso_size 0 */
        {VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 90, 9},       /* field ends at 101 > 100 */
        {VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0xffff, 0xffff}, /* would wrap in 16 bits */
        {VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 100, 0},       /* starts at the end */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        h = hdr_none();
        h.hdr.flags = bad[i].flags;
        h.hdr.gso_type = bad[i].gso;
        h.hdr.gso_size = bad[i].gso_size;
        h.hdr.csum_start = bad[i].cs;
        h.hdr.csum_offset = bad[i].co;
        expect_tx_drop(f, &h, 100, CW_DROP_TX_BAD_OFFLOAD);
    }
    /* The last byte pair of the frame is a valid checksum field. */
    h = hdr_none();
    h.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    h.hdr.csum_start = 90;
    h.hdr.csum_offset = 8;
    uint8_t fr[100];
    build_plain(fr, 100, 2);
    guest_tx(f, &h, 12, fr, 100, 0);
    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    assert_int_equal(f->out.count, 1);
    fifo_clear(&f->out);

    /* Link down. */
    cw_net_set_link(f->n, false);
    h = hdr_none();
    expect_tx_drop(f, &h, 100, CW_DROP_TX_LINK_DOWN);
    assert_int_equal(f->port.reserves, 2); /* the two good frames only */
}

static void test_tx_csum_without_feature(void **state)
{
    struct nfx *f = *state;
    /* NEEDS_CSUM without CSUM negotiated. */
    nfx_start(f, F_BASE, 8, 8);
    struct virtio_net_hdr_mrg_rxbuf h = hdr_none();
    h.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    h.hdr.csum_start = 34;
    h.hdr.csum_offset = 16;
    expect_tx_drop(f, &h, 100, CW_DROP_TX_BAD_OFFLOAD);
    /* DATA_VALID (receive-only) is not forwarded but does not drop. */
    h = hdr_none();
    h.hdr.flags = VIRTIO_NET_HDR_F_DATA_VALID | 0x80;
    uint8_t fr[64];
    build_plain(fr, 64, 4);
    guest_tx(f, &h, 12, fr, 64, 0);
    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    uint32_t len;
    uint8_t *p = peer_take(f, &len);
    assert_non_null(p);
    assert_int_equal(p[0], 0);
    free(p);
}

static void test_tx_port_full(void **state)
{
    struct nfx *f = *state;
    nfx_start(f, F_BASE, 16, 16);
    fifo_init(&f->out, 2);
    uint8_t fr[200];
    struct virtio_net_hdr_mrg_rxbuf h = hdr_none();
    for (uint32_t i = 0; i < 5; i++) {
        build_plain(fr, 100 + i, i);
        guest_tx(f, &h, 12, fr, 100 + i, (int)(i % 3));
    }
    uint32_t next = 0;
    for (int round = 0; round < 2; round++) {
        assert_int_equal(cw_net_tx(f->n), CW_NET_BLOCKED);
        assert_int_equal(f->out.count, 2);
        /* Sent chains are returned; the blocked one stays available. */
        assert_int_equal(sim_used_idx(&f->tx), 2 * (round + 1));
        assert_int_equal(f->port.tx_flushes, (unsigned)round + 1);
        uint32_t len;
        uint8_t *p;
        while ((p = peer_take(f, &len))) {
            assert_int_equal(len, CW_NET_META_LEN + 100 + next);
            assert_int_equal(rd32(p + CW_NET_META_LEN + ETH), next);
            next++;
            free(p);
        }
    }
    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    uint32_t len;
    uint8_t *p = peer_take(f, &len);
    assert_non_null(p);
    assert_int_equal(rd32(p + CW_NET_META_LEN + ETH), 4);
    free(p);
    assert_null(peer_take(f, &len));
    assert_int_equal(sim_used_idx(&f->tx), 5);
    assert_int_equal(f->n->stats.tx_frames, 5);
    for (int d = 0; d < CW_DROP__COUNT; d++)
        assert_int_equal(f->n->stats.drops[d], 0);
}

static void test_tx_budget(void **state)
{
    struct nfx *f = *state;
    struct cw_net_params p = all_params;
    p.budget = 4;
    /* Flag-based notification this time (no EVENT_IDX). */
    nfx_start_p(f, &p, F_V1 | F_INDIR, 16, 16);
    uint8_t fr[64];
    struct virtio_net_hdr_mrg_rxbuf h = hdr_none();
    for (uint32_t i = 0; i < 10; i++) {
        build_plain(fr, 64, i);
        guest_tx(f, &h, 12, fr, 64, 0);
    }
    assert_int_equal(cw_net_tx(f->n), CW_NET_MORE);
    assert_int_equal(f->out.count, 4);
    assert_int_equal(sim_used_idx(&f->tx), 4);
    /* Still draining: the guest need not kick. */
    assert_int_equal(sim_used_flags(&f->tx), VRING_USED_F_NO_NOTIFY);
    assert_int_equal(f->irqs[CW_NET_TXQ], 1);
    assert_int_equal(cw_net_tx(f->n), CW_NET_MORE);
    assert_int_equal(f->out.count, 8);
    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    assert_int_equal(f->out.count, 10);
    assert_int_equal(sim_used_flags(&f->tx), 0); /* kicks re-armed */
    assert_int_equal(f->irqs[CW_NET_TXQ], 3);
    /* The driver suppresses interrupts: none is sent. */
    sim_avail_set_flags(&f->tx, VRING_AVAIL_F_NO_INTERRUPT);
    guest_tx(f, &h, 12, fr, 64, 0);
    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    assert_int_equal(f->irqs[CW_NET_TXQ], 3);
    assert_int_equal(f->n->stats.tx_frames, 11);
}

static void test_tx_event_idx_suppression(void **state)
{
    struct nfx *f = *state;
    nfx_start(f, F_BASE, 16, 16);
    uint8_t fr[64];
    build_plain(fr, 64, 0);
    struct virtio_net_hdr_mrg_rxbuf h = hdr_none();
    guest_tx(f, &h, 12, fr, 64, 0);
    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    assert_int_equal(f->irqs[CW_NET_TXQ], 1);
    /* The driver wants an interrupt only once entry 2 is used. */
    sim_set_used_event(&f->tx, 2);
    guest_tx(f, &h, 12, fr, 64, 0);
    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    assert_int_equal(f->irqs[CW_NET_TXQ], 1);
    guest_tx(f, &h, 12, fr, 64, 0);
    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    assert_int_equal(f->irqs[CW_NET_TXQ], 2);
}

static void test_tx_broken_guest(void **state)
{
    struct nfx *f = *state;
    nfx_start(f, F_BASE, 8, 8);
    uint8_t fr[64];
    build_plain(fr, 64, 0);
    struct virtio_net_hdr_mrg_rxbuf h = hdr_none();
    guest_tx(f, &h, 12, fr, 64, 0);
    sim_avail_push(&f->tx, 200); /* head out of range */
    guest_tx(f, &h, 12, fr, 64, 0);
    assert_int_equal(cw_net_tx(f->n), CW_NET_BROKEN);
    assert_int_equal(f->n->vq[CW_NET_TXQ].error, CW_VQ_ERR_HEAD);
    assert_int_equal(f->n->stats.drops[CW_DROP_GUEST_FAULT], 1);
    /* The good frame before it went out; its used entry was never
     * published: once broken, the queue writes nothing more to the guest
     * (which must reset the device anyway). */
    assert_int_equal(f->out.count, 1);
    assert_int_equal(sim_used_idx(&f->tx), 0);
    assert_int_equal(f->port.tx_flushes, 1);
    /* Broken stays broken, touching nothing. */
    uint64_t acc = sim_accesses(f->g);
    assert_int_equal(cw_net_tx(f->n), CW_NET_BROKEN);
    assert_int_equal(sim_accesses(f->g), acc);
    assert_int_equal(f->n->stats.drops[CW_DROP_GUEST_FAULT], 1);
    /* RX is unaffected. */
    assert_false(cw_vq_broken(&f->n->vq[CW_NET_RXQ]));
    /* A device reset and restart brings TX back. */
    cw_net_reset(f->n);
    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    sim_vring_init(&f->tx, f->g, 8);
    assert_int_equal(cw_net_queue_start(f->n, CW_NET_TXQ, 8, f->tx.desc, f->tx.avail,
                                        f->tx.used, 0),
                     CW_VQ_OK);
    guest_tx(f, &h, 12, fr, 64, 0);
    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    assert_int_equal(f->out.count, 2);
}

static void test_not_started_noop(void **state)
{
    struct nfx *f = *state;
    cw_net_init(f->n, &all_params, &f->g->gmem, &test_port_ops, &f->port, on_irq, f);
    assert_int_equal(cw_net_set_features(f->n, F_BASE), 0);
    cw_net_set_link(f->n, true);
    uint8_t fr[64];
    build_plain(fr, 64, 0);
    struct virtio_net_hdr_mrg_rxbuf h = hdr_none();
    peer_send(f, &h, fr, 64);
    uint64_t acc = sim_accesses(f->g);
    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    assert_int_equal(sim_accesses(f->g), acc);
    assert_int_equal(f->in.count, 1); /* left for later */
    assert_int_equal(f->port.peeks, 0);

    /* Stopped queues likewise. */
    nfx_start(f, F_BASE, 8, 8);
    cw_net_queue_stop(f->n, CW_NET_RXQ);
    cw_net_queue_stop(f->n, CW_NET_TXQ);
    acc = sim_accesses(f->g);
    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    assert_int_equal(f->in.count, 1);
    /* And after a reset. */
    nfx_start(f, F_BASE, 8, 8);
    guest_rx_post(f, 2, 2048);
    cw_net_reset(f->n);
    assert_false(f->n->vq[0].ready);
    assert_false(f->n->vq[1].ready);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    assert_int_equal(f->in.count, 1);
    assert_int_equal(sim_used_idx(&f->rx), 0);
}

/* ---------------- RX ---------------- */

static void test_rx_basic(void **state)
{
    struct nfx *f = *state;
    nfx_start(f, F_BASE | F_GUEST_OFF, 16, 16);
    guest_rx_post(f, 4, 1526 + 12);
    uint8_t fr[3][1600];
    uint32_t len[3] = {60, 1514, 1518};
    struct virtio_net_hdr_mrg_rxbuf m[3];
    for (int i = 0; i < 3; i++) {
        build_plain(fr[i], len[i], (uint32_t)i);
        m[i] = hdr_none();
        m[i].num_buffers = 77; /* junk from the peer: replaced */
    }
    m[1].hdr.flags = VIRTIO_NET_HDR_F_DATA_VALID;
    m[2].hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    m[2].hdr.csum_start = 34;
    m[2].hdr.csum_offset = 16;
    for (int i = 0; i < 3; i++)
        peer_send(f, &m[i], fr[i], len[i]);

    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    assert_int_equal(f->in.count, 0);
    assert_int_equal(sim_used_idx(&f->rx), 3);
    for (int i = 0; i < 3; i++) {
        struct virtio_net_hdr_mrg_rxbuf h;
        uint8_t out[2000];
        uint32_t n;
        assert_true(guest_rx_take(f, &h, out, &n, false, 12));
        assert_int_equal(n, len[i]);
        assert_memory_equal(out, fr[i], len[i]);
        assert_int_equal(h.num_buffers, 1); /* 1 without MRG_RXBUF */
        assert_int_equal(h.hdr.flags, m[i].hdr.flags);
        assert_int_equal(h.hdr.csum_start, m[i].hdr.csum_start);
        assert_int_equal(h.hdr.csum_offset, m[i].hdr.csum_offset);
        assert_int_equal(sim_used_elem(&f->rx, (uint16_t)i).len, 12 + len[i]);
    }
    assert_int_equal(f->n->stats.rx_frames, 3);
    assert_int_equal(f->n->stats.rx_bytes, 60 + 1514 + 1518);
    assert_int_equal(f->irqs[CW_NET_RXQ], 1);
    assert_int_equal(f->port.rx_flushes, 1);
    assert_int_equal(f->port.releases, 3);
    /* Port empty: refills need no kick (avail_event far behind), even a
     * whole ring of them. */
    uint16_t ev = sim_avail_event(&f->rx);
    assert_false(sim_need_event(ev, (uint16_t)(3 + f->rx.num), 3));
    assert_int_equal(f->n->stats.sw_csum, 0);
}

static void test_rx_mrg_64k(void **state)
{
    struct nfx *f = *state;
    nfx_start(f, F_BASE | F_MRG | F_GUEST_OFF, 64, 16);
    guest_rx_post(f, 20, 4096);
    uint8_t *fr = big_buf();
    uint32_t len = 65000;
    build_plain(fr, len, 42);
    struct virtio_net_hdr_mrg_rxbuf m = hdr_none();
    peer_send(f, &m, fr, len);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);

    uint16_t k = (uint16_t)((len + 12 + 4095) / 4096); /* 16 */
    assert_int_equal(sim_used_idx(&f->rx), k);
    /* Every buffer but the last is filled completely. */
    for (uint16_t i = 0; i + 1 < k; i++)
        assert_int_equal(sim_used_elem(&f->rx, i).len, 4096);
    assert_int_equal(sim_used_elem(&f->rx, (uint16_t)(k - 1)).len, (len + 12) - 4096u * (k - 1));
    struct virtio_net_hdr_mrg_rxbuf h;
    uint8_t *out = big_buf();
    uint32_t n;
    assert_true(guest_rx_take(f, &h, out, &n, true, 12));
    assert_int_equal(h.num_buffers, k);
    assert_int_equal(n, len);
    assert_memory_equal(out, fr, len);
    assert_int_equal(f->irqs[CW_NET_RXQ], 1);
    /* Small frames take one buffer each. */
    build_plain(fr, 100, 1);
    peer_send(f, &m, fr, 100);
    peer_send(f, &m, fr, 100);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    for (int i = 0; i < 2; i++) {
        assert_true(guest_rx_take(f, &h, out, &n, true, 12));
        assert_int_equal(h.num_buffers, 1);
        assert_int_equal(n, 100);
    }
    assert_int_equal(f->n->stats.rx_frames, 3);
    free(fr);
    free(out);
}

static void test_rx_mrg_chained_buffers(void **state)
{
    struct nfx *f = *state;
    /* MRG buffers made of several descriptors, the header split across two
     * of them (any layout is allowed with VERSION_1). */
    nfx_start(f, F_BASE | F_MRG, 16, 16);
    for (int i = 0; i < 3; i++) {
        struct sim_seg s[2] = {{.len = 5, .write = true}, {.len = 995, .write = true}};
        uint64_t b = sim_alloc(f->g, 1000, 8);
        s[0].gpa = b;
        s[1].gpa = b + 5;
        uint16_t h = sim_chain(&f->rx, s, 2);
        f->buf_of_head[CW_NET_RXQ][h] = b;
        f->len_of_head[CW_NET_RXQ][h] = 1000;
        sim_avail_push(&f->rx, h);
    }
    uint8_t fr[2500];
    build_plain(fr, 2500, 5);
    struct virtio_net_hdr_mrg_rxbuf m = hdr_none();
    peer_send(f, &m, fr, 2500);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    struct virtio_net_hdr_mrg_rxbuf h;
    uint8_t out[3000];
    uint32_t n;
    assert_true(guest_rx_take(f, &h, out, &n, true, 12));
    assert_int_equal(h.num_buffers, 3);
    assert_int_equal(n, 2500);
    assert_memory_equal(out, fr, 2500);
}

static void test_rx_no_buffers(void **state)
{
    struct nfx *f = *state;
    nfx_start(f, F_BASE, 16, 16);
    uint8_t fr[1000];
    build_plain(fr, 1000, 7);
    struct virtio_net_hdr_mrg_rxbuf m = hdr_none();
    peer_send(f, &m, fr, 1000);
    assert_int_equal(cw_net_rx(f->n), CW_NET_BLOCKED);
    assert_int_equal(f->in.count, 1); /* kept */
    assert_int_equal(f->port.releases, 0);
    /* Kick armed for the very next buffer. */
    assert_int_equal(sim_avail_event(&f->rx), 0);
    assert_int_equal(f->irqs[CW_NET_RXQ], 0);

    guest_rx_post(f, 1, 2048);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    assert_int_equal(f->in.count, 0);
    struct virtio_net_hdr_mrg_rxbuf h;
    uint8_t out[2048];
    uint32_t n;
    assert_true(guest_rx_take(f, &h, out, &n, false, 12));
    assert_int_equal(n, 1000);
    assert_memory_equal(out, fr, 1000);
    assert_false(guest_rx_take(f, &h, out, &n, false, 12));
    assert_int_equal(f->n->stats.rx_frames, 1);
}

/* A driver without EVENT_IDX (DPDK's virtio PMD) kicks on every refill while
 * used->flags allows it. Once the device is back to using buffers it must
 * say so, or every refill burst costs the driver a kick for as long as the
 * port never runs empty (a budget-limited round ends with frames waiting). */
static void test_rx_refill_kicks_stop_when_buffers_flow(void **state)
{
    struct nfx *f = *state;
    struct cw_net_params p = all_params;
    p.budget = 2;
    nfx_start_p(f, &p, F_V1 | F_INDIR, 16, 16);
    uint8_t fr[1000];
    build_plain(fr, 1000, 3);
    struct virtio_net_hdr_mrg_rxbuf m = hdr_none();
    for (int i = 0; i < 5; i++)
        peer_send(f, &m, fr, 1000);
    assert_int_equal(cw_net_rx(f->n), CW_NET_BLOCKED);
    assert_int_equal(sim_used_flags(&f->rx), 0); /* the next refill kicks */
    guest_rx_post(f, 5, 2048);
    /* Budget used up, frames still waiting, buffers there: no kicks. */
    assert_int_equal(cw_net_rx(f->n), CW_NET_MORE);
    assert_int_equal(f->in.count, 3);
    assert_int_equal(sim_used_flags(&f->rx), VRING_USED_F_NO_NOTIFY);
    assert_int_equal(cw_net_rx(f->n), CW_NET_MORE);
    assert_int_equal(sim_used_flags(&f->rx), VRING_USED_F_NO_NOTIFY);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    assert_int_equal(f->n->stats.rx_frames, 5);
}

/* Polling (cw_net.polling): the caller will look again by itself, so an
 * empty TX queue and a full RX queue ask the driver for nothing; the first
 * call with polling off arms both as usual. */
static void test_polling_arms_nothing(void **state)
{
    struct nfx *f = *state;
    nfx_start_p(f, &all_params, F_V1 | F_INDIR, 16, 16);
    uint8_t fr[64];
    build_plain(fr, 64, 1);
    struct virtio_net_hdr_mrg_rxbuf h = hdr_none();
    f->n->polling = true;
    guest_tx(f, &h, 12, fr, 64, 0);
    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    assert_int_equal(f->out.count, 1);
    assert_int_equal(sim_used_flags(&f->tx), VRING_USED_F_NO_NOTIFY);
    peer_send(f, &h, fr, 64);
    assert_int_equal(cw_net_rx(f->n), CW_NET_BLOCKED);
    assert_int_equal(sim_used_flags(&f->rx), VRING_USED_F_NO_NOTIFY);
    assert_int_equal(f->in.count, 1);

    f->n->polling = false;
    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    assert_int_equal(sim_used_flags(&f->tx), 0);
    assert_int_equal(cw_net_rx(f->n), CW_NET_BLOCKED);
    assert_int_equal(sim_used_flags(&f->rx), 0);
}

static void test_rx_mrg_partial_buffers(void **state)
{
    struct nfx *f = *state;
    nfx_start(f, F_BASE | F_MRG, 16, 16);
    guest_rx_post(f, 2, 4096);
    uint8_t fr[10000];
    build_plain(fr, 10000, 8);
    struct virtio_net_hdr_mrg_rxbuf m = hdr_none();
    peer_send(f, &m, fr, 10000);
    /* Two buffers are not enough: nothing is returned, the frame waits. */
    assert_int_equal(cw_net_rx(f->n), CW_NET_BLOCKED);
    assert_int_equal(sim_used_idx(&f->rx), 0);
    assert_int_equal(f->in.count, 1);
    assert_int_equal(f->n->vq[CW_NET_RXQ].last_avail_idx, 0);
    /* Kick wanted when the third buffer arrives: the event names entry 2
     * (the driver's next), and the driver's vring_need_event for publishing
     * 2 -> 3 says kick. (This used to be entry 0, which the driver had
     * published already: no kick ever came and the queue stalled.) */
    uint16_t ev = sim_avail_event(&f->rx);
    assert_int_equal(ev, 2);
    assert_true(sim_need_event(ev, 3, 2));
    guest_rx_post(f, 1, 4096);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    struct virtio_net_hdr_mrg_rxbuf h;
    uint8_t out[12300];
    uint32_t n;
    assert_true(guest_rx_take(f, &h, out, &n, true, 12));
    assert_int_equal(h.num_buffers, 3);
    assert_int_equal(n, 10000);
    assert_memory_equal(out, fr, 10000);
    assert_int_equal(sim_used_idx(&f->rx), 3);
    for (int d = 0; d < CW_DROP__COUNT; d++)
        assert_int_equal(f->n->stats.drops[d], 0);
}

static void test_rx_no_room(void **state)
{
    struct nfx *f = *state;
    nfx_start(f, F_BASE, 16, 16);
    guest_rx_post(f, 1, 100);
    uint8_t fr[1000];
    build_plain(fr, 1000, 1);
    struct virtio_net_hdr_mrg_rxbuf m = hdr_none();
    peer_send(f, &m, fr, 1000);
    peer_send(f, &m, fr, 89); /* 89 + 12 = 101: one byte too many */
    peer_send(f, &m, fr, 88); /* 88 + 12 = 100: fits exactly */
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    assert_int_equal(f->n->stats.drops[CW_DROP_RX_NO_ROOM], 2);
    assert_int_equal(f->in.count, 0);
    /* The small buffer was kept for the next frame. */
    assert_int_equal(sim_used_idx(&f->rx), 1);
    assert_int_equal(sim_used_elem(&f->rx, 0).len, 100);
    assert_int_equal(f->n->stats.rx_frames, 1);
}

static void test_rx_mrg_never_fits(void **state)
{
    struct nfx *f = *state;
    /* A 4-entry ring of 1 KiB buffers can never hold 10000 bytes: drop
     * instead of waiting forever. */
    nfx_start(f, F_BASE | F_MRG, 4, 16);
    guest_rx_post(f, 4, 1024);
    uint8_t fr[10000];
    build_plain(fr, 10000, 1);
    struct virtio_net_hdr_mrg_rxbuf m = hdr_none();
    peer_send(f, &m, fr, 10000);
    peer_send(f, &m, fr, 2000);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    assert_int_equal(f->n->stats.drops[CW_DROP_RX_NO_ROOM], 1);
    struct virtio_net_hdr_mrg_rxbuf h;
    uint8_t out[4096];
    uint32_t n;
    assert_true(guest_rx_take(f, &h, out, &n, true, 12));
    assert_int_equal(h.num_buffers, 2);
    assert_int_equal(n, 2000);
    assert_false(guest_rx_take(f, &h, out, &n, true, 12));
}

static void test_rx_bad_frames(void **state)
{
    struct nfx *f = *state;
    nfx_start(f, F_BASE | F_GUEST_OFF, 16, 16);
    guest_rx_post(f, 4, 2048);
    uint8_t *fr = big_buf();
    build_plain(fr, CW_NET_MAX_FRAME + 1, 0);
    struct virtio_net_hdr_mrg_rxbuf m = hdr_none();
    /* Too short (meta + 13), only part of a header, too long. */
    peer_send(f, &m, fr, 13);
    {
        uint8_t *b = malloc(5);
        memset(b, 0, 5);
        fifo_put(&f->in, b, 5);
    }
    peer_send(f, &m, fr, CW_NET_MAX_FRAME + 1);
    unsigned nbad = 3;
    struct {
        uint8_t flags, gso;
        uint16_t gso_size, cs, co;
    } bad[] = {
        {0, VIRTIO_NET_HDR_GSO_UDP, 1000, 0, 0},
        {0, 0x42, 1000, 0, 0},
        {0, VIRTIO_NET_HDR_GSO_ECN, 0, 0, 0},
        {0, VIRTIO_NET_HDR_GSO_TCPV6, 0, 0, 0},
        {VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 50, 0},
        {VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0xffff, 0xffff},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m = hdr_none();
        m.hdr.flags = bad[i].flags;
        m.hdr.gso_type = bad[i].gso;
        m.hdr.gso_size = bad[i].gso_size;
        m.hdr.csum_start = bad[i].cs;
        m.hdr.csum_offset = bad[i].co;
        peer_send(f, &m, fr, 51);
        nbad++;
    }
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    assert_int_equal(f->n->stats.drops[CW_DROP_RX_BAD_FRAME], nbad);
    assert_int_equal(f->in.count, 0);
    assert_int_equal(f->port.releases, nbad);
    assert_int_equal(sim_used_idx(&f->rx), 0); /* no buffer used */
    assert_int_equal(f->irqs[CW_NET_RXQ], 0);
    free(fr);
}

static void test_rx_budget(void **state)
{
    struct nfx *f = *state;
    struct cw_net_params p = all_params;
    p.budget = 3;
    nfx_start_p(f, &p, F_BASE, 16, 16);
    guest_rx_post(f, 8, 2048);
    uint8_t fr[100];
    struct virtio_net_hdr_mrg_rxbuf m = hdr_none();
    for (uint32_t i = 0; i < 5; i++) {
        build_plain(fr, 100, i);
        peer_send(f, &m, fr, 100);
    }
    assert_int_equal(cw_net_rx(f->n), CW_NET_MORE);
    assert_int_equal(f->in.count, 2);
    assert_int_equal(sim_used_idx(&f->rx), 3);
    assert_int_equal(f->port.rx_flushes, 1);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    assert_int_equal(f->in.count, 0);
    for (uint32_t i = 0; i < 5; i++) {
        struct virtio_net_hdr_mrg_rxbuf h;
        uint8_t out[2048];
        uint32_t n;
        assert_true(guest_rx_take(f, &h, out, &n, false, 12));
        assert_int_equal(rd32(out + ETH), i);
    }
}

static void test_rx_link_down(void **state)
{
    struct nfx *f = *state;
    nfx_start(f, F_BASE, 16, 16);
    guest_rx_post(f, 2, 2048);
    uint8_t fr[100];
    build_plain(fr, 100, 0);
    struct virtio_net_hdr_mrg_rxbuf m = hdr_none();
    peer_send(f, &m, fr, 100);
    cw_net_set_link(f->n, false);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    assert_int_equal(f->in.count, 1);
    assert_int_equal(f->port.peeks, 0);
    cw_net_set_link(f->n, true);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    assert_int_equal(f->in.count, 0);
    assert_int_equal(sim_used_idx(&f->rx), 1);
}

static void test_rx_csum_offload(void **state)
{
    struct nfx *f = *state;
    /* A guest without GUEST_CSUM: the device finishes the checksum. */
    nfx_start(f, F_BASE, 16, 16);
    guest_rx_post(f, 4, 2048);
    uint8_t fr[1600];
    uint32_t len = build_tcp4(fr, 1000, 1, 0x18);
    struct virtio_net_hdr_mrg_rxbuf m = hdr_none();
    m.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    m.hdr.csum_start = ETH + IP4;
    m.hdr.csum_offset = 16;
    peer_send(f, &m, fr, len);
    /* DATA_VALID must not reach this guest either. */
    struct virtio_net_hdr_mrg_rxbuf m2 = hdr_none();
    m2.hdr.flags = VIRTIO_NET_HDR_F_DATA_VALID;
    peer_send(f, &m2, fr, 100);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    struct virtio_net_hdr_mrg_rxbuf h;
    uint8_t out[2048];
    uint32_t n;
    assert_true(guest_rx_take(f, &h, out, &n, false, 12));
    assert_int_equal(n, len);
    assert_int_equal(h.hdr.flags, 0);
    assert_tcp4_valid(out, n);
    assert_memory_equal(out + HDRS, fr + HDRS, len - HDRS);
    assert_int_equal(f->n->stats.sw_csum, 1);
    assert_true(guest_rx_take(f, &h, out, &n, false, 12));
    assert_int_equal(h.hdr.flags, 0);
    /* The port's copy was not modified (it belongs to the peer). */
    assert_int_equal(f->in.count, 0);
}

static void test_rx_csum_passthrough(void **state)
{
    struct nfx *f = *state;
    nfx_start(f, F_BASE | F_GCSUM, 16, 16);
    guest_rx_post(f, 2, 2048);
    uint8_t fr[1600];
    uint32_t len = build_tcp4(fr, 1000, 1, 0x18);
    struct virtio_net_hdr_mrg_rxbuf m = hdr_none();
    m.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    m.hdr.csum_start = ETH + IP4;
    m.hdr.csum_offset = 16;
    peer_send(f, &m, fr, len);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    struct virtio_net_hdr_mrg_rxbuf h;
    uint8_t out[2048];
    uint32_t n;
    assert_true(guest_rx_take(f, &h, out, &n, false, 12));
    assert_int_equal(h.hdr.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    assert_int_equal(h.hdr.csum_start, ETH + IP4);
    assert_int_equal(h.hdr.csum_offset, 16);
    assert_memory_equal(out, fr, len); /* untouched: the guest finishes it */
    assert_int_equal(f->n->stats.sw_csum, 0);
}

/* A TSO frame of `pay` bytes with gso_size 1448, as Linux would send it. */
static uint32_t gso_frame(uint8_t *fr, struct virtio_net_hdr_mrg_rxbuf *m, uint32_t pay,
                          uint8_t gso_type)
{
    uint32_t len = build_tcp4(fr, pay, 1000, 0x19 /* FIN PSH ACK */);
    *m = hdr_none();
    m->hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    m->hdr.csum_start = ETH + IP4;
    m->hdr.csum_offset = 16;
    m->hdr.gso_type = gso_type;
    m->hdr.gso_size = 1448;
    m->hdr.hdr_len = HDRS;
    return len;
}

static void check_segments(struct nfx *f, const uint8_t *fr, uint32_t pay, unsigned first,
                           unsigned count, bool mrg)
{
    for (unsigned i = first; i < first + count; i++) {
        struct virtio_net_hdr_mrg_rxbuf h;
        uint8_t out[2048];
        uint32_t n;
        assert_true(guest_rx_take(f, &h, out, &n, mrg, 12));
        uint32_t off = 1448u * i;
        uint32_t seg = pay - off < 1448 ? pay - off : 1448;
        assert_int_equal(n, HDRS + seg);
        assert_int_equal(h.hdr.gso_type, VIRTIO_NET_HDR_GSO_NONE);
        assert_false(h.hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM);
        assert_tcp4_valid(out, n);
        assert_int_equal(rd32(out + ETH + IP4 + 4), 1000 + off);
        assert_memory_equal(out + HDRS, fr + HDRS + off, seg);
        bool last = off + seg == pay;
        assert_int_equal(out[ETH + IP4 + 13] & 0x09, last ? 0x09 : 0); /* FIN, PSH */
    }
}

static void test_rx_gso_segmented(void **state)
{
    struct nfx *f = *state;
    /* The guest has checksum offload but no GUEST_TSO4. */
    nfx_start(f, F_BASE | F_GCSUM | F_GTSO6, 16, 16);
    guest_rx_post(f, 8, 2048);
    uint8_t *fr = big_buf();
    struct virtio_net_hdr_mrg_rxbuf m;
    uint32_t len = gso_frame(fr, &m, 4000, VIRTIO_NET_HDR_GSO_TCPV4);
    peer_send(f, &m, fr, len);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    assert_int_equal(f->n->stats.sw_segments, 3);
    assert_int_equal(f->n->stats.rx_frames, 3);
    assert_int_equal(sim_used_idx(&f->rx), 3);
    check_segments(f, fr, 4000, 0, 3, false);
    assert_int_equal(f->irqs[CW_NET_RXQ], 1);

    /* ECN-marked GSO without GUEST_ECN is segmented too. */
    guest_rx_post(f, 4, 2048);
    len = gso_frame(fr, &m, 2000, VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN);
    peer_send(f, &m, fr, len);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    check_segments(f, fr, 2000, 0, 2, false);
    assert_int_equal(f->n->stats.sw_segments, 5);
    free(fr);
}

static void test_rx_gso_malformed(void **state)
{
    struct nfx *f = *state;
    nfx_start(f, F_BASE, 16, 16);
    guest_rx_post(f, 4, 2048);
    uint8_t fr[3000];
    struct virtio_net_hdr_mrg_rxbuf m;
    uint32_t len = gso_frame(fr, &m, 2000, VIRTIO_NET_HDR_GSO_TCPV4);
    fr[ETH + 9] = 17; /* says TCP GSO, carries UDP */
    peer_send(f, &m, fr, len);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    assert_int_equal(f->n->stats.drops[CW_DROP_RX_OFFLOAD], 1);
    assert_int_equal(sim_used_idx(&f->rx), 0);
    assert_int_equal(f->in.count, 0);
}

static void test_rx_gso_segmented_resumes(void **state)
{
    struct nfx *f = *state;
    /* Only one buffer for a 4-segment frame: one segment goes in, the frame
     * waits; more buffers: the rest follows, none twice. */
    nfx_start(f, F_BASE | F_MRG, 16, 16);
    guest_rx_post(f, 1, 2048);
    uint8_t *fr = big_buf();
    struct virtio_net_hdr_mrg_rxbuf m;
    uint32_t pay = 5000;
    uint32_t len = gso_frame(fr, &m, pay, VIRTIO_NET_HDR_GSO_TCPV4);
    peer_send(f, &m, fr, len);
    assert_int_equal(cw_net_rx(f->n), CW_NET_BLOCKED);
    assert_int_equal(sim_used_idx(&f->rx), 1);
    assert_int_equal(f->in.count, 1);
    assert_int_equal(f->irqs[CW_NET_RXQ], 1); /* what was delivered is signalled */
    check_segments(f, fr, pay, 0, 1, true);
    guest_rx_post(f, 2, 2048);
    assert_int_equal(cw_net_rx(f->n), CW_NET_BLOCKED);
    check_segments(f, fr, pay, 1, 2, true);
    guest_rx_post(f, 5, 2048);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    check_segments(f, fr, pay, 3, 1, true);
    struct virtio_net_hdr_mrg_rxbuf h;
    uint8_t out[2048];
    uint32_t n;
    assert_false(guest_rx_take(f, &h, out, &n, true, 12));
    assert_int_equal(f->n->stats.sw_segments, 4);
    assert_int_equal(f->in.count, 0);
    assert_int_equal(f->n->rx_seg_done, 0);
    free(fr);
}

static void test_rx_gso_passthrough(void **state)
{
    struct nfx *f = *state;
    nfx_start(f, F_BASE | F_MRG | F_GUEST_OFF, 64, 16);
    guest_rx_post(f, 20, 4096);
    uint8_t *fr = big_buf();
    struct virtio_net_hdr_mrg_rxbuf m;
    uint32_t len = gso_frame(fr, &m, 60000, VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN);
    peer_send(f, &m, fr, len);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    struct virtio_net_hdr_mrg_rxbuf h;
    uint8_t *out = big_buf();
    uint32_t n;
    assert_true(guest_rx_take(f, &h, out, &n, true, 12));
    assert_int_equal(n, len);
    assert_memory_equal(out, fr, len);
    assert_int_equal(h.hdr.gso_type, m.hdr.gso_type);
    assert_int_equal(h.hdr.gso_size, 1448);
    assert_int_equal(h.hdr.hdr_len, HDRS);
    assert_int_equal(h.hdr.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    assert_int_equal(h.num_buffers, (len + 12 + 4095) / 4096);
    assert_int_equal(f->n->stats.sw_segments, 0);
    free(fr);
    free(out);
}

static void test_rx_broken_guest(void **state)
{
    struct nfx *f = *state;
    nfx_start(f, F_BASE, 16, 16);
    /* A writable buffer outside guest memory. */
    sim_desc_write(f->g, f->rx.desc, 0, SIM_R0_GPA + SIM_R0_SIZE + 0x100, 2048,
                   VRING_DESC_F_WRITE, 0);
    sim_avail_push(&f->rx, 0);
    uint8_t fr[100];
    build_plain(fr, 100, 0);
    struct virtio_net_hdr_mrg_rxbuf m = hdr_none();
    peer_send(f, &m, fr, 100);
    peer_send(f, &m, fr, 100);
    assert_int_equal(cw_net_rx(f->n), CW_NET_BROKEN);
    assert_int_equal(f->n->vq[CW_NET_RXQ].error, CW_VQ_ERR_BUF_ADDR);
    assert_int_equal(f->n->stats.drops[CW_DROP_GUEST_FAULT], 1);
    assert_int_equal(f->in.count, 1);
    uint64_t acc = sim_accesses(f->g);
    unsigned peeks = f->port.peeks;
    assert_int_equal(cw_net_rx(f->n), CW_NET_BROKEN);
    assert_int_equal(sim_accesses(f->g), acc);
    assert_int_equal(f->port.peeks, peeks);
}

/* A driver that adds a buffer the moment the device writes avail_event,
 * i.e. between the device finding the ring empty and re-checking it. */
struct race {
    struct nfx *f;
    struct sim_vring *r;
    int armed;
    bool tx;
};

static void race_hook(struct sim_guest *g, uint64_t gpa, size_t len, void *arg)
{
    struct race *rc = arg;
    (void)g;
    (void)len;
    if (!rc->armed || gpa != rc->r->used + 4 + 8ull * rc->r->num)
        return;
    /* Only when kicks are being enabled (avail_event == next entry). */
    if (sim_avail_event(rc->r) != rc->r->avail_idx)
        return;
    rc->armed--;
    if (rc->tx) {
        uint8_t fr[64];
        build_plain(fr, 64, 99);
        struct virtio_net_hdr_mrg_rxbuf h = hdr_none();
        guest_tx(rc->f, &h, 12, fr, 64, 0);
    } else {
        guest_rx_post(rc->f, 1, 2048);
    }
}

static void test_tx_enable_recheck(void **state)
{
    struct nfx *f = *state;
    nfx_start(f, F_BASE, 16, 16);
    struct race rc = {.f = f, .r = &f->tx, .armed = 1, .tx = true};
    f->g->write_hook = race_hook;
    f->g->hook_arg = &rc;
    assert_int_equal(cw_net_tx(f->n), CW_NET_IDLE);
    /* The frame that raced with re-enabling kicks was not left behind. */
    assert_int_equal(rc.armed, 0);
    assert_int_equal(f->out.count, 1);
    assert_int_equal(sim_used_idx(&f->tx), 1);
    f->g->write_hook = NULL;
}

static void test_rx_enable_recheck(void **state)
{
    struct nfx *f = *state;
    nfx_start(f, F_BASE, 16, 16);
    uint8_t fr[100];
    build_plain(fr, 100, 0);
    struct virtio_net_hdr_mrg_rxbuf m = hdr_none();
    peer_send(f, &m, fr, 100);
    struct race rc = {.f = f, .r = &f->rx, .armed = 1, .tx = false};
    f->g->write_hook = race_hook;
    f->g->hook_arg = &rc;
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    assert_int_equal(rc.armed, 0);
    assert_int_equal(f->in.count, 0);
    assert_int_equal(sim_used_idx(&f->rx), 1);
    f->g->write_hook = NULL;
}

/* Two devices joined by one FIFO: A's guest sends a TSO frame with a
 * partial checksum; B's guest, without offloads, receives MSS-sized
 * segments with complete checksums. */
static void test_loopback_tso_to_plain_guest(void **state)
{
    struct nfx *a = *state;
    struct nfx *b = NULL;
    void *st = &copying_flavour;
    assert_int_equal(nfx_setup(&st), 0);
    b = st;
    nfx_start(a, F_BASE | F_MRG | F_HOST_OFF | F_GUEST_OFF, 16, 16);
    nfx_start(b, F_BASE, 64, 16);
    b->port.in = &a->out; /* A's TX is B's RX */
    guest_rx_post(b, 64, 1600);

    uint8_t *fr = big_buf();
    struct virtio_net_hdr_mrg_rxbuf m;
    uint32_t pay = 60000;
    uint32_t len = gso_frame(fr, &m, pay, VIRTIO_NET_HDR_GSO_TCPV4);
    guest_tx(a, &m, 12, fr, len, 1);
    assert_int_equal(cw_net_tx(a->n), CW_NET_IDLE);
    assert_int_equal(a->out.count, 1);
    assert_int_equal(cw_net_rx(b->n), CW_NET_IDLE);
    unsigned segs = (pay + 1447) / 1448;
    assert_int_equal(b->n->stats.sw_segments, segs);
    check_segments(b, fr, pay, 0, segs, false);
    assert_int_equal(a->out.count, 0);
    b->port.in = &b->in;
    free(fr);
    nfx_teardown((void **)&b);
}

/* VIRTIO_F_IN_ORDER is offered, so every chain must go back in the order
 * the driver made it available, whatever happened to it: sent, dropped,
 * held back by a full port, a frame spread over several buffers, a frame
 * that had to wait for more buffers. A driver that negotiated the feature
 * frees its descriptors by position and would be corrupted otherwise. */
static void assert_used_in_avail_order(struct sim_vring *r, const uint16_t *heads, uint16_t n)
{
    assert_int_equal(sim_used_idx(r), n);
    for (uint16_t i = 0; i < n; i++)
        assert_int_equal(sim_used_elem(r, i).id, heads[i]);
}

static void test_in_order_use(void **state)
{
    struct nfx *f = *state;
    nfx_start(f, F_BASE | F_INORDER | F_MRG, 32, 32);
    fifo_init(&f->out, 3);
    struct virtio_net_hdr_mrg_rxbuf h = hdr_none();
    uint8_t fr[3000];
    uint16_t heads[32];
    uint16_t n = 0;

    /* TX: good frames in every layout, two drops, and a port that fills. */
    for (uint32_t i = 0; i < 8; i++) {
        uint32_t len = (i == 2 || i == 5) ? 10 : 100 + i; /* 10: too short */
        build_plain(fr, len < ETH + 4 ? ETH + 4 : len, i);
        heads[n++] = guest_tx(f, &h, 12, fr, len, (int)(i % 3));
    }
    uint16_t sent = 0;
    while (cw_net_tx(f->n) == CW_NET_BLOCKED) {
        uint32_t len;
        uint8_t *p;
        while ((p = peer_take(f, &len))) {
            free(p);
            sent++;
        }
    }
    fifo_clear(&f->out);
    assert_int_equal(f->n->stats.drops[CW_DROP_TX_SHORT], 2);
    assert_int_equal(f->n->stats.tx_frames, 6);
    assert_true(sent >= 3); /* the port did fill on the way */
    assert_used_in_avail_order(&f->tx, heads, n);

    /* RX: 1000-byte buffers, frames of one, two and three buffers, one
     * that must wait for buffers posted later. */
    guest_rx_post_heads(f, 4, 1000, heads);
    struct virtio_net_hdr_mrg_rxbuf m = hdr_none();
    static const uint32_t sizes[] = {500, 1500, 2500};
    for (unsigned i = 0; i < 3; i++) {
        build_plain(fr, sizes[i], 20 + i);
        peer_send(f, &m, fr, sizes[i]);
    }
    /* 1 + 2 buffers taken, the third frame needs 3 of the 1 left. */
    assert_int_equal(cw_net_rx(f->n), CW_NET_BLOCKED);
    assert_int_equal(sim_used_idx(&f->rx), 3);
    guest_rx_post_heads(f, 4, 1000, heads + 4);
    assert_int_equal(cw_net_rx(f->n), CW_NET_IDLE);
    assert_used_in_avail_order(&f->rx, heads, 6);
    for (unsigned i = 0; i < 3; i++) {
        uint8_t out[3000];
        uint32_t len;
        assert_true(guest_rx_take(f, &m, out, &len, true, 12));
        assert_int_equal(len, sizes[i]);
        assert_int_equal(rd32(out + ETH), 20 + i);
    }
}

/* Each device test twice, once per guest-memory flavour. */
#define T(t)                                                               \
    {#t " (translating)", t, nfx_setup, nfx_teardown, &translating_flavour}, \
    {#t " (copying)", t, nfx_setup, nfx_teardown, &copying_flavour}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offered_features),
        T(test_set_features),
        T(test_config),
        cmocka_unit_test(test_drop_names),
        T(test_tx_basic),
        T(test_tx_legacy_header),
        T(test_tx_drops),
        T(test_tx_csum_without_feature),
        T(test_tx_port_full),
        T(test_tx_budget),
        T(test_tx_event_idx_suppression),
        T(test_tx_broken_guest),
        T(test_not_started_noop),
        T(test_rx_basic),
        T(test_rx_mrg_64k),
        T(test_rx_mrg_chained_buffers),
        T(test_rx_no_buffers),
        T(test_rx_refill_kicks_stop_when_buffers_flow),
        T(test_polling_arms_nothing),
        T(test_rx_mrg_partial_buffers),
        T(test_rx_no_room),
        T(test_rx_mrg_never_fits),
        T(test_rx_bad_frames),
        T(test_rx_budget),
        T(test_rx_link_down),
        T(test_rx_csum_offload),
        T(test_rx_csum_passthrough),
        T(test_rx_gso_segmented),
        T(test_rx_gso_malformed),
        T(test_rx_gso_segmented_resumes),
        T(test_rx_gso_passthrough),
        T(test_rx_broken_guest),
        /* The race hook fires on gmem writes: copying flavour only. */
        {"test_tx_enable_recheck (copying)", test_tx_enable_recheck, nfx_setup, nfx_teardown,
         &copying_flavour},
        {"test_rx_enable_recheck (copying)", test_rx_enable_recheck, nfx_setup, nfx_teardown,
         &copying_flavour},
        T(test_loopback_tso_to_plain_guest),
        T(test_in_order_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
