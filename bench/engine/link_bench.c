/* Scenario 1: guest A TX -> device A -> port -> device B -> guest B RX, all
 * in this thread (see link_bench.h).
 *
 * What runs as in a device process: cw_net_tx/cw_net_rx, the port through
 * cw_port_net_ops (so its eventfd signals are real write() calls, made only
 * when the other side asked), a wake-up of the other side whenever a signal
 * was sent (cw_port_drain: a read() and the flag cleared, as the event loop
 * does), and interrupts as eventfd writes (as cw_vhost_interrupt does). Not
 * included: epoll_wait and the read of a guest's kick eventfd (kicks are
 * counted and reported instead).
 *
 * Layouts a Linux guest would use: TX chains carry the 12-byte header in
 * front of the frame in one buffer, split into descriptors of at most
 * 32 KiB (a 64 KiB TSO frame takes 3); RX buffers for MRG_RXBUF are 1536
 * bytes for small frames and 4096 for large ones, where Linux's average
 * packet length estimate settles. */
#define _GNU_SOURCE
#include "link_bench.h"
#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/net.h"
#include "frames.h"
#include "guest_sim.h"
#include "port/port.h"

#define GUEST_RAM (64ull << 20)
#define TX_DESC_MAX 32768u
#define MTU 9000u
#define VERIFY_FRAMES 64u /* compared byte for byte at the start of each phase */
#define STALL_ROUNDS 100000u

struct irq {
    int fd;
    uint64_t count;
};

struct bench {
    const struct link_cfg *cfg;
    struct guest ga, gb;
    struct drv_vq a_rx, a_tx, b_rx, b_tx;
    struct cw_net *na, *nb;
    struct cw_port pa, pb;
    struct irq irq_a, irq_b;

    /* Guest A's TX buffers: header + frame, identical content. */
    uint32_t chain_bytes, descs_per_chain, ntx;
    uint64_t tx_base, tx_stride;
    uint32_t *tx_free; /* FIFO of free buffers: a pool larger than the */
    uint32_t tx_free_head, tx_free_n; /* caches is then cycled through, cold */
    uint64_t posted;

    /* Guest B's RX buffers, one per descriptor. */
    uint32_t rx_buf;
    uint64_t rx_base;
    uint32_t *rx_refill;
    uint32_t rx_refill_n;
    /* Frame being reassembled at B. */
    uint32_t frame_left, frame_bytes, frame_off;
    bool frame_verify;
    uint64_t delivered, verified, verify_budget;

    uint8_t *tmpl; /* header + frame as guest A wrote it */
    struct virtio_net_hdr_mrg_rxbuf hdr;
    char *err;
    size_t errlen;
};

static void irq_cb(void *ctx, int q)
{
    struct irq *i = ctx;
    uint64_t one = 1;
    (void)q;
    i->count++;
    /* As cw_vhost_interrupt: one eventfd write per interrupt. */
    ssize_t r = write(i->fd, &one, sizeof(one));
    (void)r; /* EAGAIN only on a saturated counter nobody reads: harmless */
}

static int fail(struct bench *b, const char *msg)
{
    snprintf(b->err, b->errlen, "%s", msg);
    return -1;
}

static int setup_device(struct bench *b, struct cw_net **np, struct guest *g, struct drv_vq *rx,
                        struct drv_vq *tx, struct cw_port *port, struct irq *irq, uint8_t id)
{
    struct cw_net_params p = {
        .mac = {0x52, 0x54, 0x00, 0xca, 0x00, id}, .mtu = MTU, .offloads = true,
        .mrg_rxbuf = true, .budget = 0,
    };
    struct cw_net *n = calloc(1, sizeof(*n));
    if (!n)
        return fail(b, "out of memory");
    *np = n;
    irq->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (irq->fd < 0)
        return fail(b, "eventfd failed");
    cw_net_init(n, &p, &g->gm.gmem, &cw_port_net_ops, port, irq_cb, irq);
    /* What a Linux guest negotiates: everything offered. */
    if (cw_net_set_features(n, cw_net_offered_features(&p)) < 0)
        return fail(b, "feature negotiation failed");
    uint16_t num = b->cfg->ring_size;
    if (drv_vq_init(rx, g, num) < 0 || drv_vq_init(tx, g, num) < 0)
        return fail(b, "guest memory too small for the rings");
    if (cw_net_queue_start(n, CW_NET_RXQ, num, rx->desc_gpa, rx->avail_gpa, rx->used_gpa, 0) !=
            CW_VQ_OK ||
        cw_net_queue_start(n, CW_NET_TXQ, num, tx->desc_gpa, tx->avail_gpa, tx->used_gpa, 0) !=
            CW_VQ_OK)
        return fail(b, "queue start refused");
    cw_net_set_link(n, true);
    return 0;
}

