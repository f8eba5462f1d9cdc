/* The itsd executable: --check-config / --print-config exit codes, SIGHUP adding and
 * removing cameras while running, SIGTERM draining and exiting 0 within 5 s. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "its/core.h"
#include "its/stage.h"
#include "testutil.h"

static char itsd[1024], media[512], dir[256];
static int g_api_port;

static pid_t spawn(const char *cfg, const char *extra, const char *out, const char *errf)
{
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        if (extra)
            execl(itsd, itsd, "-c", cfg, extra, (char *)NULL);
        else
            execl(itsd, itsd, "-c", cfg, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid, double seconds)
{
    uint64_t end = its_now_ns() + (uint64_t)(seconds * 1e9);
    int st;
    while (its_now_ns() < end) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        its_sleep_ns(10 * ITS_NS_PER_MS);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* One HTTP/1.0 request to itsd's API; the whole response (status line included) into buf. */
static int http(const char *method, const char *path, const char *body, char *buf, size_t len)
{
    return its_test_http(g_api_port, method, path, body, buf, len);
}

/* POST a binary body; the HTTP status code, or -1. */
static int http_post_bytes(const char *path, const char *type, const uint8_t *body, size_t n)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_api_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    char head[512];
    int h = snprintf(head, sizeof head,
                     "POST %s HTTP/1.0\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n", path,
                     type, n);
    size_t off = 0;
    int ok = send(fd, head, (size_t)h, 0) == h;
    while (ok && off < n) {
        ssize_t w = send(fd, body + off, n - off, 0);
        ok = w > 0;
        off += ok ? (size_t)w : 0;
    }
    char buf[2048];
    ssize_t r = ok ? recv(fd, buf, sizeof buf - 1, 0) : -1;
    close(fd);
    int code = -1;
    if (r > 12) {
        buf[r] = 0;
        sscanf(buf, "HTTP/%*s %d", &code);
    }
    return code;
}

static void write_cfg(const char *path, const char *cams)
{
    char buf[4096];
    int n = snprintf(buf, sizeof buf,
                     "engine:\n  backend: noop\n  noop_cost_us: 100\n"
                     "status:\n  interval_s: 0.5\n"
                     "shutdown:\n  drain_s: 2\n"
                     "api:\n  port: %d\n"
                     "cameras:\n%s",
                     g_api_port, cams);
    assert_int_equal(its_test_write_file(path, buf, (size_t)n), 0);
}

static void test_check_and_print(void **state)
{
    char cfg[400], out[400], err[400];
    snprintf(cfg, sizeof cfg, "%s/bad.yaml", dir);
    snprintf(out, sizeof out, "%s/o.txt", dir);
    snprintf(err, sizeof err, "%s/e.txt", dir);
    assert_int_equal(its_test_write_file(cfg, "batch:\n  max_size: 99\n", 22), 0);
    assert_int_equal(wait_exit(spawn(cfg, "--check-config", out, err), 10), 2);
    assert_int_equal(its_test_count_in_file(err, "batch.max_size"), 1);

    char cams[1024];
    snprintf(cams, sizeof cams, "  - id: a\n    url: %s/traffic_bridge_720p.mp4\n", media);
    write_cfg(cfg, cams);
    assert_int_equal(wait_exit(spawn(cfg, "--check-config", out, err), 10), 0);
    assert_int_equal(wait_exit(spawn(cfg, "--print-config", out, err), 10), 0);
    assert_int_equal(its_test_count_in_file(out, "noop_cost_us: 100"), 1);
    assert_int_equal(its_test_count_in_file(out, "id: \"a\""), 1);

    /* a camera file that is not there: --check-config says which */
    write_cfg(cfg, "  - id: gone\n    url: /nonexistent/x.mp4\n");
    assert_int_equal(wait_exit(spawn(cfg, "--check-config", out, err), 10), 2);
    assert_int_equal(its_test_count_in_file(err, "cameras[0].url"), 1);
}

