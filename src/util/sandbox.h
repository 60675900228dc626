/* The sandbox a device or switch process enters once it is set up.
 *
 * After entering, the process:
 *  - has no capabilities (effective, permitted, inheritable, ambient and the
 *    bounding set emptied) and PR_SET_NO_NEW_PRIVS set, so nothing it could
 *    still run would regain any;
 *  - is not dumpable (no core files with guest memory in them, no ptrace or
 *    /proc/PID/mem access by other processes of the same user);
 *  - runs under a seccomp allowlist whose default action kills the whole
 *    process (SIGSYS): only the system calls the steady state needs, with
 *    arguments pinned where that is cheap (no PROT_EXEC mappings, only
 *    AF_UNIX sockets, a fixed set of fcntl commands, no ioctl at all for a
 *    device, a few TAP ioctls for the switch);
 *  - where the kernel has Landlock, may change the file system only by
 *    removing files and creating sockets in the directories of its own
 *    sockets, and cannot reach abstract unix sockets or signal processes
 *    outside the sandbox.
 * The allowlists, and why each call is on them, are in sandbox.c.
 *
 * Everything that must happen before (opening files, creating the listening
 * socket, signalfd/timerfd/epoll set-up, lazily initialised libraries) must
 * be done by the caller first; the sandbox warms up what it knows of (the
 * JSON library's hash seed, which is read from /dev/urandom on first use).
 *
 * Test-only: with CAUSEWAY_SANDBOX_SELFTEST=1 in the environment (or =device,
 * =switch: only processes of that role), the process attempts a forbidden
 * system call (a TCP socket) right after entering; the filter must kill it
 * with SIGSYS. If the call is not stopped, the process logs that and exits
 * with status CW_SANDBOX_SELFTEST_ESCAPED. */
#ifndef CAUSEWAY_UTIL_SANDBOX_H
#define CAUSEWAY_UTIL_SANDBOX_H

#include <stdbool.h>

#define CW_SANDBOX_SELFTEST_ENV "CAUSEWAY_SANDBOX_SELFTEST"
#define CW_SANDBOX_SELFTEST_ESCAPED 70

struct cw_sandbox_device {
    /* The vhost-user socket: its file is removed at exit, so removing
     * files in its directory stays possible. */
    const char *vhost_socket_path;
    /* The link rendezvous socket, or NULL without a link. With a link, the
     * device may create, bind, connect and remove AF_UNIX sockets and make
     * new ports (memfd, eventfds) to re-establish it; without one (ports
     * come from the launcher over the control fd), none of that. */
    const char *link_path;
};

/* Enter the device sandbox. Returns 0, or -1 with errno set and a line
 * logged; the caller must then stop without serving anything (part of the
 * sandbox may already be in force). */
int cw_sandbox_enter_device(const struct cw_sandbox_device *opts);

/* Enter the switch sandbox: ports, TAP fds and configuration arrive over the
 * already open control fd; the switch creates nothing and opens nothing.
 * Same return convention. */
int cw_sandbox_enter_switch(void);

/* True when a sanitizer runtime (ASan, UBSan) is linked in: the filter then
 * also allows what that runtime needs to report an error (see sandbox.c). */
bool cw_sandbox_sanitizer_build(void);

#endif
