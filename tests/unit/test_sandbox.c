/* The sandbox (src/util/sandbox.c, landlock.c) and the fd closer
 * (src/util/fds.c).
 *
 * Every sandbox test runs in a forked child, which enters the sandbox and
 * then tries one thing; the parent checks how the child ended: SIGSYS for a
 * forbidden call, a clean exit for allowed work. The child leaves with
 * _exit() only (LeakSanitizer's exit check cannot run in the sandbox).
 * The fd closer also runs in children, which report what is left open. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_tun.h>

#include <cmocka.h>

#include "util/fds.h"
#include "util/landlock.h"
#include "util/sandbox.h"

/* ---------- helpers ---------- */

/* Exit codes a child uses to say what went wrong (parent prints them). */
enum {
    C_OK = 0,
    C_ENTER_FAILED = 90,
    C_ESCAPED = 91, /* a forbidden call returned instead of killing */
    C_STEP = 100,   /* + the number of the failed step */
};

#define STEP(n, cond)                                                                        \
    do {                                                                                     \
        if (!(cond))                                                                         \
            _exit(C_STEP + (n));                                                             \
    } while (0)

enum profile { P_DEVICE, P_DEVICE_LINK, P_SWITCH };

static char dir_a[64], dir_b[64];

static void path_in(char *buf, size_t len, const char *dir, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static int enter(enum profile p)
{
    char vsock[128], lsock[128];
    path_in(vsock, sizeof(vsock), dir_a, "v.sock");
    path_in(lsock, sizeof(lsock), dir_a, "l.sock");
    switch (p) {
    case P_DEVICE:
        return cw_sandbox_enter_device(&(struct cw_sandbox_device){.vhost_socket_path = vsock});
    case P_DEVICE_LINK:
        return cw_sandbox_enter_device(
            &(struct cw_sandbox_device){.vhost_socket_path = vsock, .link_path = lsock});
    case P_SWITCH:
        return cw_sandbox_enter_switch();
    }
    return -1;
}

typedef void (*child_fn)(void);

/* In a forked child: enter profile p, or exit C_ENTER_FAILED. */
static void enter_in_child(enum profile p)
{
    /* cmocka's handler would turn a fault into an abort: let the status
     * say what happened. */
    signal(SIGSEGV, SIG_DFL);
    unsetenv(CW_SANDBOX_SELFTEST_ENV);
    if (enter(p) != 0)
        _exit(C_ENTER_FAILED);
}

/* Fork; the child enters profile p and runs fn, then exits C_OK. Returns the
 * child's wait status. */
static pid_t parent_pid;

static int run_in_sandbox(enum profile p, child_fn fn)
{
    parent_pid = getpid();
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        enter_in_child(p);
        fn();
        _exit(C_OK);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void expect_exit(int status, int code)
{
    if (WIFSIGNALED(status))
        print_error("child killed by signal %d, expected exit %d\n", WTERMSIG(status), code);
    else if (WIFEXITED(status) && WEXITSTATUS(status) != code)
        print_error("child exited %d, expected %d\n", WEXITSTATUS(status), code);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), code);
}

static void expect_sigsys(int status)
{
    if (WIFEXITED(status))
        print_error("child exited %d instead of dying by SIGSYS\n", WEXITSTATUS(status));
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSYS);
}

