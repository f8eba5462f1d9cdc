/*
 * The HTTP API over real sockets: every endpoint, authentication, size limits, malformed
 * requests, and the refusal to serve a non-loopback address without a token.
 */
#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "camera_table.h"
#include "its/api.h"
#include "its/core.h"
#include "its/stage.h"
#include "testutil.h"

#define TOKEN "t0ken-abc"

typedef struct http_resp {
    int status;
    char headers[4096];
    char *body; /* malloc'd */
    size_t len;
} http_resp;

static camera_table table;
static its_metrics *reg;
static its_cache *cache;
static its_api *api;
static int port;

/* One request on a fresh connection; raw_body may hold anything (NUL bytes too). */
static http_resp http_raw(const char *request_head, const void *raw_body, size_t body_len)
{
    http_resp r = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(write(fd, request_head, strlen(request_head)), (ssize_t)strlen(request_head));
    size_t off = 0;
    while (off < body_len) {
        ssize_t n = write(fd, (const char *)raw_body + off, body_len - off);
        if (n <= 0)
            break; /* the server may close early (413) */
        off += (size_t)n;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = 0;
    assert_true(sscanf(buf, "HTTP/1.%*d %d", &r.status) == 1);
    char *sep = strstr(buf, "\r\n\r\n");
    assert_non_null(sep);
    size_t hlen = (size_t)(sep - buf);
    snprintf(r.headers, sizeof r.headers, "%.*s", (int)hlen, buf);
    r.len = len - hlen - 4;
    r.body = malloc(r.len + 1);
    memcpy(r.body, sep + 4, r.len);
    r.body[r.len] = 0;
    free(buf);
    return r;
}

static http_resp http(const char *method, const char *path, const char *token,
                      const char *content_type, const void *body, size_t len)
{
    char head[2048];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n", method, path);
    if (token)
        n += snprintf(head + n, sizeof head - (size_t)n, "Authorization: Bearer %s\r\n", token);
    if (content_type)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: %s\r\n", content_type);
    if (body || !strcmp(method, "POST") || !strcmp(method, "PUT"))
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n", len);
    snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    return http_raw(head, body, len);
}

static http_resp get(const char *path)
{
    return http("GET", path, NULL, NULL, NULL, 0);
}

static http_resp post_json(const char *method, const char *path, const char *token,
                           const char *json)
{
    return http(method, path, token, "application/json", json, strlen(json));
}

static json_t *body_json(const http_resp *r)
{
    json_error_t err;
    json_t *j = json_loads(r->body, 0, &err);
    if (!j)
        fail_msg("not JSON (%s): %s", err.text, r->body);
    return j;
}

/* The status, and for errors the JSON error code. */
static void expect(http_resp r, int status, const char *error_code)
{
    if (r.status != status)
        fail_msg("want %d, got %d: %s", status, r.status, r.body);
    if (error_code) {
        json_t *j = body_json(&r);
        json_t *e = json_object_get(j, "error");
        assert_string_equal(json_string_value(json_object_get(e, "code")), error_code);
        assert_true(json_string_length(json_object_get(e, "message")) > 0);
        json_decref(j);
    }
    free(r.body);
}

static int setup(void **state)
{
    camera_table_init(&table);
    reg = its_metrics_create();
    if (its_metrics_std_register(reg) < 0)
        return -1;
    if (its_cache_create(NULL, reg, &cache) < 0)
        return -1;
    its_api_config cfg;
    its_api_config_default(&cfg);
    cfg.port = 0;
    cfg.token = TOKEN;
    cfg.public_read = 1; /* the reads below go without a token; test_private_reads checks both */
    cfg.max_frame_bytes = 4u << 20;
    its_api_provider prov = camera_table_provider(&table);
    if (its_api_create(&cfg, &prov, reg, cache, &api) < 0 || its_api_start(api) < 0)
        return -1;
    port = its_api_port(api);
    return port > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    its_api_destroy(api);
    its_cache_destroy(cache);
    its_metrics_destroy(reg);
    camera_table_free(&table);
    return 0;
}

static void test_health_ready(void **state)
{
    http_resp r = get("/healthz");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Type: application/json"));
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
    json_decref(j);
    free(r.body);

    table.ready = 0;
    r = get("/readyz");
    assert_int_equal(r.status, 503);
    j = body_json(&r);
    assert_false(json_boolean_value(json_object_get(j, "ready")));
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "model not loaded");
    json_decref(j);
    free(r.body);
    table.ready = 1;
    expect(get("/readyz"), 200, NULL);
    expect(http("POST", "/healthz", TOKEN, NULL, NULL, 0), 405, "method_not_allowed");
    expect(get("/nope"), 404, "not_found");
    expect(get("/v1/cameras/a/b/c"), 404, "not_found");
    expect(get("/v1/cameras/a/unknown"), 404, "not_found");
}

static void test_metrics_endpoint(void **state)
{
    expect(get("/healthz"), 200, NULL);
    http_resp r = get("/metrics");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(r.body, "# TYPE analytics_latency_seconds histogram\n"));
    assert_non_null(strstr(r.body, "its_http_requests_total{route=\"healthz\",code=\"200\"}"));
    free(r.body);
}

