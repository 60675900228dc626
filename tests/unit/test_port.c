/* Unit tests for the port (src/port/port.c) and the link (src/port/link.c).
 *
 * Port: both sides attached in one process from dup'ed fds, frames through
 * cw_port_net_ops both ways, eventfd signals only when the other side asked;
 * hostile fd sets (unsealed or wrong-size memfd, a pipe for an eventfd, ...)
 * refused.
 * Link: two links in one process (listener and connector), a fake listener
 * sending malformed hellos, and real peers in forked processes killed with
 * SIGKILL, in both start orders. Every test checks that it leaves the same
 * number of open fds behind. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "port/link.h"
#include "port/port.h"

#define CAP CW_PORT_MIN_CAPACITY

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool fd_readable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void fill(uint8_t *p, uint32_t len, uint32_t seq)
{
    for (uint32_t i = 0; i < len; i++)
        p[i] = (uint8_t)(seq + i * 13u + (i >> 9));
}

static bool check(const uint8_t *p, uint32_t len, uint32_t seq, uint8_t x)
{
    for (uint32_t i = 0; i < len; i++)
        if (p[i] != (uint8_t)((uint8_t)(seq + i * 13u + (i >> 9)) ^ x))
            return false;
    return true;
}

static const struct cw_net_port_ops *ops = &cw_port_net_ops;

/* ---- port: both sides in one process ---- */

static void dup_fds(const struct cw_port_fds *f, struct cw_port_fds *g)
{
    g->memfd = fcntl(f->memfd, F_DUPFD_CLOEXEC, 0);
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 2; k++)
            g->efd[r][k] = fcntl(f->efd[r][k], F_DUPFD_CLOEXEC, 0);
}

static void attach_pair(struct cw_port *a, struct cw_port *b)
{
    struct cw_port_fds f, g;
    memset(a, 0, sizeof(*a));
    memset(b, 0, sizeof(*b));
    assert_int_equal(cw_port_fds_create(&f, CAP), 0);
    dup_fds(&f, &g);
    assert_int_equal(cw_port_attach(a, &f, 0, CAP, true), 0);
    assert_int_equal(f.memfd, -1); /* ownership taken */
    assert_int_equal(cw_port_attach(b, &g, 1, CAP, false), 0);
    assert_true(cw_port_attached(a));
    assert_true(cw_port_attached(b));
    assert_int_equal(a->map_len, cw_port_shm_size(CAP));
}

static void send_frame(struct cw_port *p, uint32_t len, uint32_t seq)
{
    uint8_t *d = ops->tx_reserve(p, len);
    assert_non_null(d);
    fill(d, len, seq);
    ops->tx_commit(p, len);
}

static void recv_frame(struct cw_port *p, uint32_t len, uint32_t seq)
{
    uint32_t got = 0;
    const uint8_t *d = ops->rx_peek(p, &got);
    assert_non_null(d);
    assert_int_equal(got, len);
    assert_true(check(d, len, seq, 0));
    ops->rx_release(p);
}

static void test_port_create_and_seal(void **state)
{
    (void)state;
    int before = count_fds();
    struct cw_port_fds f;
    assert_int_equal(cw_port_fds_create(&f, CAP), 0);
    struct stat st;
    assert_int_equal(fstat(f.memfd, &st), 0);
    assert_int_equal(st.st_size, (off_t)cw_port_shm_size(CAP));
    /* each ring's shared area starts on its own page */
    assert_int_equal(cw_port_shm_size(CAP) % 4096, 0);
    assert_true(cw_port_shm_size(CAP) >= 2 * cw_ring_shared_size(CAP));
    int seals = fcntl(f.memfd, F_GET_SEALS);
    assert_true(seals & F_SEAL_SHRINK);
    assert_true(seals & F_SEAL_GROW);
    assert_true(seals & F_SEAL_SEAL);
    /* the peer cannot shrink it */
    assert_int_equal(ftruncate(f.memfd, 4096), -1);
    assert_true(fcntl(f.memfd, F_GETFD) & FD_CLOEXEC);
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 2; k++) {
            assert_true(fcntl(f.efd[r][k], F_GETFL) & O_NONBLOCK);
            assert_true(fcntl(f.efd[r][k], F_GETFD) & FD_CLOEXEC);
        }
    assert_int_equal(count_fds(), before + 5);
    cw_port_fds_close(&f);
    assert_int_equal(f.memfd, -1);
    assert_int_equal(count_fds(), before);
    /* capacities the ring could not carry a maximal frame in */
    assert_int_equal(cw_port_fds_create(&f, CAP / 2), -1);
    assert_int_equal(cw_port_fds_create(&f, CAP + 4096), -1);
    assert_int_equal(count_fds(), before);
}

