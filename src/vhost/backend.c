/* vhost-user backend: the device side of one frontend connection.
 *
 * Receiving: a message is read only once its first byte is there (the
 * caller's epoll said so); the rest of it must follow within
 * msg_timeout_ms, so a frontend that stalls mid-message cannot hang the
 * device's only thread. Headers are checked before a byte of payload is
 * read, so the payload buffer is bounded. fds arrive with SCM_RIGHTS into
 * room for CW_VU_MAX_FDS; more (or a truncated control message) closes the
 * connection, and any fd a request does not take is closed at once, so a
 * frontend cannot make this process accumulate descriptors (CVE-2022-0669).
 *
 * State: each ring collects its size, addresses, base and kick fd; memory
 * and features are per connection. A queue runs in the device core once
 * all of those are present and the ring is enabled. Anything that changes
 * what a running queue depends on (memory table, features, ring geometry)
 * stops the queue first, at its current index, and restarts it after: the
 * core holds pointers into the old mappings, which must not outlive them. */
#define _GNU_SOURCE
#include "backend.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "messages.h"

#define DEFAULT_MSG_TIMEOUT_MS 2000u
#define MAX_MSGS_PER_CALL 64   /* then let the event loop serve the rest */
#define MAX_ACCEPTS_PER_CALL 8
#define LISTEN_BACKLOG 4

/* Offered protocol features: MQ (to answer GET_QUEUE_NUM with one pair, as
 * the specification recommends), REPLY_ACK, NET_MTU. Not offered: CONFIG
 * (QEMU's virtio-net keeps its own config space), STATUS, logging and
 * migration, in-band notifications, backend requests. */
static const uint64_t offered_protocol = CW_BIT(CW_VU_PROTOCOL_F_MQ) |
                                         CW_BIT(CW_VU_PROTOCOL_F_REPLY_ACK) |
                                         CW_BIT(CW_VU_PROTOCOL_F_NET_MTU);

static const char *qname(int q)
{
    return q == CW_NET_RXQ ? "rx" : "tx";
}

/* --- events to the caller --- */

static void ev_kick(struct cw_vhost *v, int q, int old_fd, int new_fd)
{
    if (v->ev && v->ev->kick_fd_changed)
        v->ev->kick_fd_changed(v->ev_ctx, q, old_fd, new_fd);
}

static void ev_conn(struct cw_vhost *v, int old_fd, int new_fd)
{
    if (v->ev && v->ev->conn_changed)
        v->ev->conn_changed(v->ev_ctx, old_fd, new_fd);
}

static void ev_queues(struct cw_vhost *v)
{
    if (v->ev && v->ev->queues_changed)
        v->ev->queues_changed(v->ev_ctx);
}

/* --- small fd helpers --- */

/* An eventfd write; a full counter (EAGAIN) already means "signalled". */
static void signal_fd(struct cw_vhost *v, int fd)
{
    if (fd < 0)
        return;
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(fd, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN)
        cw_log_limited(&v->rl, "vhost-user: cannot signal fd %d: %s", fd, strerror(errno));
}

/* The frontend's notification fds are used from the event loop: none of
 * them may ever block it, whatever kind of file the frontend sent. */
