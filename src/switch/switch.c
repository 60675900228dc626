/* Forwarding engine (see switch.h for the per-frame steps and why the
 * decision is made on a private copy). */
#include "switch.h"

#include "../core/virtio_spec.h"
#include "policy.h"

/* The sender may rewrite its ring at any time: after the private copy,
 * nothing may be re-read from it for a decision. The barrier keeps the
 * compiler from folding later uses of the copy back into the ring. */
#define COMPILER_BARRIER() __asm__ __volatile__("" ::: "memory")

static const char *const drop_names[CW_SW_DROP__COUNT] = {
    [CW_SW_DROP_BAD_FRAME] = "bad_frame",     [CW_SW_DROP_SPOOFED_MAC] = "spoofed_mac",
    [CW_SW_DROP_SPOOFED_IP] = "spoofed_ip",   [CW_SW_DROP_BAD_OFFLOAD] = "bad_offload",
    [CW_SW_DROP_POLICY] = "policy",           [CW_SW_DROP_SAME_PORT] = "same_port",
    [CW_SW_DROP_NO_ROOM] = "no_room",         [CW_SW_DROP_PORT_DOWN] = "port_down",
    [CW_SW_DROP_TX_ERROR] = "tx_error",
};

const char *cw_sw_drop_name(enum cw_sw_drop d)
{
    return (unsigned)d < CW_SW_DROP__COUNT ? drop_names[d] : "unknown";
}

/* Copy n bytes, 16 <= n <= CW_FRAME_PREFIX (a record header and frame
 * header): 16-byte moves and one overlapping last move, instead of a
 * generic copy's byte-wise remainder or rep movs start-up. */
_Static_assert(CW_NET_META_LEN + CW_NET_MIN_FRAME >= 16u, "shortest record under 16 bytes");
static inline void copy_prefix(uint8_t *d, const uint8_t *s, uint32_t n)
{
    uint32_t i = 0;
    for (; i + 16u < n; i += 16u)
        __builtin_memcpy(d + i, s + i, 16);
    __builtin_memcpy(d + n - 16u, s + n - 16u, 16);
}

static bool mac_eq(const uint8_t a[6], const uint8_t b[6])
{
    return __builtin_memcmp(a, b, 6) == 0;
}

static bool mac_zero(const uint8_t m[6])
{
    return (m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) == 0;
}

void cw_switch_init(struct cw_switch *sw, uint64_t seed, uint32_t fdb_aging_ms)
{
    __builtin_memset(sw, 0, sizeof(*sw));
    cw_fdb_init(&sw->fdb, seed, fdb_aging_ms);
    sw->budget = CW_SW_DEFAULT_BUDGET;
    sw->log_interval_ms = 1000;
    sw->log_burst = 5;
}

int cw_switch_set_policy(struct cw_switch *sw, unsigned n_domains, const struct cw_policy *p)
{
    if (n_domains > CW_SW_MAX_DOMAINS || p->n_rules > CW_POLICY_MAX_RULES)
        return -1;
    for (unsigned i = 0; i < p->n_rules; i++) {
        const struct cw_policy_rule *r = &p->rules[i];
        if (r->from_domain < 0 || (unsigned)r->from_domain >= n_domains || r->to_domain < 0 ||
            (unsigned)r->to_domain >= n_domains)
            return -1;
    }
    sw->n_domains = n_domains;
    sw->policy.n_rules = p->n_rules;
    for (unsigned i = 0; i < p->n_rules; i++)
        sw->policy.rules[i] = p->rules[i];
    __builtin_memset(sw->rule_matched, 0, sizeof(sw->rule_matched));
    return 0;
}

