/* itsd's pipeline publishing to a real redis-server (started on a free loopback port): every
 * processed frame reaches Redis, latest-frame keys hold itsd's message unchanged, and a
 * subscriber on a camera's channel receives its frames in order. A Redis outage longer than
 * the outbox: the loss is counted exactly (in the registry, by reason), logged once with the
 * count, and what waited is replayed when Redis returns. */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "its/app.h"
#include "its/app_redis.h"
#include "its/core.h"
#include "redis_fixture.h"
#include "testutil.h"

static void test_pipeline_to_redis(void **state)
{
    char media[512];
    if (!its_redis_available() || !its_test_shared_path("media", media, sizeof media))
        ITS_TEST_SKIP("redis-server or shared media missing");
    its_redis_fixture r = {0};
    assert_int_equal(its_redis_start(&r), 0);
    redisContext *sub = redisConnect("127.0.0.1", r.port);
    assert_true(sub && !sub->err);
    redisReply *rep = redisCommand(sub, "SUBSCRIBE its:cam:cam-a:detections");
    freeReplyObject(rep);

    char yaml[2048];
    int n = snprintf(yaml, sizeof yaml,
                     "engine:\n  backend: noop\nsink:\n  type: null\n"
                     "redis:\n  host: 127.0.0.1\n  port: %d\n"
                     "cameras:\n"
                     "  - id: cam-a\n    url: %s/traffic_bridge_720p.mp4\n    kind: replay\n"
                     "    fps: 25\n    replay_frames: 10\n    loop: true\n"
                     "  - id: cam-b\n    url: %s/traffic_bridge_720p.mp4\n    kind: replay\n"
                     "    fps: 25\n    replay_frames: 10\n    loop: true\n",
                     r.port, media, media);
    its_app_config c;
    char err[512];
    if (its_app_config_load_string(&c, yaml, (size_t)n, "redis.yaml", err, sizeof err) < 0)
        fail_msg("%s", err);
    its_pipeline_t *p;
    if (its_app_build_pipeline(&c, &p, err, sizeof err) < 0)
        fail_msg("%s", err);
    its_pipeline_start(p);
    its_camera_stats a;
    uint64_t until = its_now_ns() + 60 * ITS_NS_PER_S;
    do { /* the clip is decoded on the camera's thread first */
        its_sleep_ns(10 * ITS_NS_PER_MS);
        its_pipeline_camera_stats(p, 0, &a);
    } while (a.source.state != ITS_SOURCE_RUNNING && its_now_ns() < until);
    its_sleep_ns(1500 * ITS_NS_PER_MS);
    its_pipeline_stop(p, ITS_NS_PER_S);
    its_pipeline_camera_stats(p, 0, &a);
    assert_true(a.processed >= 20);
    assert_int_equal(a.in, a.processed + a.dropped_total);
    its_pipeline_destroy(p); /* drains the publish service */
    its_app_config_free(&c);

    /* the subscriber got cam-a's frames, in order, as itsd wrote them */
    long got = 0, last = -1;
    int ordered = 1;
    struct timeval tv = {0, 300000};
    redisSetTimeout(sub, tv);
    while (redisGetReply(sub, (void **)&rep) == REDIS_OK && rep) {
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3) {
            json_t *j = json_loads(rep->element[2]->str, 0, NULL);
            assert_non_null(j);
            assert_string_equal(json_string_value(json_object_get(j, "camera")), "cam-a");
            assert_true(json_is_array(json_object_get(j, "detections")));
            long fr = (long)json_integer_value(json_object_get(j, "frame"));
            ordered &= fr > last;
            last = fr;
            got++;
            json_decref(j);
        }
        freeReplyObject(rep);
    }
    redisFree(sub);
    assert_int_equal(got, (long)a.processed);
    assert_true(ordered);

    redisContext *rc = redisConnect("127.0.0.1", r.port);
    rep = redisCommand(rc, "GET its:cam:cam-b:latest");
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    json_t *j = json_loads(rep->str, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "camera")), "cam-b");
    assert_int_equal(json_integer_value(json_object_get(j, "v")), 2);
    json_decref(j);
    freeReplyObject(rep);
    redisFree(rc);
    its_redis_stop(&r, SIGTERM);
}

