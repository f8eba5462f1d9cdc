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

/* Memory from a caller's allocator (its_pool_create_mem): used for the buffers, handed back
 * exactly once when the pool's last buffer returns, refused when it breaks alignment. */
typedef struct mem_log {
    int allocs, frees;
    void *last;
    int misalign;
} mem_log;

static void *log_alloc(void *ctx, size_t bytes)
{
    mem_log *l = ctx;
    l->allocs++;
    uint8_t *p = its_aligned_alloc(ITS_MOD_TEST, 64, bytes + 64);
    l->last = p;
    return p ? p + l->misalign : NULL;
}

static void log_free(void *ctx, void *p)
{
    mem_log *l = ctx;
    l->frees++;
    assert_ptr_equal((uint8_t *)p - l->misalign, l->last);
    its_free(l->last);
}

static void test_caller_memory(void **state)
{
    (void)state;
    mem_log l = {0};
    its_pool_mem mem = {log_alloc, log_free, &l};
    its_pool_t *p;
    assert_int_equal(its_pool_create_mem(ITS_MOD_TEST, 100, 4, &mem, &p), 0);
    assert_int_equal(l.allocs, 1);
    its_buf *b = its_pool_get(p);
    assert_non_null(b);
    assert_true(b->data >= (uint8_t *)l.last && b->data < (uint8_t *)l.last + 4 * 128);
    memset(b->data, 7, b->capacity);
    its_pool_destroy(p); /* a buffer is out: the memory stays */
    assert_int_equal(l.frees, 0);
    its_buf_unref(b);
    assert_int_equal(l.frees, 1);
    /* a misaligned block is refused and given back */
    mem_log bad = {.misalign = 8};
    its_pool_mem mb = {log_alloc, log_free, &bad};
    assert_int_equal(its_pool_create_mem(ITS_MOD_TEST, 100, 4, &mb, &p), ITS_EINVAL);
    assert_int_equal(bad.frees, 1);
    /* an allocator without free is refused before anything is allocated */
    its_pool_mem half = {log_alloc, NULL, &l};
    assert_int_equal(its_pool_create_mem(ITS_MOD_TEST, 100, 4, &half, &p), ITS_EINVAL);
    assert_int_equal(l.allocs, 1);
    /* NULL: ordinary memory */
    assert_int_equal(its_pool_create_mem(ITS_MOD_TEST, 100, 4, NULL, &p), 0);
    its_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_ref_unref),    cmocka_unit_test(test_destroy_with_buffers_out),
        cmocka_unit_test(test_create_errors),    cmocka_unit_test(test_get_wait),
        cmocka_unit_test(test_concurrent_churn), cmocka_unit_test(test_caller_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
