/* Unit tests for the switch engine (src/switch/switch.c, fdb.c) over test
 * double ports, and for the switch process (src/switch/switch_loop.c) in a
 * forked child driven over a real control socket with real ports.
 *
 * Engine: learning and aging, flooding, anti-spoofing (MAC, IPv4, ARP,
 * IPv6, VLAN), offload metadata checks, cross-domain policy (one-way,
 * mirrored, ARP, broadcast), the decision made on a private copy while the
 * sender rewrites its ring (TOCTOU), bounded work per round, full
 * destinations, counters and the rate-limited drop report. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/virtio_spec.h"
#include "port/port.h"
#include "switch/switch.h"
#include "switch/switch_loop.h"
#include "system/control.h"
#include "sw_frames.h"

/* ---- the test topology ---- */

enum { HIGH = 0, LOW = 1, MID = 2, N_DOMAINS = 3 };
enum { P_HIGH1, P_HIGH2, P_LOW1, P_LOW2, P_UPLINK, P_UPLINK2, P_MID1, N_PORTS };

static const uint8_t MAC[N_PORTS][6] = {
    {0x52, 0x54, 0, 0, 0, 0x01}, {0x52, 0x54, 0, 0, 0, 0x02}, {0x52, 0x54, 0, 0, 0, 0x03},
    {0x52, 0x54, 0, 0, 0, 0x04}, {0},                         {0x52, 0x54, 0, 0, 0, 0xfe},
    {0x52, 0x54, 0, 0, 0, 0x06},
};
static const uint32_t IPV4[N_PORTS] = {IP4(10, 0, 0, 1), IP4(10, 0, 0, 2), IP4(10, 1, 0, 3), 0,
                                       0, 0, IP4(10, 2, 0, 6)};
