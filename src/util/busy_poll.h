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

struct cw_busy_poll {
    uint64_t window_ns; /* 0: off, never poll */
    uint64_t last_work_ns;
    uint64_t progress_seen;
    uint32_t rounds;
    bool polling; /* inside the window: notifications stay disarmed */
    bool worked;  /* progress since the clock was last read */
};

enum cw_busy_next {
    CW_BUSY_SLEEP,      /* outside the window: arm as usual, sleep if idle */
    CW_BUSY_POLL,       /* poll again now, nothing armed */
    CW_BUSY_POLL_YIELD, /* the same, after yielding the core */
    CW_BUSY_ARM,        /* window closed: one more round with polling off */
};

void cw_busy_init(struct cw_busy_poll *b, uint64_t window_ns);

/* After a round. progress: a counter that grows with the work done (frames
 * moved). more: the round left work behind (a budget ran out); the caller
 * goes round again anyway and the clock is not read. now_ns: called only in
 * rounds that found nothing, so a busy stream reads no clock. */
enum cw_busy_next cw_busy_after_round(struct cw_busy_poll *b, uint64_t progress, bool more,
                                      uint64_t (*now_ns)(void));

/* Inside the window, may this round skip looking at the event set? */
bool cw_busy_skip_events(struct cw_busy_poll *b);

#endif
