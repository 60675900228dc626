/* The device process: one virtio-net device of one VM, served over
 * vhost-user, joined to its peer by a link. A single-threaded epoll loop:
 * guest doorbells (kick eventfds), the peer's port notifications, the
 * vhost-user socket, the link socket, signals. */
#ifndef CAUSEWAY_CLI_DEVICE_LOOP_H
#define CAUSEWAY_CLI_DEVICE_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/net.h"
#include "../gmem/guest_memory.h"
#include "../util/busy_poll.h"
#include "../util/sched.h"

struct cw_device_config {
    const char *name;           /* for logs: "device NAME" */
    const char *socket_path;    /* vhost-user socket (we listen) */
    const char *link_path;      /* link rendezvous, or NULL */
    uint32_t ring_capacity;     /* port ring bytes per direction */
    enum cw_gmem_strategy gmem;
    struct cw_net_params net;
    int event_fd;               /* write-only pipe to the supervisor, or -1 */
    int control_fd;             /* launcher's control socket (docs/CONTROL.md), or -1;
                                 * excludes link_path: the port comes from the launcher */
    bool no_sandbox;            /* debugging only: serve without src/util/sandbox.h */
    enum cw_sched sched;        /* CPU scheduling class (src/util/sched.h) */
    struct cw_busy_cfg busy_poll; /* busy window after traffic (src/util/busy_poll.h) */
};

/* Runs until SIGINT/SIGTERM. Returns the process exit status. */
int cw_device_run(const struct cw_device_config *cfg);

#endif