static void test_reload_and_term(void **state)
{
    char cfg[400], out[400], err[400], cams[2048];
    snprintf(cfg, sizeof cfg, "%s/run.yaml", dir);
    snprintf(out, sizeof out, "%s/run.jsonl", dir);
    snprintf(err, sizeof err, "%s/run.err", dir);
    snprintf(cams, sizeof cams,
             "  - id: a\n    url: %s/traffic_bridge_720p.mp4\n    kind: replay\n"
             "    fps: 20\n    replay_frames: 10\n    loop: true\n"
             "  - id: b\n    url: %s/traffic_bridge_720p.mp4\n    kind: replay\n"
             "    fps: 20\n    replay_frames: 10\n    loop: true\n",
             media, media);
    g_api_port = its_test_free_port();
    write_cfg(cfg, cams);
    pid_t pid = spawn(cfg, NULL, out, err);
    /* the HTTP API and /metrics while running: ready once the pipeline serves, then frames */
    static char resp[1 << 20];
    uint64_t until = its_now_ns() + 20 * ITS_NS_PER_S;
    int ready = 0;
    while (!ready && its_now_ns() < until) {
        its_sleep_ns(100 * ITS_NS_PER_MS);
        ready = http("GET", "/readyz", NULL, resp, sizeof resp) > 0 && strstr(resp, " 200 ");
    }
    assert_true(ready);
    int frames = 0;
    while (!frames && its_now_ns() < until) {
        its_sleep_ns(500 * ITS_NS_PER_MS);
        frames = http("GET", "/metrics", NULL, resp, sizeof resp) > 0 &&
                 strstr(resp, "its_frames_total{camera=\"a\"}");
    }
    its_sleep_ns(500 * ITS_NS_PER_MS);
    assert_true(http("GET", "/metrics", NULL, resp, sizeof resp) > 0);
    assert_non_null(strstr(resp, "its_frames_total{camera=\"a\"}"));
    /* frames went through every stage of the stage table, the batch stage included */
    for (int s = 0; s < ITS_STAGE_COUNT; s++) {
        char key[128];
        snprintf(key, sizeof key, "its_stage_latency_seconds_count{stage=\"%s\"} ",
                 its_stage_name((its_stage)s));
        const char *at = strstr(resp, key);
        if (!at || !(strtod(at + strlen(key), NULL) > 0))
            fail_msg("/metrics: no samples for stage %s", its_stage_name((its_stage)s));
    }
    assert_non_null(strstr(resp, "analytics_latency_seconds_count"));
    /* one batch-size observation per inference batch */
    const char *bc = strstr(resp, "its_batch_size_count ");
    assert_non_null(bc);
    assert_true(strtod(bc + strlen("its_batch_size_count "), NULL) > 0);
    assert_non_null(strstr(resp, "its_camera_up{camera=\"b\"} 1"));
    assert_true(http("GET", "/v1/cameras", NULL, resp, sizeof resp) > 0);
    assert_non_null(strstr(resp, "\"b\""));
    char body[1024];
    snprintf(body, sizeof body,
             "{\"id\": \"d\", \"url\": \"%s/traffic_bridge_720p.mp4\", \"fps\": 20, "
             "\"kind\": \"replay\", \"loop\": true, \"replay_frames\": 10}",
             media);
    assert_true(http("POST", "/v1/cameras", body, resp, sizeof resp) > 0);
    if (!strstr(resp, "created"))
        fail_msg("POST /v1/cameras: %s", resp);
    assert_true(http("GET", "/v1/status", NULL, resp, sizeof resp) > 0);
    assert_non_null(strstr(resp, " 200 "));
    for (int s = 0; s < ITS_STAGE_COUNT; s++) {
        char key[64];
        snprintf(key, sizeof key, "\"stage\":\"%s\"", its_stage_name((its_stage)s));
        if (!strstr(resp, key))
            fail_msg("/v1/status lacks stage %s", its_stage_name((its_stage)s));
    }
    its_sleep_ns(500 * ITS_NS_PER_MS);
    assert_true(http("DELETE", "/v1/cameras/d", NULL, resp, sizeof resp) > 0);
    assert_non_null(strstr(resp, "removed"));
    /* replace camera a by c */
    snprintf(cams, sizeof cams,
             "  - id: b\n    url: %s/traffic_bridge_720p.mp4\n    kind: replay\n"
             "    fps: 20\n    replay_frames: 10\n    loop: true\n"
             "  - id: c\n    url: %s/traffic_bridge_720p.mp4\n    kind: replay\n"
             "    fps: 20\n    replay_frames: 10\n    loop: true\n",
             media, media);
    write_cfg(cfg, cams);
    kill(pid, SIGHUP);
    its_sleep_ns(1500 * ITS_NS_PER_MS);
    /* a broken file on reload keeps the daemon running as it was */
    assert_int_equal(its_test_write_file(cfg, "cameras: [\n", 11), 0);
    kill(pid, SIGHUP);
    its_sleep_ns(500 * ITS_NS_PER_MS);
    uint64_t t0 = its_now_ns();
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, 5.0), 0);
    assert_true(its_now_ns() - t0 < 5 * ITS_NS_PER_S);
    long a = its_test_count_in_file(out, "\"camera\":\"a\""),
         b = its_test_count_in_file(out, "\"camera\":\"b\""),
         c = its_test_count_in_file(out, "\"camera\":\"c\""),
         d = its_test_count_in_file(out, "\"camera\":\"d\"");
    assert_true(d > 0);
    if (!(a > 5 && b > 20 && c > 5))
        fail_msg("messages: a %ld b %ld c %ld", a, b, c);
    assert_true(b > a && b > c);
    assert_true(its_test_count_in_file(err, "reloaded") == 1);
    assert_true(its_test_count_in_file(err, "reload failed") == 1);
    assert_true(its_test_count_in_file(err, "status: backend noop") >= 3);
    /* the summary: in = processed + dropped for each camera, as printed */
    size_t len;
    char *e = (char *)its_test_read_file(err, &len);
    assert_non_null(e);
    e[len - 1] = 0;
    int seen = 0;
    for (char *p = strstr(e, "itsd: camera "); p; p = strstr(p + 1, "itsd: camera ")) {
        char id[32];
        unsigned long long in, processed, dropped;
        assert_int_equal(sscanf(p, "itsd: camera %31[^:]: in %llu, processed %llu, dropped %llu",
                                id, &in, &processed, &dropped),
                         4);
        assert_int_equal(in, processed + dropped);
        seen++;
    }
    assert_int_equal(seen, 2); /* the cameras present at the end: b and c */
    its_free(e);
}