int cw_switch_add_port(struct cw_switch *sw, unsigned id, const struct cw_sw_port_config *cfg)
{
    if (id >= CW_SW_MAX_PORTS || sw->ports[id].configured)
        return -1;
    if (cfg->domain < 0 || (unsigned)cfg->domain >= sw->n_domains)
        return -1;
    if (cfg->n_ipv4 > CW_SW_MAX_ADDRS || cfg->n_ipv6 > CW_SW_MAX_ADDRS)
        return -1;
    if (cfg->kind != CW_SW_NIC && cfg->kind != CW_SW_UPLINK)
        return -1;
    if (cfg->kind == CW_SW_NIC && !cfg->has_mac)
        return -1;
    if (cfg->has_mac && (cw_mac_is_group(cfg->mac) || mac_zero(cfg->mac)))
        return -1;
    if (cfg->has_mac && cw_fdb_add_static(&sw->fdb, cfg->mac, (uint16_t)id) < 0)
        return -1;
    struct cw_sw_port *p = &sw->ports[id];
    p->cfg = *cfg;
    p->cfg.name[CW_SW_NAME_MAX] = '\0';
    /* The EUI-64 link-local address (RFC 4291, appendix A) a guest forms
     * from its MAC: fe80::/64 with the U/L bit flipped and ff:fe inserted. */
    static const uint8_t ll[8] = { 0xfe, 0x80 };
    for (int k = 0; k < 8; k++)
        p->ll6[k] = ll[k];
    p->ll6[8] = (uint8_t)(cfg->mac[0] ^ 0x02u);
    p->ll6[9] = cfg->mac[1];
    p->ll6[10] = cfg->mac[2];
    p->ll6[11] = 0xff;
    p->ll6[12] = 0xfe;
    p->ll6[13] = cfg->mac[3];
    p->ll6[14] = cfg->mac[4];
    p->ll6[15] = cfg->mac[5];
    p->configured = true;
    return 0;
}

int cw_switch_port_up(struct cw_switch *sw, unsigned id, const struct cw_net_port_ops *ops,
                      void *ctx)
{
    if (id >= CW_SW_MAX_PORTS || !sw->ports[id].configured || ops == 0)
        return -1;
    sw->ports[id].ops = ops;
    sw->ports[id].ctx = ctx;
    sw->ports[id].tx_dirty = false;
    return 0;
}

void cw_switch_port_down(struct cw_switch *sw, unsigned id)
{
    if (id >= CW_SW_MAX_PORTS)
        return;
    sw->ports[id].ops = 0;
    sw->ports[id].ctx = 0;
    sw->ports[id].tx_dirty = false;
    cw_fdb_forget_port(&sw->fdb, (uint16_t)id);
}

void cw_switch_count_drop(struct cw_switch *sw, unsigned id, enum cw_sw_drop reason)
{
    if (id < CW_SW_MAX_PORTS && (unsigned)reason < CW_SW_DROP__COUNT)
        sw->ports[id].stats.drops[reason]++;
}

/* ---- drops and their (rate-limited) report ---- */

static void tell(struct cw_switch *sw, enum cw_sw_drop reason, unsigned port, int dest,
                 int rule_line, const struct cw_frame *f)
{
    if (!sw->on_drop)
        return;
    if (sw->now_ms - sw->log_window_ms >= sw->log_interval_ms) {
        sw->log_window_ms = sw->now_ms;
        sw->log_used = 0;
    }
    if (sw->log_used >= sw->log_burst) {
        sw->log_suppressed++;
        return;
    }
    sw->log_used++;
    struct cw_sw_drop_event ev = {
        .reason = reason, .port = port, .dest = dest, .rule_line = rule_line, .frame = f,
        .suppressed = sw->log_suppressed,
    };
    sw->log_suppressed = 0;
    sw->on_drop(sw->log_ctx, &ev);
}

static void drop(struct cw_switch *sw, unsigned port, enum cw_sw_drop reason,
                 const struct cw_frame *f)
{
    sw->ports[port].stats.drops[reason]++;
    tell(sw, reason, port, -1, -1, f);
}

/* ---- checks ---- */

static bool has_ipv4(const struct cw_sw_port_config *c, uint32_t a)
{
    for (unsigned k = 0; k < c->n_ipv4; k++)
        if (c->ipv4[k] == a)
            return true;
    return false;
}

static bool has_ipv6(const struct cw_sw_port *p, const uint8_t a[16])
{
    for (unsigned k = 0; k < p->cfg.n_ipv6; k++)
        if (__builtin_memcmp(p->cfg.ipv6[k], a, 16) == 0)
            return true;
    return __builtin_memcmp(p->ll6, a, 16) == 0;
}