static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK))
        (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void replace_fd(int *slot, int fd)
{
    if (*slot >= 0 && *slot != fd)
        close(*slot);
    *slot = fd;
}

/* Tell the loop before closing, so it can still remove the old fd. */
static void set_kick_fd(struct cw_vhost *v, int q, int fd)
{
    struct cw_vhost_vring *r = &v->vring[q];
    int old = r->kick_fd;
    if (old == fd)
        return;
    r->kick_fd = fd;
    ev_kick(v, q, old, fd);
    if (old >= 0)
        close(old);
}

static void vring_init(struct cw_vhost_vring *r)
{
    memset(r, 0, sizeof(*r));
    r->kick_fd = r->call_fd = r->err_fd = -1;
}

/* --- queue state --- */

static bool ring_enabled(const struct cw_vhost *v, int q)
{
    /* Without VHOST_USER_F_PROTOCOL_FEATURES acknowledged, rings are
     * enabled from the start (specification, "Ring states"). */
    if (v->features_set && !(v->features_acked & CW_BIT(CW_VU_F_PROTOCOL_FEATURES)))
        return true;
    return v->vring[q].enabled;
}

static void stop_queue(struct cw_vhost *v, int q)
{
    struct cw_vhost_vring *r = &v->vring[q];
    if (!r->started)
        return;
    r->base = cw_net_queue_stop(v->net, q);
    r->started = false;
    ev_queues(v);
}

static void stop_all(struct cw_vhost *v)
{
    for (int q = 0; q < CW_NET_NUM_QUEUES; q++)
        stop_queue(v, q);
}

/* Start queue q if it has everything it needs. -1 if the device core
 * refused the guest's ring: the guest's device is broken, but the
 * connection (and this process) serve on; the frontend hears of it through
 * the error fd and, where asked, a failed REPLY_ACK. */
static int try_start(struct cw_vhost *v, int q)
{
    struct cw_vhost_vring *r = &v->vring[q];
    if (r->started || !r->num || !r->addr_set || r->kick_fd < 0 || v->mem.n == 0 ||
        !v->features_set || !ring_enabled(v, q))
        return 0;
    enum cw_vq_error e = cw_net_queue_start(v->net, q, r->num, r->desc_gpa, r->avail_gpa,
                                            r->used_gpa, r->base);
    if (e != CW_VQ_OK) {
        v->stats.queue_start_failures++;
        cw_log_limited(&v->rl, "vhost-user: %s queue cannot start: %s", qname(q),
                       cw_vq_strerror(e));
        signal_fd(v, r->err_fd);
        return -1;
    }
    r->started = true;
    ev_queues(v);
    return 0;
}

static int try_start_all(struct cw_vhost *v)
{
    int rc = 0;
    for (int q = 0; q < CW_NET_NUM_QUEUES; q++)
        rc |= try_start(v, q);
    return rc;
}

/* Ring addresses are frontend virtual addresses; each area must lie wholly
 * inside one region for its full size at this ring size. */
static int translate_ring(const struct cw_vhost *v, uint64_t desc_uva, uint64_t avail_uva,
                          uint64_t used_uva, uint16_t num, uint64_t gpa[3])
{
    const struct cw_guest_memory *m = &v->mem;
    if (cw_guest_memory_uva_to_gpa(m, desc_uva, vring_desc_size(num), &gpa[0]) < 0 ||
        cw_guest_memory_uva_to_gpa(m, avail_uva, vring_avail_size(num), &gpa[1]) < 0 ||
        cw_guest_memory_uva_to_gpa(m, used_uva, vring_used_size(num), &gpa[2]) < 0)
        return -1;
    return 0;
}

/* Back to "no rings configured": queues stopped, ring fds closed. */
static void drop_rings(struct cw_vhost *v)
{
    bool had = false;
    for (int q = 0; q < CW_NET_NUM_QUEUES; q++)
        had |= v->vring[q].started;
    /* Stop the device core's queues before anything they point at goes. */
    cw_net_reset(v->net);
    for (int q = 0; q < CW_NET_NUM_QUEUES; q++) {
        struct cw_vhost_vring *r = &v->vring[q];
        set_kick_fd(v, q, -1);
        replace_fd(&r->call_fd, -1);
        replace_fd(&r->err_fd, -1);
        vring_init(r);
    }
    if (had)
        ev_queues(v);
}

static void reset_negotiation(struct cw_vhost *v)
{
    v->features_acked = 0;
    v->features_set = false;
    v->protocol_features = 0;
    v->owner_set = false;
    v->mtu = 0;
}

static void teardown(struct cw_vhost *v, bool protocol_error, const char *reason)
{
    if (v->conn_fd < 0)
        return;
    snprintf(v->last_error, sizeof(v->last_error), "%s", reason);
    if (protocol_error) {
        v->stats.protocol_errors++;
        cw_log_limited(&v->rl, "vhost-user: closing the frontend connection: %s", reason);
    }
    drop_rings(v);
    cw_guest_memory_clear(&v->mem);
    reset_negotiation(v);
    int old = v->conn_fd;
    v->conn_fd = -1;
    ev_conn(v, old, -1);
    close(old);
}

static void protocol_error(struct cw_vhost *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void protocol_error(struct cw_vhost *v, const char *fmt, ...)
{
    char reason[sizeof(v->last_error)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    teardown(v, true, reason);
}

void cw_vhost_disconnect(struct cw_vhost *v, const char *why)
{
    teardown(v, false, why ? why : "disconnected");
}

/* --- the socket --- */

/* Wait for fd to become ready, but never past deadline_ms. 1 ready, 0 not. */
static int wait_fd(int fd, short events, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = cw_now_ms();
        if (now >= deadline_ms)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        uint64_t left = deadline_ms - now;
        int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return 0;
    }
}

static void close_msg_fds(struct cw_vu_msg *m)
{
    for (unsigned i = 0; i < m->nfds; i++) {
        if (m->fds[i] >= 0)
            close(m->fds[i]);
        m->fds[i] = -1;
    }
}

/* Add the fds of one recvmsg to the message. False if they did not all fit
 * (those that did not are closed here; the rest go with the message). */
static bool take_fds(struct cw_vu_msg *m, struct msghdr *mh)
{
    bool ok = !(mh->msg_flags & MSG_CTRUNC);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
            continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *data = CMSG_DATA(c);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, data + i * sizeof(int), sizeof(fd));
            if (m->nfds < CW_VU_MAX_FDS) {
                m->fds[m->nfds++] = fd;
            } else {
                close(fd);
                ok = false;
            }
        }
    }
    return ok;
}

