/* Guest memory strategies over memfd-backed regions: access semantics for
 * both strategies, map counting for map-per-access, and every malformed
 * region table refused with its fds closed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "gmem/fault_guard.h"
#include "gmem/guest_memory.h"

#define PAGE 4096u

static int make_memfd(uint64_t size)
{
    int fd = memfd_create("cw-test-gmem", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    return fd;
}

/* Fill a file with a position-dependent pattern, so a read from the wrong
 * offset cannot pass by accident. */
static uint8_t pattern(uint64_t file_off)
{
    return (uint8_t)((file_off * 7u + (file_off >> 8) * 13u + 1u) & 0xff);
}

static void fill(int fd, uint64_t size)
{
    uint8_t buf[PAGE];
    for (uint64_t off = 0; off < size; off += sizeof(buf)) {
        size_t n = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern(off + i);
        assert_int_equal(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
    }
}

static bool fd_closed(int fd)
{
    errno = 0;
    return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

/* The standard table: region A at gpa 0 (64 KiB, offset 0), region B at gpa
 * 1 MiB (3 pages + 100 bytes, at an unaligned file offset). */
#define A_GPA 0x0ull
#define A_SIZE (16u * PAGE)
#define A_UVA 0x7f0000000000ull
#define B_GPA 0x100000ull
#define B_SIZE (3u * PAGE + 100u)
#define B_UVA 0x7f0000100000ull
#define B_OFF (PAGE + 123u)
#define B_FILE (B_OFF + B_SIZE + 50u)

struct fixture {
    struct cw_guest_memory m;
    int spy[2]; /* dups of the region fds, to look at the files directly */
};

static void setup_table(struct fixture *f, enum cw_gmem_strategy s)
{
    cw_guest_memory_init(&f->m, s);
    int fa = make_memfd(A_SIZE), fb = make_memfd(B_FILE);
    fill(fa, A_SIZE);
    fill(fb, B_FILE);
    f->spy[0] = dup(fa);
    f->spy[1] = dup(fb);
    struct cw_region_desc d[2] = {
        {.gpa = A_GPA, .size = A_SIZE, .uva = A_UVA, .mmap_offset = 0},
        {.gpa = B_GPA, .size = B_SIZE, .uva = B_UVA, .mmap_offset = B_OFF},
    };
    int fds[2] = {fa, fb};
    const char *why = NULL;
    assert_int_equal(cw_guest_memory_set(&f->m, d, fds, 2, &why), 0);
    assert_int_equal(f->m.n, 2);
}

static void teardown_table(struct fixture *f)
{
    int fa = f->m.r[0].fd, fb = f->m.r[1].fd;
    cw_guest_memory_clear(&f->m);
    assert_true(fd_closed(fa));
    assert_true(fd_closed(fb));
    assert_int_equal(f->m.n, 0);
    close(f->spy[0]);
    close(f->spy[1]);
}

static void check_bytes(const uint8_t *buf, size_t len, uint64_t file_off)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != pattern(file_off + i))
            fail_msg("byte %zu: got %u want %u", i, buf[i], pattern(file_off + i));
}

