/*
 * The publisher against a real redis-server on a free loopback port: every channel, key and
 * stream with its schema and TTL, a subscriber receiving what was published, AUTH and
 * SELECT, and Redis killed and restarted with the outbox draining.
 */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "its/core.h"
#include "its/metrics.h"
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

static redisContext *client(int db)
{
    redisContext *c = redisConnect("127.0.0.1", srv.port);
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    redisReply *r;
    if (srv.password[0]) {
        r = redisCommand(c, "AUTH %s", srv.password);
        freeReplyObject(r);
    }
    r = redisCommand(c, "SELECT %d", db);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    return c;
}

static its_publisher *make_pub(its_metrics *reg, its_cache *l1, int db, const char *password,
                               size_t outbox)
{
    its_publish_config cfg;
    its_publish_config_default(&cfg);
    cfg.port = srv.port;
    cfg.db = db;
    cfg.password = password;
    cfg.backoff_min_ms = 5;
    cfg.backoff_max_ms = 100;
    if (outbox)
        cfg.outbox_max_msgs = outbox;
    its_publisher *p = NULL;
    assert_int_equal(its_publisher_create(&cfg, reg, l1, &p), 0);
    return p;
}

/* GET key as parsed JSON plus its TTL. */
static json_t *get_json(redisContext *c, const char *key, long long *ttl)
{
    redisReply *r = redisCommand(c, "GET %s", key);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_STRING)
        fail_msg("key %s missing (reply type %d)", key, r->type);
    json_error_t err;
    json_t *j = json_loadb(r->str, r->len, 0, &err);
    if (!j)
        fail_msg("key %s: invalid JSON: %s", key, err.text);
    freeReplyObject(r);
    r = redisCommand(c, "TTL %s", key);
    *ttl = r->integer;
    freeReplyObject(r);
    return j;
}

static void check_envelope(json_t *j, const char *type, const char *cam, uint64_t frame,
                           uint64_t capture_wall_ns)
{
    assert_int_equal(json_integer_value(json_object_get(j, "v")), 2);
    assert_string_equal(json_string_value(json_object_get(j, "type")), type);
    if (cam)
        assert_string_equal(json_string_value(json_object_get(j, "camera")), cam);
    assert_int_equal(json_integer_value(json_object_get(j, "frame")), frame);
    json_int_t cap = json_integer_value(json_object_get(j, "ts_us"));
    json_int_t pub = json_integer_value(json_object_get(j, "publish_ts_us"));
    assert_int_equal(cap, capture_wall_ns / 1000);
    assert_true(pub >= cap);
    assert_true((uint64_t)pub <= its_wall_ns() / 1000);
}

/* Reads one pub/sub message: returns the payload parsed, and the channel in *channel. */
static json_t *next_message(redisContext *sub, char *channel, size_t len)
{
    redisReply *r = NULL;
    if (redisGetReply(sub, (void **)&r) != REDIS_OK)
        fail_msg("subscriber: %s", sub->errstr);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    assert_string_equal(r->element[0]->str, "message");
    snprintf(channel, len, "%s", r->element[1]->str);
    json_t *j = json_loadb(r->element[2]->str, r->element[2]->len, 0, NULL);
    assert_non_null(j);
    freeReplyObject(r);
    return j;
}

static double metric(its_metrics *reg, its_metric_id id, const char *label)
{
    its_metric_family *f = its_metrics_std(reg, id);
    const char *v[1] = {label};
    return its_metric_value(its_metrics_series(f, label ? v : NULL));
}