static const uint8_t V6_HIGH1[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
/* EUI-64 link-local of 52:54:00:00:00:01 / :02 */
static const uint8_t LL_HIGH1[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x50, 0x54, 0, 0xff, 0xfe, 0, 0, 1};
static const uint8_t LL_HIGH2[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x50, 0x54, 0, 0xff, 0xfe, 0, 0, 2};
static const uint8_t BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t HOST_X[6] = {0x02, 0, 0, 0, 0, 0xaa}; /* behind the low uplink */

/* ---- test double ports ---- */

#define QMAX 600

struct fake {
    unsigned id;
    uint8_t *in[QMAX];
    uint32_t in_len[QMAX];
    unsigned in_head, in_n;
    uint8_t *out[QMAX];
    uint32_t out_len[QMAX];
    unsigned n_out;
    unsigned room; /* frames the port still takes */
    uint8_t *res;
    unsigned tx_flushes, rx_flushes;
    void (*hook)(struct fake *self); /* runs inside tx_reserve */
};

static struct fake fakes[N_PORTS];
static struct cw_switch *sw;
static uint64_t now = 1000;

static void *f_tx_reserve(void *ctx, uint32_t len)
{
    struct fake *f = ctx;
    if (f->hook)
        f->hook(f);
    if (f->room == 0 || f->n_out == QMAX || len > CW_PORT_MAX_RECORD)
        return NULL;
    return f->res;
}

static void f_tx_commit(void *ctx, uint32_t len)
{
    struct fake *f = ctx;
    f->out[f->n_out] = malloc(len);
    memcpy(f->out[f->n_out], f->res, len);
    f->out_len[f->n_out++] = len;
    f->room--;
}

static void f_tx_flush(void *ctx)
{
    ((struct fake *)ctx)->tx_flushes++;
}

static const void *f_rx_peek(void *ctx, uint32_t *len)
{
    struct fake *f = ctx;
    if (f->in_head == f->in_n)
        return NULL;
    *len = f->in_len[f->in_head];
    return f->in[f->in_head];
}

static void f_rx_release(void *ctx)
{
    struct fake *f = ctx;
    free(f->in[f->in_head]);
    f->in[f->in_head++] = NULL;
}

static void f_rx_flush(void *ctx)
{
    ((struct fake *)ctx)->rx_flushes++;
}

static const struct cw_net_port_ops fake_ops = {
    .tx_reserve = f_tx_reserve, .tx_commit = f_tx_commit, .tx_flush = f_tx_flush,
    .rx_peek = f_rx_peek,       .rx_release = f_rx_release, .rx_flush = f_rx_flush,
};

static void push_raw(unsigned port, const uint8_t *rec, uint32_t len)
{
    struct fake *f = &fakes[port];
    assert_true(f->in_n < QMAX);
    f->in[f->in_n] = malloc(len ? len : 1);
    memcpy(f->in[f->in_n], rec, len);
    f->in_len[f->in_n++] = len;
}

static uint8_t buf[CW_NET_META_LEN + CW_NET_MAX_FRAME];

static uint32_t push(unsigned port, const struct fspec *s)
{
    uint32_t len = sw_build(buf, sizeof(buf), s);
    push_raw(port, buf, len);
    return len;
}

static void clear_out(void)
{
    for (unsigned p = 0; p < N_PORTS; p++) {
        for (unsigned i = 0; i < fakes[p].n_out; i++)
            free(fakes[p].out[i]);
        fakes[p].n_out = 0;
    }
}

/* Rounds until nothing is left; returns how many it took. */
static unsigned run(void)
{
    uint64_t want = 0;
    for (unsigned p = 0; p < N_PORTS; p++)
        want |= 1ull << p;
    unsigned rounds = 0;
    while (cw_switch_round(sw, &want, now)) {
        rounds++;
        assert_true(rounds < 1000);
    }
    return rounds + 1;
}

static uint64_t drops(unsigned port, enum cw_sw_drop d)
{
    return sw->ports[port].stats.drops[d];
}

static unsigned outs(unsigned port)
{
    return fakes[port].n_out;
}

/* Which ports got something (bit per port). */
static unsigned got(void)
{
    unsigned m = 0;
    for (unsigned p = 0; p < N_PORTS; p++)
        if (fakes[p].n_out)
            m |= 1u << p;
    return m;
}

#define B(p) (1u << (p))

static struct cw_policy_rule rule(int from, int to, enum cw_rule_action a, unsigned line)
{
    return (struct cw_policy_rule){.from_domain = from, .to_domain = to, .action = a,
                                   .src_port = {0, 65535}, .dst_port = {0, 65535},
                                   .icmp_type = -1, .line = line};
}

static unsigned n_logs;
static struct cw_sw_drop_event last_log;

static void on_drop(void *ctx, const struct cw_sw_drop_event *ev)
{
    (void)ctx;
    n_logs++;
    last_log = *ev;
    last_log.frame = NULL; /* not valid after the call */
}

static void setup_switch(const struct cw_policy_rule *rules, unsigned n)
{
    static struct cw_policy pol;
    memset(&pol, 0, sizeof(pol));
    for (unsigned i = 0; i < n; i++)
        pol.rules[i] = rules[i];
    pol.n_rules = n;
    cw_switch_init(sw, 0x1234, 10000);
    assert_int_equal(cw_switch_set_policy(sw, N_DOMAINS, &pol), 0);
    static const char *const names[N_PORTS] = {"high1", "high2", "low1", "low2",
                                               "uplink", "uplink2", "mid1"};
    static const int dom[N_PORTS] = {HIGH, HIGH, LOW, LOW, LOW, HIGH, MID};
    for (unsigned p = 0; p < N_PORTS; p++) {
        struct cw_sw_port_config c = {.domain = dom[p]};
        snprintf(c.name, sizeof(c.name), "%s", names[p]);
        c.kind = (p == P_UPLINK || p == P_UPLINK2) ? CW_SW_UPLINK : CW_SW_NIC;
        c.has_mac = p != P_UPLINK;
        memcpy(c.mac, MAC[p], 6);
        if (IPV4[p])
            c.ipv4[c.n_ipv4++] = IPV4[p];
        if (p == P_HIGH1)
            memcpy(c.ipv6[c.n_ipv6++], V6_HIGH1, 16);
        assert_int_equal(cw_switch_add_port(sw, p, &c), 0);
    }
    for (unsigned p = 0; p < N_PORTS; p++) {
        clear_out();
        while (fakes[p].in_head < fakes[p].in_n)
            f_rx_release(&fakes[p]);
        uint8_t *res = fakes[p].res;
        memset(&fakes[p], 0, sizeof(fakes[p]));
        fakes[p].res = res ? res : malloc(CW_PORT_MAX_RECORD);
        fakes[p].id = p;
        fakes[p].room = QMAX;
        assert_int_equal(cw_switch_port_up(sw, p, &fake_ops, &fakes[p]), 0);
    }
    sw->on_drop = on_drop;
    n_logs = 0;
    now = 1000;
}

static int group_setup(void **state)
{
    (void)state;
    sw = calloc(1, sizeof(*sw));
    return sw ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    clear_out();
    for (unsigned p = 0; p < N_PORTS; p++) {
        while (fakes[p].in_head < fakes[p].in_n)
            f_rx_release(&fakes[p]);
        free(fakes[p].res);
    }
    free(sw);
    return 0;
}

static struct fspec udp(unsigned from, const uint8_t *dst_mac, uint32_t dip, uint16_t dport)
{
    return sw_udp4(MAC[from], dst_mac, IPV4[from], dip, 40000, dport);
}

/* ---- configuration ---- */

static void test_config_refusals(void **state)
{
    (void)state;
    static struct cw_policy pol;
    memset(&pol, 0, sizeof(pol));
    cw_switch_init(sw, 1, 0);
    pol.n_rules = 1;
    pol.rules[0] = rule(0, 5, CW_RULE_ALLOW, 1); /* domain 5 of 3 */
    assert_int_equal(cw_switch_set_policy(sw, 3, &pol), -1);
    pol.rules[0].to_domain = -1;
    assert_int_equal(cw_switch_set_policy(sw, 3, &pol), -1);
    pol.n_rules = CW_POLICY_MAX_RULES + 1;
    assert_int_equal(cw_switch_set_policy(sw, 3, &pol), -1);
    assert_int_equal(cw_switch_set_policy(sw, CW_SW_MAX_DOMAINS + 1, &pol), -1);
    pol.n_rules = 0;
    assert_int_equal(cw_switch_set_policy(sw, 3, &pol), 0);

    struct cw_sw_port_config c = {.kind = CW_SW_NIC, .has_mac = true, .domain = 0,
                                  .mac = {0x52, 0x54, 0, 0, 0, 9}};
    assert_int_equal(cw_switch_add_port(sw, CW_SW_MAX_PORTS, &c), -1);
    c.domain = 3;
    assert_int_equal(cw_switch_add_port(sw, 0, &c), -1);
    c.domain = 0;
    c.has_mac = false; /* a NIC needs its MAC */
    assert_int_equal(cw_switch_add_port(sw, 0, &c), -1);
    c.has_mac = true;
    c.mac[0] = 0x01; /* group address */
    assert_int_equal(cw_switch_add_port(sw, 0, &c), -1);
    memset(c.mac, 0, 6);
    assert_int_equal(cw_switch_add_port(sw, 0, &c), -1);
    c.mac[0] = 0x52;
    c.mac[5] = 9;
    c.n_ipv4 = CW_SW_MAX_ADDRS + 1;
    assert_int_equal(cw_switch_add_port(sw, 0, &c), -1);
    c.n_ipv4 = 0;
    assert_int_equal(cw_switch_add_port(sw, 0, &c), 0);
    assert_int_equal(cw_switch_add_port(sw, 0, &c), -1); /* id taken */
    assert_int_equal(cw_switch_add_port(sw, 1, &c), -1); /* MAC taken */
    assert_int_equal(cw_switch_port_up(sw, 2, &fake_ops, &fakes[0]), -1); /* not configured */
    assert_int_equal(cw_switch_port_up(sw, 0, NULL, NULL), -1);
    assert_string_equal(cw_sw_drop_name(CW_SW_DROP_SPOOFED_MAC), "spoofed_mac");
    assert_string_equal(cw_sw_drop_name(CW_SW_DROP_NO_ROOM), "no_room");
    assert_string_equal(cw_sw_drop_name(CW_SW_DROP__COUNT), "unknown");
}

/* ---- learning and flooding ---- */

static void test_learning_and_aging(void **state)
{
    (void)state;
    setup_switch(NULL, 0);
    /* Host X behind the low uplink broadcasts: every other low port gets
     * it, no high or mid port does (default deny). */
    struct fspec s = sw_udp4(HOST_X, BCAST, IP4(192, 168, 0, 9), IP4(255, 255, 255, 255), 1, 2);
    push(P_UPLINK, &s);
    run();
    assert_int_equal(got(), B(P_LOW1) | B(P_LOW2));
    assert_int_equal(drops(P_UPLINK, CW_SW_DROP_POLICY), 1);
    assert_int_equal(sw->default_deny, 2); /* high and mid: one decision per domain */
    clear_out();

    /* X is learned: unicast to it reaches the uplink only. */
    s = udp(P_LOW1, HOST_X, IP4(192, 168, 0, 9), 7);
    push(P_LOW1, &s);
    run();
    assert_int_equal(got(), B(P_UPLINK));
    clear_out();

    /* A NIC is never learned from: its MAC is static. An unknown unicast
     * floods within the domain. */
    static const uint8_t Y[6] = {0x02, 0, 0, 0, 0, 0xbb};
    s = udp(P_LOW1, Y, IP4(192, 168, 0, 10), 7);
    push(P_LOW1, &s);
    run();
    assert_int_equal(got(), B(P_LOW2) | B(P_UPLINK));
    clear_out();

    /* Aging: past the aging time X is unknown again and floods. */
    now += 10001;
    s = udp(P_LOW1, HOST_X, IP4(192, 168, 0, 9), 7);
    push(P_LOW1, &s);
    run();
    assert_int_equal(got(), B(P_LOW2) | B(P_UPLINK));
    clear_out();

    /* Relearn, then the uplink goes down: X is forgotten, and frames to it
     * flood to what is left (low2). */
    s = sw_udp4(HOST_X, BCAST, IP4(192, 168, 0, 9), IP4(255, 255, 255, 255), 1, 2);
    push(P_UPLINK, &s);
    run();
    clear_out();
    assert_int_equal(cw_fdb_lookup(&sw->fdb, HOST_X, now), P_UPLINK);
    cw_switch_port_down(sw, P_UPLINK);
    assert_int_equal(cw_fdb_lookup(&sw->fdb, HOST_X, now), -1);
    s = udp(P_LOW1, HOST_X, IP4(192, 168, 0, 9), 7);
    push(P_LOW1, &s);
    run();
    assert_int_equal(got(), B(P_LOW2));
}

/* The per-port cache of the last static destination never sends a frame to
 * the previous destination: alternating NICs and a learned host behind an
 * uplink each reach exactly their own port, and a learned host that ages
 * out floods again (learned entries are never cached). */
static void test_destination_cache(void **state)
{
    (void)state;
    setup_switch(NULL, 0);
    struct fspec s = sw_udp4(HOST_X, BCAST, IP4(192, 168, 0, 9), IP4(255, 255, 255, 255), 1, 2);
    push(P_UPLINK, &s);
    run();
    clear_out();
    static const struct { unsigned to; bool learned; } seq[] = {
        {P_LOW2, false}, {P_UPLINK, true}, {P_LOW2, false}, {P_LOW2, false},
        {P_UPLINK, true}, {P_LOW2, false},
    };
    for (unsigned k = 0; k < sizeof(seq) / sizeof(seq[0]); k++) {
        s = seq[k].learned ? udp(P_LOW1, HOST_X, IP4(192, 168, 0, 9), 7)
                           : udp(P_LOW1, MAC[P_LOW2], IPV4[P_LOW2], 7);
        push(P_LOW1, &s);
        run();
        assert_int_equal(got(), B(seq[k].to));
        clear_out();
    }
    now += 10001; /* X ages out; the cached static destination does not */
    s = udp(P_LOW1, HOST_X, IP4(192, 168, 0, 9), 7);
    push(P_LOW1, &s);
    run();
    assert_int_equal(got(), B(P_LOW2) | B(P_UPLINK));
    clear_out();
    s = udp(P_LOW1, MAC[P_LOW2], IPV4[P_LOW2], 7);
    push(P_LOW1, &s);
    run();
    assert_int_equal(got(), B(P_LOW2));
}

static void test_fdb_bounded(void **state)
{
    (void)state;
    static struct cw_fdb t;
    cw_fdb_init(&t, 42, 1000000);
    uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0};
    /* More addresses than slots: the table stays bounded, the newest are
     * findable, evictions are counted. */
    for (unsigned i = 0; i < 6000; i++) {
        mac[3] = (uint8_t)(i >> 16);
        mac[4] = (uint8_t)(i >> 8);
        mac[5] = (uint8_t)i;
        cw_fdb_learn(&t, mac, (uint16_t)(i % 7), 100 + i);
        assert_int_equal(cw_fdb_lookup(&t, mac, 100 + i), (int)(i % 7));
    }
    unsigned n = cw_fdb_learned_count(&t, 6100);
    assert_true(n <= CW_FDB_BUCKETS * CW_FDB_WAYS);
    assert_true(n > CW_FDB_BUCKETS * CW_FDB_WAYS / 2);
    assert_true(t.stats.evicted >= 6000 - CW_FDB_BUCKETS * CW_FDB_WAYS);
    /* Moving an address counts as a move, not a new entry. */
    uint64_t learned = t.stats.learned;
    cw_fdb_learn(&t, mac, 3, 6100);
    assert_int_equal(t.stats.learned, learned);
    assert_int_equal(t.stats.moved, 1);
    assert_int_equal(cw_fdb_lookup(&t, mac, 6100), 3);
    /* Everything ages out. */
    assert_int_equal(cw_fdb_learned_count(&t, 6100 + 1000000), 0);
    assert_int_equal(cw_fdb_lookup(&t, mac, 6100 + 1000000), -1);
    /* Static entries win over learned ones and never age. */
    uint8_t s[6] = {0x52, 0x54, 0, 0, 0, 0x77};
    cw_fdb_learn(&t, s, 1, 7000);
    assert_int_equal(cw_fdb_add_static(&t, s, 5), 0);
    assert_int_equal(cw_fdb_add_static(&t, s, 5), 0);  /* same port again: fine */
    assert_int_equal(cw_fdb_add_static(&t, s, 6), -1); /* another port: refused */
    assert_int_equal(cw_fdb_lookup(&t, s, 7000), 5);
    assert_int_equal(cw_fdb_lookup(&t, s, 1u << 30), 5);
    /* The static half of the table refuses more than half its slots. */
    for (unsigned i = 0; i < CW_FDB_STATIC_SLOTS; i++) {
        s[3] = 1;
        s[4] = (uint8_t)(i >> 8);
        s[5] = (uint8_t)i;
        int rc = cw_fdb_add_static(&t, s, 1);
        assert_int_equal(rc, i + 1 < CW_FDB_STATIC_SLOTS / 2 ? 0 : -1);
    }
    assert_int_equal(t.n_static, CW_FDB_STATIC_SLOTS / 2);
    assert_int_equal(cw_fdb_static_port(&t, s), -1);
    s[5] = 3;
    assert_int_equal(cw_fdb_static_port(&t, s), 1);
}

