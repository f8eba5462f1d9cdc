/*
 * itsd's outward services around the pipeline: the Prometheus registry (its/metrics.h) fed
 * from the pipeline, and the HTTP API (its/api.h) whose provider is the pipeline.
 *
 * The registry is the pipeline's (its_pipeline_metrics), where the pipeline itself records
 * its_stage_latency_seconds{stage}, the Redis sink its publish outcomes and the per-camera
 * hooks (hooks.c) vehicle counts, flow and drift. Per frame (on the analytics worker, after
 * publishing) the observer adds the end-to-end latency to SPEC's analytics_latency_seconds,
 * the batch size, counts frames and detections per camera and class name, sets the quality
 * score (a ratio in [0, 1]) and, once a second of frames, the camera's frame rate; the
 * registry's updates are lock-free. Per-camera series are looked up once per camera slot and
 * cached (a slot's frames all come through one worker, so the cache needs no lock). Levels
 * and the pipeline's own counters (queue depths, cameras, up/down, drops by reason, stalls,
 * open failures) are read by a collector at scrape time; counters are only ever advanced by
 * the pipeline's increments since the last read, never recomputed, so any number of scrapers
 * see the same series. A removed camera's series leave the exposition
 * (its_metrics_hide_label). The scaling decision (SPEC's AutoScalingConfig,
 * its_metrics_scaling_attach) runs after these collectors at every render.
 *
 * The API's callbacks run on its threads: they use only the pipeline's thread-safe calls.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "its/analytics.h"
#include "its/api.h"
#include "its/app.h"
#include "its/app_hooks.h"
#include "its/app_services.h"
#include "its/cluster.h"
#include "its/core.h"
#include "its/counts.h"
#include "its/engine.h"
#include "its/evidence.h"
#include "its/media.h"
#include "its/metrics.h"
#include "its/publish.h"

/* A snapshot younger than this is answered as it is; an older one waits for a new frame. */
#define SNAP_FRESH_NS  (500 * ITS_NS_PER_MS)
#define SNAP_WAIT_NS   ITS_NS_PER_S /* longest wait for a frame */
#define SNAP_QUALITY   80
#define SCENE_JSON_MAX (256 * 1024)
#define SNAP_NICE      19                 /* the encoder thread's niceness */
#define SNAP_ENCODE_NS (5 * ITS_NS_PER_S) /* longest wait for the encoder */

/* The latest frame of a camera slot, copied by the observer only when a snapshot was asked
 * for (want) since the last copy: nothing is copied or encoded while nobody looks. */
typedef struct cam_snap {
    pthread_mutex_t mu; /* the copy; the observer only try-locks it */
    pthread_cond_t cv;  /* a new copy */
    atomic_int want;
    uint8_t *px;
    size_t cap;
    int width, height;
    its_pixfmt fmt;
    char id[ITS_CAMERA_ID_MAX + 1]; /* the camera the copy is of ("": none yet) */
    uint64_t at_ns;                 /* when it was copied */
    int n_dets;
    its_det dets[ITS_FRAME_MAX_DETS];
} cam_snap;

/* A snapshot to draw and encode, handed from an API thread to the encoder thread. The API
 * thread waits for it up to SNAP_ENCODE_NS; one it gave up on is freed by the encoder. */
typedef struct snap_job {
    struct snap_job *next;
    char id[ITS_CAMERA_ID_MAX + 1];
    its_image img;
    its_det *dets;
    int n_dets, annotate, width; /* width: scale the picture down to it (0: as it is) */
    uint8_t *jpeg;
    size_t len;
    int rc, done, abandoned;
} snap_job;

typedef struct cam_series {
    char id[64]; /* the camera the series are of (a slot is reused by other cameras) */
    its_metric *frames;
    its_metric *quality;
    its_metric *fps;
    its_metric *dets[80 + 1]; /* per class id; [80]: other */
    uint64_t fps_t0, fps_n;   /* frames since fps_t0 (the camera's worker only) */
    int ready;
} cam_series;

typedef struct cam_prev {
    uint64_t gen;                   /* the slot's life these are of */
    char id[ITS_CAMERA_ID_MAX + 1]; /* the camera they are of */
    uint64_t dropped[ITS_DROP_REASON_COUNT];
    uint64_t stalls, open_failures, reconnects;
    uint64_t decode_fallbacks;
} cam_prev;

struct its_app_services {
    its_pipeline_t *p;
    its_metrics *reg;
    its_api *api;
    its_cache *cache; /* L1 in front of Redis for GET /v1/cameras/{id}/analytics; NULL: none */
    its_metric *e2e;
    its_metric *batch_size;
    its_metric *q_ingest, *q_analytics;
    cam_series *cams;
    int max_cams;
    pthread_mutex_t collect_mu;
    cam_prev *prev;              /* collector only */
    uint64_t prev_engine_errors; /* collector only */
    atomic_int serving;          /* its_app_services_set_serving: what /readyz answers */
    uint64_t prev_fallbacks;     /* collector only */
    uint64_t prev_plan_cache[3]; /* collector only: hits, misses, rejected files */
    const char *backend;         /* engine.backend, the label of its_engine_fallback */
    /* cluster.enabled: the cameras come from the shared registry (its/cluster.h) */
    its_cluster *cluster;
    int spread_phase;
    char r_host[256], r_sentinels[512], r_master[64], r_user[128], r_pass[256];
    cam_snap *snaps; /* per camera slot */
    /* the snapshot encoder: one thread at the lowest priority (SNAP_NICE) */
    pthread_t enc_thread;
    int enc_started, enc_stop;
    pthread_mutex_t enc_mu;
    pthread_cond_t enc_work, enc_done;
    snap_job *enc_head, *enc_tail;
};

/* On the camera's analytics worker, after the sinks: copy the frame if a snapshot waits for
 * one. The buffer grows to the frame's size once (not per frame); a copy the API is reading
 * right now is left alone and the next frame is taken instead. */
static void snap_observe(cam_snap *sn, const its_frame *f, const char *camera)
{
    if (!atomic_load_explicit(&sn->want, memory_order_relaxed) || pthread_mutex_trylock(&sn->mu))
        return;
    size_t need = (size_t)f->width * 3 * (size_t)f->height;
    if (need > sn->cap) {
        uint8_t *px = its_realloc(ITS_MOD_APP, sn->px, need);
        if (!px) {
            pthread_mutex_unlock(&sn->mu);
            return;
        }
        sn->px = px;
        sn->cap = need;
    }
    for (int y = 0; y < f->height; y++)
        memcpy(sn->px + (size_t)y * (size_t)f->width * 3, f->data + (size_t)y * (size_t)f->stride,
               (size_t)f->width * 3);
    sn->width = f->width;
    sn->height = f->height;
    sn->fmt = f->pixfmt;
    snprintf(sn->id, sizeof sn->id, "%s", camera);
    sn->n_dets = f->n_dets < ITS_FRAME_MAX_DETS ? f->n_dets : ITS_FRAME_MAX_DETS;
    memcpy(sn->dets, f->dets, (size_t)sn->n_dets * sizeof sn->dets[0]);
    sn->at_ns = its_now_ns();
    atomic_store(&sn->want, 0);
    pthread_cond_broadcast(&sn->cv);
    pthread_mutex_unlock(&sn->mu);
}

