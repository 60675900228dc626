/* Link rendezvous over a unix socket path (Linux).
 *
 * States, as seen in struct cw_link:
 *   listening, no peer:   listen_fd >= 0, conn_fd < 0, !up
 *   listening, peer:      listen_fd >= 0, conn_fd >= 0, up
 *   awaiting the hello:   listen_fd < 0,  conn_fd >= 0, !up (we connected)
 *   connected:            listen_fd < 0,  conn_fd >= 0, up
 *   idle:                 both < 0, !up (retry on the next tick)
 *
 * SOCK_SEQPACKET keeps the hello one message (no partial reads to
 * reassemble) and still reports the peer's death as EOF/POLLHUP. Every
 * socket is non-blocking and close-on-exec; nothing here waits. */
#define _GNU_SOURCE
#include "link.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../util/log.h"

#define HELLO_MAGIC 0x4b4c5743u /* "CWLK" */
#define HELLO_VERSION 1u
#define HELLO_FDS 5
/* Room for more fds than expected, so "too many" is seen as a count,
 * not only as MSG_CTRUNC. */
#define HELLO_MAX_FDS 16
/* Ticks (~100 ms) a connector waits for the hello before giving up. */
#define HELLO_TIMEOUT_TICKS 20u
#define LISTEN_BACKLOG 4
#define ACCEPTS_PER_CALL 8

/* Host byte order: both ends run on the same machine. */
struct link_hello {
    uint32_t magic;
    uint32_t version;
    uint32_t capacity;
    uint32_t side; /* the receiver's side */
};

static struct cw_ratelimit link_rl = CW_RATELIMIT_INIT(1000, 5);

static void set_error(struct cw_link *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_error(struct cw_link *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->last_error, sizeof(l->last_error), fmt, ap);
    va_end(ap);
}

static void notify_fds(struct cw_link *l)
{
    if (l->ev && l->ev->fds_changed)
        l->ev->fds_changed(l->ev_ctx, l);
}

static void notify_state(struct cw_link *l, bool up)
{
    if (l->ev && l->ev->state_changed)
        l->ev->state_changed(l->ev_ctx, l, up);
}

static void init_port(struct cw_port *p)
{
    memset(p, 0, sizeof(*p));
    cw_port_fds_reset(&p->fds);
}

static int make_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(sa->sun_path))
        return -1;
    memcpy(sa->sun_path, path, n);
    return 0;
}

/* ---- up / down ---- */

static void link_up(struct cw_link *l)
{
    l->up = true;
    l->stats.ups++;
    l->hello_wait = 0;
    notify_fds(l);
    notify_state(l, true);
}

/* Close the connection and unmap the port. The callbacks see the new state
 * while the old fds are still open, then the old fds are closed. */
static void link_down(struct cw_link *l)
{
    bool was_up = l->up;
    int old_conn = l->conn_fd;
    struct cw_port old_port = l->port;
    bool changed = old_conn >= 0 || cw_port_attached(&old_port);

    l->up = false;
    l->conn_fd = -1;
    l->hello_wait = 0;
    init_port(&l->port);
    l->port.stats = old_port.stats; /* counters survive reconnects */
    if (was_up)
        l->stats.downs++;
    if (changed)
        notify_fds(l);
    if (old_conn >= 0)
        close(old_conn);
    if (cw_port_attached(&old_port))
        cw_port_detach(&old_port);
    if (was_up)
        notify_state(l, false);
}

/* ---- rendezvous ---- */