static void test_flood_and_unicast_policy(void **state)
{
    (void)state;
    setup_switch(NULL, 0);
    /* Broadcast from high: high ports only. */
    struct fspec s = udp(P_HIGH1, BCAST, IP4(10, 0, 0, 255), 9);
    push(P_HIGH1, &s);
    run();
    assert_int_equal(got(), B(P_HIGH2) | B(P_UPLINK2));
    assert_int_equal(drops(P_HIGH1, CW_SW_DROP_POLICY), 1);
    clear_out();
    /* Multicast too. */
    static const uint8_t MCAST[6] = {0x01, 0x00, 0x5e, 0, 0, 1};
    s = udp(P_HIGH1, MCAST, IP4(224, 0, 0, 1), 9);
    push(P_HIGH1, &s);
    run();
    assert_int_equal(got(), B(P_HIGH2) | B(P_UPLINK2));
    clear_out();
    /* Unicast to a known NIC in another domain: denied, not flooded. */
    s = udp(P_HIGH1, MAC[P_LOW1], IPV4[P_LOW1], 9);
    push(P_HIGH1, &s);
    run();
    assert_int_equal(got(), 0);
    assert_int_equal(drops(P_HIGH1, CW_SW_DROP_POLICY), 3);
    assert_int_equal(last_log.reason, CW_SW_DROP_POLICY);
    assert_int_equal(last_log.dest, P_LOW1);
    assert_int_equal(last_log.rule_line, -1);
    /* Unicast within the domain: exactly the one port. */
    s = udp(P_HIGH1, MAC[P_HIGH2], IPV4[P_HIGH2], 9);
    push(P_HIGH1, &s);
    run();
    assert_int_equal(got(), B(P_HIGH2));
    clear_out();
    /* To a known port that is down: dropped and counted there, never
     * flooded to the rest. */
    cw_switch_port_down(sw, P_HIGH2);
    push(P_HIGH1, &s);
    run();
    assert_int_equal(got(), 0);
    assert_int_equal(drops(P_HIGH2, CW_SW_DROP_PORT_DOWN), 1);
    /* To its own address: same_port. */
    s = udp(P_HIGH1, MAC[P_HIGH1], IPV4[P_HIGH1], 9);
    push(P_HIGH1, &s);
    run();
    assert_int_equal(got(), 0);
    assert_int_equal(drops(P_HIGH1, CW_SW_DROP_SAME_PORT), 1);
}

/* ---- anti-spoofing ---- */

static void test_spoof_mac(void **state)
{
    (void)state;
    setup_switch(NULL, 0);
    /* high1 claiming high2's MAC. */
    struct fspec s = udp(P_HIGH1, BCAST, IP4(10, 0, 0, 255), 9);
    memcpy(s.src, MAC[P_HIGH2], 6);
    push(P_HIGH1, &s);
    /* A group source address. */
    s.src[0] = 0x01;
    push(P_HIGH1, &s);
    /* The low uplink (no fixed MAC) claiming a NIC's address. */
    s = sw_udp4(MAC[P_LOW1], BCAST, 1, 2, 3, 4);
    push(P_UPLINK, &s);
    /* The high uplink with its fixed MAC: any other is refused... */
    s = sw_udp4(HOST_X, BCAST, 1, 2, 3, 4);
    push(P_UPLINK2, &s);
    run();
    assert_int_equal(got(), 0);
    assert_int_equal(drops(P_HIGH1, CW_SW_DROP_SPOOFED_MAC), 2);
    assert_int_equal(drops(P_UPLINK, CW_SW_DROP_SPOOFED_MAC), 1);
    assert_int_equal(drops(P_UPLINK2, CW_SW_DROP_SPOOFED_MAC), 1);
    assert_int_equal(n_logs, 4);
    assert_int_equal(last_log.reason, CW_SW_DROP_SPOOFED_MAC);
    assert_int_equal(last_log.port, P_UPLINK2);
    /* ... its own passes, with any IP (uplinks have no IP check). */
    s = sw_udp4(MAC[P_UPLINK2], BCAST, IP4(8, 8, 8, 8), 2, 3, 4);
    push(P_UPLINK2, &s);
    run();
    assert_int_equal(got(), B(P_HIGH1) | B(P_HIGH2));
    clear_out();
    /* The spoofed address was not learned: frames to high2's MAC still go
     * to high2. */
    s = udp(P_HIGH1, MAC[P_LOW1], IPV4[P_LOW1], 9);
    memcpy(s.dst, MAC[P_HIGH2], 6);
    push(P_HIGH1, &s);
    run();
    assert_int_equal(got(), B(P_HIGH2));
}

static void test_spoof_ipv4_and_arp(void **state)
{
    (void)state;
    setup_switch(NULL, 0);
    struct fspec s = udp(P_HIGH1, MAC[P_HIGH2], IP4(10, 0, 0, 9), 9);
    s.src4 = IP4(10, 0, 0, 9); /* not high1's */
    push(P_HIGH1, &s);
    s.src4 = 0;
    push(P_HIGH1, &s);
    run();
    assert_int_equal(got(), 0);
    assert_int_equal(drops(P_HIGH1, CW_SW_DROP_SPOOFED_IP), 2);

    /* Its own address passes. */
    s.src4 = IPV4[P_HIGH1];
    push(P_HIGH1, &s);
    run();
    assert_int_equal(got(), B(P_HIGH2));
    clear_out();

    /* A truncated IPv4 header cannot be checked: bad_frame. */
    uint32_t len = sw_build(buf, sizeof(buf), &s);
    buf[REC_IP] = 0x4f; /* IHL 60 bytes, the frame has 20 + 8 + 32 */
    push_raw(P_HIGH1, buf, REC_IP + 40);
    (void)len;
    run();
    assert_int_equal(got(), 0);
    assert_int_equal(drops(P_HIGH1, CW_SW_DROP_BAD_FRAME), 1);

    /* ARP: sender IP must be high1's (or 0.0.0.0, a probe); sender MAC the
     * NIC's. */
    struct fspec a = sw_arp(MAC[P_HIGH1], IP4(10, 0, 0, 2), IP4(10, 0, 0, 2));
    push(P_HIGH1, &a);
    run();
    assert_int_equal(got(), 0);
    assert_int_equal(drops(P_HIGH1, CW_SW_DROP_SPOOFED_IP), 3);
    a.spa = 0;
    push(P_HIGH1, &a);
    a.spa = IPV4[P_HIGH1];
    push(P_HIGH1, &a);
    run();
    assert_int_equal(outs(P_HIGH2), 2);
    clear_out();
    memcpy(a.sha, MAC[P_HIGH2], 6);
    push(P_HIGH1, &a);
    run();
    assert_int_equal(got(), 0);
    assert_int_equal(drops(P_HIGH1, CW_SW_DROP_SPOOFED_MAC), 1);
    /* An ARP the switch cannot read, from a NIC with addresses: refused. */
    a = sw_arp(MAC[P_HIGH1], IPV4[P_HIGH1], 1);
    sw_build(buf, sizeof(buf), &a);
    buf[REC_IP + 4] = 8; /* hlen 8 */
    push_raw(P_HIGH1, buf, 12 + 60);
    run();
    assert_int_equal(got(), 0);
    assert_int_equal(drops(P_HIGH1, CW_SW_DROP_BAD_FRAME), 2);

    /* A NIC with no address configured is not IP-checked (MAC only). */
    s = sw_udp4(MAC[P_LOW2], BCAST, IP4(1, 2, 3, 4), IP4(255, 255, 255, 255), 1, 2);
    push(P_LOW2, &s);
    run();
    assert_int_equal(got(), B(P_LOW1) | B(P_UPLINK));
}

