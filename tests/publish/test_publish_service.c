/*
 * The thread-safe publish service against a real redis-server: several producer threads,
 * each message delivered once and in each producer's order; producers never wait while Redis
 * is away, and the counters account for every message.
 */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/core.h"
#include "its/publish.h"
#include "redis_fixture.h"
#include "testutil.h"

static its_redis_fixture srv;

static int setup(void **state)
{
    memset(&srv, 0, sizeof srv);
    return its_redis_start(&srv);
}

static int teardown(void **state)
{
    its_redis_stop(&srv, SIGTERM);
    its_redis_cleanup(&srv);
    return 0;
}

static redisContext *client(void)
{
    redisContext *c = redisConnect("127.0.0.1", srv.port);
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    return c;
}

enum { PRODUCERS = 4, PER = 500 };

typedef struct producer {
    its_publish_service *svc;
    int id;
    int failures;
    uint64_t max_submit_ns;
} producer;

static void *produce(void *arg)
{
    producer *pr = arg;
    char cam[16], json[160];
    snprintf(cam, sizeof cam, "cam-%d", pr->id);
    for (int i = 0; i < PER; i++) {
        its_pub_meta m = {cam, (uint64_t)i, its_wall_ns(), its_now_ns()};
        int n = snprintf(json, sizeof json,
                         "{\"v\":1,\"type\":\"event\",\"camera\":\"%s\",\"frame\":%d,\"p\":%d,"
                         "\"seq\":%d}",
                         cam, i, pr->id, i);
        its_pub_raw ev = {.kind = ITS_PUB_EVENT};
        uint64_t t0 = its_now_ns();
        pr->failures += its_publish_service_submit(pr->svc, &m, &ev, json, (size_t)n) != 0;
        n = snprintf(json, sizeof json,
                     "{\"v\":1,\"type\":\"frame\",\"camera\":\"%s\",\"frame\":%d}", cam, i);
        its_pub_raw det = {.kind = ITS_PUB_DETECTIONS};
        pr->failures += its_publish_service_submit(pr->svc, &m, &det, json, (size_t)n) != 0;
        uint64_t dt = its_now_ns() - t0;
        if (dt > pr->max_submit_ns)
            pr->max_submit_ns = dt;
    }
    return NULL;
}

static void test_many_producers(void **state)
{
    its_publish_config cfg;
    its_publish_config_default(&cfg);
    cfg.port = srv.port;
    its_publish_service_config sc;
    its_publish_service_config_default(&sc);
    sc.queue_max_msgs = 2 * PRODUCERS * PER; /* room for everything: nothing may drop */
    its_metrics *reg = its_metrics_create();
    assert_int_equal(its_metrics_std_register(reg), 0);
    its_cache *l1 = NULL;
    assert_int_equal(its_cache_create(NULL, reg, &l1), 0);
    its_publish_service *svc = NULL;
    assert_int_equal(its_publish_service_create(&cfg, &sc, reg, l1, &svc), 0);
    producer pr[PRODUCERS];
    pthread_t t[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        pr[i] = (producer){svc, i, 0, 0};
        assert_int_equal(pthread_create(&t[i], NULL, produce, &pr[i]), 0);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(pr[i].failures, 0);
    }
    its_publish_service_destroy(svc); /* drains */

    redisContext *c = client();
    redisReply *r = redisCommand(c, "XRANGE its:events:stream - +");
    assert_int_equal(r->elements, PRODUCERS * PER);
    int next[PRODUCERS] = {0};
    for (size_t i = 0; i < r->elements; i++) {
        json_t *j = json_loads(r->element[i]->element[1]->element[1]->str, 0, NULL);
        int p = (int)json_integer_value(json_object_get(j, "p"));
        int seq = (int)json_integer_value(json_object_get(j, "seq"));
        assert_true(p >= 0 && p < PRODUCERS);
        assert_int_equal(seq, next[p]); /* each producer's order kept, none lost or doubled */
        next[p]++;
        json_decref(j);
    }
    freeReplyObject(r);
    for (int i = 0; i < PRODUCERS; i++) {
        r = redisCommand(c, "GET its:cam:cam-%d:latest", i);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        json_t *j = json_loads(r->str, 0, NULL);
        assert_int_equal(json_integer_value(json_object_get(j, "frame")), PER - 1);
        json_decref(j);
        freeReplyObject(r);
    }
    r = redisCommand(c, "DEL its:events:stream");
    freeReplyObject(r);
    redisFree(c);
    its_cache_destroy(l1);
    its_metrics_destroy(reg);
}

