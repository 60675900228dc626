/* The system control socket: see stats_server.h. */
#define _GNU_SOURCE
#include "stats_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int cw_srv_open(struct cw_srv *s, const char *path, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    s->listen_fd = -1;
    for (int i = 0; i < CW_SRV_MAX_CLIENTS; i++)
        s->c[i].fd = -1;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path) || strlen(path) >= sizeof(s->path)) {
        snprintf(err, errlen, "%s: path too long for a unix socket", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        if (e == EADDRINUSE) {
            /* A socket file left by a launcher that died: take it over only
             * if nothing listens there any more. */
            int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            bool alive = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
            if (probe >= 0)
                close(probe);
            struct stat st;
            if (alive)
                e = EADDRINUSE;
            else if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
                e = EEXIST; /* not a socket: not ours to remove */
            else if (unlink(path) < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                e = errno;
            else
                e = 0;
        }
        if (e) {
            snprintf(err, errlen, "%s: %s", path, strerror(e));
            close(fd);
            return -1;
        }
    }
    chmod(path, 0600);
    if (listen(fd, 8) < 0) {
        snprintf(err, errlen, "listen %s: %s", sa.sun_path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    s->listen_fd = fd;
    strcpy(s->path, path);
    return 0;
}

void cw_srv_drop(struct cw_srv *s, int i)
{
    struct cw_srv_client *c = &s->c[i];
    if (c->fd >= 0)
        close(c->fd);
    free(c->out);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

void cw_srv_close(struct cw_srv *s)
{
    for (int i = 0; i < CW_SRV_MAX_CLIENTS; i++)
        if (s->c[i].fd >= 0)
            cw_srv_drop(s, i);
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        unlink(s->path);
    }
    s->listen_fd = -1;
}

void cw_srv_accept(struct cw_srv *s, uint64_t now_ms)
{
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        int slot = -1;
        for (int i = 0; i < CW_SRV_MAX_CLIENTS && slot < 0; i++)
            if (s->c[i].fd < 0)
                slot = i;
        if (slot < 0) {
            close(fd);
            continue;
        }
        s->c[slot].fd = fd;
        s->c[slot].last_ms = now_ms;
    }
}

static void queue(struct cw_srv *s, int i, const char *text, size_t n)
{
    struct cw_srv_client *c = &s->c[i];
    if (c->out_len - c->out_off + n + 1 > CW_SRV_REPLY_MAX) {
        cw_srv_drop(s, i); /* not reading its replies: not our memory to give */
        return;
    }
    if (c->out_off) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    char *p = realloc(c->out, c->out_len + n + 1);
    if (!p) {
        cw_srv_drop(s, i);
        return;
    }
    c->out = p;
    memcpy(c->out + c->out_len, text, n);
    c->out[c->out_len + n] = '\n';
    c->out_len += n + 1;
}

void cw_srv_on_writable(struct cw_srv *s, int i, uint64_t now_ms)
{
    struct cw_srv_client *c = &s->c[i];
    while (c->fd >= 0 && c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (w <= 0) {
            cw_srv_drop(s, i);
            return;
        }
        c->out_off += (size_t)w;
        c->last_ms = now_ms;
    }
    if (c->fd >= 0 && c->out_off == c->out_len) {
        free(c->out);
        c->out = NULL;
        c->out_len = c->out_off = 0;
        if (c->eof && !c->waiting)
            cw_srv_drop(s, i); /* answered a client that has stopped asking */
    }
}

void cw_srv_reply(struct cw_srv *s, int i, const json_t *reply, uint64_t now_ms)
{
    if (s->c[i].fd < 0)
        return;
    char *text = json_dumps(reply, JSON_COMPACT);
    if (!text) {
        cw_srv_drop(s, i);
        return;
    }
    queue(s, i, text, strlen(text));
    free(text);
    cw_srv_on_writable(s, i, now_ms);
}

static void reply_error(struct cw_srv *s, int i, const char *why, uint64_t now_ms)
{
    json_t *e = json_pack("{s:s, s:s}", "op", "error", "error", why);
    if (e)
        cw_srv_reply(s, i, e, now_ms);
    json_decref(e);
}

int cw_srv_read(struct cw_srv *s, int i, json_t **req, uint64_t now_ms)
{
    struct cw_srv_client *c = &s->c[i];
    *req = NULL;
    for (;;) {
        if (c->fd < 0)
            return -1;
        char *nl = memchr(c->in, '\n', c->in_len);
        if (nl) {
            size_t n = (size_t)(nl - c->in);
            json_error_t je;
            json_t *m = json_loadb(c->in, n, JSON_REJECT_DUPLICATES, &je);
            memmove(c->in, nl + 1, c->in_len - n - 1);
            c->in_len -= n + 1;
            c->last_ms = now_ms;
            if (!json_is_object(m)) {
                json_decref(m);
                reply_error(s, i, "not a JSON object", now_ms);
                /* Let the error line out before hanging up, as far as the
                 * socket takes it now. */
                cw_srv_drop(s, i);
                return -1;
            }
            *req = m;
            return 1;
        }
        if (c->in_len == sizeof(c->in)) {
            reply_error(s, i, "request line too long", now_ms);
            cw_srv_drop(s, i);
            return -1;
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (r <= 0) {
            /* Hung up. A client that shut down only its writing side still
             * gets the answer it is waiting for. */
            if (r == 0 && (c->waiting || c->out_len > c->out_off)) {
                c->eof = true;
                return 0;
            }
            cw_srv_drop(s, i);
            return -1;
        }
        c->in_len += (size_t)r;
    }
}

bool cw_srv_wants_read(const struct cw_srv *s, int i)
{
    return s->c[i].fd >= 0 && !s->c[i].eof && !s->c[i].waiting;
}

bool cw_srv_wants_write(const struct cw_srv *s, int i)
{
    return s->c[i].fd >= 0 && s->c[i].out_off < s->c[i].out_len;
}

void cw_srv_tick(struct cw_srv *s, uint64_t now_ms)
{
    for (int i = 0; i < CW_SRV_MAX_CLIENTS; i++) {
        struct cw_srv_client *c = &s->c[i];
        if (c->fd >= 0 && !c->waiting && now_ms - c->last_ms > CW_SRV_IDLE_MS)
            cw_srv_drop(s, i);
    }
}
