/*
 * The per-camera stages of itsd, on the camera's analytics worker: ByteTrack tracking and the
 * traffic analytics (its/analytics.h, with the camera's scene file or an empty scene), the
 * quality score (its/quality.h) and the model metrics (its/modelmon.h).
 *
 * Model metrics are kept per camera: each camera's confidence and class mix is its own
 * baseline (a highway and a parking lot differ), so drift means "this camera changed".
 * Quality reads a luma plane computed here from the RGB/BGR frame at half resolution (a
 * quarter of the pixels, well inside the 5 ms budget) into a buffer sized at open.
 *
 * Messages of their own (schema v2, docs/messages.md): every event (line crossing, zone
 * presence, queue, incident) as {"v":2,"type":"event",...}, and every window_s of stream time
 * the analytics report as {"v":2,"type":"window",...} and the model metrics report as
 * {"v":2,"type":"drift",...}. With the window come SPEC's cache-only records (Redis keys, not
 * messages of the stream): the camera's quality scores, the short (15 min) and long (60 min)
 * flow forecasts per counting line, the model-metrics baseline once it is captured, and the
 * crossings of the last 60 minutes per line ("window_60m": the analytics report has rolling 1-
 * and 15-minute windows; the hour is the line totals now less those of a snapshot taken
 * every minute of stream time, kept for 61 minutes).
 *
 * Metrics (with a registry): its_vehicle_count_total{camera,class,direction} per line
 * crossing, its_flow_rate_vehicles_per_hour{camera} (the 1-minute flow over all lines) and
 * its_model_drift_score{camera,model,feature} (PSI) at every window.
 *
 * Interval counts (its/counts.h): with a counts store, each camera's line crossings per
 * minute of the wall clock, per line, traffic class and direction, kept counts_hours in a ring
 * and listed in the store under the camera id while the camera is open (GET
 * /v1/cameras/{id}/counts.csv reads them there).
 *
 * Evidence (its/evidence.h): with an evidence store, an event of the configured kinds (its
 * first message: an instant event, or the start of one that lasts) gets an annotated snapshot
 * (the frame with its boxes, the event's track in red and the counting lines, JPEG), written
 * at once, and a clip asked of the camera's packet ring around the frame's media time; the
 * event message carries their links ("evidence": {"snapshot", "clip"}, docs/messages.md).
 *
 * Checkpoints (with ckpt_save/ckpt_load, a cluster's replica): at open, before the camera's
 * first frame, its analytics continue from its last checkpoint (its/analytics.h: lines and
 * zones that still match by name and geometry; a checkpoint that does not parse is logged and
 * ignored); after every window message, and at close, the analytics state is saved again.
 * its_checkpoints_total{result} counts what happened (written, refused, failed; restored,
 * absent, corrupt).
 *
 * Baselines: with a baseline directory, a camera's baseline is read from <dir>/<camera>.baseline
 * at open when the file exists, and written there once captured, so drift is measured against
 * the same reference across restarts. Event ids are "<camera>-<t0>-<n>": t0 is the wall-clock time
 * in microseconds when the camera's analytics started, n the analytics' event number, so ids
 * are unique across restarts and the same through an event's start, updates and end.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "its/analytics.h"
#include "its/counts.h"
#include "its/evidence.h"
#include "its/media.h"
#include "its/app_hooks.h"
#include "its/core.h"
#include "its/modelmon.h"
#include "its/quality.h"
#include "its/stage.h"
#include "its/track.h"

#define LUMA_MAX_W    2048
#define LUMA_MAX_H    2048
#define REPORT_JSON   (256 * 1024)
#define CKPT_JSON_MAX (1024 * 1024) /* the largest checkpoint: 16 lines and 16 zones, full */
#define HOUR_NS       ((int64_t)3600 * (int64_t)ITS_NS_PER_S)
#define HOUR_SNAP_NS  ((int64_t)60 * (int64_t)ITS_NS_PER_S)
#define HOUR_SNAPS    62 /* a minute apart: a little over an hour */

typedef struct cam_state cam_state;

/* The hooks' context: the options, and the cameras whose analytics are open, for the scene
 * calls of other threads (its_app_hooks_scene_get/_set). */
typedef struct hooks_ctx {
    its_app_hooks_opts o;
    its_app_ckpt_save_fn ckpt_save; /* NULL: no checkpoints */
    its_app_ckpt_load_fn ckpt_load;
    void *ckpt_ud;
    pthread_mutex_t mu; /* guards the list, each camera's scene copy and pending scene */
    pthread_cond_t cv;  /* a camera's live report was written */
    cam_state *cams;
} hooks_ctx;

struct cam_state {
    char id[ITS_CAMERA_ID_MAX + 1];
    hooks_ctx *ctx;
    cam_state *next;        /* in ctx->cams */
    its_scene scene;        /* the scene in use (a copy, read by other threads under mu) */
    char scene_path[640];   /* the camera's scene file ("": none) */
    its_scene *pending;     /* set by its_app_hooks_scene_set, under mu */
    atomic_int has_pending; /* the worker's cheap test before it takes mu */
    atomic_int want_report; /* its_app_hooks_live_report asked for a fresh one */
    char *report;           /* the live report (JSON), under mu; grown, never per frame */
    size_t report_len, report_cap;
    uint64_t report_at; /* its_now_ns() when written; 0 none */
    its_analytics_t *an;
    its_counts_t *counts;         /* NULL: none */
    its_counts_store *store;      /* where counts is listed */
    its_evidence_store *evidence; /* NULL: none */
    unsigned ev_kinds;            /* bit per its_event_type that keeps evidence */
    unsigned ev_classes;          /* line crossings: bit per traffic class (all: ~0u) */
    its_scene_line lines[ITS_SCENE_MAX_LINES]; /* drawn on snapshots */
    its_quality_t *q;
    its_modelmon_t *mm;
    its_det_frame df;
    const its_analytics_frame *last;
    uint8_t *luma;
    char *json;
    int64_t window_ns;
    int64_t next_window_ns;
    int64_t wall_offset_ns;                /* wall clock minus its_now_ns() */
    char id_prefix[96];                    /* of event ids: camera and start time */
    int64_t image_every_ns, next_image_ns; /* quality picture sampling (0: every frame) */
    uint64_t events, windows;
    /* metrics (NULL without a registry) */
    its_metrics *reg;
    its_metric *vehicles[ITS_CLS_COUNT][2]; /* [group][0 positive, 1 negative] */
    its_metric *flow;
    its_metric *drift[ITS_MM_FEATURES];
    /* the scene's counting lines, for the forecasts */
    int n_lines;
    char line_names[ITS_SCENE_MAX_LINES][ITS_SCENE_NAME_MAX];
    char model[64];
    char baseline_path[640]; /* "": not persisted */
    /* line totals every HOUR_SNAP_NS of stream time, for the 60-minute record (a ring) */
    int64_t snap_ts[HOUR_SNAPS];
    uint32_t snap[HOUR_SNAPS][ITS_SCENE_MAX_LINES][ITS_CLS_COUNT][2];
    int snap_head, snap_n;
    int64_t next_snap_ns;
    int baseline_published;
    int ckpt;     /* opened in full: checkpoints are saved (with the options' ckpt_save) */
    int restored; /* the analytics continue a checkpoint, whose line totals were these: */
    uint32_t ck_totals[ITS_SCENE_MAX_LINES][ITS_CLS_COUNT][2];
};

