/* A minimal QMP client for the one thing the VM supervisor asks QEMU: set a
 * NIC's carrier (set_link), so a device's link state reaches the guest. */
#ifndef CAUSEWAY_CLI_VM_QMP_H
#define CAUSEWAY_CLI_VM_QMP_H

#include <stdbool.h>

/* Connect to QEMU's QMP socket, negotiate, run set_link. 0 on success, -2 if
 * QEMU does not accept connections (it has exited), -1 if it refused. */
int cw_qmp_set_link(const char *socket_path, const char *device_id, bool up);

#endif