static void test_spoof_ipv6_and_vlan(void **state)
{
    (void)state;
    setup_switch(NULL, 0);
    static const uint8_t OTHER[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9};
    static const uint8_t ZERO[16] = {0};
    struct fspec s = sw_ip6(MAC[P_HIGH1], MAC[P_HIGH2], OTHER, V6_HIGH1, 17);
    push(P_HIGH1, &s); /* wrong source */
    memcpy(s.src6, ZERO, 16);
    push(P_HIGH1, &s); /* :: with UDP */
    run();
    assert_int_equal(got(), 0);
    assert_int_equal(drops(P_HIGH1, CW_SW_DROP_SPOOFED_IP), 2);
    s.proto = 58; /* :: with ICMPv6 (DAD) */
    push(P_HIGH1, &s);
    s.proto = 17;
    memcpy(s.src6, V6_HIGH1, 16); /* configured */
    push(P_HIGH1, &s);
    memcpy(s.src6, LL_HIGH1, 16); /* EUI-64 link-local */
    push(P_HIGH1, &s);
    run();
    assert_int_equal(outs(P_HIGH2), 3);
    clear_out();
    /* high2 has only IPv4 addresses: IPv6 from anything but its link-local
     * is refused. */
    s = sw_ip6(MAC[P_HIGH2], MAC[P_HIGH1], V6_HIGH1, V6_HIGH1, 17);
    push(P_HIGH2, &s);
    memcpy(s.src6, LL_HIGH1, 16); /* high1's link-local is not high2's */
    push(P_HIGH2, &s);
    run();
    assert_int_equal(got(), 0);
    assert_int_equal(drops(P_HIGH2, CW_SW_DROP_SPOOFED_IP), 2);
    memcpy(s.src6, LL_HIGH2, 16);
    push(P_HIGH2, &s);
    run();
    assert_int_equal(got(), B(P_HIGH1));
    clear_out();

    /* A VLAN tag does not hide a spoofed source. */
    struct fspec t = udp(P_HIGH1, MAC[P_HIGH2], IPV4[P_HIGH2], 9);
    t.vlans = 1;
    t.src4 = IP4(10, 0, 0, 77);
    push(P_HIGH1, &t);
    t.vlans = 2;
    push(P_HIGH1, &t);
    run();
    assert_int_equal(got(), 0);
    assert_int_equal(drops(P_HIGH1, CW_SW_DROP_SPOOFED_IP), 4);
    /* Three tags cannot be checked at all: refused from a NIC. */
    t.vlans = 3;
    t.src4 = IPV4[P_HIGH1];
    push(P_HIGH1, &t);
    run();
    assert_int_equal(got(), 0);
    assert_int_equal(drops(P_HIGH1, CW_SW_DROP_BAD_FRAME), 1);
    /* Tagged with the right source: passes within the domain. */
    t.vlans = 1;
    push(P_HIGH1, &t);
    run();
    assert_int_equal(got(), B(P_HIGH2));
}

/* ---- offload metadata ---- */

static void test_offload_metadata(void **state)
{
    (void)state;
    setup_switch(NULL, 0);
    struct fspec s = udp(P_HIGH1, MAC[P_HIGH2], IPV4[P_HIGH2], 9);
    /* Checksum field on the UDP checksum: fine, and passed through. */
    s.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    s.csum_start = 34;
    s.csum_offset = 6;
    push(P_HIGH1, &s);
    run();
    assert_int_equal(outs(P_HIGH2), 1);
    assert_int_equal(fakes[P_HIGH2].out[0][0], VIRTIO_NET_HDR_F_NEEDS_CSUM);
    assert_int_equal(fakes[P_HIGH2].out[0][6], 34);
    clear_out();
    /* A checksum the receiver would write over the destination port or the
     * IP source: refused. */
    s.csum_offset = 2;
    push(P_HIGH1, &s);
    s.csum_start = 14;
    s.csum_offset = 12;
    push(P_HIGH1, &s);
    /* ... or past the end of the frame (74 bytes). */
    s.csum_start = 73;
    s.csum_offset = 0;
    push(P_HIGH1, &s);
    /* GSO TCPv4 on a UDP frame, TCPv6 on IPv4, an unknown type, ECN alone,
     * gso_size 0. */
    s.flags = 0;
    s.csum_start = s.csum_offset = 0;
    s.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
    s.gso_size = 1000;
    push(P_HIGH1, &s);
    s.proto = 6;
    s.gso_type = VIRTIO_NET_HDR_GSO_TCPV6;
    push(P_HIGH1, &s);
    s.gso_type = VIRTIO_NET_HDR_GSO_UDP;
    push(P_HIGH1, &s);
    s.gso_type = VIRTIO_NET_HDR_GSO_ECN;
    push(P_HIGH1, &s);
    s.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
    s.gso_size = 0;
    push(P_HIGH1, &s);
    run();
    assert_int_equal(got(), 0);
    assert_int_equal(drops(P_HIGH1, CW_SW_DROP_BAD_OFFLOAD), 8);
    /* A TCPv4 GSO frame with its checksum request passes whole. */
    s.gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN;
    s.gso_size = 1448;
    s.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    s.csum_start = 34;
    s.csum_offset = 16;
    s.payload = 20000;
    uint32_t len = push(P_HIGH1, &s);
    run();
    assert_int_equal(outs(P_HIGH2), 1);
    assert_int_equal(fakes[P_HIGH2].out_len[0], len);
    sw_build(buf, sizeof(buf), &s);
    assert_memory_equal(fakes[P_HIGH2].out[0], buf, len);
}

/* ---- policy through the switch ---- */

static void test_one_way_udp(void **state)
{
    (void)state;
    struct cw_policy_rule r = rule(LOW, HIGH, CW_RULE_ALLOW, 12);
    r.ethertype = 0x0800;
    r.has_proto = true;
    r.ip_proto = 17;
    r.dst_port = (struct cw_port_range){5001, 5001};
    setup_switch(&r, 1);

    struct fspec s = udp(P_LOW1, MAC[P_HIGH1], IPV4[P_HIGH1], 5001);
    push(P_LOW1, &s);
    run();
    assert_int_equal(got(), B(P_HIGH1));
    assert_int_equal(sw->rule_matched[0], 1);
    clear_out();

    /* The reverse, another port, TCP, ICMP: all dropped. */
    s = udp(P_HIGH1, MAC[P_LOW1], IPV4[P_LOW1], 5001);
    push(P_HIGH1, &s);
    s = sw_udp4(MAC[P_HIGH1], MAC[P_LOW1], IPV4[P_HIGH1], IPV4[P_LOW1], 5001, 40000);
    push(P_HIGH1, &s);
    s = udp(P_LOW1, MAC[P_HIGH1], IPV4[P_HIGH1], 5002);
    push(P_LOW1, &s);
    s.dport = 5001;
    s.proto = 6;
    push(P_LOW1, &s);
    s.proto = 1;
    s.icmp_type = 8;
    push(P_LOW1, &s);
    run();
    assert_int_equal(got(), 0);
    assert_int_equal(drops(P_HIGH1, CW_SW_DROP_POLICY), 2);
    assert_int_equal(drops(P_LOW1, CW_SW_DROP_POLICY), 3);
    assert_int_equal(sw->default_deny, 5);
    assert_int_equal(sw->rule_matched[0], 1);

    /* ARP from low never reaches high (no implicit pass), while it still
     * reaches the low ports; the same for a broadcast UDP to another port. */
    struct fspec a = sw_arp(MAC[P_LOW1], IPV4[P_LOW1], IPV4[P_HIGH1]);
    push(P_LOW1, &a);
    run();
    assert_int_equal(got(), B(P_LOW2) | B(P_UPLINK));
    clear_out();
    /* A broadcast UDP to 5001 is allowed to high (the rule) but not to mid. */
    s = udp(P_LOW1, BCAST, IP4(255, 255, 255, 255), 5001);
    push(P_LOW1, &s);
    run();
    assert_int_equal(got(), B(P_HIGH1) | B(P_HIGH2) | B(P_UPLINK2) | B(P_LOW2) | B(P_UPLINK));
    assert_int_equal(sw->rule_matched[0], 2); /* one decision for the whole high domain */
}

