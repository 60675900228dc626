/* The launcher's event loop: see launcher.h and docs/CONTROL.md.
 *
 * One thread, one poll() over: the signalfd (SIGINT, SIGTERM, SIGCHLD),
 * the system control socket and its clients, and every child's output pipe
 * and control socket. The fd set changes as children come and go, so it is
 * rebuilt on every turn (a few hundred fds at most: the control plane, not
 * the data path). Every child is handled with a bounded amount of work per
 * turn, so a child that floods us cannot starve the others. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control.h"
#include "launcher_int.h"
#include "qemu.h"
#include "spawn.h"
#include "host_tap.h"
#include "../cli/vm_qmp.h"
#include "../util/signals.h"

#define CTL_MSGS_PER_TURN 16
#define OUT_BYTES_PER_TURN (64u << 10)

void launcher_say(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    fprintf(stderr, "causeway: %s\n", line);
    fflush(stderr);
}

int launcher_ctl_send(struct launcher *L, struct child *c, json_t *msg, const int *fds,
                      unsigned nfds)
{
    (void)L;
    if (c->ctl < 0) {
        errno = EPIPE;
        return -1;
    }
    return cw_ctl_send(c->ctl, msg, fds, nfds);
}

/* --- helpers over the children --- */

static struct child *find_child(struct launcher *L, pid_t pid)
{
    for (unsigned s = 0; s < L->sys->n_switches; s++)
        if (L->sw[s].ch.pid == pid)
            return &L->sw[s].ch;
    for (unsigned n = 0; n < L->n_nics; n++)
        if (L->nic[n].dev.pid == pid)
            return &L->nic[n].dev;
    for (unsigned v = 0; v < L->sys->n_vms; v++)
        if (L->vm[v].qemu.pid == pid)
            return &L->vm[v].qemu;
    return NULL;
}

static bool any_live(struct launcher *L)
{
    for (unsigned s = 0; s < L->sys->n_switches; s++)
        if (L->sw[s].ch.pid > 0)
            return true;
    for (unsigned n = 0; n < L->n_nics; n++)
        if (L->nic[n].dev.pid > 0)
            return true;
    for (unsigned v = 0; v < L->sys->n_vms; v++)
        if (L->vm[v].qemu.pid > 0)
            return true;
    return false;
}

static bool any_qemu_live(struct launcher *L)
{
    for (unsigned v = 0; v < L->sys->n_vms; v++)
        if (L->vm[v].qemu.pid > 0)
            return true;
    return false;
}

static void signal_qemus(struct launcher *L, int sig)
{
    for (unsigned v = 0; v < L->sys->n_vms; v++)
        if (L->vm[v].qemu.pid > 0)
            kill(L->vm[v].qemu.pid, sig);
}

static void signal_rest(struct launcher *L, int sig)
{
    for (unsigned n = 0; n < L->n_nics; n++)
        if (L->nic[n].dev.pid > 0)
            kill(L->nic[n].dev.pid, sig);
    for (unsigned s = 0; s < L->sys->n_switches; s++)
        if (L->sw[s].ch.pid > 0)
            kill(L->sw[s].ch.pid, sig);
}

static void signal_all(struct launcher *L, int sig)
{
    signal_qemus(L, sig);
    signal_rest(L, sig);
}

/* QEMUs first, the rest once they are gone (or after STOP_QEMU_FIRST_MS):
 * a guest going down must not see its NIC's backend vanish under it. */
void launcher_stop(struct launcher *L, const char *why)
{
    if (L->stopping)
        return;
    L->stopping = true;
    L->stop_start_ms = cw_now_ms();
    L->stop_deadline_ms = L->stop_start_ms + STOP_GRACE_MS;
    if (why)
        launcher_say("stopping: %s", why);
    signal_qemus(L, SIGTERM);
}

static void stop_progress(struct launcher *L, uint64_t now)
{
    if (!L->stop_rest_sent &&
        (!any_qemu_live(L) || now - L->stop_start_ms >= STOP_QEMU_FIRST_MS)) {
        L->stop_rest_sent = true;
        signal_rest(L, SIGTERM);
    }
}