/* its_checkpoints_total{result}, with a registry. */
static void ckpt_count(const cam_state *s, const char *result)
{
    if (s->reg)
        its_metric_inc(its_metrics_series_v(its_metrics_std(s->reg, ITS_M_CHECKPOINTS), result));
}

/* The camera's analytics as a checkpoint, to the options' store (its buffer: s->json). */
static void ckpt_save(cam_state *s, const char *when)
{
    const hooks_ctx *o = s->ctx;
    if (!s->ckpt || !o || !o->ckpt_save)
        return;
    its_json w;
    int64_t now_us = (int64_t)(its_wall_ns() / 1000);
    its_json_init(&w, s->json, REPORT_JSON);
    its_analytics_checkpoint_write(s->an, s->id, now_us, &w);
    int n = its_json_finish(&w);
    char *big = NULL; /* many lines with full windows: up to about 21 kB each */
    if (n == ITS_EOVERFLOW && (big = its_malloc(ITS_MOD_APP, CKPT_JSON_MAX))) {
        its_json_init(&w, big, CKPT_JSON_MAX);
        its_analytics_checkpoint_write(s->an, s->id, now_us, &w);
        n = its_json_finish(&w);
    }
    int rc = n < 0 ? n : o->ckpt_save(o->ckpt_ud, s->id, big ? big : s->json, (size_t)n);
    its_free(big);
    if (rc == 0) {
        ckpt_count(s, "written");
    } else if (rc == ITS_EBUSY) { /* no longer ours: the next owner's state is newer */
        ckpt_count(s, "refused");
        its_logw("app", s->id, "checkpoint (%s) refused: the camera is no longer held here", when);
    } else {
        ckpt_count(s, "failed");
        its_logw("app", s->id, "checkpoint (%s) not written: %s", when, its_strerror(rc));
    }
}

/* The camera's last checkpoint into its new analytics, before the first frame. */
static void ckpt_restore(cam_state *s)
{
    const hooks_ctx *o = s->ctx;
    char *text = NULL, err[256];
    size_t len = 0;
    int rc = o->ckpt_load(o->ckpt_ud, s->id, &text, &len);
    if (rc == ITS_ENOENT) {
        ckpt_count(s, "absent");
        its_logi("app", s->id, "no checkpoint: the analytics start from zero");
        return;
    }
    if (rc < 0) {
        ckpt_count(s, "failed");
        its_logw("app", s->id, "checkpoint not read (%s): the analytics start from zero",
                 its_strerror(rc));
        return;
    }
    its_analytics_resumed r;
    rc = its_analytics_checkpoint_restore(s->an, text, len, (int64_t)(its_wall_ns() / 1000), &r,
                                          err, sizeof err);
    its_free(text);
    if (rc < 0) {
        ckpt_count(s, "corrupt");
        its_logw("app", s->id, "%s: ignored, the analytics start from zero", err);
        return;
    }
    ckpt_count(s, "restored");
    s->restored = 1;
    its_analytics_report *rep = its_malloc(ITS_MOD_APP, sizeof *rep);
    if (rep && its_analytics_get_report(s->an, rep) == 0)
        for (int i = 0; i < s->n_lines; i++)
            memcpy(s->ck_totals[i], rep->lines[i].total, sizeof s->ck_totals[i]);
    its_free(rep);
    its_logi("app", s->id,
             "continued from its checkpoint (%.1f s of stream, written %.1f s ago): %d of %d "
             "lines, %d of %d zones%s",
             r.elapsed_s, r.age_s, r.lines_kept, r.lines, r.zones_kept, r.zones,
             r.traffic_kept ? "" : ", counts by traffic class from zero (classes changed)");
}

static const char *const mm_feature_names[ITS_MM_FEATURES] = {"confidence", "class", "count",
                                                              "area"};

static void cam_close(void *state)
{
    cam_state *s = state;
    if (!s)
        return;
    ckpt_save(s, "close");
    its_counts_store_remove(s->store, s->id, s->counts);
    its_counts_destroy(s->counts);
    if (s->ctx) {
        pthread_mutex_lock(&s->ctx->mu);
        for (cam_state **pp = &s->ctx->cams; *pp; pp = &(*pp)->next)
            if (*pp == s) {
                *pp = s->next;
                break;
            }
        pthread_mutex_unlock(&s->ctx->mu);
    }
    its_free(s->pending);
    its_free(s->report);
    its_analytics_destroy(s->an);
    its_quality_destroy(s->q);
    its_modelmon_destroy(s->mm);
    its_free(s->luma);
    its_free(s->json);
    its_free(s);
}

/* evidence.events: "kind,kind,line_crossing:CLASS" into the camera's masks. */
static void evidence_kinds(cam_state *s, const its_scene *sc, const char *list)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list ? list : "");
    for (char *save = NULL, *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        char *cls = strchr(t, ':');
        if (cls)
            *cls++ = 0;
        int found = 0;
        for (int k = 0; k < ITS_EV_COUNT; k++) {
            if (strcmp(t, its_event_type_name((its_event_type)k)))
                continue;
            found = 1;
            s->ev_kinds |= 1u << k;
            if (k != ITS_EV_LINE_CROSSING)
                break;
            if (!cls) {
                s->ev_classes = ~0u;
                break;
            }
            unsigned before = s->ev_classes;
            for (int c = 0; c < sc->n_tclasses; c++)
                if (!strcmp(cls, sc->tclasses[c].name))
                    s->ev_classes |= 1u << c;
            if (s->ev_classes == before)
                its_logw("app", s->id, "evidence.events: the scene has no traffic class '%s'", cls);
        }
        if (!found)
            its_logw("app", s->id, "evidence.events: '%s' is no event kind, ignored", t);
    }
}

