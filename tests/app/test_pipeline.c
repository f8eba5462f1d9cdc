/*
 * The pipeline end to end on real video with the no-op backend and with fault-injecting test
 * backends: exact accounting per camera, message schema, per-camera order with several
 * engine workers, engine failures, shutdown draining, hooks, cameras added and removed, and
 * damaged inputs.
 */
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/app_hooks.h"
#include "its/core.h"
#include "its/pipeline.h"
#include "mkvideo.h"
#include "testutil.h"

static char media[512];

static void media_path(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", media, name);
}

/* ---- reading the sink's output back ---- */

typedef struct cam_out {
    char id[64];
    long frames;
    long last_frame;
    int order_ok;
    long tracked;
    long dets;
    long events;
    int quality_seen;
} cam_out;

typedef struct outputs {
    cam_out cams[16];
    int n;
    long lines;
    long bad;
} outputs;

static cam_out *cam_of(outputs *o, const char *id)
{
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->cams[i].id, id) == 0)
            return &o->cams[i];
    cam_out *c = &o->cams[o->n++];
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    c->last_frame = -1;
    c->order_ok = 1;
    return c;
}

/* Parse every line; check the frame message schema of the issue exactly. */
static void read_outputs(const char *path, outputs *o)
{
    memset(o, 0, sizeof *o);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char line[1 << 20];
    while (fgets(line, sizeof line, f)) {
        o->lines++;
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        if (!j) {
            o->bad++;
            continue;
        }
        const char *type = json_string_value(json_object_get(j, "type"));
        const char *cam = json_string_value(json_object_get(j, "camera"));
        assert_non_null(type);
        if (strcmp(type, "frame") != 0) { /* an analytics window, drift report or event */
            assert_non_null(cam);
            cam_of(o, cam)->events++;
            json_decref(j);
            continue;
        }
        assert_non_null(cam);
        cam_out *c = cam_of(o, cam);
        json_int_t frame = json_integer_value(json_object_get(j, "frame"));
        if (frame <= c->last_frame)
            c->order_ok = 0;
        c->last_frame = (long)frame;
        c->frames++;
        assert_int_equal(json_integer_value(json_object_get(j, "v")), 2);
        assert_string_equal(json_string_value(json_object_get(j, "type")), "frame");
        json_int_t tc = json_integer_value(json_object_get(j, "ts_us"));
        json_int_t tp = json_integer_value(json_object_get(j, "publish_ts_us"));
        assert_true(tc > 1600000000LL * 1000000LL); /* wall clock, after 2020 */
        assert_true(tp >= tc);
        assert_true(json_integer_value(json_object_get(j, "width")) > 0);
        assert_true(json_integer_value(json_object_get(j, "height")) > 0);
        json_t *dets = json_object_get(j, "detections");
        assert_true(json_is_array(dets));
        size_t i;
        json_t *d;
        json_array_foreach(dets, i, d)
        {
            assert_true(json_is_integer(json_object_get(d, "class_id")));
            assert_true(json_is_string(json_object_get(d, "class")));
            double s = json_number_value(json_object_get(d, "score"));
            assert_true(s > 0 && s <= 1);
            json_t *box = json_object_get(d, "box");
            assert_int_equal(json_array_size(box), 4);
            for (size_t k = 0; k < 4; k++) { /* the fake box of chaos_run */
                double v = json_number_value(json_array_get(box, k));
                assert_true(fabs(v - 0.1 * (double)(k + 1)) < 1e-4);
            }
            json_t *tid = json_object_get(d, "track_id");
            assert_true(json_is_null(tid) || json_integer_value(tid) > 0);
            c->tracked += json_is_integer(tid);
            c->dets++;
        }
        json_t *q = json_object_get(j, "quality");
        assert_true(json_is_null(q) || (json_number_value(q) >= 0 && json_number_value(q) <= 1));
        c->quality_seen |= !json_is_null(q);
        json_t *lat = json_object_get(j, "latency_ms");
        /* named as in the stage table, each stage this frame completed before publication */
        const char *keys[] = {"queue", "batch", "inference", "postprocess", "analytics", "total"};
        for (int k = 0; k < 6; k++) {
            json_t *v = json_object_get(lat, keys[k]);
            assert_true(json_is_number(v) && json_number_value(v) >= 0);
        }
        assert_null(json_object_get(lat, "publish")); /* ends after the message is built */
        /* the total is publish - capture */
        double total = json_number_value(json_object_get(lat, "total"));
        assert_true(fabs(total - (double)(tp - tc) / 1e3) < 0.01);
        json_decref(j);
    }
    fclose(f);
}

