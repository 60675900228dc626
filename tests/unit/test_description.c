/* The system description loader: the examples load with the right values,
 * every malformed description is refused with its message at the exact
 * LINE:COLUMN, and the position scanner (json_locate) survives hostile
 * text. Fixtures are written to a temp dir next to empty kernel/initrd
 * files; positions in the expectations were counted by hand from the
 * fixture text (1-based, characters). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "system/description.h"
#include "system/ip_prefix.h"
#include "system/json_locate.h"
#include "system/policy_parse.h"

static char tmp[64];
static char sys_path[128];
static struct cw_system *sys;
static char err[1024];

/* ---- fixture plumbing ---------------------------------------------------- */

static void write_at(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void mkdirs_for(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) && errno != EEXIST)
            fail_msg("mkdir %s: %s", buf, strerror(errno));
        *p = '/';
    }
}

static int group_setup(void **state)
{
    (void)state;
    strcpy(tmp, "/tmp/cw-desc-XXXXXX");
    if (!mkdtemp(tmp))
        return -1;
    snprintf(sys_path, sizeof(sys_path), "%s/sys.json", tmp);
    char p[128];
    snprintf(p, sizeof(p), "%s/k", tmp);
    write_at(p, "", 0);
    snprintf(p, sizeof(p), "%s/i", tmp);
    write_at(p, "", 0);
    snprintf(p, sizeof(p), "%s/adir", tmp);
    if (mkdir(p, 0755))
        return -1;
    sys = calloc(1, sizeof(*sys));
    return sys ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    free(sys);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static int load_text(const char *text)
{
    write_at(sys_path, text, strlen(text));
    return cw_system_load(sys_path, sys, err, sizeof(err));
}

static void load_ok(const char *text)
{
    if (load_text(text))
        fail_msg("expected success, got: %s", err);
}

/* The one error line must be "SYS_PATH:LINE:COL: ..." and hold msg. */
static void check_error(const char *name, unsigned line, unsigned col, const char *msg)
{
    char prefix[192];
    snprintf(prefix, sizeof(prefix), "%s:%u:%u: ", sys_path, line, col);
    if (strncmp(err, prefix, strlen(prefix)) || !strstr(err, msg))
        fail_msg("case '%s': expected '%s...%s', got '%s'", name, prefix, msg, err);
    if (strchr(err, '\n'))
        fail_msg("case '%s': error is more than one line: '%s'", name, err);
}

static void expect_error(const char *name, const char *text, unsigned line, unsigned col,
                         const char *msg)
{
    if (load_text(text) == 0)
        fail_msg("case '%s': loaded, expected an error at %u:%u", name, line, col);
    check_error(name, line, col, msg);
    /* A failed load leaves nothing behind. */
    assert_int_equal(sys->n_vms, 0);
    assert_null(sys->path);
}

/* ---- malformed descriptions ---------------------------------------------- */

struct bad {
    const char *name;
    const char *text;
    unsigned line, col;
    const char *msg;
};

#define VM1 "{\"vms\": [{\"name\": \"a\", \"kernel\": \"k\", \"initrd\": \"i\",\n"
#define NIC_HEAD                                                                                 \
    "{\"switches\": [{\"name\": \"s\"}],\n"                                                    \
    " \"vms\": [{\"name\": \"a\", \"kernel\": \"k\", \"initrd\": \"i\", \"nics\": [\n"
#define NIC3 "  {\"switch\": \"s\", \"mac\": \"52:54:00:00:00:01\", \"domain\": \"d\",\n"
#define POL_HEAD                                                                                 \
    "{\"switches\": [{\"name\": \"s\"}],\n"                                                    \
    " \"vms\": [{\"name\": \"a\", \"kernel\": \"k\", \"initrd\": \"i\", \"nics\": [\n"         \
    "  {\"switch\": \"s\", \"mac\": \"52:54:00:00:00:01\", \"domain\": \"hi\"}]},\n"           \
    "  {\"name\": \"b\", \"kernel\": \"k\", \"initrd\": \"i\", \"nics\": [\n"                  \
    "  {\"switch\": \"s\", \"mac\": \"52:54:00:00:00:02\", \"domain\": \"lo\"}]}],\n"          \
    " \"policy\": {\"rules\": [\n"
#define POL_TAIL "\n ]}}"
#define R7 "  {\"from\": \"lo\", \"to\": \"hi\", \"action\": \"allow\", "
#define UP_HEAD                                                                                  \
    "{\"switches\": [{\"name\": \"s\"}],\n"                                                    \
    " \"vms\": [{\"name\": \"a\", \"kernel\": \"k\", \"initrd\": \"i\"}],\n"

static const struct bad bad_cases[] = {
    /* syntax: jansson's own line and column */
    { "syntax: missing value", "{\"vms\": [{\"name\": \"a\",\n \"kernel\": }]}", 2, 12,
      "unexpected token near '}'" },
    { "syntax: trailing comma", "{\"vms\": [],\n}", 2, 1, "string or '}' expected" },
    { "syntax: empty file", "", 1, 1, "expected near end of file" },
    /* duplicate keys, also spelt with an escape */
    { "duplicate key", VM1 "  \"name\": \"b\"}]}", 2, 3,
      "vms[0]: duplicate key \"name\" (first at 1:11)" },
    { "duplicate key via \\u escape", VM1 "  \"n\\u0061me\": \"b\"}]}", 2, 3,
      "duplicate key \"name\" (first at 1:11)" },
    /* top level */
    { "top level is an array", "[]", 1, 1, "expected an object, got an array" },
    { "missing vms", "{\"switches\": []}", 1, 1, "missing field \"vms\"" },
    { "vms not an array", "{\"vms\": {}}", 1, 9, "vms: expected an array, got an object" },
    { "no VM", "{\"vms\": []}", 1, 9, "vms: a system needs at least one VM" },
    { "unknown top-level key",
      "{\"vms\": [{\"name\": \"a\", \"kernel\": \"k\", \"initrd\": \"i\"}],\n \"vm\": []}", 2, 2,
      "unknown key \"vm\" (allowed: vms, switches, uplinks, policy, on_failure)" },
    { "on_failure",
      "{\"vms\": [{\"name\": \"a\", \"kernel\": \"k\", \"initrd\": \"i\"}],\n"
      " \"on_failure\": \"abort\"}",
      2, 16, "on_failure: on_failure \"abort\" must be \"continue\" or \"stop\"" },
    /* VMs */
    { "unknown VM key", VM1 "  \"mem\": \"256M\"}]}", 2, 3,
      "vms[0]: unknown key \"mem\" (allowed: name, kernel, initrd, cmdline, memory, vcpus, gmem, "
      "accel, nics)" },
    { "missing kernel", "{\"vms\": [\n  {\"name\": \"a\", \"initrd\": \"i\"}]}", 2, 3,
      "vms[0]: missing field \"kernel\"" },
    { "VM name empty", "{\"vms\": [{\"kernel\": \"k\", \"initrd\": \"i\",\n  \"name\": \"\"}]}", 2,
      11, "vms[0].name: VM name is empty" },
    { "VM name too long",
      "{\"vms\": [{\"kernel\": \"k\", \"initrd\": \"i\",\n"
      "  \"name\": \"abcdefghijklmnopqrstuvwxyz0123456\"}]}",
      2, 11, "is longer than 32 characters" },
    { "VM name bad character",
      "{\"vms\": [{\"kernel\": \"k\", \"initrd\": \"i\",\n  \"name\": \"a b\"}]}", 2, 11,
      "VM name \"a b\" has a character other than A-Z a-z 0-9 _ -" },
    { "VM name wrong type", "{\"vms\": [{\"kernel\": \"k\", \"initrd\": \"i\",\n  \"name\": 7}]}",
      2, 11, "vms[0].name: expected a string, got an integer" },
    { "columns count characters, not bytes",
      "{\"vms\": [{\"kernel\": \"k\", \"initrd\": \"i\",\n"
      "  \"cmdline\": \"\xc3\xa9\xc3\xa9\xc3\xa9\", \"name\": \"a b\"}]}",
      2, 29, "has a character other than" },
    { "duplicate VM name",
      "{\"vms\": [{\"name\": \"a\", \"kernel\": \"k\", \"initrd\": \"i\"},\n"
      "  {\"name\": \"a\", \"kernel\": \"k\", \"initrd\": \"i\"}]}",
      2, 12, "vms[1].name: duplicate VM name \"a\" (first at 1:19)" },
    { "kernel missing", "{\"vms\": [{\"name\": \"a\", \"initrd\": \"i\",\n  \"kernel\": \"nope\"}]}",
      2, 13, "kernel \"nope\": No such file or directory" },
    { "kernel is a folder",
      "{\"vms\": [{\"name\": \"a\", \"initrd\": \"i\",\n  \"kernel\": \"adir\"}]}", 2, 13,
      "kernel \"adir\" is not a regular file" },
    { "initrd empty path", "{\"vms\": [{\"name\": \"a\", \"kernel\": \"k\",\n  \"initrd\": \"\"}]}",
      2, 13, "initrd path is empty" },
    { "vcpus 0", VM1 "  \"vcpus\": 0}]}", 2, 12, "vms[0].vcpus: 0 is out of range 1..64" },
    { "vcpus 65", VM1 "  \"vcpus\": 65}]}", 2, 12, "65 is out of range 1..64" },
    { "vcpus string", VM1 "  \"vcpus\": \"2\"}]}", 2, 12, "expected an integer, got a string" },
    { "vcpus real", VM1 "  \"vcpus\": 1.5}]}", 2, 12, "expected an integer, got a real number" },
    { "memory below 64M", VM1 "  \"memory\": \"32M\"}]}", 2, 13,
      "memory 32M is below the minimum of 64M" },
    { "memory not whole MiB", VM1 "  \"memory\": 100000000}]}", 2, 13,
      "memory 100000000 bytes is not a whole number of MiB" },
    { "memory not a size", VM1 "  \"memory\": \"12X\"}]}", 2, 13,
      "memory \"12X\" is not a size" },
    { "memory wrong type", VM1 "  \"memory\": true}]}", 2, 13, "expected a size" },
    { "gmem", VM1 "  \"gmem\": \"lazy\"}]}", 2, 11,
      "gmem \"lazy\" must be \"persistent\" or \"map-per-access\"" },
    { "accel", VM1 "  \"accel\": \"xen\"}]}", 2, 12,
      "accel \"xen\" must be \"auto\", \"kvm\" or \"tcg\"" },
    { "cmdline control character", VM1 "  \"cmdline\": \"a\\nb\"}]}", 2, 14,
      "cmdline has a control character at byte 1" },
    { "nics not an array", VM1 "  \"nics\": \"eth0\"}]}", 2, 11,
      "vms[0].nics: expected an array, got a string" },
    /* NICs */
    { "unknown NIC key", NIC_HEAD NIC3 "   \"vlan\": 5}]}]}", 4, 4,
      "vms[0].nics[0]: unknown key \"vlan\"" },
    { "missing NIC mac", NIC_HEAD "  {\"switch\": \"s\", \"domain\": \"d\"}]}]}", 3, 3,
      "vms[0].nics[0]: missing field \"mac\"" },
    { "NIC on a switch that does not exist",
      NIC_HEAD "  {\"switch\": \"t\", \"mac\": \"52:54:00:00:00:01\", \"domain\": \"d\"}]}]}", 3,
      14, "vms[0].nics[0].switch: no switch named \"t\" (switches: s)" },
    { "MAC multicast",
      NIC_HEAD "  {\"switch\": \"s\", \"mac\": \"01:00:5e:00:00:01\", \"domain\": \"d\"}]}]}", 3,
      26, "MAC 01:00:5e:00:00:01 is a multicast address" },
    { "MAC broadcast",
      NIC_HEAD "  {\"switch\": \"s\", \"mac\": \"ff:ff:ff:ff:ff:ff\", \"domain\": \"d\"}]}]}", 3,
      26, "is the broadcast address" },
    { "MAC all zeros",
      NIC_HEAD "  {\"switch\": \"s\", \"mac\": \"00:00:00:00:00:00\", \"domain\": \"d\"}]}]}", 3,
      26, "is all zeros" },
    { "MAC too short",
      NIC_HEAD "  {\"switch\": \"s\", \"mac\": \"52:54:00:00:00\", \"domain\": \"d\"}]}]}", 3, 26,
      "malformed MAC \"52:54:00:00:00\"" },
    { "MAC bad digit",
      NIC_HEAD "  {\"switch\": \"s\", \"mac\": \"52:54:00:00:00:0g\", \"domain\": \"d\"}]}]}", 3,
      26, "malformed MAC" },
    { "MAC with dashes",
      NIC_HEAD "  {\"switch\": \"s\", \"mac\": \"52-54-00-00-00-01\", \"domain\": \"d\"}]}]}", 3,
      26, "malformed MAC" },
    { "domain name",
      NIC_HEAD "  {\"switch\": \"s\", \"mac\": \"52:54:00:00:00:01\", \"domain\": \"x y\"}]}]}", 3,
      57, "domain name \"x y\" has a character other than" },
    { "mtu 67", NIC_HEAD NIC3 "   \"mtu\": 67}]}]}", 4, 11, "mtu: 67 is out of range 68..65535" },
    { "mtu 65536", NIC_HEAD NIC3 "   \"mtu\": 65536}]}]}", 4, 11, "65536 is out of range" },
    { "queue_size 300", NIC_HEAD NIC3 "   \"queue_size\": 300}]}]}", 4, 18,
      "queue_size 300 is not 256, 512 or 1024" },
    { "offloads not a boolean", NIC_HEAD NIC3 "   \"offloads\": \"on\"}]}]}", 4, 16,
      "expected a boolean (true or false), got a string" },
    { "ipv4 without prefix length", NIC_HEAD NIC3 "   \"ipv4\": \"10.99.0.1\"}]}]}", 4, 12,
      "\"10.99.0.1\" has no prefix length" },
    { "ipv4 prefix length 33", NIC_HEAD NIC3 "   \"ipv4\": \"10.99.0.1/33\"}]}]}", 4, 12,
      "prefix length must be 0..32" },
    { "ipv4 holding IPv6", NIC_HEAD NIC3 "   \"ipv4\": \"fd00::1/64\"}]}]}", 4, 12,
      "looks like IPv6: put it under \"ipv6\"" },
    { "ipv4 octet 256", NIC_HEAD NIC3 "   \"ipv4\": \"10.99.0.256/24\"}]}]}", 4, 12,
      "is not an IPv4 address with prefix" },
    { "ipv4 multicast", NIC_HEAD NIC3 "   \"ipv4\": \"224.0.0.1/4\"}]}]}", 4, 12,
      "is not a unicast address" },
    { "ipv4 array element type", NIC_HEAD NIC3 "   \"ipv4\": [\"10.99.0.1/24\", 5]}]}]}", 4, 29,
      "vms[0].nics[0].ipv4[1]: expected a string, got an integer" },
    { "ipv4 wrong type", NIC_HEAD NIC3 "   \"ipv4\": 5}]}]}", 4, 12,
      "expected a prefix string or an array of them" },
    { "ipv6 malformed", NIC_HEAD NIC3 "   \"ipv6\": \"fd00::zz/64\"}]}]}", 4, 12,
      "is not an IPv6 address with prefix" },
    { "ipv6 prefix length", NIC_HEAD NIC3 "   \"ipv6\": \"fd00::1/129\"}]}]}", 4, 12,
      "prefix length must be 0..128" },
    { "duplicate MAC across VMs",
      NIC_HEAD "  {\"switch\": \"s\", \"mac\": \"52:54:00:00:00:01\", \"domain\": \"d\"}]},\n"
               "  {\"name\": \"b\", \"kernel\": \"k\", \"initrd\": \"i\", \"nics\": [\n"
               "  {\"switch\": \"s\", \"mac\": \"52:54:00:00:00:01\", \"domain\": \"d\"}]}]}",
      5, 26, "vms[1].nics[0].mac: duplicate MAC 52:54:00:00:00:01 (first at 3:26)" },
    { "duplicate MAC NIC and uplink (case differs)",
      NIC_HEAD "  {\"switch\": \"s\", \"mac\": \"52:54:00:00:00:0a\", \"domain\": \"d\"}]}],\n"
               " \"uplinks\": [{\"switch\": \"s\", \"tap\": \"t0\", \"domain\": \"d\", \"mac\": "
               "\"52:54:00:00:00:0A\"}]}",
      4, 65, "uplinks[0].mac: duplicate MAC 52:54:00:00:00:0A (first at 3:26)" },
    { "duplicate IPv4 on one switch",
      NIC_HEAD NIC3 "   \"ipv4\": \"10.99.0.1/24\"},\n"
                    "  {\"switch\": \"s\", \"mac\": \"52:54:00:00:00:02\", \"domain\": \"d\", "
                    "\"ipv4\": \"10.99.0.1/16\"}]}]}",
      5, 70, "vms[0].nics[1].ipv4: IPv4 address 10.99.0.1 is also on a's NIC 0 (switch s)" },
    { "duplicate IPv6 on one switch (array, other spelling)",
      NIC_HEAD NIC3 "   \"ipv6\": \"fd00::1/64\"},\n"
                    "  {\"switch\": \"s\", \"mac\": \"52:54:00:00:00:02\", \"domain\": \"d\",\n"
                    "   \"ipv6\": [\"fd00::2/64\", \"fd00:0::0:1/64\"]}]}]}",
      6, 27, "vms[0].nics[1].ipv6[1]: IPv6 address fd00::1 is also on a's NIC 0 (switch s)" },
    { "more than 4 NICs",
      NIC_HEAD "  {\"switch\": \"s\", \"mac\": \"52:54:00:00:00:01\", \"domain\": \"d\"},\n"
               "  {\"switch\": \"s\", \"mac\": \"52:54:00:00:00:02\", \"domain\": \"d\"},\n"
               "  {\"switch\": \"s\", \"mac\": \"52:54:00:00:00:03\", \"domain\": \"d\"},\n"
               "  {\"switch\": \"s\", \"mac\": \"52:54:00:00:00:04\", \"domain\": \"d\"},\n"
               "  {\"switch\": \"s\", \"mac\": \"52:54:00:00:00:05\", \"domain\": \"d\"}]}]}",
      7, 3, "vms[0].nics[4]: more than 4 NICs on one VM" },
    /* switches and uplinks */
    { "duplicate switch name",
      "{\"switches\": [{\"name\": \"s\"},\n  {\"name\": \"s\"}],\n"
      " \"vms\": [{\"name\": \"a\", \"kernel\": \"k\", \"initrd\": \"i\"}]}",
      2, 12, "switches[1].name: duplicate switch name \"s\" (first at 1:24)" },
    { "switch unknown key",
      "{\"switches\": [{\"name\": \"s\",\n  \"ports\": 4}],\n"
      " \"vms\": [{\"name\": \"a\", \"kernel\": \"k\", \"initrd\": \"i\"}]}",
      2, 3, "switches[0]: unknown key \"ports\" (allowed: name)" },
    { "uplink on a switch that does not exist",
      UP_HEAD " \"uplinks\": [{\"switch\": \"t\", \"tap\": \"t0\", \"domain\": \"d\"}]}", 3, 25,
      "uplinks[0].switch: no switch named \"t\"" },
    { "uplink tap name too long",
      UP_HEAD " \"uplinks\": [{\"switch\": \"s\", \"tap\": \"abcdefghijklmnop\", \"domain\": \"d\"}]}",
      3, 37, "tap \"abcdefghijklmnop\" is not an interface name" },
    { "uplink tap name with a slash",
      UP_HEAD " \"uplinks\": [{\"switch\": \"s\", \"tap\": \"a/b\", \"domain\": \"d\"}]}", 3, 37,
      "tap \"a/b\" is not an interface name" },
    { "uplink missing domain", UP_HEAD " \"uplinks\": [{\"switch\": \"s\", \"tap\": \"t0\"}]}", 3, 14,
      "uplinks[0]: missing field \"domain\"" },
    { "duplicate tap",
      UP_HEAD " \"uplinks\": [{\"switch\": \"s\", \"tap\": \"t0\", \"domain\": \"d\"},\n"
              "  {\"switch\": \"s\", \"tap\": \"t0\", \"domain\": \"d\"}]}",
      4, 26, "duplicate tap \"t0\" (first at 3:37)" },
    /* policy */
    { "rule missing action", POL_HEAD "  {\"from\": \"lo\", \"to\": \"hi\"}" POL_TAIL, 7, 3,
      "policy.rules[0]: missing field \"action\"" },
    { "rule missing from", POL_HEAD "  {\"to\": \"hi\", \"action\": \"allow\"}" POL_TAIL, 7, 3,
      "missing field \"from\"" },
    { "rule action", POL_HEAD "  {\"from\": \"lo\", \"to\": \"hi\", \"action\": \"permit\"}" POL_TAIL,
      7, 40, "action \"permit\" is neither \"allow\" nor \"deny\"" },
    { "rule unknown domain",
      POL_HEAD "  {\"from\": \"lo\", \"to\": \"mid\", \"action\": \"allow\"}" POL_TAIL, 7, 24,
      "policy.rules[0].to: no NIC or uplink is in domain \"mid\" (domains: hi, lo)" },
    { "rule inside one domain",
      POL_HEAD "  {\"from\": \"lo\", \"to\": \"lo\", \"action\": \"allow\"}" POL_TAIL, 7, 24,
      "from and to are both \"lo\"" },
    { "rule unknown key", POL_HEAD R7 "\"port\": 5}" POL_TAIL, 7, 49,
      "policy.rules[0]: unknown key \"port\"" },
    { "rule proto", POL_HEAD R7 "\"proto\": \"sctp\"}" POL_TAIL, 7, 58,
      "unknown proto \"sctp\"" },
    { "rule proto 256", POL_HEAD R7 "\"proto\": 256}" POL_TAIL, 7, 58,
      "proto 256 is out of range 0..255" },
    { "rule ethertype name", POL_HEAD R7 "\"ethertype\": \"ipx\"}" POL_TAIL, 7, 62,
      "unknown ethertype \"ipx\"" },
    { "rule ethertype is a length", POL_HEAD R7 "\"ethertype\": 100}" POL_TAIL, 7, 62,
      "ethertype 100 is out of range 1536..65535" },
    { "rule src with host bits", POL_HEAD R7 "\"src\": \"10.0.0.1/24\"}" POL_TAIL, 7, 56,
      "src \"10.0.0.1/24\" has host bits set (did you mean \"10.0.0.0/24\"?)" },
    { "rule IPv6 dst with host bits", POL_HEAD R7 "\"dst\": \"fd00::1/64\"}" POL_TAIL, 7, 56,
      "(did you mean \"fd00::/64\"?)" },
    { "rule src prefix length", POL_HEAD R7 "\"src\": \"10.0.0.0/40\"}" POL_TAIL, 7, 56,
      "prefix length must be 0..32" },
    { "rule src not an address", POL_HEAD R7 "\"src\": \"bogus\"}" POL_TAIL, 7, 56,
      "\"bogus\" is not an IPv4 or IPv6 prefix" },
    { "rule IPv4 src with ethertype ipv6",
      POL_HEAD R7 "\"ethertype\": \"ipv6\",\n   \"src\": \"10.0.0.0/8\"}" POL_TAIL, 8, 11,
      "src \"10.0.0.0/8\" is an IPv4 prefix, but ethertype is ipv6" },
    { "rule IPv4 src and IPv6 dst",
      POL_HEAD R7 "\"src\": \"10.0.0.0/8\",\n   \"dst\": \"fd00::/64\"}" POL_TAIL, 8, 11,
      "dst \"fd00::/64\" is an IPv6 prefix, but src is IPv4" },
    { "rule icmpv6 with IPv4 src",
      POL_HEAD R7 "\"proto\": \"icmpv6\",\n   \"src\": \"10.0.0.0/8\"}" POL_TAIL, 8, 11,
      "is an IPv4 prefix, but proto is icmpv6" },
    { "rule icmp with ethertype ipv6",
      POL_HEAD R7 "\"ethertype\": \"ipv6\",\n   \"proto\": \"icmp\"}" POL_TAIL, 8, 13,
      "proto icmp is ICMP for IPv4, but ethertype is ipv6 (use \"icmpv6\")" },
    { "rule proto with ethertype arp",
      POL_HEAD R7 "\"ethertype\": \"arp\",\n   \"proto\": \"udp\"}" POL_TAIL, 8, 13,
      "proto udp needs an IP ethertype, but ethertype is arp" },
    { "rule address with ethertype arp",
      POL_HEAD R7 "\"ethertype\": \"arp\",\n   \"dst\": \"10.0.0.0/8\"}" POL_TAIL, 8, 11,
      "dst needs an IP ethertype, but ethertype is arp" },
    { "rule ports with icmp", POL_HEAD R7 "\"proto\": \"icmp\",\n   \"dst_port\": 80}" POL_TAIL, 8,
      16, "dst_port does not apply to proto icmp" },
    { "rule port without proto", POL_HEAD R7 "\"src_port\": 80}" POL_TAIL, 7, 61,
      "src_port needs \"proto\": \"tcp\" or \"udp\"" },
    { "rule empty port range",
      POL_HEAD R7 "\"proto\": \"udp\",\n   \"dst_port\": \"5010-5000\"}" POL_TAIL, 8, 16,
      "port range \"5010-5000\" is empty" },
    { "rule malformed port", POL_HEAD R7 "\"proto\": \"udp\",\n   \"dst_port\": \"50x\"}" POL_TAIL,
      8, 16, "\"50x\" is not a port or port range" },
    { "rule port out of range", POL_HEAD R7 "\"proto\": \"tcp\",\n   \"dst_port\": 70000}" POL_TAIL,
      8, 16, "port 70000 is out of range 0..65535" },
    { "rule icmp_type with tcp", POL_HEAD R7 "\"proto\": \"tcp\",\n   \"icmp_type\": 8}" POL_TAIL,
      8, 17, "icmp_type does not apply to proto tcp" },
    { "rule icmp_type without proto", POL_HEAD R7 "\"icmp_type\": 8}" POL_TAIL, 7, 62,
      "icmp_type needs \"proto\": \"icmp\" or \"icmpv6\"" },
    { "rule icmp_type 256", POL_HEAD R7 "\"proto\": \"icmp\",\n   \"icmp_type\": 256}" POL_TAIL, 8,
      17, "256 is out of range 0..255" },
    { "rule both not a boolean", POL_HEAD R7 "\"both\": \"yes\"}" POL_TAIL, 7, 57,
      "expected a boolean" },
    { "rules not an array",
      "{\"vms\": [{\"name\": \"a\", \"kernel\": \"k\", \"initrd\": \"i\"}],\n"
      " \"policy\": {\"rules\": {}}}",
      2, 22, "policy.rules: expected an array, got an object" },
};

static void test_malformed(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad *b = &bad_cases[i];
        expect_error(b->name, b->text, b->line, b->col, b->msg);
    }
    print_message("%zu malformed descriptions refused at their exact positions\n",
                  sizeof(bad_cases) / sizeof(bad_cases[0]));
}

