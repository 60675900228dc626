/* QEMU for one VM, the same for `causeway vm` and `causeway run`: the
 * command line (vCPUs, a shared memfd for guest RAM, the console on stdio,
 * QMP, and one vhost-user virtio-net-pci per NIC) and starting it. */
#ifndef CAUSEWAY_SYSTEM_QEMU_H
#define CAUSEWAY_SYSTEM_QEMU_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CW_QEMU_MAX_NICS 4
/* cryptomgr.notests skips the kernel's crypto self-tests (~350 ms under TCG);
 * panic=-1 turns a guest panic into a QEMU exit instead of a hang;
 * no_timer_check skips the IO-APIC timer probe, which under a loaded TCG host
 * can time out and panic the guest ("IO-APIC + timer doesn't work"). */
#define CW_QEMU_DEFAULT_CMDLINE "console=ttyS0 quiet panic=-1 cryptomgr.notests no_timer_check"
/* qboot boots a -kernel guest ~200 ms faster than SeaBIOS; used if present. */
#define CW_QEMU_QBOOT_ROM "/usr/share/qemu/qboot.rom"

struct cw_qemu_nic {
    const char *sock;    /* the device process's vhost-user socket */
    uint8_t mac[6];
    uint16_t mtu;        /* 0: not offered */
    uint16_t queue_size; /* 256, 512 or 1024 */
};

struct cw_qemu_config {
    const char *qemu;    /* binary (a path) */
    const char *name;
    const char *kernel, *initrd;
    const char *cmdline; /* NULL: CW_QEMU_DEFAULT_CMDLINE */
    uint64_t mem;        /* bytes, whole MiB */
    unsigned cpus;
    const char *accel;   /* resolved: "kvm" or "tcg" */
    const char *qmp;     /* QMP socket path (QEMU listens) */
    unsigned n_nics;
    struct cw_qemu_nic nic[CW_QEMU_MAX_NICS];
};

/* KVM only where the host has hardware virtualization: a paravirtual
 * /dev/kvm (kvm_pvm) cannot run a stock kernel usefully. */
bool cw_kvm_usable(void);

/* "auto", "kvm" or "tcg" to what QEMU will use ("kvm" or "tcg"); NULL when
 * "kvm" was asked for and cannot be had, or the word is none of these. */
const char *cw_qemu_accel(const char *want);

/* NIC i is QEMU device "nicI": the name QMP set_link takes. */
#define CW_QEMU_NIC_ID_FMT "nic%u"

/* Start QEMU (cw_spawn with stdio and flags as given). pid or -1 (errno). */
pid_t cw_qemu_spawn(const struct cw_qemu_config *c, const int stdio[3], unsigned spawn_flags);

#endif
