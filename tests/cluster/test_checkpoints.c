/* The cluster's checkpoint store (its_cluster_checkpoint_save/_load) against a real
 * redis-server: a checkpoint is written only by the camera's owner under the epoch of its
 * take, so an owner that lost the camera (a newer take, its owner key gone, its lease given
 * up) never overwrites a newer checkpoint; and a replica that leaves gracefully has its
 * cameras taken by the others when the handover gap ends, not at their next renewal. */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/cluster.h"
#include "its/core.h"
#include "redis_fixture.h"
#include "testutil.h"

static its_redis_fixture srv;

/* The cameras a replica serves (its start/stop ops). */
typedef struct served {
    pthread_mutex_t mu;
    char ids[8][16];
    int n;
} served;

static int op_start(void *ud, const char *id, const char *spec)
{
    (void)spec;
    served *s = ud;
    pthread_mutex_lock(&s->mu);
    snprintf(s->ids[s->n++], sizeof s->ids[0], "%s", id);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static void op_stop(void *ud, const char *id)
{
    served *s = ud;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->ids[i], id)) {
            memcpy(s->ids[i], s->ids[--s->n], sizeof s->ids[i]);
            break;
        }
    pthread_mutex_unlock(&s->mu);
}

static int n_served(served *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static its_cluster *replica(const char *name, served *s, int ttl_ms)
{
    its_cluster_config cc;
    its_cluster_config_default(&cc);
    cc.replica = name;
    cc.capacity = 8;
    cc.lease_ttl_ms = ttl_ms;
    cc.resync_ms = 1000;
    cc.prefix = "t";
    cc.redis.host = "127.0.0.1";
    cc.redis.port = srv.port;
    cc.redis.connect_timeout_ms = 2000; /* a loaded machine, a sanitizer build */
    cc.redis.command_timeout_ms = 2000;
    its_cluster_ops ops = {.ud = s, .start = op_start, .stop = op_stop};
    its_cluster *c = NULL;
    char err[256];
    pthread_mutex_init(&s->mu, NULL);
    assert_int_equal(its_cluster_create(&cc, &ops, &c, err, sizeof err), 0);
    return c;
}

static int wait_served(served *s, int n, double seconds)
{
    uint64_t end = its_now_ns() + (uint64_t)(seconds * 1e9);
    while (n_served(s) != n && its_now_ns() < end)
        its_sleep_ns(10 * ITS_NS_PER_MS);
    return n_served(s) == n;
}

static redisReply *cmd(redisContext *rc, const char *fmt, const char *a, const char *b)
{
    redisReply *r = redisCommand(rc, fmt, a, b);
    assert_non_null(r);
    return r;
}

static void expect_data(its_cluster *c, const char *id, const char *want)
{
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(its_cluster_checkpoint_load(c, id, &data, &len), 0);
    assert_int_equal(len, strlen(want));
    assert_string_equal(data, want);
    its_free(data);
}

static int setup(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof srv);
    return its_redis_start(&srv);
}

static int teardown(void **state)
{
    (void)state;
    its_redis_cleanup(&srv);
    return 0;
}

/* Truth: the owner writes; once another take of the camera has happened (its epoch moved on)
 * the old owner's write is refused and the newer checkpoint stays; a camera not held here, and
 * any camera after the replica left, is refused too. */
