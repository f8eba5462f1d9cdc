#include "testutil.h"

#include <stdint.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"

static void test_counters_track_live_and_peak(void **state)
{
    its_alloc_stats a, b, c;
    its_alloc_get_stats(ITS_MOD_ANALYTICS, &a);
    void *p = its_malloc(ITS_MOD_ANALYTICS, 1000);
    void *q = its_calloc(ITS_MOD_ANALYTICS, 10, 30);
    assert_non_null(p);
    assert_non_null(q);
    assert_memory_equal(q, (char[300]){0}, 300);
    its_alloc_get_stats(ITS_MOD_ANALYTICS, &b);
    assert_int_equal(b.bytes_live - a.bytes_live, 1300);
    assert_true(b.bytes_peak >= a.bytes_live + 1300);
    assert_int_equal(b.allocs - a.allocs, 2);
    its_free(p);
    its_free(q);
    its_alloc_get_stats(ITS_MOD_ANALYTICS, &c);
    assert_int_equal(c.bytes_live, a.bytes_live);
    assert_int_equal(c.frees - a.frees, 2);
    its_free(NULL); /* no-op */
}

static void test_realloc_keeps_data_and_module(void **state)
{
    its_alloc_stats a, b;
    its_alloc_get_stats(ITS_MOD_TRACK, &a);
    char *p = its_malloc(ITS_MOD_TRACK, 4);
    memcpy(p, "abc", 4);
    p = its_realloc(ITS_MOD_CORE, p, 4096); /* module stays TRACK */
    assert_string_equal(p, "abc");
    its_alloc_get_stats(ITS_MOD_TRACK, &b);
    assert_int_equal(b.bytes_live - a.bytes_live, 4096);
    assert_int_equal(its_alloc_size(p), 4096);
    its_free(p);
}

static void test_aligned(void **state)
{
    for (size_t align = 1; align <= 4096; align <<= 1) {
        void *p = its_aligned_alloc(ITS_MOD_CORE, align, 100);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % align, 0);
        memset(p, 0xab, 100);
        its_free(p);
    }
    assert_null(its_aligned_alloc(ITS_MOD_CORE, 3, 100));
    assert_null(its_aligned_alloc(ITS_MOD_CORE, 8192, 100));
}

static void test_overflow_is_refused(void **state)
{
    its_alloc_stats a, b;
    its_alloc_get_stats(ITS_MOD_COUNT, &a);
    assert_null(its_calloc(ITS_MOD_CORE, SIZE_MAX / 2, 4));
    assert_null(its_malloc(ITS_MOD_CORE, SIZE_MAX - 8));
    its_alloc_get_stats(ITS_MOD_COUNT, &b);
    assert_int_equal(b.failures - a.failures, 2);
}

static void test_failure_injection(void **state)
{
    /* Skip 2, fail the next 2, then succeed again. */
    its_alloc_fail_after(ITS_MOD_COUNT, 2, 2);
    void *p[6];
    for (int i = 0; i < 6; i++)
        p[i] = its_malloc(ITS_MOD_TEST, 16);
    its_alloc_fail_reset();
    assert_non_null(p[0]);
    assert_non_null(p[1]);
    assert_null(p[2]);
    assert_null(p[3]);
    assert_non_null(p[4]);
    assert_non_null(p[5]);
    for (int i = 0; i < 6; i++)
        its_free(p[i]);

    /* Per module: only ENGINE allocations fail. */
    its_alloc_fail_after(ITS_MOD_ENGINE, 0, -1);
    void *e = its_malloc(ITS_MOD_ENGINE, 8);
    void *t = its_malloc(ITS_MOD_TEST, 8);
    char *s = its_strdup(ITS_MOD_ENGINE, "x");
    its_alloc_fail_reset();
    assert_null(e);
    assert_null(s);
    assert_non_null(t);
    its_free(t);
}

static void test_strdup_and_names(void **state)
{
    char *s = its_strndup(ITS_MOD_CORE, "hello world", 5);
    assert_string_equal(s, "hello");
    its_free(s);
    assert_string_equal(its_module_name(ITS_MOD_PUBLISH), "publish");
    assert_string_equal(its_module_name((its_module)99), "unknown");
}

static void test_count_is_monotonic(void **state)
{
    uint64_t a = its_alloc_count();
    void *p = its_malloc(ITS_MOD_TEST, 1);
    assert_int_equal(its_alloc_count(), a + 1);
    its_free(p);
    assert_int_equal(its_alloc_count(), a + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_track_live_and_peak),
        cmocka_unit_test(test_realloc_keeps_data_and_module),
        cmocka_unit_test(test_aligned),
        cmocka_unit_test(test_overflow_is_refused),
        cmocka_unit_test(test_failure_injection),
        cmocka_unit_test(test_strdup_and_names),
        cmocka_unit_test(test_count_is_monotonic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
