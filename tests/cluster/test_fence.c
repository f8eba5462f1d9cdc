/* The fenced sink (its_sink_fenced): a cluster replica's messages pass only while its lease is
 * valid, whatever the time of the frame, and the config checks of cluster.* (a cluster needs
 * Redis). */
#include <stdatomic.h>
#include <string.h>

#include "its/app.h"
#include "its/core.h"
#include "testutil.h"

typedef struct count_sink {
    its_sink base;
    int n, destroyed;
} count_sink;

static int count_publish(its_sink *s, its_msg_type type, const char *camera, const its_frame *f,
                         const char *json, size_t len)
{
    (void)type, (void)camera, (void)f, (void)json, (void)len;
    ((count_sink *)s)->n++;
    return 0;
}

static void count_flush(its_sink *s)
{
    (void)s;
}

static void count_destroy(its_sink *s)
{
    ((count_sink *)s)->destroyed = 1;
}

static void test_fenced_sink(void **state)
{
    (void)state;
    count_sink inner = {.base = {"count", count_publish, count_flush, count_destroy}};
    _Atomic uint64_t until = 0;
    its_sink *s = its_sink_fenced(&inner.base, &until);
    assert_non_null(s);
    const char msg[] = "{\"v\":2}";
    /* no lease yet: nothing passes */
    assert_int_equal(s->publish(s, ITS_MSG_FRAME, "cam-1", NULL, msg, sizeof msg - 1), 0);
    assert_int_equal(inner.n, 0);
    /* valid for another second: it passes */
    atomic_store(&until, its_now_ns() + ITS_NS_PER_S);
    for (int i = 0; i < 3; i++)
        s->publish(s, ITS_MSG_EVENT, "cam-1", NULL, msg, sizeof msg - 1);
    assert_int_equal(inner.n, 3);
    /* the lease ran out (a stalled process): dropped again, though the renewal has not yet
     * told anyone */
    atomic_store(&until, its_now_ns() - 1);
    s->publish(s, ITS_MSG_FRAME, "cam-1", NULL, msg, sizeof msg - 1);
    assert_int_equal(inner.n, 3);
    s->destroy(s);
    assert_int_equal(inner.destroyed, 1);
}

static void test_cluster_needs_redis(void **state)
{
    (void)state;
    its_app_config c;
    char err[512];
    const char *no_redis = "cluster: {enabled: true}\n";
    assert_int_equal(
        its_app_config_load_string(&c, no_redis, strlen(no_redis), "t.yaml", err, sizeof err),
        ITS_ECONFIG);
    assert_non_null(strstr(err, "cluster.enabled"));
    its_app_config_free(&c);
    const char *ok = "cluster: {enabled: true, capacity: 8}\n"
                     "redis: {sentinels: '127.0.0.1:26379', master_name: its}\n";
    assert_int_equal(its_app_config_load_string(&c, ok, strlen(ok), "t.yaml", err, sizeof err), 0);
    assert_int_equal(c.s.cluster_enabled, 1);
    assert_int_equal(c.s.cluster_capacity, 8);
    its_app_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fenced_sink),
        cmocka_unit_test(test_cluster_needs_redis),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
