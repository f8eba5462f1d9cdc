/*
 * its/detect.h - detector pre- and post-processing around the engine: letterbox into the
 * model's input tensor, decode the head (Ultralytics YOLOv8/YOLO11, YOLOv5, YOLOX, NanoDet),
 * class-aware NMS, boxes back in source pixels.
 *
 *     its_det_model_info info = {.input = its_model_input(m, 0), .n_outputs = ...};
 *     ... info.outputs[i] = its_model_output(m, i); info.meta = my_meta_fn; info.meta_ctx = m;
 *     its_det_config cfg;
 *     its_det_config_from_model(&info, &cfg, err, sizeof err);   // family, size, RGB/BGR...
 *     cfg.conf = 0.25f;                                            // tweak, then
 *     its_detector_t *d;
 *     its_detector_create(&cfg, &info, max_batch, &d, err, sizeof err);
 *     float *in = ...;                                  // its_detector_input_floats(d) * batch
 *     its_letterbox lb[4];
 *     for (b = 0; b < n; b++)
 *         its_det_letterbox(&cfg.pre, frame[b], in + b * its_detector_input_floats(d), &lb[b]);
 *     its_engine_run(e, n, in, outputs);
 *     for (b = 0; b < n; b++)
 *         k = its_detector_decode(d, (const float *const *)outputs, b, &lb[b], dets, 300);
 *     its_detector_destroy(d);
 *
 * Contract: a detector owns scratch space sized at create time for the model's anchor count,
 * so letterbox and decode allocate nothing. One thread at a time per detector (its scratch is
 * shared); several detectors may share nothing and run in parallel. Errors are ITS_E* codes
 * with details in `err`. Output buffers follow its_engine_run: output i of batch item b starts
 * at b * (elements of output i per item).
 */
#ifndef ITS_DETECT_H
#define ITS_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "its/det.h"
#include "its/engine.h"
#include "its/media.h"

typedef enum its_det_family {
    ITS_DET_AUTO = 0,
    ITS_DET_ULTRALYTICS = 1, /* YOLOv8 / YOLO11: [N, 4+C, A], cx cy w h, class scores */
    ITS_DET_YOLOV5 = 2,      /* [N, A, 5+C]: cx cy w h obj cls..., already decoded */
    ITS_DET_YOLOX = 3,       /* [N, A, 5+C]: raw tx ty tw th, obj, cls; grid decode */
    ITS_DET_NANODET = 4,     /* per stride: cls [N, A, C] + distribution [N, A, 4*(R+1)] */
} its_det_family;

/* How a frame becomes the model input: value = (pixel - mean[c]) * scale[c], channel c in
 * the model's order. */
typedef struct its_det_preproc {
    int width, height; /* model input size */
    int bgr;           /* 1: model wants B, G, R planes */
    int center;        /* 1: image centred on the canvas (Ultralytics); 0: top-left (YOLOX) */
    uint8_t pad;       /* canvas value before normalisation (114; NanoDet 0) */
    int round8;        /* 1: round resized pixels to integers first, like cv2.resize on
                          uint8 (Ultralytics, YOLOv5, YOLOX); 0: keep fractions (NanoDet) */
    float mean[3];
    float scale[3];
} its_det_preproc;

/* Where the source frame landed in the model input: input = source * scale + pad. */
typedef struct its_letterbox {
    float scale;
    float pad_x, pad_y;
    int src_w, src_h;
} its_letterbox;

typedef struct its_det_config {
    its_det_family family;
    int num_classes;    /* from the output shape */
    float conf;         /* keep detections with score >= conf (ITS_DET_CONF_DEFAULT) */
    float iou;          /* NMS IoU threshold (ITS_DET_IOU_DEFAULT) */
    int max_dets;       /* per image after NMS (default 300) */
    int class_agnostic; /* 1: NMS across classes (default 0: class-aware) */
    its_det_preproc pre;
    int strides[4]; /* YOLOX / NanoDet levels (default 8, 16, 32) */
    int n_strides;
    int reg_max; /* NanoDet distribution bins - 1 (default 7) */
} its_det_config;

/* What the detector needs to know about a model (from the engine or elsewhere). */
typedef struct its_det_model_info {
    const its_tensor_desc *input;
    const its_tensor_desc *outputs[8];
    int n_outputs;
    /* Model metadata lookup ("names", "stride"...), may be NULL. */
    const char *(*meta)(const void *ctx, const char *key);
    const void *meta_ctx;
} its_det_model_info;

typedef struct its_detector its_detector_t;

/* Name of a family ("ultralytics", "yolov5", "yolox", "nanodet", "auto"). */
const char *its_det_family_name(its_det_family f);
/* Parse a family name; ITS_EINVAL if unknown. */
int its_det_family_parse(const char *name, its_det_family *out);

/*
 * Fill cfg with defaults for `family` (ITS_DET_AUTO: guessed from the output shapes and the
 * metadata) and the input size from the model's input: preprocessing conventions per family,
 * conf ITS_DET_CONF_DEFAULT, iou ITS_DET_IOU_DEFAULT, max_dets 300. ITS_EUNSUPPORTED if the outputs
 * fit no known head.
 */
int its_det_config_init(const its_det_model_info *info, its_det_family family, its_det_config *cfg,
                        char *err, size_t errlen);

/* The default preprocessing of a family for a w x h input. */
void its_det_preproc_default(its_det_family family, int w, int h, its_det_preproc *pre);

/*
 * Letterbox an 8-bit packed RGB/BGR frame of any size into one NCHW float image of
 * pre->width x pre->height (3 planes) at dst: aspect kept, bilinear (half-pixel centres, no
 * antialiasing, like cv2.INTER_LINEAR), padded with pre->pad. lb receives the mapping.
 */
int its_det_letterbox(const its_det_preproc *pre, const its_image *src, float *dst,
                      its_letterbox *lb);
/* The same for raw pixels. */
int its_det_letterbox_raw(const its_det_preproc *pre, const uint8_t *px, int width, int height,
                          int stride, its_pixfmt fmt, float *dst, its_letterbox *lb);

int its_detector_create(const its_det_config *cfg, const its_det_model_info *info,
                        its_detector_t **out, char *err, size_t errlen);
void its_detector_destroy(its_detector_t *d);
/* Floats of one letterboxed input image (3 * H * W). */
size_t its_detector_input_floats(const its_detector_t *d);
/* Floats of output i for one batch item. */
size_t its_detector_output_floats(const its_detector_t *d, int i);

/*
 * Decode batch item b of the model outputs: threshold, class-aware NMS, map through lb to
 * source pixels (track_id 0). Writes at most cap detections sorted by descending score; returns
 * the count (or a negative ITS_E*). Allocates nothing.
 */
int its_detector_decode(its_detector_t *d, const float *const *outputs, int b,
                        const its_letterbox *lb, its_det *dets, int cap);

/* Intersection over union of two boxes (x1, y1, x2, y2). */
float its_det_iou(const float *a, const float *b);

/*
 * Class names: parse Ultralytics metadata "{0: 'person', 1: 'bicycle', ...}" or a text file
 * with one name per line. The result is one its_malloc'd block (array + strings); free with
 * its_det_names_free. Returns the number of names or a negative ITS_E*.
 */
int its_det_names_parse_meta(const char *meta, char ***names);
int its_det_names_load(const char *path, char ***names);
void its_det_names_free(char **names);

#endif
