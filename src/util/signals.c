#define _GNU_SOURCE
#include "signals.h"

#include <signal.h>
#include <sys/signalfd.h>

int cw_signalfd_open(const int *sigs)
{
    sigset_t set;
    sigemptyset(&set);
    for (; *sigs; sigs++)
        sigaddset(&set, *sigs);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}
