/* vhost-user wire format (QEMU docs/interop/vhost-user.rst) and the checks
 * on a message that need no connection state: header flags and size, the
 * exact payload size of each request, the number of fds it carries, and the
 * values that are wrong whatever the state (ring index, ring size, flags,
 * MTU, region count). The backend (backend.c) does the stateful rest.
 *
 * All integers are in host byte order, as the specification says. */
#ifndef CAUSEWAY_VHOST_MESSAGES_H
#define CAUSEWAY_VHOST_MESSAGES_H

#include <stdbool.h>
#include <stdint.h>

#include "../gmem/guest_memory.h"

enum cw_vu_request {
    CW_VU_GET_FEATURES = 1,
    CW_VU_SET_FEATURES = 2,
    CW_VU_SET_OWNER = 3,
    CW_VU_RESET_OWNER = 4,
    CW_VU_SET_MEM_TABLE = 5,
    CW_VU_SET_LOG_BASE = 6,
    CW_VU_SET_LOG_FD = 7,
    CW_VU_SET_VRING_NUM = 8,
    CW_VU_SET_VRING_ADDR = 9,
    CW_VU_SET_VRING_BASE = 10,
    CW_VU_GET_VRING_BASE = 11,
    CW_VU_SET_VRING_KICK = 12,
    CW_VU_SET_VRING_CALL = 13,
    CW_VU_SET_VRING_ERR = 14,
    CW_VU_GET_PROTOCOL_FEATURES = 15,
    CW_VU_SET_PROTOCOL_FEATURES = 16,
    CW_VU_GET_QUEUE_NUM = 17,
    CW_VU_SET_VRING_ENABLE = 18,
    CW_VU_SEND_RARP = 19,
    CW_VU_NET_SET_MTU = 20,
    CW_VU_SET_BACKEND_REQ_FD = 21,
    CW_VU_IOTLB_MSG = 22,
    CW_VU_SET_VRING_ENDIAN = 23,
    CW_VU_GET_CONFIG = 24,
    CW_VU_SET_CONFIG = 25,
    CW_VU_RESET_DEVICE = 34,
    CW_VU_VRING_KICK = 35,
    CW_VU_GET_MAX_MEM_SLOTS = 36,
    CW_VU_ADD_MEM_REG = 37,
    CW_VU_REM_MEM_REG = 38,
    CW_VU_SET_STATUS = 39,
    CW_VU_GET_STATUS = 40,
};

/* Header flags. */
#define CW_VU_VERSION 0x1u
#define CW_VU_FLAG_VERSION_MASK 0x3u
#define CW_VU_FLAG_REPLY 0x4u
#define CW_VU_FLAG_NEED_REPLY 0x8u

#define CW_VU_HDR_SIZE 12u
/* The largest payload read from the wire. Every request served here is far
 * smaller (a memory table is 264 bytes); anything larger closes the
 * connection before a byte of its payload is read. */
#define CW_VU_MAX_PAYLOAD 4096u
/* fds one message may carry (a memory table's worth). */
#define CW_VU_MAX_FDS 8u

/* The virtio feature bit vhost-user reuses to announce protocol features. */
#define CW_VU_F_PROTOCOL_FEATURES 30

/* Protocol feature bits. */
#define CW_VU_PROTOCOL_F_MQ 0
#define CW_VU_PROTOCOL_F_LOG_SHMFD 1
#define CW_VU_PROTOCOL_F_RARP 2
#define CW_VU_PROTOCOL_F_REPLY_ACK 3
#define CW_VU_PROTOCOL_F_NET_MTU 4
#define CW_VU_PROTOCOL_F_BACKEND_REQ 5
#define CW_VU_PROTOCOL_F_CONFIG 9
#define CW_VU_PROTOCOL_F_RESET_DEVICE 13
#define CW_VU_PROTOCOL_F_STATUS 16

/* SET_VRING_KICK / CALL / ERR payload: ring index in bits 0-7, bit 8 set
 * when no fd is attached; the other bits are reserved. */
#define CW_VU_VRING_IDX_MASK 0xffull
#define CW_VU_VRING_NOFD 0x100ull

/* SET_VRING_ADDR flags: bit 0 asks for dirty logging of the used ring. */
#define CW_VU_VRING_F_LOG 0x1u

/* NET_SET_MTU bounds: the IPv4 minimum and the largest the device serves. */
#define CW_VU_MIN_MTU 68u
#define CW_VU_MAX_MTU 65535u

struct cw_vu_hdr {
    uint32_t request;
    uint32_t flags;
    uint32_t size;
};

struct cw_vu_vring_state {
    uint32_t index;
    uint32_t num;
};

struct cw_vu_vring_addr {
    uint32_t index;
    uint32_t flags;
    uint64_t desc_uva;
    uint64_t used_uva;
    uint64_t avail_uva;
    uint64_t log_gpa;
};

struct cw_vu_region {
    uint64_t gpa;
    uint64_t size;
    uint64_t uva;
    uint64_t mmap_offset;
};

struct cw_vu_mem_table {
    uint32_t nregions;
    uint32_t padding;
    struct cw_vu_region r[CW_VU_MAX_FDS];
};

_Static_assert(sizeof(struct cw_vu_hdr) == CW_VU_HDR_SIZE, "vhost-user header layout");
_Static_assert(sizeof(struct cw_vu_vring_state) == 8, "vring state layout");
_Static_assert(sizeof(struct cw_vu_vring_addr) == 40, "vring addr layout");
_Static_assert(sizeof(struct cw_vu_region) == 32, "memory region layout");
_Static_assert(sizeof(struct cw_vu_mem_table) == 8 + 32 * CW_VU_MAX_FDS, "mem table layout");
_Static_assert(CW_VU_MAX_FDS == CW_GMEM_MAX_REGIONS, "one fd per region");

/* A received message: header, payload (hdr.size bytes valid), and the fds
 * that came with it. fds[i] is set to -1 once something takes ownership;
 * whatever is left is closed after the message is handled. */
struct cw_vu_msg {
    struct cw_vu_hdr hdr;
    union {
        uint64_t u64;
        struct cw_vu_vring_state state;
        struct cw_vu_vring_addr addr;
        struct cw_vu_mem_table mem;
        uint8_t raw[CW_VU_MAX_PAYLOAD];
    } p;
    int fds[CW_VU_MAX_FDS];
    unsigned nfds;
};

enum cw_vu_check {
    CW_VU_OK,      /* well-formed request this backend serves */
    CW_VU_UNKNOWN, /* a request this backend does not serve (never offered) */
    CW_VU_BAD,     /* malformed: the connection must be closed */
};

/* Version 1, REPLY clear, no undefined flag bits, size <= CW_VU_MAX_PAYLOAD.
 * 0, or -1 with *why set. */
int cw_vu_check_header(const struct cw_vu_hdr *h, const char **why);

/* Size, fd count and state-free values of a whole message (header already
 * checked). *why is set for CW_VU_BAD. */
enum cw_vu_check cw_vu_check_msg(const struct cw_vu_msg *m, const char **why);

/* Requests whose reply is part of the protocol (NEED_REPLY changes nothing
 * for them). */
bool cw_vu_has_reply(uint32_t request);

/* "SET_MEM_TABLE", ..., or "UNKNOWN". */
const char *cw_vu_request_name(uint32_t request);

/* The regions of a checked SET_MEM_TABLE message. Returns their number. */
unsigned cw_vu_mem_regions(const struct cw_vu_msg *m, struct cw_region_desc *out);

#endif