static bool ip6_unspecified(const uint8_t a[16])
{
    uint8_t x = 0;
    for (int k = 0; k < 16; k++)
        x |= a[k];
    return x == 0;
}

/* Anti-spoofing. Returns the drop reason, or CW_SW_DROP__COUNT to pass. */
static enum cw_sw_drop check_source(const struct cw_switch *sw, unsigned i,
                                    const struct cw_frame *f)
{
    const struct cw_sw_port *p = &sw->ports[i];
    const struct cw_sw_port_config *c = &p->cfg;
    if (cw_mac_is_group(f->src))
        return CW_SW_DROP_SPOOFED_MAC;
    if (c->has_mac) {
        if (!mac_eq(f->src, c->mac))
            return CW_SW_DROP_SPOOFED_MAC;
    } else {
        /* An uplink without a fixed MAC may not claim a NIC's address: that
         * would move the VM's traffic to the host. */
        int s = cw_fdb_static_port(&sw->fdb, f->src);
        if (s >= 0 && (unsigned)s != i)
            return CW_SW_DROP_SPOOFED_MAC;
    }
    if (c->kind != CW_SW_NIC)
        return CW_SW_DROP__COUNT;

    if (f->vlan_overflow)
        return CW_SW_DROP_BAD_FRAME;
    if (f->l3 == CW_L3_ARP && f->l3_ok && !mac_eq(f->arp_sha, c->mac))
        return CW_SW_DROP_SPOOFED_MAC;
    if (c->n_ipv4 == 0 && c->n_ipv6 == 0)
        return CW_SW_DROP__COUNT;
    /* Addresses configured: every IPv4/IPv6/ARP header must be readable and
     * name one of them (a NIC with only IPv4 addresses may still use its
     * IPv6 link-local address for neighbour discovery). */
    switch (f->l3) {
    case CW_L3_ARP:
        if (!f->l3_ok)
            return CW_SW_DROP_BAD_FRAME;
        if (f->arp_spa != 0 && !has_ipv4(c, f->arp_spa))
            return CW_SW_DROP_SPOOFED_IP;
        break;
    case CW_L3_IPV4:
        if (!f->l3_ok)
            return CW_SW_DROP_BAD_FRAME;
        if (!has_ipv4(c, f->src4))
            return CW_SW_DROP_SPOOFED_IP;
        break;
    case CW_L3_IPV6:
        if (!f->l3_ok)
            return CW_SW_DROP_BAD_FRAME;
        if (has_ipv6(p, f->src6))
            break;
        /* :: only for ICMPv6: duplicate address detection and MLD reports
         * sent before an address is assigned. */
        if (ip6_unspecified(f->src6) && f->has_proto && f->proto == CW_IPPROTO_ICMPV6)
            break;
        return CW_SW_DROP_SPOOFED_IP;
    default:
        break;
    }
    return CW_SW_DROP__COUNT;
}

/* Offload metadata travels with the frame; make sure the receiver acting on
 * it cannot alter what was decided. */
static bool offload_ok(const struct cw_frame *f)
{
    if (f->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        uint32_t field = (uint32_t)f->csum_start + f->csum_offset;
        if (field < f->decided_end || field + 2u > f->frame_len)
            return false;
    }
    uint8_t base = f->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    switch (base) {
    case VIRTIO_NET_HDR_GSO_NONE:
        return (f->gso_type & VIRTIO_NET_HDR_GSO_ECN) == 0;
    case VIRTIO_NET_HDR_GSO_TCPV4:
    case VIRTIO_NET_HDR_GSO_TCPV6:
        return f->gso_size != 0 && f->l3_ok && !f->fragment && f->has_proto &&
               f->proto == CW_IPPROTO_TCP &&
               f->l3 == (base == VIRTIO_NET_HDR_GSO_TCPV4 ? CW_L3_IPV4 : CW_L3_IPV6);
    default:
        return false;
    }
}

/* May the frame from port i reach port j? Evaluated at most once per
 * destination domain per frame (the verdict cache), so counters count
 * decisions, not copies. *deny_line: the denying rule's line, or -1. */
