/* The device's control channel: see device_control.h and docs/CONTROL.md. */
#include "device_control.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../system/control.h"
#include "../util/log.h"

/* Messages handled per wake-up: the launcher sends a handful at a time; more
 * waiting just keeps the fd readable for the next turn of the loop. */
#define MSGS_PER_CALL 8

static struct cw_ratelimit ctl_rl = CW_RATELIMIT_INIT(1000, 5);

static void reply_error(int fd, const char *op, const char *why)
{
    char text[192];
    /* Truncation is fine: the reason is for a log line and an error reply. */
    int n = snprintf(text, sizeof(text), "%.32s: %.150s", op, why);
    (void)n;
    cw_log_limited(&ctl_rl, "control: refused %s", text);
    if (cw_ctl_send_error(fd, text) < 0)
        cw_log_limited(&ctl_rl, "control: cannot send an error reply: %s", strerror(errno));
}

/* The request's "seq", if any, goes back in the reply so the launcher can
 * tell a late answer from the one it waits for. */
static int copy_seq(const json_t *req, json_t *reply, char *err, size_t errlen)
{
    if (!json_object_get(req, "seq"))
        return 0;
    uint64_t seq;
    if (cw_ctl_get_uint(req, "seq", 0, UINT32_MAX, NULL, &seq, err, errlen) < 0)
        return -1;
    json_object_set_new(reply, "seq", json_integer((json_int_t)seq));
    return 0;
}

static void on_port(int fd, const json_t *m, int *fds, unsigned nfds,
                    const struct cw_device_ctl_ops *ops, void *ctx)
{
    static const char *const keys[] = {"side", "capacity", NULL};
    char err[160];
    uint64_t side, cap;
    struct cw_port_fds pf;
    if (cw_ctl_keys_only(m, keys, err, sizeof(err)) < 0 ||
        cw_ctl_get_uint(m, "side", 1, 1, NULL, &side, err, sizeof(err)) < 0 ||
        cw_ctl_get_uint(m, "capacity", CW_PORT_MIN_CAPACITY, CW_PORT_MAX_CAPACITY, NULL, &cap,
                        err, sizeof(err)) < 0) {
        cw_ctl_close_fds(fds, nfds);
        reply_error(fd, "port", err);
        return;
    }
    if (!cw_port_capacity_valid((uint32_t)cap)) {
        cw_ctl_close_fds(fds, nfds);
        reply_error(fd, "port", "capacity: not a power of two");
        return;
    }
    if (cw_ctl_take_port_fds(fds, nfds, &pf) < 0) {
        reply_error(fd, "port", "needs exactly 5 fds (memfd and 4 eventfds)");
        return;
    }
    err[0] = '\0';
    if (ops->attach(ctx, &pf, (uint32_t)cap, err, sizeof(err)) < 0)
        reply_error(fd, "port", err[0] ? err : "cannot attach");
}

static void on_message(int fd, json_t *m, int *fds, unsigned nfds,
                       const struct cw_device_ctl_ops *ops, void *ctx)
{
    const char *op = cw_ctl_op(m);
    char err[160];
    if (!strcmp(op, "port")) {
        on_port(fd, m, fds, nfds, ops, ctx);
        return;
    }
    /* No other op carries fds. */
    if (nfds) {
        cw_ctl_close_fds(fds, nfds);
        reply_error(fd, op, "unexpected fds");
        return;
    }
    if (!strcmp(op, "detach")) {
        if (cw_ctl_keys_only(m, NULL, err, sizeof(err)) < 0) {
            reply_error(fd, op, err);
            return;
        }
        ops->detach(ctx);
    } else if (!strcmp(op, "stats")) {
        static const char *const keys[] = {"seq", NULL};
        json_t *reply = json_pack("{s:s}", "op", "stats");
        if (!reply)
            return;
        if (cw_ctl_keys_only(m, keys, err, sizeof(err)) < 0 ||
            copy_seq(m, reply, err, sizeof(err)) < 0) {
            json_decref(reply);
            reply_error(fd, op, err);
            return;
        }
        ops->stats(ctx, reply);
        if (cw_ctl_send(fd, reply, NULL, 0) < 0)
            cw_log_limited(&ctl_rl, "control: cannot send stats: %s", strerror(errno));
        json_decref(reply);
    } else {
        if (cw_ctl_send_error(fd, "unknown op") < 0)
            cw_log_limited(&ctl_rl, "control: cannot send an error reply: %s", strerror(errno));
    }
}

