/* Split virtqueue engine, device side (virtio 1.2, 2.7).
 *
 * Two ways to reach the rings, chosen once at setup:
 *  - persistent: all three ring areas translate to stable host pointers and
 *    are accessed through them with __atomic loads/stores;
 *  - map-per-access: every ring access is one cw_gmem_read/write.
 * The guest owns the descriptor table and the available ring and may change
 * them at any moment, from another CPU. So every field is read once into a
 * local, validated, and only the local is used afterwards.
 *
 * Barriers: the numbered spec rules are quoted next to each fence. On x86 the
 * acquire/release ones compile to nothing but still stop the compiler from
 * reordering; the full ones are real fences on every architecture. */
#include "virtq.h"

#include <stddef.h>

/* Stop the compiler from re-reading guest memory through a pointer after a
 * descriptor was copied: the copy is the only version we trust. */
#define COMPILER_BARRIER() __atomic_signal_fence(__ATOMIC_SEQ_CST)

/* Small per-frame helpers GCC would otherwise leave as calls (measured with
 * callgrind: a call and its prologue cost more than the access itself). */
#define HOT_INLINE static inline __attribute__((always_inline))

static const char *const error_names[CW_VQ_ERR__COUNT] = {
    [CW_VQ_OK] = "ok",
    [CW_VQ_ERR_RING_ADDR] = "ring_addr",
    [CW_VQ_ERR_RING_SIZE] = "ring_size",
    [CW_VQ_ERR_RING_ACCESS] = "ring_access",
    [CW_VQ_ERR_AVAIL_IDX] = "avail_idx",
    [CW_VQ_ERR_HEAD] = "head",
    [CW_VQ_ERR_NEXT] = "next",
    [CW_VQ_ERR_CHAIN_LONG] = "chain_long",
    [CW_VQ_ERR_BUF_ADDR] = "buf_addr",
    [CW_VQ_ERR_INDIRECT] = "indirect",
    [CW_VQ_ERR_ORDER] = "order",
    [CW_VQ_ERR_USED] = "used",
};

const char *cw_vq_strerror(enum cw_vq_error e)
{
    if ((unsigned)e >= CW_VQ_ERR__COUNT)
        return "unknown";
    return error_names[e];
}

/* Record the first violation only; the queue serves nothing afterwards. */
static void vq_break(struct cw_vq *vq, enum cw_vq_error e)
{
    if (vq->error == CW_VQ_OK)
        vq->error = e;
}

/* ---- ring field access (the two strategies behind one set of helpers) ---- */

/* Guest-physical offsets inside the driver and device areas. */
#define AVAIL_IDX_OFF 2u
#define AVAIL_RING_OFF 4u
#define USED_FLAGS_OFF 0u
#define USED_IDX_OFF 2u
#define USED_RING_OFF 4u

/* avail->idx with acquire ordering. Spec "Supplying Buffers to The Device /
 * Updating idx": the driver writes descriptors and ring entries, then a
 * barrier, then idx. The mirror on our side: read idx, then a barrier, then
 * the entries and descriptors it covers. */
static bool read_avail_idx(struct cw_vq *vq, uint16_t *out)
{
    if (vq->avail) {
        *out = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
        return true;
    }
    uint16_t v;
    if (cw_gmem_read(vq->mem, vq->avail_gpa + AVAIL_IDX_OFF, &v, sizeof(v)) < 0) {
        vq_break(vq, CW_VQ_ERR_RING_ACCESS);
        return false;
    }
    /* Same rule for the copy path: entries and descriptors it covers are
     * read only after the index. */
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    *out = v;
    return true;
}

/* avail->ring[slot]; slot == num is used_event. Ordering comes from the
 * acquire on avail->idx (or the full fence before used_event). */
HOT_INLINE bool read_avail_u16(struct cw_vq *vq, uint32_t slot, uint16_t *out)
{
    if (vq->avail) {
        *out = __atomic_load_n(&vq->avail->ring[slot], __ATOMIC_RELAXED);
        return true;
    }
    uint16_t v;
    if (cw_gmem_read(vq->mem, vq->avail_gpa + AVAIL_RING_OFF + 2ull * slot, &v, sizeof(v)) < 0) {
        vq_break(vq, CW_VQ_ERR_RING_ACCESS);
        return false;
    }
    *out = v;
    return true;
}

