/*
 * Detector post-processing on hand-made tensors (every value below is worked out by hand in
 * the comments), the letterbox against hand-computed pixels, family detection from shapes,
 * class-name parsing, allocation behaviour.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/alloc.h"
#include "its/detect.h"
#include "its/error.h"
#include "testutil.h"

static its_tensor_desc desc(int64_t d0, int64_t d1, int64_t d2, int64_t d3, int rank)
{
    its_tensor_desc t = {.name = "t", .dtype = ITS_DT_FLOAT32, .rank = rank};
    t.dims[0] = d0;
    t.dims[1] = d1;
    t.dims[2] = d2;
    t.dims[3] = d3;
    return t;
}

static its_detector_t *make(its_tensor_desc *in, its_tensor_desc *outs, int n, its_det_family fam,
                            its_det_config *cfg)
{
    its_det_model_info mi = {.input = in, .n_outputs = n};
    for (int i = 0; i < n; i++)
        mi.outputs[i] = &outs[i];
    char err[256];
    int rc = its_det_config_init(&mi, fam, cfg, err, sizeof err);
    if (rc < 0)
        printf("config: %s\n", err);
    assert_int_equal(rc, 0);
    its_detector_t *d;
    rc = its_detector_create(cfg, &mi, &d, err, sizeof err);
    if (rc < 0)
        printf("create: %s\n", err);
    assert_int_equal(rc, 0);
    return d;
}

static void assert_box(const its_det *d, float x1, float y1, float x2, float y2)
{
    assert_true(fabsf(d->x1 - x1) < 1e-3f && fabsf(d->y1 - y1) < 1e-3f &&
                fabsf(d->x2 - x2) < 1e-3f && fabsf(d->y2 - y2) < 1e-3f);
}

/* Ultralytics [1, 4+C, A], C = 3, A = 8 (6 used, 2 all zero); anchors are columns. */
static void test_ultralytics(void **state)
{
    (void)state;
    its_tensor_desc in = desc(1, 3, 64, 64, 4), out = desc(1, 7, 8, 0, 3);
    its_det_config cfg;
    its_detector_t *d = make(&in, &out, 1, ITS_DET_AUTO, &cfg);
    assert_int_equal(cfg.family, ITS_DET_ULTRALYTICS);
    assert_int_equal(cfg.num_classes, 3);
    float t[7][8] = {{0}};
    /* a0: box centre (100, 100) 50x50, class 1 at 0.9
     * a1: centre (105, 100) 50x50, class 1 at 0.8: IoU with a0 = 45*50 / (2*2500 - 2250)
     *     = 0.818 > 0.45, suppressed
     * a2: same box as a1 but class 2 at 0.7: other class, kept (class-aware)
     * a3: class 0 at 0.2 < conf 0.25, dropped
     * a4: centre (300, 300) 20x40, class 0 at 0.6
     * a5: NaN score, never kept */
    const float box[6][4] = {{100, 100, 50, 50}, {105, 100, 50, 50}, {105, 100, 50, 50},
                             {10, 10, 4, 4},     {300, 300, 20, 40}, {50, 50, 10, 10}};
    for (int a = 0; a < 6; a++)
        for (int k = 0; k < 4; k++)
            t[k][a] = box[a][k];
    t[4 + 1][0] = 0.9f;
    t[4 + 1][1] = 0.8f;
    t[4 + 2][2] = 0.7f;
    t[4 + 0][3] = 0.2f;
    t[4 + 0][4] = 0.6f;
    t[4 + 0][5] = NAN;
    const float *outs[1] = {&t[0][0]};
    /* Source 400x300 letterboxed with scale 2 and padding (10, 20): x_src = (x - 10) / 2. */
    its_letterbox lb = {.scale = 2.0f, .pad_x = 10, .pad_y = 20, .src_w = 400, .src_h = 300};
    its_det dets[10];
    uint64_t allocs = its_alloc_count();
    int n = its_detector_decode(d, outs, 0, &lb, dets, 10);
    assert_int_equal(its_alloc_count(), allocs); /* nothing allocated per frame */
    assert_int_equal(n, 3);
    assert_int_equal(dets[0].class_id, 1);
    assert_float_equal(dets[0].score, 0.9f, 1e-6);
    /* a0: x 75..125, y 75..125 -> ((75-10)/2, (75-20)/2, (125-10)/2, (125-20)/2) */
    assert_box(&dets[0], 32.5f, 27.5f, 57.5f, 52.5f);
    assert_int_equal(dets[1].class_id, 2);
    assert_float_equal(dets[1].score, 0.7f, 1e-6);
    assert_int_equal(dets[2].class_id, 0);
    /* a4: x 290..310, y 280..320 -> (140, 130, 150, 150) */
    assert_box(&dets[2], 140, 130, 150, 150);
    /* cap limits the output */
    assert_int_equal(its_detector_decode(d, outs, 0, &lb, dets, 1), 1);
    /* higher threshold keeps only a0 */
    its_detector_destroy(d);
    cfg.conf = 0.85f;
    its_det_model_info mi = {.input = &in, .n_outputs = 1, .outputs = {&out}};
    assert_int_equal(its_detector_create(&cfg, &mi, &d, NULL, 0), 0);
    assert_int_equal(its_detector_decode(d, outs, 0, &lb, dets, 10), 1);
    its_detector_destroy(d);
    /* class-agnostic NMS: a2 overlaps a0 (0.818) and goes */
    cfg.conf = 0.25f;
    cfg.class_agnostic = 1;
    assert_int_equal(its_detector_create(&cfg, &mi, &d, NULL, 0), 0);
    n = its_detector_decode(d, outs, 0, &lb, dets, 10);
    assert_int_equal(n, 2);
    assert_int_equal(dets[1].class_id, 0);
    /* Clipping: the box of a0 seen through a letterbox that puts it off the source. */
    its_letterbox lb2 = {.scale = 1.0f, .pad_x = 100, .pad_y = 0, .src_w = 20, .src_h = 110};
    n = its_detector_decode(d, outs, 0, &lb2, dets, 10);
    assert_box(&dets[0], 0, 75, 20, 110);
    its_detector_destroy(d);
}

