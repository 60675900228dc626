/* Split virtqueue engine (virtio 1.2, 2.7), device side.
 *
 * The driver (guest) owns the descriptor table and the available ring, the
 * device owns the used ring; all three live in guest memory and every value
 * read from them is untrusted. Rules this engine enforces:
 *  - each descriptor is read once into a local copy and only the copy is used;
 *  - every buffer lies inside guest memory, without wrap-around;
 *  - a chain holds at most `num` descriptors (loops end there), an indirect
 *    table at most CW_VQ_MAX_SEGS entries, no nested indirect tables, no
 *    INDIRECT together with NEXT, readable descriptors before writable ones;
 *  - the available index is never more than `num` ahead of what was consumed.
 * A violation marks the queue broken (cw_vq.error says why); the caller stops
 * the device, counts and logs once. Nothing here allocates or calls the OS.
 *
 * When the gmem strategy keeps memory mapped, the three ring areas are
 * translated once at setup and accessed through pointers; otherwise each ring
 * access goes through cw_gmem_read/write (the seed's map-per-access path). */
#ifndef CAUSEWAY_CORE_VIRTQ_H
#define CAUSEWAY_CORE_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "gmem.h"
#include "virtio_spec.h"

#define CW_VQ_MAX_SIZE 1024
#define CW_VQ_MAX_SEGS 1024

enum cw_vq_error {
    CW_VQ_OK = 0,
    CW_VQ_ERR_RING_ADDR,     /* ring areas misaligned or outside guest memory */
    CW_VQ_ERR_RING_SIZE,     /* size not a power of two in [1, CW_VQ_MAX_SIZE] */
    CW_VQ_ERR_RING_ACCESS,   /* a ring read/write failed */
    CW_VQ_ERR_AVAIL_IDX,     /* avail idx more than num ahead */
    CW_VQ_ERR_HEAD,          /* head id >= num */
    CW_VQ_ERR_NEXT,          /* next id >= num (or table length) */
    CW_VQ_ERR_CHAIN_LONG,    /* chain longer than allowed (also catches loops) */
    CW_VQ_ERR_BUF_ADDR,      /* buffer outside guest memory or wrapping */
    CW_VQ_ERR_INDIRECT,      /* bad indirect table (feature off, nested, with NEXT, bad len) */
    CW_VQ_ERR_ORDER,         /* readable descriptor after a writable one */
    CW_VQ_ERR_USED,          /* device asked to return a head it does not hold */
    CW_VQ_ERR__COUNT
};

const char *cw_vq_strerror(enum cw_vq_error e);

/* One guest buffer: guest-physical address and length, already validated.
 * host: where it lies in this process when the strategy keeps guest memory
 * mapped (translated once, when the chain is walked), else NULL. Valid
 * until the chain goes back (push or unpop): the memory table cannot
 * change while the device holds a chain, as both happen on one thread and
 * a chain is never held across calls. */
struct cw_seg {
    uint64_t gpa;
    uint8_t *host;
    uint32_t len;
};

/* A descriptor chain: n_out device-readable segments, then n_in writable. */
struct cw_chain {
    uint16_t head;
    uint16_t n_out;
    uint16_t n_in;
    uint32_t out_bytes; /* saturates at UINT32_MAX */
    uint32_t in_bytes;
    struct cw_seg seg[CW_VQ_MAX_SEGS];
};

struct cw_vq {
    const struct cw_gmem *mem;
    uint16_t num;
    bool ready;
    bool event_idx;
    bool indirect;
    enum cw_vq_error error; /* != CW_VQ_OK: broken, serves nothing more */
    uint64_t desc_gpa, avail_gpa, used_gpa;
    /* Stable host pointers when the strategy translates, else NULL. */
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    uint16_t last_avail_idx; /* next available entry to consume */
    uint16_t avail_idx;      /* last validated driver avail->idx */
    uint16_t used_idx;       /* device's private used index (shadow) */
    uint16_t published_used; /* used->idx as last written to the guest */
    uint16_t signalled_used; /* used idx at the last interrupt */
    bool signalled_used_valid;
    bool notify_enabled;
    /* The suppression state is in guest memory as notify_enabled says
     * (false until the first store after setup: a previous backend may
     * have left anything there); event_stored is the avail_event stored. */
    bool notify_stored;
    uint16_t event_stored;
};

/* A disabled avail_event (one behind the last chain consumed) is stored
 * again once this many chains were consumed since: far below the 65536
 * the driver must publish to pass it, even a whole ring (at most 32768)
 * ahead of us. */
