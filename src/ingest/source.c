/*
 * Camera sources: one thread each.
 *
 * A live source is a loop of connect, read, and on any failure back off and connect again.
 * The backoff doubles from backoff_min_ms to backoff_max_ms with "equal jitter" (half the
 * delay fixed, half random), so a hundred cameras behind one failed switch do not reconnect
 * in lockstep; a frame received resets it. A stall (the reader's I/O deadline expiring: no
 * data for stall_timeout_ms) is one more failure.
 *
 * A replay source serves a clip held in memory on a fixed cadence. Frame k is due at
 * t0 + phase + k / fps; a source that falls more than a second behind (the machine was
 * overloaded) starts its cadence again rather than bursting, and the capture timestamp is
 * the due time, so scheduling delay shows up in the latency figures where it belongs.
 *
 * A replay source loads its clip on its own thread (state ITS_SOURCE_LOADING meanwhile), so
 * creating one never waits for a decode.
 *
 * Stopping: a flag, the reader's interrupt (which aborts blocking FFmpeg I/O at its next
 * poll) and a condition variable that ends any sleep. Cancelling never waits for the thread:
 * the frame callback runs under cb_mu and checks the flag there, so once its_source_cancel
 * returns no callback runs or will run. The source is reference counted by its owner and its
 * thread; a thread stuck in a call that no interrupt reaches (open(2) of a FIFO without a
 * writer, a hung mount) is detached at destroy and frees the source when it returns.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "its/core.h"
#include "its/evidence.h"
#include "its/media.h"
#include "ingest_impl.h"

#define DEF_MAX_W       1920
#define DEF_MAX_H       1080
#define DEF_POOL        8
#define DEF_STALL_MS    5000
#define DEF_BACKOFF_MIN 250
#define DEF_BACKOFF_MAX 30000
#define DEF_REPLAY_MAX  300
#define BEHIND_RESET_NS (1ULL * ITS_NS_PER_S)

struct its_source {
    its_source_opts o;
    char id[ITS_CAMERA_ID_MAX + 1];
    char url[1024];
    its_frame_cb cb;
    void *ctx;
    its_pool_t *hdr_pool;
    its_pool_t *pix_pool; /* NULL for replay */
    its__clip *clip;      /* replay only */
    int64_t pkt_base;     /* media time of the connection's (or loop's) start, for the packets */
    pthread_t thread;
    int started, joined;
    atomic_int refs;       /* the owner's and, while it runs, the thread's */
    int exited;            /* the thread is past its last use of the source's state; under mu */
    pthread_mutex_t cb_mu; /* held around the frame callback; see its_source_cancel */
    pthread_mutex_t mu;    /* guards st, cur, clip (replay: set once loaded), exited, the sleeps */
    pthread_cond_t cv;
    atomic_int stop;
    its_video_t *cur;
    its_source_stats st;
    uint64_t seq;
    int64_t pts_end;     /* media time just after the last frame, carried across reconnects */
    int64_t next_sample; /* sample_fps: media time of the next frame to pass on */
    int phased;          /* paced files: phase_s was applied (on the first connection only) */
    unsigned rng;
    pthread_mutex_t push_mu; /* push sources: one image at a time (seq, pts) */
    uint64_t push_t0;        /* push sources: capture time of the first image */
};

void its_source_opts_default(its_source_opts *o)
{
    memset(o, 0, sizeof *o);
    o->realtime = 1;
}

its_source_kind its_source_kind_of(const char *url)
{
    if (!url)
        return ITS_SOURCE_FILE;
    if (strncasecmp(url, "push:", 5) == 0)
        return ITS_SOURCE_PUSH;
    if (strncasecmp(url, "rtsp://", 7) == 0 || strncasecmp(url, "rtsps://", 8) == 0)
        return ITS_SOURCE_RTSP;
    const char *q = strchr(url, '?');
    size_t n = q ? (size_t)(q - url) : strlen(url);
    if (n >= 5 && strncasecmp(url + n - 5, ".m3u8", 5) == 0)
        return ITS_SOURCE_HLS;
    if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0)
        return ITS_SOURCE_HTTP;
    struct stat st;
    if (stat(url, &st) == 0 && S_ISDIR(st.st_mode))
        return ITS_SOURCE_REPLAY;
    return ITS_SOURCE_FILE;
}