static void test_status(void **state)
{
    its_metric *inf = its_metrics_series_v(its_metrics_std(reg, ITS_M_STAGE_LATENCY), "inference");
    its_metric *pubm = its_metrics_series_v(its_metrics_std(reg, ITS_M_STAGE_LATENCY), "publish");
    /* Inference: all samples in (0.05, 0.075] -> p99 above its 50 ms budget. Publish: all
     * in (0.001, 0.002] -> well inside 5 ms. */
    for (int i = 0; i < 100; i++) {
        its_metric_observe(inf, 0.06);
        its_metric_observe(pubm, 0.0015);
    }
    its_metric *bs = its_metrics_series(its_metrics_std(reg, ITS_M_BATCH_SIZE), NULL);
    its_metric_observe(bs, 8);
    its_metric_observe(bs, 16);
    its_metric_set(its_metrics_series_v(its_metrics_std(reg, ITS_M_QUEUE_DEPTH), "batch"), 42);
    its_metric_set(its_metrics_series_v(its_metrics_std(reg, ITS_M_CAMERA_FPS), "cam-7"), 29.5);
    its_metric_add(its_metrics_series_v(its_metrics_std(reg, ITS_M_FRAMES), "cam-7"), 1000);
    its_metric_add(
        its_metrics_series_v(its_metrics_std(reg, ITS_M_FRAMES_DROPPED), "cam-7", "queue_full"), 3);
    its_metric_add(
        its_metrics_series_v(its_metrics_std(reg, ITS_M_FRAMES_DROPPED), "cam-7", "too_old"), 2);
    http_resp r = get("/v1/status");
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    free(r.body);
    json_t *stages = json_object_get(j, "stages");
    assert_int_equal(json_array_size(stages), ITS_STAGE_COUNT);
    /* every stage of the stage table, in its order, with SPEC's budget */
    static const struct {
        const char *name;
        double budget_ms;
    } want[] = {{"queue", 5},        {"batch", 10},     {"inference", 50},
                {"postprocess", 10}, {"analytics", 15}, {"quality", 5},
                {"modelmon", 5},     {"publish", 5},    {"total", 100}};
    assert_int_equal(json_array_size(stages), sizeof want / sizeof want[0]);
    int seen = 0;
    for (size_t i = 0; i < json_array_size(stages); i++) {
        json_t *s = json_array_get(stages, i);
        const char *name = json_string_value(json_object_get(s, "stage"));
        assert_non_null(name);
        assert_string_equal(name, want[i].name);
        assert_float_equal(json_number_value(json_object_get(s, "budget_ms")), want[i].budget_ms,
                           0);
        if (!strcmp(name, "inference")) {
            /* 99th of 100 samples in (50, 75] ms: 50 + 25 * 99/100. */
            assert_float_equal(json_number_value(json_object_get(s, "p99_ms")), 74.75, 1e-9);
            assert_float_equal(json_number_value(json_object_get(s, "budget_ms")), 50, 0);
            assert_true(json_is_true(json_object_get(s, "over_budget")));
            seen++;
        } else if (!strcmp(name, "publish")) {
            assert_float_equal(json_number_value(json_object_get(s, "p50_ms")), 1.5, 1e-9);
            assert_float_equal(json_number_value(json_object_get(s, "budget_ms")), 5, 0);
            assert_true(json_is_false(json_object_get(s, "over_budget")));
            seen++;
        } else if (!strcmp(name, "batch")) {
            assert_true(json_is_null(json_object_get(s, "p99_ms"))); /* no samples yet */
            seen++;
        }
    }
    assert_int_equal(seen, 3);
    json_t *b = json_object_get(j, "batch_size");
    assert_float_equal(json_number_value(json_object_get(b, "mean")), 12, 0);
    assert_int_equal(json_integer_value(json_object_get(b, "batches")), 2);
    assert_float_equal(
        json_number_value(json_object_get(json_object_get(j, "queue_depth"), "batch")), 42, 0);
    json_t *cam = json_object_get(json_object_get(j, "cameras"), "cam-7");
    assert_float_equal(json_number_value(json_object_get(cam, "fps")), 29.5, 0);
    assert_float_equal(json_number_value(json_object_get(cam, "frames")), 1000, 0);
    assert_float_equal(json_number_value(json_object_get(cam, "drops")), 5, 0);
    assert_null(json_object_get(j, "scaling")); /* no scaling collector attached yet */
    json_t *e2e = json_object_get(j, "end_to_end");
    assert_float_equal(json_number_value(json_object_get(e2e, "budget_ms")), 100, 0);
    assert_true(json_is_null(json_object_get(e2e, "p99_ms")));
    json_decref(j);

    /* With the scaling collector: after two scrapes, the decision and its inputs. */
    assert_int_equal(its_metrics_scaling_attach(reg), 0);
    for (int i = 0; i < 2; i++) {
        r = get("/metrics");
        free(r.body);
        its_metric_set(its_metrics_series_v(its_metrics_std(reg, ITS_M_QUEUE_DEPTH), "batch"), 650);
    }
    r = get("/v1/status");
    j = body_json(&r);
    free(r.body);
    json_t *sc = json_object_get(j, "scaling");
    assert_non_null(sc);
    assert_float_equal(json_number_value(json_object_get(sc, "queue_depth")), 650, 0);
    assert_int_equal(json_integer_value(json_object_get(sc, "recommendation")), 1);
    json_decref(j);
    its_metric_set(its_metrics_series_v(its_metrics_std(reg, ITS_M_QUEUE_DEPTH), "batch"), 0);
}

static void test_auth(void **state)
{
    const char *body = "{\"id\":\"cam-a\",\"url\":\"rtsp://10.0.0.1/stream\"}";
    http_resp r = post_json("POST", "/v1/cameras", NULL, body);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.headers, "WWW-Authenticate: Bearer"));
    free(r.body);
    expect(post_json("POST", "/v1/cameras", "wrong", body), 401, "unauthorized");
    expect(post_json("POST", "/v1/cameras", TOKEN "x", body), 401, "unauthorized");
    expect(post_json("POST", "/v1/cameras", "t0ken-ab", body), 401, "unauthorized");
    expect(http("DELETE", "/v1/cameras/cam-a", NULL, NULL, NULL, 0), 401, "unauthorized");
    expect(post_json("PUT", "/v1/cameras/cam-a", NULL, body), 401, "unauthorized");
    expect(http("POST", "/v1/cameras/cam-a/frames", NULL, "image/jpeg", "\xff\xd8\xff\xe0", 4), 401,
           "unauthorized");
    /* A basic-auth header is not a bearer token. */
    char head[512];
    snprintf(head, sizeof head,
             "POST /v1/cameras HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Basic "
             "dDBrZW4=\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
             strlen(body));
    expect(http_raw(head, body, strlen(body)), 401, "unauthorized");
    assert_int_equal(table.n, 0); /* nothing got through */
    /* With public_read, reads need no token. */
    expect(get("/v1/cameras"), 200, NULL);
}

/* Without public_read a token protects the reads as well (but not health, readiness and
 * metrics); the credentials of a camera URL never come back, in any answer. */
