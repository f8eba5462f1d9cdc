/* SmartBatchProcessor: deadlines, sizes, fairness, watermarks, close, concurrency. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "its/batch.h"
#include "its/core.h"
#include "testutil.h"

/* Items are small integers encoded as pointers: camera * 100000 + sequence + 1. */
#define ITEM(cam, seq) ((void *)(uintptr_t)((cam)*100000 + (seq) + 1))
#define CAM_OF(p)      ((int)(((uintptr_t)(p)-1) / 100000))
#define SEQ_OF(p)      ((int)(((uintptr_t)(p)-1) % 100000))

typedef struct drops {
    int n;
    int reason[2000];
    void *item[2000];
    int camera[2000];
} drops;

static void on_drop(void *item, int camera, its_drop_reason reason, void *ctx)
{
    drops *d = ctx;
    if (d->n < 2000) {
        d->item[d->n] = item;
        d->camera[d->n] = camera;
        d->reason[d->n] = reason;
    }
    d->n++;
}

static its_batcher_t *make(int max_batch, double delay_ms, const int *sizes, int n_sizes,
                           int n_cams, int per_cam, drops *d)
{
    its_batcher_opts o = {.max_batch = max_batch,
                          .max_delay_ns = its_ms_to_ns(delay_ms),
                          .sizes = sizes,
                          .n_sizes = n_sizes,
                          .n_cameras = n_cams,
                          .per_camera = per_cam,
                          .capacity = 1000,
                          .high_water = 800,
                          .low_water = 200,
                          .on_drop = on_drop,
                          .drop_ctx = d};
    its_batcher_t *b;
    assert_int_equal(its_batcher_create(&o, &b), 0);
    return b;
}

static void test_deadline(void **state)
{
    drops d = {0};
    /* a long delay (300 ms) so that "at once" and "after the delay" stay apart even on a
     * loaded machine */
    its_batcher_t *b = make(8, 300, NULL, 0, 4, 8, &d);
    void *items[32];
    int padded;
    uint64_t t0 = its_now_ns();
    for (int i = 0; i < 3; i++)
        assert_int_equal(its_batcher_push(b, ITEM(i, 0), i, t0), 0);
    /* not idle, not full: waits for the oldest item's deadline (300 ms after t0) */
    int n = its_batcher_next(b, items, 32, 0, &padded, 5 * ITS_NS_PER_S);
    uint64_t waited = its_now_ns() - t0;
    assert_int_equal(n, 3);
    assert_int_equal(padded, 3);
    assert_true(waited >= 300 * ITS_NS_PER_MS);
    assert_true(waited < 2000 * ITS_NS_PER_MS);

    /* a full batch goes at once */
    t0 = its_now_ns();
    for (int i = 0; i < 8; i++)
        assert_int_equal(its_batcher_push(b, ITEM(i % 4, i), i % 4, its_now_ns()), 0);
    assert_int_equal(its_batcher_next(b, items, 32, 0, &padded, ITS_NS_PER_S), 8);
    assert_true(its_now_ns() - t0 < 250 * ITS_NS_PER_MS);

    /* an idle engine takes a single waiting item at once */
    assert_int_equal(its_batcher_push(b, ITEM(1, 9), 1, its_now_ns()), 0);
    t0 = its_now_ns();
    assert_int_equal(its_batcher_next(b, items, 32, 1, &padded, ITS_NS_PER_S), 1);
    assert_true(its_now_ns() - t0 < 250 * ITS_NS_PER_MS);

    /* nothing waiting: times out after the timeout */
    t0 = its_now_ns();
    assert_int_equal(its_batcher_next(b, items, 32, 1, &padded, 15 * ITS_NS_PER_MS), ITS_ETIMEDOUT);
    assert_true(its_now_ns() - t0 >= 15 * ITS_NS_PER_MS);

    /* a waiting former is woken by the first push when idle */
    assert_int_equal(d.n, 0);
    its_batcher_destroy(b);
}

typedef struct late_push {
    its_batcher_t *b;
    uint64_t delay_ns;
    uint64_t pushed_ns; /* when the push began */
} late_push;