/* Tell QEMU the carrier now, or as soon as CARRIER_MIN_GAP_MS has passed
 * since the last time: a device flapping its link (a compromised one can)
 * costs at most one QMP exchange per gap, and the last state wins. */
static void flush_carrier(struct launcher *L, unsigned n, uint64_t now)
{
    struct nic_rt *nic = &L->nic[n];
    struct vm_rt *vr = &L->vm[nic->vm];
    if (!nic->carrier_pending)
        return;
    if (vr->state != VM_RUNNING || vr->qemu.pid <= 0 || L->stopping) {
        nic->carrier_pending = false; /* QEMU starts with carrier up; nothing to tell */
        return;
    }
    if (nic->carrier_last_ms && now - nic->carrier_last_ms < CARRIER_MIN_GAP_MS)
        return;
    nic->carrier_pending = false;
    nic->carrier_last_ms = now;
    char id[16];
    snprintf(id, sizeof(id), CW_QEMU_NIC_ID_FMT, (unsigned)nic->nic);
    if (cw_qmp_set_link(vr->qmp, id, nic->carrier_want) == -1)
        launcher_say("vm %s: could not set %s carrier %s through QMP", vr->qemu.name, id,
                     nic->carrier_want ? "up" : "down");
}

static void set_carrier(struct launcher *L, unsigned n, bool up)
{
    L->nic[n].carrier_want = up;
    L->nic[n].carrier_pending = true;
    flush_carrier(L, n, cw_now_ms());
}

static void detach_from_switch(struct launcher *L, unsigned n)
{
    struct nic_rt *nic = &L->nic[n];
    struct child *sw = &L->sw[nic->sw].ch;
    if (sw->state != C_RUNNING)
        return;
    json_t *m = json_pack("{s:s, s:i}", "op", "detach", "id", nic->port);
    if (m && launcher_ctl_send(L, sw, m, NULL, 0) < 0)
        launcher_say("switch %s: cannot detach port %d: %s", sw->name, nic->port,
                     strerror(errno));
    json_decref(m);
}

/* --- failures and restarts --- */

static void schedule_restart(struct launcher *L, struct child *c, uint64_t now)
{
    if (L->stopping) {
        c->state = C_DONE;
        return;
    }
    if (now - c->window_start_ms > RESTART_WINDOW_MS) {
        c->window_start_ms = now;
        c->window_restarts = 0;
    }
    if (c->window_restarts >= RESTART_LIMIT) {
        c->state = C_FAILED;
        launcher_say("%s: crashed %d times within %d s; not restarting it", c->name,
                     RESTART_LIMIT + 1, RESTART_WINDOW_MS / 1000);
        return;
    }
    /* The first restart is immediate; a crash loop slows down. */
    c->restart_at_ms = now + 250u * c->window_restarts;
    c->window_restarts++;
    c->restarts++;
    c->state = C_IDLE;
}

static void restart_due(struct launcher *L, uint64_t now)
{
    for (unsigned s = 0; s < L->sys->n_switches; s++) {
        struct child *c = &L->sw[s].ch;
        if (c->state != C_IDLE || !c->restarts || now < c->restart_at_ms)
            continue;
        launcher_say("switch %s: restarting", c->name);
        if (spawn_switch(L, s) < 0) {
            /* Started but not configured: it must not forward. Its death
             * comes back here as a crash. */
            if (c->pid > 0)
                kill(c->pid, SIGKILL);
            else
                schedule_restart(L, c, now);
            continue;
        }
        /* Fresh ports for every device on it that is up (each was told to
         * detach when the switch died). */
        for (unsigned n = 0; n < L->n_nics; n++)
            if (L->nic[n].sw == (int)s && L->nic[n].dev.state == C_RUNNING)
                hand_port(L, n);
    }
    for (unsigned n = 0; n < L->n_nics; n++) {
        struct child *c = &L->nic[n].dev;
        if (c->state != C_IDLE || !c->restarts || now < c->restart_at_ms)
            continue;
        launcher_say("%s: restarting its device process", c->name);
        if (spawn_device(L, n) < 0)
            schedule_restart(L, c, now); /* no process: try again later */
    }
}

