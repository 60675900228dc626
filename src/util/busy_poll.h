/* Busy window: after a round that moved frames, a process keeps looking for
 * work for a while instead of arming notifications and sleeping.
 *
 * Why: under a steady stream, an event loop that arms and sleeps whenever a
 * queue is momentarily empty pays for it twice. The driver kicks on its next
 * publish (a syscall on the driver's CPU: with DPDK's virtio PMD in testpmd,
 * a third of that core's time), and the process is woken for work it would
 * have found anyway (a context switch, several microseconds on this PVM
 * host). Within the window nothing is armed, so nobody kicks or signals.
 * When the window closes, one more round with notifications armed (and
 * re-checked) comes before any sleep, so a frame that arrives just then is
 * not stranded. With no traffic the process sleeps as before: the window only
 * follows work.
 *
 * Who opens it: with a fixed window (--busy-poll USEC) any frame does. In
 * auto mode (--busy-poll auto) only a wake-up that found a batch does: at
 * least CW_BUSY_AUTO_MIN_BATCH frames before the process would sleep again.
 * That is a stream arriving faster than the notify-and-wake round trip (a
 * DPDK driver posts bursts of 32); a guest that hands over a frame or a few
 * per kick (a TCP stream of TSO frames, a ping) keeps plain notifications
 * and costs no polling, which would take CPU from its vCPUs where they share
 * the host's cores. Once open, any frame keeps the window open, as in fixed
 * mode.
 *
 * Sharing a core (two device processes and a switch may): a round that found
 * nothing for yield_ns gives the core to whoever else is runnable
 * (sched_yield), so polling never starves the peer that has the work.
 *
 * Pure logic, no system calls: the caller reads the clock, yields and arms. */
#ifndef CAUSEWAY_UTIL_BUSY_POLL_H
#define CAUSEWAY_UTIL_BUSY_POLL_H

#include <stdbool.h>
#include <stdint.h>

/* A round without work this long into the window yields the core. */
#define CW_BUSY_YIELD_NS 1000u
/* Within the window, the event set (frontend, control, timer: nothing armed
 * can fire) is looked at every this many rounds. */
#define CW_BUSY_EVENT_EVERY 32u
/* Auto mode: the window, and the frames one wake-up must find to open it. */
#define CW_BUSY_AUTO_WINDOW_US 100u
#define CW_BUSY_AUTO_MIN_BATCH 32u

/* What the user asked for: off, a fixed window, or auto. */
struct cw_busy_cfg {
    uint32_t window_us; /* 0: off */
    uint32_t min_batch; /* frames a wake-up must move to open the window; 0: any */
};

/* The default of devices and switches. */
#define CW_BUSY_AUTO \
    ((struct cw_busy_cfg){.window_us = CW_BUSY_AUTO_WINDOW_US, .min_batch = CW_BUSY_AUTO_MIN_BATCH})

/* "0" (off), "USEC" (1..1000000, fixed window) or "auto". 0 or -1. */
int cw_busy_parse(const char *s, struct cw_busy_cfg *out);
/* Back to text, as cw_busy_parse takes it ("auto", "0", "100"). */
void cw_busy_format(const struct cw_busy_cfg *c, char *buf, unsigned len);

struct cw_busy_poll {
    uint64_t window_ns; /* 0: off, never poll */
    uint32_t min_batch;
    uint64_t last_work_ns;
    uint64_t progress_seen;
    uint64_t burst_start; /* progress when the process last went back to sleeping */
    uint32_t rounds;
    uint64_t windows; /* times the window opened (a statistic) */
    bool polling; /* inside the window: notifications stay disarmed */
    bool worked;  /* progress since the clock was last read */
};

enum cw_busy_next {
    CW_BUSY_SLEEP,      /* outside the window: arm as usual, sleep if idle */
    CW_BUSY_POLL,       /* poll again now, nothing armed */
    CW_BUSY_POLL_YIELD, /* the same, after yielding the core */
    CW_BUSY_ARM,        /* window closed: one more round with polling off */
};

void cw_busy_init(struct cw_busy_poll *b, const struct cw_busy_cfg *cfg);

/* After a round. progress: a counter that grows with the work done (frames
 * moved). more: the round left work behind (a budget ran out); the caller
 * goes round again anyway and the clock is not read. now_ns: called only in
 * rounds that found nothing, so a busy stream reads no clock. */
enum cw_busy_next cw_busy_after_round(struct cw_busy_poll *b, uint64_t progress, bool more,
                                      uint64_t (*now_ns)(void));

/* Inside the window, may this round skip looking at the event set? */
bool cw_busy_skip_events(struct cw_busy_poll *b);

#endif
