/* fork + exec for supervisors: see spawn.h. */
#define _GNU_SOURCE
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* In the child, between fork and exec: only async-signal-safe calls. */
static void child(const char *path, const char *const argv[], const int stdio[3],
                  const int *keep, unsigned n_keep, unsigned flags, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* The parent may have died before prctl took effect. */
    if (getppid() != parent)
        _exit(127);
    if (flags & CW_SPAWN_NEW_PGROUP)
        setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    for (int i = 0; i < 3; i++)
        if (stdio[i] >= 0 && stdio[i] != i && dup2(stdio[i], i) < 0)
            _exit(127);
    /* Whatever the parent forgot to mark close-on-exec does not leak into
     * the child (kernels before 5.11 lack this: the O_CLOEXEC flags the
     * supervisors set on every fd still hold). */
    syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
    for (unsigned i = 0; i < n_keep; i++)
        if (keep[i] >= 0 && fcntl(keep[i], F_SETFD, 0) < 0)
            _exit(127);
    execv(path, (char *const *)argv);
    static const char msg[] = "causeway: cannot execute a child process\n";
    ssize_t w = write(2, msg, sizeof(msg) - 1);
    (void)w;
    _exit(127);
}

pid_t cw_spawn(const char *path, const char *const argv[], const int stdio[3], const int *keep,
               unsigned n_keep, unsigned flags)
{
    static const int inherit[3] = {-1, -1, -1};
    if (!stdio)
        stdio = inherit;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        child(path, argv, stdio, keep, n_keep, flags, parent);
    if (pid > 0 && (flags & CW_SPAWN_NEW_PGROUP))
        setpgid(pid, pid); /* also from here: no window where a signal to the group misses it */
    return pid;
}

char *cw_find_in_path(const char *prog)
{
    if (strchr(prog, '/'))
        return access(prog, X_OK) == 0 ? strdup(prog) : NULL;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char *copy = strdup(path), *save = NULL, *found = NULL;
    if (!copy)
        return NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        char buf[4096];
        if (snprintf(buf, sizeof(buf), "%s/%s", dir, prog) >= (int)sizeof(buf))
            continue;
        if (access(buf, X_OK) == 0) {
            found = strdup(buf);
            break;
        }
    }
    free(copy);
    return found;
}

void cw_describe_status(char *buf, size_t len, int status)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
    {
        const char *abbrev = sigabbrev_np(WTERMSIG(status));
        snprintf(buf, len, "killed by SIG%s (signal %d)", abbrev ? abbrev : "?",
                 WTERMSIG(status));
    }
    else
        snprintf(buf, len, "stopped (status 0x%x)", status);
}
