/*
 * The real inference backend: the engine (its/engine.h) with the detector head
 * (its/detect.h) around it. The model is loaded once (immutable, shared); each engine
 * worker gets its own engine, detector and buffers sized for max_batch at creation, so a run
 * allocates nothing. A GPU engine is planned once: the first worker creates it (with the
 * plan cache of engine.plan_cache_dir) and the others share it (its_engine_share: the
 * weights and plans once, an execution state per worker). Two paths:
 * - frames path (cuda, YOLOv8/YOLO11 heads): the 8-bit frames go to the engine as they are;
 *   letterbox, network, decode and NMS run on the GPU (its_engine_detect_*), and the worker
 *   keeps up to two batches in flight (submit/collect), so one uploads while one computes.
 * - host path (cpu, other heads, or a frame larger than the frames path was set up for):
 *   letterbox every frame into the fp32 input tensor, its_engine_run, decode and NMS here.
 * Either way detections land in the frame in source pixels (its/frame.h).
 *
 * Fallback (fallback_cpu): a GPU engine that cannot be created, or whose batch fails at run
 * time, is replaced by a cpu engine for that worker (logged; its_infer.fallback reports it
 * for the metrics). The failed batch is run again on the cpu engine, so no frame is lost to
 * the switch. The worker keeps its submit/collect pair (both take the host path while on the
 * fallback) and tries the GPU engine again, on its own thread, after FALLBACK_RETRY_MIN_S,
 * doubling up to FALLBACK_RETRY_MAX_S while it keeps failing.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "its/core.h"
#include "its/detect.h"
#include "its/engine.h"
#include "its/pipeline.h"

#define FALLBACK_RETRY_MIN_S 30
#define FALLBACK_RETRY_MAX_S 600

typedef struct shared {
    its_model_t *model;
    its_det_config cfg;
    its_det_model_info info;
    char **names;
    int n_names;
    char backend[16]; /* the backend asked for */
    int fallback_cpu; /* engine.fallback: cpu */
    int primary_gone; /* the backend asked for is not available here at all */
    int threads, max_batch;
    int max_width, max_height, host_letterbox;
    int frames_ok;   /* the model fits the engine's frames path */
    float keep_conf; /* detections under it (decoded down to cfg.conf) are the tracker's only */
    int clip_pinned; /* replay clips go to the engine's pinned memory (set by us) */
    char plan_cache_dir[1024]; /* engine.plan_cache_dir ("": none) */
    /* the GPU engine the workers share (one of theirs; NULL once it is destroyed), under mu */
    pthread_mutex_t mu;
    its_engine_t *base;
} shared;

typedef struct engine_inf {
    its_infer base;
    shared *sh;
    its_engine_t *engine;
    int sizes[8]; /* the engine's prepared batch sizes, where batches are padded to them */
    its_detector_t *det;
    float *input;
    float *outputs[8];
    int n_outputs;
    size_t in_floats;
    its_letterbox lb[32];
    /* frames path (gpu != 0) */
    int gpu, max_det;
    its_engine_frame ef[32];
    its_engine_det_list lists[32];
    its_det *gdets;        /* max_batch * max_det */
    int host_ready;        /* host path buffers allocated (frames path: on first need) */
    uint64_t host_batches; /* frames path: batches that had to take the host path */
    /* fallback: e->engine is then the cpu engine, gpu_engine the failed one (or NULL) */
    its_engine_t *gpu_engine;
    atomic_int on_fallback;
    atomic_ullong fallbacks;
    uint64_t retry_ns;
    int retry_s;
} engine_inf;

static int eng_fallback(its_infer *inf, uint64_t *events)
{
    engine_inf *e = (engine_inf *)inf;
    if (events)
        *events = atomic_load(&e->fallbacks);
    return atomic_load(&e->on_fallback);
}

/* An engine of backend: a GPU one shares the workers' engine where there is one. */
static int new_engine(shared *sh, const char *backend, its_engine_t **out, char *err, size_t errlen)
{
    its_engine_opts eo = {.backend = backend,
                          .threads = sh->threads,
                          .max_batch = sh->max_batch,
                          .plan_cache_dir = sh->plan_cache_dir};
    if (strcmp(backend, "cpu") == 0)
        return its_engine_create(sh->model, &eo, out, err, errlen);
    pthread_mutex_lock(&sh->mu);
    int rc = sh->base ? its_engine_share(sh->base, out, err, errlen)
                      : its_engine_create(sh->model, &eo, out, err, errlen);
    if (rc == 0 && !sh->base)
        sh->base = *out;
    pthread_mutex_unlock(&sh->mu);
    return rc;
}

