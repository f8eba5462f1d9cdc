/* Test helpers around the ONNX Runtime reference (tests/ref/ort_ref.js) and the golden
 * detections in shared/models/<model>/expected_detections.json. */
#ifndef ITS_TEST_DETREF_H
#define ITS_TEST_DETREF_H

#include <stddef.h>

#include "its/detect.h"

/* 1 if node and onnxruntime-node are usable (else the caller skips with 77). */
int detref_available(void);

/* Shapes of a model as ONNX Runtime sees them. Names/dims owned by the struct. */
typedef struct detref_info {
    its_tensor_desc input;
    its_tensor_desc outputs[8];
    int n_outputs;
    char names[9][64];
} detref_info;

int detref_model_info(const char *model, detref_info *info);
void detref_fill_model_info(detref_info *ri, its_det_model_info *mi);

/* Run the reference on input files (raw float32), writing <outdir>/<base>.o<i>.bin. */
int detref_run(const char *model, const char *outdir, const char *const *inputs, int n);

/* Expected detections of one photo. */
typedef struct golden_det {
    int class_id;
    float score;
    float box[4];
} golden_det;

typedef struct golden_image {
    char name[128];
    int w, h;
    int n;
    golden_det dets[128];
} golden_image;

/* Parse expected_detections.json; returns the number of images (<= cap) or -1. */
int golden_load(const char *path, golden_image *imgs, int cap);

/*
 * The golden rule: every reference detection with score >= 0.5 is matched (same class,
 * IoU >= 0.7) by one of ours with score >= 0.5 - margin, and every one of ours with score
 * >= 0.5 matches a reference detection with score >= 0.5 - margin. Returns the number of
 * violations and prints each. *max_dscore receives the largest score difference of matched
 * pairs.
 */
int golden_compare(const char *tag, const golden_image *g, const its_det *d, int n, float margin,
                   float *max_dscore);

/* Read a raw float32 file of exactly n floats into buf (0 on success). */
int read_floats(const char *path, float *buf, size_t n);

#endif
