/* A switch's port plan and config message: see switch_msg.h. */
#include "switch_msg.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

int cw_switch_plan(const struct cw_system *sys, unsigned sw, struct cw_switch_plan *plan)
{
    plan->n_ports = 0;
    for (unsigned v = 0; v < sys->n_vms; v++) {
        for (unsigned i = 0; i < sys->vms[v].n_nics; i++) {
            if (sys->vms[v].nics[i].switch_index != (int)sw)
                continue;
            if (plan->n_ports == CW_SYS_MAX_PORTS)
                return -1;
            plan->port[plan->n_ports++] = (struct cw_switch_port_ref){(int)v, (int)i, -1};
        }
    }
    for (unsigned u = 0; u < sys->n_uplinks; u++) {
        if (sys->uplinks[u].switch_index != (int)sw)
            continue;
        if (plan->n_ports == CW_SYS_MAX_PORTS)
            return -1;
        plan->port[plan->n_ports++] = (struct cw_switch_port_ref){-1, -1, (int)u};
    }
    return 0;
}

int cw_switch_plan_find_nic(const struct cw_switch_plan *plan, int vm, int nic)
{
    for (unsigned k = 0; k < plan->n_ports; k++)
        if (plan->port[k].vm == vm && plan->port[k].nic == nic)
            return (int)k;
    return -1;
}

void cw_format_mac(const uint8_t mac[6], char buf[18])
{
    snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
             mac[5]);
}

static json_t *ip4(const struct cw_ip4_prefix *p)
{
    uint32_t be = htonl(p->addr);
    char a[INET_ADDRSTRLEN], s[INET_ADDRSTRLEN + 4];
    inet_ntop(AF_INET, &be, a, sizeof(a));
    snprintf(s, sizeof(s), "%s/%u", a, p->len);
    return json_string(s);
}

static json_t *ip6(const struct cw_ip6_prefix *p)
{
    char a[INET6_ADDRSTRLEN], s[INET6_ADDRSTRLEN + 5];
    inet_ntop(AF_INET6, p->addr, a, sizeof(a));
    snprintf(s, sizeof(s), "%s/%u", a, p->len);
    return json_string(s);
}

static const char *domain_name(const struct cw_system *sys, int d)
{
    return d >= 0 && (unsigned)d < sys->n_domains ? sys->domains[d] : "";
}

static json_t *nic_port(const struct cw_system *sys, unsigned id, int v, int i)
{
    const struct cw_sys_vm *vm = &sys->vms[v];
    const struct cw_sys_nic *n = &vm->nics[i];
    char name[CW_SYS_NAME_MAX + 8], mac[18];
    snprintf(name, sizeof(name), "%s/nic%d", vm->name, i);
    cw_format_mac(n->mac, mac);
    json_t *v4 = json_array(), *v6 = json_array();
    for (unsigned k = 0; k < n->n_ipv4 && k < CW_SYS_MAX_ADDRS; k++)
        json_array_append_new(v4, ip4(&n->ipv4[k]));
    for (unsigned k = 0; k < n->n_ipv6 && k < CW_SYS_MAX_ADDRS; k++)
        json_array_append_new(v6, ip6(&n->ipv6[k]));
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:o}", "id", (json_int_t)id, "name", name,
                     "kind", "nic", "mac", mac, "domain", domain_name(sys, n->domain_index),
                     "ipv4", v4, "ipv6", v6);
}

static json_t *uplink_port(const struct cw_system *sys, unsigned id, int u)
{
    const struct cw_sys_uplink *up = &sys->uplinks[u];
    char name[40], mac[18];
    snprintf(name, sizeof(name), "uplink/%.16s", up->tap);
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:[], s:[]}", "id", (json_int_t)id, "name", name,
                          "kind", "uplink", "domain", domain_name(sys, up->domain_index),
                          "ipv4", "ipv6");
    static const uint8_t zero[6];
    if (o && memcmp(up->mac, zero, 6)) {
        cw_format_mac(up->mac, mac);
        json_object_set_new(o, "mac", json_string(mac));
    }
    return o;
}

static json_t *rule(const struct cw_system *sys, const struct cw_policy_rule *r)
{
    json_t *o = json_pack("{s:s, s:s, s:b, s:s, s:I}", "from", domain_name(sys, r->from_domain),
                          "to", domain_name(sys, r->to_domain), "both", r->both, "action",
                          r->action == CW_RULE_ALLOW ? "allow" : "deny", "line",
                          (json_int_t)r->line);
    if (!o)
        return NULL;
    if (r->ethertype)
        json_object_set_new(o, "ethertype", json_integer(r->ethertype));
    if (r->has_proto)
        json_object_set_new(o, "proto", json_integer(r->ip_proto));
    if (r->has_src4)
        json_object_set_new(o, "src4", ip4(&r->src4));
    if (r->has_dst4)
        json_object_set_new(o, "dst4", ip4(&r->dst4));
    if (r->has_src6)
        json_object_set_new(o, "src6", ip6(&r->src6));
    if (r->has_dst6)
        json_object_set_new(o, "dst6", ip6(&r->dst6));
    if (r->src_port.lo != 0 || r->src_port.hi != 65535)
        json_object_set_new(o, "src_port", json_pack("[i,i]", r->src_port.lo, r->src_port.hi));
    if (r->dst_port.lo != 0 || r->dst_port.hi != 65535)
        json_object_set_new(o, "dst_port", json_pack("[i,i]", r->dst_port.lo, r->dst_port.hi));
    if (r->icmp_type >= 0)
        json_object_set_new(o, "icmp_type", json_integer(r->icmp_type));
    return o;
}

json_t *cw_switch_config_msg(const struct cw_system *sys, unsigned sw,
                             const struct cw_switch_plan *plan)
{
    json_t *domains = json_array(), *ports = json_array(), *rules = json_array();
    json_t *msg = json_pack("{s:s, s:s, s:o, s:o, s:o}", "op", "config", "name",
                            sys->switches[sw].name, "domains", domains, "ports", ports, "rules",
                            rules);
    if (!msg)
        return NULL;
    for (unsigned d = 0; d < sys->n_domains; d++)
        json_array_append_new(domains, json_string(sys->domains[d]));
    for (unsigned k = 0; k < plan->n_ports; k++) {
        const struct cw_switch_port_ref *p = &plan->port[k];
        json_t *o = p->uplink >= 0 ? uplink_port(sys, k, p->uplink) : nic_port(sys, k, p->vm, p->nic);
        if (!o || json_array_append_new(ports, o) < 0) {
            json_decref(msg);
            return NULL;
        }
    }
    for (unsigned i = 0; i < sys->policy.n_rules && i < CW_POLICY_MAX_RULES; i++) {
        json_t *o = rule(sys, &sys->policy.rules[i]);
        if (!o || json_array_append_new(rules, o) < 0) {
            json_decref(msg);
            return NULL;
        }
    }
    return msg;
}
