/* The device process's event loop.
 *
 * One thread, one epoll set. Work is driven by notifications only: a guest
 * doorbell (kick eventfd) or the peer's "data"/"space" eventfd wakes the loop,
 * which runs the device core until it reports idle or blocked. When the core
 * says MORE (its per-call budget ran out), the loop polls with a zero timeout
 * so the other sources get their turn before it continues: one busy queue
 * cannot starve the rest. With no traffic the process sleeps in epoll_wait. */
#define _GNU_SOURCE
#include "device_loop.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "device_control.h"
#include "../gmem/fault_guard.h"
#include "../port/link.h"
#include "../util/epoll_watch.h"
#include "../util/busy_poll.h"
#include "../util/log.h"
#include "../util/sandbox.h"
#include "../util/sched.h"
#include "../util/signals.h"
#include "../vhost/backend.h"

enum tag {
    T_SIGNAL = 1,
    T_TIMER,
    T_VHOST_LISTEN,
    T_VHOST_CONN,
    T_KICK, /* + queue index */
    T_LINK_LISTEN = T_KICK + CW_NET_NUM_QUEUES,
    T_LINK_CONN,
    T_PORT_RX,
    T_PORT_TX,
    T_CONTROL,
};

#define LINK_FDS 4

struct device {
    const struct cw_device_config *cfg;
    struct cw_net *net;
    struct cw_vhost vhost;
    struct cw_link link;
    bool has_link;
    /* Launcher mode (--control-fd): the port comes from the launcher. */
    struct cw_port port;
    int port_fds[2];        /* its fds currently in the epoll set */
    int epfd, sigfd, timerfd;
    int link_fds[LINK_FDS]; /* link fds currently in the epoll set */
    bool want_tx, want_rx;
    /* The 100 ms timer re-polls both queues when no notification asked for
     * it (see T_TIMER); unannounced counts the times that found frames. */
    bool timer_poll;
    /* The last re-poll found frames and no notification has come since:
     * counted at the next tick unless one arrives (a kick written just after
     * the guest published, which TCG can delay by many microseconds, is late,
     * not lost). */
    bool unannounced_candidate;
    uint64_t unannounced_tx, unannounced_rx;
    uint64_t unannounced;
    bool queue_error_logged[CW_NET_NUM_QUEUES];
    struct cw_ratelimit rl;
    struct cw_busy_poll busy; /* --busy-poll */
};

/* Work to look at for a reason other than the 100 ms re-poll (queues set
 * up, the link changed, a frontend message): what the next round finds is
 * not the timer's finding. */
static void want_both(struct device *d)
{
    d->want_tx = d->want_rx = true;
    d->timer_poll = false;
}

/* A doorbell or a port signal arrived: whatever the last re-poll found was
 * announced after all. */
static void notified(struct device *d, bool tx, bool rx)
{
    d->want_tx |= tx;
    d->want_rx |= rx;
    d->timer_poll = d->unannounced_candidate = false;
}

static void watch(struct device *d, int fd, uint64_t tag)
{
    cw_epoll_watch(d->epfd, fd, tag);
}

static void unwatch(struct device *d, int fd)
{
    cw_epoll_unwatch(d->epfd, fd);
}

static void emit_event(struct device *d, const char *line)
{
    if (d->cfg->event_fd < 0)
        return;
    size_t n = strlen(line);
    /* A supervisor that stopped reading must not stall the data path. */
    if (write(d->cfg->event_fd, line, n) != (ssize_t)n)
        cw_log_limited(&d->rl, "event fd: could not report '%.*s'", (int)n - 1, line);
}

/* --- the port the device core sends to: the link's port while it is up, or
 * the one the launcher attached --- */

static struct cw_port *own_port(struct device *d)
{
    return d->has_link ? &d->link.port : &d->port;
}

static struct cw_port *live_port(struct device *d)
{
    if (d->has_link)
        return d->link.up && cw_port_attached(&d->link.port) ? &d->link.port : NULL;
    return cw_port_attached(&d->port) ? &d->port : NULL;
}