/* Every camera: in = processed + dropped, nothing in flight, and the sink saw processed. */
static void check_accounting(its_pipeline_t *p, outputs *o)
{
    for (int i = 0; i < its_pipeline_n_cameras(p); i++) {
        its_camera_stats cs;
        assert_int_equal(its_pipeline_camera_stats(p, i, &cs), 0);
        uint64_t dropped = 0;
        for (int r = 0; r < ITS_DROP_REASON_COUNT; r++)
            dropped += cs.dropped[r];
        assert_int_equal(cs.dropped_total, dropped);
        if (cs.in != cs.processed + cs.dropped_total)
            fail_msg("camera %s: in %llu != processed %llu + dropped %llu", cs.id,
                     (unsigned long long)cs.in, (unsigned long long)cs.processed,
                     (unsigned long long)cs.dropped_total);
        assert_int_equal(cs.in_flight, 0);
        if (o) {
            cam_out *c = cam_of(o, cs.id);
            assert_int_equal(c->frames, (long)cs.processed);
            assert_true(c->order_ok);
        }
    }
}

static its_pipeline_t *make(const char *sink_path, its_infer_factory inf, int engine_workers,
                            int per_camera)
{
    its_pipeline_opts o;
    its_pipeline_opts_default(&o);
    o.infer = inf;
    o.sink = its_sink_file(sink_path);
    assert_non_null(o.sink);
    o.engine_workers = engine_workers;
    o.per_camera = per_camera;
    o.batch_max = 8;
    o.max_cameras = 16;
    /* The tests check what the pipeline does, not how the scheduler ranks its threads: with
     * the sources below the engine worker, a busy CI machine starves them for seconds. */
    o.source_nice = 0;
    its_pipeline_t *p;
    char err[256];
    if (its_pipeline_create(&o, &p, err, sizeof err) < 0)
        fail_msg("create: %s", err);
    return p;
}

static void add(its_pipeline_t *p, const char *id, const char *url, const char *kind, int loop,
                int realtime, double fps, int replay_frames)
{
    its_camera_cfg c = {.id = (char *)id,
                        .url = (char *)url,
                        .kind = (char *)kind,
                        .loop = loop,
                        .realtime = realtime,
                        .fps = fps,
                        .phase_s = -1,
                        .replay_frames = replay_frames};
    char err[256];
    if (its_pipeline_add_camera(p, &c, err, sizeof err) < 0)
        fail_msg("add %s: %s", id, err);
}

/* Wait until no camera is still loading its replay clip (decoded on the source's thread). */
static void wait_loaded(its_pipeline_t *p)
{
    uint64_t deadline = its_now_ns() + 60 * ITS_NS_PER_S;
    for (;;) {
        int loading = 0;
        for (int i = 0; i < its_pipeline_n_cameras(p); i++) {
            its_camera_stats cs;
            if (its_pipeline_camera_stats(p, i, &cs) == 0 &&
                (cs.source.state == ITS_SOURCE_LOADING || cs.source.state == ITS_SOURCE_IDLE))
                loading++;
        }
        if (!loading)
            return;
        if (its_now_ns() > deadline)
            fail_msg("%d cameras still loading their clips after 60 s", loading);
        its_sleep_ns(5 * ITS_NS_PER_MS);
    }
}

static void sink_file(char *buf, size_t len)
{
    char dir[256];
    its_test_tmpdir(dir, sizeof dir);
    snprintf(buf, len, "%s/out.jsonl", dir);
}

/* Replay and file cameras through the no-op backend; one camera unpaced so the batcher has
 * to drop. */
