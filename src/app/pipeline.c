/*
 * The itsd pipeline (its/pipeline.h).
 *
 *   source threads --push--> batcher --next--> engine workers --queue[c % W]--> analytics
 *   (one per camera)        (one lock)        (form one at a time,            workers
 *                                               run in parallel)               (reorder, hooks,
 *                                                                               JSON, sinks)
 *
 * Order. Batches are formed under form_mu, and each frame gets its camera's next pipeline
 * sequence number (pseq) there, so pseq follows the batcher's per-camera order. With several
 * engine workers, batches finish out of order; the analytics worker of a camera parks early
 * frames in a small ring indexed by pseq and releases them in order. Every frame that left
 * the batcher reaches its analytics worker, even when inference failed (it is then counted
 * as dropped there), so the ring never waits for a frame that will not come.
 *
 * Accounting. in = source frames + source drops (no buffer); every frame that entered the
 * batcher is either dropped by it (on_drop: camera limit, high water, shutdown), fails in
 * the engine (engine_error), or is published (processed). All counters are per camera
 * atomics, so in = processed + dropped holds exactly once the pipeline has stopped.
 *
 * Camera slots. A camera lives in a slot (its index is every frame's `camera`). Removing a
 * camera cancels its source, which never waits for the source's thread, and retires the
 * slot; a retired slot is reclaimed (source freed, hooks closed, counters reset, free for the
 * next camera) once every frame it produced is accounted for and its thread has returned, or
 * has stayed blocked for SLOT_STUCK_NS (it is then detached: it frees itself and never calls
 * back). Reclaiming happens on the control path (add, remove, its_pipeline_reap), so
 * max_cameras bounds the cameras present at once, not those over the daemon's life. Readers
 * on other threads (stats, lookups, pushes) hold slot_mu for reading; reclaiming and reuse
 * rewrite a slot under it for writing.
 *
 * Latency. Stage timestamps are taken by whichever thread owns the frame; the histograms are
 * recorded only by engine and analytics workers (one shard each), never by source threads.
 */
#include "its/pipeline.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "its/core.h"
#include "its/counts.h"
#include "its/evidence.h"

#define REORDER       64 /* per camera; pool_frames is capped to it */
#define ANA_QUEUE     4096
#define JSON_BUF      (96 * 1024)
#define POLL_NS       (100 * ITS_NS_PER_MS)
#define MAX_WORKERS   32
#define SLOT_STUCK_NS (2ULL * ITS_NS_PER_S)
/* How long an add that finds every slot in use waits for a retiring one (no lock held). */
#define ADD_SLOT_WAIT_NS (SLOT_STUCK_NS + ITS_NS_PER_S)

enum { SLOT_FREE = 0, SLOT_ACTIVE, SLOT_RETIRING };

typedef struct cam {
    int state; /* SLOT_*, under ctl_mu */
    uint64_t retired_ns;
    uint64_t gen; /* lives of this slot; under slot_mu */
    atomic_int active;
    char id[ITS_CAMERA_ID_MAX + 1];
    char url[1024];
    char scene[512];
    its_source_t *src;
    atomic_ullong processed, detections, tracked;
    atomic_ullong dropped[ITS_DROP_REASON_COUNT];
    uint64_t pseq_next; /* under form_mu */
    /* analytics worker only */
    uint64_t expect;
    its_frame *held[REORDER];
    void *hook_state;
    int hook_opened, hook_failed;
    /* control thread only (status line) */
    uint64_t st_processed, st_dropped;
} cam;

struct its_pipeline_t {
    its_pipeline_opts o;
    its_infer *infers[MAX_WORKERS];
    cam *cams;
    atomic_int n_used; /* highest slot ever used + 1; grows under ctl_mu, read anywhere */
    uint64_t reclaimed, trimmed_at, trim_ns; /* slots reclaimed; memory trimmed (ctl_mu) */
    pthread_rwlock_t slot_mu;                /* slots' id, url, src and counters against reuse */
    its_frame_observer observer;
    void *observer_ctx;
    pthread_mutex_t ctl_mu;
    its_batcher_t *batcher;
    pthread_mutex_t form_mu;
    atomic_int batches_in_flight;
    pthread_t eng[MAX_WORKERS];
    pthread_t ana[MAX_WORKERS];
    its_queue_t *ana_q[MAX_WORKERS];
    int n_eng_started, n_ana_started;
    its_metrics *metrics;                 /* its_stage_latency_seconds and the rest */
    its_metric *stage_m[ITS_STAGE_COUNT]; /* its_stage_latency_seconds{stage} */
    int started, stopped;
    int64_t wall_offset;
    atomic_ullong messages;
    atomic_ullong engine_errors;
    atomic_int abandon; /* shutdown past its deadline: analytics workers drop what is left */
    /* status line state (control thread) */
    uint64_t st_ns;
    uint64_t st_batches, st_items;
    its_stage_window st_win;
};

void its_pipeline_opts_default(its_pipeline_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_cameras = ITS_PIPE_MAX_CAMERAS;
    o->engine_workers = ITS_PIPE_ENGINE_WORKERS;
    o->analytics_workers = ITS_PIPE_ANALYTICS_WORKERS;
    o->batch_max = ITS_PIPE_BATCH_MAX;
    o->batch_delay_ms = ITS_PIPE_BATCH_DELAY_MS;
    o->per_camera = ITS_PIPE_PER_CAMERA;
    o->queue_capacity = ITS_PIPE_QUEUE_CAPACITY;
    o->high_water = ITS_PIPE_HIGH_WATER;
    o->low_water = ITS_PIPE_LOW_WATER;
    o->pixfmt = ITS_PIX_RGB24;
    o->pool_frames = ITS_PIPE_POOL_FRAMES;
    o->stall_timeout_ms = ITS_PIPE_STALL_TIMEOUT_MS;
    o->backoff_min_ms = ITS_PIPE_BACKOFF_MIN_MS;
    o->backoff_max_ms = ITS_PIPE_BACKOFF_MAX_MS;
    o->max_width = ITS_PIPE_MAX_WIDTH;
    o->max_height = ITS_PIPE_MAX_HEIGHT;
    o->source_nice = ITS_PIPE_SOURCE_NICE;
}

