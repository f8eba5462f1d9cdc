/* Camera sources: files, pacing, pool exhaustion, replay with phase, and a live HTTP camera
 * (a small server in this test) that dies, stalls and comes back. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "its/core.h"
#include "its/ingest.h"
#include "mkvideo.h"
#include "testutil.h"

static char media[512];

typedef struct sink {
    pthread_mutex_t mu;
    uint64_t n;
    uint64_t next_seq;
    int64_t last_pts;
    int order_ok;
    int hold; /* keep frames instead of releasing them */
    its_frame *held[64];
    int n_held;
    const uint8_t *first_data;
    const uint8_t *datas[8]; /* pixels of the first 8 frames */
    int w, h;
} sink;

static void on_frame(its_frame *f, void *ctx)
{
    sink *s = ctx;
    pthread_mutex_lock(&s->mu);
    if (f->seq != s->next_seq || (s->n && f->pts_ns <= s->last_pts))
        s->order_ok = 0; /* seq without gaps, media time strictly increasing */
    s->last_pts = f->pts_ns;
    s->next_seq = f->seq + 1;
    if (!s->n)
        s->first_data = f->data;
    if (s->n < 8)
        s->datas[s->n] = f->data;
    s->n++;
    s->w = f->width;
    s->h = f->height;
    if (f->ts_ns[ITS_TS_CAPTURE] == 0 || f->data == NULL)
        s->order_ok = 0;
    if (s->hold && s->n_held < 64) {
        s->held[s->n_held++] = f;
        f = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    its_frame_unref(f);
}

static void sink_init(sink *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->order_ok = 1;
}

static uint64_t sink_count(sink *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void sink_release(sink *s)
{
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_held; i++)
        its_frame_unref(s->held[i]);
    s->n_held = 0;
    pthread_mutex_unlock(&s->mu);
}

static void test_file_once(void **state)
{
    char url[600];
    snprintf(url, sizeof url, "%s/traffic_bridge_720p.mp4", media);
    its_source_opts o;
    its_source_opts_default(&o);
    o.id = "cam-file";
    o.url = url;
    o.realtime = 0;
    o.pool_frames = 4;
    assert_int_equal(its_source_kind_of(url), ITS_SOURCE_FILE);
    sink s;
    sink_init(&s);
    its_source_t *src;
    char err[256];
    assert_int_equal(its_source_create(&o, on_frame, &s, &src, err, sizeof err), 0);
    assert_int_equal(its_source_start(src), 0);
    assert_int_equal(its_source_wait_end(src, 60 * ITS_NS_PER_S), 0);
    its_source_stats st;
    its_source_get_stats(src, &st);
    assert_int_equal(st.state, ITS_SOURCE_ENDED);
    assert_int_equal(st.frames, 144);
    assert_int_equal(st.dropped_no_buffer, 0);
    assert_int_equal(st.reconnects, 0);
    assert_int_equal(s.n, 144);
    assert_true(s.order_ok);
    assert_int_equal(s.w, 1280);
    its_source_destroy(src);
}

/* A configured pace on a looped file: 100 fps over a 40-frame clip loops once in 0.6 s. */
static void test_file_paced_loop(void **state)
{
    char dir[256], url[400];
    its_test_tmpdir(dir, sizeof dir);
    snprintf(url, sizeof url, "%s/small.mjpeg", dir);
    mkv_segment seg = {160, 120, 40};
    assert_int_equal(mkv_write_mjpeg(url, &seg, 1), 0);
    its_source_opts o;
    its_source_opts_default(&o);
    o.url = url;
    o.loop = 1;
    o.fps = 100;
    sink s;
    sink_init(&s);
    its_source_t *src;
    assert_int_equal(its_source_create(&o, on_frame, &s, &src, NULL, 0), 0);
    its_source_start(src);
    its_sleep_ns(600 * ITS_NS_PER_MS);
    its_source_stop(src);
    its_source_stats st;
    its_source_get_stats(src, &st);
    its_source_destroy(src);
    if (st.frames < 50 || st.frames > 66)
        fail_msg("%llu frames in 0.6 s at 100 fps", (unsigned long long)st.frames);
    assert_int_equal(st.loops, 1);
    assert_int_equal(st.state, ITS_SOURCE_STOPPED);
    assert_true(s.order_ok);
}

/* sample_fps: the 25 fps road video (1190 frames, ffprobe) sampled at 5 fps passes on every
 * fifth frame, 200 ms of media time apart: 238 frames, none counted as dropped; with phase_s
 * 0.1 the first one passed on is the frame nearest 100 ms (frame 2, 80 ms: within half a
 * frame period), then every fifth after it. */
typedef struct pts_log {
    pthread_mutex_t mu;
    int n;
    int64_t pts[300];
} pts_log;

static void on_frame_pts(its_frame *f, void *ctx)
{
    pts_log *l = ctx;
    pthread_mutex_lock(&l->mu);
    if (l->n < 300)
        l->pts[l->n] = f->pts_ns;
    l->n++;
    pthread_mutex_unlock(&l->mu);
    its_frame_unref(f);
}

static void test_file_sampled(void **state)
{
    (void)state;
    char url[600];
    snprintf(url, sizeof url, "%s/traffic_road_cctv_360p.mp4", media);
    for (int phased = 0; phased < 2; phased++) {
        its_source_opts o;
        its_source_opts_default(&o);
        o.url = url;
        o.realtime = 0;
        o.sample_fps = 5;
        o.phase_s = phased ? 0.1 : 0;
        pts_log l = {.n = 0};
        pthread_mutex_init(&l.mu, NULL);
        its_source_t *src;
        assert_int_equal(its_source_create(&o, on_frame_pts, &l, &src, NULL, 0), 0);
        its_source_start(src);
        assert_int_equal(its_source_wait_end(src, 60 * ITS_NS_PER_S), 0);
        its_source_stats st;
        its_source_get_stats(src, &st);
        its_source_destroy(src);
        assert_int_equal(l.n, 238); /* frames 0, 5, ... 1185 or 2, 7, ... 1187 */
        assert_int_equal(st.frames, (uint64_t)l.n);
        assert_int_equal(st.dropped_no_buffer, 0);
        assert_int_equal(l.pts[0], phased ? 80 * ITS_NS_PER_MS : 0);
        for (int i = 1; i < l.n && i < 300; i++)
            if (l.pts[i] - l.pts[i - 1] != 200 * (int64_t)ITS_NS_PER_MS)
                fail_msg("frame %d at %lld ns, the one before at %lld", i, (long long)l.pts[i],
                         (long long)l.pts[i - 1]);
        pthread_mutex_destroy(&l.mu);
    }
}

/* A pipeline that holds every buffer: the source drops new frames, counted, never blocks. */
static void test_pool_exhaustion(void **state)
{
    char url[600];
    snprintf(url, sizeof url, "%s/traffic_road_cctv_360p.mp4", media);
    its_source_opts o;
    its_source_opts_default(&o);
    o.url = url;
    o.realtime = 0;
    o.pool_frames = 3;
    sink s;
    sink_init(&s);
    s.hold = 1;
    its_source_t *src;
    assert_int_equal(its_source_create(&o, on_frame, &s, &src, NULL, 0), 0);
    its_source_start(src);
    assert_int_equal(its_source_wait_end(src, 60 * ITS_NS_PER_S), 0);
    its_source_stats st;
    its_source_get_stats(src, &st);
    assert_int_equal(st.frames, 3);
    assert_int_equal(st.frames + st.dropped_no_buffer, 1190);
    /* frames stay valid after the source is gone */
    its_source_destroy(src);
    assert_int_equal(s.held[2]->width, 640);
    assert_int_equal(s.held[2]->seq, 2);
    sink_release(&s);
}

/* Replay: one decode shared by every camera, a phase offset, a folder of photos. */
static void wait_running(its_source_t *s)
{
    uint64_t deadline = its_now_ns() + 30 * ITS_NS_PER_S;
    its_source_stats st;
    do {
        its_sleep_ns(5 * ITS_NS_PER_MS);
        its_source_get_stats(s, &st);
    } while (st.state != ITS_SOURCE_RUNNING && its_now_ns() < deadline);
    assert_int_equal(st.state, ITS_SOURCE_RUNNING);
}

static void test_replay(void **state)
{
    char url[600];
    snprintf(url, sizeof url, "%s/traffic_highway_curve_720p.mp4", media);
    its_source_opts o;
    its_source_opts_default(&o);
    o.url = url;
    o.kind = ITS_SOURCE_REPLAY;
    o.fps = 50;
    o.loop = 1;
    o.replay_frames = 20;
    o.phase_s = 0;
    sink a, b;
    sink_init(&a);
    sink_init(&b);
    its_source_t *sa, *sb;
    assert_int_equal(its_source_create(&o, on_frame, &a, &sa, NULL, 0), 0);
    o.phase_s = 0.1; /* 5 frames in at 50 fps */
    o.slot = 1;
    assert_int_equal(its_source_create(&o, on_frame, &b, &sb, NULL, 0), 0);
    its_source_start(sa);
    its_source_start(sb);
    /* the clip loads on the sources' threads (once, shared): the cadence starts after */
    wait_running(sa);
    its_sleep_ns(600 * ITS_NS_PER_MS);
    its_source_stop(sa);
    its_source_stop(sb);
    its_source_stats st;
    its_source_get_stats(sa, &st);
    /* 0.6 s at 50 fps: about 30 frames, so the 20-frame clip looped once */
    assert_true(st.frames >= 25 && st.frames <= 32);
    assert_int_equal(st.loops, 1);
    assert_true(a.order_ok && b.order_ok);
    assert_int_equal(a.w, 1280);
    /* the same clip in memory: b's first frame is a's sixth, the very same pixels */
    assert_non_null(a.first_data);
    assert_ptr_equal(b.first_data, a.datas[5]);
    assert_true(b.first_data != a.first_data);
    its_source_destroy(sa);
    its_source_destroy(sb);

    /* replay of a clip without loop ends after one pass */
    o.loop = 0;
    o.phase_s = 0;
    o.fps = 200;
    sink c;
    sink_init(&c);
    its_source_t *sc;
    assert_int_equal(its_source_create(&o, on_frame, &c, &sc, NULL, 0), 0);
    its_source_start(sc);
    assert_int_equal(its_source_wait_end(sc, 60 * ITS_NS_PER_S), 0); /* the clip loads again */
    assert_int_equal(c.n, 20);
    its_source_destroy(sc);

    /* a folder of photos, plus a file that is not an image (skipped) */
    char dir[256], p[600], q[700];
    its_test_tmpdir(dir, sizeof dir);
    const char *names[] = {"bus.jpg", "zidane.jpg", "dog.jpg"};
    for (int i = 0; i < 3; i++) {
        size_t len;
        snprintf(p, sizeof p, "%s/%s", media, names[i]);
        uint8_t *d = its_test_read_file(p, &len);
        assert_non_null(d);
        snprintf(q, sizeof q, "%s/%d.jpg", dir, i);
        assert_int_equal(its_test_write_file(q, d, len), 0);
        its_free(d);
    }
    snprintf(q, sizeof q, "%s/9.jpg", dir);
    assert_int_equal(its_test_write_file(q, "not a jpeg", 10), 0);
    its_source_opts_default(&o);
    o.url = dir;
    o.fps = 100;
    assert_int_equal(its_source_kind_of(dir), ITS_SOURCE_REPLAY);
    sink d;
    sink_init(&d);
    its_source_t *sd;
    assert_int_equal(its_source_create(&o, on_frame, &d, &sd, NULL, 0), 0);
    its_source_start(sd);
    assert_int_equal(its_source_wait_end(sd, 60 * ITS_NS_PER_S), 0);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.w, 768); /* dog.jpg, the last in name order */
    its_source_destroy(sd);

    /* a folder with nothing decodable is an error at create */
    char empty[256];
    its_test_tmpdir(empty, sizeof empty);
    o.url = empty;
    char err[256];
    /* a folder with nothing decodable ends the source, with the reason (the clip is decoded
     * on the source's thread, not in create) */
    sink e;
    sink_init(&e);
    its_source_t *se;
    assert_int_equal(its_source_create(&o, on_frame, &e, &se, err, sizeof err), 0);
    its_source_start(se);
    assert_int_equal(its_source_wait_end(se, 60 * ITS_NS_PER_S), 0);
    its_source_stats st2;
    its_source_get_stats(se, &st2);
    assert_int_equal(st2.state, ITS_SOURCE_ENDED);
    assert_int_equal(e.n, 0);
    assert_non_null(strstr(st2.last_error, empty));
    its_source_destroy(se);
    /* a path that does not exist is refused at create */
    char gone[300];
    snprintf(gone, sizeof gone, "%s/none", empty);
    o.url = gone;
    o.kind = ITS_SOURCE_REPLAY;
    assert_int_equal(its_source_create(&o, on_frame, &e, &se, err, sizeof err), ITS_ENOENT);
}

