/* Unit tests for the switch's header parser (src/switch/frame.c) and the
 * policy evaluation (src/switch/policy.c): what each header yields, where
 * parsing stops (the private prefix, fragments, truncated headers), and
 * each rule field, direction, mirroring and first-match order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "switch/frame.h"
#include "switch/policy.h"
#include "sw_frames.h"

static const uint8_t MAC_A[6] = {0x52, 0x54, 0, 0, 0, 1};
static const uint8_t MAC_B[6] = {0x52, 0x54, 0, 0, 0, 2};
static const uint8_t V6_A[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t V6_B[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};

static uint8_t rec[CW_NET_META_LEN + CW_NET_MAX_FRAME];

/* Build and parse the way the switch does: only the first CW_FRAME_PREFIX
 * bytes are given to the parser. */
static struct cw_frame parse(const struct fspec *s)
{
    uint32_t len = sw_build(rec, sizeof(rec), s);
    uint32_t copied = len < CW_FRAME_PREFIX ? len : CW_FRAME_PREFIX;
    uint8_t copy[CW_FRAME_PREFIX];
    memcpy(copy, rec, copied);
    struct cw_frame f;
    cw_frame_parse(&f, copy, copied, len);
    return f;
}

/* ---- parser ---- */

static void test_parse_udp4(void **state)
{
    (void)state;
    struct fspec s = sw_udp4(MAC_A, MAC_B, IP4(10, 0, 0, 1), IP4(10, 0, 0, 2), 1234, 5001);
    struct cw_frame f = parse(&s);
    assert_memory_equal(f.src, MAC_A, 6);
    assert_memory_equal(f.dst, MAC_B, 6);
    assert_int_equal(f.ethertype, 0x0800);
    assert_int_equal(f.l3, CW_L3_IPV4);
    assert_true(f.l3_ok);
    assert_int_equal(f.src4, IP4(10, 0, 0, 1));
    assert_int_equal(f.dst4, IP4(10, 0, 0, 2));
    assert_true(f.has_proto);
    assert_int_equal(f.proto, 17);
    assert_true(f.has_ports);
    assert_int_equal(f.sport, 1234);
    assert_int_equal(f.dport, 5001);
    assert_false(f.fragment);
    assert_int_equal(f.l4_off, 34);
    assert_int_equal(f.decided_end, 38); /* up to and including the ports */
    assert_int_equal(f.vlans, 0);
}

static void test_parse_ipv4_options_icmp_fragment(void **state)
{
    (void)state;
    struct fspec s = sw_udp4(MAC_A, MAC_B, 1, 2, 0, 0);
    s.proto = 1;
    s.icmp_type = 8;
    s.ip4_opts = 8;
    struct cw_frame f = parse(&s);
    assert_int_equal(f.l4_off, 14 + 28);
    assert_true(f.has_icmp);
    assert_int_equal(f.icmp_type, 8);
    assert_false(f.has_ports);

    /* A non-first fragment carries no L4 header: no ports. */
    s = sw_udp4(MAC_A, MAC_B, 1, 2, 53, 53);
    s.frag_off = 185;
    f = parse(&s);
    assert_true(f.l3_ok);
    assert_true(f.fragment);
    assert_true(f.has_proto);
    assert_false(f.has_ports);

    /* The first fragment (offset 0, MF set) has them. */
    s.frag_off = 0x2000;
    f = parse(&s);
    assert_false(f.fragment);
    assert_true(f.has_ports);
}

