/* Where a running system keeps its sockets: BASE/NAME.PID/ (vhost-user and
 * QMP sockets) and BASE/NAME.PID.sock (the system control socket), BASE
 * being $XDG_RUNTIME_DIR/causeway, /run/causeway for root, or
 * /tmp/causeway-UID. */
#ifndef CAUSEWAY_SYSTEM_RUNDIR_H
#define CAUSEWAY_SYSTEM_RUNDIR_H

#include <stddef.h>

#define CW_RUNDIR_PATH_MAX 108 /* sun_path */

struct cw_rundir {
    char base[CW_RUNDIR_PATH_MAX];
    char dir[CW_RUNDIR_PATH_MAX];
    char control[CW_RUNDIR_PATH_MAX];
};

/* BASE (created 0700 if missing). 0 or -1 with errno. */
int cw_rundir_base(char *out, size_t len);

/* A system's name from its file: the base name without ".json", with
 * anything but [A-Za-z0-9_-] replaced by '_', at most 32 characters. */
void cw_rundir_system_name(const char *path, char *out, size_t len);

/* Create BASE/NAME.PID/. 0, or -1 with a reason in err. */
int cw_rundir_create(struct cw_rundir *r, const char *name, char *err, size_t errlen);

/* dir/FILE into out; -1 if it would not fit a unix socket address. */
int cw_rundir_file(const struct cw_rundir *r, const char *file, char *out, size_t len);

/* Remove everything the system left in its directory, the directory, and
 * the control socket. */
void cw_rundir_remove(const struct cw_rundir *r);

#endif