/* ---- sources -> batcher ---- */

static void on_drop(void *item, int camera, its_drop_reason reason, void *ctx)
{
    its_pipeline_t *p = ctx;
    atomic_fetch_add_explicit(&p->cams[camera].dropped[reason], 1, memory_order_relaxed);
    its_frame_unref(item);
}

static void on_frame(its_frame *f, void *ctx)
{
    its_pipeline_t *p = ctx;
    f->ts_ns[ITS_TS_ENQUEUE] = its_now_ns();
    int woke = its_batcher_push(p->batcher, f, f->camera, f->ts_ns[ITS_TS_ENQUEUE]);
    if (woke < 0) {
        /* closed: only possible in the instant between a stop and the source's join */
        atomic_fetch_add(&p->cams[f->camera].dropped[ITS_DROP_SHUTDOWN], 1);
        its_frame_unref(f);
        return;
    }
    /* Hand the CPU over when the push woke an engine worker: the scheduler often queues it on
     * this very CPU, behind this thread's next decode (a 720p burst runs for tens of ms), until
     * the next tick: 1-4 ms of queue stage per frame on a 2-core machine. A yield lets it run
     * now. Only then: with many cameras the workers are busy, pushes wake nobody, and a yield
     * per frame was 15% of the CPU (100 cameras x 30 FPS, a virtual machine's context
     * switches). */
    if (woke)
        sched_yield();
}

/* ---- engine workers ---- */

typedef struct worker_arg {
    its_pipeline_t *p;
    int index;
} worker_arg;

/* One formed batch on its way through an engine worker. */
typedef struct ebatch {
    its_frame *frames[32];
    int n, padded, ticket;
} ebatch;

/* Take the next batch off the batcher, waiting up to wait_ns. With a batch of its own in
 * flight a worker never waits for the form lock (ITS_EBUSY: another worker holds it and will
 * take the next batch) and takes only a due batch (full, or its delay passed). */
static int form_batch(its_pipeline_t *p, ebatch *b, int maxb, uint64_t wait_ns, int in_flight)
{
    b->padded = 0;
    if (in_flight) {
        if (pthread_mutex_trylock(&p->form_mu) != 0)
            return ITS_EBUSY;
    } else {
        pthread_mutex_lock(&p->form_mu);
    }
    int idle = !in_flight && atomic_load(&p->batches_in_flight) == 0;
    int n = its_batcher_next(p->batcher, (void **)b->frames, maxb, idle, &b->padded, wait_ns);
    if (n > 0) {
        uint64_t t = its_now_ns();
        for (int i = 0; i < n; i++) {
            b->frames[i]->pseq = p->cams[b->frames[i]->camera].pseq_next++;
            b->frames[i]->ts_ns[ITS_TS_BATCH] = t;
            b->frames[i]->batch_n = i == 0 ? n : 0; /* counted once per batch */
        }
        atomic_fetch_add(&p->batches_in_flight, 1);
    }
    pthread_mutex_unlock(&p->form_mu);
    b->n = n > 0 ? n : 0;
    if (b->padded < b->n)
        b->padded = b->n;
    return n;
}

/* Record the batch's latencies (or its failure) and hand its frames to the analytics. */
static void finish_batch(its_pipeline_t *p, its_infer *inf, ebatch *b, int rc)
{
    atomic_fetch_sub(&p->batches_in_flight, 1);
    if (rc < 0) {
        if (atomic_fetch_add(&p->engine_errors, 1) % 100 == 0)
            its_loge("engine", inf->name, "batch of %d failed: %s", b->n, its_strerror(rc));
        for (int i = 0; i < b->n; i++)
            b->frames[i]->failed = rc;
    }
    int nw = p->o.analytics_workers;
    for (int i = 0; i < b->n; i++)
        its_queue_push_wait(p->ana_q[b->frames[i]->camera % nw], b->frames[i], UINT64_MAX);
    b->n = 0;
}

/* While a batch runs: how long one look for the next batch may wait, and the pause when
 * another worker is forming one (it takes the next batch then). */
#define INFLIGHT_SLICE_NS (200 * ITS_NS_PER_US)

static void *engine_main(void *arg)
{
    its_pipeline_t *p = ((worker_arg *)arg)->p;
    int wi = ((worker_arg *)arg)->index;
    its_free(arg);
    its_infer *inf = p->infers[wi];
    int maxb = ITS_MIN(p->o.batch_max, inf->max_batch);
    int async = inf->submit && inf->collect;
    /* pipelined: `cur` is in flight while `next` is formed and submitted */
    ebatch slots[2], *cur = &slots[0], *next = &slots[1];
    cur->n = next->n = 0;
    int closed = 0;
    while (!closed || cur->n) {
        int n = 0;
        if (!cur->n) {
            n = form_batch(p, next, maxb, POLL_NS, 0);
        } else if (!closed) {
            /* a batch runs: look for the next one until it is due or this one is done */
            for (;;) {
                n = form_batch(p, next, maxb, INFLIGHT_SLICE_NS, 1);
                if (n > 0 || n == ITS_ECLOSED)
                    break;
                if (!inf->ready || inf->ready(inf, cur->ticket) != 0)
                    break;
                if (n == ITS_EBUSY) /* another worker is forming: it takes the next one */
                    its_sleep_ns(INFLIGHT_SLICE_NS / 2);
            }
        }
        if (n == ITS_ECLOSED)
            closed = 1;
        if (n > 0) {
            /* handed to the engine now; an engine that prepares the batch's input itself
             * (letterbox on the host) moves ITS_TS_PREP to when that is done */
            uint64_t t = its_now_ns();
            for (int i = 0; i < n; i++)
                next->frames[i]->ts_ns[ITS_TS_PREP] = t;
            if (!async) {
                finish_batch(p, inf, next, inf->run(inf, next->frames, n, next->padded));
                continue;
            }
            next->ticket = inf->submit(inf, next->frames, n, next->padded);
            if (next->ticket < 0)
                finish_batch(p, inf, next, next->ticket);
        }
        /* collect the batch in flight (after submitting the next one, if one came) */
        if (cur->n)
            finish_batch(p, inf, cur, inf->collect(inf, cur->ticket, cur->frames, cur->n));
        if (next->n) {
            ebatch *t = cur;
            cur = next;
            next = t;
        }
    }
    return NULL;
}