/* ---- a live MJPEG camera over HTTP that can die, stall and come back ---- */

typedef struct camserver {
    int port;
    int lfd;
    atomic_int cfd;
    const uint8_t *data;
    size_t len;
    atomic_int stop;
    atomic_int stall;
    atomic_int connections;
    pthread_t thread;
} camserver;

static void *cam_main(void *arg)
{
    camserver *c = arg;
    while (!atomic_load(&c->stop)) {
        int fd = accept(c->lfd, NULL, NULL);
        if (fd < 0)
            break;
        atomic_fetch_add(&c->connections, 1);
        atomic_store(&c->cfd, fd);
        char req[2048];
        ssize_t r = recv(fd, req, sizeof req, 0);
        (void)r;
        const char *hdr = "HTTP/1.0 200 OK\r\nContent-Type: video/x-motion-jpeg\r\n\r\n";
        int ok = send(fd, hdr, strlen(hdr), MSG_NOSIGNAL) > 0;
        size_t off = 0;
        while (ok && !atomic_load(&c->stop)) {
            if (atomic_load(&c->stall)) {
                its_sleep_ns(10 * ITS_NS_PER_MS);
                continue;
            }
            size_t n = ITS_MIN((size_t)4096, c->len - off);
            ok = send(fd, c->data + off, n, MSG_NOSIGNAL) > 0;
            off = (off + n) % c->len;
            its_sleep_ns(2 * ITS_NS_PER_MS);
        }
        atomic_store(&c->cfd, -1);
        close(fd);
    }
    return NULL;
}