static int setup_dirs(void **state)
{
    (void)state;
    snprintf(dir_a, sizeof(dir_a), "/tmp/cw-sbx-a-XXXXXX");
    snprintf(dir_b, sizeof(dir_b), "/tmp/cw-sbx-b-XXXXXX");
    if (!mkdtemp(dir_a) || !mkdtemp(dir_b))
        return -1;
    return 0;
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[PATH_MAX];
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int teardown_dirs(void **state)
{
    (void)state;
    rm_dir(dir_a);
    rm_dir(dir_b);
    return 0;
}

/* ---------- allowed: what the steady state does ---------- */

/* Made before entering, as a device makes its epoll set and as fds arrive
 * from a frontend or the launcher; used from inside. */
static int pre_sv[2] = {-1, -1}, pre_efd = -1, pre_ep = -1, pre_memfd = -1;

static void allowed_calls(void)
{
    /* eventfd write/read (kicks, interrupts, port signals) */
    uint64_t one = 1, got = 0;
    STEP(1, write(pre_efd, &one, sizeof(one)) == sizeof(one));
    /* epoll */
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 7};
    STEP(2, epoll_ctl(pre_ep, EPOLL_CTL_ADD, pre_efd, &ev) == 0);
    struct epoll_event out;
    STEP(3, epoll_wait(pre_ep, &out, 1, 1000) == 1 && out.data.u64 == 7);
    STEP(4, read(pre_efd, &got, sizeof(got)) == sizeof(got) && got == 1);
    STEP(5, epoll_ctl(pre_ep, EPOLL_CTL_DEL, pre_efd, NULL) == 0);
    /* an fd passed with SCM_RIGHTS, both ways (vhost-user, control fd) */
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    char byte = 'x';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof(u.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pre_memfd, sizeof(int));
    STEP(6, sendmsg(pre_sv[0], &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == 1);
    memset(&u, 0, sizeof(u));
    mh.msg_controllen = sizeof(u.buf);
    STEP(7, recvmsg(pre_sv[1], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) == 1);
    c = CMSG_FIRSTHDR(&mh);
    STEP(8, c && c->cmsg_type == SCM_RIGHTS);
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof(int));
    /* send() is sendto without an address */
    STEP(9, send(pre_sv[0], "y", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1);
    mh.msg_control = NULL;
    mh.msg_controllen = 0;
    STEP(10, recvmsg(pre_sv[1], &mh, MSG_DONTWAIT) == 1 && byte == 'y');
    /* check and map the received memfd (guest memory, a port) */
    struct stat st;
    STEP(11, fstat(fd, &st) == 0 && st.st_size == 65536);
    STEP(12, fcntl(fd, F_GET_SEALS) >= 0);
    int fl = fcntl(fd, F_GETFL);
    STEP(13, fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
    uint8_t *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    STEP(14, m != MAP_FAILED);
    m[100] = 42;
    STEP(15, munmap(m, 65536) == 0);
    /* map-per-access style: map a page, read it back, unmap */
    m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    STEP(16, m != MAP_FAILED && m[100] == 42);
    STEP(17, munmap(m, 4096) == 0);
    STEP(18, close(fd) == 0);
    /* malloc, large enough to take mmap, and realloc */
    char *big = malloc(4u << 20);
    STEP(19, big != NULL);
    memset(big, 1, 4u << 20);
    big = realloc(big, 8u << 20);
    STEP(20, big != NULL && big[12345] == 1);
    free(big);
    /* time, ids, the fault guard's page replacement */
    struct timespec ts;
    STEP(21, clock_gettime(CLOCK_MONOTONIC, &ts) == 0);
    STEP(22, syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) == 0);
    STEP(23, getpid() > 0 && gettid() > 0);
    void *pg = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    STEP(24, pg != MAP_FAILED);
    STEP(25, mmap(pg, 4096, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1,
                  0) == pg);
    STEP(26, mprotect(pg, 4096, PROT_READ) == 0);
    STEP(27, signal(SIGBUS, SIG_DFL) != SIG_ERR);
    /* stderr (the log) */
    STEP(28, write(2, "", 0) == 0);
}

static void make_pre_fds(void)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pre_sv), 0);
    pre_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pre_ep = epoll_create1(EPOLL_CLOEXEC);
    pre_memfd = memfd_create("cw-test-sbx", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_true(pre_efd >= 0 && pre_ep >= 0 && pre_memfd >= 0);
    assert_int_equal(ftruncate(pre_memfd, 65536), 0);
    assert_int_equal(fcntl(pre_memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
}

static void close_pre_fds(void)
{
    close(pre_sv[0]);
    close(pre_sv[1]);
    close(pre_efd);
    close(pre_ep);
    close(pre_memfd);
}

static void test_device_allows_steady_state(void **state)
{
    (void)state;
    make_pre_fds();
    expect_exit(run_in_sandbox(P_DEVICE, allowed_calls), C_OK);
    expect_exit(run_in_sandbox(P_DEVICE_LINK, allowed_calls), C_OK);
    expect_exit(run_in_sandbox(P_SWITCH, allowed_calls), C_OK);
    close_pre_fds();
}

static void link_calls(void)
{
    /* What re-establishing a link does (src/port/link.c). */
    char p[128];
    path_in(p, sizeof(p), dir_a, "l.sock");
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    STEP(1, s >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, p, strlen(p) + 1);
    STEP(2, connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno == ENOENT);
    STEP(3, bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(s, 4) == 0);
    struct stat st;
    STEP(4, lstat(p, &st) == 0 && S_ISSOCK(st.st_mode));
    int c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    STEP(5, c >= 0 && connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    int a = accept4(s, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    STEP(6, a >= 0);
    int m = memfd_create("causeway-port", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    STEP(7, m >= 0 && ftruncate(m, 1 << 20) == 0);
    STEP(8, fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
    int e = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    STEP(9, e >= 0);
    STEP(10, unlink(p) == 0);
    close(a);
    close(c);
    close(s);
    close(m);
    close(e);
}

static void test_device_link_allows_rendezvous(void **state)
{
    (void)state;
    expect_exit(run_in_sandbox(P_DEVICE_LINK, link_calls), C_OK);
}

/* ---------- forbidden: each kills the process ---------- */

static void f_socket_inet(void) { (void)socket(AF_INET, SOCK_STREAM, 0); }
static void f_socket_inet6(void) { (void)socket(AF_INET6, SOCK_DGRAM, 0); }
static void f_socket_netlink(void) { (void)socket(AF_NETLINK, SOCK_RAW, 0); }
static void f_socket_unix_stream(void) { (void)socket(AF_UNIX, SOCK_STREAM, 0); }
static void f_socket_unix_seqpacket(void) { (void)socket(AF_UNIX, SOCK_SEQPACKET, 0); }
static void f_socketpair(void)
{
    int sv[2];
    (void)socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv);
}
static void f_execve(void)
{
    char *argv[] = {"/bin/true", NULL};
    (void)syscall(SYS_execve, "/bin/true", argv, environ);
}
static void f_ptrace(void) { (void)syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0); }
static void f_fork(void) { (void)syscall(SYS_fork); }
static void f_clone(void) { (void)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0); }
/* parent_pid: read before entering, getppid is not allowed either. */
static void f_kill_parent(void) { (void)syscall(SYS_kill, parent_pid, 0); }
static void f_tgkill_other(void) { (void)syscall(SYS_tgkill, parent_pid, parent_pid, SIGABRT); }
static void f_getppid(void) { (void)getppid(); }
static void f_tgkill_self_term(void) { (void)syscall(SYS_tgkill, getpid(), gettid(), SIGTERM); }
static void f_mmap_exec(void)
{
    (void)mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}
static void f_mprotect_exec(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED)
        (void)mprotect(p, 4096, PROT_READ | PROT_EXEC);
}
static void f_ioctl(void)
{
    int n;
    (void)ioctl(0, FIONREAD, &n);
}
static void f_ioctl_tun(void)
{
    struct ifreq {
        char b[40];
    } ifr;
    (void)ioctl(0, TUNGETIFF, &ifr);
}
static void f_fcntl_dupfd(void) { (void)fcntl(2, F_DUPFD, 100); }
static void f_fcntl_setown(void) { (void)fcntl(2, F_SETOWN, getpid()); }
static void f_sendto_addr(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX, .sun_path = "/tmp/x"};
    (void)sendto(2, "x", 1, 0, (struct sockaddr *)&sa, sizeof(sa));
}
static void f_capset(void) { (void)syscall(SYS_capset, NULL, NULL); }
static void f_prctl(void) { (void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0); }
static void f_setuid(void) { (void)syscall(SYS_setuid, 0); }
static void f_unshare(void) { (void)syscall(SYS_unshare, 0); }
static void f_chdir(void) { (void)syscall(SYS_chdir, "/"); }
static void f_memfd(void) { (void)syscall(SYS_memfd_create, "x", 0); }
static void f_eventfd(void) { (void)syscall(SYS_eventfd2, 0, 0); }
static void f_accept(void) { (void)accept4(0, NULL, NULL, 0); }
static void f_unlink(void) { (void)unlink("/nonexistent-cw"); }
static void f_lstat_path(void)
{
    struct stat st;
    (void)syscall(SYS_newfstatat, AT_FDCWD, "/etc/passwd", &st, 0);
}
static void f_epoll_create(void) { (void)epoll_create1(0); }
static void f_seccomp(void) { (void)syscall(SYS_seccomp, 0, 0, NULL); }
static void f_landlock(void) { (void)syscall(SYS_landlock_create_ruleset, NULL, 0, 1); }
static void f_bpf(void) { (void)syscall(SYS_bpf, 0, NULL, 0); }
static void f_process_vm_readv(void) { (void)syscall(SYS_process_vm_readv, 1, NULL, 0, NULL, 0, 0); }
#ifdef __x86_64__
/* Another ABI's numbers: x32 (the 0x40000000 bit) and i386 (int $0x80). */
static void f_x32(void) { (void)syscall(0x40000000 | SYS_getpid); }
static void f_int80(void)
{
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L /* i386 getpid */) : "memory");
    (void)ret;
}

