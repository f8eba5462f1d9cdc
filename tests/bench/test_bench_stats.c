#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_stats.h"

static void test_percentiles_nearest_rank(void **state)
{
    lat_samples s;
    assert_int_equal(lat_init(&s, 1000), 0);
    assert_int_equal(lat_percentile(&s, 99), 0);
    /* 1..100 ms shuffled: nearest-rank p50 = 50 ms, p99 = 99 ms, p100 = 100 ms. */
    for (int i = 0; i < 100; i++)
        lat_add(&s, (uint64_t)((i * 37) % 100 + 1) * 1000000);
    assert_int_equal(lat_percentile(&s, 50), 50000000);
    assert_int_equal(lat_percentile(&s, 99), 99000000);
    assert_int_equal(lat_percentile(&s, 99.9), 100000000);
    assert_int_equal(lat_percentile(&s, 0), 1000000);
    assert_true(lat_mean_ms(&s) == 50.5);
    lat_free(&s);
}

/* The progress percentile covers only the samples since the last call and leaves the
 * insertion order alone (the final report still sorts everything). */
static void test_recent_percentile_window(void **state)
{
    (void)state;
    lat_samples s;
    assert_int_equal(lat_init(&s, 1000), 0);
    size_t from = 0;
    assert_int_equal(lat_recent_percentile(&s, &from, 99), 0);
    for (int i = 0; i < 100; i++) /* first window: 1..100 ms */
        lat_add(&s, (uint64_t)((i * 37) % 100 + 1) * 1000000);
    assert_int_equal(lat_recent_percentile(&s, &from, 99), 99000000);
    assert_int_equal(from, 100);
    assert_int_equal(s.ns[0], 1000000); /* not reordered: (0 * 37) % 100 + 1 */
    assert_int_equal(s.ns[1], 38000000);
    for (int i = 0; i < 10; i++) /* second window: 1..10 us */
        lat_add(&s, (uint64_t)(10 - i) * 1000);
    assert_int_equal(lat_recent_percentile(&s, &from, 50), 5000);
    assert_int_equal(lat_recent_percentile(&s, &from, 99), 0); /* nothing new */
    assert_int_equal(lat_percentile(&s, 100), 100000000);      /* the whole run */
    lat_free(&s);
}

static void test_overflow_is_counted(void **state)
{
    lat_samples s;
    assert_int_equal(lat_init(&s, 3), 0);
    for (int i = 0; i < 5; i++)
        lat_add(&s, 1);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.overflow, 2);
    lat_free(&s);
}

static void test_durations(void **state)
{
    assert_true(parse_duration_s("1h") == 3600);
    assert_true(parse_duration_s("5m") == 300);
    assert_true(parse_duration_s("30s") == 30);
    assert_true(parse_duration_s("30") == 30);
    assert_true(parse_duration_s("250ms") == 0.25);
    assert_true(parse_duration_s("abc") < 0);
    assert_true(parse_duration_s("5 weeks") < 0);
    assert_true(parse_duration_s("-3s") < 0);
}

static void test_spec_expectations(void **state)
{
    expectation e;
    char err[128];
    assert_int_equal(parse_expectation("<100ms", &e, err, sizeof err), 0);
    assert_int_equal(e.op, '<');
    assert_int_equal(e.kind, EXPECT_LATENCY_MS);
    assert_true(e.value == 100);
    assert_true(expectation_holds(&e, 88));
    assert_false(expectation_holds(&e, 100));

    assert_int_equal(parse_expectation(">90k detections/minute", &e, err, sizeof err), 0);
    assert_int_equal(e.kind, EXPECT_PER_MINUTE);
    assert_true(e.value == 90000);
    assert_true(expectation_holds(&e, 90001));

    assert_int_equal(parse_expectation("<0.1%", &e, err, sizeof err), 0);
    assert_int_equal(e.kind, EXPECT_RATIO);
    assert_true(e.value > 0.00099 && e.value < 0.00101);

    assert_int_equal(parse_expectation(">90%", &e, err, sizeof err), 0);
    assert_true(e.value == 0.9);

    assert_int_equal(parse_expectation("100ms", &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "< or >"));
    assert_int_equal(parse_expectation("<fast", &e, err, sizeof err), -1);
    assert_int_equal(parse_expectation("<10 parsecs", &e, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown unit"));
}

static void test_chart(void **state)
{
    lat_samples s;
    lat_init(&s, 10);
    lat_add(&s, 50000000);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    lat_print_chart(&s, 100, f);
    fclose(f);
    assert_non_null(strstr(text, "P99.9      50.00 ms"));
    assert_non_null(strstr(text, "50.0% of budget"));
    assert_non_null(strstr(text, "Target"));
    free(text);
    lat_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentiles_nearest_rank),
        cmocka_unit_test(test_recent_percentile_window),
        cmocka_unit_test(test_overflow_is_counted),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_spec_expectations),
        cmocka_unit_test(test_chart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
