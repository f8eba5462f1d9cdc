/*
 * its/quality.h - QualityScoreCalculator: how far a camera's analytics can be trusted, as one
 * score in [0, 1] per frame and per camera.
 *
 *     its_quality_params p;
 *     its_quality_params_default(&p);
 *     its_quality_t *q;
 *     its_quality_create(&p, &q);
 *     for (each frame) {
 *         its_quality_image img = {luma, width, height, stride, ts_ns};   // Y plane, 8-bit
 *         its_quality_score sc;
 *         its_quality_update(q, &img, &dets_frame, tracks, n_tracks, &sc);
 *         // sc.frame_score, sc.camera_score; its_quality_score_to_json(&sc, buf, len)
 *     }
 *     its_quality_destroy(q);
 *
 * Definition (docs/analytics.md has the numbers):
 *   image    = (frozen ? 0 : 1) x (0.5 x weighted mean + 0.5 x min) of the brightness, contrast,
 *              sharpness and uncovered-lens sub-scores, measured on a luma plane box-averaged
 *              to at most 320 x 320;
 *   detection= mean over detections of 0.5 x confidence + 0.5 x plausibility (size, aspect ratio
 *              for the class, inside the frame, height consistent with the image row as learnt
 *              from this camera);
 *   temporal = 0.6 x share of confident detections matched to confirmed tracks
 *              + 0.4 x (1 - 2 x flicker), flicker = share of track ids born or lost per frame
 *              (smoothed);
 *   frame    = 0.5 image + 0.25 detection + 0.25 temporal (weights renormalised over the parts
 *              given); camera = exponential moving average of frame (alpha 0.05).
 *
 * Contract: one calculator per camera, one thread at a time, no globals. All memory is
 * allocated by create; update never allocates. The last score is cached (its_quality_get).
 * Errors: ITS_EINVAL (bad arguments or a luma plane larger than 16384 x 16384), ITS_ENOMEM.
 */
#ifndef ITS_QUALITY_H
#define ITS_QUALITY_H

#include <stddef.h>
#include <stdint.h>

#include "its/track.h"

typedef struct its_quality_params {
    double camera_alpha;   /* EMA weight of each frame in the camera score (0.05) */
    double frozen_diff;    /* mean |difference| (grey levels) below which frames are equal (0.05) */
    double frozen_s;       /* equal for this long = frozen (2) */
    double flat_block_std; /* a 8x8 block with a std dev below this is flat (2.5) */
    double sharpness_ref;  /* Laplacian std dev that scores 1 (12) */
    int max_tracks;        /* for the flicker bookkeeping (1024) */
    /* update with img == NULL reuses the last image measurement instead of dropping the
     * image part (for callers that measure the picture at a lower rate than they run
     * detection; 0: no reuse, the default) */
    int reuse_image;
} its_quality_params;

/* An 8-bit luma plane (Y of YUV, or grey). */
typedef struct its_quality_image {
    const uint8_t *luma;
    int width, height, stride;
    int64_t ts_ns;
} its_quality_image;

typedef struct its_quality_score {
    /* image measurements */
    int has_image;
    double brightness;    /* mean luma, 0-255 */
    double contrast;      /* luma standard deviation */
    double sharpness;     /* standard deviation of the Laplacian */
    double motion;        /* mean |difference| from the previous frame */
    double flat_fraction; /* share of flat 8x8 blocks */
    int frozen, covered;
    double s_brightness, s_contrast, s_sharpness, s_uncovered;
    double image_score;
    /* detections */
    int n_dets;
    double det_confidence, det_plausibility, det_score; /* NaN without detections */
    /* temporal */
    double matched_share, flicker, temporal_score; /* NaN without detections */
    double frame_score, camera_score;
    uint64_t frames;
    uint64_t rejected; /* calls refused with ITS_EINVAL (bad plane, bad arguments) */
} its_quality_score;

typedef struct its_quality its_quality_t;

void its_quality_params_default(its_quality_params *p);
int its_quality_create(const its_quality_params *p, its_quality_t **out);
void its_quality_destroy(its_quality_t *q);
/* One frame. img may be NULL (no image this frame), f may be NULL (no detector output);
 * tracks: the tracker's output for the same frame (may be NULL with n_tracks 0). */
int its_quality_update(its_quality_t *q, const its_quality_image *img, const its_det_frame *f,
                       const its_track *tracks, int n_tracks, its_quality_score *out);
/* The cached last score. */
void its_quality_get(const its_quality_t *q, its_quality_score *out);
int its_quality_score_to_json(const its_quality_score *s, char *buf, size_t len);

#endif