static void drop_engine(shared *sh, its_engine_t *en)
{
    if (!en)
        return;
    pthread_mutex_lock(&sh->mu);
    if (sh->base == en)
        sh->base = NULL;
    its_engine_destroy(en);
    pthread_mutex_unlock(&sh->mu);
}

static its_engine_t *make_engine(engine_inf *e, const char *backend, char *err, size_t errlen)
{
    its_engine_t *en = NULL;
    return new_engine(e->sh, backend, &en, err, errlen) < 0 ? NULL : en;
}

/* Replace the GPU engine by a cpu engine for this worker (why: what failed). */
static int fall_back(engine_inf *e, const char *why)
{
    char err[256] = "";
    its_engine_t *cpu = make_engine(e, "cpu", err, sizeof err);
    if (!cpu) {
        its_loge("engine", e->sh->backend, "%s; the cpu fallback failed too: %s", why, err);
        return ITS_EBACKEND;
    }
    e->gpu_engine = e->gpu ? e->engine : e->gpu_engine;
    pthread_mutex_lock(&e->sh->mu); /* the failed engine is shared no more */
    if (e->sh->base == e->gpu_engine)
        e->sh->base = NULL;
    pthread_mutex_unlock(&e->sh->mu);
    e->engine = cpu;
    e->gpu = 0;
    e->retry_s = FALLBACK_RETRY_MIN_S;
    e->retry_ns = its_now_ns() + (uint64_t)e->retry_s * ITS_NS_PER_S;
    atomic_store(&e->on_fallback, 1);
    atomic_fetch_add(&e->fallbacks, 1);
    its_loge("engine", e->sh->backend,
             "%s: running on the cpu engine instead (engine.fallback), %s again in %d s", why,
             e->sh->backend, e->retry_s);
    return 0;
}

static int frames_path_setup(engine_inf *e, char *err, size_t errlen);

/* On the fallback: try the GPU engine again once its backoff has passed. */
static void retry_gpu(engine_inf *e)
{
    if (!atomic_load(&e->on_fallback) || its_now_ns() < e->retry_ns || e->sh->primary_gone)
        return;
    char err[256] = "";
    its_engine_t *g = make_engine(e, e->sh->backend, err, sizeof err);
    its_engine_t *cpu = e->engine;
    if (g) {
        e->engine = g;
        if (frames_path_setup(e, err, sizeof err) < 0 || !e->gpu) {
            e->engine = cpu;
            drop_engine(e->sh, g);
            g = NULL;
            if (!err[0])
                snprintf(err, sizeof err, "no frames path");
        }
    }
    if (!g) {
        e->retry_s = ITS_MIN(e->retry_s * 2, FALLBACK_RETRY_MAX_S);
        e->retry_ns = its_now_ns() + (uint64_t)e->retry_s * ITS_NS_PER_S;
        its_logw("engine", e->sh->backend,
                 "still unavailable (%s); on the cpu engine, next try in %d s", err, e->retry_s);
        return;
    }
    drop_engine(e->sh, e->gpu_engine);
    e->gpu_engine = NULL;
    drop_engine(e->sh, cpu);
    atomic_store(&e->on_fallback, 0);
    its_logi("engine", e->sh->backend, "back on the %s engine", e->sh->backend);
}

static const char *meta_fn(const void *ctx, const char *key)
{
    return its_model_meta(ctx, key);
}

static int host_buffers(engine_inf *e);

/* Detections at or above the confidence threshold first (in their order), the weak ones the
 * decoder kept for the tracker after them. */
static void split_weak(its_frame *f, int k, float keep)
{
    int strong = 0;
    for (int i = 0; i < k; i++)
        strong += f->dets[i].score >= keep;
    if (strong < k) {
        its_det tmp[ITS_FRAME_MAX_DETS];
        int s = 0, w = strong;
        for (int i = 0; i < k; i++)
            tmp[f->dets[i].score >= keep ? s++ : w++] = f->dets[i];
        memcpy(f->dets, tmp, sizeof tmp[0] * (size_t)k);
    }
    f->n_dets = strong;
    f->n_weak = k - strong;
}

