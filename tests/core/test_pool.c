#include "testutil.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "its/alloc.h"
#include "its/clock.h"
#include "its/error.h"
#include "its/pool.h"

static void test_get_ref_unref(void **state)
{
    its_pool_t *p;
    assert_int_equal(its_pool_create(ITS_MOD_TEST, 1000, 2, &p), 0);
    assert_int_equal(its_pool_count(p), 2);
    assert_int_equal(its_pool_available(p), 2);
    its_buf *a = its_pool_get(p);
    its_buf *b = its_pool_get(p);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a->data, b->data);
    assert_int_equal((uintptr_t)a->data % 64, 0);
    assert_int_equal(a->capacity, 1000);
    memset(a->data, 1, 1000);
    memset(b->data, 2, 1000); /* buffers must not overlap */
    assert_int_equal(a->data[999], 1);
    assert_null(its_pool_get(p));
    assert_int_equal(its_pool_misses(p), 1);
    assert_true(its_buf_writable(a));
    its_buf_ref(a);
    assert_false(its_buf_writable(a));
    its_buf_unref(a);
    assert_int_equal(its_pool_available(p), 0); /* still one reference */
    its_buf_unref(a);
    assert_int_equal(its_pool_available(p), 1);
    its_buf_unref(b);
    its_buf_unref(NULL);
    assert_int_equal(its_pool_available(p), 2);
    its_pool_destroy(p);
}

static void test_destroy_with_buffers_out(void **state)
{
    its_alloc_stats s0, s1;
    its_alloc_get_stats(ITS_MOD_INGEST, &s0);
    its_pool_t *p;
    assert_int_equal(its_pool_create(ITS_MOD_INGEST, 64, 4, &p), 0);
    its_buf *a = its_pool_get(p);
    its_pool_destroy(p); /* a is still out: memory must stay valid */
    memset(a->data, 7, 64);
    its_buf_unref(a); /* last reference frees the pool */
    its_alloc_get_stats(ITS_MOD_INGEST, &s1);
    assert_int_equal(s1.bytes_live, s0.bytes_live);
}

static void test_create_errors(void **state)
{
    its_pool_t *p;
    assert_int_equal(its_pool_create(ITS_MOD_TEST, 0, 4, &p), ITS_EINVAL);
    assert_int_equal(its_pool_create(ITS_MOD_TEST, 8, 0, &p), ITS_EINVAL);
    assert_int_equal(its_pool_create(ITS_MOD_TEST, SIZE_MAX / 2, 4, &p), ITS_EOVERFLOW);
    for (long skip = 0; skip < 5; skip++) {
        its_alloc_stats s0, s1;
        its_alloc_get_stats(ITS_MOD_TEST, &s0);
        its_alloc_fail_after(ITS_MOD_TEST, skip, 1);
        int rc = its_pool_create(ITS_MOD_TEST, 128, 4, &p);
        its_alloc_fail_reset();
        if (rc == 0)
            its_pool_destroy(p);
        else
            assert_int_equal(rc, ITS_ENOMEM);
        its_alloc_get_stats(ITS_MOD_TEST, &s1);
        assert_int_equal(s1.bytes_live, s0.bytes_live); /* nothing leaked on any path */
    }
}

static void *returner(void *arg)
{
    its_sleep_ns(10 * ITS_NS_PER_MS);
    its_buf_unref(arg);
    return NULL;
}

static void test_get_wait(void **state)
{
    its_pool_t *p;
    assert_int_equal(its_pool_create(ITS_MOD_TEST, 16, 1, &p), 0);
    its_buf *a = its_pool_get(p);
    assert_null(its_pool_get_wait(p, 5 * ITS_NS_PER_MS));
    pthread_t th;
    pthread_create(&th, NULL, returner, a);
    its_buf *b = its_pool_get_wait(p, 2 * ITS_NS_PER_S);
    assert_ptr_equal(a, b);
    pthread_join(th, NULL);
    its_buf_unref(b);
    its_pool_destroy(p);
}

static void *churn(void *arg)
{
    its_pool_t *p = arg;
    for (int i = 0; i < 20000; i++) {
        its_buf *b = its_pool_get_wait(p, UINT64_MAX);
        assert_non_null(b);
        assert_true(its_buf_writable(b));
        b->data[0] = (uint8_t)i;
        its_buf_ref(b);
        its_buf_unref(b);
        its_buf_unref(b);
    }
    return NULL;
}

static void test_concurrent_churn(void **state)
{
    its_pool_t *p;
    assert_int_equal(its_pool_create(ITS_MOD_TEST, 32, 3, &p), 0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, churn, p);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(its_pool_available(p), 3);
    its_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_ref_unref),    cmocka_unit_test(test_destroy_with_buffers_out),
        cmocka_unit_test(test_create_errors),    cmocka_unit_test(test_get_wait),
        cmocka_unit_test(test_concurrent_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