static int cam_open(void *ctx, const char *camera, const char *scene, void **state, char *err,
                    size_t errlen)
{
    hooks_ctx *hc = ctx;
    const its_app_hooks_opts *o = hc ? &hc->o : NULL;
    cam_state *s = its_calloc(ITS_MOD_APP, 1, sizeof *s);
    if (!s)
        return ITS_ENOMEM;
    snprintf(s->id, sizeof s->id, "%s", camera);
    its_scene sc;
    int rc = 0;
    /* a camera without a scene file takes the one saved for it in scene_dir, if any */
    char saved[600] = "";
    if (!scene && o && o->scene_dir && *o->scene_dir) {
        snprintf(saved, sizeof saved, "%s/%s.yaml", o->scene_dir, camera);
        FILE *f = fopen(saved, "r");
        if (f) {
            fclose(f);
            scene = saved;
            its_logi("app", camera, "scene %s (saved through the API)", saved);
        }
    }
    if (scene) {
        rc = its_scene_load(scene, &sc, err, errlen);
        snprintf(s->scene_path, sizeof s->scene_path, "%s", scene);
    } else {
        its_scene_default(&sc);
        snprintf(sc.camera, sizeof sc.camera, "%s", camera);
    }
    if (rc == 0)
        rc = its_analytics_create(&sc, NULL, &s->an);
    if (rc == 0 && o && o->counts && o->counts_hours > 0 &&
        (rc = its_counts_create(&sc, camera, 60, o->counts_hours * 60, &s->counts)) == 0) {
        if (its_counts_store_add(o->counts, camera, s->counts) == 0) {
            s->store = o->counts;
        } else {
            its_logw("app", camera, "no interval counts: the cameras' table is full");
            its_counts_destroy(s->counts);
            s->counts = NULL;
        }
    }
    its_quality_params qp;
    its_quality_params_default(&qp);
    qp.reuse_image = o && o->quality_image_fps > 0;
    if (rc == 0)
        rc = its_quality_create(&qp, &s->q);
    its_modelmon_params mp;
    its_modelmon_params_default(&mp);
    snprintf(mp.model, sizeof mp.model, "%s", o && o->model_name ? o->model_name : "detector");
    if (rc == 0)
        rc = its_modelmon_create(&mp, &s->mm);
    snprintf(s->model, sizeof s->model, "%s", mp.model);
    if (rc == 0 && o && o->baseline_dir && *o->baseline_dir) {
        snprintf(s->baseline_path, sizeof s->baseline_path, "%s/%s.baseline", o->baseline_dir,
                 camera);
        FILE *f = fopen(s->baseline_path, "r");
        if (f) {
            fclose(f);
            char berr[256];
            if (its_modelmon_baseline_load(s->mm, s->baseline_path, berr, sizeof berr) < 0)
                its_logw("app", camera, "model baseline %s not used (a new one is captured): %s",
                         s->baseline_path, berr);
            else
                its_logi("app", camera, "model baseline read from %s", s->baseline_path);
        }
    }
    if (rc == 0 && o && o->evidence)
        evidence_kinds(s, &sc, o->evidence_events);
    if (rc == 0) {
        s->evidence = o && s->ev_kinds ? o->evidence : NULL;
        memcpy(s->lines, sc.lines, sizeof s->lines);
        s->n_lines = sc.n_lines;
        for (int i = 0; i < sc.n_lines; i++)
            snprintf(s->line_names[i], sizeof s->line_names[i], "%s", sc.lines[i].name);
        s->reg = o ? o->metrics : NULL;
    }
    if (rc == 0) {
        s->luma = its_malloc(ITS_MOD_APP, (size_t)LUMA_MAX_W * LUMA_MAX_H);
        s->json = its_malloc(ITS_MOD_APP, REPORT_JSON);
        if (!s->luma || !s->json)
            rc = ITS_ENOMEM;
    }
    if (rc < 0) {
        if (rc == ITS_ENOMEM)
            snprintf(err, errlen, "out of memory");
        cam_close(s);
        return rc;
    }
    s->scene = sc;
    if (hc) {
        s->ctx = hc;
        pthread_mutex_lock(&hc->mu);
        s->next = hc->cams;
        hc->cams = s;
        pthread_mutex_unlock(&hc->mu);
    }
    s->window_ns = (int64_t)((o && o->window_s > 0 ? o->window_s : ITS_APP_WINDOW_S) * 1e9);
    uint64_t wall = its_wall_ns();
    s->wall_offset_ns = (int64_t)wall - (int64_t)its_now_ns();
    snprintf(s->id_prefix, sizeof s->id_prefix, "%s-%llu", s->id,
             (unsigned long long)(wall / 1000));
    s->image_every_ns = o && o->quality_image_fps > 0 ? (int64_t)(1e9 / o->quality_image_fps) : 0;
    if (hc && hc->ckpt_load && hc->ckpt_save) {
        ckpt_restore(s);
        s->ckpt = 1;
    }
    *state = s;
    return 0;
}

/* Wall-clock microseconds of a monotonic its_now_ns() time. */
static int64_t wall_us(const cam_state *s, uint64_t mono_ns)
{
    return ((int64_t)mono_ns + s->wall_offset_ns) / 1000;
}

static void send(cam_state *s, its_json *w, its_msg_type type, its_emit_fn emit, void *ectx)
{
    int n = its_json_finish(w);
    if (n < 0) {
        its_logw("app", s->id, "message of %zu bytes and more dropped: %s", w->len,
                 its_strerror(n));
        return;
    }
    emit(ectx, type, w->buf, (size_t)n);
}

/* Does this event keep evidence? Its first message does, when its kind (and, for a line
 * crossing, its traffic class) is configured. */
