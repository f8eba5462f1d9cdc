/* The L1 LRU on its own: bounds in entries and bytes, recency order, expiry, overwrite. */
#include <string.h>

#include "its/core.h"
#include "its/publish.h"
#include "testutil.h"

static its_cache *make(size_t entries, size_t bytes)
{
    its_cache_config cfg;
    its_cache_config_default(&cfg);
    cfg.max_entries = entries;
    cfg.max_bytes = bytes;
    its_cache *c = NULL;
    assert_int_equal(its_cache_create(&cfg, NULL, &c), 0);
    return c;
}

static int has(its_cache *c, const char *key, const char *want)
{
    char *v = NULL;
    size_t n = 0;
    int rc = its_cache_get_l1(c, key, &v, &n);
    if (rc != 0)
        return 0;
    int ok = !want || (n == strlen(want) && !strcmp(v, want));
    its_free(v);
    return ok;
}

static void test_entry_bound_and_lru(void **state)
{
    its_cache *c = make(3, 1 << 20);
    assert_int_equal(its_cache_put(c, "a", "1", 1, 60), 0);
    assert_int_equal(its_cache_put(c, "b", "2", 1, 60), 0);
    assert_int_equal(its_cache_put(c, "c", "3", 1, 60), 0);
    assert_true(has(c, "a", "1")); /* a becomes most recent: b is now the coldest */
    assert_int_equal(its_cache_put(c, "d", "4", 1, 60), 0);
    assert_false(has(c, "b", NULL));
    assert_true(has(c, "a", "1"));
    assert_true(has(c, "c", "3"));
    assert_true(has(c, "d", "4"));
    its_cache_stats st;
    its_cache_get_stats(c, &st);
    assert_int_equal(st.entries, 3);
    assert_int_equal(st.evictions, 1);
    its_cache_destroy(c);
}

static void test_byte_bound(void **state)
{
    /* key (1) + value (10) = 11 bytes each; 40 bytes hold three. */
    its_cache *c = make(100, 40);
    const char *v = "0123456789";
    assert_int_equal(its_cache_put(c, "a", v, 10, 60), 0);
    assert_int_equal(its_cache_put(c, "b", v, 10, 60), 0);
    assert_int_equal(its_cache_put(c, "c", v, 10, 60), 0);
    its_cache_stats st;
    its_cache_get_stats(c, &st);
    assert_int_equal(st.bytes, 33);
    assert_int_equal(its_cache_put(c, "d", v, 10, 60), 0);
    its_cache_get_stats(c, &st);
    assert_int_equal(st.entries, 3);
    assert_true(st.bytes <= 40);
    assert_false(has(c, "a", NULL));
    /* An entry larger than the whole cache is refused, and nothing is evicted for it. */
    char big[64];
    memset(big, 'x', sizeof big);
    assert_int_equal(its_cache_put(c, "e", big, sizeof big, 60), ITS_EOVERFLOW);
    assert_true(has(c, "d", v));
    its_cache_destroy(c);
}

static void test_overwrite_and_grow(void **state)
{
    its_cache *c = make(10, 1 << 20);
    assert_int_equal(its_cache_put(c, "k", "short", 5, 60), 0);
    assert_int_equal(its_cache_put(c, "k", "a much longer value", 19, 60), 0);
    assert_true(has(c, "k", "a much longer value"));
    assert_int_equal(its_cache_put(c, "k", "s", 1, 60), 0);
    assert_true(has(c, "k", "s"));
    its_cache_stats st;
    its_cache_get_stats(c, &st);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.bytes, 2);
    /* Steady state: rewriting a key with a value that fits does not allocate. */
    uint64_t before = its_alloc_count();
    for (int i = 0; i < 100; i++)
        assert_int_equal(its_cache_put(c, "k", "t", 1, 60), 0);
    assert_int_equal(its_alloc_count(), before);
    its_cache_remove(c, "k");
    assert_false(has(c, "k", NULL));
    its_cache_destroy(c);
}