static void test_private_reads_and_redaction(void **state)
{
    camera_table t2;
    camera_table_init(&t2);
    its_api_config cfg;
    its_api_config_default(&cfg);
    cfg.port = 0;
    cfg.token = TOKEN;
    its_api_provider prov = camera_table_provider(&t2);
    its_api *a = NULL;
    assert_int_equal(its_api_create(&cfg, &prov, reg, NULL, &a), 0);
    assert_int_equal(its_api_start(a), 0);
    int saved = port;
    port = its_api_port(a);
    expect(get("/v1/cameras"), 401, "unauthorized");
    expect(get("/v1/status"), 401, "unauthorized");
    expect(get("/v1/cameras/x/analytics"), 401, "unauthorized");
    /* the snapshot, scene and event stream are reads like the others; a scene is a change */
    expect(get("/v1/cameras/x/snapshot.jpg?annotate=1"), 401, "unauthorized");
    expect(get("/v1/cameras/x/scene"), 401, "unauthorized");
    expect(get("/v1/cameras/x/events"), 401, "unauthorized");
    expect(post_json("PUT", "/v1/cameras/x/scene", NULL, "{}"), 401, "unauthorized");
    expect(post_json("PUT", "/v1/cameras/x/scene", TOKEN, "{}"), 501, "not_implemented");
    expect(http("GET", "/v1/cameras/x/snapshot.jpg", TOKEN, NULL, NULL, 0), 501, "not_implemented");
    /* the console's static files hold no data: served without a token */
    http_resp r = get("/");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Type: text/html"));
    assert_non_null(strstr(r.body, "<script src=\"/console/console.js\">"));
    free(r.body);
    r = get("/console/console.js");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Type: text/javascript"));
    free(r.body);
    expect(get("/console/nosuch.js"), 404, "not_found");
    expect(post_json("POST", "/", TOKEN, "{}"), 405, "method_not_allowed");
    r = get("/metrics");
    assert_int_equal(r.status, 200);
    free(r.body);
    expect(get("/healthz"), 200, NULL);
    r = get("/readyz");
    assert_int_equal(r.status, 503); /* not ready, but not refused */
    free(r.body);

    const char *cam = "{\"id\":\"door\",\"url\":\"rtsp://admin:s3cret-pw@10.0.0.9:554/live"
                      "?channel=1&token=t0p-s3cret\"}";
    r = post_json("POST", "/v1/cameras", TOKEN, cam);
    assert_int_equal(r.status, 201);
    assert_null(strstr(r.body, "s3cret"));
    free(r.body);
    r = http("GET", "/v1/cameras", TOKEN, NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "s3cret"));
    assert_non_null(
        strstr(r.body, "rtsp://admin:<redacted>@10.0.0.9:554/live?channel=1&token=<redacted>"));
    free(r.body);
    r = http("GET", "/v1/cameras/door", TOKEN, NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, "s3cret"));
    free(r.body);
    /* the provider (itsd) still has the URL to open the stream */
    assert_non_null(strstr(t2.cams[0].url, "s3cret-pw"));
    port = saved;
    its_api_destroy(a);
    camera_table_free(&t2);
}

/* Every numeric and optional field of a camera body is checked: out of range is refused,
 * never clamped. */
static void test_camera_fields_bounded(void **state)
{
    static const char *const bad[] = {
        "{\"id\":\"f\",\"url\":\"u\",\"replay_frames\":100001}",
        "{\"id\":\"f\",\"url\":\"u\",\"replay_frames\":-1}",
        "{\"id\":\"f\",\"url\":\"u\",\"replay_frames\":1e12}",
        "{\"id\":\"f\",\"url\":\"u\",\"replay_frames\":\"10\"}",
        "{\"id\":\"f\",\"url\":\"u\",\"loop\":\"yes\"}",
        "{\"id\":\"f\",\"url\":\"u\",\"kind\":\"a-kind-name-too-long\"}",
        "{\"id\":\"f\",\"url\":\"u\",\"fps\":241}",
        "{\"id\":\"f\",\"url\":\"u\",\"fps\":0}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect(post_json("POST", "/v1/cameras", TOKEN, bad[i]), 400, "bad_request");
    assert_int_equal(table.n, 0);
    expect(post_json("POST", "/v1/cameras", TOKEN,
                     "{\"id\":\"f\",\"url\":\"u\",\"replay_frames\":100000,\"loop\":true}"),
           201, NULL);
    /* 64 characters is the longest id, taken whole; 65 is refused */
    char path[128], id64[65];
    memset(id64, 'k', 64);
    id64[64] = 0;
    snprintf(path, sizeof path, "/v1/cameras/%s", id64);
    expect(post_json("PUT", path, TOKEN, "{\"url\":\"u\"}"), 201, NULL);
    http_resp r = get(path);
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "id")), id64);
    json_decref(j);
    free(r.body);
    snprintf(path, sizeof path, "/v1/cameras/%sk", id64);
    expect(post_json("PUT", path, TOKEN, "{\"url\":\"u\"}"), 400, "bad_request");
    expect(http("DELETE", "/v1/cameras/f", TOKEN, NULL, NULL, 0), 200, NULL);
    snprintf(path, sizeof path, "/v1/cameras/%s", id64);
    expect(http("DELETE", path, TOKEN, NULL, NULL, 0), 200, NULL);
}