static int wants_evidence(const cam_state *s, const its_event *e)
{
    if (!s->evidence || !(s->ev_kinds >> e->type & 1u) || e->phase == ITS_PHASE_UPDATE ||
        e->phase == ITS_PHASE_END)
        return 0;
    return e->type != ITS_EV_LINE_CROSSING || (e->tclass >= 0 && (s->ev_classes >> e->tclass & 1u));
}

/* The event's snapshot (its frame, the boxes, its track in red, the counting lines) and its
 * clip; the links into snap_url and clip_url ("" when none). Allocates (an image, a JPEG) per
 * event, never per frame. */
static void capture(cam_state *s, const its_frame *f, const its_event *e, const char *id,
                    char *snap_url, char *clip_url, size_t len)
{
    snap_url[0] = clip_url[0] = 0;
    its_image img = {0};
    uint8_t *jpeg = NULL;
    size_t jlen = 0;
    char err[256];
    if (f->data && its_image_alloc(&img, f->width, f->height, f->pixfmt) == 0) {
        for (int y = 0; y < f->height; y++)
            memcpy(img.data + (size_t)y * img.stride, f->data + (size_t)y * (size_t)f->stride,
                   (size_t)f->width * 3);
        int side = f->width > f->height ? f->width : f->height, t = side / 400 + 1;
        static const uint8_t green[3] = {72, 249, 10}, red[3] = {255, 40, 40},
                             yellow[3] = {255, 220, 0};
        for (int i = 0; i < s->n_lines; i++)
            its_image_draw_line(&img, (int)s->lines[i].a.x, (int)s->lines[i].a.y,
                                (int)s->lines[i].b.x, (int)s->lines[i].b.y, t + 1, yellow);
        for (int i = 0; i < f->n_dets; i++) {
            const its_det *d = &f->dets[i];
            int mine = e->track_id && d->track_id == (int)e->track_id;
            its_image_draw_box(&img, (int)d->x1, (int)d->y1, (int)d->x2, (int)d->y2,
                               mine ? 2 * t + 1 : t, mine ? red : green);
        }
        if (its_image_encode_jpeg(&img, 85, &jpeg, &jlen, err, sizeof err) < 0)
            its_logw("app", s->id, "event %s: no snapshot: %s", id, err);
        its_image_free(&img);
    }
    /* what the event list shows: the event message's kind, class and place (its names) */
    its_evidence_record rec = {.ts_us = wall_us(s, f->ts_ns[ITS_TS_CAPTURE])};
    snprintf(rec.id, sizeof rec.id, "%.159s", id); /* ids are at most 117 characters */
    snprintf(rec.camera, sizeof rec.camera, "%s", s->id);
    snprintf(rec.kind, sizeof rec.kind, "%s", its_event_type_name(e->type));
    if (e->type != ITS_EV_QUEUE)
        snprintf(rec.cls, sizeof rec.cls, "%s", its_class_group_name(e->group));
    const its_scene *sc = &s->scene; /* written by this thread only */
    const char *key = NULL, *place = NULL;
    if (e->type == ITS_EV_LINE_CROSSING && e->index >= 0 && e->index < sc->n_lines) {
        key = "line";
        place = sc->lines[e->index].name;
        rec.direction = e->direction > 0 ? 1 : -1;
    } else if (e->type == ITS_EV_ZONE_PRESENCE && e->index >= 0 && e->index < sc->n_zones) {
        key = "zone";
        place = sc->zones[e->index].name;
    } else if (e->type != ITS_EV_LINE_CROSSING && e->type != ITS_EV_ZONE_PRESENCE &&
               e->index >= 0 && e->index < sc->n_lanes) {
        key = "lane";
        place = sc->lanes[e->index].name;
    }
    if (key) {
        snprintf(rec.place_key, sizeof rec.place_key, "%s", key);
        snprintf(rec.place, sizeof rec.place, "%s", place);
    }
    int clip = 0;
    if (its_evidence_capture(s->evidence, &rec, f->pts_ns, jpeg, jlen, &clip) < 0)
        its_logw("app", s->id, "event %s: evidence not kept in full", id);
    else if (jpeg)
        snprintf(snap_url, len, "/v1/events/%s/snapshot.jpg", id);
    if (clip)
        snprintf(clip_url, len, "/v1/events/%s/clip.mp4", id);
    its_free(jpeg);
}

/* Events happen in the frame that shows them: their time is the frame's capture time. */
static void emit_events(cam_state *s, const its_frame *f, its_emit_fn emit, void *ectx)
{
    const its_analytics_frame *r = s->last;
    for (int i = 0; r && i < r->n_events; i++) {
        its_json w;
        its_json_init(&w, s->json, REPORT_JSON);
        const its_event *e = &r->events[i];
        char snap[256] = "", clip[256] = "";
        if (wants_evidence(s, e)) {
            char id[200];
            snprintf(id, sizeof id, "%s-%llu", s->id_prefix, (unsigned long long)e->seq);
            capture(s, f, e, id, snap, clip, sizeof snap);
        }
        its_analytics_event_message_links(s->an, e, s->id, s->id_prefix,
                                          wall_us(s, f->ts_ns[ITS_TS_CAPTURE]), f->seq,
                                          snap[0] ? snap : NULL, clip[0] ? clip : NULL, &w);
        send(s, &w, ITS_MSG_EVENT, emit, ectx);
        s->events++;
        if (s->reg && e->type == ITS_EV_LINE_CROSSING && e->group >= 0 &&
            e->group < ITS_CLS_COUNT) {
            int d = e->direction > 0 ? 0 : 1;
            if (!s->vehicles[e->group][d]) /* once per class and direction, then lock-free */
                s->vehicles[e->group][d] = its_metrics_series_v(
                    its_metrics_std(s->reg, ITS_M_VEHICLE_COUNT), s->id,
                    its_class_group_name(e->group), d == 0 ? "positive" : "negative");
            its_metric_inc(s->vehicles[e->group][d]);
        }
    }
}

/* SPEC's predictions_short / predictions_long: per counting line, the Holt forecast of the
 * mean flow over the next 15 or 60 minutes and its mean absolute error so far. */
