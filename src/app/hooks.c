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
 * {"v":2,"type":"drift",...}. Event ids are "<camera>-<t0>-<n>": t0 is the wall-clock time
 * in microseconds when the camera's analytics started, n the analytics' event number, so ids
 * are unique across restarts and the same through an event's start, updates and end.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "its/analytics.h"
#include "its/app_hooks.h"
#include "its/core.h"
#include "its/modelmon.h"
#include "its/quality.h"
#include "its/stage.h"
#include "its/track.h"

#define LUMA_MAX_W  2048
#define LUMA_MAX_H  2048
#define REPORT_JSON (256 * 1024)

typedef struct cam_state {
    char id[64];
    its_analytics_t *an;
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
} cam_state;

static void cam_close(void *state)
{
    cam_state *s = state;
    if (!s)
        return;
    its_analytics_destroy(s->an);
    its_quality_destroy(s->q);
    its_modelmon_destroy(s->mm);
    its_free(s->luma);
    its_free(s->json);
    its_free(s);
}

static int cam_open(void *ctx, const char *camera, const char *scene, void **state, char *err,
                    size_t errlen)
{
    const its_app_hooks_opts *o = ctx;
    cam_state *s = its_calloc(ITS_MOD_APP, 1, sizeof *s);
    if (!s)
        return ITS_ENOMEM;
    snprintf(s->id, sizeof s->id, "%s", camera);
    its_scene sc;
    int rc = 0;
    if (scene) {
        rc = its_scene_load(scene, &sc, err, errlen);
    } else {
        its_scene_default(&sc);
        snprintf(sc.camera, sizeof sc.camera, "%s", camera);
    }
    if (rc == 0)
        rc = its_analytics_create(&sc, NULL, &s->an);
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
    s->window_ns = (int64_t)((o && o->window_s > 0 ? o->window_s : ITS_APP_WINDOW_S) * 1e9);
    uint64_t wall = its_wall_ns();
    s->wall_offset_ns = (int64_t)wall - (int64_t)its_now_ns();
    snprintf(s->id_prefix, sizeof s->id_prefix, "%s-%llu", s->id,
             (unsigned long long)(wall / 1000));
    s->image_every_ns = o && o->quality_image_fps > 0 ? (int64_t)(1e9 / o->quality_image_fps) : 0;
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

/* Events happen in the frame that shows them: their time is the frame's capture time. */
static void emit_events(cam_state *s, const its_frame *f, its_emit_fn emit, void *ectx)
{
    const its_analytics_frame *r = s->last;
    for (int i = 0; r && i < r->n_events; i++) {
        its_json w;
        its_json_init(&w, s->json, REPORT_JSON);
        its_analytics_event_message(s->an, &r->events[i], s->id, s->id_prefix,
                                    wall_us(s, f->ts_ns[ITS_TS_CAPTURE]), f->seq, &w);
        send(s, &w, ITS_MSG_EVENT, emit, ectx);
        s->events++;
    }
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
    }
    its_modelmon_report mr;
    if (its_modelmon_get_report(s->mm, &mr) == 0) {
        its_json_init(&w, s->json, REPORT_JSON);
        its_json_msg_begin(&w, "drift", s->id, (int64_t)(its_wall_ns() / 1000), f->seq);
        its_json_key(&w, "report");
        its_modelmon_report_write(&mr, &w);
        its_json_obj_end(&w);
        send(s, &w, ITS_MSG_DRIFT, emit, ectx);
    }
}

static void cam_analytics(void *state, its_frame *f, its_emit_fn emit, void *ectx)
{
    cam_state *s = state;
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
    int64_t ts = f->pts_ns;
    if (!s->next_window_ns)
        s->next_window_ns = ts + s->window_ns;
    else if (ts >= s->next_window_ns) {
        emit_window(s, f, emit, ectx);
        s->next_window_ns = ts + s->window_ns;
    }
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

int its_app_hooks(const its_app_hooks_opts *o, its_camera_hooks *out)
{
    its_app_hooks_opts *copy = its_calloc(ITS_MOD_APP, 1, sizeof *copy);
    if (!copy)
        return ITS_ENOMEM;
    if (o)
        *copy = *o;
    copy->model_name = NULL;
    if (o && o->model_name)
        snprintf(copy->model_buf, sizeof copy->model_buf, "%s", o->model_name);
    copy->model_name = copy->model_buf;
    *out = (its_camera_hooks){.open = cam_open,
                              .quality = cam_quality,
                              .modelmon = cam_modelmon,
                              .analytics = cam_analytics,
                              .close = cam_close,
                              .release = its_free,
                              .ctx = copy};
    return 0;
}
