#include "epoll_watch.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

#include "log.h"

void cw_epoll_watch(int epfd, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    if (fd >= 0 && epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        cw_log("epoll_ctl add fd %d: %s", fd, strerror(errno));
}

void cw_epoll_unwatch(int epfd, int fd)
{
    /* The fd may already be closed (then the kernel dropped it itself). */
    if (fd >= 0)
        epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
}