static void test_noop_accounting(void **state)
{
    char out[400], bridge[600], road[600];
    sink_file(out, sizeof out);
    media_path("traffic_bridge_720p.mp4", bridge, sizeof bridge);
    media_path("traffic_road_cctv_360p.mp4", road, sizeof road);
    its_infer_factory inf;
    assert_int_equal(its_infer_noop_factory(200, &inf), 0);
    its_pipeline_t *p = make(out, inf, 1, 4);
    add(p, "replay-a", bridge, "replay", 1, 1, 60, 20);
    add(p, "replay-b", bridge, "replay", 1, 1, 60, 20);
    add(p, "road-fast", road, "file", 0, 0, 0, 0); /* as fast as it decodes */
    assert_int_equal(its_pipeline_find_camera(p, "replay-b"), 1);
    assert_int_equal(its_pipeline_start(p), 0);
    wait_loaded(p);
    its_sleep_ns(1500 * ITS_NS_PER_MS);
    char line[2048];
    assert_true(its_pipeline_status_line(p, line, sizeof line) > 0);
    assert_non_null(strstr(line, "noop (benchmark, no inference)"));
    assert_non_null(strstr(line, "replay-a"));
    assert_int_equal(its_pipeline_stop(p, 2 * ITS_NS_PER_S), 0);
    outputs o;
    read_outputs(out, &o);
    assert_int_equal(o.bad, 0);
    check_accounting(p, &o);
    its_camera_stats cs;
    its_pipeline_camera_stats(p, 0, &cs);
    assert_true(cs.processed >= 30); /* 1.5 s at 60 fps, on however loaded a machine */
    its_pipeline_camera_stats(p, 2, &cs);
    assert_true(cs.in > 100);
    assert_true(cs.processed > 0);
    /* every stage of the stage table saw every processed frame, the batch stage included */
    uint64_t processed = 0;
    for (int i = 0; i < 3; i++) {
        its_pipeline_camera_stats(p, i, &cs);
        processed += cs.processed;
    }
    assert_true(processed > 0);
    for (int s = 0; s < ITS_STAGE_COUNT; s++) {
        uint64_t count = 0;
        double p99 = its_pipeline_stage_quantile(p, (its_stage)s, 0.99, NULL, &count);
        assert_int_equal(count, processed);
        assert_false(isnan(p99));
    }
    /* frames at 60 fps through a 5 ms batch delay: end to end takes a measurable time */
    assert_true(its_pipeline_stage_quantile(p, ITS_STAGE_TOTAL, 0.99, NULL, NULL) > 0);
    /* and the pipeline's registry exports them under the table's names */
    char *text;
    size_t len;
    assert_int_equal(its_metrics_render(its_pipeline_metrics(p), &text, &len), 0);
    char want[128];
    snprintf(want, sizeof want, "its_stage_latency_seconds_count{stage=\"batch\"} %llu\n",
             (unsigned long long)processed);
    assert_non_null(strstr(text, want));
    its_free(text);
    assert_int_equal(its_pipeline_messages(p), processed);
    its_pipeline_destroy(p);
}

/* ---- fault-injecting backends (test doubles for the engine, not inference) ---- */

typedef struct chaos {
    its_infer base;
    int fail_every; /* fail every Nth batch (0: never) */
    unsigned rng;
    int batches;
    int max_sleep_us;
} chaos;

static atomic_int chaos_seed;

static int chaos_run(its_infer *inf, its_frame **frames, int n, int padded)
{
    chaos *c = (chaos *)inf;
    c->batches++;
    if (c->max_sleep_us)
        its_sleep_ns((uint64_t)(rand_r(&c->rng) % c->max_sleep_us) * 1000);
    if (c->fail_every && c->batches % c->fail_every == 0)
        return ITS_EBACKEND;
    uint64_t t = its_now_ns();
    for (int i = 0; i < n; i++) {
        /* one fake box per frame, in pixels, so the message path for detections runs; the
         * message carries it as fractions of the frame: 0.1, 0.2, 0.3, 0.4 */
        its_frame *f = frames[i];
        f->n_dets = 1;
        f->dets[0] = (its_det){0.1f * (float)f->width,
                               0.2f * (float)f->height,
                               0.3f * (float)f->width,
                               0.4f * (float)f->height,
                               0.9f,
                               2,
                               0};
        frames[i]->ts_ns[ITS_TS_INFER] = t;
        frames[i]->ts_ns[ITS_TS_POST] = t;
    }
    return 0;
}