/* ---- analytics workers ---- */

typedef struct emit_ctx {
    its_pipeline_t *p;
    cam *c;
} emit_ctx;

static void emit_msg(void *ctx, its_msg_type type, const char *json, size_t len)
{
    emit_ctx *e = ctx;
    e->p->o.sink->publish(e->p->o.sink, type, e->c->id, NULL, json, len);
    atomic_fetch_add_explicit(&e->p->messages, 1, memory_order_relaxed);
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static int64_t wall_us(const its_pipeline_t *p, uint64_t mono_ns)
{
    return ((int64_t)mono_ns + p->wall_offset) / 1000;
}

static const char *label_of(void *inf, int class_id)
{
    return ((its_infer *)inf)->label((its_infer *)inf, class_id);
}

/* The frame message of schema v2 (docs/schema/frame.schema.json). */
static void build_json(its_pipeline_t *p, its_infer *inf, const cam *c, const its_frame *f,
                       its_json *w)
{
    its_json_msg_begin(w, "frame", c->id, wall_us(p, f->ts_ns[ITS_TS_CAPTURE]), f->seq);
    its_json_kint(w, "pts_us", f->pts_ns / 1000);
    its_json_kint(w, "publish_ts_us", wall_us(p, f->ts_ns[ITS_TS_PUBLISH]));
    its_json_frame_dets(w, f->dets, f->n_dets, f->width, f->height,
                        inf && inf->label ? label_of : NULL, inf);
    if (f->quality >= 0)
        its_json_kfixed(w, "quality", f->quality, 4);
    else
        its_json_knull(w, "quality");
    /* every stage of the table that this frame has completed when its message is built
     * (publish, which ends when the sinks return, is not among them) */
    its_json_key(w, "latency_ms");
    its_json_obj_begin(w);
    for (int s = 0; s < ITS_STAGE_COUNT; s++) {
        uint64_t ns;
        if (its_stage_span_ns((its_stage)s, f->ts_ns, &ns))
            its_json_kfixed(w, its_stage_name((its_stage)s), (double)ns / 1e6, 4);
    }
    its_json_obj_end(w);
    its_json_obj_end(w);
}

static void process(its_pipeline_t *p, cam *c, its_frame *f, char *buf)
{
    if (f->failed) {
        atomic_fetch_add(&c->dropped[ITS_DROP_ENGINE_ERROR], 1);
        its_frame_unref(f);
        return;
    }
    if (atomic_load_explicit(&p->abandon, memory_order_relaxed)) {
        /* past the drain deadline at shutdown: counted, not processed */
        atomic_fetch_add(&c->dropped[ITS_DROP_SHUTDOWN], 1);
        its_frame_unref(f);
        return;
    }
    f->ts_ns[ITS_TS_DISPATCH] = its_now_ns();
    its_camera_hooks *h = &p->o.hooks;
    if (h->open && !c->hook_opened) {
        char err[256] = "";
        c->hook_opened = 1;
        if (h->open(h->ctx, c->id, c->scene[0] ? c->scene : NULL, &c->hook_state, err, sizeof err) <
            0) {
            c->hook_failed = 1;
            its_loge("app", c->id, "analytics disabled for this camera: %s", err);
        }
    }
    int hooks = h->open && !c->hook_failed;
    if (hooks && h->analytics) {
        emit_ctx ec = {p, c};
        h->analytics(c->hook_state, f, emit_msg, &ec);
    }
    f->ts_ns[ITS_TS_ANALYTICS] = its_now_ns();
    if (hooks && h->quality)
        h->quality(c->hook_state, f);
    f->ts_ns[ITS_TS_QUALITY] = its_now_ns();
    if (hooks && h->modelmon)
        h->modelmon(c->hook_state, f);
    f->ts_ns[ITS_TS_MODELMON] = its_now_ns();
    f->ts_ns[ITS_TS_PUBLISH] = f->ts_ns[ITS_TS_MODELMON];
    its_json w;
    its_json_init(&w, buf, JSON_BUF);
    build_json(p, p->infers[0], c, f, &w);
    int len = its_json_finish(&w);
    if (len >= 0)
        p->o.sink->publish(p->o.sink, ITS_MSG_FRAME, c->id, f, buf, (size_t)len);
    f->ts_ns[ITS_TS_SENT] = its_now_ns();
    for (int s = 0; s < ITS_STAGE_COUNT; s++) {
        uint64_t ns;
        if (its_stage_span_ns((its_stage)s, f->ts_ns, &ns))
            its_metric_observe(p->stage_m[s], (double)ns / 1e9);
    }
    if (p->observer)
        p->observer(p->observer_ctx, f, c->id);
    uint64_t tracked = 0;
    for (int i = 0; i < f->n_dets; i++)
        tracked += f->dets[i].track_id > 0;
    atomic_fetch_add_explicit(&c->detections, (uint64_t)f->n_dets, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->tracked, tracked, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->messages, 1, memory_order_relaxed);
    /* counted last: a reader that sees processed also sees the frame's other counters */
    atomic_fetch_add_explicit(&c->processed, 1, memory_order_release);
    its_frame_unref(f);
}

static void *analytics_main(void *arg)
{
    its_pipeline_t *p = ((worker_arg *)arg)->p;
    int wi = ((worker_arg *)arg)->index;
    its_free(arg);
    char *buf = its_malloc(ITS_MOD_APP, JSON_BUF);
    for (;;) {
        void *item;
        int rc = its_queue_pop_wait(p->ana_q[wi], &item, POLL_NS);
        if (rc == ITS_ECLOSED)
            break;
        if (rc < 0)
            continue;
        its_frame *f = item;
        cam *c = &p->cams[f->camera];
        if (!buf) { /* could not get a buffer at start: count, never crash */
            atomic_fetch_add(&c->dropped[ITS_DROP_ENGINE_ERROR], 1);
            its_frame_unref(f);
            continue;
        }
        c->held[f->pseq % REORDER] = f;
        while (c->held[c->expect % REORDER] && c->held[c->expect % REORDER]->pseq == c->expect) {
            its_frame *g = c->held[c->expect % REORDER];
            c->held[c->expect % REORDER] = NULL;
            c->expect++;
            process(p, c, g, buf);
        }
    }
    its_free(buf);
    return NULL;
}

/* ---- lifecycle ---- */

int its_pipeline_create(its_pipeline_opts *o, its_pipeline_t **out, char *err, size_t errlen)
{
    char dummy[8];
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    *out = NULL;
    its_pipeline_t *p = its_calloc(ITS_MOD_APP, 1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "pipeline: out of memory");
        return ITS_ENOMEM;
    }
    p->o = *o;
    p->metrics = o->metrics;
    /* ownership moved in: the caller must not free these even if we fail */
    memset(&o->infer, 0, sizeof o->infer);
    o->sink = NULL;
    o->metrics = NULL;
    o->counts = NULL;
    o->evidence = NULL;
    pthread_mutex_init(&p->ctl_mu, NULL);
    pthread_mutex_init(&p->form_mu, NULL);
    pthread_rwlock_init(&p->slot_mu, NULL);
    int rc = ITS_EINVAL;
    its_pipeline_opts *q = &p->o;
    q->engine_workers = ITS_CLAMP(q->engine_workers, 1, MAX_WORKERS);
    q->analytics_workers = ITS_CLAMP(q->analytics_workers, 1, MAX_WORKERS);
    q->pool_frames = ITS_CLAMP(q->pool_frames, 2, REORDER);
    if (q->max_cameras < 1 || !q->sink || !q->infer.create) {
        snprintf(err, errlen, "pipeline: a sink, an inference backend and cameras are needed");
        goto fail;
    }
    for (int i = 0; i < q->engine_workers; i++) {
        rc = q->infer.create(q->infer.ctx, &p->infers[i], err, errlen);
        if (rc < 0)
            goto fail;
    }
    its_infer *inf = p->infers[0];
    int batch_max = ITS_CLAMP(ITS_MIN(q->batch_max, inf->max_batch), 1, 32);
    q->batch_max = batch_max;
    its_batcher_opts bo = {.max_batch = batch_max,
                           .max_delay_ns = its_ms_to_ns(q->batch_delay_ms),
                           .sizes = inf->sizes,
                           .n_sizes = inf->n_sizes,
                           .n_cameras = q->max_cameras,
                           .per_camera = q->per_camera,
                           .capacity = q->queue_capacity,
                           .high_water = q->high_water,
                           .low_water = q->low_water,
                           .on_drop = on_drop,
                           .drop_ctx = p};
    rc = its_batcher_create(&bo, &p->batcher);
    if (rc < 0) {
        snprintf(err, errlen,
                 "batch: invalid settings (max %d, per camera %d, capacity %d, "
                 "high/low water %d/%d)",
                 batch_max, q->per_camera, q->queue_capacity, q->high_water, q->low_water);
        goto fail;
    }
    rc = ITS_ENOMEM;
    p->cams = its_calloc(ITS_MOD_APP, (size_t)q->max_cameras, sizeof *p->cams);
    if (!p->metrics)
        p->metrics = its_metrics_create();
    if (!p->cams || !p->metrics || its_metrics_std_register(p->metrics) < 0) {
        snprintf(err, errlen, "pipeline: out of memory");
        goto fail;
    }
    for (int s = 0; s < ITS_STAGE_COUNT; s++)
        p->stage_m[s] = its_metrics_series_v(its_metrics_std(p->metrics, ITS_M_STAGE_LATENCY),
                                             its_stage_name((its_stage)s));
    for (int i = 0; i < q->analytics_workers; i++)
        if ((rc = its_queue_create(ITS_MOD_APP, ANA_QUEUE, &p->ana_q[i])) < 0) {
            snprintf(err, errlen, "pipeline: out of memory");
            goto fail;
        }
    p->wall_offset = (int64_t)its_wall_ns() - (int64_t)its_now_ns();
    *out = p;
    return 0;
fail:
    its_pipeline_destroy(p);
    return rc;
}

