/* The launcher's private state, shared by launcher.c (event loop, failures,
 * stopping), launcher_spawn.c (starting children, handing over ports) and
 * launcher_stats.c (answering stats requests). */
#ifndef CAUSEWAY_SYSTEM_LAUNCHER_INT_H
#define CAUSEWAY_SYSTEM_LAUNCHER_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "launcher.h"
#include "lines.h"
#include "rundir.h"
#include "stats_server.h"
#include "switch_msg.h"
#include "../util/log.h"

/* Restarts allowed per process within RESTART_WINDOW_MS before giving up. */
#define RESTART_LIMIT 5
#define RESTART_WINDOW_MS 60000
#define STARTUP_TIMEOUT_MS 30000
#define STOP_GRACE_MS 5000
#define STOP_QEMU_FIRST_MS 3000 /* devices and switches outlive QEMU this long at most */
#define CTL_LOST_GRACE_MS 1000  /* a child alive this long without its control socket is killed */
#define CARRIER_MIN_GAP_MS 100  /* between two QMP set_link for one NIC */
#define STATS_TIMEOUT_MS 1000

enum child_kind { K_SWITCH, K_DEVICE, K_QEMU };

enum child_state {
    C_IDLE,       /* not started yet, or waiting for its restart time */
    C_RUNNING,
    C_FAILED,     /* gave up restarting */
    C_DONE,       /* ended and not to be restarted */
};

struct child {
    enum child_kind kind;
    int index;               /* into switches, nics or vms */
    char name[80];           /* for messages: "sw0", "high1/nic0", "high1" */
    enum child_state state;
    pid_t pid;               /* -1 when not running */
    int ctl;                 /* our end of its control socket, -1 */
    int out;                 /* read end of its stdout+stderr pipe, -1 */
    struct cw_lines lines;
    bool ready;              /* sent its "ready" event */
    uint64_t ctl_lost_ms;    /* its control socket closed while it ran; 0 */
    unsigned restarts;
    uint64_t window_start_ms;
    unsigned window_restarts;
    uint64_t restart_at_ms;  /* C_IDLE after a crash: when to start again */
    struct cw_ratelimit rl;  /* for what it makes us print */
    /* stats round */
    bool stats_pending;
    json_t *stats;
};

struct sw_rt {
    struct child ch;
    struct cw_switch_plan plan;
};

struct nic_rt {
    int vm, nic, sw, port;   /* port: the id on its switch */
    char sock[CW_RUNDIR_PATH_MAX];
    struct child dev;
    /* What the device last told: its port is attached, QEMU is connected
     * to it. The guest's carrier follows link_up while frontend holds. */
    bool link_up, frontend;
    bool carrier_want, carrier_pending; /* QMP set_link still to send */
    uint64_t carrier_last_ms;
};

enum vm_state { VM_WAITING, VM_RUNNING, VM_EXITED };

struct vm_rt {
    struct child qemu;
    enum vm_state state;
    char qmp[CW_RUNDIR_PATH_MAX];
    unsigned first_nic;      /* its NICs are nics[first_nic .. + n_nics) */
    bool failed;
    char result[128];        /* how it ended */
};

struct launcher {
    const struct cw_system *sys;
    struct cw_launch_options opt;
    char sysname[40];
    struct cw_rundir rd;
    struct cw_srv srv;
    int sigfd;
    int devnull;
    struct sw_rt sw[CW_SYS_MAX_SWITCHES];
    struct vm_rt vm[CW_SYS_MAX_VMS];
    struct nic_rt nic[CW_SYS_MAX_VMS * CW_SYS_MAX_NICS];
    unsigned n_nics;
    int tap[CW_SYS_MAX_UPLINKS];
    uint64_t start_ms;
    bool started;            /* every VM's QEMU has been started once */
    bool stopping;
    bool stop_rest_sent;     /* devices and switches have been told to stop */
    uint64_t stop_start_ms, stop_deadline_ms;
    int stop_signal;         /* the signal that stopped us, 0 */
    bool fatal;              /* a failure that makes the exit status 1 */
    /* stats round */
    bool round_active;
    uint32_t round_seq;
    uint64_t round_deadline_ms;
};

/* launcher.c */
void launcher_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void launcher_stop(struct launcher *L, const char *why);
int launcher_ctl_send(struct launcher *L, struct child *c, json_t *msg, const int *fds,
                      unsigned nfds);

/* launcher_spawn.c */
int spawn_switch(struct launcher *L, unsigned s);
int spawn_device(struct launcher *L, unsigned n);
int spawn_qemu(struct launcher *L, unsigned v);
/* A fresh port between NIC n's device and its switch (both must run). */
int hand_port(struct launcher *L, unsigned n);
void child_init(struct child *c, enum child_kind kind, int index, const char *name);
/* After the process ended: read what is left of its output, close its fds. */
void child_reap(struct child *c);

/* launcher_stats.c */
void stats_request(struct launcher *L, int client, uint64_t now_ms);
/* A stats reply from child c; true if it belonged to the current round. */
bool stats_reply(struct launcher *L, struct child *c, json_t *msg);
/* Child c can no longer answer (it died). */
void stats_child_gone(struct launcher *L, struct child *c);
void stats_tick(struct launcher *L, uint64_t now_ms);

#endif