static bool decide(struct cw_switch *sw, int from, int to, const struct cw_frame *f,
                   int *deny_line)
{
    if (from == to)
        return true;
    int r = cw_policy_first_match(&sw->policy, from, to, f);
    if (r >= 0) {
        sw->rule_matched[r]++;
        if (sw->policy.rules[r].action == CW_RULE_ALLOW)
            return true;
        *deny_line = (int)sw->policy.rules[r].line;
        return false;
    }
    sw->default_deny++;
    *deny_line = -1;
    return false;
}

static bool allowed(struct cw_switch *sw, unsigned i, unsigned j, const struct cw_frame *f,
                    int *deny_line)
{
    int from = sw->ports[i].cfg.domain, to = sw->ports[j].cfg.domain;
    if (from == to)
        return true;
    if (sw->verdict[to] >= 0)
        return sw->verdict[to] == 1; /* *deny_line kept from that evaluation */
    bool ok = decide(sw, from, to, f, deny_line);
    sw->verdict[to] = ok ? 1 : 0;
    return ok;
}

/* ---- destination lookup ---- */

/* The port for unicast dst sent from port `in`, or -1. */
static int lookup_dst(struct cw_switch *sw, struct cw_sw_port *in, const uint8_t dst[6])
{
    uint64_t key = cw_mac_key(dst) | 1ull << 48; /* bit 48: a valid entry */
    if (in->dst_cache_key == key)
        return in->dst_cache_port;
    int d = cw_fdb_static_port(&sw->fdb, dst);
    if (d >= 0) {
        in->dst_cache_key = key;
        in->dst_cache_port = (uint16_t)d;
        return d;
    }
    return cw_fdb_learned_port(&sw->fdb, dst, sw->now_ms);
}

/* ---- delivery ---- */

static void deliver(struct cw_switch *sw, unsigned j, const uint8_t *ring, uint32_t len,
                    uint32_t copied)
{
    struct cw_sw_port *out = &sw->ports[j];
    uint8_t *dst = out->ops->tx_reserve(out->ctx, len);
    if (!dst) {
        out->stats.drops[CW_SW_DROP_NO_ROOM]++;
        return;
    }
    /* Headers from the private copy (what was decided on), the rest from
     * the sender's ring, read once. */
    copy_prefix(dst, sw->hdr, copied);
    if (len > copied)
        __builtin_memcpy(dst + copied, ring + copied, len - copied);
    out->ops->tx_commit(out->ctx, len);
    out->tx_dirty = true;
    sw->tx_dirty_mask |= 1ull << j;
    out->stats.tx_frames++;
    out->stats.tx_bytes += len - CW_NET_META_LEN;
}

