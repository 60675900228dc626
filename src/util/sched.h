/* The CPU scheduling class of the device and switch processes.
 *
 * Causeway's processes sleep until a doorbell or a peer's signal and then
 * move a whole batch. Under the default class (SCHED_OTHER) every such
 * wake-up may preempt whoever is running, so where a device, its peer or the
 * switch share a core they interrupt each other after every few frames and
 * the core goes to context switches instead of frames. SCHED_BATCH keeps the
 * same fairness and priority but a woken batch process waits for the running
 * one to block or use up its slice: batches stay whole. `normal` is there for
 * hosts where wake-up latency on a shared core matters more. */
#ifndef CAUSEWAY_UTIL_SCHED_H
#define CAUSEWAY_UTIL_SCHED_H

enum cw_sched {
    CW_SCHED_BATCH = 0, /* the default */
    CW_SCHED_NORMAL,
};

/* "batch" or "normal" into *out; -1 for anything else. */
int cw_sched_parse(const char *s, enum cw_sched *out);

const char *cw_sched_name(enum cw_sched s);

/* Puts the calling process in class s. A refusal is logged, not fatal: the
 * process works either way, only less well where it shares a core. */
void cw_sched_apply(enum cw_sched s);

#endif