static void vm_exited(struct launcher *L, struct vm_rt *vr, int status)
{
    char why[96];
    cw_describe_status(why, sizeof(why), status);
    int guest = vr->qemu.lines.guest_exit;
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    vr->state = VM_EXITED;
    vr->qemu.state = C_DONE;
    if (guest >= 0)
        snprintf(vr->result, sizeof(vr->result), "qemu %s, guest exit=%d", why, guest);
    else
        snprintf(vr->result, sizeof(vr->result), "qemu %s", why);
    /* A guest whose script failed failed, even if it powered off cleanly. A
     * guest that prints no status (not our image) is judged by QEMU alone. */
    vr->failed = !clean || guest > 0;
    launcher_say("vm %s: %s%s", vr->qemu.name, vr->result,
                 L->stopping ? " (stopping)" : vr->failed ? "" : " (powered off)");
    /* Its devices serve nobody now: off the switch, then gone. */
    const struct cw_sys_vm *vm = &L->sys->vms[vr - L->vm];
    for (unsigned i = 0; i < vm->n_nics; i++) {
        unsigned n = vr->first_nic + i;
        struct child *d = &L->nic[n].dev;
        if (d->state == C_RUNNING)
            detach_from_switch(L, n);
        d->state = C_DONE;
        if (d->pid > 0)
            kill(d->pid, SIGTERM);
    }
    if (vr->failed && !L->stopping && L->sys->stop_all_on_failure) {
        L->fatal = true;
        launcher_stop(L, "a VM failed and on_failure is \"stop\"");
    }
}

static void device_exited(struct launcher *L, unsigned n, int status, uint64_t now)
{
    struct child *c = &L->nic[n].dev;
    if (c->state == C_DONE || L->stopping) {
        c->state = C_DONE;
        return;
    }
    char why[96];
    cw_describe_status(why, sizeof(why), status);
    launcher_say("%s: device process %s", c->name, why);
    detach_from_switch(L, n);
    L->nic[n].link_up = L->nic[n].frontend = false;
    set_carrier(L, n, false);
    if (L->sys->stop_all_on_failure) {
        c->state = C_DONE;
        L->fatal = true;
        launcher_stop(L, "a device process crashed and on_failure is \"stop\"");
        return;
    }
    schedule_restart(L, c, now);
}

static void switch_exited(struct launcher *L, unsigned s, int status, uint64_t now)
{
    struct child *c = &L->sw[s].ch;
    if (c->state == C_DONE || L->stopping) {
        c->state = C_DONE;
        return;
    }
    char why[96];
    cw_describe_status(why, sizeof(why), status);
    launcher_say("switch %s: %s", c->name, why);
    /* Its ports are gone with it: every device on it loses its carrier. */
    for (unsigned n = 0; n < L->n_nics; n++) {
        if (L->nic[n].sw != (int)s || L->nic[n].dev.state != C_RUNNING)
            continue;
        json_t *m = json_pack("{s:s}", "op", "detach");
        if (m)
            launcher_ctl_send(L, &L->nic[n].dev, m, NULL, 0);
        json_decref(m);
    }
    if (L->sys->stop_all_on_failure) {
        c->state = C_DONE;
        L->fatal = true;
        launcher_stop(L, "a switch crashed and on_failure is \"stop\"");
        return;
    }
    schedule_restart(L, c, now);
}

static void check_ctl_lost(struct launcher *L, struct child *c, uint64_t now)
{
    if (!c->ctl_lost_ms || c->pid <= 0 || now - c->ctl_lost_ms < CTL_LOST_GRACE_MS)
        return;
    c->ctl_lost_ms = 0;
    if (L->stopping || c->state != C_RUNNING)
        return;
    launcher_say("%s: closed its control socket but runs on; killing it", c->name);
    kill(c->pid, SIGKILL);
}

static void reap_children(struct launcher *L)
{
    int status;
    pid_t pid;
    uint64_t now = cw_now_ms();
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct child *c = find_child(L, pid);
        if (!c)
            continue;
        child_reap(c);
        stats_child_gone(L, c);
        switch (c->kind) {
        case K_QEMU: vm_exited(L, &L->vm[c->index], status); break;
        case K_DEVICE: device_exited(L, (unsigned)c->index, status, now); break;
        case K_SWITCH: switch_exited(L, (unsigned)c->index, status, now); break;
        }
    }
}