static void test_cameras_crud(void **state)
{
    http_resp r = get("/v1/cameras");
    json_t *j = body_json(&r);
    size_t before = json_array_size(json_object_get(j, "cameras"));
    json_decref(j);
    free(r.body);

    r = post_json("POST", "/v1/cameras", TOKEN,
                  "{\"id\":\"cam-1\",\"url\":\"rtsp://10.0.0.1/s\",\"fps\":25,"
                  "\"lines\":[{\"name\":\"north\"}]}");
    assert_int_equal(r.status, 201);
    assert_non_null(strstr(r.headers, "Location: /v1/cameras/cam-1"));
    free(r.body);
    assert_non_null(strstr(table.json[0], "\"lines\"")); /* the scene config reaches itsd */
    expect(post_json("POST", "/v1/cameras", TOKEN, "{\"id\":\"cam-1\",\"url\":\"x\"}"), 409,
           "conflict");

    r = get("/v1/cameras/cam-1");
    assert_int_equal(r.status, 200);
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "cam-1");
    assert_string_equal(json_string_value(json_object_get(j, "url")), "rtsp://10.0.0.1/s");
    assert_float_equal(json_number_value(json_object_get(j, "fps")), 25, 0);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "connecting");
    json_decref(j);
    free(r.body);

    r = get("/v1/cameras");
    j = body_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "cameras")), before + 1);
    assert_int_equal(json_integer_value(json_object_get(j, "count")), before + 1);
    json_decref(j);
    free(r.body);

    r = post_json("PUT", "/v1/cameras/cam-1", TOKEN, "{\"url\":\"rtsp://10.0.0.2/s\"}");
    assert_int_equal(r.status, 200);
    j = body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "result")), "replaced");
    json_decref(j);
    free(r.body);
    expect(
        post_json("PUT", "/v1/cameras/cam-2", TOKEN, "{\"id\":\"cam-2\",\"url\":\"file:a.mp4\"}"),
        201, NULL);
    expect(post_json("PUT", "/v1/cameras/cam-2", TOKEN, "{\"id\":\"cam-3\",\"url\":\"u\"}"), 400,
           "bad_request");
    expect(http("DELETE", "/v1/cameras/cam-2", TOKEN, NULL, NULL, 0), 200, NULL);
    expect(http("DELETE", "/v1/cameras/cam-2", TOKEN, NULL, NULL, 0), 404, "not_found");
    expect(get("/v1/cameras/cam-2"), 404, "not_found");
    expect(get("/v1/cameras/bad%20id"), 400, "bad_request");
    expect(get("/v1/cameras/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
           400, "bad_request");
    expect(http("PATCH", "/v1/cameras/cam-1", NULL, NULL, NULL, 0), 401, "unauthorized");
    r = http("PATCH", "/v1/cameras/cam-1", TOKEN, NULL, NULL, 0);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.headers, "Allow: GET, PUT, DELETE"));
    free(r.body);
    expect(http("DELETE", "/v1/cameras", TOKEN, NULL, NULL, 0), 405, "method_not_allowed");
    expect(http("DELETE", "/v1/cameras/cam-1", TOKEN, NULL, NULL, 0), 200, NULL);
}

static void test_malformed_and_oversized(void **state)
{
    expect(post_json("POST", "/v1/cameras", TOKEN, "{\"id\":\"c\",\"url\":"), 400, "bad_json");
    expect(post_json("POST", "/v1/cameras", TOKEN, ""), 400, "bad_json");
    expect(post_json("POST", "/v1/cameras", TOKEN, "[1,2]"), 400, "bad_request");
    expect(post_json("POST", "/v1/cameras", TOKEN, "{\"id\":\"c\",\"id\":\"d\",\"url\":\"u\"}"),
           400, "bad_json");
    expect(post_json("POST", "/v1/cameras", TOKEN, "{\"url\":\"u\"}"), 400, "bad_request");
    expect(post_json("POST", "/v1/cameras", TOKEN, "{\"id\":7,\"url\":\"u\"}"), 400, "bad_request");
    expect(post_json("POST", "/v1/cameras", TOKEN, "{\"id\":\"a b\",\"url\":\"u\"}"), 400,
           "bad_request");
    expect(post_json("POST", "/v1/cameras", TOKEN, "{\"id\":\"c\"}"), 400, "bad_request");
    expect(post_json("POST", "/v1/cameras", TOKEN, "{\"id\":\"c\",\"url\":\"\"}"), 400,
           "bad_request");
    expect(post_json("POST", "/v1/cameras", TOKEN, "{\"id\":\"c\",\"url\":\"a\\nb\"}"), 400,
           "bad_request");
    expect(post_json("POST", "/v1/cameras", TOKEN, "{\"id\":\"c\",\"url\":\"u\",\"fps\":0}"), 400,
           "bad_request");
    expect(post_json("POST", "/v1/cameras", TOKEN, "{\"id\":\"c\",\"url\":\"u\",\"fps\":\"9\"}"),
           400, "bad_request");
    expect(post_json("POST", "/v1/cameras", TOKEN, "{\"id\":\"c\",\"url\":\"u\",\"fps\":1000}"),
           400, "bad_request");
    expect(http("POST", "/v1/cameras", TOKEN, "text/plain", "{}", 2), 415,
           "unsupported_media_type");
    /* A body with a NUL byte in it. */
    expect(http("POST", "/v1/cameras", TOKEN, "application/json", "{\"id\":\"c\"\0}", 11), 400,
           "bad_json");
    assert_int_equal(table.n, 0);

    /* Announced too large: refused before the body is read. */
    char head[512];
    snprintf(head, sizeof head,
             "POST /v1/cameras HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
             "%s\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n",
             TOKEN);
    expect(http_raw(head, NULL, 0), 413, "payload_too_large");
    /* Chunked without a length, growing past the limit while being read. */
    size_t big = 70 * 1024;
    char *chunked = malloc(big + 64);
    int n = snprintf(chunked, 64, "%zx\r\n", big);
    memset(chunked + n, ' ', big);
    memcpy(chunked + n + big, "\r\n0\r\n\r\n", 7);
    snprintf(head, sizeof head,
             "POST /v1/cameras HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
             "%s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
             TOKEN);
    expect(http_raw(head, chunked, (size_t)n + big + 7), 413, "payload_too_large");
    free(chunked);
    /* A body on a GET is not expected. */
    expect(http("GET", "/v1/cameras", NULL, "application/json", "{}", 2), 413, "payload_too_large");
    /* Headers larger than the connection's memory: refused by the HTTP layer (431 or 413),
     * and the server stays up. */
    size_t hl = 64 * 1024;
    char *hugehead = malloc(hl + 128);
    int hn = snprintf(hugehead, 128, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(hugehead + hn, 'a', hl);
    snprintf(hugehead + hn + hl, 32, "\r\nConnection: close\r\n\r\n");
    http_resp r = http_raw(hugehead, NULL, 0);
    assert_true(r.status == 431 || r.status == 413 || r.status == 414);
    free(r.body);
    free(hugehead);
    /* Garbage instead of HTTP: the server answers 400 and stays up. */
    r = http_raw("NOT HTTP AT ALL\r\n\r\n", NULL, 0);
    assert_int_equal(r.status, 400);
    free(r.body);
    expect(get("/healthz"), 200, NULL);
}

static void test_frames(void **state)
{
    expect(post_json("POST", "/v1/cameras", TOKEN, "{\"id\":\"push-1\",\"url\":\"push\"}"), 201,
           NULL);
    char path[512];
    assert_non_null(its_test_shared_path("media/zidane.jpg", path, sizeof path));
    size_t len = 0;
    uint8_t *jpeg = its_test_read_file(path, &len);
    assert_non_null(jpeg);
    int before = table.frames_pushed;
    http_resp r = http("POST", "/v1/cameras/push-1/frames", TOKEN, "image/jpeg", jpeg, len);
    assert_int_equal(r.status, 202);
    json_t *j = body_json(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "bytes")), len);
    json_decref(j);
    free(r.body);
    assert_int_equal(table.frames_pushed, before + 1);
    assert_int_equal(table.last_len, len);
    assert_memory_equal(table.last_frame, jpeg, len); /* byte for byte */
    assert_string_equal(table.last_frame_cam, "push-1");

    expect(http("POST", "/v1/cameras/nope/frames", TOKEN, "image/jpeg", jpeg, len), 404,
           "not_found");
    expect(http("POST", "/v1/cameras/push-1/frames", TOKEN, "image/png", jpeg, len), 415,
           "unsupported_media_type");
    expect(http("POST", "/v1/cameras/push-1/frames", TOKEN, "image/jpeg", "GIF89a....", 10), 400,
           "bad_image");
    expect(http("POST", "/v1/cameras/push-1/frames", TOKEN, "image/jpeg", "", 0), 400, "bad_image");
    table.full = 1;
    expect(http("POST", "/v1/cameras/push-1/frames", TOKEN, "image/jpeg", jpeg, len), 429, "busy");
    table.full = 0;
    expect(get("/v1/cameras/push-1/frames"), 405, "method_not_allowed");
    /* Larger than max_frame_bytes (4 MiB here). */
    size_t big = (4u << 20) + 1;
    uint8_t *huge = its_calloc(ITS_MOD_TEST, 1, big);
    memcpy(huge, jpeg, len);
    expect(http("POST", "/v1/cameras/push-1/frames", TOKEN, "image/jpeg", huge, big), 413,
           "payload_too_large");
    its_free(huge);
    its_free(jpeg);
    assert_int_equal(table.frames_pushed, before + 1);
    expect(http("DELETE", "/v1/cameras/push-1", TOKEN, NULL, NULL, 0), 200, NULL);
}

