/* vhost-user backend driven by a test frontend over a real unix socket: the
 * QEMU-like setup sequence starts the device's queues, GET_VRING_BASE stops
 * them, REPLY_ACK answers, and every hostile message closes the connection
 * without a crash or a leaked fd. Also the state-free message checks on
 * their own. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/net.h"
#include "util/log.h"
#include "vhost/backend.h"
#include "vhost/messages.h"

#define MEM_SIZE (1u << 20)
#define QSIZE 256u
#define PROTO_WANTED                                                                          \
    (CW_BIT(CW_VU_PROTOCOL_F_MQ) | CW_BIT(CW_VU_PROTOCOL_F_REPLY_ACK) |                      \
     CW_BIT(CW_VU_PROTOCOL_F_NET_MTU))
#define F_PROTO CW_BIT(CW_VU_F_PROTOCOL_FEATURES)

/* Ring areas (guest-physical) per queue. */
static const uint64_t ring_gpa[2][3] = {
    {0x1000, 0x2000, 0x3000},
    {0x5000, 0x6000, 0x7000},
};

/* --- a port that goes nowhere --- */

static void *port_tx_reserve(void *ctx, uint32_t len)
{
    (void)ctx;
    (void)len;
    return NULL;
}
static void port_tx_commit(void *ctx, uint32_t len)
{
    (void)ctx;
    (void)len;
}
static void port_flush(void *ctx)
{
    (void)ctx;
}
static const void *port_rx_peek(void *ctx, uint32_t *len)
{
    (void)ctx;
    *len = 0;
    return NULL;
}
static void port_rx_release(void *ctx)
{
    (void)ctx;
}
static const struct cw_net_port_ops null_port = {
    .tx_reserve = port_tx_reserve,
    .tx_commit = port_tx_commit,
    .tx_flush = port_flush,
    .rx_peek = port_rx_peek,
    .rx_release = port_rx_release,
    .rx_flush = port_flush,
};

/* --- fixture: a backend, its device, and a test frontend --- */

struct fx {
    struct cw_net *net;
    struct cw_vhost v;
    char path[108];
    /* events heard from the backend */
    int kick_fd[2];
    int conn_fd;
    int queue_events;
    int kick_events;
    /* the frontend */
    int sock;
    int memfd;
    uint8_t *mem; /* the frontend's own mapping; its address is the uva */
    int kick[2], call[2];
};

static struct fx *fx_of(void **state)
{
    return *state;
}

static void on_kick_fd(void *ctx, int q, int old_fd, int new_fd)
{
    struct fx *f = ctx;
    assert_int_equal(f->kick_fd[q], old_fd);
    f->kick_fd[q] = new_fd;
    f->kick_events++;
}

static void on_conn(void *ctx, int old_fd, int new_fd)
{
    struct fx *f = ctx;
    assert_int_equal(f->conn_fd, old_fd);
    f->conn_fd = new_fd;
}

static void on_queues(void *ctx)
{
    struct fx *f = ctx;
    f->queue_events++;
}

static const struct cw_vhost_events events = {
    .kick_fd_changed = on_kick_fd,
    .conn_changed = on_conn,
    .queues_changed = on_queues,
};

static void irq(void *ctx, int q)
{
    (void)ctx;
    (void)q;
}

static int fx_setup(void **state, enum cw_gmem_strategy s)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->net = calloc(1, sizeof(*f->net));
    assert_non_null(f->net);
    f->kick_fd[0] = f->kick_fd[1] = f->conn_fd = -1;
    f->sock = f->memfd = -1;
    f->kick[0] = f->kick[1] = f->call[0] = f->call[1] = -1;
    snprintf(f->path, sizeof(f->path), "/tmp/cw-test-vhost-%d.sock", (int)getpid());
    struct cw_net_params p = {.mac = {0x52, 0x54, 0, 0x12, 0x34, 0x56}, .mtu = 1500,
                              .offloads = true, .mrg_rxbuf = true};
    cw_net_init(f->net, &p, &f->v.mem.gmem, &null_port, NULL, irq, NULL);
    assert_int_equal(cw_vhost_init(&f->v, f->path, f->net, s, &events, f), 0);
    f->v.msg_timeout_ms = 300; /* keep the stall tests short */
    *state = f;
    return 0;
}

static int setup_persistent(void **state)
{
    return fx_setup(state, CW_GMEM_PERSISTENT);
}

static int setup_map_per_access(void **state)
{
    return fx_setup(state, CW_GMEM_MAP_PER_ACCESS);
}

static void fe_close(struct fx *f)
{
    int *fds[] = {&f->sock, &f->memfd, &f->kick[0], &f->kick[1], &f->call[0], &f->call[1]};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
    if (f->mem)
        munmap(f->mem, MEM_SIZE);
    f->mem = NULL;
}

static int teardown(void **state)
{
    struct fx *f = fx_of(state);
    fe_close(f);
    cw_vhost_destroy(&f->v);
    struct stat st;
    assert_int_equal(stat(f->path, &st), -1); /* socket file removed */
    free(f->net);
    free(f);
    return 0;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* --- the test frontend --- */

static int fe_connect_sock(const char *path)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {.tv_sec = 2};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return s;
}

/* Connect, be accepted, and create the frontend's memory and eventfds. */
static void fe_connect(struct fx *f)
{
    f->sock = fe_connect_sock(f->path);
    cw_vhost_on_listen(&f->v);
    assert_true(f->v.conn_fd >= 0);
    assert_int_equal(f->conn_fd, f->v.conn_fd);
    f->memfd = memfd_create("cw-test-guest", MFD_CLOEXEC);
    assert_true(f->memfd >= 0);
    assert_int_equal(ftruncate(f->memfd, MEM_SIZE), 0);
    f->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
    assert_true(f->mem != MAP_FAILED);
    for (int q = 0; q < 2; q++) {
        f->kick[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        f->call[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        assert_true(f->kick[q] >= 0 && f->call[q] >= 0);
    }
}

static uint64_t uva(const struct fx *f, uint64_t gpa)
{
    return (uint64_t)(uintptr_t)f->mem + gpa;
}

/* Send one message: `len` payload bytes, `wire_size` in the header. */
static void fe_send_raw(struct fx *f, uint32_t req, uint32_t flags, const void *payload,
                        uint32_t len, uint32_t wire_size, const int *fds, unsigned nfds)
{
    uint8_t buf[CW_VU_HDR_SIZE + 512];
    assert_true(len <= sizeof(buf) - CW_VU_HDR_SIZE);
    struct cw_vu_hdr h = {.request = req, .flags = flags, .size = wire_size};
    memcpy(buf, &h, sizeof(h));
    if (len)
        memcpy(buf + sizeof(h), payload, len);
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(h) + len};
    union {
        char b[CMSG_SPACE(sizeof(int) * 16)];
        struct cmsghdr align;
    } c;
    memset(&c, 0, sizeof(c));
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        assert_true(nfds <= 16);
        mh.msg_control = c.b;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
    }
    assert_int_equal(sendmsg(f->sock, &mh, MSG_NOSIGNAL), (ssize_t)iov.iov_len);
}

static void fe_send(struct fx *f, uint32_t req, uint32_t flags, const void *payload,
                    uint32_t len, const int *fds, unsigned nfds)
{
    fe_send_raw(f, req, flags, payload, len, len, fds, nfds);
}