static void rw_semantics(enum cw_gmem_strategy s)
{
    struct fixture f;
    setup_table(&f, s);
    const struct cw_gmem *g = &f.m.gmem;
    static uint8_t buf[4 * PAGE];

    /* Multi-page, unaligned read in region B: offsets map through mmap_offset. */
    uint64_t gpa = B_GPA + 4000;
    assert_int_equal(cw_gmem_read(g, gpa, buf, 5000), 0);
    check_bytes(buf, 5000, B_OFF + 4000);

    /* Small read in region A, and the very last byte of each region. */
    assert_int_equal(cw_gmem_read(g, A_GPA + 17, buf, 3), 0);
    check_bytes(buf, 3, 17);
    assert_int_equal(cw_gmem_read(g, A_GPA + A_SIZE - 1, buf, 1), 0);
    check_bytes(buf, 1, A_SIZE - 1);
    assert_int_equal(cw_gmem_read(g, B_GPA + B_SIZE - 1, buf, 1), 0);
    check_bytes(buf, 1, B_OFF + B_SIZE - 1);
    /* A whole region at once. */
    assert_int_equal(cw_gmem_read(g, B_GPA, buf, B_SIZE), 0);
    check_bytes(buf, B_SIZE, B_OFF);

    /* Writes land at the right file offset, and nowhere else. */
    uint8_t w[6000];
    for (size_t i = 0; i < sizeof(w); i++)
        w[i] = (uint8_t)(0xa5 ^ i);
    assert_int_equal(cw_gmem_write(g, B_GPA + 3000, w, sizeof(w)), 0);
    uint8_t back[6002];
    assert_int_equal(pread(f.spy[1], back, sizeof(back), B_OFF + 3000 - 1), (ssize_t)sizeof(back));
    assert_int_equal(back[0], pattern(B_OFF + 3000 - 1));
    assert_memory_equal(back + 1, w, sizeof(w));
    assert_int_equal(back[sizeof(back) - 1], pattern(B_OFF + 3000 + sizeof(w)));
    /* ... and read back through the strategy. */
    memset(buf, 0, sizeof(buf));
    assert_int_equal(cw_gmem_read(g, B_GPA + 3000, buf, sizeof(w)), 0);
    assert_memory_equal(buf, w, sizeof(w));

    /* Out of bounds: every case fails, copies nothing, counts a fault. */
    struct {
        uint64_t gpa;
        size_t len;
    } bad[] = {
        {A_GPA + A_SIZE, 1},          /* first byte after A (gap) */
        {A_GPA + A_SIZE - 1, 2},      /* straddles A's end */
        {B_GPA - 1, 2},               /* straddles B's start */
        {B_GPA + B_SIZE - 4, 8},      /* straddles B's end */
        {B_GPA, B_SIZE + 1},          /* one byte longer than B */
        {0x80000, 16},                /* between the regions */
        {UINT64_MAX - 3, 8},          /* wraps the address space */
        {B_GPA + 8, SIZE_MAX},        /* length wraps */
        {1ull << 40, 4},              /* far away */
    };
    uint64_t faults = f.m.faults;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(buf, 0x5c, 16);
        assert_int_equal(cw_gmem_valid(g, bad[i].gpa, bad[i].len), 0);
        assert_int_equal(cw_gmem_read(g, bad[i].gpa, buf, bad[i].len), -1);
        for (int k = 0; k < 16; k++)
            assert_int_equal(buf[k], 0x5c);
        assert_int_equal(cw_gmem_write(g, bad[i].gpa, w, bad[i].len), -1);
        assert_null(cw_gmem_translate(g, bad[i].gpa, bad[i].len));
    }
    assert_true(f.m.faults >= faults + 2 * (sizeof(bad) / sizeof(bad[0])));
    /* Nothing outside B was touched by the refused writes. */
    assert_int_equal(pread(f.spy[1], back, 1, B_OFF - 1), 1);
    assert_int_equal(back[0], pattern(B_OFF - 1));

    assert_int_not_equal(cw_gmem_valid(g, A_GPA, A_SIZE), 0);
    assert_int_not_equal(cw_gmem_valid(g, B_GPA + 1, B_SIZE - 1), 0);
    teardown_table(&f);
}

static void test_rw_persistent(void **state)
{
    (void)state;
    rw_semantics(CW_GMEM_PERSISTENT);
}

static void test_rw_map_per_access(void **state)
{
    (void)state;
    rw_semantics(CW_GMEM_MAP_PER_ACCESS);
}

static void test_translate_persistent(void **state)
{
    (void)state;
    struct fixture f;
    setup_table(&f, CW_GMEM_PERSISTENT);
    const struct cw_gmem *g = &f.m.gmem;
    uint8_t *p = cw_gmem_translate(g, B_GPA + 10, 2 * PAGE);
    assert_non_null(p);
    check_bytes(p, 2 * PAGE, B_OFF + 10);
    /* The pointer is the mapping: a store through it reaches the file. */
    p[0] = 0xee;
    uint8_t b;
    assert_int_equal(pread(f.spy[1], &b, 1, B_OFF + 10), 1);
    assert_int_equal(b, 0xee);
    /* Same pointer arithmetic as the region: contiguous through the region. */
    assert_ptr_equal(cw_gmem_translate(g, B_GPA + 11, 1), p + 1);
    assert_null(cw_gmem_translate(g, B_GPA + B_SIZE - 1, 2));
    assert_int_equal(f.m.maps, 0);
    teardown_table(&f);
}