/* Batch: item b of an output starts at b * per-item elements. */
static void test_batch_offsets(void **state)
{
    (void)state;
    its_tensor_desc in = desc(-1, 3, 32, 32, 4), out = desc(-1, 5, 4, 0, 3);
    its_det_config cfg;
    its_detector_t *d = make(&in, &out, 1, ITS_DET_ULTRALYTICS, &cfg);
    assert_int_equal(its_detector_output_floats(d, 0), 20);
    assert_int_equal(its_detector_input_floats(d), 3 * 32 * 32);
    float t[2][5][4] = {{{0}}};
    /* item 1, anchor 3: centre (8, 8) 4x4, score 0.5 */
    t[1][0][3] = 8;
    t[1][1][3] = 8;
    t[1][2][3] = 4;
    t[1][3][3] = 4;
    t[1][4][3] = 0.5f;
    const float *outs[1] = {&t[0][0][0]};
    its_letterbox lb = {.scale = 1, .src_w = 32, .src_h = 32};
    its_det dets[4];
    assert_int_equal(its_detector_decode(d, outs, 0, &lb, dets, 4), 0);
    assert_int_equal(its_detector_decode(d, outs, 1, &lb, dets, 4), 1);
    assert_box(&dets[0], 6, 6, 10, 10);
    its_detector_destroy(d);
}

