/* The device and switch sandboxes (see sandbox.h).
 *
 * Order of entry, and why:
 *  1. warm up what would otherwise touch the file system later (the JSON hash
 *     seed; in sanitizer builds LeakSanitizer's check, see warm_up);
 *  2. PR_SET_NO_NEW_PRIVS: required by Landlock and unprivileged seccomp, and
 *     nothing executed later could gain privileges;
 *  3. not dumpable: no core file holding guest memory, and no ptrace or
 *     /proc/PID/mem access from other processes of the same user;
 *  4. Landlock (file system), while we can still open the directories;
 *  5. capabilities: bounding set, ambient, securebits, then capset to zero;
 *  6. the seccomp filter, last, so the steps above need not be on it.
 *
 * The allowlists were measured with `strace -f` on devices during the e2e
 * tests (VM pairs with iperf3, a driver reload, a peer killed, DPDK testpmd)
 * and are documented call by call below. Anything else kills the process
 * with SIGSYS (SCMP_ACT_KILL_PROCESS), as does a syscall of another ABI
 * (i386, x32). */
#define _GNU_SOURCE
#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <linux/securebits.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "landlock.h"
#include "log.h"

/* Weak: present only when the binary links the library or runtime. */
extern void json_object_seed(size_t seed) __attribute__((weak));
extern void __lsan_do_leak_check(void) __attribute__((weak));
extern void __sanitizer_print_stack_trace(void) __attribute__((weak));

bool cw_sandbox_sanitizer_build(void)
{
    return __sanitizer_print_stack_trace != NULL;
}

struct profile {
    const char *role;     /* "device", "switch": for log lines */
    bool vhost;           /* serves a vhost-user frontend */
    bool link;            /* re-establishes a link rendezvous itself */
    bool tap;             /* may be handed a TAP fd */
    struct cw_landlock_rules fs;
};

/* --- 1. warm-up --- */

static void warm_up(void)
{
    /* jansson seeds its hash function from /dev/urandom on first use; a
     * first JSON object created inside the sandbox would be killed for the
     * open(). Seed it now (a no-op if already seeded). */
    if (json_object_seed)
        json_object_seed(0);
    /* LeakSanitizer's exit-time check stops the world with clone + ptrace
     * and reads /proc: impossible in the sandbox. Run the check now, while
     * everything allocated so far is still reachable; it then counts as done
     * and is not repeated at exit. Unsandboxed processes (unit tests,
     * causeway vm) keep their exit-time check. */
    if (__lsan_do_leak_check)
        __lsan_do_leak_check();
}

/* --- 5. capabilities --- */

static int drop_capabilities(void)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &hdr, data) < 0)
        return -1;
    bool setpcap = data[0].effective & (1u << CAP_SETPCAP);

    /* The bounding set limits what any later execve could grant. Emptying
     * it needs CAP_SETPCAP; without it (an unprivileged user) there is
     * nothing to protect: NO_NEW_PRIVS already stops execve from granting
     * capabilities, and seccomp forbids execve. */
    for (int cap = 0; setpcap && cap < 64; cap++) {
        int in = prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
        if (in < 0)
            break; /* EINVAL: past the kernel's last capability */
        if (in == 1 && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
            return -1;
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        return -1;
    /* uid 0 stays special for execve and setuid unless told otherwise; lock
     * that off too (defence in depth: execve is forbidden anyway). */
    if (setpcap)
        (void)prctl(PR_SET_SECUREBITS,
                    SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
                        SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                        SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
                    0, 0, 0);
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &hdr, data) < 0)
        return -1;
    /* Trust, but verify: every set must now read back empty. */
    if (syscall(SYS_capget, &hdr, data) < 0)
        return -1;
    for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
        if (data[i].effective || data[i].permitted || data[i].inheritable) {
            errno = EPERM;
            return -1;
        }
    }
    return 0;
}

/* --- 6. the seccomp filter --- */

