/* Adding and removing fds of an epoll set, the way every Causeway event loop
 * does it: level-triggered EPOLLIN, a 64-bit tag naming the source, a failed
 * add logged (never fatal: the source just stays silent), a removal of an fd
 * that may already be closed tolerated. */
#ifndef CAUSEWAY_UTIL_EPOLL_WATCH_H
#define CAUSEWAY_UTIL_EPOLL_WATCH_H

#include <stdint.h>

void cw_epoll_watch(int epfd, int fd, uint64_t tag);
void cw_epoll_unwatch(int epfd, int fd);

#endif