static int source_kind(const its_camera_cfg *c, its_source_kind *k, char *err, size_t errlen)
{
    *k = ITS_SOURCE_AUTO;
    if (c->kind && *c->kind && its_source_parse_kind(c->kind, k) < 0) {
        snprintf(err, errlen, "camera '%s': unknown kind '%s'", c->id, c->kind);
        return ITS_EINVAL;
    }
    return 0;
}

/* Reclaim the retired slots whose frames are all through (ctl_mu held). */
static void reap_locked(its_pipeline_t *p)
{
    int n = atomic_load(&p->n_used);
    uint64_t now = its_now_ns();
    for (int i = 0; i < n; i++) {
        cam *c = &p->cams[i];
        its_camera_stats cs;
        if (c->state != SLOT_RETIRING || its_pipeline_camera_stats(p, i, &cs) < 0 ||
            cs.in_flight > 0)
            continue;
        if (!its_source_finished(c->src) && now - c->retired_ns < SLOT_STUCK_NS)
            continue;
        pthread_rwlock_wrlock(&p->slot_mu);
        its_source_t *src = c->src;
        c->src = NULL;
        c->id[0] = 0;
        c->url[0] = 0;
        pthread_rwlock_unlock(&p->slot_mu);
        /* every frame of this life is through: its analytics worker no longer touches it */
        if (c->hook_opened && !c->hook_failed && p->o.hooks.close)
            p->o.hooks.close(c->hook_state);
        c->hook_state = NULL;
        c->hook_opened = c->hook_failed = 0;
        c->state = SLOT_FREE;
        its_source_destroy_wait(src, 0); /* joins a returned thread, detaches a stuck one */
        p->reclaimed++;
    }
}

