#define _GNU_SOURCE
#include "landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/landlock.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Access rights by the ABI that introduced them, spelled out here because
 * the build host's <linux/landlock.h> may be older than the running kernel.
 * A right not handled by the ruleset stays allowed, so the newest ABI the
 * kernel offers is used in full. */
#define FS_ABI1 ((1ull << 13) - 1) /* execute .. make_sym */
#define FS_REMOVE_FILE (1ull << 5)
#define FS_MAKE_SOCK (1ull << 9)
#define FS_REFER (1ull << 13)     /* ABI 2 */
#define FS_TRUNCATE (1ull << 14)  /* ABI 3 */
#define FS_IOCTL_DEV (1ull << 15) /* ABI 5 */
#define NET_TCP ((1ull << 0) | (1ull << 1)) /* ABI 4: bind, connect */
#define SCOPE_ABSTRACT_UNIX (1ull << 0)     /* ABI 6 */
#define SCOPE_SIGNAL (1ull << 1)            /* ABI 6 */

/* struct landlock_ruleset_attr as of ABI 6; older kernels take a prefix. */
struct ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

int cw_landlock_abi(void)
{
    long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return v < 0 ? 0 : (int)v;
}

static int open_dir_of(const char *path)
{
    char buf[PATH_MAX];
    size_t n = path ? strlen(path) : 0;
    if (n == 0 || n >= sizeof(buf)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(buf, path, n + 1);
    char *slash = strrchr(buf, '/');
    const char *dir = buf;
    if (slash == NULL)
        dir = ".";
    else if (slash == buf)
        dir = "/";
    else
        *slash = '\0';
    return open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static int add_rule(int ruleset, const char *path_in_dir, uint64_t allowed)
{
    if (path_in_dir == NULL)
        return 0;
    int dfd = open_dir_of(path_in_dir);
    if (dfd < 0)
        return -1;
    struct landlock_path_beneath_attr pb = {.allowed_access = allowed, .parent_fd = dfd};
    long r = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
    int e = errno;
    close(dfd);
    errno = e;
    return r < 0 ? -1 : 0;
}

int cw_landlock_restrict(const struct cw_landlock_rules *rules)
{
    int abi = cw_landlock_abi();
    if (abi <= 0)
        return 0;
    struct ruleset_attr attr = {.handled_access_fs = FS_ABI1};
    size_t attr_size = sizeof(attr.handled_access_fs);
    if (abi >= 2)
        attr.handled_access_fs |= FS_REFER;
    if (abi >= 3)
        attr.handled_access_fs |= FS_TRUNCATE;
    if (abi >= 4) {
        /* No TCP at all (seccomp already refuses every non-unix socket). */
        attr.handled_access_net = NET_TCP;
        attr_size = offsetof(struct ruleset_attr, scoped);
    }
    if (abi >= 5)
        attr.handled_access_fs |= FS_IOCTL_DEV;
    if (abi >= 6) {
        attr.scoped = SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL;
        attr_size = sizeof(attr);
    }

    int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
    if (rs < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < sizeof(rules->remove_in) / sizeof(rules->remove_in[0]) && !rc; i++)
        rc = add_rule(rs, rules->remove_in[i], FS_REMOVE_FILE);
    for (size_t i = 0; i < sizeof(rules->make_sock_in) / sizeof(rules->make_sock_in[0]) && !rc; i++)
        rc = add_rule(rs, rules->make_sock_in[i], FS_MAKE_SOCK);
    if (!rc)
        rc = (int)syscall(SYS_landlock_restrict_self, rs, 0);
    int e = errno;
    close(rs);
    errno = e;
    return rc < 0 ? -1 : abi;
}
