/* Fuzz target: the vhost-user backend against a hostile frontend.
 *
 * A real cw_vhost listens on a unix socket; each input connects as the
 * frontend and sends a sequence of messages over it, one at a time, with fds
 * attached by SCM_RIGHTS (eventfds, memfds for SET_MEM_TABLE, pipes,
 * /dev/null), then lets the backend handle each. Between messages the
 * device may be kicked and run (cw_net_tx/rx over the mapped guest memory),
 * so whatever queue the messages managed to start is exercised through both
 * gmem strategies.
 *
 * Input layout: u8 cfg (bit0: map-per-access backend), then messages:
 *   u8 op      bits0-4 request (table below; 31 = raw u32 from the input),
 *              bit5 NEED_REPLY, bit6 raw header flags and size from the
 *              input, bit7 kick and run the device afterwards
 *   u8 fdspec  bits0-3 fds to attach (up to 12; 15: a second frontend
 *              connects first and must be refused), bits4-5 their kind
 *              (natural, memfd, pipe, /dev/null), bit6 "helpful": fix the
 *              payload up into a well-formed value, bit7 send only part of
 *              the message and shut the write side
 *   [u32 flags, u32 size when raw], [u8 nregions for SET_MEM_TABLE]
 *   the payload (zero-padded), [u16 offset, u8 len, bytes: guest memory
 *   content written into the first memfd, when helpful], [u8 cut: bits0-2
 *   eighths of the message sent, bit3 stall instead of EOF, bit4 send it
 *   whole and close the connection at once]
 *
 * Checked: no crash; the backend never holds more fds than its state can
 * own (a connection, 3 per ring, one per memory region); after the input
 * and a disconnect, exactly the fds open before it remain; the events
 * reported to the loop (kick fd and connection changes) are consistent. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/net.h"
#include "fuzz.h"
#include "fuzz_port.h"
#include "util/log.h"
#include "vhost/backend.h"
#include "vhost/messages.h"

#define MAX_MSGS 64
#define MEMFD_SIZE (256u << 10)
#define MAX_OWN 32
#define REGION_GPA_STEP 0x100000ull
#define REGION_UVA_BASE 0x7f0000000000ull
/* What a backend may legitimately hold: the connection, kick/call/err per
 * ring, one fd per memory region. */
#define BACKEND_MAX_FDS (1 + 3 * CW_NET_NUM_QUEUES + CW_GMEM_MAX_REGIONS)

static const uint32_t requests[31] = {
    CW_VU_GET_FEATURES, CW_VU_SET_FEATURES, CW_VU_SET_OWNER, CW_VU_RESET_OWNER,
    CW_VU_SET_MEM_TABLE, CW_VU_SET_VRING_NUM, CW_VU_SET_VRING_ADDR, CW_VU_SET_VRING_BASE,
    CW_VU_GET_VRING_BASE, CW_VU_SET_VRING_KICK, CW_VU_SET_VRING_CALL, CW_VU_SET_VRING_ERR,
    CW_VU_GET_PROTOCOL_FEATURES, CW_VU_SET_PROTOCOL_FEATURES, CW_VU_GET_QUEUE_NUM,
    CW_VU_SET_VRING_ENABLE, CW_VU_NET_SET_MTU, CW_VU_RESET_DEVICE, CW_VU_SET_LOG_BASE,
    CW_VU_SET_LOG_FD, CW_VU_SEND_RARP, CW_VU_SET_BACKEND_REQ_FD, CW_VU_IOTLB_MSG,
    CW_VU_GET_CONFIG, CW_VU_SET_CONFIG, CW_VU_VRING_KICK, CW_VU_GET_MAX_MEM_SLOTS,
    CW_VU_ADD_MEM_REG, CW_VU_REM_MEM_REG, CW_VU_SET_STATUS, CW_VU_GET_STATUS,
};

struct backend {
    bool ready;
    struct cw_net *net;
    struct cw_vhost v;
    struct fuzz_port port;
    char path[108];
    int kick_fd[CW_NET_NUM_QUEUES]; /* as reported by kick_fd_changed */
    int conn_fd;                    /* as reported by conn_changed */
};

static struct backend B[2];
static char dir[64];

/* The frontend's side. */
static int client = -1;
static int own[MAX_OWN];
static unsigned n_own;

static void on_kick_fd(void *ctx, int q, int old_fd, int new_fd)
{
    struct backend *b = ctx;
    FUZZ_CHECK(q == CW_NET_RXQ || q == CW_NET_TXQ);
    FUZZ_CHECK(b->kick_fd[q] == old_fd);
    b->kick_fd[q] = new_fd;
}

