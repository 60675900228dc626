#include "policy_parse.h"

#include <stdio.h>
#include <string.h>

#include "ip_prefix.h"

#define PROTO_ICMP 1
#define PROTO_TCP 6
#define PROTO_UDP 17
#define PROTO_ICMPV6 58

const char *cw_rule_action_name(enum cw_rule_action a)
{
    return a == CW_RULE_ALLOW ? "allow" : "deny";
}

static const char *proto_name(unsigned p, char buf[8])
{
    switch (p) {
    case PROTO_ICMP: return "icmp";
    case PROTO_TCP: return "tcp";
    case PROTO_UDP: return "udp";
    case PROTO_ICMPV6: return "icmpv6";
    }
    snprintf(buf, 8, "%u", p);
    return buf;
}

/* What one rule says so far about the frames it can match: a rule is
 * checked field by field in a fixed order (ethertype, proto, src, dst,
 * ports, icmp_type), and a field that contradicts an earlier one is the
 * one reported. */
struct rule_ctx {
    const struct cw_jctx *c;
    struct cw_policy_rule *r;
    int family;       /* 0 not yet known, 4 or 6 */
    char why[80];     /* which field fixed the family, for messages */
    bool non_ip;      /* ethertype names something other than IPv4/IPv6 */
    char ethertype_text[24];
};

static int domain_ref(const struct cw_jctx *c, struct cw_jv v,
                      const char (*domains)[CW_SYS_NAME_MAX + 1], unsigned n_domains, int *out)
{
    char name[CW_SYS_NAME_MAX + 1];
    if (cw_jname(c, v, "domain", name))
        return -1;
    for (unsigned i = 0; i < n_domains; i++) {
        if (!strcmp(domains[i], name)) {
            *out = (int)i;
            return 0;
        }
    }
    char list[160] = "";
    size_t used = 0;
    for (unsigned i = 0; i < n_domains; i++) {
        size_t need = strlen(domains[i]) + 2;
        if (used + need + 5 >= sizeof(list)) {
            strcpy(list + used, ", ...");
            break;
        }
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                                 domains[i]);
    }
    if (!n_domains)
        return cw_jfail(c, v.n, false, "no NIC or uplink is in domain \"%s\" (there are no domains)",
                        name);
    return cw_jfail(c, v.n, false, "no NIC or uplink is in domain \"%s\" (domains: %s)", name, list);
}

static int parse_ethertype(struct rule_ctx *x, struct cw_jv v)
{
    const struct cw_jctx *c = x->c;
    uint16_t et;
    if (json_is_string(v.v)) {
        const char *s = json_string_value(v.v);
        if (!strcmp(s, "ipv4"))
            et = CW_ETHERTYPE_IPV4;
        else if (!strcmp(s, "ipv6"))
            et = CW_ETHERTYPE_IPV6;
        else if (!strcmp(s, "arp"))
            et = CW_ETHERTYPE_ARP;
        else {
            char shown[40];
            return cw_jfail(c, v.n, false,
                            "unknown ethertype \"%s\" (expected \"ipv4\", \"ipv6\", \"arp\" or a "
                            "number 1536-65535)",
                            cw_jshow(s, json_string_length(v.v), shown, sizeof(shown)));
        }
        snprintf(x->ethertype_text, sizeof(x->ethertype_text), "%s", s);
    } else if (json_is_integer(v.v)) {
        json_int_t n = json_integer_value(v.v);
        /* Below 1536 the field is an 802.3 length, not a type. */
        if (n < 1536 || n > 65535)
            return cw_jfail(c, v.n, false,
                            "ethertype %lld is out of range 1536..65535 (0x0600..0xffff)",
                            (long long)n);
        et = (uint16_t)n;
        snprintf(x->ethertype_text, sizeof(x->ethertype_text), "0x%04x", (unsigned)et);
    } else {
        return cw_jfail(c, v.n, false,
                        "expected an ethertype (\"ipv4\", \"ipv6\", \"arp\" or a number), got %s",
                        cw_jtype_name(v.v));
    }
    x->r->ethertype = et;
    if (et == CW_ETHERTYPE_IPV4 || et == CW_ETHERTYPE_IPV6) {
        x->family = et == CW_ETHERTYPE_IPV4 ? 4 : 6;
        snprintf(x->why, sizeof(x->why), "ethertype is %s", x->ethertype_text);
    } else {
        x->non_ip = true;
    }
    return 0;
}