static void emit_predictions(cam_state *s, const its_analytics_report *rep, int64_t now_us,
                             uint64_t frame, int long_term, its_emit_fn emit, void *ectx)
{
    its_json w;
    its_json_init(&w, s->json, REPORT_JSON);
    its_json_msg_begin(&w, long_term ? "predictions_long" : "predictions_short", s->id, now_us,
                       frame);
    its_json_kint(&w, "horizon_min", long_term ? 60 : 15);
    its_json_key(&w, "lines");
    its_json_arr_begin(&w);
    for (int i = 0; i < s->n_lines; i++) {
        const its_line_stats *l = &rep->lines[i];
        its_json_obj_begin(&w);
        its_json_kstr(&w, "line", s->line_names[i]);
        its_json_knum(&w, "flow_vph", long_term ? l->forecast60_vph : l->forecast15_vph);
        its_json_knum(&w, "mae_vph", long_term ? l->forecast_mae60_vph : l->forecast_mae15_vph);
        its_json_kuint(&w, "minutes", l->forecast_minutes);
        its_json_obj_end(&w);
    }
    its_json_arr_end(&w);
    its_json_obj_end(&w);
    send(s, &w, long_term ? ITS_MSG_CACHE_PRED_LONG : ITS_MSG_CACHE_PRED_SHORT, emit, ectx);
}

/* SPEC's quality_scores: the camera's latest quality breakdown (ratios in [0, 1]). */
static void emit_quality(cam_state *s, int64_t now_us, uint64_t frame, its_emit_fn emit, void *ectx)
{
    its_quality_score q;
    its_quality_get(s->q, &q);
    if (!q.frames)
        return;
    its_json w;
    its_json_init(&w, s->json, REPORT_JSON);
    its_json_msg_begin(&w, "quality", s->id, now_us, frame);
    its_json_knum(&w, "frame_score", q.frame_score);
    its_json_knum(&w, "camera_score", q.camera_score);
    its_json_knum(&w, "image_score", q.image_score);
    its_json_knum(&w, "detection_score", q.det_score);
    its_json_knum(&w, "temporal_score", q.temporal_score);
    its_json_kbool(&w, "frozen", q.frozen);
    its_json_kbool(&w, "covered", q.covered);
    its_json_kuint(&w, "frames", q.frames);
    its_json_obj_end(&w);
    send(s, &w, ITS_MSG_CACHE_QUALITY, emit, ectx);
}

/* The baseline, once captured: into its file (when persisted) and SPEC's model_baselines. */
static void emit_baseline(cam_state *s, int64_t now_us, uint64_t frame, its_emit_fn emit,
                          void *ectx)
{
    if (s->baseline_path[0]) {
        char err[256];
        FILE *f = fopen(s->baseline_path, "r");
        if (f) {
            fclose(f); /* read at open: it is this baseline */
        } else if (its_modelmon_baseline_save(s->mm, s->baseline_path, err, sizeof err) < 0) {
            its_logw("app", s->id, "model baseline not saved: %s", err);
        } else {
            its_logi("app", s->id, "model baseline written to %s", s->baseline_path);
        }
    }
    its_json w;
    its_json_init(&w, s->json, REPORT_JSON);
    its_json_msg_begin(&w, "model_baseline", s->id, now_us, frame);
    its_json_kstr(&w, "model", s->model);
    its_json_key(&w, "features");
    its_json_obj_begin(&w);
    for (int i = 0; i < ITS_MM_FEATURES; i++) {
        its_mm_hist h;
        its_modelmon_hist(s->mm, (its_mm_feature)i, 1, &h);
        its_json_key(&w, mm_feature_names[i]);
        its_json_obj_begin(&w);
        its_json_kuint(&w, "n", h.n);
        its_json_key(&w, "bins");
        its_json_arr_begin(&w);
        for (int b = 0; b < h.nbins; b++)
            its_json_uint(&w, h.bins[b]);
        its_json_arr_end(&w);
        its_json_obj_end(&w);
    }
    its_json_obj_end(&w);
    its_json_obj_end(&w);
    send(s, &w, ITS_MSG_CACHE_BASELINE, emit, ectx);
}

/* The line totals now (rep NULL: zero) as the newest snapshot. */
static void snapshot(cam_state *s, int64_t ts, const its_analytics_report *rep)
{
    int k = (s->snap_head + s->snap_n) % HOUR_SNAPS;
    if (s->snap_n == HOUR_SNAPS)
        s->snap_head = (s->snap_head + 1) % HOUR_SNAPS;
    else
        s->snap_n++;
    s->snap_ts[k] = ts;
    for (int i = 0; i < s->n_lines; i++) {
        if (rep)
            memcpy(s->snap[k][i], rep->lines[i].total, sizeof s->snap[k][i]);
        else
            memset(s->snap[k][i], 0, sizeof s->snap[k][i]);
    }
}

/* The crossings of the last hour of stream time (since the start, in the first hour). */
static void emit_hour(cam_state *s, const its_analytics_report *rep, int64_t ts, int64_t now_us,
                      uint64_t frame, its_emit_fn emit, void *ectx)
{
    if (ts >= s->next_snap_ns) {
        snapshot(s, ts, rep);
        s->next_snap_ns = ts + HOUR_SNAP_NS;
    }
    /* the newest snapshot an hour old or more, else the oldest (the start) */
    int base = s->snap_head;
    for (int j = s->snap_n - 1; j >= 0; j--) {
        int k = (s->snap_head + j) % HOUR_SNAPS;
        if (s->snap_ts[k] <= ts - HOUR_NS) {
            base = k;
            break;
        }
    }
    double span_s = (double)(ts - s->snap_ts[base]) / 1e9;
    its_json w;
    its_json_init(&w, s->json, REPORT_JSON);
    its_json_msg_begin(&w, "window_60m", s->id, now_us, frame);
    its_json_kfixed(&w, "span_s", span_s, 3);
    its_json_key(&w, "lines");
    its_json_arr_begin(&w);
    for (int i = 0; i < s->n_lines; i++) {
        uint64_t vehicles = 0;
        its_json_obj_begin(&w);
        its_json_kstr(&w, "name", s->line_names[i]);
        its_json_key(&w, "counts");
        its_json_obj_begin(&w);
        for (int g = 0; g < ITS_CLS_COUNT; g++) {
            uint32_t d[2];
            for (int k = 0; k < 2; k++)
                d[k] = rep->lines[i].total[g][k] - s->snap[base][i][g][k];
            if (g <= ITS_CLS_MOTORCYCLE) /* vehicles, as in the windows */
                vehicles += (uint64_t)d[0] + d[1];
            its_json_key(&w, its_class_group_name(g));
            its_json_arr_begin(&w);
            its_json_uint(&w, d[0]);
            its_json_uint(&w, d[1]);
            its_json_arr_end(&w);
        }
        its_json_obj_end(&w);
        its_json_kuint(&w, "vehicles", vehicles);
        its_json_knum(&w, "flow_vph", span_s > 0 ? (double)vehicles * 3600.0 / span_s : NAN);
        its_json_obj_end(&w);
    }
    its_json_arr_end(&w);
    its_json_obj_end(&w);
    send(s, &w, ITS_MSG_CACHE_WINDOW_60M, emit, ectx);
}