enum rx {
    RX_OK,
    RX_NONE,  /* nothing to read at a message boundary */
    RX_EOF,   /* the frontend closed at a message boundary */
    RX_ERROR, /* malformed or stalled: *why says which */
};

/* Read exactly len bytes of the current message. at_start: no byte of the
 * message has been read yet (so "nothing there" is not an error). */
static enum rx recv_exact(struct cw_vhost *v, struct cw_vu_msg *m, void *buf, size_t len,
                          bool at_start, uint64_t *deadline, const char **why)
{
    size_t done = 0;
    while (done < len) {
        union {
            char buf[CMSG_SPACE(sizeof(int) * CW_VU_MAX_FDS)];
            struct cmsghdr align;
        } cbuf;
        struct iovec iov = {.iov_base = (char *)buf + done, .iov_len = len - done};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf,
                            .msg_controllen = sizeof(cbuf.buf)};
        ssize_t n = recvmsg(v->conn_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n > 0) {
            if (!*deadline)
                *deadline = cw_now_ms() + v->msg_timeout_ms;
            done += (size_t)n;
            if (!take_fds(m, &mh)) {
                *why = "too many fds attached to a message";
                return RX_ERROR;
            }
            continue;
        }
        bool fresh = at_start && done == 0;
        if (n == 0) {
            if (fresh)
                return RX_EOF;
            *why = "frontend closed the connection in the middle of a message";
            return RX_ERROR;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            *why = fresh ? "connection error" : "connection error in the middle of a message";
            return fresh ? RX_EOF : RX_ERROR;
        }
        if (fresh)
            return RX_NONE;
        if (!wait_fd(v->conn_fd, POLLIN, *deadline)) {
            *why = "frontend stalled in the middle of a message";
            return RX_ERROR;
        }
    }
    return RX_OK;
}

/* true: *m holds a whole message with a checked header. false: nothing to
 * read (connection still open) or the connection was closed (conn_fd < 0). */
static bool recv_msg(struct cw_vhost *v, struct cw_vu_msg *m)
{
    m->nfds = 0;
    uint64_t deadline = 0;
    const char *why = NULL;
    enum rx r = recv_exact(v, m, &m->hdr, sizeof(m->hdr), true, &deadline, &why);
    if (r == RX_NONE)
        return false;
    if (r == RX_EOF) {
        close_msg_fds(m);
        teardown(v, false, why ? why : "frontend closed the connection");
        return false;
    }
    if (r == RX_ERROR) {
        close_msg_fds(m);
        protocol_error(v, "%s", why);
        return false;
    }
    if (cw_vu_check_header(&m->hdr, &why) < 0) {
        close_msg_fds(m);
        protocol_error(v, "%s (request %u, flags 0x%x, size %u): %s",
                       cw_vu_request_name(m->hdr.request), m->hdr.request, m->hdr.flags,
                       m->hdr.size, why);
        return false;
    }
    if (m->hdr.size) {
        r = recv_exact(v, m, m->p.raw, m->hdr.size, false, &deadline, &why);
        if (r != RX_OK) {
            close_msg_fds(m);
            protocol_error(v, "%s: %s", cw_vu_request_name(m->hdr.request), why);
            return false;
        }
    }
    return true;
}