static void test_schema_channels_keys_ttls(void **state)
{
    its_metrics *reg = its_metrics_create();
    assert_int_equal(its_metrics_std_register(reg), 0);
    its_cache *l1 = NULL;
    assert_int_equal(its_cache_create(NULL, reg, &l1), 0);
    its_publisher *p = make_pub(reg, l1, 0, NULL, 0);

    redisContext *sub = client(0);
    redisReply *r = redisCommand(sub, "SUBSCRIBE its:cam:cam-1:detections its:cam:cam-1:analytics "
                                      "its:events");
    freeReplyObject(r);
    for (int i = 0; i < 2; i++) { /* the other two subscribe confirmations */
        assert_int_equal(redisGetReply(sub, (void **)&r), REDIS_OK);
        freeReplyObject(r);
    }
    struct timeval tv = {5, 0};
    redisSetTimeout(sub, tv);

    uint64_t wall = its_wall_ns(), mono = its_now_ns();
    its_pub_meta meta = {"cam-1", 42, wall, mono};
    /* a 1000 x 800 frame: the first box is [0.1, 0.2, 0.4, 0.45] of it as x1, y1, x2, y2 */
    static const char *const labels[] = {"person \"quoted\"", NULL, "car"};
    its_det dets[2] = {
        {100, 160, 400, 360, 0.91f, 2, 7},
        {500, 400, 550, 480, 0.55f, 0, 0},
    };
    assert_int_equal(its_publish_detections(p, &meta, dets, 2, 1000, 800, labels, 3), 0);
    assert_int_equal(its_publish_analytics(p, &meta, "1m", "{\"flow_vph\":1200,\"count\":20}"), 0);
    assert_int_equal(its_publish_event(p, &meta, "line_crossing",
                                       "{\"line\":\"north\",\"class\":\"car\",\"track\":7}"),
                     0);
    assert_int_equal(
        its_publish_cache(p, &meta, ITS_TTL_QUALITY_SCORES, NULL, 0.5, "{\"score\":0.8}"), 0);
    assert_int_equal(
        its_publish_cache(p, &meta, ITS_TTL_PREDICTIONS_SHORT, NULL, 1.0, "{\"flow_vph\":1300}"),
        0);
    assert_int_equal(
        its_publish_cache(p, &meta, ITS_TTL_PREDICTIONS_LONG, NULL, 0.25, "{\"flow_vph\":900}"), 0);
    its_pub_meta model = {NULL, 0, wall, mono};
    assert_int_equal(its_publish_cache(p, &model, ITS_TTL_MODEL_BASELINES, "yolo11n", 1.0,
                                       "{\"conf_mean\":0.6}"),
                     0);
    /* Data that was 150 s old when published keeps half of the 300 s TTL. */
    its_pub_meta old = {"cam-2", 7, wall - 150 * ITS_NS_PER_S, mono};
    assert_int_equal(its_publish_detections(p, &old, NULL, 0, 0, 0, NULL, 0), 0);
    assert_int_equal(its_publish_flush(p), 8);

    /* The subscriber sees the three pub/sub messages, in order. */
    char ch[128];
    json_t *j = next_message(sub, ch, sizeof ch);
    assert_string_equal(ch, "its:cam:cam-1:detections");
    check_envelope(j, "frame", "cam-1", 42, wall);
    json_t *d = json_object_get(j, "detections");
    assert_int_equal(json_array_size(d), 2);
    json_t *d0 = json_array_get(d, 0), *d1 = json_array_get(d, 1);
    assert_int_equal(json_integer_value(json_object_get(j, "width")), 1000);
    assert_int_equal(json_integer_value(json_object_get(j, "height")), 800);
    assert_int_equal(json_integer_value(json_object_get(d0, "class_id")), 2);
    assert_string_equal(json_string_value(json_object_get(d0, "class")), "car");
    assert_float_equal(json_number_value(json_object_get(d0, "score")), 0.91, 1e-5);
    const double want[4] = {0.1, 0.2, 0.4, 0.45}; /* corners of 100,160 - 400,360 in 1000 x 800 */
    for (size_t k = 0; k < 4; k++)
        assert_float_equal(json_number_value(json_array_get(json_object_get(d0, "box"), k)),
                           want[k], 1e-5);
    assert_int_equal(json_integer_value(json_object_get(d0, "track_id")), 7);
    assert_string_equal(json_string_value(json_object_get(d1, "class")), "person \"quoted\"");
    assert_true(json_is_null(json_object_get(d1, "track_id")));
    json_decref(j);

    j = next_message(sub, ch, sizeof ch);
    assert_string_equal(ch, "its:cam:cam-1:analytics");
    check_envelope(j, "window", "cam-1", 42, wall);
    assert_string_equal(json_string_value(json_object_get(j, "window")), "1m");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "data"), "flow_vph")),
                     1200);
    json_decref(j);

    j = next_message(sub, ch, sizeof ch);
    assert_string_equal(ch, "its:events");
    check_envelope(j, "event", "cam-1", 42, wall);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "line_crossing");
    char *event_text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    redisFree(sub);

    /* Keys and TTLs. */
    redisContext *c = client(0);
    long long ttl;
    j = get_json(c, "its:cam:cam-1:latest", &ttl);
    check_envelope(j, "frame", "cam-1", 42, wall);
    assert_true(ttl >= 298 && ttl <= 300);
    json_decref(j);
    j = get_json(c, "its:cam:cam-2:latest", &ttl);
    check_envelope(j, "frame", "cam-2", 7, wall - 150 * ITS_NS_PER_S);
    assert_int_equal(json_array_size(json_object_get(j, "detections")), 0);
    assert_true(ttl >= 147 && ttl <= 150);
    json_decref(j);
    j = get_json(c, "its:cam:cam-1:analytics:1m", &ttl);
    check_envelope(j, "window", "cam-1", 42, wall);
    assert_true(ttl >= 298 && ttl <= 300);
    json_decref(j);
    j = get_json(c, "its:cam:cam-1:quality", &ttl);
    check_envelope(j, "quality", "cam-1", 42, wall);
    assert_float_equal(json_number_value(json_object_get(json_object_get(j, "data"), "score")), 0.8,
                       1e-9);
    assert_true(ttl >= 149 && ttl <= 150); /* 300 x 0.5 */
    json_decref(j);
    j = get_json(c, "its:cam:cam-1:predictions:short", &ttl);
    check_envelope(j, "predictions_short", "cam-1", 42, wall);
    assert_true(ttl >= 1799 && ttl <= 1800); /* 1800 x 1.0 */
    json_decref(j);
    j = get_json(c, "its:cam:cam-1:predictions:long", &ttl);
    check_envelope(j, "predictions_long", "cam-1", 42, wall);
    assert_true(ttl >= 1799 && ttl <= 1800); /* 7200 x 0.25 */
    json_decref(j);
    j = get_json(c, "its:model:yolo11n:baseline", &ttl);
    check_envelope(j, "model_baseline", NULL, 0, wall);
    assert_null(json_object_get(j, "camera"));
    assert_string_equal(json_string_value(json_object_get(j, "name")), "yolo11n");
    assert_true(ttl >= 86399 && ttl <= 86400);
    json_decref(j);

    /* The durable stream holds the same event message. */
    r = redisCommand(c, "XRANGE its:events:stream - +");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 1);
    redisReply *fields = r->element[0]->element[1];
    assert_int_equal(fields->elements, 2);
    assert_string_equal(fields->element[0]->str, "json");
    j = json_loads(fields->element[1]->str, 0, NULL);
    char *stream_text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(stream_text, event_text);
    free(stream_text);
    free(event_text);
    json_decref(j);
    freeReplyObject(r);

    /* L1 got the cache writes; the API reads it first. */
    char *v = NULL;
    assert_int_equal(its_cache_get_l1(l1, "its:cam:cam-1:analytics:1m", &v, NULL), 0);
    j = json_loads(v, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "window")), "1m");
    json_decref(j);
    its_free(v);

    /* Counters and latency. */
    assert_float_equal(metric(reg, ITS_M_PUB_MESSAGES, "detections"), 2, 0);
    assert_float_equal(metric(reg, ITS_M_PUB_MESSAGES, "analytics"), 1, 0);
    assert_float_equal(metric(reg, ITS_M_PUB_MESSAGES, "event"), 1, 0);
    assert_float_equal(metric(reg, ITS_M_PUB_MESSAGES, "cache"), 4, 0);
    assert_float_equal(metric(reg, ITS_M_REDIS_UP, NULL), 1, 0);
    assert_int_equal(
        its_metric_count(its_metrics_series(its_metrics_std(reg, ITS_M_LATENCY), NULL)), 2);
    its_publish_stats st;
    its_publisher_get_stats(p, &st);
    assert_int_equal(st.sent, 8);
    assert_int_equal(st.enqueued, 8);
    assert_int_equal(st.outbox_msgs, 0);
    assert_int_equal(st.reconnects, 0);

    redisFree(c);
    its_publisher_destroy(p);
    its_cache_destroy(l1);
    its_metrics_destroy(reg);
}