static void test_map_per_access_counts(void **state)
{
    (void)state;
    struct fixture f;
    setup_table(&f, CW_GMEM_MAP_PER_ACCESS);
    const struct cw_gmem *g = &f.m.gmem;
    uint8_t buf[64];
    assert_int_equal(f.m.maps, 0);
    assert_null(cw_gmem_translate(g, A_GPA, 16));
    assert_null(f.m.gmem.ops->translate(f.m.gmem.ctx, A_GPA, 16));
    assert_int_equal(cw_gmem_read(g, A_GPA + 5, buf, sizeof(buf)), 0);
    assert_int_equal(f.m.maps, 1);
    assert_int_equal(f.m.unmaps, 1);
    assert_int_equal(cw_gmem_write(g, B_GPA + PAGE - 10, buf, sizeof(buf)), 0);
    assert_int_equal(f.m.maps, 2);
    assert_int_equal(f.m.unmaps, 2);
    /* A refused access maps nothing. */
    assert_int_equal(cw_gmem_read(g, A_GPA + A_SIZE, buf, 1), -1);
    assert_int_equal(f.m.maps, 2);
    /* Zero-length accesses inside a region succeed without a mapping. */
    assert_int_equal(cw_gmem_read(g, A_GPA, buf, 0), 0);
    assert_int_equal(f.m.maps, 2);
    /* valid() never maps. */
    assert_int_not_equal(cw_gmem_valid(g, A_GPA, 8), 0);
    assert_int_equal(f.m.maps, 2);
    teardown_table(&f);
}

static void test_uva_to_gpa(void **state)
{
    (void)state;
    struct fixture f;
    setup_table(&f, CW_GMEM_PERSISTENT);
    uint64_t gpa = 0;
    assert_int_equal(cw_guest_memory_uva_to_gpa(&f.m, A_UVA + 0x1234, 16, &gpa), 0);
    assert_int_equal(gpa, A_GPA + 0x1234);
    assert_int_equal(cw_guest_memory_uva_to_gpa(&f.m, B_UVA, B_SIZE, &gpa), 0);
    assert_int_equal(gpa, B_GPA);
    assert_int_equal(cw_guest_memory_uva_to_gpa(&f.m, B_UVA + B_SIZE - 2, 2, &gpa), 0);
    assert_int_equal(gpa, B_GPA + B_SIZE - 2);
    gpa = 77;
    assert_int_equal(cw_guest_memory_uva_to_gpa(&f.m, B_UVA + B_SIZE - 2, 3, &gpa), -1);
    assert_int_equal(cw_guest_memory_uva_to_gpa(&f.m, A_UVA - 1, 2, &gpa), -1);
    assert_int_equal(cw_guest_memory_uva_to_gpa(&f.m, A_UVA + A_SIZE, 1, &gpa), -1);
    assert_int_equal(cw_guest_memory_uva_to_gpa(&f.m, UINT64_MAX, 2, &gpa), -1);
    assert_int_equal(cw_guest_memory_uva_to_gpa(&f.m, A_UVA, UINT64_MAX, &gpa), -1);
    /* A guest-physical address is not a frontend address. */
    assert_int_equal(cw_guest_memory_uva_to_gpa(&f.m, B_GPA, 1, &gpa), -1);
    assert_int_equal(gpa, 77);
    teardown_table(&f);
}

static void test_adjacent_regions(void **state)
{
    (void)state;
    struct cw_guest_memory m;
    cw_guest_memory_init(&m, CW_GMEM_PERSISTENT);
    int fds[2] = {make_memfd(PAGE), make_memfd(PAGE)};
    fill(fds[0], PAGE);
    fill(fds[1], PAGE);
    struct cw_region_desc d[2] = {
        {.gpa = 0, .size = PAGE, .uva = 0x10000, .mmap_offset = 0},
        {.gpa = PAGE, .size = PAGE, .uva = 0x10000 + PAGE, .mmap_offset = 0},
    };
    assert_int_equal(cw_guest_memory_set(&m, d, fds, 2, NULL), 0);
    uint8_t b[2];
    assert_int_equal(cw_gmem_read(&m.gmem, PAGE - 1, b, 1), 0);
    assert_int_equal(cw_gmem_read(&m.gmem, PAGE, b, 1), 0);
    /* Touching regions are still two regions: no access may span them. */
    assert_int_equal(cw_gmem_read(&m.gmem, PAGE - 1, b, 2), -1);
    cw_guest_memory_clear(&m);
    assert_true(fd_closed(fds[0]) && fd_closed(fds[1]));
}

