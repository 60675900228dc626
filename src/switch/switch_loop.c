/* The switch process's event loop and its side of the launcher protocol.
 *
 * Work is driven by notifications only: a port's "data" eventfd or a
 * readable TAP marks the port as wanting service; each round serves every
 * such port for at most the engine's budget and the loop polls with a zero
 * timeout while a port has more, so control messages and other ports get
 * their turn. "space" eventfds are only drained: the switch never waits for
 * a receiver (a full destination drops the frame), but the ring protocol
 * asks for that signal when a reservation fails, and an undrained eventfd
 * would keep epoll awake.
 *
 * With --busy-poll the loop keeps serving every port for a while after the
 * last frame moved, with no port asking for a signal (src/util/busy_poll.h). */
#define _GNU_SOURCE
#include "switch_loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../port/port.h"
#include "../system/control.h"
#include "../util/epoll_watch.h"
#include "../util/busy_poll.h"
#include "../util/log.h"
#include "../util/sandbox.h"
#include "../util/sched.h"
#include "../util/signals.h"
#include "switch.h"
#include "switch_config.h"
#include "tap.h"

/* Control messages handled per wake-up; more waiting keep the fd readable. */
#define MSGS_PER_CALL 8

enum tag {
    T_CONTROL = 1,
    T_SIGNAL,
    T_PORT_RX = 0x100, /* + port id */
    T_PORT_TX = 0x200,
    T_TAP = 0x300,
};

enum rt_kind { RT_NONE, RT_PORT, RT_TAP };

/* What carries port K's frames in this process. */
struct rt {
    enum rt_kind kind;
    struct cw_port port; /* RT_PORT; stats survive re-attachment */
    struct cw_tap *tap;  /* RT_TAP */
    int watched[2];      /* fds in the epoll set */
};

struct proc {
    const struct cw_switch_opts *o;
    struct cw_switch *sw;
    struct cw_switch_names names;
    uint64_t seed;
    bool configured;
    int epfd, sigfd, ctl;
    uint64_t want; /* ports to serve (bit per id) */
    struct rt rt[CW_SW_MAX_PORTS];
    struct cw_ratelimit rl;
    struct cw_busy_poll busy;
};

static void watch(struct proc *p, int fd, uint64_t tag)
{
    cw_epoll_watch(p->epfd, fd, tag);
}

static void unwatch(struct proc *p, int fd)
{
    cw_epoll_unwatch(p->epfd, fd);
}

/* ---- messages to the launcher ---- */

/* Sends never block (cw_ctl_send): a launcher that stopped reading loses
 * messages, the data path goes on. */
static void send_json(struct proc *p, json_t *j)
{
    if (!j)
        return;
    if (cw_ctl_send(p->ctl, j, NULL, 0) < 0)
        cw_log_limited(&p->rl, "control: could not send a message: %s", strerror(errno));
    json_decref(j);
}

/* {"op":"error","error":"OP: reason"} */
__attribute__((format(printf, 3, 4))) static void reply_error(struct proc *p, const char *op,
                                                              const char *fmt, ...)
{
    char why[384], text[448];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snprintf(text, sizeof(text), "%.32s: %s", op, why);
    cw_log_limited(&p->rl, "control: refused %s", text);
    if (cw_ctl_send_error(p->ctl, text) < 0)
        cw_log_limited(&p->rl, "control: could not send an error reply: %s", strerror(errno));
}

/* A line for the launcher, which prints it as "switch NAME| text". It goes
 * to stderr only when the event cannot be sent: the launcher relays stderr
 * too, and the line must not appear twice. */
static void emit_log(struct proc *p, const char *text)
{
    json_t *more = json_pack("{s:s}", "text", text);
    if (!more || cw_ctl_send_event(p->ctl, "log", more) < 0)
        cw_log("%s", text);
    json_decref(more);
}

/* ---- drops worth telling (the engine rate-limits them) ---- */

