/* JSON config and stats for the switch process (see switch_config.h). */
#define _GNU_SOURCE
#include "switch_config.h"

#include "../system/ip_prefix.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctx {
    char *err;
    size_t errlen;
    const struct cw_switch_names *names;
};

__attribute__((format(printf, 2, 3))) static int fail(struct ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Refuse keys outside `allowed` (NULL-terminated): a launcher bug shows up
 * here instead of as a silently ignored setting. */
static int only_keys(struct ctx *c, const json_t *obj, const char *what, const char *const *allowed)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = !strcmp(key, *a);
        if (!ok)
            return fail(c, "%s: unknown key '%.40s'", what, key);
    }
    return 0;
}

/* A string of 1..CW_SW_NAME_MAX bytes without control characters. */
static int get_name(struct ctx *c, const json_t *v, const char *what, char *out)
{
    if (!json_is_string(v))
        return fail(c, "%s: not a string", what);
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 || n > CW_SW_NAME_MAX)
        return fail(c, "%s: must be 1 to %u bytes", what, CW_SW_NAME_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return fail(c, "%s: control character in name", what);
    memcpy(out, s, n + 1);
    return 0;
}

/* An integer within [min, max]; absent or null gives def. */
static int get_int(struct ctx *c, const json_t *obj, const char *key, const char *what,
                   long long min, long long max, long long def, long long *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(v))
        return fail(c, "%s: '%s' is not an integer", what, key);
    long long x = json_integer_value(v);
    if (x < min || x > max)
        return fail(c, "%s: '%s' %lld out of range %lld..%lld", what, key, x, min, max);
    *out = x;
    return 0;
}

