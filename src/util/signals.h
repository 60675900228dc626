/* Signals as file descriptors, for the epoll loops of every process. */
#ifndef CAUSEWAY_UTIL_SIGNALS_H
#define CAUSEWAY_UTIL_SIGNALS_H

/* Blocks the signals of the 0-terminated list `sigs`, ignores SIGPIPE (a
 * peer that went away shows up as EPIPE on the write instead of killing
 * the process) and returns a non-blocking, close-on-exec signalfd that
 * reports them; -1 with errno on failure. */
int cw_signalfd_open(const int *sigs);

#endif