#define CW_VQ_EVENT_REWRITE 16384u

/* Prepare a queue. features: negotiated set (EVENT_IDX, INDIRECT_DESC).
 * last_avail_idx: where to resume (vhost-user SET_VRING_BASE). The used index
 * is resumed from the guest's used->idx. Returns CW_VQ_OK or the reason; on
 * failure the queue is not ready. */
enum cw_vq_error cw_vq_setup(struct cw_vq *vq, const struct cw_gmem *mem, uint16_t num,
                             uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa,
                             uint64_t features, uint16_t last_avail_idx);

/* Stop serving; returns the index to resume from (vhost-user GET_VRING_BASE). */
uint16_t cw_vq_stop(struct cw_vq *vq);

static inline bool cw_vq_broken(const struct cw_vq *vq) { return vq->error != CW_VQ_OK; }
static inline bool cw_vq_ready(const struct cw_vq *vq) { return vq->ready && !cw_vq_broken(vq); }

/* Number of chains the driver has made available and not yet popped
 * (re-reads avail->idx with acquire ordering). 0 when broken. */
uint16_t cw_vq_avail_count(struct cw_vq *vq);

/* Ask the CPU to start loading the buffer of the chain `ahead` entries past
 * the next one to pop (write: the device will write it), and the descriptor
 * of the one twice as far. A hint only: nothing is validated beyond
 * choosing what to prefetch (a guest lying here wastes a cache line, it
 * cannot make the device touch memory), and it does nothing for chains the
 * driver has not yet published, indirect chains, or map-per-access.
 * Why: the driver fills these from another CPU, so without it every frame
 * waits for its descriptor, header and data to cross between cores. */
void cw_vq_prefetch(const struct cw_vq *vq, uint16_t ahead, bool write);

/* Pop the next chain into *c. 1: popped; 0: none available; -1: broken. */
int cw_vq_pop(struct cw_vq *vq, struct cw_chain *c);

/* Give back the last n popped chains unused (they stay available). */
void cw_vq_unpop(struct cw_vq *vq, uint16_t n);

/* Return a chain to the driver with `len` bytes written. Not visible to the
 * driver until cw_vq_flush. */
void cw_vq_push(struct cw_vq *vq, uint16_t head, uint32_t len);

/* Take back the last n pushed entries not yet flushed (the driver never saw
 * them). Used when a multi-buffer RX frame turns out not to fit: its chains
 * are unpushed and unpopped together. */
void cw_vq_unpush(struct cw_vq *vq, uint16_t n);

/* Publish all pushed entries with one used->idx store (release ordering). */
void cw_vq_flush(struct cw_vq *vq);

/* After a flush: must the driver be interrupted? (EVENT_IDX or
 * NO_INTERRUPT, with the full barrier the spec requires before reading). */
bool cw_vq_need_interrupt(struct cw_vq *vq);

/* Ask the driver to kick (true) or not to (false) on new buffers. Enabling
 * returns true if buffers arrived meanwhile, so the caller must process
 * again instead of sleeping (the classic enable-then-recheck). */
bool cw_vq_set_notify(struct cw_vq *vq, bool enable);

/* Copy between a chain's segments and host memory, starting `offset` bytes
 * into the readable (out) or writable (in) part. Returns bytes copied, or -1
 * on a guest-memory fault (which also breaks the queue). */
int64_t cw_vq_read_out(struct cw_vq *vq, const struct cw_chain *c, uint32_t offset, void *dst,
                       uint32_t len);
int64_t cw_vq_write_in(struct cw_vq *vq, const struct cw_chain *c, uint32_t offset,
                       const void *src, uint32_t len);

/* The fast path for the common layout: a host pointer to bytes [offset,
 * offset+len) of the readable (out) or writable (in) part when they lie in
 * one segment and the strategy keeps memory mapped; NULL otherwise (the
 * caller then copies with cw_vq_read_out / cw_vq_write_in, which handle
 * every layout and report faults). The range is translated, and so checked
 * against the guest's regions, on every call; the pointer stays valid until
 * the memory table changes, so use it within the call that popped the
 * chain. Reading through it reads guest memory the guest may be changing:
 * copy what must be validated into a local first. NULL is not an error. */
const void *cw_vq_out_ptr(struct cw_vq *vq, const struct cw_chain *c, uint32_t offset,
                          uint32_t len);
void *cw_vq_in_ptr(struct cw_vq *vq, const struct cw_chain *c, uint32_t offset, uint32_t len);

#endif
