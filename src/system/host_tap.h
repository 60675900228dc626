/* Opening a host TAP interface for a switch uplink. */
#ifndef CAUSEWAY_SYSTEM_HOST_TAP_H
#define CAUSEWAY_SYSTEM_HOST_TAP_H

#include <stddef.h>

/* Open (creating it if needed, which needs CAP_NET_ADMIN) the TAP named
 * `name` with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, a 12-byte vnet header
 * (virtio_net_hdr_mrg_rxbuf, as on the ports) and checksum/TSO offloads on,
 * non-blocking and close-on-exec. Bringing the interface up and addressing
 * it is the host administrator's job. fd, or -1 with a reason in err. */
int cw_host_tap_open(const char *name, char *err, size_t errlen);

#endif