/* --- messages from children --- */

static void print_child_text(const char *prefix, const char *text)
{
    /* Through a line formatter of its own: the same sanitising as the
     * pipes, without mixing into a partial line from the pipe. */
    struct cw_lines tmp;
    cw_lines_init(&tmp, prefix, false);
    size_t n = strlen(text); /* JSON strings are NUL-terminated, NUL-free */
    cw_lines_feed(&tmp, text, n < CW_LINES_MAX - 1 ? n : CW_LINES_MAX - 1, STDOUT_FILENO);
    cw_lines_flush(&tmp, STDOUT_FILENO);
}

/* A child's log events: at most rl->burst per interval get printed. */
static bool allow(struct cw_ratelimit *rl)
{
    uint64_t now = cw_now_ms();
    if (now - rl->window_start_ms >= rl->interval_ms) {
        if (rl->suppressed)
            launcher_say("(%llu log lines of a child suppressed)",
                         (unsigned long long)rl->suppressed);
        rl->window_start_ms = now;
        rl->used = 0;
        rl->suppressed = 0;
    }
    if (rl->used >= rl->burst) {
        rl->suppressed++;
        return false;
    }
    rl->used++;
    return true;
}

static void on_event(struct launcher *L, struct child *c, json_t *m)
{
    const char *ev = json_string_value(json_object_get(m, "event"));
    if (!ev)
        return;
    if (!strcmp(ev, "ready")) {
        c->ready = true;
    } else if ((!strcmp(ev, "link") || !strcmp(ev, "frontend")) && c->kind == K_DEVICE) {
        bool link = !strcmp(ev, "link");
        json_t *v = json_object_get(m, link ? "up" : "connected");
        if (!json_is_boolean(v))
            return;
        struct nic_rt *n = &L->nic[c->index];
        bool was = n->link_up;
        if (link)
            n->link_up = json_is_true(v);
        else
            n->frontend = json_is_true(v);
        /* QEMU's carrier follows the port while QEMU is connected. When it
         * (re)connects it raises the carrier itself, whatever the port's
         * state: re-assert ours. When it goes away it knows (and may be
         * exiting): nothing to tell. */
        if (n->frontend && (!link || was != n->link_up))
            set_carrier(L, (unsigned)c->index, n->link_up);
    } else if (!strcmp(ev, "log")) {
        const char *text = json_string_value(json_object_get(m, "text"));
        if (text && allow(&c->rl))
            print_child_text(c->lines.prefix, text);
    }
}

static void on_ctl_message(struct launcher *L, struct child *c, json_t *m)
{
    const char *op = cw_ctl_op(m);
    if (!strcmp(op, "event")) {
        on_event(L, c, m);
    } else if (!strcmp(op, "stats")) {
        stats_reply(L, c, m);
    } else if (!strcmp(op, "error")) {
        const char *e = json_string_value(json_object_get(m, "error"));
        char text[300];
        snprintf(text, sizeof(text), "control error: %.250s", e ? e : "?");
        if (allow(&c->rl))
            print_child_text(c->lines.prefix, text);
        if (c->kind == K_SWITCH && !c->ready && !L->stopping) {
            /* A switch that refused its policy must not forward anything. */
            L->fatal = true;
            launcher_stop(L, "a switch refused its configuration");
        }
    }
}

static void on_ctl_readable(struct launcher *L, struct child *c)
{
    for (int i = 0; i < CTL_MSGS_PER_TURN && c->ctl >= 0; i++) {
        json_t *m;
        int fds[CW_CTL_MAX_FDS];
        unsigned nfds;
        char err[160];
        enum cw_ctl_result r = cw_ctl_recv(c->ctl, &m, fds, &nfds, err, sizeof(err));
        if (r == CW_CTL_AGAIN)
            return;
        if (r == CW_CTL_BAD) {
            if (allow(&c->rl))
                launcher_say("%s: bad control message: %s", c->name, err);
            continue;
        }
        if (r != CW_CTL_MSG) {
            /* Usually the child is exiting (its SIGCHLD follows). One that
             * lives on without its control socket is of no use: it is
             * killed after a grace period, and so restarted. */
            close(c->ctl);
            c->ctl = -1;
            if (c->pid > 0)
                c->ctl_lost_ms = cw_now_ms();
            return;
        }
        if (nfds) /* nothing a child sends us carries fds */
            cw_ctl_close_fds(fds, nfds);
        on_ctl_message(L, c, m);
        json_decref(m);
    }
}

