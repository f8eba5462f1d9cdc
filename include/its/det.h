/*
 * its/det.h - the pixel formats and the detection type, shared by C and CUDA C++.
 *
 *     its_det d = {.x1 = 100, .y1 = 50, .x2 = 180, .y2 = 120, .score = 0.9f, .class_id = 2};
 *     float box[4];
 *     its_det_box_norm(&d, 1280, 720, box);   // x1, y1, x2, y2 as fractions of the frame
 *
 * Contract: one detection type everywhere (decoder, engine on the host and in CUDA kernels,
 * tracker, analytics, frames, tools), boxes in source-frame pixels. Boxes become fractions of
 * the frame only where a message is written, through its_det_box_norm. This header holds
 * plain data only (no atomics, no C-only constructs) so that .cu files include it as is;
 * its/frame.h adds the frame built around it.
 */
#ifndef ITS_DET_H
#define ITS_DET_H

#include <stdint.h>

/* Pixel layouts of 8-bit frames and images. */
typedef enum its_pixfmt {
    ITS_PIX_RGB24 = 0, /* packed R, G, B bytes */
    ITS_PIX_BGR24 = 1, /* packed B, G, R bytes (OpenCV order) */
    ITS_PIX_NV12 = 2,  /* Y plane, then interleaved U, V at half resolution (BT.601 limited);
                        * the engine's frames path only */
} its_pixfmt;

/* The detection thresholds every path and tool starts from: the decoder's configuration
 * (its_det_config_init), the engine's frames path, itsd's engine.conf / engine.iou and
 * its-infer. The confidence threshold is SPEC's. Plain literals, so that option tables can
 * also spell them as strings (ITS_STR, its/config.h). */
#define ITS_DET_CONF_DEFAULT 0.5
#define ITS_DET_IOU_DEFAULT  0.45
/* Detections from this score up go to the tracker, those under the confidence threshold only
 * there (ByteTrack's low threshold: weak detections continue tracks). */
#define ITS_DET_TRACK_CONF_DEFAULT 0.1

/* One detection. */
typedef struct its_det {
    float x1, y1, x2, y2; /* box corners in source-frame pixels, clipped to the frame */
    float score;          /* [0, 1] */
    int32_t class_id;     /* the model's class (COCO: 0 person, 2 car, 5 bus, 7 truck...) */
    int32_t track_id;     /* the tracker's id once tracked; 0: not tracked */
} its_det;

/* The box of d as fractions of a w x h frame (x1, y1, x2, y2, each clamped to [0, 1]), as
 * messages carry it. w and h > 0. */
static inline void its_det_box_norm(const its_det *d, int w, int h, float out[4])
{
    float sx = 1.0f / (float)w, sy = 1.0f / (float)h;
    float v[4] = {d->x1 * sx, d->y1 * sy, d->x2 * sx, d->y2 * sy};
    for (int i = 0; i < 4; i++)
        out[i] = v[i] < 0.0f ? 0.0f : v[i] > 1.0f ? 1.0f : v[i];
}

#endif
