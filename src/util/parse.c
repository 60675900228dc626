#include "parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The decimal number at the start of s; *end points past it. A digit
 * first: strtoull would also take leading blanks and a sign (" -1" as
 * 2^64-1). */
static int leading_decimal(const char *s, unsigned long long *v, char **end)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    *v = strtoull(s, end, 10);
    return errno ? -1 : 0;
}

int cw_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    unsigned long long v;
    char *end;
    if (leading_decimal(s, &v, &end) || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int cw_parse_size(const char *s, uint64_t *out)
{
    unsigned long long v;
    char *end;
    if (leading_decimal(s, &v, &end))
        return -1;
    unsigned shift = 0;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: return -1;
    }
    if (*end == 'i' && end[1] == 'B')
        end += 2;
    else if (*end == 'B')
        end++;
    if (*end)
        return -1;
    if (shift && v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

int cw_parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char tail;
    if (!s || strlen(s) != 17)
        return -1;
    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &tail) != 6)
        return -1;
    for (int i = 0; i < 6; i++) {
        if (s[i * 3] == ' ' || s[i * 3] == '+' || s[i * 3] == '-')
            return -1;
        mac[i] = (uint8_t)v[i];
    }
    if (mac[0] & 1)
        return -1; /* multicast/broadcast cannot be a NIC's address */
    return 0;
}

int cw_parse_onoff(const char *s, bool *out)
{
    if (s && !strcmp(s, "on")) {
        *out = true;
        return 0;
    }
    if (s && !strcmp(s, "off")) {
        *out = false;
        return 0;
    }
    return -1;
}

char *cw_next_kv(char **cursor, char **value)
{
    char *item = *cursor;
    if (!item || !*item)
        return NULL;
    char *comma = strchr(item, ',');
    if (comma) {
        *comma = '\0';
        *cursor = comma + 1;
    } else {
        *cursor = item + strlen(item);
    }
    char *eq = strchr(item, '=');
    if (eq) {
        *eq = '\0';
        *value = eq + 1;
    } else {
        *value = NULL;
    }
    return item;
}