/* --- malformed tables --- */

struct bad_case {
    const char *name; /* also a word the refusal's reason must contain */
    unsigned n;
    struct cw_region_desc d[CW_GMEM_MAX_REGIONS + 1];
    uint64_t file_size[CW_GMEM_MAX_REGIONS + 1];
};

static void expect_refused(enum cw_gmem_strategy s, const struct bad_case *c)
{
    struct fixture f;
    /* A working table first: a refused replacement must leave memory empty. */
    setup_table(&f, s);
    int old[2] = {f.m.r[0].fd, f.m.r[1].fd};
    int fds[CW_GMEM_MAX_REGIONS + 1];
    for (unsigned i = 0; i < c->n; i++)
        fds[i] = make_memfd(c->file_size[i] ? c->file_size[i] : PAGE);
    const char *why = NULL;
    if (cw_guest_memory_set(&f.m, c->d, fds, c->n, &why) != -1)
        fail_msg("%s: table accepted", c->name);
    assert_non_null(why);
    if (!strstr(why, c->name))
        fail_msg("refused for '%s', expected a reason about '%s'", why, c->name);
    for (unsigned i = 0; i < c->n; i++)
        if (!fd_closed(fds[i]))
            fail_msg("%s: fd %u left open", c->name, i);
    assert_true(fd_closed(old[0]) && fd_closed(old[1]));
    assert_int_equal(f.m.n, 0);
    uint8_t b;
    assert_int_equal(cw_gmem_read(&f.m.gmem, A_GPA, &b, 1), -1);
    uint64_t gpa;
    assert_int_equal(cw_guest_memory_uva_to_gpa(&f.m, A_UVA, 1, &gpa), -1);
    close(f.spy[0]);
    close(f.spy[1]);
}

static const struct bad_case bad_cases[] = {
    {"overlap in guest-physical", 2,
     {{.gpa = 0, .size = 2 * PAGE, .uva = 0x100000}, {.gpa = PAGE, .size = PAGE, .uva = 0x200000}},
     {2 * PAGE, PAGE}},
    {"overlap in guest-physical", 2,
     {{.gpa = 0, .size = 4 * PAGE, .uva = 0x100000}, {.gpa = PAGE, .size = PAGE, .uva = 0x200000}},
     {4 * PAGE, PAGE}},
    {"overlap in frontend", 2,
     {{.gpa = 0, .size = 2 * PAGE, .uva = 0x100000}, {.gpa = 8 * PAGE, .size = PAGE, .uva = 0x101000}},
     {2 * PAGE, PAGE}},
    {"empty", 1, {{.gpa = 0, .size = 0, .uva = 0x100000}}, {PAGE}},
    {"empty", 2,
     {{.gpa = 0, .size = PAGE, .uva = 0x100000}, {.gpa = 8 * PAGE, .size = 0, .uva = 0x900000}},
     {PAGE, PAGE}},
    {"wraps guest-physical", 1, {{.gpa = UINT64_MAX - PAGE + 1, .size = PAGE, .uva = 0x100000}}, {PAGE}},
    {"wraps guest-physical", 1, {{.gpa = UINT64_MAX - 10, .size = PAGE, .uva = 0x100000}}, {PAGE}},
    {"wraps frontend", 1, {{.gpa = 0, .size = PAGE, .uva = UINT64_MAX - 100}}, {PAGE}},
    {"wraps its file offset", 1,
     {{.gpa = 0, .size = PAGE, .uva = 0x100000, .mmap_offset = UINT64_MAX - 100}}, {PAGE}},
    {"wraps its file offset", 1,
     {{.gpa = 0, .size = PAGE, .uva = 0x100000, .mmap_offset = (uint64_t)INT64_MAX}}, {PAGE}},
    {"smaller than the region", 1, {{.gpa = 0, .size = 2 * PAGE, .uva = 0x100000}}, {PAGE}},
    {"smaller than the region", 1,
     {{.gpa = 0, .size = PAGE, .uva = 0x100000, .mmap_offset = 1}}, {PAGE}},
    {"too many", CW_GMEM_MAX_REGIONS + 1,
     {{.gpa = 0 * PAGE, .size = PAGE, .uva = 0x100000},
      {.gpa = 1 * PAGE, .size = PAGE, .uva = 0x200000},
      {.gpa = 2 * PAGE, .size = PAGE, .uva = 0x300000},
      {.gpa = 3 * PAGE, .size = PAGE, .uva = 0x400000},
      {.gpa = 4 * PAGE, .size = PAGE, .uva = 0x500000},
      {.gpa = 5 * PAGE, .size = PAGE, .uva = 0x600000},
      {.gpa = 6 * PAGE, .size = PAGE, .uva = 0x700000},
      {.gpa = 7 * PAGE, .size = PAGE, .uva = 0x800000},
      {.gpa = 8 * PAGE, .size = PAGE, .uva = 0x900000}},
     {0}},
};