static int parse_proto(struct rule_ctx *x, struct cw_jv v)
{
    const struct cw_jctx *c = x->c;
    int p;
    char text[24];
    if (json_is_string(v.v)) {
        const char *s = json_string_value(v.v);
        if (!strcmp(s, "tcp"))
            p = PROTO_TCP;
        else if (!strcmp(s, "udp"))
            p = PROTO_UDP;
        else if (!strcmp(s, "icmp"))
            p = PROTO_ICMP;
        else if (!strcmp(s, "icmpv6"))
            p = PROTO_ICMPV6;
        else {
            char shown[40];
            return cw_jfail(c, v.n, false,
                            "unknown proto \"%s\" (expected \"tcp\", \"udp\", \"icmp\", \"icmpv6\" "
                            "or a protocol number 0-255)",
                            cw_jshow(s, json_string_length(v.v), shown, sizeof(shown)));
        }
        snprintf(text, sizeof(text), "%s", s);
    } else if (json_is_integer(v.v)) {
        json_int_t n = json_integer_value(v.v);
        if (n < 0 || n > 255)
            return cw_jfail(c, v.n, false, "proto %lld is out of range 0..255", (long long)n);
        p = (int)n;
        snprintf(text, sizeof(text), "%d", p);
    } else {
        return cw_jfail(c, v.n, false,
                        "expected a proto (\"tcp\", \"udp\", \"icmp\", \"icmpv6\" or a number), "
                        "got %s",
                        cw_jtype_name(v.v));
    }
    if (x->non_ip)
        return cw_jfail(c, v.n, false, "proto %s needs an IP ethertype, but ethertype is %s", text,
                        x->ethertype_text);
    if (p == PROTO_ICMP && x->family == 6)
        return cw_jfail(c, v.n, false, "proto %s is ICMP for IPv4, but %s (use \"icmpv6\")", text,
                        x->why);
    if (p == PROTO_ICMPV6 && x->family == 4)
        return cw_jfail(c, v.n, false, "proto %s is ICMP for IPv6, but %s (use \"icmp\")", text,
                        x->why);
    if (p == PROTO_ICMP || p == PROTO_ICMPV6) {
        x->family = p == PROTO_ICMP ? 4 : 6;
        snprintf(x->why, sizeof(x->why), "proto is %s", text);
    }
    x->r->has_proto = true;
    x->r->ip_proto = (uint8_t)p;
    return 0;
}

static int parse_addr(struct rule_ctx *x, struct cw_jv v, const char *field)
{
    const struct cw_jctx *c = x->c;
    const char *s;
    if (cw_jstring(c, v, &s))
        return -1;
    char shown[64];
    cw_jshow(s, json_string_length(v.v), shown, sizeof(shown));
    if (x->non_ip)
        return cw_jfail(c, v.n, false,
                        "%s needs an IP ethertype, but ethertype is %s (ARP and other frames are "
                        "matched by ethertype alone)",
                        field, x->ethertype_text);
    bool six = strchr(s, ':') != NULL;
    enum cw_prefix_status st;
    struct cw_ip4_prefix p4 = { 0 };
    struct cw_ip6_prefix p6 = { { 0 }, 0 };
    if (six)
        st = cw_ip6_prefix_parse(s, false, &p6);
    else
        st = cw_ip4_prefix_parse(s, false, &p4);
    if (st == CW_PREFIX_BAD_ADDR)
        return cw_jfail(c, v.n, false,
                        "\"%s\" is not an IPv4 or IPv6 prefix (like \"10.99.0.0/24\" or "
                        "\"fd00::/64\")",
                        shown);
    if (st != CW_PREFIX_OK)
        return cw_jfail(c, v.n, false, "\"%s\": prefix length must be 0..%d", shown, six ? 128 : 32);
    if (six ? cw_ip6_prefix_has_host_bits(&p6) : cw_ip4_prefix_has_host_bits(&p4)) {
        char net[CW_IP6_PREFIX_STRLEN];
        if (six) {
            for (unsigned bit = p6.len; bit < 128; bit++)
                p6.addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
            cw_ip6_prefix_format(&p6, net, sizeof(net));
        } else {
            p4.addr &= p4.len ? ~(uint32_t)0 << (32 - p4.len) : 0;
            cw_ip4_prefix_format(&p4, net, sizeof(net));
        }
        return cw_jfail(c, v.n, false, "%s \"%s\" has host bits set (did you mean \"%s\"?)", field,
                        shown, net);
    }
    int fam = six ? 6 : 4;
    if (x->family && x->family != fam)
        return cw_jfail(c, v.n, false, "%s \"%s\" is an IPv%d prefix, but %s", field, shown, fam,
                        x->why);
    if (!x->family) {
        x->family = fam;
        snprintf(x->why, sizeof(x->why), "%s is IPv%d", field, fam);
    }
    bool src = !strcmp(field, "src");
    if (six) {
        *(src ? &x->r->src6 : &x->r->dst6) = p6;
        *(src ? &x->r->has_src6 : &x->r->has_dst6) = true;
    } else {
        *(src ? &x->r->src4 : &x->r->dst4) = p4;
        *(src ? &x->r->has_src4 : &x->r->has_dst4) = true;
    }
    return 0;
}