static unsigned long long host_mib(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    assert_true(pages > 0 && page > 0);
    return (unsigned long long)pages * (unsigned long long)page >> 20;
}

/* Memory that cannot fit: one VM larger than the host, then two VMs that
 * each fit but not together (reported at the one that tips it over). */
static void test_memory_cannot_fit(void **state)
{
    (void)state;
    unsigned long long ram = host_mib();
    char want[160];
    snprintf(want, sizeof(want),
             "vms[0].memory: memory that cannot fit: the VMs need 1073741824 MiB in all, and this "
             "host has %llu MiB of RAM",
             ram);
    expect_error("one huge VM", VM1 "  \"memory\": \"1048576G\"}]}", 2, 13, want);

    unsigned long long each = ram / 2 + 64;
    char text[512];
    snprintf(text, sizeof(text),
             "{\"vms\": [{\"name\": \"a\", \"kernel\": \"k\", \"initrd\": \"i\", \"memory\": \"%lluM\"},\n"
             "  {\"name\": \"b\", \"kernel\": \"k\", \"initrd\": \"i\", \"memory\": \"%lluM\"}]}",
             each, each);
    snprintf(want, sizeof(want), "vms[1].memory: memory that cannot fit: the VMs need %llu MiB",
             2 * each);
    expect_error("two VMs together", text, 2, 57, want);

    /* The default 256M counts too: the second VM has no memory field, so
     * the VM object itself is pointed at. */
    snprintf(text, sizeof(text),
             "{\"vms\": [{\"name\": \"a\", \"kernel\": \"k\", \"initrd\": \"i\", \"memory\": \"%lluM\"},\n"
             "  {\"name\": \"b\", \"kernel\": \"k\", \"initrd\": \"i\"}]}",
             ram - 128);
    expect_error("default memory tips it over", text, 2, 3, "vms[1]: memory that cannot fit");
}