static void bad_tables(enum cw_gmem_strategy s)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
        expect_refused(s, &bad_cases[i]);
}

static void test_bad_tables_persistent(void **state)
{
    (void)state;
    bad_tables(CW_GMEM_PERSISTENT);
}

static void test_bad_tables_map_per_access(void **state)
{
    (void)state;
    bad_tables(CW_GMEM_MAP_PER_ACCESS);
}

static void test_bad_fds(void **state)
{
    (void)state;
    struct cw_guest_memory m;
    cw_guest_memory_init(&m, CW_GMEM_PERSISTENT);
    struct cw_region_desc d[2] = {
        {.gpa = 0, .size = PAGE, .uva = 0x100000},
        {.gpa = PAGE, .size = PAGE, .uva = 0x200000},
    };
    /* An invalid fd among valid ones: the valid one is still closed. */
    int fds[2] = {make_memfd(PAGE), -1};
    const char *why = NULL;
    assert_int_equal(cw_guest_memory_set(&m, d, fds, 2, &why), -1);
    assert_true(fd_closed(fds[0]));
    /* The same fd for two regions: closed once, refused. */
    int fd = make_memfd(2 * PAGE);
    int same[2] = {fd, fd};
    assert_int_equal(cw_guest_memory_set(&m, d, same, 2, &why), -1);
    assert_true(fd_closed(fd));
    /* A pipe is not memory: too small (size 0) to hold a region. */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(cw_guest_memory_set(&m, d, p, 2, &why), -1);
    assert_true(fd_closed(p[0]) && fd_closed(p[1]));
    assert_int_equal(m.n, 0);
}

static void test_empty_table(void **state)
{
    (void)state;
    struct cw_guest_memory m;
    cw_guest_memory_init(&m, CW_GMEM_PERSISTENT);
    assert_int_equal(cw_guest_memory_set(&m, NULL, NULL, 0, NULL), 0);
    uint8_t b;
    assert_int_equal(cw_gmem_read(&m.gmem, 0, &b, 1), -1);
    assert_int_equal(cw_gmem_valid(&m.gmem, 0, 0), 0);
}

static void test_replace_table(void **state)
{
    (void)state;
    struct fixture f;
    setup_table(&f, CW_GMEM_PERSISTENT);
    int old = f.m.r[0].fd;
    int fd = make_memfd(PAGE);
    fill(fd, PAGE);
    struct cw_region_desc d = {.gpa = 0x200000, .size = PAGE, .uva = 0x5000, .mmap_offset = 0};
    assert_int_equal(cw_guest_memory_set(&f.m, &d, &fd, 1, NULL), 0);
    assert_true(fd_closed(old));
    uint8_t b;
    assert_int_equal(cw_gmem_read(&f.m.gmem, A_GPA, &b, 1), -1);
    assert_int_equal(cw_gmem_read(&f.m.gmem, 0x200000 + 9, &b, 1), 0);
    assert_int_equal(b, pattern(9));
    cw_guest_memory_clear(&f.m);
    assert_true(fd_closed(fd));
    close(f.spy[0]);
    close(f.spy[1]);
}