/* Does this host take i386 system calls at all? A kernel without IA32
 * emulation (or a hypervisor that does not pass int 0x80 on: this PVM host
 * did at one hour and not the next) answers int 0x80 with SIGSEGV before any
 * filter runs. Asked once, outside any sandbox. */
static bool host_has_int80(void)
{
    static int known = -1;
    if (known < 0) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            signal(SIGSEGV, SIG_DFL);
            f_int80();
            _exit(C_OK);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        known = WIFEXITED(status) && WEXITSTATUS(status) == C_OK;
    }
    return known == 1;
}
#endif

struct forbidden {
    const char *name;
    child_fn fn;
    unsigned profiles; /* 1 << enum profile in which it must kill */
};

#define ALL ((1u << P_DEVICE) | (1u << P_DEVICE_LINK) | (1u << P_SWITCH))
#define NOT_LINK ((1u << P_DEVICE) | (1u << P_SWITCH))
#define SWITCH_ONLY (1u << P_SWITCH)
#define DEVICES ((1u << P_DEVICE) | (1u << P_DEVICE_LINK))

static const struct forbidden forbidden[] = {
    {"socket(AF_INET)", f_socket_inet, ALL},
    {"socket(AF_INET6)", f_socket_inet6, ALL},
    {"socket(AF_NETLINK)", f_socket_netlink, ALL},
    {"socket(AF_UNIX, SOCK_STREAM)", f_socket_unix_stream, ALL},
    {"socket(AF_UNIX, SOCK_SEQPACKET)", f_socket_unix_seqpacket, NOT_LINK},
    {"socketpair", f_socketpair, ALL},
    {"execve", f_execve, ALL},
    {"ptrace", f_ptrace, ALL},
    {"fork", f_fork, ALL},
    {"clone", f_clone, ALL},
    {"kill(parent)", f_kill_parent, ALL},
    {"tgkill(parent, SIGABRT)", f_tgkill_other, ALL},
    {"tgkill(self, SIGTERM)", f_tgkill_self_term, ALL},
    {"getppid", f_getppid, ALL},
    {"mmap(PROT_EXEC)", f_mmap_exec, ALL},
    {"mprotect(PROT_EXEC)", f_mprotect_exec, ALL},
    {"ioctl(FIONREAD)", f_ioctl, ALL},
    {"ioctl(TUNGETIFF)", f_ioctl_tun, DEVICES},
    {"fcntl(F_DUPFD)", f_fcntl_dupfd, ALL},
    {"fcntl(F_SETOWN)", f_fcntl_setown, ALL},
    {"sendto(address)", f_sendto_addr, ALL},
    {"capset", f_capset, ALL},
    {"prctl", f_prctl, ALL},
    {"setuid", f_setuid, ALL},
    {"unshare", f_unshare, ALL},
    {"chdir", f_chdir, ALL},
    {"memfd_create", f_memfd, NOT_LINK},
    {"eventfd2", f_eventfd, NOT_LINK},
    {"accept4", f_accept, SWITCH_ONLY},
    {"unlink", f_unlink, SWITCH_ONLY},
    {"newfstatat(path, 0)", f_lstat_path, ALL},
    {"epoll_create1", f_epoll_create, ALL},
    {"seccomp", f_seccomp, ALL},
    {"landlock_create_ruleset", f_landlock, ALL},
    {"bpf", f_bpf, ALL},
    {"process_vm_readv", f_process_vm_readv, ALL},
#ifdef __x86_64__
    {"x32 getpid", f_x32, ALL},
    {"i386 getpid (int 0x80)", f_int80, ALL},
#endif
};