static void on_conn(void *ctx, int old_fd, int new_fd)
{
    struct backend *b = ctx;
    FUZZ_CHECK(b->conn_fd == old_fd);
    b->conn_fd = new_fd;
}

static void on_queues(void *ctx)
{
    (void)ctx;
}

static const struct cw_vhost_events events = {
    .kick_fd_changed = on_kick_fd,
    .conn_changed = on_conn,
    .queues_changed = on_queues,
};

static void on_irq(void *ctx, int q)
{
    cw_vhost_interrupt(ctx, q);
}

static void cleanup(void)
{
    for (int i = 0; i < 2; i++)
        if (B[i].ready) {
            cw_vhost_destroy(&B[i].v);
            fuzz_port_free(&B[i].port);
            free(B[i].net);
            B[i].ready = false;
        }
    if (dir[0])
        rmdir(dir);
}

static struct backend *backend(int which)
{
    struct backend *b = &B[which];
    if (b->ready)
        return b;
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/cw-fuzz-vhost-XXXXXX");
        if (!mkdtemp(dir))
            abort();
        atexit(cleanup);
        cw_log_set_prefix("fuzz_vhost");
        /* Kicking through a pipe whose read end the backend closed must
         * be an EPIPE, not the end of the fuzzer. */
        signal(SIGPIPE, SIG_IGN);
    }
    snprintf(b->path, sizeof(b->path), "%s/vhost%d.sock", dir, which);
    b->net = calloc(1, sizeof(*b->net));
    if (!b->net)
        abort();
    /* One backend offers everything, the other the bare minimum. */
    struct cw_net_params p = {.mac = {0x52, 0x54, 0, 0, 0, 2}, .mtu = which ? 0 : 1500,
                              .offloads = which == 0, .mrg_rxbuf = which == 0, .budget = 8};
    fuzz_port_init(&b->port);
    cw_net_init(b->net, &p, NULL, &fuzz_port_ops, &b->port, on_irq, &b->v);
    cw_net_set_link(b->net, true);
    b->kick_fd[0] = b->kick_fd[1] = -1;
    b->conn_fd = -1;
    if (cw_vhost_init(&b->v, b->path, b->net,
                      which ? CW_GMEM_MAP_PER_ACCESS : CW_GMEM_PERSISTENT, &events, b) < 0)
        abort();
    /* Messages are sent whole or cut short; a deliberately stalled one costs
     * this much time, so keep it short. */
    b->v.msg_timeout_ms = 2;
    b->ready = true;
    return b;
}

static unsigned count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        abort();
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void keep(int fd)
{
    if (n_own == MAX_OWN) {
        close(own[0]);
        memmove(own, own + 1, (MAX_OWN - 1) * sizeof(own[0]));
        n_own--;
    }
    own[n_own++] = fd;
}

static void connect_client(struct backend *b)
{
    client = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(client >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, b->path, strlen(b->path) + 1);
    FUZZ_CHECK(connect(client, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    cw_vhost_on_listen(&b->v);
    FUZZ_CHECK(b->v.conn_fd >= 0 && b->conn_fd == b->v.conn_fd);
    /* One inbound frame waiting, so a started RX queue writes guest memory. */
    fuzz_port_free(&b->port);
    uint8_t frame[CW_NET_META_LEN + 60];
    memset(frame, 0, sizeof(frame));
    memset(frame + CW_NET_META_LEN, 0xAB, 60);
    fuzz_port_add_rx(&b->port, frame, sizeof(frame));
}

static void second_frontend(struct backend *b)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, b->path, strlen(b->path) + 1);
    FUZZ_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    int conn = b->v.conn_fd;
    FUZZ_CHECK(conn >= 0); /* the harness always has a connection here */
    uint64_t refused = b->v.stats.refused_connections;
    cw_vhost_on_listen(&b->v);
    FUZZ_CHECK(b->v.conn_fd == conn);
    FUZZ_CHECK(b->v.stats.refused_connections == refused + 1);
    /* Closed by the backend: end of file, nothing else. */
    char c;
    FUZZ_CHECK(recv(fd, &c, 1, MSG_DONTWAIT) == 0);
    close(fd);
}

