/* Parsing of user input on the command line (sizes, MACs, numbers, key=value
 * lists). Each parser returns 0 or -1 and never prints: the caller names the
 * flag in its one-line error. */
#ifndef CAUSEWAY_CLI_OPTIONS_H
#define CAUSEWAY_CLI_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

/* "256M", "1G", "4096", "64K": bytes. Suffixes K, M, G (powers of 1024). */
int cw_parse_size(const char *s, uint64_t *out);
/* Decimal integer within [min, max]. */
int cw_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* "52:54:00:12:34:56": a unicast MAC (the group bit must be clear). */
int cw_parse_mac(const char *s, uint8_t mac[6]);
/* An inherited launcher control socket: a number >= 3 naming an open
 * SOCK_SEQPACKET socket (the only kind that keeps message boundaries and
 * carries fds). Marked close-on-exec. */
int cw_parse_control_fd(const char *s, int *fd);
/* "on"/"off". */
int cw_parse_onoff(const char *s, bool *out);
/* Split "a=1,b=2,c" in place: each call returns the next key and its value
 * (NULL when the item has no '='), or NULL when the list is done. */
char *cw_next_kv(char **cursor, char **value);

/* Print "causeway: <msg>" on stderr and exit 2: for bad user input. */
void cw_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
