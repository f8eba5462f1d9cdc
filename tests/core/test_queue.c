#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "its/alloc.h"
#include "its/clock.h"
#include "its/error.h"
#include "its/queue.h"

#define ITEM(i) ((void *)(uintptr_t)(i))

static void test_fifo_full_empty(void **state)
{
    its_queue_t *q;
    assert_int_equal(its_queue_create(ITS_MOD_TEST, 3, &q), 0);
    assert_int_equal(its_queue_capacity(q), 4); /* rounded up to a power of two */
    void *out;
    assert_int_equal(its_queue_pop(q, &out), ITS_EEMPTY);
    for (int i = 1; i <= 4; i++)
        assert_int_equal(its_queue_push(q, ITEM(i)), 0);
    assert_int_equal(its_queue_push(q, ITEM(5)), ITS_EFULL);
    assert_int_equal(its_queue_size(q), 4);
    for (int i = 1; i <= 4; i++) {
        assert_int_equal(its_queue_pop(q, &out), 0);
        assert_ptr_equal(out, ITEM(i));
    }
    assert_int_equal(its_queue_pop(q, &out), ITS_EEMPTY);
    assert_int_equal(its_queue_push(q, NULL), ITS_EINVAL);
    /* Wrap around many times. */
    for (int i = 1; i < 1000; i++) {
        assert_int_equal(its_queue_push(q, ITEM(i)), 0);
        assert_int_equal(its_queue_pop(q, &out), 0);
        assert_ptr_equal(out, ITEM(i));
    }
    its_queue_destroy(q);
    its_queue_destroy(NULL);
}

static void test_bad_args_and_oom(void **state)
{
    its_queue_t *q;
    assert_int_equal(its_queue_create(ITS_MOD_TEST, 0, &q), ITS_EINVAL);
    for (long skip = 0; skip < 2; skip++) {
        its_alloc_fail_after(ITS_MOD_TEST, skip, 1);
        assert_int_equal(its_queue_create(ITS_MOD_TEST, 8, &q), ITS_ENOMEM);
        its_alloc_fail_reset();
    }
}

static void test_timeouts(void **state)
{
    its_queue_t *q;
    assert_int_equal(its_queue_create(ITS_MOD_TEST, 2, &q), 0);
    void *out;
    uint64_t t0 = its_now_ns();
    assert_int_equal(its_queue_pop_wait(q, &out, 20 * ITS_NS_PER_MS), ITS_ETIMEDOUT);
    uint64_t waited = its_now_ns() - t0;
    assert_true(waited >= 20 * ITS_NS_PER_MS);
    assert_true(waited < 2000 * ITS_NS_PER_MS);
    assert_int_equal(its_queue_push(q, ITEM(1)), 0);
    assert_int_equal(its_queue_push(q, ITEM(2)), 0);
    assert_int_equal(its_queue_push_wait(q, ITEM(3), 10 * ITS_NS_PER_MS), ITS_ETIMEDOUT);
    assert_int_equal(its_queue_push_wait(q, ITEM(3), 0), ITS_EFULL);
    its_queue_destroy(q);
}

static void *closer(void *arg)
{
    its_sleep_ns(20 * ITS_NS_PER_MS);
    its_queue_close(arg);
    return NULL;
}

static void test_close_wakes_waiters_and_drains(void **state)
{
    its_queue_t *q;
    assert_int_equal(its_queue_create(ITS_MOD_TEST, 4, &q), 0);
    pthread_t th;
    pthread_create(&th, NULL, closer, q);
    void *out;
    assert_int_equal(its_queue_pop_wait(q, &out, UINT64_MAX), ITS_ECLOSED);
    pthread_join(th, NULL);
    its_queue_destroy(q);

    assert_int_equal(its_queue_create(ITS_MOD_TEST, 4, &q), 0);
    its_queue_push(q, ITEM(7));
    its_queue_close(q);
    assert_true(its_queue_is_closed(q));
    assert_int_equal(its_queue_push(q, ITEM(8)), ITS_ECLOSED);
    assert_int_equal(its_queue_pop(q, &out), 0); /* what was queued still drains */
    assert_ptr_equal(out, ITEM(7));
    assert_int_equal(its_queue_pop(q, &out), ITS_ECLOSED);
    its_queue_destroy(q);
}

/* Contention: P producers push disjoint ranges through a small queue with blocking waits,
 * C consumers pop until closed; every item must arrive exactly once. */
#define PER_PRODUCER 10000

typedef struct ctx {
    its_queue_t *q;
    int id;
    atomic_ullong *sum;
    atomic_uint *seen;
    atomic_long *count;
} ctx;

static void *producer(void *arg)
{
    ctx *c = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        uintptr_t v = (uintptr_t)c->id * PER_PRODUCER + (uintptr_t)i + 1;
        assert_int_equal(its_queue_push_wait(c->q, ITEM(v), UINT64_MAX), 0);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    ctx *c = arg;
    void *out;
    int rc;
    while ((rc = its_queue_pop_wait(c->q, &out, UINT64_MAX)) == 0) {
        uintptr_t v = (uintptr_t)out;
        atomic_fetch_add(c->sum, v);
        atomic_fetch_add(&c->seen[v - 1], 1);
        atomic_fetch_add(c->count, 1);
    }
    assert_int_equal(rc, ITS_ECLOSED);
    return NULL;
}

static void run_contention(int np, int nc)
{
    its_queue_t *q;
    assert_int_equal(its_queue_create(ITS_MOD_TEST, 8, &q), 0);
    long total = (long)np * PER_PRODUCER;
    atomic_ullong sum = 0;
    atomic_long count = 0;
    atomic_uint *seen = its_calloc(ITS_MOD_TEST, (size_t)total, sizeof *seen);
    pthread_t pt[4], ct[4];
    ctx pc[4], cc[4];
    for (int i = 0; i < nc; i++) {
        cc[i] = (ctx){q, i, &sum, seen, &count};
        pthread_create(&ct[i], NULL, consumer, &cc[i]);
    }
    for (int i = 0; i < np; i++) {
        pc[i] = (ctx){q, i, &sum, seen, &count};
        pthread_create(&pt[i], NULL, producer, &pc[i]);
    }
    for (int i = 0; i < np; i++)
        pthread_join(pt[i], NULL);
    /* Let consumers drain, then close. */
    while (atomic_load(&count) < total)
        its_sleep_ns(ITS_NS_PER_MS);
    its_queue_close(q);
    for (int i = 0; i < nc; i++)
        pthread_join(ct[i], NULL);
    assert_int_equal(atomic_load(&count), total);
    unsigned long long expect = (unsigned long long)total * (unsigned long long)(total + 1) / 2;
    assert_true(atomic_load(&sum) == expect);
    for (long i = 0; i < total; i++)
        assert_int_equal(atomic_load(&seen[i]), 1);
    its_free(seen);
    its_queue_destroy(q);
}

static void test_contention_1x1(void **state)
{
    run_contention(1, 1);
}
static void test_contention_4x4(void **state)
{
    run_contention(4, 4);
}
static void test_contention_4x1(void **state)
{
    run_contention(4, 1);
}
static void test_contention_1x4(void **state)
{
    run_contention(1, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_full_empty),
        cmocka_unit_test(test_bad_args_and_oom),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_close_wakes_waiters_and_drains),
        cmocka_unit_test(test_contention_1x1),
        cmocka_unit_test(test_contention_4x4),
        cmocka_unit_test(test_contention_4x1),
        cmocka_unit_test(test_contention_1x4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
