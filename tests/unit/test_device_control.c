/* The device's control channel (src/cli/device_control.c) against a fake
 * event loop: good messages reach the callbacks with the right values, and
 * every bad one is answered with an error, calls nothing, and leaks no fd. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/device_control.h"
#include "system/control.h"

struct fake {
    int attaches, detaches, stats;
    uint32_t capacity;
    int attach_result;
    struct cw_port port;
};

static int fake_attach(void *ctx, struct cw_port_fds *f, uint32_t capacity, char *err,
                       size_t errlen)
{
    struct fake *k = ctx;
    k->attaches++;
    k->capacity = capacity;
    if (k->attach_result < 0) {
        cw_port_fds_close(f);
        snprintf(err, errlen, "fake refusal");
        return -1;
    }
    /* The real loop attaches: prove the fds are a usable port. */
    return cw_port_attach(&k->port, f, 1, capacity, false);
}

static void fake_detach(void *ctx)
{
    struct fake *k = ctx;
    k->detaches++;
    cw_port_detach(&k->port);
}

static void fake_stats(void *ctx, json_t *reply)
{
    struct fake *k = ctx;
    k->stats++;
    json_object_set_new(reply, "tx_frames", json_integer(42));
}

static const struct cw_device_ctl_ops ops = {fake_attach, fake_detach, fake_stats};

struct ctx {
    int sv[2]; /* [0] launcher, [1] device */
    struct fake fake;
};

static int open_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    assert_int_equal(cw_ctl_socketpair(c->sv), 0);
    cw_port_fds_reset(&c->fake.port.fds);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    cw_port_detach(&c->fake.port);
    close(c->sv[0]);
    close(c->sv[1]);
    free(c);
    return 0;
}

static void send_json(struct ctx *c, const char *text, const int *fds, unsigned nfds)
{
    json_error_t je;
    json_t *m = json_loads(text, 0, &je);
    assert_non_null(m);
    assert_int_equal(cw_ctl_send(c->sv[0], m, fds, nfds), 0);
    json_decref(m);
}

/* The next message the device sent back; NULL if none. */
static json_t *reply(struct ctx *c)
{
    json_t *m;
    int fds[CW_CTL_MAX_FDS];
    unsigned n;
    if (cw_ctl_recv(c->sv[0], &m, fds, &n, NULL, 0) != CW_CTL_MSG)
        return NULL;
    assert_int_equal(n, 0);
    return m;
}

static void expect_error(struct ctx *c, const char *contains)
{
    json_t *m = reply(c);
    assert_non_null(m);
    assert_string_equal(cw_ctl_op(m), "error");
    const char *e = json_string_value(json_object_get(m, "error"));
    assert_non_null(e);
    if (contains && !strstr(e, contains))
        fail_msg("error '%s' does not mention '%s'", e, contains);
    json_decref(m);
}

static void make_port(struct cw_port_fds *f, int arr[CW_CTL_PORT_FDS])
{
    assert_int_equal(cw_port_fds_create(f, CW_PORT_MIN_CAPACITY), 0);
    cw_ctl_port_fds_array(f, arr);
}

static void test_port_attach_and_detach(void **state)
{
    struct ctx *c = *state;
    struct cw_port_fds f;
    int arr[CW_CTL_PORT_FDS];
    make_port(&f, arr);
    send_json(c, "{\"op\":\"port\",\"side\":1,\"capacity\":262144}", arr, CW_CTL_PORT_FDS);
    cw_port_fds_close(&f);
    assert_true(cw_device_ctl_on_readable(c->sv[1], &ops, &c->fake));
    assert_int_equal(c->fake.attaches, 1);
    assert_int_equal(c->fake.capacity, 262144);
    assert_true(cw_port_attached(&c->fake.port));
    assert_null(reply(c)); /* success is told by the link event, not a reply */

    send_json(c, "{\"op\":\"detach\"}", NULL, 0);
    assert_true(cw_device_ctl_on_readable(c->sv[1], &ops, &c->fake));
    assert_int_equal(c->fake.detaches, 1);
    assert_false(cw_port_attached(&c->fake.port));
}

