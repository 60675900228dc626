/* Logging for the Linux processes: one line per event on stderr, prefixed
 * with the process's role ("device vm1", "switch sw0"), and a rate limiter so
 * a hostile guest or peer cannot flood the log. */
#ifndef CAUSEWAY_UTIL_LOG_H
#define CAUSEWAY_UTIL_LOG_H

#include <stdint.h>

void cw_log_set_prefix(const char *prefix);
void cw_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* At most `burst` lines per `interval_ms`; the rest are counted and the
 * count is reported with the next line that gets through. */
struct cw_ratelimit {
    uint32_t interval_ms;
    uint32_t burst;
    uint64_t window_start_ms;
    uint32_t used;
    uint64_t suppressed;
};
#define CW_RATELIMIT_INIT(ms, n) { .interval_ms = (ms), .burst = (n) }

void cw_log_limited(struct cw_ratelimit *rl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

uint64_t cw_now_ms(void);
uint64_t cw_now_ns(void);

#endif