static void test_redis_away(void **state)
{
    enum { QUEUE = 100, OUTBOX = 300, TOTAL = 2000 };
    its_publish_config cfg;
    its_publish_config_default(&cfg);
    cfg.port = srv.port;
    cfg.outbox_max_msgs = OUTBOX;
    cfg.backoff_min_ms = 5;
    cfg.backoff_max_ms = 20;
    its_publish_service_config sc;
    its_publish_service_config_default(&sc);
    sc.queue_max_msgs = QUEUE;
    sc.drain_timeout_ms = 3000;
    its_publish_service *svc = NULL;
    assert_int_equal(its_publish_service_create(&cfg, &sc, NULL, NULL, &svc), 0);
    its_redis_stop(&srv, SIGKILL);

    char json[128];
    uint64_t worst = 0;
    for (int i = 0; i < TOTAL; i++) {
        its_pub_meta m = {i % 2 ? "cam-y" : "cam-x", (uint64_t)i, its_wall_ns(), its_now_ns()};
        int n = snprintf(json, sizeof json, "{\"v\":1,\"seq\":%d}", i);
        its_pub_raw ev = {.kind = ITS_PUB_EVENT};
        uint64_t t0 = its_now_ns();
        assert_int_equal(its_publish_service_submit(svc, &m, &ev, json, (size_t)n), 0);
        uint64_t dt = its_now_ns() - t0;
        worst = dt > worst ? dt : worst;
    }
    /* Producers never wait for the network (no connect, no timeout on their path). */
    assert_true(worst < 50 * ITS_NS_PER_MS);
    its_sleep_ns(200 * ITS_NS_PER_MS); /* let the thread move the queue into the outbox */
    its_publish_stats st;
    uint64_t submitted, dropped_queue;
    size_t queued;
    its_publish_service_get_stats(svc, &st, &submitted, &dropped_queue, &queued);
    assert_int_equal(submitted, TOTAL);
    assert_int_equal(st.sent, 0);
    assert_int_equal(queued, 0);
    /* The producer outruns the thread, so most drops happen in the queue; what reached the
     * publisher waits in its outbox (at most its bound). */
    assert_true(st.outbox_msgs >= 1 && st.outbox_msgs <= OUTBOX);
    size_t waiting = st.outbox_msgs;
    /* Every message is accounted for: dropped from the queue, dropped from the outbox, or
     * waiting in the outbox. */
    assert_int_equal(dropped_queue + st.dropped_outbox + st.outbox_msgs, TOTAL);
    /* The same per camera (cam-x the even messages, cam-y the odd): the drops add up to the
     * totals, and what each camera lost plus what Redis gets of it later is what it sent. */
    its_publish_camera_stats cs[2], none;
    assert_int_equal(its_publish_service_camera_stats(svc, "cam-x", &cs[0]), 0);
    assert_int_equal(its_publish_service_camera_stats(svc, "cam-y", &cs[1]), 0);
    assert_int_equal(its_publish_service_camera_stats(svc, "cam-z", &none), ITS_ENOENT);
    assert_int_equal(cs[0].dropped[ITS_PUB_DROP_QUEUE_FULL] +
                         cs[1].dropped[ITS_PUB_DROP_QUEUE_FULL],
                     dropped_queue);
    assert_int_equal(cs[0].dropped[ITS_PUB_DROP_OUTBOX_FULL] +
                         cs[1].dropped[ITS_PUB_DROP_OUTBOX_FULL],
                     st.dropped_outbox);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(cs[k].sent, 0);
        assert_int_equal(cs[k].dropped_total, cs[k].dropped[ITS_PUB_DROP_QUEUE_FULL] +
                                                  cs[k].dropped[ITS_PUB_DROP_OUTBOX_FULL]);
    }

    assert_int_equal(its_redis_start(&srv), 0);
    its_publish_service_destroy(svc); /* drains the outbox into the restarted server */
    redisContext *c = client();
    redisReply *r = redisCommand(c, "XRANGE its:events:stream - +");
    assert_int_equal(r->elements, waiting); /* nothing that waited was lost */
    /* The newest survive, in order. */
    int prev = -1;
    uint64_t got[2] = {0, 0};
    for (size_t i = 0; i < r->elements; i++) {
        json_t *j = json_loads(r->element[i]->element[1]->element[1]->str, 0, NULL);
        int seq = (int)json_integer_value(json_object_get(j, "seq"));
        assert_true(seq > prev);
        prev = seq;
        got[seq % 2]++;
        json_decref(j);
    }
    assert_int_equal(prev, TOTAL - 1);
    assert_int_equal(cs[0].dropped_total + got[0], TOTAL / 2);
    assert_int_equal(cs[1].dropped_total + got[1], TOTAL / 2);
    freeReplyObject(r);
    r = redisCommand(c, "DEL its:events:stream");
    freeReplyObject(r);
    redisFree(c);
}