static int setup_port(struct bench *b)
{
    struct cw_port_fds fa, fb;
    uint32_t cap = b->cfg->port_capacity;
    if (cw_port_fds_create(&fa, cap) < 0)
        return fail(b, "cannot create the port");
    /* The peer's copies, as they would arrive over the link socket. */
    fb.memfd = dup(fa.memfd);
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 2; k++)
            fb.efd[r][k] = dup(fa.efd[r][k]);
    if (cw_port_attach(&b->pa, &fa, 0, cap, true) < 0) {
        cw_port_fds_close(&fb);
        return fail(b, "port attach (side 0) failed");
    }
    if (cw_port_attach(&b->pb, &fb, 1, cap, false) < 0)
        return fail(b, "port attach (side 1) failed");
    return 0;
}

static int setup_buffers(struct bench *b)
{
    uint32_t flen = b->cfg->frame_len;
    uint16_t num = b->cfg->ring_size;
    b->chain_bytes = CW_NET_META_LEN + flen;
    b->descs_per_chain = (b->chain_bytes + TX_DESC_MAX - 1) / TX_DESC_MAX;
    b->ntx = num / b->descs_per_chain;
    b->tx_stride = (b->chain_bytes + 63u) & ~63u;
    uint64_t pool = (uint64_t)b->cfg->tx_pool_mib << 20;
    if (pool / b->tx_stride > b->ntx)
        b->ntx = (uint32_t)(pool / b->tx_stride);
    b->tx_base = guest_alloc(&b->ga, b->tx_stride * b->ntx, 4096);
    b->tx_free = calloc(b->ntx, sizeof(*b->tx_free));
    b->tmpl = malloc(b->chain_bytes);
    if (!b->tx_base || !b->tx_free || !b->tmpl)
        return fail(b, "guest A memory too small for the TX buffers");
    frame_build(b->tmpl + CW_NET_META_LEN, flen, MTU, 1, &b->hdr);
    memcpy(b->tmpl, &b->hdr, CW_NET_META_LEN);
    for (uint32_t i = 0; i < b->ntx; i++) {
        memcpy(guest_ptr(&b->ga, b->tx_base + i * b->tx_stride), b->tmpl, b->chain_bytes);
        b->tx_free[b->tx_free_n++] = i;
    }

    b->rx_buf = b->chain_bytes <= 1536u ? 1536u : 4096u;
    b->rx_base = guest_alloc(&b->gb, (uint64_t)b->rx_buf * num, 4096);
    b->rx_refill = calloc(num, sizeof(*b->rx_refill));
    if (!b->rx_base || !b->rx_refill)
        return fail(b, "guest B memory too small for the RX buffers");
    for (uint32_t i = 0; i < num; i++)
        b->rx_refill[b->rx_refill_n++] = i;
    return 0;
}

/* Guest A: reap sent chains, post new ones while buffers and descriptors
 * last, kick if the device asked. */
static void guest_a_tx(struct bench *b, bool post)
{
    uint32_t tok, len;
    while (drv_vq_get(&b->a_tx, &tok, &len) == 1)
        b->tx_free[(b->tx_free_head + b->tx_free_n++) % b->ntx] = tok;
    if (post) {
        while (b->tx_free_n > 0) {
            uint32_t i = b->tx_free[b->tx_free_head];
            uint64_t gpa = b->tx_base + i * b->tx_stride;
            struct drv_buf d[4];
            uint32_t left = b->chain_bytes;
            for (uint32_t k = 0; k < b->descs_per_chain; k++) {
                uint32_t l = left < TX_DESC_MAX ? left : TX_DESC_MAX;
                d[k] = (struct drv_buf){.gpa = gpa, .len = l, .write = false};
                gpa += l;
                left -= l;
            }
            if (!drv_vq_add(&b->a_tx, d, b->descs_per_chain, i))
                break;
            b->tx_free_head = (b->tx_free_head + 1) % b->ntx;
            b->tx_free_n--;
            b->posted++;
        }
    }
    drv_vq_publish(&b->a_tx);
    /* virtio_net's TX completion: an interrupt once 3/4 of what is in flight
     * has been sent (virtqueue_enable_cb_delayed). */
    uint16_t out = (uint16_t)(b->a_tx.avail_idx - b->a_tx.used_seen);
    drv_vq_enable_cb(&b->a_tx, out ? (uint16_t)((out * 3u + 3u) / 4u) : 1u);
}