static const char *const kind_names[] = {"auto", "file", "rtsp", "http", "hls", "replay", "push"};

const char *its_source_kind_name(its_source_kind k)
{
    return (unsigned)k < ITS_ARRAY_LEN(kind_names) ? kind_names[k] : "?";
}

int its_source_parse_kind(const char *name, its_source_kind *out)
{
    for (unsigned i = 0; i < ITS_ARRAY_LEN(kind_names); i++)
        if (name && strcmp(name, kind_names[i]) == 0) {
            *out = (its_source_kind)i;
            return 0;
        }
    return ITS_EINVAL;
}

static void set_state(its_source_t *s, its_source_state st)
{
    pthread_mutex_lock(&s->mu);
    s->st.state = st;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Sleep until the monotonic deadline or until stopped: 1 if stopped. */
static int sleep_until(its_source_t *s, uint64_t deadline_ns)
{
    pthread_mutex_lock(&s->mu);
    while (!atomic_load(&s->stop)) {
        uint64_t now = its_now_ns();
        if (now >= deadline_ns)
            break;
        struct timespec ts = {(time_t)(deadline_ns / ITS_NS_PER_S),
                              (long)(deadline_ns % ITS_NS_PER_S)};
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    int stopped = atomic_load(&s->stop);
    pthread_mutex_unlock(&s->mu);
    return stopped;
}

static void emit(its_source_t *s, its_buf *px, int w, int h, int64_t pts_ns, uint64_t ts)
{
    pthread_mutex_lock(&s->cb_mu);
    if (atomic_load(&s->stop)) { /* cancelled: the owner no longer takes frames */
        pthread_mutex_unlock(&s->cb_mu);
        its_buf_unref(px);
        return;
    }
    its_frame *f = its_frame_new(s->hdr_pool, px);
    if (!f) {
        its_buf_unref(px);
        pthread_mutex_lock(&s->mu);
        s->st.dropped_no_buffer++;
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_unlock(&s->cb_mu);
        return;
    }
    f->data = px->data;
    f->width = w;
    f->height = h;
    f->stride = w * 3;
    f->pixfmt = s->o.pixfmt;
    f->camera = s->o.slot;
    f->seq = s->seq++;
    f->pts_ns = pts_ns;
    f->ts_ns[ITS_TS_CAPTURE] = ts;
    pthread_mutex_lock(&s->mu);
    s->st.frames++;
    s->st.width = w;
    s->st.height = h;
    pthread_mutex_unlock(&s->mu);
    s->cb(f, s->ctx);
    pthread_mutex_unlock(&s->cb_mu);
}

static void note_error(its_source_t *s, const char *msg)
{
    pthread_mutex_lock(&s->mu);
    snprintf(s->st.last_error, sizeof s->st.last_error, "%.250s", msg);
    pthread_mutex_unlock(&s->mu);
}

/* Every compressed packet into the clip ring, on the media clock of the frames. */
static void on_packet(void *ctx, its_video_t *v, const its_video_packet *p)
{
    its_source_t *s = ctx;
    its_clipring_packet(s->o.clipring, v, p, s->pkt_base);
}

static void source_free(its_source_t *s)
{
    its_pool_destroy(s->pix_pool);
    its_pool_destroy(s->hdr_pool);
    its__clip_put(s->clip);
    its_clipring_unref(s->o.clipring);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->cb_mu);
    pthread_mutex_destroy(&s->push_mu);
    its_free(s);
}

static void source_unref(its_source_t *s)
{
    if (atomic_fetch_sub(&s->refs, 1) == 1)
        source_free(s);
}

/* The thread's last act: its final state, then its reference (which may free the source when
 * the owner has already let it go). */
static void thread_done(its_source_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->st.state = atomic_load(&s->stop) ? ITS_SOURCE_STOPPED : ITS_SOURCE_ENDED;
    s->exited = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    source_unref(s);
}

/* ---- live and file sources ---- */

static void add_video_stats(its_source_t *s, its_video_t *v)
{
    its_video_stats vs;
    its_video_get_stats(v, &vs);
    pthread_mutex_lock(&s->mu);
    s->st.decode_errors += vs.bad_packets;
    s->st.corrupt_frames += vs.corrupt_frames;
    s->st.size_changes += vs.size_changes;
    pthread_mutex_unlock(&s->mu);
}

/* Where this connection decodes, after its open and again after its first frame (the GPU
 * decoder opens with the first picture and may give up there). A fallback from NVDEC is
 * logged and counted once per camera. */
static void note_decoder(its_source_t *s, its_video_t *v)
{
    its_video_stats vs;
    its_video_get_stats(v, &vs);
    int first = 0;
    pthread_mutex_lock(&s->mu);
    s->st.nvdec = vs.nvdec;
    if (vs.fallback != ITS_VIDEO_FALLBACK_NONE && !s->st.decode_fallbacks) {
        s->st.fallback = vs.fallback;
        s->st.decode_fallbacks = 1;
        first = 1;
    }
    pthread_mutex_unlock(&s->mu);
    if (first)
        its_logw("ingest", s->id, "decoding on the CPU, not NVDEC (%s)",
                 its_video_fallback_name(vs.fallback));
}

/* sample_fps: 1 if the frame at media time pts is skipped. A frame is passed on when it is
 * due within half a source frame period; the next one is due 1/sample_fps later, or a
 * sample period after this frame where media time jumped ahead (a reconnect). */
static int skip_sample(its_source_t *s, int64_t pts, int64_t period)
{
    int64_t every = (int64_t)(1e9 / s->o.sample_fps);
    if (pts + period / 2 < s->next_sample && s->next_sample - pts <= every)
        return 1;
    s->next_sample = pts >= s->next_sample + every ? pts + every : s->next_sample + every;
    return 0;
}

/*
 * Read one connection until it fails, ends or is stopped. Returns 1 if the source is done
 * (a file without loop ended, or stopped), 0 to reconnect. *got_frames tells whether any
 * frame arrived (which resets the backoff).
 */
static int run_connection(its_source_t *s, its_video_t *v, int *got_frames)
{
    its_video_info info;
    its_video_get_info(v, &info);
    pthread_mutex_lock(&s->mu);
    s->st.fps_nominal = info.fps;
    pthread_mutex_unlock(&s->mu);
    int is_file = s->o.kind == ITS_SOURCE_FILE;
    int pace = is_file && s->o.realtime;
    double fps = s->o.fps > 0 ? s->o.fps : (info.fps > 0 ? info.fps : 25.0);
    uint64_t period = (uint64_t)(1e9 / fps);
    uint64_t t0 = its_now_ns();
    /* sampled files: the clock starts on a multiple of the sampling period, the same grid
     * for every camera, so that their phases (phase_s) keep their frames apart */
    if (pace && s->o.sample_fps > 0)
        t0 -= t0 % (uint64_t)(1e9 / s->o.sample_fps);
    /* media time continues across loops and reconnects, so it never goes backwards */
    int64_t media_base = s->pts_end, last_pts = s->pts_end;
    s->pkt_base = media_base;
    int64_t conn_base = media_base; /* pacing is relative to this connection's start */
    uint64_t k = 0;                 /* frames since t0 */
    /* sampled files at native pace: a live camera delivers the frames between the samples at
     * its own rate too, so each is read (decoded) when it comes due, not in a burst right after
     * the sampled frame, whose batch and inference would share the CPU with that burst */
    int spread = pace && s->o.sample_fps > 0 && s->o.fps <= 0;
    uint64_t next_read = 0; /* spread: when the next frame comes due (an estimate) */
    /* paced files with a phase (load tests): the first connection starts phase_s into the
     * file (whole frames decoded and skipped at once, so the decoders of many cameras on one
     * file are at different places in it) and a fraction of a frame period late (so their
     * frames do not come due together) */
    uint64_t skip = 0, delay_ns = 0;
    if (pace && s->o.phase_s > 0 && s->o.sample_fps <= 0 && !s->phased) {
        double frames = s->o.phase_s * fps;
        skip = (uint64_t)frames;
        delay_ns = (uint64_t)((frames - (double)skip) * (double)period);
        if (!skip)
            t0 += delay_ns;
    }
    s->phased = 1;
    int noted = 0; /* note_decoder after the first frame */
    for (;;) {
        if (atomic_load(&s->stop))
            return 1;
        if (spread && next_read) {
            uint64_t now = its_now_ns(); /* (a timestamp jump is the paced path's to handle) */
            if (next_read > now && next_read < now + BEHIND_RESET_NS && sleep_until(s, next_read))
                return 1;
        }
        its_buf *px = its_pool_get(s->pix_pool);
        its_video_frame f;
        int rc = px ? its_video_read_into(v, px->data, px->capacity, &f) : its_video_read(v, &f);
        if (rc == 1) {
            *got_frames = 1;
            if (!noted) {
                note_decoder(s, v);
                noted = 1;
            }
            if (skip) {
                last_pts = media_base + f.pts_ns;
                s->pts_end = last_pts + (int64_t)period;
                its_buf_unref(px);
                if (--skip == 0) /* the next frame is due delay_ns from now */
                    t0 = its_now_ns() + delay_ns -
                         (s->o.fps > 0 ? 0 : (uint64_t)(s->pts_end - conn_base));
                continue;
            }
            if (s->o.sample_fps > 0 && skip_sample(s, media_base + f.pts_ns, (int64_t)period)) {
                last_pts = media_base + f.pts_ns;
                s->pts_end = last_pts + (int64_t)period;
                its_buf_unref(px);
                if (spread)
                    next_read = t0 + (uint64_t)(media_base - conn_base + f.pts_ns) + period;
                continue;
            }
            uint64_t now = its_now_ns();
            if (pace) {
                /* native pace follows the media clock; a fixed fps counts frames */
                uint64_t off =
                    s->o.fps > 0 ? k * period : (uint64_t)(media_base - conn_base + f.pts_ns);
                uint64_t due = t0 + off;
                /* native pace: a timestamp jump of over a second restarts the clock; either
                 * pace: falling over a second behind does too (no burst to catch up) */
                int jumped = s->o.fps <= 0 && now + BEHIND_RESET_NS + period < due;
                if (jumped || now > due + BEHIND_RESET_NS) {
                    t0 = now - off;
                } else if (due > now) {
                    if (sleep_until(s, due)) {
                        its_buf_unref(px);
                        return 1;
                    }
                    now = its_now_ns();
                }
            }
            k++;
            last_pts = media_base + f.pts_ns;
            s->pts_end = last_pts + (int64_t)period;
            if (!px) {
                pthread_mutex_lock(&s->mu);
                s->st.dropped_no_buffer++;
                pthread_mutex_unlock(&s->mu);
                continue;
            }
            px->size = its_video_frame_bytes(f.width, f.height);
            if (spread)
                next_read = t0 + (uint64_t)(media_base - conn_base + f.pts_ns) + period;
            emit(s, px, f.width, f.height, last_pts, now);
            continue;
        }
        its_buf_unref(px);
        if (rc == ITS_ERANGE) /* cannot happen: the pool is sized for max dims */
            continue;
        if (rc == ITS_ECLOSED)
            return 1;
        if (rc == ITS_EEOF && is_file) {
            if (!s->o.loop)
                return 1;
            if (its_video_rewind(v) < 0)
                return 0; /* reopen instead */
            media_base = last_pts + (int64_t)period;
            s->pkt_base = media_base;
            pthread_mutex_lock(&s->mu);
            s->st.loops++;
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        /* a live stream ended, stalled, broke or fed us garbage: reconnect */
        if (rc == ITS_ETIMEDOUT) {
            pthread_mutex_lock(&s->mu);
            s->st.stalls++;
            pthread_mutex_unlock(&s->mu);
        }
        const char *why = rc == ITS_EEOF ? "stream ended" : its_video_error(v);
        its_logw("ingest", s->id, "%s (%s); reconnecting", why, its_errname(rc));
        note_error(s, why);
        return 0;
    }
}

static uint64_t backoff_ns(its_source_t *s, int attempt)
{
    uint64_t d = (uint64_t)s->o.backoff_min_ms;
    for (int i = 0; i < attempt && d < (uint64_t)s->o.backoff_max_ms; i++)
        d *= 2;
    if (d > (uint64_t)s->o.backoff_max_ms)
        d = (uint64_t)s->o.backoff_max_ms;
    /* equal jitter: [d/2, d) */
    uint64_t half = d / 2;
    uint64_t j = half ? (uint64_t)rand_r(&s->rng) % half : 0;
    return (half + j) * ITS_NS_PER_MS;
}

/* Lower the calling thread's priority to `nice` (decoding is the bulk of a source's work and
 * has no budget of its own; the stages after it should preempt it at once when a frame
 * arrives rather than wait out a scheduler slice). Linux applies the niceness of
 * PRIO_PROCESS to the thread whose id is given. A failure only costs latency: logged once. */
static void lower_priority(const its_source_t *s)
{
    if (s->o.nice <= 0)
        return;
#ifdef __linux__
    pid_t tid = (pid_t)syscall(SYS_gettid);
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, (id_t)tid);
    if (errno == 0 && cur >= s->o.nice)
        return;
    if (setpriority(PRIO_PROCESS, (id_t)tid, s->o.nice) != 0) {
        static atomic_int said;
        if (!atomic_exchange(&said, 1))
            its_logw("ingest", s->id, "cannot lower the decoding threads' priority to nice %d: %s",
                     s->o.nice, strerror(errno));
    }
#endif
}

static void *live_main(void *arg)
{
    its_source_t *s = arg;
    lower_priority(s);
    its_video_opts vo = {.pixfmt = s->o.pixfmt,
                         .max_width = s->o.max_width,
                         .max_height = s->o.max_height,
                         .timeout_ms = s->o.stall_timeout_ms,
                         .rtsp_udp = s->o.rtsp_udp,
                         .decode = s->o.decode,
                         .cancel = &s->stop,
                         .on_packet = s->o.clipring ? on_packet : NULL,
                         .packet_ctx = s};
    int attempt = 0;
    while (!atomic_load(&s->stop)) {
        set_state(s, ITS_SOURCE_CONNECTING);
        its_video_t *v = NULL;
        char err[384];
        int rc = its_video_open(s->url, &vo, &v, err, sizeof err);
        int done = 0;
        if (rc == 0) {
            pthread_mutex_lock(&s->mu);
            s->cur = v;
            int stopped = atomic_load(&s->stop);
            pthread_mutex_unlock(&s->mu);
            if (stopped)
                its_video_interrupt(v);
            note_decoder(s, v);
            set_state(s, ITS_SOURCE_RUNNING);
            if (attempt) {
                char shown[ITS_URL_SHOWN_MAX];
                its_url_scrub(s->url, shown, sizeof shown);
                its_logi("ingest", s->id, "connected to %s", shown);
            }
            int got = 0;
            done = run_connection(s, v, &got);
            if (got)
                attempt = 0;
            pthread_mutex_lock(&s->mu);
            s->cur = NULL;
            pthread_mutex_unlock(&s->mu);
            add_video_stats(s, v);
            its_video_close(v);
        } else if (rc != ITS_ECLOSED) {
            pthread_mutex_lock(&s->mu);
            s->st.open_failures++;
            pthread_mutex_unlock(&s->mu);
            note_error(s, err);
            if (attempt == 0)
                its_logw("ingest", s->id, "%s", err);
        }
        if (done || atomic_load(&s->stop))
            break;
        set_state(s, ITS_SOURCE_BACKOFF);
        pthread_mutex_lock(&s->mu);
        s->st.reconnects++;
        pthread_mutex_unlock(&s->mu);
        if (sleep_until(s, its_now_ns() + backoff_ns(s, attempt)))
            break;
        attempt++;
    }
    its_clipring_flush(s->o.clipring); /* a file that ended: its last clips with what there is */
    thread_done(s);
    return NULL;
}

/* ---- replay ---- */

static void *replay_main(void *arg)
{
    its_source_t *s = arg;
    lower_priority(s);
    its__clip *c = NULL;
    char err[384] = "";
    set_state(s, ITS_SOURCE_LOADING);
    int rc = its__clip_get(s->url, s->o.pixfmt, s->o.max_width, s->o.max_height, s->o.replay_frames,
                           &s->stop, &c, err, sizeof err);
    if (rc < 0) {
        if (rc != ITS_ECLOSED) {
            its_loge("ingest", s->id, "replay: %s", err);
            note_error(s, err);
        }
        thread_done(s);
        return NULL;
    }
    pthread_mutex_lock(&s->mu);
    s->clip = c;
    pthread_mutex_unlock(&s->mu);
    set_state(s, ITS_SOURCE_RUNNING);
    double fps = s->o.fps > 0 ? s->o.fps : (c->fps > 0 ? c->fps : 30.0);
    uint64_t period = (uint64_t)(1e9 / fps);
    double phase = s->o.phase_s > 0 ? s->o.phase_s : 0;
    uint64_t whole = (uint64_t)(phase * fps);
    uint64_t phase_ns = (uint64_t)((phase * fps - (double)whole) * (double)period);
    uint64_t phase_frames = whole % (uint64_t)c->n;
    uint64_t t0 = its_now_ns() + phase_ns;
    uint64_t k = 0;
    while (!atomic_load(&s->stop)) {
        uint64_t idx = k + phase_frames;
        if (!s->o.loop && idx >= (uint64_t)c->n)
            break;
        if (idx % (uint64_t)c->n == 0 && k > 0) {
            pthread_mutex_lock(&s->mu);
            s->st.loops++;
            pthread_mutex_unlock(&s->mu);
        }
        int i = (int)(idx % (uint64_t)c->n);
        uint64_t due = t0 + k * period;
        uint64_t now = its_now_ns();
        if (now > due + BEHIND_RESET_NS) {
            t0 = now - k * period;
            due = now;
        }
        if (due > now && sleep_until(s, due))
            break;
        /* media time: the clip's own timestamps, continued across loops */
        int64_t loops = (int64_t)(idx / (uint64_t)c->n);
        emit(s, its_buf_ref(c->frames[i]), c->width[i], c->height[i],
             loops * c->duration_ns + c->pts_ns[i], due);
        k++;
    }
    thread_done(s);
    return NULL;
}

/* ---- lifecycle ---- */

int its_source_create(const its_source_opts *opts, its_frame_cb cb, void *ctx, its_source_t **out,
                      char *err, size_t errlen)
{
    char dummy[8];
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    *out = NULL;
    if (!opts || !cb || !opts->url || !*opts->url) {
        snprintf(err, errlen, "source: a url and a callback are required");
        its_clipring_unref(opts ? opts->clipring : NULL);
        return ITS_EINVAL;
    }
    its_source_t *s = its_calloc(ITS_MOD_INGEST, 1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "source: out of memory");
        its_clipring_unref(opts->clipring);
        return ITS_ENOMEM;
    }
    s->o = *opts;
    snprintf(s->id, sizeof s->id, "%s", opts->id ? opts->id : "cam");
    snprintf(s->url, sizeof s->url, "%s", opts->url);
    s->o.id = s->id;
    s->o.url = s->url;
    s->cb = cb;
    s->ctx = ctx;
    if (s->o.sample_fps > 0 && s->o.phase_s > 0) /* the first frame passed on */
        s->next_sample = (int64_t)(fmod(s->o.phase_s, 1.0 / s->o.sample_fps) * 1e9);
    if (s->o.kind == ITS_SOURCE_AUTO)
        s->o.kind = its_source_kind_of(s->url);
    if (s->o.max_width <= 0)
        s->o.max_width = DEF_MAX_W;
    if (s->o.max_height <= 0)
        s->o.max_height = DEF_MAX_H;
    if (s->o.pool_frames <= 0)
        s->o.pool_frames = DEF_POOL;
    if (s->o.stall_timeout_ms <= 0)
        s->o.stall_timeout_ms = DEF_STALL_MS;
    if (s->o.backoff_min_ms <= 0)
        s->o.backoff_min_ms = DEF_BACKOFF_MIN;
    if (s->o.backoff_max_ms <= 0)
        s->o.backoff_max_ms = DEF_BACKOFF_MAX;
    if (s->o.backoff_max_ms < s->o.backoff_min_ms)
        s->o.backoff_max_ms = s->o.backoff_min_ms;
    if (s->o.replay_frames <= 0)
        s->o.replay_frames = DEF_REPLAY_MAX;
    if (s->o.replay_frames > ITS_REPLAY_MAX_FRAMES)
        s->o.replay_frames = ITS_REPLAY_MAX_FRAMES;
    s->rng = (unsigned)(its_now_ns() ^ (uintptr_t)s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->cb_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->push_mu, NULL);
    atomic_init(&s->stop, 0);
    atomic_init(&s->refs, 1);

    int rc =
        its_pool_create(ITS_MOD_INGEST, sizeof(its_frame), (size_t)s->o.pool_frames, &s->hdr_pool);
    if (rc == 0 && s->o.kind == ITS_SOURCE_REPLAY) {
        /* the clip is loaded by the source's thread; only its existence is checked here */
        struct stat st;
        if (stat(s->url, &st) != 0) {
            snprintf(err, errlen, "%s: cannot open the replay clip", s->url);
            source_free(s);
            return ITS_ENOENT;
        }
    } else if (rc == 0) {
        size_t cap = its_video_frame_bytes(s->o.max_width, s->o.max_height) + ITS_VIDEO_PAD;
        rc = its_pool_create(ITS_MOD_INGEST, cap, (size_t)s->o.pool_frames, &s->pix_pool);
    }
    if (rc < 0) {
        if (rc == ITS_ENOMEM || rc == ITS_EOVERFLOW)
            snprintf(err, errlen, "%s: cannot allocate %d frame buffers", s->id, s->o.pool_frames);
        source_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int its_source_start(its_source_t *s)
{
    if (s->started)
        return ITS_EBUSY;
    if (s->o.kind == ITS_SOURCE_PUSH) { /* nothing to run: frames come from its pushers */
        s->started = s->joined = 1;
        set_state(s, ITS_SOURCE_RUNNING);
        return 0;
    }
    atomic_fetch_add(&s->refs, 1); /* the thread's */
    int rc = pthread_create(&s->thread, NULL,
                            s->o.kind == ITS_SOURCE_REPLAY ? replay_main : live_main, s);
    if (rc != 0) {
        atomic_fetch_sub(&s->refs, 1);
        return ITS_ENOMEM;
    }
    s->started = 1;
    return 0;
}

void its_source_cancel(its_source_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stop, 1);
    if (s->cur)
        its_video_interrupt(s->cur);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    /* a callback in progress finishes; every later one sees the flag */
    pthread_mutex_lock(&s->cb_mu);
    pthread_mutex_unlock(&s->cb_mu);
}

int its_source_finished(its_source_t *s)
{
    pthread_mutex_lock(&s->mu);
    int done = !s->started || s->joined || s->exited;
    pthread_mutex_unlock(&s->mu);
    return done;
}

void its_source_stop(its_source_t *s)
{
    if (!s)
        return;
    its_source_cancel(s);
    if (s->started && !s->joined) {
        pthread_join(s->thread, NULL);
        s->joined = 1;
    }
    pthread_mutex_lock(&s->mu);
    s->st.state = ITS_SOURCE_STOPPED;
    pthread_mutex_unlock(&s->mu);
}

void its_source_destroy_wait(its_source_t *s, uint64_t wait_ns)
{
    if (!s)
        return;
    its_source_cancel(s);
    if (s->started && !s->joined) {
        uint64_t deadline = its_now_ns() + wait_ns;
        pthread_mutex_lock(&s->mu);
        while (!s->exited && its_now_ns() < deadline) {
            struct timespec ts = {(time_t)(deadline / ITS_NS_PER_S),
                                  (long)(deadline % ITS_NS_PER_S)};
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        int exited = s->exited;
        pthread_mutex_unlock(&s->mu);
        if (exited) {
            pthread_join(s->thread, NULL);
        } else {
            /* blocked where no interrupt reaches: it frees the source when it returns */
            its_logw("ingest", s->id, "source thread still blocked after stop; detached");
            pthread_detach(s->thread);
        }
        s->joined = 1;
    }
    source_unref(s);
}

void its_source_destroy(its_source_t *s)
{
    its_source_destroy_wait(s, ITS_SOURCE_DESTROY_WAIT_NS);
}

int its_source_push_image(its_source_t *s, const uint8_t *data, size_t len, uint64_t ts_ns,
                          char *err, size_t errlen)
{
    if (s->o.kind != ITS_SOURCE_PUSH)
        return its_seterr(err, errlen, ITS_EINVAL, "%s: not a push camera", s->id);
    if (atomic_load(&s->stop) || !s->started)
        return its_seterr(err, errlen, ITS_ECLOSED, "%s: camera stopped", s->id);
    its_image img;
    its_image_opts io = {.fmt = s->o.pixfmt,
                         .max_pixels = (long)s->o.max_width * (long)s->o.max_height};
    int rc = its_image_decode(data, len, &io, &img, err, errlen);
    if (rc < 0) {
        note_error(s, err ? err : "undecodable image");
        pthread_mutex_lock(&s->mu);
        s->st.decode_errors++;
        pthread_mutex_unlock(&s->mu);
        return rc == ITS_ERANGE ? rc : ITS_EDECODE;
    }
    if (img.width > s->o.max_width || img.height > s->o.max_height) {
        its_seterr(err, errlen, ITS_ERANGE, "%s: image %dx%d is larger than %dx%d", s->id,
                   img.width, img.height, s->o.max_width, s->o.max_height);
        its_image_free(&img);
        return ITS_ERANGE;
    }
    its_buf *px = its_pool_get(s->pix_pool);
    if (!px) {
        its_image_free(&img);
        pthread_mutex_lock(&s->mu);
        s->st.dropped_no_buffer++;
        pthread_mutex_unlock(&s->mu);
        return its_seterr(err, errlen, ITS_EFULL, "%s: every frame buffer is in use", s->id);
    }
    for (int y = 0; y < img.height; y++)
        memcpy(px->data + (size_t)y * (size_t)img.width * 3,
               img.data + (size_t)y * (size_t)img.stride, (size_t)img.width * 3);
    px->size = (size_t)img.width * (size_t)img.height * 3;
    int w = img.width, h = img.height;
    its_image_free(&img);
    pthread_mutex_lock(&s->push_mu);
    if (s->seq == 0)
        s->push_t0 = ts_ns;
    /* media time = time since the first push, never backwards */
    int64_t pts = ts_ns > s->push_t0 ? (int64_t)(ts_ns - s->push_t0) : 0;
    if (pts < s->pts_end)
        pts = s->pts_end;
    s->pts_end = pts + 1;
    emit(s, px, w, h, pts, ts_ns);
    pthread_mutex_unlock(&s->push_mu);
    return 0;
}

void its_source_get_stats(its_source_t *s, its_source_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    if (s->clip && !out->fps_nominal)
        out->fps_nominal = s->o.fps > 0 ? s->o.fps : s->clip->fps;
    pthread_mutex_unlock(&s->mu);
}

int its_source_wait_end(its_source_t *s, uint64_t timeout_ns)
{
    uint64_t deadline = its_now_ns() + timeout_ns;
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    while (s->st.state != ITS_SOURCE_ENDED && s->st.state != ITS_SOURCE_STOPPED) {
        uint64_t now = its_now_ns();
        if (now >= deadline) {
            rc = ITS_ETIMEDOUT;
            break;
        }
        struct timespec ts = {(time_t)(deadline / ITS_NS_PER_S), (long)(deadline % ITS_NS_PER_S)};
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}
