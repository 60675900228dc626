/* causeway stats: the counters of a running system, from its launcher's
 * control socket (docs/CONTROL.md): a table per VM NIC and per switch port,
 * or the raw JSON. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "options.h"
#include "../system/rundir.h"

#define REPLY_MAX (64u << 20)
#define TIMEOUT_MS 5000

static void stats_usage(FILE *f)
{
    fputs("usage: causeway stats [--socket PATH] [--json] [--watch SECS]\n"
          "  --socket PATH   the system's control socket (printed by causeway run);\n"
          "                  default: the newest running system's\n"
          "  --json          print the raw JSON reply\n"
          "  --watch SECS    print again every SECS seconds (1-3600) until interrupted\n",
          f);
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* The newest *.sock in the runtime directory that a launcher answers on. */
static char *find_socket(void)
{
    char base[CW_RUNDIR_PATH_MAX];
    if (cw_rundir_base(base, sizeof(base)) < 0)
        return NULL;
    DIR *d = opendir(base);
    if (!d)
        return NULL;
    char *best = NULL;
    time_t best_t = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".sock"))
            continue;
        char p[CW_RUNDIR_PATH_MAX + 256];
        snprintf(p, sizeof(p), "%s/%s", base, e->d_name);
        struct stat st;
        if (stat(p, &st) < 0 || !S_ISSOCK(st.st_mode) || (best && st.st_mtime < best_t))
            continue;
        int fd = connect_to(p);
        if (fd < 0)
            continue; /* a launcher that died without cleaning up */
        close(fd);
        free(best);
        best = strdup(p);
        best_t = st.st_mtime;
    }
    closedir(d);
    return best;
}

/* One request, one reply line. NULL with a message printed on failure. */
static json_t *ask(const char *path)
{
    int fd = connect_to(path);
    if (fd < 0) {
        fprintf(stderr, "causeway: %s: %s (is the system running?)\n", path, strerror(errno));
        return NULL;
    }
    static const char req[] = "{\"op\":\"stats\"}\n";
    if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1) {
        fprintf(stderr, "causeway: %s: %s\n", path, strerror(errno));
        close(fd);
        return NULL;
    }
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap);
    char *nl = NULL;
    while (buf && !nl) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, TIMEOUT_MS) <= 0) {
            fprintf(stderr, "causeway: %s: no answer within %d s\n", path, TIMEOUT_MS / 1000);
            break;
        }
        if (len == cap) {
            char *nb = cap < REPLY_MAX ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                fprintf(stderr, "causeway: %s: reply too large\n", path);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r <= 0) {
            fprintf(stderr, "causeway: %s: connection closed before the reply\n", path);
            break;
        }
        nl = memchr(buf + len, '\n', (size_t)r);
        len += (size_t)r;
    }
    close(fd);
    json_t *m = NULL;
    if (nl) {
        json_error_t je;
        m = json_loadb(buf, (size_t)(nl - buf), 0, &je);
        if (!json_is_object(m)) {
            fprintf(stderr, "causeway: %s: reply is not a JSON object\n", path);
            json_decref(m);
            m = NULL;
        }
    }
    free(buf);
    return m;
}