/* --- start-up --- */

static bool vm_can_start(struct launcher *L, unsigned v)
{
    const struct cw_sys_vm *vm = &L->sys->vms[v];
    for (unsigned i = 0; i < vm->n_nics; i++) {
        struct nic_rt *n = &L->nic[L->vm[v].first_nic + i];
        if (!n->dev.ready || !L->sw[n->sw].ch.ready)
            return false;
    }
    return true;
}

static void start_vms(struct launcher *L, uint64_t now)
{
    bool all = true;
    for (unsigned v = 0; v < L->sys->n_vms; v++) {
        struct vm_rt *vr = &L->vm[v];
        if (vr->state != VM_WAITING)
            continue;
        if (!vm_can_start(L, v)) {
            all = false;
            continue;
        }
        if (spawn_qemu(L, v) < 0) {
            vr->state = VM_EXITED;
            vr->failed = true;
            snprintf(vr->result, sizeof(vr->result), "QEMU did not start");
            L->fatal = true;
            launcher_stop(L, "a VM could not start");
            return;
        }
    }
    if (all) {
        L->started = true;
        return;
    }
    if (now - L->start_ms > STARTUP_TIMEOUT_MS) {
        for (unsigned s = 0; s < L->sys->n_switches; s++)
            if (!L->sw[s].ch.ready)
                launcher_say("switch %s: not ready after %d s", L->sw[s].ch.name,
                             STARTUP_TIMEOUT_MS / 1000);
        for (unsigned n = 0; n < L->n_nics; n++)
            if (!L->nic[n].dev.ready)
                launcher_say("%s: device process not ready after %d s", L->nic[n].dev.name,
                             STARTUP_TIMEOUT_MS / 1000);
        L->fatal = true;
        launcher_stop(L, "the system did not come up");
    }
}

static bool all_vms_exited(struct launcher *L)
{
    for (unsigned v = 0; v < L->sys->n_vms; v++)
        if (L->vm[v].state != VM_EXITED)
            return false;
    return true;
}

/* --- the loop --- */

enum pf_kind { PF_SIGNAL, PF_LISTEN, PF_CLIENT, PF_OUT, PF_CTL };

struct pf_ref {
    enum pf_kind kind;
    int client;
    struct child *c;
};

#define MAX_PFDS (2 + CW_SRV_MAX_CLIENTS + 2 * (CW_SYS_MAX_SWITCHES + CW_SYS_MAX_VMS * \
                                                (1 + CW_SYS_MAX_NICS)))

static void add_child_fds(struct child *c, struct pollfd *pfd, struct pf_ref *ref, unsigned *np)
{
    if (c->out >= 0) {
        pfd[*np] = (struct pollfd){.fd = c->out, .events = POLLIN};
        ref[(*np)++] = (struct pf_ref){PF_OUT, -1, c};
    }
    if (c->ctl >= 0) {
        pfd[*np] = (struct pollfd){.fd = c->ctl, .events = POLLIN};
        ref[(*np)++] = (struct pf_ref){PF_CTL, -1, c};
    }
}

static void on_signal(struct launcher *L)
{
    struct signalfd_siginfo si;
    while (read(L->sigfd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGCHLD)
            continue; /* reaped below, every turn */
        if (!L->stopping) {
            L->stop_signal = (int)si.ssi_signo;
            char why[64];
            snprintf(why, sizeof(why), "on SIG%s", sigabbrev_np((int)si.ssi_signo));
            launcher_stop(L, why);
        } else if (si.ssi_signo == SIGINT) {
            launcher_say("stopping now (second interrupt)");
            signal_all(L, SIGKILL);
        }
    }
}