static void observe(void *ctx, const its_frame *f, const char *camera)
{
    its_app_services *s = ctx;
    if (f->ts_ns[ITS_TS_PUBLISH] >= f->ts_ns[ITS_TS_CAPTURE])
        its_metric_observe(s->e2e,
                           (double)(f->ts_ns[ITS_TS_PUBLISH] - f->ts_ns[ITS_TS_CAPTURE]) / 1e9);
    if (f->batch_n > 0)
        its_metric_observe(s->batch_size, (double)f->batch_n);
    if (f->camera < 0 || f->camera >= s->max_cams)
        return;
    snap_observe(&s->snaps[f->camera], f, camera);
    cam_series *cs = &s->cams[f->camera];
    uint64_t now = f->ts_ns[ITS_TS_SENT] ? f->ts_ns[ITS_TS_SENT] : its_now_ns();
    if (cs->ready && strcmp(cs->id, camera) != 0) /* the slot has a new camera */
        memset(cs, 0, sizeof *cs);
    if (!cs->ready) {
        snprintf(cs->id, sizeof cs->id, "%s", camera);
        cs->frames = its_metrics_series_v(its_metrics_std(s->reg, ITS_M_FRAMES), camera);
        cs->quality = its_metrics_series_v(its_metrics_std(s->reg, ITS_M_QUALITY), camera);
        cs->fps = its_metrics_series_v(its_metrics_std(s->reg, ITS_M_CAMERA_FPS), camera);
        cs->fps_t0 = now;
        cs->ready = 1;
    }
    its_metric_inc(cs->frames);
    if (f->quality >= 0)
        its_metric_set(cs->quality, f->quality);
    /* frames per second over about a second of the camera's own frames */
    cs->fps_n++;
    if (now >= cs->fps_t0 + ITS_NS_PER_S) {
        its_metric_set(cs->fps, (double)cs->fps_n * 1e9 / (double)(now - cs->fps_t0));
        cs->fps_t0 = now;
        cs->fps_n = 0;
    }
    for (int i = 0; i < f->n_dets; i++) {
        int k = f->dets[i].class_id >= 0 && f->dets[i].class_id < 80 ? f->dets[i].class_id : 80;
        if (!cs->dets[k]) {
            /* the detector's class name; class_<id> where it has none (as in messages) */
            const char *name = k < 80 ? its_pipeline_class_name(s->p, k) : NULL;
            char cls[16];
            if (!name || !*name) {
                snprintf(cls, sizeof cls, k < 80 ? "class_%d" : "other", k);
                name = cls;
            }
            cs->dets[k] =
                its_metrics_series_v(its_metrics_std(s->reg, ITS_M_DETECTIONS), camera, name);
        }
        its_metric_inc(cs->dets[k]);
    }
}

/* A counter advanced by what the pipeline counted since the last read (the series exists
 * from the camera's first read on, at 0 until something is counted). */
static void advance(its_metrics *reg, its_metric_id id, const char *camera, const char *reason,
                    uint64_t now, uint64_t *prev)
{
    its_metric_family *f = its_metrics_std(reg, id);
    its_metric *m =
        reason ? its_metrics_series_v(f, camera, reason) : its_metrics_series_v(f, camera);
    if (now > *prev)
        its_metric_add(m, (double)(now - *prev));
    *prev = now;
}

/* Scrape time: levels and per-reason drops from the pipeline. */
static void collect(void *ud, its_metrics *reg)
{
    its_app_services *s = ud;
    pthread_mutex_lock(&s->collect_mu);
    /* the queues a frame waits in: the SmartBatchProcessor's (SPEC's 1000-frame queue, fed by
     * ingest) and the analytics workers'; the publish service sets queue="publish" itself */
    its_batcher_stats bs;
    its_pipeline_batch_stats(s->p, &bs);
    its_metric_set(s->q_ingest, (double)bs.depth);
    its_metric_set(s->q_analytics, (double)its_pipeline_analytics_queued(s->p));
    int n = its_pipeline_n_cameras(s->p), active = 0;
    for (int i = 0; i < n && i < s->max_cams; i++) {
        its_camera_stats cs;
        cam_prev *pv = &s->prev[i];
        if (its_pipeline_camera_stats(s->p, i, &cs) < 0) {
            /* a free slot: the camera it held was removed and its slot reclaimed before this
             * scrape saw it inactive; its series leave the exposition as below */
            if (pv->id[0] && its_pipeline_find_camera(s->p, pv->id) < 0)
                its_metrics_hide_label(reg, "camera", pv->id);
            memset(pv, 0, sizeof *pv);
            continue;
        }
        if (pv->gen != cs.gen) { /* a new camera in this slot: its counters start at 0 */
            if (pv->id[0] && strcmp(pv->id, cs.id) != 0 &&
                its_pipeline_find_camera(s->p, pv->id) < 0)
                its_metrics_hide_label(reg, "camera", pv->id); /* the one before it */
            memset(pv, 0, sizeof *pv);
            pv->gen = cs.gen;
            snprintf(pv->id, sizeof pv->id, "%s", cs.id);
        }
        if (!cs.active) {
            /* removed: its series leave the exposition, also those its last frames in flight
             * made since (the id may come back in a new slot: then they stay) */
            if (its_pipeline_find_camera(s->p, cs.id) < 0)
                its_metrics_hide_label(reg, "camera", cs.id);
            continue;
        }
        active++;
        for (int r = 0; r < ITS_DROP_REASON_COUNT; r++)
            advance(reg, ITS_M_FRAMES_DROPPED, cs.id, its_drop_reason_name(r), cs.dropped[r],
                    &pv->dropped[r]);
        advance(reg, ITS_M_CAMERA_STALLS, cs.id, NULL, cs.source.stalls, &pv->stalls);
        advance(reg, ITS_M_CAMERA_OPEN_FAIL, cs.id, NULL, cs.source.open_failures,
                &pv->open_failures);
        advance(reg, ITS_M_CAMERA_RECONNECTS, cs.id, NULL, cs.source.reconnects, &pv->reconnects);
        if (cs.source.decode_fallbacks) /* (no series for the cameras without one) */
            advance(reg, ITS_M_DECODE_FALLBACK, its_video_fallback_name(cs.source.fallback), NULL,
                    cs.source.decode_fallbacks, &pv->decode_fallbacks);
        its_metric_set(its_metrics_series_v(its_metrics_std(reg, ITS_M_CAMERA_NVDEC), cs.id),
                       cs.source.nvdec);
        int up = cs.source.state == ITS_SOURCE_RUNNING;
        its_metric_set(its_metrics_series_v(its_metrics_std(reg, ITS_M_CAMERA_UP), cs.id), up);
        if (!up) /* no frames come: the last second's rate no longer holds */
            its_metric_set(its_metrics_series_v(its_metrics_std(reg, ITS_M_CAMERA_FPS), cs.id), 0);
    }
    its_metric_set(its_metrics_series_v(its_metrics_std(reg, ITS_M_CAMERAS)), active);
    /* failed inference batches (the engine's log says why) */
    uint64_t ee = its_pipeline_engine_errors(s->p);
    if (ee > s->prev_engine_errors)
        its_metric_add(its_metrics_series_v(its_metrics_std(reg, ITS_M_ERRORS), "engine", "batch"),
                       (double)(ee - s->prev_engine_errors));
    s->prev_engine_errors = ee;
    /* a GPU engine replaced by the cpu engine (engine.fallback): how many workers now, and
     * each fallback counted as an engine error */
    uint64_t fev = 0;
    int nf = its_pipeline_engine_fallback(s->p, &fev);
    its_metric_set(its_metrics_series_v(its_metrics_std(reg, ITS_M_ENGINE_FALLBACK), s->backend),
                   nf);
    if (fev > s->prev_fallbacks)
        its_metric_add(
            its_metrics_series_v(its_metrics_std(reg, ITS_M_ERRORS), "engine", "fallback"),
            (double)(fev - s->prev_fallbacks));
    s->prev_fallbacks = fev;
    /* GPU engine planning and its cache (engine.plan_cache_dir) */
    its_engine_counters ec;
    its_engine_get_counters(&ec);
    uint64_t pcv[3] = {ec.plan_cache_hits, ec.plan_cache_misses, ec.plan_cache_rejected};
    static const char *const pcl[3] = {"hit", "miss", "rejected"};
    for (int i = 0; i < 3; i++) {
        its_metric *m = its_metrics_series_v(its_metrics_std(reg, ITS_M_PLAN_CACHE), pcl[i]);
        if (pcv[i] > s->prev_plan_cache[i])
            its_metric_add(m, (double)(pcv[i] - s->prev_plan_cache[i]));
        s->prev_plan_cache[i] = pcv[i];
    }
    pthread_mutex_unlock(&s->collect_mu);
}