static double std_value(its_metrics *reg, its_metric_id id, const char *label)
{
    its_metric_family *f = its_metrics_std(reg, id);
    return its_metric_value(label ? its_metrics_series_v(f, label) : its_metrics_series(f, NULL));
}

/* Polls until the registry shows `want` acknowledged frame messages (10 s at most). */
static int wait_sent(its_metrics *reg, double want)
{
    for (int i = 0; i < 1000; i++) {
        if (std_value(reg, ITS_M_PUB_MESSAGES, "detections") >= want)
            return 1;
        its_sleep_ns(10 * ITS_NS_PER_MS);
    }
    return 0;
}

/* Frames from..from+n-1 of camera a if every is 0, else of cameras a and b taking turns. */
static void submit_frames(its_sink *s, int from, int n, int every, const char *cam)
{
    char json[128];
    for (int i = from; i < from + n; i++) {
        const char *c = every ? (i % 2 ? "b" : "a") : cam;
        int len = snprintf(json, sizeof json,
                           "{\"v\":2,\"type\":\"frame\",\"camera\":\"%s\",\"frame\":%d}", c, i);
        assert_int_equal(s->publish(s, ITS_MSG_FRAME, c, NULL, json, (size_t)len), 0);
    }
}

static double cam_value(its_metrics *reg, its_metric_id id, const char *cam, const char *reason)
{
    its_metric_family *f = its_metrics_std(reg, id);
    return its_metric_value(reason ? its_metrics_series_v(f, cam, reason)
                                   : its_metrics_series_v(f, cam));
}

/* 50 messages of cameras a and b (25 each) delivered; Redis killed; 200 more of a, then 100 of
 * b, into an outbox of 100: exactly the 200 oldest (all a's) are lost, as counted by reason,
 * one log line says 200; Redis restarted: the 100 that waited (all b's) are delivered and
 * counted as replayed; nothing else moves. Per camera: a sent 25 and lost 200, b sent 125 of
 * which 100 replayed; each camera's sent + dropped is what it submitted, and the cameras add
 * up to the totals. */