void its_pipeline_reap(its_pipeline_t *p)
{
    pthread_mutex_lock(&p->ctl_mu);
    reap_locked(p);
    uint64_t now = its_now_ns();
    int trim = p->reclaimed != p->trimmed_at && now - p->trim_ns >= ITS_NS_PER_S;
    if (trim) {
        p->trimmed_at = p->reclaimed;
        p->trim_ns = now;
    }
    pthread_mutex_unlock(&p->ctl_mu);
#ifdef __GLIBC__
    /* what the removed cameras' threads allocated went back to malloc's per-thread arenas,
     * which keep it; hand the free pages back to the system */
    if (trim)
        malloc_trim(0);
#endif
}

/* A fresh life for slot k (ctl_mu held, no frame of the slot anywhere). */
static void slot_reset(cam *k)
{
    atomic_store(&k->processed, 0);
    atomic_store(&k->detections, 0);
    atomic_store(&k->tracked, 0);
    for (int r = 0; r < ITS_DROP_REASON_COUNT; r++)
        atomic_store(&k->dropped[r], 0);
    k->expect = 0;
    memset(k->held, 0, sizeof k->held);
    k->st_processed = k->st_dropped = 0;
    k->gen++;
    /* not under form_mu (an engine worker waiting for frames holds it): no worker touches
     * this slot until its new source, started after this, pushes a frame */
    k->pseq_next = 0;
}

int its_pipeline_add_camera(its_pipeline_t *p, const its_camera_cfg *c, char *err, size_t errlen)
{
    char dummy[8];
    if (!err) {
        err = dummy;
        errlen = sizeof dummy;
    }
    if (!c->id || !*c->id || !c->url || !*c->url) {
        snprintf(err, errlen, "camera: id and url are required");
        return ITS_EINVAL;
    }
    if (strlen(c->id) > ITS_CAMERA_ID_MAX || strlen(c->url) >= sizeof p->cams[0].url) {
        snprintf(err, errlen, "camera: id over %d characters or url over %zu", ITS_CAMERA_ID_MAX,
                 sizeof p->cams[0].url - 1);
        return ITS_EINVAL;
    }
    pthread_mutex_lock(&p->ctl_mu);
    int rc = 0, slot = -1;
    uint64_t deadline = its_now_ns() + ADD_SLOT_WAIT_NS;
    for (;;) {
        reap_locked(p);
        for (int i = 0; i < p->n_used; i++)
            if (p->cams[i].state == SLOT_ACTIVE && strcmp(p->cams[i].id, c->id) == 0) {
                snprintf(err, errlen, "camera '%s' already exists", c->id);
                rc = ITS_EEXIST;
                goto out;
            }
        int retiring = 0;
        for (int i = 0; i < p->o.max_cameras && slot < 0; i++) {
            if (p->cams[i].state == SLOT_FREE)
                slot = i;
            retiring += p->cams[i].state == SLOT_RETIRING;
        }
        if (slot >= 0)
            break;
        if (!retiring || its_now_ns() >= deadline) {
            snprintf(err, errlen, "camera '%s': all %d camera slots are in use", c->id,
                     p->o.max_cameras);
            rc = ITS_EFULL;
            goto out;
        }
        /* every slot is in use but some are retiring: wait for one, without the lock */
        pthread_mutex_unlock(&p->ctl_mu);
        its_sleep_ns(5 * ITS_NS_PER_MS);
        pthread_mutex_lock(&p->ctl_mu);
    }
    its_source_opts so;
    its_source_opts_default(&so);
    if ((rc = source_kind(c, &so.kind, err, errlen)) < 0)
        goto out;
    cam *k = &p->cams[slot];
    so.id = c->id;
    so.url = c->url;
    so.slot = slot;
    so.pixfmt = p->o.pixfmt;
    so.loop = c->loop;
    so.realtime = c->realtime < 0 ? 1 : c->realtime;
    so.fps = c->fps;
    so.sample_fps = c->sample_fps;
    so.phase_s = c->phase_s;
    if (c->phase_s < 0) /* spread replay cameras over 2 s of clip and a frame period */
        so.phase_s = so.kind == ITS_SOURCE_REPLAY ||
                             (!so.kind && its_source_kind_of(c->url) == ITS_SOURCE_REPLAY)
                         ? fmod(slot * 0.6180339887, 1.0) * 2.0
                         : 0;
    if (c->phase_s < 0 && c->sample_fps > 0) /* sampled files: over the sampling period */
        so.phase_s = fmod(slot * 0.6180339887, 1.0) / c->sample_fps;
    so.replay_frames = c->replay_frames;
    so.rtsp_udp = c->rtsp_udp;
    so.decode = c->decode == ITS_VIDEO_DECODE_AUTO && !p->o.nvdec_auto
                    ? ITS_VIDEO_DECODE_CPU
                    : (its_video_decode)c->decode;
    so.max_width = c->max_width > 0 ? c->max_width : p->o.max_width;
    so.max_height = c->max_height > 0 ? c->max_height : p->o.max_height;
    so.pool_frames = p->o.pool_frames;
    so.stall_timeout_ms = p->o.stall_timeout_ms;
    so.backoff_min_ms = p->o.backoff_min_ms;
    so.backoff_max_ms = p->o.backoff_max_ms;
    so.nice = p->o.source_nice;
    its_source_kind kind = so.kind ? so.kind : its_source_kind_of(c->url);
    if (p->o.evidence && kind >= ITS_SOURCE_FILE && kind <= ITS_SOURCE_HLS)
        so.clipring = its_evidence_camera_open(p->o.evidence, c->id); /* the source's */
    its_source_t *src;
    rc = its_source_create(&so, on_frame, p, &src, err, errlen);
    if (rc < 0) {
        its_evidence_camera_close(p->o.evidence, c->id, so.clipring);
        goto out;
    }
    slot_reset(k);
    pthread_rwlock_wrlock(&p->slot_mu);
    snprintf(k->id, sizeof k->id, "%s", c->id);
    snprintf(k->url, sizeof k->url, "%s", c->url);
    snprintf(k->scene, sizeof k->scene, "%s", c->scene ? c->scene : "");
    k->src = src;
    atomic_store(&k->active, 1);
    pthread_rwlock_unlock(&p->slot_mu);
    k->state = SLOT_ACTIVE;
    if (slot >= atomic_load(&p->n_used))
        atomic_store(&p->n_used, slot + 1);
    if (p->started && !p->stopped && (rc = its_source_start(k->src)) < 0)
        snprintf(err, errlen, "camera '%s': cannot start its thread", c->id);
    char shown[ITS_URL_SHOWN_MAX];
    its_url_scrub(k->url, shown, sizeof shown);
    its_logi("app", k->id, "camera added: %s (%s)", shown,
             its_source_kind_name(so.kind ? so.kind : its_source_kind_of(k->url)));
out:
    pthread_mutex_unlock(&p->ctl_mu);
    return rc;
}

