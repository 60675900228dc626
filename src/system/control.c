/* Control messages: JSON over SOCK_SEQPACKET with SCM_RIGHTS. See control.h. */
#define _GNU_SOURCE
#include "control.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int cw_ctl_socketpair(int sv[2])
{
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    /* A unix datagram is charged to its sender's buffer: the default
     * (wmem_default, ~208 KiB) cannot carry CW_CTL_MAX_MSG. The kernel caps
     * the value at wmem_max; a send that still does not fit fails with
     * EMSGSIZE, which the sender reports. */
    int size = (int)(2 * CW_CTL_MAX_MSG);
    for (int i = 0; i < 2; i++)
        setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    return 0;
}

int cw_ctl_send(int fd, const json_t *msg, const int *fds, unsigned nfds)
{
    if (!json_is_object(msg) || nfds > CW_CTL_MAX_FDS || (nfds && !fds)) {
        errno = EINVAL;
        return -1;
    }
    char *text = json_dumps(msg, JSON_COMPACT);
    if (!text) {
        errno = ENOMEM;
        return -1;
    }
    size_t len = strlen(text);
    if (len == 0 || len > CW_CTL_MAX_MSG) {
        free(text);
        errno = EMSGSIZE;
        return -1;
    }
    struct iovec iov = {.iov_base = text, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(int) * CW_CTL_MAX_FDS)];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t r;
    do
        r = sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    int saved = errno;
    free(text);
    if (r < 0) {
        errno = saved;
        return -1;
    }
    if ((size_t)r != len) { /* SEQPACKET is all or nothing; be sure anyway */
        errno = EMSGSIZE;
        return -1;
    }
    return 0;
}

int cw_ctl_send_error(int fd, const char *why)
{
    json_t *m = json_pack("{s:s, s:s}", "op", "error", "error", why ? why : "error");
    if (!m) {
        errno = ENOMEM;
        return -1;
    }
    int rc = cw_ctl_send(fd, m, NULL, 0);
    json_decref(m);
    return rc;
}

int cw_ctl_send_event(int fd, const char *event, const json_t *more)
{
    json_t *m = json_pack("{s:s, s:s}", "op", "event", "event", event);
    if (!m) {
        errno = ENOMEM;
        return -1;
    }
    /* json_object_update only borrows: `more` stays the caller's. */
    if (more && json_object_update(m, (json_t *)more) < 0) {
        json_decref(m);
        errno = EINVAL;
        return -1;
    }
    int rc = cw_ctl_send(fd, m, NULL, 0);
    json_decref(m);
    return rc;
}

void cw_ctl_close_fds(int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Collect SCM_RIGHTS fds; false if anything else (or too many) arrived.
 * Every fd found is stored so the caller can close them all. */
static bool collect_fds(struct msghdr *mh, int *fds, unsigned *nfds)
{
    bool ok = true;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len < CMSG_LEN(0)) {
            ok = false;
            continue;
        }
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int v;
            memcpy(&v, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            /* The control buffer holds at most CW_CTL_MAX_FDS (the kernel
             * truncates beyond it and sets MSG_CTRUNC), so this bound only
             * guards against a kernel surprise. */
            if (*nfds < CW_CTL_MAX_FDS)
                fds[(*nfds)++] = v;
            else {
                close(v);
                ok = false;
            }
        }
    }
    return ok;
}