/* The window report and the model metrics, at the end of a window. */
static void emit_window(cam_state *s, const its_frame *f, its_emit_fn emit, void *ectx)
{
    its_analytics_report rep;
    int64_t now_us = wall_us(s, f->ts_ns[ITS_TS_CAPTURE]);
    its_json w;
    if (its_analytics_get_report(s->an, &rep) == 0) {
        its_json_init(&w, s->json, REPORT_JSON);
        its_analytics_window_message(s->an, &rep, s->id, now_us, f->seq, &w);
        send(s, &w, ITS_MSG_WINDOW, emit, ectx);
        s->windows++;
        emit_hour(s, &rep, f->pts_ns, now_us, f->seq, emit, ectx);
        if (s->n_lines) {
            /* a series only where there is a counting line to measure flow at */
            double flow = 0;
            for (int i = 0; i < s->n_lines; i++)
                flow += rep.lines[i].win[0].flow_vph;
            if (!s->flow)
                s->flow = its_metrics_series_v(its_metrics_std(s->reg, ITS_M_FLOW_RATE), s->id);
            its_metric_set(s->flow, flow);
            emit_predictions(s, &rep, now_us, f->seq, 0, emit, ectx);
            emit_predictions(s, &rep, now_us, f->seq, 1, emit, ectx);
        }
    }
    emit_quality(s, now_us, f->seq, emit, ectx);
    its_modelmon_report mr;
    if (its_modelmon_get_report(s->mm, &mr) == 0) {
        its_json_init(&w, s->json, REPORT_JSON);
        its_json_msg_begin(&w, "drift", s->id, (int64_t)(its_wall_ns() / 1000), f->seq);
        its_json_key(&w, "report");
        its_modelmon_report_write(&mr, &w);
        its_json_obj_end(&w);
        send(s, &w, ITS_MSG_DRIFT, emit, ectx);
        /* a series once a feature has enough samples on both sides to be measured */
        for (int i = 0; i < ITS_MM_FEATURES; i++) {
            if (!mr.drift[i].enough || !isfinite(mr.drift[i].psi))
                continue;
            if (!s->drift[i])
                s->drift[i] = its_metrics_series_v(its_metrics_std(s->reg, ITS_M_DRIFT), s->id,
                                                   s->model, mm_feature_names[i]);
            its_metric_set(s->drift[i], mr.drift[i].psi);
        }
        if (mr.baseline_ready && !s->baseline_published) {
            s->baseline_published = 1;
            emit_baseline(s, now_us, f->seq, emit, ectx);
        }
    }
}

/* A scene set by another thread, from this frame on (docs/service.md, "Scenes"). */
static void take_scene(cam_state *s)
{
    pthread_mutex_lock(&s->ctx->mu);
    its_scene *sc = s->pending;
    s->pending = NULL;
    atomic_store(&s->has_pending, 0);
    pthread_mutex_unlock(&s->ctx->mu);
    if (!sc)
        return;
    int map[ITS_SCENE_MAX_LINES];
    if (its_analytics_set_scene(s->an, sc, map) < 0) { /* validated by the setter already */
        its_logw("app", s->id, "new scene refused by the analytics");
        its_free(sc);
        return;
    }
    /* the 60-minute record's snapshots follow the lines; a new line starts at zero */
    for (int k = 0; k < HOUR_SNAPS; k++) {
        uint32_t old[ITS_SCENE_MAX_LINES][ITS_CLS_COUNT][2];
        memcpy(old, s->snap[k], sizeof old);
        memset(s->snap[k], 0, sizeof s->snap[k]);
        for (int i = 0; i < sc->n_lines; i++)
            if (map[i] >= 0)
                memcpy(s->snap[k][i], old[map[i]], sizeof s->snap[k][i]);
    }
    s->n_lines = sc->n_lines;
    memcpy(s->lines, sc->lines, sizeof s->lines); /* the evidence snapshots draw these */
    for (int i = 0; i < sc->n_lines; i++)
        snprintf(s->line_names[i], sizeof s->line_names[i], "%s", sc->lines[i].name);
    int kept = 0;
    for (int i = 0; i < sc->n_lines; i++)
        kept += map[i] >= 0;
    pthread_mutex_lock(&s->ctx->mu);
    s->scene = *sc;
    pthread_mutex_unlock(&s->ctx->mu);
    its_logi("app", s->id, "scene applied: %d lines (%d continued), %d zones, %d lanes",
             sc->n_lines, kept, sc->n_zones, sc->n_lanes);
    its_free(sc);
}

/* The analytics report now, as JSON for another thread (its_app_hooks_live_report): written
 * only when one was asked for since the last. */
static void live_report(cam_state *s, const its_frame *f)
{
    its_analytics_report rep;
    if (its_analytics_get_report(s->an, &rep) < 0)
        return;
    its_json w;
    its_json_init(&w, s->json, REPORT_JSON);
    its_json_msg_begin(&w, "live", s->id, wall_us(s, f->ts_ns[ITS_TS_CAPTURE]), f->seq);
    its_json_key(&w, "report");
    its_analytics_report_write(s->an, &rep, &w);
    its_json_obj_end(&w);
    int n = its_json_finish(&w);
    if (n < 0)
        return;
    pthread_mutex_lock(&s->ctx->mu);
    if ((size_t)n + 1 > s->report_cap) {
        char *r = its_realloc(ITS_MOD_APP, s->report, (size_t)n + 1);
        if (!r) {
            pthread_mutex_unlock(&s->ctx->mu);
            return;
        }
        s->report = r;
        s->report_cap = (size_t)n + 1;
    }
    memcpy(s->report, s->json, (size_t)n);
    s->report[n] = 0;
    s->report_len = (size_t)n;
    s->report_at = its_now_ns();
    atomic_store(&s->want_report, 0);
    pthread_cond_broadcast(&s->ctx->cv);
    pthread_mutex_unlock(&s->ctx->mu);
}