static int send_reply(struct cw_vhost *v, uint32_t request, const void *payload, uint32_t size)
{
    uint8_t buf[CW_VU_HDR_SIZE + 64];
    struct cw_vu_hdr h = {.request = request, .flags = CW_VU_VERSION | CW_VU_FLAG_REPLY,
                          .size = size};
    if (size > sizeof(buf) - sizeof(h))
        return -1;
    memcpy(buf, &h, sizeof(h));
    memcpy(buf + sizeof(h), payload, size);
    size_t total = sizeof(h) + size, done = 0;
    uint64_t deadline = cw_now_ms() + v->msg_timeout_ms;
    while (done < total) {
        ssize_t n = send(v->conn_fd, buf + done, total - done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
            wait_fd(v->conn_fd, POLLOUT, deadline))
            continue;
        return -1;
    }
    return 0;
}

static int send_u64(struct cw_vhost *v, uint32_t request, uint64_t value)
{
    return send_reply(v, request, &value, sizeof(value));
}

/* --- requests --- */

enum result {
    RES_OK,     /* done; REPLY_ACK 0 if asked */
    RES_FAILED, /* well-formed but could not be done; REPLY_ACK 1 if asked */
    RES_CLOSE,  /* malformed in this state: close the connection (*why) */
};

static enum result started(int rc)
{
    return rc < 0 ? RES_FAILED : RES_OK;
}

static enum result reply_u64(struct cw_vhost *v, const struct cw_vu_msg *m, uint64_t value,
                             const char **why)
{
    if (send_u64(v, m->hdr.request, value) < 0) {
        *why = "cannot send the reply";
        return RES_CLOSE;
    }
    return RES_OK;
}

static enum result set_features(struct cw_vhost *v, uint64_t f, const char **why)
{
    if (f & ~v->features_offered) {
        *why = "acknowledged features the device does not offer";
        return RES_CLOSE;
    }
    if (v->features_set && f == v->features_acked)
        return RES_OK;
    /* The queues were set up for the old features (header length, event
     * index): stop them and restart them on the new set. */
    stop_all(v);
    if (cw_net_set_features(v->net, f & ~CW_BIT(CW_VU_F_PROTOCOL_FEATURES)) < 0) {
        v->features_set = false;
        *why = "feature set breaks a virtio dependency";
        return RES_CLOSE;
    }
    v->features_acked = f;
    v->features_set = true;
    return started(try_start_all(v));
}

static enum result set_mem_table(struct cw_vhost *v, struct cw_vu_msg *m, const char **why)
{
    struct cw_region_desc d[CW_VU_MAX_FDS];
    unsigned n = cw_vu_mem_regions(m, d);
    /* The running queues point into the old mappings: stop them first. */
    stop_all(v);
    int rc = cw_guest_memory_set(&v->mem, d, m->fds, n, why);
    for (unsigned i = 0; i < m->nfds; i++)
        m->fds[i] = -1; /* the memory owns them now, even on failure */
    if (rc < 0)
        return RES_CLOSE;
    /* Ring addresses are frontend addresses: translate them again over the
     * new table. A ring no longer covered waits for new addresses. */
    for (int q = 0; q < CW_NET_NUM_QUEUES; q++) {
        struct cw_vhost_vring *r = &v->vring[q];
        uint64_t gpa[3];
        if (!r->addr_set)
            continue;
        if (translate_ring(v, r->desc_uva, r->avail_uva, r->used_uva, r->num, gpa) < 0) {
            r->addr_set = false;
            cw_log_limited(&v->rl, "vhost-user: %s ring is outside the new memory table",
                           qname(q));
            continue;
        }
        r->desc_gpa = gpa[0];
        r->avail_gpa = gpa[1];
        r->used_gpa = gpa[2];
    }
    return started(try_start_all(v));
}

static enum result set_vring_num(struct cw_vhost *v, const struct cw_vu_msg *m, const char **why)
{
    int q = (int)m->p.state.index;
    struct cw_vhost_vring *r = &v->vring[q];
    uint16_t num = (uint16_t)m->p.state.num;
    stop_queue(v, q);
    if (r->addr_set) {
        uint64_t gpa[3];
        if (translate_ring(v, r->desc_uva, r->avail_uva, r->used_uva, num, gpa) < 0) {
            *why = "ring does not fit guest memory at the new size";
            return RES_CLOSE;
        }
        r->desc_gpa = gpa[0];
        r->avail_gpa = gpa[1];
        r->used_gpa = gpa[2];
    }
    r->num = num;
    return started(try_start(v, q));
}