static void test_both_and_deny_rules(void **state)
{
    (void)state;
    struct cw_policy_rule r[3];
    r[0] = rule(LOW, HIGH, CW_RULE_DENY, 3);
    r[0].has_src4 = true;
    r[0].src4 = (struct cw_ip4_prefix){IP4(10, 1, 0, 3), 32};
    r[0].has_proto = true;
    r[0].ip_proto = 6;
    r[1] = rule(LOW, HIGH, CW_RULE_ALLOW, 4);
    r[1].has_proto = true;
    r[1].ip_proto = 6;
    r[1].dst_port = (struct cw_port_range){22, 22};
    r[1].both = true;
    r[2] = rule(HIGH, MID, CW_RULE_ALLOW, 5);
    r[2].both = true;
    setup_switch(r, 3);

    /* low1 TCP to high1:22 hits the deny first. */
    struct fspec s = udp(P_LOW1, MAC[P_HIGH1], IPV4[P_HIGH1], 22);
    s.proto = 6;
    push(P_LOW1, &s);
    run();
    assert_int_equal(got(), 0);
    assert_int_equal(sw->rule_matched[0], 1);
    assert_int_equal(last_log.rule_line, 3);
    /* The reply from high1:22 to low (mirrored rule 4). */
    s = sw_udp4(MAC[P_HIGH1], MAC[P_LOW1], IPV4[P_HIGH1], IPV4[P_LOW1], 22, 40000);
    s.proto = 6;
    push(P_HIGH1, &s);
    run();
    assert_int_equal(got(), B(P_LOW1));
    assert_int_equal(sw->rule_matched[1], 1);
    clear_out();
    /* high <-> mid: both ways, anything, ARP included. */
    struct fspec a = sw_arp(MAC[P_MID1], IPV4[P_MID1], IPV4[P_HIGH1]);
    push(P_MID1, &a);
    run();
    assert_int_equal(got(), B(P_HIGH1) | B(P_HIGH2) | B(P_UPLINK2));
    clear_out();
    a = sw_arp(MAC[P_HIGH1], IPV4[P_HIGH1], IPV4[P_MID1]);
    push(P_HIGH1, &a);
    run();
    assert_int_equal(got(), B(P_HIGH2) | B(P_UPLINK2) | B(P_MID1));
    assert_int_equal(sw->rule_matched[2], 2);
}

/* ---- the decision is made on a private copy (TOCTOU) ---- */

static uint8_t original[CW_FRAME_PREFIX];
static unsigned hook_runs;

/* Runs inside high1's tx_reserve, i.e. after the switch decided for high
 * and before it decides for mid: rewrite the sender's frame still in its
 * ring so that mid's rule (dport 22) and a different source would match. */
static void rewrite_sender(struct fake *self)
{
    (void)self;
    struct fake *sender = &fakes[P_LOW1];
    assert_true(sender->in_head < sender->in_n);
    uint8_t *f = sender->in[sender->in_head];
    f[REC_L4_4 + 2] = 0;
    f[REC_L4_4 + 3] = 22;         /* dport 22 */
    f[REC_IP + 15] = 99;          /* source 10.1.0.99 */
    f[REC_ETH + 0] = 0x52;        /* and the destination MAC */
    f[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM; /* and an offload request */
    hook_runs++;
}

static void test_toctou_sender_rewrites_ring(void **state)
{
    (void)state;
    struct cw_policy_rule r[2];
    r[0] = rule(LOW, HIGH, CW_RULE_ALLOW, 1);
    r[0].has_proto = true;
    r[0].ip_proto = 17;
    r[0].dst_port = (struct cw_port_range){5001, 5001};
    r[1] = rule(LOW, MID, CW_RULE_ALLOW, 2);
    r[1].has_proto = true;
    r[1].ip_proto = 17;
    r[1].dst_port = (struct cw_port_range){22, 22};
    setup_switch(r, 2);
    fakes[P_HIGH1].hook = rewrite_sender;
    hook_runs = 0;

    struct fspec s = udp(P_LOW1, BCAST, IP4(255, 255, 255, 255), 5001);
    s.payload = 1000; /* longer than the private prefix */
    uint32_t len = push(P_LOW1, &s);
    memcpy(original, buf, CW_FRAME_PREFIX);
    run();
    assert_int_equal(hook_runs, 1);
    /* mid was decided on the copy (dport 5001): denied, although the ring
     * now says 22. */
    assert_int_equal(outs(P_MID1), 0);
    assert_int_equal(sw->rule_matched[0], 1);
    assert_int_equal(sw->rule_matched[1], 0);
    assert_int_equal(sw->default_deny, 1);
    /* Every delivered copy carries the headers that were decided on, also
     * those delivered after the rewrite. */
    unsigned ports[] = {P_HIGH1, P_HIGH2, P_UPLINK2, P_LOW2, P_UPLINK};
    for (unsigned k = 0; k < sizeof(ports) / sizeof(ports[0]); k++) {
        assert_int_equal(outs(ports[k]), 1);
        assert_int_equal(fakes[ports[k]].out_len[0], len);
        assert_memory_equal(fakes[ports[k]].out[0], original, CW_FRAME_PREFIX);
    }
    fakes[P_HIGH1].hook = NULL;
    clear_out();

    /* Unicast: the rewrite after the decision does not reach the receiver's
     * headers either. */
    fakes[P_HIGH1].hook = rewrite_sender;
    s = udp(P_LOW1, MAC[P_HIGH1], IPV4[P_HIGH1], 5001);
    len = push(P_LOW1, &s);
    memcpy(original, buf, len);
    run();
    assert_int_equal(outs(P_HIGH1), 1);
    assert_memory_equal(fakes[P_HIGH1].out[0], original, len);
    fakes[P_HIGH1].hook = NULL;
}

/* ---- bounded work, full destinations, counters, logs ---- */

static void test_fairness_budget(void **state)
{
    (void)state;
    setup_switch(NULL, 0);
    struct fspec s = udp(P_HIGH1, MAC[P_HIGH2], IPV4[P_HIGH2], 9);
    for (int i = 0; i < 200; i++)
        push(P_HIGH1, &s);
    struct fspec u = sw_udp4(MAC[P_UPLINK2], MAC[P_HIGH2], 1, 2, 3, 4);
    for (int i = 0; i < 10; i++)
        push(P_UPLINK2, &u);

    uint64_t want = B(P_HIGH1) | B(P_UPLINK2);
    assert_true(cw_switch_round(sw, &want, now));
    /* One round: 64 from the busy port, all 10 from the other. */
    assert_int_equal(fakes[P_HIGH1].in_head, CW_SW_DEFAULT_BUDGET);
    assert_int_equal(fakes[P_UPLINK2].in_head, 10);
    assert_int_equal(outs(P_HIGH2), CW_SW_DEFAULT_BUDGET + 10);
    assert_int_equal(want, B(P_HIGH1));
    /* One flush per destination per round, not per frame. */
    assert_int_equal(fakes[P_HIGH2].tx_flushes, 1);
    assert_int_equal(fakes[P_HIGH1].rx_flushes, 1);
    unsigned rounds = 1;
    while (cw_switch_round(sw, &want, now))
        rounds++;
    assert_int_equal(rounds, 3); /* 64 + 64 + 64 + 8 */
    assert_int_equal(outs(P_HIGH2), 210);
    assert_int_equal(want, 0);

    /* A smaller budget is honoured. */
    sw->budget = 5;
    for (int i = 0; i < 12; i++)
        push(P_HIGH1, &s);
    want = B(P_HIGH1);
    assert_true(cw_switch_round(sw, &want, now));
    assert_int_equal(outs(P_HIGH2), 215);
    /* A port whose bit is not set is not served. */
    want = B(P_LOW1);
    assert_false(cw_switch_round(sw, &want, now));
    assert_int_equal(outs(P_HIGH2), 215);
}

static void test_no_room_and_counters(void **state)
{
    (void)state;
    setup_switch(NULL, 0);
    fakes[P_HIGH2].room = 5;
    struct fspec s = udp(P_HIGH1, MAC[P_HIGH2], IPV4[P_HIGH2], 9);
    uint32_t len = 0;
    for (int i = 0; i < 10; i++)
        len = push(P_HIGH1, &s);
    /* A broadcast: high2 is full, uplink2 still gets it. */
    struct fspec b = udp(P_HIGH1, BCAST, IP4(10, 0, 0, 255), 9);
    uint32_t blen = push(P_HIGH1, &b);
    run();
    assert_int_equal(outs(P_HIGH2), 5);
    assert_int_equal(drops(P_HIGH2, CW_SW_DROP_NO_ROOM), 6);
    assert_int_equal(outs(P_UPLINK2), 1);
    assert_int_equal(fakes[P_HIGH1].in_head, 11); /* the sender never waits */

    const struct cw_sw_port_stats *in = &sw->ports[P_HIGH1].stats;
    assert_int_equal(in->rx_frames, 11);
    assert_int_equal(in->rx_bytes, 10 * (len - 12) + (blen - 12));
    const struct cw_sw_port_stats *o = &sw->ports[P_HIGH2].stats;
    assert_int_equal(o->tx_frames, 5);
    assert_int_equal(o->tx_bytes, 5 * (len - 12));
    assert_int_equal(sw->ports[P_UPLINK2].stats.tx_frames, 1);
    assert_int_equal(sw->ports[P_UPLINK2].stats.tx_bytes, blen - 12);
    assert_int_equal(drops(P_HIGH1, CW_SW_DROP_POLICY), 1); /* the broadcast, kept from low/mid */
    /* no_room is not worth a log line (it comes in bursts under load). */
    assert_int_equal(n_logs, 1);

    /* Records too short or too long to be frames. */
    uint8_t tiny[20] = {0};
    push_raw(P_HIGH1, tiny, sizeof(tiny));
    push_raw(P_HIGH1, tiny, 0);
    static uint8_t huge[CW_NET_META_LEN + CW_NET_MAX_FRAME + 1];
    push_raw(P_HIGH1, huge, sizeof(huge));
    run();
    assert_int_equal(drops(P_HIGH1, CW_SW_DROP_BAD_FRAME), 3);
    assert_int_equal(in->rx_frames, 14);

    cw_switch_count_drop(sw, P_UPLINK2, CW_SW_DROP_TX_ERROR);
    cw_switch_count_drop(sw, CW_SW_MAX_PORTS, CW_SW_DROP_TX_ERROR); /* ignored */
    cw_switch_count_drop(sw, P_UPLINK2, CW_SW_DROP__COUNT);        /* ignored */
    assert_int_equal(drops(P_UPLINK2, CW_SW_DROP_TX_ERROR), 1);
}

static void test_drop_log_rate_limit(void **state)
{
    (void)state;
    setup_switch(NULL, 0);
    struct fspec s = udp(P_HIGH1, MAC[P_HIGH2], IPV4[P_HIGH2], 9);
    s.src4 = IP4(6, 6, 6, 6);
    for (int i = 0; i < 20; i++)
        push(P_HIGH1, &s);
    run();
    assert_int_equal(drops(P_HIGH1, CW_SW_DROP_SPOOFED_IP), 20);
    assert_int_equal(n_logs, 5); /* the burst */
    assert_int_equal(last_log.suppressed, 0);
    assert_int_equal(last_log.port, P_HIGH1);
    assert_int_equal(last_log.reason, CW_SW_DROP_SPOOFED_IP);
    /* Later in the same window: still quiet. */
    now += 500;
    push(P_HIGH1, &s);
    run();
    assert_int_equal(n_logs, 5);
    /* Next window: one line, telling how many were not shown. */
    now += 600;
    push(P_HIGH1, &s);
    run();
    assert_int_equal(n_logs, 6);
    assert_int_equal(last_log.suppressed, 16);
}

/* ---- the switch process ---- */

static json_t *recv_json(int fd, int timeout_ms, int *fds, unsigned *nfds)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) != 1)
        return NULL;
    json_t *m = NULL;
    int tmp[CW_CTL_MAX_FDS];
    unsigned n = 0;
    char err[160];
    if (cw_ctl_recv(fd, &m, fds ? fds : tmp, nfds ? nfds : &n, err, sizeof(err)) != CW_CTL_MSG)
        return NULL;
    if (!fds)
        cw_ctl_close_fds(tmp, n);
    return m;
}