static void loop(struct launcher *L)
{
    static struct pollfd pfd[MAX_PFDS];
    static struct pf_ref ref[MAX_PFDS];
    bool killed = false;
    for (;;) {
        uint64_t now = cw_now_ms();
        reap_children(L);
        if (!L->stopping) {
            restart_due(L, now);
            if (!L->started)
                start_vms(L, now);
            if (L->started && all_vms_exited(L))
                launcher_stop(L, NULL);
        }
        for (unsigned s = 0; s < L->sys->n_switches; s++)
            check_ctl_lost(L, &L->sw[s].ch, now);
        for (unsigned n = 0; n < L->n_nics; n++)
            check_ctl_lost(L, &L->nic[n].dev, now);
        for (unsigned n = 0; n < L->n_nics; n++)
            flush_carrier(L, n, now);
        if (L->stopping)
            stop_progress(L, now);
        if (L->stopping && !any_live(L))
            return;
        if (L->stopping && !killed && now >= L->stop_deadline_ms) {
            launcher_say("children still running after %d s; killing them", STOP_GRACE_MS / 1000);
            signal_all(L, SIGKILL);
            killed = true;
        }
        stats_tick(L, now);
        cw_srv_tick(&L->srv, now);

        unsigned np = 0;
        pfd[np] = (struct pollfd){.fd = L->sigfd, .events = POLLIN};
        ref[np++] = (struct pf_ref){PF_SIGNAL, -1, NULL};
        if (L->srv.listen_fd >= 0) {
            pfd[np] = (struct pollfd){.fd = L->srv.listen_fd, .events = POLLIN};
            ref[np++] = (struct pf_ref){PF_LISTEN, -1, NULL};
        }
        for (int i = 0; i < CW_SRV_MAX_CLIENTS; i++) {
            short ev = (short)((cw_srv_wants_read(&L->srv, i) ? POLLIN : 0) |
                               (cw_srv_wants_write(&L->srv, i) ? POLLOUT : 0));
            if (ev) {
                pfd[np] = (struct pollfd){.fd = L->srv.c[i].fd, .events = ev};
                ref[np++] = (struct pf_ref){PF_CLIENT, i, NULL};
            }
        }
        for (unsigned s = 0; s < L->sys->n_switches; s++)
            add_child_fds(&L->sw[s].ch, pfd, ref, &np);
        for (unsigned n = 0; n < L->n_nics; n++)
            add_child_fds(&L->nic[n].dev, pfd, ref, &np);
        for (unsigned v = 0; v < L->sys->n_vms; v++)
            add_child_fds(&L->vm[v].qemu, pfd, ref, &np);

        /* Timers (restarts, deadlines) are checked each turn: wake at least
         * every 100 ms while any may be due, else every second. */
        int timeout = (L->stopping || !L->started || L->round_active) ? 100 : 1000;
        for (unsigned n = 0; n < L->n_nics; n++)
            if ((L->nic[n].dev.state == C_IDLE && L->nic[n].dev.restarts) ||
                L->nic[n].carrier_pending)
                timeout = 50;
        for (unsigned s = 0; s < L->sys->n_switches; s++)
            if (L->sw[s].ch.state == C_IDLE && L->sw[s].ch.restarts)
                timeout = 50;
        int r = poll(pfd, np, timeout);
        if (r < 0 && errno != EINTR) {
            launcher_say("poll: %s", strerror(errno));
            L->fatal = true;
            launcher_stop(L, "internal error");
            signal_all(L, SIGKILL);
            killed = true;
            continue;
        }
        now = cw_now_ms();
        for (unsigned i = 0; r > 0 && i < np; i++) {
            if (!pfd[i].revents)
                continue;
            struct pf_ref *f = &ref[i];
            switch (f->kind) {
            case PF_SIGNAL: on_signal(L); break;
            case PF_LISTEN: cw_srv_accept(&L->srv, now); break;
            case PF_CLIENT: {
                if (pfd[i].revents & POLLOUT)
                    cw_srv_on_writable(&L->srv, f->client, now);
                if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                    break;
                json_t *req;
                if (cw_srv_read(&L->srv, f->client, &req, now) == 1) {
                    const char *op = json_string_value(json_object_get(req, "op"));
                    if (op && !strcmp(op, "stats")) {
                        stats_request(L, f->client, now);
                    } else {
                        json_t *e = json_pack("{s:s, s:s}", "op", "error", "error",
                                              "unknown op (this socket answers \"stats\")");
                        if (e)
                            cw_srv_reply(&L->srv, f->client, e, now);
                        json_decref(e);
                    }
                    json_decref(req);
                }
                break;
            }
            case PF_OUT:
                if (f->c->out >= 0 &&
                    !cw_lines_read(&f->c->lines, f->c->out, STDOUT_FILENO, OUT_BYTES_PER_TURN)) {
                    close(f->c->out);
                    f->c->out = -1;
                }
                break;
            case PF_CTL:
                if (f->c->ctl >= 0)
                    on_ctl_readable(L, f->c);
                break;
            }
        }
    }
}