static void *pusher_later(void *arg)
{
    late_push *lp = arg;
    its_sleep_ns(lp->delay_ns);
    lp->pushed_ns = its_now_ns();
    its_batcher_push(lp->b, ITEM(0, 0), 0, lp->pushed_ns);
    return NULL;
}

static void test_wakeup(void **state)
{
    drops d = {0};
    its_batcher_t *b = make(8, 5, NULL, 0, 2, 8, &d);
    late_push lp = {b, 30 * ITS_NS_PER_MS, 0};
    pthread_t t;
    pthread_create(&t, NULL, pusher_later, &lp);
    void *items[8];
    assert_int_equal(its_batcher_next(b, items, 8, 1, NULL, 2 * ITS_NS_PER_S), 1);
    uint64_t t1 = its_now_ns();
    pthread_join(t, NULL);
    /* the idle waiter woke on the push (not before it, not at its 2 s timeout); measured
     * from the push itself, since a loaded machine may start the pusher before or after
     * this thread's clock would */
    assert_true(lp.pushed_ns > 0 && t1 >= lp.pushed_ns);
    assert_true(t1 - lp.pushed_ns < 1500 * ITS_NS_PER_MS);
    its_batcher_destroy(b);
}

static void push_n(its_batcher_t *b, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(its_batcher_push(b, ITEM(i % 8, i / 8), i % 8, its_now_ns()), 0);
}

static void test_prepared_sizes(void **state)
{
    static const int sizes[] = {1, 2, 4, 8};
    drops d = {0};
    its_batcher_t *b = make(8, 0, sizes, 4, 8, 8, &d);
    void *items[32];
    int padded;
    /* 5: padding to 8 wastes 3 slots, cutting to 4 leaves 1: cut */
    push_n(b, 5);
    assert_int_equal(its_batcher_next(b, items, 32, 1, &padded, ITS_NS_PER_S), 4);
    assert_int_equal(padded, 4);
    assert_int_equal(its_batcher_next(b, items, 32, 1, &padded, ITS_NS_PER_S), 1);
    assert_int_equal(padded, 1);
    /* 7: pad 1 beats leaving 3 */
    push_n(b, 7);
    assert_int_equal(its_batcher_next(b, items, 32, 1, &padded, ITS_NS_PER_S), 7);
    assert_int_equal(padded, 8);
    /* 3: pad 1 == leave 1: pad (one launch) */
    push_n(b, 3);
    assert_int_equal(its_batcher_next(b, items, 32, 1, &padded, ITS_NS_PER_S), 3);
    assert_int_equal(padded, 4);
    /* 20 waiting, max 8: full batches of 8 */
    push_n(b, 20);
    assert_int_equal(its_batcher_next(b, items, 32, 0, &padded, ITS_NS_PER_S), 8);
    assert_int_equal(padded, 8);
    /* the caller's max caps the batch too */
    assert_int_equal(its_batcher_next(b, items, 2, 0, &padded, ITS_NS_PER_S), 2);
    its_batcher_stats st;
    its_batcher_get_stats(b, &st);
    assert_int_equal(st.batches, 6);
    assert_int_equal(st.padded_slots, 2);
    assert_int_equal(st.size_hist[8], 1);
    assert_int_equal(st.depth, 10);
    its_batcher_destroy(b);

    /* bad options are refused */
    its_batcher_opts bad = {.max_batch = 33, .n_cameras = 1};
    its_batcher_t *x;
    assert_int_equal(its_batcher_create(&bad, &x), ITS_EINVAL);
    static const int unsorted[] = {4, 2};
    its_batcher_opts bad2 = {.max_batch = 4, .n_cameras = 1, .sizes = unsorted, .n_sizes = 2};
    assert_int_equal(its_batcher_create(&bad2, &x), ITS_EINVAL);
}