typedef struct paced {
    its_publish_service *svc;
    int n;
    int failures;
} paced;

static void *produce_paced(void *arg)
{
    paced *pc = arg;
    char json[96];
    for (int i = 0; i < pc->n; i++) {
        its_pub_meta m = {"cam-k", (uint64_t)i, its_wall_ns(), its_now_ns()};
        int len = snprintf(json, sizeof json, "{\"v\":1,\"seq\":%d}", i);
        its_pub_raw ev = {.kind = ITS_PUB_EVENT};
        pc->failures += its_publish_service_submit(pc->svc, &m, &ev, json, (size_t)len) != 0;
        its_sleep_ns(200 * ITS_NS_PER_US);
    }
    return NULL;
}

/*
 * Redis killed while messages stream through the service, and restarted. Redis keeps an
 * append-only file fsynced on every write, so whatever it acknowledged survives the kill; the
 * outbox is large enough for the outage. Then every message must be in the stream (at least
 * once: a write whose reply died with the connection is sent again), nothing dropped, and
 * the publisher must have reconnected.
 */
static void test_kill_mid_run(void **state)
{
    enum { N = 3000 };
    its_redis_fixture saved = srv;
    its_redis_fixture per;
    memset(&per, 0, sizeof per);
    per.persist = 1;
    assert_int_equal(its_redis_start(&per), 0);
    srv = per;
    its_publish_config cfg;
    its_publish_config_default(&cfg);
    cfg.port = per.port;
    cfg.outbox_max_msgs = 2 * N;
    cfg.backoff_min_ms = 5;
    cfg.backoff_max_ms = 50;
    cfg.command_timeout_ms = 1000;
    its_publish_service_config sc;
    its_publish_service_config_default(&sc);
    sc.queue_max_msgs = 2 * N;
    sc.drain_timeout_ms = 10000;
    its_publish_service *svc = NULL;
    assert_int_equal(its_publish_service_create(&cfg, &sc, NULL, NULL, &svc), 0);
    paced pc = {svc, N, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, produce_paced, &pc), 0);
    its_sleep_ns(150 * ITS_NS_PER_MS);
    its_redis_stop(&per, SIGKILL);
    its_sleep_ns(200 * ITS_NS_PER_MS);
    assert_int_equal(its_redis_start(&per), 0); /* same port and directory: reloads the AOF */
    srv = per;
    pthread_join(t, NULL);
    assert_int_equal(pc.failures, 0);
    its_publish_stats st;
    uint64_t submitted, dropped;
    size_t queued;
    uint64_t deadline = its_now_ns() + 10 * ITS_NS_PER_S;
    do {
        its_sleep_ns(10 * ITS_NS_PER_MS);
        its_publish_service_get_stats(svc, &st, &submitted, &dropped, &queued);
    } while ((queued || st.outbox_msgs) && its_now_ns() < deadline);
    assert_int_equal(submitted, N);
    assert_int_equal(queued, 0);
    assert_int_equal(st.outbox_msgs, 0);
    assert_int_equal(dropped, 0);
    assert_int_equal(st.dropped_outbox, 0);
    assert_int_equal(st.dropped_redis_error, 0);
    assert_int_equal(st.sent, N);
    assert_true(st.reconnects >= 1);
    its_publish_service_destroy(svc);

    redisContext *c = client();
    redisReply *r = redisCommand(c, "XRANGE its:events:stream - +");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    static unsigned char seen[N];
    memset(seen, 0, sizeof seen);
    size_t dups = 0;
    for (size_t i = 0; i < r->elements; i++) {
        json_t *j = json_loads(r->element[i]->element[1]->element[1]->str, 0, NULL);
        int seq = (int)json_integer_value(json_object_get(j, "seq"));
        json_decref(j);
        assert_true(seq >= 0 && seq < N);
        dups += seen[seq];
        seen[seq] = 1;
    }
    for (int i = 0; i < N; i++)
        if (!seen[i])
            fail_msg("message %d lost (stream has %zu entries)", i, r->elements);
    fprintf(stderr, "kill mid-run: %zu entries for %d messages (%zu resent), %llu reconnect(s)\n",
            r->elements, N, dups, (unsigned long long)st.reconnects);
    freeReplyObject(r);
    redisFree(c);
    its_redis_stop(&per, SIGTERM);
    its_redis_cleanup(&per);
    srv = saved;
}

