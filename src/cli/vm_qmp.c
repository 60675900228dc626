#define _GNU_SOURCE
#include "vm_qmp.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* Read lines until one answers a command ("return" or "error"); events that
 * arrive in between are skipped. 0 for "return". */
static int read_reply(int fd)
{
    char buf[4096];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = '\0';
        char *nl;
        while ((nl = strchr(buf, '\n'))) {
            *nl = '\0';
            int verdict = strstr(buf, "\"return\"") ? 0 : strstr(buf, "\"error\"") ? -1 : 1;
            size_t rest = len - (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, rest + 1);
            len = rest;
            if (verdict <= 0)
                return verdict;
        }
        if (len == sizeof(buf) - 1)
            len = 0; /* an over-long line: skip it */
    }
}

static int send_cmd(int fd, const char *cmd)
{
    size_t n = strlen(cmd);
    return write(fd, cmd, n) == (ssize_t)n ? read_reply(fd) : -1;
}

int cw_qmp_set_link(const char *socket_path, const char *device_id, bool up)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(socket_path) >= sizeof(sa.sun_path))
        return -1;
    strcpy(sa.sun_path, socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* QEMU answers within milliseconds; never let a stuck QEMU hang us. */
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int rc = -1;
    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "{\"execute\":\"set_link\",\"arguments\":{\"name\":\"%s\",\"up\":%s}}\n", device_id,
             up ? "true" : "false");
    /* The greeting is a line with "QMP" and no "return": read_reply skips it. */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        rc = -2; /* QEMU is gone (or going): nothing to tell it */
    else if (send_cmd(fd, "{\"execute\":\"qmp_capabilities\"}\n") == 0 && send_cmd(fd, cmd) == 0)
        rc = 0;
    close(fd);
    return rc;
}
