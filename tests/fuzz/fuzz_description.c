/* Fuzz target: the system description loader on hostile JSON text.
 *
 * The input is written to <tmp>/cfg/system.json and loaded with
 * cw_system_load; <tmp>/build/guest/{bzImage,initramfs.cpio.gz} exist, so the
 * examples' relative paths ("../build/guest/bzImage") resolve and the seeds
 * (tests/fuzz/corpus/description/) load.
 *
 * Checked, beyond no crash and no leak (LeakSanitizer under libFuzzer): a
 * refusal is one "FILE:LINE:COLUMN: message" line, NUL-terminated within the
 * buffer, naming the file; a description that loads keeps every promise of
 * description.h and policy_rule.h (counts within their bounds, names valid,
 * every index pointing at the thing it names, unicast and unique MACs,
 * prefixes without host bits, ports only with tcp/udp, icmp_type only with
 * icmp/icmpv6, absolute kernel paths); cw_system_free leaves it zeroed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "system/description.h"

static char dir[64];
static char path[128];
static struct cw_system sys;

static void cleanup(void)
{
    char p[192];
    unlink(path);
    snprintf(p, sizeof(p), "%s/build/guest/bzImage", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/build/guest/initramfs.cpio.gz", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/build/guest", dir);
    rmdir(p);
    snprintf(p, sizeof(p), "%s/build", dir);
    rmdir(p);
    snprintf(p, sizeof(p), "%s/cfg", dir);
    rmdir(p);
    rmdir(dir);
}

static void write_file(const char *p, const void *data, size_t len)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(write(fd, data, len) == (ssize_t)len);
    close(fd);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/cw-fuzz-desc-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    atexit(cleanup);
    char p[192];
    snprintf(p, sizeof(p), "%s/cfg", dir);
    FUZZ_CHECK(mkdir(p, 0700) == 0);
    snprintf(p, sizeof(p), "%s/build", dir);
    FUZZ_CHECK(mkdir(p, 0700) == 0);
    snprintf(p, sizeof(p), "%s/build/guest", dir);
    FUZZ_CHECK(mkdir(p, 0700) == 0);
    snprintf(p, sizeof(p), "%s/build/guest/bzImage", dir);
    write_file(p, "kernel", 6);
    snprintf(p, sizeof(p), "%s/build/guest/initramfs.cpio.gz", dir);
    write_file(p, "initrd", 6);
    snprintf(path, sizeof(path), "%s/cfg/system.json", dir);
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > CW_SYS_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* "FILE:LINE:COLUMN: message", one line. */
static void check_error(const char *err, size_t cap)
{
    FUZZ_CHECK(memchr(err, '\0', cap) != NULL);
    FUZZ_CHECK(err[0] != '\0');
    FUZZ_CHECK(strchr(err, '\n') == NULL);
    size_t pl = strlen(path);
    FUZZ_CHECK(strncmp(err, path, pl) == 0 && err[pl] == ':');
    /* read errors have no position; the input is always a readable file
     * here, except one larger than the loader's bound */
    const char *p = err + pl + 1;
    if (*p == ' ')
        return;
    unsigned line = 0, col = 0;
    int used = 0;
    FUZZ_CHECK(sscanf(p, "%u:%u:%n", &line, &col, &used) == 2 && used > 0);
    FUZZ_CHECK(line >= 1 && col >= 1);
    FUZZ_CHECK(p[used] == ' ' && p[used + 1] != '\0');
}

static bool mac_unicast(const uint8_t m[6])
{
    return (m[0] & 1) == 0;
}

static bool prefix4_ok(const struct cw_ip4_prefix *p)
{
    if (p->len > 32)
        return false;
    uint32_t mask = p->len ? ~0u << (32 - p->len) : 0;
    return (p->addr & ~mask) == 0;
}

static bool prefix6_ok(const struct cw_ip6_prefix *p)
{
    if (p->len > 128)
        return false;
    for (unsigned bit = p->len; bit < 128; bit++)
        if (p->addr[bit / 8] & (0x80u >> (bit % 8)))
            return false;
    return true;
}

