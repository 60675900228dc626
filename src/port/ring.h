/* Single-producer single-consumer frame ring in shared memory.
 *
 * One direction of a port: the producer appends variable-length records into
 * a circular byte area, the consumer reads them in order. Both peers map the
 * same memory and neither trusts the other:
 *  - the capacity lives in each side's private struct cw_ring, never read
 *    from shared memory;
 *  - each side keeps its own index privately and only publishes it; the
 *    peer's index is read when the last value read no longer suffices, and
 *    validated before it is used (0 <= prod - cons <= capacity, records well
 *    formed, lengths within bounds). A violation marks the ring broken; the
 *    caller takes the link down.
 * Notification suppression follows sDDF's protocol: a side about to sleep
 * sets its own "wake me" flag, issues a full barrier and re-checks; the other
 * side, after publishing, issues a full barrier and signals only if the flag
 * is set. Spurious signals are harmless; lost wake-ups cannot happen.
 *
 * Portable: no OS calls; signalling is the caller's (an eventfd on Linux). */
#ifndef CAUSEWAY_PORT_RING_H
#define CAUSEWAY_PORT_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CW_RING_ALIGN 16u          /* record alignment */
#define CW_RING_REC_HDR 8u         /* record header: u32 len, u32 type */
#define CW_RING_MIN_CAPACITY 4096u
#define CW_RING_MAX_CAPACITY (1u << 30)

/* Shared part. Producer writes prod and prod_wants_space; consumer writes
 * cons and cons_wants_data. Separate cache lines avoid false sharing. */
struct cw_ring_shared {
    _Alignas(64) uint32_t prod;         /* bytes published by the producer (free-running) */
    uint32_t prod_wants_space;          /* producer sleeps until the consumer frees space */
    _Alignas(64) uint32_t cons;         /* bytes released by the consumer (free-running) */
    uint32_t cons_wants_data;           /* consumer sleeps until the producer publishes */
    _Alignas(64) uint8_t data[];
};

/* Bytes of shared memory a ring of `capacity` needs. */
static inline size_t cw_ring_shared_size(uint32_t capacity)
{
    return sizeof(struct cw_ring_shared) + capacity;
}

/* Private part, one per side. */
struct cw_ring {
    struct cw_ring_shared *sh;
    uint32_t capacity; /* power of two, private */
    uint32_t max_record; /* largest payload accepted */
    uint32_t head;     /* own index: prod for the producer, cons for the consumer */
    uint32_t pending;  /* producer: bytes committed, not yet published; consumer: bytes released */
    uint32_t reserved; /* producer: length of the open reservation */
    uint32_t res_pad;  /* producer: padding reserve put in front of it */
    uint32_t peek_len; /* consumer: record size (with header, aligned) of the last peek */
    /* The peer's index as last read and validated: the producer's view of
     * cons, the consumer's of prod. Reserve and peek work from it and
     * re-read the shared one only when it no longer suffices (no room; no
     * record), so a burst reads the peer's cache line once instead of once
     * per frame. Trust is unchanged: every re-read value is validated
     * before it replaces the cached one. */
    uint32_t peer_seen;
    bool producer;     /* role, so cw_ring_woken knows which flag is ours */
    bool res_open;     /* producer: a reservation is open (reserved may be 0) */
    bool broken;       /* sticky: the peer broke the protocol; nothing more is touched */
};

/* Record types in the header's type field. */
#define CW_RING_REC_FRAME 1u
#define CW_RING_REC_PAD 2u

/* Attach to shared memory. `initialize` (the side that created the memory)
 * zeroes the indexes and flags; the other side reads nothing at attach and
 * starts at index 0 too. Returns -1 if capacity is not a power of two within
 * [CW_RING_MIN_CAPACITY, CW_RING_MAX_CAPACITY], if `shared` is not 64-byte
 * aligned, or if a record of max_record bytes (header and alignment
 * included) exceeds capacity / 2: above that, an empty ring whose index sits
 * mid-area could never fit the record on either side of the end. */
int cw_ring_attach_producer(struct cw_ring *r, void *shared, uint32_t capacity,
                            uint32_t max_record, bool initialize);
int cw_ring_attach_consumer(struct cw_ring *r, void *shared, uint32_t capacity,
                            uint32_t max_record, bool initialize);

/* Producer. reserve: contiguous room for len bytes or NULL (full, or len too
 * big, or broken). commit: the reservation holds a record of len bytes.
 * publish: make committed records visible; true if the consumer asked to be
 * signalled (the caller then signals it). */
void *cw_ring_reserve(struct cw_ring *r, uint32_t len);
void cw_ring_commit(struct cw_ring *r, uint32_t len);
bool cw_ring_publish(struct cw_ring *r);
/* Before sleeping on "space": true if space for len appeared meanwhile. */
bool cw_ring_prepare_wait_space(struct cw_ring *r, uint32_t len);

/* Consumer. peek: next record or NULL (empty or broken). release: drop it.
 * publish: return released space; true if the producer asked for a signal. */
const void *cw_ring_peek(struct cw_ring *r, uint32_t *len);
void cw_ring_release(struct cw_ring *r);
bool cw_ring_consumer_publish(struct cw_ring *r);
/* Before sleeping on "data": true if data appeared meanwhile. */
bool cw_ring_prepare_wait_data(struct cw_ring *r);
/* Clear the own wake flag after waking up. */
void cw_ring_woken(struct cw_ring *r);

#endif