/* The pipelined pair (as the cuda frames path): submit only takes the batch, collect does the
 * work; checks that the worker keeps at most two in flight and collects them in order. */
static atomic_int chaos_max_inflight, chaos_order_bad;

typedef struct chaos_async {
    chaos c;
    int fail_submit_every;
    int submitted, collected, inflight;
    int tickets[4];      /* submission order of the outstanding tickets */
    uint64_t done_at[2]; /* per ticket: when its simulated compute ends */
} chaos_async;

static int chaos_submit(its_infer *inf, its_frame **frames, int n, int padded)
{
    chaos_async *a = (chaos_async *)inf;
    (void)frames;
    (void)n;
    (void)padded;
    a->submitted++;
    if (a->fail_submit_every && a->submitted % a->fail_submit_every == 0)
        return ITS_EBUSY; /* nothing to collect */
    if (a->inflight >= 2) {
        atomic_fetch_add(&chaos_order_bad, 1);
        return ITS_EBUSY;
    }
    int t = a->submitted & 1;
    /* the work runs "on the device" after the one in flight */
    uint64_t start = a->inflight ? a->done_at[a->tickets[0]] : its_now_ns();
    a->done_at[t] = start + (uint64_t)(rand_r(&a->c.rng) % 6000) * 1000;
    a->tickets[a->inflight++] = t;
    int m = atomic_load(&chaos_max_inflight);
    while (a->inflight > m && !atomic_compare_exchange_weak(&chaos_max_inflight, &m, a->inflight))
        ;
    return t;
}

static int chaos_collect(its_infer *inf, int ticket, its_frame **frames, int n)
{
    chaos_async *a = (chaos_async *)inf;
    if (a->inflight < 1 || a->tickets[0] != ticket) {
        atomic_fetch_add(&chaos_order_bad, 1);
        return ITS_EINVAL;
    }
    a->tickets[0] = a->tickets[1];
    a->inflight--;
    a->collected++;
    uint64_t now = its_now_ns();
    if (a->done_at[ticket] > now)
        its_sleep_ns(a->done_at[ticket] - now);
    return chaos_run(inf, frames, n, n);
}

static int chaos_ready(its_infer *inf, int ticket)
{
    chaos_async *a = (chaos_async *)inf;
    return its_now_ns() >= a->done_at[ticket];
}

static void chaos_destroy(its_infer *inf)
{
    its_free(inf);
}

typedef struct chaos_cfg {
    int fail_every;
    int max_sleep_us;
    int pipelined, fail_submit_every;
} chaos_cfg;

static int chaos_create(void *ctx, its_infer **out, char *err, size_t errlen)
{
    chaos_cfg *cfg = ctx;
    chaos_async *a = its_calloc(ITS_MOD_TEST, 1, sizeof *a);
    chaos *c = &a->c;
    if (cfg->pipelined) {
        c->base.submit = chaos_submit;
        c->base.collect = chaos_collect;
        c->base.ready = chaos_ready;
        a->fail_submit_every = cfg->fail_submit_every;
    }
    c->base.name = "chaos";
    c->base.max_batch = 8;
    c->base.is_benchmark = 1;
    c->base.run = chaos_run;
    c->base.destroy = chaos_destroy;
    c->fail_every = cfg->fail_every;
    c->max_sleep_us = cfg->max_sleep_us;
    c->rng = (unsigned)atomic_fetch_add(&chaos_seed, 7919);
    *out = &c->base;
    return 0;
}

/* ncams replayed cameras through `workers` chaos engine workers for 1.2 s, then stopped: the
 * accounting checked (every frame published or counted dropped, each camera in frame order),
 * engine failures and processed frames summed; every processed frame carries its detection.
 * The caller destroys the pipeline. */
