/* engine_bench: the device engine alone, no VM, no QEMU.
 *
 * Scenario "link": guest A TX -> device A -> port -> device B -> guest B RX
 * in one thread, per gmem strategy and frame size (see link_bench.h).
 * Scenario "copy": a byte loop against memcpy (see copy_bench.h).
 *
 * Every measurement runs --runs times (default 3) and the median is
 * reported. Output: a table for people, and one line per measurement for
 * bench/run.sh:
 *   RESULT engine link <strategy> <frame bytes> fps=<frames/s> gbps=<Gbit/s> key=value...
 *   RESULT engine link ratio <frame bytes> persistent_over_map_per_access=<x>
 *   RESULT engine copy <bytewise|memcpy> <bytes> fps=<copies/s> gbps=<Gbit/s> ...
 *   RESULT engine copy ratio <bytes> memcpy_over_bytewise=<x>
 * Gbit/s counts Ethernet frame bytes (no virtio header) times 8. Frame
 * contents are fixed (no random input): runs are repeatable. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copy_bench.h"
#include "link_bench.h"
#include "port/port.h"

#define MAX_RUNS 15
#define MAX_SIZES 8

static const uint32_t default_sizes[] = {64, 1500, 9000, 65536};

struct opts {
    double seconds;
    uint64_t frames;
    unsigned runs;
    bool link, copy;
    bool strat[2]; /* [CW_GMEM_PERSISTENT], [CW_GMEM_MAP_PER_ACCESS] */
    uint32_t sizes[MAX_SIZES];
    unsigned nsizes;
    uint32_t port_capacity;
    uint16_t ring_size;
    uint32_t tx_pool_mib;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: engine_bench [--quick] [--seconds S] [--frames N] [--runs N]\n"
            "                    [--scenario link|copy|all] [--strategy persistent|map-per-access|all]\n"
            "                    [--size BYTES]... [--port-capacity BYTES] [--ring-size N]\n"
            "                    [--tx-pool-mib N]\n"
            "  --quick        0.1 s per run instead of 0.5 s\n"
            "  --frames N     each run moves exactly N frames (copies) instead of timing:\n"
            "                 for profiling (valgrind --tool=callgrind)\n"
            "  --size         frame size in bytes (Ethernet, no virtio header); repeatable;\n"
            "                 default 64 1500 9000 65536\n"
            "  --tx-pool-mib  guest A sends from N MiB of buffers cycled in order (larger than\n"
            "                 the caches: frames come from memory); reported as link-coldpool\n");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return false;
    *out = v;
    return true;
}

static int parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){
        .seconds = 0.5, .runs = 3, .link = true, .copy = true, .strat = {true, true},
        .port_capacity = CW_PORT_DEFAULT_CAPACITY, .ring_size = 1024,
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        if (!strcmp(a, "--quick")) {
            o->seconds = 0.1;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!v) {
            goto bad;
        } else if (!strcmp(a, "--seconds")) {
            o->seconds = strtod(v, NULL);
            if (!(o->seconds > 0 && o->seconds <= 60))
                goto bad;
            i++;
        } else if (!strcmp(a, "--frames")) {
            if (!parse_u64(v, &o->frames) || o->frames == 0)
                goto bad;
            i++;
        } else if (!strcmp(a, "--runs")) {
            if (!parse_u64(v, &n) || n == 0 || n > MAX_RUNS)
                goto bad;
            o->runs = (unsigned)n;
            i++;
        } else if (!strcmp(a, "--scenario")) {
            o->link = !strcmp(v, "link") || !strcmp(v, "all");
            o->copy = !strcmp(v, "copy") || !strcmp(v, "all");
            if (!o->link && !o->copy)
                goto bad;
            i++;
        } else if (!strcmp(a, "--strategy")) {
            enum cw_gmem_strategy s;
            if (!strcmp(v, "all")) {
                o->strat[0] = o->strat[1] = true;
            } else if (cw_gmem_strategy_parse(v, &s) == 0) {
                o->strat[0] = o->strat[1] = false;
                o->strat[s] = true;
            } else {
                goto bad;
            }
            i++;
        } else if (!strcmp(a, "--size")) {
            if (!parse_u64(v, &n) || n < 64 || n > 65549 || o->nsizes == MAX_SIZES)
                goto bad;
            o->sizes[o->nsizes++] = (uint32_t)n;
            i++;
        } else if (!strcmp(a, "--port-capacity")) {
            if (!parse_u64(v, &n) || n > UINT32_MAX || !cw_port_capacity_valid((uint32_t)n))
                goto bad;
            o->port_capacity = (uint32_t)n;
            i++;
        } else if (!strcmp(a, "--tx-pool-mib")) {
            if (!parse_u64(v, &n) || n > 1024)
                goto bad;
            o->tx_pool_mib = (uint32_t)n;
            i++;
        } else if (!strcmp(a, "--ring-size")) {
            if (!parse_u64(v, &n) || n < 64 || n > 1024 || (n & (n - 1)))
                goto bad;
            o->ring_size = (uint16_t)n;
            i++;
        } else {
            goto bad;
        }
    }
    if (o->nsizes == 0) {
        memcpy(o->sizes, default_sizes, sizeof(default_sizes));
        o->nsizes = sizeof(default_sizes) / sizeof(default_sizes[0]);
    }
    return 0;