/* POST /v1/cameras/{id}/frames: a JPEG pushed to a camera of kind "push" goes through the
 * pipeline and comes out as a result message; bad images and unknown cameras are refused. */
static void test_push_frames(void **state)
{
    char cfg[400], out[400], err[400], path[600];
    snprintf(cfg, sizeof cfg, "%s/push.yaml", dir);
    snprintf(out, sizeof out, "%s/push.jsonl", dir);
    snprintf(err, sizeof err, "%s/push.err", dir);
    snprintf(path, sizeof path, "%s/zidane.jpg", media);
    size_t len;
    uint8_t *jpeg = its_test_read_file(path, &len);
    assert_non_null(jpeg);
    g_api_port = its_test_free_port();
    write_cfg(cfg, "  - id: p\n    url: \"push:\"\n    kind: push\n");
    pid_t pid = spawn(cfg, NULL, out, err);
    int code = -1;
    uint64_t until = its_now_ns() + 20 * ITS_NS_PER_S;
    while (code != 202 && its_now_ns() < until) {
        its_sleep_ns(100 * ITS_NS_PER_MS);
        code = http_post_bytes("/v1/cameras/p/frames", "image/jpeg", jpeg, len);
    }
    assert_int_equal(code, 202);
    for (int i = 0; i < 4; i++) {
        its_sleep_ns(50 * ITS_NS_PER_MS);
        code = http_post_bytes("/v1/cameras/p/frames", "image/jpeg", jpeg, len);
        assert_true(code == 202 || code == 429); /* 429: every frame buffer busy */
    }
    assert_int_equal(http_post_bytes("/v1/cameras/p/frames", "image/jpeg", jpeg, len / 4), 400);
    assert_int_equal(http_post_bytes("/v1/cameras/zz/frames", "image/jpeg", jpeg, len), 404);
    its_sleep_ns(500 * ITS_NS_PER_MS);
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, 5.0), 0);
    if (its_test_count_in_file(out, "\"camera\":\"p\"") < 1 ||
        its_test_count_in_file(out, "\"width\":1280") < 1)
        fail_msg("no result message for the pushed frames in %s", out);
    its_free(jpeg);
}

/* GET /v1/cameras/{id}/analytics: the window the Redis sink cached, read through the API's
 * L1 + Redis cache, with a real redis-server. */
