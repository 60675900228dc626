/* Cross-domain policy evaluation (rules: src/system/policy_rule.h).
 *
 * Frames inside one domain are the switch's business, not this file's: it is
 * asked only about frames from one domain to another, and answers with the
 * first rule that matches, or none (default deny, counted by the caller).
 *
 * A rule matches a frame from domain A to domain B when
 *  - it reads "from A to B" (forward), or it has `both` and reads "from B to
 *    A" (mirrored: then its source and destination prefixes and port ranges
 *    are swapped, so one rule for a request also covers the replies);
 *  - every field it sets matches: ethertype (the outermost one); proto,
 *    addresses, ports and ICMP type require an untagged IPv4/IPv6 frame whose
 *    header the switch parsed completely (an address prefix also fixes the
 *    family); ports require a TCP/UDP/SCTP/UDP-Lite header with its ports
 *    (never a non-first fragment); icmp_type requires ICMP (IPv4) or ICMPv6.
 *    A field the frame does not carry never matches: unknown fails closed.
 * Port ranges: {0, 65535} means any (as policy_rule.h says); anything else,
 * including {0, 0}, is a real range.
 *
 * Portable: no OS calls, no allocation. */
#ifndef CAUSEWAY_SWITCH_POLICY_H
#define CAUSEWAY_SWITCH_POLICY_H

#include <stdbool.h>

#include "../system/policy_rule.h"
#include "frame.h"

/* Does one rule match a frame from domain `from` to domain `to`? */
bool cw_rule_matches(const struct cw_policy_rule *r, int from, int to, const struct cw_frame *f);

/* Index of the first matching rule, or -1 when none matches. */
int cw_policy_first_match(const struct cw_policy *p, int from, int to, const struct cw_frame *f);

#endif