static void *dp_tx_reserve(void *ctx, uint32_t len)
{
    struct cw_port *p = live_port(ctx);
    return p ? cw_port_net_ops.tx_reserve(p, len) : NULL;
}

static void dp_tx_commit(void *ctx, uint32_t len)
{
    struct cw_port *p = live_port(ctx);
    if (p)
        cw_port_net_ops.tx_commit(p, len);
}

static void dp_tx_flush(void *ctx)
{
    struct cw_port *p = live_port(ctx);
    if (p)
        cw_port_net_ops.tx_flush(p);
}

static const void *dp_rx_peek(void *ctx, uint32_t *len)
{
    struct cw_port *p = live_port(ctx);
    return p ? cw_port_net_ops.rx_peek(p, len) : NULL;
}

static void dp_rx_release(void *ctx)
{
    struct cw_port *p = live_port(ctx);
    if (p)
        cw_port_net_ops.rx_release(p);
}

static void dp_rx_flush(void *ctx)
{
    struct cw_port *p = live_port(ctx);
    if (p)
        cw_port_net_ops.rx_flush(p);
}

static const struct cw_net_port_ops device_port_ops = {
    .tx_reserve = dp_tx_reserve,
    .tx_commit = dp_tx_commit,
    .tx_flush = dp_tx_flush,
    .rx_peek = dp_rx_peek,
    .rx_release = dp_rx_release,
    .rx_flush = dp_rx_flush,
};

static void device_interrupt(void *ctx, int q)
{
    struct device *d = ctx;
    cw_vhost_interrupt(&d->vhost, q);
}

/* --- events from the vhost-user backend --- */

static void on_kick_fd_changed(void *ctx, int q, int old_fd, int new_fd)
{
    struct device *d = ctx;
    unwatch(d, old_fd);
    watch(d, new_fd, T_KICK + (uint64_t)q);
}

static void on_conn_changed(void *ctx, int old_fd, int new_fd)
{
    struct device *d = ctx;
    unwatch(d, old_fd);
    watch(d, new_fd, T_VHOST_CONN);
    if (new_fd >= 0)
        cw_log("frontend connected");
    /* The launcher tells QEMU the carrier only while QEMU is connected:
     * QEMU sets it itself when it (re)connects. */
    if (d->cfg->control_fd >= 0 && (old_fd >= 0) != (new_fd >= 0) &&
        cw_device_ctl_frontend(d->cfg->control_fd, new_fd >= 0) < 0)
        cw_log_limited(&d->rl, "control: cannot report the frontend: %s", strerror(errno));
}

static void on_queues_changed(void *ctx)
{
    struct device *d = ctx;
    for (int q = 0; q < CW_NET_NUM_QUEUES; q++)
        if (cw_vq_ready(&d->net->vq[q]))
            d->queue_error_logged[q] = false; /* a driver reset clears a broken queue */
    want_both(d);
}

static const struct cw_vhost_events vhost_events = {
    .kick_fd_changed = on_kick_fd_changed,
    .conn_changed = on_conn_changed,
    .queues_changed = on_queues_changed,
};

/* --- events from the link --- */

static void on_link_fds_changed(void *ctx, struct cw_link *l)
{
    struct device *d = ctx;
    for (int i = 0; i < LINK_FDS; i++) {
        unwatch(d, d->link_fds[i]);
        d->link_fds[i] = -1;
    }
    int want[LINK_FDS] = {l->listen_fd, l->conn_fd, -1, -1};
    if (cw_port_attached(&l->port)) {
        want[2] = cw_port_rx_data_fd(&l->port);
        want[3] = cw_port_tx_space_fd(&l->port);
    }
    static const uint64_t tags[LINK_FDS] = {T_LINK_LISTEN, T_LINK_CONN, T_PORT_RX, T_PORT_TX};
    for (int i = 0; i < LINK_FDS; i++) {
        if (want[i] >= 0) {
            watch(d, want[i], tags[i]);
            d->link_fds[i] = want[i];
        }
    }
}

static void on_link_state(void *ctx, struct cw_link *l, bool up)
{
    struct device *d = ctx;
    (void)l;
    cw_net_set_link(d->net, up);
    cw_log("link %s (%s)", up ? "up" : "down", d->cfg->link_path);
    emit_event(d, up ? "link up\n" : "link down\n");
    want_both(d);
}

