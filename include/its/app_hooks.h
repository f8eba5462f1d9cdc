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
    char model_buf[64];       /* private */
    char baseline_buf[512];   /* private */
    /* each camera's interval counts go here (its/counts.h; NULL: none); outlives the hooks */
    struct its_counts_store *counts;
    int counts_hours; /* hours of 1-minute buckets kept per camera */
    /* events' snapshots and clips (its/evidence.h; NULL: none); outlives the hooks */
    struct its_evidence_store *evidence;
    const char *evidence_events;   /* the kinds that keep evidence (evidence.events; copied) */
    char evidence_events_buf[256]; /* private */
} its_app_hooks_opts;

int its_app_hooks(const its_app_hooks_opts *o, its_camera_hooks *out);

#endif