static void forward(struct cw_switch *sw, unsigned i, const uint8_t *ring, uint32_t len)
{
    struct cw_sw_port *in = &sw->ports[i];
    in->stats.rx_frames++;
    in->stats.rx_bytes += len > CW_NET_META_LEN ? len - CW_NET_META_LEN : 0;
    if (len < CW_NET_META_LEN + CW_NET_MIN_FRAME || len > CW_NET_META_LEN + CW_NET_MAX_FRAME) {
        drop(sw, i, CW_SW_DROP_BAD_FRAME, 0);
        return;
    }
    uint32_t copied = len < CW_FRAME_PREFIX ? len : CW_FRAME_PREFIX;
    copy_prefix(sw->hdr, ring, copied);
    COMPILER_BARRIER();
    /* num_buffers has no meaning on a port; receivers set their own. */
    sw->hdr[10] = sw->hdr[11] = 0;

    struct cw_frame f;
    cw_frame_parse(&f, sw->hdr, copied, len);
    enum cw_sw_drop why = check_source(sw, i, &f);
    if (why != CW_SW_DROP__COUNT) {
        drop(sw, i, why, &f);
        return;
    }
    if (!offload_ok(&f)) {
        drop(sw, i, CW_SW_DROP_BAD_OFFLOAD, &f);
        return;
    }
    if (!in->cfg.has_mac)
        cw_fdb_learn(&sw->fdb, f.src, (uint16_t)i, sw->now_ms);

    int deny_line = -1;
    if (!cw_mac_is_group(f.dst)) {
        int d = lookup_dst(sw, in, f.dst);
        if (d >= 0) {
            unsigned j = (unsigned)d;
            if (j == i) {
                in->stats.drops[CW_SW_DROP_SAME_PORT]++;
                return;
            }
            if (!sw->ports[j].ops) {
                /* Never flood a frame meant for a known port: it would reach
                 * ports it was not sent to. */
                sw->ports[j].stats.drops[CW_SW_DROP_PORT_DOWN]++;
                tell(sw, CW_SW_DROP_PORT_DOWN, i, (int)j, -1, &f);
                return;
            }
            /* One destination: the verdict cache has nothing to save, so
             * it is neither reset nor consulted (decide() evaluates the
             * policy directly; same domain allows without evaluating). */
            if (!decide(sw, sw->ports[i].cfg.domain, sw->ports[j].cfg.domain, &f,
                        &deny_line)) {
                in->stats.drops[CW_SW_DROP_POLICY]++;
                tell(sw, CW_SW_DROP_POLICY, i, (int)j, deny_line, &f);
                return;
            }
            deliver(sw, j, ring, len, copied);
            return;
        }
    }

    /* Unknown unicast, broadcast, multicast: every other up port the policy
     * allows. */
    __builtin_memset(sw->verdict, 0xff, sizeof(sw->verdict));
    bool denied = false;
    for (unsigned j = 0; j < CW_SW_MAX_PORTS; j++) {
        if (j == i || !sw->ports[j].ops)
            continue;
        if (allowed(sw, i, j, &f, &deny_line))
            deliver(sw, j, ring, len, copied);
        else
            denied = true;
    }
    if (denied) {
        in->stats.drops[CW_SW_DROP_POLICY]++;
        tell(sw, CW_SW_DROP_POLICY, i, -1, deny_line, &f);
    }
}

/* Up to `budget` frames from port i; true if it may have more. */
static bool serve(struct cw_switch *sw, unsigned i)
{
    struct cw_sw_port *p = &sw->ports[i];
    for (uint32_t n = 0; n < sw->budget; n++) {
        uint32_t len = 0;
        const uint8_t *frame = p->ops->rx_peek(p->ctx, &len);
        if (!frame)
            return false;
        forward(sw, i, frame, len);
        p->ops->rx_release(p->ctx);
    }
    return true;
}

bool cw_switch_round(struct cw_switch *sw, uint64_t *want, uint64_t now_ms)
{
    sw->now_ms = now_ms;
    uint64_t in = *want, more = 0;
    /* Visit only the wanted ports (set bits), in the order rr, rr+1, ...
     * wrapping: the bits at and above rr first, then those below. */
    unsigned rr = sw->rr % CW_SW_MAX_PORTS;
    uint64_t low = rr ? (1ull << rr) - 1u : 0;
    uint64_t parts[2] = { in & ~low, in & low };
    for (int h = 0; h < 2; h++) {
        for (uint64_t m = parts[h]; m; m &= m - 1u) {
            unsigned i = (unsigned)__builtin_ctzll(m);
            if (!sw->ports[i].ops)
                continue;
            if (serve(sw, i))
                more |= 1ull << i;
            sw->ports[i].ops->rx_flush(sw->ports[i].ctx);
        }
    }
    /* Next round starts one port later: under load no port is always the
     * first to find room in a shared destination. */
    sw->rr = (rr + 1u) % CW_SW_MAX_PORTS;
    /* Destinations written to this round: one flush (one signal at most)
     * each. */
    for (uint64_t m = sw->tx_dirty_mask; m; m &= m - 1u) {
        unsigned j = (unsigned)__builtin_ctzll(m);
        if (sw->ports[j].tx_dirty && sw->ports[j].ops)
            sw->ports[j].ops->tx_flush(sw->ports[j].ctx);
        sw->ports[j].tx_dirty = false;
    }
    sw->tx_dirty_mask = 0;
    *want = more;
    return more != 0;
}
