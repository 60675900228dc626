/* The busy window's decisions, against a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/busy_poll.h"

static uint64_t fake_now;
static unsigned clock_reads;

static uint64_t fake_clock(void)
{
    clock_reads++;
    return fake_now;
}

/* A fixed window of window_ns (any frame opens it), as --busy-poll USEC. */
static void init_fixed(struct cw_busy_poll *b, uint64_t window_ns)
{
    cw_busy_init(b, &(struct cw_busy_cfg){.window_us = (uint32_t)(window_ns / 1000u)});
}

static void setup_clock(uint64_t now)
{
    fake_now = now;
    clock_reads = 0;
}

static void off_never_polls(void **state)
{
    (void)state;
    struct cw_busy_poll b;
    init_fixed(&b, 0);
    setup_clock(1000000);
    assert_int_equal(cw_busy_after_round(&b, 5, false, fake_clock), CW_BUSY_SLEEP);
    assert_int_equal(cw_busy_after_round(&b, 9, false, fake_clock), CW_BUSY_SLEEP);
    assert_int_equal(clock_reads, 0);
    assert_false(cw_busy_skip_events(&b));
}

static void idle_from_the_start_sleeps(void **state)
{
    (void)state;
    struct cw_busy_poll b;
    init_fixed(&b, 100000);
    setup_clock(5000000000u);
    /* No frame has moved yet: nothing to follow. */
    assert_int_equal(cw_busy_after_round(&b, 0, false, fake_clock), CW_BUSY_SLEEP);
    assert_false(b.polling);
}

static void work_opens_the_window_then_it_closes_with_one_arming_round(void **state)
{
    (void)state;
    struct cw_busy_poll b;
    init_fixed(&b, 100000);
    setup_clock(5000000000u);
    /* Frames moved and the round drained everything: poll, no yield yet. */
    assert_int_equal(cw_busy_after_round(&b, 32, false, fake_clock), CW_BUSY_POLL);
    assert_true(b.polling);
    /* Nothing for 1 us: still inside, now yielding the core. */
    fake_now += CW_BUSY_YIELD_NS;
    assert_int_equal(cw_busy_after_round(&b, 32, false, fake_clock), CW_BUSY_POLL_YIELD);
    /* New work restarts the window from the time it was seen. */
    fake_now += 50000;
    assert_int_equal(cw_busy_after_round(&b, 40, false, fake_clock), CW_BUSY_POLL);
    fake_now += 99999;
    assert_int_equal(cw_busy_after_round(&b, 40, false, fake_clock), CW_BUSY_POLL_YIELD);
    /* The window has passed: exactly one arming round, then sleep. */
    fake_now += 1;
    assert_int_equal(cw_busy_after_round(&b, 40, false, fake_clock), CW_BUSY_ARM);
    assert_false(b.polling);
    assert_int_equal(cw_busy_after_round(&b, 40, false, fake_clock), CW_BUSY_SLEEP);
}

static void arming_round_that_finds_work_reopens_the_window(void **state)
{
    (void)state;
    struct cw_busy_poll b;
    init_fixed(&b, 1000);
    setup_clock(7000000);
    assert_int_equal(cw_busy_after_round(&b, 1, false, fake_clock), CW_BUSY_POLL);
    fake_now += 1000;
    assert_int_equal(cw_busy_after_round(&b, 1, false, fake_clock), CW_BUSY_ARM);
    /* A frame raced with the arming and the armed round moved it. */
    fake_now += 10;
    assert_int_equal(cw_busy_after_round(&b, 2, false, fake_clock), CW_BUSY_POLL);
    assert_true(b.polling);
}

static void busy_rounds_read_no_clock(void **state)
{
    (void)state;
    struct cw_busy_poll b;
    init_fixed(&b, 100000);
    setup_clock(9000000);
    /* Outside the window a round that left work is the caller's business. */
    assert_int_equal(cw_busy_after_round(&b, 64, true, fake_clock), CW_BUSY_SLEEP);
    assert_int_equal(clock_reads, 0);
    assert_int_equal(cw_busy_after_round(&b, 64, false, fake_clock), CW_BUSY_POLL);
    assert_int_equal(clock_reads, 1);
    /* Inside it, budget-limited rounds keep polling without the clock. */
    for (uint64_t f = 128; f < 1280; f += 64)
        assert_int_equal(cw_busy_after_round(&b, f, true, fake_clock), CW_BUSY_POLL);
    assert_int_equal(clock_reads, 1);
    /* And the work they did counts: the window runs from the next idle round. */
    fake_now += 99999;
    assert_int_equal(cw_busy_after_round(&b, 1280, false, fake_clock), CW_BUSY_POLL);
}