static const struct cw_link_events link_events = {
    .fds_changed = on_link_fds_changed,
    .state_changed = on_link_state,
};

/* --- launcher mode: the port arrives and leaves over the control fd --- */

static void ctl_unwatch_port(struct device *d)
{
    for (int i = 0; i < 2; i++) {
        unwatch(d, d->port_fds[i]);
        d->port_fds[i] = -1;
    }
}

static void ctl_set_link(struct device *d, bool up, const char *reason)
{
    cw_net_set_link(d->net, up);
    if (reason)
        cw_log("link %s: %s", up ? "up" : "down", reason);
    else
        cw_log("link %s", up ? "up" : "down");
    if (cw_device_ctl_link(d->cfg->control_fd, up, reason) < 0)
        cw_log_limited(&d->rl, "control: cannot report the link: %s", strerror(errno));
    want_both(d);
}

static void ctl_drop_port(struct device *d, const char *reason)
{
    bool was = cw_port_attached(&d->port);
    ctl_unwatch_port(d);
    cw_port_detach(&d->port);
    if (was)
        ctl_set_link(d, false, reason);
}

static int ctl_attach(void *ctx, struct cw_port_fds *f, uint32_t capacity, char *err,
                      size_t errlen)
{
    struct device *d = ctx;
    bool was = cw_port_attached(&d->port);
    ctl_unwatch_port(d);
    /* The memfd is fresh from the launcher (zero-filled): neither side
     * initialises, so frames the switch may already have produced survive. */
    if (cw_port_attach(&d->port, f, 1, capacity, false) < 0) {
        snprintf(err, errlen, "cannot attach: %s", strerror(errno));
        if (was)
            ctl_set_link(d, false, "the replacement port was refused");
        return -1;
    }
    d->port_fds[0] = cw_port_rx_data_fd(&d->port);
    d->port_fds[1] = cw_port_tx_space_fd(&d->port);
    watch(d, d->port_fds[0], T_PORT_RX);
    watch(d, d->port_fds[1], T_PORT_TX);
    ctl_set_link(d, true, was ? "port replaced" : NULL);
    return 0;
}

static void ctl_detach(void *ctx)
{
    ctl_drop_port(ctx, "detached by the launcher");
}

static void ctl_stats(void *ctx, json_t *reply)
{
    struct device *d = ctx;
    json_object_set_new(reply, "name", json_string(d->cfg->name));
    cw_device_stats_fill(reply, d->net, &d->vhost, &own_port(d)->stats, d->cfg->gmem);
    json_object_set_new(reply, "unannounced_work", json_integer((json_int_t)d->unannounced));
}

static const struct cw_device_ctl_ops ctl_ops = {
    .attach = ctl_attach,
    .detach = ctl_detach,
    .stats = ctl_stats,
};

/* --- statistics --- */

static void print_stats(struct device *d)
{
    const struct cw_net_stats *s = &d->net->stats;
    char drops[512];
    size_t off = 0;
    for (int i = 0; i < CW_DROP__COUNT && off < sizeof(drops); i++)
        off += (size_t)snprintf(drops + off, sizeof(drops) - off, " drop_%s=%llu",
                                cw_net_drop_name((enum cw_net_drop)i),
                                (unsigned long long)s->drops[i]);
    cw_log("stats link=%s tx_frames=%llu tx_bytes=%llu rx_frames=%llu rx_bytes=%llu "
           "kicks_rx=%llu kicks_tx=%llu interrupts_rx=%llu interrupts_tx=%llu sw_csum=%llu "
           "sw_segments=%llu gmem=%s gmem_maps=%llu gmem_unmaps=%llu vhost_errors=%llu "
           "unannounced_work=%llu busy_windows=%llu%s",
           d->net->link_up ? "up" : "down", (unsigned long long)s->tx_frames,
           (unsigned long long)s->tx_bytes, (unsigned long long)s->rx_frames,
           (unsigned long long)s->rx_bytes, (unsigned long long)d->vhost.stats.kicks[CW_NET_RXQ],
           (unsigned long long)d->vhost.stats.kicks[CW_NET_TXQ],
           (unsigned long long)s->interrupts[CW_NET_RXQ],
           (unsigned long long)s->interrupts[CW_NET_TXQ], (unsigned long long)s->sw_csum,
           (unsigned long long)s->sw_segments, cw_gmem_strategy_name(d->cfg->gmem),
           (unsigned long long)d->vhost.mem.maps, (unsigned long long)d->vhost.mem.unmaps,
           (unsigned long long)d->vhost.stats.protocol_errors,
           (unsigned long long)d->unannounced, (unsigned long long)d->busy.windows, drops);
}