static size_t describe(char *out, size_t len, const struct cw_frame *f)
{
    char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
    int n = snprintf(out, len, "%02x:%02x:%02x:%02x:%02x:%02x > %02x:%02x:%02x:%02x:%02x:%02x%s",
                     f->src[0], f->src[1], f->src[2], f->src[3], f->src[4], f->src[5], f->dst[0],
                     f->dst[1], f->dst[2], f->dst[3], f->dst[4], f->dst[5],
                     f->vlans ? " vlan" : "");
    if (n < 0 || (size_t)n >= len)
        return len;
    size_t off = (size_t)n;
    const char *l4 = NULL;
    if (f->l3 == CW_L3_ARP && f->l3_ok) {
        uint32_t s = htonl(f->arp_spa), t = htonl(f->arp_tpa);
        inet_ntop(AF_INET, &s, a, sizeof(a));
        inet_ntop(AF_INET, &t, b, sizeof(b));
        n = snprintf(out + off, len - off, " arp %s > %s", a, b);
    } else if (f->l3 == CW_L3_IPV4 && f->l3_ok) {
        uint32_t s = htonl(f->src4), t = htonl(f->dst4);
        inet_ntop(AF_INET, &s, a, sizeof(a));
        inet_ntop(AF_INET, &t, b, sizeof(b));
        n = snprintf(out + off, len - off, " ipv4 %s > %s", a, b);
        l4 = "icmp";
    } else if (f->l3 == CW_L3_IPV6 && f->l3_ok) {
        inet_ntop(AF_INET6, f->src6, a, sizeof(a));
        inet_ntop(AF_INET6, f->dst6, b, sizeof(b));
        n = snprintf(out + off, len - off, " ipv6 %s > %s", a, b);
        l4 = "icmpv6";
    } else {
        n = snprintf(out + off, len - off, " ethertype 0x%04x", f->l3_type);
    }
    if (n < 0 || (size_t)n >= len - off)
        return len;
    off += (size_t)n;
    if (l4 && f->has_proto) {
        if (f->has_ports)
            n = snprintf(out + off, len - off, " %s %u > %u",
                         f->proto == CW_IPPROTO_TCP ? "tcp" : f->proto == CW_IPPROTO_UDP ? "udp"
                                                                                         : "proto",
                         f->sport, f->dport);
        else if (f->has_icmp)
            n = snprintf(out + off, len - off, " %s type %u", l4, f->icmp_type);
        else
            n = snprintf(out + off, len - off, " proto %u%s", f->proto,
                         f->fragment ? " fragment" : "");
        if (n < 0 || (size_t)n >= len - off)
            return len;
        off += (size_t)n;
    }
    return off;
}

static void on_drop(void *ctx, const struct cw_sw_drop_event *ev)
{
    struct proc *p = ctx;
    const struct cw_switch *sw = p->sw;
    char text[512];
    size_t off = 0;
    int n = snprintf(text, sizeof(text), "dropped (%s) from %s", cw_sw_drop_name(ev->reason),
                     sw->ports[ev->port].cfg.name);
    if (n > 0)
        off = (size_t)n;
    if (off < sizeof(text) && ev->dest >= 0 && ev->dest < (int)CW_SW_MAX_PORTS) {
        n = snprintf(text + off, sizeof(text) - off, " to %s", sw->ports[ev->dest].cfg.name);
        off += n > 0 ? (size_t)n : 0;
    }
    if (off < sizeof(text) - 2 && ev->frame) {
        text[off++] = ':';
        text[off++] = ' ';
        text[off] = '\0';
        off += describe(text + off, sizeof(text) - off, ev->frame);
    }
    if (off < sizeof(text) && ev->reason == CW_SW_DROP_POLICY) {
        if (ev->rule_line >= 0)
            n = snprintf(text + off, sizeof(text) - off, " (denied by the rule on line %d)",
                         ev->rule_line);
        else
            n = snprintf(text + off, sizeof(text) - off, " (no rule allows it)");
        off += n > 0 ? (size_t)n : 0;
    }
    if (off < sizeof(text) && ev->suppressed)
        snprintf(text + off, sizeof(text) - off, " (%llu more not shown)",
                 (unsigned long long)ev->suppressed);
    text[sizeof(text) - 1] = '\0';
    emit_log(p, text);
}

/* ---- ports ---- */

static void port_drop(struct proc *p, unsigned id)
{
    struct rt *r = &p->rt[id];
    cw_switch_port_down(p->sw, id);
    for (int k = 0; k < 2; k++) {
        unwatch(p, r->watched[k]);
        r->watched[k] = -1;
    }
    if (r->kind == RT_PORT)
        cw_port_detach(&r->port);
    if (r->kind == RT_TAP) {
        cw_tap_close(r->tap);
        free(r->tap);
        r->tap = NULL;
    }
    r->kind = RT_NONE;
    p->want &= ~(1ull << id);
}