static void test_parse_ipv4_malformed(void **state)
{
    (void)state;
    struct fspec s = sw_udp4(MAC_A, MAC_B, 1, 2, 1, 2);
    uint32_t len = sw_build(rec, sizeof(rec), &s);
    struct cw_frame f;

    /* Wrong version. */
    rec[REC_IP] = 0x55;
    cw_frame_parse(&f, rec, len, len);
    assert_false(f.l3_ok);
    /* IHL below 5. */
    rec[REC_IP] = 0x44;
    cw_frame_parse(&f, rec, len, len);
    assert_false(f.l3_ok);
    /* Total length below the header. */
    rec[REC_IP] = 0x45;
    rec[REC_IP + 2] = 0;
    rec[REC_IP + 3] = 19;
    cw_frame_parse(&f, rec, len, len);
    assert_false(f.l3_ok);
    /* Header cut by the end of the frame: nothing read beyond it. */
    len = sw_build(rec, sizeof(rec), &s);
    cw_frame_parse(&f, rec, CW_NET_META_LEN + 14 + 10, CW_NET_META_LEN + 14 + 10);
    assert_int_equal(f.l3, CW_L3_IPV4);
    assert_false(f.l3_ok);
    assert_false(f.has_proto);
    /* IHL 15 (60 bytes) in a 60-byte frame cut at 40: refused. */
    rec[REC_IP] = 0x4f;
    cw_frame_parse(&f, rec, CW_NET_META_LEN + 14 + 40, CW_NET_META_LEN + 14 + 40);
    assert_false(f.l3_ok);
    /* Ports not in the frame: protocol known, ports unknown. */
    rec[REC_IP] = 0x45;
    cw_frame_parse(&f, rec, CW_NET_META_LEN + 14 + 22, CW_NET_META_LEN + 14 + 22);
    assert_true(f.l3_ok);
    assert_true(f.has_proto);
    assert_false(f.has_ports);
}

static void test_parse_ipv6_ext_headers(void **state)
{
    (void)state;
    struct fspec s = sw_ip6(MAC_A, MAC_B, V6_A, V6_B, 17);
    struct cw_frame f = parse(&s);
    assert_true(f.l3_ok);
    assert_memory_equal(f.src6, V6_A, 16);
    assert_memory_equal(f.dst6, V6_B, 16);
    assert_int_equal(f.proto, 17);
    assert_int_equal(f.dport, 2000);
    assert_int_equal(f.l4_off, 54);

    s.ext6 = 3;
    s.frag6 = 1;
    f = parse(&s);
    assert_true(f.has_proto);
    assert_int_equal(f.proto, 17);
    assert_int_equal(f.l4_off, 54 + 32);
    assert_true(f.has_ports);
    assert_false(f.fragment);

    s.frag_off = 100; /* non-first fragment */
    f = parse(&s);
    assert_true(f.fragment);
    assert_false(f.has_ports);

    /* A chain running past the private prefix: protocol unknown, and
     * nothing beyond the prefix was read. */
    s.frag6 = 0;
    s.frag_off = 0;
    s.ext6 = 30;
    f = parse(&s);
    assert_true(f.l3_ok);
    assert_false(f.has_proto);
    assert_false(f.has_ports);
    assert_true(f.decided_end <= CW_FRAME_PREFIX - CW_NET_META_LEN);

    /* ICMPv6 type. */
    s = sw_ip6(MAC_A, MAC_B, V6_A, V6_B, 58);
    s.icmp_type = 135;
    f = parse(&s);
    assert_true(f.has_icmp);
    assert_int_equal(f.icmp_type, 135);
}

static void test_parse_arp_and_vlan(void **state)
{
    (void)state;
    struct fspec s = sw_arp(MAC_A, IP4(10, 0, 0, 1), IP4(10, 0, 0, 2));
    struct cw_frame f = parse(&s);
    assert_int_equal(f.l3, CW_L3_ARP);
    assert_true(f.l3_ok);
    assert_memory_equal(f.arp_sha, MAC_A, 6);
    assert_int_equal(f.arp_spa, IP4(10, 0, 0, 1));
    assert_int_equal(f.arp_tpa, IP4(10, 0, 0, 2));

    /* Non-Ethernet ARP is not understood. */
    uint32_t len = sw_build(rec, sizeof(rec), &s);
    rec[REC_IP + 5] = 16;
    cw_frame_parse(&f, rec, len, len);
    assert_false(f.l3_ok);

    s = sw_udp4(MAC_A, MAC_B, 1, 2, 3, 4);
    s.vlans = 2;
    f = parse(&s);
    assert_int_equal(f.vlans, 2);
    assert_int_equal(f.ethertype, 0x8100);
    assert_int_equal(f.l3_type, 0x0800);
    assert_int_equal(f.l3_off, 22);
    assert_true(f.l3_ok);
    assert_int_equal(f.src4, 1);
    assert_false(f.vlan_overflow);

    s.vlans = 3;
    f = parse(&s);
    assert_true(f.vlan_overflow);
    assert_int_equal(f.l3, CW_L3_OTHER);
    assert_false(f.l3_ok);
}

