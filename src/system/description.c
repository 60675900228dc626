/* Loading a system description: read the file, parse it with jansson,
 * locate every value (json_locate), then walk the document once, checking
 * each field and filling struct cw_system. The first problem found ends the
 * load with one "FILE:LINE:COLUMN: message" line; nothing is kept. */
#include "description.h"
#include "qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/parse.h"
#include "ip_prefix.h"
#include "json_fields.h"
#include "json_locate.h"
#include "policy_parse.h"

#define MAX_FILE_BYTES (1u << 20) /* a description is a few KiB; this bounds the work */
#define MIN_MEMORY (64ull << 20)
#define DEFAULT_MEMORY (256ull << 20)
#define CMDLINE_MAX 2047 /* x86 truncates a longer kernel command line silently */
#define MAX_DOMAINS (sizeof(((struct cw_system *)0)->domains) / sizeof(((struct cw_system *)0)->domains[0]))

struct mac_seen {
    uint8_t mac[6];
    struct cw_jpos at;
};

struct loader {
    struct cw_jctx c;
    struct cw_system *sys;
    struct cw_jpos vm_name_at[CW_SYS_MAX_VMS];
    struct cw_jpos switch_name_at[CW_SYS_MAX_SWITCHES];
    struct cw_jpos tap_at[CW_SYS_MAX_UPLINKS];
    unsigned switch_ports[CW_SYS_MAX_SWITCHES];
    struct mac_seen macs[CW_SYS_MAX_VMS * CW_SYS_MAX_NICS + CW_SYS_MAX_UPLINKS];
    unsigned n_macs;
    const struct cw_jnode *memory_at[CW_SYS_MAX_VMS]; /* the value, or the VM when defaulted */
};

/* ---- small value parsers ------------------------------------------------ */

