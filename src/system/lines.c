/* Prefixed line output for the launcher: see lines.h. */
#include "lines.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void cw_lines_init(struct cw_lines *l, const char *prefix, bool scan_guest)
{
    memset(l, 0, sizeof(*l));
    snprintf(l->prefix, sizeof(l->prefix), "%s", prefix);
    l->prefix_len = strlen(l->prefix);
    l->scan_guest = scan_guest;
    l->guest_exit = -1;
}

int cw_lines_guest_exit(const char *line)
{
    static const char mark[] = "CAUSEWAY-GUEST: exit=";
    if (strncmp(line, mark, sizeof(mark) - 1))
        return -1;
    const char *p = line + sizeof(mark) - 1;
    int v = 0, digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 4) {
        v = v * 10 + (*p++ - '0');
        digits++;
    }
    if (!digits || v > 255 || (*p && *p != ' '))
        return -1;
    return v;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* stdout gone: the children's lines are lost, nothing else */
        p += w;
        n -= (size_t)w;
    }
}

static void emit(struct cw_lines *l, int out_fd)
{
    l->buf[l->len] = '\0';
    if (l->scan_guest) {
        int v = cw_lines_guest_exit(l->buf);
        if (v >= 0)
            l->guest_exit = v;
    }
    /* One write per line: lines of different children never interleave. */
    char out[CW_LINES_PREFIX_MAX + CW_LINES_MAX + 1];
    memcpy(out, l->prefix, l->prefix_len);
    memcpy(out + l->prefix_len, l->buf, l->len);
    out[l->prefix_len + l->len] = '\n';
    write_all(out_fd, out, l->prefix_len + l->len + 1);
    l->len = 0;
}

void cw_lines_feed(struct cw_lines *l, const char *data, size_t n, int out_fd)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c == '\n') {
            emit(l, out_fd);
            continue;
        }
        if (c == '\r')
            continue;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            c = '?'; /* no terminal escapes from a guest */
        l->buf[l->len++] = (char)c;
        if (l->len == CW_LINES_MAX - 1)
            emit(l, out_fd);
    }
}

void cw_lines_flush(struct cw_lines *l, int out_fd)
{
    if (l->len)
        emit(l, out_fd);
}

bool cw_lines_read(struct cw_lines *l, int fd, int out_fd, size_t budget)
{
    char buf[4096];
    size_t done = 0;
    while (done < budget) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (r <= 0) {
            cw_lines_flush(l, out_fd);
            return false;
        }
        cw_lines_feed(l, buf, (size_t)r, out_fd);
        done += (size_t)r;
    }
    return true;
}
