#include "busy_poll.h"

#include <stdio.h>
#include <string.h>

#include "parse.h"

int cw_busy_parse(const char *s, struct cw_busy_cfg *out)
{
    if (!strcmp(s, "auto")) {
        *out = CW_BUSY_AUTO;
        return 0;
    }
    uint64_t v;
    if (cw_parse_uint(s, 0, 1000000, &v))
        return -1;
    *out = (struct cw_busy_cfg){.window_us = (uint32_t)v};
    return 0;
}

void cw_busy_format(const struct cw_busy_cfg *c, char *buf, unsigned len)
{
    if (c->min_batch == CW_BUSY_AUTO_MIN_BATCH && c->window_us == CW_BUSY_AUTO_WINDOW_US)
        snprintf(buf, len, "auto");
    else
        snprintf(buf, len, "%u", c->window_us);
}

void cw_busy_init(struct cw_busy_poll *b, const struct cw_busy_cfg *cfg)
{
    *b = (struct cw_busy_poll){.window_ns = (uint64_t)cfg->window_us * 1000u,
                               .min_batch = cfg->min_batch};
}

enum cw_busy_next cw_busy_after_round(struct cw_busy_poll *b, uint64_t progress, bool more,
                                      uint64_t (*now_ns)(void))
{
    if (b->window_ns == 0)
        return CW_BUSY_SLEEP;
    if (progress != b->progress_seen) {
        b->progress_seen = progress;
        /* Inside the window any frame keeps it open; outside it, what this
         * wake-up moved so far must make a batch (fixed mode: any frame). */
        if (b->polling || progress - b->burst_start >= b->min_batch)
            b->worked = true;
    }
    if (more)
        return b->polling ? CW_BUSY_POLL : CW_BUSY_SLEEP;
    if (!b->polling && !b->worked) {
        /* Nothing, or too little to follow: sleep as usual; the next
         * wake-up counts its frames afresh. No clock read. */
        b->burst_start = progress;
        return CW_BUSY_SLEEP;
    }
    /* The first idle round after work stands for the time of that work. */
    uint64_t now = now_ns();
    if (b->worked) {
        b->worked = false;
        b->last_work_ns = now;
    }
    uint64_t idle = now - b->last_work_ns;
    if (idle < b->window_ns) {
        b->windows += !b->polling;
        b->polling = true;
        return idle >= CW_BUSY_YIELD_NS ? CW_BUSY_POLL_YIELD : CW_BUSY_POLL;
    }
    /* Only a polling process gets here: the window has closed. */
    b->polling = false;
    b->burst_start = progress;
    return CW_BUSY_ARM;
}

bool cw_busy_skip_events(struct cw_busy_poll *b)
{
    return b->polling && (++b->rounds % CW_BUSY_EVENT_EVERY) != 0;
}
