/* Control messages (src/system/control.c): round trips with fds, and every
 * way a hostile peer can send a bad datagram: each must be refused with all
 * of its fds closed (no leak), and leave the socket usable. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "system/control.h"

static int open_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* A raw datagram with arbitrary bytes and fds, bypassing cw_ctl_send. */
static void raw_send(int fd, const void *data, size_t len, const int *fds, unsigned nfds)
{
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(int) * 16)];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof(ctl));
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    assert_int_equal(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

struct pair {
    int sv[2];
};

static int setup(void **state)
{
    struct pair *p = malloc(sizeof(*p));
    assert_int_equal(cw_ctl_socketpair(p->sv), 0);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct pair *p = *state;
    close(p->sv[0]);
    if (p->sv[1] >= 0)
        close(p->sv[1]);
    free(p);
    return 0;
}

/* Sends a raw datagram and expects it refused with `want`, no fds left over,
 * and the socket still carrying a good message afterwards. */
static void expect_refused(struct pair *p, const void *data, size_t len, unsigned nfds,
                           enum cw_ctl_result want)
{
    int sent[16];
    for (unsigned i = 0; i < nfds; i++)
        sent[i] = eventfd(0, EFD_CLOEXEC);
    raw_send(p->sv[0], data, len, sent, nfds);
    cw_ctl_close_fds(sent, nfds); /* in flight: the receiver holds the only copies */
    int before = open_fd_count();
    json_t *m = (json_t *)1;
    int fds[CW_CTL_MAX_FDS];
    unsigned n = 99;
    char err[128];
    assert_int_equal(cw_ctl_recv(p->sv[1], &m, fds, &n, err, sizeof(err)), want);
    assert_null(m);
    assert_int_equal(n, 0);
    assert_int_equal(open_fd_count(), before);
    if (want == CW_CTL_BAD)
        assert_true(err[0] != '\0');
    if (want == CW_CTL_EOF)
        return;
    /* Still usable. */
    json_t *ok = json_pack("{s:s}", "op", "ping");
    assert_int_equal(cw_ctl_send(p->sv[0], ok, NULL, 0), 0);
    json_decref(ok);
    assert_int_equal(cw_ctl_recv(p->sv[1], &m, fds, &n, err, sizeof(err)), CW_CTL_MSG);
    assert_string_equal(cw_ctl_op(m), "ping");
    json_decref(m);
}

static void test_round_trip_with_fds(void **state)
{
    struct pair *p = *state;
    struct cw_port_fds pf;
    assert_int_equal(cw_port_fds_create(&pf, CW_PORT_MIN_CAPACITY), 0);
    int arr[CW_CTL_PORT_FDS];
    cw_ctl_port_fds_array(&pf, arr);
    json_t *m = json_pack("{s:s, s:i, s:i}", "op", "port", "side", 1, "capacity",
                          (int)CW_PORT_MIN_CAPACITY);
    assert_int_equal(cw_ctl_send(p->sv[0], m, arr, CW_CTL_PORT_FDS), 0);
    json_decref(m);

    int fds[CW_CTL_MAX_FDS];
    unsigned n;
    char err[128];
    assert_int_equal(cw_ctl_recv(p->sv[1], &m, fds, &n, err, sizeof(err)), CW_CTL_MSG);
    assert_string_equal(cw_ctl_op(m), "port");
    assert_int_equal(n, CW_CTL_PORT_FDS);
    for (unsigned i = 0; i < n; i++) {
        struct stat a, b;
        assert_int_equal(fstat(fds[i], &a), 0);
        assert_int_equal(fstat(arr[i], &b), 0);
        assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev); /* same object, same order */
        assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
    }
    uint64_t cap;
    assert_int_equal(cw_ctl_get_uint(m, "capacity", CW_PORT_MIN_CAPACITY, CW_PORT_MAX_CAPACITY,
                                     NULL, &cap, err, sizeof(err)), 0);
    assert_int_equal(cap, CW_PORT_MIN_CAPACITY);
    struct cw_port_fds got;
    assert_int_equal(cw_ctl_take_port_fds(fds, n, &got), 0);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(fds[i], -1);
    /* The received set attaches as a real port. */
    struct cw_port port = {0};
    assert_int_equal(cw_port_attach(&port, &got, 1, CW_PORT_MIN_CAPACITY, false), 0);
    cw_port_detach(&port);
    json_decref(m);
    cw_port_fds_close(&pf);
}

