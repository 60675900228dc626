/* Starting the children of a supervisor (`causeway vm`, `causeway run`):
 * fork + exec with exactly the fds the child needs, dying with its parent. */
#ifndef CAUSEWAY_SYSTEM_SPAWN_H
#define CAUSEWAY_SYSTEM_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

/* Own process group: a terminal's Ctrl-C reaches only the supervisor, which
 * then stops its children in order (instead of all of them dying at once
 * and looking like crashes). */
#define CW_SPAWN_NEW_PGROUP 1u

/* Start path with argv. stdio[0..2]: the child's stdin/stdout/stderr, -1 to
 * inherit ours. keep[0..n_keep): fds the child keeps under the same numbers
 * (their close-on-exec flag is cleared in the child only); every other fd
 * above 2 is closed on exec, whatever its flag. The child gets SIGKILL when
 * the parent dies (PR_SET_PDEATHSIG; the parent must not be multithreaded),
 * an empty signal mask and default SIGPIPE. The pid, or -1 with errno. */
pid_t cw_spawn(const char *path, const char *const argv[], const int stdio[3], const int *keep,
               unsigned n_keep, unsigned flags);

/* prog itself if it holds a '/', else the first executable match in $PATH.
 * malloc'd, or NULL. */
char *cw_find_in_path(const char *prog);

/* "exited with status N" / "killed by SIGKILL (signal 9)". */
void cw_describe_status(char *buf, size_t len, int status);

#endif