/* ---- API provider ---- */

/* Ready means "can serve": the pipeline runs and takes cameras (from the file or the API).
 * How many cameras there are, or whether they deliver, is no part of it: a camera outage
 * must not take the API out of the service's endpoints (the cameras' state is in
 * /v1/cameras and its_camera_up). */
static int prov_ready(void *ud, char *reason, size_t len)
{
    its_app_services *s = ud;
    int serving = atomic_load(&s->serving);
    if (serving <= 0)
        snprintf(reason, len, serving < 0 ? "stopping" : "starting");
    else if (s->cluster && !its_cluster_ready(s->cluster)) {
        /* in a cluster, ready means "can take cameras": the replica holds its lease */
        snprintf(reason, len,
                 "no cluster lease (Redis away, or the previous lease of this name "
                 "not yet expired)");
        return 0;
    }
    return serving > 0;
}

static void to_api(const its_camera_stats *cs, const char *url, its_api_camera *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", cs->id);
    snprintf(out->url, sizeof out->url, "%s", url ? url : "");
    const char *st = !cs->active                                 ? "stopped"
                     : cs->source.state == ITS_SOURCE_RUNNING    ? "running"
                     : cs->source.state == ITS_SOURCE_CONNECTING ? "connecting"
                     : cs->source.state == ITS_SOURCE_LOADING || cs->source.state == ITS_SOURCE_IDLE
                         ? "starting"
                         : "down";
    snprintf(out->state, sizeof out->state, "%s", st);
    out->fps = cs->source.fps_nominal;
    snprintf(out->decoder, sizeof out->decoder, "%s", cs->source.nvdec ? "nvdec" : "cpu");
    out->frames = cs->processed;
    out->drops = cs->dropped_total;
}

static int prov_list(void *ud, its_api_camera *out, int max)
{
    its_app_services *s = ud;
    int n = its_pipeline_n_cameras(s->p), k = 0;
    for (int i = 0; i < n && k < max; i++) {
        its_camera_stats cs;
        if (its_pipeline_camera_stats(s->p, i, &cs) == 0 && cs.active)
            to_api(&cs, cs.url, &out[k++]);
    }
    return k;
}

static int prov_get(void *ud, const char *id, its_api_camera *out)
{
    its_app_services *s = ud;
    int i = its_pipeline_find_camera(s->p, id);
    its_camera_stats cs;
    if (i < 0 || its_pipeline_camera_stats(s->p, i, &cs) < 0 || !cs.active ||
        strcmp(cs.id, id) != 0) /* removed, or its slot reused, since the lookup */
        return ITS_ENOENT;
    to_api(&cs, cs.url, out);
    return 0;
}

/* ---- the cluster's cameras ---- */

typedef struct cam_strings {
    char url[2048], kind[16], scene[2048];
} cam_strings;

static const char *jstr(json_t *j, const char *k)
{
    return json_string_value(json_object_get(j, k));
}

/* A registry camera (its_app_camera_json's fields) into a camera for the pipeline, url and
 * scene ${VAR}-expanded here. ITS_EINVAL with err saying why. */
static int camera_from_json(json_t *j, int spread_phase, its_camera_cfg *c, cam_strings *st,
                            char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    const char *url = jstr(j, "url"), *kind = jstr(j, "kind"), *pace = jstr(j, "pace"),
               *scene = jstr(j, "scene"), *tr = jstr(j, "rtsp_transport"), *dec = jstr(j, "decode");
    its_source_kind k;
    its_video_decode d = ITS_VIDEO_DECODE_AUTO;
    if (dec && its_video_parse_decode(dec, &d) < 0)
        return its_seterr(err, errlen, ITS_EINVAL, "decode: '%s' is not auto, nvdec or cpu", dec);
    if (!url || its_app_expand(url, st->url, sizeof st->url) < 0)
        return its_seterr(err, errlen, ITS_EINVAL, "url: missing or cannot be expanded");
    if (kind && (its_source_parse_kind(kind, &k) < 0 ||
                 snprintf(st->kind, sizeof st->kind, "%s", kind) >= (int)sizeof st->kind))
        return its_seterr(err, errlen, ITS_EINVAL, "kind: '%s' is not a source kind", kind);
    if (pace && strcmp(pace, "realtime") && strcmp(pace, "none"))
        return its_seterr(err, errlen, ITS_EINVAL, "pace: '%s' is not realtime or none", pace);
    if (tr && strcmp(tr, "tcp") && strcmp(tr, "udp"))
        return its_seterr(err, errlen, ITS_EINVAL, "rtsp_transport: '%s' is not tcp or udp", tr);
    if (scene && its_app_expand(scene, st->scene, sizeof st->scene) < 0)
        return its_seterr(err, errlen, ITS_EINVAL, "scene: cannot be expanded");
    c->url = st->url;
    c->kind = kind ? st->kind : NULL;
    c->scene = scene && *st->scene ? st->scene : NULL;
    c->loop = json_is_true(json_object_get(j, "loop"));
    c->realtime = !(pace && !strcmp(pace, "none"));
    c->fps = json_number_value(json_object_get(j, "fps"));
    c->sample_fps = json_number_value(json_object_get(j, "sample_fps"));
    c->phase_s = json_number_value(json_object_get(j, "phase_s"));
    if (c->phase_s == 0 && spread_phase)
        c->phase_s = -1;
    c->replay_frames = (int)json_integer_value(json_object_get(j, "replay_frames"));
    c->rtsp_udp = tr && !strcmp(tr, "udp");
    c->decode = (int)d;
    c->max_width = (int)json_integer_value(json_object_get(j, "max_width"));
    c->max_height = (int)json_integer_value(json_object_get(j, "max_height"));
    return 0;
}

