/* Fast simulated guest for the device-engine benchmark (see guest_sim.h). */
#define _GNU_SOURCE
#include "guest_sim.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int guest_init(struct guest *g, uint64_t size, enum cw_gmem_strategy s, const char **why)
{
    memset(g, 0, sizeof(*g));
    g->memfd = -1;
    cw_guest_memory_init(&g->gm, s);
    g->memfd = memfd_create("engine-bench-guest", MFD_CLOEXEC);
    if (g->memfd < 0 || ftruncate(g->memfd, (off_t)size) < 0) {
        *why = "cannot create the guest memfd";
        goto fail;
    }
    void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
    if (p == MAP_FAILED) {
        *why = "cannot map the guest memfd";
        goto fail;
    }
    g->ram = p;
    g->size = size;
    /* Leave the first page unused: no structure at the region's first byte. */
    g->next = GUEST_GPA_BASE + 4096;

    /* The device gets its own fd, as over vhost-user SET_MEM_TABLE. */
    int dfd = dup(g->memfd);
    struct cw_region_desc d = {
        .gpa = GUEST_GPA_BASE, .size = size, .uva = 0x7f0000000000ull, .mmap_offset = 0,
    };
    if (dfd < 0 || cw_guest_memory_set(&g->gm, &d, &dfd, 1, why) < 0) {
        if (dfd < 0)
            *why = "cannot dup the guest memfd";
        goto fail;
    }
    return 0;
fail:
    guest_fini(g);
    return -1;
}

void guest_fini(struct guest *g)
{
    cw_guest_memory_clear(&g->gm);
    if (g->ram)
        munmap(g->ram, (size_t)g->size);
    if (g->memfd >= 0)
        close(g->memfd);
    g->ram = NULL;
    g->memfd = -1;
}

uint64_t guest_alloc(struct guest *g, uint64_t len, uint64_t align)
{
    uint64_t a = (g->next + align - 1) & ~(align - 1);
    if (a + len > GUEST_GPA_BASE + g->size)
        return 0;
    g->next = a + len;
    return a;
}

int drv_vq_init(struct drv_vq *q, struct guest *g, uint16_t num)
{
    memset(q, 0, sizeof(*q));
    if (num == 0 || num > DRV_MAX_NUM || (num & (num - 1)) != 0)
        return -1;
    q->g = g;
    q->num = num;
    q->desc_gpa = guest_alloc(g, vring_desc_size(num), 4096);
    q->avail_gpa = guest_alloc(g, vring_avail_size(num), 64);
    q->used_gpa = guest_alloc(g, vring_used_size(num), 4096);
    if (!q->desc_gpa || !q->avail_gpa || !q->used_gpa)
        return -1;
    q->desc = guest_ptr(g, q->desc_gpa);
    q->avail = guest_ptr(g, q->avail_gpa);
    q->used = guest_ptr(g, q->used_gpa);
    memset(q->desc, 0, vring_desc_size(num));
    memset(q->avail, 0, vring_avail_size(num));
    memset(q->used, 0, vring_used_size(num));
    for (uint16_t i = 0; i < num; i++)
        q->next[i] = (uint16_t)(i + 1);
    q->free_head = 0;
    q->num_free = num;
    return 0;
}

bool drv_vq_add(struct drv_vq *q, const struct drv_buf *b, unsigned n, uint32_t token)
{
    if (n == 0 || n > q->num_free)
        return false;
    uint16_t head = q->free_head, i = head;
    for (unsigned k = 0; k < n; k++) {
        struct vring_desc *d = &q->desc[i];
        d->addr = b[k].gpa;
        d->len = b[k].len;
        d->flags = (uint16_t)((b[k].write ? VRING_DESC_F_WRITE : 0) |
                              (k + 1 < n ? VRING_DESC_F_NEXT : 0));
        d->next = q->next[i];
        if (k + 1 < n)
            i = q->next[i];
    }
    q->free_head = q->next[i];
    q->num_free = (uint16_t)(q->num_free - n);
    q->chain_len[head] = (uint16_t)n;
    q->token[head] = token;
    q->avail->ring[q->avail_idx & (q->num - 1)] = head;
    q->avail_idx++;
    return true;
}

/* The spec's vring_need_event. */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

bool drv_vq_publish(struct drv_vq *q)
{
    uint16_t old = q->published, now = q->avail_idx;
    if (old == now)
        return false;
    /* Descriptors and ring entries before the index. */
    __atomic_store_n(&q->avail->idx, now, __ATOMIC_RELEASE);
    q->published = now;
    /* Index store before reading avail_event (store->load: full fence). */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t ev = __atomic_load_n((uint16_t *)(void *)&q->used->ring[q->num], __ATOMIC_RELAXED);
    if (need_event(ev, now, old)) {
        q->kicks++;
        return true;
    }
    return false;
}

int drv_vq_get(struct drv_vq *q, uint32_t *token, uint32_t *len)
{
    uint16_t idx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
    if (idx == q->used_seen)
        return 0;
    struct vring_used_elem e = q->used->ring[q->used_seen & (q->num - 1)];
    q->used_seen++;
    uint16_t head = (uint16_t)e.id;
    /* The device is trusted here: it is the code under test, and the unit
     * tests check it returns only what it popped. */
    uint16_t n = q->chain_len[head], tail = head;
    for (uint16_t k = 1; k < n; k++)
        tail = q->next[tail];
    q->next[tail] = q->free_head;
    q->free_head = head;
    q->num_free = (uint16_t)(q->num_free + n);
    *token = q->token[head];
    *len = e.len;
    return 1;
}

void drv_vq_enable_cb(struct drv_vq *q, uint16_t after)
{
    uint16_t *ev = &q->avail->ring[q->num];
    __atomic_store_n(ev, (uint16_t)(q->used_seen + after - 1u), __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
