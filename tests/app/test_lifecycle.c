/* itsd under real operations, driven as an operator would (HTTP API, signals):
 * - 2,000 camera add/remove cycles over the API: every add is accepted and the daemon's RSS
 *   stays within 5% of its size after warm-up (slots, frame pools and clips are released);
 * - a camera on a FIFO that never gets data is deleted at once, the API keeps answering, and
 *   a daemon with such a camera (and one on a server that accepts and never answers) stops
 *   within shutdown.drain_s + 5 s of SIGTERM;
 * - SIGHUP reloads are applied as a whole, as many as there are, and one that cannot be
 *   applied is rolled back as a whole. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "its/core.h"
#include "its/engine.h"
#include "mkvideo.h"
#include "testutil.h"

#define DRAIN_S 1

static char itsd[1024], dir[256], clip_a[400], clip_b[400], model[600];
static int g_port;
static pid_t g_pid; /* the daemon under test, killed by the teardown if a check failed */

static pid_t spawn(const char *cfg, const char *out, const char *errf)
{
    pid_t pid = g_pid = fork();
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(o, 1);
        dup2(e, 2);
        execl(itsd, itsd, "-c", cfg, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* The exit status, or -1 (then killed) if it has not exited within `seconds`. */
static int wait_exit(pid_t pid, double seconds)
{
    uint64_t end = its_now_ns() + (uint64_t)(seconds * 1e9);
    int st;
    while (its_now_ns() < end) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        its_sleep_ns(10 * ITS_NS_PER_MS);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* One HTTP/1.0 request that gives up after timeout_s: the status code (body into buf), or -1
 * (no connection, or no answer in time). */
static int http(const char *method, const char *path, const char *body, char *buf, size_t len,
                double timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {(time_t)timeout_s, (long)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    char req[1024];
    size_t bl = body ? strlen(body) : 0;
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, bl);
    if (write(fd, req, (size_t)n) != n || (bl && write(fd, body, bl) != (ssize_t)bl)) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    ssize_t r;
    while (got + 1 < len && (r = read(fd, buf + got, len - 1 - got)) > 0)
        got += (size_t)r;
    buf[got] = 0;
    close(fd);
    int code = -1;
    if (sscanf(buf, "HTTP/%*s %d", &code) != 1)
        return -1;
    char *b = strstr(buf, "\r\n\r\n");
    if (b)
        memmove(buf, b + 4, strlen(b + 4) + 1);
    return code;
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static void write_cfg(const char *path, int max_cameras, const char *cams)
{
    char buf[8192];
    int n = snprintf(buf, sizeof buf,
                     "engine:\n  backend: noop\n  noop_cost_us: 0\n"
                     "ingest:\n  max_cameras: %d\n"
                     "status:\n  interval_s: 0\n"
                     "shutdown:\n  drain_s: %d\n"
                     "sink:\n  type: null\n"
                     "api:\n  port: %d\n"
                     "cameras:\n%s",
                     max_cameras, DRAIN_S, g_port, cams);
    assert_true(n > 0 && n < (int)sizeof buf);
    assert_int_equal(its_test_write_file(path, buf, (size_t)n), 0);
}

/* Wait until GET path answers 200 (up to 30 s). */
static void wait_200(const char *path)
{
    static char resp[1 << 16];
    uint64_t until = its_now_ns() + 30 * ITS_NS_PER_S;
    while (its_now_ns() < until) {
        if (http("GET", path, NULL, resp, sizeof resp, 2.0) == 200)
            return;
        its_sleep_ns(50 * ITS_NS_PER_MS);
    }
    fail_msg("GET %s never answered 200", path);
}

/* GET /v1/cameras/{id}: the camera's fps and state, or 0 if it answers 404. */
static int camera(const char *id, double *fps, char *state, size_t slen)
{
    static char resp[1 << 16];
    char path[128];
    snprintf(path, sizeof path, "/v1/cameras/%s", id);
    int code = http("GET", path, NULL, resp, sizeof resp, 5.0);
    if (code == 404)
        return 0;
    if (code != 200)
        fail_msg("GET %s: %d %s", path, code, resp);
    json_t *j = json_loads(resp, 0, NULL);
    assert_non_null(j);
    *fps = json_number_value(json_object_get(j, "fps"));
    snprintf(state, slen, "%s", json_string_value(json_object_get(j, "state")));
    json_decref(j);
    return 1;
}

static int teardown(void **state)
{
    (void)state;
    if (g_pid > 0 && waitpid(g_pid, NULL, WNOHANG) == 0) {
        kill(g_pid, SIGKILL);
        waitpid(g_pid, NULL, 0);
    }
    g_pid = 0;
    return 0;
}

/* ---- 2,000 add/remove cycles ---- */

/* Under the sanitizers (ten times slower, and an allocator that keeps freed memory in
 * quarantine) fewer cycles check for memory errors and leaks; RSS is reported, not asserted. */
#ifdef ITS_TEST_SANITIZED
#define CYCLES 200
#define WARMUP 50
#else
#define CYCLES 2000
#define WARMUP 300
#endif

static void test_add_remove_cycles(void **state)
{
    (void)state;
    char cfg[400], out[400], err[400];
    snprintf(cfg, sizeof cfg, "%s/cycles.yaml", dir);
    snprintf(out, sizeof out, "%s/cycles.out", dir);
    snprintf(err, sizeof err, "%s/cycles.err", dir);
    /* 16 slots: every slot is reused over a hundred times */
    char cams[1024];
    snprintf(cams, sizeof cams,
             "  - id: base\n    url: %s\n    kind: replay\n    fps: 30\n    loop: true\n", clip_a);
    write_cfg(cfg, 16, cams);
    pid_t pid = spawn(cfg, out, err);
    wait_200("/readyz");
    static char resp[1 << 16];
    long rss_warm = 0, rss_max = 0, rss_end = 0;
    uint64_t t0 = its_now_ns();
    for (int i = 0; i < CYCLES; i++) {
        /* cameras come and go under a few ids, as on a site; a replay of a clip of its own
         * (loaded and freed with the camera) and a file camera (its frame pools) in turn */
        char id[32], body[1024], path[128];
        snprintf(id, sizeof id, "cyc-%d", i % 4);
        snprintf(body, sizeof body,
                 "{\"id\": \"%s\", \"url\": \"%s\", \"kind\": \"%s\", \"loop\": true, "
                 "\"fps\": 30}",
                 id, i % 2 ? clip_b : clip_a, i % 2 ? "replay" : "file");
        int code = http("POST", "/v1/cameras", body, resp, sizeof resp, 10.0);
        if (code != 201)
            fail_msg("cycle %d: POST /v1/cameras answered %d: %s", i, code, resp);
        if (i % 16 == 0) /* now and then the camera delivers frames before it goes */
            its_sleep_ns(30 * ITS_NS_PER_MS);
        snprintf(path, sizeof path, "/v1/cameras/%s", id);
        code = http("DELETE", path, NULL, resp, sizeof resp, 10.0);
        if (code != 200)
            fail_msg("cycle %d: DELETE %s answered %d: %s", i, path, code, resp);
        /* RSS at rest (the cameras removed so far reclaimed, their memory returned): after
         * the warm-up, half-way and at the end */
        if (i == WARMUP - 1 || i == CYCLES / 2 || i == CYCLES - 1) {
            its_sleep_ns(1500 * ITS_NS_PER_MS);
            long r = rss_kb(pid);
            for (int k = 0; k < 5; k++) { /* the least of a few: transients are upward */
                its_sleep_ns(200 * ITS_NS_PER_MS);
                long q = rss_kb(pid);
                r = q < r ? q : r;
            }
            if (i == WARMUP - 1)
                rss_warm = r;
            rss_max = r > rss_max ? r : rss_max;
            rss_end = r;
            if (getenv("ITS_TEST_VERBOSE"))
                print_message("cycle %d: RSS %ld kB at rest\n", i, r);
        }
    }
    double secs = (double)(its_now_ns() - t0) / 1e9;
    /* the daemon still works: the permanent camera is there and running */
    double fps;
    char st[32];
    assert_int_equal(camera("base", &fps, st, sizeof st), 1);
    assert_string_equal(st, "running");
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, DRAIN_S + 5), 0);
    print_message("%d add/remove cycles in %.1f s; RSS at rest %ld kB after warm-up, at most "
                  "%ld kB after, %ld kB at the end\n",
                  CYCLES, secs, rss_warm, rss_max, rss_end);
    assert_true(rss_warm > 0);
#ifndef ITS_TEST_SANITIZED
    if ((double)rss_end > (double)rss_warm * 1.05)
        fail_msg("RSS grew from %ld kB to %ld kB (more than 5%%)", rss_warm, rss_end);
#endif
}

/* ---- sources that block ---- */

static int silent_listener(int *port)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    listen(lfd, 16); /* the kernel accepts; nothing ever answers */
    socklen_t al = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    *port = ntohs(a.sin_port);
    return lfd;
}

static void test_blocked_sources(void **state)
{
    (void)state;
    char cfg[400], out[400], err[400], fifo[400], fifo2[400];
    snprintf(cfg, sizeof cfg, "%s/fifo.yaml", dir);
    snprintf(out, sizeof out, "%s/fifo.out", dir);
    snprintf(err, sizeof err, "%s/fifo.err", dir);
    snprintf(fifo, sizeof fifo, "%s/cam.fifo", dir);
    snprintf(fifo2, sizeof fifo2, "%s/cam2.fifo", dir);
    unlink(fifo);
    unlink(fifo2);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(mkfifo(fifo2, 0600), 0);
    int sport;
    int lfd = silent_listener(&sport);
    char cams[2048];
    snprintf(cams, sizeof cams,
             "  - id: base\n    url: %s\n    kind: replay\n    fps: 30\n    loop: true\n"
             "  - id: fifo\n    url: %s\n    kind: file\n"
             "  - id: silent\n    url: http://127.0.0.1:%d/cam.mjpeg\n    kind: http\n",
             clip_a, fifo, sport);
    write_cfg(cfg, 16, cams);
    pid_t pid = spawn(cfg, out, err);
    wait_200("/readyz");
    its_sleep_ns(300 * ITS_NS_PER_MS); /* the FIFO camera's thread is inside open(2) */
    static char resp[1 << 16];
    /* deleting it answers at once, and the API keeps answering */
    uint64_t t0 = its_now_ns();
    int code = http("DELETE", "/v1/cameras/fifo", NULL, resp, sizeof resp, 5.0);
    double del_s = (double)(its_now_ns() - t0) / 1e9;
    int health = http("GET", "/healthz", NULL, resp, sizeof resp, 5.0);
    char body[1024];
    snprintf(body, sizeof body, "{\"id\": \"fifo2\", \"url\": \"%s\", \"kind\": \"file\"}", fifo2);
    int added = http("POST", "/v1/cameras", body, resp, sizeof resp, 5.0);
    its_sleep_ns(300 * ITS_NS_PER_MS);
    /* SIGTERM with a camera blocked in open(2) and one on a server that never answers */
    t0 = its_now_ns();
    kill(pid, SIGTERM);
    int rc = wait_exit(pid, DRAIN_S + 5 + 5);
    double term_s = (double)(its_now_ns() - t0) / 1e9;
    close(lfd);
    unlink(fifo);
    unlink(fifo2);
    print_message("DELETE of the FIFO camera: %d in %.3f s; SIGTERM: exit %d in %.2f s\n", code,
                  del_s, rc, term_s);
    assert_int_equal(code, 200);
    assert_true(del_s < 1.0);
    assert_int_equal(health, 200);
    assert_int_equal(added, 201);
    assert_int_equal(rc, 0);
    if (term_s > DRAIN_S + 5)
        fail_msg("SIGTERM took %.2f s (bound: drain_s %d + 5 s)", term_s, DRAIN_S);
}

/* ---- SIGHUP ---- */

static void reload_cams(char *buf, size_t len, double a_fps, double b_fps, const char *extra)
{
    snprintf(buf, len,
             "  - id: a\n    url: %s\n    kind: replay\n    fps: %g\n    loop: true\n"
             "  - id: b\n    url: %s\n    kind: replay\n    fps: %g\n    loop: true\n%s",
             clip_a, a_fps, clip_b, b_fps, extra ? extra : "");
}

/* Wait until camera id runs at fps (a reload applied), up to 10 s. */
static int wait_camera(const char *id, double want_fps)
{
    uint64_t until = its_now_ns() + 10 * ITS_NS_PER_S;
    double fps = 0;
    char st[32] = "";
    while (its_now_ns() < until) {
        if (camera(id, &fps, st, sizeof st) && fps == want_fps && strcmp(st, "running") == 0)
            return 1;
        its_sleep_ns(20 * ITS_NS_PER_MS);
    }
    print_message("camera %s: fps %g, state '%s' (want %g, running)\n", id, fps, st, want_fps);
    return 0;
}

static void test_reload_whole_or_rolled_back(void **state)
{
    (void)state;
    char cfg[400], out[400], err[400], cams[2048];
    snprintf(cfg, sizeof cfg, "%s/reload.yaml", dir);
    snprintf(out, sizeof out, "%s/reload.out", dir);
    snprintf(err, sizeof err, "%s/reload.err", dir);
    reload_cams(cams, sizeof cams, 20, 20, NULL);
    write_cfg(cfg, 4, cams); /* 4 slots for 2 cameras: reloads must give slots back */
    pid_t pid = spawn(cfg, out, err);
    wait_200("/readyz");
    /* 12 reloads, each replacing camera a (its fps changes) */
    for (int i = 1; i <= 12; i++) {
        reload_cams(cams, sizeof cams, 20 + i, 20, NULL);
        write_cfg(cfg, 4, cams);
        kill(pid, SIGHUP);
        if (!wait_camera("a", 20 + i) || !wait_camera("b", 20)) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fail_msg("reload %d was not applied", i);
        }
    }
    /* a reload that cannot be applied: b changes and c's clip does not exist. Nothing of it
     * stays: b runs as before, c is absent, a is untouched */
    char missing[512];
    snprintf(missing, sizeof missing,
             "  - id: c\n    url: %s/no-such-clip.mp4\n    kind: replay\n    fps: 30\n", dir);
    reload_cams(cams, sizeof cams, 32, 25, missing);
    write_cfg(cfg, 4, cams);
    kill(pid, SIGHUP);
    uint64_t until = its_now_ns() + 10 * ITS_NS_PER_S;
    while (its_test_count_in_file(err, "rolled back") < 1 && its_now_ns() < until)
        its_sleep_ns(20 * ITS_NS_PER_MS);
    double fps;
    char st[32];
    int rolled = its_test_count_in_file(err, "rolled back") == 1;
    int b_back = wait_camera("b", 20);
    int a_same = wait_camera("a", 32);
    int c_absent = camera("c", &fps, st, sizeof st) == 0;
    /* and the next good reload is applied */
    reload_cams(cams, sizeof cams, 33, 21, NULL);
    write_cfg(cfg, 4, cams);
    kill(pid, SIGHUP);
    int next_ok = wait_camera("a", 33) && wait_camera("b", 21);
    kill(pid, SIGTERM);
    int rc = wait_exit(pid, DRAIN_S + 5);
    assert_true(rolled);
    assert_true(b_back);
    assert_true(a_same);
    assert_true(c_absent);
    assert_true(next_ok);
    assert_int_equal(rc, 0);
}