_Atomic uint64_t its_app_lease_until;

static void cl_lease(void *ud, uint64_t valid_until_ns)
{
    (void)ud;
    atomic_store(&its_app_lease_until, valid_until_ns);
}

static int cl_start(void *ud, const char *id, const char *spec)
{
    its_app_services *s = ud;
    json_t *j = json_loads(spec, 0, NULL);
    cam_strings *st = its_malloc(ITS_MOD_APP, sizeof *st);
    char err[256] = "not a JSON object";
    int rc = ITS_EINVAL;
    its_camera_cfg c;
    if (st && json_is_object(j) &&
        (rc = camera_from_json(j, s->spread_phase, &c, st, err, sizeof err)) == 0) {
        c.id = (char *)id;
        rc = its_pipeline_add_camera(s->p, &c, err, sizeof err);
    }
    if (rc < 0)
        its_logw("cluster", id, "camera not started: %s", err);
    its_free(st);
    json_decref(j);
    return rc;
}

static void cl_stop(void *ud, const char *id)
{
    its_app_services *s = ud;
    its_pipeline_remove_camera(s->p, id);
}

/* A removed camera has closed once no frame of it is in flight and its analytics are closed
 * (their last checkpoint written): reaped here, as the control path does. */
static int cl_closed(void *ud, const char *id)
{
    its_app_services *s = ud;
    its_pipeline_reap(s->p);
    int n = its_pipeline_n_cameras(s->p);
    for (int i = 0; i < n; i++) {
        its_camera_stats cs;
        if (its_pipeline_camera_stats(s->p, i, &cs) == 0 && !cs.active && cs.in_flight > 0 &&
            !strcmp(cs.id, id))
            return 0;
    }
    return !its_app_hooks_is_open(its_pipeline_hooks(s->p), id);
}

static int cl_ckpt_save(void *ud, const char *id, const char *json, size_t len)
{
    return its_cluster_checkpoint_save(((its_app_services *)ud)->cluster, id, json, len);
}

static int cl_ckpt_load(void *ud, const char *id, char **json, size_t *len)
{
    return its_cluster_checkpoint_load(((its_app_services *)ud)->cluster, id, json, len);
}

/* API add with cluster.enabled: the camera goes into the registry, and whichever replica owns
 * it starts it. */
static int cluster_add(its_app_services *s, const its_api_camera_spec *spec)
{
    json_t *j = spec->json ? json_loads(spec->json, 0, NULL) : json_object();
    if (!json_is_object(j)) {
        json_decref(j);
        return ITS_EINVAL;
    }
    json_object_set_new(j, "id", json_string(spec->id));
    json_object_set_new(j, "url", json_string(spec->url));
    json_object_set_new(j, "fps", json_real(spec->fps));
    its_camera_cfg c;
    cam_strings *st = its_malloc(ITS_MOD_APP, sizeof *st);
    char err[256] = "out of memory";
    int rc = st ? camera_from_json(j, s->spread_phase, &c, st, err, sizeof err) : ITS_ENOMEM;
    its_free(st);
    char *text = rc == 0 ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (rc < 0 || !text) {
        its_logw("api", spec->id, "camera not added: %s", err);
        return rc < 0 ? rc : ITS_ENOMEM;
    }
    rc = its_cluster_put(s->cluster, spec->id, text, spec->replace);
    free(text);
    if (rc < 0 && rc != ITS_EEXIST)
        its_logw("api", spec->id, "camera not added to the registry: %s", its_strerror(rc));
    return rc;
}

static int prov_add(void *ud, const its_api_camera_spec *spec)
{
    its_app_services *s = ud;
    if (s->cluster)
        return cluster_add(s, spec);
    its_camera_cfg c = {.id = (char *)spec->id,
                        .url = (char *)spec->url,
                        .decode = ITS_VIDEO_DECODE_AUTO,
                        .realtime = 1,
                        .fps = spec->fps,
                        .phase_s = -1};
    /* optional fields of the body: kind, loop, scene, replay_frames */
    json_t *j = spec->json ? json_loads(spec->json, 0, NULL) : NULL;
    char kind[16] = "", scene[512] = "";
    if (j) {
        const char *k = json_string_value(json_object_get(j, "kind"));
        const char *sc = json_string_value(json_object_get(j, "scene"));
        if (k && snprintf(kind, sizeof kind, "%s", k) < (int)sizeof kind)
            c.kind = kind;
        if (sc && snprintf(scene, sizeof scene, "%s", sc) < (int)sizeof scene)
            c.scene = scene;
        c.loop = json_is_true(json_object_get(j, "loop"));
        c.replay_frames = (int)json_integer_value(json_object_get(j, "replay_frames"));
        const char *tr = json_string_value(json_object_get(j, "rtsp_transport"));
        c.rtsp_udp = tr && !strcmp(tr, "udp");
        const char *dec = json_string_value(json_object_get(j, "decode"));
        its_video_decode d = ITS_VIDEO_DECODE_AUTO;
        if (dec && its_video_parse_decode(dec, &d) < 0) {
            its_logw("api", spec->id, "camera not added: decode: '%s' is not auto, nvdec or cpu",
                     dec);
            json_decref(j);
            return ITS_EINVAL;
        }
        c.decode = (int)d;
        json_decref(j);
    }
    int replaced = 0;
    if (spec->replace && its_pipeline_find_camera(s->p, spec->id) >= 0) {
        its_pipeline_remove_camera(s->p, spec->id);
        replaced = 1;
    }
    char err[256];
    int rc = its_pipeline_add_camera(s->p, &c, err, sizeof err);
    if (rc < 0) {
        its_logw("api", spec->id, "camera not added: %s", err);
        return rc == ITS_EEXIST || rc == ITS_EFULL ? rc : ITS_EINVAL;
    }
    return replaced;
}

static int prov_remove(void *ud, const char *id)
{
    its_app_services *s = ud;
    if (s->cluster)
        return its_cluster_remove(s->cluster, id);
    return its_pipeline_remove_camera(s->p, id) < 0 ? ITS_ENOENT : 0;
}

/* POST /v1/cameras/{id}/frames: cameras of kind "push" take the JPEG (decoded into a pooled
 * frame on the API's thread); the API maps the codes to 404/400/429. */
static int prov_push(void *ud, const char *id, const uint8_t *jpeg, size_t len, uint64_t ts_ns)
{
    its_app_services *s = ud;
    char err[256];
    int rc = its_pipeline_push_image(s->p, id, jpeg, len, ts_ns, err, sizeof err);
    if (rc < 0 && rc != ITS_EFULL)
        its_logw("api", id, "frame push refused: %s", err);
    switch (rc) {
    case ITS_ERANGE:
        return ITS_EDECODE;
    case ITS_ECLOSED:
        return ITS_ENOENT;
    default:
        return rc;
    }
}

