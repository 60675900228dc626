/* The launcher's view of a switch: which of its ports is which NIC or
 * uplink, and the `config` message that tells the switch (docs/CONTROL.md). */
#ifndef CAUSEWAY_SYSTEM_SWITCH_MSG_H
#define CAUSEWAY_SYSTEM_SWITCH_MSG_H

#include <jansson.h>

#include "description.h"

struct cw_switch_port_ref {
    int vm, nic;  /* a VM's NIC, or -1 */
    int uplink;   /* an uplink, or -1 */
};

struct cw_switch_plan {
    unsigned n_ports;
    struct cw_switch_port_ref port[CW_SYS_MAX_PORTS];
};

/* Ports of switch sw: its NICs in file order (VM by VM, NIC by NIC), then
 * its uplinks. -1 if it would hold more than CW_SYS_MAX_PORTS (the loader
 * refuses such a file; checked again here because a port id indexes arrays). */
int cw_switch_plan(const struct cw_system *sys, unsigned sw, struct cw_switch_plan *plan);

/* The port id of VM vm's NIC nic on its switch, or -1. */
int cw_switch_plan_find_nic(const struct cw_switch_plan *plan, int vm, int nic);

/* {"op":"config",...} for switch sw (new reference; NULL on allocation failure). */
json_t *cw_switch_config_msg(const struct cw_system *sys, unsigned sw,
                             const struct cw_switch_plan *plan);

/* "52:54:00:00:00:01" (buf of 18). */
void cw_format_mac(const uint8_t mac[6], char buf[18]);

#endif