static int domain_index(struct ctx *c, const json_t *v, const char *what)
{
    if (!json_is_string(v))
        return fail(c, "%s: domain is not a string", what);
    const char *s = json_string_value(v);
    for (unsigned i = 0; i < c->names->n_domains; i++)
        if (!strcmp(s, c->names->domains[i]))
            return (int)i;
    return fail(c, "%s: unknown domain '%.40s'", what, s);
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Exactly "xx:xx:xx:xx:xx:xx" (hex digits, either case). */
static int parse_mac(const char *s, uint8_t mac[6])
{
    if (strlen(s) != 17)
        return -1;
    for (int i = 0; i < 6; i++) {
        int hi = hexval(s[i * 3]), lo = hexval(s[i * 3 + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && s[i * 3 + 2] != ':'))
            return -1;
        mac[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* ---- ports ---- */

static int parse_addrs(struct ctx *c, const json_t *port, const char *key, const char *what,
                       struct cw_sw_port_config *pc, bool v6)
{
    const json_t *arr = json_object_get(port, key);
    if (!arr || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return fail(c, "%s: '%s' is not an array", what, key);
    if (json_array_size(arr) > CW_SW_MAX_ADDRS)
        return fail(c, "%s: more than %u %s addresses", what, CW_SW_MAX_ADDRS, key);
    size_t i;
    const json_t *v;
    json_array_foreach((json_t *)arr, i, v) {
        if (!json_is_string(v))
            return fail(c, "%s: %s address is not a string", what, key);
        const char *s = json_string_value(v);
        if (v6) {
            struct cw_ip6_prefix p;
            if (cw_ip6_prefix_parse(s, false, &p) != CW_PREFIX_OK)
                return fail(c, "%s: bad IPv6 address '%.60s'", what, s);
            memcpy(pc->ipv6[pc->n_ipv6++], p.addr, 16);
        } else {
            struct cw_ip4_prefix p;
            if (cw_ip4_prefix_parse(s, false, &p) != CW_PREFIX_OK)
                return fail(c, "%s: bad IPv4 address '%.60s'", what, s);
            pc->ipv4[pc->n_ipv4++] = p.addr;
        }
    }
    return 0;
}

static int parse_port(struct ctx *c, const json_t *port, size_t index, unsigned *id_out,
                      struct cw_sw_port_config *pc)
{
    static const char *const keys[] = {"id", "name", "kind", "mac", "domain", "ipv4", "ipv6", NULL};
    char what[96];
    snprintf(what, sizeof(what), "ports[%zu]", index);
    if (!json_is_object(port))
        return fail(c, "%s: not an object", what);
    if (only_keys(c, port, what, keys) < 0)
        return -1;
    long long id = 0;
    if (!json_object_get(port, "id"))
        return fail(c, "%s: no 'id'", what);
    if (get_int(c, port, "id", what, 0, CW_SW_MAX_PORTS - 1, 0, &id) < 0)
        return -1;
    *id_out = (unsigned)id;
    memset(pc, 0, sizeof(*pc));
    if (get_name(c, json_object_get(port, "name"), what, pc->name) < 0)
        return -1;
    snprintf(what, sizeof(what), "port %lld (%s)", id, pc->name);

    const char *kind = json_string_value(json_object_get(port, "kind"));
    if (kind && !strcmp(kind, "nic"))
        pc->kind = CW_SW_NIC;
    else if (kind && !strcmp(kind, "uplink"))
        pc->kind = CW_SW_UPLINK;
    else
        return fail(c, "%s: 'kind' must be \"nic\" or \"uplink\"", what);

    const json_t *mac = json_object_get(port, "mac");
    if (mac && !json_is_null(mac)) {
        if (!json_is_string(mac) || parse_mac(json_string_value(mac), pc->mac) < 0)
            return fail(c, "%s: 'mac' is not like 52:54:00:00:00:01", what);
        if (cw_mac_is_group(pc->mac) || !(pc->mac[0] | pc->mac[1] | pc->mac[2] | pc->mac[3] |
                                           pc->mac[4] | pc->mac[5]))
            return fail(c, "%s: 'mac' must be a unicast address", what);
        pc->has_mac = true;
    } else if (pc->kind == CW_SW_NIC) {
        return fail(c, "%s: a NIC needs a 'mac'", what);
    }
    int d = domain_index(c, json_object_get(port, "domain"), what);
    if (d < 0)
        return -1;
    pc->domain = d;
    if (parse_addrs(c, port, "ipv4", what, pc, false) < 0 ||
        parse_addrs(c, port, "ipv6", what, pc, true) < 0)
        return -1;
    if (pc->kind == CW_SW_UPLINK && (pc->n_ipv4 || pc->n_ipv6))
        return fail(c, "%s: an uplink has no addresses to check", what);
    return 0;
}

/* ---- rules ---- */

static int parse_range(struct ctx *c, const json_t *rule, const char *key, const char *what,
                       struct cw_port_range *r)
{
    const json_t *v = json_object_get(rule, key);
    r->lo = 0;
    r->hi = 65535;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v) || json_array_size(v) != 2 ||
        !json_is_integer(json_array_get(v, 0)) || !json_is_integer(json_array_get(v, 1)))
        return fail(c, "%s: '%s' is not [lo, hi]", what, key);
    long long lo = json_integer_value(json_array_get(v, 0));
    long long hi = json_integer_value(json_array_get(v, 1));
    if (lo < 0 || hi > 65535 || lo > hi)
        return fail(c, "%s: '%s' [%lld, %lld] is not a range within 0..65535", what, key, lo, hi);
    r->lo = (uint16_t)lo;
    r->hi = (uint16_t)hi;
    return 0;
}

static int parse_prefix_field(struct ctx *c, const json_t *rule, const char *key,
                              const char *what, bool v6, bool *has, void *out)
{
    const json_t *v = json_object_get(rule, key);
    *has = false;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return fail(c, "%s: '%s' is not a string", what, key);
    enum cw_prefix_status rc = v6 ? cw_ip6_prefix_parse(json_string_value(v), false, out)
                                  : cw_ip4_prefix_parse(json_string_value(v), false, out);
    if (rc != CW_PREFIX_OK)
        return fail(c, "%s: '%s' is not an %s prefix", what, key, v6 ? "IPv6" : "IPv4");
    *has = true;
    return 0;
}

static int parse_rule(struct ctx *c, const json_t *rule, size_t index, struct cw_policy_rule *r)
{
    static const char *const keys[] = {"from", "to", "both", "action", "ethertype", "proto",
                                       "src4", "dst4", "src6", "dst6", "src_port", "dst_port",
                                       "icmp_type", "line", NULL};
    char what[64];
    snprintf(what, sizeof(what), "rules[%zu]", index);
    if (!json_is_object(rule))
        return fail(c, "%s: not an object", what);
    if (only_keys(c, rule, what, keys) < 0)
        return -1;
    memset(r, 0, sizeof(*r));
    long long v = 0;
    if (get_int(c, rule, "line", what, 0, 1 << 30, 0, &v) < 0)
        return -1;
    r->line = (unsigned)v;
    snprintf(what, sizeof(what), "rules[%zu] (line %u)", index, r->line);
    if ((r->from_domain = domain_index(c, json_object_get(rule, "from"), what)) < 0 ||
        (r->to_domain = domain_index(c, json_object_get(rule, "to"), what)) < 0)
        return -1;
    const json_t *both = json_object_get(rule, "both");
    if (both && !json_is_null(both) && !json_is_boolean(both))
        return fail(c, "%s: 'both' is not true or false", what);
    r->both = both && json_is_true(both);
    const char *action = json_string_value(json_object_get(rule, "action"));
    if (action && !strcmp(action, "allow"))
        r->action = CW_RULE_ALLOW;
    else if (action && !strcmp(action, "deny"))
        r->action = CW_RULE_DENY;
    else
        return fail(c, "%s: 'action' must be \"allow\" or \"deny\"", what);
    if (get_int(c, rule, "ethertype", what, 0, 65535, 0, &v) < 0)
        return -1;
    r->ethertype = (uint16_t)v;
    if (get_int(c, rule, "proto", what, -1, 255, -1, &v) < 0)
        return -1;
    r->has_proto = v >= 0;
    r->ip_proto = v >= 0 ? (uint8_t)v : 0;
    if (parse_prefix_field(c, rule, "src4", what, false, &r->has_src4, &r->src4) < 0 ||
        parse_prefix_field(c, rule, "dst4", what, false, &r->has_dst4, &r->dst4) < 0 ||
        parse_prefix_field(c, rule, "src6", what, true, &r->has_src6, &r->src6) < 0 ||
        parse_prefix_field(c, rule, "dst6", what, true, &r->has_dst6, &r->dst6) < 0)
        return -1;
    if ((r->has_src4 || r->has_dst4) && (r->has_src6 || r->has_dst6))
        return fail(c, "%s: IPv4 and IPv6 prefixes in one rule can never match", what);
    if (parse_range(c, rule, "src_port", what, &r->src_port) < 0 ||
        parse_range(c, rule, "dst_port", what, &r->dst_port) < 0)
        return -1;
    if (get_int(c, rule, "icmp_type", what, -1, 255, -1, &v) < 0)
        return -1;
    r->icmp_type = (int)v;
    return 0;
}

/* ---- the config message ---- */

int cw_switch_config_json(struct cw_switch *sw, struct cw_switch_names *names, const json_t *msg,
                          char *err, size_t errlen)
{
    static const char *const keys[] = {"op", "name", "domains", "ports", "rules", NULL};
    struct ctx c = {.err = err, .errlen = errlen, .names = names};
    if (only_keys(&c, msg, "config", keys) < 0)
        return -1;
    const json_t *name = json_object_get(msg, "name");
    if (name) {
        char n[CW_SW_NAME_MAX + 1];
        if (get_name(&c, name, "config name", n) < 0)
            return -1;
        if (names->name[0] && strcmp(n, names->name))
            return fail(&c, "config is for switch '%s', this is '%s'", n, names->name);
    }

    const json_t *domains = json_object_get(msg, "domains");
    if (!json_is_array(domains) || json_array_size(domains) > CW_SW_MAX_DOMAINS)
        return fail(&c, "config: 'domains' must be an array of at most %u names",
                    CW_SW_MAX_DOMAINS);
    names->n_domains = 0;
    size_t i;
    const json_t *v;
    json_array_foreach((json_t *)domains, i, v) {
        char what[32];
        snprintf(what, sizeof(what), "domains[%zu]", i);
        if (get_name(&c, v, what, names->domains[i]) < 0)
            return -1;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(names->domains[k], names->domains[i]))
                return fail(&c, "domains: '%s' listed twice", names->domains[i]);
        names->n_domains = (unsigned)i + 1;
    }

    /* Rules before ports: cw_switch_add_port checks domains against the
     * count cw_switch_set_policy records. */
    const json_t *rules = json_object_get(msg, "rules");
    if (rules && !json_is_null(rules) &&
        (!json_is_array(rules) || json_array_size(rules) > CW_POLICY_MAX_RULES))
        return fail(&c, "config: 'rules' must be an array of at most %u rules",
                    CW_POLICY_MAX_RULES);
    struct cw_policy *pol = calloc(1, sizeof(*pol));
    if (!pol)
        return fail(&c, "config: out of memory");
    int rc = -1;
    if (json_is_array(rules)) {
        json_array_foreach((json_t *)rules, i, v) {
            if (parse_rule(&c, v, i, &pol->rules[i]) < 0)
                goto out;
            pol->n_rules = (unsigned)i + 1;
        }
    }
    if (cw_switch_set_policy(sw, names->n_domains, pol) < 0) {
        fail(&c, "config: rules out of range");
        goto out;
    }

    const json_t *ports = json_object_get(msg, "ports");
    if (!json_is_array(ports) || json_array_size(ports) > CW_SW_MAX_PORTS) {
        fail(&c, "config: 'ports' must be an array of at most %u ports", CW_SW_MAX_PORTS);
        goto out;
    }
    json_array_foreach((json_t *)ports, i, v) {
        struct cw_sw_port_config pc;
        unsigned id = 0;
        if (parse_port(&c, v, i, &id, &pc) < 0)
            goto out;
        if (sw->ports[id].configured) {
            fail(&c, "port %u (%s): id used twice", id, pc.name);
            goto out;
        }
        if (pc.has_mac && cw_fdb_static_port(&sw->fdb, pc.mac) >= 0) {
            fail(&c, "port %u (%s): MAC already belongs to another port", id, pc.name);
            goto out;
        }
        if (cw_switch_add_port(sw, id, &pc) < 0) {
            fail(&c, "port %u (%s): refused", id, pc.name);
            goto out;
        }
    }
    rc = 0;
out:
    free(pol);
    return rc;
}

/* ---- stats ---- */

static json_t *port_json(const struct cw_switch *sw, const struct cw_switch_names *names,
                         unsigned id)
{
    const struct cw_sw_port *p = &sw->ports[id];
    json_t *drops = json_object();
    for (int d = 0; d < CW_SW_DROP__COUNT; d++)
        json_object_set_new(drops, cw_sw_drop_name((enum cw_sw_drop)d),
                            json_integer((json_int_t)p->stats.drops[d]));
    const char *domain = (unsigned)p->cfg.domain < names->n_domains
                             ? names->domains[p->cfg.domain] : "?";
    return json_pack("{s:i, s:s, s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:o}", "id", (int)id, "name",
                     p->cfg.name, "kind", p->cfg.kind == CW_SW_NIC ? "nic" : "uplink", "domain",
                     domain, "up", cw_switch_port_is_up(sw, id), "rx_frames",
                     (json_int_t)p->stats.rx_frames, "rx_bytes", (json_int_t)p->stats.rx_bytes,
                     "tx_frames", (json_int_t)p->stats.tx_frames, "tx_bytes",
                     (json_int_t)p->stats.tx_bytes, "drops", drops);
}

json_t *cw_switch_stats_json(const struct cw_switch *sw, const struct cw_switch_names *names,
                             uint64_t now_ms)
{
    json_t *ports = json_array();
    json_t *rules = json_array();
    for (unsigned id = 0; id < CW_SW_MAX_PORTS; id++)
        if (sw->ports[id].configured)
            json_array_append_new(ports, port_json(sw, names, id));
    for (unsigned r = 0; r < sw->policy.n_rules; r++)
        json_array_append_new(rules, json_pack("{s:i, s:I}", "line", (int)sw->policy.rules[r].line,
                                               "matched", (json_int_t)sw->rule_matched[r]));
    json_t *fdb = json_pack("{s:i, s:i, s:I, s:I, s:I}", "static", (int)sw->fdb.n_static,
                            "learned", (int)cw_fdb_learned_count(&sw->fdb, now_ms),
                            "learned_total", (json_int_t)sw->fdb.stats.learned, "moved",
                            (json_int_t)sw->fdb.stats.moved, "evicted",
                            (json_int_t)sw->fdb.stats.evicted);
    return json_pack("{s:s, s:s, s:o, s:o, s:I, s:o}", "op", "stats", "name", names->name,
                     "ports", ports, "rules", rules, "default_deny",
                     (json_int_t)sw->default_deny, "fdb", fdb);
}
