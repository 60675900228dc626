/* Clocks for the engine benchmark: wall time, and this thread's CPU time
 * (user + system), so a run preempted by other work on a shared machine
 * still yields a per-core figure (frames per CPU-second). */
#ifndef CAUSEWAY_BENCH_CLOCK_H
#define CAUSEWAY_BENCH_CLOCK_H

#include <time.h>

static inline double clock_read(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline double wall_s(void) { return clock_read(CLOCK_MONOTONIC); }
static inline double cpu_s(void) { return clock_read(CLOCK_THREAD_CPUTIME_ID); }

#endif