/* The "id" of a port or tap message: a configured port of that kind. -1
 * with the reason in err. */
static int port_id(const json_t *msg, enum cw_sw_port_kind kind, const struct cw_switch *sw,
                   char *err, size_t errlen)
{
    uint64_t v;
    if (cw_ctl_get_uint(msg, "id", 0, CW_SW_MAX_PORTS - 1, NULL, &v, err, errlen) < 0 ||
        !sw->ports[v].configured) {
        snprintf(err, errlen, "id: not a configured port");
        return -1;
    }
    unsigned id = (unsigned)v;
    if (sw->ports[id].cfg.kind != kind) {
        snprintf(err, errlen, "port %u (%s) is %s", id, sw->ports[id].cfg.name,
                 kind == CW_SW_NIC ? "an uplink: it takes a tap" : "a NIC: it takes a port");
        return -1;
    }
    return (int)id;
}

static bool keys_ok(struct proc *p, const json_t *msg, const char *op, const char *const *keys)
{
    char err[160];
    if (cw_ctl_keys_only(msg, keys, err, sizeof(err)) < 0) {
        reply_error(p, op, "%s", err);
        return false;
    }
    return true;
}

/* Each handler owns fds[0..nfds): it closes or hands over every one, and
 * closes refused ones before it answers (whoever reads the answer sees
 * them gone). */

static void handle_port(struct proc *p, const json_t *msg, int *fds, unsigned nfds)
{
    static const char *const keys[] = {"id", "side", "capacity", NULL};
    char err[160];
    uint64_t side, cap;
    int id = port_id(msg, CW_SW_NIC, p->sw, err, sizeof(err));
    if (cw_ctl_keys_only(msg, keys, err, sizeof(err)) < 0 || id < 0)
        goto refuse;
    if (cw_ctl_get_uint(msg, "side", 0, 0, NULL, &side, err, sizeof(err)) < 0 ||
        cw_ctl_get_uint(msg, "capacity", CW_PORT_MIN_CAPACITY, CW_PORT_MAX_CAPACITY, NULL, &cap,
                        err, sizeof(err)) < 0)
        goto refuse;
    if (!cw_port_capacity_valid((uint32_t)cap)) {
        snprintf(err, sizeof(err), "capacity: not a power of two");
        goto refuse;
    }
    struct cw_port_fds f;
    if (cw_ctl_take_port_fds(fds, nfds, &f) < 0) { /* closes them */
        reply_error(p, "port", "needs exactly 5 fds (memfd and 4 eventfds), got %u", nfds);
        return;
    }
    port_drop(p, (unsigned)id); /* a restarted device replaces its port */
    struct rt *r = &p->rt[id];
    /* A fresh memfd is zero: both sides start at index 0 without anyone
     * initialising (the device may attach before or after us). Attach
     * owns f from here and closes it on failure. */
    if (cw_port_attach(&r->port, &f, 0, (uint32_t)cap, false) < 0) {
        reply_error(p, "port", "port %d (%s): %s", id, p->sw->ports[id].cfg.name, strerror(errno));
        return;
    }
    r->kind = RT_PORT;
    r->watched[0] = cw_port_rx_data_fd(&r->port);
    r->watched[1] = cw_port_tx_space_fd(&r->port);
    watch(p, r->watched[0], T_PORT_RX + (uint64_t)id);
    watch(p, r->watched[1], T_PORT_TX + (uint64_t)id);
    cw_switch_port_up(p->sw, (unsigned)id, &cw_port_net_ops, &r->port);
    p->want |= 1ull << id; /* frames may already be waiting */
    cw_log("port %d (%s) attached", id, p->sw->ports[id].cfg.name);
    return;
refuse:
    cw_ctl_close_fds(fds, nfds);
    reply_error(p, "port", "%s", err);
}

