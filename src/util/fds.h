/* Close every inherited file descriptor a process was not told to keep.
 *
 * A device or switch process is started by a launcher that may hold fds of
 * other VMs (guest memory, ports, sockets). Anything that leaked through an
 * exec without O_CLOEXEC would be a capability the process was never meant to
 * have, so at start it closes everything except stdin/stdout/stderr and the
 * fds named on its command line (--event-fd, --control-fd). */
#ifndef CAUSEWAY_UTIL_FDS_H
#define CAUSEWAY_UTIL_FDS_H

#include <stddef.h>

/* Most fds a keep-list may name; more is an error (EINVAL). */
#define CW_FDS_KEEP_MAX 64

/* Close every open fd not in keep[0..n). Negative entries and duplicates in
 * keep are ignored. Uses close_range(2); where the kernel lacks it, walks
 * /proc/self/fd. Returns 0, or -1 with errno set (some fds may then still be
 * open: the caller should treat it as fatal). */
int cw_fds_close_except(const int *keep, size_t n);

/* The /proc/self/fd walk on its own (the fallback above), exposed so tests
 * exercise it on kernels that have close_range. Same contract. */
int cw_fds_close_except_walk(const int *keep, size_t n);

#endif
