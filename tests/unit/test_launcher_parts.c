/* The launcher's parts that need no child process: prefixed console lines
 * (src/system/lines.c), the switch's port plan and config message
 * (switch_msg.c), the system control socket (stats_server.c) and the
 * runtime directory names (rundir.c). Hostile input throughout: guest
 * console bytes, clients that send garbage, too much, or never read. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "system/lines.h"
#include "system/rundir.h"
#include "system/stats_server.h"
#include "system/switch_msg.h"

/* --- lines --- */

static char *drain(int fd)
{
    static char buf[65536];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void nonblocking_pipe(int p[2])
{
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
}

static void test_lines_prefix_and_sanitise(void **state)
{
    (void)state;
    int p[2];
    nonblocking_pipe(p);
    struct cw_lines l;
    cw_lines_init(&l, "vm1| ", false);
    static const char in[] = "hello\r\nwor";
    cw_lines_feed(&l, in, sizeof(in) - 1, p[1]);
    assert_string_equal(drain(p[0]), "vm1| hello\n");
    static const char in2[] = "ld\x1b[31m\x07\tend\x7f\n";
    cw_lines_feed(&l, in2, sizeof(in2) - 1, p[1]);
    /* Escape, bell and DEL become '?'; tab stays; the line joins its halves. */
    assert_string_equal(drain(p[0]), "vm1| world?[31m?\tend?\n");
    cw_lines_feed(&l, "partial", 7, p[1]);
    assert_string_equal(drain(p[0]), "");
    cw_lines_flush(&l, p[1]);
    assert_string_equal(drain(p[0]), "vm1| partial\n");
    cw_lines_flush(&l, p[1]); /* nothing pending: nothing written */
    assert_string_equal(drain(p[0]), "");
    /* NUL bytes cannot cut a line short. */
    cw_lines_feed(&l, "a\0b\n", 4, p[1]);
    assert_string_equal(drain(p[0]), "vm1| a?b\n");
    close(p[0]);
    close(p[1]);
}

static void test_lines_long_line_is_cut(void **state)
{
    (void)state;
    int p[2];
    nonblocking_pipe(p);
    struct cw_lines l;
    cw_lines_init(&l, "x| ", false);
    char big[3000];
    memset(big, 'a', sizeof(big));
    cw_lines_feed(&l, big, sizeof(big), p[1]);
    cw_lines_feed(&l, "\n", 1, p[1]);
    char *out = drain(p[0]);
    /* 1023 + 1023 + 954 characters, each piece its own prefixed line. */
    int lines = 0;
    for (char *s = out, *nl; (nl = strchr(s, '\n')); s = nl + 1) {
        assert_memory_equal(s, "x| ", 3);
        size_t n = (size_t)(nl - s) - 3;
        assert_true(n == CW_LINES_MAX - 1 || (lines == 2 && n == 3000 - 2 * (CW_LINES_MAX - 1)));
        lines++;
    }
    assert_int_equal(lines, 3);
    close(p[0]);
    close(p[1]);
}

static void test_lines_guest_exit(void **state)
{
    (void)state;
    assert_int_equal(cw_lines_guest_exit("CAUSEWAY-GUEST: exit=0"), 0);
    assert_int_equal(cw_lines_guest_exit("CAUSEWAY-GUEST: exit=143"), 143);
    assert_int_equal(cw_lines_guest_exit("CAUSEWAY-GUEST: exit=255 reason=modprobe"), 255);
    assert_int_equal(cw_lines_guest_exit("CAUSEWAY-GUEST: exit=256"), -1);
    assert_int_equal(cw_lines_guest_exit("CAUSEWAY-GUEST: exit=99999999999"), -1);
    assert_int_equal(cw_lines_guest_exit("CAUSEWAY-GUEST: exit="), -1);
    assert_int_equal(cw_lines_guest_exit("CAUSEWAY-GUEST: exit=1x"), -1);
    assert_int_equal(cw_lines_guest_exit(" CAUSEWAY-GUEST: exit=1"), -1);
    assert_int_equal(cw_lines_guest_exit("CAUSEWAY-GUEST: script-start"), -1);

    int p[2];
    nonblocking_pipe(p);
    struct cw_lines l;
    cw_lines_init(&l, "g| ", true);
    assert_int_equal(l.guest_exit, -1);
    static const char con[] = "CAUSEWAY-GUEST: exit=0\r\nnoise\r\nCAUSEWAY-GUEST: exit=7\r\n"
                              "echo CAUSEWAY-GUEST: exit=0\r\n";
    cw_lines_feed(&l, con, sizeof(con) - 1, p[1]);
    assert_int_equal(l.guest_exit, 7); /* the last line that is the marker itself */
    struct cw_lines plain;
    cw_lines_init(&plain, "d| ", false);
    cw_lines_feed(&plain, con, sizeof(con) - 1, p[1]);
    assert_int_equal(plain.guest_exit, -1); /* only consoles are scanned */
    close(p[0]);
    close(p[1]);
}

static void test_lines_read_until_eof(void **state)
{
    (void)state;
    int in[2], out[2];
    nonblocking_pipe(in);
    nonblocking_pipe(out);
    struct cw_lines l;
    cw_lines_init(&l, "q| ", true);
    assert_true(cw_lines_read(&l, in[0], out[1], 1 << 20)); /* nothing yet */
    assert_int_equal(write(in[1], "one\ntwo", 7), 7);
    assert_true(cw_lines_read(&l, in[0], out[1], 1 << 20));
    assert_string_equal(drain(out[0]), "q| one\n");
    close(in[1]);
    assert_false(cw_lines_read(&l, in[0], out[1], 1 << 20));
    assert_string_equal(drain(out[0]), "q| two\n"); /* flushed at end of file */
    close(in[0]);
    close(out[0]);
    close(out[1]);
}

/* --- switch plan and config --- */

static struct cw_system *two_switches(void)
{
    struct cw_system *s = calloc(1, sizeof(*s));
    s->path = "/x/sys.json";
    s->n_switches = 2;
    strcpy(s->switches[0].name, "sw0");
    strcpy(s->switches[1].name, "sw1");
    s->n_domains = 2;
    strcpy(s->domains[0], "high");
    strcpy(s->domains[1], "low");
    s->n_vms = 2;
    strcpy(s->vms[0].name, "a");
    s->vms[0].n_nics = 2;
    s->vms[0].nics[0] = (struct cw_sys_nic){.switch_index = 1, .mac = {0x52, 0x54, 0, 0, 0, 1},
                                            .domain_index = 0, .n_ipv4 = 1,
                                            .ipv4 = {{0x0a630001, 24}}};
    s->vms[0].nics[1] = (struct cw_sys_nic){.switch_index = 0, .mac = {0x52, 0x54, 0, 0, 1, 1},
                                            .domain_index = 1, .n_ipv6 = 1};
    s->vms[0].nics[1].ipv6[0] = (struct cw_ip6_prefix){{0xfd, 0, [15] = 1}, 64};
    strcpy(s->vms[1].name, "b");
    s->vms[1].n_nics = 1;
    s->vms[1].nics[0] = (struct cw_sys_nic){.switch_index = 1, .mac = {0x52, 0x54, 0, 0, 0, 2},
                                            .domain_index = 1};
    s->n_uplinks = 2;
    s->uplinks[0] = (struct cw_sys_uplink){.switch_index = 1, .tap = "cwtap0",
                                           .domain_index = 1};
    s->uplinks[1] = (struct cw_sys_uplink){.switch_index = 1, .tap = "cwtap1",
                                           .domain_index = 0, .mac = {2, 0, 0, 0, 0, 0xfe}};
    s->policy.n_rules = 2;
    s->policy.rules[0] = (struct cw_policy_rule){
        .from_domain = 1, .to_domain = 0, .action = CW_RULE_ALLOW, .ethertype = 0x800,
        .has_proto = true, .ip_proto = 17, .has_dst4 = true, .dst4 = {0x0a630000, 16},
        .src_port = {0, 65535}, .dst_port = {5001, 5001}, .icmp_type = -1, .line = 12};
    s->policy.rules[1] = (struct cw_policy_rule){
        .from_domain = 0, .to_domain = 1, .both = true, .action = CW_RULE_DENY,
        .src_port = {0, 65535}, .dst_port = {0, 65535}, .icmp_type = 8, .line = 20};
    return s;
}

static void test_switch_plan_order(void **state)
{
    (void)state;
    struct cw_system *s = two_switches();
    struct cw_switch_plan p;
    assert_int_equal(cw_switch_plan(s, 1, &p), 0);
    /* NICs in file order, then uplinks. */
    assert_int_equal(p.n_ports, 4);
    assert_true(p.port[0].vm == 0 && p.port[0].nic == 0 && p.port[0].uplink == -1);
    assert_true(p.port[1].vm == 1 && p.port[1].nic == 0);
    assert_true(p.port[2].uplink == 0 && p.port[2].vm == -1);
    assert_true(p.port[3].uplink == 1);
    assert_int_equal(cw_switch_plan_find_nic(&p, 1, 0), 1);
    assert_int_equal(cw_switch_plan_find_nic(&p, 0, 1), -1); /* on the other switch */
    assert_int_equal(cw_switch_plan(s, 0, &p), 0);
    assert_int_equal(p.n_ports, 1);
    assert_int_equal(cw_switch_plan_find_nic(&p, 0, 1), 0);
    free(s);
}

static void test_switch_plan_too_many_ports(void **state)
{
    (void)state;
    struct cw_system *s = calloc(1, sizeof(*s));
    s->n_switches = 1;
    s->n_vms = CW_SYS_MAX_VMS;
    for (unsigned v = 0; v < s->n_vms; v++)
        s->vms[v].n_nics = 2; /* 128 NICs on one switch */
    struct cw_switch_plan p;
    assert_int_equal(cw_switch_plan(s, 0, &p), -1);
    assert_true(p.n_ports <= CW_SYS_MAX_PORTS);
    s->n_vms = CW_SYS_MAX_PORTS / 2;
    assert_int_equal(cw_switch_plan(s, 0, &p), 0);
    assert_int_equal(p.n_ports, CW_SYS_MAX_PORTS);
    s->n_uplinks = 1; /* one more: over */
    assert_int_equal(cw_switch_plan(s, 0, &p), -1);
    free(s);
}

static void test_switch_config_message(void **state)
{
    (void)state;
    struct cw_system *s = two_switches();
    struct cw_switch_plan p;
    assert_int_equal(cw_switch_plan(s, 1, &p), 0);
    json_t *m = cw_switch_config_msg(s, 1, &p);
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "op")), "config");
    assert_string_equal(json_string_value(json_object_get(m, "name")), "sw1");
    json_t *dom = json_object_get(m, "domains");
    assert_int_equal(json_array_size(dom), 2);
    assert_string_equal(json_string_value(json_array_get(dom, 1)), "low");

    json_t *ports = json_object_get(m, "ports");
    assert_int_equal(json_array_size(ports), 4);
    json_t *p0 = json_array_get(ports, 0);
    assert_int_equal(json_integer_value(json_object_get(p0, "id")), 0);
    assert_string_equal(json_string_value(json_object_get(p0, "name")), "a/nic0");
    assert_string_equal(json_string_value(json_object_get(p0, "kind")), "nic");
    assert_string_equal(json_string_value(json_object_get(p0, "mac")), "52:54:00:00:00:01");
    assert_string_equal(json_string_value(json_object_get(p0, "domain")), "high");
    assert_string_equal(json_string_value(json_array_get(json_object_get(p0, "ipv4"), 0)),
                        "10.99.0.1/24");
    assert_int_equal(json_array_size(json_object_get(p0, "ipv6")), 0);
    json_t *p2 = json_array_get(ports, 2);
    assert_string_equal(json_string_value(json_object_get(p2, "name")), "uplink/cwtap0");
    assert_string_equal(json_string_value(json_object_get(p2, "kind")), "uplink");
    assert_null(json_object_get(p2, "mac")); /* none set: any */
    json_t *p3 = json_array_get(ports, 3);
    assert_string_equal(json_string_value(json_object_get(p3, "mac")), "02:00:00:00:00:fe");
    json_decref(m);

    assert_int_equal(cw_switch_plan(s, 0, &p), 0);
    m = cw_switch_config_msg(s, 0, &p);
    p0 = json_array_get(json_object_get(m, "ports"), 0);
    assert_string_equal(json_string_value(json_object_get(p0, "name")), "a/nic1");
    assert_string_equal(json_string_value(json_array_get(json_object_get(p0, "ipv6"), 0)),
                        "fd00::1/64");

    json_t *rules = json_object_get(m, "rules");
    assert_int_equal(json_array_size(rules), 2);
    json_t *r0 = json_array_get(rules, 0);
    assert_string_equal(json_string_value(json_object_get(r0, "from")), "low");
    assert_string_equal(json_string_value(json_object_get(r0, "to")), "high");
    assert_true(json_is_false(json_object_get(r0, "both")));
    assert_string_equal(json_string_value(json_object_get(r0, "action")), "allow");
    assert_int_equal(json_integer_value(json_object_get(r0, "ethertype")), 2048);
    assert_int_equal(json_integer_value(json_object_get(r0, "proto")), 17);
    assert_string_equal(json_string_value(json_object_get(r0, "dst4")), "10.99.0.0/16");
    assert_null(json_object_get(r0, "src4"));
    assert_null(json_object_get(r0, "src_port")); /* 0-65535: any */
    assert_int_equal(json_integer_value(json_array_get(json_object_get(r0, "dst_port"), 0)),
                     5001);
    assert_null(json_object_get(r0, "icmp_type"));
    assert_int_equal(json_integer_value(json_object_get(r0, "line")), 12);
    json_t *r1 = json_array_get(rules, 1);
    assert_true(json_is_true(json_object_get(r1, "both")));
    assert_string_equal(json_string_value(json_object_get(r1, "action")), "deny");
    assert_int_equal(json_integer_value(json_object_get(r1, "icmp_type")), 8);
    assert_null(json_object_get(r1, "proto"));
    assert_null(json_object_get(r1, "ethertype"));
    json_decref(m);
    free(s);
}

