/* State-free validation of vhost-user messages. Each served request has one
 * exact payload size and one fd rule; a message that breaks either is
 * malformed, never "close enough": a frontend that sends the wrong shape is
 * either broken or probing, and guessing at its intent is how parsers go
 * wrong. */
#include "messages.h"

#include <stddef.h>

#include "../core/net.h"

const char *cw_vu_request_name(uint32_t request)
{
    switch (request) {
    case CW_VU_GET_FEATURES: return "GET_FEATURES";
    case CW_VU_SET_FEATURES: return "SET_FEATURES";
    case CW_VU_SET_OWNER: return "SET_OWNER";
    case CW_VU_RESET_OWNER: return "RESET_OWNER";
    case CW_VU_SET_MEM_TABLE: return "SET_MEM_TABLE";
    case CW_VU_SET_LOG_BASE: return "SET_LOG_BASE";
    case CW_VU_SET_LOG_FD: return "SET_LOG_FD";
    case CW_VU_SET_VRING_NUM: return "SET_VRING_NUM";
    case CW_VU_SET_VRING_ADDR: return "SET_VRING_ADDR";
    case CW_VU_SET_VRING_BASE: return "SET_VRING_BASE";
    case CW_VU_GET_VRING_BASE: return "GET_VRING_BASE";
    case CW_VU_SET_VRING_KICK: return "SET_VRING_KICK";
    case CW_VU_SET_VRING_CALL: return "SET_VRING_CALL";
    case CW_VU_SET_VRING_ERR: return "SET_VRING_ERR";
    case CW_VU_GET_PROTOCOL_FEATURES: return "GET_PROTOCOL_FEATURES";
    case CW_VU_SET_PROTOCOL_FEATURES: return "SET_PROTOCOL_FEATURES";
    case CW_VU_GET_QUEUE_NUM: return "GET_QUEUE_NUM";
    case CW_VU_SET_VRING_ENABLE: return "SET_VRING_ENABLE";
    case CW_VU_SEND_RARP: return "SEND_RARP";
    case CW_VU_NET_SET_MTU: return "NET_SET_MTU";
    case CW_VU_SET_BACKEND_REQ_FD: return "SET_BACKEND_REQ_FD";
    case CW_VU_IOTLB_MSG: return "IOTLB_MSG";
    case CW_VU_SET_VRING_ENDIAN: return "SET_VRING_ENDIAN";
    case CW_VU_GET_CONFIG: return "GET_CONFIG";
    case CW_VU_SET_CONFIG: return "SET_CONFIG";
    case CW_VU_RESET_DEVICE: return "RESET_DEVICE";
    case CW_VU_VRING_KICK: return "VRING_KICK";
    case CW_VU_GET_MAX_MEM_SLOTS: return "GET_MAX_MEM_SLOTS";
    case CW_VU_ADD_MEM_REG: return "ADD_MEM_REG";
    case CW_VU_REM_MEM_REG: return "REM_MEM_REG";
    case CW_VU_SET_STATUS: return "SET_STATUS";
    case CW_VU_GET_STATUS: return "GET_STATUS";
    default: return "UNKNOWN";
    }
}

bool cw_vu_has_reply(uint32_t request)
{
    return request == CW_VU_GET_FEATURES || request == CW_VU_GET_PROTOCOL_FEATURES ||
           request == CW_VU_GET_VRING_BASE || request == CW_VU_GET_QUEUE_NUM;
}

int cw_vu_check_header(const struct cw_vu_hdr *h, const char **why)
{
    const uint32_t known = CW_VU_FLAG_VERSION_MASK | CW_VU_FLAG_REPLY | CW_VU_FLAG_NEED_REPLY;
    if ((h->flags & CW_VU_FLAG_VERSION_MASK) != CW_VU_VERSION) {
        *why = "unsupported protocol version";
        return -1;
    }
    if (h->flags & CW_VU_FLAG_REPLY) {
        *why = "reply flag set on a request";
        return -1;
    }
    if (h->flags & ~known) {
        *why = "undefined header flag bits set";
        return -1;
    }
    if (h->size > CW_VU_MAX_PAYLOAD) {
        *why = "payload size too large";
        return -1;
    }
    return 0;
}

/* Payload shapes of the served requests. */
enum shape {
    S_NONE,   /* no payload */
    S_U64,    /* one u64 */
    S_STATE,  /* vring state */
    S_ADDR,   /* vring address */
    S_MEM,    /* memory table: 8 + 32 * nregions */
};

static bool served(uint32_t request, enum shape *shape)
{
    switch (request) {
    case CW_VU_GET_FEATURES:
    case CW_VU_SET_OWNER:
    case CW_VU_RESET_OWNER:
    case CW_VU_GET_PROTOCOL_FEATURES:
    case CW_VU_GET_QUEUE_NUM:
    case CW_VU_RESET_DEVICE:
        *shape = S_NONE;
        return true;
    case CW_VU_SET_FEATURES:
    case CW_VU_SET_PROTOCOL_FEATURES:
    case CW_VU_SET_VRING_KICK:
    case CW_VU_SET_VRING_CALL:
    case CW_VU_SET_VRING_ERR:
    case CW_VU_NET_SET_MTU:
        *shape = S_U64;
        return true;
    case CW_VU_SET_VRING_NUM:
    case CW_VU_SET_VRING_BASE:
    case CW_VU_GET_VRING_BASE:
    case CW_VU_SET_VRING_ENABLE:
        *shape = S_STATE;
        return true;
    case CW_VU_SET_VRING_ADDR:
        *shape = S_ADDR;
        return true;
    case CW_VU_SET_MEM_TABLE:
        *shape = S_MEM;
        return true;
    default:
        return false;
    }
}