static void copy(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

/* cluster.*: the replica's name (also in every message), the Redis target (copied: a reload
 * frees the settings), the file's cameras as seeds, then the thread. */
static int cluster_create(its_app_services *s, const its_app_config *c, char *err, size_t errlen)
{
    const its_app_settings *st = &c->s;
    char name[ITS_CLUSTER_NAME_MAX + 2] = "";
    const char *env = getenv("ITS_REPLICA_NAME");
    if (st->cluster_replica && *st->cluster_replica)
        copy(name, sizeof name, st->cluster_replica);
    else if (env && *env)
        copy(name, sizeof name, env);
    else if (gethostname(name, sizeof name) < 0)
        name[0] = 0;
    name[sizeof name - 1] = 0;
    its_publish_config pc;
    its_publish_settings_apply(&st->redis, &pc, NULL);
    copy(s->r_host, sizeof s->r_host, pc.host);
    copy(s->r_sentinels, sizeof s->r_sentinels, pc.sentinels);
    copy(s->r_master, sizeof s->r_master, pc.master_name ? pc.master_name : ITS_REDIS_MASTER_NAME);
    copy(s->r_user, sizeof s->r_user, pc.username);
    copy(s->r_pass, sizeof s->r_pass, pc.password);
    its_cluster_config cc;
    its_cluster_config_default(&cc);
    cc.replica = name;
    cc.capacity = st->cluster_capacity > 0 ? st->cluster_capacity : st->max_cameras;
    cc.lease_ttl_ms = st->cluster_lease_ttl_ms;
    cc.resync_ms = st->cluster_resync_ms;
    cc.redis.host = s->r_host;
    cc.redis.port = pc.port;
    cc.redis.sentinels = s->r_sentinels[0] ? s->r_sentinels : NULL;
    cc.redis.master_name = s->r_master;
    cc.redis.username = s->r_user[0] ? s->r_user : NULL;
    cc.redis.password = s->r_pass[0] ? s->r_pass : NULL;
    cc.redis.db = pc.db;
    cc.redis.connect_timeout_ms = pc.connect_timeout_ms;
    cc.redis.command_timeout_ms = pc.command_timeout_ms;
    s->spread_phase = st->spread_phase;
    its_cluster_ops ops = {
        .ud = s, .start = cl_start, .stop = cl_stop, .closed = cl_closed, .lease = cl_lease};
    int rc = its_cluster_create(&cc, &ops, &s->cluster, err, errlen);
    for (unsigned i = 0; rc == 0 && i < c->cams.cameras_count; i++) {
        char *spec = its_app_camera_json(&c->cams.cameras[i]);
        rc = spec ? its_cluster_seed(s->cluster, c->cams.cameras[i].id, spec) : ITS_ENOMEM;
        its_free(spec);
    }
    if (rc == 0) /* with analytics: each camera's continue across moves */
        its_app_hooks_set_checkpoints(its_pipeline_hooks(s->p), cl_ckpt_save, cl_ckpt_load, s);
    if (rc == 0) {
        its_json_set_replica(name);
        its_logi("cluster", NULL, "replica %s, capacity %d, lease %d ms", name, cc.capacity,
                 cc.lease_ttl_ms);
        return 0;
    }
    if (rc != ITS_ECONFIG)
        its_seterr(err, errlen, rc, "cluster: %s", its_strerror(rc));
    return rc;
}

/* GET /v1/cameras/{id}/counts.csv: the camera's interval counts, kept by its hooks. */
static int prov_counts(void *ud, const char *id, int64_t from_ns, int64_t to_ns, int interval_s,
                       int (*put)(void *ctx, const char *s, size_t n), void *ctx)
{
    its_app_services *s = ud;
    its_counts_store *store = its_pipeline_counts(s->p);
    if (!store)
        return ITS_ENOENT;
    int rc = its_counts_store_csv(store, id, from_ns, to_ns, interval_s, put, ctx);
    /* a camera before its first analysed frame has nothing counted yet */
    return rc == ITS_ENOENT && its_pipeline_find_camera(s->p, id) >= 0 ? 0 : rc;
}

/* GET /v1/events: the evidence store's records, with what is on disk now. */
static int prov_events(void *ud, its_api_event *out, int max)
{
    its_app_services *s = ud;
    its_evidence_store *ev = its_pipeline_evidence(s->p);
    if (!ev)
        return 0;
    its_evidence_record *rec = its_calloc(ITS_MOD_APP, (size_t)max, sizeof *rec);
    if (!rec)
        return ITS_ENOMEM;
    int n = its_evidence_list(ev, rec, max);
    for (int i = 0; i < n; i++) {
        char path[1400];
        its_api_event *e = &out[i];
        memset(e, 0, sizeof *e);
        snprintf(e->id, sizeof e->id, "%s", rec[i].id);
        snprintf(e->camera, sizeof e->camera, "%s", rec[i].camera);
        snprintf(e->kind, sizeof e->kind, "%s", rec[i].kind);
        e->ts_us = rec[i].ts_us;
        snprintf(e->cls, sizeof e->cls, "%s", rec[i].cls);
        snprintf(e->place_key, sizeof e->place_key, "%s", rec[i].place_key);
        snprintf(e->place, sizeof e->place, "%s", rec[i].place);
        e->direction = rec[i].direction;
        e->snapshot = its_evidence_path(ev, rec[i].id, "snapshot", path, sizeof path) == 0;
        e->clip = its_evidence_path(ev, rec[i].id, "clip", path, sizeof path) == 0;
        e->clip_pending = rec[i].clip && !e->clip; /* asked for, not on disk (yet) */
    }
    its_free(rec);
    return n;
}

static int prov_evidence_file(void *ud, const char *id, const char *what, char *path, size_t len)
{
    its_app_services *s = ud;
    its_evidence_store *ev = its_pipeline_evidence(s->p);
    return ev ? its_evidence_path(ev, id, what, path, len) : ITS_ENOENT;
}

/* ---- snapshots ---- */

static void snap_color(int track, int cls, uint8_t rgb[3])
{
    static const uint8_t pal[8][3] = {{255, 56, 56},  {255, 157, 151}, {255, 112, 31},
                                      {255, 178, 29}, {72, 249, 10},   {26, 147, 52},
                                      {0, 194, 255},  {52, 69, 147}};
    int k = track > 0 ? track : cls;
    memcpy(rgb, pal[(k < 0 ? -k : k) % 8], 3);
}

/* At scale k (1: the frame's pixels): boxes with "#track class" (untracked: the class and score),
 * then the scene: zones as outlines (cyan), counting lines (yellow) with their names and an arrow
 * for the positive direction. */
/* The frame scaled by k < 1 (each output pixel the mean of the source pixels under it). */
static int downscale(const its_image *src, double k, its_image *out)
{
    int w = (int)(src->width * k + 0.5), h = (int)(src->height * k + 0.5);
    w = w < 1 ? 1 : w;
    h = h < 1 ? 1 : h;
    int rc = its_image_alloc(out, w, h, src->fmt);
    if (rc < 0)
        return rc;
    for (int y = 0; y < h; y++) {
        int y0 = (int)((long)y * src->height / h), y1 = (int)((long)(y + 1) * src->height / h);
        y1 = y1 > y0 ? y1 : y0 + 1;
        uint8_t *o = out->data + (size_t)y * (size_t)out->stride;
        for (int x = 0; x < w; x++) {
            int x0 = (int)((long)x * src->width / w), x1 = (int)((long)(x + 1) * src->width / w);
            x1 = x1 > x0 ? x1 : x0 + 1;
            unsigned sum[3] = {0, 0, 0};
            for (int yy = y0; yy < y1; yy++) {
                const uint8_t *p = src->data + (size_t)yy * (size_t)src->stride + 3 * (size_t)x0;
                for (int xx = x0; xx < x1; xx++, p += 3) {
                    sum[0] += p[0];
                    sum[1] += p[1];
                    sum[2] += p[2];
                }
            }
            unsigned cnt = (unsigned)((y1 - y0) * (x1 - x0));
            for (int c = 0; c < 3; c++)
                o[3 * x + c] = (uint8_t)((sum[c] + cnt / 2) / cnt);
        }
    }
    return 0;
}

static void annotate(its_app_services *s, const char *id, its_image *img, const its_det *dets,
                     int n, double k)
{
    static const uint8_t white[3] = {255, 255, 255}, black[3] = {0, 0, 0},
                         zone_c[3] = {0, 220, 255}, line_c[3] = {255, 230, 0};
    int side = img->width > img->height ? img->width : img->height;
    int t = side / 500 + 1, sc = side / 700 + 1;
    its_scene *scene = its_malloc(ITS_MOD_APP, sizeof *scene);
    if (scene && its_app_hooks_scene_get(its_pipeline_hooks(s->p), id, scene, NULL, 0) == 0) {
        for (int i = 0; i < scene->n_zones; i++) {
            const its_scene_zone *z = &scene->zones[i];
            for (int j = 0; j < z->n; j++) {
                its_pt a = z->poly[j], b = z->poly[(j + 1) % z->n];
                its_image_draw_line(img, a.x * k, a.y * k, b.x * k, b.y * k, t, zone_c);
            }
            its_image_draw_text(img, (int)(z->poly[0].x * k), (int)(z->poly[0].y * k), sc, z->name,
                                black, zone_c);
        }
        for (int i = 0; i < scene->n_lines; i++) {
            const its_scene_line *l = &scene->lines[i];
            its_image_draw_line(img, l->a.x * k, l->a.y * k, l->b.x * k, l->b.y * k, 2 * t, line_c);
            double mx = (l->a.x + l->b.x) / 2 * k, my = (l->a.y + l->b.y) / 2 * k;
            double pl = hypot(l->positive.x, l->positive.y);
            if (pl > 0) {
                double ux = l->positive.x / pl, uy = l->positive.y / pl, len = 12.0 * sc;
                double tx = mx + ux * len, ty = my + uy * len;
                its_image_draw_line(img, mx, my, tx, ty, t, line_c);
                its_image_draw_line(img, tx, ty, tx - ux * len / 2 - uy * len / 3,
                                    ty - uy * len / 2 + ux * len / 3, t, line_c);
                its_image_draw_line(img, tx, ty, tx - ux * len / 2 + uy * len / 3,
                                    ty - uy * len / 2 - ux * len / 3, t, line_c);
            }
            its_image_draw_text(img, (int)(l->a.x * k), (int)(l->a.y * k) - 10 * sc, sc, l->name,
                                black, line_c);
        }
    }
    its_free(scene);
    for (int i = 0; i < n; i++) {
        const its_det *d = &dets[i];
        uint8_t col[3];
        snap_color(d->track_id, d->class_id, col);
        int x1 = (int)(d->x1 * k), y1 = (int)(d->y1 * k);
        its_image_draw_box(img, x1, y1, (int)(d->x2 * k), (int)(d->y2 * k), t, col);
        const char *name = its_pipeline_class_name(s->p, d->class_id);
        char cls[16], text[64];
        if (!name || !*name) {
            snprintf(cls, sizeof cls, "class_%d", d->class_id);
            name = cls;
        }
        if (d->track_id > 0)
            snprintf(text, sizeof text, "%d %s", d->track_id, name);
        else
            snprintf(text, sizeof text, "%s %.2f", name, d->score);
        int ty = y1 - 9 * sc;
        its_image_draw_text(img, x1, ty < 0 ? y1 : ty, sc, text, white, col);
    }
}

static void deadline(struct timespec *ts, uint64_t ns)
{
    clock_gettime(CLOCK_REALTIME, ts);
    uint64_t t = (uint64_t)ts->tv_nsec + ns;
    ts->tv_sec += (time_t)(t / ITS_NS_PER_S);
    ts->tv_nsec = (long)(t % ITS_NS_PER_S);
}

/* GET /v1/cameras/{id}/snapshot.jpg: the copy of the camera's latest frame, or, when that is
 * older than SNAP_FRESH_NS, the next frame (waited for up to SNAP_WAIT_NS; a camera that
 * delivers none meanwhile is answered with its last copy, or ITS_EAGAIN without one). The
 * pixels are copied out of the slot's buffer under its lock, then drawn on and encoded on the
 * API's thread. */
static int prov_snapshot(void *ud, const char *id, int annot, int width, uint8_t **jpeg,
                         size_t *len)
{
    its_app_services *s = ud;
    int slot = its_pipeline_find_camera(s->p, id);
    if (slot < 0 || slot >= s->max_cams)
        return ITS_ENOENT;
    cam_snap *sn = &s->snaps[slot];
    its_det *dets = its_malloc(ITS_MOD_APP, sizeof sn->dets);
    if (!dets)
        return ITS_ENOMEM;
    its_image img = {0};
    int n = 0, rc = 0;
    uint64_t asked = its_now_ns();
    pthread_mutex_lock(&sn->mu);
    if (strcmp(sn->id, id) || asked - sn->at_ns > SNAP_FRESH_NS) {
        atomic_store(&sn->want, 1);
        struct timespec until;
        deadline(&until, SNAP_WAIT_NS);
        while ((strcmp(sn->id, id) || sn->at_ns < asked) &&
               pthread_cond_timedwait(&sn->cv, &sn->mu, &until) == 0) {
        }
    } else {
        atomic_store(&sn->want, 1); /* the next request finds a newer frame */
    }
    if (strcmp(sn->id, id)) {
        rc = ITS_EAGAIN;
    } else if ((rc = its_image_alloc(&img, sn->width, sn->height, sn->fmt)) == 0) {
        for (int y = 0; y < sn->height; y++)
            memcpy(img.data + (size_t)y * (size_t)img.stride,
                   sn->px + (size_t)y * (size_t)sn->width * 3, (size_t)sn->width * 3);
        n = sn->n_dets;
        memcpy(dets, sn->dets, (size_t)n * sizeof *dets);
    }
    pthread_mutex_unlock(&sn->mu);
    if (rc < 0) {
        its_image_free(&img);
        its_free(dets);
        return rc;
    }
    snap_job *job = its_calloc(ITS_MOD_APP, 1, sizeof *job);
    if (!job) {
        its_image_free(&img);
        its_free(dets);
        return ITS_ENOMEM;
    }
    snprintf(job->id, sizeof job->id, "%s", id);
    job->img = img;
    job->dets = dets;
    job->n_dets = n;
    job->annotate = annot;
    job->width = width;
    /* drawn and encoded on the encoder thread; this one waits (bounded) */
    struct timespec until;
    deadline(&until, SNAP_ENCODE_NS);
    pthread_mutex_lock(&s->enc_mu);
    if (s->enc_tail)
        s->enc_tail->next = job;
    else
        s->enc_head = job;
    s->enc_tail = job;
    pthread_cond_signal(&s->enc_work);
    while (!job->done && pthread_cond_timedwait(&s->enc_done, &s->enc_mu, &until) == 0) {
    }
    if (job->done) {
        rc = job->rc;
        *jpeg = job->jpeg;
        *len = job->len;
        its_free(job);
    } else { /* the encoder frees it when it gets to it */
        job->abandoned = 1;
        rc = ITS_EAGAIN;
    }
    pthread_mutex_unlock(&s->enc_mu);
    return rc;
}

static void job_free(snap_job *job)
{
    its_image_free(&job->img);
    its_free(job->dets);
    its_free(job->jpeg);
    its_free(job);
}

/* The encoder: snapshots are drawn and encoded here, at the lowest priority, so that they
 * take only CPU time the pipeline leaves (a woken pipeline thread preempts it at once).
 * Linux applies PRIO_PROCESS to the thread whose id is given. */
static void *encoder_main(void *arg)
{
    its_app_services *s = arg;
#ifdef __linux__
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SNAP_NICE) != 0)
        its_logw("api", NULL, "snapshot encoder: cannot lower its priority: %s", strerror(errno));
