/* SPSC frame ring: variable-length records in a circular byte area.
 *
 * Layout: each record is a header {u32 len, u32 type} followed by len bytes,
 * padded to CW_RING_ALIGN. A record never wraps: when it does not fit before
 * the end of the area, the producer writes a PAD record covering the rest and
 * puts the record at offset 0. prod and cons are free-running byte counts;
 * both are always multiples of CW_RING_ALIGN, so an offset (index & mask) is
 * always 16-aligned and at least 16 bytes from the end: a header always fits.
 *
 * Trust: the peer's index, flag and record headers are hostile input. Every
 * shared value is read once into a local and validated before use; any
 * violation makes the ring broken (sticky) and nothing more is read from or
 * written to the shared area. Capacity, max_record and our own index are
 * private and never read back from shared memory.
 *
 * Portable: __atomic builtins and __builtin_memcpy only. */
#include "ring.h"

#include <stdint.h>

#define ALIGN_MASK (CW_RING_ALIGN - 1u)

/* Size of a record with header and padding. Callers pass len <= max_record,
 * which attach bounded to capacity / 2, so this cannot overflow. */
static inline uint32_t rec_size(uint32_t len)
{
    return (CW_RING_REC_HDR + len + ALIGN_MASK) & ~ALIGN_MASK;
}

static inline uint32_t *hdr_at(const struct cw_ring *r, uint32_t off)
{
    /* off is 16-aligned and data[] is 64-aligned: a u32 access is aligned. */
    return (uint32_t *)(void *)(r->sh->data + off);
}

static inline void write_hdr(struct cw_ring *r, uint32_t off, uint32_t len, uint32_t type)
{
    /* Plain stores: publish's release store of prod orders them before the
     * consumer can see the record. */
    uint32_t h[2] = { len, type };
    __builtin_memcpy(hdr_at(r, off), h, sizeof(h));
}

static bool is_pow2(uint32_t x)
{
    return x != 0 && (x & (x - 1u)) == 0;
}

static int attach(struct cw_ring *r, void *shared, uint32_t capacity, uint32_t max_record,
                  bool initialize, bool producer)
{
    *r = (struct cw_ring){ .producer = producer, .broken = true };
    if (shared == NULL || ((uintptr_t)shared & 63u) != 0)
        return -1;
    if (!is_pow2(capacity) || capacity < CW_RING_MIN_CAPACITY || capacity > CW_RING_MAX_CAPACITY)
        return -1;
    /* First bound max_record alone so rec_size cannot overflow, then with
     * header and padding: see ring.h for why capacity / 2. */
    if (max_record > capacity / 2u || rec_size(max_record) > capacity / 2u)
        return -1;

    r->sh = shared;
    r->capacity = capacity;
    r->max_record = max_record;
    r->broken = false;
    if (initialize) {
        /* The creator runs before the peer has the memory: no ordering
         * needed beyond the fd hand-over itself (a syscall). */
        __atomic_store_n(&r->sh->prod, 0u, __ATOMIC_RELAXED);
        __atomic_store_n(&r->sh->prod_wants_space, 0u, __ATOMIC_RELAXED);
        __atomic_store_n(&r->sh->cons, 0u, __ATOMIC_RELAXED);
        __atomic_store_n(&r->sh->cons_wants_data, 0u, __ATOMIC_RELAXED);
    }
    return 0;
}

int cw_ring_attach_producer(struct cw_ring *r, void *shared, uint32_t capacity,
                            uint32_t max_record, bool initialize)
{
    return attach(r, shared, capacity, max_record, initialize, true);
}

int cw_ring_attach_consumer(struct cw_ring *r, void *shared, uint32_t capacity,
                            uint32_t max_record, bool initialize)
{
    return attach(r, shared, capacity, max_record, initialize, false);
}

/* ---- producer ---- */

/* Padding needed in front of a record of `rec` bytes placed at head. */
static inline uint32_t pad_for(const struct cw_ring *r, uint32_t rec)
{
    uint32_t to_end = r->capacity - (r->head & (r->capacity - 1u));
    return rec <= to_end ? 0u : to_end;
}

/* Re-read the consumer's cons and validate it; marks the ring broken and
 * returns false if it lies. */
