/* A simulated guest for unit tests of the device core.
 *
 * Memory: one or more guest-physical regions backed by one malloc'd buffer,
 * served through a struct cw_gmem in one of two flavours:
 *  - translating: like the persistent strategy, translate() returns pointers;
 *  - copying: like map-per-access, translate is absent and every access goes
 *    through read()/write(); every call is counted so tests can prove that a
 *    broken queue touches nothing more.
 * Driver: lays out a split virtqueue in that memory and plays the driver's
 * part: builds descriptor chains (direct, chained, indirect), publishes
 * available entries, reads used entries, sets used_event and flags. Also
 * lets tests write any hostile value anywhere. */
#ifndef CAUSEWAY_TESTS_SIM_GUEST_H
#define CAUSEWAY_TESTS_SIM_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/gmem.h"
#include "core/virtio_spec.h"

#define SIM_MAX_REGIONS 4

/* Default layout: two regions with a hole between them. */
#define SIM_R0_GPA 0x100000ull
#define SIM_R0_SIZE (4u << 20)
#define SIM_R1_GPA 0x1000000ull
#define SIM_R1_SIZE (1u << 20)

struct sim_region {
    uint64_t gpa;
    uint64_t size; /* gpa + size may be exactly 2^64 */
    uint8_t *host;
};

struct sim_guest {
    struct cw_gmem gmem;
    struct sim_region region[SIM_MAX_REGIONS];
    unsigned nregions;
    uint8_t *mem;
    size_t mem_size;
    bool translating;
    /* valid() checks only the first and last byte (a deliberately weak
     * strategy, to show the core does its own wrap-around check). */
    bool naive_valid;
    /* Access counters (every gmem call made by the core). */
    uint64_t n_valid, n_read, n_write, n_translate;
    /* Bump allocator for buffers, in region 0. */
    uint64_t alloc_next;
    /* Called after every successful gmem write by the core: lets a test act
     * as a driver running concurrently (e.g. add buffers right after the
     * device re-enabled notifications). */
    void (*write_hook)(struct sim_guest *g, uint64_t gpa, size_t len, void *arg);
    void *hook_arg;
};

struct sim_region_cfg {
    uint64_t gpa;
    uint64_t size;
};

/* Default two-region guest. */
struct sim_guest *sim_guest_new(bool translating);
/* Custom layout (sizes must be small: they are malloc'd). */
struct sim_guest *sim_guest_new_layout(bool translating, const struct sim_region_cfg *cfg,
                                       unsigned n);
void sim_guest_free(struct sim_guest *g);

/* Host view of a guest range (test-side access; fails the test if invalid). */
void *sim_host(struct sim_guest *g, uint64_t gpa, size_t len);
/* Allocate len bytes of zeroed guest memory in region 0. */
uint64_t sim_alloc(struct sim_guest *g, size_t len, size_t align);
/* Total gmem calls made so far. */
uint64_t sim_accesses(const struct sim_guest *g);

/* The driver side of one split virtqueue. */
struct sim_vring {
    struct sim_guest *g;
    uint16_t num;
    uint64_t desc, avail, used;
    uint16_t avail_idx; /* driver's next avail index */
    uint16_t used_seen; /* used entries the driver has consumed */
    uint16_t next_desc; /* next descriptor slot handed out (round robin) */
};

/* Lay out a queue of `num` entries in fresh guest memory (zeroed). */
void sim_vring_init(struct sim_vring *r, struct sim_guest *g, uint16_t num);

/* Raw access to driver-owned structures (hostile tests write anything). */
void sim_desc_write(struct sim_guest *g, uint64_t table, uint32_t i, uint64_t addr, uint32_t len,
                    uint16_t flags, uint16_t next);
void sim_avail_set_ring(struct sim_vring *r, uint16_t slot, uint16_t head);
void sim_avail_set_idx(struct sim_vring *r, uint16_t idx);
void sim_avail_set_flags(struct sim_vring *r, uint16_t flags);
void sim_set_used_event(struct sim_vring *r, uint16_t ev);
void sim_used_set_idx(struct sim_vring *r, uint16_t idx);

/* Publish `head` as the next available entry (ring entry, then idx). */
void sim_avail_push(struct sim_vring *r, uint16_t head);

/* Device-owned structures as the driver sees them. */
uint16_t sim_used_idx(struct sim_vring *r);
struct vring_used_elem sim_used_elem(struct sim_vring *r, uint16_t i);
uint16_t sim_used_flags(struct sim_vring *r);
uint16_t sim_avail_event(struct sim_vring *r);

/* The driver's kick test with EVENT_IDX (the spec's vring_need_event):
 * does publishing old_idx -> new_idx pass the device's event index? */
static inline bool sim_need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

/* One buffer of a chain to build. gpa 0: allocate it (filled in). */
struct sim_seg {
    uint32_t len;
    bool write;
    uint64_t gpa;
};

/* Build a chain of n descriptors in the queue's table (slots handed out
 * round robin) and return its head; not yet published. */
uint16_t sim_chain(struct sim_vring *r, struct sim_seg *segs, unsigned n);
/* Build an indirect table holding the n segments and one queue descriptor
 * pointing at it; returns the head; the table's gpa in *table if non-NULL. */
uint16_t sim_chain_indirect(struct sim_vring *r, struct sim_seg *segs, unsigned n,
                            uint64_t *table);

#endif