static enum result set_vring_addr(struct cw_vhost *v, const struct cw_vu_msg *m,
                                  const char **why)
{
    const struct cw_vu_vring_addr *a = &m->p.addr;
    int q = (int)a->index;
    struct cw_vhost_vring *r = &v->vring[q];
    if (v->mem.n == 0) {
        *why = "ring addresses before the memory table";
        return RES_CLOSE;
    }
    if (r->num == 0) {
        *why = "ring addresses before the ring size";
        return RES_CLOSE;
    }
    uint64_t gpa[3];
    if (translate_ring(v, a->desc_uva, a->avail_uva, a->used_uva, r->num, gpa) < 0) {
        *why = "ring address outside guest memory";
        return RES_CLOSE;
    }
    stop_queue(v, q);
    r->desc_uva = a->desc_uva;
    r->avail_uva = a->avail_uva;
    r->used_uva = a->used_uva;
    r->desc_gpa = gpa[0];
    r->avail_gpa = gpa[1];
    r->used_gpa = gpa[2];
    r->addr_set = true;
    return started(try_start(v, q));
}

static enum result set_vring_base(struct cw_vhost *v, const struct cw_vu_msg *m)
{
    int q = (int)m->p.state.index;
    stop_queue(v, q);
    v->vring[q].base = (uint16_t)m->p.state.num;
    return started(try_start(v, q));
}

static enum result get_vring_base(struct cw_vhost *v, const struct cw_vu_msg *m,
                                  const char **why)
{
    int q = (int)m->p.state.index;
    struct cw_vhost_vring *r = &v->vring[q];
    stop_queue(v, q);
    /* The ring is stopped until the frontend starts it again, which always
     * comes with new kick and call fds. */
    set_kick_fd(v, q, -1);
    replace_fd(&r->call_fd, -1);
    struct cw_vu_vring_state s = {.index = (uint32_t)q, .num = r->base};
    if (send_reply(v, m->hdr.request, &s, sizeof(s)) < 0) {
        *why = "cannot send the reply";
        return RES_CLOSE;
    }
    return RES_OK;
}

static enum result set_vring_fd(struct cw_vhost *v, struct cw_vu_msg *m)
{
    int q = (int)(m->p.u64 & CW_VU_VRING_IDX_MASK);
    struct cw_vhost_vring *r = &v->vring[q];
    int fd = -1;
    if (!(m->p.u64 & CW_VU_VRING_NOFD)) {
        fd = m->fds[0];
        m->fds[0] = -1;
        set_nonblock(fd);
    }
    switch (m->hdr.request) {
    case CW_VU_SET_VRING_KICK:
        set_kick_fd(v, q, fd);
        return started(try_start(v, q));
    case CW_VU_SET_VRING_CALL:
        replace_fd(&r->call_fd, fd);
        /* An interrupt raised while the ring had no call fd was lost; one
         * spurious interrupt is harmless, a lost one can stall the guest. */
        if (r->started)
            signal_fd(v, fd);
        return RES_OK;
    default:
        replace_fd(&r->err_fd, fd);
        return RES_OK;
    }
}

static enum result set_vring_enable(struct cw_vhost *v, const struct cw_vu_msg *m,
                                    const char **why)
{
    int q = (int)m->p.state.index;
    /* Before SET_FEATURES the frontend may already enable rings (QEMU does
     * when the guest acks its features); after a feature set without
     * protocol features the message has no meaning. */
    if (v->features_set && !(v->features_acked & CW_BIT(CW_VU_F_PROTOCOL_FEATURES))) {
        *why = "ring enable without VHOST_USER_F_PROTOCOL_FEATURES";
        return RES_CLOSE;
    }
    v->vring[q].enabled = m->p.state.num != 0;
    if (!v->vring[q].enabled) {
        stop_queue(v, q);
        return RES_OK;
    }
    return started(try_start(v, q));
}