struct filter {
    scmp_filter_ctx ctx;
    int err; /* first libseccomp error (negative errno), 0 if none */
};

static void rule(struct filter *f, uint32_t action, int nr, unsigned n,
                 const struct scmp_arg_cmp *args)
{
    if (f->err)
        return;
    /* A negative number is a syscall this architecture does not have
     * (e.g. epoll_wait on arm64): nothing to allow. */
    if (nr < 0)
        return;
    int rc = seccomp_rule_add_array(f->ctx, action, nr, n, args);
    if (rc < 0)
        f->err = rc;
}

static void allow(struct filter *f, int nr)
{
    rule(f, SCMP_ACT_ALLOW, nr, 0, NULL);
}

static void allow_if(struct filter *f, int nr, struct scmp_arg_cmp a)
{
    rule(f, SCMP_ACT_ALLOW, nr, 1, &a);
}

static void allow_if2(struct filter *f, int nr, struct scmp_arg_cmp a, struct scmp_arg_cmp b)
{
    struct scmp_arg_cmp args[2] = {a, b};
    rule(f, SCMP_ACT_ALLOW, nr, 2, args);
}

/* The kernel reads a command argument declared `unsigned int` (fcntl,
 * ioctl) from the low 32 bits only: compare exactly those. */
#define CMD32(i, v) SCMP_CMP((i), SCMP_CMP_MASKED_EQ, 0xffffffffu, (v))