bool cw_device_ctl_on_readable(int fd, const struct cw_device_ctl_ops *ops, void *ctx)
{
    for (int i = 0; i < MSGS_PER_CALL; i++) {
        json_t *m;
        int fds[CW_CTL_MAX_FDS];
        unsigned nfds;
        char err[160];
        switch (cw_ctl_recv(fd, &m, fds, &nfds, err, sizeof(err))) {
        case CW_CTL_MSG:
            on_message(fd, m, fds, nfds, ops, ctx);
            json_decref(m);
            break;
        case CW_CTL_BAD:
            reply_error(fd, "message", err);
            break;
        case CW_CTL_AGAIN:
            return true;
        case CW_CTL_EOF:
            cw_log("control: the launcher hung up");
            return false;
        case CW_CTL_ERROR:
        default:
            cw_log("control: %s", strerror(errno));
            return false;
        }
    }
    return true;
}

int cw_device_ctl_ready(int fd)
{
    return cw_ctl_send_event(fd, "ready", NULL);
}

int cw_device_ctl_link(int fd, bool up, const char *reason)
{
    json_t *more = json_pack("{s:b}", "up", up);
    if (!more)
        return -1;
    if (reason)
        json_object_set_new(more, "reason", json_string(reason));
    int rc = cw_ctl_send_event(fd, "link", more);
    json_decref(more);
    return rc;
}

int cw_device_ctl_frontend(int fd, bool connected)
{
    json_t *more = json_pack("{s:b}", "connected", connected);
    if (!more)
        return -1;
    int rc = cw_ctl_send_event(fd, "frontend", more);
    json_decref(more);
    return rc;
}

static json_t *u64(uint64_t v)
{
    /* JSON integers here are signed 64-bit; counters never get near 2^63. */
    return json_integer((json_int_t)(v > INT64_MAX ? INT64_MAX : v));
}

void cw_device_stats_fill(json_t *o, const struct cw_net *net, const struct cw_vhost *vhost,
                          const struct cw_port_stats *port, enum cw_gmem_strategy gmem)
{
    const struct cw_net_stats *s = &net->stats;
    json_t *drops = json_object();
    for (int i = 0; i < CW_DROP__COUNT; i++)
        json_object_set_new(drops, cw_net_drop_name((enum cw_net_drop)i), u64(s->drops[i]));
    json_object_set_new(o, "link", json_string(net->link_up ? "up" : "down"));
    json_object_set_new(o, "tx_frames", u64(s->tx_frames));
    json_object_set_new(o, "tx_bytes", u64(s->tx_bytes));
    json_object_set_new(o, "rx_frames", u64(s->rx_frames));
    json_object_set_new(o, "rx_bytes", u64(s->rx_bytes));
    json_object_set_new(o, "kicks", json_pack("[o,o]", u64(vhost->stats.kicks[CW_NET_RXQ]),
                                              u64(vhost->stats.kicks[CW_NET_TXQ])));
    json_object_set_new(o, "interrupts", json_pack("[o,o]", u64(s->interrupts[CW_NET_RXQ]),
                                                   u64(s->interrupts[CW_NET_TXQ])));
    json_object_set_new(o, "port_signals", u64(port->signals_sent));
    json_object_set_new(o, "port_wakeups", u64(port->wakeups));
    json_object_set_new(o, "sw_csum", u64(s->sw_csum));
    json_object_set_new(o, "sw_segments", u64(s->sw_segments));
    json_object_set_new(o, "gmem", json_string(cw_gmem_strategy_name(gmem)));
    json_object_set_new(o, "gmem_maps", u64(vhost->mem.maps));
    json_object_set_new(o, "gmem_unmaps", u64(vhost->mem.unmaps));
    json_object_set_new(o, "vhost_errors", u64(vhost->stats.protocol_errors));
    json_object_set_new(o, "drops", drops);
}