/* "N" or "LO-HI": decimal, no signs or spaces, 0..65535. */
static int port_number(const char **p, unsigned *out)
{
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return -1;
    unsigned v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (unsigned)(*s++ - '0');
        if (v > 65535)
            return -1;
    }
    *out = v;
    *p = s;
    return 0;
}

static int parse_port(struct rule_ctx *x, struct cw_jv v, const char *field,
                      struct cw_port_range *out)
{
    const struct cw_jctx *c = x->c;
    if (!x->r->has_proto)
        return cw_jfail(c, v.n, false, "%s needs \"proto\": \"tcp\" or \"udp\"", field);
    char pn[8];
    if (x->r->ip_proto != PROTO_TCP && x->r->ip_proto != PROTO_UDP)
        return cw_jfail(c, v.n, false, "%s does not apply to proto %s (only tcp and udp have ports)",
                        field, proto_name(x->r->ip_proto, pn));
    unsigned lo, hi;
    if (json_is_integer(v.v)) {
        json_int_t n = json_integer_value(v.v);
        if (n < 0 || n > 65535)
            return cw_jfail(c, v.n, false, "port %lld is out of range 0..65535", (long long)n);
        lo = hi = (unsigned)n;
    } else if (json_is_string(v.v)) {
        const char *s = json_string_value(v.v), *p = s;
        char shown[40];
        cw_jshow(s, json_string_length(v.v), shown, sizeof(shown));
        bool ok = port_number(&p, &lo) == 0;
        hi = lo;
        if (ok && *p == '-') {
            p++;
            ok = port_number(&p, &hi) == 0;
        }
        if (!ok || *p)
            return cw_jfail(c, v.n, false,
                            "\"%s\" is not a port or port range (a number 0-65535 or \"LO-HI\")",
                            shown);
        if (lo > hi)
            return cw_jfail(c, v.n, false, "port range \"%s\" is empty (%u > %u)", shown, lo, hi);
    } else {
        return cw_jfail(c, v.n, false, "expected a port (a number or \"LO-HI\"), got %s",
                        cw_jtype_name(v.v));
    }
    out->lo = (uint16_t)lo;
    out->hi = (uint16_t)hi;
    return 0;
}

static int parse_rule(const struct cw_jctx *c, struct cw_jv rv,
                      const char (*domains)[CW_SYS_NAME_MAX + 1], unsigned n_domains,
                      struct cw_policy_rule *r)
{
    static const char *const keys[] = { "from",  "to",  "action",   "both",     "ethertype", "proto",
                                         "src",   "dst", "src_port", "dst_port", "icmp_type", NULL };
    if (cw_jobject(c, rv) || cw_jcheck_keys(c, rv, keys))
        return -1;
    memset(r, 0, sizeof(*r));
    r->src_port = r->dst_port = (struct cw_port_range){ 0, 65535 };
    r->icmp_type = -1;
    r->line = rv.n->pos.line;