/* Guest B: reap received buffers (frame by frame, as num_buffers says),
 * check them, give them back. Returns -1 on a wrong frame. */
static int guest_b_rx(struct bench *b)
{
    uint32_t tok, len;
    while (drv_vq_get(&b->b_rx, &tok, &len) == 1) {
        const uint8_t *buf = guest_ptr(&b->gb, b->rx_base + (uint64_t)tok * b->rx_buf);
        if (len > b->rx_buf)
            return fail(b, "device wrote past a receive buffer");
        uint32_t skip = 0;
        if (b->frame_left == 0) {
            struct virtio_net_hdr_mrg_rxbuf h;
            if (len < sizeof(h))
                return fail(b, "receive buffer shorter than the header");
            memcpy(&h, buf, sizeof(h));
            if (h.num_buffers == 0)
                return fail(b, "num_buffers 0");
            if (h.hdr.flags != b->hdr.hdr.flags || h.hdr.gso_type != b->hdr.hdr.gso_type ||
                h.hdr.gso_size != b->hdr.hdr.gso_size ||
                h.hdr.csum_start != b->hdr.hdr.csum_start ||
                h.hdr.csum_offset != b->hdr.hdr.csum_offset)
                return fail(b, "received header differs from the sent one");
            b->frame_left = h.num_buffers;
            b->frame_bytes = 0;
            b->frame_off = CW_NET_META_LEN;
            b->frame_verify = b->verify_budget > 0;
            skip = CW_NET_META_LEN;
        }
        if (b->frame_verify) {
            uint32_t n = len - skip;
            if (b->frame_off + n > b->chain_bytes ||
                memcmp(buf + skip, b->tmpl + b->frame_off, n) != 0)
                return fail(b, "received frame differs from the sent one");
        }
        b->frame_off += len - skip;
        b->frame_bytes += len;
        b->rx_refill[b->rx_refill_n++] = tok;
        if (--b->frame_left == 0) {
            if (b->frame_bytes != b->chain_bytes)
                return fail(b, "received frame has the wrong length");
            if (b->frame_verify) {
                b->verified++;
                b->verify_budget--;
            }
            b->delivered++;
        }
    }
    for (uint32_t k = 0; k < b->rx_refill_n; k++) {
        uint32_t i = b->rx_refill[k];
        struct drv_buf d = {.gpa = b->rx_base + (uint64_t)i * b->rx_buf, .len = b->rx_buf,
                            .write = true};
        if (!drv_vq_add(&b->b_rx, &d, 1, i))
            return fail(b, "RX ring overfull");
    }
    b->rx_refill_n = 0;
    drv_vq_publish(&b->b_rx);
    drv_vq_enable_cb(&b->b_rx, 1); /* NAPI: re-arm after each poll */
    return 0;
}

static int check_devices(struct bench *b)
{
    if (cw_vq_broken(&b->na->vq[CW_NET_TXQ]) || cw_vq_broken(&b->nb->vq[CW_NET_RXQ]))
        return fail(b, "a queue broke");
    if (cw_port_broken(&b->pa) || cw_port_broken(&b->pb))
        return fail(b, "the port broke");
    for (int d = 0; d < CW_DROP__COUNT; d++)
        if (b->na->stats.drops[d] || b->nb->stats.drops[d]) {
            snprintf(b->err, b->errlen, "frames dropped (%s)",
                     cw_net_drop_name((enum cw_net_drop)d));
            return -1;
        }
    return 0;
}

/* One round of both devices and both drivers. */
static int round_trip(struct bench *b, bool post)
{
    guest_a_tx(b, post);
    uint64_t sig = b->pa.stats.signals_sent;
    cw_net_tx(b->na);
    /* Device A signalled B's "data" eventfd: B's loop wakes and drains it. */
    if (b->pa.stats.signals_sent != sig)
        cw_port_drain(&b->pb, cw_port_rx_data_fd(&b->pb));
    sig = b->pb.stats.signals_sent;
    cw_net_rx(b->nb);
    if (b->pb.stats.signals_sent != sig)
        cw_port_drain(&b->pa, cw_port_tx_space_fd(&b->pa));
    return guest_b_rx(b);
}