static bool prod_refresh(struct cw_ring *r)
{
    /* Acquire: pairs with the consumer's release store of cons, so its reads
     * of the records it released happen before we overwrite that space. */
    uint32_t cons = __atomic_load_n(&r->sh->cons, __ATOMIC_ACQUIRE);
    uint32_t pub = r->head - r->pending; /* what the consumer may have seen */
    /* cons may only be between the last published prod minus capacity and
     * that prod. Checking pub - cons separately from head - cons catches a
     * cons "ahead" of pub that pending would otherwise wrap back in range. */
    if ((cons & ALIGN_MASK) != 0 || (uint32_t)(pub - cons) > r->capacity ||
        (uint32_t)(r->head - cons) > r->capacity) {
        r->broken = true;
        return false;
    }
    r->peer_seen = cons;
    return true;
}

static inline bool fits(const struct cw_ring *r, uint32_t len)
{
    /* head - peer_seen <= capacity: peer_seen was validated against a head
     * no larger than now, and reservations never go past the room it left. */
    uint32_t room = r->capacity - (uint32_t)(r->head - r->peer_seen);
    uint32_t rec = rec_size(len);
    return pad_for(r, rec) + rec <= room;
}

/* Is there room for a record of len bytes (plus padding)? From the cached
 * cons first; the shared one is read only when that is not enough. */
/* Inlined into reserve: it runs once per frame (measured with callgrind). */
static inline __attribute__((always_inline)) bool prod_room(struct cw_ring *r, uint32_t len)
{
    if (r->broken || !r->producer || len > r->max_record)
        return false;
    if (fits(r, len))
        return true;
    return prod_refresh(r) && fits(r, len);
}

void *cw_ring_reserve(struct cw_ring *r, uint32_t len)
{
    if (!prod_room(r, len))
        return NULL;
    uint32_t pad = pad_for(r, rec_size(len));
    uint32_t off = (r->head + pad) & (r->capacity - 1u);
    r->res_pad = pad;
    r->reserved = len;
    r->res_open = true;
    return r->sh->data + off + CW_RING_REC_HDR;
}

void cw_ring_commit(struct cw_ring *r, uint32_t len)
{
    if (r->broken || !r->producer || !r->res_open)
        return;
    if (len > r->reserved) {
        /* Caller bug: a header claiming bytes beyond the reservation could
         * cover space the consumer still owns. Stop here, loudly. */
        r->broken = true;
        return;
    }
    /* The padding decision is the one reserve made (head has not moved
     * since), so the data already sits where we put the header. */
    uint32_t pad = r->res_pad;
    if (pad != 0) {
        write_hdr(r, r->head & (r->capacity - 1u), pad - CW_RING_REC_HDR, CW_RING_REC_PAD);
        r->head += pad;
        r->pending += pad;
    }
    write_hdr(r, r->head & (r->capacity - 1u), len, CW_RING_REC_FRAME);
    r->head += rec_size(len);
    r->pending += rec_size(len);
    r->res_open = false;
    r->reserved = 0;
}