static void handle_tap(struct proc *p, const json_t *msg, int *fds, unsigned nfds)
{
    static const char *const keys[] = {"id", NULL};
    char err[160];
    int id = port_id(msg, CW_SW_UPLINK, p->sw, err, sizeof(err));
    if (cw_ctl_keys_only(msg, keys, err, sizeof(err)) < 0 || id < 0)
        goto refuse;
    if (nfds != 1) {
        snprintf(err, sizeof(err), "needs exactly 1 fd (the TAP), got %u", nfds);
        goto refuse;
    }
    struct cw_tap *t = malloc(sizeof(*t));
    if (!t) {
        snprintf(err, sizeof(err), "out of memory");
        goto refuse;
    }
    port_drop(p, (unsigned)id);
    if (cw_tap_open(t, fds[0], p->sw, (unsigned)id) < 0) { /* closes the fd on failure */
        reply_error(p, "tap", "port %d (%s): not a TAP with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR: %s", id,
                    p->sw->ports[id].cfg.name, strerror(errno));
        free(t);
        return;
    }
    struct rt *r = &p->rt[id];
    r->kind = RT_TAP;
    r->tap = t;
    r->watched[0] = t->fd;
    watch(p, t->fd, T_TAP + (uint64_t)id);
    cw_switch_port_up(p->sw, (unsigned)id, &cw_tap_ops, t);
    p->want |= 1ull << id;
    cw_log("port %d (%s) attached to its TAP", id, p->sw->ports[id].cfg.name);
    return;
refuse:
    cw_ctl_close_fds(fds, nfds);
    reply_error(p, "tap", "%s", err);
}

static void handle_detach(struct proc *p, const json_t *msg)
{
    static const char *const keys[] = {"id", NULL};
    char err[160];
    uint64_t id;
    if (!keys_ok(p, msg, "detach", keys))
        return;
    if (cw_ctl_get_uint(msg, "id", 0, CW_SW_MAX_PORTS - 1, NULL, &id, err, sizeof(err)) < 0 ||
        !p->sw->ports[id].configured) {
        reply_error(p, "detach", "id: not a configured port");
        return;
    }
    if (p->rt[id].kind != RT_NONE)
        cw_log("port %u (%s) detached", (unsigned)id, p->sw->ports[id].cfg.name);
    port_drop(p, (unsigned)id);
}

static void handle_stats(struct proc *p, const json_t *msg)
{
    static const char *const keys[] = {"seq", NULL};
    char err[160];
    uint64_t seq = 0;
    if (!keys_ok(p, msg, "stats", keys))
        return;
    bool has_seq = json_object_get(msg, "seq") != NULL;
    if (has_seq && cw_ctl_get_uint(msg, "seq", 0, UINT32_MAX, NULL, &seq, err, sizeof(err)) < 0) {
        reply_error(p, "stats", "%s", err);
        return;
    }
    json_t *reply = cw_switch_stats_json(p->sw, &p->names, cw_now_ms());
    /* The launcher matches a reply to its request by seq. */
    if (reply && has_seq)
        json_object_set_new(reply, "seq", json_integer((json_int_t)seq));
    send_json(p, reply);
}

static void handle_config(struct proc *p, const json_t *msg)
{
    if (p->configured) {
        reply_error(p, "config", "already configured (the configuration is sent once)");
        return;
    }
    char err[256];
    if (cw_switch_config_json(p->sw, &p->names, msg, err, sizeof(err)) < 0) {
        /* Nothing of a refused config stays: start from a clean switch. */
        uint32_t budget = p->sw->budget;
        cw_switch_init(p->sw, p->seed, p->o->fdb_aging_ms);
        p->sw->budget = budget;
        p->names.n_domains = 0;
        reply_error(p, "config", "%s", err);
        return;
    }
    p->configured = true;
    p->sw->on_drop = on_drop;
    p->sw->log_ctx = p;
    unsigned n_ports = 0;
    for (unsigned i = 0; i < CW_SW_MAX_PORTS; i++)
        n_ports += p->sw->ports[i].configured;
    cw_log("configured: %u ports, %u domains, %u rules", n_ports, p->names.n_domains,
           p->sw->policy.n_rules);
    if (cw_ctl_send_event(p->ctl, "ready", NULL) < 0)
        cw_log("control: could not send the ready event: %s", strerror(errno));
}

