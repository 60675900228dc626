/* The switch process (`causeway switch`): one thread, one epoll set over
 * the launcher's control socket, every port's inbound "data" and outbound
 * "space" eventfds and every TAP fd. It implements the switch side of
 * docs/CONTROL.md and runs the forwarding engine (switch.h) when frames
 * arrive; with no traffic it sleeps in epoll_wait.
 *
 * It maps port memory only (memfds the launcher sends), never guest memory:
 * no message carries a guest fd. */
#ifndef CAUSEWAY_SWITCH_SWITCH_LOOP_H
#define CAUSEWAY_SWITCH_SWITCH_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "../util/busy_poll.h"
#include "../util/sched.h"

struct cw_switch_opts {
    const char *name;      /* for log lines; the config's "name" must match */
    int control_fd;        /* SOCK_SEQPACKET to the launcher */
    uint32_t budget;       /* frames per port per round; 0: CW_SW_DEFAULT_BUDGET */
    uint32_t fdb_aging_ms; /* 0: CW_FDB_DEFAULT_AGING_MS */
    bool no_sandbox;       /* debugging only: skip seccomp/capability drop */
    enum cw_sched sched;   /* CPU scheduling class (src/util/sched.h) */
    struct cw_busy_cfg busy_poll; /* busy window after traffic (src/util/busy_poll.h) */
};

/* Run until the launcher closes the control socket or SIGTERM/SIGINT.
 * Returns the process exit status (0: clean stop). */
int cw_switch_main(const struct cw_switch_opts *o);

#endif