static void check_loaded(const struct cw_system *s)
{
    FUZZ_CHECK(s->n_vms <= CW_SYS_MAX_VMS && s->n_switches <= CW_SYS_MAX_SWITCHES);
    FUZZ_CHECK(s->n_uplinks <= CW_SYS_MAX_UPLINKS);
    FUZZ_CHECK(s->n_domains <= sizeof(s->domains) / sizeof(s->domains[0]));
    FUZZ_CHECK(s->path && strcmp(s->path, path) == 0 && s->dir && s->dir[0] == '/');
    for (unsigned i = 0; i < s->n_switches; i++) {
        FUZZ_CHECK(name_ok(s->switches[i].name));
        for (unsigned j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(s->switches[i].name, s->switches[j].name) != 0);
    }
    for (unsigned i = 0; i < s->n_domains; i++)
        FUZZ_CHECK(name_ok(s->domains[i]));

    const uint8_t *macs[CW_SYS_MAX_VMS * CW_SYS_MAX_NICS + CW_SYS_MAX_UPLINKS];
    unsigned n_macs = 0;
    for (unsigned i = 0; i < s->n_vms; i++) {
        const struct cw_sys_vm *vm = &s->vms[i];
        FUZZ_CHECK(name_ok(vm->name));
        for (unsigned j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(vm->name, s->vms[j].name) != 0);
        FUZZ_CHECK(vm->kernel && vm->kernel[0] == '/');
        FUZZ_CHECK(!vm->initrd || vm->initrd[0] == '/');
        FUZZ_CHECK(vm->cmdline != NULL);
        FUZZ_CHECK(vm->memory > 0 && vm->vcpus >= 1);
        FUZZ_CHECK(memchr(vm->accel, '\0', sizeof(vm->accel)) != NULL);
        FUZZ_CHECK(vm->n_nics <= CW_SYS_MAX_NICS);
        for (unsigned k = 0; k < vm->n_nics; k++) {
            const struct cw_sys_nic *nic = &vm->nics[k];
            FUZZ_CHECK(nic->switch_index >= 0 && (unsigned)nic->switch_index < s->n_switches);
            FUZZ_CHECK(strcmp(nic->switch_name, s->switches[nic->switch_index].name) == 0);
            FUZZ_CHECK(nic->domain_index >= 0 && (unsigned)nic->domain_index < s->n_domains);
            FUZZ_CHECK(strcmp(nic->domain, s->domains[nic->domain_index]) == 0);
            FUZZ_CHECK(mac_unicast(nic->mac));
            macs[n_macs++] = nic->mac;
            FUZZ_CHECK(nic->n_ipv4 <= CW_SYS_MAX_ADDRS && nic->n_ipv6 <= CW_SYS_MAX_ADDRS);
            for (unsigned a = 0; a < nic->n_ipv4; a++)
                FUZZ_CHECK(nic->ipv4[a].len <= 32);
            for (unsigned a = 0; a < nic->n_ipv6; a++)
                FUZZ_CHECK(nic->ipv6[a].len <= 128);
            FUZZ_CHECK(nic->queue_size >= 1 && nic->queue_size <= 1024 &&
                       (nic->queue_size & (nic->queue_size - 1)) == 0);
        }
    }
    for (unsigned i = 0; i < s->n_uplinks; i++) {
        const struct cw_sys_uplink *u = &s->uplinks[i];
        FUZZ_CHECK(u->switch_index >= 0 && (unsigned)u->switch_index < s->n_switches);
        FUZZ_CHECK(strcmp(u->switch_name, s->switches[u->switch_index].name) == 0);
        FUZZ_CHECK(u->domain_index >= 0 && (unsigned)u->domain_index < s->n_domains);
        FUZZ_CHECK(memchr(u->tap, '\0', sizeof(u->tap)) != NULL && u->tap[0] != '\0');
        static const uint8_t zero[6];
        if (memcmp(u->mac, zero, 6) != 0) {
            FUZZ_CHECK(mac_unicast(u->mac));
            macs[n_macs++] = u->mac;
        }
    }
    for (unsigned i = 0; i < n_macs; i++)
        for (unsigned j = 0; j < i; j++)
            FUZZ_CHECK(memcmp(macs[i], macs[j], 6) != 0);

    const struct cw_policy *pol = &s->policy;
    FUZZ_CHECK(pol->n_rules <= CW_POLICY_MAX_RULES);
    for (unsigned i = 0; i < pol->n_rules; i++) {
        const struct cw_policy_rule *r = &pol->rules[i];
        FUZZ_CHECK(r->from_domain >= 0 && (unsigned)r->from_domain < s->n_domains);
        FUZZ_CHECK(r->to_domain >= 0 && (unsigned)r->to_domain < s->n_domains);
        FUZZ_CHECK(r->from_domain != r->to_domain);
        FUZZ_CHECK(r->action == CW_RULE_ALLOW || r->action == CW_RULE_DENY);
        if (r->has_src4)
            FUZZ_CHECK(prefix4_ok(&r->src4));
        if (r->has_dst4)
            FUZZ_CHECK(prefix4_ok(&r->dst4));
        if (r->has_src6)
            FUZZ_CHECK(prefix6_ok(&r->src6));
        if (r->has_dst6)
            FUZZ_CHECK(prefix6_ok(&r->dst6));
        /* An address or a protocol fixes the IP version: ethertype says so. */
        if (r->has_src4 || r->has_dst4)
            FUZZ_CHECK(r->ethertype == 0x0800);
        if (r->has_src6 || r->has_dst6)
            FUZZ_CHECK(r->ethertype == 0x86DD);
        bool ports = !(r->src_port.lo == 0 && r->src_port.hi == 65535) ||
                     !(r->dst_port.lo == 0 && r->dst_port.hi == 65535);
        if (ports)
            FUZZ_CHECK(r->has_proto && (r->ip_proto == 6 || r->ip_proto == 17));
        FUZZ_CHECK(r->src_port.lo <= r->src_port.hi && r->dst_port.lo <= r->dst_port.hi);
        if (r->icmp_type != -1)
            FUZZ_CHECK(r->has_proto && (r->ip_proto == 1 || r->ip_proto == 58) &&
                       r->icmp_type >= 0 && r->icmp_type <= 255);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0])
        setup();
    write_file(path, data, size);
    char err[512];
    memset(err, 'x', sizeof(err));
    int rc = cw_system_load(path, &sys, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || rc == -1);
    if (getenv("FUZZ_VERBOSE")) /* what a seed reaches */
        fprintf(stderr, "fuzz_description: %s\n", rc == 0 ? "loaded" : err);
    if (rc == 0) {
        FUZZ_CHECK(err[0] == '\0');
        check_loaded(&sys);
    } else {
        check_error(err, sizeof(err));
        /* nothing is kept from a refused description */
        FUZZ_CHECK(sys.path == NULL && sys.n_vms == 0);
    }
    cw_system_free(&sys);
    FUZZ_CHECK(sys.path == NULL && sys.dir == NULL && sys.n_vms == 0);
    return 0;
}