enum cw_ctl_result cw_ctl_recv(int fd, json_t **msg, int *fds, unsigned *nfds, char *err,
                               size_t errlen)
{
    *msg = NULL;
    *nfds = 0;
    if (err && errlen)
        err[0] = '\0';
    char *buf = malloc(CW_CTL_MAX_MSG);
    if (!buf) {
        errno = ENOMEM;
        return CW_CTL_ERROR;
    }
    union {
        char b[CMSG_SPACE(sizeof(int) * CW_CTL_MAX_FDS)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = CW_CTL_MAX_MSG};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
                        .msg_controllen = sizeof(ctl.b)};
    ssize_t r;
    do
        r = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        int saved = errno;
        free(buf);
        errno = saved;
        return saved == EAGAIN || saved == EWOULDBLOCK ? CW_CTL_AGAIN : CW_CTL_ERROR;
    }
    bool fds_ok = collect_fds(&mh, fds, nfds);
    enum cw_ctl_result res = CW_CTL_BAD;
    if (r == 0) {
        /* SEQPACKET cannot tell an empty datagram from a hang-up: both end
         * the conversation (only a misbehaving peer sends an empty one). */
        res = CW_CTL_EOF;
    } else if (mh.msg_flags & MSG_TRUNC) {
        set_err(err, errlen, "message larger than %u bytes", CW_CTL_MAX_MSG);
    } else if ((mh.msg_flags & MSG_CTRUNC) || !fds_ok) {
        set_err(err, errlen, "more than %u fds, or ancillary data other than fds", CW_CTL_MAX_FDS);
    } else {
        json_error_t je;
        json_t *m = json_loadb(buf, (size_t)r, JSON_REJECT_DUPLICATES, &je);
        const char *op = NULL;
        if (!m) {
            set_err(err, errlen, "not JSON: %s", je.text);
        } else if (!json_is_object(m)) {
            set_err(err, errlen, "not a JSON object");
        } else if (!(op = json_string_value(json_object_get(m, "op"))) || !op[0] ||
                   strlen(op) > CW_CTL_MAX_OP) {
            set_err(err, errlen, "op: missing, not a string, or longer than %u bytes",
                    CW_CTL_MAX_OP);
        } else {
            *msg = m;
            m = NULL;
            res = CW_CTL_MSG;
        }
        json_decref(m);
    }
    free(buf);
    if (res != CW_CTL_MSG)
        cw_ctl_close_fds(fds, *nfds), *nfds = 0;
    return res;
}

const char *cw_ctl_op(const json_t *msg)
{
    const char *op = json_string_value(json_object_get(msg, "op"));
    return op ? op : "";
}

int cw_ctl_keys_only(const json_t *msg, const char *const *allowed, char *err, size_t errlen)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)msg, key, val) {
        if (!strcmp(key, "op"))
            continue;
        bool known = false;
        for (const char *const *a = allowed; a && *a && !known; a++)
            known = !strcmp(*a, key);
        if (!known) {
            /* Keys may hold anything: print a bounded prefix. */
            if (err && errlen)
                snprintf(err, errlen, "%.40s: unknown key", key);
            return -1;
        }
    }
    return 0;
}

int cw_ctl_get_uint(const json_t *msg, const char *key, uint64_t min, uint64_t max,
                    const uint64_t *dflt, uint64_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(msg, key);
    if (!v && dflt) {
        *out = *dflt;
        return 0;
    }
    if (!json_is_integer(v)) {
        set_err(err, errlen, "%s: %s", key, v ? "not an integer" : "missing");
        return -1;
    }
    json_int_t i = json_integer_value(v);
    if (i < 0 || (uint64_t)i < min || (uint64_t)i > max) {
        set_err(err, errlen, "%s: out of range", key);
        return -1;
    }
    *out = (uint64_t)i;
    return 0;
}

int cw_ctl_get_str(const json_t *msg, const char *key, size_t maxlen, const char **out,
                   char *err, size_t errlen)
{
    json_t *v = json_object_get(msg, key);
    if (!json_is_string(v)) {
        set_err(err, errlen, "%s: %s", key, v ? "not a string" : "missing");
        return -1;
    }
    size_t n = json_string_length(v);
    if (n == 0 || n > maxlen) {
        set_err(err, errlen, "%s: %s", key, n ? "too long" : "empty");
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

int cw_ctl_get_bool(const json_t *msg, const char *key, bool *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(msg, key);
    if (!json_is_boolean(v)) {
        set_err(err, errlen, "%s: %s", key, v ? "not true or false" : "missing");
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

void cw_ctl_port_fds_array(const struct cw_port_fds *f, int out[CW_CTL_PORT_FDS])
{
    out[0] = f->memfd;
    out[1] = f->efd[0][CW_PORT_EFD_DATA];
    out[2] = f->efd[0][CW_PORT_EFD_SPACE];
    out[3] = f->efd[1][CW_PORT_EFD_DATA];
    out[4] = f->efd[1][CW_PORT_EFD_SPACE];
}

int cw_ctl_take_port_fds(int *fds, unsigned nfds, struct cw_port_fds *out)
{
    cw_port_fds_reset(out);
    if (nfds != CW_CTL_PORT_FDS) {
        cw_ctl_close_fds(fds, nfds);
        errno = EINVAL;
        return -1;
    }
    out->memfd = fds[0];
    out->efd[0][CW_PORT_EFD_DATA] = fds[1];
    out->efd[0][CW_PORT_EFD_SPACE] = fds[2];
    out->efd[1][CW_PORT_EFD_DATA] = fds[3];
    out->efd[1][CW_PORT_EFD_SPACE] = fds[4];
    for (unsigned i = 0; i < nfds; i++)
        fds[i] = -1;
    return 0;
}