static void test_eof_and_again(void **state)
{
    struct pair *p = *state;
    json_t *m;
    int fds[CW_CTL_MAX_FDS];
    unsigned n;
    assert_int_equal(cw_ctl_recv(p->sv[1], &m, fds, &n, NULL, 0), CW_CTL_AGAIN);
    close(p->sv[0]);
    p->sv[0] = socket(AF_UNIX, SOCK_SEQPACKET, 0); /* for teardown */
    assert_int_equal(cw_ctl_recv(p->sv[1], &m, fds, &n, NULL, 0), CW_CTL_EOF);
    assert_null(m);
}

static void test_empty_datagram_with_fds_is_eof_and_closes_them(void **state)
{
    expect_refused(*state, "", 0, 3, CW_CTL_EOF);
}

static void test_not_json(void **state)
{
    static const char bad[] = "{\"op\":\"port\",";
    expect_refused(*state, bad, sizeof(bad) - 1, 5, CW_CTL_BAD);
}

static void test_not_an_object(void **state)
{
    static const char bad[] = "[\"op\",\"port\"]";
    expect_refused(*state, bad, sizeof(bad) - 1, 2, CW_CTL_BAD);
}

static void test_bad_ops(void **state)
{
    static const char *const bad[] = {
        "{}",
        "{\"op\":5}",
        "{\"op\":\"\"}",
        "{\"op\":null}",
        "{\"op\":\"0123456789012345678901234567890123\"}",
        "{\"op\":\"stats\",\"op\":\"port\"}",   /* duplicate key */
        "{\"op\":\"st\\u0000ats\"}",           /* NUL inside a string */
        "{\"op\":\"stats\"} trailing",
        "{\"op\":\"\xff\xfe\"}",               /* not UTF-8 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused(*state, bad[i], strlen(bad[i]), i % 3, CW_CTL_BAD);
}

static void test_too_many_fds(void **state)
{
    static const char good[] = "{\"op\":\"port\"}";
    /* The receiver's control buffer takes 8: the kernel truncates the rest
     * (closing them) and flags MSG_CTRUNC; the 8 that arrived are closed. */
    expect_refused(*state, good, sizeof(good) - 1, CW_CTL_MAX_FDS + 3, CW_CTL_BAD);
    struct pair *p = *state;
    int fds[CW_CTL_MAX_FDS + 1];
    for (unsigned i = 0; i < CW_CTL_MAX_FDS + 1; i++)
        fds[i] = 0;
    json_t *m = json_pack("{s:s}", "op", "x");
    errno = 0;
    assert_int_equal(cw_ctl_send(p->sv[0], m, fds, CW_CTL_MAX_FDS + 1), -1);
    assert_int_equal(errno, EINVAL);
    json_decref(m);
}

static void test_oversized(void **state)
{
    struct pair *p = *state;
    size_t len = CW_CTL_MAX_MSG + 1;
    char *big = malloc(len);
    memset(big, ' ', len);
    memcpy(big, "{\"op\":\"x\"}", 10);
    expect_refused(p, big, len, 1, CW_CTL_BAD);

    /* Exactly the maximum is accepted, also through cw_ctl_send. */
    json_t *m = json_pack("{s:s}", "op", "x");
    size_t pad = CW_CTL_MAX_MSG - strlen("{\"op\":\"x\",\"p\":\"\"}");
    char *s = malloc(pad + 1);
    memset(s, 'a', pad);
    s[pad] = '\0';
    json_object_set_new(m, "p", json_string(s));
    assert_int_equal(cw_ctl_send(p->sv[0], m, NULL, 0), 0);
    json_decref(m);
    json_t *got;
    int fds[CW_CTL_MAX_FDS];
    unsigned n;
    assert_int_equal(cw_ctl_recv(p->sv[1], &got, fds, &n, NULL, 0), CW_CTL_MSG);
    assert_int_equal(json_string_length(json_object_get(got, "p")), pad);
    json_decref(got);

    m = json_pack("{s:s, s:s}", "op", "x", "p", s);
    json_object_set_new(m, "q", json_string("z"));
    errno = 0;
    assert_int_equal(cw_ctl_send(p->sv[0], m, NULL, 0), -1);
    assert_int_equal(errno, EMSGSIZE);
    json_decref(m);
    free(s);
    free(big);
}

static void test_field_getters(void **state)
{
    (void)state;
    json_error_t je;
    json_t *m = json_loads("{\"op\":\"port\",\"id\":3,\"neg\":-1,\"big\":70000,\"s\":\"abc\","
                           "\"e\":\"\",\"b\":true,\"f\":1.5,\"n\":null}",
                           0, &je);
    assert_non_null(m);
    char err[128];
    uint64_t v;
    assert_int_equal(cw_ctl_get_uint(m, "id", 0, 63, NULL, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 3);
    assert_int_equal(cw_ctl_get_uint(m, "id", 4, 63, NULL, &v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "id"));
    assert_int_equal(cw_ctl_get_uint(m, "neg", 0, 63, NULL, &v, err, sizeof(err)), -1);
    assert_int_equal(cw_ctl_get_uint(m, "big", 0, 65535, NULL, &v, err, sizeof(err)), -1);
    assert_int_equal(cw_ctl_get_uint(m, "f", 0, 65535, NULL, &v, err, sizeof(err)), -1);
    assert_int_equal(cw_ctl_get_uint(m, "s", 0, 65535, NULL, &v, err, sizeof(err)), -1);
    assert_int_equal(cw_ctl_get_uint(m, "missing", 0, 9, NULL, &v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "missing"));
    uint64_t d = 7;
    assert_int_equal(cw_ctl_get_uint(m, "missing", 0, 9, &d, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 7);
    /* A default does not excuse a present value of the wrong type. */
    assert_int_equal(cw_ctl_get_uint(m, "n", 0, 9, &d, &v, err, sizeof(err)), -1);

    const char *s;
    assert_int_equal(cw_ctl_get_str(m, "s", 3, &s, err, sizeof(err)), 0);
    assert_string_equal(s, "abc");
    assert_int_equal(cw_ctl_get_str(m, "s", 2, &s, err, sizeof(err)), -1);
    assert_int_equal(cw_ctl_get_str(m, "e", 9, &s, err, sizeof(err)), -1);
    assert_int_equal(cw_ctl_get_str(m, "id", 9, &s, err, sizeof(err)), -1);

    bool b;
    assert_int_equal(cw_ctl_get_bool(m, "b", &b, err, sizeof(err)), 0);
    assert_true(b);
    assert_int_equal(cw_ctl_get_bool(m, "id", &b, err, sizeof(err)), -1);

    static const char *const all[] = {"id", "neg", "big", "s", "e", "b", "f", "n", NULL};
    static const char *const some[] = {"id", "neg", "big", "s", "e", "b", "f", NULL};
    assert_int_equal(cw_ctl_keys_only(m, all, err, sizeof(err)), 0);
    assert_int_equal(cw_ctl_keys_only(m, some, err, sizeof(err)), -1);
    assert_string_equal(err, "n: unknown key");
    assert_int_equal(cw_ctl_keys_only(m, NULL, err, sizeof(err)), -1);
    json_decref(m);
}

static void test_take_port_fds_wrong_count(void **state)
{
    (void)state;
    int before = open_fd_count();
    int fds[4];
    for (int i = 0; i < 4; i++)
        fds[i] = eventfd(0, EFD_CLOEXEC);
    struct cw_port_fds out;
    assert_int_equal(cw_ctl_take_port_fds(fds, 4, &out), -1);
    assert_int_equal(out.memfd, -1);
    assert_int_equal(open_fd_count(), before);
}

static void test_event_and_error_helpers(void **state)
{
    struct pair *p = *state;
    json_t *more = json_pack("{s:b}", "up", 1);
    assert_int_equal(cw_ctl_send_event(p->sv[0], "link", more), 0);
    assert_int_equal(json_object_size(more), 1); /* not consumed */
    json_decref(more);
    assert_int_equal(cw_ctl_send_error(p->sv[0], "unknown op"), 0);
    json_t *m;
    int fds[CW_CTL_MAX_FDS];
    unsigned n;
    assert_int_equal(cw_ctl_recv(p->sv[1], &m, fds, &n, NULL, 0), CW_CTL_MSG);
    assert_string_equal(cw_ctl_op(m), "event");
    assert_string_equal(json_string_value(json_object_get(m, "event")), "link");
    assert_true(json_is_true(json_object_get(m, "up")));
    json_decref(m);
    assert_int_equal(cw_ctl_recv(p->sv[1], &m, fds, &n, NULL, 0), CW_CTL_MSG);
    assert_string_equal(cw_ctl_op(m), "error");
    assert_string_equal(json_string_value(json_object_get(m, "error")), "unknown op");
    json_decref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_with_fds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eof_and_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_datagram_with_fds_is_eof_and_closes_them,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_an_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_fds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
        cmocka_unit_test(test_field_getters),
        cmocka_unit_test(test_take_port_fds_wrong_count),
        cmocka_unit_test_setup_teardown(test_event_and_error_helpers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