static int new_socket(void)
{
    return socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/* Is the socket file at path still the one we bound? */
static bool owns_path(const struct cw_link *l)
{
    struct stat st;
    return l->path_ino != 0 && lstat(l->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
           (uint64_t)st.st_dev == l->path_dev && (uint64_t)st.st_ino == l->path_ino;
}

enum try_result { TRY_DONE, TRY_AGAIN, TRY_RACE, TRY_FATAL };

static enum try_result try_listen(struct cw_link *l, bool stale)
{
    struct sockaddr_un sa;
    make_addr(l->path, &sa); /* checked at open */
    if (stale) {
        /* Only ever remove a socket file: a misconfigured path naming a
         * regular file also answers ECONNREFUSED, and must survive. */
        struct stat st;
        if (lstat(l->path, &st) == 0) {
            if (!S_ISSOCK(st.st_mode)) {
                set_error(l, "%s exists and is not a socket", l->path);
                return TRY_FATAL;
            }
            if (unlink(l->path) < 0 && errno != ENOENT) {
                set_error(l, "cannot remove stale socket %s: %s", l->path, strerror(errno));
                return TRY_FATAL;
            }
        }
    }
    int fd = new_socket();
    if (fd < 0) {
        set_error(l, "socket: %s", strerror(errno));
        return TRY_AGAIN;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        if (e == EADDRINUSE)
            return TRY_RACE; /* someone else bound it first: connect to them */
        set_error(l, "cannot bind %s: %s", l->path, strerror(e));
        return TRY_FATAL;
    }
    struct stat st;
    if (listen(fd, LISTEN_BACKLOG) < 0 || lstat(l->path, &st) < 0) {
        set_error(l, "cannot listen on %s: %s", l->path, strerror(errno));
        close(fd);
        return TRY_FATAL;
    }
    l->path_dev = (uint64_t)st.st_dev;
    l->path_ino = (uint64_t)st.st_ino;
    l->listen_fd = fd;
    return TRY_DONE;
}

static enum try_result try_connect(struct cw_link *l)
{
    struct sockaddr_un sa;
    make_addr(l->path, &sa);
    int fd = new_socket();
    if (fd < 0) {
        set_error(l, "socket: %s", strerror(errno));
        return TRY_AGAIN;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        l->conn_fd = fd;
        l->hello_wait = 0;
        return TRY_DONE;
    }
    int e = errno;
    close(fd);
    switch (e) {
    case ECONNREFUSED: /* a socket file nobody listens on: stale */
        return try_listen(l, true);
    case ENOENT:
        return try_listen(l, false);
    case EAGAIN: /* backlog full: the listener is busy, retry later */
    case EINTR:
        set_error(l, "connect %s: %s", l->path, strerror(e));
        return TRY_AGAIN;
    default:
        set_error(l, "cannot connect to %s: %s", l->path, strerror(e));
        return TRY_FATAL;
    }
}

/* Connect, or listen; a lost bind race means connect again (bounded). */
static enum try_result rendezvous(struct cw_link *l)
{
    for (int i = 0; i < 3; i++) {
        enum try_result r = try_connect(l);
        if (r != TRY_RACE)
            return r;
    }
    set_error(l, "lost the race for %s three times", l->path);
    return TRY_AGAIN;
}

int cw_link_open(struct cw_link *l, const char *path, uint32_t capacity,
                 const struct cw_link_events *ev, void *ev_ctx)
{
    memset(l, 0, sizeof(*l));
    l->listen_fd = l->conn_fd = -1;
    init_port(&l->port);
    l->ev = ev;
    l->ev_ctx = ev_ctx;
    l->capacity = capacity;
    struct sockaddr_un sa;
    if (path == NULL || make_addr(path, &sa) < 0) {
        set_error(l, "bad socket path (empty or longer than %zu bytes)",
                  sizeof(sa.sun_path) - 1);
        return -1;
    }
    if (!cw_port_capacity_valid(capacity)) {
        set_error(l, "ring capacity %u is not a power of two in [%u, %u]", capacity,
                  CW_PORT_MIN_CAPACITY, CW_PORT_MAX_CAPACITY);
        return -1;
    }
    l->path = strdup(path);
    if (l->path == NULL) {
        set_error(l, "out of memory");
        return -1;
    }
    if (rendezvous(l) == TRY_FATAL) {
        free(l->path);
        l->path = NULL;
        return -1;
    }
    return 0;
}

/* ---- listener side ---- */

static int send_hello(int fd, const struct cw_port_fds *f, uint32_t capacity)
{
    struct link_hello h = {
        .magic = HELLO_MAGIC, .version = HELLO_VERSION, .capacity = capacity, .side = 1,
    };
    int fds[HELLO_FDS] = { f->memfd, f->efd[0][0], f->efd[0][1], f->efd[1][0], f->efd[1][1] };
    union {
        char buf[CMSG_SPACE(sizeof(fds))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct iovec iov = { .iov_base = &h, .iov_len = sizeof(h) };
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf),
    };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(fds));
    memcpy(CMSG_DATA(c), fds, sizeof(fds));
    /* One small message into an empty, fresh socket buffer: if even that
     * cannot go out now, the peer is not worth waiting for. */
    ssize_t n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    return n == (ssize_t)sizeof(h) ? 0 : -1;
}

static void serve_peer(struct cw_link *l, int c)
{
    struct cw_port_fds f;
    if (cw_port_fds_create(&f, l->capacity) < 0) {
        set_error(l, "cannot create the port: %s", strerror(errno));
        cw_log_limited(&link_rl, "link %s: %s", l->path, l->last_error);
        close(c);
        return;
    }
    if (cw_port_attach(&l->port, &f, 0, l->capacity, true) < 0) {
        set_error(l, "cannot map the port: %s", strerror(errno));
        cw_log_limited(&link_rl, "link %s: %s", l->path, l->last_error);
        close(c);
        return;
    }
    if (send_hello(c, &l->port.fds, l->capacity) < 0) {
        set_error(l, "cannot send the hello: %s", strerror(errno));
        cw_log_limited(&link_rl, "link %s: %s", l->path, l->last_error);
        l->stats.refused++;
        cw_port_detach(&l->port);
        init_port(&l->port);
        close(c);
        return;
    }
    l->conn_fd = c;
    link_up(l);
}

void cw_link_on_listen(struct cw_link *l)
{
    if (l->listen_fd < 0)
        return;
    /* Bounded: a flood of connections cannot keep us here. */
    for (int i = 0; i < ACCEPTS_PER_CALL; i++) {
        int c = accept4(l->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                cw_log_limited(&link_rl, "link %s: accept: %s", l->path, strerror(errno));
            return;
        }
        if (l->conn_fd >= 0) {
            /* One peer per link: a second one is turned away. */
            l->stats.refused++;
            close(c);
            continue;
        }
        serve_peer(l, c);
    }
}

/* ---- connector side ---- */

static void close_all(const int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

/* Read one message; collect every fd it carried (all SCM_RIGHTS headers),
 * so none leaks whatever else is wrong with the message. */
static ssize_t recv_msg(int fd, void *buf, size_t len, int *fds, int *nfds, int *flags)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * HELLO_MAX_FDS)];
        struct cmsghdr align;
    } u;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf),
    };
    *nfds = 0;
    ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0)
        return n;
    *flags = msg.msg_flags;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len < CMSG_LEN(0))
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(c);
        for (size_t i = 0; i < k && *nfds < HELLO_MAX_FDS; i++)
            memcpy(&fds[(*nfds)++], data + i * sizeof(int), sizeof(int));
    }
    return n;
}