static void test_expiry(void **state)
{
    its_cache *c = make(10, 1 << 20);
    assert_int_equal(its_cache_put(c, "k", "v", 1, 1), 0);
    assert_true(has(c, "k", "v"));
    its_sleep_ns(1100 * ITS_NS_PER_MS);
    assert_false(has(c, "k", NULL));
    its_cache_stats st;
    its_cache_get_stats(c, &st);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.entries, 0);
    /* L1 only (no Redis configured): a miss is ITS_ENOENT. */
    char *v = NULL;
    assert_int_equal(its_cache_get(c, "k", &v, NULL), ITS_ENOENT);
    its_cache_destroy(c);
}

static void test_bad_args_and_oom(void **state)
{
    its_cache *c = NULL;
    its_cache_config cfg;
    its_cache_config_default(&cfg);
    cfg.max_entries = 0;
    assert_int_equal(its_cache_create(&cfg, NULL, &c), ITS_EINVAL);
    c = make(10, 100);
    assert_int_equal(its_cache_put(c, "k", "v", 1, 0), ITS_EINVAL);
    assert_int_equal(its_cache_put(c, NULL, "v", 1, 5), ITS_EINVAL);
    its_alloc_fail_after(ITS_MOD_PUBLISH, 0, -1);
    assert_int_equal(its_cache_put(c, "k", "v", 1, 5), ITS_ENOMEM);
    its_alloc_fail_reset();
    assert_int_equal(its_cache_put(c, "k", "v", 1, 5), 0);
    its_alloc_fail_after(ITS_MOD_PUBLISH, 0, -1);
    char *v = NULL;
    assert_int_equal(its_cache_get_l1(c, "k", &v, NULL), ITS_ENOMEM);
    its_alloc_fail_reset();
    its_cache_destroy(c);
    its_cache_config_default(&cfg);
    for (int skip = 0; skip < 3; skip++) {
        its_alloc_fail_after(ITS_MOD_PUBLISH, skip, 1);
        c = NULL;
        int rc = its_cache_create(&cfg, NULL, &c);
        its_alloc_fail_reset();
        assert_true(rc == ITS_ENOMEM || rc == 0);
        its_cache_destroy(c);
    }
}

static void test_adaptive_ttl(void **state)
{
    /* SPEC: int(base_ttl * freshness_score) with the SPEC bases. */
    assert_int_equal(its_publish_ttl_base_s(ITS_TTL_QUALITY_SCORES), 300);
    assert_int_equal(its_publish_ttl_base_s(ITS_TTL_PREDICTIONS_SHORT), 1800);
    assert_int_equal(its_publish_ttl_base_s(ITS_TTL_PREDICTIONS_LONG), 7200);
    assert_int_equal(its_publish_ttl_base_s(ITS_TTL_MODEL_BASELINES), 86400);
    assert_int_equal(its_publish_adaptive_ttl_s(300, 0.5), 150);
    assert_int_equal(its_publish_adaptive_ttl_s(7200, 0.25), 1800);
    assert_int_equal(its_publish_adaptive_ttl_s(86400, 1.0), 86400);
    assert_int_equal(its_publish_adaptive_ttl_s(300, 2.0), 300);
    assert_int_equal(its_publish_adaptive_ttl_s(300, 0.0), 1);
    assert_int_equal(its_publish_adaptive_ttl_s(300, -1.0), 1);
    assert_true(its_publish_valid_id("cam-1_A.b"));
    assert_false(its_publish_valid_id(""));
    assert_false(its_publish_valid_id("a b"));
    assert_false(its_publish_valid_id("a:b"));
    assert_false(its_publish_valid_id("a{b}"));
    char long_id[80];
    memset(long_id, 'a', sizeof long_id);
    long_id[64] = 0;
    assert_true(its_publish_valid_id(long_id));
    long_id[64] = 'a';
    long_id[65] = 0;
    assert_false(its_publish_valid_id(long_id));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry_bound_and_lru), cmocka_unit_test(test_byte_bound),
        cmocka_unit_test(test_overwrite_and_grow),  cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_bad_args_and_oom),    cmocka_unit_test(test_adaptive_ttl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
