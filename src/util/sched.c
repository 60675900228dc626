/* Scheduling class of the calling process (see sched.h for why). */
#define _GNU_SOURCE
#include "sched.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

#include "log.h"

int cw_sched_parse(const char *s, enum cw_sched *out)
{
    if (!strcmp(s, "batch"))
        *out = CW_SCHED_BATCH;
    else if (!strcmp(s, "normal"))
        *out = CW_SCHED_NORMAL;
    else
        return -1;
    return 0;
}

const char *cw_sched_name(enum cw_sched s)
{
    return s == CW_SCHED_BATCH ? "batch" : "normal";
}

void cw_sched_apply(enum cw_sched s)
{
    /* Priority 0 is the only one these classes have; moving between them
     * needs no privilege. */
    struct sched_param sp = {.sched_priority = 0};
    if (sched_setscheduler(0, s == CW_SCHED_BATCH ? SCHED_BATCH : SCHED_OTHER, &sp) < 0)
        cw_log("cannot switch to the %s scheduling class: %s; staying in the current one",
               cw_sched_name(s), strerror(errno));
}
