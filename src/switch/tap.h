/* An uplink port over a TAP fd (Linux), as struct cw_net_port_ops.
 *
 * The launcher opens the TAP (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR; it needs
 * the privilege, the switch does not) and hands over the fd. The switch then
 * sets the virtio header size to 12 (TUNSETVNETHDRSZ), so each read and
 * write is exactly a port record: virtio_net_hdr_mrg_rxbuf + Ethernet frame,
 * and enables checksum/TSO offloads (TUNSETOFFLOAD) so the host may hand
 * over 64 KiB TCP segments; the receiving devices finish or segment them.
 * Frames are read one per rx_peek into a private buffer and written one per
 * tx_commit; the fd is non-blocking, so neither ever waits. */
#ifndef CAUSEWAY_SWITCH_TAP_H
#define CAUSEWAY_SWITCH_TAP_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/net.h"
#include "switch.h"

struct cw_tap {
    int fd;
    bool failed;          /* read failed with other than EAGAIN: the TAP is gone */
    int error;            /* errno of that failure */
    bool rx_full;         /* rx_buf holds the frame rx_peek returned */
    uint32_t rx_len;
    uint64_t write_errors, reads_short;
    struct cw_switch *sw; /* for counting write failures on the port */
    unsigned port;
    uint8_t rx_buf[CW_NET_META_LEN + CW_NET_MAX_FRAME];
    uint8_t tx_buf[CW_NET_META_LEN + CW_NET_MAX_FRAME];
};

/* Check and set up a TAP fd (takes ownership; closed on failure). -1 with
 * errno: not a TAP, or not IFF_TAP | IFF_NO_PI | IFF_VNET_HDR (EINVAL). */
int cw_tap_open(struct cw_tap *t, int fd, struct cw_switch *sw, unsigned port);
void cw_tap_close(struct cw_tap *t);

extern const struct cw_net_port_ops cw_tap_ops;

#endif