#endif
    pthread_mutex_lock(&s->enc_mu);
    for (;;) {
        while (!s->enc_head && !s->enc_stop)
            pthread_cond_wait(&s->enc_work, &s->enc_mu);
        snap_job *job = s->enc_head;
        if (!job)
            break; /* stopping, nothing left */
        s->enc_head = job->next;
        if (!s->enc_head)
            s->enc_tail = NULL;
        int skip = job->abandoned || s->enc_stop;
        pthread_mutex_unlock(&s->enc_mu);
        int rc = ITS_ECLOSED;
        if (!skip) {
            /* scaled down first, so that the drawing keeps its thickness */
            double k = 1.0;
            its_image small = {0};
            rc = 0;
            if (job->width > 0 && job->width < job->img.width) {
                k = (double)job->width / job->img.width;
                if ((rc = downscale(&job->img, k, &small)) == 0) {
                    its_image_free(&job->img);
                    job->img = small;
                }
            }
            if (rc == 0 && job->annotate)
                annotate(s, job->id, &job->img, job->dets, job->n_dets, k);
            char err[256] = "out of memory";
            if (rc == 0)
                rc = its_image_encode_jpeg(&job->img, SNAP_QUALITY, &job->jpeg, &job->len, err,
                                           sizeof err);
            if (rc < 0)
                its_logw("api", job->id, "snapshot: %s", err);
        }
        its_image_free(&job->img);
        its_free(job->dets);
        job->dets = NULL;
        pthread_mutex_lock(&s->enc_mu);
        if (job->abandoned) {
            job_free(job);
        } else {
            job->rc = rc;
            job->done = 1;
            pthread_cond_broadcast(&s->enc_done);
        }
    }
    pthread_mutex_unlock(&s->enc_mu);
    return NULL;
}