static void test_bad_port_messages_leak_nothing(void **state)
{
    struct ctx *c = *state;
    static const struct {
        const char *json;
        unsigned nfds;
        const char *why;
    } cases[] = {
        {"{\"op\":\"port\",\"side\":0,\"capacity\":262144}", 5, "side"},
        {"{\"op\":\"port\",\"side\":1,\"capacity\":262145}", 5, "capacity"},
        {"{\"op\":\"port\",\"side\":1,\"capacity\":1024}", 5, "capacity"},
        {"{\"op\":\"port\",\"side\":1,\"capacity\":-262144}", 5, "capacity"},
        {"{\"op\":\"port\",\"side\":1,\"capacity\":\"262144\"}", 5, "capacity"},
        {"{\"op\":\"port\",\"side\":1}", 5, "capacity"},
        {"{\"op\":\"port\",\"side\":1,\"capacity\":262144,\"id\":3}", 5, "id"},
        {"{\"op\":\"port\",\"side\":1,\"capacity\":262144}", 4, "5 fds"},
        {"{\"op\":\"port\",\"side\":1,\"capacity\":262144}", 6, "5 fds"},
        {"{\"op\":\"port\",\"side\":1,\"capacity\":262144}", 0, "5 fds"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int before = open_fd_count();
        int fds[8];
        for (unsigned k = 0; k < cases[i].nfds; k++)
            fds[k] = eventfd(0, EFD_CLOEXEC);
        send_json(c, cases[i].json, fds, cases[i].nfds);
        cw_ctl_close_fds(fds, cases[i].nfds);
        assert_true(cw_device_ctl_on_readable(c->sv[1], &ops, &c->fake));
        expect_error(c, cases[i].why);
        assert_int_equal(c->fake.attaches, 0);
        assert_int_equal(open_fd_count(), before);
    }
}

static void test_wrong_fd_kinds_refused_by_attach(void **state)
{
    struct ctx *c = *state;
    /* Five eventfds: the memfd slot holds no memfd. The loop's attach
     * (cw_port_attach) must refuse it and close everything. */
    int before = open_fd_count();
    int fds[5];
    for (int k = 0; k < 5; k++)
        fds[k] = eventfd(0, EFD_CLOEXEC);
    send_json(c, "{\"op\":\"port\",\"side\":1,\"capacity\":262144}", fds, 5);
    cw_ctl_close_fds(fds, 5);
    assert_true(cw_device_ctl_on_readable(c->sv[1], &ops, &c->fake));
    expect_error(c, "attach");
    assert_int_equal(c->fake.attaches, 1);
    assert_false(cw_port_attached(&c->fake.port));
    assert_int_equal(open_fd_count(), before);

    c->fake.attach_result = -1;
    struct cw_port_fds f;
    int arr[CW_CTL_PORT_FDS];
    make_port(&f, arr);
    send_json(c, "{\"op\":\"port\",\"side\":1,\"capacity\":262144}", arr, 5);
    cw_port_fds_close(&f);
    assert_true(cw_device_ctl_on_readable(c->sv[1], &ops, &c->fake));
    expect_error(c, "fake refusal");
    assert_int_equal(open_fd_count(), before);
}

static void test_stats_echoes_seq(void **state)
{
    struct ctx *c = *state;
    send_json(c, "{\"op\":\"stats\",\"seq\":77}", NULL, 0);
    send_json(c, "{\"op\":\"stats\"}", NULL, 0);
    assert_true(cw_device_ctl_on_readable(c->sv[1], &ops, &c->fake));
    assert_int_equal(c->fake.stats, 2);
    json_t *m = reply(c);
    assert_string_equal(cw_ctl_op(m), "stats");
    assert_int_equal(json_integer_value(json_object_get(m, "seq")), 77);
    assert_int_equal(json_integer_value(json_object_get(m, "tx_frames")), 42);
    json_decref(m);
    m = reply(c);
    assert_null(json_object_get(m, "seq"));
    json_decref(m);

    send_json(c, "{\"op\":\"stats\",\"seq\":-1}", NULL, 0);
    send_json(c, "{\"op\":\"stats\",\"seq\":\"x\"}", NULL, 0);
    send_json(c, "{\"op\":\"stats\",\"verbose\":true}", NULL, 0);
    assert_true(cw_device_ctl_on_readable(c->sv[1], &ops, &c->fake));
    expect_error(c, "seq");
    expect_error(c, "seq");
    expect_error(c, "verbose");
    assert_int_equal(c->fake.stats, 2);
}

static void test_unknown_op_and_stray_fds(void **state)
{
    struct ctx *c = *state;
    int before = open_fd_count();
    send_json(c, "{\"op\":\"reboot\"}", NULL, 0);
    int fds[2] = {eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC)};
    send_json(c, "{\"op\":\"stats\"}", fds, 2);
    send_json(c, "{\"op\":\"detach\",\"id\":1}", NULL, 0);
    cw_ctl_close_fds(fds, 2);
    assert_true(cw_device_ctl_on_readable(c->sv[1], &ops, &c->fake));
    expect_error(c, "unknown op");
    expect_error(c, "fds");
    expect_error(c, "id");
    assert_int_equal(c->fake.stats + c->fake.detaches, 0);
    assert_int_equal(open_fd_count(), before);
    /* A malformed datagram gets an error and the channel lives on. */
    assert_int_equal(send(c->sv[0], "nonsense", 8, 0), 8);
    assert_true(cw_device_ctl_on_readable(c->sv[1], &ops, &c->fake));
    expect_error(c, "JSON");
}

static void test_launcher_gone(void **state)
{
    struct ctx *c = *state;
    shutdown(c->sv[0], SHUT_WR);
    assert_false(cw_device_ctl_on_readable(c->sv[1], &ops, &c->fake));
}

static void test_events(void **state)
{
    struct ctx *c = *state;
    assert_int_equal(cw_device_ctl_ready(c->sv[1]), 0);
    assert_int_equal(cw_device_ctl_link(c->sv[1], false, "why"), 0);
    json_t *m = reply(c);
    assert_string_equal(json_string_value(json_object_get(m, "event")), "ready");
    json_decref(m);
    m = reply(c);
    assert_string_equal(json_string_value(json_object_get(m, "event")), "link");
    assert_true(json_is_false(json_object_get(m, "up")));
    assert_string_equal(json_string_value(json_object_get(m, "reason")), "why");
    json_decref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_port_attach_and_detach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_port_messages_leak_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_fd_kinds_refused_by_attach, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_echoes_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_op_and_stray_fds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_launcher_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