static bool read_avail_flags(struct cw_vq *vq, uint16_t *out)
{
    if (vq->avail) {
        *out = __atomic_load_n(&vq->avail->flags, __ATOMIC_RELAXED);
        return true;
    }
    uint16_t v;
    if (cw_gmem_read(vq->mem, vq->avail_gpa, &v, sizeof(v)) < 0) {
        vq_break(vq, CW_VQ_ERR_RING_ACCESS);
        return false;
    }
    *out = v;
    return true;
}

HOT_INLINE bool write_used_elem(struct cw_vq *vq, uint16_t slot, uint32_t id, uint32_t len)
{
    if (vq->used) {
        __atomic_store_n(&vq->used->ring[slot].id, id, __ATOMIC_RELAXED);
        __atomic_store_n(&vq->used->ring[slot].len, len, __ATOMIC_RELAXED);
        return true;
    }
    struct vring_used_elem e = {.id = id, .len = len};
    if (cw_gmem_write(vq->mem, vq->used_gpa + USED_RING_OFF + 8ull * slot, &e, sizeof(e)) < 0) {
        vq_break(vq, CW_VQ_ERR_RING_ACCESS);
        return false;
    }
    return true;
}

/* used->idx with release ordering. Spec "The Virtqueue Used Ring", device
 * requirements: the used elements (id, len) are written before idx is
 * updated, so the driver never sees an index covering an unwritten element. */