static enum result dispatch(struct cw_vhost *v, struct cw_vu_msg *m, const char **why)
{
    switch (m->hdr.request) {
    case CW_VU_GET_FEATURES:
        return reply_u64(v, m, v->features_offered, why);
    case CW_VU_SET_FEATURES:
        return set_features(v, m->p.u64, why);
    case CW_VU_SET_OWNER:
        v->owner_set = true;
        return RES_OK;
    case CW_VU_RESET_OWNER:
    case CW_VU_RESET_DEVICE:
        /* Disable every ring and forget the feature set; memory, protocol
         * features and ownership stay (the specification warns that
         * dropping connection state on RESET_OWNER breaks frontends). */
        drop_rings(v);
        v->features_acked = 0;
        v->features_set = false;
        return RES_OK;
    case CW_VU_SET_MEM_TABLE:
        return set_mem_table(v, m, why);
    case CW_VU_SET_VRING_NUM:
        return set_vring_num(v, m, why);
    case CW_VU_SET_VRING_ADDR:
        return set_vring_addr(v, m, why);
    case CW_VU_SET_VRING_BASE:
        return set_vring_base(v, m);
    case CW_VU_GET_VRING_BASE:
        return get_vring_base(v, m, why);
    case CW_VU_SET_VRING_KICK:
    case CW_VU_SET_VRING_CALL:
    case CW_VU_SET_VRING_ERR:
        return set_vring_fd(v, m);
    case CW_VU_GET_PROTOCOL_FEATURES:
        return reply_u64(v, m, offered_protocol, why);
    case CW_VU_SET_PROTOCOL_FEATURES:
        if (m->p.u64 & ~offered_protocol) {
            *why = "acknowledged protocol features the device does not offer";
            return RES_CLOSE;
        }
        v->protocol_features = m->p.u64;
        return RES_OK;
    case CW_VU_GET_QUEUE_NUM:
        return reply_u64(v, m, CW_NET_NUM_QUEUES / 2, why);
    case CW_VU_SET_VRING_ENABLE:
        return set_vring_enable(v, m, why);
    case CW_VU_NET_SET_MTU:
        /* Informational: the MTU the guest sees comes from the device's
         * own configuration (VIRTIO_NET_F_MTU). */
        v->mtu = (uint16_t)m->p.u64;
        return RES_OK;
    default:
        *why = "request not dispatched"; /* unreachable: checked as served */
        return RES_CLOSE;
    }
}

/* Handle one received message. false if the connection was closed. */
static bool handle(struct cw_vhost *v, struct cw_vu_msg *m)
{
    const char *why = NULL;
    const char *name = cw_vu_request_name(m->hdr.request);
    enum cw_vu_check c = cw_vu_check_msg(m, &why);
    if (c == CW_VU_BAD) {
        close_msg_fds(m);
        protocol_error(v, "%s: %s", name, why);
        return false;
    }
    bool ack = (m->hdr.flags & CW_VU_FLAG_NEED_REPLY) &&
               (v->protocol_features & CW_BIT(CW_VU_PROTOCOL_F_REPLY_ACK)) &&
               !cw_vu_has_reply(m->hdr.request);
    enum result res;
    if (c == CW_VU_UNKNOWN) {
        v->stats.unknown_requests++;
        cw_log_limited(&v->rl, "vhost-user: ignoring request %u (%s), not served",
                       m->hdr.request, name);
        res = RES_FAILED;
    } else {
        res = dispatch(v, m, &why);
    }
    close_msg_fds(m); /* whatever the request did not take */
    if (res == RES_CLOSE) {
        protocol_error(v, "%s: %s", name, why);
        return false;
    }
    if (ack && send_u64(v, m->hdr.request, res == RES_FAILED ? 1 : 0) < 0) {
        protocol_error(v, "%s: cannot send the acknowledgement", name);
        return false;
    }
    return true;
}

bool cw_vhost_on_conn(struct cw_vhost *v)
{
    struct cw_vu_msg msg;
    for (int i = 0; i < MAX_MSGS_PER_CALL && v->conn_fd >= 0; i++) {
        memset(&msg.hdr, 0, sizeof(msg.hdr));
        if (!recv_msg(v, &msg))
            break;
        v->stats.messages++;
        if (!handle(v, &msg))
            break;
    }
    return v->conn_fd >= 0;
}