/* The host path: letterbox into fp32 NCHW here, run, decode and NMS here. */
static int host_run(engine_inf *e, its_frame **frames, int n)
{
    int rc = host_buffers(e);
    if (rc < 0)
        return rc;
    for (int b = 0; b < n; b++) {
        its_frame *f = frames[b];
        rc = its_det_letterbox_raw(&e->sh->cfg.pre, f->data, f->width, f->height, f->stride,
                                   f->pixfmt, e->input + (size_t)b * e->in_floats, &e->lb[b]);
        if (rc < 0)
            return rc;
    }
    uint64_t prep = its_now_ns();
    for (int b = 0; b < n; b++)
        frames[b]->ts_ns[ITS_TS_PREP] = prep;
    rc = its_engine_run(e->engine, n, e->input, e->outputs);
    uint64_t t = its_now_ns();
    for (int b = 0; b < n; b++)
        frames[b]->ts_ns[ITS_TS_INFER] = t;
    if (rc < 0)
        return rc;
    for (int b = 0; b < n; b++) {
        its_frame *f = frames[b];
        int k = its_detector_decode(e->det, (const float *const *)e->outputs, b, &e->lb[b], f->dets,
                                    ITS_FRAME_MAX_DETS);
        if (k < 0)
            return k;
        split_weak(f, k, e->sh->keep_conf);
        f->ts_ns[ITS_TS_POST] = its_now_ns();
    }
    return 0;
}

static int eng_run(its_infer *inf, its_frame **frames, int n, int padded)
{
    (void)padded;
    return host_run((engine_inf *)inf, frames, n);
}

/* ---- the frames path ---- */

#define TICKET_HOST 2 /* a batch that went the host path inside submit: nothing to collect */

static int eng_submit(its_infer *inf, its_frame **frames, int n, int padded)
{
    engine_inf *e = (engine_inf *)inf;
    (void)padded;
    retry_gpu(e);
    if (!e->gpu) { /* on the cpu fallback */
        int rc = host_run(e, frames, n);
        return rc < 0 ? rc : TICKET_HOST;
    }
    size_t limit = (size_t)e->sh->max_width * (size_t)e->sh->max_height * 3;
    int fits = 1;
    for (int b = 0; b < n; b++) {
        const its_frame *f = frames[b];
        its_engine_frame *d = &e->ef[b];
        d->data = f->data;
        d->uv = NULL;
        d->width = f->width;
        d->height = f->height;
        d->stride = f->stride;
        d->uv_stride = 0;
        d->pixfmt = f->pixfmt;
        if (f->stride <= 0 || f->height <= 0 || (size_t)f->stride * (size_t)f->height > limit)
            fits = 0;
    }
    if (!fits) { /* larger than the frames path was set up for: letterbox here instead */
        if (e->host_batches++ == 0)
            its_logw("engine", inf->name,
                     "a frame above %dx%d (ingest.max_width/max_height): such batches are "
                     "letterboxed on the host, more slowly",
                     e->sh->max_width, e->sh->max_height);
        int rc = host_run(e, frames, n);
        return rc < 0 ? rc : TICKET_HOST;
    }
    return its_engine_detect_submit(e->engine, n, e->ef);
}

static int eng_collect(its_infer *inf, int ticket, its_frame **frames, int n)
{
    engine_inf *e = (engine_inf *)inf;
    if (ticket == TICKET_HOST)
        return 0;
    /* a ticket submitted before a fallback belongs to the failed engine */
    its_engine_t *g = e->gpu ? e->engine : e->gpu_engine;
    int rc = its_engine_detect_wait(g, ticket, e->lists, e->gdets);
    uint64_t t = its_now_ns();
    for (int b = 0; b < n; b++)
        frames[b]->ts_ns[ITS_TS_INFER] = t;
    if ((rc < 0 || rc != n) && e->sh->fallback_cpu) {
        /* the GPU failed this batch: the cpu engine takes over and runs it again */
        if (e->gpu) {
            char why[160];
            snprintf(why, sizeof why, "batch of %d failed on the GPU: %s", n,
                     its_strerror(rc < 0 ? rc : ITS_EBACKEND));
            if (fall_back(e, why) < 0)
                return rc < 0 ? rc : ITS_EBACKEND;
        }
        return host_run(e, frames, n);
    }
    if (rc < 0)
        return rc;
    if (rc != n)
        return ITS_EBACKEND;
    for (int b = 0; b < n; b++) {
        its_frame *f = frames[b];
        int k = ITS_MIN(e->lists[b].count, ITS_FRAME_MAX_DETS);
        memcpy(f->dets, e->gdets + (size_t)b * (size_t)e->max_det, sizeof f->dets[0] * (size_t)k);
        split_weak(f, k, e->sh->keep_conf);
        f->ts_ns[ITS_TS_POST] = its_now_ns();
    }
    return 0;
}