static void test_parse_virtio_header(void **state)
{
    (void)state;
    struct fspec s = sw_udp4(MAC_A, MAC_B, 1, 2, 3, 4);
    s.flags = 1;
    s.gso_type = 1;
    s.gso_size = 1448;
    s.csum_start = 34;
    s.csum_offset = 6;
    struct cw_frame f = parse(&s);
    assert_int_equal(f.flags, 1);
    assert_int_equal(f.gso_type, 1);
    assert_int_equal(f.gso_size, 1448);
    assert_int_equal(f.csum_start, 34);
    assert_int_equal(f.csum_offset, 6);
    assert_int_equal(f.frame_len, 14 + 20 + 8 + 32);
}

/* ---- policy ---- */

enum { HIGH = 0, LOW = 1, MID = 2 };

static struct cw_policy_rule any_rule(int from, int to, enum cw_rule_action a)
{
    return (struct cw_policy_rule){.from_domain = from, .to_domain = to, .action = a,
                                   .src_port = {0, 65535}, .dst_port = {0, 65535},
                                   .icmp_type = -1};
}

static bool m(const struct cw_policy_rule *r, int from, int to, const struct fspec *s)
{
    struct cw_frame f = parse(s);
    return cw_rule_matches(r, from, to, &f);
}

static void test_rule_direction_and_both(void **state)
{
    (void)state;
    struct fspec s = sw_udp4(MAC_A, MAC_B, IP4(10, 1, 0, 5), IP4(10, 0, 0, 1), 40000, 5001);
    struct cw_policy_rule r = any_rule(LOW, HIGH, CW_RULE_ALLOW);
    r.has_proto = true;
    r.ip_proto = 17;
    r.dst_port = (struct cw_port_range){5001, 5001};
    assert_true(m(&r, LOW, HIGH, &s));
    assert_false(m(&r, HIGH, LOW, &s)); /* one-way */
    assert_false(m(&r, LOW, MID, &s));

    /* The reply (high -> low, source port 5001) matches only with both,
     * which mirrors the fields. */
    struct fspec reply = sw_udp4(MAC_B, MAC_A, IP4(10, 0, 0, 1), IP4(10, 1, 0, 5), 5001, 40000);
    assert_false(m(&r, HIGH, LOW, &reply));
    r.both = true;
    assert_true(m(&r, HIGH, LOW, &reply));
    /* ... but not a high -> low frame to port 5001 (not mirrored). */
    assert_false(m(&r, HIGH, LOW, &s));
    assert_true(m(&r, LOW, HIGH, &s));

    /* Mirrored prefixes. */
    struct cw_policy_rule p = any_rule(LOW, HIGH, CW_RULE_ALLOW);
    p.has_src4 = true;
    p.src4 = (struct cw_ip4_prefix){IP4(10, 1, 0, 0), 16};
    p.both = true;
    assert_true(m(&p, LOW, HIGH, &s));
    assert_true(m(&p, HIGH, LOW, &reply));
    struct fspec other = sw_udp4(MAC_B, MAC_A, IP4(10, 0, 0, 1), IP4(10, 2, 0, 5), 5001, 40000);
    assert_false(m(&p, HIGH, LOW, &other));
}