/* The next message that is not a log event. */
static json_t *reply(int fd)
{
    for (int i = 0; i < 50; i++) {
        json_t *m = recv_json(fd, 5000, NULL, NULL);
        assert_non_null(m);
        const char *ev = json_string_value(json_object_get(m, "event"));
        if (ev && !strcmp(ev, "log")) {
            json_decref(m);
            continue;
        }
        return m;
    }
    fail();
    return NULL;
}

static void expect_error(int fd, const char *contains)
{
    json_t *m = reply(fd);
    assert_string_equal(cw_ctl_op(m), "error");
    const char *e = json_string_value(json_object_get(m, "error"));
    assert_non_null(e);
    if (!strstr(e, contains))
        fail_msg("error '%s' lacks '%s'", e, contains);
    json_decref(m);
}

static void send_msg(int fd, const char *text, const int *fds, unsigned nfds)
{
    json_error_t je;
    json_t *m = json_loads(text, 0, &je);
    assert_non_null(m);
    assert_int_equal(cw_ctl_send(fd, m, fds, nfds), 0);
    json_decref(m);
}

/* A port: the switch gets side 0 over the socket, we keep side 1. */
static void give_port(int ctl, unsigned id, struct cw_port *mine)
{
    struct cw_port_fds f;
    assert_int_equal(cw_port_fds_create(&f, CW_PORT_MIN_CAPACITY), 0);
    int arr[CW_CTL_PORT_FDS];
    cw_ctl_port_fds_array(&f, arr);
    char text[128];
    snprintf(text, sizeof(text), "{\"op\":\"port\",\"id\":%u,\"side\":0,\"capacity\":%u}", id,
             CW_PORT_MIN_CAPACITY);
    send_msg(ctl, text, arr, CW_CTL_PORT_FDS);
    memset(mine, 0, sizeof(*mine));
    assert_int_equal(cw_port_attach(mine, &f, 1, CW_PORT_MIN_CAPACITY, false), 0);
}

static void port_send(struct cw_port *p, const struct fspec *s)
{
    uint32_t len = sw_build(buf, sizeof(buf), s);
    uint8_t *d = cw_port_net_ops.tx_reserve(p, len);
    assert_non_null(d);
    memcpy(d, buf, len);
    cw_port_net_ops.tx_commit(p, len);
    cw_port_net_ops.tx_flush(p);
}

/* Wait (bounded) for one frame on p; its length, or 0. */
static uint32_t port_recv(struct cw_port *p, uint8_t *out, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        uint32_t len;
        const uint8_t *f = cw_port_net_ops.rx_peek(p, &len);
        if (f) {
            memcpy(out, f, len);
            cw_port_net_ops.rx_release(p);
            cw_port_net_ops.rx_flush(p);
            return len;
        }
        struct pollfd pf = {.fd = cw_port_rx_data_fd(p), .events = POLLIN};
        if (poll(&pf, 1, 20) == 1)
            cw_port_drain(p, pf.fd);
    }
    return 0;
}

static int count_fds_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static const char *CONFIG =
    "{\"op\":\"config\",\"name\":\"sw0\",\"domains\":[\"high\",\"low\"],"
    "\"ports\":[{\"id\":0,\"name\":\"a/nic0\",\"kind\":\"nic\",\"mac\":\"52:54:00:00:00:01\","
    "\"domain\":\"high\",\"ipv4\":[\"10.0.0.1/24\"],\"ipv6\":[]},"
    "{\"id\":1,\"name\":\"b/nic0\",\"kind\":\"nic\",\"mac\":\"52:54:00:00:00:02\","
    "\"domain\":\"high\",\"ipv4\":[\"10.0.0.2/24\"],\"ipv6\":[\"fd00::2/64\"]},"
    "{\"id\":2,\"name\":\"c/nic0\",\"kind\":\"nic\",\"mac\":\"52:54:00:00:00:03\","
    "\"domain\":\"low\",\"ipv4\":[\"10.1.0.3/24\"],\"ipv6\":[]},"
    "{\"id\":3,\"name\":\"uplink/tap0\",\"kind\":\"uplink\",\"domain\":\"low\","
    "\"ipv4\":[],\"ipv6\":[]}],"
    "\"rules\":[{\"from\":\"low\",\"to\":\"high\",\"both\":false,\"action\":\"allow\","
    "\"ethertype\":2048,\"proto\":17,\"dst_port\":[5001,5001],\"line\":12}]}";