/* ---- engine.fallback ---- */

/* engine.backend cuda where there is no GPU engine (no GPU, or a build without it): with
 * engine.fallback cpu (the default) itsd runs on the cpu engine, says so in its log and in
 * its_engine_fallback, and serves; with engine.fallback none it refuses to start. */
static void test_gpu_fallback(void **state)
{
    (void)state;
    char cfg[400], out[400], err[400], buf[4096];
    snprintf(cfg, sizeof cfg, "%s/fallback.yaml", dir);
    snprintf(out, sizeof out, "%s/fallback.out", dir);
    snprintf(err, sizeof err, "%s/fallback.err", dir);
    int gpu = its_engine_backend_available("cuda");
    for (int none = 0; none < 2; none++) {
        int n = snprintf(buf, sizeof buf,
                         "engine:\n  backend: cuda\n  model: %s\n  fallback: %s\n"
                         "status:\n  interval_s: 0\n"
                         "shutdown:\n  drain_s: %d\n"
                         "sink:\n  type: null\n"
                         "api:\n  port: %d\n"
                         "cameras:\n  - id: a\n    url: %s\n    kind: replay\n    fps: 10\n"
                         "    loop: true\n",
                         model, none ? "none" : "cpu", DRAIN_S, g_port, clip_a);
        assert_int_equal(its_test_write_file(cfg, buf, (size_t)n), 0);
        pid_t pid = spawn(cfg, out, err);
        if (none) {
            int rc = wait_exit(pid, 60);
            if (gpu) { /* a GPU engine was there: nothing to fall back from */
                kill(pid, SIGTERM);
                continue;
            }
            assert_int_equal(rc, 1);
            assert_true(its_test_count_in_file(err, "not available") >= 1);
            continue;
        }
        wait_200("/readyz");
        static char resp[1 << 16];
        uint64_t until = its_now_ns() + 30 * ITS_NS_PER_S;
        double frames = 0;
        while (frames < 5 && its_now_ns() < until) { /* frames through the engine */
            its_sleep_ns(100 * ITS_NS_PER_MS);
            if (http("GET", "/v1/cameras/a", NULL, resp, sizeof resp, 5.0) == 200) {
                json_t *j = json_loads(resp, 0, NULL);
                frames = json_number_value(json_object_get(j, "frames"));
                json_decref(j);
            }
        }
        int mc = http("GET", "/metrics", NULL, resp, sizeof resp, 5.0);
        kill(pid, SIGTERM);
        int rc = wait_exit(pid, DRAIN_S + 5);
        assert_int_equal(mc, 200);
        assert_true(frames >= 5);
        assert_int_equal(rc, 0);
        if (gpu) {
            assert_non_null(strstr(resp, "its_engine_fallback{backend=\"cuda\"} 0"));
        } else {
            assert_non_null(strstr(resp, "its_engine_fallback{backend=\"cuda\"} 1"));
            assert_non_null(
                strstr(resp, "its_errors_total{module=\"engine\",kind=\"fallback\"} 1"));
            assert_true(its_test_count_in_file(err, "running on the cpu engine instead") >= 1);
        }
    }
}