static void test_rule_fields(void **state)
{
    (void)state;
    struct fspec udp = sw_udp4(MAC_A, MAC_B, IP4(10, 1, 0, 5), IP4(10, 0, 0, 1), 40000, 5001);
    struct fspec tcp = udp;
    tcp.proto = 6;
    struct fspec icmp = udp;
    icmp.proto = 1;
    icmp.icmp_type = 8;
    struct fspec arp = sw_arp(MAC_A, IP4(10, 1, 0, 5), IP4(10, 0, 0, 1));
    struct fspec v6 = sw_ip6(MAC_A, MAC_B, V6_A, V6_B, 17);

    struct cw_policy_rule r = any_rule(LOW, HIGH, CW_RULE_ALLOW);
    /* No field: everything, even ARP. */
    assert_true(m(&r, LOW, HIGH, &arp));
    assert_true(m(&r, LOW, HIGH, &v6));

    /* ethertype */
    r.ethertype = 0x0806;
    assert_true(m(&r, LOW, HIGH, &arp));
    assert_false(m(&r, LOW, HIGH, &udp));
    r.ethertype = 0x0800;
    assert_true(m(&r, LOW, HIGH, &udp));
    assert_false(m(&r, LOW, HIGH, &v6));

    /* proto */
    r = any_rule(LOW, HIGH, CW_RULE_ALLOW);
    r.has_proto = true;
    r.ip_proto = 17;
    assert_true(m(&r, LOW, HIGH, &udp));
    assert_true(m(&r, LOW, HIGH, &v6));
    assert_false(m(&r, LOW, HIGH, &tcp));
    assert_false(m(&r, LOW, HIGH, &arp)); /* proto needs IP */

    /* src4 / dst4, including /0 and /32 */
    r = any_rule(LOW, HIGH, CW_RULE_ALLOW);
    r.has_src4 = true;
    r.src4 = (struct cw_ip4_prefix){IP4(10, 1, 0, 0), 24};
    assert_true(m(&r, LOW, HIGH, &udp));
    r.src4.len = 32;
    assert_false(m(&r, LOW, HIGH, &udp));
    r.src4.addr = IP4(10, 1, 0, 5);
    assert_true(m(&r, LOW, HIGH, &udp));
    r.src4 = (struct cw_ip4_prefix){IP4(99, 0, 0, 0), 0};
    assert_true(m(&r, LOW, HIGH, &udp));
    assert_false(m(&r, LOW, HIGH, &v6)); /* an IPv4 prefix fixes the family */
    assert_false(m(&r, LOW, HIGH, &arp));
    r.src4.len = 33; /* malformed: matches nothing */
    assert_false(m(&r, LOW, HIGH, &udp));
    r = any_rule(LOW, HIGH, CW_RULE_ALLOW);
    r.has_dst4 = true;
    r.dst4 = (struct cw_ip4_prefix){IP4(10, 0, 0, 0), 8};
    assert_true(m(&r, LOW, HIGH, &udp));
    r.dst4 = (struct cw_ip4_prefix){IP4(10, 0, 0, 2), 31};
    assert_false(m(&r, LOW, HIGH, &udp));

    /* src6 / dst6 */
    r = any_rule(LOW, HIGH, CW_RULE_ALLOW);
    r.has_src6 = true;
    memcpy(r.src6.addr, V6_A, 16);
    r.src6.len = 127; /* fd00::/127 holds ::1 */
    r.src6.addr[15] = 0;
    assert_true(m(&r, LOW, HIGH, &v6));
    r.src6.len = 128;
    assert_false(m(&r, LOW, HIGH, &v6));
    r.src6.len = 7; /* partial byte: fc00::/7 */
    r.src6.addr[0] = 0xfc;
    assert_true(m(&r, LOW, HIGH, &v6));
    assert_false(m(&r, LOW, HIGH, &udp));
    r = any_rule(LOW, HIGH, CW_RULE_ALLOW);
    r.has_dst6 = true;
    memcpy(r.dst6.addr, V6_A, 16);
    r.dst6.len = 128;
    assert_false(m(&r, LOW, HIGH, &v6));
    memcpy(r.dst6.addr, V6_B, 16);
    assert_true(m(&r, LOW, HIGH, &v6));

    /* ports: ranges, edges, {0,0} is port 0 only */
    r = any_rule(LOW, HIGH, CW_RULE_ALLOW);
    r.dst_port = (struct cw_port_range){5000, 5010};
    assert_true(m(&r, LOW, HIGH, &udp));
    assert_true(m(&r, LOW, HIGH, &tcp));
    assert_false(m(&r, LOW, HIGH, &icmp)); /* no ports */
    assert_false(m(&r, LOW, HIGH, &arp));
    r.dst_port = (struct cw_port_range){5001, 5001};
    assert_true(m(&r, LOW, HIGH, &udp));
    r.dst_port = (struct cw_port_range){5002, 6000};
    assert_false(m(&r, LOW, HIGH, &udp));
    r.dst_port = (struct cw_port_range){0, 0};
    assert_false(m(&r, LOW, HIGH, &udp));
    r.dst_port = (struct cw_port_range){0, 65535};
    r.src_port = (struct cw_port_range){40000, 40000};
    assert_true(m(&r, LOW, HIGH, &udp));
    r.src_port = (struct cw_port_range){1, 39999};
    assert_false(m(&r, LOW, HIGH, &udp));
    /* A non-first fragment has no ports: a port rule never matches it. */
    struct fspec frag = udp;
    frag.frag_off = 100;
    r = any_rule(LOW, HIGH, CW_RULE_ALLOW);
    r.dst_port = (struct cw_port_range){5001, 5001};
    assert_false(m(&r, LOW, HIGH, &frag));

    /* icmp_type */
    r = any_rule(LOW, HIGH, CW_RULE_ALLOW);
    r.icmp_type = 8;
    assert_true(m(&r, LOW, HIGH, &icmp));
    r.icmp_type = 0;
    assert_false(m(&r, LOW, HIGH, &icmp));
    assert_false(m(&r, LOW, HIGH, &udp));
    struct fspec icmp6 = sw_ip6(MAC_A, MAC_B, V6_A, V6_B, 58);
    icmp6.icmp_type = 128;
    r.icmp_type = 128;
    assert_true(m(&r, LOW, HIGH, &icmp6));
    /* Type 128 under IPv4 proto 58 is not ICMP. */
    struct fspec odd = icmp;
    odd.proto = 58;
    odd.icmp_type = 128;
    assert_false(m(&r, LOW, HIGH, &odd));

    /* L3 fields never match a tagged frame (the tag hides its IP). */
    struct fspec tagged = udp;
    tagged.vlans = 1;
    r = any_rule(LOW, HIGH, CW_RULE_ALLOW);
    r.has_proto = true;
    r.ip_proto = 17;
    assert_false(m(&r, LOW, HIGH, &tagged));
    r = any_rule(LOW, HIGH, CW_RULE_ALLOW);
    r.ethertype = 0x8100;
    assert_true(m(&r, LOW, HIGH, &tagged));
}