/* ARCHITECTURE §2: nothing on the hot path allocates after start-up. Once the outbox slots,
 * scratch buffers and L1 entries have their size, publishing and flushing frame after frame
 * makes no its_malloc call (hiredis' own reply objects aside). */
static void test_steady_state_does_not_allocate(void **state)
{
    its_metrics *reg = its_metrics_create();
    assert_int_equal(its_metrics_std_register(reg), 0);
    its_cache *l1 = NULL;
    assert_int_equal(its_cache_create(NULL, reg, &l1), 0);
    its_publisher *p = make_pub(reg, l1, 0, NULL, 64);
    static const char *const cams[] = {"cam-a", "cam-b", "cam-c", "cam-d"};
    static const char *const labels[] = {"person", NULL, "car", NULL, NULL, NULL, NULL, "truck"};
    its_det dets[3] = {
        {128, 72, 384, 216, 0.9f, 2, 1},
        {640, 360, 1024, 576, 0.8f, 7, 2},
        {256, 432, 320, 504, 0.7f, 0, 3},
    };
    uint64_t before = 0;
    for (int round = 0; round < 300; round++) {
        if (round == 100)
            before = its_alloc_count();
        for (int c = 0; c < 4; c++) {
            its_pub_meta m = {cams[c], (uint64_t)(1000 + round), its_wall_ns(), its_now_ns()};
            assert_int_equal(its_publish_detections(p, &m, dets, 3, 1280, 720, labels, 8), 0);
            if (round % 10 == 0) {
                assert_int_equal(its_publish_analytics(p, &m, "1m", "{\"flow_vph\":1200}"), 0);
                assert_int_equal(its_publish_event(p, &m, "line_crossing", "{\"line\":\"n\"}"), 0);
            }
        }
        assert_true(its_publish_flush(p) >= 4);
    }
    assert_int_equal(its_alloc_count(), before);
    its_publish_stats st;
    its_publisher_get_stats(p, &st);
    assert_int_equal(st.sent, st.enqueued);
    redisContext *c = client(0);
    redisReply *r = redisCommand(c, "DEL its:events:stream");
    freeReplyObject(r);
    redisFree(c);
    its_publisher_destroy(p);
    its_cache_destroy(l1);
    its_metrics_destroy(reg);
}