static its_pipeline_t *run_chaos(const char *out, const char *video, chaos_cfg *cc, int workers,
                                 int ncams, uint64_t *failed, uint64_t *processed)
{
    its_infer_factory inf = {.create = chaos_create, .ctx = cc};
    its_pipeline_t *p = make(out, inf, workers, 8);
    char id[16];
    for (int i = 0; i < ncams; i++) {
        snprintf(id, sizeof id, "cam-%d", i);
        add(p, id, video, "replay", 1, 1, 100, 10);
    }
    assert_int_equal(its_pipeline_start(p), 0);
    wait_loaded(p);
    its_sleep_ns(1200 * ITS_NS_PER_MS);
    its_pipeline_stop(p, 3 * ITS_NS_PER_S);
    outputs o;
    read_outputs(out, &o);
    check_accounting(p, &o);
    *failed = *processed = 0;
    for (int i = 0; i < ncams; i++) {
        its_camera_stats cs;
        its_pipeline_camera_stats(p, i, &cs);
        *failed += cs.dropped[ITS_DROP_ENGINE_ERROR];
        *processed += cs.processed;
        assert_int_equal(cs.detections, cs.processed);
    }
    return p;
}

/* Three engine workers finishing batches out of order, one in four batches failing: every
 * camera's messages still come in frame order, failures are counted, nothing is lost. */
static void test_workers_order_and_failures(void **state)
{
    char out[400], bridge[600];
    sink_file(out, sizeof out);
    media_path("traffic_bridge_720p.mp4", bridge, sizeof bridge);
    static chaos_cfg cc = {.fail_every = 4, .max_sleep_us = 8000};
    uint64_t failed, processed;
    its_pipeline_t *p = run_chaos(out, bridge, &cc, 3, 4, &failed, &processed);
    assert_true(failed > 0);
    assert_true(processed > 100);
    its_pipeline_destroy(p);
}

/* Pipelined engine workers (submit n + 1, then collect n): two batches in flight, collected in
 * order, failures of submit and of collect counted, every camera still in frame order, the
 * accounting exact. */
static void test_pipelined_workers(void **state)
{
    char out[400], bridge[600];
    media_path("traffic_bridge_720p.mp4", bridge, sizeof bridge);
    /* compute time is simulated by submit/ready/collect (up to 6 ms a batch) */
    static chaos_cfg cc = {.fail_every = 5, .pipelined = 1, .fail_submit_every = 7};
    /* one worker: it must pipeline; two: the idle one takes the next batch instead */
    for (int workers = 1; workers <= 2; workers++) {
        sink_file(out, sizeof out);
        atomic_store(&chaos_max_inflight, 0);
        atomic_store(&chaos_order_bad, 0);
        uint64_t failed, processed;
        its_pipeline_t *p = run_chaos(out, bridge, &cc, workers, 6, &failed, &processed);
        printf("pipelined, %d worker(s): %llu processed, %llu failed, at most %d batches in "
               "flight per worker\n",
               workers, (unsigned long long)processed, (unsigned long long)failed,
               atomic_load(&chaos_max_inflight));
        assert_int_equal(atomic_load(&chaos_order_bad), 0);
        if (workers == 1)
            assert_int_equal(atomic_load(&chaos_max_inflight), 2);
        assert_true(atomic_load(&chaos_max_inflight) <= 2);
        assert_true(failed > 0);
        /* every failed batch counted (its_errors_total{module="engine"} on /metrics) */
        assert_true(its_pipeline_engine_errors(p) > 0);
        assert_true(its_pipeline_engine_errors(p) <= failed);
        assert_true(processed > 100);
        its_pipeline_destroy(p);
    }
}

/* A slow engine and a long drain: everything queued at stop is processed, none dropped. With
 * no drain time, what is queued is dropped and counted as shutdown. */