/* --- the system control socket --- */

struct srv_ctx {
    char dir[64];
    char path[128];
    struct cw_srv srv;
};

static int srv_setup(void **state)
{
    struct srv_ctx *c = calloc(1, sizeof(*c));
    strcpy(c->dir, "/tmp/cw-test-srv-XXXXXX");
    assert_non_null(mkdtemp(c->dir));
    snprintf(c->path, sizeof(c->path), "%s/s.sock", c->dir);
    char err[256];
    assert_int_equal(cw_srv_open(&c->srv, c->path, err, sizeof(err)), 0);
    *state = c;
    return 0;
}

static int srv_teardown(void **state)
{
    struct srv_ctx *c = *state;
    cw_srv_close(&c->srv);
    unlink(c->path);
    rmdir(c->dir);
    free(c);
    return 0;
}

static int client(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Index of the (only) client slot in use. */
static int slot_of(struct cw_srv *s, int nth)
{
    for (int i = 0; i < CW_SRV_MAX_CLIENTS; i++)
        if (s->c[i].fd >= 0 && nth-- == 0)
            return i;
    return -1;
}

static void read_line(int fd, char *buf, size_t len)
{
    size_t n = 0;
    while (n < len - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 2000), 1);
        ssize_t r = recv(fd, buf + n, len - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (memchr(buf, '\n', n))
            break;
    }
    buf[n] = '\0';
}