/* --- set-up and tear-down --- */

int cw_launcher_check(const struct cw_system *sys, char *err, size_t errlen)
{
    for (unsigned v = 0; v < sys->n_vms; v++) {
        if (!cw_qemu_accel(sys->vms[v].accel)) {
            snprintf(err, errlen, "%s: vm %s: accel %s: this host's /dev/kvm has no hardware "
                     "virtualization (use \"auto\" or \"tcg\")", sys->path, sys->vms[v].name,
                     sys->vms[v].accel);
            return -1;
        }
        if (sys->vms[v].n_nics > CW_QEMU_MAX_NICS) {
            snprintf(err, errlen, "%s: vm %s: more than %d NICs", sys->path, sys->vms[v].name,
                     CW_QEMU_MAX_NICS);
            return -1;
        }
    }
    for (unsigned s = 0; s < sys->n_switches; s++) {
        struct cw_switch_plan plan;
        if (cw_switch_plan(sys, s, &plan) < 0) {
            snprintf(err, errlen, "%s: switch %s: more than %d ports", sys->path,
                     sys->switches[s].name, CW_SYS_MAX_PORTS);
            return -1;
        }
    }
    return 0;
}

static int setup(struct launcher *L)
{
    const struct cw_system *sys = L->sys;
    char err[256];
    L->sigfd = cw_signalfd_open((const int[]){SIGINT, SIGTERM, SIGCHLD, 0});
    L->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (L->sigfd < 0 || L->devnull < 0) {
        launcher_say("cannot set up: %s", strerror(errno));
        return -1;
    }
    cw_rundir_system_name(sys->path, L->sysname, sizeof(L->sysname));
    if (cw_rundir_create(&L->rd, L->sysname, err, sizeof(err)) < 0) {
        launcher_say("%s", err);
        return -1;
    }
    if (cw_srv_open(&L->srv, L->rd.control, err, sizeof(err)) < 0) {
        launcher_say("control socket: %s", err);
        return -1;
    }
    launcher_say("system control socket: %s", L->rd.control);

    for (unsigned s = 0; s < sys->n_switches; s++) {
        child_init(&L->sw[s].ch, K_SWITCH, (int)s, sys->switches[s].name);
        if (cw_switch_plan(sys, s, &L->sw[s].plan) < 0)
            return -1; /* cw_launcher_check said so already */
    }
    for (unsigned v = 0; v < sys->n_vms; v++) {
        struct vm_rt *vr = &L->vm[v];
        child_init(&vr->qemu, K_QEMU, (int)v, sys->vms[v].name);
        /* Named after the VM where the path fits a socket address, else
         * after its index (the runtime directory guarantees room for that). */
        char file[64];
        snprintf(file, sizeof(file), "%s.qmp", sys->vms[v].name);
        bool by_name = cw_rundir_file(&L->rd, file, vr->qmp, sizeof(vr->qmp)) == 0;
        for (unsigned i = 0; by_name && i < sys->vms[v].n_nics; i++) {
            char sock[CW_RUNDIR_PATH_MAX];
            snprintf(file, sizeof(file), "%s.nic%u.sock", sys->vms[v].name, i);
            by_name = cw_rundir_file(&L->rd, file, sock, sizeof(sock)) == 0;
        }
        if (!by_name) {
            snprintf(file, sizeof(file), "vm%u.qmp", v);
            if (cw_rundir_file(&L->rd, file, vr->qmp, sizeof(vr->qmp)) < 0)
                return -1;
        }
        vr->first_nic = L->n_nics;
        for (unsigned i = 0; i < sys->vms[v].n_nics; i++) {
            struct nic_rt *n = &L->nic[L->n_nics];
            char name[80];
            snprintf(name, sizeof(name), "%s/nic%u", sys->vms[v].name, i);
            child_init(&n->dev, K_DEVICE, (int)L->n_nics, name);
            n->vm = (int)v;
            n->nic = (int)i;
            n->sw = sys->vms[v].nics[i].switch_index;
            if (n->sw < 0 || (unsigned)n->sw >= sys->n_switches)
                return -1;
            n->port = cw_switch_plan_find_nic(&L->sw[n->sw].plan, (int)v, (int)i);
            if (by_name)
                snprintf(file, sizeof(file), "%s.nic%u.sock", sys->vms[v].name, i);
            else
                snprintf(file, sizeof(file), "vm%u.nic%u.sock", v, i);
            if (n->port < 0 || cw_rundir_file(&L->rd, file, n->sock, sizeof(n->sock)) < 0)
                return -1;
            L->n_nics++;
        }
    }
    /* Host resources before any process: a TAP we cannot have fails the
     * start with nothing running. */
    for (unsigned u = 0; u < sys->n_uplinks; u++) {
        L->tap[u] = cw_host_tap_open(sys->uplinks[u].tap, err, sizeof(err));
        if (L->tap[u] < 0) {
            launcher_say("uplink on switch %s: %s", sys->uplinks[u].switch_name, err);
            return -1;
        }
    }
    return 0;
}