/* --- the data path --- */

static void report_broken(struct device *d, int q)
{
    if (d->queue_error_logged[q])
        return;
    d->queue_error_logged[q] = true;
    /* Once per breakage: the queue serves nothing until the driver resets it. */
    cw_log("guest error on %s queue: %s; queue stopped until the driver resets the device",
           q == CW_NET_RXQ ? "rx" : "tx", cw_vq_strerror(d->net->vq[q].error));
}

static bool step(enum cw_net_result r, struct device *d, int q)
{
    if (r == CW_NET_BROKEN)
        report_broken(d, q);
    return r == CW_NET_MORE;
}

/* Is a doorbell or a port signal waiting to be read? Then work the timer's
 * re-poll found was announced after all (its event just had not been
 * taken from epoll yet), and is not counted as unannounced. */
static bool notification_pending(struct device *d)
{
    struct pollfd p[CW_NET_NUM_QUEUES + 2];
    nfds_t n = 0;
    for (int q = 0; q < CW_NET_NUM_QUEUES; q++)
        if (d->vhost.vring[q].kick_fd >= 0)
            p[n++] = (struct pollfd){.fd = d->vhost.vring[q].kick_fd, .events = POLLIN};
    struct cw_port *port = live_port(d);
    if (port) {
        p[n++] = (struct pollfd){.fd = cw_port_rx_data_fd(port), .events = POLLIN};
        p[n++] = (struct pollfd){.fd = cw_port_tx_space_fd(port), .events = POLLIN};
    }
    return n > 0 && poll(p, n, 0) > 0;
}

/* Polling (src/util/busy_poll.h): the queues and the port stop arming
 * notifications while it is on. */
static void set_polling(struct device *d, bool on)
{
    d->net->polling = on;
    struct cw_port *p = live_port(d);
    if (p)
        p->polling = on;
}

static void after_round(struct device *d)
{
    uint64_t frames = d->net->stats.tx_frames + d->net->stats.rx_frames;
    switch (cw_busy_after_round(&d->busy, frames, d->want_tx || d->want_rx, cw_now_ns)) {
    case CW_BUSY_SLEEP:
        return;
    case CW_BUSY_POLL_YIELD:
        sched_yield();
        /* fall through */
    case CW_BUSY_POLL:
        set_polling(d, true);
        want_both(d);
        return;
    case CW_BUSY_ARM:
        set_polling(d, false);
        want_both(d);
        return;
    }
}

static void process(struct device *d)
{
    uint64_t tx_before = d->net->stats.tx_frames, rx_before = d->net->stats.rx_frames;
    if (d->want_tx)
        d->want_tx = step(cw_net_tx(d->net), d, CW_NET_TXQ);
    if (d->want_rx)
        d->want_rx = step(cw_net_rx(d->net), d, CW_NET_RXQ);
    if (d->timer_poll) {
        d->timer_poll = false;
        /* Frames nobody announced: a kick or a port signal went missing
         * somewhere (guest, QEMU, peer or here). Served now, at most 100 ms
         * late instead of never; if no notification follows before the next
         * tick, counted and logged so it does not hide. */
        uint64_t tx = d->net->stats.tx_frames - tx_before, rx = d->net->stats.rx_frames - rx_before;
        if ((tx || rx) && !notification_pending(d)) {
            d->unannounced_candidate = true;
            d->unannounced_tx = tx;
            d->unannounced_rx = rx;
        }
    }
    if (d->has_link && d->link.up && cw_port_broken(&d->link.port))
        cw_link_drop(&d->link, "the peer corrupted the port ring");
    if (!d->has_link && cw_port_attached(&d->port) && cw_port_broken(&d->port))
        ctl_drop_port(d, "the switch corrupted the port ring");
    if (cw_fault_guard_take_tripped()) {
        cw_log("guest memory shrank under the device (SIGBUS caught); dropping the frontend");
        cw_vhost_disconnect(&d->vhost, "guest memory shrank under the device");
    }
}