static void check_forbidden(enum profile p)
{
    for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
        if (!(forbidden[i].profiles & (1u << p)))
            continue;
        int status = run_in_sandbox(p, forbidden[i].fn);
#ifdef __x86_64__
        /* No i386 entry on this host: nothing for the filter to block, and
         * the call faults in the sandbox as it does outside. */
        if (forbidden[i].fn == f_int80 && !host_has_int80() && WIFSIGNALED(status) &&
            WTERMSIG(status) == SIGSEGV) {
            print_message("profile %d: %s faults on this host even unconfined; not checked\n",
                          p, forbidden[i].name);
            continue;
        }
#endif
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS)
            print_error("profile %d: %s was not killed by SIGSYS\n", p, forbidden[i].name);
        expect_sigsys(status);
    }
}

static void test_device_forbidden(void **state)
{
    (void)state;
    check_forbidden(P_DEVICE);
}

static void test_device_link_forbidden(void **state)
{
    (void)state;
    check_forbidden(P_DEVICE_LINK);
}

static void test_switch_forbidden(void **state)
{
    (void)state;
    check_forbidden(P_SWITCH);
}

/* Files: forbidden outright in normal builds; in sanitizer builds the
 * runtime's report-time file accesses fail with EACCES instead (sandbox.c),
 * which must still never open anything. */