static void drain_replies(void)
{
    if (client < 0)
        return;
    uint8_t buf[512];
    while (recv(client, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
}

enum fd_kind { K_NATURAL, K_MEMFD, K_PIPE, K_NULL, K_EVENTFD };

/* An fd of the asked kind (natural: a memfd for SET_MEM_TABLE, an eventfd
 * otherwise). A pipe's write end stays ours, to kick through. */
static int make_fd(enum fd_kind kind, uint32_t request, enum fd_kind *made)
{
    if (kind == K_NATURAL)
        kind = request == CW_VU_SET_MEM_TABLE ? K_MEMFD : K_EVENTFD;
    *made = kind;
    switch (kind) {
    case K_MEMFD: {
        int fd = memfd_create("fuzz-guest", MFD_CLOEXEC);
        FUZZ_CHECK(fd >= 0);
        FUZZ_CHECK(ftruncate(fd, MEMFD_SIZE) == 0);
        return fd;
    }
    case K_PIPE: {
        int p[2];
        FUZZ_CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
        keep(p[1]);
        return p[0];
    }
    case K_NULL: {
        int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        FUZZ_CHECK(fd >= 0);
        return fd;
    }
    default: {
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        FUZZ_CHECK(fd >= 0);
        return fd;
    }
    }
}

/* Make a payload well formed, so the fuzzer spends its time past the
 * checks (the corpus and raw mode cover the malformed ones). */
static void help(struct cw_vu_msg *m, const struct backend *b, unsigned nfds)
{
    switch (m->hdr.request) {
    case CW_VU_SET_FEATURES:
        m->p.u64 &= b->v.features_offered;
        break;
    case CW_VU_SET_PROTOCOL_FEATURES:
        m->p.u64 &= CW_BIT(CW_VU_PROTOCOL_F_MQ) | CW_BIT(CW_VU_PROTOCOL_F_REPLY_ACK) |
                    CW_BIT(CW_VU_PROTOCOL_F_NET_MTU);
        break;
    case CW_VU_SET_VRING_NUM:
        m->p.state.index %= CW_NET_NUM_QUEUES;
        m->p.state.num = 1u << (m->p.state.num % 11);
        break;
    case CW_VU_SET_VRING_BASE:
    case CW_VU_GET_VRING_BASE:
        m->p.state.index %= CW_NET_NUM_QUEUES;
        m->p.state.num &= 0xFFFF;
        break;
    case CW_VU_SET_VRING_ENABLE:
        m->p.state.index %= CW_NET_NUM_QUEUES;
        m->p.state.num %= 2;
        break;
    case CW_VU_SET_VRING_ADDR: {
        struct cw_vu_vring_addr *a = &m->p.addr;
        a->index %= CW_NET_NUM_QUEUES;
        a->flags = 0;
        /* Inside region 0, at the spec's alignments. */
        a->desc_uva = REGION_UVA_BASE + (a->desc_uva % MEMFD_SIZE & ~15ull);
        a->avail_uva = REGION_UVA_BASE + (a->avail_uva % MEMFD_SIZE & ~1ull);
        a->used_uva = REGION_UVA_BASE + (a->used_uva % MEMFD_SIZE & ~3ull);
        break;
    }
    case CW_VU_SET_VRING_KICK:
    case CW_VU_SET_VRING_CALL:
    case CW_VU_SET_VRING_ERR:
        m->p.u64 = (m->p.u64 % CW_NET_NUM_QUEUES) | (nfds ? 0 : CW_VU_VRING_NOFD);
        break;
    case CW_VU_NET_SET_MTU:
        m->p.u64 = CW_VU_MIN_MTU + m->p.u64 % (CW_VU_MAX_MTU - CW_VU_MIN_MTU + 1);
        break;
    case CW_VU_SET_MEM_TABLE:
        for (unsigned i = 0; i < m->p.mem.nregions && i < CW_VU_MAX_FDS; i++) {
            struct cw_vu_region *r = &m->p.mem.r[i];
            r->gpa = i * REGION_GPA_STEP + (r->gpa & 1 ? 0x40000000ull : 0);
            r->size = MEMFD_SIZE;
            r->uva = REGION_UVA_BASE + i * REGION_GPA_STEP;
            r->mmap_offset = 0;
        }
        break;
    default:
        break;
    }
}

/* Payload size the request is defined with (0 for the unserved ones, which
 * get an input-chosen size instead). */
static uint32_t natural_size(uint32_t request, uint32_t nregions, struct fuzz_in *in)
{
    switch (request) {
    case CW_VU_SET_FEATURES:
    case CW_VU_SET_PROTOCOL_FEATURES:
    case CW_VU_SET_VRING_KICK:
    case CW_VU_SET_VRING_CALL:
    case CW_VU_SET_VRING_ERR:
    case CW_VU_NET_SET_MTU:
        return 8;
    case CW_VU_SET_VRING_NUM:
    case CW_VU_SET_VRING_BASE:
    case CW_VU_GET_VRING_BASE:
    case CW_VU_SET_VRING_ENABLE:
        return sizeof(struct cw_vu_vring_state);
    case CW_VU_SET_VRING_ADDR:
        return sizeof(struct cw_vu_vring_addr);
    case CW_VU_SET_MEM_TABLE:
        return 8 + 32 * nregions;
    case CW_VU_GET_FEATURES:
    case CW_VU_SET_OWNER:
    case CW_VU_RESET_OWNER:
    case CW_VU_GET_PROTOCOL_FEATURES:
    case CW_VU_GET_QUEUE_NUM:
    case CW_VU_RESET_DEVICE:
        return 0;
    default:
        return fuzz_u8(in);
    }
}

static void send_all(const void *buf, size_t len, const int *fds, unsigned nfds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * 16)];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        memset(&cbuf, 0, sizeof(cbuf));
        mh.msg_control = cbuf.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    /* A backend that already closed the connection is fine: the next
     * on_conn sees it. */
    (void)sendmsg(client, &mh, MSG_NOSIGNAL);
}

