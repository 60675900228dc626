/* The launcher: runs a loaded system (`causeway run FILE`). Starts one switch
 * process per switch, one device process per NIC (launcher mode,
 * --control-fd), hands every port and TAP over (docs/CONTROL.md), then one
 * QEMU per VM once its devices listen and its switches accepted their
 * config. Relays every child's output as prefixed lines on stdout, restarts
 * crashed device and switch processes, serves `causeway stats` on the
 * system control socket, and stops everything on SIGINT/SIGTERM or when
 * every VM has powered off. */
#ifndef CAUSEWAY_SYSTEM_LAUNCHER_H
#define CAUSEWAY_SYSTEM_LAUNCHER_H

#include "description.h"

struct cw_launch_options {
    const char *qemu;    /* QEMU binary, a path */
    const char *self;    /* the causeway binary for children (default /proc/self/exe) */
};

/* Checks that need the host rather than the file: the accel each VM asks
 * for. 0, or -1 with a reason in err (nothing has been started). */
int cw_launcher_check(const struct cw_system *sys, char *err, size_t errlen);

/* Run until every VM has exited or a signal stops it. Returns the exit
 * status: 0 when every VM powered off cleanly (QEMU status 0 and, where the
 * guest image reports one, guest script status 0), 128+N when stopped by
 * signal N, 1 otherwise. */
int cw_launcher_run(const struct cw_system *sys, const struct cw_launch_options *opt);

#endif