void cw_vhost_on_listen(struct cw_vhost *v)
{
    for (int i = 0; i < MAX_ACCEPTS_PER_CALL; i++) {
        int fd = accept4(v->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                cw_log_limited(&v->rl, "vhost-user: accept: %s", strerror(errno));
            return;
        }
        if (v->conn_fd >= 0) {
            /* One device, one frontend: a second one would fight the first
             * over the rings. */
            v->stats.refused_connections++;
            cw_log_limited(&v->rl, "vhost-user: refusing a second frontend on %s", v->path);
            close(fd);
            continue;
        }
        for (int q = 0; q < CW_NET_NUM_QUEUES; q++)
            vring_init(&v->vring[q]);
        reset_negotiation(v);
        v->last_error[0] = '\0';
        v->conn_fd = fd;
        v->stats.connections++;
        ev_conn(v, -1, fd);
    }
}

void cw_vhost_on_kick(struct cw_vhost *v, int q)
{
    if (q < 0 || q >= CW_NET_NUM_QUEUES)
        return;
    struct cw_vhost_vring *r = &v->vring[q];
    bool got = false;
    /* One read per kick: an eventfd yields its whole count in it, and a
     * pipe (allowed as a doorbell) gives up to 8 pending writes; whatever
     * is left keeps the fd readable, so the loop comes back for it. A second
     * read only to see EAGAIN would be a system call per kick for nothing
     * (on this host a third of a device's reads were exactly that). */
    for (int tries = 0; tries < 4 && r->kick_fd >= 0; tries++) {
        uint64_t val[8];
        ssize_t n = read(r->kick_fd, val, sizeof(val));
        if (n > 0) {
            got = true;
            break;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        /* End of file or an error: a doorbell that can never be drained
         * again would keep the loop spinning. Stop watching it. */
        cw_log_limited(&v->rl, "vhost-user: %s kick fd unusable, no longer watched", qname(q));
        set_kick_fd(v, q, -1);
        break;
    }
    if (got)
        v->stats.kicks[q]++;
}

void cw_vhost_interrupt(struct cw_vhost *v, int q)
{
    if (q < 0 || q >= CW_NET_NUM_QUEUES)
        return;
    signal_fd(v, v->vring[q].call_fd);
}

/* Does a process still accept connections at this socket? */
static bool socket_is_live(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
    bool live = rc == 0 || errno == EAGAIN || errno == EINPROGRESS;
    close(fd);
    return live;
}

int cw_vhost_init(struct cw_vhost *v, const char *path, struct cw_net *net,
                  enum cw_gmem_strategy strategy, const struct cw_vhost_events *ev,
                  void *ev_ctx)
{
    memset(v, 0, sizeof(*v));
    v->listen_fd = v->conn_fd = -1;
    for (int q = 0; q < CW_NET_NUM_QUEUES; q++)
        v->vring[q].kick_fd = v->vring[q].call_fd = v->vring[q].err_fd = -1;
    cw_guest_memory_init(&v->mem, strategy);
    v->net = net;
    v->features_offered = net->offered | CW_BIT(CW_VU_F_PROTOCOL_FEATURES);
    v->ev = ev;
    v->ev_ctx = ev_ctx;
    v->msg_timeout_ms = DEFAULT_MSG_TIMEOUT_MS;
    v->rl = (struct cw_ratelimit)CW_RATELIMIT_INIT(1000, 10);

    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!path || !*path || strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    /* A socket left by an earlier run is replaced; a socket somebody still
     * listens on, or anything else at that path, is left alone. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            errno = EEXIST;
            return -1;
        }
        if (socket_is_live(&sa)) {
            errno = EADDRINUSE;
            return -1;
        }
        if (unlink(path) < 0)
            return -1;
    } else if (errno != ENOENT) {
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    v->path = strdup(path);
    if (!v->path) {
        close(fd);
        unlink(path);
        errno = ENOMEM;
        return -1;
    }
    v->listen_fd = fd;
    net->mem = &v->mem.gmem;
    return 0;
}

void cw_vhost_destroy(struct cw_vhost *v)
{
    teardown(v, false, "backend shutting down");
    if (v->listen_fd >= 0)
        close(v->listen_fd);
    v->listen_fd = -1;
    if (v->path) {
        unlink(v->path);
        free(v->path);
        v->path = NULL;
    }
    cw_guest_memory_clear(&v->mem);
}
