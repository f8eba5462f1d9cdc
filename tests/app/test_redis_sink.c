/* itsd's pipeline publishing to a real redis-server (started on a free loopback port): every
 * processed frame reaches Redis, latest-frame keys hold itsd's message unchanged, and a
 * subscriber on a camera's channel receives its frames in order. */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "its/app.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pipeline_to_redis)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