static int eng_ready(its_infer *inf, int ticket)
{
    engine_inf *e = (engine_inf *)inf;
    if (ticket == TICKET_HOST)
        return 1;
    return its_engine_detect_poll(e->gpu ? e->engine : e->gpu_engine, ticket);
}

/* Used synchronously (a caller without the pipelined pair): submit, then collect. */
static int eng_run_frames(its_infer *inf, its_frame **frames, int n, int padded)
{
    int t = eng_submit(inf, frames, n, padded);
    return t < 0 ? t : eng_collect(inf, t, frames, n);
}

static const char *eng_label(its_infer *inf, int class_id)
{
    shared *sh = ((engine_inf *)inf)->sh;
    return class_id >= 0 && class_id < sh->n_names ? sh->names[class_id] : NULL;
}

static void eng_destroy(its_infer *inf)
{
    engine_inf *e = (engine_inf *)inf;
    if (!e)
        return;
    for (int i = 0; i < e->n_outputs; i++)
        its_free(e->outputs[i]);
    its_free(e->input);
    its_free(e->gdets);
    its_detector_destroy(e->det);
    drop_engine(e->sh, e->engine);
    drop_engine(e->sh, e->gpu_engine);
    its_free(e);
}

/* fp32 input and output buffers of the host path, sized for max_batch (once). */
static int host_buffers(engine_inf *e)
{
    if (e->host_ready)
        return 0;
    shared *sh = e->sh;
    e->in_floats = its_detector_input_floats(e->det);
    e->input = its_malloc(ITS_MOD_APP, e->in_floats * (size_t)sh->max_batch * sizeof(float));
    e->n_outputs = sh->info.n_outputs;
    if (!e->input)
        return ITS_ENOMEM;
    for (int i = 0; i < e->n_outputs; i++) {
        e->outputs[i] = its_malloc(ITS_MOD_APP, its_detector_output_floats(e->det, i) *
                                                    (size_t)sh->max_batch * sizeof(float));
        if (!e->outputs[i])
            return ITS_ENOMEM;
    }
    e->host_ready = 1;
    return 0;
}

/* The GPU letterbox and decode do what the Ultralytics head's own preprocessing does (RGB,
 * centred, padded with 114, / 255) with class-aware NMS: only such a model may use them. */
static int fits_frames_path(const its_det_config *c)
{
    const its_det_preproc *pp = &c->pre;
    int fits = c->family == ITS_DET_ULTRALYTICS && !c->class_agnostic && !pp->bgr && pp->center &&
               pp->pad == 114;
    for (int k = 0; k < 3 && fits; k++)
        fits = pp->mean[k] == 0.0f && fabsf(pp->scale[k] - 1.0f / 255.0f) < 1e-7f;
    return fits;
}

static void *pinned_alloc(void *ctx, size_t bytes)
{
    return its_engine_host_alloc(ctx, bytes);
}

static void pinned_free(void *ctx, void *p)
{
    its_engine_host_free(ctx, p);
}

/* Use the engine's frames path where it has one and the model fits it (fits_frames_path).
 * Anything else stays on the host path. */
static int frames_path_setup(engine_inf *e, char *err, size_t errlen)
{
    shared *sh = e->sh;
    const its_det_config *c = &sh->cfg;
    if (sh->host_letterbox || !sh->frames_ok)
        return 0;
    char why[256];
    its_engine_detect_opts o = {.conf = c->conf,
                                .iou = c->iou,
                                .max_det = ITS_FRAME_MAX_DETS,
                                .max_width = sh->max_width,
                                .max_height = sh->max_height};
    int rc = its_engine_detect_setup(e->engine, &o, why, sizeof why);
    if (rc == ITS_EUNSUPPORTED)
        return 0; /* cpu backend: the host path, said once by the factory */
    if (rc < 0) {
        its_logw("engine", sh->backend, "%s; letterboxing on the host instead", why);
        return 0;
    }
    e->max_det = its_engine_detect_max_det(e->engine);
    if (!e->gdets) /* kept across a fallback and a return to the GPU */
        e->gdets =
            its_malloc(ITS_MOD_APP, sizeof *e->gdets * (size_t)sh->max_batch * (size_t)e->max_det);
    if (!e->gdets) {
        snprintf(err, errlen, "engine: out of memory for detection buffers");
        return ITS_ENOMEM;
    }
    e->gpu = 1;
    e->base.run = eng_run_frames;
    e->base.submit = eng_submit;
    e->base.collect = eng_collect;
    e->base.ready = eng_ready;
    return 0;
}