static void test_analytics(void **state)
{
    expect(post_json("POST", "/v1/cameras", TOKEN, "{\"id\":\"cam-an\",\"url\":\"push\"}"), 201,
           NULL);
    const char *v = "{\"v\":1,\"type\":\"analytics\",\"camera\":\"cam-an\",\"window\":\"15m\"}";
    assert_int_equal(its_cache_put(cache, "its:cam:cam-an:analytics:15m", v, strlen(v), 60), 0);
    http_resp r = get("/v1/cameras/cam-an/analytics?window=15m");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, v);
    free(r.body);
    expect(get("/v1/cameras/cam-an/analytics"), 404, "not_found"); /* 1m not there yet */
    expect(get("/v1/cameras/cam-an/analytics?window=a:b"), 400, "bad_request");
    expect(get("/v1/cameras/ghost/analytics"), 404, "not_found");
    expect(http("DELETE", "/v1/cameras/cam-an", TOKEN, NULL, NULL, 0), 200, NULL);
}

static void test_bind_policy(void **state)
{
    its_api_config cfg;
    its_api_config_default(&cfg);
    cfg.port = 0;
    its_api *a = NULL;
    cfg.bind_addr = "0.0.0.0";
    assert_int_equal(its_api_create(&cfg, NULL, NULL, NULL, &a), 0);
    assert_int_equal(its_api_start(a), ITS_EAUTH);
    its_api_destroy(a);
    cfg.bind_addr = "localhost"; /* a name, not an address */
    assert_int_equal(its_api_create(&cfg, NULL, NULL, NULL, &a), 0);
    assert_int_equal(its_api_start(a), ITS_EINVAL);
    its_api_destroy(a);
    cfg.bind_addr = "0.0.0.0";
    cfg.token = "secret";
    assert_int_equal(its_api_create(&cfg, NULL, NULL, NULL, &a), 0);
    assert_int_equal(its_api_start(a), 0);
    assert_true(its_api_port(a) > 0);
    its_api_destroy(a);
    cfg.bind_addr = "127.0.0.1";
    cfg.token = NULL;
    cfg.port = port; /* in use */
    assert_int_equal(its_api_create(&cfg, NULL, NULL, NULL, &a), 0);
    assert_int_equal(its_api_start(a), ITS_ENET);
    its_api_destroy(a);
    cfg.max_body_bytes = 0;
    assert_int_equal(its_api_create(&cfg, NULL, NULL, NULL, &a), ITS_EINVAL);

    /* Without a token on loopback, changes are allowed (development mode); without a
     * provider the camera endpoints answer 501 and readiness 503. */
    its_api_config_default(&cfg);
    cfg.port = 0;
    assert_int_equal(its_api_create(&cfg, NULL, NULL, NULL, &a), 0);
    its_api_request req = {.method = "POST",
                           .path = "/v1/cameras",
                           .content_type = "application/json",
                           .body = (const uint8_t *)"{}",
                           .body_len = 2};
    its_api_response resp;
    assert_int_equal(its_api_handle(a, &req, &resp), 0);
    assert_int_equal(resp.status, 501);
    its_api_response_free(&resp);
    req = (its_api_request){.method = "GET", .path = "/readyz"};
    assert_int_equal(its_api_handle(a, &req, &resp), 0);
    assert_int_equal(resp.status, 503);
    its_api_response_free(&resp);
    req = (its_api_request){.method = "GET", .path = "/metrics"};
    assert_int_equal(its_api_handle(a, &req, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_int_equal(resp.len, 0);
    its_api_response_free(&resp);
    its_api_destroy(a);
}

/* Raw request without cmocka asserts (safe off the main thread); returns the status. */
static int quick_status(const char *head, const void *body, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int status = -1;
    if (write(fd, head, strlen(head)) == (ssize_t)strlen(head) &&
        (len == 0 || write(fd, body, len) == (ssize_t)len)) {
        char buf[256];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n > 0) {
            buf[n] = 0;
            if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
                status = -1;
        }
        while (read(fd, buf, sizeof buf) > 0) {
        }
    }
    close(fd);
    return status;
}

static int ok_count;
static pthread_mutex_t ok_lock = PTHREAD_MUTEX_INITIALIZER;

static void *client_thread(void *arg)
{
    (void)arg;
    static const uint8_t jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0, 16, 'J', 'F', 'I', 'F'};
    char post[512];
    snprintf(post, sizeof post,
             "POST /v1/cameras/conc/frames HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
             "Authorization: Bearer " TOKEN "\r\nContent-Type: image/jpeg\r\n"
             "Content-Length: %zu\r\n\r\n",
             sizeof jpeg);
    static const char *const gets[] = {
        "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /v1/cameras HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    };
    int ok = 0;
    for (int i = 0; i < 40; i++) {
        int st =
            i % 4 == 3 ? quick_status(post, jpeg, sizeof jpeg) : quick_status(gets[i % 4], NULL, 0);
        ok += (i % 4 == 3 && st == 202) || (i % 4 != 3 && st == 200);
    }
    pthread_mutex_lock(&ok_lock);
    ok_count += ok;
    pthread_mutex_unlock(&ok_lock);
    return NULL;
}

static void test_concurrent_clients(void **state)
{
    expect(post_json("POST", "/v1/cameras", TOKEN, "{\"id\":\"conc\",\"url\":\"push\"}"), 201,
           NULL);
    int before = table.frames_pushed;
    pthread_t t[4];
    ok_count = 0;
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, client_thread, NULL), 0);
    /* Meanwhile the "pipeline" keeps updating metrics, lock-free. */
    its_metric *m = its_metrics_series_v(its_metrics_std(reg, ITS_M_FRAMES), "conc");
    for (int i = 0; i < 100000; i++)
        its_metric_inc(m);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(ok_count, 4 * 40);
    assert_int_equal(table.frames_pushed, before + 4 * 10);
    expect(http("DELETE", "/v1/cameras/conc", TOKEN, NULL, NULL, 0), 200, NULL);
}

