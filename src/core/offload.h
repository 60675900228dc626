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

/* Internet checksum helpers (RFC 1071): partial sums and folding.
 * cw_csum_add adds data, read as big-endian 16-bit words (an odd last byte is
 * the high byte of a zero-padded word), to a running sum; any uint32_t is a
 * valid sum. Chained calls must pass even lengths except for the last one.
 * cw_csum_fold folds a sum to 16 bits WITHOUT complementing it (unlike
 * Linux's csum_fold); the checksum to store, big-endian, is ~fold. */
uint32_t cw_csum_add(uint32_t sum, const void *data, uint32_t len);
uint16_t cw_csum_fold(uint32_t sum);

/* Finish a VIRTIO_NET_HDR_F_NEEDS_CSUM checksum in place: the ones'
 * complement sum of frame[csum_start, len) (which starts with the
 * pseudo-header sum the sender stored) is complemented and written,
 * big-endian, at csum_start + csum_offset. As Linux does, a result of 0 is
 * written as 0xFFFF (equal in ones' complement; required for UDP). -1, and the
 * frame untouched, if the 2-byte field does not fit inside [csum_start, len). */
int cw_offload_finish_csum(uint8_t *frame, uint32_t len, uint16_t csum_start,
                           uint16_t csum_offset);

/* Split a GSO frame (gso_type TCPV4 or TCPV6, optionally with the ECN bit,
 * Ethernet with at most one VLAN tag, IPv4 without fragmentation or IPv6
 * without extension headers) into MSS-sized frames with complete IP and TCP
 * checksums, sequence numbers, IPv4 ids and lengths; TCP flags FIN/PSH only
 * on the last segment, CWR only on the first. Each segment is built in
 * seg_buf (at least the header length + gso_size bytes; it must not overlap
 * frame) and handed to emit; emit returning non-zero stops the walk and is
 * returned. Returns 0, or -1 (before any emit) for a frame that is not a
 * well-formed TCP segment of that type, gso_size 0, or seg_buf too small.
 * h->hdr_len, csum_* and flags are not used: headers are parsed from the
 * frame. Ethernet padding after the IP datagram is dropped. A frame whose
 * payload is at most gso_size (or empty) yields one segment. A tiny gso_size
 * means many segments; emit is where the caller applies its budget. */
typedef int (*cw_segment_emit)(void *ctx, const uint8_t *seg, uint32_t len);
int cw_offload_segment(const uint8_t *frame, uint32_t len, const struct virtio_net_hdr *h,
                       uint8_t *seg_buf, uint32_t seg_buf_len, cw_segment_emit emit, void *ctx);

#endif
