#include "testutil.h"

#include <string.h>

#include "its/clock.h"

static void test_monotonic_and_sleep(void **state)
{
    uint64_t a = its_now_ns();
    its_sleep_ns(2 * ITS_NS_PER_MS);
    uint64_t b = its_now_ns();
    assert_true(b - a >= 2 * ITS_NS_PER_MS);
    uint64_t d = its_now_ns() + ITS_NS_PER_MS;
    its_sleep_until_ns(d);
    assert_true(its_now_ns() >= d);
    its_sleep_ns(0);
}

static void test_conversions(void **state)
{
    assert_int_equal(its_ms_to_ns(1.5), 1500000);
    assert_int_equal(its_ms_to_ns(-3), 0);
    assert_true(its_ns_to_ms(2500000) == 2.5);
    assert_true(its_ns_to_s(ITS_NS_PER_S * 3) == 3.0);
}

static void test_iso8601(void **state)
{
    char buf[40];
    /* 2026-11-27T06:30:00.123Z = 1795761000 s */
    its_format_iso8601(1795761000ULL * ITS_NS_PER_S + 123 * ITS_NS_PER_MS, buf, sizeof buf);
    assert_string_equal(buf, "2026-11-27T06:30:00.123Z");
    assert_true(its_wall_ns() > 1700000000ULL * ITS_NS_PER_S);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monotonic_and_sleep),
        cmocka_unit_test(test_conversions),
        cmocka_unit_test(test_iso8601),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
