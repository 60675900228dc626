/* The "policy" section of a system description -> struct cw_policy.
 *
 * {"rules": [{"from": DOMAIN, "to": DOMAIN, "action": "allow"|"deny",
 *             "both": false, "ethertype": "ipv4"|"ipv6"|"arp"|1536..65535,
 *             "proto": "tcp"|"udp"|"icmp"|"icmpv6"|0..255,
 *             "src": PREFIX, "dst": PREFIX,           IPv4 or IPv6, "/LEN" optional
 *             "src_port": N|"LO-HI", "dst_port": N|"LO-HI",   tcp/udp only
 *             "icmp_type": 0..255}]}                   icmp/icmpv6 only
 *
 * What the loader guarantees about each rule it returns (so the switch needs
 * no second validation of the description, only of its own input):
 *  - from_domain != to_domain, both valid indexes into the given domains;
 *  - ethertype is filled in when proto or addresses imply a family
 *    (icmp/IPv4 prefix -> 0x0800, icmpv6/IPv6 prefix -> 0x86DD); it stays 0
 *    ("any IP frame of that proto") for a tcp/udp/number proto alone, and
 *    0 with no proto means "any frame";
 *  - prefixes have no host bits set (a rule's "10.1.2.3/24" is an error);
 *  - ports are set only with proto 6 or 17 (else 0-65535), icmp_type only
 *    with proto 1 or 58 (else -1); there are no contradictions left (IPv4
 *    and IPv6 in one rule, proto with a non-IP ethertype, ...). */
#ifndef CAUSEWAY_SYSTEM_POLICY_PARSE_H
#define CAUSEWAY_SYSTEM_POLICY_PARSE_H

#include "description.h"
#include "json_fields.h"
#include "policy_rule.h"

#define CW_ETHERTYPE_IPV4 0x0800
#define CW_ETHERTYPE_ARP 0x0806
#define CW_ETHERTYPE_IPV6 0x86DD

/* 0, or -1 with the error written through c. domains are the system's
 * domain names, rules name them by string and get their index. */
int cw_policy_parse(const struct cw_jctx *c, struct cw_jv policy,
                    const char (*domains)[CW_SYS_NAME_MAX + 1], unsigned n_domains,
                    struct cw_policy *out);

/* "allow" / "deny". */
const char *cw_rule_action_name(enum cw_rule_action a);

#endif