static void test_analytics_endpoint(void **state)
{
    if (system("command -v redis-server >/dev/null 2>&1") != 0) {
        ITS_TEST_SKIP("redis-server not installed");
    }
    char cfg[400], out[400], err[400], rlog[400], scene[600], port_s[16], buf[8192];
    snprintf(cfg, sizeof cfg, "%s/an.yaml", dir);
    snprintf(out, sizeof out, "%s/an.jsonl", dir);
    snprintf(err, sizeof err, "%s/an.err", dir);
    snprintf(rlog, sizeof rlog, "%s/redis.log", dir);
    its_test_source_path("deploy/scenes/traffic_bridge_720p.yaml", scene, sizeof scene);
    int rport = its_test_free_port();
    snprintf(port_s, sizeof port_s, "%d", rport);
    pid_t redis = fork();
    if (redis == 0) {
        int fd = open(rlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp("redis-server", "redis-server", "--port", port_s, "--bind", "127.0.0.1", "--save",
               "", "--appendonly", "no", (char *)NULL);
        _exit(127);
    }
    g_api_port = its_test_free_port();
    int n = snprintf(buf, sizeof buf,
                     "engine:\n  backend: noop\nanalytics:\n  window_s: 1\n"
                     "sink:\n  type: \"null\"\nredis:\n  host: 127.0.0.1\n  port: %d\n"
                     "api:\n  port: %d\ncameras:\n"
                     "  - {id: x, url: %s/traffic_bridge_720p.mp4, kind: replay, fps: 10, "
                     "replay_frames: 20, loop: true, scene: %s}\n",
                     rport, g_api_port, media, scene);
    assert_int_equal(its_test_write_file(cfg, buf, (size_t)n), 0);
    pid_t pid = spawn(cfg, NULL, out, err);
    static char resp[1 << 16];
    int found = 0;
    uint64_t until = its_now_ns() + 20 * ITS_NS_PER_S;
    while (!found && its_now_ns() < until) {
        its_sleep_ns(200 * ITS_NS_PER_MS);
        found = http("GET", "/v1/cameras/x/analytics", NULL, resp, sizeof resp) > 0 &&
                strstr(resp, " 200 ") && strstr(resp, "\"type\":\"window\"");
    }
    assert_true(http("GET", "/v1/cameras/nope/analytics", NULL, resp, sizeof resp) > 0);
    int unknown_is_404 = strstr(resp, " 404 ") != NULL;
    kill(pid, SIGTERM);
    int st = wait_exit(pid, 5.0);
    kill(redis, SIGTERM);
    waitpid(redis, NULL, 0);
    assert_true(found);
    assert_true(unknown_is_404);
    assert_int_equal(st, 0);
    /* the summary: every message is camera x's, so its line holds the totals, by reason */
    size_t len;
    char *e = (char *)its_test_read_file(err, &len);
    assert_non_null(e);
    e[len - 1] = 0;
    char *cl = strstr(e, "itsd: camera x: "), *rl = strstr(e, "itsd: redis: sent ");
    assert_non_null(cl);
    assert_non_null(rl);
    unsigned long long pub, rep, drop, r[5], sent, drop_all, g[5];
    char *pp = strstr(cl, ", published ");
    assert_true(pp && pp < rl);
    assert_int_equal(
        sscanf(pp,
               ", published %llu (replayed %llu), publish dropped %llu (outbox_full "
               "%llu, queue_full %llu, too_large %llu, redis_error %llu, closing %llu)",
               &pub, &rep, &drop, &r[0], &r[1], &r[2], &r[3], &r[4]),
        8);
    assert_int_equal(sscanf(rl, "itsd: redis: sent %llu", &sent), 1);
    char *gd = strstr(rl, "), dropped ");
    assert_non_null(gd);
    assert_int_equal(sscanf(gd,
                            "), dropped %llu (outbox_full %llu, queue_full %llu, too_large %llu, "
                            "redis_error %llu, closing %llu)",
                            &drop_all, &g[0], &g[1], &g[2], &g[3], &g[4]),
                     6);
    assert_true(pub > 0);
    assert_true(pub == sent);
    assert_true(drop == r[0] + r[1] + r[2] + r[3] + r[4]);
    assert_true(drop == drop_all);
    for (int i = 0; i < 5; i++)
        assert_true(r[i] == g[i]);
    its_free(e);
}

int main(void)
{
    const char *bin = getenv("ITS_BINARY_DIR");
    snprintf(itsd, sizeof itsd, "%s/tools/itsd/itsd", bin ? bin : ".");
    if (access(itsd, X_OK) != 0 || !its_test_shared_path("media", media, sizeof media))
        return its_test_skip("itsd binary or shared media missing");
    its_test_tmpdir(dir, sizeof dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_and_print),
        cmocka_unit_test(test_reload_and_term),
        cmocka_unit_test(test_push_frames),
        cmocka_unit_test(test_analytics_endpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
