/* switch_bench: the switch engine alone (src/switch/switch.h) over real
 * shared-memory port rings (src/port/ring.c through cw_port_net_ops), in one
 * thread, no VM and no event loop.
 *
 * Per case: a "device" side pushes a batch of frames into the switch's
 * ingress port ring, cw_switch_round forwards them, the "device" on the
 * egress port drains them. Cases: two NIC ports of one domain (the common
 * path: no policy evaluation), and two ports of different domains joined by
 * an allow rule (one policy evaluation per frame). 64-byte and 1500-byte
 * Ethernet frames (IPv4/UDP, sent from the sender's own MAC and IP, so
 * anti-spoofing passes). Prints frames/s and CPU ns per frame for the whole
 * path (both device sides included) and for the switch round alone.
 *
 * Usage: switch_bench [seconds per case, default 1] */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "port/port.h"
#include "switch/switch.h"

#define CAP (1u << 20)
#define BATCH 32u

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct pair {
    struct cw_port sw_side, dev_side;
};

static void pair_open(struct pair *p)
{
    struct cw_port_fds fa, fb;
    memset(p, 0, sizeof(*p));
    if (cw_port_fds_create(&fa, CAP) < 0) {
        perror("cw_port_fds_create");
        exit(1);
    }
    fb.memfd = dup(fa.memfd);
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 2; k++)
            fb.efd[r][k] = dup(fa.efd[r][k]);
    if (cw_port_attach(&p->sw_side, &fa, 0, CAP, true) < 0 ||
        cw_port_attach(&p->dev_side, &fb, 1, CAP, false) < 0) {
        perror("cw_port_attach");
        exit(1);
    }
}

static void mac_of(uint8_t m[6], unsigned id)
{
    const uint8_t b[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x10 + id) };
    memcpy(m, b, 6);
}

/* Header + Ethernet/IPv4/UDP frame of eth_len bytes from port `from` to `to`. */
static uint32_t build_frame(uint8_t *buf, uint32_t eth_len, unsigned from, unsigned to)
{
    memset(buf, 0, CW_NET_META_LEN + eth_len);
    uint8_t *e = buf + CW_NET_META_LEN;
    mac_of(e, to);
    mac_of(e + 6, from);
    e[12] = 0x08;
    e[13] = 0x00;
    uint8_t *ip = e + 14;
    uint32_t ip_len = eth_len - 14;
    ip[0] = 0x45;
    ip[2] = (uint8_t)(ip_len >> 8);
    ip[3] = (uint8_t)ip_len;
    ip[8] = 64;
    ip[9] = 17;
    uint8_t src[4] = { 10, 0, 0, (uint8_t)(1 + from) }, dst[4] = { 10, 0, 0, (uint8_t)(1 + to) };
    memcpy(ip + 12, src, 4);
    memcpy(ip + 16, dst, 4);
    uint8_t *udp = ip + 20;
    udp[0] = 0x30;
    udp[1] = 0x39;
    udp[2] = 0x13;
    udp[3] = 0x89;
    return CW_NET_META_LEN + eth_len;
}

static void run_case(const char *name, unsigned from, unsigned to, uint32_t eth_len,
                     double seconds)
{
    static struct cw_switch sw;
    static struct pair pairs[3];
    cw_switch_init(&sw, 0x1234567887654321ull, 0);
    struct cw_policy pol;
    memset(&pol, 0, sizeof(pol));
    pol.n_rules = 1;
    pol.rules[0] = (struct cw_policy_rule){
        .from_domain = 0, .to_domain = 1, .both = true, .action = CW_RULE_ALLOW,
        .has_proto = true, .ip_proto = 17,
        .src_port = { 0, 65535 }, .dst_port = { 5001, 5001 }, .icmp_type = -1, .line = 1,
    };
    if (cw_switch_set_policy(&sw, 2, &pol) < 0)
        exit(1);
    for (unsigned id = 0; id < 3; id++) {
        struct cw_sw_port_config c;
        memset(&c, 0, sizeof(c));
        snprintf(c.name, sizeof(c.name), "p%u", id);
        c.kind = CW_SW_NIC;
        c.has_mac = true;
        mac_of(c.mac, id);
        c.domain = id == 2 ? 1 : 0;
        c.n_ipv4 = 1;
        c.ipv4[0] = 0x0A000001u + id;
        if (cw_switch_add_port(&sw, id, &c) < 0)
            exit(1);
        pair_open(&pairs[id]);
        cw_switch_port_up(&sw, id, &cw_port_net_ops, &pairs[id].sw_side);
    }
    uint8_t frame[CW_NET_META_LEN + 1514];
    uint32_t len = build_frame(frame, eth_len, from, to);
    const struct cw_net_port_ops *ops = &cw_port_net_ops;
    struct cw_port *src = &pairs[from].dev_side, *dst = &pairs[to].dev_side;

    uint64_t frames = 0, bad = 0;
    double sw_cpu = 0, t0 = cpu_s(), t = t0;
    while (t - t0 < seconds) {
        for (unsigned it = 0; it < 256; it++) {
            unsigned n = 0;
            for (; n < BATCH; n++) {
                uint8_t *d = ops->tx_reserve(src, len);
                if (!d)
                    break;
                memcpy(d, frame, len);
                ops->tx_commit(src, len);
            }
            ops->tx_flush(src);
            double s0 = cpu_s();
            uint64_t want = 1ull << from;
            while (cw_switch_round(&sw, &want, 0))
                ;
            sw_cpu += cpu_s() - s0;
            uint32_t rl;
            const uint8_t *r;
            while ((r = ops->rx_peek(dst, &rl)) != NULL) {
                if (rl != len || r[CW_NET_META_LEN + 11] != frame[CW_NET_META_LEN + 11])
                    bad++;
                frames++;
                ops->rx_release(dst);
            }
            ops->rx_flush(dst);
            /* Drain the wake-ups a signalling side leaves (as the loop does). */
            cw_port_drain(&pairs[from].sw_side, cw_port_rx_data_fd(&pairs[from].sw_side));
            cw_port_drain(&pairs[to].dev_side, cw_port_rx_data_fd(&pairs[to].dev_side));
        }
        t = cpu_s();
    }
    double total = t - t0;
    uint64_t drops = 0;
    for (unsigned k = 0; k < CW_SW_DROP__COUNT; k++)
        drops += sw.ports[from].stats.drops[k] + sw.ports[to].stats.drops[k];
    printf("%-22s %5u B  %8.2f Mframes/s  %6.1f ns/frame total  %6.1f ns/frame switch"
           "  (frames %llu, drops %llu, bad %llu)\n",
           name, eth_len, (double)frames / total / 1e6, total * 1e9 / (double)frames,
           sw_cpu * 1e9 / (double)frames, (unsigned long long)frames,
           (unsigned long long)drops, (unsigned long long)bad);
    for (unsigned id = 0; id < 3; id++) {
        cw_switch_port_down(&sw, id);
        cw_port_detach(&pairs[id].sw_side);
        cw_port_detach(&pairs[id].dev_side);
    }
    if (frames == 0 || drops || bad)
        exit(1);
}

int main(int argc, char **argv)
{
    double s = argc > 1 ? atof(argv[1]) : 1.0;
    if (s <= 0)
        s = 1.0;
    run_case("same-domain", 0, 1, 60, s);
    run_case("same-domain", 0, 1, 1500, s);
    run_case("cross-domain allow", 0, 2, 60, s);
    run_case("cross-domain allow", 0, 2, 1500, s);
    return 0;
}
