/* causeway vm: one VM = one QEMU (vCPUs, virtual PCI bus, virtio-net-pci
 * transport) + one Causeway device process per NIC, wired by vhost-user.
 *
 * The supervisor validates everything before starting anything, starts the
 * device processes first (QEMU connects to their sockets), then QEMU with the
 * console on stdout, and watches them: the guest powering off ends the VM
 * with status 0; a child dying otherwise ends it with a reason; SIGINT or
 * SIGTERM stop both. Link carrier events from a device are passed to the
 * guest through QMP set_link, so a dead peer shows as "no carrier" inside. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "options.h"
#include "../util/busy_poll.h"
#include "../util/signals.h"
#include "vm_qmp.h"
#include "../core/net.h"
#include "../gmem/guest_memory.h"
#include "../system/qemu.h"
#include "../system/spawn.h"

#define VM_MAX_NICS CW_QEMU_MAX_NICS

struct vm_nic {
    char *link;
    uint8_t mac[6];
    bool mac_set;
    uint16_t mtu;
    bool offloads;
    uint16_t queue_size;
    struct cw_busy_cfg busy_poll;
    pid_t pid;
    int event_rd;
    char evbuf[256];
    size_t evlen;
    char sock[256];
};

struct vm {
    const char *name;
    const char *kernel, *initrd, *cmdline, *qemu;
    uint64_t mem;
    unsigned cpus;
    const char *accel; /* resolved: "kvm" or "tcg" */
    enum cw_gmem_strategy gmem;
    unsigned n_nics;
    struct vm_nic nic[VM_MAX_NICS];
    char dir[64];
    char qmp[256];
    pid_t qemu_pid;
};

static void vm_usage(FILE *f)
{
    fputs("usage: causeway vm --kernel FILE --initrd FILE --net link=PATH[,...] [options]\n"
          "  --kernel FILE       guest kernel (bzImage)\n"
          "  --initrd FILE       guest initramfs\n"
          "  --cmdline STRING    kernel command line (default: " CW_QEMU_DEFAULT_CMDLINE ")\n"
          "  --mem SIZE          guest memory, e.g. 256M (default 256M)\n"
          "  --cpus N            vCPUs (default 1)\n"
          "  --accel MODE        auto (default), kvm or tcg\n"
          "  --gmem STRATEGY     persistent (default) or map-per-access\n"
          "  --name NAME         VM name for logs (default vm)\n"
          "  --qemu PATH         QEMU binary (default qemu-system-x86_64 from PATH)\n"
          "  --net link=PATH[,mac=MAC][,mtu=N][,offloads=on|off][,queue-size=N][,busy-poll=auto|USEC]\n"
          "                      a NIC joined to the peer at PATH (repeatable, up to 4);\n"
          "                      busy-poll: the device's busy window (causeway device --help)\n",
          f);
}

static void parse_net(struct vm *vm, char *spec)
{
    if (vm->n_nics == VM_MAX_NICS)
        cw_usage_error("--net: at most %d NICs", VM_MAX_NICS);
    struct vm_nic *n = &vm->nic[vm->n_nics];
    *n = (struct vm_nic){.offloads = true, .queue_size = 1024, .pid = -1, .event_rd = -1,
                         .busy_poll = CW_BUSY_AUTO};
    char *cur = spec, *key, *val;
    uint64_t v;
    while ((key = cw_next_kv(&cur, &val))) {
        if (!val)
            cw_usage_error("--net: '%s' needs a value (key=value)", key);
        if (!strcmp(key, "link")) {
            if (!*val || strlen(val) >= sizeof(((struct sockaddr_un *)0)->sun_path))
                cw_usage_error("--net: link path '%s' is empty or too long for a socket", val);
            n->link = val;
        } else if (!strcmp(key, "mac")) {
            if (cw_parse_mac(val, n->mac))
                cw_usage_error("--net: mac '%s' is not a unicast MAC like 52:54:00:00:00:01", val);
            n->mac_set = true;
        } else if (!strcmp(key, "mtu")) {
            if (cw_parse_uint(val, 68, CW_NET_MAX_MTU, &v))
                cw_usage_error("--net: mtu '%s' is not a number from 68 to 65535", val);
            n->mtu = (uint16_t)v;
        } else if (!strcmp(key, "offloads")) {
            if (cw_parse_onoff(val, &n->offloads))
                cw_usage_error("--net: offloads '%s' is not on or off", val);
        } else if (!strcmp(key, "queue-size")) {
            /* QEMU accepts 256..1024 for vhost-user; the split ring needs a power of two. */
            if (cw_parse_uint(val, 256, 1024, &v) || (v & (v - 1)))
                cw_usage_error("--net: queue-size '%s' is not 256, 512 or 1024", val);
            n->queue_size = (uint16_t)v;
        } else if (!strcmp(key, "busy-poll")) {
            if (cw_busy_parse(val, &n->busy_poll))
                cw_usage_error("--net: busy-poll '%s' is not auto or microseconds from 0 to "
                               "1000000", val);
        } else {
            cw_usage_error("--net: unknown key '%s' (link, mac, mtu, offloads, queue-size, "
                           "busy-poll)", key);
        }
    }
    if (!n->link)
        cw_usage_error("--net: link=PATH is required");
    vm->n_nics++;
}