static int find_locked(its_pipeline_t *p, const char *id)
{
    int n = atomic_load(&p->n_used);
    for (int i = 0; i < n; i++)
        if (atomic_load(&p->cams[i].active) && strcmp(p->cams[i].id, id) == 0)
            return i;
    return ITS_ENOENT;
}

int its_pipeline_find_camera(its_pipeline_t *p, const char *id)
{
    pthread_rwlock_rdlock(&p->slot_mu);
    int i = find_locked(p, id);
    pthread_rwlock_unlock(&p->slot_mu);
    return i;
}

int its_pipeline_push_image(its_pipeline_t *p, const char *id, const uint8_t *data, size_t len,
                            uint64_t ts_ns, char *err, size_t errlen)
{
    /* slot_mu (read) keeps the camera's source from being freed while we push; a camera
     * removed meanwhile answers ITS_ECLOSED */
    pthread_rwlock_rdlock(&p->slot_mu);
    int i = find_locked(p, id);
    int rc = i < 0 ? its_seterr(err, errlen, ITS_ENOENT, "%s: no such camera", id)
                   : its_source_push_image(p->cams[i].src, data, len, ts_ns, err, errlen);
    pthread_rwlock_unlock(&p->slot_mu);
    return rc;
}

int its_pipeline_remove_camera(its_pipeline_t *p, const char *id)
{
    pthread_mutex_lock(&p->ctl_mu);
    int i = its_pipeline_find_camera(p, id);
    if (i >= 0) {
        /* cancelled, never waited for: its frames in flight finish, its counters stay
         * readable until the slot is reclaimed */
        its_source_cancel(p->cams[i].src);
        its_evidence_camera_close(p->o.evidence, id, NULL); /* its ring leaves the table */
        atomic_store(&p->cams[i].active, 0);
        p->cams[i].state = SLOT_RETIRING;
        p->cams[i].retired_ns = its_now_ns();
        its_logi("app", id, "camera removed");
    }
    reap_locked(p);
    pthread_mutex_unlock(&p->ctl_mu);
    return i < 0 ? i : 0;
}

int its_pipeline_start(its_pipeline_t *p)
{
    pthread_mutex_lock(&p->ctl_mu);
    int rc = 0;
    if (p->started) {
        pthread_mutex_unlock(&p->ctl_mu);
        return ITS_EBUSY;
    }
    p->started = 1;
    p->st_ns = its_now_ns();
    for (int i = 0; i < p->o.analytics_workers && rc == 0; i++) {
        worker_arg *a = its_malloc(ITS_MOD_APP, sizeof *a);
        if (a) {
            a->p = p;
            a->index = i;
        }
        if (!a || pthread_create(&p->ana[i], NULL, analytics_main, a) != 0) {
            its_free(a);
            rc = ITS_ENOMEM;
            break;
        }
        p->n_ana_started++;
    }
    for (int i = 0; i < p->o.engine_workers && rc == 0; i++) {
        worker_arg *a = its_malloc(ITS_MOD_APP, sizeof *a);
        if (a) {
            a->p = p;
            a->index = i;
        }
        if (!a || pthread_create(&p->eng[i], NULL, engine_main, a) != 0) {
            its_free(a);
            rc = ITS_ENOMEM;
            break;
        }
        p->n_eng_started++;
    }
    for (int i = 0; i < p->n_used && rc == 0; i++)
        if (p->cams[i].state == SLOT_ACTIVE)
            rc = its_source_start(p->cams[i].src);
    pthread_mutex_unlock(&p->ctl_mu);
    return rc;
}