    struct cw_jv from, to, action, v;
    if (cw_jget(c, rv, "from", true, &from) < 0 || cw_jget(c, rv, "to", true, &to) < 0 ||
        cw_jget(c, rv, "action", true, &action) < 0)
        return -1;
    if (domain_ref(c, from, domains, n_domains, &r->from_domain) ||
        domain_ref(c, to, domains, n_domains, &r->to_domain))
        return -1;
    if (r->from_domain == r->to_domain)
        return cw_jfail(c, to.n, false,
                        "from and to are both \"%s\": a rule is between two domains (inside a "
                        "domain everything is allowed)",
                        domains[r->to_domain]);
    const char *a;
    if (cw_jstring(c, action, &a))
        return -1;
    if (!strcmp(a, "allow"))
        r->action = CW_RULE_ALLOW;
    else if (!strcmp(a, "deny"))
        r->action = CW_RULE_DENY;
    else {
        char shown[40];
        return cw_jfail(c, action.n, false, "action \"%s\" is neither \"allow\" nor \"deny\"",
                        cw_jshow(a, json_string_length(action.v), shown, sizeof(shown)));
    }
    int got;
    if ((got = cw_jget(c, rv, "both", false, &v)) < 0 || (got && cw_jbool(c, v, &r->both)))
        return -1;

    struct rule_ctx x = { .c = c, .r = r };
    if ((got = cw_jget(c, rv, "ethertype", false, &v)) && parse_ethertype(&x, v))
        return -1;
    if ((got = cw_jget(c, rv, "proto", false, &v)) && parse_proto(&x, v))
        return -1;
    if ((got = cw_jget(c, rv, "src", false, &v)) && parse_addr(&x, v, "src"))
        return -1;
    if ((got = cw_jget(c, rv, "dst", false, &v)) && parse_addr(&x, v, "dst"))
        return -1;
    if ((got = cw_jget(c, rv, "src_port", false, &v)) && parse_port(&x, v, "src_port", &r->src_port))
        return -1;
    if ((got = cw_jget(c, rv, "dst_port", false, &v)) && parse_port(&x, v, "dst_port", &r->dst_port))
        return -1;
    if ((got = cw_jget(c, rv, "icmp_type", false, &v))) {
        char pn[8];
        if (!r->has_proto)
            return cw_jfail(c, v.n, false, "icmp_type needs \"proto\": \"icmp\" or \"icmpv6\"");
        if (r->ip_proto != PROTO_ICMP && r->ip_proto != PROTO_ICMPV6)
            return cw_jfail(c, v.n, false, "icmp_type does not apply to proto %s (only icmp and icmpv6)",
                            proto_name(r->ip_proto, pn));
        int64_t t;
        if (cw_jint(c, v, 0, 255, &t))
            return -1;
        r->icmp_type = (int)t;
    }
    /* Make the family explicit so the switch matches on what the rule
     * means, not on which optional fields happen to be set. */
    if (!r->ethertype && x.family)
        r->ethertype = x.family == 4 ? CW_ETHERTYPE_IPV4 : CW_ETHERTYPE_IPV6;
    return 0;
}

int cw_policy_parse(const struct cw_jctx *c, struct cw_jv policy,
                    const char (*domains)[CW_SYS_NAME_MAX + 1], unsigned n_domains,
                    struct cw_policy *out)
{
    static const char *const keys[] = { "rules", NULL };
    memset(out, 0, sizeof(*out));
    if (cw_jobject(c, policy) || cw_jcheck_keys(c, policy, keys))
        return -1;
    struct cw_jv rules;
    int got = cw_jget(c, policy, "rules", false, &rules);
    if (got <= 0)
        return got;
    if (cw_jarray(c, rules))
        return -1;
    size_t n = json_array_size(rules.v);
    for (size_t i = 0; i < n; i++) {
        struct cw_jv rv = cw_jelem(c, rules, i);
        if (i >= CW_POLICY_MAX_RULES)
            return cw_jfail(c, rv.n, false, "more than %d rules", CW_POLICY_MAX_RULES);
        if (parse_rule(c, rv, domains, n_domains, &out->rules[i]))
            return -1;
        out->n_rules = (unsigned)i + 1;
    }
    return 0;
}