static void test_port_frames_and_signals(void **state)
{
    (void)state;
    int before = count_fds();
    struct cw_port a, b;
    attach_pair(&a, &b);
    int b_rx = cw_port_rx_data_fd(&b), a_rx = cw_port_rx_data_fd(&a);
    int a_space = cw_port_tx_space_fd(&a);
    assert_int_equal(b_rx, b.fds.efd[0][CW_PORT_EFD_DATA]); /* ring 0 is b's rx */
    assert_true(a_rx != b_rx);

    /* a -> b while b has not asked: no signal */
    send_frame(&a, 60, 1);
    send_frame(&a, CW_PORT_MAX_RECORD, 2);
    ops->tx_flush(&a);
    assert_int_equal(a.stats.signals_sent, 0);
    assert_false(fd_readable(b_rx));
    recv_frame(&b, 60, 1);
    recv_frame(&b, CW_PORT_MAX_RECORD, 2);
    uint32_t len;
    assert_null(ops->rx_peek(&b, &len)); /* empty: b now asks for a signal */
    ops->rx_flush(&b);
    assert_int_equal(b.stats.signals_sent, 0); /* a never asked for space */

    /* a -> b now signals once per flush */
    send_frame(&a, 100, 3);
    send_frame(&a, 200, 4);
    ops->tx_flush(&a);
    assert_int_equal(a.stats.signals_sent, 1);
    assert_true(fd_readable(b_rx));
    cw_port_drain(&b, b_rx);
    assert_int_equal(b.stats.wakeups, 1);
    assert_false(fd_readable(b_rx));
    /* b is awake (flag cleared): further frames need no signal */
    send_frame(&a, 300, 5);
    ops->tx_flush(&a);
    assert_int_equal(a.stats.signals_sent, 1);
    recv_frame(&b, 100, 3);
    recv_frame(&b, 200, 4);
    recv_frame(&b, 300, 5);
    ops->rx_flush(&b);

    /* b -> a, same rules */
    send_frame(&b, 1514, 6);
    ops->tx_flush(&b);
    assert_int_equal(b.stats.signals_sent, 0);
    recv_frame(&a, 1514, 6);
    assert_null(ops->rx_peek(&a, &len));
    send_frame(&b, 64, 7);
    ops->tx_flush(&b);
    assert_int_equal(b.stats.signals_sent, 1);
    assert_true(fd_readable(a_rx));
    cw_port_drain(&a, a_rx);
    recv_frame(&a, 64, 7);
    ops->rx_flush(&a);

    /* a fills its ring: tx_reserve publishes what it committed (b can see
     * it without a flush) and asks for space */
    uint32_t n = 0;
    uint8_t *d;
    while ((d = ops->tx_reserve(&a, 9000)) != NULL) {
        fill(d, 9000, 100 + n);
        ops->tx_commit(&a, 9000);
        n++;
    }
    assert_true(n >= CAP / 9024 - 1);
    assert_false(cw_port_broken(&a));
    assert_int_equal(a.tx.sh->prod_wants_space, 1);
    uint64_t sig_b = b.stats.signals_sent;
    recv_frame(&b, 9000, 100); /* not flushed yet: no space returned */
    assert_false(fd_readable(a_space));
    ops->rx_flush(&b);
    assert_int_equal(b.stats.signals_sent, sig_b + 1);
    assert_true(fd_readable(a_space));
    cw_port_drain(&a, a_space);
    assert_int_equal(a.tx.sh->prod_wants_space, 0);
    assert_non_null(ops->tx_reserve(&a, 9000));
    for (uint32_t i = 1; i < n; i++)
        recv_frame(&b, 9000, 100 + i);
    assert_null(ops->rx_peek(&b, &len));
    ops->rx_flush(&b);
    assert_false(cw_port_broken(&a) || cw_port_broken(&b));

    /* a fills up again and sleeps; b drains everything but forgets
     * rx_flush: finding the ring empty, rx_peek hands the space back
     * itself and signals a (else both could sleep forever) */
    ops->tx_commit(&a, 9000); /* the reservation made above */
    while ((d = ops->tx_reserve(&a, 9000)) != NULL)
        ops->tx_commit(&a, 9000);
    cw_port_drain(&a, a_space); /* nothing pending: clears nothing new */
    assert_null(ops->tx_reserve(&a, 9000)); /* re-arms the space flag */
    assert_int_equal(a.tx.sh->prod_wants_space, 1);
    sig_b = b.stats.signals_sent;
    while (ops->rx_peek(&b, &len) != NULL)
        ops->rx_release(&b);
    assert_int_equal(b.stats.signals_sent, sig_b + 1);
    assert_true(fd_readable(a_space));
    cw_port_drain(&a, a_space);
    assert_non_null(ops->tx_reserve(&a, 9000));

    /* oversize: refused without breaking anything */
    assert_null(ops->tx_reserve(&a, CW_PORT_MAX_RECORD + 1));
    assert_false(cw_port_broken(&a));

    cw_port_detach(&a);
    cw_port_detach(&b);
    assert_false(cw_port_attached(&a));
    /* a detached port is inert */
    assert_null(ops->tx_reserve(&a, 10));
    assert_null(ops->rx_peek(&a, &len));
    ops->tx_flush(&a);
    ops->rx_flush(&a);
    assert_int_equal(cw_port_rx_data_fd(&a), -1);
    assert_int_equal(count_fds(), before);
}