static void test_strategy_names(void **state)
{
    (void)state;
    enum cw_gmem_strategy s = CW_GMEM_MAP_PER_ACCESS;
    assert_int_equal(cw_gmem_strategy_parse("persistent", &s), 0);
    assert_int_equal(s, CW_GMEM_PERSISTENT);
    assert_int_equal(cw_gmem_strategy_parse("map-per-access", &s), 0);
    assert_int_equal(s, CW_GMEM_MAP_PER_ACCESS);
    assert_int_equal(cw_gmem_strategy_parse("Persistent", &s), -1);
    assert_int_equal(cw_gmem_strategy_parse("", &s), -1);
    assert_int_equal(cw_gmem_strategy_parse(NULL, &s), -1);
    assert_int_equal(s, CW_GMEM_MAP_PER_ACCESS);
    assert_string_equal(cw_gmem_strategy_name(CW_GMEM_PERSISTENT), "persistent");
    assert_string_equal(cw_gmem_strategy_name(CW_GMEM_MAP_PER_ACCESS), "map-per-access");
}

/* A frontend truncates a region after the table was accepted: the access
 * must not kill the process; it completes on a zero page and trips the guard
 * (the device then drops the frontend). */
static void shrink_under_device(enum cw_gmem_strategy s)
{
    cw_fault_guard_install();
    (void)cw_fault_guard_take_tripped();
    struct cw_guest_memory m;
    cw_guest_memory_init(&m, s);
    int fd = make_memfd(4 * PAGE);
    fill(fd, 4 * PAGE);
    int keep = dup(fd);
    struct cw_region_desc d = {.gpa = 0, .size = 4 * PAGE, .uva = 0x10000, .mmap_offset = 0};
    const char *why = NULL;
    assert_int_equal(cw_guest_memory_set(&m, &d, &fd, 1, &why), 0);
    uint8_t buf[64];
    assert_int_equal(cw_gmem_read(&m.gmem, 2 * PAGE, buf, sizeof(buf)), 0);
    assert_int_equal(buf[0], pattern(2 * PAGE));
    assert_false(cw_fault_guard_take_tripped());
    assert_int_equal(ftruncate(keep, PAGE), 0); /* the frontend shrinks it */
    int rc = cw_gmem_read(&m.gmem, 2 * PAGE, buf, sizeof(buf));
    if (s == CW_GMEM_PERSISTENT) {
        assert_int_equal(rc, 0);
        assert_int_equal(buf[0], 0); /* the vanished page reads as zeros */
        assert_true(cw_fault_guard_take_tripped());
    } else {
        /* A fresh mapping past the end may fail outright or fault: either
         * way the process survives and the data is not the old contents. */
        assert_true(rc != 0 || buf[0] == 0);
    }
    uint8_t zero[64] = {0};
    (void)cw_gmem_write(&m.gmem, 3 * PAGE, zero, sizeof(zero));
    cw_guest_memory_clear(&m);
    close(keep);
}

static void test_shrink_persistent(void **state)
{
    (void)state;
    shrink_under_device(CW_GMEM_PERSISTENT);
}

static void test_shrink_map_per_access(void **state)
{
    (void)state;
    shrink_under_device(CW_GMEM_MAP_PER_ACCESS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rw_persistent),
        cmocka_unit_test(test_rw_map_per_access),
        cmocka_unit_test(test_translate_persistent),
        cmocka_unit_test(test_map_per_access_counts),
        cmocka_unit_test(test_uva_to_gpa),
        cmocka_unit_test(test_adjacent_regions),
        cmocka_unit_test(test_bad_tables_persistent),
        cmocka_unit_test(test_bad_tables_map_per_access),
        cmocka_unit_test(test_bad_fds),
        cmocka_unit_test(test_empty_table),
        cmocka_unit_test(test_replace_table),
        cmocka_unit_test(test_strategy_names),
        cmocka_unit_test(test_shrink_persistent),
        cmocka_unit_test(test_shrink_map_per_access),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