/* Run the device over whatever the frontend set up. */
static void run_device(struct backend *b)
{
    uint64_t one = 1;
    for (unsigned i = 0; i < n_own; i++)
        (void)!write(own[i], &one, sizeof(one));
    for (int q = 0; q < CW_NET_NUM_QUEUES; q++)
        if (b->v.vring[q].kick_fd >= 0)
            cw_vhost_on_kick(&b->v, q);
    if (b->v.conn_fd < 0)
        return;
    (void)cw_net_tx(b->net);
    (void)cw_net_rx(b->net);
}

static void one_message(struct backend *b, struct fuzz_in *in)
{
    static struct cw_vu_msg m;
    uint8_t op = fuzz_u8(in), fdspec = fuzz_u8(in);
    uint32_t idx = op & 31;
    memset(&m.hdr, 0, sizeof(m.hdr));
    m.hdr.request = idx < 31 ? requests[idx] : fuzz_u32(in);
    m.hdr.flags = CW_VU_VERSION | ((op & 0x20) ? CW_VU_FLAG_NEED_REPLY : 0);
    uint32_t nregions = 0;
    if (m.hdr.request == CW_VU_SET_MEM_TABLE)
        nregions = fuzz_u8(in) % (CW_VU_MAX_FDS + 2);
    m.hdr.size = natural_size(m.hdr.request, nregions, in);
    if (op & 0x40) {
        m.hdr.flags = fuzz_u32(in);
        m.hdr.size = fuzz_u32(in);
    }
    uint32_t body = m.hdr.size <= CW_VU_MAX_PAYLOAD ? m.hdr.size : 0;
    memset(&m.p, 0, sizeof(m.p));
    fuzz_bytes(in, m.p.raw, body);
    if (m.hdr.request == CW_VU_SET_MEM_TABLE && !(op & 0x40) && body >= 4)
        m.p.mem.nregions = nregions;

    unsigned nfds = fdspec & 15;
    if (nfds == 15) {
        /* A second frontend turns up: refused, the first one unaffected. */
        nfds = 0;
        second_frontend(b);
    }
    if (nfds > 12)
        nfds = 12;
    int fds[16];
    enum fd_kind kinds[16];
    for (unsigned i = 0; i < nfds; i++)
        fds[i] = make_fd((enum fd_kind)((fdspec >> 4) & 3), m.hdr.request, &kinds[i]);
    if (fdspec & 0x40) {
        help(&m, b, nfds);
        /* Guest memory content the device will see through its rings. */
        uint16_t off = fuzz_u16(in);
        uint8_t n = fuzz_u8(in);
        uint8_t bytes[255];
        fuzz_bytes(in, bytes, n);
        for (unsigned i = 0; i < nfds; i++)
            if (kinds[i] == K_MEMFD) {
                (void)!pwrite(fds[i], bytes, n, off);
                break;
            }
    }

    static uint8_t wire[CW_VU_HDR_SIZE + CW_VU_MAX_PAYLOAD];
    memcpy(wire, &m.hdr, CW_VU_HDR_SIZE);
    memcpy(wire + CW_VU_HDR_SIZE, m.p.raw, body);
    size_t len = CW_VU_HDR_SIZE + body;
    bool cut = fdspec & 0x80;
    uint8_t cutb = cut ? fuzz_u8(in) : 0;
    /* Cut short: then EOF in the middle, or (bit3) a frontend that just
     * stops sending, which the backend must give up on after its timeout. */
    bool vanish = cut && (cutb & 16);
    len = cut && !vanish ? (len * (cutb % 8)) / 8 : len;
    bool stall = cut && !vanish && (cutb & 8) && len > 0;
    if (len)
        send_all(wire, len, fds, nfds);
    for (unsigned i = 0; i < nfds; i++) {
        /* Our copies: eventfds stay ours to kick with; the rest go. */
        if (kinds[i] == K_EVENTFD)
            keep(fds[i]);
        else
            close(fds[i]);
    }
    if (vanish) {
        /* The whole message, then the frontend is gone: any reply fails. */
        close(client);
        client = -1;
    } else if (cut && !stall) {
        shutdown(client, SHUT_WR);
    }

    uint64_t t0 = cw_now_ms();
    (void)cw_vhost_on_conn(&b->v);
    drain_replies();
    if (stall) {
        FUZZ_CHECK(b->v.conn_fd < 0); /* gave up on the stalled message */
        FUZZ_CHECK(cw_now_ms() - t0 < 10u * b->v.msg_timeout_ms + 1000u);
    }

    /* The backend owns no more than its state can hold. */
    int held = 0;
    for (int q = 0; q < CW_NET_NUM_QUEUES; q++) {
        const struct cw_vhost_vring *r = &b->v.vring[q];
        held += (r->kick_fd >= 0) + (r->call_fd >= 0) + (r->err_fd >= 0);
        FUZZ_CHECK(b->kick_fd[q] == r->kick_fd);
        /* A running queue has a frontend and memory (its kick fd may have
         * been dropped since, for reporting end of file). */
        if (r->started)
            FUZZ_CHECK(b->v.conn_fd >= 0 && b->v.mem.n > 0);
    }
    held += (int)b->v.mem.n + (b->v.conn_fd >= 0);
    FUZZ_CHECK(held <= BACKEND_MAX_FDS);
    FUZZ_CHECK(b->conn_fd == b->v.conn_fd);

    if (op & 0x80)
        run_device(b);
    /* FUZZ_VERBOSE=1: what each message did, to see what a seed reaches. */
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "fuzz_vhost: %-22s fds %u conn %d regions %u started %d%d tx %llu rx %llu\n",
                cw_vu_request_name(m.hdr.request), nfds, b->v.conn_fd >= 0, b->v.mem.n,
                b->v.vring[0].started, b->v.vring[1].started,
                (unsigned long long)b->net->stats.tx_frames,
                (unsigned long long)b->net->stats.rx_frames);
    if (b->v.conn_fd < 0 || cut) {
        /* Closed (a protocol error or our EOF): the frontend reconnects, as
         * QEMU does after a backend restart. */
        if (b->v.conn_fd >= 0)
            cw_vhost_disconnect(&b->v, "fuzz: reconnect");
        if (client >= 0)
            close(client);
        connect_client(b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in;
    fuzz_in_init(&in, data, size);
    uint8_t cfg = fuzz_u8(&in);
    struct backend *b = backend(cfg & 1);

    unsigned base = count_fds();
    n_own = 0;
    connect_client(b);
    for (unsigned i = 0; i < MAX_MSGS && !fuzz_empty(&in); i++) {
        unsigned before = count_fds();
        one_message(b, &in);
        /* Between messages: ours (client, kept fds) plus what the backend
         * legitimately holds; nothing accumulates. */
        unsigned now = count_fds();
        FUZZ_CHECK(now <= base + 1 + n_own + BACKEND_MAX_FDS);
        (void)before;
    }

    cw_vhost_disconnect(&b->v, "fuzz: end of input");
    FUZZ_CHECK(b->v.conn_fd < 0 && b->conn_fd == -1);
    FUZZ_CHECK(b->v.mem.n == 0);
    for (int q = 0; q < CW_NET_NUM_QUEUES; q++)
        FUZZ_CHECK(b->v.vring[q].kick_fd < 0 && b->v.vring[q].call_fd < 0 &&
                   b->v.vring[q].err_fd < 0 && b->kick_fd[q] == -1);
    close(client);
    client = -1;
    for (unsigned i = 0; i < n_own; i++)
        close(own[i]);
    n_own = 0;
    /* No fd leaked by anything the frontend sent. */
    FUZZ_CHECK(count_fds() == base);
    return 0;
}
