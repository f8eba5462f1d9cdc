/*
 * GET /v1/cameras/{id}/analytics end to end: a publisher writes the window to a real Redis;
 * the API's cache (its own L1 in front of Redis, as in a second process) serves it: from
 * Redis on the first read, from L1 after; 503 once Redis is gone and L1 has nothing; 404 for
 * a window never written.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "camera_table.h"
#include "its/api.h"
#include "its/core.h"
#include "its/publish.h"
#include "redis_fixture.h"
#include "testutil.h"

static int get_analytics(its_api *api, const char *path, const char *window, char *body, size_t len)
{
    its_api_request req = {.method = "GET", .path = path, .window = window};
    its_api_response resp;
    assert_int_equal(its_api_handle(api, &req, &resp), 0);
    snprintf(body, len, "%s", resp.body ? resp.body : "");
    int status = resp.status;
    its_api_response_free(&resp);
    return status;
}

static void test_analytics_through_redis(void **state)
{
    its_redis_fixture srv;
    memset(&srv, 0, sizeof srv);
    assert_int_equal(its_redis_start(&srv), 0);

    /* The publishing side. */
    its_publish_config pc;
    its_publish_config_default(&pc);
    pc.port = srv.port;
    its_publisher *pub = NULL;
    assert_int_equal(its_publisher_create(&pc, NULL, NULL, &pub), 0);
    its_pub_meta m = {"cam-9", 600, its_wall_ns(), its_now_ns()};
    assert_int_equal(its_publish_analytics(pub, &m, "15m", "{\"flow_vph\":840}"), 0);
    assert_int_equal(its_publish_flush(pub), 1);
    its_publisher_destroy(pub);

    /* The API side, with a cache that has never seen the key. */
    its_metrics *reg = its_metrics_create();
    assert_int_equal(its_metrics_std_register(reg), 0);
    its_cache_config cc;
    its_cache_config_default(&cc);
    cc.host = "127.0.0.1";
    cc.port = srv.port;
    its_cache *cache = NULL;
    assert_int_equal(its_cache_create(&cc, reg, &cache), 0);
    camera_table table;
    camera_table_init(&table);
    its_api_provider prov = camera_table_provider(&table);
    its_api *api = NULL;
    assert_int_equal(its_api_create(NULL, &prov, reg, cache, &api), 0);
    its_api_camera_spec spec = {"cam-9", "push", 0, "{}", 0};
    assert_int_equal(prov.camera_add(prov.ud, &spec), 0);

    char body[1024];
    assert_int_equal(get_analytics(api, "/v1/cameras/cam-9/analytics", "15m", body, sizeof body),
                     200);
    assert_non_null(strstr(body, "\"window\":\"15m\""));
    assert_non_null(strstr(body, "\"data\":{\"flow_vph\":840}"));
    assert_int_equal(get_analytics(api, "/v1/cameras/cam-9/analytics", "15m", body, sizeof body),
                     200);
    its_cache_stats st;
    its_cache_get_stats(cache, &st);
    assert_int_equal(st.hits_redis, 1);
    assert_int_equal(st.hits_l1, 1);
    assert_int_equal(get_analytics(api, "/v1/cameras/cam-9/analytics", "1m", body, sizeof body),
                     404);

    its_redis_stop(&srv, SIGKILL);
    /* L1 still answers; a miss now means "unavailable", not "not found". */
    assert_int_equal(get_analytics(api, "/v1/cameras/cam-9/analytics", "15m", body, sizeof body),
                     200);
    assert_int_equal(get_analytics(api, "/v1/cameras/cam-9/analytics", "1m", body, sizeof body),
                     503);
    assert_non_null(strstr(body, "\"code\":\"unavailable\""));

    its_api_destroy(api);
    camera_table_free(&table);
    its_cache_destroy(cache);
    its_metrics_destroy(reg);
    its_redis_cleanup(&srv);
}

int main(void)
{
    if (!its_redis_available()) {
        return its_test_skip("redis-server not found");
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_analytics_through_redis),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