static int run_phase(struct bench *b, double seconds, uint64_t frames, bool post)
{
    double t0 = wall_s();
    uint64_t start = b->delivered;
    uint64_t last = b->delivered;
    uint32_t idle = 0;
    for (;;) {
        if (round_trip(b, post) < 0 || check_devices(b) < 0)
            return -1;
        if (!post) {
            if (b->delivered == b->posted)
                return 0;
        } else if (frames ? b->delivered - start >= frames : wall_s() - t0 >= seconds) {
            return 0;
        }
        if (b->delivered == last) {
            if (++idle > STALL_ROUNDS)
                return fail(b, "the path stalled");
        } else {
            idle = 0;
            last = b->delivered;
        }
    }
}

static void teardown(struct bench *b)
{
    cw_port_detach(&b->pa);
    cw_port_detach(&b->pb);
    if (b->irq_a.fd >= 0)
        close(b->irq_a.fd);
    if (b->irq_b.fd >= 0)
        close(b->irq_b.fd);
    free(b->na);
    free(b->nb);
    free(b->tx_free);
    free(b->rx_refill);
    free(b->tmpl);
    guest_fini(&b->ga);
    guest_fini(&b->gb);
}

int link_bench_run(const struct link_cfg *cfg, struct link_result *res, char *err, size_t errlen)
{
    struct bench *b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    b->cfg = cfg;
    b->err = err;
    b->errlen = errlen;
    b->irq_a.fd = b->irq_b.fd = -1;
    b->ga.memfd = b->gb.memfd = -1;
    cw_port_fds_reset(&b->pa.fds); /* teardown closes nothing not opened */
    cw_port_fds_reset(&b->pb.fds);
    memset(res, 0, sizeof(*res));
    int rc = -1;
    const char *why = "";
    if (cfg->frame_len < FRAME_MIN || cfg->frame_len > CW_NET_MAX_FRAME ||
        cfg->frame_len - 14u > 65535u) {
        fail(b, "frame length out of range");
        goto out;
    }
    if (guest_init(&b->ga, GUEST_RAM + ((uint64_t)cfg->tx_pool_mib << 20), cfg->strategy,
                   &why) < 0 ||
        guest_init(&b->gb, GUEST_RAM, cfg->strategy, &why) < 0) {
        fail(b, why);
        goto out;
    }
    if (setup_port(b) < 0 ||
        setup_device(b, &b->na, &b->ga, &b->a_rx, &b->a_tx, &b->pa, &b->irq_a, 1) < 0 ||
        setup_device(b, &b->nb, &b->gb, &b->b_rx, &b->b_tx, &b->pb, &b->irq_b, 2) < 0 ||
        setup_buffers(b) < 0)
        goto out;

    /* Warm-up (caches, page tables, steady ring occupancy), checked. */
    b->verify_budget = VERIFY_FRAMES;
    if (run_phase(b, cfg->frames ? 0 : cfg->seconds / 10 + 0.005,
                  cfg->frames ? cfg->frames / 10 + 1 : 0, true) < 0)
        goto out;

    b->verify_budget = 0;
    uint64_t f0 = b->delivered;
    double t0 = wall_s(), c0 = cpu_s();
    if (run_phase(b, cfg->seconds, cfg->frames, true) < 0)
        goto out;
    double t1 = wall_s(), c1 = cpu_s();
    res->seconds = t1 - t0;
    res->cpu_seconds = c1 - c0;
    res->frames = b->delivered - f0;
    res->bytes = res->frames * cfg->frame_len;

    /* Drain what is in flight, checking the last frames too. */
    b->verify_budget = VERIFY_FRAMES;
    if (run_phase(b, 0, 0, false) < 0)
        goto out;
    if (b->delivered != b->posted || b->nb->stats.rx_frames != b->na->stats.tx_frames ||
        b->na->stats.tx_frames != b->posted) {
        snprintf(b->err, b->errlen,
                 "frame counts disagree: posted %llu, sent %llu, received %llu, delivered %llu",
                 (unsigned long long)b->posted, (unsigned long long)b->na->stats.tx_frames,
                 (unsigned long long)b->nb->stats.rx_frames, (unsigned long long)b->delivered);
        goto out;
    }
    res->total_frames = b->delivered;
    res->kicks = b->a_tx.kicks + b->b_rx.kicks;
    res->irqs = b->irq_a.count + b->irq_b.count;
    res->port_signals = b->pa.stats.signals_sent + b->pb.stats.signals_sent;
    res->gmem_maps = b->ga.gm.maps + b->gb.gm.maps;
    res->verified = b->verified;
    rc = 0;
out:
    teardown(b);
    free(b);
    return rc;
}