static void test_process(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(cw_ctl_socketpair(sv), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        struct cw_switch_opts o = {.name = "sw0", .control_fd = sv[1]};
        _exit(cw_switch_main(&o));
    }
    close(sv[1]);
    int ctl = sv[0];

    /* Before the config: everything else is refused. */
    send_msg(ctl, "{\"op\":\"stats\"}", NULL, 0);
    expect_error(ctl, "stats: no configuration yet");
    /* A refused config (unknown domain) changes nothing ... */
    send_msg(ctl, "{\"op\":\"config\",\"name\":\"sw0\",\"domains\":[\"a\"],\"ports\":"
                  "[{\"id\":0,\"name\":\"x\",\"kind\":\"nic\",\"mac\":\"52:54:00:00:00:01\","
                  "\"domain\":\"b\"}]}", NULL, 0);
    expect_error(ctl, "unknown domain 'b'");
    send_msg(ctl, "{\"op\":\"config\",\"name\":\"sw9\",\"domains\":[],\"ports\":[]}", NULL, 0);
    expect_error(ctl, "config is for switch 'sw9'");
    send_msg(ctl, "{\"op\":\"config\",\"domains\":[\"a\"],\"ports\":[],\"extra\":1}", NULL, 0);
    expect_error(ctl, "unknown key 'extra'");
    /* ... and a good one is then accepted. */
    send_msg(ctl, CONFIG, NULL, 0);
    json_t *m = reply(ctl);
    assert_string_equal(cw_ctl_op(m), "event");
    assert_string_equal(json_string_value(json_object_get(m, "event")), "ready");
    json_decref(m);
    send_msg(ctl, CONFIG, NULL, 0);
    expect_error(ctl, "config: already configured");

    /* Hostile or wrong messages. Every fd they carry is closed by the
     * switch (counted in its /proc fd directory before and after). */
    int fds_before = count_fds_of(pid);
    send_msg(ctl, "{\"op\":\"bogus\"}", NULL, 0);
    expect_error(ctl, "unknown op");
    int efd0 = eventfd(0, EFD_CLOEXEC);
    send_msg(ctl, "{\"op\":\"bogus\"}", &efd0, 1);
    close(efd0);
    expect_error(ctl, "unknown op");
    int efd = eventfd(0, EFD_CLOEXEC);
    send_msg(ctl, "{\"op\":\"tap\",\"id\":3}", &efd, 1);
    expect_error(ctl, "tap: port 3 (uplink/tap0): not a TAP");
    send_msg(ctl, "{\"op\":\"tap\",\"id\":0}", &efd, 1);
    expect_error(ctl, "is a NIC");
    send_msg(ctl, "{\"op\":\"detach\",\"id\":0}", &efd, 1);
    expect_error(ctl, "detach: unexpected fds");
    int four[4] = {efd, efd, efd, efd};
    send_msg(ctl, "{\"op\":\"port\",\"id\":0,\"side\":0,\"capacity\":262144}", four, 4);
    expect_error(ctl, "needs exactly 5 fds");
    int five[5] = {efd, efd, efd, efd, efd};
    send_msg(ctl, "{\"op\":\"port\",\"id\":0,\"side\":1,\"capacity\":262144}", five, 5);
    expect_error(ctl, "side");
    send_msg(ctl, "{\"op\":\"port\",\"id\":0,\"side\":0,\"capacity\":300000}", five, 5);
    expect_error(ctl, "capacity");
    send_msg(ctl, "{\"op\":\"port\",\"id\":0,\"side\":0,\"capacity\":262144}", five, 5);
    expect_error(ctl, "port 0 (a/nic0)"); /* an eventfd is no memfd */
    send_msg(ctl, "{\"op\":\"port\",\"id\":7,\"side\":0,\"capacity\":262144}", five, 5);
    expect_error(ctl, "not a configured port");
    send_msg(ctl, "{\"op\":\"port\",\"id\":3,\"side\":0,\"capacity\":262144}", five, 5);
    expect_error(ctl, "is an uplink");
    send_msg(ctl, "{\"op\":\"port\",\"id\":0,\"side\":0,\"capacity\":262144,\"x\":1}", five, 5);
    expect_error(ctl, "x: unknown key");
    close(efd);
    assert_int_equal(count_fds_of(pid), fds_before);

    /* Real ports: a -> b within high; c (low) -> a allowed for UDP 5001
     * only; a spoofed frame counted. */
    static struct cw_port pa, pb, pc;
    give_port(ctl, 0, &pa);
    give_port(ctl, 1, &pb);
    give_port(ctl, 2, &pc);
    static const uint8_t A[6] = {0x52, 0x54, 0, 0, 0, 1}, Bm[6] = {0x52, 0x54, 0, 0, 0, 2},
                         C[6] = {0x52, 0x54, 0, 0, 0, 3};
    static uint8_t got_buf[CW_NET_META_LEN + CW_NET_MAX_FRAME];
    struct fspec s = sw_udp4(A, Bm, IP4(10, 0, 0, 1), IP4(10, 0, 0, 2), 1000, 2000);
    s.payload = 3000;
    port_send(&pa, &s);
    uint32_t len = port_recv(&pb, got_buf, 3000);
    uint32_t want = sw_build(buf, sizeof(buf), &s);
    assert_int_equal(len, want);
    assert_memory_equal(got_buf, buf, len);

    s = sw_udp4(C, A, IP4(10, 1, 0, 3), IP4(10, 0, 0, 1), 1000, 5001);
    port_send(&pc, &s);
    assert_int_not_equal(port_recv(&pa, got_buf, 3000), 0);
    s.dport = 5002; /* denied */
    port_send(&pc, &s);
    s.src4 = IP4(10, 1, 0, 99); /* spoofed */
    port_send(&pc, &s);
    s = sw_udp4(A, C, IP4(10, 0, 0, 1), IP4(10, 1, 0, 3), 5001, 1000); /* high -> low: denied */
    port_send(&pa, &s);
    assert_int_equal(port_recv(&pa, got_buf, 200), 0);
    assert_int_equal(port_recv(&pc, got_buf, 200), 0);

    /* Detach b: frames to it are dropped as port_down. */
    send_msg(ctl, "{\"op\":\"detach\",\"id\":1}", NULL, 0);
    s = sw_udp4(A, Bm, IP4(10, 0, 0, 1), IP4(10, 0, 0, 2), 1000, 2000);
    port_send(&pa, &s);
    usleep(100 * 1000);

    send_msg(ctl, "{\"op\":\"stats\",\"seq\":7}", NULL, 0);
    m = reply(ctl);
    assert_string_equal(cw_ctl_op(m), "stats");
    assert_int_equal(json_integer_value(json_object_get(m, "seq")), 7);
    json_t *ports = json_object_get(m, "ports");
    assert_int_equal(json_array_size(ports), 4);
    json_t *p0 = json_array_get(ports, 0), *p1 = json_array_get(ports, 1),
           *p2 = json_array_get(ports, 2);
    assert_string_equal(json_string_value(json_object_get(p0, "name")), "a/nic0");
    assert_int_equal(json_integer_value(json_object_get(p0, "rx_frames")), 3);
    assert_int_equal(json_integer_value(json_object_get(p0, "tx_frames")), 1);
    assert_int_equal(json_integer_value(json_object_get(p1, "tx_frames")), 1);
    assert_int_equal(json_integer_value(json_object_get(p1, "tx_bytes")), want - 12);
    assert_false(json_is_true(json_object_get(p1, "up")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p1, "drops"), "port_down")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p0, "drops"), "policy")), 1);
    json_t *d2 = json_object_get(p2, "drops");
    assert_int_equal(json_integer_value(json_object_get(d2, "policy")), 1);
    assert_int_equal(json_integer_value(json_object_get(d2, "spoofed_ip")), 1);
    json_t *r0 = json_array_get(json_object_get(m, "rules"), 0);
    assert_int_equal(json_integer_value(json_object_get(r0, "line")), 12);
    assert_int_equal(json_integer_value(json_object_get(r0, "matched")), 1);
    assert_int_equal(json_integer_value(json_object_get(m, "default_deny")), 2);
    json_decref(m);

    /* The drops were told as log events (rate-limited, at least one). */
    send_msg(ctl, "{\"op\":\"stats\",\"seq\":\"x\"}", NULL, 0);
    expect_error(ctl, "stats: seq");

    /* Replacing a port (a restarted device): the new one works. */
    cw_port_detach(&pb);
    give_port(ctl, 1, &pb);
    port_send(&pa, &s);
    assert_int_not_equal(port_recv(&pb, got_buf, 3000), 0);

    /* A device corrupting its ring gets its port dropped, with a log
     * event; the switch serves on. */
    __atomic_store_n(&pc.tx.sh->prod, 7u, __ATOMIC_RELEASE); /* misaligned */
    uint64_t one = 1;
    assert_int_equal(write(pc.fds.efd[1][CW_PORT_EFD_DATA], &one, 8), 8);
    bool told = false;
    for (int i = 0; i < 20 && !told; i++) {
        json_t *e = recv_json(ctl, 3000, NULL, NULL);
        assert_non_null(e);
        const char *t = json_string_value(json_object_get(e, "text"));
        told = t && strstr(t, "c/nic0") && strstr(t, "corrupted");
        json_decref(e);
    }
    assert_true(told);
    port_send(&pa, &s);
    assert_int_not_equal(port_recv(&pb, got_buf, 3000), 0);

    /* The launcher going away stops the switch cleanly. */
    close(ctl);
    int status = -1;
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            break;
        usleep(10 * 1000);
    }
    if (!WIFEXITED(status)) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("switch did not exit");
    }
    assert_int_equal(WEXITSTATUS(status), 0);
    cw_port_detach(&pa);
    cw_port_detach(&pb);
    cw_port_detach(&pc);
}

