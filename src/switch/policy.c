/* First-match evaluation of the cross-domain rules (see policy.h). */
#include "policy.h"

static bool prefix4(const struct cw_ip4_prefix *p, uint32_t addr)
{
    if (p->len == 0)
        return true;
    if (p->len > 32)
        return false; /* a malformed prefix matches nothing */
    uint32_t mask = p->len == 32 ? 0xFFFFFFFFu : ~(0xFFFFFFFFu >> p->len);
    return (addr & mask) == (p->addr & mask);
}

static bool prefix6(const struct cw_ip6_prefix *p, const uint8_t addr[16])
{
    if (p->len > 128)
        return false;
    unsigned full = p->len / 8u, bits = p->len % 8u;
    for (unsigned i = 0; i < full; i++)
        if (addr[i] != p->addr[i])
            return false;
    if (bits) {
        uint8_t mask = (uint8_t)(0xFFu << (8u - bits));
        if ((addr[full] & mask) != (p->addr[full] & mask))
            return false;
    }
    return true;
}

static bool range_any(const struct cw_port_range *r)
{
    return r->lo == 0 && r->hi == 65535;
}

static bool in_range(const struct cw_port_range *r, uint16_t v)
{
    return v >= r->lo && v <= r->hi;
}

/* Match with the rule's own orientation (mirrored: src/dst swapped). */
static bool fields_match(const struct cw_policy_rule *r, const struct cw_frame *f, bool mirrored)
{
    if (r->ethertype != 0 && f->ethertype != r->ethertype)
        return false;

    bool want4 = r->has_src4 || r->has_dst4;
    bool want6 = r->has_src6 || r->has_dst6;
    bool want_ports = !range_any(&r->src_port) || !range_any(&r->dst_port);
    bool want_icmp = r->icmp_type >= 0;
    if (!(want4 || want6 || r->has_proto || want_ports || want_icmp))
        return true;

    /* Everything below reads the IP header: only an untagged, completely
     * parsed IPv4 or IPv6 header will do. */
    if (f->vlans != 0 || !f->l3_ok || (f->l3 != CW_L3_IPV4 && f->l3 != CW_L3_IPV6))
        return false;
    if ((want4 && f->l3 != CW_L3_IPV4) || (want6 && f->l3 != CW_L3_IPV6))
        return false;

    if (f->l3 == CW_L3_IPV4) {
        uint32_t s = mirrored ? f->dst4 : f->src4;
        uint32_t d = mirrored ? f->src4 : f->dst4;
        if (r->has_src4 && !prefix4(&r->src4, s))
            return false;
        if (r->has_dst4 && !prefix4(&r->dst4, d))
            return false;
    } else {
        const uint8_t *s = mirrored ? f->dst6 : f->src6;
        const uint8_t *d = mirrored ? f->src6 : f->dst6;
        if (r->has_src6 && !prefix6(&r->src6, s))
            return false;
        if (r->has_dst6 && !prefix6(&r->dst6, d))
            return false;
    }

    if (r->has_proto && (!f->has_proto || f->proto != r->ip_proto))
        return false;
    if (want_ports) {
        if (!f->has_ports)
            return false;
        uint16_t s = mirrored ? f->dport : f->sport;
        uint16_t d = mirrored ? f->sport : f->dport;
        if (!in_range(&r->src_port, s) || !in_range(&r->dst_port, d))
            return false;
    }
    if (want_icmp) {
        uint8_t icmp = f->l3 == CW_L3_IPV4 ? CW_IPPROTO_ICMP : CW_IPPROTO_ICMPV6;
        if (!f->has_icmp || f->proto != icmp || f->icmp_type != r->icmp_type)
            return false;
    }
    return true;
}

bool cw_rule_matches(const struct cw_policy_rule *r, int from, int to, const struct cw_frame *f)
{
    if (r->from_domain == from && r->to_domain == to && fields_match(r, f, false))
        return true;
    return r->both && r->from_domain == to && r->to_domain == from && fields_match(r, f, true);
}

int cw_policy_first_match(const struct cw_policy *p, int from, int to, const struct cw_frame *f)
{
    unsigned n = p->n_rules <= CW_POLICY_MAX_RULES ? p->n_rules : CW_POLICY_MAX_RULES;
    for (unsigned i = 0; i < n; i++)
        if (cw_rule_matches(&p->rules[i], from, to, f))
            return (int)i;
    return -1;
}
