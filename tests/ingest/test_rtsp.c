/*
 * RTSP against a real server: GStreamer's gst-rtsp-server (tests/ingest/rtsp_server.py) serves
 * a sample video and itsd's source (FFmpeg) ingests it, over TCP (interleaved) and over UDP;
 * the server killed mid-stream and started again is reconnected to with backoff, counted; a
 * server that accepts the connection and never answers is an open failure bounded by the
 * stall timeout, again and again, and stopping the source does not wait for it. Without
 * GStreamer the test is skipped, and under CI=true it fails.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "its/core.h"
#include "its/ingest.h"
#include "testutil.h"

#define PYTHON "/usr/bin/python3" /* Debian's, where python3-gi lives */

static char media[512], script[512];

typedef struct sink {
    pthread_mutex_t mu;
    uint64_t n;
    int w, h;
} sink;

static void on_frame(its_frame *f, void *ctx)
{
    sink *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->n++;
    s->w = f->width;
    s->h = f->height;
    pthread_mutex_unlock(&s->mu);
    its_frame_unref(f);
}

static uint64_t count(sink *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static int wait_frames(sink *s, uint64_t target, double seconds)
{
    uint64_t end = its_now_ns() + (uint64_t)(seconds * 1e9);
    while (its_now_ns() < end) {
        if (count(s) >= target)
            return 1;
        its_sleep_ns(20 * ITS_NS_PER_MS);
    }
    return 0;
}

static int server_out = -1; /* the server's stdout, kept open while it runs */

/* The RTSP server on port; its pid once it printed "ready", or -1. */
static pid_t server_start(int port)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(p[1], 1);
        close(p[0]);
        char port_s[16];
        snprintf(port_s, sizeof port_s, "%d", port);
        execl(PYTHON, PYTHON, script, "--port", port_s, "--media", media, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char buf[64];
    size_t len = 0;
    uint64_t end = its_now_ns() + 30 * ITS_NS_PER_S;
    while (its_now_ns() < end && len + 1 < sizeof buf) {
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        if (poll(&pf, 1, 200) <= 0)
            continue;
        ssize_t n = read(p[0], buf + len, sizeof buf - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = 0;
        if (strstr(buf, "ready")) {
            server_out = p[0];
            return pid;
        }
    }
    close(p[0]);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void server_kill(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(server_out);
    server_out = -1;
}

static its_source_t *rtsp_source(int port, int udp, sink *s)
{
    char url[128];
    snprintf(url, sizeof url, "rtsp://127.0.0.1:%d/cam", port);
    its_source_opts o;
    its_source_opts_default(&o);
    o.id = udp ? "rtsp-udp" : "rtsp-tcp";
    o.url = url;
    o.rtsp_udp = udp;
    o.stall_timeout_ms = 3000;
    o.backoff_min_ms = 100;
    o.backoff_max_ms = 400;
    its_source_t *src = NULL;
    char err[256];
    assert_int_equal(its_source_create(&o, on_frame, s, &src, err, sizeof err), 0);
    assert_int_equal(its_source_start(src), 0);
    return src;
}

/* The same stream over TCP and over UDP: frames of the video's size arrive. */
static void test_tcp_and_udp(void **state)
{
    int port = its_test_free_port();
    pid_t srv = server_start(port);
    assert_true(srv > 0);
    for (int udp = 0; udp < 2; udp++) {
        sink s = {.mu = PTHREAD_MUTEX_INITIALIZER};
        its_source_t *src = rtsp_source(port, udp, &s);
        int got = wait_frames(&s, 30, 20);
        its_source_stats st;
        its_source_get_stats(src, &st);
        print_message("%s: %llu frames %dx%d, last error '%s'\n", udp ? "udp" : "tcp",
                      (unsigned long long)count(&s), s.w, s.h, st.last_error);
        its_source_destroy(src);
        assert_true(got);
        assert_int_equal(s.w, 1280);
        assert_int_equal(s.h, 720);
    }
    server_kill(srv);
}

/* The server dies mid-stream and comes back on the same port: the source reconnects with
 * backoff (counted in its stats, which feed its_camera_reconnects_total) and frames flow
 * again. */
static void test_server_restart(void **state)
{
    int port = its_test_free_port();
    pid_t srv = server_start(port);
    assert_true(srv > 0);
    sink s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    its_source_t *src = rtsp_source(port, 0, &s);
    assert_true(wait_frames(&s, 15, 20));
    its_source_stats before;
    its_source_get_stats(src, &before);
    server_kill(srv);
    its_sleep_ns(700 * ITS_NS_PER_MS); /* down for a while: connects are refused */
    uint64_t n0 = count(&s);
    srv = server_start(port);
    assert_true(srv > 0);
    int again = wait_frames(&s, n0 + 15, 20);
    its_source_stats after;
    its_source_get_stats(src, &after);
    print_message("restart: %llu frames before, %llu after; reconnects %llu -> %llu, open "
                  "failures %llu\n",
                  (unsigned long long)n0, (unsigned long long)count(&s),
                  (unsigned long long)before.reconnects, (unsigned long long)after.reconnects,
                  (unsigned long long)after.open_failures);
    its_source_destroy(src);
    server_kill(srv);
    assert_true(again);
    assert_true(after.reconnects > before.reconnects);
}

/* A server that accepts and then says nothing: each open gives up after the stall timeout
 * (1 s), is counted, and is retried; stopping the source returns at once. */
static void test_accepts_then_stalls(void **state)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 16), 0);
    socklen_t al = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    char url[128];
    snprintf(url, sizeof url, "rtsp://127.0.0.1:%d/cam", ntohs(a.sin_port));
    its_source_opts o;
    its_source_opts_default(&o);
    o.id = "rtsp-stall";
    o.url = url;
    o.stall_timeout_ms = 1000;
    o.backoff_min_ms = 100;
    o.backoff_max_ms = 200;
    sink s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    its_source_t *src = NULL;
    assert_int_equal(its_source_create(&o, on_frame, &s, &src, NULL, 0), 0);
    assert_int_equal(its_source_start(src), 0);
    its_sleep_ns(3500 * ITS_NS_PER_MS);
    its_source_stats st;
    its_source_get_stats(src, &st);
    uint64_t t0 = its_now_ns();
    its_source_stop(src);
    double stop_ms = (double)(its_now_ns() - t0) / 1e6;
    print_message("stalled server: %llu open failures in 3.5 s, stop took %.1f ms, last error "
                  "'%s'\n",
                  (unsigned long long)st.open_failures, stop_ms, st.last_error);
    its_source_destroy(src);
    close(lfd);
    assert_int_equal(count(&s), 0);
    assert_true(st.open_failures >= 2);
    assert_true(st.state != ITS_SOURCE_RUNNING);
    assert_true(stop_ms < 1000);
}

int main(void)
{
    if (!its_test_shared_path("media/traffic_bridge_720p.mp4", media, sizeof media))
        return its_test_skip("shared media missing");
    its_test_source_path("tests/ingest/rtsp_server.py", script, sizeof script);
    pid_t pid = fork();
    if (pid == 0) {
        execl(PYTHON, PYTHON, script, "--check", (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return its_test_skip("GStreamer's RTSP server (gir1.2-gst-rtsp-server-1.0, python3-gi, "
                             "gstreamer1.0-plugins-good/-bad) missing");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_and_udp),
        cmocka_unit_test(test_server_restart),
        cmocka_unit_test(test_accepts_then_stalls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