static int hexdigit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Strictly "xx:xx:xx:xx:xx:xx" (sscanf would take signs and spaces). */
static int parse_mac_text(const char *s, size_t n, uint8_t mac[6])
{
    if (n != 17)
        return -1;
    for (int i = 0; i < 6; i++) {
        int hi = hexdigit(s[i * 3]), lo = hexdigit(s[i * 3 + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && s[i * 3 + 2] != ':'))
            return -1;
        mac[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static int parse_mac(struct loader *L, struct cw_jv v, uint8_t mac[6])
{
    const struct cw_jctx *c = &L->c;
    const char *s;
    if (cw_jstring(c, v, &s))
        return -1;
    char shown[40];
    cw_jshow(s, json_string_length(v.v), shown, sizeof(shown));
    if (parse_mac_text(s, json_string_length(v.v), mac))
        return cw_jfail(c, v.n, false, "malformed MAC \"%s\" (expected six hex pairs like "
                        "\"52:54:00:00:00:01\")", shown);
    static const uint8_t zero[6], bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    if (!memcmp(mac, bcast, 6))
        return cw_jfail(c, v.n, false, "MAC %s is the broadcast address; a port needs a unicast MAC",
                        shown);
    if (mac[0] & 1)
        return cw_jfail(c, v.n, false,
                        "MAC %s is a multicast address (the first byte is odd); a port needs a "
                        "unicast MAC",
                        shown);
    if (!memcmp(mac, zero, 6))
        return cw_jfail(c, v.n, false, "MAC %s is all zeros; a port needs a unicast MAC", shown);
    for (unsigned i = 0; i < L->n_macs; i++)
        if (!memcmp(L->macs[i].mac, mac, 6))
            return cw_jfail(c, v.n, false, "duplicate MAC %s (first at %u:%u)", shown,
                            L->macs[i].at.line, L->macs[i].at.col);
    if (L->n_macs < sizeof(L->macs) / sizeof(L->macs[0])) {
        memcpy(L->macs[L->n_macs].mac, mac, 6);
        L->macs[L->n_macs++].at = v.n->pos;
    }
    return 0;
}

static int find_switch(struct loader *L, struct cw_jv v, char name[CW_SYS_NAME_MAX + 1], int *index)
{
    if (cw_jname(&L->c, v, "switch name", name))
        return -1;
    const struct cw_system *sys = L->sys;
    for (unsigned i = 0; i < sys->n_switches; i++) {
        if (!strcmp(sys->switches[i].name, name)) {
            if (L->switch_ports[i] >= CW_SYS_MAX_PORTS)
                return cw_jfail(&L->c, v.n, false, "switch \"%s\" has more than %d ports", name,
                                CW_SYS_MAX_PORTS);
            L->switch_ports[i]++;
            *index = (int)i;
            return 0;
        }
    }
    char list[160] = "";
    size_t used = 0;
    for (unsigned i = 0; i < sys->n_switches; i++) {
        if (used + strlen(sys->switches[i].name) + 7 >= sizeof(list)) {
            strcpy(list + used, ", ...");
            break;
        }
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                                 sys->switches[i].name);
    }
    if (!sys->n_switches)
        return cw_jfail(&L->c, v.n, false, "no switch named \"%s\" (\"switches\" lists none)", name);
    return cw_jfail(&L->c, v.n, false, "no switch named \"%s\" (switches: %s)", name, list);
}

static int domain_of(struct loader *L, struct cw_jv v, char name[CW_SYS_NAME_MAX + 1], int *index)
{
    if (cw_jname(&L->c, v, "domain name", name))
        return -1;
    struct cw_system *sys = L->sys;
    for (unsigned i = 0; i < sys->n_domains; i++) {
        if (!strcmp(sys->domains[i], name)) {
            *index = (int)i;
            return 0;
        }
    }
    if (sys->n_domains >= MAX_DOMAINS)
        return cw_jfail(&L->c, v.n, false, "more than %zu domains", MAX_DOMAINS);
    memcpy(sys->domains[sys->n_domains], name, CW_SYS_NAME_MAX + 1);
    *index = (int)sys->n_domains++;
    return 0;
}

/* "ipv4"/"ipv6": one prefix as a string, or an array of them. */
static int parse_addrs(struct loader *L, struct cw_jv v, bool six, struct cw_sys_nic *nic)
{
    const struct cw_jctx *c = &L->c;
    size_t n = 1;
    bool list = json_is_array(v.v);
    if (list)
        n = json_array_size(v.v);
    else if (!json_is_string(v.v))
        return cw_jfail(c, v.n, false, "expected a prefix string or an array of them, got %s",
                        cw_jtype_name(v.v));
    for (size_t i = 0; i < n; i++) {
        struct cw_jv e = list ? cw_jelem(c, v, i) : v;
        if (i >= CW_SYS_MAX_ADDRS)
            return cw_jfail(c, e.n, false, "more than %d IPv%d addresses on one NIC",
                            CW_SYS_MAX_ADDRS, six ? 6 : 4);
        const char *s;
        if (cw_jstring(c, e, &s))
            return -1;
        char shown[64];
        cw_jshow(s, json_string_length(e.v), shown, sizeof(shown));
        enum cw_prefix_status st;
        if (six)
            st = cw_ip6_prefix_parse(s, true, &nic->ipv6[i]);
        else
            st = cw_ip4_prefix_parse(s, true, &nic->ipv4[i]);
        const char *fam = six ? "IPv6" : "IPv4";
        if (st == CW_PREFIX_BAD_ADDR) {
            if (!six && strchr(s, ':'))
                return cw_jfail(c, e.n, false, "\"%s\" looks like IPv6: put it under \"ipv6\"",
                                shown);
            if (six && !strchr(s, ':') && strchr(s, '.'))
                return cw_jfail(c, e.n, false, "\"%s\" looks like IPv4: put it under \"ipv4\"",
                                shown);
            return cw_jfail(c, e.n, false, "\"%s\" is not an %s address with prefix (like \"%s\")",
                            shown, fam, six ? "fd00::1/64" : "10.99.0.1/24");
        }
        if (st == CW_PREFIX_NO_LEN)
            return cw_jfail(c, e.n, false, "\"%s\" has no prefix length (like \"%s\")", shown,
                            six ? "fd00::1/64" : "10.99.0.1/24");
        if (st == CW_PREFIX_BAD_LEN)
            return cw_jfail(c, e.n, false, "\"%s\": prefix length must be 0..%d", shown,
                            six ? 128 : 32);
        /* An interface address must be one a host can own. */
        bool bad;
        if (six) {
            static const uint8_t any[16], loop[16] = { [15] = 1 };
            bad = !memcmp(nic->ipv6[i].addr, any, 16) || !memcmp(nic->ipv6[i].addr, loop, 16) ||
                  nic->ipv6[i].addr[0] == 0xff;
        } else {
            uint32_t a = nic->ipv4[i].addr;
            bad = a == 0 || (a >> 24) == 127 || (a >> 28) == 0xE || a == UINT32_MAX;
        }
        if (bad)
            return cw_jfail(c, e.n, false,
                            "\"%s\" is not a unicast address (unspecified, loopback, multicast "
                            "or broadcast)",
                            shown);
        if (six)
            nic->n_ipv6 = (unsigned)i + 1;
        else
            nic->n_ipv4 = (unsigned)i + 1;
    }
    return 0;
}

/* A kernel or initrd: relative to the description's folder; must be a
 * readable regular file (stat first, so a FIFO or a device is never
 * opened). Stored as the canonical absolute path. */
static int resolve_file(struct loader *L, struct cw_jv v, const char *what, char **out)
{
    const struct cw_jctx *c = &L->c;
    const char *s;
    if (cw_jstring(c, v, &s))
        return -1;
    char shown[128];
    cw_jshow(s, json_string_length(v.v), shown, sizeof(shown));
    if (!*s)
        return cw_jfail(c, v.n, false, "%s path is empty", what);
    char joined[PATH_MAX];
    int k = s[0] == '/' ? snprintf(joined, sizeof(joined), "%s", s)
                        : snprintf(joined, sizeof(joined), "%s/%s", L->sys->dir, s);
    if (k < 0 || (size_t)k >= sizeof(joined))
        return cw_jfail(c, v.n, false, "%s path is too long", what);
    struct stat st;
    if (stat(joined, &st))
        return cw_jfail(c, v.n, false, "%s \"%s\": %s (looked for %s)", what, shown,
                        strerror(errno), joined);
    if (!S_ISREG(st.st_mode))
        return cw_jfail(c, v.n, false, "%s \"%s\" is not a regular file", what, shown);
    int fd = open(joined, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return cw_jfail(c, v.n, false, "%s \"%s\" is not readable: %s", what, shown, strerror(errno));
    close(fd);
    *out = realpath(joined, NULL);
    if (!*out)
        return cw_jfail(c, v.n, false, "%s \"%s\": %s", what, shown, strerror(errno));
    return 0;
}

static int parse_memory(struct loader *L, struct cw_jv v, uint64_t *out)
{
    const struct cw_jctx *c = &L->c;
    char text[48];
    uint64_t bytes;
    if (json_is_string(v.v)) {
        const char *s = json_string_value(v.v);
        cw_jshow(s, json_string_length(v.v), text, sizeof(text));
        if (cw_parse_size(s, &bytes))
            return cw_jfail(c, v.n, false, "memory \"%s\" is not a size (like \"256M\" or \"1G\")",
                            text);
    } else if (json_is_integer(v.v)) {
        json_int_t n = json_integer_value(v.v);
        if (n < 0)
            return cw_jfail(c, v.n, false, "memory %lld is negative", (long long)n);
        bytes = (uint64_t)n;
        snprintf(text, sizeof(text), "%" PRIu64 " bytes", bytes);
    } else {
        return cw_jfail(c, v.n, false,
                        "expected a size (a string like \"256M\", or bytes), got %s",
                        cw_jtype_name(v.v));
    }
    if (bytes < MIN_MEMORY)
        return cw_jfail(c, v.n, false, "memory %s is below the minimum of 64M", text);
    if (bytes & ((1u << 20) - 1))
        return cw_jfail(c, v.n, false, "memory %s is not a whole number of MiB", text);
    *out = bytes;
    return 0;
}

static int parse_choice(const struct cw_jctx *c, struct cw_jv v, const char *what,
                        const char *const *choices, int *out)
{
    const char *s;
    if (cw_jstring(c, v, &s))
        return -1;
    int n = 0;
    for (; choices[n]; n++) {
        if (!strcmp(s, choices[n])) {
            *out = n;
            return 0;
        }
    }
    /* "a" or "b"; "a", "b" or "c" */
    char list[96] = "", shown[40];
    size_t used = 0;
    for (int i = 0; i < n && used < sizeof(list); i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s\"%s\"",
                                 i == 0 ? "" : i == n - 1 ? " or " : ", ", choices[i]);
    return cw_jfail(c, v.n, false, "%s \"%s\" must be %s", what,
                    cw_jshow(s, json_string_length(v.v), shown, sizeof(shown)), list);
}

/* ---- sections ------------------------------------------------------------ */

static int parse_switches(struct loader *L, struct cw_jv arr)
{
    static const char *const keys[] = { "name", NULL };
    const struct cw_jctx *c = &L->c;
    struct cw_system *sys = L->sys;
    if (cw_jarray(c, arr))
        return -1;
    for (size_t i = 0; i < json_array_size(arr.v); i++) {
        struct cw_jv sw = cw_jelem(c, arr, i), name;
        if (i >= CW_SYS_MAX_SWITCHES)
            return cw_jfail(c, sw.n, false, "more than %d switches", CW_SYS_MAX_SWITCHES);
        if (cw_jobject(c, sw) || cw_jcheck_keys(c, sw, keys) ||
            cw_jget(c, sw, "name", true, &name) < 0 ||
            cw_jname(c, name, "switch name", sys->switches[i].name))
            return -1;
        for (unsigned j = 0; j < i; j++)
            if (!strcmp(sys->switches[j].name, sys->switches[i].name))
                return cw_jfail(c, name.n, false, "duplicate switch name \"%s\" (first at %u:%u)",
                                sys->switches[i].name, L->switch_name_at[j].line,
                                L->switch_name_at[j].col);
        L->switch_name_at[i] = name.n->pos;
        sys->n_switches = (unsigned)i + 1;
    }
    return 0;
}

static int parse_nic(struct loader *L, struct cw_jv nv, struct cw_sys_nic *nic)
{
    static const char *const keys[] = { "switch", "mac",  "domain",  "ipv4",       "ipv6",
                                        "mtu",    "offloads", "queue_size", NULL };
    const struct cw_jctx *c = &L->c;
    if (cw_jobject(c, nv) || cw_jcheck_keys(c, nv, keys))
        return -1;
    nic->offloads = true;
    nic->queue_size = 1024;
    struct cw_jv v;
    int got;
    if (cw_jget(c, nv, "switch", true, &v) < 0 ||
        find_switch(L, v, nic->switch_name, &nic->switch_index))
        return -1;
    if (cw_jget(c, nv, "mac", true, &v) < 0 || parse_mac(L, v, nic->mac))
        return -1;
    if (cw_jget(c, nv, "domain", true, &v) < 0 || domain_of(L, v, nic->domain, &nic->domain_index))
        return -1;
    if ((got = cw_jget(c, nv, "ipv4", false, &v)) && parse_addrs(L, v, false, nic))
        return -1;
    if ((got = cw_jget(c, nv, "ipv6", false, &v)) && parse_addrs(L, v, true, nic))
        return -1;
    int64_t x;
    if ((got = cw_jget(c, nv, "mtu", false, &v))) {
        if (cw_jint(c, v, 68, 65535, &x))
            return -1;
        nic->mtu = (uint16_t)x;
    }
    if ((got = cw_jget(c, nv, "offloads", false, &v)) && cw_jbool(c, v, &nic->offloads))
        return -1;
    if ((got = cw_jget(c, nv, "queue_size", false, &v))) {
        if (!json_is_integer(v.v))
            return cw_jfail(c, v.n, false, "expected an integer, got %s", cw_jtype_name(v.v));
        x = json_integer_value(v.v);
        if (x != 256 && x != 512 && x != 1024)
            return cw_jfail(c, v.n, false, "queue_size %lld is not 256, 512 or 1024",
                            (long long)x);
        nic->queue_size = (uint16_t)x;
    }
    return 0;
}

/* Where a NIC's a-th address of one family stands in the text. */
static const struct cw_jnode *addr_node(const struct loader *L, struct cw_jv nv, const char *key,
                                        unsigned a)
{
    const struct cw_jnode *m = cw_jnode_member(L->c.doc, nv.n, key, strlen(key));
    if (!m)
        return nv.n;
    if (m->kind != CW_JARRAY)
        return m;
    const struct cw_jnode *e = cw_jnode_child(L->c.doc, m, a);
    return e ? e : m;
}

/* Two NICs on one switch cannot claim the same address: anti-spoofing
 * would let either send as the other. */
static int check_unique_addrs(struct loader *L, struct cw_jv nv, unsigned vm, unsigned k)
{
    const struct cw_system *sys = L->sys;
    const struct cw_sys_nic *nic = &sys->vms[vm].nics[k];
    for (unsigned ov = 0; ov <= vm; ov++) {
        unsigned upto = ov == vm ? k : sys->vms[ov].n_nics;
        for (unsigned ok = 0; ok < upto; ok++) {
            const struct cw_sys_nic *o = &sys->vms[ov].nics[ok];
            if (o->switch_index != nic->switch_index)
                continue;
            char text[CW_IP6_PREFIX_STRLEN];
            for (unsigned a = 0; a < nic->n_ipv4; a++)
                for (unsigned b = 0; b < o->n_ipv4; b++)
                    if (nic->ipv4[a].addr == o->ipv4[b].addr) {
                        cw_ip4_prefix_format(&nic->ipv4[a], text, sizeof(text));
                        *strchr(text, '/') = '\0';
                        return cw_jfail(&L->c, addr_node(L, nv, "ipv4", a), false,
                                        "IPv4 address %s is also on %s's NIC %u (switch %s)", text,
                                        sys->vms[ov].name, ok, nic->switch_name);
                    }
            for (unsigned a = 0; a < nic->n_ipv6; a++)
                for (unsigned b = 0; b < o->n_ipv6; b++)
                    if (!memcmp(nic->ipv6[a].addr, o->ipv6[b].addr, 16)) {
                        cw_ip6_prefix_format(&nic->ipv6[a], text, sizeof(text));
                        *strchr(text, '/') = '\0';
                        return cw_jfail(&L->c, addr_node(L, nv, "ipv6", a), false,
                                        "IPv6 address %s is also on %s's NIC %u (switch %s)", text,
                                        sys->vms[ov].name, ok, nic->switch_name);
                    }
        }
    }
    return 0;
}

static int parse_cmdline(struct loader *L, struct cw_jv v, char **out)
{
    const char *s;
    if (cw_jstring(&L->c, v, &s))
        return -1;
    size_t n = json_string_length(v.v);
    if (n > CMDLINE_MAX)
        return cw_jfail(&L->c, v.n, false, "cmdline is %zu bytes, more than the kernel's %d", n,
                        CMDLINE_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
            return cw_jfail(&L->c, v.n, false, "cmdline has a control character at byte %zu", i);
    *out = strdup(s);
    if (!*out)
        return cw_jfail(&L->c, v.n, false, "out of memory");
    return 0;
}

static int parse_vm(struct loader *L, struct cw_jv vv, unsigned idx)
{
    static const char *const keys[] = { "name", "kernel", "initrd", "cmdline", "memory",
                                        "vcpus", "gmem",  "accel",  "nics",    NULL };
    static const char *const gmems[] = { "persistent", "map-per-access", NULL };
    static const char *const accels[] = { "auto", "kvm", "tcg", NULL };
    const struct cw_jctx *c = &L->c;
    struct cw_system *sys = L->sys;
    struct cw_sys_vm *vm = &sys->vms[idx];
    if (cw_jobject(c, vv) || cw_jcheck_keys(c, vv, keys))
        return -1;
    /* Counted now so that cw_system_free releases what this VM allocates
     * even when a later field fails. */
    sys->n_vms = idx + 1;
    vm->memory = DEFAULT_MEMORY;
    vm->vcpus = 1;
    vm->gmem = CW_GMEM_PERSISTENT;
    strcpy(vm->accel, "auto");
    L->memory_at[idx] = vv.n;

    struct cw_jv v;
    int got;
    if (cw_jget(c, vv, "name", true, &v) < 0 || cw_jname(c, v, "VM name", vm->name))
        return -1;
    for (unsigned j = 0; j < idx; j++)
        if (!strcmp(sys->vms[j].name, vm->name))
            return cw_jfail(c, v.n, false, "duplicate VM name \"%s\" (first at %u:%u)", vm->name,
                            L->vm_name_at[j].line, L->vm_name_at[j].col);
    L->vm_name_at[idx] = v.n->pos;
    if (cw_jget(c, vv, "kernel", true, &v) < 0 || resolve_file(L, v, "kernel", &vm->kernel))
        return -1;
    if (cw_jget(c, vv, "initrd", true, &v) < 0 || resolve_file(L, v, "initrd", &vm->initrd))
        return -1;
    if ((got = cw_jget(c, vv, "cmdline", false, &v))) {
        if (parse_cmdline(L, v, &vm->cmdline))
            return -1;
    } else {
        vm->cmdline = strdup(CW_QEMU_DEFAULT_CMDLINE);
        if (!vm->cmdline)
            return cw_jfail(c, vv.n, false, "out of memory");
    }
    if ((got = cw_jget(c, vv, "memory", false, &v))) {
        if (parse_memory(L, v, &vm->memory))
            return -1;
        L->memory_at[idx] = v.n;
    }
    int64_t x;
    if ((got = cw_jget(c, vv, "vcpus", false, &v))) {
        if (cw_jint(c, v, 1, 64, &x))
            return -1;
        vm->vcpus = (unsigned)x;
    }
    int choice;
    if ((got = cw_jget(c, vv, "gmem", false, &v))) {
        if (parse_choice(c, v, "gmem", gmems, &choice))
            return -1;
        vm->gmem = choice ? CW_GMEM_MAP_PER_ACCESS : CW_GMEM_PERSISTENT;
    }
    if ((got = cw_jget(c, vv, "accel", false, &v))) {
        if (parse_choice(c, v, "accel", accels, &choice))
            return -1;
        strcpy(vm->accel, accels[choice]);
    }
    struct cw_jv nics;
    if ((got = cw_jget(c, vv, "nics", false, &nics))) {
        if (cw_jarray(c, nics))
            return -1;
        for (size_t k = 0; k < json_array_size(nics.v); k++) {
            struct cw_jv nv = cw_jelem(c, nics, k);
            if (k >= CW_SYS_MAX_NICS)
                return cw_jfail(c, nv.n, false, "more than %d NICs on one VM", CW_SYS_MAX_NICS);
            if (parse_nic(L, nv, &vm->nics[k]))
                return -1;
            vm->n_nics = (unsigned)k + 1;
            if (check_unique_addrs(L, nv, idx, (unsigned)k))
                return -1;
        }
    }
    return 0;
}

static bool tap_name_ok(const char *s, size_t n)
{
    /* Linux interface names: at most IFNAMSIZ - 1 bytes, and "." / ".."
     * are refused by the kernel. */
    if (n == 0 || n > 15 || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return false;
    }
    return true;
}

static int parse_uplinks(struct loader *L, struct cw_jv arr)
{
    static const char *const keys[] = { "switch", "tap", "domain", "mac", NULL };
    const struct cw_jctx *c = &L->c;
    struct cw_system *sys = L->sys;
    if (cw_jarray(c, arr))
        return -1;
    for (size_t i = 0; i < json_array_size(arr.v); i++) {
        struct cw_jv uv = cw_jelem(c, arr, i), v;
        if (i >= CW_SYS_MAX_UPLINKS)
            return cw_jfail(c, uv.n, false, "more than %d uplinks", CW_SYS_MAX_UPLINKS);
        struct cw_sys_uplink *u = &sys->uplinks[i];
        if (cw_jobject(c, uv) || cw_jcheck_keys(c, uv, keys))
            return -1;
        if (cw_jget(c, uv, "switch", true, &v) < 0 ||
            find_switch(L, v, u->switch_name, &u->switch_index))
            return -1;
        const char *tap;
        if (cw_jget(c, uv, "tap", true, &v) < 0 || cw_jstring(c, v, &tap))
            return -1;
        char shown[40];
        cw_jshow(tap, json_string_length(v.v), shown, sizeof(shown));
        if (!tap_name_ok(tap, json_string_length(v.v)))
            return cw_jfail(c, v.n, false,
                            "tap \"%s\" is not an interface name (1-15 of A-Z a-z 0-9 _ . -)",
                            shown);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(sys->uplinks[j].tap, tap))
                return cw_jfail(c, v.n, false, "duplicate tap \"%s\" (first at %u:%u)", shown,
                                L->tap_at[j].line, L->tap_at[j].col);
        strcpy(u->tap, tap);
        L->tap_at[i] = v.n->pos;
        if (cw_jget(c, uv, "domain", true, &v) < 0 || domain_of(L, v, u->domain, &u->domain_index))
            return -1;
        int got;
        if ((got = cw_jget(c, uv, "mac", false, &v)) && parse_mac(L, v, u->mac))
            return -1;
        sys->n_uplinks = (unsigned)i + 1;
    }
    return 0;
}

static uint64_t host_ram(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0)
        return 0;
    return (uint64_t)pages * (uint64_t)page;
}

static int check_memory_fits(struct loader *L)
{
    uint64_t ram = host_ram(), total = 0;
    if (!ram)
        return 0; /* unknown: nothing to compare with */
    const struct cw_system *sys = L->sys;
    for (unsigned i = 0; i < sys->n_vms; i++)
        total = total > UINT64_MAX - sys->vms[i].memory ? UINT64_MAX : total + sys->vms[i].memory;
    if (total <= ram)
        return 0;
    /* Point at the VM that takes the running sum past the host's RAM. */
    uint64_t run = 0;
    unsigned at = 0;
    for (unsigned i = 0; i < sys->n_vms; i++) {
        run = run > UINT64_MAX - sys->vms[i].memory ? UINT64_MAX : run + sys->vms[i].memory;
        if (run > ram) {
            at = i;
            break;
        }
    }
    return cw_jfail(&L->c, L->memory_at[at], false,
                    "memory that cannot fit: the VMs need %" PRIu64 " MiB in all, and this "
                    "host has %" PRIu64 " MiB of RAM",
                    total >> 20, ram >> 20);
}

static int load_root(struct loader *L, struct cw_jv root)
{
    static const char *const keys[] = { "vms", "switches", "uplinks", "policy", "on_failure", NULL };
    static const char *const failures[] = { "continue", "stop", NULL };
    const struct cw_jctx *c = &L->c;
    struct cw_system *sys = L->sys;
    if (cw_jobject(c, root) || cw_jcheck_keys(c, root, keys))
        return -1;
    struct cw_jv vms, v;
    if (cw_jget(c, root, "vms", true, &vms) < 0 || cw_jarray(c, vms))
        return -1;
    if (json_array_size(vms.v) == 0)
        return cw_jfail(c, vms.n, false, "a system needs at least one VM");
    /* Switches first: NICs and uplinks name them. */
    int got;
    if ((got = cw_jget(c, root, "switches", false, &v)) && parse_switches(L, v))
        return -1;
    for (size_t i = 0; i < json_array_size(vms.v); i++) {
        struct cw_jv vv = cw_jelem(c, vms, i);
        if (i >= CW_SYS_MAX_VMS)
            return cw_jfail(c, vv.n, false, "more than %d VMs", CW_SYS_MAX_VMS);
        if (parse_vm(L, vv, (unsigned)i))
            return -1;
    }
    if ((got = cw_jget(c, root, "uplinks", false, &v)) && parse_uplinks(L, v))
        return -1;
    /* The policy comes after every port: its rules name their domains. */
    if ((got = cw_jget(c, root, "policy", false, &v)) &&
        cw_policy_parse(c, v, (const char(*)[CW_SYS_NAME_MAX + 1])sys->domains, sys->n_domains,
                        &sys->policy))
        return -1;
    if ((got = cw_jget(c, root, "on_failure", false, &v))) {
        int choice;
        if (parse_choice(c, v, "on_failure", failures, &choice))
            return -1;
        sys->stop_all_on_failure = choice == 1;
    }
    return check_memory_fits(L);
}

/* ---- file ---------------------------------------------------------------- */

static int read_text(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size > MAX_FILE_BYTES) {
        snprintf(err, errlen, "%s: larger than %u bytes", path, MAX_FILE_BYTES);
        close(fd);
        return -1;
    }
    /* Read to the end with a bound, not st_size: the file may change. */
    char *buf = malloc(MAX_FILE_BYTES + 1);
    size_t n = 0;
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
        close(fd);
        return -1;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, MAX_FILE_BYTES + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > MAX_FILE_BYTES) {
            snprintf(err, errlen, "%s: larger than %u bytes", path, MAX_FILE_BYTES);
            free(buf);
            close(fd);
            return -1;
        }
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *d;
    if (!slash)
        d = strdup(".");
    else if (slash == path)
        d = strdup("/");
    else
        d = strndup(path, (size_t)(slash - path));
    if (!d)
        return NULL;
    char *abs = realpath(d, NULL);
    free(d);
    return abs;
}