/* Rule 257 is one too many; generated so the count is exact. */
static void test_too_many_rules(void **state)
{
    (void)state;
    size_t cap = strlen(POL_HEAD) + 300 * 64 + 16;
    char *text = malloc(cap);
    assert_non_null(text);
    strcpy(text, POL_HEAD);
    for (int i = 0; i < 257; i++)
        strcat(text, i ? ",\n  {\"from\": \"lo\", \"to\": \"hi\", \"action\": \"deny\"}"
                       : "  {\"from\": \"lo\", \"to\": \"hi\", \"action\": \"deny\"}");
    strcat(text, POL_TAIL);
    expect_error("257 rules", text, 7 + 256, 3, "policy.rules[256]: more than 256 rules");
    free(text);
}

static void test_not_a_file(void **state)
{
    (void)state;
    char p[160];
    snprintf(p, sizeof(p), "%s/none.json", tmp);
    assert_int_equal(cw_system_load(p, sys, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "none.json: No such file or directory"));
    snprintf(p, sizeof(p), "%s/adir", tmp);
    assert_int_equal(cw_system_load(p, sys, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "adir: not a regular file"));
    /* Too large: the loader reads a bounded amount. */
    char *big = malloc((2u << 20) + 1);
    assert_non_null(big);
    memset(big, ' ', 2u << 20);
    big[2u << 20] = '\0';
    assert_int_equal(load_text(big), -1);
    free(big);
    assert_non_null(strstr(err, "larger than"));
    /* No error buffer: still refused, nothing written anywhere. */
    write_at(sys_path, "{}", 2);
    assert_int_equal(cw_system_load(sys_path, sys, NULL, 0), -1);
}