static void dispatch(struct proc *p, const json_t *msg, int *fds, unsigned nfds)
{
    const char *op = cw_ctl_op(msg);
    if (!strcmp(op, "port") || !strcmp(op, "tap")) {
        if (!p->configured) {
            cw_ctl_close_fds(fds, nfds);
            reply_error(p, op, "no configuration yet");
        } else if (!strcmp(op, "port")) {
            handle_port(p, msg, fds, nfds);
        } else {
            handle_tap(p, msg, fds, nfds);
        }
        return;
    }
    bool known = !strcmp(op, "config") || !strcmp(op, "detach") || !strcmp(op, "stats");
    if (!known) {
        cw_ctl_close_fds(fds, nfds);
        if (cw_ctl_send_error(p->ctl, "unknown op") < 0)
            cw_log_limited(&p->rl, "control: could not send an error reply: %s", strerror(errno));
        return;
    }
    if (nfds) {
        cw_ctl_close_fds(fds, nfds);
        reply_error(p, op, "unexpected fds");
        return;
    }
    if (!strcmp(op, "config"))
        handle_config(p, msg);
    else if (!p->configured)
        reply_error(p, op, "no configuration yet");
    else if (!strcmp(op, "detach"))
        handle_detach(p, msg);
    else
        handle_stats(p, msg);
}

/* Read what the launcher sent. false: it is gone. */
static bool on_control(struct proc *p)
{
    for (int i = 0; i < MSGS_PER_CALL; i++) {
        json_t *msg;
        int fds[CW_CTL_MAX_FDS];
        unsigned nfds;
        char err[160];
        switch (cw_ctl_recv(p->ctl, &msg, fds, &nfds, err, sizeof(err))) {
        case CW_CTL_MSG:
            dispatch(p, msg, fds, nfds);
            json_decref(msg);
            break;
        case CW_CTL_BAD:
            reply_error(p, "message", "%s", err);
            break;
        case CW_CTL_AGAIN:
            return true;
        case CW_CTL_EOF:
            return false;
        case CW_CTL_ERROR:
        default:
            cw_log("control: %s", strerror(errno));
            return false;
        }
    }
    return true;
}

/* ---- the loop ---- */

static void check_ports(struct proc *p)
{
    for (unsigned id = 0; id < CW_SW_MAX_PORTS; id++) {
        struct rt *r = &p->rt[id];
        char text[256];
        if (r->kind == RT_PORT && cw_port_broken(&r->port)) {
            snprintf(text, sizeof(text),
                     "port %u (%s): the peer corrupted the port ring; port dropped", id,
                     p->sw->ports[id].cfg.name);
        } else if (r->kind == RT_TAP && r->tap->failed) {
            snprintf(text, sizeof(text), "port %u (%s): TAP read failed (%s); port dropped", id,
                     p->sw->ports[id].cfg.name, strerror(r->tap->error));
        } else {
            continue;
        }
        port_drop(p, id);
        emit_log(p, text);
    }
}

