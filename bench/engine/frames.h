/* Test frames for the engine benchmark: Ethernet + IPv4 + TCP with a fixed
 * payload pattern, and the virtio_net_hdr a Linux guest would put in front
 * (checksum offload always, TSO for frames above the MTU). */
#ifndef CAUSEWAY_BENCH_FRAMES_H
#define CAUSEWAY_BENCH_FRAMES_H

#include <stdint.h>

#include "core/virtio_spec.h"

#define FRAME_MIN 64u
#define FRAME_MSS 1448u /* TSO segment size a 1500-MTU TCP sender uses */

/* Fill frame[0, len) (len >= FRAME_MIN, len - 14 <= 65535) and *h. Frames
 * longer than mtu + 14 are TSO (gso TCPV4, gso_size FRAME_MSS). */
void frame_build(uint8_t *frame, uint32_t len, uint32_t mtu, uint32_t seq,
                 struct virtio_net_hdr_mrg_rxbuf *h);

#endif