static void cam_analytics(void *state, its_frame *f, its_emit_fn emit, void *ectx)
{
    cam_state *s = state;
    if (atomic_load_explicit(&s->has_pending, memory_order_relaxed))
        take_scene(s);
    int n = f->n_dets;
    /* quality and model metrics read s->df after this, for the same frame */
    s->df = (its_det_frame){.dets = f->dets,
                            .n = n,
                            .width_px = f->width,
                            .height_px = f->height,
                            .ts_ns = f->pts_ns, /* media time: true speeds at any pace */
                            .frame_no = f->seq};
    s->last = NULL;
    its_det_frame all = s->df; /* the tracker also takes the weak detections */
    all.n = n + f->n_weak;
    if (its_analytics_push(s->an, &all, &s->last) < 0) {
        s->last = NULL;
        return;
    }
    for (int i = 0; i < s->last->n_tracks; i++) {
        const its_track *t = &s->last->tracks[i];
        if (t->det_index >= 0 && t->det_index < n)
            f->dets[t->det_index].track_id = (int)t->id;
    }
    emit_events(s, f, emit, ectx);
    if (s->counts)
        its_counts_frame(s->counts, (int64_t)f->ts_ns[ITS_TS_CAPTURE] + s->wall_offset_ns,
                         s->last->events, s->last->n_events);
    int64_t ts = f->pts_ns;
    if (!s->next_window_ns) {
        s->next_window_ns = ts + s->window_ns;
        /* the start of the first hour: nothing counted yet, or what a checkpoint brought
         * (the 60-minute record counts from the move) */
        snapshot(s, ts, NULL);
        if (s->restored)
            memcpy(s->snap[(s->snap_head + s->snap_n - 1) % HOUR_SNAPS], s->ck_totals,
                   sizeof s->ck_totals);
        s->next_snap_ns = ts + HOUR_SNAP_NS;
    } else if (ts >= s->next_window_ns) {
        emit_window(s, f, emit, ectx);
        ckpt_save(s, "window");
        s->next_window_ns = ts + s->window_ns;
    }
    if (s->ctx && atomic_load_explicit(&s->want_report, memory_order_relaxed))
        live_report(s, f);
}

/* Luma at half resolution (2x2 box), BT.601 weights, into s->luma. */
static void luma_half(cam_state *s, const its_frame *f, int *w, int *h)
{
    int ow = ITS_MIN(f->width / 2, LUMA_MAX_W), oh = ITS_MIN(f->height / 2, LUMA_MAX_H);
    int ri = f->pixfmt == ITS_PIX_BGR24 ? 2 : 0, bi = 2 - ri;
    for (int y = 0; y < oh; y++) {
        const uint8_t *r0 = f->data + (size_t)(2 * y) * (size_t)f->stride;
        const uint8_t *r1 = r0 + f->stride;
        uint8_t *out = s->luma + (size_t)y * (size_t)ow;
        for (int x = 0; x < ow; x++) {
            const uint8_t *a = r0 + 6 * x, *b = r1 + 6 * x;
            unsigned r = (unsigned)a[ri] + a[ri + 3] + b[ri] + b[ri + 3];
            unsigned g = (unsigned)a[1] + a[4] + b[1] + b[4];
            unsigned bl = (unsigned)a[bi] + a[bi + 3] + b[bi] + b[bi + 3];
            out[x] = (uint8_t)((77 * r + 150 * g + 29 * bl) >> 10);
        }
    }
    *w = ow;
    *h = oh;
}

static void cam_quality(void *state, its_frame *f)
{
    cam_state *s = state;
    int w, h;
    its_quality_image img = {0};
    /* the picture (luma, sharpness, exposure, frozen) is measured at quality.image_fps; the
     * frames between reuse that measurement, their detection and temporal parts are fresh */
    int due = !s->image_every_ns || f->pts_ns >= s->next_image_ns ||
              f->pts_ns + s->image_every_ns < s->next_image_ns; /* clip looped: time went back */
    if (due && f->width >= 16 && f->height >= 16) {
        luma_half(s, f, &w, &h);
        img = (its_quality_image){s->luma, w, h, w, f->pts_ns};
        s->next_image_ns = f->pts_ns + s->image_every_ns;
    }
    its_quality_score sc;
    const its_track *tracks = s->last ? s->last->tracks : NULL;
    int nt = s->last ? s->last->n_tracks : 0;
    if (its_quality_update(s->q, img.luma ? &img : NULL, &s->df, tracks, nt, &sc) == 0 &&
        isfinite(sc.frame_score))
        f->quality = (float)ITS_CLAMP(sc.frame_score, 0.0, 1.0);
}

static void cam_modelmon(void *state, its_frame *f)
{
    cam_state *s = state;
    its_modelmon_observe(s->mm, &s->df);
    uint64_t ns;
    if (its_stage_span_ns(ITS_STAGE_INFER, f->ts_ns, &ns) && ns > 0)
        its_modelmon_record_inference(s->mm, (int64_t)f->ts_ns[ITS_TS_INFER], (int64_t)ns, 1);
}

static void hooks_release(void *ctx)
{
    hooks_ctx *hc = ctx;
    if (!hc)
        return;
    pthread_mutex_destroy(&hc->mu);
    pthread_cond_destroy(&hc->cv);
    its_free(hc);
}

static cam_state *find_cam(hooks_ctx *hc, const char *camera)
{
    for (cam_state *c = hc->cams; c; c = c->next)
        if (!strcmp(c->id, camera))
            return c;
    return NULL;
}

int its_app_hooks_scene_get(const its_camera_hooks *h, const char *camera, its_scene *out,
                            char *path, size_t pathlen)
{
    if (!h || h->open != cam_open || !h->ctx)
        return ITS_EUNSUPPORTED;
    hooks_ctx *hc = h->ctx;
    pthread_mutex_lock(&hc->mu);
    cam_state *c = find_cam(hc, camera);
    if (c) {
        if (out)
            *out = c->pending ? *c->pending : c->scene; /* what applies from the next frame */
        if (path)
            snprintf(path, pathlen, "%s", c->scene_path);
    }
    pthread_mutex_unlock(&hc->mu);
    return c ? 0 : ITS_ENOENT;
}