static void test_fencing(void **state)
{
    (void)state;
    served s = {0};
    its_cluster *c = replica("r1", &s, 3000);
    assert_int_equal(its_cluster_seed(c, "cam-1", "{\"id\":\"cam-1\"}"), 0);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(its_cluster_checkpoint_load(c, "cam-1", &data, &len), ITS_ENOENT);
    assert_int_equal(its_cluster_start(c), 0);
    assert_true(wait_served(&s, 1, 5));
    assert_int_equal(its_cluster_checkpoint_save(c, "cam-1", "{\"n\":1}", 7), 0);
    expect_data(c, "cam-1", "{\"n\":1}");
    assert_int_equal(its_cluster_checkpoint_save(c, "cam-2", "{}", 2), ITS_EBUSY);
    /* another take of the camera (what a replica that took it after an expiry does) */
    redisContext *rc = redisConnect("127.0.0.1", srv.port);
    assert_non_null(rc);
    freeReplyObject(cmd(rc, "HINCRBY %s %s 1", "t:ckpt:{cam-1}", "epoch"));
    freeReplyObject(cmd(rc, "HSET %s data %s", "t:ckpt:{cam-1}", "{\"n\":99}"));
    assert_int_equal(its_cluster_checkpoint_save(c, "cam-1", "{\"n\":2}", 7), ITS_EBUSY);
    expect_data(c, "cam-1", "{\"n\":99}");
    /* the epoch back to ours: written again */
    freeReplyObject(cmd(rc, "HINCRBY %s %s -1", "t:ckpt:{cam-1}", "epoch"));
    assert_int_equal(its_cluster_checkpoint_save(c, "cam-1", "{\"n\":3}", 7), 0);
    expect_data(c, "cam-1", "{\"n\":3}");
    /* the owner key someone else's (the replica stops the camera at its next renewal) */
    freeReplyObject(cmd(rc, "SET %s %s", "t:owner:cam-1", "r2"));
    assert_int_equal(its_cluster_checkpoint_save(c, "cam-1", "{\"n\":4}", 7), ITS_EBUSY);
    expect_data(c, "cam-1", "{\"n\":3}");
    /* gone: nothing more from this replica */
    its_cluster_leave(c);
    assert_int_equal(its_cluster_checkpoint_save(c, "cam-1", "{\"n\":5}", 7), ITS_EBUSY);
    expect_data(c, "cam-1", "{\"n\":3}");
    /* a camera removed from the registry takes its checkpoint with it */
    assert_int_equal(its_cluster_remove(c, "cam-1"), 0);
    assert_int_equal(its_cluster_checkpoint_load(c, "cam-1", &data, &len), ITS_ENOENT);
    its_cluster_destroy(c);
    redisFree(rc);
}

/* Truth: with a lease of 10 s the others renew every 2.5 s; a replica that leaves publishes a
 * change, the others renew at once, see it gone, and take each of its cameras when its
 * handover gap (1.5 s) ends: all four within 1.5 s + 0.9 s of the leave (without the wake-ups: 2.5
 * to 5 s). Each take is a new epoch, under which the new owner writes. */
static void test_graceful_leave(void **state)
{
    (void)state;
    served s1 = {0}, s2 = {0};
    its_cluster *c1 = replica("a1", &s1, 10000), *c2 = replica("a2", &s2, 10000);
    const char *ids[4] = {"cam-a", "cam-b", "cam-c", "cam-d"};
    for (int i = 0; i < 4; i++) {
        char spec[64];
        snprintf(spec, sizeof spec, "{\"id\":\"%s\"}", ids[i]);
        assert_int_equal(its_cluster_seed(c1, ids[i], spec), 0);
    }
    assert_int_equal(its_cluster_start(c1), 0);
    assert_int_equal(its_cluster_start(c2), 0);
    /* 4 cameras, capacities 8 and 8: two each (its/cluster.h) */
    uint64_t end = its_now_ns() + 20 * ITS_NS_PER_S;
    while ((n_served(&s1) != 2 || n_served(&s2) != 2) && its_now_ns() < end)
        its_sleep_ns(20 * ITS_NS_PER_MS);
    assert_int_equal(n_served(&s1), 2);
    assert_int_equal(n_served(&s2), 2);
    char mine[2][16];
    memcpy(mine, s1.ids, sizeof mine);
    assert_int_equal(its_cluster_checkpoint_save(c1, mine[0], "{\"by\":1}", 8), 0);
    uint64_t t0 = its_now_ns();
    its_cluster_leave(c1);
    assert_true(wait_served(&s2, 4, 5));
    double took = (double)(its_now_ns() - t0) / 1e9;
    printf("graceful leave: the other replica serves all 4 cameras %.2f s after it\n", took);
    assert_true(took >= 1.4 && took <= 2.4);
    expect_data(c2, mine[0], "{\"by\":1}");
    assert_int_equal(its_cluster_checkpoint_save(c2, mine[0], "{\"by\":2}", 8), 0);
    expect_data(c2, mine[0], "{\"by\":2}");
    its_cluster_destroy(c1);
    its_cluster_destroy(c2);
}

int main(void)
{
    if (!its_redis_available())
        return its_test_skip("redis-server not found");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fencing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graceful_leave, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
