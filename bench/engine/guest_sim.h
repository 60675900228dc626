/* A fast simulated guest for the device-engine benchmark.
 *
 * Memory: a memfd, as QEMU's memory-backend-memfd would hand over. The
 * simulated driver works on its own mapping of it (the guest's view); the
 * device reaches it only through the real src/gmem/guest_memory.c, in the
 * strategy under test, from a dup of the fd (the device's view). So with
 * map-per-access every device access really is an mmap/munmap pair.
 *
 * Driver: the guest half of a split virtqueue written the way Linux's
 * virtio_ring does it (free list of descriptors, avail entries published
 * with one release store of avail->idx, a kick only when EVENT_IDX says the
 * device asked, used entries reaped in order, used_event re-armed after a
 * poll). Built for speed, not for hostility: tests/unit/sim_guest.c is the
 * hostile one. */
#ifndef CAUSEWAY_BENCH_GUEST_SIM_H
#define CAUSEWAY_BENCH_GUEST_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/virtio_spec.h"
#include "gmem/guest_memory.h"

#define GUEST_GPA_BASE 0x40000000ull /* where the single RAM region starts */
#define DRV_MAX_NUM 1024u

struct guest {
    int memfd;
    uint8_t *ram;    /* driver's mapping of the whole RAM */
    uint64_t size;
    uint64_t next;   /* bump allocator (guest-physical) */
    struct cw_guest_memory gm; /* device's view through the real strategy */
};

/* 0 on success; -1 with a message in *why. */
int guest_init(struct guest *g, uint64_t size, enum cw_gmem_strategy s, const char **why);
void guest_fini(struct guest *g);
/* Guest-physical address of len fresh bytes aligned to align, or 0 when
 * the RAM is exhausted. */
uint64_t guest_alloc(struct guest *g, uint64_t len, uint64_t align);

static inline void *guest_ptr(const struct guest *g, uint64_t gpa)
{
    return g->ram + (gpa - GUEST_GPA_BASE);
}

/* One buffer of a chain the driver posts. */
struct drv_buf {
    uint64_t gpa;
    uint32_t len;
    bool write;
};

struct drv_vq {
    struct guest *g;
    uint16_t num;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    uint16_t avail_idx;  /* next avail entry (private until published) */
    uint16_t published;  /* avail->idx as last stored */
    uint16_t used_seen;  /* used entries reaped */
    uint16_t free_head;
    uint16_t num_free;
    uint16_t next[DRV_MAX_NUM];      /* private free-list / chain links */
    uint16_t chain_len[DRV_MAX_NUM]; /* descriptors in the chain at this head */
    uint32_t token[DRV_MAX_NUM];     /* caller's cookie per head */
    uint64_t kicks;
};

/* Lay out a queue of num entries (power of two <= DRV_MAX_NUM) in fresh
 * guest memory. -1 when the RAM is exhausted. */
int drv_vq_init(struct drv_vq *q, struct guest *g, uint16_t num);

/* Add a chain (not yet visible). Returns false when not enough descriptors
 * are free. */
bool drv_vq_add(struct drv_vq *q, const struct drv_buf *b, unsigned n, uint32_t token);

/* Publish added chains with one avail->idx store and kick if the device
 * asked (EVENT_IDX avail_event); returns true if it kicked. */
bool drv_vq_publish(struct drv_vq *q);

/* Reap the next used entry: 1 with *token and *len, 0 when none. */
int drv_vq_get(struct drv_vq *q, uint32_t *token, uint32_t *len);

/* Ask for an interrupt once `after` more used entries arrive (1: the next
 * one, as NAPI's enable_cb_prepare; more: as enable_cb_delayed). */
void drv_vq_enable_cb(struct drv_vq *q, uint16_t after);

#endif