static void test_shutdown_drain(void **state)
{
    char out[400], bridge[600];
    media_path("traffic_bridge_720p.mp4", bridge, sizeof bridge);
    for (int pass = 0; pass < 2; pass++) {
        sink_file(out, sizeof out);
        its_infer_factory inf;
        assert_int_equal(its_infer_noop_factory(3000, &inf), 0); /* 3 ms per frame */
        its_pipeline_t *p = make(out, inf, 1, 8);
        for (int i = 0; i < 4; i++) {
            char id[16];
            snprintf(id, sizeof id, "cam-%d", i);
            add(p, id, bridge, "replay", 1, 1, 200, 10); /* 800 fps offered, ~330 served */
        }
        its_pipeline_start(p);
        wait_loaded(p);
        /* Stop while more than one batch is waiting, so that some frames are still queued
         * whatever the worker takes in the meantime. The sources run at a lower priority
         * than the engine worker: on a loaded machine the queue takes a while to build. */
        its_batcher_stats bs = {0};
        uint64_t until = its_now_ns() + 20 * ITS_NS_PER_S;
        do {
            its_sleep_ns(5 * ITS_NS_PER_MS);
            its_pipeline_batch_stats(p, &bs);
        } while (bs.depth <= 8 && its_now_ns() < until);
        assert_true(bs.depth > 8); /* frames are waiting at stop */
        uint64_t t0 = its_now_ns();
        its_pipeline_stop(p, pass == 0 ? 4 * ITS_NS_PER_S : 0);
        assert_true(its_now_ns() - t0 < 5 * ITS_NS_PER_S);
        outputs o;
        read_outputs(out, &o);
        check_accounting(p, &o);
        uint64_t shut = 0;
        for (int i = 0; i < 4; i++) {
            its_camera_stats cs;
            its_pipeline_camera_stats(p, i, &cs);
            shut += cs.dropped[ITS_DROP_SHUTDOWN];
        }
        if (pass == 0)
            assert_int_equal(shut, 0);
        else
            assert_true(shut > 0);
        its_pipeline_destroy(p);
    }
}

/* ---- hooks: per-camera state, order, messages of their own ---- */

typedef struct hook_state {
    char id[64];
    uint64_t last_seq;
    int n;
    int next_track;
} hook_state;

static atomic_int hooks_open, hooks_closed, hooks_order_bad;

