/*
 * its/app_hooks.h - itsd's per-camera stages for the pipeline (its_camera_hooks): ByteTrack
 * tracking + traffic analytics with the camera's scene, quality score, model metrics.
 *
 *     its_app_hooks_opts ho = {.model_name = "yolo11n", .window_s = 60};
 *     its_pipeline_opts o;  ...
 *     if (its_app_hooks(&ho, &o.hooks) < 0) ...   // ITS_ENOMEM
 *
 * Contract: the hooks run on the camera's analytics worker only (no locks). Per camera they
 * allocate at open (first frame) and never per frame. Track ids go into the frame's
 * detections, the frame score into frame->quality; events and analytics windows are
 * published as their own messages ("type": "event" / "window").
 */
#ifndef ITS_APP_HOOKS_H
#define ITS_APP_HOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "its/analytics.h"
#include "its/pipeline.h"

/* Seconds between analytics window messages when window_s is 0, and itsd's default. */
#define ITS_APP_WINDOW_S 60

typedef struct its_app_hooks_opts {
    const char *model_name;   /* for the model metrics (copied) */
    double window_s;          /* analytics window messages every this many seconds */
    double quality_image_fps; /* picture measurements per camera per second (0: every frame) */
    const char *baseline_dir; /* model-metrics baselines, <dir>/<camera>.baseline (copied);
                                 NULL or "": not persisted */
    its_metrics *metrics;     /* vehicle counts, flow, drift (NULL: none); outlives the hooks */
    const char *scene_dir;    /* scenes saved through the API for cameras without a scene
                                 file, <dir>/<camera>.yaml, read at open (copied); NULL or "":
                                 none */
    char model_buf[64];       /* private */
    char baseline_buf[512];   /* private */
    /* each camera's interval counts go here (its/counts.h; NULL: none); outlives the hooks */
    struct its_counts_store *counts;
    int counts_hours; /* hours of 1-minute buckets kept per camera */
    /* events' snapshots and clips (its/evidence.h; NULL: none); outlives the hooks */
    struct its_evidence_store *evidence;
    const char *evidence_events;   /* the kinds that keep evidence (evidence.events; copied) */
    char evidence_events_buf[256]; /* private */
    char scene_dir_buf[512];       /* private */
} its_app_hooks_opts;

/* Checkpoints of each camera's analytics (its/analytics.h), so that a camera moved to another
 * process continues its counts: load at open, before the first frame; save after every window
 * message and at close. save/load return 0 or an ITS_E* code (save: ITS_EBUSY refused, the
 * camera is no longer held; load: an its_malloc'd text, ITS_ENOENT none); ud outlives the
 * hooks. Set before any camera opens (a cluster sets them before it starts cameras). */
typedef int (*its_app_ckpt_save_fn)(void *ud, const char *camera, const char *json, size_t len);
typedef int (*its_app_ckpt_load_fn)(void *ud, const char *camera, char **json, size_t *len);
int its_app_hooks_set_checkpoints(const its_camera_hooks *h, its_app_ckpt_save_fn save,
                                  its_app_ckpt_load_fn load, void *ud);
/* After the pipeline has stopped (no worker runs): every open camera's checkpoint now (the
 * handover of a graceful stop), none again at close. Returns the cameras saved. */
int its_app_hooks_checkpoint_all(const its_camera_hooks *h);
/* 1 while the camera's analytics are open (from its first frame until its slot is reclaimed
 * and closed), else 0. Any thread. */
int its_app_hooks_is_open(const its_camera_hooks *h, const char *camera);

int its_app_hooks(const its_app_hooks_opts *o, its_camera_hooks *out);

/*
 * Scenes of running cameras, from any thread (the HTTP API). h must be hooks made by
 * its_app_hooks (else ITS_EUNSUPPORTED); a camera is known from its first frame (its analytics
 * open) until it is removed (else ITS_ENOENT).
 * - get: the camera's scene (the one set last, also before it applies) and the file it was
 *   read from or last saved to ("" none) into path.
 * - set: validate sc (ITS_EINVAL) and apply it on the camera's analytics worker before its
 *   next frame (its_analytics_set_scene: unchanged lines keep their counts); path (may be
 *   NULL) becomes the camera's scene file. Saving the file is the caller's.
 * - scene_dir: the directory for cameras without a scene file, or NULL.
 */
int its_app_hooks_scene_get(const its_camera_hooks *h, const char *camera, its_scene *out,
                            char *path, size_t pathlen);
int its_app_hooks_scene_set(const its_camera_hooks *h, const char *camera, const its_scene *sc,
                            const char *path);
const char *its_app_hooks_scene_dir(const its_camera_hooks *h);
/* The camera's analytics report now, a "live" message {"v":2,"type":"live","camera":..,
 * "ts_us":..,"frame":..,"report":{..}} (the report of a window message, docs/messages.md;
 * docs/schema/live.schema.json) into *json (its_malloc'd, NUL-ended). The
 * camera's worker writes one on the frame after it was asked for (never otherwise): the last
 * one is answered when it is at most max_age_ns old, else the next is waited for, up to
 * wait_ns (then the last, or ITS_EAGAIN without one). ITS_ENOENT: not known (as above). */
int its_app_hooks_live_report(const its_camera_hooks *h, const char *camera, uint64_t max_age_ns,
                              uint64_t wait_ns, char **json, size_t *len);

#endif