/* ---- well-formed descriptions -------------------------------------------- */

static void test_defaults_and_every_field(void **state)
{
    (void)state;
    load_ok("{\"vms\": [{\"name\": \"a\", \"kernel\": \"k\", \"initrd\": \"i\"}]}");
    assert_int_equal(sys->n_vms, 1);
    assert_int_equal(sys->n_switches, 0);
    assert_int_equal(sys->n_domains, 0);
    const struct cw_sys_vm *vm = &sys->vms[0];
    assert_string_equal(vm->name, "a");
    assert_int_equal(vm->memory, 256ull << 20);
    assert_int_equal(vm->vcpus, 1);
    assert_int_equal(vm->gmem, CW_GMEM_PERSISTENT);
    assert_string_equal(vm->accel, "auto");
    assert_string_equal(vm->cmdline, "console=ttyS0 quiet panic=-1 cryptomgr.notests no_timer_check");
    assert_int_equal(vm->n_nics, 0);
    char want[160];
    snprintf(want, sizeof(want), "%s/k", tmp);
    char *real = realpath(want, NULL);
    assert_non_null(real);
    assert_string_equal(vm->kernel, real);
    free(real);
    assert_string_equal(sys->path, sys_path);
    assert_false(sys->stop_all_on_failure);
    cw_system_free(sys);

    load_ok("{\"switches\": [{\"name\": \"s\"}, {\"name\": \"t_2\"}],\n"
            " \"vms\": [{\"name\": \"A-b_9\", \"kernel\": \"./k\", \"initrd\": \"adir/../i\",\n"
            "   \"cmdline\": \"console=ttyS0\", \"memory\": 134217728, \"vcpus\": 64,\n"
            "   \"gmem\": \"map-per-access\", \"accel\": \"tcg\", \"nics\": [\n"
            "  {\"switch\": \"t_2\", \"mac\": \"02:AB:cd:00:00:01\", \"domain\": \"high\",\n"
            "   \"ipv4\": [\"10.99.0.1/24\", \"192.168.1.7/16\"], \"ipv6\": \"fd00::1/64\",\n"
            "   \"mtu\": 9000, \"offloads\": false, \"queue_size\": 256},\n"
            "  {\"switch\": \"s\", \"mac\": \"02:00:00:00:00:02\", \"domain\": \"low\", \"ipv4\": "
            "[]}]},\n"
            "  {\"name\": \"b\", \"kernel\": \"k\", \"initrd\": \"i\", \"memory\": \"1G\"}],\n"
            " \"uplinks\": [{\"switch\": \"s\", \"tap\": \"cw.tap-0\", \"domain\": \"host\",\n"
            "   \"mac\": \"02:00:00:00:00:fe\"}],\n"
            " \"policy\": {\"rules\": [\n"
            "  {\"from\": \"low\", \"to\": \"high\", \"action\": \"allow\", \"proto\": \"icmpv6\",\n"
            "   \"icmp_type\": 135, \"both\": true},\n"
            "  {\"from\": \"host\", \"to\": \"low\", \"action\": \"deny\", \"src\": \"10.0.0.0/8\",\n"
            "   \"dst\": \"10.99.0.7\", \"proto\": \"tcp\", \"src_port\": \"1024-65535\", "
            "\"dst_port\": 22},\n"
            "  {\"from\": \"high\", \"to\": \"host\", \"action\": \"allow\", \"ethertype\": \"arp\"},\n"
            "  {\"from\": \"high\", \"to\": \"low\", \"action\": \"allow\", \"proto\": 17},\n"
            "  {\"from\": \"low\", \"to\": \"host\", \"action\": \"allow\", \"ethertype\": 35020},\n"
            "  {\"from\": \"low\", \"to\": \"high\", \"action\": \"deny\", \"dst\": \"fd00::/16\"}\n"
            " ]},\n"
            " \"on_failure\": \"stop\"}");
    assert_int_equal(sys->n_vms, 2);
    assert_int_equal(sys->n_switches, 2);
    assert_string_equal(sys->switches[1].name, "t_2");
    vm = &sys->vms[0];
    assert_string_equal(vm->name, "A-b_9");
    assert_int_equal(vm->memory, 128ull << 20);
    assert_int_equal(vm->vcpus, 64);
    assert_int_equal(vm->gmem, CW_GMEM_MAP_PER_ACCESS);
    assert_string_equal(vm->accel, "tcg");
    assert_string_equal(vm->cmdline, "console=ttyS0");
    snprintf(want, sizeof(want), "%s/i", tmp);
    real = realpath(want, NULL);
    assert_string_equal(vm->initrd, real); /* "adir/../i", canonical */
    free(real);
    assert_int_equal(vm->n_nics, 2);
    const struct cw_sys_nic *n0 = &vm->nics[0], *n1 = &vm->nics[1];
    assert_string_equal(n0->switch_name, "t_2");
    assert_int_equal(n0->switch_index, 1);
    static const uint8_t mac0[6] = { 0x02, 0xab, 0xcd, 0, 0, 1 };
    assert_memory_equal(n0->mac, mac0, 6);
    assert_string_equal(n0->domain, "high");
    assert_int_equal(n0->domain_index, 0);
    assert_int_equal(n0->n_ipv4, 2);
    assert_int_equal(n0->ipv4[0].addr, 0x0A630001);
    assert_int_equal(n0->ipv4[0].len, 24);
    assert_int_equal(n0->ipv4[1].addr, 0xC0A80107);
    assert_int_equal(n0->ipv4[1].len, 16);
    assert_int_equal(n0->n_ipv6, 1);
    assert_int_equal(n0->ipv6[0].addr[0], 0xfd);
    assert_int_equal(n0->ipv6[0].addr[15], 1);
    assert_int_equal(n0->ipv6[0].len, 64);
    assert_int_equal(n0->mtu, 9000);
    assert_false(n0->offloads);
    assert_int_equal(n0->queue_size, 256);
    assert_int_equal(n1->switch_index, 0);
    assert_int_equal(n1->domain_index, 1);
    assert_int_equal(n1->n_ipv4, 0);
    assert_int_equal(n1->mtu, 0);
    assert_true(n1->offloads);
    assert_int_equal(n1->queue_size, 1024);
    assert_int_equal(sys->vms[1].memory, 1ull << 30);

    assert_int_equal(sys->n_uplinks, 1);
    assert_string_equal(sys->uplinks[0].tap, "cw.tap-0");
    assert_int_equal(sys->uplinks[0].switch_index, 0);
    assert_int_equal(sys->uplinks[0].domain_index, 2);
    assert_int_equal(sys->uplinks[0].mac[5], 0xfe);
    assert_int_equal(sys->n_domains, 3);
    assert_string_equal(sys->domains[0], "high");
    assert_string_equal(sys->domains[1], "low");
    assert_string_equal(sys->domains[2], "host");
    assert_true(sys->stop_all_on_failure);

    assert_int_equal(sys->policy.n_rules, 6);
    const struct cw_policy_rule *r = sys->policy.rules;
    /* icmpv6 implies IPv6 */
    assert_int_equal(r[0].from_domain, 1);
    assert_int_equal(r[0].to_domain, 0);
    assert_int_equal(r[0].action, CW_RULE_ALLOW);
    assert_true(r[0].both);
    assert_true(r[0].has_proto);
    assert_int_equal(r[0].ip_proto, 58);
    assert_int_equal(r[0].ethertype, CW_ETHERTYPE_IPV6);
    assert_int_equal(r[0].icmp_type, 135);
    assert_int_equal(r[0].src_port.lo, 0);
    assert_int_equal(r[0].src_port.hi, 65535);
    assert_int_equal(r[0].line, 13);
    /* addresses imply IPv4; a bare address is a /32 */
    assert_int_equal(r[1].action, CW_RULE_DENY);
    assert_false(r[1].both);
    assert_int_equal(r[1].ethertype, CW_ETHERTYPE_IPV4);
    assert_true(r[1].has_src4);
    assert_int_equal(r[1].src4.addr, 0x0A000000);
    assert_int_equal(r[1].src4.len, 8);
    assert_true(r[1].has_dst4);
    assert_int_equal(r[1].dst4.addr, 0x0A630007);
    assert_int_equal(r[1].dst4.len, 32);
    assert_false(r[1].has_src6);
    assert_int_equal(r[1].ip_proto, 6);
    assert_int_equal(r[1].src_port.lo, 1024);
    assert_int_equal(r[1].src_port.hi, 65535);
    assert_int_equal(r[1].dst_port.lo, 22);
    assert_int_equal(r[1].dst_port.hi, 22);
    assert_int_equal(r[1].icmp_type, -1);
    assert_int_equal(r[1].line, 15);
    assert_int_equal(r[2].ethertype, CW_ETHERTYPE_ARP);
    assert_false(r[2].has_proto);
    /* udp alone: any IP version */
    assert_int_equal(r[3].ethertype, 0);
    assert_int_equal(r[3].ip_proto, 17);
    assert_int_equal(r[4].ethertype, 0x88cc);
    assert_int_equal(r[5].ethertype, CW_ETHERTYPE_IPV6);
    assert_true(r[5].has_dst6);
    assert_int_equal(r[5].dst6.len, 16);
    assert_int_equal(r[5].dst6.addr[0], 0xfd);
    cw_system_free(sys);
    /* Freeing twice (or a zeroed struct) is harmless. */
    cw_system_free(sys);
}