bool cw_ring_publish(struct cw_ring *r)
{
    if (r->broken || !r->producer || r->pending == 0)
        return false;
    /* Release: the records (headers and payload) are visible before the
     * consumer can observe the new prod. */
    __atomic_store_n(&r->sh->prod, r->head, __ATOMIC_RELEASE);
    r->pending = 0;
    /* Full fence: our store of prod must be globally visible before we load
     * the consumer's flag (store->load order, which release/acquire does not
     * give). Pairs with the fence in cw_ring_prepare_wait_data: either we see
     * the flag set, or the consumer's re-check sees our prod. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return __atomic_load_n(&r->sh->cons_wants_data, __ATOMIC_RELAXED) != 0;
}

bool cw_ring_prepare_wait_space(struct cw_ring *r, uint32_t len)
{
    if (r->broken || !r->producer)
        return false;
    __atomic_store_n(&r->sh->prod_wants_space, 1u, __ATOMIC_RELAXED);
    /* Full fence: the flag store must be visible before we re-read cons.
     * Pairs with the fence in cw_ring_consumer_publish (store cons, fence,
     * load flag): no interleaving lets both sides miss each other. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (prod_room(r, len)) {
        __atomic_store_n(&r->sh->prod_wants_space, 0u, __ATOMIC_RELAXED);
        return true;
    }
    return false;
}

/* ---- consumer ---- */

/* Re-read the producer's prod and validate it; marks the ring broken and
 * returns false if it lies. */
static bool cons_refresh(struct cw_ring *r)
{
    /* Acquire: pairs with the producer's release store of prod, so the
     * records below prod are visible before we read them. */
    uint32_t prod = __atomic_load_n(&r->sh->prod, __ATOMIC_ACQUIRE);
    uint32_t pub = r->head - r->pending; /* the cons the producer has seen */
    uint32_t used = prod - pub;
    /* prod must be aligned, no more than capacity ahead of what we handed
     * back, and not behind what we already consumed privately. */
    if ((prod & ALIGN_MASK) != 0 || used > r->capacity || used < r->pending) {
        r->broken = true;
        return false;
    }
    r->peer_seen = prod;
    return true;
}

const void *cw_ring_peek(struct cw_ring *r, uint32_t *len)
{
    if (r->broken || r->producer)
        return NULL;
    /* Records up to the cached prod were published when it was read; look
     * at the shared prod only once they are used up (at most once a call). */
    uint32_t avail = r->peer_seen - r->head; /* a multiple of 16 */
    bool refreshed = false;

    /* At most two records are examined: a PAD, then a FRAME at offset 0
     * (a PAD at offset 0 is refused, so the loop cannot spin). */
    for (;;) {
        if (avail == 0) {
            if (refreshed)
                return NULL;
            if (!cons_refresh(r))
                goto broken;
            refreshed = true;
            avail = r->peer_seen - r->head;
            if (avail == 0)
                return NULL;
        }
        uint32_t off = r->head & (r->capacity - 1u);
        uint32_t to_end = r->capacity - off;
        /* Read the header once; every check below uses these locals, so a
         * producer rewriting it concurrently cannot slip past the checks. */
        const uint32_t *h = hdr_at(r, off);
        uint32_t hlen = __atomic_load_n(&h[0], __ATOMIC_RELAXED);
        uint32_t htype = __atomic_load_n(&h[1], __ATOMIC_RELAXED);

        if (htype == CW_RING_REC_PAD) {
            /* A PAD exists only to skip to the end of the area, only when
             * not already at offset 0, and only if it is published. */
            if (off == 0 || hlen != to_end - CW_RING_REC_HDR || to_end > avail)
                goto broken;
            r->head += to_end;
            r->pending += to_end;
            avail -= to_end;
            continue;
        }
        if (htype != CW_RING_REC_FRAME || hlen > r->max_record)
            goto broken;
        uint32_t rec = rec_size(hlen);
        if (rec > avail || rec > to_end)
            goto broken;
        r->peek_len = rec;
        *len = hlen;
        return r->sh->data + off + CW_RING_REC_HDR;
    }

broken:
    r->broken = true;
    r->peek_len = 0;
    return NULL;
}

void cw_ring_release(struct cw_ring *r)
{
    if (r->broken || r->producer || r->peek_len == 0)
        return;
    r->head += r->peek_len;
    r->pending += r->peek_len;
    r->peek_len = 0;
}

bool cw_ring_consumer_publish(struct cw_ring *r)
{
    if (r->broken || r->producer || r->pending == 0)
        return false;
    /* Release: our reads of the released records complete before the
     * producer can see the space and overwrite it. */
    __atomic_store_n(&r->sh->cons, r->head, __ATOMIC_RELEASE);
    r->pending = 0;
    /* Full fence: store cons before loading the producer's flag; pairs with
     * the fence in cw_ring_prepare_wait_space. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return __atomic_load_n(&r->sh->prod_wants_space, __ATOMIC_RELAXED) != 0;
}

bool cw_ring_prepare_wait_data(struct cw_ring *r)
{
    if (r->broken || r->producer)
        return false;
    __atomic_store_n(&r->sh->cons_wants_data, 1u, __ATOMIC_RELAXED);
    /* Full fence: the flag store must be visible before we re-read prod.
     * Pairs with the fence in cw_ring_publish (store prod, fence, load flag). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    /* Any change of prod counts as work: if the value is bogus, the next
     * peek validates it and breaks the ring instead of us sleeping. */
    if (__atomic_load_n(&r->sh->prod, __ATOMIC_ACQUIRE) != r->head) {
        __atomic_store_n(&r->sh->cons_wants_data, 0u, __ATOMIC_RELAXED);
        return true;
    }
    return false;
}

void cw_ring_woken(struct cw_ring *r)
{
    if (r->broken || r->sh == NULL)
        return;
    /* Relaxed: the flag only suppresses signals; the next prepare_wait
     * re-arms it with a full fence before anyone relies on it. */
    if (r->producer)
        __atomic_store_n(&r->sh->prod_wants_space, 0u, __ATOMIC_RELAXED);
    else
        __atomic_store_n(&r->sh->cons_wants_data, 0u, __ATOMIC_RELAXED);
}
