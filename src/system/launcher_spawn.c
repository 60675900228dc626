/* Starting the launcher's children and handing them their capabilities:
 * the switch's config and TAPs, each device's port. Every child gets
 * /dev/null as stdin, one pipe as stdout and stderr (the launcher prefixes
 * its lines), its own process group (a terminal's Ctrl-C reaches only the
 * launcher, which stops them in order), and dies if the launcher dies. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "launcher_int.h"
#include "qemu.h"
#include "spawn.h"
#include "../port/port.h"

void child_init(struct child *c, enum child_kind kind, int index, const char *name)
{
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->index = index;
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->pid = -1;
    c->ctl = c->out = -1;
    c->rl = (struct cw_ratelimit)CW_RATELIMIT_INIT(1000, 20);
}

void child_reap(struct child *c)
{
    if (c->out >= 0) {
        /* The process is gone: what is left in the pipe is finite. Its last
         * lines (a guest's exit status) must be read before judging it. */
        while (cw_lines_read(&c->lines, c->out, STDOUT_FILENO, 1u << 20))
            ;
        close(c->out);
        c->out = -1;
    }
    if (c->ctl >= 0) {
        close(c->ctl);
        c->ctl = -1;
    }
    c->pid = -1;
    c->ready = false;
    c->ctl_lost_ms = 0;
}

/* Start argv with a pipe for its output and, if want_ctl, a control socket
 * whose child end's number is written into ctl_arg (already in argv). */