/* Returns true when the process should stop. */
static bool handle(struct proc *p, uint64_t tag, uint32_t events)
{
    if (tag == T_SIGNAL) {
        struct signalfd_siginfo si;
        if (read(p->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
            cw_log("stopping on signal %u", si.ssi_signo);
            return true;
        }
        return false;
    }
    if (tag == T_CONTROL) {
        if (!on_control(p)) {
            cw_log("the launcher closed the control socket; stopping");
            return true;
        }
        /* A hung-up socket with nothing left to read: stop, don't spin. */
        return (events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN);
    }
    unsigned id = (unsigned)(tag & 0xFFu);
    if (id >= CW_SW_MAX_PORTS)
        return false;
    struct rt *r = &p->rt[id];
    switch (tag & ~0xFFull) {
    case T_PORT_RX:
        if (r->kind == RT_PORT) {
            cw_port_drain(&r->port, cw_port_rx_data_fd(&r->port));
            p->want |= 1ull << id;
        }
        break;
    case T_PORT_TX:
        if (r->kind == RT_PORT)
            cw_port_drain(&r->port, cw_port_tx_space_fd(&r->port));
        break;
    case T_TAP:
        if (r->kind == RT_TAP)
            p->want |= 1ull << id;
        break;
    default:
        break;
    }
    return false;
}

/* Ports polled in the busy window: the shared-memory ones. A TAP stays
 * driven by its fd's readiness (a poll would be a read syscall). */
static uint64_t polled_ports(struct proc *p, bool polling)
{
    uint64_t mask = 0;
    for (unsigned id = 0; id < CW_SW_MAX_PORTS; id++)
        if (p->rt[id].kind == RT_PORT) {
            p->rt[id].port.polling = polling;
            mask |= 1ull << id;
        }
    return mask;
}

static uint64_t frames_received(const struct proc *p)
{
    uint64_t n = 0;
    for (unsigned id = 0; id < CW_SW_MAX_PORTS; id++)
        n += p->sw->ports[id].stats.rx_frames;
    return n;
}

static void after_round(struct proc *p)
{
    if (p->busy.window_ns == 0)
        return;
    switch (cw_busy_after_round(&p->busy, frames_received(p), p->want != 0, cw_now_ns)) {
    case CW_BUSY_SLEEP:
        return;
    case CW_BUSY_POLL_YIELD:
        sched_yield();
        /* fall through */
    case CW_BUSY_POLL:
        p->want |= polled_ports(p, true);
        return;
    case CW_BUSY_ARM:
        p->want |= polled_ports(p, false);
        return;
    }
}

static void serve_round(struct proc *p)
{
    if (p->want) {
        cw_switch_round(p->sw, &p->want, cw_now_ms());
        check_ports(p);
    }
    after_round(p);
}

static int setup(struct proc *p)
{
    int type = 0;
    socklen_t tl = sizeof(type);
    if (getsockopt(p->ctl, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_SEQPACKET) {
        cw_log("--control-fd %d is not a SOCK_SEQPACKET socket", p->ctl);
        return -1;
    }
    p->sigfd = cw_signalfd_open((const int[]){SIGINT, SIGTERM, 0});
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->sigfd < 0 || p->epfd < 0) {
        cw_log("cannot set up the event loop: %s", strerror(errno));
        return -1;
    }
    watch(p, p->sigfd, T_SIGNAL);
    watch(p, p->ctl, T_CONTROL);
    return 0;
}

int cw_switch_main(const struct cw_switch_opts *o)
{
    char prefix[96];
    snprintf(prefix, sizeof(prefix), "switch %s", o->name ? o->name : "?");
    cw_log_set_prefix(prefix);

    struct proc *p = calloc(1, sizeof(*p));
    if (!p) {
        cw_log("out of memory");
        return 1;
    }
    p->o = o;
    cw_sched_apply(o->sched);
    cw_busy_init(&p->busy, &o->busy_poll);
    p->ctl = o->control_fd;
    p->epfd = p->sigfd = -1;
    p->rl = (struct cw_ratelimit)CW_RATELIMIT_INIT(1000, 5);
    for (unsigned i = 0; i < CW_SW_MAX_PORTS; i++)
        p->rt[i].watched[0] = p->rt[i].watched[1] = -1;
    if (o->name)
        snprintf(p->names.name, sizeof(p->names.name), "%s", o->name);
    p->sw = calloc(1, sizeof(*p->sw));
    int status = 1;
    if (!p->sw || setup(p) < 0)
        goto out;
    /* The forwarding table's hash key: a peer must not be able to predict
     * which addresses share a bucket. */
    if (getrandom(&p->seed, sizeof(p->seed), GRND_NONBLOCK) != (ssize_t)sizeof(p->seed))
        p->seed = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
    cw_switch_init(p->sw, p->seed, o->fdb_aging_ms);
    if (o->budget)
        p->sw->budget = o->budget;

    /* Everything the switch will ever open is open; ports and TAPs still
     * arrive later (a restarted device gets a new port), which the switch
     * profile allows: recvmsg with fds, mmap of received memfds, the TAP
     * ioctls. Nothing else (no open, no socket, no exec) from here on. */
    if (!o->no_sandbox && cw_sandbox_enter_switch() < 0) {
        cw_log("cannot enter the sandbox; not serving");
        goto out;
    }

    cw_log("waiting for the configuration on fd %d", p->ctl);
    bool stop = false;
    while (!stop) {
        /* Polling: no port asked for a signal; the control socket, signals
         * and TAPs can wait a few rounds. */
        if (cw_busy_skip_events(&p->busy)) {
            serve_round(p);
            continue;
        }
        struct epoll_event evs[32];
        int n = epoll_wait(p->epfd, evs, 32, p->want ? 0 : -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            cw_log("epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n && !stop; i++)
            stop = handle(p, evs[i].data.u64, evs[i].events);
        if (!stop)
            serve_round(p);
    }
    status = 0;
out:
    for (unsigned id = 0; id < CW_SW_MAX_PORTS; id++)
        if (p->rt[id].kind != RT_NONE)
            port_drop(p, id);
    if (p->epfd >= 0)
        close(p->epfd);
    if (p->sigfd >= 0)
        close(p->sigfd);
    free(p->sw);
    free(p);
    return status;
}