/* YOLOv5 [1, A, 5+C]: score = obj * class. */
static void test_yolov5(void **state)
{
    (void)state;
    /* 64x64 with 3 anchors per cell over strides 8/16/32: 3 * (64 + 16 + 4) = 252 rows. */
    its_tensor_desc in = desc(1, 3, 64, 64, 4), out = desc(1, 252, 7, 0, 3);
    its_det_config cfg;
    its_detector_t *d = make(&in, &out, 1, ITS_DET_AUTO, &cfg);
    assert_int_equal(cfg.family, ITS_DET_YOLOV5);
    assert_int_equal(cfg.num_classes, 2);
    assert_int_equal(cfg.pre.bgr, 0);
    static float t[252][7];
    memset(t, 0, sizeof t);
    /* row 10: obj 0.8, class 1 0.9 -> 0.72; row 20: obj 0.9, cls 0.25 -> 0.225 < 0.25 */
    const float r10[7] = {20, 30, 10, 20, 0.8f, 0.1f, 0.9f};
    const float r20[7] = {40, 40, 10, 10, 0.9f, 0.25f, 0.0f};
    memcpy(t[10], r10, sizeof r10);
    memcpy(t[20], r20, sizeof r20);
    const float *outs[1] = {&t[0][0]};
    its_letterbox lb = {.scale = 1, .src_w = 64, .src_h = 64};
    its_det dets[4];
    assert_int_equal(its_detector_decode(d, outs, 0, &lb, dets, 4), 1);
    assert_int_equal(dets[0].class_id, 1);
    assert_float_equal(dets[0].score, 0.72f, 1e-6);
    assert_box(&dets[0], 15, 20, 25, 40);
    its_detector_destroy(d);
}

/* YOLOX [1, A, 5+C] raw: grid decode over strides 8/16/32. */
static void test_yolox(void **state)
{
    (void)state;
    /* 64x64: 8x8 + 4x4 + 2x2 = 84 anchors. */
    its_tensor_desc in = desc(1, 3, 64, 64, 4), out = desc(1, 84, 6, 0, 3);
    its_det_config cfg;
    its_detector_t *d = make(&in, &out, 1, ITS_DET_AUTO, &cfg);
    assert_int_equal(cfg.family, ITS_DET_YOLOX);
    assert_int_equal(cfg.pre.bgr, 1);
    assert_int_equal(cfg.pre.center, 0);
    assert_float_equal(cfg.pre.scale[0], 1.0f, 0);
    static float t[84][6];
    memset(t, 0, sizeof t);
    /* Level 1 (stride 16) starts at row 64; cell (gx 2, gy 1) is row 64 + 1*4 + 2 = 70.
     * tx = ty = 0.5, tw = ln 2, th = 0: centre ((0.5+2)*16, (0.5+1)*16) = (40, 24),
     * size (2*16, 16) = 32x16 -> box (24, 16, 56, 32); score 0.9 * 0.8 = 0.72. */
    const float r[6] = {0.5f, 0.5f, logf(2.0f), 0.0f, 0.9f, 0.8f};
    memcpy(t[70], r, sizeof r);
    const float *outs[1] = {&t[0][0]};
    its_letterbox lb = {.scale = 0.5f, .src_w = 128, .src_h = 128};
    its_det dets[4];
    assert_int_equal(its_detector_decode(d, outs, 0, &lb, dets, 4), 1);
    assert_float_equal(dets[0].score, 0.72f, 1e-6);
    /* divided by the scale 0.5, no padding (top-left letterbox) */
    assert_box(&dets[0], 48, 32, 112, 64);
    its_detector_destroy(d);
}

