#include "options.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/socket.h>

int cw_parse_control_fd(const char *s, int *fd)
{
    uint64_t v;
    int type = 0;
    socklen_t tl = sizeof(type);
    if (cw_parse_uint(s, 3, 1 << 20, &v) ||
        getsockopt((int)v, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_SEQPACKET)
        return -1;
    /* Not inherited by anything this process might start. */
    fcntl((int)v, F_SETFD, FD_CLOEXEC);
    *fd = (int)v;
    return 0;
}

void cw_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("causeway: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}