/* A polling owner (cw_port.polling) asks its peer for no signal: neither on
 * an empty RX ring nor on a full TX ring. Off again, it asks as usual. */
static void test_port_polling_asks_for_no_signal(void **state)
{
    (void)state;
    struct cw_port a, b;
    attach_pair(&a, &b);
    uint32_t len;
    a.polling = b.polling = true;
    assert_null(ops->rx_peek(&b, &len));
    send_frame(&a, 60, 1);
    ops->tx_flush(&a);
    assert_int_equal(a.stats.signals_sent, 0);
    /* a fills its ring: no request for space either */
    uint32_t sent = 0;
    void *slot;
    while ((slot = ops->tx_reserve(&a, CW_PORT_MAX_RECORD)) != NULL) {
        fill(slot, CW_PORT_MAX_RECORD, 100 + sent++);
        ops->tx_commit(&a, CW_PORT_MAX_RECORD);
    }
    assert_true(sent > 0);
    recv_frame(&b, 60, 1);
    recv_frame(&b, CW_PORT_MAX_RECORD, 100);
    ops->rx_flush(&b);
    assert_int_equal(b.stats.signals_sent, 0);

    b.polling = false;
    for (uint32_t i = 1; i < sent; i++)
        recv_frame(&b, CW_PORT_MAX_RECORD, 100 + i);
    assert_null(ops->rx_peek(&b, &len)); /* empty, not polling: asks */
    send_frame(&a, 64, 2);
    ops->tx_flush(&a);
    assert_int_equal(a.stats.signals_sent, 1);
    cw_port_detach(&a);
    cw_port_detach(&b);
}

static void test_port_corrupt_peer(void **state)
{
    (void)state;
    int before = count_fds();
    struct cw_port a, b;
    attach_pair(&a, &b);
    send_frame(&a, 60, 1);
    ops->tx_flush(&a);
    /* b's view: a claims far more than the ring holds */
    b.rx.sh->prod = 5u * CAP;
    uint32_t len;
    assert_null(ops->rx_peek(&b, &len));
    assert_true(cw_port_broken(&b));
    /* a's view: b hands back a misaligned index. a reads it once the room
     * it last saw is used up (the ring caches the peer's index). */
    a.tx.sh->cons = 8;
    unsigned sent = 0;
    uint8_t *d;
    while ((d = ops->tx_reserve(&a, 60)) != NULL && sent < CAP) {
        ops->tx_commit(&a, 60);
        sent++;
    }
    assert_null(d);
    assert_true(cw_port_broken(&a));
    cw_port_detach(&a);
    cw_port_detach(&b);
    assert_int_equal(count_fds(), before);
}

/* Build a port fd set by hand, the way a hostile peer could. */
static void make_fds(struct cw_port_fds *f, bool seal, unsigned seals, size_t size)
{
    f->memfd = memfd_create("test", MFD_CLOEXEC | (seal ? MFD_ALLOW_SEALING : 0));
    assert_true(f->memfd >= 0);
    assert_int_equal(ftruncate(f->memfd, (off_t)size), 0);
    if (seal && seals)
        assert_int_equal(fcntl(f->memfd, F_ADD_SEALS, seals), 0);
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < 2; k++)
            f->efd[r][k] = eventfd(0, EFD_CLOEXEC);
}

static void expect_refused(struct cw_port_fds *f, int side, uint32_t cap)
{
    struct cw_port p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(cw_port_attach(&p, f, side, cap, false), -1);
    assert_false(cw_port_attached(&p));
    assert_int_equal(f->memfd, -1);
    assert_int_equal(f->efd[1][1], -1);
    uint32_t len;
    assert_null(ops->rx_peek(&p, &len));
    assert_null(ops->tx_reserve(&p, 10));
}