static void test_srv_request_reply(void **state)
{
    struct srv_ctx *c = *state;
    struct stat st;
    assert_int_equal(stat(c->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    int fd = client(c->path);
    cw_srv_accept(&c->srv, 0);
    int i = slot_of(&c->srv, 0);
    assert_true(i >= 0);
    json_t *req;
    assert_int_equal(cw_srv_read(&c->srv, i, &req, 0), 0); /* nothing yet */
    /* Two requests in one write, the second split across writes. */
    assert_int_equal(send(fd, "{\"op\":\"stats\"}\n{\"op\":", 21, 0), 21);
    assert_int_equal(cw_srv_read(&c->srv, i, &req, 0), 1);
    assert_string_equal(json_string_value(json_object_get(req, "op")), "stats");
    json_decref(req);
    assert_int_equal(cw_srv_read(&c->srv, i, &req, 0), 0);
    assert_int_equal(send(fd, "\"x\"}\n", 5, 0), 5);
    assert_int_equal(cw_srv_read(&c->srv, i, &req, 0), 1);
    assert_string_equal(json_string_value(json_object_get(req, "op")), "x");
    json_decref(req);

    json_t *rep = json_pack("{s:s, s:i}", "op", "stats", "n", 5);
    cw_srv_reply(&c->srv, i, rep, 0);
    json_decref(rep);
    char line[256];
    read_line(fd, line, sizeof(line));
    assert_string_equal(line, "{\"op\":\"stats\",\"n\":5}\n");
    assert_false(cw_srv_wants_write(&c->srv, i));

    /* A half-closed client waiting for its answer still gets it. */
    c->srv.c[i].waiting = true;
    assert_false(cw_srv_wants_read(&c->srv, i)); /* one request at a time */
    shutdown(fd, SHUT_WR);
    c->srv.c[i].waiting = false;
    assert_int_equal(cw_srv_read(&c->srv, i, &req, 0), -1); /* nothing asked: closed */
    assert_int_equal(c->srv.c[i].fd, -1);
    close(fd);
}

static void test_srv_bad_clients(void **state)
{
    struct srv_ctx *c = *state;
    char line[256];
    /* Not JSON: an error line, then closed. */
    int fd = client(c->path);
    cw_srv_accept(&c->srv, 0);
    int i = slot_of(&c->srv, 0);
    assert_int_equal(send(fd, "hello\n", 6, 0), 6);
    json_t *req;
    assert_int_equal(cw_srv_read(&c->srv, i, &req, 0), -1);
    assert_null(req);
    read_line(fd, line, sizeof(line));
    assert_non_null(strstr(line, "\"error\""));
    assert_int_equal(recv(fd, line, sizeof(line), 0), 0); /* closed by the server */
    close(fd);

    /* A line longer than the limit: refused without waiting for its end. */
    fd = client(c->path);
    cw_srv_accept(&c->srv, 0);
    i = slot_of(&c->srv, 0);
    char big[CW_SRV_LINE_MAX + 10];
    memset(big, ' ', sizeof(big));
    assert_int_equal(send(fd, big, sizeof(big), 0), (ssize_t)sizeof(big));
    int r;
    while ((r = cw_srv_read(&c->srv, i, &req, 0)) == 0)
        ;
    assert_int_equal(r, -1);
    read_line(fd, line, sizeof(line));
    assert_non_null(strstr(line, "too long"));
    close(fd);

    /* An idle client is dropped after the idle time, a waiting one is not. */
    int a = client(c->path), b = client(c->path);
    cw_srv_accept(&c->srv, 1000);
    int ia = slot_of(&c->srv, 0), ib = slot_of(&c->srv, 1);
    c->srv.c[ib].waiting = true;
    cw_srv_tick(&c->srv, 1000 + CW_SRV_IDLE_MS - 1);
    assert_true(c->srv.c[ia].fd >= 0);
    cw_srv_tick(&c->srv, 1000 + CW_SRV_IDLE_MS + 1);
    assert_int_equal(c->srv.c[ia].fd, -1);
    assert_true(c->srv.c[ib].fd >= 0);
    cw_srv_drop(&c->srv, ib);
    close(a);
    close(b);
}

static void test_srv_client_limit_and_unread_replies(void **state)
{
    struct srv_ctx *c = *state;
    int fds[CW_SRV_MAX_CLIENTS + 2];
    for (int k = 0; k < CW_SRV_MAX_CLIENTS + 2; k++) {
        fds[k] = client(c->path); /* accepted one by one: the backlog is short */
        cw_srv_accept(&c->srv, 0);
    }
    int used = 0;
    for (int i = 0; i < CW_SRV_MAX_CLIENTS; i++)
        used += c->srv.c[i].fd >= 0;
    assert_int_equal(used, CW_SRV_MAX_CLIENTS);
    /* The extra ones were closed at once. */
    char b;
    assert_int_equal(recv(fds[CW_SRV_MAX_CLIENTS + 1], &b, 1, 0), 0);
    for (int k = 0; k < CW_SRV_MAX_CLIENTS + 2; k++)
        close(fds[k]);
    for (int i = 0; i < CW_SRV_MAX_CLIENTS; i++)
        cw_srv_drop(&c->srv, i);

    /* A client that never reads: its queue is bounded, then it is dropped. */
    int fd = client(c->path);
    cw_srv_accept(&c->srv, 0);
    int i = slot_of(&c->srv, 0);
    char *s = malloc(1 << 20);
    memset(s, 'x', (1 << 20) - 1);
    s[(1 << 20) - 1] = '\0';
    json_t *rep = json_pack("{s:s}", "p", s);
    int sent = 0;
    while (c->srv.c[i].fd >= 0 && sent < 64) {
        cw_srv_reply(&c->srv, i, rep, 0);
        sent++;
        assert_true(c->srv.c[i].fd < 0 || c->srv.c[i].out_len <= CW_SRV_REPLY_MAX);
    }
    assert_int_equal(c->srv.c[i].fd, -1);
    assert_true(sent < 64);
    json_decref(rep);
    free(s);
    close(fd);
}

static void test_srv_socket_takeover(void **state)
{
    struct srv_ctx *c = *state;
    char err[256];
    struct cw_srv other;
    /* Someone listens there: refused, their socket untouched. */
    assert_int_equal(cw_srv_open(&other, c->path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, c->path));
    int fd = client(c->path);
    close(fd);
    /* A dead launcher's socket file is taken over. */
    close(c->srv.listen_fd);
    c->srv.listen_fd = -1;
    assert_int_equal(cw_srv_open(&other, c->path, err, sizeof(err)), 0);
    fd = client(c->path);
    close(fd);
    cw_srv_close(&other);
    /* A regular file there is not ours to remove. */
    int f = open(c->path, O_CREAT | O_WRONLY, 0600);
    close(f);
    assert_int_equal(cw_srv_open(&other, c->path, err, sizeof(err)), -1);
    struct stat st;
    assert_int_equal(stat(c->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
}

static void test_rundir_names(void **state)
{
    (void)state;
    char n[40];
    cw_rundir_system_name("/a/b/three.json", n, sizeof(n));
    assert_string_equal(n, "three");
    cw_rundir_system_name("x y/../we$ird name.JSON", n, sizeof(n));
    assert_string_equal(n, "we_ird_name_JSON");
    cw_rundir_system_name("/a/", n, sizeof(n));
    assert_string_equal(n, "system");
    cw_rundir_system_name("/a/0123456789012345678901234567890123456789.json", n, sizeof(n));
    assert_int_equal(strlen(n), 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_prefix_and_sanitise),
        cmocka_unit_test(test_lines_long_line_is_cut),
        cmocka_unit_test(test_lines_guest_exit),
        cmocka_unit_test(test_lines_read_until_eof),
        cmocka_unit_test(test_switch_plan_order),
        cmocka_unit_test(test_switch_plan_too_many_ports),
        cmocka_unit_test(test_switch_config_message),
        cmocka_unit_test_setup_teardown(test_srv_request_reply, srv_setup, srv_teardown),
        cmocka_unit_test_setup_teardown(test_srv_bad_clients, srv_setup, srv_teardown),
        cmocka_unit_test_setup_teardown(test_srv_client_limit_and_unread_replies, srv_setup,
                                        srv_teardown),
        cmocka_unit_test_setup_teardown(test_srv_socket_takeover, srv_setup, srv_teardown),
        cmocka_unit_test(test_rundir_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