static void teardown(struct launcher *L)
{
    for (unsigned u = 0; u < L->sys->n_uplinks; u++)
        if (L->tap[u] >= 0)
            close(L->tap[u]);
    for (unsigned s = 0; s < L->sys->n_switches; s++)
        json_decref(L->sw[s].ch.stats);
    for (unsigned n = 0; n < L->n_nics; n++)
        json_decref(L->nic[n].dev.stats);
    cw_srv_close(&L->srv);
    cw_rundir_remove(&L->rd);
    if (L->sigfd >= 0)
        close(L->sigfd);
    if (L->devnull >= 0)
        close(L->devnull);
}

static int exit_status(struct launcher *L)
{
    if (L->stop_signal)
        return 128 + L->stop_signal;
    if (L->fatal)
        return 1;
    for (unsigned v = 0; v < L->sys->n_vms; v++)
        if (L->vm[v].failed)
            return 1;
    return 0;
}

int cw_launcher_run(const struct cw_system *sys, const struct cw_launch_options *opt)
{
    struct launcher *L = calloc(1, sizeof(*L));
    if (!L) {
        launcher_say("out of memory");
        return 1;
    }
    L->sys = sys;
    L->opt = *opt;
    if (!L->opt.self)
        L->opt.self = "/proc/self/exe";
    L->sigfd = L->devnull = -1;
    L->srv.listen_fd = -1;
    for (int i = 0; i < CW_SRV_MAX_CLIENTS; i++)
        L->srv.c[i].fd = -1;
    for (unsigned u = 0; u < CW_SYS_MAX_UPLINKS; u++)
        L->tap[u] = -1;
    L->start_ms = cw_now_ms();
    int rc = 1;
    if (setup(L) == 0) {
        bool ok = true;
        for (unsigned s = 0; ok && s < sys->n_switches; s++)
            ok = spawn_switch(L, s) == 0;
        for (unsigned n = 0; ok && n < L->n_nics; n++)
            ok = spawn_device(L, n) == 0;
        if (!ok) {
            L->fatal = true;
            launcher_stop(L, "the system could not start");
        }
        if (sys->n_vms == 0)
            launcher_stop(L, "no VMs to run");
        loop(L);
        rc = exit_status(L);
    }
    teardown(L);
    free(L);
    return rc;
}