static void test_invalid(void **state)
{
    its_publish_config cfg;
    its_publish_config_default(&cfg);
    cfg.port = srv.port;
    its_publish_service *svc = NULL;
    assert_int_equal(its_publish_service_create(&cfg, NULL, NULL, NULL, &svc), 0);
    its_pub_meta m = {"cam-1", 1, its_wall_ns(), its_now_ns()};
    its_pub_raw how = {.kind = ITS_PUB_ANALYTICS, .window = NULL};
    assert_int_equal(its_publish_service_submit(svc, &m, &how, "{}", 2), ITS_EINVAL);
    how.window = "1m";
    assert_int_equal(its_publish_service_submit(svc, &m, &how, "[]", 2), ITS_EINVAL);
    assert_int_equal(its_publish_service_submit(svc, &m, &how, "{\0}", 3), ITS_EINVAL);
    m.camera_id = "bad id";
    assert_int_equal(its_publish_service_submit(svc, &m, &how, "{}", 2), ITS_EINVAL);
    m.camera_id = "cam-1";
    how = (its_pub_raw){.kind = ITS_PUB_CACHE, .ttl_type = ITS_TTL_MODEL_BASELINES};
    assert_int_equal(its_publish_service_submit(svc, &m, &how, "{}", 2), ITS_EINVAL);
    how.name = "yolo11n";
    how.freshness = 0.5;
    assert_int_equal(its_publish_service_submit(svc, &m, &how, " {\"b\":1} ", 9), 0);
    its_publish_service_destroy(svc);
    redisContext *c = client();
    redisReply *r = redisCommand(c, "GET its:model:yolo11n:baseline");
    assert_string_equal(r->str, "{\"b\":1}");
    freeReplyObject(r);
    r = redisCommand(c, "TTL its:model:yolo11n:baseline");
    assert_true(r->integer >= 43199 && r->integer <= 43200); /* 86400 x 0.5 */
    freeReplyObject(r);
    redisFree(c);
}

int main(void)
{
    if (!its_redis_available()) {
        return its_test_skip("redis-server not found");
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_producers),
        cmocka_unit_test(test_redis_away),
        cmocka_unit_test(test_kill_mid_run),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
