/* Shared helpers of the fuzz targets.
 *
 * Each target defines LLVMFuzzerTestOneInput. Built with clang and
 * -fsanitize=fuzzer it is a libFuzzer binary (tests/fuzz/run.sh); built with
 * the project's compiler and replay_main.c it replays a corpus (the
 * fuzz-replay-* meson tests), so every committed corpus file runs on every
 * build, under the sanitizers when the build has them.
 *
 * The input is consumed front to back through struct fuzz_in; running out
 * yields zeros, so every input, however short, is a complete scenario. */
#ifndef CAUSEWAY_TESTS_FUZZ_H
#define CAUSEWAY_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A property the code under test must keep was broken: report and abort, so
 * libFuzzer saves the input and the replay test fails. */
#define FUZZ_CHECK(cond)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

struct fuzz_in {
    const uint8_t *p;
    size_t left;
};

static inline void fuzz_in_init(struct fuzz_in *in, const uint8_t *data, size_t size)
{
    in->p = data;
    in->left = size;
}

/* Copy n bytes into dst; bytes past the end of the input are zero. */
static inline void fuzz_bytes(struct fuzz_in *in, void *dst, size_t n)
{
    size_t k = n < in->left ? n : in->left;
    if (k)
        memcpy(dst, in->p, k);
    if (n > k)
        memset((uint8_t *)dst + k, 0, n - k);
    in->p += k;
    in->left -= k;
}

/* Take up to n bytes in place (no copy); *got says how many. */
static inline const uint8_t *fuzz_take(struct fuzz_in *in, size_t n, size_t *got)
{
    size_t k = n < in->left ? n : in->left;
    const uint8_t *p = in->p;
    in->p += k;
    in->left -= k;
    *got = k;
    return p;
}

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
    uint8_t v;
    fuzz_bytes(in, &v, 1);
    return v;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
    uint16_t v;
    fuzz_bytes(in, &v, 2);
    return v;
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
    uint32_t v;
    fuzz_bytes(in, &v, 4);
    return v;
}

static inline uint64_t fuzz_u64(struct fuzz_in *in)
{
    uint64_t v;
    fuzz_bytes(in, &v, 8);
    return v;
}

static inline int fuzz_empty(const struct fuzz_in *in)
{
    return in->left == 0;
}

#endif