int its_pipeline_stop(its_pipeline_t *p, uint64_t drain_ns)
{
    pthread_mutex_lock(&p->ctl_mu);
    if (p->stopped || !p->started) {
        p->stopped = 1;
        pthread_mutex_unlock(&p->ctl_mu);
        return 0;
    }
    p->stopped = 1;
    uint64_t t0 = its_now_ns();
    /* cancelled, not joined: a source blocked where no interrupt reaches holds nothing up */
    for (int i = 0; i < p->n_used; i++)
        its_source_cancel(p->cams[i].src);
    its_batcher_close(p->batcher);
    /* drain: the engine workers empty the batcher until the deadline */
    uint64_t deadline = t0 + drain_ns;
    for (;;) {
        its_batcher_stats bs;
        its_batcher_get_stats(p->batcher, &bs);
        if (bs.depth == 0)
            break;
        if (its_now_ns() >= deadline) {
            int n = its_batcher_flush_drop(p->batcher);
            its_logw("app", NULL, "drain deadline: %d queued frames dropped", n);
            break;
        }
        its_sleep_ns(2 * ITS_NS_PER_MS);
    }
    for (int i = 0; i < p->n_eng_started; i++)
        pthread_join(p->eng[i], NULL);
    for (int i = 0; i < p->o.analytics_workers; i++)
        its_queue_close(p->ana_q[i]);
    /* the analytics workers drain their queues too, within the same deadline (a slow
     * per-camera stage must not hold the exit); past it, what is left is counted as
     * shutdown drops (the batches running in the engine always finish and are counted) */
    for (;;) {
        size_t left = 0;
        for (int i = 0; i < p->o.analytics_workers; i++)
            left += its_queue_size(p->ana_q[i]);
        if (left == 0)
            break;
        if (its_now_ns() >= deadline) {
            atomic_store(&p->abandon, 1);
            its_logw("app", NULL, "drain deadline: %zu frames awaiting analytics dropped", left);
            break;
        }
        its_sleep_ns(2 * ITS_NS_PER_MS);
    }
    for (int i = 0; i < p->n_ana_started; i++)
        pthread_join(p->ana[i], NULL);
    /* closing the sinks delivers what they hold (Redis: within its drain timeout), so the
     * publish counters are final when the caller reads them */
    p->o.sink->destroy(p->o.sink);
    p->o.sink = NULL;
    its_logi("app", NULL, "stopped in %.0f ms", ms(its_now_ns() - t0));
    pthread_mutex_unlock(&p->ctl_mu);
    return 0;
}

void its_pipeline_destroy(its_pipeline_t *p)
{
    if (!p)
        return;
    if (p->started)
        its_pipeline_stop(p, 0);
    /* one wait for all the sources' threads together, then the stuck ones are detached */
    uint64_t deadline = its_now_ns() + ITS_SOURCE_DESTROY_WAIT_NS;
    for (int i = 0; p->cams && i < p->n_used; i++) {
        cam *c = &p->cams[i];
        /* frames parked for reorder can only remain if a worker never got them in order */
        for (int k = 0; k < REORDER; k++)
            its_frame_unref(c->held[k]);
        if (c->hook_opened && !c->hook_failed && p->o.hooks.close)
            p->o.hooks.close(c->hook_state);
        uint64_t now = its_now_ns();
        its_source_destroy_wait(c->src, deadline > now ? deadline - now : 0);
    }
    for (int i = 0; i < MAX_WORKERS; i++) {
        if (p->ana_q[i]) {
            void *item;
            while (its_queue_pop(p->ana_q[i], &item) == 0)
                its_frame_unref(item);
            its_queue_destroy(p->ana_q[i]);
        }
        if (p->infers[i])
            p->infers[i]->destroy(p->infers[i]);
    }
    if (p->batcher) {
        its_batcher_flush_drop(p->batcher);
        its_batcher_destroy(p->batcher);
    }
    if (p->o.infer.release)
        p->o.infer.release(p->o.infer.ctx);
    if (p->o.hooks.release)
        p->o.hooks.release(p->o.hooks.ctx);
    if (p->o.sink)
        p->o.sink->destroy(p->o.sink);
    its_metrics_destroy(p->metrics);
    its_counts_store_destroy(p->o.counts); /* after the hooks' close, which leave it */
    its_evidence_store_destroy(p->o.evidence);
    its_free(p->cams);
    pthread_mutex_destroy(&p->ctl_mu);
    pthread_mutex_destroy(&p->form_mu);
    pthread_rwlock_destroy(&p->slot_mu);
    its_free(p);
}

/* ---- observation ---- */

int its_pipeline_n_cameras(its_pipeline_t *p)
{
    return atomic_load(&p->n_used);
}

void its_pipeline_set_observer(its_pipeline_t *p, its_frame_observer fn, void *ctx)
{
    p->observer = fn;
    p->observer_ctx = ctx;
}

int its_pipeline_camera_stats(its_pipeline_t *p, int slot, its_camera_stats *out)
{
    if (slot < 0 || slot >= atomic_load(&p->n_used))
        return ITS_ERANGE;
    cam *c = &p->cams[slot];
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&p->slot_mu);
    if (!c->src) { /* a free slot */
        pthread_rwlock_unlock(&p->slot_mu);
        return ITS_ENOENT;
    }
    snprintf(out->id, sizeof out->id, "%s", c->id);
    snprintf(out->url, sizeof out->url, "%s", c->url);
    out->gen = c->gen;
    out->active = atomic_load(&c->active);
    /* processed first: everything it counts was in before */
    out->processed = atomic_load_explicit(&c->processed, memory_order_acquire);
    out->detections = atomic_load(&c->detections);
    out->tracked = atomic_load(&c->tracked);
    for (int r = 0; r < ITS_DROP_REASON_COUNT; r++)
        out->dropped[r] = atomic_load(&c->dropped[r]);
    its_source_get_stats(c->src, &out->source);
    pthread_rwlock_unlock(&p->slot_mu);
    out->dropped[ITS_DROP_NO_BUFFER] = out->source.dropped_no_buffer;
    for (int r = 0; r < ITS_DROP_REASON_COUNT; r++)
        out->dropped_total += out->dropped[r];
    out->in = out->source.frames + out->source.dropped_no_buffer;
    uint64_t done = out->processed + out->dropped_total;
    out->in_flight = out->in > done ? out->in - done : 0;
    return 0;
}

its_metrics *its_pipeline_metrics(its_pipeline_t *p)
{
    return p->metrics;
}

struct its_counts_store *its_pipeline_counts(its_pipeline_t *p)
{
    return p->o.counts;
}

struct its_evidence_store *its_pipeline_evidence(its_pipeline_t *p)
{
    return p->o.evidence;
}

void its_pipeline_stage_mark(its_pipeline_t *p, its_stage_window *w)
{
    double bounds[ITS_METRICS_MAX_BUCKETS];
    memset(w, 0, sizeof *w);
    for (int s = 0; s < ITS_STAGE_COUNT; s++)
        (void)its_metric_buckets(p->stage_m[s], bounds, w->cum[s], ITS_METRICS_MAX_BUCKETS + 1);
}