static void test_ready_requires_redis(void **state)
{
    its_api_config cfg;
    its_api_config_default(&cfg);
    cfg.require_redis = 1;
    its_api_provider prov = camera_table_provider(&table);
    its_api *a = NULL;
    assert_int_equal(its_api_create(&cfg, &prov, reg, NULL, &a), 0);
    table.ready = 1;
    its_metric *up = its_metrics_series(its_metrics_std(reg, ITS_M_REDIS_UP), NULL);
    its_metric_set(up, 0);
    its_api_request req = {.method = "GET", .path = "/readyz"};
    its_api_response resp;
    assert_int_equal(its_api_handle(a, &req, &resp), 0);
    assert_int_equal(resp.status, 503);
    assert_non_null(strstr(resp.body, "Redis unreachable"));
    its_api_response_free(&resp);
    its_metric_set(up, 1); /* what the publisher sets once connected */
    assert_int_equal(its_api_handle(a, &req, &resp), 0);
    assert_int_equal(resp.status, 200);
    its_api_response_free(&resp);
    table.ready = 0; /* the model still decides first */
    assert_int_equal(its_api_handle(a, &req, &resp), 0);
    assert_int_equal(resp.status, 503);
    assert_non_null(strstr(resp.body, "model not loaded"));
    its_api_response_free(&resp);
    table.ready = 1;
    its_metric_set(up, 0);
    its_api_destroy(a);
}

/* The URL of camera i: the prefix, then units of '"', '\', "é" and "🚗" (which JSON escapes
 * or carries as UTF-8), padded with 'x' to the longest URL allowed. */
static void long_url(int i, char *url)
{
    static const char unit[] = "\"\\\xc3\xa9\xf0\x9f\x9a\x97/";
    int n = snprintf(url, ITS_API_URL_MAX, "rtsp://10.0.%d.%d/", i / 256, i % 256);
    while (n + (int)sizeof unit - 1 <= ITS_API_URL_MAX - 1) {
        memcpy(url + n, unit, sizeof unit - 1);
        n += (int)sizeof unit - 1;
    }
    memset(url + n, 'x', (size_t)(ITS_API_URL_MAX - 1 - n));
    url[ITS_API_URL_MAX - 1] = 0;
}

/* A provider with as many cameras as one list holds, each with the longest URL. */
static int long_list(void *ud, its_api_camera *out, int max)
{
    (void)ud;
    assert_int_equal(max, ITS_API_MAX_CAMERAS);
    for (int i = 0; i < max; i++) {
        snprintf(out[i].id, sizeof out[i].id, "cam-%03d", i);
        long_url(i, out[i].url);
        snprintf(out[i].state, sizeof out[i].state, "%s", i % 2 ? "running" : "down");
        out[i].fps = 25 + i / 8.0;
        out[i].frames = (uint64_t)i << 40;
        out[i].drops = (uint64_t)i * 3;
    }
    return max;
}

static void test_long_camera_list(void **state)
{
    its_api_config cfg;
    its_api_config_default(&cfg);
    cfg.port = 0;
    its_api_provider prov = {.camera_list = long_list};
    its_api *a = NULL;
    assert_int_equal(its_api_create(&cfg, &prov, NULL, NULL, &a), 0);
    assert_int_equal(its_api_start(a), 0);
    int saved = port;
    port = its_api_port(a); /* the helpers talk to this server for now */
    http_resp r = get("/v1/cameras");
    port = saved;
    its_api_destroy(a);
    assert_int_equal(r.status, 200);
    /* Each URL is over 1.4 KB once escaped: the body is far past any first buffer. */
    assert_true(r.len > (size_t)ITS_API_MAX_CAMERAS * (ITS_API_URL_MAX + 256));
    assert_int_equal(strlen(r.body), r.len);
    json_error_t err;
    json_t *j = json_loadb(r.body, r.len, JSON_REJECT_DUPLICATES, &err);
    if (!j)
        fail_msg("not JSON at %d: %s", err.position, err.text);
    free(r.body);
    assert_int_equal(json_integer_value(json_object_get(j, "count")), ITS_API_MAX_CAMERAS);
    json_t *cams = json_object_get(j, "cameras");
    assert_int_equal(json_array_size(cams), ITS_API_MAX_CAMERAS);
    char id[16], url[ITS_API_URL_MAX];
    for (int i = 0; i < ITS_API_MAX_CAMERAS; i++) {
        json_t *c = json_array_get(cams, (size_t)i);
        snprintf(id, sizeof id, "cam-%03d", i);
        long_url(i, url);
        assert_string_equal(json_string_value(json_object_get(c, "id")), id);
        assert_string_equal(json_string_value(json_object_get(c, "url")), url);
        assert_string_equal(json_string_value(json_object_get(c, "state")),
                            i % 2 ? "running" : "down");
        assert_float_equal(json_number_value(json_object_get(c, "fps")), 25 + i / 8.0, 0);
        assert_int_equal(json_integer_value(json_object_get(c, "frames")), (json_int_t)i << 40);
        assert_int_equal(json_integer_value(json_object_get(c, "drops")), i * 3);
    }
    json_decref(j);
}

