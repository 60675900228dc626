/* Command-line plumbing: the launcher's control fd and the one-line usage
 * error. The value parsers every flag uses are in util/parse.h. */
#ifndef CAUSEWAY_CLI_OPTIONS_H
#define CAUSEWAY_CLI_OPTIONS_H

#include "../util/parse.h"

/* An inherited launcher control socket: a number >= 3 naming an open
 * SOCK_SEQPACKET socket (the only kind that keeps message boundaries and
 * carries fds). Marked close-on-exec. */
int cw_parse_control_fd(const char *s, int *fd);

/* Print "causeway: <msg>" on stderr and exit 2: for bad user input. */
void cw_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