static enum cw_vu_check bad(const char **why, const char *reason)
{
    *why = reason;
    return CW_VU_BAD;
}

static bool ring_size_ok(uint32_t num)
{
    return num >= 1 && num <= CW_VQ_MAX_SIZE && (num & (num - 1)) == 0;
}

/* Shape is right; now the values. */
static enum cw_vu_check check_values(const struct cw_vu_msg *m, const char **why)
{
    switch (m->hdr.request) {
    case CW_VU_SET_MEM_TABLE:
        return m->nfds == m->p.mem.nregions ? CW_VU_OK
                                            : bad(why, "fd count differs from the region count");
    case CW_VU_SET_VRING_NUM:
    case CW_VU_SET_VRING_BASE:
    case CW_VU_GET_VRING_BASE:
    case CW_VU_SET_VRING_ENABLE:
        if (m->p.state.index >= CW_NET_NUM_QUEUES)
            return bad(why, "ring index out of range");
        if (m->hdr.request == CW_VU_SET_VRING_NUM && !ring_size_ok(m->p.state.num))
            return bad(why, "ring size not a power of two in 1..1024");
        /* A split ring's index is 16 bits; the upper half only has a
         * meaning for packed rings, which are not offered. */
        if (m->hdr.request == CW_VU_SET_VRING_BASE && m->p.state.num > UINT16_MAX)
            return bad(why, "ring base out of range");
        if (m->hdr.request == CW_VU_SET_VRING_ENABLE && m->p.state.num > 1)
            return bad(why, "ring enable value not 0 or 1");
        return CW_VU_OK;
    case CW_VU_SET_VRING_ADDR:
        if (m->p.addr.index >= CW_NET_NUM_QUEUES)
            return bad(why, "ring index out of range");
        if (m->p.addr.flags & CW_VU_VRING_F_LOG)
            return bad(why, "dirty logging requested but not offered");
        if (m->p.addr.flags)
            return bad(why, "undefined ring address flags set");
        return CW_VU_OK;
    case CW_VU_SET_VRING_KICK:
    case CW_VU_SET_VRING_CALL:
    case CW_VU_SET_VRING_ERR: {
        uint64_t u = m->p.u64;
        if (u & ~(CW_VU_VRING_IDX_MASK | CW_VU_VRING_NOFD))
            return bad(why, "undefined bits set in a ring fd message");
        if ((u & CW_VU_VRING_IDX_MASK) >= CW_NET_NUM_QUEUES)
            return bad(why, "ring index out of range");
        if (u & CW_VU_VRING_NOFD) {
            if (m->hdr.request == CW_VU_SET_VRING_KICK)
                return bad(why, "kick without an fd (polling mode) is not supported");
            return m->nfds == 0 ? CW_VU_OK : bad(why, "fd attached despite the no-fd flag");
        }
        return m->nfds == 1 ? CW_VU_OK : bad(why, "ring fd message without exactly one fd");
    }
    case CW_VU_NET_SET_MTU:
        if (m->p.u64 < CW_VU_MIN_MTU || m->p.u64 > CW_VU_MAX_MTU)
            return bad(why, "MTU out of range");
        return CW_VU_OK;
    default:
        return CW_VU_OK;
    }
}

enum cw_vu_check cw_vu_check_msg(const struct cw_vu_msg *m, const char **why)
{
    enum shape shape;
    if (!served(m->hdr.request, &shape))
        return CW_VU_UNKNOWN;

    uint32_t size = m->hdr.size;
    switch (shape) {
    case S_NONE:
        if (size != 0)
            return bad(why, "payload size wrong for the request");
        break;
    case S_U64:
        if (size != sizeof(uint64_t))
            return bad(why, "payload size wrong for the request");
        break;
    case S_STATE:
        if (size != sizeof(struct cw_vu_vring_state))
            return bad(why, "payload size wrong for the request");
        break;
    case S_ADDR:
        if (size != sizeof(struct cw_vu_vring_addr))
            return bad(why, "payload size wrong for the request");
        break;
    case S_MEM: {
        const size_t head = offsetof(struct cw_vu_mem_table, r);
        if (size < head)
            return bad(why, "payload size wrong for the request");
        if (m->p.mem.nregions > CW_VU_MAX_FDS)
            return bad(why, "too many memory regions");
        if (size != head + m->p.mem.nregions * sizeof(struct cw_vu_region))
            return bad(why, "payload size wrong for the region count");
        break;
    }
    }

    /* Only the ring fd messages and the memory table take fds. */
    bool takes_fds = m->hdr.request == CW_VU_SET_MEM_TABLE ||
                     m->hdr.request == CW_VU_SET_VRING_KICK ||
                     m->hdr.request == CW_VU_SET_VRING_CALL ||
                     m->hdr.request == CW_VU_SET_VRING_ERR;
    if (!takes_fds && m->nfds)
        return bad(why, "fds attached to a request that takes none");
    return check_values(m, why);
}

unsigned cw_vu_mem_regions(const struct cw_vu_msg *m, struct cw_region_desc *out)
{
    unsigned n = m->p.mem.nregions;
    if (n > CW_VU_MAX_FDS)
        n = CW_VU_MAX_FDS;
    for (unsigned i = 0; i < n; i++) {
        out[i].gpa = m->p.mem.r[i].gpa;
        out[i].size = m->p.mem.r[i].size;
        out[i].uva = m->p.mem.r[i].uva;
        out[i].mmap_offset = m->p.mem.r[i].mmap_offset;
    }
    return n;
}
