/* File-system confinement with Landlock, one layer of the sandbox (sandbox.h).
 *
 * Seccomp cannot look at path arguments, so a process allowed unlink(2) or
 * bind(2) could remove or create files anywhere its user may: the device
 * processes run as root here, and root without capabilities still owns most
 * of the file system. Landlock closes that: after cw_landlock_restrict, the
 * process may not open, create, remove, rename or truncate anything, except
 * what the rules below grant, and only beneath the given directories. */
#ifndef CAUSEWAY_UTIL_LANDLOCK_H
#define CAUSEWAY_UTIL_LANDLOCK_H

/* Each path names a file (NULL: unused); the right is granted in the
 * directory that holds it, and beneath (Landlock rules are per directory). */
struct cw_landlock_rules {
    /* Files may be removed next to these (our own socket files). */
    const char *remove_in[2];
    /* Unix sockets may be created (bound) next to this. */
    const char *make_sock_in[1];
};

/* The Landlock ABI version of the running kernel, 0 if it has none. */
int cw_landlock_abi(void);

/* Restrict the calling process (it must have PR_SET_NO_NEW_PRIVS set). With
 * ABI 6 or later, also scope abstract unix sockets and signals to the
 * sandbox. Returns the ABI used (> 0), 0 if the kernel has no Landlock (then
 * nothing is restricted), or -1 with errno set. */
int cw_landlock_restrict(const struct cw_landlock_rules *rules);

#endif
