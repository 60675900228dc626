/* line_latency CPU_A CPU_B: the one-way time of a cache line between two
 * CPUs, from a ping-pong of two pinned threads on one line.
 *
 * Why the benchmark wants it: on this host the two CPUs are sometimes cores
 * that share a cache and sometimes not (the hypervisor moves the guest's
 * vCPUs), and a line between them then takes ~50 or ~230 ns. A middle that
 * waits on the driver's lines moves twice as much in the first case, so each
 * DPDK cell records the time before and after its window. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ROUND_TRIPS 200000u

static _Alignas(64) _Atomic uint64_t line;

static int pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof(s), &s);
}

static int cpu_b;

static void *peer(void *arg)
{
    (void)arg;
    pin(cpu_b); /* checked by main already */
    for (uint64_t i = 1; i < 2u * ROUND_TRIPS; i += 2) {
        while (atomic_load_explicit(&line, memory_order_acquire) != i)
            ;
        atomic_store_explicit(&line, i + 1, memory_order_release);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: line_latency CPU_A CPU_B\n");
        return 2;
    }
    int cpu_a = atoi(argv[1]);
    cpu_b = atoi(argv[2]);
    /* Both CPUs checked here, before any thread waits on the other. */
    if (pin(cpu_b) != 0 || pin(cpu_a) != 0) {
        fprintf(stderr, "line_latency: cannot run on CPUs %d and %d\n", cpu_a, cpu_b);
        return 1;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, peer, NULL) != 0) {
        fprintf(stderr, "line_latency: cannot start the second thread\n");
        return 1;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (uint64_t i = 0; i < 2u * ROUND_TRIPS; i += 2) {
        while (atomic_load_explicit(&line, memory_order_acquire) != i)
            ;
        atomic_store_explicit(&line, i + 1, memory_order_release);
    }
    while (atomic_load_explicit(&line, memory_order_acquire) != 2u * ROUND_TRIPS)
        ;
    clock_gettime(CLOCK_MONOTONIC, &b);
    pthread_join(t, NULL);
    double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    printf("line_ns=%.1f\n", ns / (2.0 * ROUND_TRIPS));
    return 0;
}
