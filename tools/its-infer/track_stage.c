/*
 * The --track stage of its-infer: ByteTrack and the scene's analytics (include/its/
 * analytics.h) for each video. It runs before the JSON printer and fills each detection's
 * track id (-1: no confirmed track this frame); at the end of each video it prints one more
 * JSON line, {"source": ..., "analytics": {...}}, with the counts per line and the other
 * analytics. Still images have no time axis: their detections pass with track id -1.
 * With --csv, each video's interval counts (its/counts.h) go into one CSV file (a header, then
 * each video's rows, its path in the camera column) on the clock of the video's media time
 * from --csv-start.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "infer.h"
#include "its/alloc.h"
#include "its/analytics.h"
#include "its/clock.h"
#include "its/counts.h"
#include "its/error.h"
#include "its/json.h"
#include "its/log.h"

#define REPORT_MAX (256 * 1024)

typedef struct track_ctx {
    its_scene scene;
    FILE *out;
    its_analytics_t *a; /* per video, created at its first frame */
    const infer_source *src;
    int64_t last_ts;
    uint64_t last_frame;
    char *json;
    float keep_conf;      /* the stages after this one see detections from here up only */
    its_counts_t *counts; /* per video, with --csv */
    const infer_csv *csv;
    FILE *csv_out;
} track_ctx;

static int track_begin(void *ctx, const infer_source *src)
{
    track_ctx *t = ctx;
    its_analytics_destroy(t->a);
    t->a = NULL;
    its_counts_destroy(t->counts);
    t->counts = NULL;
    t->src = src;
    return 0;
}

static int csv_put(void *ctx, const char *s, size_t n)
{
    return fwrite(s, 1, n, ctx) == n ? 0 : ITS_EIO;
}

/* The tracker needs the stream's real rate (its buffer is in frames): the video's if known. */
static int start(track_ctx *t, const infer_result *r)
{
    its_scene sc = t->scene;
    if (r->src->fps > 0)
        sc.fps = r->src->fps;
    if (sc.width_px && (sc.width_px != r->width || sc.height_px != r->height))
        its_logw("track", r->src->path, "scene is for %dx%d frames, the video is %dx%d",
                 sc.width_px, sc.height_px, r->width, r->height);
    int rc = its_analytics_create(&sc, NULL, &t->a);
    if (rc == 0 && t->csv_out)
        rc = its_counts_create(&sc, r->src->path, ITS_COUNTS_TOOL_BUCKET_S, ITS_COUNTS_TOOL_BUCKETS,
                               &t->counts);
    if (rc < 0)
        its_loge("track", r->src->path, "analytics: %s", its_strerror(rc));
    t->last_ts = INT64_MIN;
    return rc;
}

/* The weak detections were for the tracker: the printer and the drawer get the others. */
static void keep_strong(const track_ctx *t, infer_result *r)
{
    int m = 0;
    for (int i = 0; i < r->n; i++)
        if (r->dets[i].score >= t->keep_conf)
            r->dets[m++] = r->dets[i];
    r->n = m;
}

static int track_frame(void *ctx, infer_result *r)
{
    track_ctx *t = ctx;
    int n = r->n;
    for (int i = 0; i < n; i++)
        r->dets[i].track_id = 0;
    if (!r->src->is_video) {
        keep_strong(t, r);
        return 0;
    }
    if (!t->a) {
        int rc = start(t, r);
        if (rc < 0)
            return rc;
    }
    /* Presentation times drive speeds and windows; a stream without them (or going back)
     * falls back to the frame index at the nominal rate. */
    double fps = r->src->fps > 0 ? r->src->fps : t->scene.fps;
    int64_t ts = r->pts_ns;
    if (ts <= t->last_ts)
        ts = (int64_t)((double)r->frame * 1e9 / fps);
    if (ts <= t->last_ts)
        ts = t->last_ts + 1;
    t->last_ts = ts;
    t->last_frame = (uint64_t)r->frame;
    its_det_frame f = {r->dets, n, r->width, r->height, ts, (uint64_t)r->frame};
    const its_analytics_frame *out;
    int rc = its_analytics_push(t->a, &f, &out);
    if (rc < 0) {
        its_loge("track", r->src->path, "frame %lld: %s", (long long)r->frame, its_strerror(rc));
        keep_strong(t, r);
        return 0; /* one bad frame must not stop the video */
    }
    if (t->counts)
        its_counts_frame(t->counts, t->csv->start_ns + ts, out->events, out->n_events);
    for (int i = 0; i < out->n_tracks; i++) {
        int di = out->tracks[i].det_index;
        if (di >= 0 && di < n)
            r->dets[di].track_id = (int32_t)out->tracks[i].id;
    }
    keep_strong(t, r);
    return 0;
}