double its_pipeline_stage_quantile(its_pipeline_t *p, its_stage s, double q,
                                   const its_stage_window *since, uint64_t *count)
{
    double bounds[ITS_METRICS_MAX_BUCKETS];
    uint64_t cum[ITS_METRICS_MAX_BUCKETS + 1];
    if (count)
        *count = 0;
    if ((unsigned)s >= ITS_STAGE_COUNT)
        return NAN;
    int nb = its_metric_buckets(p->stage_m[s], bounds, cum, ITS_METRICS_MAX_BUCKETS + 1);
    if (nb < 1)
        return NAN;
    for (int b = 0; since && b <= nb; b++)
        cum[b] = cum[b] > since->cum[s][b] ? cum[b] - since->cum[s][b] : 0;
    if (count)
        *count = cum[nb];
    return its_histogram_quantile(bounds, cum, nb, q);
}

void its_pipeline_batch_stats(its_pipeline_t *p, its_batcher_stats *out)
{
    its_batcher_get_stats(p->batcher, out);
}

const its_camera_hooks *its_pipeline_hooks(its_pipeline_t *p)
{
    return p ? &p->o.hooks : NULL;
}

void its_pipeline_flush(its_pipeline_t *p)
{
    pthread_mutex_lock(&p->ctl_mu); /* not while stop closes the sinks */
    if (p->o.sink)
        p->o.sink->flush(p->o.sink);
    pthread_mutex_unlock(&p->ctl_mu);
}

size_t its_pipeline_analytics_queued(its_pipeline_t *p)
{
    size_t n = 0;
    for (int i = 0; i < p->o.analytics_workers; i++)
        n += p->ana_q[i] ? its_queue_size(p->ana_q[i]) : 0;
    return n;
}

const char *its_pipeline_class_name(its_pipeline_t *p, int class_id)
{
    its_infer *inf = p->infers[0];
    return inf && inf->label ? inf->label(inf, class_id) : NULL;
}

uint64_t its_pipeline_messages(its_pipeline_t *p)
{
    return atomic_load(&p->messages);
}

uint64_t its_pipeline_engine_errors(its_pipeline_t *p)
{
    return atomic_load(&p->engine_errors);
}

int its_pipeline_engine_fallback(its_pipeline_t *p, uint64_t *events)
{
    int n = 0;
    uint64_t ev = 0;
    for (int i = 0; i < p->o.engine_workers; i++) {
        uint64_t e = 0;
        if (p->infers[i] && p->infers[i]->fallback)
            n += p->infers[i]->fallback(p->infers[i], &e) > 0;
        ev += e;
    }
    if (events)
        *events = ev;
    return n;
}

#define APPEND(...)                                                                                \
    do {                                                                                           \
        if (n < len) {                                                                             \
            int k_ = snprintf(buf + n, len - n, __VA_ARGS__);                                      \
            if (k_ > 0)                                                                            \
                n += (size_t)k_;                                                                   \
        }                                                                                          \
    } while (0)

int its_pipeline_status_line(its_pipeline_t *p, char *buf, size_t len)
{
    size_t n = 0;
    uint64_t now = its_now_ns();
    double dt = p->st_ns && now > p->st_ns ? (double)(now - p->st_ns) / 1e9 : 0;
    its_batcher_stats bs;
    its_batcher_get_stats(p->batcher, &bs);
    uint64_t db = bs.batches - p->st_batches, di = bs.items_out - p->st_items;
    p->st_batches = bs.batches;
    p->st_items = bs.items_out;
    its_infer *inf = p->infers[0];
    uint64_t total_out = 0, total_drop = 0;
    int active = 0;
    char cams[1024];
    size_t cn = 0;
    cams[0] = 0;
    for (int i = 0; i < p->n_used; i++) {
        its_camera_stats cs;
        if (its_pipeline_camera_stats(p, i, &cs) < 0)
            continue;
        cam *c = &p->cams[i];
        uint64_t dout = cs.processed - c->st_processed, ddrop = cs.dropped_total - c->st_dropped;
        c->st_processed = cs.processed;
        c->st_dropped = cs.dropped_total;
        total_out += dout;
        total_drop += ddrop;
        if (!cs.active)
            continue;
        active++;
        if (active <= 8 && cn < sizeof cams) {
            int k = snprintf(cams + cn, sizeof cams - cn, " %s %.1ffps drop %llu%s;", cs.id,
                             dt > 0 ? (double)dout / dt : 0, (unsigned long long)cs.dropped_total,
                             cs.source.state == ITS_SOURCE_RUNNING ? ""
                             : cs.source.state == ITS_SOURCE_ENDED ? " (ended)"
                                                                   : " (reconnecting)");
            if (k > 0)
                cn += (size_t)k;
        }
    }
    int on_fallback = its_pipeline_engine_fallback(p, NULL);
    APPEND("status: backend %s%s%s | %d cams %.1f fps out, %llu dropped | batch avg %.1f, queue "
           "%zu | p99 ms (budget):",
           inf->name, inf->is_benchmark ? " (benchmark, no inference)" : "",
           on_fallback ? " (on the cpu fallback)" : "", active, dt > 0 ? (double)total_out / dt : 0,
           (unsigned long long)total_drop, db ? (double)di / (double)db : 0, bs.depth);
    for (int s = 0; s < ITS_STAGE_COUNT; s++) {
        double p99 = its_pipeline_stage_quantile(p, (its_stage)s, 0.99, &p->st_win, NULL) * 1e3;
        double budget = its_stage_budget_ms((its_stage)s);
        if (isnan(p99))
            APPEND(" %s - (%g)", its_stage_name((its_stage)s), budget);
        else
            APPEND(" %s %.1f (%g)%s", its_stage_name((its_stage)s), p99, budget,
                   p99 > budget ? "!" : "");
    }
    its_pipeline_stage_mark(p, &p->st_win);
    APPEND(" |%s%s", cams, active > 8 ? " ..." : "");
    p->st_ns = now;
    return (int)ITS_MIN(n, len ? len - 1 : 0);
}
