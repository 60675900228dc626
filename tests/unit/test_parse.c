/* The value parsers behind every flag and description field: what they
 * accept, and that everything else is refused rather than half-read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/parse.h"

static void sizes(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(cw_parse_size("4096", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(cw_parse_size("64K", &v), 0);
    assert_int_equal(v, 64u << 10);
    assert_int_equal(cw_parse_size("256M", &v), 0);
    assert_int_equal(v, 256u << 20);
    assert_int_equal(cw_parse_size("1GiB", &v), 0);
    assert_int_equal(v, 1ull << 30);
    assert_int_equal(cw_parse_size("2gB", &v), 0);
    assert_int_equal(v, 2ull << 30);
    v = 7;
    const char *bad[] = {"", "-1", "+1", " 1M", " -1", "M", "1T", "1 M", "1Mi", "1MB ", "0x10",
                         "18446744073709551616", "17179869184G"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cw_parse_size(bad[i], &v), -1);
        assert_int_equal(v, 7); /* untouched on refusal */
    }
    assert_int_equal(cw_parse_size(NULL, &v), -1);
}

static void numbers(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(cw_parse_uint("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(cw_parse_uint("10", 0, 10, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(cw_parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    v = 3;
    const char *bad[] = {"", "11", "-0", "+5", "5x", " 5", "\t5", " -1", "1e3",
                         "18446744073709551616"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cw_parse_uint(bad[i], 0, 10, &v), -1);
        assert_int_equal(v, 3);
    }
    assert_int_equal(cw_parse_uint("4", 5, 10, &v), -1);
    assert_int_equal(cw_parse_uint(" -1", 0, UINT64_MAX, &v), -1);
}

static void macs(void **state)
{
    (void)state;
    uint8_t m[6];
    assert_int_equal(cw_parse_mac("52:54:00:12:ab:CD", m), 0);
    const uint8_t want[6] = {0x52, 0x54, 0x00, 0x12, 0xab, 0xcd};
    assert_memory_equal(m, want, 6);
    const char *bad[] = {"", "52:54:00:12:34", "52:54:00:12:34:56:78", "52-54-00-12-34-56",
                         "52:54:00:12:34:5g", " 2:54:00:12:34:56", "+2:54:00:12:34:56",
                         "01:00:5e:00:00:01" /* multicast */, "ff:ff:ff:ff:ff:ff"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cw_parse_mac(bad[i], m), -1);
}

static void onoff(void **state)
{
    (void)state;
    bool b = false;
    assert_int_equal(cw_parse_onoff("on", &b), 0);
    assert_true(b);
    assert_int_equal(cw_parse_onoff("off", &b), 0);
    assert_false(b);
    assert_int_equal(cw_parse_onoff("ON", &b), -1);
    assert_int_equal(cw_parse_onoff("1", &b), -1);
    assert_int_equal(cw_parse_onoff(NULL, &b), -1);
}

static void key_value_lists(void **state)
{
    (void)state;
    char buf[] = "link=/tmp/a.sock,mac=52:54:00:00:00:01,offloads,x=";
    char *cur = buf, *val;
    char *k = cw_next_kv(&cur, &val);
    assert_string_equal(k, "link");
    assert_string_equal(val, "/tmp/a.sock");
    k = cw_next_kv(&cur, &val);
    assert_string_equal(k, "mac");
    assert_string_equal(val, "52:54:00:00:00:01");
    k = cw_next_kv(&cur, &val);
    assert_string_equal(k, "offloads");
    assert_null(val);
    k = cw_next_kv(&cur, &val);
    assert_string_equal(k, "x");
    assert_string_equal(val, "");
    assert_null(cw_next_kv(&cur, &val));
    assert_null(cw_next_kv(&cur, &val)); /* stays done */
    char empty[] = "";
    cur = empty;
    assert_null(cw_next_kv(&cur, &val));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sizes),   cmocka_unit_test(numbers),
        cmocka_unit_test(macs),    cmocka_unit_test(onoff),
        cmocka_unit_test(key_value_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