/* ---- the TAP uplink, in a private network namespace ---- */

/* Runs in a forked child inside its own network namespace; returns 0 or the
 * number of the step that failed (no cmocka in the child). */
static int tap_child(void)
{
    if (unshare(CLONE_NEWNET) < 0)
        return 100; /* no namespaces here: the parent skips */
    int tap = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (tap < 0)
        return 101;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, IFNAMSIZ, "cwt0");
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(tap, TUNSETIFF, &ifr) < 0)
        return 102;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
        return 3;
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0 || ioctl(s, SIOCGIFINDEX, &ifr) < 0)
        return 4;
    int ifindex = ifr.ifr_ifindex;
    close(s);
    /* What the kernel receives on cwt0 (= what the switch writes to the
     * TAP) and what it sends out of it (= what the switch reads). */
    int pk = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    struct sockaddr_ll ll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                             .sll_ifindex = ifindex};
    if (pk < 0 || bind(pk, (struct sockaddr *)&ll, sizeof(ll)) < 0)
        return 5;

    int sv[2];
    if (cw_ctl_socketpair(sv) < 0)
        return 6;
    pid_t pid = fork();
    if (pid < 0)
        return 7;
    if (pid == 0) {
        close(sv[0]);
        close(tap);
        close(pk);
        struct cw_switch_opts o = {.name = "sw0", .control_fd = sv[1]};
        _exit(cw_switch_main(&o));
    }
    close(sv[1]);
    int ctl = sv[0];
    send_msg(ctl, "{\"op\":\"config\",\"name\":\"sw0\",\"domains\":[\"low\"],\"ports\":["
                  "{\"id\":0,\"name\":\"v/nic0\",\"kind\":\"nic\",\"mac\":\"52:54:00:00:00:03\","
                  "\"domain\":\"low\",\"ipv4\":[\"10.1.0.3/24\"],\"ipv6\":[]},"
                  "{\"id\":1,\"name\":\"uplink/cwt0\",\"kind\":\"uplink\",\"domain\":\"low\","
                  "\"ipv4\":[],\"ipv6\":[]}],\"rules\":[]}", NULL, 0);
    json_t *m = recv_json(ctl, 5000, NULL, NULL);
    int rc = 0;
    if (!m || strcmp(json_string_value(json_object_get(m, "event")) ?: "", "ready"))
        rc = 8;
    json_decref(m);
    send_msg(ctl, "{\"op\":\"tap\",\"id\":1}", &tap, 1);
    close(tap);
    static struct cw_port pv;
    give_port(ctl, 0, &pv);

    static const uint8_t V[6] = {0x52, 0x54, 0, 0, 0, 3}, X[6] = {0x02, 0, 0, 0, 0, 0xaa};
    static uint8_t rx[CW_NET_META_LEN + CW_NET_MAX_FRAME];
    /* NIC -> TAP: a broadcast from the VM appears on cwt0. */
    struct fspec f = sw_udp4(V, BCAST, IP4(10, 1, 0, 3), IP4(10, 1, 0, 255), 4242, 4343);
    for (int tries = 0; rc == 0 && tries < 3; tries++) {
        port_send(&pv, &f);
        bool seen = false;
        struct pollfd p = {.fd = pk, .events = POLLIN};
        while (!seen && poll(&p, 1, 1000) == 1) {
            ssize_t n = recv(pk, rx, sizeof(rx), 0);
            /* Ethernet + IPv4 + UDP ports 4242 > 4343 */
            seen = n >= 42 && !memcmp(rx + 6, V, 6) && rx[34] == 0x10 && rx[35] == 0x92 &&
                   rx[36] == 0x10 && rx[37] == 0xf7;
        }
        if (seen)
            break;
        if (tries == 2)
            rc = 9;
    }
    /* TAP -> NIC: a frame the host sends out of cwt0 reaches the VM's port,
     * with a virtio header in front. */
    if (rc == 0) {
        struct fspec h = sw_udp4(X, V, IP4(10, 1, 0, 1), IP4(10, 1, 0, 3), 5555, 6666);
        uint32_t len = sw_build(buf, sizeof(buf), &h);
        if (sendto(pk, buf + CW_NET_META_LEN, len - CW_NET_META_LEN, 0, (struct sockaddr *)&ll,
                   sizeof(ll)) != (ssize_t)(len - CW_NET_META_LEN))
            rc = 10;
        bool seen = false;
        for (int i = 0; rc == 0 && i < 20 && !seen; i++) {
            uint32_t n = port_recv(&pv, rx, 500);
            seen = n >= 12 + 42 && !memcmp(rx + 12 + 6, X, 6) && rx[12 + 36] == 0x1a &&
                   rx[12 + 37] == 0x0a; /* dport 6666 */
        }
        if (rc == 0 && !seen)
            rc = 11;
    }
    /* The switch counted both directions on the uplink. */
    if (rc == 0) {
        send_msg(ctl, "{\"op\":\"stats\"}", NULL, 0);
        json_t *st = NULL;
        for (int i = 0; i < 20; i++) {
            st = recv_json(ctl, 3000, NULL, NULL);
            if (!st || !strcmp(cw_ctl_op(st), "stats"))
                break;
            json_decref(st);
            st = NULL;
        }
        json_t *up = st ? json_array_get(json_object_get(st, "ports"), 1) : NULL;
        if (!up || json_integer_value(json_object_get(up, "rx_frames")) < 1 ||
            json_integer_value(json_object_get(up, "tx_frames")) < 1 ||
            !json_is_true(json_object_get(up, "up")))
            rc = 12;
        json_decref(st);
    }
    close(ctl);
    int status;
    waitpid(pid, &status, 0);
    if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
        rc = 13;
    cw_port_detach(&pv);
    close(pk);
    return rc;
}

static void test_tap_uplink(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(tap_child());
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) >= 100) {
        print_message("no network namespace or TAP here (step %d): skipped\n", WEXITSTATUS(status));
        skip();
    }
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_refusals),
        cmocka_unit_test(test_learning_and_aging),
        cmocka_unit_test(test_destination_cache),
        cmocka_unit_test(test_fdb_bounded),
        cmocka_unit_test(test_flood_and_unicast_policy),
        cmocka_unit_test(test_spoof_mac),
        cmocka_unit_test(test_spoof_ipv4_and_arp),
        cmocka_unit_test(test_spoof_ipv6_and_vlan),
        cmocka_unit_test(test_offload_metadata),
        cmocka_unit_test(test_one_way_udp),
        cmocka_unit_test(test_both_and_deny_rules),
        cmocka_unit_test(test_toctou_sender_rewrites_ring),
        cmocka_unit_test(test_fairness_budget),
        cmocka_unit_test(test_no_room_and_counters),
        cmocka_unit_test(test_drop_log_rate_limit),
        cmocka_unit_test(test_process),
        cmocka_unit_test(test_tap_uplink),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
