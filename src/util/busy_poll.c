#include "busy_poll.h"

void cw_busy_init(struct cw_busy_poll *b, uint64_t window_ns)
{
    *b = (struct cw_busy_poll){.window_ns = window_ns};
}

enum cw_busy_next cw_busy_after_round(struct cw_busy_poll *b, uint64_t progress, bool more,
                                      uint64_t (*now_ns)(void))
{
    if (b->window_ns == 0)
        return CW_BUSY_SLEEP;
    if (progress != b->progress_seen) {
        b->progress_seen = progress;
        b->worked = true;
    }
    if (more)
        return b->polling ? CW_BUSY_POLL : CW_BUSY_SLEEP;
    /* The first idle round after work stands for the time of that work. */
    uint64_t now = now_ns();
    if (b->worked) {
        b->worked = false;
        b->last_work_ns = now;
    }
    uint64_t idle = now - b->last_work_ns;
    if (idle < b->window_ns) {
        b->polling = true;
        return idle >= CW_BUSY_YIELD_NS ? CW_BUSY_POLL_YIELD : CW_BUSY_POLL;
    }
    if (b->polling) {
        b->polling = false;
        return CW_BUSY_ARM;
    }
    return CW_BUSY_SLEEP;
}

bool cw_busy_skip_events(struct cw_busy_poll *b)
{
    return b->polling && (++b->rounds % CW_BUSY_EVENT_EVERY) != 0;
}