static void test_fairness(void **state)
{
    drops d = {0};
    its_batcher_t *b = make(4, 0, NULL, 0, 4, 8, &d);
    uint64_t t = its_now_ns();
    for (int i = 0; i < 8; i++) /* a busy camera 0 */
        its_batcher_push(b, ITEM(0, i), 0, t + (uint64_t)i);
    for (int c = 1; c < 4; c++)
        for (int i = 0; i < 2; i++)
            its_batcher_push(b, ITEM(c, i), c, t + 100 + (uint64_t)i);
    void *items[4];
    int seen[4] = {0, 0, 0, 0};
    int next_seq[4] = {0, 0, 0, 0};
    /* first batch: one item from every camera despite camera 0's backlog */
    assert_int_equal(its_batcher_next(b, items, 4, 0, NULL, ITS_NS_PER_S), 4);
    for (int i = 0; i < 4; i++)
        seen[CAM_OF(items[i])]++;
    for (int c = 0; c < 4; c++)
        assert_int_equal(seen[c], 1);
    /* everything drains in per-camera order */
    memset(next_seq, 0, sizeof next_seq);
    for (int i = 0; i < 4; i++)
        next_seq[CAM_OF(items[i])] = SEQ_OF(items[i]) + 1;
    int n, total = 4;
    while ((n = its_batcher_next(b, items, 4, 1, NULL, 0)) > 0) {
        for (int i = 0; i < n; i++) {
            int c = CAM_OF(items[i]);
            assert_int_equal(SEQ_OF(items[i]), next_seq[c]);
            next_seq[c]++;
        }
        total += n;
    }
    assert_int_equal(total, 14);
    its_batcher_destroy(b);
}

static void test_camera_limit(void **state)
{
    drops d = {0};
    its_batcher_t *b = make(8, 0, NULL, 0, 2, 3, &d);
    for (int i = 0; i < 5; i++)
        its_batcher_push(b, ITEM(1, i), 1, its_now_ns());
    assert_int_equal(d.n, 2);
    assert_ptr_equal(d.item[0], ITEM(1, 0));
    assert_ptr_equal(d.item[1], ITEM(1, 1));
    assert_int_equal(d.reason[0], ITS_DROP_CAMERA_LIMIT);
    assert_int_equal(d.camera[1], 1);
    int pending;
    uint64_t dropped[ITS_DROP_REASON_COUNT];
    assert_int_equal(its_batcher_camera(b, 1, &pending, dropped), 0);
    assert_int_equal(pending, 3);
    assert_int_equal(dropped[ITS_DROP_CAMERA_LIMIT], 2);
    void *items[8];
    assert_int_equal(its_batcher_next(b, items, 8, 1, NULL, 0), 3);
    for (int i = 0; i < 3; i++)
        assert_ptr_equal(items[i], ITEM(1, i + 2));
    assert_int_equal(its_batcher_push(b, ITEM(0, 0), 7, 0), ITS_ERANGE);
    its_batcher_destroy(b);
}

/* Passing the high-water mark (800) drops the oldest items over all cameras until the
 * low-water mark (200) remains. */
static void test_watermarks(void **state)
{
    drops d = {0};
    its_batcher_t *b = make(32, 1000, NULL, 0, 200, 8, &d);
    uint64_t t = 1000000;
    /* 801 items over 101 cameras, enqueue times strictly increasing; camera = i % 101 */
    for (int i = 0; i < 801; i++)
        assert_int_equal(its_batcher_push(b, ITEM(i % 101, i / 101), i % 101, t + (uint64_t)i), 0);
    assert_int_equal(d.n, 601);
    /* dropped oldest first: exactly the first 601 pushes, in push order */
    for (int i = 0; i < 601; i++) {
        assert_ptr_equal(d.item[i], ITEM(i % 101, i / 101));
        assert_int_equal(d.reason[i], ITS_DROP_HIGH_WATER);
    }
    its_batcher_stats st;
    its_batcher_get_stats(b, &st);
    assert_int_equal(st.depth, 200);
    assert_int_equal(st.watermark_events, 1);
    assert_int_equal(st.dropped[ITS_DROP_HIGH_WATER], 601);
    /* what remains is the 200 newest */
    void *items[32];
    int n, seen = 0;
    while ((n = its_batcher_next(b, items, 32, 1, NULL, 0)) > 0)
        for (int i = 0; i < n; i++) {
            int c = CAM_OF(items[i]), s = SEQ_OF(items[i]);
            assert_true(s * 101 + c >= 601);
            seen++;
        }
    assert_int_equal(seen, 200);
    its_batcher_destroy(b);
}