static int setup_signals(struct device *d)
{
    d->sigfd = cw_signalfd_open((const int[]){SIGINT, SIGTERM, SIGUSR1, 0});
    return d->sigfd < 0 ? -1 : 0;
}

static int setup_timer(struct device *d)
{
    d->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (d->timerfd < 0)
        return -1;
    struct itimerspec its = {.it_interval = {0, 100 * 1000 * 1000}, .it_value = {0, 100 * 1000 * 1000}};
    return timerfd_settime(d->timerfd, 0, &its, NULL);
}

/* Returns true when the process should stop. */
static bool handle(struct device *d, uint64_t tag, uint32_t events)
{
    switch (tag) {
    case T_SIGNAL: {
        struct signalfd_siginfo si;
        while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
            if (si.ssi_signo == SIGUSR1) {
                print_stats(d);
                continue;
            }
            cw_log("stopping on signal %u", si.ssi_signo);
            return true;
        }
        return false;
    }
    case T_TIMER: {
        uint64_t ticks;
        if (read(d->timerfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
            cw_log_limited(&d->rl, "timerfd: %s", strerror(errno));
        if (d->has_link && !d->link.up)
            cw_link_tick(&d->link);
        if (d->unannounced_candidate) {
            d->unannounced_candidate = false;
            d->unannounced++;
            cw_log_limited(&d->rl, "the periodic re-poll found frames no notification announced: "
                                   "%llu sent, %llu received (%llu times so far)",
                           (unsigned long long)d->unannounced_tx,
                           (unsigned long long)d->unannounced_rx,
                           (unsigned long long)d->unannounced);
        }
        /* Safety net against a lost notification: look at both queues and
         * the port even though nothing said there is work. Only when idle,
         * so the count means "found work nobody announced". */
        if (!d->want_tx && !d->want_rx) {
            d->timer_poll = true;
            d->want_tx = d->want_rx = true;
        }
        return false;
    }
    case T_VHOST_LISTEN:
        cw_vhost_on_listen(&d->vhost);
        return false;
    case T_VHOST_CONN:
        if (!cw_vhost_on_conn(&d->vhost))
            cw_log("frontend disconnected: %s", d->vhost.last_error);
        want_both(d);
        return false;
    case T_LINK_LISTEN:
        cw_link_on_listen(&d->link);
        return false;
    case T_LINK_CONN:
        cw_link_on_conn(&d->link);
        return false;
    case T_PORT_RX:
        cw_port_drain(own_port(d), cw_port_rx_data_fd(own_port(d)));
        notified(d, false, true);
        return false;
    case T_PORT_TX:
        cw_port_drain(own_port(d), cw_port_tx_space_fd(own_port(d)));
        notified(d, true, false);
        return false;
    case T_CONTROL:
        /* Without the launcher nobody can hand us a port again: stop. */
        return !cw_device_ctl_on_readable(d->cfg->control_fd, &ctl_ops, d);
    default:
        if (tag >= T_KICK && tag < T_KICK + CW_NET_NUM_QUEUES) {
            int q = (int)(tag - T_KICK);
            cw_vhost_on_kick(&d->vhost, q);
            notified(d, q == CW_NET_TXQ, q != CW_NET_TXQ);
        }
        (void)events;
        return false;
    }
}

int cw_device_run(const struct cw_device_config *cfg)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "device %s", cfg->name);
    cw_log_set_prefix(prefix);

    struct device *d = calloc(1, sizeof(*d));
    if (!d) {
        cw_log("out of memory");
        return 1;
    }
    d->cfg = cfg;
    cw_sched_apply(cfg->sched);
    cw_busy_init(&d->busy, &cfg->busy_poll);
    d->rl = (struct cw_ratelimit)CW_RATELIMIT_INIT(1000, 5);
    for (int i = 0; i < LINK_FDS; i++)
        d->link_fds[i] = -1;
    d->port_fds[0] = d->port_fds[1] = -1;
    cw_port_fds_reset(&d->port.fds); /* calloc left them 0: stdin, not "none" */
    d->net = calloc(1, sizeof(*d->net));
    int status = 1;
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!d->net || d->epfd < 0 || setup_signals(d) < 0 || setup_timer(d) < 0) {
        cw_log("cannot set up the event loop: %s", strerror(errno));
        goto out;
    }
    watch(d, d->sigfd, T_SIGNAL);
    watch(d, d->timerfd, T_TIMER);

    cw_fault_guard_install();
    cw_net_init(d->net, &cfg->net, &d->vhost.mem.gmem, &device_port_ops, d, device_interrupt, d);
    cw_net_set_link(d->net, false);
    if (cw_vhost_init(&d->vhost, cfg->socket_path, d->net, cfg->gmem, &vhost_events, d) < 0) {
        cw_log("cannot listen on %s: %s", cfg->socket_path, strerror(errno));
        goto out;
    }
    watch(d, d->vhost.listen_fd, T_VHOST_LISTEN);
    if (cfg->link_path) {
        if (cw_link_open(&d->link, cfg->link_path, cfg->ring_capacity, &link_events, d) < 0) {
            cw_log("cannot join link %s: %s", cfg->link_path, d->link.last_error);
            cw_vhost_destroy(&d->vhost);
            goto out;
        }
        d->has_link = true;
        on_link_fds_changed(d, &d->link);
    }
    cw_log("serving %s (gmem %s, offloads %s)%s%s", cfg->socket_path,
           cw_gmem_strategy_name(cfg->gmem), cfg->net.offloads ? "on" : "off",
           cfg->link_path ? ", link " : "", cfg->link_path ? cfg->link_path : "");
    emit_event(d, "ready\n");
    if (cfg->control_fd >= 0) {
        watch(d, cfg->control_fd, T_CONTROL);
        if (cw_device_ctl_ready(cfg->control_fd) < 0) {
            cw_log("control: cannot report ready: %s", strerror(errno));
            cw_vhost_destroy(&d->vhost);
            goto out;
        }
    }

    /* Isolation (src/util/sandbox.h): from here on no capabilities, a
     * seccomp allowlist and a confined file system. Everything the loop
     * needs is set up above, and no guest has been served yet. Failing to
     * enter is fatal (the reason is logged): never serve a guest unconfined.
     * --no-sandbox is for debugging. */
    if (!cfg->no_sandbox &&
        cw_sandbox_enter_device(&(struct cw_sandbox_device){
            .vhost_socket_path = cfg->socket_path, .link_path = cfg->link_path}) < 0) {
        if (d->has_link)
            cw_link_close(&d->link);
        cw_vhost_destroy(&d->vhost);
        goto out;
    }

    bool stop = false;
    while (!stop) {
        /* Polling: nothing is armed, so no kick or port signal is due; the
         * other fds (frontend, control, timer) can wait a few rounds. */
        if (cw_busy_skip_events(&d->busy)) {
            process(d);
            after_round(d);
            continue;
        }
        struct epoll_event evs[16];
        int timeout = (d->want_tx || d->want_rx) ? 0 : -1;
        int n = epoll_wait(d->epfd, evs, 16, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            cw_log("epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n && !stop; i++)
            stop = handle(d, evs[i].data.u64, evs[i].events);
        if (!stop) {
            if (d->busy.polling)
                set_polling(d, true); /* the port may have been attached anew */
            process(d);
            after_round(d);
        }
    }
    print_stats(d);
    status = 0;
    if (d->has_link)
        cw_link_close(&d->link);
    ctl_unwatch_port(d);
    cw_port_detach(&d->port);
    cw_vhost_destroy(&d->vhost);
out:
    if (d->epfd >= 0)
        close(d->epfd);
    free(d->net);
    free(d);
    return status;
}