static void refuse(struct cw_link *l, const int *fds, int nfds, const char *why)
{
    close_all(fds, nfds);
    l->stats.refused++;
    set_error(l, "refused the listener's hello: %s", why);
    cw_log_limited(&link_rl, "link %s: %s", l->path, l->last_error);
    link_down(l); /* closes the connection; the next tick retries */
}

static void receive_hello(struct cw_link *l)
{
    struct link_hello h;
    int fds[HELLO_MAX_FDS];
    int nfds = 0, flags = 0;
    ssize_t n = recv_msg(l->conn_fd, &h, sizeof(h), fds, &nfds, &flags);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        set_error(l, "listener closed before its hello");
        link_down(l);
        return;
    }
    const char *why = NULL;
    if (flags & (MSG_CTRUNC | MSG_TRUNC))
        why = "truncated message";
    else if (n != (ssize_t)sizeof(h))
        why = "wrong size";
    else if (nfds != HELLO_FDS)
        why = "wrong number of fds";
    else if (h.magic != HELLO_MAGIC || h.version != HELLO_VERSION)
        why = "wrong magic or version";
    else if (h.side != 1)
        why = "wrong side";
    else if (!cw_port_capacity_valid(h.capacity))
        why = "capacity not a power of two in range";
    if (why != NULL) {
        refuse(l, fds, nfds, why);
        return;
    }

    struct cw_port_fds f = {
        .memfd = fds[0], .efd = { { fds[1], fds[2] }, { fds[3], fds[4] } },
    };
    /* attach validates the memfd (size, seals) and eventfds; it closes
     * them itself on failure. */
    if (cw_port_attach(&l->port, &f, 1, h.capacity, false) < 0) {
        char reason[96];
        snprintf(reason, sizeof(reason), "port rejected: %s", strerror(errno));
        refuse(l, fds, 0, reason);
        return;
    }
    link_up(l);
}

/* ---- connection events ---- */

void cw_link_on_conn(struct cw_link *l)
{
    if (l->conn_fd < 0)
        return;
    if (!l->up) {
        receive_hello(l);
        return;
    }
    /* Up: the connection only carries liveness. EOF or an error means the
     * peer is gone; any message is a protocol violation. */
    char buf[64];
    int fds[HELLO_MAX_FDS];
    int nfds = 0, flags = 0;
    ssize_t n = recv_msg(l->conn_fd, buf, sizeof(buf), fds, &nfds, &flags);
    close_all(fds, nfds);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        cw_link_drop(l, "unexpected message from the peer");
        return;
    }
    set_error(l, "peer gone");
    link_down(l);
}