static void add_common(struct filter *f)
{
    /* The event loop: epoll over eventfds (guest kicks, port signals),
     * timerfd, signalfd, sockets; their reads and writes; the log on stderr
     * and events to the supervisor (write). */
    allow(f, SCMP_SYS(epoll_wait));
    allow(f, SCMP_SYS(epoll_pwait));
    allow(f, SCMP_SYS(epoll_ctl));
    /* The busy window's hand-over of the core while traffic flows. */
    allow(f, SCMP_SYS(sched_yield));
    allow(f, SCMP_SYS(read));
    allow(f, SCMP_SYS(write));
    allow(f, SCMP_SYS(close));
    /* Control fd (launcher) and vhost-user/link messages, with fds. */
    allow(f, SCMP_SYS(recvmsg));
    allow(f, SCMP_SYS(sendmsg));
    /* send(2) is sendto without an address: only that form. */
    allow_if(f, SCMP_SYS(sendto), SCMP_A4(SCMP_CMP_EQ, 0));
    /* Memory: malloc (brk, anonymous mmap), guest regions and ports
     * (MAP_SHARED of received fds), map-per-access guest memory, the SIGBUS
     * fault guard's replacement page. Never executable. */
    allow_if(f, SCMP_SYS(mmap), SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    allow_if(f, SCMP_SYS(mprotect), SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    allow(f, SCMP_SYS(munmap));
    allow(f, SCMP_SYS(mremap));
    allow(f, SCMP_SYS(madvise)); /* MADV_DONTDUMP on guest memory; free() */
    allow(f, SCMP_SYS(brk));
    /* Checking received fds: fstat (glibc >= 2.33 issues it as newfstatat
     * with AT_EMPTY_PATH), and fcntl: flags, close-on-exec, memfd seals. */
    allow(f, SCMP_SYS(fstat));
    allow_if(f, SCMP_SYS(newfstatat), SCMP_A3(SCMP_CMP_EQ, AT_EMPTY_PATH));
    allow_if(f, SCMP_SYS(fcntl), CMD32(1, F_GETFL));
    allow_if(f, SCMP_SYS(fcntl), CMD32(1, F_SETFL));
    allow_if(f, SCMP_SYS(fcntl), CMD32(1, F_GETFD));
    allow_if(f, SCMP_SYS(fcntl), CMD32(1, F_SETFD));
    allow_if(f, SCMP_SYS(fcntl), CMD32(1, F_GET_SEALS));
    /* Signals: return from the SIGBUS fault guard's handler, which may also
     * restore the default action; blocked-signal changes and abort(), which
     * may only signal this very process with SIGABRT. */
    allow(f, SCMP_SYS(rt_sigreturn));
    allow(f, SCMP_SYS(rt_sigaction));
    allow(f, SCMP_SYS(rt_sigprocmask));
    allow(f, SCMP_SYS(restart_syscall));
    allow(f, SCMP_SYS(getpid));
    allow(f, SCMP_SYS(gettid));
    allow_if2(f, SCMP_SYS(tgkill), SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()),
              SCMP_A2(SCMP_CMP_EQ, SIGABRT));
    /* Time (normally the vDSO; these are its fallbacks). */
    allow(f, SCMP_SYS(clock_gettime));
    allow(f, SCMP_SYS(gettimeofday));
    allow(f, SCMP_SYS(exit_group));
    allow(f, SCMP_SYS(exit));
}

static void add_vhost(struct filter *f)
{
    /* A new frontend after a VM reboot: accept it; a message whose rest is
     * late is waited for with poll (bounded). Its memory table arrives as
     * fds (recvmsg) and is mapped (mmap, above). The socket file is removed
     * at exit (unlink, confined by Landlock to its directory). */
    allow(f, SCMP_SYS(accept4));
    allow(f, SCMP_SYS(poll));
    allow(f, SCMP_SYS(ppoll));
    allow(f, SCMP_SYS(unlink));
}

static void add_link(struct filter *f)
{
    /* Re-establishing a link after the peer died (src/port/link.c): a new
     * AF_UNIX SOCK_SEQPACKET socket that connects, or binds and listens after
     * removing a stale socket file (lstat first, unlink as for vhost); the
     * listener creates the port: a sealed memfd and four eventfds. */
    allow_if2(f, SCMP_SYS(socket), SCMP_A0(SCMP_CMP_EQ, AF_UNIX),
              SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf /* the type, without flags */, SOCK_SEQPACKET));
    allow(f, SCMP_SYS(connect));
    allow(f, SCMP_SYS(bind));
    allow(f, SCMP_SYS(listen));
    allow(f, SCMP_SYS(lstat));
    allow_if(f, SCMP_SYS(newfstatat), SCMP_A3(SCMP_CMP_EQ, AT_SYMLINK_NOFOLLOW));
    allow(f, SCMP_SYS(memfd_create));
    allow(f, SCMP_SYS(ftruncate));
    allow_if(f, SCMP_SYS(fcntl), CMD32(1, F_ADD_SEALS));
    allow(f, SCMP_SYS(eventfd2));
}

static void add_tap(struct filter *f)
{
    /* A TAP fd handed over by the launcher is checked and configured
     * (src/switch/tap.c); no other ioctl. */
    allow_if(f, SCMP_SYS(ioctl), CMD32(1, TUNGETIFF));
    allow_if(f, SCMP_SYS(ioctl), CMD32(1, TUNSETVNETHDRSZ));
    allow_if(f, SCMP_SYS(ioctl), CMD32(1, TUNSETOFFLOAD));
}

static void add_sanitizer(struct filter *f)
{
    /* Sanitizer builds are test builds. Their runtime, when it exits or
     * reports an error, takes locks (futex; sched_yield, which every profile
     * has, add_common), prints the pid, and tries to
     * read /proc/self/maps, the binary and its debug files, to test memory
     * with a pipe, and to ask whether stderr is a terminal. Those file
     * accesses fail with EACCES instead of killing the process: the report
     * still comes out, with frames as module+offset (feed them to
     * addr2line), and the runtime then exits as it always does. Nothing
     * here grants access to anything. */
    allow(f, SCMP_SYS(futex));
    /* _exit() under ASan asks for the alternate signal stack: query only. */
    allow_if(f, SCMP_SYS(sigaltstack), SCMP_A0(SCMP_CMP_EQ, 0));
    static const int denied[] = {
        SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(readlink), SCMP_SYS(readlinkat),
        SCMP_SYS(pipe), SCMP_SYS(pipe2),
    };
    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++)
        rule(f, SCMP_ACT_ERRNO(EACCES), denied[i], 0, NULL);
    struct scmp_arg_cmp tcgets = CMD32(1, TCGETS);
    rule(f, SCMP_ACT_ERRNO(ENOTTY), SCMP_SYS(ioctl), 1, &tcgets);
}