/* NanoDet: per stride a class [1, A, C] and a distribution [1, A, 4*8] output. */
static void test_nanodet(void **state)
{
    (void)state;
    /* 32x32: levels 4x4, 2x2, 1x1. Outputs in the model's order: cls 8/16/32, reg 8/16/32. */
    its_tensor_desc in = desc(1, 3, 32, 32, 4);
    its_tensor_desc outs_d[6] = {desc(1, 16, 2, 0, 3),  desc(1, 4, 2, 0, 3),  desc(1, 1, 2, 0, 3),
                                 desc(1, 16, 32, 0, 3), desc(1, 4, 32, 0, 3), desc(1, 1, 32, 0, 3)};
    its_det_config cfg;
    its_detector_t *d = make(&in, outs_d, 6, ITS_DET_AUTO, &cfg);
    assert_int_equal(cfg.family, ITS_DET_NANODET);
    assert_int_equal(cfg.num_classes, 2);
    assert_int_equal(cfg.pre.pad, 0);
    assert_float_equal(cfg.pre.mean[0], 103.53f, 1e-4);
    static float c8[16][2], c16[4][2], c32[1][2], r8[16][32], r16[4][32], r32[1][32];
    memset(c8, 0, sizeof c8);
    memset(r8, 0, sizeof r8);
    /* Stride 8, cell (gx 1, gy 2) = index 9: centre (1.5*8, 2.5*8) = (12, 20). One-hot-ish
     * logits (30 at one bin) put the expectation on that bin: left 2, top 1, right 3,
     * bottom 0 bins -> distances 16, 8, 24, 0 -> box (-4, 12, 36, 20). */
    c8[9][1] = 0.6f;
    r8[9][0 * 8 + 2] = 30;
    r8[9][1 * 8 + 1] = 30;
    r8[9][2 * 8 + 3] = 30;
    r8[9][3 * 8 + 0] = 30;
    /* Stride 32, the only cell: centre (16, 16), uniform logits -> expectation 3.5 bins
     * = 112 px each side; class 0 at 0.55. Clipped to the 32x32 source. */
    c32[0][0] = 0.55f;
    memset(c16, 0, sizeof c16);
    memset(r16, 0, sizeof r16);
    memset(r32, 0, sizeof r32);
    const float *outs[6] = {&c8[0][0], &c16[0][0], &c32[0][0], &r8[0][0], &r16[0][0], &r32[0][0]};
    its_letterbox lb = {.scale = 1, .src_w = 32, .src_h = 32};
    its_det dets[4];
    assert_int_equal(its_detector_decode(d, outs, 0, &lb, dets, 4), 2);
    assert_int_equal(dets[0].class_id, 1);
    assert_float_equal(dets[0].score, 0.6f, 1e-6);
    assert_box(&dets[0], 0, 12, 32, 20); /* x1 -4 and x2 36 clipped to the source */
    assert_int_equal(dets[1].class_id, 0);
    assert_box(&dets[1], 0, 0, 32, 32);
    /* unclipped check through a larger source */
    its_letterbox big = {.scale = 1, .pad_x = -100, .pad_y = 0, .src_w = 400, .src_h = 400};
    assert_int_equal(its_detector_decode(d, outs, 0, &big, dets, 4), 2);
    assert_box(&dets[0], 96, 12, 136, 20);
    its_detector_destroy(d);
    /* Outputs in another order (distributions first): matched by shape, same result. */
    its_tensor_desc swapped[6] = {outs_d[3], outs_d[4], outs_d[5], outs_d[0], outs_d[1], outs_d[2]};
    d = make(&in, swapped, 6, ITS_DET_AUTO, &cfg);
    assert_int_equal(cfg.num_classes, 2);
    const float *outs2[6] = {outs[3], outs[4], outs[5], outs[0], outs[1], outs[2]};
    assert_int_equal(its_detector_decode(d, outs2, 0, &big, dets, 4), 2);
    assert_box(&dets[0], 96, 12, 136, 20);
    its_detector_destroy(d);
}