static void test_port_hostile_fds(void **state)
{
    (void)state;
    int before = count_fds();
    size_t size = cw_port_shm_size(CAP);
    struct cw_port_fds f;

    /* control: a hand-made, properly sealed set is accepted, and attach
     * makes blocking eventfds non-blocking */
    make_fds(&f, true, F_SEAL_SHRINK | F_SEAL_GROW, size);
    struct cw_port p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(cw_port_attach(&p, &f, 1, CAP, false), 0);
    assert_true(fcntl(p.fds.efd[0][0], F_GETFL) & O_NONBLOCK);
    cw_port_detach(&p);

    /* not sealed at all */
    make_fds(&f, false, 0, size);
    expect_refused(&f, 1, CAP);
    /* sealed against shrinking only */
    make_fds(&f, true, F_SEAL_SHRINK, size);
    expect_refused(&f, 1, CAP);
    /* sealed against growing only */
    make_fds(&f, true, F_SEAL_GROW, size);
    expect_refused(&f, 1, CAP);
    /* wrong size: larger, smaller */
    make_fds(&f, true, F_SEAL_SHRINK | F_SEAL_GROW, size + 4096);
    expect_refused(&f, 1, CAP);
    make_fds(&f, true, F_SEAL_SHRINK | F_SEAL_GROW, size - 4096);
    expect_refused(&f, 1, CAP);
    /* right memfd, but our capacity differs from the creator's */
    make_fds(&f, true, F_SEAL_SHRINK | F_SEAL_GROW, size);
    expect_refused(&f, 1, CAP * 2);
    /* invalid capacity or side */
    make_fds(&f, true, F_SEAL_SHRINK | F_SEAL_GROW, size);
    expect_refused(&f, 1, CAP + 1);
    make_fds(&f, true, F_SEAL_SHRINK | F_SEAL_GROW, size);
    expect_refused(&f, 2, CAP);
    /* a pipe where an eventfd belongs (it could block or SIGPIPE us) */
    make_fds(&f, true, F_SEAL_SHRINK | F_SEAL_GROW, size);
    int pp[2];
    assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
    close(f.efd[1][0]);
    f.efd[1][0] = pp[1];
    close(pp[0]);
    expect_refused(&f, 1, CAP);
    /* an ordinary file where the memfd belongs */
    make_fds(&f, true, F_SEAL_SHRINK | F_SEAL_GROW, size);
    close(f.memfd);
    char tmpl[] = "/tmp/cw-port-XXXXXX";
    f.memfd = mkostemp(tmpl, O_CLOEXEC);
    assert_true(f.memfd >= 0);
    unlink(tmpl);
    assert_int_equal(ftruncate(f.memfd, (off_t)size), 0);
    expect_refused(&f, 1, CAP);
    /* a missing fd */
    make_fds(&f, true, F_SEAL_SHRINK | F_SEAL_GROW, size);
    close(f.efd[0][1]);
    f.efd[0][1] = -1;
    expect_refused(&f, 1, CAP);

    assert_int_equal(count_fds(), before);
}

/* ---- links ---- */

struct side {
    struct cw_link l;
    int ups, downs, fds_changes;
    bool up;
    bool bad_callback; /* a callback saw an inconsistent state */
    uint64_t last_tick;
};

static void ev_fds(void *ctx, struct cw_link *l)
{
    struct side *s = ctx;
    s->fds_changes++;
    /* every fd the link shows must be open */
    int fds[4] = { l->listen_fd, l->conn_fd, cw_port_rx_data_fd(&l->port),
                   cw_port_tx_space_fd(&l->port) };
    for (int i = 0; i < 4; i++)
        if (fds[i] >= 0 && fcntl(fds[i], F_GETFD) < 0)
            s->bad_callback = true;
}

static void ev_state(void *ctx, struct cw_link *l, bool up)
{
    struct side *s = ctx;
    if (l->up != up || (up && !cw_port_attached(&l->port)) || (!up && cw_port_attached(&l->port)))
        s->bad_callback = true;
    s->up = up;
    if (up)
        s->ups++;
    else
        s->downs++;
}

static const struct cw_link_events events = { .fds_changed = ev_fds, .state_changed = ev_state };

static int side_open(struct side *s, const char *path)
{
    memset(s, 0, sizeof(*s));
    return cw_link_open(&s->l, path, CAP, &events, s);
}

/* One round of an event loop over several links: poll, dispatch, tick
 * every 20 ms (the production loop ticks every 100 ms). */
static void pump(struct side **v, int n, int ms)
{
    struct pollfd pfd[16];
    int who[16], kind[16], k = 0;
    for (int i = 0; i < n; i++) {
        struct cw_link *l = &v[i]->l;
        int fds[4] = { l->listen_fd, l->conn_fd, cw_port_rx_data_fd(&l->port),
                       cw_port_tx_space_fd(&l->port) };
        for (int j = 0; j < 4; j++)
            if (fds[j] >= 0) {
                pfd[k] = (struct pollfd){ .fd = fds[j], .events = POLLIN };
                who[k] = i;
                kind[k++] = j;
            }
    }
    poll(pfd, (nfds_t)k, ms);
    for (int i = 0; i < k; i++) {
        if (pfd[i].revents == 0)
            continue;
        struct cw_link *l = &v[who[i]]->l;
        /* earlier dispatches may have replaced the fd: only act on current */
        if (kind[i] == 0 && pfd[i].fd == l->listen_fd)
            cw_link_on_listen(l);
        else if (kind[i] == 1 && pfd[i].fd == l->conn_fd)
            cw_link_on_conn(l);
        else if (kind[i] == 2 && pfd[i].fd == cw_port_rx_data_fd(&l->port))
            cw_port_drain(&l->port, pfd[i].fd);
        else if (kind[i] == 3 && pfd[i].fd == cw_port_tx_space_fd(&l->port))
            cw_port_drain(&l->port, pfd[i].fd);
    }
    uint64_t t = now_ms();
    for (int i = 0; i < n; i++)
        if (t - v[i]->last_tick >= 20) {
            v[i]->last_tick = t;
            cw_link_tick(&v[i]->l);
        }
}

#define RUN_UNTIL(v, n, cond, ms)                                              \
    do {                                                                       \
        uint64_t deadline_ = now_ms() + (ms);                                  \
        while (!(cond) && now_ms() < deadline_)                                \
            pump((v), (n), 10);                                                \
        assert_true(cond);                                                     \
    } while (0)