int its_app_hooks_scene_set(const its_camera_hooks *h, const char *camera, const its_scene *sc,
                            const char *path)
{
    if (!h || h->open != cam_open || !h->ctx)
        return ITS_EUNSUPPORTED;
    hooks_ctx *hc = h->ctx;
    its_scene *copy = its_malloc(ITS_MOD_APP, sizeof *copy);
    if (!copy)
        return ITS_ENOMEM;
    *copy = *sc;
    if (its_scene_validate(copy, camera, NULL, 0) < 0) {
        its_free(copy);
        return ITS_EINVAL;
    }
    pthread_mutex_lock(&hc->mu);
    cam_state *c = find_cam(hc, camera);
    if (c) {
        its_free(c->pending);
        c->pending = copy;
        copy = NULL;
        if (path)
            snprintf(c->scene_path, sizeof c->scene_path, "%s", path);
        atomic_store(&c->has_pending, 1);
    }
    pthread_mutex_unlock(&hc->mu);
    its_free(copy);
    return c ? 0 : ITS_ENOENT;
}

int its_app_hooks_live_report(const its_camera_hooks *h, const char *camera, uint64_t max_age_ns,
                              uint64_t wait_ns, char **json, size_t *len)
{
    if (!h || h->open != cam_open || !h->ctx)
        return ITS_EUNSUPPORTED;
    hooks_ctx *hc = h->ctx;
    uint64_t asked = its_now_ns();
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    uint64_t t = (uint64_t)until.tv_nsec + wait_ns;
    until.tv_sec += (time_t)(t / ITS_NS_PER_S);
    until.tv_nsec = (long)(t % ITS_NS_PER_S);
    pthread_mutex_lock(&hc->mu);
    cam_state *c = find_cam(hc, camera);
    int rc = c ? 0 : ITS_ENOENT;
    if (c) {
        atomic_store(&c->want_report, 1); /* the next request finds a newer one */
        if (!c->report_at || asked - c->report_at > max_age_ns) {
            /* wait for the worker (the camera may be removed meanwhile: look it up again) */
            while ((c = find_cam(hc, camera)) && c->report_at < asked &&
                   pthread_cond_timedwait(&hc->cv, &hc->mu, &until) == 0) {
            }
            c = find_cam(hc, camera); /* the wait may have timed out on a camera since gone */
        }
        if (!c)
            rc = ITS_ENOENT;
        else if (!c->report_at)
            rc = ITS_EAGAIN;
        else if (!(*json = its_malloc(ITS_MOD_APP, c->report_len + 1)))
            rc = ITS_ENOMEM;
        else {
            memcpy(*json, c->report, c->report_len + 1);
            *len = c->report_len;
        }
    }
    pthread_mutex_unlock(&hc->mu);
    return rc;
}

const char *its_app_hooks_scene_dir(const its_camera_hooks *h)
{
    if (!h || h->open != cam_open || !h->ctx)
        return NULL;
    const hooks_ctx *hc = h->ctx;
    return hc->o.scene_dir && *hc->o.scene_dir ? hc->o.scene_dir : NULL;
}

int its_app_hooks_set_checkpoints(const its_camera_hooks *h, its_app_ckpt_save_fn save,
                                  its_app_ckpt_load_fn load, void *ud)
{
    if (!h || h->open != cam_open || !h->ctx)
        return ITS_EUNSUPPORTED;
    hooks_ctx *hc = h->ctx;
    pthread_mutex_lock(&hc->mu);
    hc->ckpt_save = save;
    hc->ckpt_load = load;
    hc->ckpt_ud = ud;
    pthread_mutex_unlock(&hc->mu);
    return 0;
}

int its_app_hooks_checkpoint_all(const its_camera_hooks *h)
{
    if (!h || h->open != cam_open || !h->ctx)
        return 0;
    hooks_ctx *hc = h->ctx;
    int n = 0;
    pthread_mutex_lock(&hc->mu);
    for (cam_state *s = hc->cams; s; s = s->next)
        if (s->ckpt) {
            ckpt_save(s, "stop");
            s->ckpt = 0;
            n++;
        }
    pthread_mutex_unlock(&hc->mu);
    return n;
}

int its_app_hooks_is_open(const its_camera_hooks *h, const char *camera)
{
    if (!h || h->open != cam_open || !h->ctx || !camera)
        return 0;
    hooks_ctx *hc = h->ctx;
    int open = 0;
    pthread_mutex_lock(&hc->mu);
    for (cam_state *s = hc->cams; s && !open; s = s->next)
        open = !strcmp(s->id, camera);
    pthread_mutex_unlock(&hc->mu);
    return open;
}

int its_app_hooks(const its_app_hooks_opts *o, its_camera_hooks *out)
{
    hooks_ctx *hc = its_calloc(ITS_MOD_APP, 1, sizeof *hc);
    if (!hc)
        return ITS_ENOMEM;
    pthread_mutex_init(&hc->mu, NULL);
    pthread_cond_init(&hc->cv, NULL);
    its_app_hooks_opts *copy = &hc->o;
    if (o)
        *copy = *o;
    copy->model_name = NULL;
    if (o && o->model_name)
        snprintf(copy->model_buf, sizeof copy->model_buf, "%s", o->model_name);
    copy->model_name = copy->model_buf;
    copy->evidence_events = NULL;
    if (o && o->evidence_events) {
        snprintf(copy->evidence_events_buf, sizeof copy->evidence_events_buf, "%s",
                 o->evidence_events);
        copy->evidence_events = copy->evidence_events_buf;
    }
    copy->baseline_dir = NULL;
    if (o && o->baseline_dir && *o->baseline_dir) {
        snprintf(copy->baseline_buf, sizeof copy->baseline_buf, "%s", o->baseline_dir);
        copy->baseline_dir = copy->baseline_buf;
    }
    copy->scene_dir = NULL;
    if (o && o->scene_dir && *o->scene_dir) {
        snprintf(copy->scene_dir_buf, sizeof copy->scene_dir_buf, "%s", o->scene_dir);
        copy->scene_dir = copy->scene_dir_buf;
    }
    *out = (its_camera_hooks){.open = cam_open,
                              .quality = cam_quality,
                              .modelmon = cam_modelmon,
                              .analytics = cam_analytics,
                              .close = cam_close,
                              .release = hooks_release,
                              .ctx = hc};
    return 0;
}
