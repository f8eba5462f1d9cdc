/*
 * its/track.h - ByteTrack multi-object tracking, one tracker per camera.
 *
 *     its_tracker_params p;
 *     its_tracker_params_default(&p);
 *     its_tracker_t *t;
 *     if (its_tracker_create(&p, &t) < 0)
 *         return ITS_ENOMEM;
 *     for (each frame) {
 *         its_det dets[64];   // from the detector: source pixels, COCO class ids
 *         its_det_frame f = {.dets = dets, .n = n, .width_px = 1280, .height_px = 720,
 *                            .ts_ns = ts, .frame_no = k};
 *         const its_track *tracks;
 *         int n_tracks = its_tracker_update(t, &f, &tracks);   // <0: ITS_E* code
 *         char json[65536];
 *         its_tracks_to_json(&f, tracks, n_tracks, json, sizeof json);
 *     }
 *     its_tracker_destroy(t);
 *
 * Algorithm (ByteTrack, Zhang et al. 2022): detections are split by score into high
 * (>= high_thresh) and low (>= low_thresh). Every live and recently lost track is predicted by
 * a constant-velocity Kalman filter on (cx, cy, aspect, height). Stage 1 matches high
 * detections to those tracks by IoU cost (fused with the detection score) with an optimal
 * assignment; stage 2 matches the remaining live tracks to low detections (so occluded
 * objects with weak detections keep their identity); stage 3 matches tentative tracks to the
 * leftover high detections, and stage 4 the tentative tracks still unmatched to the leftover
 * low detections. A leftover high detection with score >= new_thresh starts a tentative track;
 * weak (low) detections keep it alive frame by frame, and the first high detection matched
 * after its start confirms it (so a vehicle that scores weakly for a while is confirmed late,
 * not lost). A tentative track unmatched in a frame is dropped. Each track keeps the anchor
 * (bottom centre) of the detection that started it, so that analytics can see where a track
 * confirmed late came from. A track that goes
 * unmatched is "lost" and removed after track_buffer frames (scaled by frame_rate / 30).
 *
 * Contract: a tracker belongs to one camera and one thread at a time (no locks, no globals).
 * All memory is allocated by its_tracker_create (sized by max_tracks and max_dets); update
 * never allocates. The track array returned by update is owned by the tracker and valid until
 * the next update or destroy; it holds the confirmed tracks matched in this frame. Detections
 * beyond max_dets are ignored and counted (its_tracker_stats). Detections with a non-finite
 * or empty box are ignored and counted. Errors: ITS_EINVAL for bad arguments, ITS_ENOMEM.
 */
#ifndef ITS_TRACK_H
#define ITS_TRACK_H

#include <stddef.h>
#include <stdint.h>

#include "its/det.h"

/* One frame's detections (its_det, its/det.h: source pixels; track_id is not read). */
typedef struct its_det_frame {
    const its_det *dets;
    int n;
    int width_px, height_px; /* source frame size */
    int64_t ts_ns;           /* capture time, monotonic */
    uint64_t frame_no;
} its_det_frame;

typedef enum its_track_state {
    ITS_TRACK_TENTATIVE = 0, /* seen once, not yet confirmed */
    ITS_TRACK_CONFIRMED,     /* matched in the current frame */
    ITS_TRACK_LOST,          /* confirmed before, unmatched now, kept for track_buffer */
    ITS_TRACK_REMOVED,
} its_track_state;

typedef struct its_track {
    uint32_t id;           /* unique per tracker, from 1 */
    int class_id;          /* class of the latest matched detection */
    float score;           /* score of the latest matched detection */
    float x1, y1, x2, y2;  /* Kalman-filtered box, source pixels */
    float vx, vy;          /* centre velocity, pixels per frame */
    its_track_state state; /* always CONFIRMED in update's output */
    int det_index;         /* index in the frame's dets of the matched detection */
    uint32_t hits;         /* frames matched */
    uint32_t age;          /* frames since start */
    uint64_t start_frame;  /* frame_no when it started */
    /* Anchor (bottom centre, source pixels) and height of the detection that started the
     * track, before it was confirmed; origin_h 0: unknown (a track not from this tracker). */
    float origin_x, origin_y, origin_h;
} its_track;

typedef struct its_tracker_params {
    float high_thresh;  /* first-association threshold (0.25) */
    float low_thresh;   /* lowest score used at all (0.1) */
    float new_thresh;   /* score needed to start a track (0.25) */
    float match_thresh; /* stage-1 IoU cost limit (0.8) */
    int track_buffer;   /* frames a lost track is kept, at 30 fps (30) */
    float frame_rate;   /* stream frame rate (30) */
    int max_tracks;     /* capacity of live + lost tracks (1024) */
    int max_dets;       /* detections considered per frame (1024) */
} its_tracker_params;

typedef struct its_tracker_stats {
    uint64_t frames;
    uint64_t tracks_started; /* tentative tracks created */
    uint64_t tracks_confirmed;
    uint64_t dets_dropped;   /* over max_dets */
    uint64_t dets_invalid;   /* non-finite or empty boxes, scores outside [0, 1] */
    uint64_t tracks_dropped; /* new tracks refused because max_tracks were live */
} its_tracker_stats;

typedef struct its_tracker its_tracker_t;

void its_tracker_params_default(its_tracker_params *p);
int its_tracker_create(const its_tracker_params *p, its_tracker_t **out);
void its_tracker_destroy(its_tracker_t *t);
/* Track one frame. Returns the number of confirmed tracks matched in this frame (>= 0) and
 * points *out at them, or a negative ITS_E* code. Frames must come in order. */
int its_tracker_update(its_tracker_t *t, const its_det_frame *f, const its_track **out);
/* Forget every track (stream restart); ids keep increasing. */
void its_tracker_reset(its_tracker_t *t);
void its_tracker_get_stats(const its_tracker_t *t, its_tracker_stats *out);

/* {"frame":N,"ts_ns":T,"tracks":[{"id":..,"class":..,"score":..,"box":[x1,y1,x2,y2],
 * "v":[vx,vy]},...]} into buf. Returns the length written (NUL excluded) or ITS_EOVERFLOW
 * when buf is too small (buf then holds a truncated, NUL-terminated prefix). */
int its_tracks_to_json(const its_det_frame *f, const its_track *tracks, int n, char *buf,
                       size_t len);

#endif