int main(void)
{
    const char *bin = getenv("ITS_BINARY_DIR");
    snprintf(itsd, sizeof itsd, "%s/tools/itsd/itsd", bin ? bin : ".");
    if (access(itsd, X_OK) != 0)
        return its_test_skip("itsd binary missing");
    its_test_tmpdir(dir, sizeof dir);
    /* two small clips (160x120 MJPEG, 20 frames) */
    snprintf(clip_a, sizeof clip_a, "%s/a.mjpeg", dir);
    snprintf(clip_b, sizeof clip_b, "%s/b.mjpeg", dir);
    mkv_segment seg = {160, 120, 20};
    if (mkv_write_mjpeg(clip_a, &seg, 1) < 0 || mkv_write_mjpeg(clip_b, &seg, 1) < 0)
        return its_test_skip("cannot write the test clips");
    g_port = its_test_free_port();
    if (!its_test_shared_path("models/yolo11n-fp32-dequant/yolo11n_fp32_dequant.onnx", model,
                              sizeof model))
        return its_test_skip("shared model missing");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_blocked_sources, teardown),
        cmocka_unit_test_teardown(test_reload_whole_or_rolled_back, teardown),
        cmocka_unit_test_teardown(test_add_remove_cycles, teardown),
        cmocka_unit_test_teardown(test_gpu_fallback, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