static void try_open_read(void)
{
    int fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
    _exit(fd < 0 && errno == EACCES ? C_OK : C_ESCAPED);
}

static void try_open_create(void)
{
    char p[128];
    path_in(p, sizeof(p), dir_a, "created");
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    _exit(fd < 0 && errno == EACCES ? C_OK : C_ESCAPED);
}

static void try_readlink(void)
{
    char buf[64];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf));
    _exit(n < 0 && errno == EACCES ? C_OK : C_ESCAPED);
}

static void try_pipe(void)
{
    int p[2];
    _exit(pipe2(p, O_CLOEXEC) < 0 && errno == EACCES ? C_OK : C_ESCAPED);
}

static void try_tcgets(void)
{
    char buf[64];
    _exit(ioctl(2, TCGETS, buf) < 0 && errno == ENOTTY ? C_OK : C_ESCAPED);
}

static void test_files_forbidden(void **state)
{
    (void)state;
    child_fn fns[] = {try_open_read, try_open_create, try_readlink, try_pipe, try_tcgets};
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        for (int p = P_DEVICE; p <= P_SWITCH; p++) {
            int status = run_in_sandbox((enum profile)p, fns[i]);
            if (cw_sandbox_sanitizer_build())
                expect_exit(status, C_OK);
            else
                expect_sigsys(status);
        }
    }
    char p[128];
    path_in(p, sizeof(p), dir_a, "created");
    assert_int_equal(access(p, F_OK), -1);
}

/* ---------- capabilities, no_new_privs, dumpable, seccomp mode ---------- */

static int ready_pipe[2], go_pipe[2];

static void wait_for_parent(void)
{
    char c = 1;
    STEP(1, write(ready_pipe[1], &c, 1) == 1);
    STEP(2, read(go_pipe[0], &c, 1) == 1);
}

static bool status_field(pid_t pid, const char *key, char *val, size_t len)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool found = false;
    size_t kl = strlen(key);
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            const char *v = line + kl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            snprintf(val, len, "%.*s", (int)strcspn(v, "\n"), v);
            found = true;
            break;
        }
    }
    fclose(f);
    return found;
}

static void check_status(enum profile p)
{
    assert_int_equal(pipe2(ready_pipe, O_CLOEXEC), 0);
    assert_int_equal(pipe2(go_pipe, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        enter_in_child(p);
        wait_for_parent();
        _exit(C_OK);
    }
    char c;
    assert_int_equal(read(ready_pipe[0], &c, 1), 1);
    static const struct {
        const char *key, *want;
    } expect[] = {
        {"Seccomp", "2"},
        {"NoNewPrivs", "1"},
        {"CapInh", "0000000000000000"},
        {"CapPrm", "0000000000000000"},
        {"CapEff", "0000000000000000"},
        {"CapBnd", "0000000000000000"},
        {"CapAmb", "0000000000000000"},
    };
    char val[64];
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++) {
        assert_true(status_field(pid, expect[i].key, val, sizeof(val)));
        if (strcmp(val, expect[i].want))
            print_error("%s: %s, expected %s\n", expect[i].key, val, expect[i].want);
        assert_string_equal(val, expect[i].want);
    }
    /* Not dumpable: /proc/PID files belong to root, whoever we are. */
    char path[64];
    struct stat st;
    snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, 0);
    assert_int_equal(write(go_pipe[1], "g", 1), 1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    expect_exit(status, C_OK);
    close(ready_pipe[0]);
    close(ready_pipe[1]);
    close(go_pipe[0]);
    close(go_pipe[1]);
}

