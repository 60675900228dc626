/* Parsing of user-given values (sizes, numbers, MACs, on/off, key=value
 * lists), for the command line and the system description alike. Each
 * parser returns 0 or -1 and never prints: the caller names the flag or
 * field in its one-line error. */
#ifndef CAUSEWAY_UTIL_PARSE_H
#define CAUSEWAY_UTIL_PARSE_H

#include <stdbool.h>
#include <stdint.h>

/* "256M", "1G", "4096", "64K": bytes. Suffixes K, M, G (powers of 1024). */
int cw_parse_size(const char *s, uint64_t *out);
/* Decimal integer within [min, max]. */
int cw_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* "52:54:00:12:34:56": a unicast MAC (the group bit must be clear). */
int cw_parse_mac(const char *s, uint8_t mac[6]);
/* "on"/"off". */
int cw_parse_onoff(const char *s, bool *out);
/* Split "a=1,b=2,c" in place: each call returns the next key and its value
 * (NULL when the item has no '='), or NULL when the list is done. */
char *cw_next_kv(char **cursor, char **value);

#endif