static int eng_create(void *ctx, its_infer **out, char *err, size_t errlen)
{
    shared *sh = ctx;
    engine_inf *e = its_calloc(ITS_MOD_APP, 1, sizeof *e);
    if (!e)
        return ITS_ENOMEM;
    e->sh = sh;
    e->base.name = sh->backend;
    e->base.max_batch = sh->max_batch;
    e->base.run = eng_run;
    e->base.label = eng_label;
    e->base.destroy = eng_destroy;
    e->base.fallback = eng_fallback;
    int gpu_backend = strcmp(sh->backend, "cpu") != 0;
    int rc = 0;
    if (!sh->primary_gone)
        rc = new_engine(sh, sh->backend, &e->engine, err, errlen);
    if ((sh->primary_gone || rc < 0) && gpu_backend && sh->fallback_cpu) {
        char why[512];
        snprintf(why, sizeof why, "the %s engine cannot be created: %s", sh->backend,
                 sh->primary_gone ? "not available here" : err);
        rc = fall_back(e, why);
        if (rc < 0)
            snprintf(err, errlen, "%s; no cpu engine either", why);
    }
    if (rc == 0 && its_engine_batches_padded(e->engine)) {
        /* a batch costs its prepared size (cuda: a graph per size): the batcher rounds to them */
        int n = its_engine_batch_sizes(e->engine, e->sizes, 8);
        e->base.sizes = e->sizes;
        e->base.n_sizes = n < 8 ? n : 8;
    }
    if (rc == 0)
        rc = its_detector_create(&sh->cfg, &sh->info, &e->det, err, errlen);
    if (rc == 0 && !atomic_load(&e->on_fallback))
        rc = frames_path_setup(e, err, errlen);
    if (rc == 0 && !e->gpu && gpu_backend && sh->fallback_cpu) {
        /* the pipelined pair even on the host path: the worker keeps it for its life, and a
         * GPU engine that comes back uses it */
        e->base.run = eng_run_frames;
        e->base.submit = eng_submit;
        e->base.collect = eng_collect;
        e->base.ready = eng_ready;
    }
    if (rc == 0 && !e->gpu && (rc = host_buffers(e)) < 0)
        snprintf(err, errlen, "engine: out of memory for batch buffers");
    if (rc == 0 && !e->gpu) {
        /* One run on a blank image before any frame: the first run of the CPU engine pays
         * for first touches of its memory and plans, which would otherwise be the first
         * frames' latency (and make them queue behind each other). */
        memset(e->input, 0, e->in_floats * sizeof(float));
        if ((rc = its_engine_run(e->engine, 1, e->input, e->outputs)) < 0)
            snprintf(err, errlen, "engine: first run failed: %s", its_strerror(rc));
    }
    if (rc < 0) {
        eng_destroy(&e->base);
        return rc;
    }
    *out = &e->base;
    return 0;
}

static void shared_free(void *ctx)
{
    shared *sh = ctx;
    if (!sh)
        return;
    if (sh->clip_pinned)
        its_ingest_set_clip_memory(NULL);
    its_det_names_free(sh->names);
    its_model_free(sh->model);
    pthread_mutex_destroy(&sh->mu);
    its_free(sh);
}

