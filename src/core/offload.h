/* Software fallbacks for virtio-net offloads, used where a frame carries an
 * offload request (checksum to finish, TSO segment) that the receiving guest
 * did not negotiate. Pure functions over a frame in host memory; the frame is
 * untrusted (it came from another guest): every header field is bounds
 * checked and a malformed frame is refused, never read past its end.
 * Portable: no OS calls, no allocation. */
#ifndef CAUSEWAY_CORE_OFFLOAD_H
#define CAUSEWAY_CORE_OFFLOAD_H

#include <stdint.h>

#include "virtio_spec.h"

/* Internet checksum helpers (RFC 1071): partial sums and folding. */
uint32_t cw_csum_add(uint32_t sum, const void *data, uint32_t len);
uint16_t cw_csum_fold(uint32_t sum);

/* Finish a VIRTIO_NET_HDR_F_NEEDS_CSUM checksum in place: the ones'
 * complement sum of frame[csum_start, len) (which starts with the
 * pseudo-header sum the sender stored) is written at csum_start +
 * csum_offset. -1 if the offsets do not fit the frame. */
int cw_offload_finish_csum(uint8_t *frame, uint32_t len, uint16_t csum_start,
                           uint16_t csum_offset);

/* Split a GSO frame (gso_type TCPV4 or TCPV6, optionally with the ECN bit,
 * Ethernet with at most one VLAN tag, IPv4 without fragmentation or IPv6
 * without extension headers) into MSS-sized frames with complete IP and TCP
 * checksums, sequence numbers, IPv4 ids and lengths; TCP flags FIN/PSH only
 * on the last segment, CWR only on the first. Each segment is built in
 * seg_buf (at least the header length + gso_size bytes) and handed to emit;
 * emit returning non-zero stops the walk and is returned. Returns 0, or -1
 * for a frame that is not a well-formed TCP segment of that type. */
typedef int (*cw_segment_emit)(void *ctx, const uint8_t *seg, uint32_t len);
int cw_offload_segment(const uint8_t *frame, uint32_t len, const struct virtio_net_hdr *h,
                       uint8_t *seg_buf, uint32_t seg_buf_len, cw_segment_emit emit, void *ctx);

#endif