int cw_system_load(const char *path, struct cw_system *sys, char *err, size_t errlen)
{
    memset(sys, 0, sizeof(*sys));
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    err[0] = '\0';
    char *text = NULL;
    size_t len = 0;
    json_t *root = NULL;
    struct cw_jdoc doc = { 0 };
    struct loader *L = NULL;
    int rc = -1;

    if (read_text(path, &text, &len, err, errlen))
        goto out;
    sys->path = strdup(path);
    sys->dir = dir_of(path);
    if (!sys->path || !sys->dir) {
        snprintf(err, errlen, "%s: cannot resolve its folder: %s", path, strerror(errno));
        goto out;
    }
    json_error_t jerr;
    root = json_loadb(text, len, 0, &jerr);
    if (!root) {
        /* jansson's column is that of the character where it stopped (0
         * before the first one); keep the 1-based contract. Its text quotes
         * the input near the error, raw: a newline or escape sequence there
         * would break the one-line contract, so it is shown like every
         * other quoted value. */
        char text_shown[sizeof(jerr.text)];
        cw_jshow(jerr.text, strnlen(jerr.text, sizeof(jerr.text)), text_shown, sizeof(text_shown));
        snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line > 0 ? jerr.line : 1,
                 jerr.column > 0 ? jerr.column : 1, text_shown);
        goto out;
    }
    struct cw_jpos at;
    char msg[160];
    if (cw_json_locate(text, len, &doc, &at, msg, sizeof(msg))) {
        snprintf(err, errlen, "%s:%u:%u: %s", path, at.line, at.col, msg);
        goto out;
    }
    L = calloc(1, sizeof(*L));
    if (!L) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    L->c = (struct cw_jctx){ .file = path, .doc = &doc, .err = err, .errlen = errlen };
    L->sys = sys;
    rc = load_root(L, (struct cw_jv){ root, cw_jdoc_root(&doc) });
out:
    free(L);
    cw_jdoc_free(&doc);
    json_decref(root);
    free(text);
    if (rc) {
        cw_system_free(sys);
        /* One line, whatever a message quoted (a resolved path, an errno
         * text, the input near a syntax error): no control character may
         * reach a terminal or a log from a description. */
        for (char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7F)
                *p = '?';
    }
    return rc;
}

void cw_system_free(struct cw_system *sys)
{
    if (!sys)
        return;
    for (unsigned i = 0; i < sys->n_vms && i < CW_SYS_MAX_VMS; i++) {
        free(sys->vms[i].kernel);
        free(sys->vms[i].initrd);
        free(sys->vms[i].cmdline);
    }
    free(sys->path);
    free(sys->dir);
    memset(sys, 0, sizeof(*sys));
}