enum probe { PROBE_SELF, PROBE_OTHER, PROBE_NOBODY };

/* Who answers at the path: this listener, another one (*other: a connection
 * to it), or nobody. The file's inode alone cannot tell: two devices started
 * together can both listen, each believing the path is its own. A binds; B
 * connects before A listens, gets ECONNREFUSED, takes A's file for stale,
 * removes it and binds its own; A's lstat after listen then reads B's inode.
 * A connection answers it: the probe sends a token first, which no peer
 * does (a connector waits for the hello). A peer that connected at the same
 * moment may be accepted here instead of the probe: it is served as usual. */
static enum probe probe_path(struct cw_link *l, int *other)
{
    struct sockaddr_un sa;
    make_addr(l->path, &sa);
    int fd = new_socket();
    if (fd < 0)
        return PROBE_SELF; /* cannot tell: keep what we have */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        /* EAGAIN: a backlog is full, someone listens; try again later. */
        return e == EAGAIN || e == EINTR ? PROBE_SELF : PROBE_NOBODY;
    }
    /* A unix connect queues on the listener before it returns. */
    int c = accept4(l->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) {
        *other = fd;
        return PROBE_OTHER;
    }
    uint64_t token = 0x43574c4b50524f42ull ^ (uint64_t)(uintptr_t)l; /* "CWLKPROB" */
    uint64_t got = 0;
    bool ours = write(fd, &token, sizeof(token)) == (ssize_t)sizeof(token) &&
                read(c, &got, sizeof(got)) == (ssize_t)sizeof(got) && got == token;
    close(fd);
    if (ours)
        close(c);
    else
        serve_peer(l, c); /* our own probe, still queued, is turned away later */
    return PROBE_SELF;
}

void cw_link_tick(struct cw_link *l)
{
    if (l->path == NULL)
        return;
    if (l->listen_fd >= 0) {
        /* A listener without a peer that is not the one at the path can
         * never be found: rejoin through the path as it is now. */
        if (l->conn_fd >= 0)
            return;
        int other = -1;
        enum probe who = owns_path(l) ? probe_path(l, &other) : PROBE_NOBODY;
        if (who == PROBE_SELF)
            return;
        int old = l->listen_fd;
        l->listen_fd = -1;
        l->path_ino = l->path_dev = 0;
        enum try_result r = TRY_DONE;
        if (other >= 0) {
            /* Already connected to the listener at the path: await its hello. */
            l->conn_fd = other;
            l->hello_wait = 0;
        } else {
            r = rendezvous(l);
        }
        notify_fds(l);
        close(old);
        if (r == TRY_FATAL)
            cw_log_limited(&link_rl, "link %s: %s", l->path, l->last_error);
        return;
    }
    if (l->conn_fd >= 0) {
        if (!l->up && ++l->hello_wait > HELLO_TIMEOUT_TICKS) {
            l->stats.refused++;
            set_error(l, "no hello from the listener");
            cw_log_limited(&link_rl, "link %s: %s", l->path, l->last_error);
            link_down(l);
        }
        return;
    }
    enum try_result r = rendezvous(l);
    if (l->listen_fd >= 0 || l->conn_fd >= 0)
        notify_fds(l);
    else if (r == TRY_FATAL)
        cw_log_limited(&link_rl, "link %s: %s", l->path, l->last_error);
}

void cw_link_drop(struct cw_link *l, const char *why)
{
    set_error(l, "%s", why ? why : "dropped");
    if (l->conn_fd >= 0 || cw_port_attached(&l->port)) {
        cw_log_limited(&link_rl, "link %s: dropping the peer: %s", l->path ? l->path : "?",
                       l->last_error);
        link_down(l);
    }
}

void cw_link_close(struct cw_link *l)
{
    if (l->conn_fd >= 0)
        close(l->conn_fd);
    l->conn_fd = -1;
    if (cw_port_attached(&l->port))
        cw_port_detach(&l->port);
    if (l->listen_fd >= 0) {
        /* Remove the socket file only if it is still ours. */
        if (l->path && owns_path(l))
            unlink(l->path);
        close(l->listen_fd);
    }
    l->listen_fd = -1;
    l->up = false;
    free(l->path);
    l->path = NULL;
}
