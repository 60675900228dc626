/* Scenario 2: byte loop against memcpy (see copy_bench.h). */
#include "copy_bench.h"
#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One byte per iteration, as written. The empty asm hides the index from
 * the optimiser, which would otherwise turn the loop into a vectorised copy
 * or a memcpy call (GCC does both at -O2) and measure memcpy twice. */
__attribute__((noinline)) static void copy_bytes(uint8_t *d, const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        __asm__("" : "+r"(i));
        d[i] = s[i];
    }
}

__attribute__((noinline)) static void copy_memcpy(uint8_t *d, const uint8_t *s, size_t n)
{
    memcpy(d, s, n);
}

int copy_bench_run(bool bytewise, uint32_t size, double seconds, uint64_t count,
                   struct copy_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof(*res));
    uint8_t *src = aligned_alloc(64, ((size_t)size + 63) & ~(size_t)63);
    uint8_t *dst = aligned_alloc(64, ((size_t)size + 63) & ~(size_t)63);
    if (!src || !dst) {
        free(src);
        free(dst);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < size; i++)
        src[i] = (uint8_t)(i * 7u + 1u);
    memset(dst, 0, size);
    void (*fn)(uint8_t *, const uint8_t *, size_t) = bytewise ? copy_bytes : copy_memcpy;

    /* Look at the clock about every MiB copied, not per copy. */
    uint64_t batch = (1u << 20) / size + 1;
    for (uint64_t i = 0; i < batch; i++) /* warm-up */
        fn(dst, src, size);
    double t0 = wall_s(), c0 = cpu_s(), t1;
    uint64_t n = 0;
    for (;;) {
        uint64_t k = count ? (count - n < batch ? count - n : batch) : batch;
        for (uint64_t i = 0; i < k; i++)
            fn(dst, src, size);
        n += k;
        t1 = wall_s();
        if (count ? n >= count : t1 - t0 >= seconds)
            break;
    }
    int rc = 0;
    if (memcmp(dst, src, size) != 0) {
        snprintf(err, errlen, "copy came out wrong");
        rc = -1;
    }
    res->seconds = t1 - t0;
    res->cpu_seconds = cpu_s() - c0;
    res->copies = n;
    res->bytes = n * size;
    free(src);
    free(dst);
    return rc;
}