/* Send a well-formed message and let the backend handle it. */
static void msg(struct fx *f, uint32_t req, uint32_t flags, const void *payload, uint32_t len,
                const int *fds, unsigned nfds)
{
    fe_send(f, req, CW_VU_VERSION | flags, payload, len, fds, nfds);
    if (!cw_vhost_on_conn(&f->v))
        fail_msg("%s closed the connection: %s", cw_vu_request_name(req), f->v.last_error);
}

static bool fe_readable(struct fx *f)
{
    struct pollfd p = {.fd = f->sock, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

static uint32_t fe_reply(struct fx *f, uint32_t req, void *payload, uint32_t max)
{
    struct cw_vu_hdr h;
    assert_true(fe_readable(f));
    assert_int_equal(recv(f->sock, &h, sizeof(h), MSG_WAITALL), (ssize_t)sizeof(h));
    assert_int_equal(h.request, req);
    assert_int_equal(h.flags, CW_VU_VERSION | CW_VU_FLAG_REPLY);
    assert_true(h.size <= max);
    if (h.size)
        assert_int_equal(recv(f->sock, payload, h.size, MSG_WAITALL), (ssize_t)h.size);
    return h.size;
}

static uint64_t fe_reply_u64(struct fx *f, uint32_t req)
{
    uint64_t u = 0;
    assert_int_equal(fe_reply(f, req, &u, sizeof(u)), sizeof(u));
    return u;
}

static uint64_t get_u64(struct fx *f, uint32_t req)
{
    msg(f, req, 0, NULL, 0, NULL, 0);
    return fe_reply_u64(f, req);
}

static void set_u64(struct fx *f, uint32_t req, uint64_t value)
{
    msg(f, req, 0, &value, sizeof(value), NULL, 0);
}

/* With NEED_REPLY: returns the acknowledgement. */
static uint64_t set_u64_ack(struct fx *f, uint32_t req, uint64_t value)
{
    msg(f, req, CW_VU_FLAG_NEED_REPLY, &value, sizeof(value), NULL, 0);
    return fe_reply_u64(f, req);
}

static void vring_state(struct fx *f, uint32_t req, uint32_t index, uint32_t num)
{
    struct cw_vu_vring_state s = {.index = index, .num = num};
    msg(f, req, 0, &s, sizeof(s), NULL, 0);
}

static struct cw_vu_vring_addr ring_addr(struct fx *f, int q)
{
    struct cw_vu_vring_addr a = {.index = (uint32_t)q,
                                 .desc_uva = uva(f, ring_gpa[q][0]),
                                 .avail_uva = uva(f, ring_gpa[q][1]),
                                 .used_uva = uva(f, ring_gpa[q][2])};
    return a;
}

static struct cw_vu_mem_table one_region(struct fx *f, uint64_t gpa)
{
    struct cw_vu_mem_table t = {.nregions = 1};
    t.r[0] = (struct cw_vu_region){.gpa = gpa, .size = MEM_SIZE, .uva = uva(f, 0), .mmap_offset = 0};
    return t;
}

static uint64_t mem_table_size(uint32_t n)
{
    return offsetof(struct cw_vu_mem_table, r) + n * sizeof(struct cw_vu_region);
}

/* A one-region table over the frontend's memfd. The fd sent is a dup the
 * frontend closes right after sending (the backend has its own copy). */
static void send_mem_table(struct fx *f, const struct cw_vu_mem_table *t, uint32_t flags)
{
    assert_int_equal(t->nregions, 1);
    int fd = dup(f->memfd);
    msg(f, CW_VU_SET_MEM_TABLE, flags, t, (uint32_t)mem_table_size(1), &fd, 1);
    close(fd);
}

static uint64_t set_mem_table(struct fx *f, const struct cw_vu_mem_table *t)
{
    send_mem_table(f, t, CW_VU_FLAG_NEED_REPLY);
    return fe_reply_u64(f, CW_VU_SET_MEM_TABLE);
}

static uint64_t guest_features(const struct fx *f)
{
    return f->net->offered & (CW_BIT(VIRTIO_F_VERSION_1) | CW_BIT(VIRTIO_RING_F_EVENT_IDX) |
                              CW_BIT(VIRTIO_NET_F_MRG_RXBUF) | CW_BIT(VIRTIO_NET_F_MAC));
}

static bool ready(const struct fx *f, int q)
{
    return cw_vq_ready(&f->net->vq[q]);
}

static void ring_fds(struct fx *f, int q)
{
    uint64_t kick = (uint64_t)q, call = (uint64_t)q;
    msg(f, CW_VU_SET_VRING_KICK, 0, &kick, sizeof(kick), &f->kick[q], 1);
    msg(f, CW_VU_SET_VRING_CALL, 0, &call, sizeof(call), &f->call[q], 1);
}

/* The sequence QEMU sends (vhost_dev_init, then vhost_dev_start), up to the
 * point where the rings would be enabled. */
static void qemu_sequence(struct fx *f, uint16_t base)
{
    assert_int_equal(get_u64(f, CW_VU_GET_FEATURES), f->net->offered | F_PROTO);
    msg(f, CW_VU_SET_OWNER, 0, NULL, 0, NULL, 0);
    uint64_t proto = get_u64(f, CW_VU_GET_PROTOCOL_FEATURES);
    assert_int_equal(proto & PROTO_WANTED, PROTO_WANTED);
    assert_int_equal(proto & CW_BIT(CW_VU_PROTOCOL_F_CONFIG), 0);
    assert_int_equal(proto & CW_BIT(CW_VU_PROTOCOL_F_RARP), 0);
    set_u64(f, CW_VU_SET_PROTOCOL_FEATURES, PROTO_WANTED);
    assert_int_equal(get_u64(f, CW_VU_GET_QUEUE_NUM), 1);
    assert_int_equal(set_u64_ack(f, CW_VU_SET_FEATURES, guest_features(f) | F_PROTO), 0);
    struct cw_vu_mem_table t = one_region(f, 0);
    assert_int_equal(set_mem_table(f, &t), 0);
    assert_int_equal(set_u64_ack(f, CW_VU_NET_SET_MTU, 1500), 0);
    for (int q = 0; q < 2; q++) {
        vring_state(f, CW_VU_SET_VRING_NUM, (uint32_t)q, QSIZE);
        vring_state(f, CW_VU_SET_VRING_BASE, (uint32_t)q, base);
        struct cw_vu_vring_addr a = ring_addr(f, q);
        msg(f, CW_VU_SET_VRING_ADDR, 0, &a, sizeof(a), NULL, 0);
        ring_fds(f, q);
    }
}

static void enable_rings(struct fx *f)
{
    for (int q = 0; q < 2; q++)
        vring_state(f, CW_VU_SET_VRING_ENABLE, (uint32_t)q, 1);
}

static void assert_clean(const struct fx *f)
{
    for (int q = 0; q < 2; q++) {
        assert_false(ready(f, q));
        assert_false(f->v.vring[q].started);
        assert_int_equal(f->v.vring[q].kick_fd, -1);
        assert_int_equal(f->v.vring[q].call_fd, -1);
        assert_int_equal(f->v.vring[q].err_fd, -1);
        assert_int_equal(f->kick_fd[q], -1);
    }
    assert_int_equal(f->v.mem.n, 0);
    assert_int_equal(f->v.conn_fd, -1);
    assert_int_equal(f->conn_fd, -1);
}

/* --- the normal life of a connection --- */

static void test_qemu_sequence_starts_queues(void **state)
{
    struct fx *f = fx_of(state);
    fe_connect(f);
    qemu_sequence(f, 0);
    /* Protocol features acknowledged: rings wait for SET_VRING_ENABLE. */
    assert_false(ready(f, 0));
    assert_false(ready(f, 1));
    assert_int_equal(f->kick_fd[0], f->v.vring[0].kick_fd);
    assert_true(f->kick_fd[1] >= 0);
    enable_rings(f);
    assert_true(ready(f, 0));
    assert_true(ready(f, 1));
    assert_true(f->v.vring[0].started && f->v.vring[1].started);
    assert_true(f->queue_events >= 2);
    assert_int_equal(f->net->vq[1].desc_gpa, ring_gpa[1][0]);
    assert_int_equal(f->net->vq[1].avail_gpa, ring_gpa[1][1]);
    assert_int_equal(f->net->vq[1].used_gpa, ring_gpa[1][2]);
    assert_int_equal(f->net->vq[0].num, QSIZE);
    assert_int_equal(f->v.mtu, 1500);
    assert_int_equal(f->v.stats.protocol_errors, 0);
    assert_int_equal(f->v.stats.queue_start_failures, 0);

    /* Doorbell: drained and counted. */
    uint64_t one = 1;
    assert_int_equal(write(f->kick[1], &one, sizeof(one)), sizeof(one));
    cw_vhost_on_kick(&f->v, 1);
    assert_int_equal(f->v.stats.kicks[1], 1);
    uint64_t val;
    assert_int_equal(read(f->kick[1], &val, sizeof(val)), -1); /* drained by the backend */
    cw_vhost_on_kick(&f->v, 1); /* nothing pending: no count */
    assert_int_equal(f->v.stats.kicks[1], 1);
    cw_vhost_on_kick(&f->v, 2);
    cw_vhost_on_kick(&f->v, -1);

    /* Interrupt: the call eventfd fires. */
    cw_vhost_interrupt(&f->v, 0);
    assert_int_equal(read(f->call[0], &val, sizeof(val)), sizeof(val));
    assert_int_equal(val, 1);
    cw_vhost_interrupt(&f->v, 5);

    /* GET_VRING_BASE stops the ring and returns its index. */
    int qev = f->queue_events;
    struct cw_vu_vring_state s = {.index = 0};
    msg(f, CW_VU_GET_VRING_BASE, 0, &s, sizeof(s), NULL, 0);
    struct cw_vu_vring_state r;
    assert_int_equal(fe_reply(f, CW_VU_GET_VRING_BASE, &r, sizeof(r)), sizeof(r));
    assert_int_equal(r.index, 0);
    assert_int_equal(r.num, 0);
    assert_false(ready(f, 0));
    assert_true(ready(f, 1));
    assert_int_equal(f->kick_fd[0], -1);
    assert_int_equal(f->v.vring[0].kick_fd, -1);
    assert_true(f->queue_events > qev);
    /* Restarting takes a new kick fd; the other settings are kept. */
    ring_fds(f, 0);
    assert_true(ready(f, 0));
    assert_int_equal(f->v.stats.messages > 20, true);
}

static void test_vring_base_roundtrip(void **state)
{
    struct fx *f = fx_of(state);
    fe_connect(f);
    /* The guest's rings as a previous backend left them: 7 chains consumed
     * and used. */
    uint16_t seven = 7;
    memcpy(f->mem + ring_gpa[0][1] + 2, &seven, 2);
    memcpy(f->mem + ring_gpa[0][2] + 2, &seven, 2);
    qemu_sequence(f, 7);
    enable_rings(f);
    assert_true(ready(f, 0));
    assert_int_equal(f->net->vq[0].last_avail_idx, 7);
    struct cw_vu_vring_state s = {.index = 0}, r;
    msg(f, CW_VU_GET_VRING_BASE, CW_VU_FLAG_NEED_REPLY, &s, sizeof(s), NULL, 0);
    /* Its own reply only, REPLY_ACK or not. */
    assert_int_equal(fe_reply(f, CW_VU_GET_VRING_BASE, &r, sizeof(r)), sizeof(r));
    assert_int_equal(r.num, 7);
    assert_false(fe_readable(f));
    /* A ring never started reports the base it was given. */
    struct cw_vu_vring_state s1 = {.index = 1};
    msg(f, CW_VU_GET_VRING_BASE, 0, &s1, sizeof(s1), NULL, 0);
    assert_int_equal(fe_reply(f, CW_VU_GET_VRING_BASE, &r, sizeof(r)), sizeof(r));
    assert_int_equal(r.index, 1);
}

static void test_reply_ack(void **state)
{
    struct fx *f = fx_of(state);
    fe_connect(f);
    /* Before REPLY_ACK is negotiated NEED_REPLY asks for nothing. */
    msg(f, CW_VU_SET_OWNER, CW_VU_FLAG_NEED_REPLY, NULL, 0, NULL, 0);
    assert_false(fe_readable(f));
    qemu_sequence(f, 0);
    enable_rings(f);
    assert_false(fe_readable(f));
    /* Success is 0. */
    msg(f, CW_VU_SET_OWNER, CW_VU_FLAG_NEED_REPLY, NULL, 0, NULL, 0);
    assert_int_equal(fe_reply_u64(f, CW_VU_SET_OWNER), 0);
    /* A request not served: ignored, or failed when an answer is wanted. */
    uint64_t status = 0xf;
    msg(f, CW_VU_SET_STATUS, 0, &status, sizeof(status), NULL, 0);
    assert_false(fe_readable(f));
    msg(f, CW_VU_SET_STATUS, CW_VU_FLAG_NEED_REPLY, &status, sizeof(status), NULL, 0);
    assert_int_equal(fe_reply_u64(f, CW_VU_SET_STATUS), 1);
    msg(f, 99, CW_VU_FLAG_NEED_REPLY, NULL, 0, NULL, 0);
    assert_int_equal(fe_reply_u64(f, 99), 1);
    /* ... and fds it carried are closed, not kept. */
    int before = count_fds();
    int efd = eventfd(0, EFD_CLOEXEC);
    msg(f, CW_VU_SET_LOG_FD, 0, NULL, 0, &efd, 1);
    close(efd);
    assert_int_equal(count_fds(), before);
    assert_int_equal(f->v.stats.unknown_requests, 4);
    /* A ring the device core refuses (misaligned used ring): the request
     * fails, the connection stays. */
    struct cw_vu_vring_state s = {.index = 0};
    msg(f, CW_VU_GET_VRING_BASE, 0, &s, sizeof(s), NULL, 0);
    struct cw_vu_vring_state r;
    fe_reply(f, CW_VU_GET_VRING_BASE, &r, sizeof(r));
    struct cw_vu_vring_addr a = ring_addr(f, 0);
    a.used_uva += 2;
    msg(f, CW_VU_SET_VRING_ADDR, 0, &a, sizeof(a), NULL, 0);
    uint64_t kick = 0;
    msg(f, CW_VU_SET_VRING_KICK, CW_VU_FLAG_NEED_REPLY, &kick, sizeof(kick), &f->kick[0], 1);
    assert_int_equal(fe_reply_u64(f, CW_VU_SET_VRING_KICK), 1);
    assert_false(ready(f, 0));
    assert_int_equal(f->v.stats.queue_start_failures, 1);
    assert_true(f->v.conn_fd >= 0);
    /* Fixing the address starts it. */
    a = ring_addr(f, 0);
    msg(f, CW_VU_SET_VRING_ADDR, CW_VU_FLAG_NEED_REPLY, &a, sizeof(a), NULL, 0);
    assert_int_equal(fe_reply_u64(f, CW_VU_SET_VRING_ADDR), 0);
    assert_true(ready(f, 0));
    assert_int_equal(f->v.stats.protocol_errors, 0);
}

static void test_err_fd_signalled_on_start_failure(void **state)
{
    struct fx *f = fx_of(state);
    fe_connect(f);
    qemu_sequence(f, 0);
    int err = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    uint64_t e = 1;
    msg(f, CW_VU_SET_VRING_ERR, 0, &e, sizeof(e), &err, 1);
    /* Guest scribbled its used index: more chains outstanding than the ring holds. */
    uint16_t used = 300;
    memcpy(f->mem + ring_gpa[1][2] + 2, &used, 2);
    enable_rings(f);
    assert_true(ready(f, 0));
    assert_false(ready(f, 1));
    uint64_t val = 0;
    assert_int_equal(read(err, &val, sizeof(val)), sizeof(val));
    assert_int_equal(val, 1);
    /* The no-fd form clears it. */
    e = 1 | CW_VU_VRING_NOFD;
    msg(f, CW_VU_SET_VRING_ERR, 0, &e, sizeof(e), NULL, 0);
    assert_int_equal(f->v.vring[1].err_fd, -1);
    close(err);
}

static void test_no_protocol_features_rings_start_enabled(void **state)
{
    struct fx *f = fx_of(state);
    fe_connect(f);
    /* An old frontend: never asks for protocol features. */
    assert_int_equal(get_u64(f, CW_VU_GET_FEATURES) & F_PROTO, F_PROTO);
    msg(f, CW_VU_SET_OWNER, 0, NULL, 0, NULL, 0);
    set_u64(f, CW_VU_SET_FEATURES, guest_features(f));
    struct cw_vu_mem_table t = one_region(f, 0);
    send_mem_table(f, &t, 0);
    for (int q = 0; q < 2; q++) {
        vring_state(f, CW_VU_SET_VRING_NUM, (uint32_t)q, QSIZE);
        struct cw_vu_vring_addr a = ring_addr(f, q);
        msg(f, CW_VU_SET_VRING_ADDR, 0, &a, sizeof(a), NULL, 0);
        ring_fds(f, q);
    }
    assert_true(ready(f, 0));
    assert_true(ready(f, 1));
    /* NEED_REPLY means nothing without REPLY_ACK. */
    assert_false(fe_readable(f));
    /* Enabling rings is not part of this protocol. */
    struct cw_vu_vring_state s = {.index = 0, .num = 1};
    fe_send(f, CW_VU_SET_VRING_ENABLE, CW_VU_VERSION, &s, sizeof(s), NULL, 0);
    assert_false(cw_vhost_on_conn(&f->v));
    assert_non_null(strstr(f->v.last_error, "PROTOCOL_FEATURES"));
    assert_clean(f);
}

static void test_enable_before_features_and_disable(void **state)
{
    struct fx *f = fx_of(state);
    fe_connect(f);
    /* QEMU enables rings when the guest acks its features, before it
     * sends SET_FEATURES: that must be remembered. */
    enable_rings(f);
    qemu_sequence(f, 0);
    assert_true(ready(f, 0));
    assert_true(ready(f, 1));
    /* Disabling stops the ring at its index; enabling resumes it. */
    vring_state(f, CW_VU_SET_VRING_ENABLE, 1, 0);
    assert_false(ready(f, 1));
    vring_state(f, CW_VU_SET_VRING_ENABLE, 1, 1);
    assert_true(ready(f, 1));
}

static void test_mem_table_while_running(void **state)
{
    struct fx *f = fx_of(state);
    fe_connect(f);
    qemu_sequence(f, 0);
    enable_rings(f);
    /* The same memory at another guest-physical address: rings (given as
     * frontend addresses) move with it and restart. */
    struct cw_vu_mem_table t = one_region(f, 0x40000000);
    assert_int_equal(set_mem_table(f, &t), 0);
    assert_true(ready(f, 0));
    assert_true(ready(f, 1));
    assert_int_equal(f->net->vq[0].desc_gpa, 0x40000000 + ring_gpa[0][0]);
    assert_int_equal(f->net->vq[1].used_gpa, 0x40000000 + ring_gpa[1][2]);
    /* A table no longer covering the rings: they stop and wait for new
     * addresses; the connection stays. */
    t.r[0].uva = uva(f, 0) + 0x100000000ull;
    assert_int_equal(set_mem_table(f, &t), 0);
    assert_false(ready(f, 0));
    assert_false(ready(f, 1));
    assert_false(f->v.vring[0].addr_set);
    assert_true(f->v.conn_fd >= 0);
    /* Same table back and new addresses: running again. */
    t = one_region(f, 0);
    assert_int_equal(set_mem_table(f, &t), 0);
    for (int q = 0; q < 2; q++) {
        struct cw_vu_vring_addr a = ring_addr(f, q);
        msg(f, CW_VU_SET_VRING_ADDR, 0, &a, sizeof(a), NULL, 0);
        assert_true(ready(f, q));
    }
}

static void test_kick_fd_not_an_eventfd(void **state)
{
    struct fx *f = fx_of(state);
    fe_connect(f);
    qemu_sequence(f, 0);
    enable_rings(f);
    /* A pipe as the doorbell: reading it must never block the loop ... */
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    uint64_t kick = 1;
    msg(f, CW_VU_SET_VRING_KICK, 0, &kick, sizeof(kick), &p[0], 1);
    close(p[0]);
    assert_true(f->kick_fd[1] >= 0);
    cw_vhost_on_kick(&f->v, 1); /* empty: returns at once */
    assert_int_equal(f->v.stats.kicks[1], 0);
    assert_int_equal(write(p[1], "12345678", 8), 8);
    cw_vhost_on_kick(&f->v, 1);
    assert_int_equal(f->v.stats.kicks[1], 1);
    /* ... and one that reports end of file is dropped, not spun on. */
    close(p[1]);
    cw_vhost_on_kick(&f->v, 1);
    assert_int_equal(f->kick_fd[1], -1);
    assert_int_equal(f->v.vring[1].kick_fd, -1);
    assert_true(f->v.conn_fd >= 0);
}

static void test_reset_owner(void **state)
{
    struct fx *f = fx_of(state);
    fe_connect(f);
    qemu_sequence(f, 0);
    enable_rings(f);
    msg(f, CW_VU_RESET_OWNER, 0, NULL, 0, NULL, 0);
    assert_false(ready(f, 0));
    assert_false(ready(f, 1));
    assert_int_equal(f->kick_fd[0], -1);
    assert_int_equal(f->kick_fd[1], -1);
    assert_int_equal(f->v.vring[0].call_fd, -1);
    assert_false(f->v.features_set);
    /* Still connected; setting up again works. */
    qemu_sequence(f, 0);
    enable_rings(f);
    assert_true(ready(f, 0) && ready(f, 1));
}

static void test_disconnect_and_reconnect(void **state)
{
    struct fx *f = fx_of(state);
    int before = count_fds();
    fe_connect(f);
    qemu_sequence(f, 0);
    enable_rings(f);
    assert_true(ready(f, 0));
    uint64_t pe = f->v.stats.protocol_errors;
    fe_close(f);
    assert_false(cw_vhost_on_conn(&f->v));
    assert_non_null(strstr(f->v.last_error, "closed"));
    assert_int_equal(f->v.stats.protocol_errors, pe);
    assert_clean(f);
    assert_int_equal(count_fds(), before);
    /* From scratch: nothing of the old connection is assumed. */
    fe_connect(f);
    assert_false(f->v.features_set);
    assert_int_equal(f->v.protocol_features, 0);
    qemu_sequence(f, 0);
    enable_rings(f);
    assert_true(ready(f, 0) && ready(f, 1));
    assert_int_equal(f->v.stats.connections, 2);
    /* The backend itself can drop the frontend too. */
    cw_vhost_disconnect(&f->v, "test says so");
    assert_string_equal(f->v.last_error, "test says so");
    assert_clean(f);
    char c;
    assert_int_equal(recv(f->sock, &c, 1, 0), 0); /* the frontend sees EOF */
    fe_close(f);
    assert_int_equal(count_fds(), before);
}

static void test_second_frontend_refused(void **state)
{
    struct fx *f = fx_of(state);
    fe_connect(f);
    int second = fe_connect_sock(f->path);
    cw_vhost_on_listen(&f->v);
    assert_int_equal(f->v.stats.refused_connections, 1);
    char c;
    assert_int_equal(recv(second, &c, 1, 0), 0); /* closed at once */
    close(second);
    /* The first one is unaffected. */
    assert_int_equal(get_u64(f, CW_VU_GET_FEATURES), f->net->offered | F_PROTO);
    /* Nothing pending: on_listen and on_conn return without blocking. */
    cw_vhost_on_listen(&f->v);
    assert_true(cw_vhost_on_conn(&f->v));
}

static void test_several_messages_in_one_read(void **state)
{
    struct fx *f = fx_of(state);
    fe_connect(f);
    /* Three requests queued before the backend runs: one call handles all. */
    fe_send(f, CW_VU_GET_FEATURES, CW_VU_VERSION, NULL, 0, NULL, 0);
    fe_send(f, CW_VU_SET_OWNER, CW_VU_VERSION, NULL, 0, NULL, 0);
    fe_send(f, CW_VU_GET_QUEUE_NUM, CW_VU_VERSION, NULL, 0, NULL, 0);
    assert_true(cw_vhost_on_conn(&f->v));
    assert_int_equal(fe_reply_u64(f, CW_VU_GET_FEATURES), f->net->offered | F_PROTO);
    assert_int_equal(fe_reply_u64(f, CW_VU_GET_QUEUE_NUM), 1);
    assert_true(f->v.owner_set);
    assert_int_equal(f->v.stats.messages, 3);
}

static void test_message_in_pieces(void **state)
{
    struct fx *f = fx_of(state);
    fe_connect(f);
    /* A header split over two writes arrives as one message, as long as
     * the rest comes in time. */
    uint64_t feats = guest_features(f);
    uint8_t buf[CW_VU_HDR_SIZE + 8];
    struct cw_vu_hdr h = {.request = CW_VU_SET_FEATURES, .flags = CW_VU_VERSION, .size = 8};
    memcpy(buf, &h, sizeof(h));
    memcpy(buf + sizeof(h), &feats, 8);
    assert_int_equal(send(f->sock, buf, 5, 0), 5);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        usleep(100 * 1000);
        _exit(send(f->sock, buf + 5, sizeof(buf) - 5, 0) == (ssize_t)(sizeof(buf) - 5) ? 0 : 1);
    }
    assert_true(cw_vhost_on_conn(&f->v));
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(f->v.features_set);
    assert_int_equal(f->v.features_acked, feats);
    assert_int_equal(f->v.stats.protocol_errors, 0);
}

/* --- hostile frontends --- */

/* A well-formed table of n disjoint 1 MiB regions (each over its own dup of
 * the frontend's memfd). */
static struct cw_vu_mem_table table_of(uint32_t n)
{
    struct cw_vu_mem_table t = {.nregions = n};
    for (uint32_t i = 0; i < n && i < CW_VU_MAX_FDS; i++)
        t.r[i] = (struct cw_vu_region){.gpa = (uint64_t)i * MEM_SIZE, .size = MEM_SIZE,
                                       .uva = 0x100000000ull + (uint64_t)i * MEM_SIZE};
    return t;
}

struct hostile {
    int before;
    uint64_t errors;
};

static void hostile_begin(struct fx *f, struct hostile *h, bool configured)
{
    h->before = count_fds();
    h->errors = f->v.stats.protocol_errors;
    fe_connect(f);
    if (configured) {
        qemu_sequence(f, 0);
        enable_rings(f);
        assert_true(ready(f, 0) && ready(f, 1));
    }
}

static void hostile_end(struct fx *f, struct hostile *h, const char *what, const char *expect)
{
    if (cw_vhost_on_conn(&f->v))
        fail_msg("%s: connection kept", what);
    assert_int_equal(f->v.stats.protocol_errors, h->errors + 1);
    if (!strstr(f->v.last_error, expect))
        fail_msg("%s: closed for '%s', expected '%s'", what, f->v.last_error, expect);
    assert_clean(f);
    fe_close(f);
    int now = count_fds();
    if (now != h->before)
        fail_msg("%s: %d fds before, %d after", what, h->before, now);
}

/* One hostile message on a fresh (or fully configured) connection. */
static void hostile_msg(struct fx *f, bool configured, const char *what, uint32_t req,
                        uint32_t flags, const void *payload, uint32_t len, uint32_t wire_size,
                        unsigned nfds, const char *expect)
{
    struct hostile h;
    hostile_begin(f, &h, configured);
    int fds[16];
    assert_true(nfds <= 16);
    for (unsigned i = 0; i < nfds; i++)
        fds[i] = dup(f->memfd);
    fe_send_raw(f, req, flags, payload, len, wire_size, fds, nfds);
    for (unsigned i = 0; i < nfds; i++)
        close(fds[i]);
    hostile_end(f, &h, what, expect);
}

static void test_hostile_headers(void **state)
{
    struct fx *f = fx_of(state);
    const uint32_t V = CW_VU_VERSION;
    hostile_msg(f, false, "version 2", CW_VU_GET_FEATURES, 0x2, NULL, 0, 0, 0, "version");
    hostile_msg(f, false, "version 0", CW_VU_GET_FEATURES, 0x0, NULL, 0, 0, 0, "version");
    hostile_msg(f, true, "reply flag", CW_VU_SET_OWNER, V | CW_VU_FLAG_REPLY, NULL, 0, 0, 0,
                "reply flag");
    hostile_msg(f, false, "unknown flag", CW_VU_SET_OWNER, V | 0x100, NULL, 0, 0, 0, "flag");
    /* Oversize: refused on the header alone, the payload is never read. */
    hostile_msg(f, true, "oversize", CW_VU_SET_MEM_TABLE, V, NULL, 0, CW_VU_MAX_PAYLOAD + 1, 0,
                "too large");
    hostile_msg(f, false, "huge size", 200, V, NULL, 0, UINT32_MAX, 2, "too large");
}

static void test_hostile_sizes(void **state)
{
    struct fx *f = fx_of(state);
    const uint32_t V = CW_VU_VERSION;
    uint8_t zero[64] = {0};
    static const struct {
        uint32_t req, size;
        unsigned nfds;
    } cases[] = {
        {CW_VU_GET_FEATURES, 8, 0},        {CW_VU_SET_FEATURES, 4, 0},
        {CW_VU_SET_FEATURES, 16, 0},       {CW_VU_SET_OWNER, 8, 0},
        {CW_VU_RESET_OWNER, 1, 0},         {CW_VU_SET_MEM_TABLE, 4, 0},
        {CW_VU_SET_VRING_NUM, 4, 0},       {CW_VU_SET_VRING_NUM, 12, 0},
        {CW_VU_SET_VRING_ADDR, 32, 0},     {CW_VU_SET_VRING_ADDR, 48, 0},
        {CW_VU_SET_VRING_BASE, 0, 0},      {CW_VU_GET_VRING_BASE, 16, 0},
        {CW_VU_SET_VRING_KICK, 4, 1},      {CW_VU_SET_VRING_CALL, 16, 1},
        {CW_VU_SET_VRING_ERR, 0, 1},       {CW_VU_GET_PROTOCOL_FEATURES, 8, 0},
        {CW_VU_SET_PROTOCOL_FEATURES, 0, 0}, {CW_VU_GET_QUEUE_NUM, 4, 0},
        {CW_VU_SET_VRING_ENABLE, 4, 0},    {CW_VU_NET_SET_MTU, 2, 0},
        {CW_VU_RESET_DEVICE, 8, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char what[64];
        snprintf(what, sizeof(what), "%s size %u", cw_vu_request_name(cases[i].req),
                 cases[i].size);
        hostile_msg(f, i % 2 == 0, what, cases[i].req, V, zero, cases[i].size, cases[i].size,
                    cases[i].nfds, "size");
    }
    /* A memory table whose size does not match its region count. */
    struct cw_vu_mem_table t = {.nregions = 1};
    hostile_msg(f, false, "mem table short", CW_VU_SET_MEM_TABLE, V, &t,
                (uint32_t)mem_table_size(1) - 8, (uint32_t)mem_table_size(1) - 8, 1, "size");
    hostile_msg(f, false, "mem table long", CW_VU_SET_MEM_TABLE, V, &t,
                (uint32_t)mem_table_size(2), (uint32_t)mem_table_size(2), 1, "size");
}

static void test_hostile_fds(void **state)
{
    struct fx *f = fx_of(state);
    const uint32_t V = CW_VU_VERSION;
    uint64_t zero = 0;
    hostile_msg(f, false, "fd on SET_OWNER", CW_VU_SET_OWNER, V, NULL, 0, 0, 1, "takes none");
    hostile_msg(f, true, "fds on SET_FEATURES", CW_VU_SET_FEATURES, V, &zero, 8, 8, 3,
                "takes none");
    hostile_msg(f, false, "fd on unknown with bad size", 300, V, NULL, 0, 5000, 1, "too large");
    /* More fds than a message may carry: all closed. */
    struct cw_vu_mem_table t = table_of(8);
    hostile_msg(f, false, "9 fds", CW_VU_SET_MEM_TABLE, V, &t, (uint32_t)mem_table_size(8),
                (uint32_t)mem_table_size(8), 9, "fds");
    hostile_msg(f, false, "16 fds on kick", CW_VU_SET_VRING_KICK, V, &zero, 8, 8, 16, "fds");
    /* Ring fd messages: exactly one fd, or none with the no-fd flag. */
    hostile_msg(f, false, "kick without fd", CW_VU_SET_VRING_KICK, V, &zero, 8, 8, 0, "one fd");
    hostile_msg(f, false, "call with two fds", CW_VU_SET_VRING_CALL, V, &zero, 8, 8, 2,
                "one fd");
    uint64_t nofd = CW_VU_VRING_NOFD;
    hostile_msg(f, false, "call no-fd flag with fd", CW_VU_SET_VRING_CALL, V, &nofd, 8, 8, 1,
                "no-fd");
    hostile_msg(f, true, "kick polling", CW_VU_SET_VRING_KICK, V, &nofd, 8, 8, 0, "polling");
}

static void test_hostile_mem_tables(void **state)
{
    struct fx *f = fx_of(state);
    const uint32_t V = CW_VU_VERSION;
    struct cw_vu_mem_table t = table_of(2);
    hostile_msg(f, false, "2 regions 1 fd", CW_VU_SET_MEM_TABLE, V, &t,
                (uint32_t)mem_table_size(2), (uint32_t)mem_table_size(2), 1, "fd count");
    hostile_msg(f, true, "2 regions 3 fds", CW_VU_SET_MEM_TABLE, V, &t,
                (uint32_t)mem_table_size(2), (uint32_t)mem_table_size(2), 3, "fd count");
    uint8_t big[8 + 9 * 32] = {0};
    uint32_t nine = 9;
    memcpy(big, &nine, 4);
    hostile_msg(f, false, "9 regions", CW_VU_SET_MEM_TABLE, V, big, sizeof(big), sizeof(big), 8,
                "too many");
    /* Overlaps and bad regions: refused by the guest memory table check. */
    t.r[1] = t.r[0];
    t.r[1].uva += MEM_SIZE;
    hostile_msg(f, true, "overlap gpa", CW_VU_SET_MEM_TABLE, V, &t, (uint32_t)mem_table_size(2),
                (uint32_t)mem_table_size(2), 2, "overlap");
    t.r[1] = t.r[0];
    t.r[1].gpa += MEM_SIZE;
    hostile_msg(f, false, "overlap uva", CW_VU_SET_MEM_TABLE, V, &t,
                (uint32_t)mem_table_size(2), (uint32_t)mem_table_size(2), 2, "overlap");
    t.nregions = 1;
    t.r[0].size = 2 * MEM_SIZE;
    hostile_msg(f, false, "fd too small", CW_VU_SET_MEM_TABLE, V, &t,
                (uint32_t)mem_table_size(1), (uint32_t)mem_table_size(1), 1, "smaller");
    t.r[0].size = 0;
    hostile_msg(f, false, "empty region", CW_VU_SET_MEM_TABLE, V, &t,
                (uint32_t)mem_table_size(1), (uint32_t)mem_table_size(1), 1, "empty");
    t.r[0].size = MEM_SIZE;
    t.r[0].gpa = UINT64_MAX - 10;
    hostile_msg(f, true, "wrapping region", CW_VU_SET_MEM_TABLE, V, &t,
                (uint32_t)mem_table_size(1), (uint32_t)mem_table_size(1), 1, "wraps");
}

static void test_hostile_rings(void **state)
{
    struct fx *f = fx_of(state);
    const uint32_t V = CW_VU_VERSION;
    struct cw_vu_vring_state s;
    const uint32_t idx[] = {2, 255, 0x80000000u};
    for (size_t i = 0; i < 3; i++) {
        s = (struct cw_vu_vring_state){.index = idx[i], .num = QSIZE};
        hostile_msg(f, i == 0, "num index", CW_VU_SET_VRING_NUM, V, &s, 8, 8, 0, "index");
        hostile_msg(f, false, "base index", CW_VU_SET_VRING_BASE, V, &s, 8, 8, 0, "index");
        hostile_msg(f, true, "get base index", CW_VU_GET_VRING_BASE, V, &s, 8, 8, 0, "index");
        hostile_msg(f, false, "enable index", CW_VU_SET_VRING_ENABLE, V, &s, 8, 8, 0, "index");
    }
    uint64_t k = 2;
    hostile_msg(f, false, "kick index 2", CW_VU_SET_VRING_KICK, V, &k, 8, 8, 1, "index");
    k = 255;
    hostile_msg(f, true, "call index 255", CW_VU_SET_VRING_CALL, V, &k, 8, 8, 1, "index");
    k = 0x200;
    hostile_msg(f, false, "reserved bit", CW_VU_SET_VRING_ERR, V, &k, 8, 8, 1, "undefined");
    const uint32_t bad_num[] = {0, 3, 2048, 1000, 65536};
    for (size_t i = 0; i < 5; i++) {
        s = (struct cw_vu_vring_state){.index = 0, .num = bad_num[i]};
        hostile_msg(f, i == 1, "ring size", CW_VU_SET_VRING_NUM, V, &s, 8, 8, 0, "power of two");
    }
    s = (struct cw_vu_vring_state){.index = 1, .num = 0x10000};
    hostile_msg(f, false, "base > 16 bits", CW_VU_SET_VRING_BASE, V, &s, 8, 8, 0, "base");
    s = (struct cw_vu_vring_state){.index = 1, .num = 2};
    hostile_msg(f, false, "enable 2", CW_VU_SET_VRING_ENABLE, V, &s, 8, 8, 0, "enable");
    uint64_t mtu = 67;
    hostile_msg(f, false, "mtu 67", CW_VU_NET_SET_MTU, V, &mtu, 8, 8, 0, "MTU");
    mtu = 65536;
    hostile_msg(f, false, "mtu 65536", CW_VU_NET_SET_MTU, V, &mtu, 8, 8, 0, "MTU");
    uint64_t feat = CW_BIT(63);
    hostile_msg(f, false, "feature not offered", CW_VU_SET_FEATURES, V, &feat, 8, 8, 0,
                "does not offer");
    feat = CW_BIT(CW_VU_PROTOCOL_F_CONFIG);
    hostile_msg(f, false, "protocol feature not offered", CW_VU_SET_PROTOCOL_FEATURES, V, &feat,
                8, 8, 0, "does not offer");
}

/* Ring addresses: validated against the memory table over the whole ring. */
static void hostile_addr(struct fx *f, const char *what, int q, uint64_t desc, uint64_t avail,
                         uint64_t used, uint32_t flags, const char *expect)
{
    struct hostile h;
    hostile_begin(f, &h, true);
    struct cw_vu_vring_addr a = ring_addr(f, q & 1);
    a.index = (uint32_t)q;
    if (desc)
        a.desc_uva = desc;
    if (avail)
        a.avail_uva = avail;
    if (used)
        a.used_uva = used;
    a.flags = flags;
    fe_send(f, CW_VU_SET_VRING_ADDR, CW_VU_VERSION, &a, sizeof(a), NULL, 0);
    hostile_end(f, &h, what, expect);
}

static void test_hostile_addresses(void **state)
{
    struct fx *f = fx_of(state);
    /* The frontend memory is mapped anew per connection; compute from a
     * temporary connection's layout inside the helper via offsets. */
    struct hostile h;
    hostile_begin(f, &h, true);
    uint64_t end = uva(f, MEM_SIZE);
    struct cw_vu_vring_addr a = ring_addr(f, 0);
    a.desc_uva = end - 16; /* one descriptor fits, 256 do not */
    fe_send(f, CW_VU_SET_VRING_ADDR, CW_VU_VERSION, &a, sizeof(a), NULL, 0);
    hostile_end(f, &h, "desc past the end", "outside");

    hostile_begin(f, &h, true);
    a = ring_addr(f, 1);
    a.used_uva = uva(f, MEM_SIZE) - vring_used_size(QSIZE) + 2;
    fe_send(f, CW_VU_SET_VRING_ADDR, CW_VU_VERSION, &a, sizeof(a), NULL, 0);
    hostile_end(f, &h, "used straddles the end", "outside");

    hostile_begin(f, &h, true);
    a = ring_addr(f, 0);
    a.avail_uva = ring_gpa[0][1]; /* a guest-physical address, not a frontend one */
    fe_send(f, CW_VU_SET_VRING_ADDR, CW_VU_VERSION, &a, sizeof(a), NULL, 0);
    hostile_end(f, &h, "gpa as uva", "outside");

    hostile_begin(f, &h, true);
    a = ring_addr(f, 0);
    a.desc_uva = UINT64_MAX - 8;
    fe_send(f, CW_VU_SET_VRING_ADDR, CW_VU_VERSION, &a, sizeof(a), NULL, 0);
    hostile_end(f, &h, "wrapping desc", "outside");

    hostile_addr(f, "log flag", 0, 0, 0, 0, CW_VU_VRING_F_LOG, "logging");
    hostile_addr(f, "unknown addr flag", 1, 0, 0, 0, 0x80, "flags");
    hostile_addr(f, "index 2", 2, 0, 0, 0, 0, "index");

    /* Order: addresses need the memory table and the ring size first. */
    hostile_begin(f, &h, false);
    a = ring_addr(f, 0);
    fe_send(f, CW_VU_SET_VRING_ADDR, CW_VU_VERSION, &a, sizeof(a), NULL, 0);
    hostile_end(f, &h, "addr before mem table", "before the memory table");

    hostile_begin(f, &h, false);
    struct cw_vu_mem_table t = one_region(f, 0);
    send_mem_table(f, &t, 0);
    fe_send(f, CW_VU_SET_VRING_ADDR, CW_VU_VERSION, &a, sizeof(a), NULL, 0);
    hostile_end(f, &h, "addr before num", "before the ring size");

    /* A bigger ring that no longer fits where its addresses are. */
    hostile_begin(f, &h, true);
    struct cw_vu_vring_state s = {.index = 0, .num = 1024};
    struct cw_vu_vring_addr near_end = ring_addr(f, 0);
    near_end.desc_uva = uva(f, MEM_SIZE - 16 * QSIZE);
    msg(f, CW_VU_SET_VRING_ADDR, 0, &near_end, sizeof(near_end), NULL, 0);
    fe_send(f, CW_VU_SET_VRING_NUM, CW_VU_VERSION, &s, sizeof(s), NULL, 0);
    hostile_end(f, &h, "num grows past memory", "does not fit");
}

static void test_hostile_stream(void **state)
{
    struct fx *f = fx_of(state);
    struct hostile h;
    /* Half a header, then silence: closed after the timeout, not hung. */
    hostile_begin(f, &h, true);
    struct cw_vu_hdr hdr = {.request = CW_VU_SET_FEATURES, .flags = CW_VU_VERSION, .size = 8};
    assert_int_equal(send(f->sock, &hdr, 6, 0), 6);
    uint64_t t0 = cw_now_ms();
    hostile_end(f, &h, "stalled header", "stalled");
    assert_true(cw_now_ms() - t0 < 2000);

    /* Header promising a payload that never comes. */
    hostile_begin(f, &h, false);
    assert_int_equal(send(f->sock, &hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
    hostile_end(f, &h, "stalled payload", "stalled");

    /* Part of the payload, then the frontend goes away. */
    hostile_begin(f, &h, true);
    uint8_t buf[sizeof(hdr) + 4] = {0};
    memcpy(buf, &hdr, sizeof(hdr));
    int efd = eventfd(0, EFD_CLOEXEC);
    fe_send_raw(f, CW_VU_SET_FEATURES, CW_VU_VERSION, buf + sizeof(hdr), 4, 8, &efd, 1);
    close(efd);
    shutdown(f->sock, SHUT_WR);
    hostile_end(f, &h, "eof in payload", "middle of a message");
}

/* --- the state-free checks on their own --- */

static struct cw_vu_msg *new_msg(uint32_t req, uint32_t size, unsigned nfds)
{
    static struct cw_vu_msg m;
    memset(&m, 0, sizeof(m));
    m.hdr = (struct cw_vu_hdr){.request = req, .flags = CW_VU_VERSION, .size = size};
    m.nfds = nfds;
    for (unsigned i = 0; i < CW_VU_MAX_FDS; i++)
        m.fds[i] = -1;
    return &m;
}

static void test_messages_pure(void **state)
{
    (void)state;
    const char *why = NULL;
    struct cw_vu_hdr h = {.request = 1, .flags = 1, .size = 0};
    assert_int_equal(cw_vu_check_header(&h, &why), 0);
    h.flags = 1 | CW_VU_FLAG_NEED_REPLY;
    assert_int_equal(cw_vu_check_header(&h, &why), 0);
    h.size = CW_VU_MAX_PAYLOAD;
    assert_int_equal(cw_vu_check_header(&h, &why), 0);
    h.size = CW_VU_MAX_PAYLOAD + 1;
    assert_int_equal(cw_vu_check_header(&h, &why), -1);
    h.size = 0;
    h.flags = 3;
    assert_int_equal(cw_vu_check_header(&h, &why), -1);
    h.flags = 1 | CW_VU_FLAG_REPLY;
    assert_int_equal(cw_vu_check_header(&h, &why), -1);
    h.flags = 1 | 0x80000000u;
    assert_int_equal(cw_vu_check_header(&h, &why), -1);

    struct cw_vu_msg *m = new_msg(CW_VU_SET_VRING_NUM, 8, 0);
    for (uint32_t num = 1; num <= 2048; num++) {
        m->p.state = (struct cw_vu_vring_state){.index = 1, .num = num};
        bool pow2 = (num & (num - 1)) == 0 && num <= 1024;
        assert_int_equal(cw_vu_check_msg(m, &why), pow2 ? CW_VU_OK : CW_VU_BAD);
    }
    m = new_msg(CW_VU_SET_VRING_KICK, 8, 1);
    m->p.u64 = 1;
    assert_int_equal(cw_vu_check_msg(m, &why), CW_VU_OK);
    m->p.u64 = 1 | CW_VU_VRING_NOFD;
    assert_int_equal(cw_vu_check_msg(m, &why), CW_VU_BAD);
    m = new_msg(CW_VU_SET_VRING_CALL, 8, 0);
    m->p.u64 = 1 | CW_VU_VRING_NOFD;
    assert_int_equal(cw_vu_check_msg(m, &why), CW_VU_OK);
    m = new_msg(CW_VU_SET_MEM_TABLE, 8, 0);
    assert_int_equal(cw_vu_check_msg(m, &why), CW_VU_OK); /* an empty table */
    m = new_msg(CW_VU_SET_MEM_TABLE, 8 + 8 * 32, 8);
    m->p.mem.nregions = 8;
    assert_int_equal(cw_vu_check_msg(m, &why), CW_VU_OK);
    m->nfds = 7;
    assert_int_equal(cw_vu_check_msg(m, &why), CW_VU_BAD);
    m = new_msg(CW_VU_NET_SET_MTU, 8, 0);
    m->p.u64 = 68;
    assert_int_equal(cw_vu_check_msg(m, &why), CW_VU_OK);
    m->p.u64 = 65535;
    assert_int_equal(cw_vu_check_msg(m, &why), CW_VU_OK);
    m->p.u64 = (1ull << 32) + 1500;
    assert_int_equal(cw_vu_check_msg(m, &why), CW_VU_BAD);
    /* Unknown requests are not judged by shape here. */
    assert_int_equal(cw_vu_check_msg(new_msg(CW_VU_SEND_RARP, 8, 0), &why), CW_VU_UNKNOWN);
    assert_int_equal(cw_vu_check_msg(new_msg(0, 0, 3), &why), CW_VU_UNKNOWN);
    assert_int_equal(cw_vu_check_msg(new_msg(CW_VU_GET_CONFIG, 20, 0), &why), CW_VU_UNKNOWN);

    assert_true(cw_vu_has_reply(CW_VU_GET_VRING_BASE));
    assert_false(cw_vu_has_reply(CW_VU_SET_VRING_BASE));
    assert_string_equal(cw_vu_request_name(CW_VU_SET_MEM_TABLE), "SET_MEM_TABLE");
    assert_string_equal(cw_vu_request_name(12345), "UNKNOWN");

    m = new_msg(CW_VU_SET_MEM_TABLE, 8 + 2 * 32, 2);
    m->p.mem.nregions = 2;
    m->p.mem.r[1] = (struct cw_vu_region){.gpa = 1, .size = 2, .uva = 3, .mmap_offset = 4};
    struct cw_region_desc d[CW_VU_MAX_FDS];
    assert_int_equal(cw_vu_mem_regions(m, d), 2);
    assert_int_equal(d[1].gpa, 1);
    assert_int_equal(d[1].size, 2);
    assert_int_equal(d[1].uva, 3);
    assert_int_equal(d[1].mmap_offset, 4);
}

static void test_init_socket_path(void **state)
{
    (void)state;
    struct cw_net *net = calloc(1, sizeof(*net));
    assert_non_null(net);
    struct cw_net_params p = {.mac = {2, 0, 0, 0, 0, 1}};
    struct cw_vhost v;
    cw_net_init(net, &p, &v.mem.gmem, &null_port, NULL, irq, NULL);
    char path[108];
    snprintf(path, sizeof(path), "/tmp/cw-test-vhost-init-%d", (int)getpid());
    /* A regular file at the path is somebody's data: refused, kept. */
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(cw_vhost_init(&v, path, net, CW_GMEM_PERSISTENT, NULL, NULL), -1);
    assert_int_equal(errno, EEXIST);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    unlink(path);
    /* A stale socket from an earlier run is replaced. */
    assert_int_equal(cw_vhost_init(&v, path, net, CW_GMEM_PERSISTENT, NULL, NULL), 0);
    assert_ptr_equal(net->mem, &v.mem.gmem);
    close(v.listen_fd); /* "crash": the socket file stays behind */
    v.listen_fd = -1;
    free(v.path);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(cw_vhost_init(&v, path, net, CW_GMEM_PERSISTENT, NULL, NULL), 0);
    /* A live socket (a device still serving) is not taken over. */
    struct cw_vhost other;
    assert_int_equal(cw_vhost_init(&other, path, net, CW_GMEM_PERSISTENT, NULL, NULL), -1);
    assert_int_equal(errno, EADDRINUSE);
    assert_ptr_equal(net->mem, &v.mem.gmem); /* a failed init changes nothing */
    /* Works without event callbacks, too. */
    int s = fe_connect_sock(path);
    cw_vhost_on_listen(&v);
    assert_true(v.conn_fd >= 0);
    close(s);
    assert_false(cw_vhost_on_conn(&v));
    cw_vhost_destroy(&v);
    assert_int_equal(stat(path, &st), -1);
    /* Path too long for a unix socket. */
    char longpath[200];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    assert_int_equal(cw_vhost_init(&v, longpath, net, CW_GMEM_PERSISTENT, NULL, NULL), -1);
    free(net);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_persistent, teardown)
#define TM(fn) cmocka_unit_test_setup_teardown(fn, setup_map_per_access, teardown)

int main(void)
{
    cw_log_set_prefix("test_vhost");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages_pure),
        cmocka_unit_test(test_init_socket_path),
        T(test_qemu_sequence_starts_queues),
        TM(test_qemu_sequence_starts_queues),
        T(test_vring_base_roundtrip),
        TM(test_vring_base_roundtrip),
        T(test_reply_ack),
        T(test_err_fd_signalled_on_start_failure),
        T(test_no_protocol_features_rings_start_enabled),
        T(test_enable_before_features_and_disable),
        T(test_mem_table_while_running),
        TM(test_mem_table_while_running),
        T(test_kick_fd_not_an_eventfd),
        T(test_reset_owner),
        T(test_disconnect_and_reconnect),
        TM(test_disconnect_and_reconnect),
        T(test_second_frontend_refused),
        T(test_several_messages_in_one_read),
        T(test_message_in_pieces),
        T(test_hostile_headers),
        T(test_hostile_sizes),
        T(test_hostile_fds),
        T(test_hostile_mem_tables),
        T(test_hostile_rings),
        T(test_hostile_addresses),
        T(test_hostile_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