static void test_family_guess_and_errors(void **state)
{
    (void)state;
    its_det_config cfg;
    char err[256];
    its_tensor_desc in = desc(1, 3, 640, 640, 4);
    its_tensor_desc o1 = desc(1, 84, 8400, 0, 3), o2 = desc(1, 25200, 85, 0, 3),
                    o3 = desc(1, 8400, 85, 0, 3), o4 = desc(1, 1000, 85, 0, 3);
    its_det_model_info mi = {.input = &in, .n_outputs = 1, .outputs = {&o1}};
    assert_int_equal(its_det_config_init(&mi, ITS_DET_AUTO, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.family, ITS_DET_ULTRALYTICS);
    assert_int_equal(cfg.num_classes, 80);
    assert_float_equal(cfg.conf, 0.5f, 0); /* SPEC's confidence threshold */
    mi.outputs[0] = &o2;
    assert_int_equal(its_det_config_init(&mi, ITS_DET_AUTO, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.family, ITS_DET_YOLOV5);
    mi.outputs[0] = &o3;
    assert_int_equal(its_det_config_init(&mi, ITS_DET_AUTO, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.family, ITS_DET_YOLOX);
    /* A count that fits neither grid: refused with a reason, unless the family is given. */
    mi.outputs[0] = &o4;
    assert_int_equal(its_det_config_init(&mi, ITS_DET_AUTO, &cfg, err, sizeof err),
                     ITS_EUNSUPPORTED);
    assert_non_null(strstr(err, "1000"));
    assert_int_equal(its_det_config_init(&mi, ITS_DET_YOLOV5, &cfg, err, sizeof err), 0);
    its_detector_t *d;
    /* Forced YOLOX on a shape that does not match its grid: create refuses. */
    assert_int_equal(its_det_config_init(&mi, ITS_DET_YOLOX, &cfg, err, sizeof err), 0);
    assert_int_equal(its_detector_create(&cfg, &mi, &d, err, sizeof err), ITS_EUNSUPPORTED);
    assert_null(d);
    /* Bad input shapes and configs. */
    its_tensor_desc bad_in = desc(1, 1, 640, 640, 4);
    mi.input = &bad_in;
    assert_int_equal(its_det_config_init(&mi, ITS_DET_AUTO, &cfg, err, sizeof err),
                     ITS_EUNSUPPORTED);
    mi.input = &in;
    mi.outputs[0] = &o1;
    assert_int_equal(its_det_config_init(&mi, ITS_DET_AUTO, &cfg, err, sizeof err), 0);
    cfg.iou = 0;
    assert_int_equal(its_detector_create(&cfg, &mi, &d, err, sizeof err), ITS_EINVAL);
    its_det_family f;
    assert_int_equal(its_det_family_parse("yolox", &f), 0);
    assert_int_equal(f, ITS_DET_YOLOX);
    assert_int_equal(its_det_family_parse("yolo11", &f), 0);
    assert_int_equal(f, ITS_DET_ULTRALYTICS);
    assert_int_equal(its_det_family_parse("resnet", &f), ITS_EINVAL);
}

static void test_create_alloc_failures(void **state)
{
    (void)state;
    its_tensor_desc in = desc(1, 3, 640, 640, 4), o = desc(1, 84, 8400, 0, 3);
    its_det_model_info mi = {.input = &in, .n_outputs = 1, .outputs = {&o}};
    its_det_config cfg;
    assert_int_equal(its_det_config_init(&mi, ITS_DET_AUTO, &cfg, NULL, 0), 0);
    its_alloc_stats before, after;
    its_alloc_get_stats(ITS_MOD_DETECT, &before);
    for (int k = 0; k < 5; k++) {
        its_detector_t *d = NULL;
        its_alloc_fail_after(ITS_MOD_DETECT, k, 1);
        int rc = its_detector_create(&cfg, &mi, &d, NULL, 0);
        its_alloc_fail_reset();
        /* create makes exactly 5 allocations: each one failing is reported */
        assert_int_equal(rc, ITS_ENOMEM);
        assert_null(d);
    }
    its_alloc_get_stats(ITS_MOD_DETECT, &after);
    assert_int_equal(after.bytes_live, before.bytes_live);
}

/* ---- letterbox ------------------------------------------------------------------------- */

static void test_letterbox_values(void **state)
{
    (void)state;
    /* A 4x1 RGB image, R = 0, 100, 200, 40 (G = R + 1, B = R + 2), into 8x8, centred:
     * r = min(8/4, 8/1) = 2, new size 8x2, left = round(0 - 0.1) = 0,
     * top = round(3 - 0.1) = 3. Source x for output x: (x + 0.5) * 0.5 - 0.5:
     * x=0: -0.25 -> clamp 0 -> 0;  x=1: 0.25 -> 25;  x=2: 0.75 -> 75;  x=3: 1.25 -> 125;
     * x=4: 1.75 -> 175;  x=5: 2.25 -> 200 - 0.25*160 = 160;  x=6: 2.75 -> 80;
     * x=7: 3.25 -> clamp 3 -> 40. Rows 3 and 4 are the image, the rest pad 114. */
    const uint8_t px[12] = {0, 1, 2, 100, 101, 102, 200, 201, 202, 40, 41, 42};
    its_det_preproc pre;
    its_det_preproc_default(ITS_DET_ULTRALYTICS, 8, 8, &pre);
    for (int c = 0; c < 3; c++)
        pre.scale[c] = 1.0f; /* keep 0..255 for readability */
    float out[3 * 64];
    its_letterbox lb;
    assert_int_equal(its_det_letterbox_raw(&pre, px, 4, 1, 12, ITS_PIX_RGB24, out, &lb), 0);
    assert_float_equal(lb.scale, 2.0f, 0);
    assert_float_equal(lb.pad_x, 0, 0);
    assert_float_equal(lb.pad_y, 3, 0);
    const float want[8] = {0, 25, 75, 125, 175, 160, 80, 40};
    for (int c = 0; c < 3; c++) {
        for (int y = 0; y < 8; y++) {
            for (int x = 0; x < 8; x++) {
                float v = out[c * 64 + y * 8 + x];
                float e = (y == 3 || y == 4) ? want[x] + (float)c : 114.0f;
                if (x == 0 && (y == 3 || y == 4))
                    e = (float)c;
                assert_float_equal(v, e, 1e-4);
            }
        }
    }
    /* The same pixels given as BGR: the planes come out swapped (R plane = byte 2). */
    assert_int_equal(its_det_letterbox_raw(&pre, px, 4, 1, 12, ITS_PIX_BGR24, out, &lb), 0);
    assert_float_equal(out[0 * 64 + 3 * 8 + 1], 25 + 2, 1e-4);
    assert_float_equal(out[2 * 64 + 3 * 8 + 1], 25 + 0, 1e-4);
    /* Ultralytics scale 1/255: the pad is 114/255. */
    its_det_preproc_default(ITS_DET_ULTRALYTICS, 8, 8, &pre);
    assert_int_equal(its_det_letterbox_raw(&pre, px, 4, 1, 12, ITS_PIX_RGB24, out, &lb), 0);
    assert_float_equal(out[0], 114.0f / 255.0f, 1e-6);
    assert_float_equal(out[3 * 8 + 3], 125.0f / 255.0f, 1e-6);
}

static void test_letterbox_geometry(void **state)
{
    (void)state;
    static uint8_t px[3 * 6 * 4];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 7);
    float out[3 * 64];
    its_letterbox lb;
    its_det_preproc pre;
    /* YOLOX: top-left. 4 wide x 2 high into 8x8: scale 2, image rows 0-3, pad rows 4-7. */
    its_det_preproc_default(ITS_DET_YOLOX, 8, 8, &pre);
    assert_int_equal(its_det_letterbox_raw(&pre, px, 4, 2, 12, ITS_PIX_BGR24, out, &lb), 0);
    assert_float_equal(lb.pad_x, 0, 0);
    assert_float_equal(lb.pad_y, 0, 0);
    for (int y = 4; y < 8; y++)
        for (int x = 0; x < 8; x++)
            assert_float_equal(out[y * 8 + x], 114, 0);
    /* BGR model, BGR source: plane 0 = byte 0; output (0,0) is source (0,0) */
    assert_float_equal(out[0], px[0], 1e-4);
    /* 3 wide x 2 high into 8x8 centred: r = 8/3, size round(8) x round(5.33) = 8x5,
     * top = round(1.5 - 0.1) = 1: one pad row above, two below (odd leftover goes down). */
    its_det_preproc_default(ITS_DET_ULTRALYTICS, 8, 8, &pre);
    pre.scale[0] = pre.scale[1] = pre.scale[2] = 1.0f;
    assert_int_equal(its_det_letterbox_raw(&pre, px, 3, 2, 9, ITS_PIX_RGB24, out, &lb), 0);
    assert_float_equal(lb.pad_y, 1, 0);
    assert_float_equal(lb.scale, 8.0f / 3.0f, 1e-6);
    for (int x = 0; x < 8; x++) {
        assert_float_equal(out[0 * 8 + x], 114, 0);
        assert_float_equal(out[6 * 8 + x], 114, 0);
        assert_float_equal(out[7 * 8 + x], 114, 0);
        assert_true(out[1 * 8 + x] != 114 || px[0] == 114);
    }
    /* Tall image into a wide canvas: 2x6 into 8x4 -> r = min(4, 2/3) = 0.667, size 1x4,
     * left = round(3.5 - 0.1) = 3. */
    its_det_preproc_default(ITS_DET_ULTRALYTICS, 8, 4, &pre);
    assert_int_equal(its_det_letterbox_raw(&pre, px, 2, 6, 6, ITS_PIX_RGB24, out, &lb), 0);
    assert_float_equal(lb.pad_x, 3, 0);
    assert_float_equal(lb.pad_y, 0, 0);
    /* NanoDet normalisation: (x - mean) * (1/std), pad 0 -> -mean/std. */
    its_det_preproc_default(ITS_DET_NANODET, 8, 8, &pre);
    assert_int_equal(its_det_letterbox_raw(&pre, px, 4, 1, 12, ITS_PIX_BGR24, out, &lb), 0);
    assert_float_equal(out[0], -103.53f / 57.375f, 1e-5);
    assert_float_equal(out[2 * 64], -123.675f / 58.395f, 1e-5);
    /* Bad arguments. */
    assert_int_equal(its_det_letterbox_raw(&pre, px, 0, 1, 12, ITS_PIX_RGB24, out, &lb),
                     ITS_EINVAL);
    assert_int_equal(its_det_letterbox_raw(&pre, px, 4, 1, 11, ITS_PIX_RGB24, out, &lb),
                     ITS_EINVAL);
    /* No allocation per frame. */
    uint64_t n = its_alloc_count();
    its_det_letterbox_raw(&pre, px, 4, 2, 12, ITS_PIX_RGB24, out, &lb);
    assert_int_equal(its_alloc_count(), n);
}

static void test_names(void **state)
{
    (void)state;
    char **names;
    assert_int_equal(its_det_names_parse_meta("{0: 'person', 1: 'bicycle', 2: \"car\"}", &names),
                     3);
    assert_string_equal(names[0], "person");
    assert_string_equal(names[2], "car");
    assert_null(names[3]);
    its_det_names_free(names);
    /* Sparse ids leave empty names, not holes. */
    assert_int_equal(its_det_names_parse_meta("{0: 'a', 3: 'd'}", &names), 4);
    assert_string_equal(names[1], "");
    its_det_names_free(names);
    assert_int_equal(its_det_names_parse_meta("{0: 'unterminated}", &names), ITS_EPROTO);
    assert_int_equal(its_det_names_parse_meta("[0, 1]", &names), ITS_EPROTO);
    assert_int_equal(its_det_names_parse_meta("{}", &names), ITS_EPROTO);
    assert_int_equal(its_det_names_parse_meta("{-1: 'x'}", &names), ITS_EPROTO);
    char p[1024];
    if (its_test_shared_path("media/coco.names", p, sizeof p)) {
        assert_int_equal(its_det_names_load(p, &names), 80);
        assert_string_equal(names[2], "car");
        assert_string_equal(names[79], "toothbrush");
        its_det_names_free(names);
    }
    assert_int_equal(its_det_names_load("/nonexistent", &names), ITS_ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ultralytics),
        cmocka_unit_test(test_batch_offsets),
        cmocka_unit_test(test_yolov5),
        cmocka_unit_test(test_yolox),
        cmocka_unit_test(test_nanodet),
        cmocka_unit_test(test_family_guess_and_errors),
        cmocka_unit_test(test_create_alloc_failures),
        cmocka_unit_test(test_letterbox_values),
        cmocka_unit_test(test_letterbox_geometry),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