static void test_invalid_input(void **state)
{
    its_metrics *reg = its_metrics_create();
    assert_int_equal(its_metrics_std_register(reg), 0);
    its_publisher *p = make_pub(reg, NULL, 0, NULL, 0);
    its_pub_meta bad = {"cam 1", 1, its_wall_ns(), its_now_ns()};
    its_pub_meta ok = {"cam-1", 1, its_wall_ns(), its_now_ns()};
    assert_int_equal(its_publish_detections(p, &bad, NULL, 0, 1280, 720, NULL, 0), ITS_EINVAL);
    bad.camera_id = "cam:1:latest";
    assert_int_equal(its_publish_detections(p, &bad, NULL, 0, 1280, 720, NULL, 0), ITS_EINVAL);
    assert_int_equal(its_publish_detections(p, &ok, NULL, 1, 1280, 720, NULL, 0), ITS_EINVAL);
    assert_int_equal(its_publish_analytics(p, &ok, "1 m", "{}"), ITS_EINVAL);
    assert_int_equal(its_publish_analytics(p, &ok, "1m", "[1,2]"), ITS_EINVAL);
    assert_int_equal(its_publish_event(p, &ok, "x", "not json"), ITS_EINVAL);
    assert_int_equal(its_publish_cache(p, &ok, ITS_TTL_LATEST, NULL, 1, "{}"), ITS_EINVAL);
    assert_int_equal(its_publish_cache(p, &ok, ITS_TTL_MODEL_BASELINES, NULL, 1, "{}"), ITS_EINVAL);
    its_publish_stats st;
    its_publisher_get_stats(p, &st);
    assert_int_equal(st.enqueued, 0);
    its_metric *inval =
        its_metrics_series_v(its_metrics_std(reg, ITS_M_ERRORS), "publish", "ITS_EINVAL");
    assert_float_equal(its_metric_value(inval), 8, 0); /* every refusal counted */
    /* Out of memory while formatting: refused and counted, nothing half-queued. */
    its_alloc_fail_after(ITS_MOD_PUBLISH, 0, -1);
    its_det many[64];
    memset(many, 0, sizeof many);
    int rc = its_publish_detections(p, &ok, many, 64, 1280, 720, NULL, 0);
    its_alloc_fail_reset();
    assert_int_equal(rc, ITS_ENOMEM);
    its_publisher_get_stats(p, &st);
    assert_int_equal(st.enqueued, 0);
    assert_int_equal(st.outbox_msgs, 0);
    assert_float_equal(its_metric_value(its_metrics_series_v(its_metrics_std(reg, ITS_M_ERRORS),
                                                             "publish", "ITS_ENOMEM")),
                       1, 0);
    /* A payload Redis accepts but whose key holds the wrong type is rejected by Redis,
     * counted and not retried. */
    redisContext *c = client(0);
    redisReply *r = redisCommand(c, "SET its:events:stream notastream");
    freeReplyObject(r);
    assert_int_equal(its_publish_event(p, &ok, "incident", "{}"), 0);
    assert_int_equal(its_publish_flush(p), 0);
    its_publisher_get_stats(p, &st);
    assert_int_equal(st.dropped_redis_error, 1);
    assert_int_equal(st.outbox_msgs, 0);
    r = redisCommand(c, "DEL its:events:stream");
    freeReplyObject(r);
    redisFree(c);
    its_publisher_destroy(p);
    its_metrics_destroy(reg);

    its_publish_config cfg;
    its_publish_config_default(&cfg);
    cfg.outbox_max_msgs = 0;
    assert_int_equal(its_publisher_create(&cfg, NULL, NULL, &p), ITS_EINVAL);
    its_publish_config_default(&cfg);
    its_alloc_fail_after(ITS_MOD_PUBLISH, 0, -1);
    assert_int_equal(its_publisher_create(&cfg, NULL, NULL, &p), ITS_ENOMEM);
    its_alloc_fail_reset();
}