static char test_dir[64];
static char test_path[96]; /* fits sun_path */

static int setup_dir(void **state)
{
    (void)state;
    snprintf(test_dir, sizeof(test_dir), "/tmp/cw-link-XXXXXX");
    if (mkdtemp(test_dir) == NULL)
        return -1;
    snprintf(test_path, sizeof(test_path), "%s/link.sock", test_dir);
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    unlink(test_path);
    return rmdir(test_dir);
}

static bool path_is_socket(void)
{
    struct stat st;
    return lstat(test_path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static uint32_t frame_len(uint32_t seq)
{
    return seq % 7 == 0 ? CW_PORT_MAX_RECORD : 14u + (seq * 7919u) % 20000u;
}

/* Send n frames over s and expect each echoed back XOR 0x5a (by the peer,
 * which `others` may pump when it lives in this process). */
static void exchange(struct side *s, struct side **all, int nall, uint32_t n, uint32_t seq0)
{
    struct cw_port *p = &s->l.port;
    uint32_t sent = 0, got = 0;
    uint64_t deadline = now_ms() + 1500;
    while (got < n) {
        assert_true(now_ms() < deadline);
        assert_true(s->l.up);
        bool progress = false;
        while (sent < n) {
            uint32_t len = frame_len(seq0 + sent);
            uint8_t *d = ops->tx_reserve(p, len);
            if (d == NULL)
                break;
            fill(d, len, seq0 + sent);
            ops->tx_commit(p, len);
            sent++;
            progress = true;
        }
        ops->tx_flush(p);
        uint32_t len;
        const uint8_t *d;
        while ((d = ops->rx_peek(p, &len)) != NULL) {
            assert_int_equal(len, frame_len(seq0 + got));
            assert_true(check(d, len, seq0 + got, 0x5a));
            ops->rx_release(p);
            got++;
            progress = true;
        }
        ops->rx_flush(p);
        assert_false(cw_port_broken(p));
        if (!progress)
            pump(all, nall, 10);
    }
}

/* Echo what arrives, XOR 0x5a, as long as there is room. */
static void echo_some(struct cw_link *l)
{
    if (!l->up)
        return;
    struct cw_port *p = &l->port;
    uint32_t len;
    const uint8_t *d;
    while ((d = ops->rx_peek(p, &len)) != NULL) {
        uint8_t *o = ops->tx_reserve(p, len);
        if (o == NULL)
            break; /* keep the frame; the space signal brings us back */
        for (uint32_t i = 0; i < len; i++)
            o[i] = d[i] ^ 0x5a;
        ops->tx_commit(p, len);
        ops->rx_release(p);
    }
    ops->tx_flush(p);
    ops->rx_flush(p);
}

static void test_link_in_process(void **state)
{
    (void)state;
    int before = count_fds();
    struct side a, b;
    struct side *v[2] = { &a, &b };
    assert_int_equal(side_open(&a, test_path), 0);
    assert_true(a.l.listen_fd >= 0); /* nobody there: a listens */
    assert_true(path_is_socket());
    assert_int_equal(side_open(&b, test_path), 0);
    assert_true(b.l.listen_fd < 0);
    assert_true(b.l.conn_fd >= 0); /* b connected, awaits the hello */
    RUN_UNTIL(v, 2, a.up && b.up, 1000);
    assert_int_equal(a.l.port.side, 0);
    assert_int_equal(b.l.port.side, 1);
    assert_int_equal(a.l.port.capacity, CAP);
    assert_int_equal(b.l.port.capacity, CAP);

    /* frames both ways, b echoing for a, then a echoing for b */
    struct cw_port *pa = &a.l.port, *pb = &b.l.port;
    for (uint32_t i = 0; i < 20; i++) {
        send_frame(pa, frame_len(i), i);
        ops->tx_flush(pa);
        recv_frame(pb, frame_len(i), i);
        ops->rx_flush(pb);
        send_frame(pb, 100 + i, i);
        ops->tx_flush(pb);
        recv_frame(pa, 100 + i, i);
        ops->rx_flush(pa);
    }

    /* a third party is turned away while a peer is connected */
    int x = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", test_path);
    assert_int_equal(connect(x, (struct sockaddr *)&sa, sizeof(sa)), 0);
    RUN_UNTIL(v, 2, a.l.stats.refused == 1, 500);
    char c;
    assert_int_equal(recv(x, &c, 1, 0), 0); /* closed on it */
    close(x);
    assert_true(a.up && b.up);

    /* drop (corrupt ring): a goes down, b sees the hangup, reconnects */
    cw_link_drop(&a.l, "test");
    assert_false(a.l.up);
    assert_int_equal(a.downs, 1);
    assert_true(a.l.listen_fd >= 0);
    assert_false(cw_port_attached(&a.l.port));
    RUN_UNTIL(v, 2, b.downs == 1, 500);
    RUN_UNTIL(v, 2, a.ups == 2 && b.ups == 2 && a.up && b.up, 1000);
    send_frame(&a.l.port, 1000, 9);
    ops->tx_flush(&a.l.port);
    recv_frame(&b.l.port, 1000, 9);

    /* the listener goes away: b goes down and takes over the path */
    cw_link_close(&a.l);
    assert_false(path_is_socket()); /* the listener removed its own file */
    struct side *vb[1] = { &b };
    RUN_UNTIL(vb, 1, b.downs == 2, 500);
    RUN_UNTIL(vb, 1, b.l.listen_fd >= 0, 500);
    assert_true(path_is_socket());
    /* and a new a connects to b */
    assert_int_equal(side_open(&a, test_path), 0);
    assert_true(a.l.conn_fd >= 0);
    RUN_UNTIL(v, 2, a.up && b.up, 1000);
    assert_int_equal(b.l.port.side, 0);
    send_frame(&b.l.port, 5000, 3);
    ops->tx_flush(&b.l.port);
    recv_frame(&a.l.port, 5000, 3);

    assert_false(a.bad_callback || b.bad_callback);
    cw_link_close(&a.l);
    cw_link_close(&b.l);
    assert_false(path_is_socket());
    assert_int_equal(count_fds(), before);
}

static void test_link_open_errors(void **state)
{
    (void)state;
    int before = count_fds();
    struct side a;
    char longp[200];
    memset(longp, 'x', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = 0;
    assert_int_equal(side_open(&a, longp), -1);
    assert_true(a.l.last_error[0] != 0);
    assert_int_equal(side_open(&a, ""), -1);
    assert_int_equal(side_open(&a, "/nonexistent-dir/x.sock"), -1);
    assert_int_equal(cw_link_open(&a.l, test_path, CAP + 1, &events, &a), -1);
    /* a regular file at the path is not "stale": never removed */
    int fd = open(test_path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(side_open(&a, test_path), -1);
    struct stat st;
    assert_int_equal(lstat(test_path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    unlink(test_path);
    assert_int_equal(count_fds(), before);
}

/* A stale socket file (its listener gone) is taken over. */
static void test_link_stale_socket(void **state)
{
    (void)state;
    int before = count_fds();
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", test_path);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(s); /* file stays, nobody listens */
    assert_true(path_is_socket());
    struct side a;
    assert_int_equal(side_open(&a, test_path), 0);
    assert_true(a.l.listen_fd >= 0);
    cw_link_close(&a.l);
    assert_int_equal(count_fds(), before);
}

/* a listens at the path, then b replaces a's socket file with its own and
 * listens too. a finds out on a tick and joins b instead of listening where
 * nobody can find it. a_read_b_inode: a recorded b's file as its own. */
static void two_listeners_a_joins_b(bool a_read_b_inode)
{
    int before = count_fds();
    struct side a, b;
    struct side *v[2] = { &a, &b };
    assert_int_equal(side_open(&a, test_path), 0);
    assert_true(a.l.listen_fd >= 0);
    unlink(test_path);
    assert_int_equal(side_open(&b, test_path), 0);
    assert_true(b.l.listen_fd >= 0);
    if (a_read_b_inode) {
        struct stat st;
        assert_int_equal(lstat(test_path, &st), 0);
        a.l.path_dev = (uint64_t)st.st_dev;
        a.l.path_ino = (uint64_t)st.st_ino;
    }
    RUN_UNTIL(v, 2, a.up && b.up, 1000);
    assert_true(a.l.listen_fd < 0);
    assert_int_equal(a.l.port.side, 1);
    cw_link_close(&a.l);
    cw_link_close(&b.l);
    assert_false(path_is_socket());
    assert_int_equal(count_fds(), before);
}

/* Two survivors raced: b's socket file replaced a's; a sees its file gone. */
static void test_link_displaced_listener(void **state)
{
    (void)state;
    two_listeners_a_joins_b(false);
}

/* The start-up race: a binds, b connects before a listens (ECONNREFUSED),
 * takes a's file for stale, replaces it with its own, and a's lstat after
 * listen reads b's file: a believes the path is its own. Both listen, each
 * alone. A probe of the path on a's tick shows that b answers there. */
static void test_link_listener_with_the_wrong_inode(void **state)
{
    (void)state;
    two_listeners_a_joins_b(true);
}

/* A listener alone, at its own path: its probes find itself, leave it
 * listening, and leave nothing behind (no refusal, nothing queued). */
static void test_link_lone_listener_probes_itself(void **state)
{
    (void)state;
    int before = count_fds();
    struct side a;
    assert_int_equal(side_open(&a, test_path), 0);
    int listen_fd = a.l.listen_fd;
    assert_true(listen_fd >= 0);
    for (int i = 0; i < 3; i++)
        cw_link_tick(&a.l);
    assert_int_equal(a.l.listen_fd, listen_fd);
    assert_true(a.l.conn_fd < 0);
    assert_false(a.up);
    assert_int_equal(a.l.stats.refused, 0);
    assert_int_equal(accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK), -1);
    assert_int_equal(errno, EAGAIN);
    cw_link_close(&a.l);
    assert_int_equal(count_fds(), before);
}

/* ---- a fake listener feeding the connector malformed hellos ---- */

struct hello {
    uint32_t magic, version, capacity, side;
};

static int fake_listen(void)
{
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", test_path);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s, 4), 0);
    return s;
}

static void fake_send(int c, const void *buf, size_t len, const int *fds, int nfds)
{
    union {
        char b[CMSG_SPACE(sizeof(int) * 8)];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfds > 0) {
        m.msg_control = u.b;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c0 = CMSG_FIRSTHDR(&m);
        c0->cmsg_level = SOL_SOCKET;
        c0->cmsg_type = SCM_RIGHTS;
        c0->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c0), fds, sizeof(int) * (size_t)nfds);
    }
    assert_int_equal(sendmsg(c, &m, 0), (ssize_t)len);
}

enum bad { B_MAGIC, B_VERSION, B_SIDE, B_CAP_POW2, B_CAP_SMALL, B_FEW_FDS, B_MANY_FDS,
           B_NO_FDS, B_LONG, B_SHORT, B_UNSEALED, B_SIZE, B_CAP_MISMATCH, B_SILENT, B_OK };

static void fake_round(enum bad what)
{
    int before = count_fds();
    int ls = fake_listen();
    struct side b;
    struct side *v[1] = { &b };
    assert_int_equal(side_open(&b, test_path), 0);
    assert_true(b.l.conn_fd >= 0);
    int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    assert_true(c >= 0);

    struct cw_port_fds f;
    size_t size = cw_port_shm_size(CAP);
    if (what == B_UNSEALED)
        make_fds(&f, false, 0, size);
    else if (what == B_SIZE)
        make_fds(&f, true, F_SEAL_SHRINK | F_SEAL_GROW, size * 2);
    else
        assert_int_equal(cw_port_fds_create(&f, CAP), 0);
    int fds[7] = { f.memfd, f.efd[0][0], f.efd[0][1], f.efd[1][0], f.efd[1][1] };
    fds[5] = fcntl(f.efd[0][0], F_DUPFD_CLOEXEC, 0);
    fds[6] = fcntl(f.efd[0][0], F_DUPFD_CLOEXEC, 0);
    int nfds = 5;
    struct hello h = { 0x4b4c5743u, 1, CAP, 1 };
    uint8_t big[64] = { 0 };
    const void *buf = &h;
    size_t len = sizeof(h);
    switch (what) {
    case B_MAGIC: h.magic ^= 1; break;
    case B_VERSION: h.version = 2; break;
    case B_SIDE: h.side = 0; break;
    case B_CAP_POW2: h.capacity = CAP + 4096; break;
    case B_CAP_SMALL: h.capacity = CAP / 2; break;
    case B_CAP_MISMATCH: h.capacity = CAP * 2; break; /* memfd is for CAP */
    case B_FEW_FDS: nfds = 4; break;
    case B_MANY_FDS: nfds = 7; break;
    case B_NO_FDS: nfds = 0; break;
    case B_LONG: memcpy(big, &h, sizeof(h)); buf = big; len = sizeof(big); break;
    case B_SHORT: len = sizeof(h) - 4; break;
    default: break;
    }
    if (what != B_SILENT)
        fake_send(c, buf, len, fds, nfds);
    for (int i = 0; i < 7; i++)
        close(fds[i]);

    if (what == B_OK) {
        RUN_UNTIL(v, 1, b.up, 500);
        assert_int_equal(b.l.port.side, 1);
    } else if (what == B_SILENT) {
        for (int i = 0; i < 20; i++)
            cw_link_tick(&b.l);
        assert_int_equal(b.l.stats.refused, 0); /* still patient */
        cw_link_tick(&b.l);
        assert_int_equal(b.l.stats.refused, 1);
        assert_int_equal(b.l.conn_fd, -1);
        assert_false(b.up);
        assert_true(strstr(b.l.last_error, "no hello") != NULL);
    } else {
        RUN_UNTIL(v, 1, b.l.stats.refused == 1, 500);
        assert_false(b.up);
        assert_int_equal(b.ups, 0);
        assert_false(cw_port_attached(&b.l.port));
        assert_true(strstr(b.l.last_error, "refused") != NULL);
        static const char *const why[] = {
            [B_MAGIC] = "magic", [B_VERSION] = "version", [B_SIDE] = "side",
            [B_CAP_POW2] = "capacity", [B_CAP_SMALL] = "capacity",
            [B_FEW_FDS] = "number of fds", [B_MANY_FDS] = "number of fds",
            [B_NO_FDS] = "number of fds", [B_LONG] = "truncated", [B_SHORT] = "wrong size",
            [B_UNSEALED] = "port rejected", [B_SIZE] = "port rejected",
            [B_CAP_MISMATCH] = "port rejected",
        };
        if (strstr(b.l.last_error, why[what]) == NULL)
            fail_msg("case %d refused for the wrong reason: %s", (int)what, b.l.last_error);
    }
    if (what != B_OK) {
        /* b hung up on the bad listener (it may have dialled again since:
         * retrying is right, the next listener may be a good one) */
        char ch;
        assert_int_equal(recv(c, &ch, 1, MSG_DONTWAIT), 0);
    }
    cw_link_close(&b.l);
    close(c);
    close(ls);
    unlink(test_path);
    if (count_fds() != before)
        fail_msg("case %d leaks %d fds", (int)what, count_fds() - before);
}

static void test_link_bad_hello(void **state)
{
    (void)state;
    for (int w = 0; w <= B_OK; w++)
        fake_round((enum bad)w);
}

/* ---- real peers in other processes ---- */

/* The child: join the link, echo frames, until killed. It reports on `rep`
 * whether it listens ('L') or connected ('C') after opening. */
static void child_main(int rep)
{
    /* Drop every fd inherited from the parent (its link, if any): the
     * child must only hold what it opens itself. */
    for (int fd = 3; fd < 1024; fd++)
        if (fd != rep)
            close(fd);
    alarm(10); /* never outlive a failed test */
    struct side s;
    struct side *v[1] = { &s };
    if (side_open(&s, test_path) < 0)
        _exit(2);
    char c = s.l.listen_fd >= 0 ? 'L' : 'C';
    if (write(rep, &c, 1) != 1)
        _exit(3);
    close(rep);
    for (;;) {
        pump(v, 1, 10);
        echo_some(&s.l);
    }
}

static pid_t spawn(char *role)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child_main(p[1]);
    close(p[1]);
    struct pollfd pf = { .fd = p[0], .events = POLLIN };
    assert_int_equal(poll(&pf, 1, 1000), 1);
    assert_int_equal(read(p[0], role, 1), 1);
    close(p[0]);
    return pid;
}

static void kill_child(pid_t pid)
{
    kill(pid, SIGKILL);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* We listen first; peers connect, die, and are replaced. */
static void test_link_fork_listener_first(void **state)
{
    (void)state;
    int before = count_fds();
    struct side a;
    struct side *v[1] = { &a };
    assert_int_equal(side_open(&a, test_path), 0);
    assert_true(a.l.listen_fd >= 0);

    char role;
    pid_t pid = spawn(&role);
    assert_int_equal(role, 'C');
    RUN_UNTIL(v, 1, a.up, 1000);
    exchange(&a, v, 1, 30, 0);

    kill_child(pid);
    RUN_UNTIL(v, 1, !a.up, 1000);
    assert_int_equal(a.downs, 1);
    assert_true(a.l.listen_fd >= 0);
    assert_false(cw_port_attached(&a.l.port));

    pid = spawn(&role);
    assert_int_equal(role, 'C');
    RUN_UNTIL(v, 1, a.up, 1000);
    assert_int_equal(a.ups, 2);
    exchange(&a, v, 1, 30, 1000);
    kill_child(pid);
    RUN_UNTIL(v, 1, !a.up, 1000);
    assert_int_equal(a.downs, 2);
    assert_false(a.bad_callback);
    cw_link_close(&a.l);
    assert_int_equal(count_fds(), before);
}

/* The peer listens first; when it dies we take over the path and serve
 * the next peer. */
static void test_link_fork_connector_first(void **state)
{
    (void)state;
    int before = count_fds();
    char role;
    pid_t pid = spawn(&role);
    assert_int_equal(role, 'L');

    struct side a;
    struct side *v[1] = { &a };
    assert_int_equal(side_open(&a, test_path), 0);
    assert_true(a.l.conn_fd >= 0);
    assert_true(a.l.listen_fd < 0);
    RUN_UNTIL(v, 1, a.up, 1000);
    assert_int_equal(a.l.port.side, 1);
    exchange(&a, v, 1, 30, 0);

    kill_child(pid);
    RUN_UNTIL(v, 1, !a.up, 1000);
    assert_int_equal(a.downs, 1);
    RUN_UNTIL(v, 1, a.l.listen_fd >= 0, 1000); /* took over the path */
    assert_true(path_is_socket());

    pid = spawn(&role);
    assert_int_equal(role, 'C');
    RUN_UNTIL(v, 1, a.up, 1000);
    assert_int_equal(a.l.port.side, 0);
    exchange(&a, v, 1, 30, 500);
    kill_child(pid);
    RUN_UNTIL(v, 1, !a.up, 1000);
    assert_false(a.bad_callback);
    cw_link_close(&a.l);
    assert_int_equal(count_fds(), before);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_port_create_and_seal),
        cmocka_unit_test(test_port_frames_and_signals),
        cmocka_unit_test(test_port_polling_asks_for_no_signal),
        cmocka_unit_test(test_port_corrupt_peer),
        cmocka_unit_test(test_port_hostile_fds),
        cmocka_unit_test_setup_teardown(test_link_in_process, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_link_open_errors, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_link_stale_socket, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_link_displaced_listener, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_link_listener_with_the_wrong_inode, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_link_lone_listener_probes_itself, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_link_bad_hello, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_link_fork_listener_first, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_link_fork_connector_first, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