static long long num(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

static long long pair(const json_t *o, const char *key, size_t i)
{
    json_t *v = json_array_get(json_object_get(o, key), i);
    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

/* "policy=3 no_room=1" for the nonzero drops, "-" when none. */
static void drops(const json_t *o, char *buf, size_t len, long long *total)
{
    size_t off = 0;
    *total = 0;
    buf[0] = '\0';
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(o, "drops"), key, v) {
        if (!json_is_integer(v) || json_integer_value(v) == 0)
            continue;
        *total += json_integer_value(v);
        if (off < len)
            off += (size_t)snprintf(buf + off, len - off, "%s%s=%lld", off ? " " : "", key,
                                    (long long)json_integer_value(v));
    }
    if (!buf[0])
        snprintf(buf, len, "-");
}

static void print_table(const json_t *m)
{
    printf("system %s, up %.1f s\n\n", str(m, "system"), (double)num(m, "uptime_ms") / 1000.0);
    /* kicks: the guest's doorbells; irqs: interrupts to the guest; port
     * sig/wake: notifications to and from the switch. */
    printf("%-20s %-8s %-5s %10s %12s %10s %12s %9s %9s %9s %9s %9s %9s  %s\n", "VM/NIC", "state",
           "link", "tx_frames", "tx_bytes", "rx_frames", "rx_bytes", "kicks_rx", "kicks_tx",
           "irqs_rx", "irqs_tx", "port_sig", "port_wake", "drops");
    size_t i, k;
    json_t *vm, *nic;
    json_array_foreach(json_object_get(m, "vms"), i, vm) {
        json_array_foreach(json_object_get(vm, "nics"), k, nic) {
            char name[80], d[512];
            long long total;
            snprintf(name, sizeof(name), "%s/nic%lld", str(vm, "name"), num(nic, "nic"));
            drops(nic, d, sizeof(d), &total);
            const char *state = strcmp(str(vm, "state"), "running") ? str(vm, "state")
                                                                     : str(nic, "device");
            if (json_object_get(nic, "error"))
                snprintf(d, sizeof(d), "(%s)", str(nic, "error"));
            printf("%-20s %-8s %-5s %10lld %12lld %10lld %12lld %9lld %9lld %9lld %9lld %9lld %9lld"
                   "  %s\n",
                   name, state, str(nic, "link"), num(nic, "tx_frames"), num(nic, "tx_bytes"),
                   num(nic, "rx_frames"), num(nic, "rx_bytes"), pair(nic, "kicks", 0),
                   pair(nic, "kicks", 1), pair(nic, "interrupts", 0), pair(nic, "interrupts", 1),
                   num(nic, "port_signals"), num(nic, "port_wakeups"), d);
        }
        if (json_object_get(vm, "exit"))
            printf("%-20s exited: %s\n", str(vm, "name"), str(vm, "exit"));
    }
    json_t *sw, *port, *rule;
    json_array_foreach(json_object_get(m, "switches"), i, sw) {
        printf("\nswitch %s (%s", str(sw, "name"), str(sw, "state"));
        if (num(sw, "restarts"))
            printf(", %lld restarts", num(sw, "restarts"));
        printf(")%s%s\n", json_object_get(sw, "error") ? ": " : "",
               json_object_get(sw, "error") ? str(sw, "error") : "");
        if (json_object_get(sw, "error"))
            continue;
        printf("  %4s %-24s %10s %12s %10s %12s  %s\n", "port", "name", "rx_frames", "rx_bytes",
               "tx_frames", "tx_bytes", "drops");
        json_array_foreach(json_object_get(sw, "ports"), k, port) {
            char d[512];
            long long total;
            drops(port, d, sizeof(d), &total);
            printf("  %4lld %-24s %10lld %12lld %10lld %12lld  %s\n", num(port, "id"),
                   str(port, "name"), num(port, "rx_frames"), num(port, "rx_bytes"),
                   num(port, "tx_frames"), num(port, "tx_bytes"), d);
        }
        json_array_foreach(json_object_get(sw, "rules"), k, rule)
            printf("  rule at line %lld: %lld matched\n", num(rule, "line"), num(rule, "matched"));
        if (json_object_get(sw, "default_deny"))
            printf("  default deny: %lld\n", num(sw, "default_deny"));
    }
}

int cw_cmd_stats(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"watch", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *sock = NULL;
    bool json = false;
    uint64_t watch = 0;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': sock = optarg; break;
        case 'j': json = true; break;
        case 'w':
            if (cw_parse_uint(optarg, 1, 3600, &watch))
                cw_usage_error("--watch: '%s' is not a number of seconds from 1 to 3600", optarg);
            break;
        case 'h': stats_usage(stdout); return 0;
        default:
            cw_usage_error("stats: unknown or incomplete option '%s' (see causeway stats --help)",
                           argv[optind - 1]);
        }
    }
    if (optind < argc)
        cw_usage_error("stats: unexpected argument '%s'", argv[optind]);
    char *found = NULL;
    if (!sock) {
        found = find_socket();
        if (!found) {
            fprintf(stderr, "causeway: no running system found (give --socket PATH)\n");
            return 1;
        }
        sock = found;
    }
    bool tty = isatty(STDOUT_FILENO);
    int rc = 0;
    for (;;) {
        json_t *m = ask(sock);
        if (!m) {
            rc = 1;
            break;
        }
        if (watch && tty && !json)
            fputs("\033[H\033[2J", stdout);
        if (json) {
            char *text = json_dumps(m, JSON_COMPACT);
            if (text)
                puts(text);
            free(text);
        } else {
            print_table(m);
        }
        fflush(stdout);
        bool error = !strcmp(str(m, "op"), "error");
        json_decref(m);
        if (error) {
            rc = 1;
            break;
        }
        if (!watch)
            break;
        struct timespec ts = {.tv_sec = (time_t)watch};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
    free(found);
    return rc;
}