static void test_close_and_flush(void **state)
{
    drops d = {0};
    its_batcher_t *b = make(4, 1000, NULL, 0, 2, 8, &d);
    push_n(b, 2);
    its_batcher_close(b);
    assert_int_equal(its_batcher_push(b, ITEM(0, 9), 0, 0), ITS_ECLOSED);
    void *items[4];
    /* after close, what is queued goes out at once (no delay), then ECLOSED */
    uint64_t t0 = its_now_ns();
    assert_int_equal(its_batcher_next(b, items, 4, 0, NULL, ITS_NS_PER_S), 2);
    assert_true(its_now_ns() - t0 < 500 * ITS_NS_PER_MS);
    assert_int_equal(its_batcher_next(b, items, 4, 0, NULL, ITS_NS_PER_S), ITS_ECLOSED);
    its_batcher_destroy(b);

    b = make(4, 1000, NULL, 0, 2, 8, &d);
    d.n = 0;
    push_n(b, 2);
    assert_int_equal(its_batcher_flush_drop(b), 2);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.reason[0], ITS_DROP_SHUTDOWN);
    its_batcher_destroy(b);
    its_batcher_destroy(NULL);
}

/* Many pushers, two formers: every item comes out exactly once or is dropped, and each
 * batch keeps its cameras' order. */
typedef struct conc {
    its_batcher_t *b;
    int id;
    atomic_long out;
    atomic_long dropped;
    atomic_int done;
} conc;

static conc g_conc;

static void conc_drop(void *item, int camera, its_drop_reason reason, void *ctx)
{
    atomic_fetch_add(&g_conc.dropped, 1);
}

static void *conc_push(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < 20000; i++)
        its_batcher_push(g_conc.b, ITEM(id, i % 90000), id, its_now_ns());
    return NULL;
}

static void *conc_pop(void *arg)
{
    void *items[16];
    for (;;) {
        int n = its_batcher_next(g_conc.b, items, 16, 1, NULL, 50 * ITS_NS_PER_MS);
        if (n == ITS_ECLOSED)
            break;
        if (n < 0)
            continue;
        int last[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
        for (int i = 0; i < n; i++) {
            int c = CAM_OF(items[i]);
            assert_true(SEQ_OF(items[i]) > last[c]);
            last[c] = SEQ_OF(items[i]);
        }
        atomic_fetch_add(&g_conc.out, n);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    its_batcher_opts o = {.max_batch = 16,
                          .max_delay_ns = ITS_NS_PER_MS,
                          .n_cameras = 8,
                          .per_camera = 16,
                          .capacity = 100,
                          .high_water = 80,
                          .low_water = 20,
                          .on_drop = conc_drop};
    assert_int_equal(its_batcher_create(&o, &g_conc.b), 0);
    pthread_t p[4], c[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&c[i], NULL, conc_pop, NULL);
    for (int i = 0; i < 4; i++)
        pthread_create(&p[i], NULL, conc_push, (void *)(intptr_t)i);
    for (int i = 0; i < 4; i++)
        pthread_join(p[i], NULL);
    its_batcher_close(g_conc.b);
    for (int i = 0; i < 2; i++)
        pthread_join(c[i], NULL);
    its_batcher_stats st;
    its_batcher_get_stats(g_conc.b, &st);
    assert_int_equal(st.pushed, 80000);
    assert_int_equal(atomic_load(&g_conc.out) + atomic_load(&g_conc.dropped), 80000);
    assert_int_equal(st.items_out, (uint64_t)atomic_load(&g_conc.out));
    its_batcher_destroy(g_conc.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadline),        cmocka_unit_test(test_wakeup),
        cmocka_unit_test(test_prepared_sizes),  cmocka_unit_test(test_fairness),
        cmocka_unit_test(test_camera_limit),    cmocka_unit_test(test_watermarks),
        cmocka_unit_test(test_close_and_flush), cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