bad:
    usage(stderr);
    return -1;
}

struct row {
    double fps, gbps, min_fps, max_fps; /* wall clock */
    double cpu_fps, cpu_gbps;           /* per CPU-second of this thread */
    double cpu_share;                   /* CPU time / wall time, median */
    bool done;
};

/* Medians of per-run figures into *row; fps[] and cpu_fps[] are sorted. */
static void summarise(struct row *row, double *fps, double *cpu_fps, double *share, unsigned runs,
                      uint32_t size)
{
    row->min_fps = row->max_fps = fps[0];
    for (unsigned r = 1; r < runs; r++) {
        row->min_fps = fps[r] < row->min_fps ? fps[r] : row->min_fps;
        row->max_fps = fps[r] > row->max_fps ? fps[r] : row->max_fps;
    }
    row->fps = median(fps, runs);
    row->gbps = row->fps * size * 8 / 1e9;
    row->cpu_fps = median(cpu_fps, runs);
    row->cpu_gbps = row->cpu_fps * size * 8 / 1e9;
    row->cpu_share = median(share, runs);
    row->done = true;
}

static void size_label(uint32_t s, char *buf, size_t n)
{
    if (s % 1024 == 0 && s >= 1024)
        snprintf(buf, n, "%u KiB", s / 1024);
    else
        snprintf(buf, n, "%u B", s);
}

/* A cold buffer pool is a different measurement: its own name, so a parser
 * never mixes it up with the default one. */
static const char *scenario(const struct opts *o)
{
    return o->tx_pool_mib ? "link-coldpool" : "link";
}

static int bench_link(const struct opts *o, enum cw_gmem_strategy s, uint32_t size, struct row *row)
{
    double fps[MAX_RUNS], cpu_fps[MAX_RUNS], share[MAX_RUNS];
    struct link_result sum = {0};
    for (unsigned r = 0; r < o->runs; r++) {
        struct link_cfg cfg = {
            .strategy = s, .frame_len = size, .seconds = o->seconds, .frames = o->frames,
            .port_capacity = o->port_capacity, .ring_size = o->ring_size,
            .tx_pool_mib = o->tx_pool_mib,
        };
        struct link_result res;
        char err[160];
        if (link_bench_run(&cfg, &res, err, sizeof(err)) < 0) {
            fprintf(stderr, "engine_bench: link %s %u: %s\n", cw_gmem_strategy_name(s), size, err);
            return -1;
        }
        fps[r] = res.frames / res.seconds;
        cpu_fps[r] = res.frames / res.cpu_seconds;
        share[r] = res.cpu_seconds / res.seconds;
        sum.total_frames += res.total_frames;
        sum.kicks += res.kicks;
        sum.irqs += res.irqs;
        sum.port_signals += res.port_signals;
        sum.gmem_maps += res.gmem_maps;
        sum.verified += res.verified;
    }
    summarise(row, fps, cpu_fps, share, o->runs, size);
    double kf = (double)sum.total_frames / 1000.0;
    printf("RESULT engine %s %s %u fps=%.0f gbps=%.3f runs=%u min_fps=%.0f max_fps=%.0f "
           "cpu_fps=%.0f cpu_gbps=%.3f cpu_share=%.2f kicks_per_kframe=%.2f irqs_per_kframe=%.2f port_signals_per_kframe=%.2f "
           "gmem_maps_per_frame=%.2f verified_frames=%llu total_frames=%llu\n",
           scenario(o), cw_gmem_strategy_name(s), size, row->fps, row->gbps, o->runs,
           row->min_fps, row->max_fps, row->cpu_fps, row->cpu_gbps, row->cpu_share, sum.kicks / kf, sum.irqs / kf, sum.port_signals / kf,
           (double)sum.gmem_maps / (double)sum.total_frames, (unsigned long long)sum.verified,
           (unsigned long long)sum.total_frames);
    fflush(stdout);
    return 0;
}

