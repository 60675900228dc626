/* The system description: a JSON file naming VMs, their NICs, switches,
 * uplinks and the cross-domain policy. Loaded with jansson; every error is
 * reported as "FILE:LINE:COLUMN: message" (the position of the offending
 * value or key), and a description that loads is complete and consistent:
 * nothing is started from a file that has any error.
 *
 * Public shape (keys beyond these are errors; * marks a required field):
 * {"vms"*: [{"name"*: "high1", "kernel"*: "PATH", "initrd"*: "PATH",
 *           "cmdline": "console=ttyS0 ...", "memory": "256M" (or bytes), "vcpus": 1,
 *           "gmem": "persistent", "accel": "auto",
 *           "nics": [{"switch"*: "sw0", "mac"*: "52:54:00:00:00:01", "domain"*: "high",
 *                     "ipv4": "10.99.0.1/24" or ["..."], "ipv6": "fd00::1/64" or [...],
 *                     "mtu": 1500, "offloads": true, "queue_size": 1024}]}],
 *  "switches": [{"name"*: "sw0"}],
 *  "uplinks": [{"switch"*: "sw0", "tap"*: "cwtap0", "domain"*: "low",
 *               "mac": "52:54:00:00:00:fe"}],
 *  "policy": {"rules": [{"from"*: "low", "to"*: "high", "action"*: "allow", "proto": "udp",
 *                        "dst_port": 5001 or "5000-5010", ...}]},
 *  "on_failure": "continue" | "stop"}
 * Relative paths are relative to the file's folder. The rule language is
 * docs/POLICY.md; policy_parse.h lists what a loaded rule guarantees.
 *
 * What a loaded system guarantees (checked once here, so the launcher and
 * the switch need not re-check the description):
 *  - 1..CW_SYS_MAX_VMS VMs, names unique, 1-32 of [A-Za-z0-9_-] (note: the
 *    guest's cw.name= accepts no '_'); switch names the same;
 *  - kernel/initrd: canonical absolute paths of readable regular files;
 *  - cmdline: at most 2047 bytes, no control characters (default
 *    "console=ttyS0 quiet panic=-1 cryptomgr.notests no_timer_check"); it is used as is;
 *  - memory: whole MiB, >= 64 MiB (default 256M), and the sum over all VMs
 *    fits in this host's RAM; vcpus 1..64 (default 1); accel "auto", "kvm"
 *    or "tcg"; gmem default persistent;
 *  - every NIC and uplink: switch_index/domain_index valid, MAC unicast,
 *    non-zero and unique in the whole system (uplink MAC: zero if not given,
 *    else the same rules); at most CW_SYS_MAX_PORTS ports per switch;
 *  - NIC addresses: unicast, with a prefix length (host bits kept: it is the
 *    interface's address), no address on two NICs of one switch;
 *    mtu 0 (not set) or 68..65535; queue_size 256, 512 or 1024;
 *  - uplink tap: 1-15 of [A-Za-z0-9_.-], not "." or "..", unique;
 *  - domains[]: every domain a NIC or uplink names, in order of first
 *    appearance (VMs' NICs, then uplinks), at most 128. */
#ifndef CAUSEWAY_SYSTEM_DESCRIPTION_H
#define CAUSEWAY_SYSTEM_DESCRIPTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../gmem/guest_memory.h"
#include "policy_rule.h"

#define CW_SYS_NAME_MAX 32
#define CW_SYS_MAX_VMS 64
#define CW_SYS_MAX_NICS 4 /* per VM */
#define CW_SYS_MAX_SWITCHES 16
#define CW_SYS_MAX_UPLINKS 16
#define CW_SYS_MAX_ADDRS 8 /* per NIC and family */
#define CW_SYS_MAX_PORTS 64 /* per switch: NICs + uplinks */

struct cw_sys_nic {
    char switch_name[CW_SYS_NAME_MAX + 1];
    int switch_index;      /* into cw_system.switches */
    uint8_t mac[6];
    char domain[CW_SYS_NAME_MAX + 1];
    int domain_index;      /* into cw_system.domains */
    unsigned n_ipv4, n_ipv6;
    struct cw_ip4_prefix ipv4[CW_SYS_MAX_ADDRS];
    struct cw_ip6_prefix ipv6[CW_SYS_MAX_ADDRS];
    uint16_t mtu;          /* 0: not set (1500 in the guest) */
    bool offloads;         /* default true */
    uint16_t queue_size;   /* default 1024 */
};

struct cw_sys_vm {
    char name[CW_SYS_NAME_MAX + 1];
    char *kernel, *initrd; /* absolute (resolved against the file's folder) */
    char *cmdline;         /* default "console=ttyS0 quiet panic=-1 cryptomgr.notests no_timer_check" */
    uint64_t memory;       /* bytes; default 256M */
    unsigned vcpus;        /* default 1 */
    enum cw_gmem_strategy gmem;
    char accel[8];         /* "auto", "kvm" or "tcg" */
    unsigned n_nics;
    struct cw_sys_nic nics[CW_SYS_MAX_NICS];
};

struct cw_sys_switch {
    char name[CW_SYS_NAME_MAX + 1];
};

struct cw_sys_uplink {
    char switch_name[CW_SYS_NAME_MAX + 1];
    int switch_index;
    char tap[16];          /* interface name (IFNAMSIZ) */
    char domain[CW_SYS_NAME_MAX + 1];
    int domain_index;
    uint8_t mac[6];        /* the source MAC frames from the host may carry; zero: any */
};

struct cw_system {
    char *path;            /* the file, as given */
    char *dir;             /* its folder, absolute */
    unsigned n_vms, n_switches, n_uplinks, n_domains;
    struct cw_sys_vm vms[CW_SYS_MAX_VMS];
    struct cw_sys_switch switches[CW_SYS_MAX_SWITCHES];
    struct cw_sys_uplink uplinks[CW_SYS_MAX_UPLINKS];
    char domains[CW_SYS_MAX_PORTS * 2][CW_SYS_NAME_MAX + 1]; /* every domain named by a NIC or uplink */
    struct cw_policy policy;
    bool stop_all_on_failure;
};

/* Load and validate. 0 on success; -1 with err holding one line
 * "FILE:LINE:COLUMN: message" (line/column of the offending JSON value).
 * Checks: JSON syntax, unknown keys, missing fields, types, names (1-32 of
 * [A-Za-z0-9_-]), duplicate VM/switch names, duplicate MACs (unicast
 * required), a NIC or uplink on a switch that does not exist, a rule naming
 * an unknown domain, bad sizes/prefixes/ports/protocols, kernel/initrd not
 * readable, total guest memory that cannot fit in this host's RAM. */
int cw_system_load(const char *path, struct cw_system *sys, char *err, size_t errlen);
void cw_system_free(struct cw_system *sys);

#endif