static void check_readable(const char *what, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        cw_usage_error("%s '%s': %s", what, path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        cw_usage_error("%s '%s': not a regular file", what, path);
    if (access(path, R_OK) < 0)
        cw_usage_error("%s '%s': not readable: %s", what, path, strerror(errno));
}

static void default_mac(const struct vm *vm, unsigned i, uint8_t mac[6])
{
    uint32_t h = 2166136261u; /* FNV-1a of the VM name: stable per name */
    for (const char *p = vm->name; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    uint8_t m[6] = {0x52, 0x54, 0x00, (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)(h + i)};
    memcpy(mac, m, 6);
}

static void parse_args(struct vm *vm, int argc, char **argv)
{
    static const struct option opts[] = {
        {"kernel", required_argument, NULL, 'k'}, {"initrd", required_argument, NULL, 'i'},
        {"cmdline", required_argument, NULL, 'c'}, {"mem", required_argument, NULL, 'm'},
        {"cpus", required_argument, NULL, 'p'},   {"accel", required_argument, NULL, 'a'},
        {"gmem", required_argument, NULL, 'g'},   {"net", required_argument, NULL, 'n'},
        {"name", required_argument, NULL, 'N'},   {"qemu", required_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *accel = "auto";
    uint64_t v;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k': vm->kernel = optarg; break;
        case 'i': vm->initrd = optarg; break;
        case 'c': vm->cmdline = optarg; break;
        case 'N':
            if (!*optarg || strlen(optarg) > 32 || strpbrk(optarg, " /,="))
                cw_usage_error("--name: '%s' must be 1-32 characters without space / , =", optarg);
            vm->name = optarg;
            break;
        case 'q': vm->qemu = optarg; break;
        case 'm':
            if (cw_parse_size(optarg, &vm->mem) || vm->mem < (64ull << 20) || vm->mem % (1 << 20))
                cw_usage_error("--mem: '%s' is not a size of at least 64M in whole MiB", optarg);
            break;
        case 'p':
            if (cw_parse_uint(optarg, 1, 64, &v))
                cw_usage_error("--cpus: '%s' is not a number from 1 to 64", optarg);
            vm->cpus = (unsigned)v;
            break;
        case 'a':
            if (strcmp(optarg, "auto") && strcmp(optarg, "kvm") && strcmp(optarg, "tcg"))
                cw_usage_error("--accel: '%s' is not auto, kvm or tcg", optarg);
            accel = optarg;
            break;
        case 'g':
            if (cw_gmem_strategy_parse(optarg, &vm->gmem))
                cw_usage_error("--gmem: '%s' is not persistent or map-per-access", optarg);
            break;
        case 'n': parse_net(vm, optarg); break;
        case 'h': vm_usage(stdout); exit(0);
        default:
            cw_usage_error("vm: unknown or incomplete option '%s' (see causeway vm --help)",
                           argv[optind - 1]);
        }
    }
    if (optind < argc)
        cw_usage_error("vm: unexpected argument '%s'", argv[optind]);
    if (!vm->kernel)
        cw_usage_error("vm: --kernel FILE is required");
    if (!vm->initrd)
        cw_usage_error("vm: --initrd FILE is required");
    if (!vm->n_nics)
        cw_usage_error("vm: at least one --net link=PATH is required");
    check_readable("--kernel", vm->kernel);
    check_readable("--initrd", vm->initrd);
    struct sysinfo si;
    if (sysinfo(&si) == 0 && vm->mem > (uint64_t)si.totalram * si.mem_unit)
        cw_usage_error("--mem: %llu MiB is more than this host's memory (%llu MiB)",
                       (unsigned long long)(vm->mem >> 20),
                       (unsigned long long)(((uint64_t)si.totalram * si.mem_unit) >> 20));
    char *qemu = cw_find_in_path(vm->qemu ? vm->qemu : "qemu-system-x86_64");
    if (!qemu)
        cw_usage_error("QEMU '%s' not found (install Debian's qemu-system-x86)",
                       vm->qemu ? vm->qemu : "qemu-system-x86_64");
    vm->qemu = qemu;
    vm->accel = cw_qemu_accel(accel);
    if (!vm->accel)
        cw_usage_error("--accel kvm: this host's /dev/kvm has no hardware virtualization "
                       "(use --accel tcg or auto)");
    for (unsigned i = 0; i < vm->n_nics; i++)
        if (!vm->nic[i].mac_set)
            default_mac(vm, i, vm->nic[i].mac);
}

static int spawn_device(struct vm *vm, unsigned i)
{
    struct vm_nic *n = &vm->nic[i];
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    snprintf(n->sock, sizeof(n->sock), "%s/nic%u.sock", vm->dir, i);
    char name[64], evfd[16], mac[18], mtu[16], busy[16];
    snprintf(name, sizeof(name), "%s/nic%u", vm->name, i);
    snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1], n->mac[2],
             n->mac[3], n->mac[4], n->mac[5]);
    snprintf(mtu, sizeof(mtu), "%u", n->mtu);
    snprintf(evfd, sizeof(evfd), "%d", p[1]);
    cw_busy_format(&n->busy_poll, busy, sizeof(busy));
    pid_t pid;
    {
        const char *argv[24];
        int a = 0;
        argv[a++] = "causeway";
        argv[a++] = "device";
        argv[a++] = "--socket"; argv[a++] = n->sock;
        argv[a++] = "--link"; argv[a++] = n->link;
        argv[a++] = "--gmem"; argv[a++] = cw_gmem_strategy_name(vm->gmem);
        argv[a++] = "--mac"; argv[a++] = mac;
        argv[a++] = "--offloads"; argv[a++] = n->offloads ? "on" : "off";
        argv[a++] = "--name"; argv[a++] = name;
        argv[a++] = "--event-fd"; argv[a++] = evfd;
        if (n->mtu) {
            argv[a++] = "--mtu";
            argv[a++] = mtu;
        }
        argv[a++] = "--busy-poll"; argv[a++] = busy;
        argv[a] = NULL;
        /* The pipe's write end is the one fd the device keeps (--event-fd). */
        pid = cw_spawn("/proc/self/exe", argv, NULL, &p[1], 1, 0);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    n->pid = pid;
    n->event_rd = p[0];
    return 0;
}

/* Wait for the device's "ready" line: its socket is listening. */
static int wait_ready(struct vm_nic *n, int timeout_ms)
{
    struct pollfd pfd = {.fd = n->event_rd, .events = POLLIN};
    while (poll(&pfd, 1, timeout_ms) > 0) {
        ssize_t r = read(n->event_rd, n->evbuf + n->evlen, sizeof(n->evbuf) - 1 - n->evlen);
        if (r <= 0)
            return -1;
        n->evlen += (size_t)r;
        n->evbuf[n->evlen] = '\0';
        char *nl = strstr(n->evbuf, "ready\n");
        if (nl) {
            size_t used = (size_t)(nl - n->evbuf) + 6;
            memmove(n->evbuf, n->evbuf + used, n->evlen - used);
            n->evlen -= used;
            return 0;
        }
    }
    return -1;
}

static int spawn_qemu(struct vm *vm)
{
    snprintf(vm->qmp, sizeof(vm->qmp), "%s/qmp.sock", vm->dir);
    struct cw_qemu_config c = {
        .qemu = vm->qemu, .name = vm->name, .kernel = vm->kernel, .initrd = vm->initrd,
        .cmdline = vm->cmdline, .mem = vm->mem, .cpus = vm->cpus, .accel = vm->accel,
        .qmp = vm->qmp, .n_nics = vm->n_nics,
    };
    for (unsigned i = 0; i < vm->n_nics; i++) {
        const struct vm_nic *n = &vm->nic[i];
        c.nic[i] = (struct cw_qemu_nic){.sock = n->sock, .mtu = n->mtu,
                                        .queue_size = n->queue_size};
        memcpy(c.nic[i].mac, n->mac, 6);
    }
    /* The console stays on our stdin/stdout: the user's terminal. */
    pid_t pid = cw_qemu_spawn(&c, NULL, 0);
    if (pid < 0)
        return -1;
    vm->qemu_pid = pid;
    return 0;
}

/* SIGTERM every live child, give them 5 s, then SIGKILL. */
static void stop_children(struct vm *vm)
{
    pid_t pids[VM_MAX_NICS + 1];
    int n = 0;
    if (vm->qemu_pid > 0)
        pids[n++] = vm->qemu_pid;
    for (unsigned i = 0; i < vm->n_nics; i++)
        if (vm->nic[i].pid > 0)
            pids[n++] = vm->nic[i].pid;
    for (int i = 0; i < n; i++)
        kill(pids[i], SIGTERM);
    for (int waited = 0; waited < 500; waited++) {
        int live = 0;
        for (int i = 0; i < n; i++) {
            if (pids[i] > 0 && waitpid(pids[i], NULL, WNOHANG) == 0)
                live++;
            else
                pids[i] = -1;
        }
        if (!live)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < n; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
        }
}

static void cleanup_dir(struct vm *vm)
{
    for (unsigned i = 0; i < vm->n_nics; i++)
        if (vm->nic[i].sock[0])
            unlink(vm->nic[i].sock);
    if (vm->qmp[0])
        unlink(vm->qmp);
    rmdir(vm->dir);
}

/* Read a device's event lines; "link up/down" becomes a QMP set_link. */
static void handle_device_events(struct vm *vm, unsigned i)
{
    struct vm_nic *n = &vm->nic[i];
    ssize_t r = read(n->event_rd, n->evbuf + n->evlen, sizeof(n->evbuf) - 1 - n->evlen);
    if (r <= 0) {
        close(n->event_rd);
        n->event_rd = -1;
        return;
    }
    n->evlen += (size_t)r;
    n->evbuf[n->evlen] = '\0';
    char *line = n->evbuf, *nl;
    while ((nl = strchr(line, '\n'))) {
        *nl = '\0';
        if (!strcmp(line, "link up") || !strcmp(line, "link down")) {
            char id[16];
            snprintf(id, sizeof(id), "nic%u", i);
            bool up = !strcmp(line, "link up");
            if (cw_qmp_set_link(vm->qmp, id, up) == -1)
                fprintf(stderr, "causeway vm %s: could not set %s carrier %s through QMP\n",
                        vm->name, id, up ? "up" : "down");
        }
        line = nl + 1;
    }
    n->evlen = strlen(line);
    memmove(n->evbuf, line, n->evlen + 1);
    if (n->evlen == sizeof(n->evbuf) - 1)
        n->evlen = 0; /* an over-long line: drop it */
}

static int supervise(struct vm *vm, int sigfd)
{
    for (;;) {
        struct pollfd pfd[1 + VM_MAX_NICS];
        unsigned np = 0;
        pfd[np++] = (struct pollfd){.fd = sigfd, .events = POLLIN};
        for (unsigned i = 0; i < vm->n_nics; i++)
            pfd[np++] = (struct pollfd){.fd = vm->nic[i].event_rd, .events = POLLIN};
        if (poll(pfd, np, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        for (unsigned i = 0; i < vm->n_nics; i++)
            if (pfd[1 + i].revents)
                handle_device_events(vm, i);
        if (!pfd[0].revents)
            continue;
        struct signalfd_siginfo si;
        while (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
            if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) {
                fprintf(stderr, "causeway vm %s: stopping on %s\n", vm->name,
                        strsignal((int)si.ssi_signo));
                return 128 + (int)si.ssi_signo;
            }
        }
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            char why[96];
            cw_describe_status(why, sizeof(why), status);
            if (pid == vm->qemu_pid) {
                vm->qemu_pid = -1;
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                    return 0; /* the guest powered off */
                fprintf(stderr, "causeway vm %s: qemu %s\n", vm->name, why);
                return 1;
            }
            for (unsigned i = 0; i < vm->n_nics; i++) {
                if (pid == vm->nic[i].pid) {
                    vm->nic[i].pid = -1;
                    fprintf(stderr, "causeway vm %s: device process of nic%u %s\n", vm->name, i,
                            why);
                    return 1;
                }
            }
        }
    }
}

int cw_cmd_vm(int argc, char **argv)
{
    struct vm vm = {.name = "vm", .mem = 256ull << 20, .cpus = 1, .gmem = CW_GMEM_PERSISTENT,
                    .qemu_pid = -1};
    parse_args(&vm, argc, argv);

    int sigfd = cw_signalfd_open((const int[]){SIGINT, SIGTERM, SIGCHLD, 0});
    const char *tmp = getenv("TMPDIR");
    snprintf(vm.dir, sizeof(vm.dir), "%s/causeway-XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (sigfd < 0 || !mkdtemp(vm.dir)) {
        fprintf(stderr, "causeway vm: cannot set up: %s\n", strerror(errno));
        return 1;
    }
    int rc = 1;
    for (unsigned i = 0; i < vm.n_nics; i++) {
        if (spawn_device(&vm, i) < 0 || wait_ready(&vm.nic[i], 10000) < 0) {
            fprintf(stderr, "causeway vm %s: the device process of nic%u did not start\n", vm.name,
                    i);
            goto out;
        }
    }
    if (spawn_qemu(&vm) < 0) {
        fprintf(stderr, "causeway vm %s: cannot start qemu: %s\n", vm.name, strerror(errno));
        goto out;
    }
    rc = supervise(&vm, sigfd);
out:
    stop_children(&vm);
    cleanup_dir(&vm);
    free((char *)vm.qemu);
    return rc;
}
