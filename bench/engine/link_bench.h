/* Scenario 1: the host-side path of a link, in one thread.
 *
 *   guest A TX queue -> device A (cw_net_tx) -> port ring A->B (memfd)
 *     -> device B (cw_net_rx) -> guest B RX queue
 *
 * Real code under test: src/core/virtq.c, net.c, src/port/ring.c, port.c and
 * src/gmem/guest_memory.c in the chosen strategy. Simulated: the two guest
 * drivers (bench/engine/guest_sim.c), which post TX chains and refill RX
 * buffers as fast as the devices take them. */
#ifndef CAUSEWAY_BENCH_LINK_BENCH_H
#define CAUSEWAY_BENCH_LINK_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gmem/guest_memory.h"

struct link_cfg {
    enum cw_gmem_strategy strategy;
    uint32_t frame_len;     /* Ethernet frame bytes (no virtio header) */
    double seconds;         /* timed window, unless frames != 0 */
    uint64_t frames;        /* timed window of exactly this many frames */
    uint32_t port_capacity; /* bytes per port ring direction */
    uint16_t ring_size;     /* virtqueue size */
    uint32_t tx_pool_mib;   /* guest A's TX buffers: 0, as many as the ring holds
                             * (cache-resident); N: N MiB cycled in order, so
                             * the frames come from memory, not the caches */
};

struct link_result {
    double seconds;
    double cpu_seconds; /* this thread's CPU time in the same window */
    uint64_t frames;      /* delivered to guest B in the timed window */
    uint64_t bytes;       /* their Ethernet bytes */
    /* Whole run (warm-up, window and drain), per notification kind. */
    uint64_t total_frames;
    uint64_t kicks;       /* guest A TX + guest B RX kicks the devices asked for */
    uint64_t irqs;        /* interrupts injected (eventfd writes) */
    uint64_t port_signals;/* port eventfd writes */
    uint64_t gmem_maps;   /* mmap calls by map-per-access (both devices) */
    uint64_t verified;    /* frames compared byte for byte */
};

/* 0 on success; -1 with a reason in err (lost, corrupt or dropped frames,
 * a stalled path, a setup failure). */
int link_bench_run(const struct link_cfg *cfg, struct link_result *res, char *err, size_t errlen);

#endif