static int start(struct launcher *L, struct child *c, const char *path, const char **argv,
                 bool want_ctl, char *ctl_arg, size_t ctl_arg_len, const char *prefix,
                 bool scan_guest)
{
    int p[2], sv[2] = {-1, -1};
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    if (want_ctl && cw_ctl_socketpair(sv) < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (want_ctl)
        snprintf(ctl_arg, ctl_arg_len, "%d", sv[1]);
    int stdio[3] = {L->devnull, p[1], p[1]};
    pid_t pid = cw_spawn(path, argv, stdio, want_ctl ? &sv[1] : NULL, want_ctl ? 1 : 0,
                         CW_SPAWN_NEW_PGROUP);
    int saved = errno;
    close(p[1]);
    if (sv[1] >= 0)
        close(sv[1]);
    if (pid < 0) {
        close(p[0]);
        if (sv[0] >= 0)
            close(sv[0]);
        errno = saved;
        return -1;
    }
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    c->pid = pid;
    c->out = p[0];
    c->ctl = sv[0];
    c->ready = false;
    c->ctl_lost_ms = 0;
    c->state = C_RUNNING;
    cw_lines_init(&c->lines, prefix, scan_guest);
    return 0;
}

int spawn_switch(struct launcher *L, unsigned s)
{
    struct sw_rt *sw = &L->sw[s];
    const char *name = L->sys->switches[s].name;
    char ctl[16] = "", prefix[CW_LINES_PREFIX_MAX];
    snprintf(prefix, sizeof(prefix), "switch %s| ", name);
    const char *argv[] = {"causeway", "switch", "--name", name, "--control-fd", ctl, NULL};
    if (start(L, &sw->ch, L->opt.self, argv, true, ctl, sizeof(ctl), prefix, false) < 0) {
        launcher_say("switch %s: cannot start: %s", name, strerror(errno));
        return -1;
    }
    /* Everything the switch needs goes now, in order: it reads it when it
     * is up. The config first: no port may exist before the policy. */
    json_t *cfg = cw_switch_config_msg(L->sys, s, &sw->plan);
    int rc = cfg ? launcher_ctl_send(L, &sw->ch, cfg, NULL, 0) : -1;
    json_decref(cfg);
    for (unsigned k = 0; rc == 0 && k < sw->plan.n_ports; k++) {
        int u = sw->plan.port[k].uplink;
        if (u < 0)
            continue;
        json_t *m = json_pack("{s:s, s:I}", "op", "tap", "id", (json_int_t)k);
        rc = m ? launcher_ctl_send(L, &sw->ch, m, &L->tap[u], 1) : -1;
        json_decref(m);
    }
    if (rc < 0)
        launcher_say("switch %s: cannot send its configuration: %s", name, strerror(errno));
    return rc;
}

int hand_port(struct launcher *L, unsigned n)
{
    struct nic_rt *nic = &L->nic[n];
    struct sw_rt *sw = &L->sw[nic->sw];
    if (sw->ch.ctl < 0 || nic->dev.ctl < 0)
        return -1;
    struct cw_port_fds f;
    uint32_t cap = CW_PORT_DEFAULT_CAPACITY;
    if (cw_port_fds_create(&f, cap) < 0) {
        launcher_say("%s: cannot create a port: %s", nic->dev.name, strerror(errno));
        return -1;
    }
    int fds[CW_CTL_PORT_FDS];
    cw_ctl_port_fds_array(&f, fds);
    /* The switch first: frames the device sends as soon as it attaches
     * find the switch's side ready (or waiting in the ring). */
    json_t *ms = json_pack("{s:s, s:I, s:i, s:I}", "op", "port", "id", (json_int_t)nic->port,
                           "side", 0, "capacity", (json_int_t)cap);
    json_t *md = json_pack("{s:s, s:i, s:I}", "op", "port", "side", 1, "capacity",
                           (json_int_t)cap);
    int rc = -1;
    if (ms && md && launcher_ctl_send(L, &sw->ch, ms, fds, CW_CTL_PORT_FDS) == 0 &&
        launcher_ctl_send(L, &nic->dev, md, fds, CW_CTL_PORT_FDS) == 0)
        rc = 0;
    json_decref(ms);
    json_decref(md);
    /* Both have their copies (or the port is lost): we keep none. */
    cw_port_fds_close(&f);
    if (rc < 0)
        launcher_say("%s: cannot hand over its port: %s", nic->dev.name, strerror(errno));
    return rc;
}

int spawn_device(struct launcher *L, unsigned n)
{
    struct nic_rt *nic = &L->nic[n];
    const struct cw_sys_vm *vm = &L->sys->vms[nic->vm];
    const struct cw_sys_nic *sn = &vm->nics[nic->nic];
    char ctl[16] = "", mac[18], mtu[16], prefix[CW_LINES_PREFIX_MAX];
    cw_format_mac(sn->mac, mac);
    snprintf(mtu, sizeof(mtu), "%u", sn->mtu);
    snprintf(prefix, sizeof(prefix), "%s| ", vm->name);
    const char *argv[24];
    int a = 0;
    argv[a++] = "causeway";
    argv[a++] = "device";
    argv[a++] = "--socket"; argv[a++] = nic->sock;
    argv[a++] = "--control-fd"; argv[a++] = ctl;
    argv[a++] = "--name"; argv[a++] = nic->dev.name;
    argv[a++] = "--gmem"; argv[a++] = cw_gmem_strategy_name(vm->gmem);
    argv[a++] = "--mac"; argv[a++] = mac;
    argv[a++] = "--offloads"; argv[a++] = sn->offloads ? "on" : "off";
    if (sn->mtu) {
        argv[a++] = "--mtu";
        argv[a++] = mtu;
    }
    argv[a] = NULL;
    if (start(L, &nic->dev, L->opt.self, argv, true, ctl, sizeof(ctl), prefix, false) < 0) {
        launcher_say("%s: cannot start its device process: %s", nic->dev.name, strerror(errno));
        return -1;
    }
    /* The port can go at once: the device reads it after it listens. A
     * switch that is not running (restarting) hands ports to every device
     * when it is back; one that cannot take it now is the switch's failure,
     * not the device's (reported by hand_port). */
    if (L->sw[nic->sw].ch.state == C_RUNNING)
        hand_port(L, n);
    return 0;
}

int spawn_qemu(struct launcher *L, unsigned v)
{
    struct vm_rt *vr = &L->vm[v];
    const struct cw_sys_vm *vm = &L->sys->vms[v];
    struct cw_qemu_config c = {
        .qemu = L->opt.qemu, .name = vm->name, .kernel = vm->kernel, .initrd = vm->initrd,
        .cmdline = vm->cmdline, .mem = vm->memory, .cpus = vm->vcpus,
        .accel = cw_qemu_accel(vm->accel), .qmp = vr->qmp, .n_nics = vm->n_nics,
    };
    if (!c.accel || c.n_nics > CW_QEMU_MAX_NICS) {
        errno = EINVAL;
        return -1;
    }
    for (unsigned i = 0; i < vm->n_nics; i++) {
        const struct cw_sys_nic *sn = &vm->nics[i];
        c.nic[i] = (struct cw_qemu_nic){.sock = L->nic[vr->first_nic + i].sock, .mtu = sn->mtu,
                                        .queue_size = sn->queue_size};
        memcpy(c.nic[i].mac, sn->mac, 6);
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    int stdio[3] = {L->devnull, p[1], p[1]};
    pid_t pid = cw_qemu_spawn(&c, stdio, CW_SPAWN_NEW_PGROUP);
    int saved = errno;
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        launcher_say("vm %s: cannot start QEMU: %s", vm->name, strerror(saved));
        errno = saved;
        return -1;
    }
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    char prefix[CW_LINES_PREFIX_MAX];
    snprintf(prefix, sizeof(prefix), "%s| ", vm->name);
    vr->qemu.pid = pid;
    vr->qemu.out = p[0];
    vr->qemu.state = C_RUNNING;
    cw_lines_init(&vr->qemu.lines, prefix, true);
    vr->state = VM_RUNNING;
    return 0;
}
