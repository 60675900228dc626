/* Scenario 2: the raw copy step alone, a byte-at-a-time loop (how the
 * seed's VMM copied packets before its "optimized copy") against memcpy, on
 * the frame sizes of scenario 1. Source and destination stay cache-hot: this
 * is the copy's own cost, not the memory system's. */
#ifndef CAUSEWAY_BENCH_COPY_BENCH_H
#define CAUSEWAY_BENCH_COPY_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct copy_result {
    double seconds;
    double cpu_seconds; /* this thread's CPU time in the same window */
    uint64_t copies;
    uint64_t bytes;
};

/* bytewise: the byte loop; else memcpy. Runs for `seconds`, or exactly
 * `count` copies when count != 0. 0, or -1 (out of memory, or a copy that
 * came out wrong) with a reason in err. */
int copy_bench_run(bool bytewise, uint32_t size, double seconds, uint64_t count,
                   struct copy_result *res, char *err, size_t errlen);

#endif
