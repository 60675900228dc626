#include "ip_prefix.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Split "ADDR/LEN" into a bounded copy of ADDR and the length. */
static enum cw_prefix_status split(const char *s, bool len_required, unsigned max_len,
                                   char *addr, size_t addr_cap, unsigned *len)
{
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= addr_cap)
        return CW_PREFIX_BAD_ADDR;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    if (!slash) {
        if (len_required)
            return CW_PREFIX_NO_LEN;
        *len = max_len;
        return CW_PREFIX_OK;
    }
    const char *p = slash + 1;
    /* Digits only: strtoul would take spaces, signs and hex. A leading zero
     * ("/024") is refused as a likely typo. */
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] != '\0'))
        return CW_PREFIX_BAD_LEN;
    unsigned v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return CW_PREFIX_BAD_LEN;
        v = v * 10 + (unsigned)(*p - '0');
        if (v > max_len)
            return CW_PREFIX_BAD_LEN;
    }
    *len = v;
    return CW_PREFIX_OK;
}

enum cw_prefix_status cw_ip4_prefix_parse(const char *s, bool len_required,
                                          struct cw_ip4_prefix *out)
{
    char addr[INET_ADDRSTRLEN];
    unsigned len;
    enum cw_prefix_status st = split(s, len_required, 32, addr, sizeof(addr), &len);
    if (st == CW_PREFIX_BAD_ADDR)
        return st;
    /* The address is checked before the length, so "x/99" says "bad address". */
    struct in_addr a;
    if (inet_pton(AF_INET, addr, &a) != 1)
        return CW_PREFIX_BAD_ADDR;
    if (st != CW_PREFIX_OK)
        return st;
    out->addr = ntohl(a.s_addr);
    out->len = (uint8_t)len;
    return CW_PREFIX_OK;
}

enum cw_prefix_status cw_ip6_prefix_parse(const char *s, bool len_required,
                                          struct cw_ip6_prefix *out)
{
    char addr[INET6_ADDRSTRLEN];
    unsigned len;
    enum cw_prefix_status st = split(s, len_required, 128, addr, sizeof(addr), &len);
    if (st == CW_PREFIX_BAD_ADDR)
        return st;
    struct in6_addr a;
    if (inet_pton(AF_INET6, addr, &a) != 1)
        return CW_PREFIX_BAD_ADDR;
    if (st != CW_PREFIX_OK)
        return st;
    memcpy(out->addr, a.s6_addr, 16);
    out->len = (uint8_t)len;
    return CW_PREFIX_OK;
}

bool cw_ip4_prefix_has_host_bits(const struct cw_ip4_prefix *p)
{
    if (p->len >= 32)
        return false;
    uint32_t host = p->len == 0 ? UINT32_MAX : (UINT32_MAX >> p->len);
    return (p->addr & host) != 0;
}

bool cw_ip6_prefix_has_host_bits(const struct cw_ip6_prefix *p)
{
    unsigned len = p->len > 128 ? 128 : p->len;
    for (unsigned bit = len; bit < 128; bit++)
        if (p->addr[bit / 8] & (0x80u >> (bit % 8)))
            return true;
    return false;
}

void cw_ip4_prefix_format(const struct cw_ip4_prefix *p, char *buf, size_t cap)
{
    if (!cap)
        return;
    snprintf(buf, cap, "%u.%u.%u.%u/%u", p->addr >> 24, (p->addr >> 16) & 0xFF,
             (p->addr >> 8) & 0xFF, p->addr & 0xFF, p->len);
}

void cw_ip6_prefix_format(const struct cw_ip6_prefix *p, char *buf, size_t cap)
{
    if (!cap)
        return;
    char a[INET6_ADDRSTRLEN];
    struct in6_addr in;
    memcpy(in.s6_addr, p->addr, 16);
    if (!inet_ntop(AF_INET6, &in, a, sizeof(a)))
        a[0] = '\0';
    snprintf(buf, cap, "%s/%u", a, p->len);
}