/* Addresses need only be unique per switch: separate networks may reuse
 * them. */
static void test_same_address_two_switches(void **state)
{
    (void)state;
    load_ok("{\"switches\": [{\"name\": \"s\"}, {\"name\": \"t\"}],\n"
            " \"vms\": [{\"name\": \"a\", \"kernel\": \"k\", \"initrd\": \"i\", \"nics\": [\n"
            "  {\"switch\": \"s\", \"mac\": \"52:54:00:00:00:01\", \"domain\": \"d\", \"ipv4\": "
            "\"10.0.0.1/8\"},\n"
            "  {\"switch\": \"t\", \"mac\": \"52:54:00:00:00:02\", \"domain\": \"d\", \"ipv4\": "
            "\"10.0.0.1/8\"}]}]}");
    assert_int_equal(sys->vms[0].n_nics, 2);
    assert_int_equal(sys->vms[0].nics[1].switch_index, 1);
    cw_system_free(sys);
}

/* ---- the examples -------------------------------------------------------- */

/* The source tree: the build dir lives inside it, so walk up from the test
 * binary until examples/ appears. */
static void find_source_root(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    const char *env = getenv("CAUSEWAY_SOURCE_ROOT");
    if (env) {
        snprintf(out, cap, "%s", env);
        return;
    }
    for (char *slash = strrchr(exe, '/'); slash; slash = strrchr(exe, '/')) {
        *slash = '\0';
        char probe[PATH_MAX + 32];
        snprintf(probe, sizeof(probe), "%s/examples/two-vms.json", exe);
        if (access(probe, R_OK) == 0) {
            snprintf(out, cap, "%s", exe);
            return;
        }
    }
    fail_msg("examples/ not found above the test binary (set CAUSEWAY_SOURCE_ROOT)");
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("%s: %s", path, strerror(errno));
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

/* Copy examples/NAME.json into TMP/ex/examples/ next to empty
 * TMP/ex/build/guest/{bzImage,initramfs.cpio.gz}: the same relative paths
 * resolve without a built guest image. */
static char *load_example(const char *name)
{
    char root[PATH_MAX], src[PATH_MAX + 64], dst[256];
    find_source_root(root, sizeof(root));
    snprintf(src, sizeof(src), "%s/examples/%s.json", root, name);
    size_t len;
    char *text = slurp(src, &len);
    snprintf(dst, sizeof(dst), "%s/ex/build/guest/bzImage", tmp);
    mkdirs_for(dst);
    write_at(dst, "", 0);
    snprintf(dst, sizeof(dst), "%s/ex/build/guest/initramfs.cpio.gz", tmp);
    write_at(dst, "", 0);
    snprintf(dst, sizeof(dst), "%s/ex/examples/%s.json", tmp, name);
    mkdirs_for(dst);
    write_at(dst, text, len);
    if (cw_system_load(dst, sys, err, sizeof(err)))
        fail_msg("example %s: %s", name, err);
    char want[256];
    snprintf(want, sizeof(want), "%s/ex/build/guest/bzImage", tmp);
    char *real = realpath(want, NULL);
    for (unsigned i = 0; i < sys->n_vms; i++)
        assert_string_equal(sys->vms[i].kernel, real);
    free(real);
    return text;
}

static unsigned line_of(const char *text, const char *needle)
{
    const char *at = strstr(text, needle);
    assert_non_null(at);
    unsigned line = 1;
    for (const char *p = text; p < at; p++)
        line += *p == '\n';
    return line;
}

static void test_example_two_vms(void **state)
{
    (void)state;
    char *text = load_example("two-vms");
    assert_int_equal(sys->n_vms, 2);
    assert_int_equal(sys->n_switches, 1);
    assert_string_equal(sys->switches[0].name, "sw0");
    assert_int_equal(sys->n_domains, 1);
    assert_int_equal(sys->policy.n_rules, 0);
    for (unsigned i = 0; i < 2; i++) {
        const struct cw_sys_vm *vm = &sys->vms[i];
        char name[8], ip[32];
        snprintf(name, sizeof(name), "vm%u", i + 1);
        snprintf(ip, sizeof(ip), "cw.ip=10.99.0.%u/24", i + 1);
        assert_string_equal(vm->name, name);
        assert_int_equal(vm->memory, 256ull << 20);
        assert_int_equal(vm->n_nics, 1);
        assert_int_equal(vm->nics[0].mac[5], i + 1);
        assert_int_equal(vm->nics[0].switch_index, 0);
        assert_int_equal(vm->nics[0].domain_index, 0);
        assert_int_equal(vm->nics[0].ipv4[0].addr, 0x0A630000u + i + 1);
        assert_non_null(strstr(vm->cmdline, ip));
        assert_true(strlen(vm->cmdline) < 2000);
    }
    cw_system_free(sys);
    free(text);
}

static void test_example_cross_domain(void **state)
{
    (void)state;
    char *text = load_example("cross-domain");
    assert_int_equal(sys->n_vms, 2);
    assert_string_equal(sys->vms[0].name, "high1");
    assert_string_equal(sys->vms[1].name, "low1");
    assert_int_equal(sys->n_domains, 2);
    assert_string_equal(sys->domains[sys->vms[0].nics[0].domain_index], "high");
    assert_string_equal(sys->domains[sys->vms[1].nics[0].domain_index], "low");
    assert_int_equal(sys->policy.n_rules, 1);
    const struct cw_policy_rule *r = &sys->policy.rules[0];
    assert_string_equal(sys->domains[r->from_domain], "low");
    assert_string_equal(sys->domains[r->to_domain], "high");
    assert_false(r->both);
    assert_int_equal(r->action, CW_RULE_ALLOW);
    assert_true(r->has_proto);
    assert_int_equal(r->ip_proto, 17);
    assert_int_equal(r->dst_port.lo, 5001);
    assert_int_equal(r->dst_port.hi, 5001);
    assert_int_equal(r->src_port.lo, 0);
    assert_int_equal(r->src_port.hi, 65535);
    assert_int_equal(r->line, line_of(text, "\"from\": \"low\""));
    /* low1's script is handed over in the command line */
    assert_non_null(strstr(sys->vms[1].cmdline, "cw.scriptz="));
    cw_system_free(sys);
    free(text);
}

static void test_example_tap_uplink(void **state)
{
    (void)state;
    char *text = load_example("tap-uplink");
    assert_int_equal(sys->n_uplinks, 1);
    assert_string_equal(sys->uplinks[0].tap, "cwtap0");
    assert_string_equal(sys->uplinks[0].domain, "low");
    assert_int_equal(sys->uplinks[0].switch_index, 0);
    static const uint8_t zero[6];
    assert_memory_equal(sys->uplinks[0].mac, zero, 6); /* any source MAC from the host */
    assert_int_equal(sys->uplinks[0].domain_index, sys->vms[0].nics[0].domain_index);
    cw_system_free(sys);
    free(text);
}

/* ---- json_locate --------------------------------------------------------- */

static void test_locate_positions_and_paths(void **state)
{
    (void)state;
    const char *t = "{\"a\": [1, {\"b\": true}],\n"
                    "\t\"c\xc3\xa9\": \"x\\\"y\", \"d.e\": {\"f\\\"g\": null},\n"
                    " \"\\ud83d\\ude00\": -1.5e3}";
    struct cw_jdoc doc;
    struct cw_jpos at;
    char msg[128], path[64];
    assert_int_equal(cw_json_locate(t, strlen(t), &doc, &at, msg, sizeof(msg)), 0);
    const struct cw_jnode *root = cw_jdoc_root(&doc);
    assert_int_equal(root->kind, CW_JOBJECT);
    assert_int_equal(root->n_children, 4);
    const struct cw_jnode *b = cw_jdoc_find(&doc, "a[1].b");
    assert_non_null(b);
    assert_int_equal(b->kind, CW_JTRUE);
    assert_int_equal(b->pos.line, 1);
    assert_int_equal(b->pos.col, 17);
    assert_int_equal(b->key_pos.col, 12);
    cw_jnode_path(&doc, b, path, sizeof(path));
    assert_string_equal(path, "a[1].b");
    /* a tab counts one column; é is one character */
    const struct cw_jnode *c = cw_jnode_child(&doc, root, 1);
    assert_int_equal(c->key_len, 3);
    assert_memory_equal(c->key, "c\xc3\xa9", 3);
    assert_int_equal(c->key_pos.line, 2);
    assert_int_equal(c->key_pos.col, 2);
    assert_int_equal(c->pos.col, 8);
    cw_jnode_path(&doc, c, path, sizeof(path));
    assert_string_equal(path, "[\"c\xc3\xa9\"]");
    const struct cw_jnode *d = cw_jnode_child(&doc, root, 2);
    assert_int_equal(d->key_pos.col, 16);
    const struct cw_jnode *fg = cw_jnode_child(&doc, d, 0);
    assert_int_equal(fg->kind, CW_JNULL);
    cw_jnode_path(&doc, fg, path, sizeof(path));
    assert_string_equal(path, "[\"d.e\"][\"f\\\"g\"]");
    /* a surrogate pair decodes to one 4-byte UTF-8 sequence */
    const struct cw_jnode *e = cw_jnode_child(&doc, root, 3);
    assert_int_equal(e->key_len, 4);
    assert_memory_equal(e->key, "\xf0\x9f\x98\x80", 4);
    assert_int_equal(e->pos.line, 3);
    assert_int_equal(e->pos.col, 18);
    assert_int_equal(e->kind, CW_JNUMBER);
    /* cut paths stay terminated and report the length they needed */
    char small[4];
    assert_int_equal(cw_jnode_path(&doc, b, small, sizeof(small)), 6);
    assert_string_equal(small, "a[1");
    /* lookups that do not match */
    assert_null(cw_jdoc_find(&doc, "a[2]"));
    assert_null(cw_jdoc_find(&doc, "a.b"));
    assert_null(cw_jdoc_find(&doc, "a[1]b"));
    assert_null(cw_jdoc_find(&doc, ".a"));
    assert_null(cw_jdoc_find(&doc, "a[99999999999999999999999]"));
    assert_ptr_equal(cw_jdoc_find(&doc, ""), root);
    cw_jdoc_free(&doc);
}

static void test_locate_duplicates(void **state)
{
    (void)state;
    struct cw_jdoc doc;
    struct cw_jpos at;
    char msg[128];
    /* the duplicate reported is the first second-occurrence in the text,
     * even when an inner object's comes later */
    const char *t = "{\"x\": {\"k\": 1, \"k\": 2},\n \"y\": 1, \"x\": 3}";
    assert_int_equal(cw_json_locate(t, strlen(t), &doc, &at, msg, sizeof(msg)), -1);
    assert_int_equal(at.line, 1);
    assert_int_equal(at.col, 16);
    assert_string_equal(msg, "x: duplicate key \"k\" (first at 1:8)");
    assert_null(doc.nodes);

    /* thousands of keys: sorted, not compared pairwise */
    size_t cap = 20000 * 12 + 64, len = 0;
    char *big = malloc(cap);
    assert_non_null(big);
    big[len++] = '{';
    for (int i = 0; i < 20000; i++)
        len += (size_t)snprintf(big + len, cap - len, "\"k%d\":0,", i);
    len += (size_t)snprintf(big + len, cap - len, "\"k19999\":1}");
    assert_int_equal(cw_json_locate(big, len, &doc, &at, msg, sizeof(msg)), -1);
    assert_int_equal(at.line, 1);
    assert_int_equal(at.col, len - 10);
    assert_non_null(strstr(msg, "duplicate key \"k19999\""));
    free(big);
}

/* Whatever the text, the scanner answers 0 or -1 and stays in bounds
 * (run under ASan). */
static void test_locate_hostile(void **state)
{
    (void)state;
    struct cw_jdoc doc;
    struct cw_jpos at;
    char msg[128];
    const char *good = "{\"a\": [1, -2.5e+3, \"s\\u00e9\\n\", {\"b\": [true, false, null]}], "
                       "\"\\ud83d\\ude00\": {}}";
    size_t n = strlen(good);
    assert_int_equal(cw_json_locate(good, n, &doc, &at, msg, sizeof(msg)), 0);
    cw_jdoc_free(&doc);
    /* every truncation is refused, from a heap copy of exactly that size */
    for (size_t k = 0; k < n; k++) {
        char *cut = malloc(k ? k : 1);
        memcpy(cut, good, k);
        assert_int_equal(cw_json_locate(cut, k, &doc, &at, msg, sizeof(msg)), -1);
        assert_null(doc.nodes);
        free(cut);
    }
    static const char *const bad[] = {
        "{\"a\" 1}",  "{\"a\":1,}", "[1 2]",        "{1: 2}",       "\"\\ud800\"",
        "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\x\"", "\"\\u12g4\"", "tru",
        "{} {}",      "\"a\nb\"",   "@",            "[",            "{\"a\":}",
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
        if (cw_json_locate(bad[k], strlen(bad[k]), &doc, &at, msg, sizeof(msg)) != -1)
            fail_msg("accepted '%s'", bad[k]);
    /* nesting beyond the cap is an error, not a stack overflow */
    size_t deep = CW_JSON_MAX_DEPTH + 10;
    char *d = malloc(deep * 2);
    memset(d, '[', deep);
    memset(d + deep, ']', deep);
    assert_int_equal(cw_json_locate(d, deep * 2, &doc, &at, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "nesting deeper"));
    free(d);
    /* random bytes, deterministic */
    uint32_t seed = 12345;
    char buf[64];
    for (int it = 0; it < 3000; it++) {
        size_t len = (size_t)(seed % sizeof(buf));
        for (size_t k = 0; k < len; k++) {
            seed = seed * 1103515245u + 12345u;
            buf[k] = "{}[]\":,\\u0123tfnle -\n"[(seed >> 16) % 21];
        }
        seed = seed * 1103515245u + 12345u;
        char *copy = malloc(len ? len : 1);
        memcpy(copy, buf, len);
        if (cw_json_locate(copy, len, &doc, &at, msg, sizeof(msg)) == 0)
            cw_jdoc_free(&doc);
        free(copy);
    }
    /* a NULL message buffer is fine */
    assert_int_equal(cw_json_locate("[", 1, &doc, NULL, NULL, 0), -1);
}

/* ---- prefixes ------------------------------------------------------------ */

static void test_prefixes(void **state)
{
    (void)state;
    struct cw_ip4_prefix p4;
    struct cw_ip6_prefix p6;
    char text[CW_IP6_PREFIX_STRLEN];
    assert_int_equal(cw_ip4_prefix_parse("10.99.0.1/24", true, &p4), CW_PREFIX_OK);
    assert_int_equal(p4.addr, 0x0A630001);
    assert_int_equal(p4.len, 24);
    assert_true(cw_ip4_prefix_has_host_bits(&p4));
    cw_ip4_prefix_format(&p4, text, sizeof(text));
    assert_string_equal(text, "10.99.0.1/24");
    assert_int_equal(cw_ip4_prefix_parse("0.0.0.0/0", true, &p4), CW_PREFIX_OK);
    assert_false(cw_ip4_prefix_has_host_bits(&p4));
    assert_int_equal(cw_ip4_prefix_parse("255.255.255.255", false, &p4), CW_PREFIX_OK);
    assert_int_equal(p4.len, 32);
    assert_false(cw_ip4_prefix_has_host_bits(&p4));
    cw_ip4_prefix_format(&p4, text, sizeof(text));
    assert_string_equal(text, "255.255.255.255/32");
    assert_int_equal(strlen(text) + 1, CW_IP4_PREFIX_STRLEN);
    assert_int_equal(cw_ip4_prefix_parse("10.0.0.1", true, &p4), CW_PREFIX_NO_LEN);
    static const char *const bad4[] = { "10.0.0.1/", "/24", "10.0.0.1/024", "10.0.0.1/-1",
                                        "10.0.0.1/+8", "10.0.0.1/ 8", "10.0.0.1/33",
                                        "10.0.0.1/8/8", "010.0.0.1/8", "10.0.1/8", "1.2.3.4 ",
                                        "" };
    for (size_t i = 0; i < sizeof(bad4) / sizeof(bad4[0]); i++)
        if (cw_ip4_prefix_parse(bad4[i], false, &p4) == CW_PREFIX_OK)
            fail_msg("accepted IPv4 prefix '%s'", bad4[i]);
    assert_int_equal(cw_ip4_prefix_parse("x/99", true, &p4), CW_PREFIX_BAD_ADDR);
    assert_int_equal(cw_ip4_prefix_parse("1.2.3.4/99", true, &p4), CW_PREFIX_BAD_LEN);
    char longs[300];
    memset(longs, '1', sizeof(longs) - 1);
    longs[sizeof(longs) - 1] = '\0';
    assert_int_equal(cw_ip4_prefix_parse(longs, false, &p4), CW_PREFIX_BAD_ADDR);
    assert_int_equal(cw_ip6_prefix_parse(longs, false, &p6), CW_PREFIX_BAD_ADDR);

    assert_int_equal(cw_ip6_prefix_parse("FD00:0:0::1/64", true, &p6), CW_PREFIX_OK);
    assert_true(cw_ip6_prefix_has_host_bits(&p6));
    cw_ip6_prefix_format(&p6, text, sizeof(text));
    assert_string_equal(text, "fd00::1/64");
    assert_int_equal(cw_ip6_prefix_parse("fd00::/8", true, &p6), CW_PREFIX_OK);
    assert_false(cw_ip6_prefix_has_host_bits(&p6));
    assert_int_equal(cw_ip6_prefix_parse("::ffff:10.0.0.1", false, &p6), CW_PREFIX_OK);
    assert_int_equal(p6.len, 128);
    assert_int_equal(cw_ip6_prefix_parse("fe80::1%eth0/64", true, &p6), CW_PREFIX_BAD_ADDR);
    assert_int_equal(cw_ip6_prefix_parse("fd00::1/129", true, &p6), CW_PREFIX_BAD_LEN);
    assert_int_equal(cw_ip6_prefix_parse("10.0.0.1/8", true, &p6), CW_PREFIX_BAD_ADDR);
    /* the longest text fits the advertised size */
    memset(p6.addr, 0xff, 12);
    p6.addr[12] = p6.addr[13] = p6.addr[14] = p6.addr[15] = 0xff;
    p6.len = 128;
    cw_ip6_prefix_format(&p6, text, sizeof(text));
    assert_true(strlen(text) < CW_IP6_PREFIX_STRLEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_memory_cannot_fit),
        cmocka_unit_test(test_too_many_rules),
        cmocka_unit_test(test_not_a_file),
        cmocka_unit_test(test_defaults_and_every_field),
        cmocka_unit_test(test_same_address_two_switches),
        cmocka_unit_test(test_example_two_vms),
        cmocka_unit_test(test_example_cross_domain),
        cmocka_unit_test(test_example_tap_uplink),
        cmocka_unit_test(test_locate_positions_and_paths),
        cmocka_unit_test(test_locate_duplicates),
        cmocka_unit_test(test_locate_hostile),
        cmocka_unit_test(test_prefixes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