static void test_outage_counted(void **state)
{
    if (!its_redis_available())
        ITS_TEST_SKIP("redis-server missing");
    its_redis_fixture r = {0};
    assert_int_equal(its_redis_start(&r), 0);
    char logpath[300], dir[256];
    its_test_tmpdir(dir, sizeof dir);
    snprintf(logpath, sizeof logpath, "%s/sink.log", dir);
    int logfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(logfd >= 0);
    its_log_set_fd(logfd);

    its_metrics *reg = its_metrics_create();
    assert_int_equal(its_metrics_std_register(reg), 0);
    its_publish_config pc;
    its_publish_config_default(&pc);
    pc.port = r.port;
    pc.outbox_max_msgs = 100;
    pc.backoff_min_ms = 10;
    pc.backoff_max_ms = 50;
    its_sink *s;
    char err[256];
    assert_int_equal(its_sink_redis(&pc, reg, &s, err, sizeof err), 0);
    submit_frames(s, 0, 50, 1, NULL);
    assert_true(wait_sent(reg, 50));
    assert_true(std_value(reg, ITS_M_REDIS_UP, NULL) == 1);

    its_redis_stop(&r, SIGKILL);
    submit_frames(s, 50, 200, 0, "a");
    submit_frames(s, 250, 100, 0, "b");
    for (int i = 0; i < 1000 && std_value(reg, ITS_M_PUB_DROPPED, "outbox_full") < 200; i++)
        its_sleep_ns(10 * ITS_NS_PER_MS);
    its_sleep_ns(100 * ITS_NS_PER_MS);
    assert_true(std_value(reg, ITS_M_PUB_DROPPED, "outbox_full") == 200);
    assert_true(std_value(reg, ITS_M_PUB_OUTBOX, NULL) == 100);
    assert_true(std_value(reg, ITS_M_PUB_OUTBOX_BYTES, NULL) > 100 * 40); /* 100 SET + PUBLISH */
    assert_true(std_value(reg, ITS_M_PUB_CONNECT_FAIL, NULL) >= 1);
    assert_true(std_value(reg, ITS_M_REDIS_UP, NULL) == 0);
    assert_true(std_value(reg, ITS_M_PUB_MESSAGES, "detections") == 50);

    assert_int_equal(its_redis_start(&r), 0); /* the same port */
    assert_true(wait_sent(reg, 150));
    its_sleep_ns(100 * ITS_NS_PER_MS);
    assert_true(std_value(reg, ITS_M_PUB_MESSAGES, "detections") == 150);
    assert_true(std_value(reg, ITS_M_PUB_REPLAYED, NULL) == 100);
    assert_true(std_value(reg, ITS_M_PUB_DROPPED, "outbox_full") == 200);
    assert_true(std_value(reg, ITS_M_PUB_DROPPED, "queue_full") == 0);
    assert_true(std_value(reg, ITS_M_PUB_OUTBOX, NULL) == 0);
    assert_true(std_value(reg, ITS_M_PUB_OUTBOX_BYTES, NULL) == 0);
    assert_true(std_value(reg, ITS_M_REDIS_UP, NULL) == 1);
    assert_true(std_value(reg, ITS_M_PUB_RECONNECTS, NULL) == 1);

    /* per camera: a submitted 25 + 200, b 25 + 100 */
    assert_true(cam_value(reg, ITS_M_PUB_CAM_MESSAGES, "a", NULL) == 25);
    assert_true(cam_value(reg, ITS_M_PUB_CAM_REPLAYED, "a", NULL) == 0);
    assert_true(cam_value(reg, ITS_M_PUB_CAM_DROPPED, "a", "outbox_full") == 200);
    assert_true(cam_value(reg, ITS_M_PUB_CAM_MESSAGES, "b", NULL) == 125);
    assert_true(cam_value(reg, ITS_M_PUB_CAM_REPLAYED, "b", NULL) == 100);
    assert_true(cam_value(reg, ITS_M_PUB_CAM_DROPPED, "b", "outbox_full") == 0);
    static const char *const reasons[] = {"outbox_full", "queue_full", "too_large", "redis_error",
                                          "closing"};
    double dropped[2] = {0, 0}, dropped_all = 0;
    for (size_t k = 0; k < sizeof reasons / sizeof reasons[0]; k++) {
        for (int c = 0; c < 2; c++)
            dropped[c] += cam_value(reg, ITS_M_PUB_CAM_DROPPED, c ? "b" : "a", reasons[k]);
        dropped_all += std_value(reg, ITS_M_PUB_DROPPED, reasons[k]);
    }
    assert_true(cam_value(reg, ITS_M_PUB_CAM_MESSAGES, "a", NULL) + dropped[0] == 225);
    assert_true(cam_value(reg, ITS_M_PUB_CAM_MESSAGES, "b", NULL) + dropped[1] == 125);
    assert_true(cam_value(reg, ITS_M_PUB_CAM_MESSAGES, "a", NULL) +
                    cam_value(reg, ITS_M_PUB_CAM_MESSAGES, "b", NULL) ==
                std_value(reg, ITS_M_PUB_MESSAGES, "detections"));
    assert_true(dropped[0] + dropped[1] == dropped_all);
    assert_true(cam_value(reg, ITS_M_PUB_CAM_REPLAYED, "a", NULL) +
                    cam_value(reg, ITS_M_PUB_CAM_REPLAYED, "b", NULL) ==
                std_value(reg, ITS_M_PUB_REPLAYED, NULL));

    /* what Redis holds: the last frame of all, which waited through the outage */
    redisContext *rc = redisConnect("127.0.0.1", r.port);
    redisReply *rep = redisCommand(rc, "GET its:cam:b:latest");
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    assert_non_null(strstr(rep->str, "\"frame\":349}"));
    freeReplyObject(rep);
    redisFree(rc);
    s->destroy(s);
    its_metrics_destroy(reg);
    its_log_set_fd(2);
    close(logfd);

    /* one line for the outage, with the count */
    size_t len;
    uint8_t *data = its_test_read_file(logpath, &len);
    assert_non_null(data);
    char *log = its_malloc(ITS_MOD_TEST, len + 1);
    memcpy(log, data, len);
    log[len] = 0;
    its_free(data);
    int lines = 0;
    for (char *p = log; (p = strstr(p, "message(s) lost")); p++)
        lines++;
    assert_int_equal(lines, 1);
    assert_non_null(strstr(log, "200 message(s) lost"));
    its_free(log);
    its_redis_cleanup(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pipeline_to_redis),
                                       cmocka_unit_test(test_outage_counted)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