/* ---- live analytics (the console's event stream) ---- */

#define LIVE_MAX_AGE_NS (1500 * ITS_NS_PER_MS)

static int prov_live(void *ud, const char *id, char **json, size_t *len)
{
    its_app_services *s = ud;
    if (its_pipeline_find_camera(s->p, id) < 0)
        return ITS_ENOENT;
    int rc = its_app_hooks_live_report(its_pipeline_hooks(s->p), id, LIVE_MAX_AGE_NS, SNAP_WAIT_NS,
                                       json, len);
    return rc == ITS_ENOENT ? ITS_EAGAIN : rc;
}

/* ---- scenes ---- */

static int prov_scene_get(void *ud, const char *id, char **json, size_t *len)
{
    its_app_services *s = ud;
    if (its_pipeline_find_camera(s->p, id) < 0)
        return ITS_ENOENT;
    its_scene *sc = its_malloc(ITS_MOD_APP, sizeof *sc);
    char *buf = its_malloc(ITS_MOD_APP, SCENE_JSON_MAX);
    int rc =
        sc && buf ? its_app_hooks_scene_get(its_pipeline_hooks(s->p), id, sc, NULL, 0) : ITS_ENOMEM;
    if (rc == 0) {
        its_json w;
        its_json_init(&w, buf, SCENE_JSON_MAX);
        its_scene_write(sc, &w);
        int n = its_json_finish(&w);
        if (n < 0) {
            rc = n;
        } else {
            *json = buf;
            *len = (size_t)n;
            buf = NULL;
        }
    }
    its_free(sc);
    its_free(buf);
    /* known to the pipeline but without analytics yet (before its first frame) */
    return rc == ITS_ENOENT ? ITS_EAGAIN : rc;
}

/* Write text to path through a temporary file in the same directory and a rename, so that
 * the file is the old scene or the new one, never half of it. */
static int save_atomic(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return its_seterr(err, errlen, ITS_EIO, "%s: %s", tmp, strerror(errno));
    int ok = fwrite(text, 1, len, f) == len;
    if (len && text[len - 1] != '\n')
        ok &= fputc('\n', f) != EOF;
    ok &= fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return its_seterr(err, errlen, ITS_EIO, "%s: %s", path, strerror(e));
    }
    return 0;
}

/* PUT /v1/cameras/{id}/scene: parsed and validated as a scene file is, saved to the
 * camera's scene file (else <analytics.scene_dir>/<id>.yaml; else not saved), then applied
 * from the camera's next frame. Nothing is applied when it cannot be saved. */
static int prov_scene_put(void *ud, const char *id, const char *text, size_t len, char *err,
                          size_t errlen, char *saved, size_t savedlen)
{
    its_app_services *s = ud;
    saved[0] = 0;
    if (its_pipeline_find_camera(s->p, id) < 0)
        return ITS_ENOENT;
    const its_camera_hooks *h = its_pipeline_hooks(s->p);
    char path[640];
    int rc = its_app_hooks_scene_get(h, id, NULL, path, sizeof path);
    if (rc < 0)
        return rc == ITS_ENOENT ? ITS_EAGAIN : rc;
    its_scene *sc = its_malloc(ITS_MOD_APP, sizeof *sc);
    if (!sc)
        return ITS_ENOMEM;
    char origin[96];
    snprintf(origin, sizeof origin, "scene of %s", id);
    rc = its_scene_load_string(text, len, origin, sc, err, errlen);
    if (rc == 0 && !path[0] && its_app_hooks_scene_dir(h))
        snprintf(path, sizeof path, "%s/%s.yaml", its_app_hooks_scene_dir(h), id);
    if (rc == 0 && path[0])
        rc = save_atomic(path, text, len, err, errlen);
    if (rc == 0)
        rc = its_app_hooks_scene_set(h, id, sc, path[0] ? path : NULL);
    if (rc == 0) {
        snprintf(saved, savedlen, "%s", path);
        its_logi("api", id, "scene saved to %s; applies from the next frame",
                 path[0] ? path : "(nowhere: no scene file, no analytics.scene_dir)");
    } else if (rc == ITS_ENOENT) {
        rc = ITS_EAGAIN;
    }
    its_free(sc);
    return rc == ITS_EINVAL ? ITS_ECONFIG : rc;
}