/* ---- /v1/events and the evidence files: a provider with three events and one file ---- */

static char ev_file[256]; /* 1000 bytes: byte i is i % 251 */

static int three_events(void *ud, its_api_event *out, int max)
{
    (void)ud;
    static const its_api_event ev[3] = {
        {.id = "b-3",
         .camera = "b",
         .kind = "stopped_vehicle",
         .ts_us = 3000,
         .cls = "truck",
         .place_key = "lane",
         .place = "east",
         .snapshot = 1},
        {.id = "a-2",
         .camera = "a",
         .kind = "line_crossing",
         .ts_us = 2000,
         .cls = "car",
         .place_key = "line",
         .place = "main",
         .direction = -1,
         .snapshot = 1,
         .clip = 1},
        {.id = "a-1",
         .camera = "a",
         .kind = "queue",
         .ts_us = 1000,
         .place_key = "lane",
         .place = "west",
         .clip_pending = 1},
    };
    int n = max < 3 ? max : 3;
    memcpy(out, ev, (size_t)n * sizeof *ev);
    return n;
}

static int one_file(void *ud, const char *id, const char *what, char *path, size_t len)
{
    (void)ud;
    if (strcmp(id, "a-2"))
        return ITS_ENOENT;
    snprintf(path, len, "%s", !strcmp(what, "clip") ? ev_file : "/nonexistent");
    return 0;
}

/* The value of a response header ("" if absent). */
static void header(const http_resp *r, const char *name, char *out, size_t len)
{
    out[0] = 0;
    for (const char *p = r->headers; (p = strstr(p, "\r\n"));) {
        p += 2;
        size_t n = strlen(name);
        if (!strncasecmp(p, name, n) && p[n] == ':') {
            p += n + 1;
            p += strspn(p, " ");
            snprintf(out, len, "%.*s", (int)strcspn(p, "\r"), p);
            return;
        }
    }
}

static http_resp get_range(const char *path, const char *range)
{
    char head[512];
    snprintf(head, sizeof head,
             "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nRange: %s\r\n\r\n", path,
             range);
    return http_raw(head, NULL, 0);
}

static void test_events_and_ranges(void **state)
{
    (void)state;
    snprintf(ev_file, sizeof ev_file, "/tmp/its_test_api_clip_%d.mp4", (int)getpid());
    FILE *f = fopen(ev_file, "wb");
    assert_non_null(f);
    for (int i = 0; i < 1000; i++)
        fputc(i % 251, f);
    fclose(f);
    its_api_config cfg;
    its_api_config_default(&cfg);
    cfg.port = 0;
    its_api_provider prov = {.events = three_events, .evidence_file = one_file};
    its_api *a = NULL;
    assert_int_equal(its_api_create(&cfg, &prov, NULL, NULL, &a), 0);
    assert_int_equal(its_api_start(a), 0);
    int saved = port;
    port = its_api_port(a);

    /* the list: every field, the camera filter, the limit */
    http_resp r = get("/v1/events");
    assert_int_equal(r.status, 200);
    json_t *j = body_json(&r);
    free(r.body);
    json_t *evs = json_object_get(j, "events");
    assert_int_equal(json_array_size(evs), 3);
    json_t *e = json_array_get(evs, 1);
    assert_string_equal(json_string_value(json_object_get(e, "id")), "a-2");
    assert_string_equal(json_string_value(json_object_get(e, "class")), "car");
    assert_string_equal(json_string_value(json_object_get(e, "line")), "main");
    assert_string_equal(json_string_value(json_object_get(e, "direction")), "negative");
    assert_string_equal(json_string_value(json_object_get(e, "clip")), "/v1/events/a-2/clip.mp4");
    e = json_array_get(evs, 2);
    assert_true(json_is_null(json_object_get(e, "class")));
    assert_string_equal(json_string_value(json_object_get(e, "lane")), "west");
    assert_null(json_object_get(e, "direction"));
    assert_null(json_object_get(e, "line"));
    assert_true(json_is_true(json_object_get(e, "clip_pending")));
    json_decref(j);
    r = get("/v1/events?camera=a&limit=1");
    assert_int_equal(r.status, 200);
    j = body_json(&r);
    free(r.body);
    evs = json_object_get(j, "events");
    assert_int_equal(json_array_size(evs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(evs, 0), "id")), "a-2");
    assert_int_equal(json_integer_value(json_object_get(j, "count")), 1);
    json_decref(j);
    r = get("/v1/events?camera=zz");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"count\":0"));
    free(r.body);
    expect(get("/v1/events?limit=0"), 400, "bad_request");
    expect(get("/v1/events?limit=1025"), 400, "bad_request");
    expect(get("/v1/events?limit=3x"), 400, "bad_request");

    /* the file whole, and in ranges (RFC 9110: bytes=A-B, A-, -N; past the end 416) */
    char h[128];
    r = get("/v1/events/a-2/clip.mp4");
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 1000);
    header(&r, "Content-Type", h, sizeof h);
    assert_string_equal(h, "video/mp4");
    header(&r, "Accept-Ranges", h, sizeof h);
    assert_string_equal(h, "bytes");
    free(r.body);
    static const struct {
        const char *range;
        int status;
        long first, last; /* the bytes answered (206), or -1 (the whole file, 200) */
    } cases[] = {
        {"bytes=0-", 206, 0, 999},         {"bytes=100-199", 206, 100, 199},
        {"bytes=990-5000", 206, 990, 999}, {"bytes=-10", 206, 990, 999},
        {"bytes=-5000", 206, 0, 999},      {"bytes=999-999", 206, 999, 999},
        {"bytes=1000-", 416, 0, 0},        {"bytes=-0", 416, 0, 0},
        {"bytes=5-2", 200, -1, -1},        {"bytes=0-1,5-6", 200, -1, -1},
        {"items=0-1", 200, -1, -1},        {"bytes=x-", 200, -1, -1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        r = get_range("/v1/events/a-2/clip.mp4", cases[k].range);
        printf("Range: %s -> %d, %zu bytes\n", cases[k].range, r.status, r.len);
        assert_int_equal(r.status, cases[k].status);
        header(&r, "Content-Range", h, sizeof h);
        if (cases[k].status == 416) {
            assert_string_equal(h, "bytes */1000");
        } else if (cases[k].status == 206) {
            char want[64];
            snprintf(want, sizeof want, "bytes %ld-%ld/1000", cases[k].first, cases[k].last);
            assert_string_equal(h, want);
            assert_int_equal(r.len, (size_t)(cases[k].last - cases[k].first + 1));
            for (long i = cases[k].first; i <= cases[k].last; i++)
                assert_int_equal((unsigned char)r.body[i - cases[k].first], i % 251);
        } else {
            assert_int_equal(r.len, 1000);
        }
        free(r.body);
    }
    expect(get("/v1/events/a-2/snapshot.jpg"), 404, "not_found"); /* the file is not there */
    expect(get("/v1/events/a-9/clip.mp4"), 404, "not_found");
    port = saved;
    its_api_destroy(a);
    unlink(ev_file);
}