static void events_are_looked_at_every_few_rounds_while_polling(void **state)
{
    (void)state;
    struct cw_busy_poll b;
    init_fixed(&b, 100000);
    setup_clock(1000000);
    assert_false(cw_busy_skip_events(&b)); /* not polling: every round */
    assert_int_equal(cw_busy_after_round(&b, 1, false, fake_clock), CW_BUSY_POLL);
    unsigned looked = 0;
    for (unsigned i = 0; i < 4 * CW_BUSY_EVENT_EVERY; i++)
        looked += !cw_busy_skip_events(&b);
    assert_int_equal(looked, 4);
}

static void init_auto(struct cw_busy_poll *b)
{
    struct cw_busy_cfg c;
    assert_int_equal(cw_busy_parse("auto", &c), 0);
    cw_busy_init(b, &c);
}

/* Auto: wake-ups that find a frame or a few (a guest's kicks) never open
 * the window; that the clock is not even read shows there is no polling
 * decision to make. */
static void auto_small_wakeups_keep_sleeping(void **state)
{
    (void)state;
    struct cw_busy_poll b;
    init_auto(&b);
    setup_clock(1000000);
    uint64_t frames = 0;
    for (int wake = 0; wake < 100; wake++) {
        frames += CW_BUSY_AUTO_MIN_BATCH - 1;
        assert_int_equal(cw_busy_after_round(&b, frames, false, fake_clock), CW_BUSY_SLEEP);
        fake_now += 1000;
    }
    assert_false(b.polling);
    assert_int_equal(clock_reads, 0);
    assert_int_equal(b.windows, 0);
}

/* Auto: a wake-up that moves a batch, even over several budget-limited
 * rounds, opens the window; inside it single frames keep it open; when it
 * closes, the next wake-up must bring a batch again. */
static void auto_batch_opens_the_window(void **state)
{
    (void)state;
    struct cw_busy_poll b;
    init_auto(&b);
    setup_clock(1000000);
    uint64_t window = (uint64_t)CW_BUSY_AUTO_WINDOW_US * 1000u;
    assert_int_equal(cw_busy_after_round(&b, 20, true, fake_clock), CW_BUSY_SLEEP); /* more */
    assert_int_equal(cw_busy_after_round(&b, CW_BUSY_AUTO_MIN_BATCH, false, fake_clock),
                     CW_BUSY_POLL);
    assert_true(b.polling);
    uint64_t frames = CW_BUSY_AUTO_MIN_BATCH;
    for (int i = 0; i < 10; i++) {
        fake_now += window - 1;
        assert_int_equal(cw_busy_after_round(&b, ++frames, false, fake_clock), CW_BUSY_POLL);
    }
    fake_now += window;
    assert_int_equal(cw_busy_after_round(&b, frames, false, fake_clock), CW_BUSY_ARM);
    /* The arming round finds one frame: not a batch, back to sleeping. */
    assert_int_equal(cw_busy_after_round(&b, ++frames, false, fake_clock), CW_BUSY_SLEEP);
    assert_false(b.polling);
    frames += CW_BUSY_AUTO_MIN_BATCH;
    assert_int_equal(cw_busy_after_round(&b, frames, false, fake_clock), CW_BUSY_POLL);
    assert_int_equal(b.windows, 2);
}

static void parse_and_format(void **state)
{
    (void)state;
    struct cw_busy_cfg c;
    char text[16];
    assert_int_equal(cw_busy_parse("0", &c), 0);
    assert_int_equal(c.window_us, 0);
    assert_int_equal(cw_busy_parse("1000000", &c), 0);
    assert_int_equal(c.window_us, 1000000);
    assert_int_equal(c.min_batch, 0);
    cw_busy_format(&c, text, sizeof(text));
    assert_string_equal(text, "1000000");
    assert_int_equal(cw_busy_parse("auto", &c), 0);
    assert_int_equal(c.min_batch, CW_BUSY_AUTO_MIN_BATCH);
    cw_busy_format(&c, text, sizeof(text));
    assert_string_equal(text, "auto");
    const char *bad[] = {"", "1000001", "-5", "+5", "10us", "auto ", "99999999999", "0x10"};
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cw_busy_parse(bad[i], &c), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(off_never_polls),
        cmocka_unit_test(idle_from_the_start_sleeps),
        cmocka_unit_test(work_opens_the_window_then_it_closes_with_one_arming_round),
        cmocka_unit_test(arming_round_that_finds_work_reopens_the_window),
        cmocka_unit_test(busy_rounds_read_no_clock),
        cmocka_unit_test(events_are_looked_at_every_few_rounds_while_polling),
        cmocka_unit_test(auto_small_wakeups_keep_sleeping),
        cmocka_unit_test(auto_batch_opens_the_window),
        cmocka_unit_test(parse_and_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
