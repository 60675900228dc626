/* IPv4 and IPv6 prefixes as text ("10.99.0.1/24", "fd00::/64"): parsing and
 * formatting, shared by the description loader, the launcher (which sends
 * them to the switch as text) and the switch (which reads them back). */
#ifndef CAUSEWAY_SYSTEM_IP_PREFIX_H
#define CAUSEWAY_SYSTEM_IP_PREFIX_H

#include <stdbool.h>
#include <stddef.h>

#include "policy_rule.h"

/* Room for the longest text each format writes, terminator included. */
#define CW_IP4_PREFIX_STRLEN sizeof("255.255.255.255/32")
#define CW_IP6_PREFIX_STRLEN sizeof("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128")

enum cw_prefix_status {
    CW_PREFIX_OK = 0,
    CW_PREFIX_BAD_ADDR = -1, /* the address part is not an address of the family */
    CW_PREFIX_BAD_LEN = -2,  /* "/LEN" is not a decimal in range (no sign, no leading 0) */
    CW_PREFIX_NO_LEN = -3,   /* "/LEN" missing while required */
};

/* Without len_required, a bare address is a host prefix (/32 or /128).
 * Host bits are kept as written (an interface address has them). */
enum cw_prefix_status cw_ip4_prefix_parse(const char *s, bool len_required,
                                          struct cw_ip4_prefix *out);
enum cw_prefix_status cw_ip6_prefix_parse(const char *s, bool len_required,
                                          struct cw_ip6_prefix *out);

/* Does the address have bits set beyond the prefix length? */
bool cw_ip4_prefix_has_host_bits(const struct cw_ip4_prefix *p);
bool cw_ip6_prefix_has_host_bits(const struct cw_ip6_prefix *p);

/* "A.B.C.D/LEN" and RFC 5952 text "ADDR/LEN"; cap should be the STRLEN
 * above (shorter buffers get a cut, terminated text). */
void cw_ip4_prefix_format(const struct cw_ip4_prefix *p, char *buf, size_t cap);
void cw_ip6_prefix_format(const struct cw_ip6_prefix *p, char *buf, size_t cap);

#endif