int its_infer_engine_factory(const its_infer_engine_opts *o, its_infer_factory *out, char *err,
                             size_t errlen)
{
    const char *backend = o->backend ? o->backend : "cpu";
    int gone = !its_engine_backend_available(backend);
    if (gone &&
        !(o->fallback_cpu && strcmp(backend, "cpu") != 0 && its_engine_backend_available("cpu"))) {
        snprintf(err, errlen, "engine: backend '%s' is not available here", backend);
        return ITS_ENODEV;
    }
    shared *sh = its_calloc(ITS_MOD_APP, 1, sizeof *sh);
    if (!sh) {
        snprintf(err, errlen, "engine: out of memory");
        return ITS_ENOMEM;
    }
    pthread_mutex_init(&sh->mu, NULL);
    snprintf(sh->backend, sizeof sh->backend, "%s", backend);
    snprintf(sh->plan_cache_dir, sizeof sh->plan_cache_dir, "%s",
             o->plan_cache_dir ? o->plan_cache_dir : "");
    sh->fallback_cpu = o->fallback_cpu;
    sh->primary_gone = gone;
    sh->threads = o->threads;
    sh->max_batch = ITS_CLAMP(o->max_batch, 1, 32);
    sh->max_width = o->max_width > 0 ? o->max_width : 1920;
    sh->max_height = o->max_height > 0 ? o->max_height : 1080;
    sh->host_letterbox = o->host_letterbox;
    char e2[384];
    int rc = its_model_load(o->model, &sh->model, e2, sizeof e2);
    if (rc < 0) {
        snprintf(err, errlen, "engine.model %s: %s", o->model, e2);
        shared_free(sh);
        return rc;
    }
    int iw, ih;
    if (o->input_size && (rc = its_model_parse_size(o->input_size, &iw, &ih)) == 0)
        rc = its_model_set_input_size(sh->model, iw, ih, e2, sizeof e2);
    if (o->input_size && rc < 0) {
        snprintf(err, errlen, "engine.input_size %s: %s", o->input_size,
                 rc == ITS_EINVAL && !e2[0] ? "not WxH" : e2);
        shared_free(sh);
        return rc;
    }
    sh->info.input = its_model_input(sh->model, 0);
    sh->info.n_outputs = its_model_n_outputs(sh->model);
    sh->info.meta = meta_fn;
    sh->info.meta_ctx = sh->model;
    if (sh->info.n_outputs < 1 || sh->info.n_outputs > 8) {
        snprintf(err, errlen, "engine.model %s: %d outputs, not a detector", o->model,
                 sh->info.n_outputs);
        shared_free(sh);
        return ITS_EUNSUPPORTED;
    }
    for (int i = 0; i < sh->info.n_outputs; i++)
        sh->info.outputs[i] = its_model_output(sh->model, i);
    rc = its_det_config_init(&sh->info, ITS_DET_AUTO, &sh->cfg, e2, sizeof e2);
    if (rc < 0) {
        snprintf(err, errlen, "engine.model %s: %s", o->model, e2);
        shared_free(sh);
        return rc;
    }
    if (o->conf > 0)
        sh->cfg.conf = o->conf;
    sh->keep_conf = sh->cfg.conf;
    if (o->track_conf > 0 && o->track_conf < sh->cfg.conf)
        sh->cfg.conf = o->track_conf; /* decode down to the tracker's threshold */
    if (o->iou > 0)
        sh->cfg.iou = o->iou;
    sh->cfg.max_dets = ITS_FRAME_MAX_DETS;
    int n = 0;
    if (o->labels) {
        n = its_det_names_load(o->labels, &sh->names);
    } else {
        const char *meta = its_model_meta(sh->model, "names");
        if (meta)
            n = its_det_names_parse_meta(meta, &sh->names);
    }
    if (n < 0) {
        its_logw("engine", NULL, "no class names (%s); labels will be null", its_strerror(n));
        sh->names = NULL;
        n = 0;
    }
    sh->n_names = n;
    sh->frames_ok = fits_frames_path(&sh->cfg);
    /* replay clips in the engine's pinned memory: the frames path uploads them from there */
    void *probe =
        sh->frames_ok && !sh->host_letterbox && !gone ? its_engine_host_alloc(backend, 4096) : NULL;
    if (probe) {
        its_engine_host_free(backend, probe);
        /* ctx outlives every clip: a clip may be released after this factory */
        static char pin_backend[16];
        snprintf(pin_backend, sizeof pin_backend, "%s", backend);
        its_pool_mem pm = {pinned_alloc, pinned_free, pin_backend};
        its_ingest_set_clip_memory(&pm);
        sh->clip_pinned = 1;
    }
    its_logi("engine", NULL, "%s: %s head, %d classes, input %dx%d, backend %s, batch <= %d",
             o->model, its_det_family_name(sh->cfg.family), sh->cfg.num_classes, sh->cfg.pre.width,
             sh->cfg.pre.height, backend, sh->max_batch);
    out->create = eng_create;
    out->release = shared_free;
    out->ctx = sh;
    return 0;
}