static int load_filter(const struct profile *p)
{
    struct filter f = {.ctx = seccomp_init(SCMP_ACT_KILL_PROCESS)};
    if (f.ctx == NULL) {
        errno = ENOMEM;
        return -1;
    }
    /* Another ABI's syscall numbers mean other calls: kill the process. */
    f.err = seccomp_attr_set(f.ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    /* Every thread, should a runtime have started one. */
    if (!f.err)
        f.err = seccomp_attr_set(f.ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    /* A binary search over syscall numbers keeps the per-call cost flat.
     * Optional: older libseccomp lacks it. */
    (void)seccomp_attr_set(f.ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    add_common(&f);
    if (p->vhost)
        add_vhost(&f);
    if (p->link)
        add_link(&f);
    if (p->tap)
        add_tap(&f);
    if (cw_sandbox_sanitizer_build())
        add_sanitizer(&f);
    if (!f.err)
        f.err = seccomp_load(f.ctx);
    seccomp_release(f.ctx);
    if (f.err) {
        errno = -f.err;
        return -1;
    }
    return 0;
}

/* --- test-only trigger --- */

static void selftest(const char *role)
{
    const char *v = getenv(CW_SANDBOX_SELFTEST_ENV);
    if (v == NULL || (strcmp(v, "1") != 0 && strcmp(v, role) != 0))
        return;
    /* Test-only (tests/unit/test_sandbox.c, tests/e2e/test_isolation.py):
     * prove the filter is in force by attempting what a compromised process
     * would want first, a TCP socket. The filter kills us here with SIGSYS. */
    cw_log("sandbox selftest: opening a TCP socket, which must kill this %s", role);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cw_log("sandbox selftest: FAILED, the forbidden socket() returned %d (%s)", fd,
           fd < 0 ? strerror(errno) : "an fd");
    _exit(CW_SANDBOX_SELFTEST_ESCAPED);
}

/* --- entry --- */

static int fail(const char *role, const char *step)
{
    int e = errno;
    cw_log("sandbox: cannot enter the %s sandbox: %s: %s", role, step, strerror(e));
    errno = e;
    return -1;
}

static int enter(struct profile *p)
{
    warm_up();
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return fail(p->role, "no_new_privs");
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        return fail(p->role, "dumpable");
    int abi = cw_landlock_restrict(&p->fs);
    if (abi < 0)
        return fail(p->role, "landlock");
    if (drop_capabilities() < 0)
        return fail(p->role, "capabilities");
    if (load_filter(p) < 0)
        return fail(p->role, "seccomp");
    if (abi > 0)
        cw_log("sandbox: entered (seccomp allowlist, no capabilities, landlock ABI %d)", abi);
    else
        cw_log("sandbox: entered (seccomp allowlist, no capabilities; no landlock in this "
               "kernel: the file system is not confined)");
    selftest(p->role);
    return 0;
}

int cw_sandbox_enter_device(const struct cw_sandbox_device *opts)
{
    if (opts == NULL || opts->vhost_socket_path == NULL) {
        errno = EINVAL;
        return fail("device", "options");
    }
    struct profile p = {
        .role = "device",
        .vhost = true,
        .link = opts->link_path != NULL,
        .fs = {.remove_in = {opts->vhost_socket_path, opts->link_path},
               .make_sock_in = {opts->link_path}},
    };
    return enter(&p);
}

int cw_sandbox_enter_switch(void)
{
    struct profile p = {.role = "switch", .tap = true};
    return enter(&p);
}