static void test_status_after_entering(void **state)
{
    (void)state;
    check_status(P_DEVICE);
    check_status(P_DEVICE_LINK);
    check_status(P_SWITCH);
}

/* ---------- Landlock: file system changes only next to our sockets ---------- */

static void landlock_calls(void)
{
    char ok[128], other[128], victim[128];
    path_in(ok, sizeof(ok), dir_a, "x.sock");
    path_in(other, sizeof(other), dir_b, "y.sock");
    path_in(victim, sizeof(victim), dir_b, "victim");
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    STEP(1, s >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, ok, strlen(ok) + 1);
    STEP(2, bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    close(s);
    STEP(3, unlink(ok) == 0);
    s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    memcpy(sa.sun_path, other, strlen(other) + 1);
    STEP(4, bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno == EACCES);
    STEP(5, unlink(victim) < 0 && errno == EACCES);
    close(s);
}

static void test_landlock_confines_fs(void **state)
{
    (void)state;
    if (cw_landlock_abi() <= 0)
        skip();
    char victim[128];
    path_in(victim, sizeof(victim), dir_b, "victim");
    int fd = open(victim, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    expect_exit(run_in_sandbox(P_DEVICE_LINK, landlock_calls), C_OK);
    assert_int_equal(access(victim, F_OK), 0);
}

/* ---------- the selftest trigger and failure modes ---------- */

static void test_selftest_trigger_kills(void **state)
{
    (void)state;
    for (int p = P_DEVICE; p <= P_SWITCH; p++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            setenv(CW_SANDBOX_SELFTEST_ENV, "1", 1);
            enter((enum profile)p);
            _exit(C_ESCAPED);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        expect_sigsys(status);
    }
    /* A role selects only its own processes; any other value is off. */
    static const struct {
        const char *value;
        enum profile p;
        bool dies;
    } cases[] = {
        {"device", P_DEVICE, true},  {"device", P_DEVICE_LINK, true}, {"device", P_SWITCH, false},
        {"switch", P_SWITCH, true},  {"switch", P_DEVICE, false},     {"yes", P_DEVICE, false},
        {"0", P_SWITCH, false},      {"", P_DEVICE, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            setenv(CW_SANDBOX_SELFTEST_ENV, cases[i].value, 1);
            _exit(enter(cases[i].p) == 0 ? C_OK : C_ENTER_FAILED);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (cases[i].dies)
            expect_sigsys(status);
        else
            expect_exit(status, C_OK);
    }
}

static void test_bad_options_refused(void **state)
{
    (void)state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        STEP(1, cw_sandbox_enter_device(NULL) == -1 && errno == EINVAL);
        STEP(2, cw_sandbox_enter_device(&(struct cw_sandbox_device){0}) == -1 && errno == EINVAL);
        /* Nothing was entered: files still open. */
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        STEP(3, fd >= 0);
        _exit(C_OK);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    expect_exit(status, C_OK);
}

/* A second entry is refused by the first filter (prctl is not allowed):
 * the sandbox cannot be re-entered in a looser form. */
static void reenter(void)
{
    (void)cw_sandbox_enter_device(&(struct cw_sandbox_device){.vhost_socket_path = "/tmp/x"});
    _exit(C_ESCAPED);
}

static void test_reentry_killed(void **state)
{
    (void)state;
    expect_sigsys(run_in_sandbox(P_SWITCH, reenter));
}

/* ---------- the fd closer ---------- */

/* In the child: the sorted list of open fds (the listing's own excluded). */
static size_t open_fds(int *out, size_t max)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        _exit(C_STEP + 60);
    int self = dirfd(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        if (fd != self && n < max)
            out[n++] = fd;
    }
    closedir(d);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && out[j - 1] > out[j]; j--) {
            int t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

typedef int (*closer_fn)(const int *, size_t);

/* Open fds at 3..12, 200, 900; keep a messy list; check exactly the kept
 * ones (that were open) survive. */
static void closer_child(closer_fn fn)
{
    int base = open("/dev/null", O_RDONLY); /* not CLOEXEC: as inherited */
    STEP(1, base >= 0);
    for (int fd = 3; fd <= 12; fd++)
        if (fd != base)
            STEP(2, dup2(base, fd) == fd);
    STEP(3, dup2(base, 200) == 200 && dup2(base, 900) == 900);
    int keep[] = {900, 2, -1, 7, 0, 7, 1, 12, 5000 /* not open */, -42};
    STEP(4, fn(keep, sizeof(keep) / sizeof(keep[0])) == 0);
    int got[64];
    size_t n = open_fds(got, 64);
    static const int want[] = {0, 1, 2, 7, 12, 900};
    STEP(5, n == sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < n; i++)
        STEP(6, got[i] == want[i]);
    _exit(C_OK);
}

static int fork_closer(closer_fn fn)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        closer_child(fn);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void test_fds_close_except(void **state)
{
    (void)state;
    expect_exit(fork_closer(cw_fds_close_except), C_OK);
}

static void test_fds_close_except_walk(void **state)
{
    (void)state;
    expect_exit(fork_closer(cw_fds_close_except_walk), C_OK);
}

static void close_all_child(closer_fn fn)
{
    STEP(1, dup2(2, 50) == 50);
    STEP(2, fn(NULL, 0) == 0);
    int got[8];
    STEP(3, open_fds(got, 8) == 0); /* even 0, 1, 2 are gone */
    _exit(C_OK);
}

static void test_fds_empty_keep_closes_all(void **state)
{
    (void)state;
    closer_fn fns[] = {cw_fds_close_except, cw_fds_close_except_walk};
    for (int i = 0; i < 2; i++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            close_all_child(fns[i]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        expect_exit(status, C_OK);
    }
}

static void test_fds_bad_keep_list(void **state)
{
    (void)state;
    int before[64], after[64];
    size_t nb, na;
    int fd = dup(2);
    assert_true(fd >= 0);
    int keep[CW_FDS_KEEP_MAX + 1];
    for (size_t i = 0; i < CW_FDS_KEEP_MAX + 1; i++)
        keep[i] = (int)i;
    /* Refused before anything is closed: safe to call in this process. */
    nb = 0;
    for (int i = 0; i < 64; i++)
        if (fcntl(i, F_GETFD) >= 0)
            before[nb++] = i;
    errno = 0;
    assert_int_equal(cw_fds_close_except(keep, CW_FDS_KEEP_MAX + 1), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(cw_fds_close_except_walk(keep, CW_FDS_KEEP_MAX + 1), -1);
    assert_int_equal(cw_fds_close_except(NULL, 3), -1);
    assert_int_equal(errno, EINVAL);
    na = 0;
    for (int i = 0; i < 64; i++)
        if (fcntl(i, F_GETFD) >= 0)
            after[na++] = i;
    assert_int_equal(na, nb);
    assert_memory_equal(before, after, nb * sizeof(int));
    close(fd);
}

/* INT_MAX as a kept fd: the ranges around it must not wrap. */
static void int_max_child(closer_fn fn)
{
    STEP(1, dup2(2, 30) == 30);
    int keep[] = {INT_MAX, 1};
    STEP(2, fn(keep, 2) == 0);
    int got[8];
    size_t n = open_fds(got, 8);
    STEP(3, n == 1 && got[0] == 1);
    _exit(C_OK);
}

static void test_fds_int_max(void **state)
{
    (void)state;
    closer_fn fns[] = {cw_fds_close_except, cw_fds_close_except_walk};
    for (int i = 0; i < 2; i++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            int_max_child(fns[i]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        expect_exit(status, C_OK);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fds_close_except),
        cmocka_unit_test(test_fds_close_except_walk),
        cmocka_unit_test(test_fds_empty_keep_closes_all),
        cmocka_unit_test(test_fds_bad_keep_list),
        cmocka_unit_test(test_fds_int_max),
        cmocka_unit_test(test_device_allows_steady_state),
        cmocka_unit_test(test_device_link_allows_rendezvous),
        cmocka_unit_test(test_device_forbidden),
        cmocka_unit_test(test_device_link_forbidden),
        cmocka_unit_test(test_switch_forbidden),
        cmocka_unit_test(test_files_forbidden),
        cmocka_unit_test(test_status_after_entering),
        cmocka_unit_test(test_landlock_confines_fs),
        cmocka_unit_test(test_selftest_trigger_kills),
        cmocka_unit_test(test_bad_options_refused),
        cmocka_unit_test(test_reentry_killed),
    };
    return cmocka_run_group_tests(tests, setup_dirs, teardown_dirs);
}