static int bench_copy(const struct opts *o, bool bytewise, uint32_t size, struct row *row)
{
    double fps[MAX_RUNS], cpu_fps[MAX_RUNS], share[MAX_RUNS];
    for (unsigned r = 0; r < o->runs; r++) {
        struct copy_result res;
        char err[160];
        /* A copy's cost is steady within milliseconds: half the time will do. */
        double secs = o->seconds / 2;
        if (copy_bench_run(bytewise, size, secs, o->frames, &res, err, sizeof(err)) < 0) {
            fprintf(stderr, "engine_bench: copy %u: %s\n", size, err);
            return -1;
        }
        fps[r] = res.copies / res.seconds;
        cpu_fps[r] = res.copies / res.cpu_seconds;
        share[r] = res.cpu_seconds / res.seconds;
    }
    summarise(row, fps, cpu_fps, share, o->runs, size);
    printf("RESULT engine copy %s %u fps=%.0f gbps=%.3f runs=%u min_fps=%.0f max_fps=%.0f "
           "cpu_fps=%.0f cpu_gbps=%.3f cpu_share=%.2f\n",
           bytewise ? "bytewise" : "memcpy", size, row->fps, row->gbps, o->runs, row->min_fps,
           row->max_fps, row->cpu_fps, row->cpu_gbps, row->cpu_share);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse(argc, argv, &o) < 0)
        return 2;
    struct row link[2][MAX_SIZES] = {0}, copy[2][MAX_SIZES] = {0};
    int status = 0;

    char pool[48] = "ring-sized (cache-resident)";
    if (o.tx_pool_mib)
        snprintf(pool, sizeof(pool), "%u MiB cycled (cold)", o.tx_pool_mib);
    printf("# engine_bench: %s, %u run(s) per measurement (median), ring %u, port %u KiB, "
           "TX pool %s\n",
           o.frames ? "fixed frame count" : "timed", o.runs, o.ring_size,
           o.port_capacity / 1024, pool);
    if (o.link) {
        for (int s = 0; s < 2; s++)
            for (unsigned i = 0; s < 2 && o.strat[s] && i < o.nsizes; i++)
                if (bench_link(&o, (enum cw_gmem_strategy)s, o.sizes[i], &link[s][i]) < 0)
                    status = 1;
        for (unsigned i = 0; i < o.nsizes; i++)
            if (link[0][i].done && link[1][i].done && link[1][i].cpu_fps > 0)
                printf("RESULT engine %s ratio %u persistent_over_map_per_access=%.2f\n",
                       scenario(&o), o.sizes[i], link[0][i].cpu_fps / link[1][i].cpu_fps);
    }
    if (o.copy) {
        for (unsigned i = 0; i < o.nsizes; i++)
            for (int b = 0; b < 2; b++)
                if (bench_copy(&o, b == 0, o.sizes[i], &copy[b][i]) < 0)
                    status = 1;
        for (unsigned i = 0; i < o.nsizes; i++)
            if (copy[0][i].done && copy[1][i].done && copy[0][i].cpu_fps > 0)
                printf("RESULT engine copy ratio %u memcpy_over_bytewise=%.2f\n", o.sizes[i],
                       copy[1][i].cpu_fps / copy[0][i].cpu_fps);
    }

    char lbl[32];
    if (o.link) {
        printf("\nLink path (guest A TX -> device A -> port -> device B -> guest B RX), one core\n");
        printf("(wall: frames per second of elapsed time; cpu: per CPU-second of the bench\n"
               " thread, i.e. per core, not counting time other processes took from it)\n");
        printf("%-8s | %-34s | %-34s | %s\n", "frame", "persistent", "map-per-access",
               "ratio");
        printf("%-8s | %-34s | %-34s | %s\n", "", "wall Mfps   cpu Mfps   cpu Gb/s",
               "wall Mfps   cpu Mfps   cpu Gb/s", "(cpu)");
        for (unsigned i = 0; i < o.nsizes; i++) {
            size_label(o.sizes[i], lbl, sizeof(lbl));
            printf("%-8s", lbl);
            for (int s = 0; s < 2; s++) {
                if (link[s][i].done)
                    printf(" | %9.4f %10.4f %10.2f   ", link[s][i].fps / 1e6,
                           link[s][i].cpu_fps / 1e6, link[s][i].cpu_gbps);
                else
                    printf(" | %-34s", "-");
            }
            if (link[0][i].done && link[1][i].done)
                printf(" | %6.1fx", link[0][i].cpu_fps / link[1][i].cpu_fps);
            printf("\n");
        }
    }
    if (o.copy) {
        printf("\nCopy step alone (cache-hot; Gb/s per CPU-second)\n");
        printf("%-8s | %-14s | %-14s | %s\n", "size", "byte loop", "memcpy", "ratio");
        for (unsigned i = 0; i < o.nsizes; i++) {
            size_label(o.sizes[i], lbl, sizeof(lbl));
            printf("%-8s | %8.2f Gb/s | %8.2f Gb/s | %6.1fx\n", lbl, copy[0][i].cpu_gbps,
                   copy[1][i].cpu_gbps,
                   copy[0][i].cpu_fps > 0 ? copy[1][i].cpu_fps / copy[0][i].cpu_fps : 0);
        }
    }
    return status;
}
