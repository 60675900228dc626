/* The device process's side of the launcher's control channel
 * (`causeway device --control-fd N`, docs/CONTROL.md): decodes and checks
 * each message and calls the event loop back. Kept apart from the loop so
 * every hostile message can be tested without a guest. */
#ifndef CAUSEWAY_CLI_DEVICE_CONTROL_H
#define CAUSEWAY_CLI_DEVICE_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/net.h"
#include "../port/port.h"
#include "../vhost/backend.h"

struct cw_device_ctl_ops {
    /* Attach this port as side 1 (replacing any attached one). Owns *fds
     * (closes them on failure). 0, or -1 with a reason in err. */
    int (*attach)(void *ctx, struct cw_port_fds *fds, uint32_t capacity, char *err,
                  size_t errlen);
    /* Drop the port (a no-op when none is attached). */
    void (*detach)(void *ctx);
    /* Add the counters to a stats reply. */
    void (*stats)(void *ctx, json_t *reply);
};

/* Handle the messages waiting on the control fd (at most a few per call, so
 * the data path keeps its turn; the fd stays readable for the rest). Returns
 * false when the launcher has gone (hang-up or socket error): the device
 * then stops, since nobody could give it a port any more. */
bool cw_device_ctl_on_readable(int fd, const struct cw_device_ctl_ops *ops, void *ctx);

/* Events to the launcher: {"op":"event","event":"ready"},
 * {"op":"event","event":"link","up":B[,"reason":"..."]}. */
int cw_device_ctl_ready(int fd);
int cw_device_ctl_link(int fd, bool up, const char *reason);
/* {"op":"event","event":"frontend","connected":B}: QEMU (re)connected to the
 * vhost-user socket, or went away. */
int cw_device_ctl_frontend(int fd, bool connected);

/* The device's counters as the `stats` reply lists them (docs/CONTROL.md). */
void cw_device_stats_fill(json_t *o, const struct cw_net *net, const struct cw_vhost *vhost,
                          const struct cw_port_stats *port, enum cw_gmem_strategy gmem);

#endif