static void test_stream_maxlen(void **state)
{
    its_publish_config cfg;
    its_publish_config_default(&cfg);
    cfg.port = srv.port;
    cfg.stream_maxlen = 100;
    its_publisher *p = NULL;
    assert_int_equal(its_publisher_create(&cfg, NULL, NULL, &p), 0);
    its_pub_meta m = {"cam-1", 0, its_wall_ns(), its_now_ns()};
    for (int i = 0; i < 1000; i++) {
        m.frame = (uint64_t)i;
        assert_int_equal(its_publish_event(p, &m, "tick", "{}"), 0);
    }
    assert_int_equal(its_publish_flush(p), 1000);
    redisContext *c = client(0);
    redisReply *r = redisCommand(c, "XLEN its:events:stream");
    /* Approximate trimming keeps at least MAXLEN and removes whole stream nodes. */
    assert_true(r->integer >= 100 && r->integer < 300);
    freeReplyObject(r);
    r = redisCommand(c, "DEL its:events:stream");
    freeReplyObject(r);
    redisFree(c);
    its_publisher_destroy(p);
}

static void test_auth_and_db(void **state)
{
    its_redis_fixture saved = srv;
    its_redis_fixture sec;
    memset(&sec, 0, sizeof sec);
    snprintf(sec.password, sizeof sec.password, "s3cret-pw");
    assert_int_equal(its_redis_start(&sec), 0);
    srv = sec;
    its_metrics *reg = its_metrics_create();
    assert_int_equal(its_metrics_std_register(reg), 0);
    its_publisher *p = make_pub(reg, NULL, 3, "wrong", 0);
    its_pub_meta m = {"cam-9", 5, its_wall_ns(), its_now_ns()};
    assert_int_equal(its_publish_detections(p, &m, NULL, 0, 1280, 720, NULL, 0), 0);
    assert_int_equal(its_publish_flush(p), ITS_EAUTH);
    its_publish_stats st;
    its_publisher_get_stats(p, &st);
    assert_int_equal(st.connect_failures, 1);
    assert_int_equal(st.outbox_msgs, 1);
    assert_float_equal(metric(reg, ITS_M_PUB_CONNECT_FAIL, NULL), 1, 0);
    /* Within the backoff the publisher does not hammer Redis. */
    assert_int_equal(its_publish_flush(p), ITS_EAGAIN);
    its_publisher_destroy(p);

    p = make_pub(reg, NULL, 3, "s3cret-pw", 0);
    assert_int_equal(its_publish_detections(p, &m, NULL, 0, 1280, 720, NULL, 0), 0);
    assert_int_equal(its_publish_flush(p), 1);
    redisContext *c = client(3);
    long long ttl;
    json_t *j = get_json(c, "its:cam:cam-9:latest", &ttl);
    check_envelope(j, "frame", "cam-9", 5, m.capture_wall_ns);
    json_decref(j);
    redisFree(c);
    c = client(0);
    redisReply *r = redisCommand(c, "EXISTS its:cam:cam-9:latest");
    assert_int_equal(r->integer, 0); /* written to db 3, not 0 */
    freeReplyObject(r);
    redisFree(c);

    /* The read-through cache authenticates the same way. */
    its_cache_config cc;
    its_cache_config_default(&cc);
    cc.host = "127.0.0.1";
    cc.port = sec.port;
    cc.password = "s3cret-pw";
    cc.db = 3;
    its_cache *cache = NULL;
    assert_int_equal(its_cache_create(&cc, reg, &cache), 0);
    char *v = NULL;
    assert_int_equal(its_cache_get(cache, "its:cam:cam-9:latest", &v, NULL), 0);
    assert_non_null(strstr(v, "\"camera\":\"cam-9\""));
    its_free(v);
    assert_int_equal(its_cache_get(cache, "its:cam:cam-9:latest", &v, NULL), 0);
    its_free(v);
    assert_int_equal(its_cache_get(cache, "its:cam:nope:latest", &v, NULL), ITS_ENOENT);
    its_cache_stats cs;
    its_cache_get_stats(cache, &cs);
    assert_int_equal(cs.hits_redis, 1);
    assert_int_equal(cs.hits_l1, 1);
    assert_int_equal(cs.misses, 1);
    /* Redis gone: an L1 hit still works, a miss reports the network. */
    its_redis_stop(&sec, SIGKILL);
    assert_int_equal(its_cache_get(cache, "its:cam:cam-9:latest", &v, NULL), 0);
    its_free(v);
    assert_int_equal(its_cache_get(cache, "its:cam:other:latest", &v, NULL), ITS_ENET);
    its_cache_destroy(cache);

    its_publisher_destroy(p);
    its_metrics_destroy(reg);
    its_redis_cleanup(&sec);
    srv = saved;
}