int its_app_services_create(const its_app_config *c, its_pipeline_t *p, its_app_services **out,
                            char *err, size_t errlen)
{
    *out = NULL;
    its_app_services *s = its_calloc(ITS_MOD_APP, 1, sizeof *s);
    if (!s)
        return ITS_ENOMEM;
    s->p = p;
    s->max_cams = c->s.max_cameras;
    static const char *const backend_names[] = {"noop", "cpu", "cuda"};
    s->backend =
        c->s.backend >= 0 && c->s.backend <= ITS_BACKEND_CUDA ? backend_names[c->s.backend] : "?";
    pthread_mutex_init(&s->collect_mu, NULL);
    pthread_mutex_init(&s->enc_mu, NULL);
    pthread_cond_init(&s->enc_work, NULL);
    pthread_cond_init(&s->enc_done, NULL);
    s->cams = its_calloc(ITS_MOD_APP, (size_t)s->max_cams, sizeof *s->cams);
    s->prev = its_calloc(ITS_MOD_APP, (size_t)s->max_cams, sizeof *s->prev);
    s->snaps = its_calloc(ITS_MOD_APP, (size_t)s->max_cams, sizeof *s->snaps);
    for (int i = 0; s->snaps && i < s->max_cams; i++) {
        pthread_mutex_init(&s->snaps[i].mu, NULL);
        pthread_cond_init(&s->snaps[i].cv, NULL);
    }
    s->reg = its_pipeline_metrics(p);
    int rc = ITS_ENOMEM;
    if (!s->cams || !s->prev || !s->snaps ||
        its_metrics_add_collector(s->reg, collect, s, NULL) < 0) {
        snprintf(err, errlen, "metrics: out of memory");
        goto fail;
    }
    /* GPU utilisation and memory from the driver's NVML (loaded at run time, whatever the
     * backend: a GPU host is watched even while it runs the cpu engine); without a driver the
     * rows are simply absent and the reason is logged once. */
    (void)its_metrics_gpu_attach(s->reg);
    s->e2e = its_metrics_series_v(its_metrics_std(s->reg, ITS_M_LATENCY));
    s->batch_size = its_metrics_series_v(its_metrics_std(s->reg, ITS_M_BATCH_SIZE));
    s->q_ingest = its_metrics_series_v(its_metrics_std(s->reg, ITS_M_QUEUE_DEPTH), "ingest");
    s->q_analytics = its_metrics_series_v(its_metrics_std(s->reg, ITS_M_QUEUE_DEPTH), "analytics");
    /* SPEC's AutoScalingConfig: its_scaling_recommendation and /v1/status "scaling", from the
     * levels the collectors above have just set */
    if ((rc = its_metrics_scaling_attach(s->reg)) < 0) {
        snprintf(err, errlen, "metrics: scaling: %s", its_strerror(rc));
        goto fail;
    }
    its_pipeline_set_observer(p, observe, s);
    if (c->s.cluster_enabled && (rc = cluster_create(s, c, err, errlen)) < 0)
        goto fail;
    if (c->s.api_enabled) {
        if (pthread_create(&s->enc_thread, NULL, encoder_main, s) != 0) {
            snprintf(err, errlen, "api: cannot start the snapshot encoder thread");
            rc = ITS_ENOMEM;
            goto fail;
        }
        s->enc_started = 1;
        its_api_config ac;
        its_api_settings_apply(&c->s.api, &ac);
        its_api_provider prov = {.ud = s,
                                 .ready = prov_ready,
                                 .camera_list = prov_list,
                                 .camera_get = prov_get,
                                 .camera_add = prov_add,
                                 .camera_remove = prov_remove,
                                 .frame_push = prov_push,
                                 .counts_csv = prov_counts,
                                 .events = prov_events,
                                 .evidence_file = prov_evidence_file,
                                 .snapshot = prov_snapshot,
                                 .scene_get = prov_scene_get,
                                 .scene_put = prov_scene_put,
                                 .live = prov_live};
        /* With Redis configured, the analytics endpoint reads the windows the sink caches
         * there, through an in-process L1 (its_cache). */
        its_cache_config cc;
        its_cache_config_default(&cc);
        if (its_publish_settings_apply(&c->s.redis, NULL, &cc) == 1 &&
            (rc = its_cache_create(&cc, s->reg, &s->cache)) < 0) {
            snprintf(err, errlen, "api: cannot create the analytics cache: %s", its_strerror(rc));
            goto fail;
        }
        rc = its_api_create(&ac, &prov, s->reg, s->cache, &s->api);
        if (rc == 0)
            rc = its_api_start(s->api);
        if (rc < 0) {
            snprintf(err, errlen, "api: cannot serve on %s:%d: %s", ac.bind_addr, ac.port,
                     its_strerror(rc));
            goto fail;
        }
        its_logi("api", NULL, "HTTP API and /metrics on %s:%d", ac.bind_addr, its_api_port(s->api));
    }
    *out = s;
    return 0;
fail:
    its_pipeline_set_observer(p, NULL, NULL);
    its_app_services_destroy(s);
    return rc;
}

void its_app_services_set_serving(its_app_services *s, int serving)
{
    if (!s)
        return;
    atomic_store(&s->serving, serving);
    if (s->cluster && serving > 0 && its_cluster_start(s->cluster) < 0)
        its_loge("cluster", NULL, "cannot start the cluster thread");
    if (s->cluster && serving < 0)
        its_cluster_freeze(s->cluster); /* destroy, after the drain, hands the cameras over */
}

int its_app_services_port(its_app_services *s)
{
    return s && s->api ? its_api_port(s->api) : 0;
}

void its_app_services_destroy(its_app_services *s)
{
    if (!s)
        return;
    its_api_destroy(s->api); /* no API thread touches the pipeline after this */
    if (s->cluster)          /* the pipeline has stopped: the last checkpoints, then the handover */
        its_logi("cluster", NULL, "%d cameras checkpointed for the handover",
                 its_app_hooks_checkpoint_all(its_pipeline_hooks(s->p)));
    its_cluster_destroy(s->cluster);
    if (s->enc_started) {
        pthread_mutex_lock(&s->enc_mu);
        s->enc_stop = 1;
        pthread_cond_signal(&s->enc_work);
        pthread_mutex_unlock(&s->enc_mu);
        pthread_join(s->enc_thread, NULL);
    }
    for (snap_job *j = s->enc_head, *nx; j; j = nx) { /* none once the API has stopped */
        nx = j->next;
        job_free(j);
    }
    its_cache_destroy(s->cache);
    its_metrics_remove_collector(s->reg, collect, s);
    its_free(s->cams);
    its_free(s->prev);
    for (int i = 0; s->snaps && i < s->max_cams; i++) {
        pthread_mutex_destroy(&s->snaps[i].mu);
        pthread_cond_destroy(&s->snaps[i].cv);
        its_free(s->snaps[i].px);
    }
    its_free(s->snaps);
    pthread_mutex_destroy(&s->enc_mu);
    pthread_cond_destroy(&s->enc_work);
    pthread_cond_destroy(&s->enc_done);
    pthread_mutex_destroy(&s->collect_mu);
    its_free(s);
}
