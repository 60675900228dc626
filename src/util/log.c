#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static char log_prefix[64] = "causeway";

void cw_log_set_prefix(const char *prefix)
{
    snprintf(log_prefix, sizeof(log_prefix), "%s", prefix);
}

uint64_t cw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t cw_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void vlog(const char *suffix, const char *fmt, va_list ap)
{
    /* Build the whole line first so concurrent writers never interleave. */
    char line[1024];
    int n = snprintf(line, sizeof(line), "%s: ", log_prefix);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(line))
        n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    if ((size_t)n < sizeof(line) && suffix)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%s", suffix);
    if ((size_t)n >= sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    fwrite(line, 1, (size_t)n, stderr);
    fflush(stderr);
}

void cw_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(NULL, fmt, ap);
    va_end(ap);
}

void cw_log_limited(struct cw_ratelimit *rl, const char *fmt, ...)
{
    uint64_t now = cw_now_ms();
    if (now - rl->window_start_ms >= rl->interval_ms) {
        rl->window_start_ms = now;
        rl->used = 0;
    }
    if (rl->used >= rl->burst) {
        rl->suppressed++;
        return;
    }
    rl->used++;
    char suffix[64] = "";
    if (rl->suppressed) {
        snprintf(suffix, sizeof(suffix), " (%llu similar suppressed)",
                 (unsigned long long)rl->suppressed);
        rl->suppressed = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vlog(suffix, fmt, ap);
    va_end(ap);
}
