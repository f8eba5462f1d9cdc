/*
 * its-infer internals: the per-frame pipeline is a list of stages that see every frame's
 * detections in input order. The JSON printer and the --draw writer are stages; --track
 * (analytics) adds one in front of them that sets the detections' track_id, which the printer
 * then prints. Videos are delivered one after another, framed by
 * begin_source/end_source, their frames in order, so per-source state in a stage is enough;
 * still images are independent frames (frame 0, no begin/end) and may share a batch.
 */
#ifndef ITS_INFER_H
#define ITS_INFER_H

#include <stdint.h>
#include <stdio.h>

#include "its/detect.h"
#include "its/media.h"

typedef struct infer_source {
    const char *path; /* as given on the command line */
    int is_video;
    int is_png;       /* images: a PNG file (else JPEG) */
    double fps;       /* videos: nominal rate, 0 if unknown */
    int64_t n_frames; /* videos: frames to come (the container's count, --max-frames), 0 unknown */
} infer_source;

typedef struct infer_result {
    const infer_source *src;
    int64_t frame;  /* 0 for images; frame index for videos */
    int64_t pts_ns; /* videos: presentation time; images: 0 */
    int width, height;
    its_det *dets;
    int n;
    const char *const *labels; /* label of class i (NULL entries allowed), n_labels of them */
    int n_labels;
    const its_image *image; /* the frame's pixels, NULL unless a stage asked for them */
} infer_result;

typedef struct infer_stage {
    const char *name;
    int needs_pixels; /* 1: keep each frame's pixels until the stage saw it */
    int (*begin_source)(void *ctx, const infer_source *src);
    int (*frame)(void *ctx, infer_result *r);
    int (*end_source)(void *ctx, const infer_source *src);
    void (*destroy)(void *ctx);
    void *ctx;
} infer_stage;

/* --csv FILE: interval counts of each video (its/counts.h), on the clock of the video's
 * media time from start_ns (--csv-start; 0: the epoch). */
typedef struct infer_csv {
    const char *path; /* NULL: none */
    int interval_s;   /* --csv-interval (default 900) */
    int64_t start_ns;
} infer_csv;

/* Built-in stages. */
int infer_stage_json(FILE *out, infer_stage *st);
int infer_stage_draw(const char *dir, infer_stage *st);
/* --track --scene FILE: tracker + analytics per video; prints each video's analytics to out. */
/* keep_conf: the detector decodes down to the tracker's low threshold; the stages after this
 * one see detections scoring keep_conf and more only. */
int infer_stage_track(const char *scene_path, float keep_conf, FILE *out, const infer_csv *csv,
                      infer_stage *st);

#endif