/* A camera label of `len` bytes: a distinct first letter, a quote, then 'x'. */
static char *long_label(int i, size_t len)
{
    char *s = malloc(len + 1);
    memset(s, 'x', len);
    s[0] = (char)('A' + i);
    s[1] = '"';
    s[len] = 0;
    return s;
}

static void test_long_status(void **state)
{
    its_metrics *r2 = its_metrics_create();
    assert_int_equal(its_metrics_std_register(r2), 0);
    its_api *a = NULL;
    assert_int_equal(its_api_create(NULL, NULL, r2, NULL, &a), 0);
    its_api_request req = {.method = "GET", .path = "/v1/status"};
    its_api_response resp;
    /* Three cameras with 1 MiB names: a status of over 3 MiB, whole. */
    const size_t mib = 1u << 20;
    char *names[ITS_API_MAX_RESPONSE_MB + 1];
    for (int i = 0; i < 3; i++) {
        names[i] = long_label(i, mib);
        its_metric_set(its_metrics_series_v(its_metrics_std(r2, ITS_M_CAMERA_FPS), names[i]),
                       i == 2 ? NAN : 12.5 * (i + 1));
        its_metric_add(its_metrics_series_v(its_metrics_std(r2, ITS_M_FRAMES), names[i]),
                       123456789012.0 + i);
    }
    assert_int_equal(its_api_handle(a, &req, &resp), 0);
    assert_int_equal(resp.status, 200);
    assert_true(resp.len > 3 * mib);
    json_error_t err;
    json_t *j = json_loadb(resp.body, resp.len, JSON_REJECT_DUPLICATES, &err);
    if (!j)
        fail_msg("not JSON at %d: %s", err.position, err.text);
    its_api_response_free(&resp);
    json_t *cams = json_object_get(j, "cameras");
    assert_int_equal(json_object_size(cams), 3);
    for (int i = 0; i < 3; i++) {
        json_t *c = json_object_get(cams, names[i]);
        assert_non_null(c);
        if (i == 2) /* not a number: null, never nan */
            assert_true(json_is_null(json_object_get(c, "fps")));
        else
            assert_float_equal(json_number_value(json_object_get(c, "fps")), 12.5 * (i + 1), 0);
        assert_float_equal(json_number_value(json_object_get(c, "frames")), 123456789012.0 + i, 0);
        assert_float_equal(json_number_value(json_object_get(c, "drops")), 0, 0);
    }
    json_decref(j);

    /* Past ITS_API_MAX_RESPONSE_MB: a JSON error, not a truncated document. */
    for (int i = 3; i <= ITS_API_MAX_RESPONSE_MB; i++) {
        names[i] = long_label(i, mib);
        its_metric_set(its_metrics_series_v(its_metrics_std(r2, ITS_M_CAMERA_FPS), names[i]), 1);
    }
    assert_int_equal(its_api_handle(a, &req, &resp), 0);
    assert_int_equal(resp.status, 500);
    j = json_loadb(resp.body, resp.len, 0, &err);
    if (!j)
        fail_msg("not JSON at %d: %s", err.position, err.text);
    its_api_response_free(&resp);
    json_t *e = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "internal");
    assert_non_null(strstr(json_string_value(json_object_get(e, "message")), "larger than"));
    json_decref(j);
    for (int i = 0; i <= ITS_API_MAX_RESPONSE_MB; i++)
        free(names[i]);
    its_api_destroy(a);
    its_metrics_destroy(r2);
}

static void test_request_counter(void **state)
{
    its_metric *m =
        its_metrics_series_v(its_metrics_std(reg, ITS_M_HTTP_REQUESTS), "unknown", "404");
    double before = its_metric_value(m);
    expect(get("/definitely/not/here"), 404, "not_found");
    assert_float_equal(its_metric_value(m), before + 1, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the client writes bodies the server may refuse early */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_ready),
        cmocka_unit_test(test_metrics_endpoint),
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_private_reads_and_redaction),
        cmocka_unit_test(test_camera_fields_bounded),
        cmocka_unit_test(test_cameras_crud),
        cmocka_unit_test(test_malformed_and_oversized),
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_analytics),
        cmocka_unit_test(test_bind_policy),
        cmocka_unit_test(test_request_counter),
        cmocka_unit_test(test_concurrent_clients),
        cmocka_unit_test(test_ready_requires_redis),
        cmocka_unit_test(test_long_camera_list),
        cmocka_unit_test(test_long_status),
        cmocka_unit_test(test_events_and_ranges),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
