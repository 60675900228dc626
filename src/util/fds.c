#define _GNU_SOURCE
#include "fds.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The keep-list, validated, sorted ascending and without duplicates or
 * negative entries, so the gaps between entries are the ranges to close. */
static int sorted_keep(const int *keep, size_t n, int *out, size_t *m)
{
    if (n > CW_FDS_KEEP_MAX || (n > 0 && keep == NULL)) {
        errno = EINVAL;
        return -1;
    }
    *m = 0;
    for (size_t i = 0; i < n; i++) {
        int fd = keep[i];
        if (fd < 0)
            continue;
        size_t j = *m;
        while (j > 0 && out[j - 1] > fd)
            j--;
        if (j > 0 && out[j - 1] == fd)
            continue;
        for (size_t k = *m; k > j; k--)
            out[k] = out[k - 1];
        out[j] = fd;
        (*m)++;
    }
    return 0;
}

static bool kept(const int *k, size_t m, int fd)
{
    for (size_t i = 0; i < m; i++)
        if (k[i] == fd)
            return true;
    return false;
}

/* Linux fds are non-negative ints; close_range takes them as unsigned. */
static int close_range_raw(unsigned lo, unsigned hi)
{
#ifdef SYS_close_range
    return (int)syscall(SYS_close_range, lo, hi, 0u);
#else
    (void)lo;
    (void)hi;
    errno = ENOSYS;
    return -1;
#endif
}

static int walk(const int *k, size_t m)
{
    int dfd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        int e = errno;
        close(dfd);
        errno = e;
        return -1;
    }
    /* procfs lists fds by number as it goes, so closing entries while
     * reading the directory neither skips nor repeats any. */
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *s = e->d_name;
        if (*s < '0' || *s > '9')
            continue; /* "." and ".." */
        long fd = 0;
        for (; *s >= '0' && *s <= '9' && fd <= INT_MAX; s++)
            fd = fd * 10 + (*s - '0');
        if (*s != '\0' || fd > INT_MAX || fd == dfd || kept(k, m, (int)fd))
            continue;
        close((int)fd); /* Linux frees the fd even when close reports an error */
    }
    closedir(d);
    return 0;
}

int cw_fds_close_except_walk(const int *keep, size_t n)
{
    int k[CW_FDS_KEEP_MAX];
    size_t m;
    if (sorted_keep(keep, n, k, &m) < 0)
        return -1;
    return walk(k, m);
}

int cw_fds_close_except(const int *keep, size_t n)
{
    int k[CW_FDS_KEEP_MAX];
    size_t m;
    if (sorted_keep(keep, n, k, &m) < 0)
        return -1;
    unsigned lo = 0;
    for (size_t i = 0; i <= m; i++) {
        /* The gap below the next kept fd, or everything above the last. */
        unsigned hi = i < m ? (unsigned)k[i] : UINT_MAX;
        if (hi > lo || i == m) {
            unsigned last = i < m ? hi - 1 : UINT_MAX;
            if (close_range_raw(lo, last) < 0)
                return errno == ENOSYS ? walk(k, m) : -1;
        }
        if (i < m)
            lo = (unsigned)k[i] + 1;
    }
    return 0;
}