static int track_end(void *ctx, const infer_source *src)
{
    track_ctx *t = ctx;
    if (!t->a)
        return 0;
    its_analytics_report rep;
    its_analytics_get_report(t->a, &rep);
    /* the video's analytics: a window message covering the whole video */
    its_json w;
    its_json_init(&w, t->json, REPORT_MAX);
    its_analytics_window_message(t->a, &rep, src->path, (int64_t)(its_wall_ns() / 1000),
                                 t->last_frame, &w);
    int rc = its_json_finish(&w);
    if (rc < 0) {
        its_loge("track", src->path, "analytics report: %s", its_strerror(rc));
    } else {
        fprintf(t->out, "%s\n", t->json);
        fflush(t->out);
    }
    if (t->counts) {
        rc = its_counts_csv(t->counts, INT64_MIN, INT64_MAX, t->csv->interval_s, csv_put,
                            t->csv_out);
        if (rc == 0 && fflush(t->csv_out) != 0)
            rc = ITS_EIO;
        if (rc < 0)
            its_loge("track", src->path, "--csv %s: %s", t->csv->path, its_strerror(rc));
        its_counts_destroy(t->counts);
        t->counts = NULL;
    }
    its_analytics_destroy(t->a);
    t->a = NULL;
    return ferror(t->out) || (t->csv_out && ferror(t->csv_out)) ? ITS_EIO : 0;
}

static void track_destroy(void *ctx)
{
    track_ctx *t = ctx;
    its_analytics_destroy(t->a);
    its_counts_destroy(t->counts);
    if (t->csv_out)
        fclose(t->csv_out);
    its_free(t->json);
    its_free(t);
}

int infer_stage_track(const char *scene_path, float keep_conf, FILE *out, const infer_csv *csv,
                      infer_stage *st)
{
    char err[512];
    track_ctx *t = its_calloc(ITS_MOD_APP, 1, sizeof *t);
    if (!t)
        return ITS_ENOMEM;
    t->json = its_malloc(ITS_MOD_APP, REPORT_MAX);
    int rc = t->json ? its_scene_load(scene_path, &t->scene, err, sizeof err) : ITS_ENOMEM;
    if (rc < 0) {
        fprintf(stderr, "its-infer: %s\n", rc == ITS_ENOMEM ? "out of memory" : err);
        its_free(t->json);
        its_free(t);
        return rc;
    }
    t->out = out;
    t->keep_conf = keep_conf;
    if (csv && csv->path) {
        t->csv = csv;
        t->csv_out = fopen(csv->path, "w");
        if (!t->csv_out || fputs(ITS_COUNTS_HEADER, t->csv_out) < 0) {
            fprintf(stderr, "its-infer: --csv %s: %s\n", csv->path, strerror(errno));
            track_destroy(t);
            return ITS_EIO;
        }
    }
    memset(st, 0, sizeof *st);
    st->name = "track";
    st->begin_source = track_begin;
    st->frame = track_frame;
    st->end_source = track_end;
    st->destroy = track_destroy;
    st->ctx = t;
    return 0;
}
