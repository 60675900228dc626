/* Cross-domain policy rules as loaded from the system description and
 * evaluated by the switch. Portable: plain data, no OS calls.
 *
 * Every port (a VM's NIC or an uplink) belongs to one domain. Inside a domain
 * everything is allowed; across domains the default is deny. A rule allows
 * (or denies) frames from one domain to another that match all of its set
 * fields; a rule is one-way unless `both` is set (then it also matches frames
 * from `to` to `from` with its source and destination fields swapped). The
 * first matching rule wins. ARP and IPv6 neighbour discovery get no implicit
 * pass: a cross-domain flow that must work with no frame going back uses
 * static neighbour entries (see docs/POLICY.md, the language reference).
 *
 * As loaded by cw_system_load (policy_parse.h): from != to; ethertype is set
 * whenever proto or an address fixes the IP version; prefixes have no host
 * bits; ports only with proto 6/17, icmp_type only with proto 1/58. */
#ifndef CAUSEWAY_SYSTEM_POLICY_RULE_H
#define CAUSEWAY_SYSTEM_POLICY_RULE_H

#include <stdbool.h>
#include <stdint.h>

#define CW_POLICY_MAX_RULES 256

struct cw_ip4_prefix {
    uint32_t addr; /* host byte order */
    uint8_t len;
};

struct cw_ip6_prefix {
    uint8_t addr[16];
    uint8_t len;
};

struct cw_port_range {
    uint16_t lo, hi; /* inclusive; 0-65535 means any */
};

enum cw_rule_action { CW_RULE_DENY = 0, CW_RULE_ALLOW = 1 };

struct cw_policy_rule {
    int from_domain, to_domain; /* domain indexes */
    bool both;                  /* also matches to -> from */
    enum cw_rule_action action;
    uint16_t ethertype;         /* 0: any; proto/addresses imply IPv4 or IPv6 */
    bool has_proto;
    uint8_t ip_proto;           /* 1 icmp, 6 tcp, 17 udp, 58 ipv6-icmp */
    bool has_src4, has_dst4, has_src6, has_dst6;
    struct cw_ip4_prefix src4, dst4;
    struct cw_ip6_prefix src6, dst6;
    struct cw_port_range src_port, dst_port; /* tcp/udp only */
    int icmp_type;              /* -1: any */
    unsigned line;              /* where the rule stands in the file, for logs */
};

struct cw_policy {
    unsigned n_rules;
    struct cw_policy_rule rules[CW_POLICY_MAX_RULES];
};

#endif