static int cam_start(camserver *c)
{
    c->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(c->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(c->lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(c->lfd, 4) < 0)
        return -1;
    socklen_t al = sizeof a;
    getsockname(c->lfd, (struct sockaddr *)&a, &al);
    c->port = ntohs(a.sin_port);
    atomic_store(&c->cfd, -1);
    atomic_store(&c->stop, 0);
    atomic_store(&c->stall, 0);
    return pthread_create(&c->thread, NULL, cam_main, c);
}

static void cam_stop(camserver *c)
{
    atomic_store(&c->stop, 1);
    shutdown(c->lfd, SHUT_RDWR);
    int cfd = atomic_load(&c->cfd);
    if (cfd >= 0)
        shutdown(cfd, SHUT_RDWR);
    pthread_join(c->thread, NULL);
    close(c->lfd);
}

static int wait_frames(sink *s, uint64_t target, double seconds)
{
    uint64_t end = its_now_ns() + (uint64_t)(seconds * 1e9);
    while (its_now_ns() < end) {
        if (sink_count(s) >= target)
            return 1;
        its_sleep_ns(10 * ITS_NS_PER_MS);
    }
    return 0;
}

/* Poll a source's stats until a counter reaches a value (loaded machines are slow). */
static int wait_stat(its_source_t *src, size_t offset, uint64_t target, double seconds)
{
    uint64_t end = its_now_ns() + (uint64_t)(seconds * 1e9);
    for (;;) {
        its_source_stats st;
        its_source_get_stats(src, &st);
        uint64_t v;
        memcpy(&v, (const char *)&st + offset, sizeof v);
        if (v >= target)
            return 1;
        if (its_now_ns() > end)
            return 0;
        its_sleep_ns(20 * ITS_NS_PER_MS);
    }
}

static void test_http_reconnect(void **state)
{
    char dir[256], path[400];
    its_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/cam.mjpeg", dir);
    mkv_segment seg = {320, 240, 40};
    assert_int_equal(mkv_write_mjpeg(path, &seg, 1), 0);
    size_t len;
    uint8_t *data = its_test_read_file(path, &len);
    assert_non_null(data);
    camserver cs = {.port = 0, .data = data, .len = len};
    assert_int_equal(cam_start(&cs), 0);

    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/cam.mjpeg", cs.port);
    its_source_opts o;
    its_source_opts_default(&o);
    o.id = "cam-http";
    o.url = url;
    o.stall_timeout_ms = 400;
    o.backoff_min_ms = 50;
    o.backoff_max_ms = 200;
    assert_int_equal(its_source_kind_of(url), ITS_SOURCE_HTTP);
    sink s;
    sink_init(&s);
    its_source_t *src;
    assert_int_equal(its_source_create(&o, on_frame, &s, &src, NULL, 0), 0);
    its_source_start(src);
    assert_true(wait_frames(&s, 20, 10));
    pthread_mutex_lock(&s.mu);
    int w = s.w;
    pthread_mutex_unlock(&s.mu);
    assert_int_equal(w, 320);

    /* the camera dies: connection cut, then refused */
    cam_stop(&cs);
    assert_true(wait_stat(src, offsetof(its_source_stats, reconnects), 2, 20));
    assert_true(wait_stat(src, offsetof(its_source_stats, open_failures), 1, 20));
    its_source_stats st;
    uint64_t before = sink_count(&s);

    /* it comes back on the same port: frames flow again */
    assert_int_equal(cam_start(&cs), 0);
    assert_true(wait_frames(&s, before + 20, 10));

    /* it stalls (connected, silent): detected after stall_timeout_ms, reconnected */
    int conns = atomic_load(&cs.connections);
    atomic_store(&cs.stall, 1);
    assert_true(wait_stat(src, offsetof(its_source_stats, stalls), 1, 20));
    atomic_store(&cs.stall, 0);
    /* the stalled connection is still held by the server thread; end it to accept again */
    shutdown(atomic_load(&cs.cfd), SHUT_RDWR);
    before = sink_count(&s);
    assert_true(wait_frames(&s, before + 20, 10));
    assert_true(atomic_load(&cs.connections) > conns);
    assert_true(s.order_ok); /* seq has no gaps across reconnects */

    its_source_stop(src);
    its_source_get_stats(src, &st);
    assert_int_equal(st.state, ITS_SOURCE_STOPPED);
    its_source_destroy(src);
    cam_stop(&cs);
    its_free(data);
}

/* Stopping a source that is blocked connecting returns promptly. */
static void test_stop_while_blocked(void **state)
{
    /* a listener that never answers: connect succeeds, the HTTP request hangs */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    listen(lfd, 4);
    socklen_t al = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", ntohs(a.sin_port));
    its_source_opts o;
    its_source_opts_default(&o);
    o.url = url;
    o.stall_timeout_ms = 30000;
    sink s;
    sink_init(&s);
    its_source_t *src;
    assert_int_equal(its_source_create(&o, on_frame, &s, &src, NULL, 0), 0);
    its_source_start(src);
    its_sleep_ns(200 * ITS_NS_PER_MS);
    uint64_t t0 = its_now_ns();
    its_source_stop(src);
    assert_true(its_now_ns() - t0 < 1000 * ITS_NS_PER_MS);
    its_source_destroy(src);
    close(lfd);
}

/* An HLS stream (a VOD playlist of MPEG-TS segments, made here with FFmpeg's muxer): every
 * frame through the playlist, segment after segment, as kind "hls". */
static void test_hls(void **state)
{
    char dir[256], url[400];
    its_test_tmpdir(dir, sizeof dir);
    assert_int_equal(mkv_write_hls(dir, 320, 240, 75, 1), 0);
    snprintf(url, sizeof url, "%s/play.m3u8", dir);
    assert_int_equal(its_source_kind_of(url), ITS_SOURCE_HLS);
    its_source_opts o;
    its_source_opts_default(&o);
    o.url = url;
    sink s;
    sink_init(&s);
    its_source_t *src;
    assert_int_equal(its_source_create(&o, on_frame, &s, &src, NULL, 0), 0);
    its_source_start(src);
    /* a VOD playlist ends; a live source then reconnects, so wait for the frames */
    uint64_t end = its_now_ns() + 20 * ITS_NS_PER_S;
    while (sink_count(&s) < 75 && its_now_ns() < end)
        its_sleep_ns(20 * ITS_NS_PER_MS);
    its_source_stop(src);
    its_source_stats st;
    its_source_get_stats(src, &st);
    its_source_destroy(src);
    assert_true(st.frames >= 75);
    assert_int_equal(s.w, 320);
    assert_int_equal(st.decode_errors, 0);
    assert_true(s.order_ok);
}

/* Push: JPEGs from the HTTP API become pooled frames on the pusher's thread; a bad image,
 * a full pool, a too-large image and a stopped camera are refused and counted. */
static void test_push(void **state)
{
    char path[600];
    snprintf(path, sizeof path, "%s/zidane.jpg", media); /* 1280x720 */
    size_t len;
    uint8_t *jpeg = its_test_read_file(path, &len);
    assert_non_null(jpeg);
    its_source_opts o;
    its_source_opts_default(&o);
    o.url = "push:";
    o.id = "pushed";
    o.pool_frames = 2;
    sink s;
    sink_init(&s);
    s.hold = 1;
    its_source_t *src;
    char err[256];
    assert_int_equal(its_source_create(&o, on_frame, &s, &src, err, sizeof err), 0);
    assert_int_equal(its_source_push_image(src, jpeg, len, its_now_ns(), err, sizeof err),
                     ITS_ECLOSED); /* not started yet */
    assert_int_equal(its_source_start(src), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(its_source_push_image(src, jpeg, len, its_now_ns(), err, sizeof err), 0);
    assert_int_equal(sink_count(&s), 2);
    assert_int_equal(s.w, 1280);
    assert_int_equal(s.h, 720);
    assert_true(s.order_ok);
    /* both buffers are held: the third push is refused at once, not waited for */
    assert_int_equal(its_source_push_image(src, jpeg, len, its_now_ns(), err, sizeof err),
                     ITS_EFULL);
    sink_release(&s);
    /* a truncated JPEG and plain garbage */
    assert_int_equal(its_source_push_image(src, jpeg, len / 3, its_now_ns(), err, sizeof err),
                     ITS_EDECODE);
    static const uint8_t junk[] = {0xff, 0xd8, 0xff, 0x00, 1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(its_source_push_image(src, junk, sizeof junk, its_now_ns(), err, sizeof err),
                     ITS_EDECODE);
    its_source_stats st;
    its_source_get_stats(src, &st);
    assert_int_equal(st.frames, 2);
    assert_int_equal(st.dropped_no_buffer, 1);
    assert_int_equal(st.decode_errors, 2);
    its_source_stop(src);
    assert_int_equal(its_source_push_image(src, jpeg, len, its_now_ns(), err, sizeof err),
                     ITS_ECLOSED);
    its_source_destroy(src);

    /* larger than the camera's limit */
    o.max_width = 640;
    o.max_height = 480;
    assert_int_equal(its_source_create(&o, on_frame, &s, &src, err, sizeof err), 0);
    its_source_start(src);
    int rc = its_source_push_image(src, jpeg, len, its_now_ns(), err, sizeof err);
    assert_true(rc == ITS_ERANGE);
    its_source_destroy(src);
    sink_release(&s);

    /* a file camera is not a push camera */
    snprintf(path, sizeof path, "%s/traffic_bridge_720p.mp4", media);
    its_source_opts f;
    its_source_opts_default(&f);
    f.url = path;
    assert_int_equal(its_source_create(&f, on_frame, &s, &src, err, sizeof err), 0);
    assert_int_equal(its_source_push_image(src, jpeg, len, its_now_ns(), err, sizeof err),
                     ITS_EINVAL);
    its_source_destroy(src);
    its_free(jpeg);
}

/* Replay clips in the caller's memory (its_ingest_set_clip_memory, which the service points
 * at the engine's pinned memory): frames are served from that block, which goes back when
 * the last frame of the last source using the clip does; a failing allocator falls back to
 * ordinary memory and the clip still replays. */
typedef struct clip_mem_log {
    int allocs, frees, fail;
    uint8_t *block;
    size_t bytes;
} clip_mem_log;

static void *clip_alloc(void *ctx, size_t bytes)
{
    clip_mem_log *l = ctx;
    l->allocs++;
    if (l->fail)
        return NULL;
    l->block = its_aligned_alloc(ITS_MOD_TEST, 4096, bytes);
    l->bytes = bytes;
    return l->block;
}

static void clip_free_fn(void *ctx, void *p)
{
    clip_mem_log *l = ctx;
    assert_ptr_equal(p, l->block);
    l->frees++;
    its_free(p);
}

static void test_replay_clip_memory(void **state)
{
    (void)state;
    char url[600];
    snprintf(url, sizeof url, "%s/traffic_road_cctv_360p.mp4", media);
    for (int fail = 0; fail < 2; fail++) {
        clip_mem_log l = {.fail = fail};
        its_pool_mem pm = {clip_alloc, clip_free_fn, &l};
        its_ingest_set_clip_memory(&pm);
        its_source_opts o;
        its_source_opts_default(&o);
        o.url = url;
        o.kind = ITS_SOURCE_REPLAY;
        o.fps = 100;
        o.loop = 1;
        o.replay_frames = 10;
        sink a;
        sink_init(&a);
        a.hold = 1;
        its_source_t *sa;
        assert_int_equal(its_source_create(&o, on_frame, &a, &sa, NULL, 0), 0);
        its_source_start(sa);
        wait_running(sa);                 /* the clip is made on the source's thread */
        its_ingest_set_clip_memory(NULL); /* clips made from now on: ordinary memory */
        assert_int_equal(l.allocs, 1);
        its_sleep_ns(150 * ITS_NS_PER_MS);
        its_source_stop(sa);
        assert_true(a.n >= 5 && a.order_ok);
        if (!fail) /* served by reference from the caller's block */
            for (int i = 0; i < 8 && i < (int)a.n; i++)
                assert_true(a.datas[i] >= l.block && a.datas[i] < l.block + l.bytes);
        its_source_destroy(sa);
        assert_int_equal(l.frees, 0); /* held frames keep the clip's memory */
        sink_release(&a);
        assert_int_equal(l.frees, fail ? 0 : 1);
    }
}

int main(void)
{
    if (!its_test_shared_path("media", media, sizeof media))
        return its_test_skip("shared media missing (ITS_SHARED_DIR)");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_once),
        cmocka_unit_test(test_file_paced_loop),
        cmocka_unit_test(test_file_sampled),
        cmocka_unit_test(test_pool_exhaustion),
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_replay_clip_memory),
        cmocka_unit_test(test_http_reconnect),
        cmocka_unit_test(test_stop_while_blocked),
        cmocka_unit_test(test_hls),
        cmocka_unit_test(test_push),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
