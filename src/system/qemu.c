/* QEMU's command line for one VM: see qemu.h. */
#define _GNU_SOURCE
#include "qemu.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "spawn.h"

bool cw_kvm_usable(void)
{
    if (access("/dev/kvm", R_OK | W_OK) < 0)
        return false;
    return access("/sys/module/kvm_intel", F_OK) == 0 || access("/sys/module/kvm_amd", F_OK) == 0;
}

const char *cw_qemu_accel(const char *want)
{
    if (!strcmp(want, "tcg"))
        return "tcg";
    if (!strcmp(want, "kvm"))
        return cw_kvm_usable() ? "kvm" : NULL;
    if (!strcmp(want, "auto"))
        return cw_kvm_usable() ? "kvm" : "tcg";
    return NULL;
}

pid_t cw_qemu_spawn(const struct cw_qemu_config *c, const int stdio[3], unsigned spawn_flags)
{
    if (c->n_nics > CW_QEMU_MAX_NICS) {
        errno = EINVAL;
        return -1;
    }
    bool kvm = !strcmp(c->accel, "kvm");
    char mem[32], smp[16], memobj[96], qmparg[300], namearg[128];
    snprintf(mem, sizeof(mem), "%lluM", (unsigned long long)(c->mem >> 20));
    snprintf(smp, sizeof(smp), "%u", c->cpus);
    snprintf(memobj, sizeof(memobj), "memory-backend-memfd,id=mem0,size=%s,share=on", mem);
    if (snprintf(qmparg, sizeof(qmparg), "unix:%s,server=on,wait=off", c->qmp) >=
        (int)sizeof(qmparg)) {
        errno = ENAMETOOLONG;
        return -1;
    }

    char nicargs[CW_QEMU_MAX_NICS][3][512];
    const char *argv[64 + CW_QEMU_MAX_NICS * 6];
    int a = 0;
    argv[a++] = c->qemu;
    /* Named threads ("CPU 0/TCG", ...): top and the benchmarks can then tell
     * the guest's vCPUs from QEMU's own I/O work. */
    if (snprintf(namearg, sizeof(namearg), "guest=%s,debug-threads=on", c->name) >=
        (int)sizeof(namearg)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    argv[a++] = "-name"; argv[a++] = namearg;
    argv[a++] = "-machine"; argv[a++] = "pc,memory-backend=mem0";
    if (kvm) {
        argv[a++] = "-accel"; argv[a++] = "kvm";
        argv[a++] = "-cpu"; argv[a++] = "host";
    } else {
        argv[a++] = "-accel"; argv[a++] = "tcg,thread=multi";
        argv[a++] = "-cpu"; argv[a++] = "max";
    }
    argv[a++] = "-m"; argv[a++] = mem;
    argv[a++] = "-smp"; argv[a++] = smp;
    argv[a++] = "-object"; argv[a++] = memobj;
    argv[a++] = "-nodefaults"; argv[a++] = "-no-user-config";
    argv[a++] = "-display"; argv[a++] = "none";
    argv[a++] = "-no-reboot";
    if (access(CW_QEMU_QBOOT_ROM, R_OK) == 0) {
        argv[a++] = "-bios";
        argv[a++] = CW_QEMU_QBOOT_ROM;
    }
    argv[a++] = "-chardev"; argv[a++] = "stdio,id=con0,signal=off";
    argv[a++] = "-serial"; argv[a++] = "chardev:con0";
    argv[a++] = "-qmp"; argv[a++] = qmparg;
    argv[a++] = "-kernel"; argv[a++] = c->kernel;
    argv[a++] = "-initrd"; argv[a++] = c->initrd;
    argv[a++] = "-append"; argv[a++] = c->cmdline ? c->cmdline : CW_QEMU_DEFAULT_CMDLINE;
    for (unsigned i = 0; i < c->n_nics; i++) {
        const struct cw_qemu_nic *n = &c->nic[i];
        /* reconnect=1: a restarted device process is found again within a
         * second, without the guest noticing more than a carrier blip. */
        if (snprintf(nicargs[i][0], sizeof(nicargs[i][0]), "socket,id=vhu%u,path=%s,reconnect=1",
                     i, n->sock) >= (int)sizeof(nicargs[i][0])) {
            errno = ENAMETOOLONG;
            return -1;
        }
        snprintf(nicargs[i][1], sizeof(nicargs[i][1]), "vhost-user,id=net%u,chardev=vhu%u", i, i);
        char mtu[32] = "";
        if (n->mtu)
            snprintf(mtu, sizeof(mtu), ",host_mtu=%u", n->mtu);
        /* QEMU 7.2 under TCG crashes with vhost-user-net once the guest
         * enables MSI-X vectors; legacy INTx (vectors=0) avoids it. KVM keeps
         * MSI-X (irqfd makes it the fast path there). */
        snprintf(nicargs[i][2], sizeof(nicargs[i][2]),
                 "virtio-net-pci,id=" CW_QEMU_NIC_ID_FMT ",netdev=net%u,"
                 "mac=%02x:%02x:%02x:%02x:%02x:%02x,rx_queue_size=%u,tx_queue_size=%u%s%s,"
                 "romfile=",
                 i, i, n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5],
                 n->queue_size, n->queue_size, mtu, kvm ? "" : ",vectors=0");
        argv[a++] = "-chardev"; argv[a++] = nicargs[i][0];
        argv[a++] = "-netdev"; argv[a++] = nicargs[i][1];
        argv[a++] = "-device"; argv[a++] = nicargs[i][2];
    }
    argv[a] = NULL;
    return cw_spawn(c->qemu, argv, stdio, NULL, 0, spawn_flags);
}