/* A server that wants a password the publisher does not have (NOAUTH) is a failed connect
 * with exponential backoff and one log line for the whole outage, not a connection made and
 * lost again at once (each counted as a reconnect and logged). */
static void test_noauth_backoff(void **state)
{
    its_redis_fixture saved = srv;
    its_redis_fixture sec;
    memset(&sec, 0, sizeof sec);
    snprintf(sec.password, sizeof sec.password, "needs-a-password");
    assert_int_equal(its_redis_start(&sec), 0);
    srv = sec;
    char logpath[] = "/tmp/its-noauth-log-XXXXXX";
    int logfd = mkstemp(logpath);
    assert_true(logfd >= 0);
    its_log_set_fd(logfd);
    its_metrics *reg = its_metrics_create();
    assert_int_equal(its_metrics_std_register(reg), 0);
    its_publisher *p = make_pub(reg, NULL, 0, NULL, 0); /* backoff 5 ms to 100 ms */
    its_pub_meta m = {"cam-1", 1, its_wall_ns(), its_now_ns()};
    assert_int_equal(its_publish_detections(p, &m, NULL, 0, 1280, 720, NULL, 0), 0);
    uint64_t end = its_now_ns() + 2 * ITS_NS_PER_S;
    while (its_now_ns() < end) {
        assert_true(its_publish_flush(p) < 0); /* never delivered */
        its_sleep_ns(ITS_NS_PER_MS);
    }
    its_publish_stats st;
    its_publisher_get_stats(p, &st);
    its_log_set_fd(2);
    /* 5, 10, 20, 40, 80 ms, then 100 ms with 50-100% jitter: about 30 tries in 2 s */
    print_message("NOAUTH for 2 s: %llu failed connects, %llu reconnects\n",
                  (unsigned long long)st.connect_failures, (unsigned long long)st.reconnects);
    assert_int_equal(st.reconnects, 0);
    assert_true(st.connect_failures >= 5 && st.connect_failures <= 45);
    assert_float_equal(metric(reg, ITS_M_PUB_CONNECT_FAIL, NULL), (double)st.connect_failures, 0);
    assert_int_equal(st.outbox_msgs, 1);
    char text[8192];
    ssize_t n = pread(logfd, text, sizeof text - 1, 0);
    assert_true(n > 0);
    text[n] = 0;
    int lines = 0;
    for (const char *q = text; (q = strstr(q, "NOAUTH")); q++)
        lines++;
    assert_int_equal(lines, 1);
    close(logfd);
    unlink(logpath);
    its_publisher_destroy(p);
    its_metrics_destroy(reg);
    its_redis_cleanup(&sec);
    srv = saved;
}

/* Redis killed mid-run and restarted on the same port. */
static void test_outage_and_recovery(void **state)
{
    enum { BOUND = 50, BEFORE = 10, DURING = 80 };
    its_metrics *reg = its_metrics_create();
    assert_int_equal(its_metrics_std_register(reg), 0);
    its_publisher *p = make_pub(reg, NULL, 0, NULL, BOUND);
    its_pub_meta m = {"cam-1", 0, its_wall_ns(), its_now_ns()};
    char payload[64];
    for (int i = 0; i < BEFORE; i++) {
        m.frame = (uint64_t)i;
        snprintf(payload, sizeof payload, "{\"seq\":%d}", i);
        assert_int_equal(its_publish_event(p, &m, "seq", payload), 0);
    }
    assert_int_equal(its_publish_flush(p), BEFORE);

    its_redis_stop(&srv, SIGKILL);
    int failed = 0;
    for (int i = 0; i < DURING; i++) {
        m.frame = (uint64_t)(BEFORE + i);
        snprintf(payload, sizeof payload, "{\"seq\":%d}", BEFORE + i);
        assert_int_equal(its_publish_event(p, &m, "seq", payload), 0);
        int rc = its_publish_flush(p);
        assert_true(rc == ITS_ENET || rc == ITS_EAGAIN);
        failed += rc == ITS_ENET;
    }
    assert_true(failed >= 1);
    its_publish_stats st;
    its_publisher_get_stats(p, &st);
    assert_int_equal(st.outbox_msgs, BOUND);
    assert_int_equal(st.dropped_outbox, DURING - BOUND);
    assert_int_equal(st.connected, 0);
    assert_float_equal(metric(reg, ITS_M_PUB_DROPPED, "outbox_full"), DURING - BOUND, 0);
    assert_float_equal(metric(reg, ITS_M_PUB_OUTBOX, NULL), BOUND, 0);
    assert_float_equal(metric(reg, ITS_M_REDIS_UP, NULL), 0, 0);

    assert_int_equal(its_redis_start(&srv), 0); /* same port, empty (no persistence) */
    assert_int_equal(its_publish_drain(p, 5000), BOUND);
    its_publisher_get_stats(p, &st);
    assert_int_equal(st.outbox_msgs, 0);
    assert_int_equal(st.reconnects, 1);
    assert_int_equal(st.sent, BEFORE + BOUND);
    assert_int_equal(st.enqueued, BEFORE + DURING);
    assert_int_equal(st.sent + st.dropped_outbox, st.enqueued);
    assert_float_equal(metric(reg, ITS_M_PUB_RECONNECTS, NULL), 1, 0);
    assert_float_equal(metric(reg, ITS_M_REDIS_UP, NULL), 1, 0);

    /* Exactly the newest BOUND messages arrived, in order: the oldest were the ones dropped. */
    redisContext *c = client(0);
    redisReply *r = redisCommand(c, "XRANGE its:events:stream - +");
    assert_int_equal(r->elements, BOUND);
    for (size_t i = 0; i < r->elements; i++) {
        json_t *j = json_loads(r->element[i]->element[1]->element[1]->str, 0, NULL);
        int seq = (int)json_integer_value(json_object_get(json_object_get(j, "data"), "seq"));
        assert_int_equal(seq, BEFORE + DURING - BOUND + (int)i);
        json_decref(j);
    }
    freeReplyObject(r);
    r = redisCommand(c, "DEL its:events:stream");
    freeReplyObject(r);
    redisFree(c);

    /* And it keeps working afterwards. */
    assert_int_equal(its_publish_event(p, &m, "seq", "{\"seq\":-1}"), 0);
    assert_int_equal(its_publish_flush(p), 1);
    its_publisher_destroy(p);
    its_metrics_destroy(reg);
}