static int h_open(void *ctx, const char *camera, const char *scene, void **state, char *err,
                  size_t errlen)
{
    hook_state *s = its_calloc(ITS_MOD_TEST, 1, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", camera);
    s->next_track = 1;
    *state = s;
    atomic_fetch_add(&hooks_open, 1);
    return 0;
}

static void h_quality(void *state, its_frame *f)
{
    f->quality = 0.75f;
}

static void h_analytics(void *state, its_frame *f, its_emit_fn emit, void *emit_ctx)
{
    hook_state *s = state;
    if (s->n && f->seq <= s->last_seq)
        atomic_fetch_add(&hooks_order_bad, 1);
    s->last_seq = f->seq;
    for (int i = 0; i < f->n_dets; i++)
        f->dets[i].track_id = s->next_track;
    if (++s->n % 10 == 0) {
        char msg[256];
        int len =
            snprintf(msg, sizeof msg, "{\"v\":2,\"type\":\"event\",\"camera\":\"%s\",\"count\":%d}",
                     s->id, s->n);
        emit(emit_ctx, ITS_MSG_EVENT, msg, (size_t)len);
    }
}

static void h_close(void *state)
{
    atomic_fetch_add(&hooks_closed, 1);
    its_free(state);
}

static void test_hooks_and_runtime_cameras(void **state)
{
    char out[400], bridge[600];
    sink_file(out, sizeof out);
    media_path("traffic_bridge_720p.mp4", bridge, sizeof bridge);
    static chaos_cfg cc = {0};
    its_pipeline_opts o;
    its_pipeline_opts_default(&o);
    o.infer = (its_infer_factory){.create = chaos_create, .ctx = &cc};
    o.sink = its_sink_file(out);
    o.max_cameras = 4;
    o.hooks = (its_camera_hooks){
        .open = h_open, .quality = h_quality, .analytics = h_analytics, .close = h_close};
    its_pipeline_t *p;
    assert_int_equal(its_pipeline_create(&o, &p, NULL, 0), 0);
    add(p, "a", bridge, "replay", 1, 1, 50, 10);
    its_pipeline_start(p);
    wait_loaded(p);
    its_sleep_ns(300 * ITS_NS_PER_MS);
    add(p, "b", bridge, "replay", 1, 1, 50, 10); /* added while running */
    char err[256];
    its_camera_cfg dup = {.id = "a", .url = bridge, .kind = "replay"};
    assert_int_equal(its_pipeline_add_camera(p, &dup, err, sizeof err), ITS_EEXIST);
    its_sleep_ns(400 * ITS_NS_PER_MS);
    assert_int_equal(its_pipeline_remove_camera(p, "a"), 0);
    assert_int_equal(its_pipeline_remove_camera(p, "a"), ITS_ENOENT);
    its_camera_stats cs;
    its_pipeline_camera_stats(p, 0, &cs);
    uint64_t a_in = cs.in;
    its_sleep_ns(300 * ITS_NS_PER_MS);
    its_pipeline_camera_stats(p, 0, &cs);
    assert_int_equal(cs.in, a_in); /* removed: no new frames */
    assert_int_equal(cs.active, 0);
    /* a camera with the removed one's id can come back; the removed camera's slot is
     * reclaimed (its frames are through), so four cameras fit the four slots again */
    add(p, "a", bridge, "replay", 1, 1, 50, 10);
    add(p, "c", bridge, "replay", 1, 1, 50, 10);
    add(p, "d", bridge, "replay", 1, 1, 50, 10);
    assert_int_equal(its_pipeline_n_cameras(p), 4);
    wait_loaded(p);
    its_camera_cfg extra = {.id = "e", .url = bridge, .kind = "replay", .realtime = 1};
    assert_int_equal(its_pipeline_add_camera(p, &extra, err, sizeof err), ITS_EFULL);
    its_sleep_ns(300 * ITS_NS_PER_MS);
    its_pipeline_stop(p, ITS_NS_PER_S);
    assert_int_equal(atomic_load(&hooks_order_bad), 0);
    outputs out_;
    read_outputs(out, &out_);
    assert_int_equal(out_.bad, 0);
    cam_out *ca = cam_of(&out_, "a");
    assert_true(ca->frames > 0 && ca->tracked == ca->dets && ca->quality_seen);
    assert_true(ca->events > 0);
    /* per slot (the current lives) the accounting is exact */
    for (int i = 0; i < its_pipeline_n_cameras(p); i++) {
        its_pipeline_camera_stats(p, i, &cs);
        assert_int_equal(cs.in, cs.processed + cs.dropped_total);
    }
    its_pipeline_destroy(p);
    assert_int_equal(atomic_load(&hooks_closed), atomic_load(&hooks_open));
    assert_int_equal(atomic_load(&hooks_open), 5); /* a, b, a again, c, d */
}

/* Damaged inputs: a truncated file, garbage bytes, a stream whose frame size changes, a
 * missing file. The pipeline survives, counts each, and the accounting still holds. */
static void test_corrupt_inputs(void **state)
{
    char dir[256], trunc[400], junk[400], sizes[400], missing[400], out[400], p2[600];
    its_test_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/out.jsonl", dir);
    snprintf(trunc, sizeof trunc, "%s/trunc.mp4", dir);
    snprintf(junk, sizeof junk, "%s/junk.mp4", dir);
    snprintf(sizes, sizeof sizes, "%s/sizes.mjpeg", dir);
    snprintf(missing, sizeof missing, "%s/missing.mp4", dir);
    size_t len;
    media_path("traffic_road_cctv_360p.mp4", p2, sizeof p2);
    uint8_t *d = its_test_read_file(p2, &len);
    assert_non_null(d);
    assert_int_equal(its_test_write_file(trunc, d, len / 3), 0);
    for (size_t i = 0; i < 100000; i++)
        d[i] = (uint8_t)(i * 7919u >> 3);
    assert_int_equal(its_test_write_file(junk, d, 100000), 0);
    its_free(d);
    mkv_segment segs[] = {{320, 240, 10}, {640, 480, 10}, {160, 120, 10}};
    assert_int_equal(mkv_write_mjpeg(sizes, segs, 3), 0);

    its_infer_factory inf;
    assert_int_equal(its_infer_noop_factory(0, &inf), 0);
    its_pipeline_opts o;
    its_pipeline_opts_default(&o);
    o.infer = inf;
    o.sink = its_sink_file(out);
    o.backoff_min_ms = 20;
    o.backoff_max_ms = 50;
    its_pipeline_t *p;
    assert_int_equal(its_pipeline_create(&o, &p, NULL, 0), 0);
    add(p, "trunc", trunc, "file", 1, 0, 0, 0);
    add(p, "junk", junk, "file", 1, 0, 0, 0);
    add(p, "sizes", sizes, "file", 1, 1, 200, 0);
    add(p, "missing", missing, "file", 1, 0, 0, 0);
    its_pipeline_start(p);
    its_sleep_ns(1200 * ITS_NS_PER_MS);
    its_pipeline_stop(p, ITS_NS_PER_S);
    outputs out_;
    read_outputs(out, &out_);
    check_accounting(p, &out_);
    its_camera_stats cs;
    its_pipeline_camera_stats(p, its_pipeline_find_camera(p, "trunc"), &cs);
    assert_true(cs.processed > 0); /* plays up to the cut, again and again */
    its_pipeline_camera_stats(p, its_pipeline_find_camera(p, "junk"), &cs);
    assert_int_equal(cs.in, 0);
    assert_true(cs.source.open_failures >= 2 && cs.source.reconnects >= 2);
    assert_non_null(strstr(cs.source.last_error, "junk.mp4"));
    its_pipeline_camera_stats(p, its_pipeline_find_camera(p, "sizes"), &cs);
    assert_true(cs.processed >= 30);
    assert_true(cs.source.size_changes >= 2);
    its_pipeline_camera_stats(p, its_pipeline_find_camera(p, "missing"), &cs);
    assert_true(cs.source.open_failures >= 2);
    its_pipeline_destroy(p);
}

/* Steady state allocates nothing: frames, batches and messages come from pools and buffers
 * made at start (FFmpeg's own allocations inside a decoder are not ours to count; replayed
 * frames do not decode). */
static void test_no_allocation_per_frame(void **state)
{
    char bridge[600];
    media_path("traffic_bridge_720p.mp4", bridge, sizeof bridge);
    for (int with_hooks = 0; with_hooks < 2; with_hooks++) {
        its_pipeline_opts o;
        its_pipeline_opts_default(&o);
        assert_int_equal(its_infer_noop_factory(0, &o.infer), 0);
        o.sink = its_sink_null();
        if (with_hooks) {
            its_app_hooks_opts ho = {.model_name = "noop", .window_s = 3600};
            if (its_app_hooks(&ho, &o.hooks) < 0)
                continue;
        }
        its_pipeline_t *p;
        assert_int_equal(its_pipeline_create(&o, &p, NULL, 0), 0);
        for (int i = 0; i < 4; i++) {
            char id[16];
            snprintf(id, sizeof id, "cam-%d", i);
            add(p, id, bridge, "replay", 1, 1, 100, 10);
        }
        its_pipeline_start(p);
        wait_loaded(p);
        /* warm-up: per-camera state opens on a camera's first frame, which a loaded machine
         * may delay for seconds; measure once every camera has published a few */
        uint64_t until = its_now_ns() + 30 * ITS_NS_PER_S;
        for (int warm = 0; !warm && its_now_ns() < until;) {
            its_sleep_ns(50 * ITS_NS_PER_MS);
            warm = 1;
            for (int i = 0; i < 4; i++) {
                its_camera_stats cs;
                if (its_pipeline_camera_stats(p, i, &cs) < 0 || cs.processed < 5)
                    warm = 0;
            }
        }
        its_sleep_ns(300 * ITS_NS_PER_MS);
        uint64_t a0 = its_alloc_count(), f0 = its_pipeline_messages(p);
        its_sleep_ns(700 * ITS_NS_PER_MS);
        uint64_t a1 = its_alloc_count(), f1 = its_pipeline_messages(p);
        its_pipeline_stop(p, ITS_NS_PER_S);
        its_pipeline_destroy(p);
        assert_true(f1 - f0 > 20);
        if (a1 != a0)
            fail_msg("%s: %llu allocations over %llu frames", with_hooks ? "with hooks" : "bare",
                     (unsigned long long)(a1 - a0), (unsigned long long)(f1 - f0));
    }
}

int main(void)
{
    if (!its_test_shared_path("media", media, sizeof media))
        return its_test_skip("shared media missing (ITS_SHARED_DIR)");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noop_accounting),
        cmocka_unit_test(test_workers_order_and_failures),
        cmocka_unit_test(test_pipelined_workers),
        cmocka_unit_test(test_shutdown_drain),
        cmocka_unit_test(test_hooks_and_runtime_cameras),
        cmocka_unit_test(test_corrupt_inputs),
        cmocka_unit_test(test_no_allocation_per_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