static void test_policy_first_match(void **state)
{
    (void)state;
    static struct cw_policy p;
    memset(&p, 0, sizeof(p));
    p.rules[0] = any_rule(LOW, HIGH, CW_RULE_DENY);
    p.rules[0].has_src4 = true;
    p.rules[0].src4 = (struct cw_ip4_prefix){IP4(10, 1, 0, 66), 32};
    p.rules[1] = any_rule(LOW, HIGH, CW_RULE_ALLOW);
    p.rules[1].has_proto = true;
    p.rules[1].ip_proto = 17;
    p.rules[2] = any_rule(MID, HIGH, CW_RULE_ALLOW);
    p.n_rules = 3;

    struct fspec s = sw_udp4(MAC_A, MAC_B, IP4(10, 1, 0, 5), IP4(10, 0, 0, 1), 1, 2);
    struct cw_frame f = parse(&s);
    assert_int_equal(cw_policy_first_match(&p, LOW, HIGH, &f), 1);
    assert_int_equal(cw_policy_first_match(&p, MID, HIGH, &f), 2);
    assert_int_equal(cw_policy_first_match(&p, HIGH, LOW, &f), -1);
    s.src4 = IP4(10, 1, 0, 66);
    f = parse(&s);
    assert_int_equal(cw_policy_first_match(&p, LOW, HIGH, &f), 0); /* the deny comes first */
    s.proto = 6;
    s.src4 = IP4(10, 1, 0, 5);
    f = parse(&s);
    assert_int_equal(cw_policy_first_match(&p, LOW, HIGH, &f), -1);
    /* n_rules beyond the array is clamped, not followed. */
    p.n_rules = CW_POLICY_MAX_RULES + 100;
    assert_int_equal(cw_policy_first_match(&p, HIGH, LOW, &f), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_udp4),
        cmocka_unit_test(test_parse_ipv4_options_icmp_fragment),
        cmocka_unit_test(test_parse_ipv4_malformed),
        cmocka_unit_test(test_parse_ipv6_ext_headers),
        cmocka_unit_test(test_parse_arp_and_vlan),
        cmocka_unit_test(test_parse_virtio_header),
        cmocka_unit_test(test_rule_direction_and_both),
        cmocka_unit_test(test_rule_fields),
        cmocka_unit_test(test_policy_first_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