/* A Redis that stops answering (SIGSTOP) must not hang the publisher: the flush gives up
 * after the command timeout, keeps the message, and delivers it once Redis answers again. */
static void test_command_timeout(void **state)
{
    its_publish_config cfg;
    its_publish_config_default(&cfg);
    cfg.port = srv.port;
    cfg.command_timeout_ms = 100;
    cfg.backoff_min_ms = 5;
    cfg.backoff_max_ms = 20;
    its_publisher *p = NULL;
    assert_int_equal(its_publisher_create(&cfg, NULL, NULL, &p), 0);
    its_pub_meta m = {"cam-t", 1, its_wall_ns(), its_now_ns()};
    assert_int_equal(its_publish_event(p, &m, "tick", "{\"n\":1}"), 0);
    assert_int_equal(its_publish_flush(p), 1);

    kill(srv.pid, SIGSTOP);
    m.frame = 2;
    assert_int_equal(its_publish_event(p, &m, "tick", "{\"n\":2}"), 0);
    uint64_t t0 = its_now_ns();
    assert_int_equal(its_publish_flush(p), ITS_ENET);
    uint64_t took = its_now_ns() - t0;
    assert_true(took >= 90 * ITS_NS_PER_MS && took < 1000 * ITS_NS_PER_MS);
    its_publish_stats st;
    its_publisher_get_stats(p, &st);
    assert_int_equal(st.outbox_msgs, 1);
    kill(srv.pid, SIGCONT);

    assert_int_equal(its_publish_drain(p, 3000), 1);
    /* At least once: the stalled copy may have been executed too. */
    redisContext *c = client(0);
    redisReply *r = redisCommand(c, "XRANGE its:events:stream - +");
    int twos = 0;
    for (size_t i = 0; i < r->elements; i++)
        twos += strstr(r->element[i]->element[1]->element[1]->str, "\"n\":2") != NULL;
    assert_true(twos >= 1 && twos <= 2);
    freeReplyObject(r);
    r = redisCommand(c, "DEL its:events:stream");
    freeReplyObject(r);
    redisFree(c);
    its_publisher_destroy(p);
}

/* A server that refuses writes for a while (here: turned into a read-only replica, as in a
 * failover) keeps the messages queued instead of dropping them as rejected. */
static void test_transient_refusal(void **state)
{
    its_publish_config cfg;
    its_publish_config_default(&cfg);
    cfg.port = srv.port;
    cfg.backoff_min_ms = 5;
    cfg.backoff_max_ms = 20;
    its_publisher *p = NULL;
    assert_int_equal(its_publisher_create(&cfg, NULL, NULL, &p), 0);
    its_pub_meta m = {"cam-r", 1, its_wall_ns(), its_now_ns()};
    assert_int_equal(its_publish_detections(p, &m, NULL, 0, 1280, 720, NULL, 0), 0);
    assert_int_equal(its_publish_flush(p), 1);
    redisContext *c = client(0);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "REPLICAOF 127.0.0.1 %d", its_redis_free_port());
    redisReply *r = redisCommand(c, cmd);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    m.frame = 2;
    assert_int_equal(its_publish_detections(p, &m, NULL, 0, 1280, 720, NULL, 0), 0);
    assert_int_equal(its_publish_flush(p), ITS_EAGAIN); /* SET: READONLY */
    its_publish_stats st;
    its_publisher_get_stats(p, &st);
    assert_int_equal(st.outbox_msgs, 1);
    assert_int_equal(st.dropped_redis_error, 0);
    r = redisCommand(c, "REPLICAOF NO ONE");
    freeReplyObject(r);
    assert_int_equal(its_publish_drain(p, 3000), 1);
    long long ttl;
    json_t *j = get_json(c, "its:cam:cam-r:latest", &ttl);
    assert_int_equal(json_integer_value(json_object_get(j, "frame")), 2);
    json_decref(j);
    redisFree(c);
    its_publisher_destroy(p);
}