static bool write_used_idx(struct cw_vq *vq, uint16_t idx)
{
    if (vq->used) {
        __atomic_store_n(&vq->used->idx, idx, __ATOMIC_RELEASE);
        return true;
    }
    /* Copy path: the fence orders the element writes before the index write. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    if (cw_gmem_write(vq->mem, vq->used_gpa + USED_IDX_OFF, &idx, sizeof(idx)) < 0) {
        vq_break(vq, CW_VQ_ERR_RING_ACCESS);
        return false;
    }
    return true;
}

static bool write_used_u16(struct cw_vq *vq, uint64_t off, uint16_t *field, uint16_t v)
{
    if (vq->used) {
        __atomic_store_n(field, v, __ATOMIC_RELAXED);
        return true;
    }
    if (cw_gmem_write(vq->mem, vq->used_gpa + off, &v, sizeof(v)) < 0) {
        vq_break(vq, CW_VQ_ERR_RING_ACCESS);
        return false;
    }
    return true;
}

static bool write_used_flags(struct cw_vq *vq, uint16_t flags)
{
    return write_used_u16(vq, USED_FLAGS_OFF, vq->used ? &vq->used->flags : NULL, flags);
}

/* avail_event lives in the slot after the used ring: used->ring[num]. */
static bool write_avail_event(struct cw_vq *vq, uint16_t v)
{
    uint16_t *field = NULL;
    if (vq->used)
        field = (uint16_t *)(void *)&vq->used->ring[vq->num];
    return write_used_u16(vq, USED_RING_OFF + 8ull * vq->num, field, v);
}

/* ---- setup ---- */

enum cw_vq_error cw_vq_setup(struct cw_vq *vq, const struct cw_gmem *mem, uint16_t num,
                             uint64_t desc_gpa, uint64_t avail_gpa, uint64_t used_gpa,
                             uint64_t features, uint16_t last_avail_idx)
{
    __builtin_memset(vq, 0, sizeof(*vq));
    vq->mem = mem;
    vq->notify_enabled = true;

    /* A power of two keeps "idx & (num - 1)" equal to "idx % num" across the
     * 16-bit wrap of the free-running indexes (split rings require it). */
    if (num == 0 || num > CW_VQ_MAX_SIZE || (num & (num - 1)) != 0) {
        vq->error = CW_VQ_ERR_RING_SIZE;
        return vq->error;
    }
    vq->num = num;

    /* Spec alignment table: descriptor table 16, driver area 2, device area 4.
     * The sizes include used_event/avail_event: the guest may not negotiate
     * EVENT_IDX, but the areas are laid out for it anyway and checking the
     * larger size costs nothing. */
    uint64_t dsz = vring_desc_size(num), asz = vring_avail_size(num), usz = vring_used_size(num);
    if ((desc_gpa & 15) || (avail_gpa & 1) || (used_gpa & 3) ||
        !cw_gmem_valid(mem, desc_gpa, (size_t)dsz) || !cw_gmem_valid(mem, avail_gpa, (size_t)asz) ||
        !cw_gmem_valid(mem, used_gpa, (size_t)usz)) {
        vq->error = CW_VQ_ERR_RING_ADDR;
        return vq->error;
    }
    vq->desc_gpa = desc_gpa;
    vq->avail_gpa = avail_gpa;
    vq->used_gpa = used_gpa;

    /* Persistent strategy only if all three translate: mixing pointer and
     * copy access per area would only add cases to test. */
    void *d = cw_gmem_translate(mem, desc_gpa, (size_t)dsz);
    void *a = cw_gmem_translate(mem, avail_gpa, (size_t)asz);
    void *u = cw_gmem_translate(mem, used_gpa, (size_t)usz);
    if (d && a && u) {
        vq->desc = d;
        vq->avail = a;
        vq->used = u;
    }

    vq->event_idx = (features & CW_BIT(VIRTIO_RING_F_EVENT_IDX)) != 0;
    vq->indirect = (features & CW_BIT(VIRTIO_RING_F_INDIRECT_DESC)) != 0;
    vq->last_avail_idx = last_avail_idx;
    vq->avail_idx = last_avail_idx;

    /* Resume the used index where the device left it (the guest's copy is
     * the only one that survives a backend restart). */
    uint16_t used_idx;
    if (vq->used) {
        used_idx = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
    } else if (cw_gmem_read(mem, used_gpa + USED_IDX_OFF, &used_idx, sizeof(used_idx)) < 0) {
        vq->error = CW_VQ_ERR_RING_ACCESS;
        return vq->error;
    }
    /* More than num chains outstanding is impossible for a real device; the
     * guest scribbled on its used ring. Returning chains against such an
     * index would be meaningless, so refuse the queue. */
    if ((uint16_t)(last_avail_idx - used_idx) > num) {
        vq->error = CW_VQ_ERR_USED;
        return vq->error;
    }
    vq->used_idx = used_idx;
    vq->published_used = used_idx;
    vq->signalled_used = used_idx;
    vq->signalled_used_valid = false;
    vq->ready = true;
    return CW_VQ_OK;
}

uint16_t cw_vq_stop(struct cw_vq *vq)
{
    vq->ready = false;
    return vq->last_avail_idx;
}

/* ---- consuming available chains ---- */

/* Refresh the driver's avail->idx and check it: the driver can have at most
 * num chains outstanding, so an index further ahead is corrupt. */
static bool refresh_avail(struct cw_vq *vq)
{
    uint16_t idx;
    if (!read_avail_idx(vq, &idx))
        return false;
    if ((uint16_t)(idx - vq->last_avail_idx) > vq->num) {
        vq_break(vq, CW_VQ_ERR_AVAIL_IDX);
        return false;
    }
    vq->avail_idx = idx;
    return true;
}

uint16_t cw_vq_avail_count(struct cw_vq *vq)
{
    if (!cw_vq_ready(vq) || !refresh_avail(vq))
        return 0;
    return (uint16_t)(vq->avail_idx - vq->last_avail_idx);
}

/* Where descriptors are read from: the queue's table or an indirect one. */
struct desc_table {
    uint64_t gpa;
    /* Host bytes of the table, NULL: read through gmem. Bytes, not struct
     * pointers: the spec does not require indirect tables to be aligned. */
    const uint8_t *ptr;
    uint32_t len; /* entries */
};

static bool read_desc(struct cw_vq *vq, const struct desc_table *t, uint32_t i,
                      struct vring_desc *out)
{
    if (t->ptr) {
        __builtin_memcpy(out, t->ptr + 16u * i, sizeof(*out));
        /* The guest can rewrite the entry at any time; from here on only the
         * local copy is used, and the compiler must not reload it. */
        COMPILER_BARRIER();
        return true;
    }
    if (cw_gmem_read(vq->mem, t->gpa + 16ull * i, out, sizeof(*out)) < 0) {
        vq_break(vq, CW_VQ_ERR_RING_ACCESS);
        return false;
    }
    return true;
}

/* Does [addr, addr+len) run past the top of the 64-bit address space? A
 * range ending exactly at 2^64 does not. Checked here even though gmem
 * strategies promise to, because the sum is where such bugs hide. */
static bool range_wraps(uint64_t addr, uint32_t len)
{
    return len != 0 && addr + (len - 1u) < addr;
}

static uint32_t sat_add(uint32_t a, uint32_t b)
{
    uint32_t r = a + b;
    return r < a ? UINT32_MAX : r;
}

/* Switch to the indirect table described by *d. */
static enum cw_vq_error enter_indirect(struct cw_vq *vq, const struct vring_desc *d,
                                       struct desc_table *t)
{
    if (!vq->indirect)
        return CW_VQ_ERR_INDIRECT;
    /* Spec "Indirect Descriptors", driver requirements: INDIRECT and NEXT
     * are never set together. */
    if (d->flags & VRING_DESC_F_NEXT)
        return CW_VQ_ERR_INDIRECT;
    /* A whole number of entries, at least one, at most what one chain may
     * hold: larger tables could only be used for a longer chain. */
    if (d->len == 0 || (d->len & 15) != 0 || d->len / 16 > CW_VQ_MAX_SEGS)
        return CW_VQ_ERR_INDIRECT;
    if (range_wraps(d->addr, d->len) || !cw_gmem_valid(vq->mem, d->addr, d->len))
        return CW_VQ_ERR_INDIRECT;
    t->gpa = d->addr;
    t->len = d->len / 16;
    /* Same strategy as the rings: pointers where the memory stays mapped. */
    t->ptr = vq->desc ? cw_gmem_translate(vq->mem, d->addr, d->len) : NULL;
    return CW_VQ_OK;
}

/* Walk the chain at `head` into *c. Returns CW_VQ_OK or the violation. */
static enum cw_vq_error walk_chain(struct cw_vq *vq, uint16_t head, struct cw_chain *c)
{
    struct desc_table t = {.gpa = vq->desc_gpa, .ptr = (const uint8_t *)vq->desc, .len = vq->num};
    bool in_indirect = false;
    uint32_t i = head;
    /* Each descriptor visited counts: a chain can never be longer than its
     * table, so this bound also ends any loop (a->b->a, a->a). */
    uint32_t visited = 0;
    uint32_t nseg = 0;

    c->head = head;
    c->n_out = c->n_in = 0;
    c->out_bytes = c->in_bytes = 0;

    for (;;) {
        if (++visited > t.len)
            return CW_VQ_ERR_CHAIN_LONG;
        struct vring_desc d;
        if (!read_desc(vq, &t, i, &d))
            return CW_VQ_ERR_RING_ACCESS;

        if (d.flags & VRING_DESC_F_INDIRECT) {
            /* Same section: no indirect descriptor inside an indirect table. */
            if (in_indirect)
                return CW_VQ_ERR_INDIRECT;
            enum cw_vq_error e = enter_indirect(vq, &d, &t);
            if (e != CW_VQ_OK)
                return e;
            in_indirect = true;
            visited = 0;
            i = 0;
            continue;
        }

        /* A zero-length buffer carries nothing; skipping it keeps every
         * segment non-empty for the copy loops. */
        if (d.len != 0) {
            bool writable = (d.flags & VRING_DESC_F_WRITE) != 0;
            /* Spec "Message Framing"/"The Virtqueue Descriptor Table": device
             * readable descriptors come before device writable ones. */
            if (!writable && c->n_in)
                return CW_VQ_ERR_ORDER;
            if (range_wraps(d.addr, d.len))
                return CW_VQ_ERR_BUF_ADDR;
            /* Persistent strategy (rings translated): the check is the
             * translation, done once here instead of again per access. */
            uint8_t *host = NULL;
            if (vq->desc != NULL) {
                host = cw_gmem_translate(vq->mem, d.addr, d.len);
                if (host == NULL)
                    return CW_VQ_ERR_BUF_ADDR;
            } else if (!cw_gmem_valid(vq->mem, d.addr, d.len)) {
                return CW_VQ_ERR_BUF_ADDR;
            }
            if (nseg >= CW_VQ_MAX_SEGS)
                return CW_VQ_ERR_CHAIN_LONG;
            c->seg[nseg].gpa = d.addr;
            c->seg[nseg].host = host;
            c->seg[nseg].len = d.len;
            nseg++;
            if (writable) {
                c->n_in++;
                c->in_bytes = sat_add(c->in_bytes, d.len);
            } else {
                c->n_out++;
                c->out_bytes = sat_add(c->out_bytes, d.len);
            }
        }

        if (!(d.flags & VRING_DESC_F_NEXT))
            return CW_VQ_OK;
        if (d.next >= t.len)
            return CW_VQ_ERR_NEXT;
        i = d.next;
    }
}

/* Baseline x86-64 has no write prefetch, so GCC turns a write hint into a
 * read prefetch: the line then arrives shared and the device's first store
 * still waits for the driver's CPU to give it up. PREFETCHW is in every
 * x86-64 CPU of the last decade and a no-op on older ones. */
#if defined(__x86_64__)
#define PREFETCH_TARGET __attribute__((target("prfchw")))
#else
#define PREFETCH_TARGET
#endif

PREFETCH_TARGET void cw_vq_prefetch(const struct cw_vq *vq, uint16_t ahead, bool write)
{
    /* Persistent rings only; entries past avail_idx may not be written yet. */
    if (!vq->desc || !vq->avail || vq->error != CW_VQ_OK)
        return;
    uint16_t published = (uint16_t)(vq->avail_idx - vq->last_avail_idx);
    uint16_t mask = (uint16_t)(vq->num - 1u);
    if ((uint32_t)ahead * 2u < published) {
        uint16_t far = __atomic_load_n(
            &vq->avail->ring[(uint16_t)(vq->last_avail_idx + 2u * ahead) & mask], __ATOMIC_RELAXED);
        __builtin_prefetch(&vq->desc[far & mask], 0, 3);
    }
    if (ahead >= published)
        return;
    uint16_t head = __atomic_load_n(&vq->avail->ring[(uint16_t)(vq->last_avail_idx + ahead) & mask],
                                    __ATOMIC_RELAXED);
    const struct vring_desc *d = &vq->desc[head & mask];
    uint64_t addr = __atomic_load_n(&d->addr, __ATOMIC_RELAXED);
    uint32_t len = __atomic_load_n(&d->len, __ATOMIC_RELAXED);
    uint16_t flags = __atomic_load_n(&d->flags, __ATOMIC_RELAXED);
    if (flags & VRING_DESC_F_INDIRECT)
        return;
    /* Two lines: a small frame with its 12-byte header spans both. The
     * translation is what bounds the hint to the guest's own memory. */
    uint32_t span = len < 128u ? len : 128u;
    const uint8_t *p = cw_gmem_translate(vq->mem, addr, span);
    if (!p)
        return;
    if (write) {
        __builtin_prefetch(p, 1, 3);
        if (span > 64u)
            __builtin_prefetch(p + 64, 1, 3);
    } else {
        __builtin_prefetch(p, 0, 3);
        if (span > 64u)
            __builtin_prefetch(p + 64, 0, 3);
    }
}

int cw_vq_pop(struct cw_vq *vq, struct cw_chain *c)
{
    if (cw_vq_broken(vq))
        return -1;
    if (!vq->ready)
        return 0;
    /* Only re-read the guest's index when what we saw last is used up. */
    if (vq->avail_idx == vq->last_avail_idx) {
        if (!refresh_avail(vq))
            return -1;
        if (vq->avail_idx == vq->last_avail_idx)
            return 0;
    }
    uint16_t head;
    if (!read_avail_u16(vq, vq->last_avail_idx & (vq->num - 1u), &head))
        return -1;
    if (head >= vq->num) {
        vq_break(vq, CW_VQ_ERR_HEAD);
        return -1;
    }
    enum cw_vq_error e = walk_chain(vq, head, c);
    if (e != CW_VQ_OK) {
        vq_break(vq, e);
        return -1;
    }
    vq->last_avail_idx++;
    return 1;
}

void cw_vq_unpop(struct cw_vq *vq, uint16_t n)
{
    if (!cw_vq_ready(vq))
        return;
    /* Only chains popped and not returned can be given back. */
    if (n > (uint16_t)(vq->last_avail_idx - vq->used_idx)) {
        vq_break(vq, CW_VQ_ERR_USED);
        return;
    }
    vq->last_avail_idx = (uint16_t)(vq->last_avail_idx - n);
}

/* ---- returning used chains ---- */

void cw_vq_push(struct cw_vq *vq, uint16_t head, uint32_t len)
{
    if (!cw_vq_ready(vq))
        return;
    /* A device bug, not a guest one: returning more chains than were popped,
     * or an id the ring cannot hold, would corrupt the driver's state. */
    if (head >= vq->num || vq->used_idx == vq->last_avail_idx) {
        vq_break(vq, CW_VQ_ERR_USED);
        return;
    }
    if (!write_used_elem(vq, vq->used_idx & (vq->num - 1u), head, len))
        return;
    vq->used_idx++;
}

void cw_vq_unpush(struct cw_vq *vq, uint16_t n)
{
    if (!cw_vq_ready(vq))
        return;
    /* Only entries not yet published can be taken back. */
    if (n > (uint16_t)(vq->used_idx - vq->published_used)) {
        vq_break(vq, CW_VQ_ERR_USED);
        return;
    }
    vq->used_idx = (uint16_t)(vq->used_idx - n);
}

void cw_vq_flush(struct cw_vq *vq)
{
    if (!cw_vq_ready(vq) || vq->used_idx == vq->published_used)
        return;
    if (write_used_idx(vq, vq->used_idx))
        vq->published_used = vq->used_idx;
}

/* The spec's vring_need_event: did the index move past `event` while going
 * from old_idx to new_idx (all modulo 2^16)? */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

bool cw_vq_need_interrupt(struct cw_vq *vq)
{
    if (!cw_vq_ready(vq))
        return false;
    /* Spec "Used Buffer Notification Suppression": the used->idx store must
     * be visible before we read the driver's used_event or flags, or we could
     * miss a driver that just re-enabled interrupts and went to sleep.
     * Ordering a store before a load needs a full fence. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);

    uint16_t old_idx = vq->signalled_used;
    uint16_t new_idx = vq->published_used;
    bool valid = vq->signalled_used_valid;
    vq->signalled_used = new_idx;
    vq->signalled_used_valid = true;
    /* Nothing published since the last interrupt: nothing to tell. */
    if (valid && old_idx == new_idx)
        return false;

    if (vq->event_idx) {
        uint16_t used_event;
        if (!read_avail_u16(vq, vq->num, &used_event))
            return false;
        /* First decision after setup: we do not know what the driver saw. */
        if (!valid)
            return true;
        return need_event(used_event, new_idx, old_idx);
    }
    uint16_t flags;
    if (!read_avail_flags(vq, &flags))
        return false;
    return !(flags & VRING_AVAIL_F_NO_INTERRUPT);
}

bool cw_vq_set_notify(struct cw_vq *vq, bool enable)
{
    if (!cw_vq_ready(vq))
        return false;
    /* Already disabled, and what we stored still holds: the driver reads
     * that field before every kick it might send, so a store per batch
     * would pull the line away from its CPU and back each time. */
    if (!enable && vq->notify_stored && !vq->notify_enabled &&
        (!vq->event_idx ||
         (uint16_t)(vq->last_avail_idx - 1u - vq->event_stored) < CW_VQ_EVENT_REWRITE))
        return false;
    if (vq->event_idx) {
        /* Spec "Available Buffer Notification Suppression": with EVENT_IDX
         * the driver ignores used->flags and kicks
         * when its avail idx passes avail_event. Enabled: ask for a kick on
         * the driver's next entry, i.e. at the index it has published (as
         * last read), not at last_avail_idx: after chains were given back
         * (an RX frame that needs more buffers than are posted) those differ,
         * and an event on an entry the driver published already is one it
         * never kicks for. Disabled: point one behind what we consumed, a
         * position the driver will not pass for another 65535 entries (and
         * we rewrite it long before that: CW_VQ_EVENT_REWRITE). */
        uint16_t ev = enable ? vq->avail_idx : (uint16_t)(vq->last_avail_idx - 1u);
        if (!write_avail_event(vq, ev))
            return false;
        vq->event_stored = ev;
    } else {
        /* Written every time, not only on a change: after a backend restart
         * the guest's flags may still hold what a previous instance left. */
        if (!write_used_flags(vq, enable ? 0 : VRING_USED_F_NO_NOTIFY))
            return false;
    }
    vq->notify_enabled = enable;
    vq->notify_stored = true;
    if (!enable)
        return false;
    /* Same section, the device's half of the handshake: the avail_event /
     * flags store must be visible before we re-read avail->idx, otherwise a
     * driver that added a buffer just before seeing our store would not kick
     * and we would sleep on a non-empty queue. Store->load: full fence. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!refresh_avail(vq))
        return false;
    return vq->avail_idx != vq->last_avail_idx;
}

/* ---- copying data ---- */

/* Copy between host memory and segments [first, first+count) of a chain,
 * starting `offset` bytes into them. One copy (or one gmem access) per
 * touched segment: as few, as large copies as the guest's layout allows. */
static int64_t copy_segs(struct cw_vq *vq, const struct cw_chain *c, uint32_t first,
                         uint32_t count, uint32_t offset, uint8_t *host, uint32_t len,
                         bool to_guest)
{
    if (!cw_vq_ready(vq))
        return -1;
    uint32_t done = 0;
    for (uint32_t s = first; s < first + count && done < len; s++) {
        uint32_t slen = c->seg[s].len;
        if (offset >= slen) {
            offset -= slen;
            continue;
        }
        uint32_t n = slen - offset;
        if (n > len - done)
            n = len - done;
        uint64_t gpa = c->seg[s].gpa + offset;
        void *p = c->seg[s].host ? c->seg[s].host + offset : NULL;
        offset = 0;
        int rc = 0;
        if (p) {
            if (to_guest)
                __builtin_memcpy(p, host + done, n);
            else
                __builtin_memcpy(host + done, p, n);
        } else if (to_guest) {
            rc = cw_gmem_write(vq->mem, gpa, host + done, n);
        } else {
            rc = cw_gmem_read(vq->mem, gpa, host + done, n);
        }
        /* Validated at pop time, so a failure means the memory table changed
         * under us: the chain is no longer trustworthy. */
        if (rc < 0) {
            vq_break(vq, CW_VQ_ERR_BUF_ADDR);
            return -1;
        }
        done += n;
    }
    return done;
}

int64_t cw_vq_read_out(struct cw_vq *vq, const struct cw_chain *c, uint32_t offset, void *dst,
                       uint32_t len)
{
    return copy_segs(vq, c, 0, c->n_out, offset, dst, len, false);
}

int64_t cw_vq_write_in(struct cw_vq *vq, const struct cw_chain *c, uint32_t offset,
                       const void *src, uint32_t len)
{
    return copy_segs(vq, c, c->n_out, c->n_in, offset, (uint8_t *)(uintptr_t)src, len, true);
}

/* Segment [first, first+count) holding [offset, offset+len) whole, as a
 * host pointer; NULL when the range spans segments, the strategy does not
 * translate, or the range no longer translates (then the copy fallback
 * finds the fault and breaks the queue). */
static void *seg_ptr(struct cw_vq *vq, const struct cw_chain *c, uint32_t first, uint32_t count,
                     uint32_t offset, uint32_t len)
{
    if (vq->desc == NULL || len == 0 || !cw_vq_ready(vq))
        return NULL;
    for (uint32_t s = first; s < first + count; s++) {
        uint32_t slen = c->seg[s].len;
        if (offset < slen)
            return len <= slen - offset && c->seg[s].host ? c->seg[s].host + offset : NULL;
        offset -= slen;
    }
    return NULL;
}

const void *cw_vq_out_ptr(struct cw_vq *vq, const struct cw_chain *c, uint32_t offset,
                          uint32_t len)
{
    return seg_ptr(vq, c, 0, c->n_out, offset, len);
}

void *cw_vq_in_ptr(struct cw_vq *vq, const struct cw_chain *c, uint32_t offset, uint32_t len)
{
    return seg_ptr(vq, c, c->n_out, c->n_in, offset, len);
}