static void test_no_server(void **state)
{
    its_publish_config cfg;
    its_publish_config_default(&cfg);
    cfg.port = its_redis_free_port();
    cfg.backoff_min_ms = 20;
    cfg.backoff_max_ms = 40;
    its_publisher *p = NULL;
    assert_int_equal(its_publisher_create(&cfg, NULL, NULL, &p), 0);
    its_pub_meta m = {"cam-1", 0, its_wall_ns(), its_now_ns()};
    assert_int_equal(its_publish_detections(p, &m, NULL, 0, 1280, 720, NULL, 0), 0);
    assert_int_equal(its_publish_flush(p), ITS_ENET);
    assert_int_equal(its_publish_flush(p), ITS_EAGAIN);
    assert_int_equal(its_publish_drain(p, 150), ITS_ENET);
    its_publish_stats st;
    its_publisher_get_stats(p, &st);
    assert_true(st.connect_failures >= 2);
    assert_int_equal(st.outbox_msgs, 1);
    its_publisher_destroy(p);
}

/* redis.wait_replicas: with no replica attached, WAIT says 0 and nothing leaves the outbox
 * (a failover could lose it); once a replica attaches, everything goes out, in order, and the
 * replica has it. */
static void test_wait_replicas(void **state)
{
    (void)state;
    its_publish_config cfg;
    its_publish_config_default(&cfg);
    cfg.port = srv.port;
    cfg.backoff_min_ms = 5;
    cfg.backoff_max_ms = 50;
    cfg.wait_replicas = 1;
    its_publisher *p = NULL;
    assert_int_equal(its_publisher_create(&cfg, NULL, NULL, &p), 0);
    its_det d = {.x1 = 10, .y1 = 10, .x2 = 20, .y2 = 20, .score = 0.9f, .class_id = 2};
    for (int i = 0; i < 10; i++) {
        its_pub_meta m = {.camera_id = "cam-wait", .frame = (uint64_t)i, .capture_wall_ns = 1};
        assert_int_equal(its_publish_detections(p, &m, &d, 1, 100, 100, NULL, 0), 0);
    }
    assert_int_equal(its_publish_drain(p, 400), ITS_ETIMEDOUT);
    its_publish_stats st;
    its_publisher_get_stats(p, &st);
    assert_int_equal(st.sent, 0);
    assert_int_equal(st.outbox_msgs, 10);

    its_redis_fixture rep;
    memset(&rep, 0, sizeof rep);
    assert_int_equal(its_redis_start(&rep), 0);
    redisContext *rc = redisConnect("127.0.0.1", rep.port);
    assert_non_null(rc);
    redisReply *r = redisCommand(rc, "REPLICAOF 127.0.0.1 %d", srv.port);
    assert_non_null(r);
    freeReplyObject(r);
    assert_int_equal(its_publish_drain(p, 10000), 10);
    its_publisher_get_stats(p, &st);
    assert_int_equal(st.sent, 10);
    assert_int_equal(st.outbox_msgs, 0);
    r = redisCommand(rc, "GET its:cam:cam-wait:latest"); /* on the replica */
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_non_null(strstr(r->str, "\"frame\":9"));
    freeReplyObject(r);
    redisFree(rc);
    its_publisher_destroy(p);
    its_redis_stop(&rep, SIGTERM);
    its_redis_cleanup(&rep);
}

int main(void)
{
    if (!its_redis_available()) {
        return its_test_skip("redis-server not found");
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_channels_keys_ttls),
        cmocka_unit_test(test_steady_state_does_not_allocate),
        cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_stream_maxlen),
        cmocka_unit_test(test_auth_and_db),
        cmocka_unit_test(test_noauth_backoff),
        cmocka_unit_test(test_outage_and_recovery),
        cmocka_unit_test(test_command_timeout),
        cmocka_unit_test(test_transient_refusal),
        cmocka_unit_test(test_no_server),
        cmocka_unit_test(test_wait_replicas),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
