/*
 * Rectangular inference (its_model_set_input_size): a model exported at 640x640 run at the
 * aspect of each photo (long side 640, short side rounded up to a multiple of 32, as
 * Ultralytics' "rect" letterbox does), on the cpu backend.
 *
 * Reference: the model's expected_detections.json, made by ONNX Runtime at the exported
 * 640x640 size. The network sees the photo resampled to another grid, so scores move: the
 * golden rule applies with a score margin of 0.15 (the references' own tolerance note gives
 * 0.1-0.2 for a different resize): every reference detection >= 0.65 must be found with the
 * same class, IoU >= 0.7 and a score >= 0.35, and every detection of ours >= 0.65 must be in
 * the reference likewise; detections between 0.35 and 0.65 may fall either side.
 *
 * Also: the rewritten model's input and output shapes, sizes refused with the model left
 * usable, and a model whose baked sizes cannot be re-derived (NanoDet's Resize `sizes`)
 * refused with the node named and no engine made from it afterwards.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detref.h"
#include "its/alloc.h"
#include "its/detect.h"
#include "its/engine.h"
#include "its/error.h"
#include "its/media.h"
#include "testutil.h"

#define MAX_IMAGES 16
#define MARGIN     0.15f

static int g_every = 1; /* under ASan: the first photo only */

static const char *meta_fn(const void *ctx, const char *key)
{
    return its_model_meta(ctx, key);
}

static int round_up32(double v)
{
    int x = (int)(v + 0.5);
    return (x + 31) / 32 * 32;
}

/* Detections of one photo with the model run at the photo's rect size. */
static int detect_rect(const char *model_path, const char *img_path, int *rw, int *rh,
                       its_det *dets, int cap)
{
    char err[512] = "";
    its_image img;
    its_image_opts io = {.fmt = ITS_PIX_RGB24};
    assert_int_equal(its_image_load(img_path, &io, &img, err, sizeof err), 0);
    int w, h;
    its_model_t *m = NULL;
    assert_int_equal(its_model_load(model_path, &m, err, sizeof err), 0);
    const its_tensor_desc *in0 = its_model_input(m, 0);
    int side = (int)(in0->dims[2] > in0->dims[3] ? in0->dims[2] : in0->dims[3]);
    if (img.width >= img.height) {
        w = side;
        h = round_up32((double)side * img.height / img.width);
    } else {
        h = side;
        w = round_up32((double)side * img.width / img.height);
    }
    *rw = w;
    *rh = h;
    int rc = its_model_set_input_size(m, w, h, err, sizeof err);
    if (rc < 0)
        printf("  %s at %dx%d: %s\n", model_path, w, h, err);
    assert_int_equal(rc, 0);
    const its_tensor_desc *in = its_model_input(m, 0);
    assert_int_equal(in->dims[2], h);
    assert_int_equal(in->dims[3], w);
    its_engine_opts eo = {.backend = "cpu", .threads = 2, .max_batch = 1};
    its_engine_t *e = NULL;
    assert_int_equal(its_engine_create(m, &eo, &e, err, sizeof err), 0);
    its_det_model_info info = {
        .input = in, .n_outputs = its_model_n_outputs(m), .meta = meta_fn, .meta_ctx = m};
    for (int i = 0; i < info.n_outputs; i++)
        info.outputs[i] = its_model_output(m, i);
    its_det_config cfg;
    assert_int_equal(its_det_config_init(&info, ITS_DET_AUTO, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.pre.width, w);
    assert_int_equal(cfg.pre.height, h);
    cfg.conf = 0.25f;
    cfg.iou = 0.45f;
    its_detector_t *det = NULL;
    assert_int_equal(its_detector_create(&cfg, &info, &det, err, sizeof err), 0);
    if (cfg.pre.bgr) {
        its_image_free(&img);
        io.fmt = ITS_PIX_BGR24;
        assert_int_equal(its_image_load(img_path, &io, &img, err, sizeof err), 0);
    }
    float *input = its_malloc(ITS_MOD_TEST, its_detector_input_floats(det) * sizeof(float));
    float *out[8] = {0};
    assert_non_null(input);
    for (int o = 0; o < info.n_outputs; o++)
        assert_non_null(
            out[o] = its_malloc(ITS_MOD_TEST, its_detector_output_floats(det, o) * sizeof(float)));
    its_letterbox lb;
    assert_int_equal(its_det_letterbox(&cfg.pre, &img, input, &lb), 0);
    assert_int_equal(its_engine_run(e, 1, input, out), 0);
    int n = its_detector_decode(det, (const float *const *)out, 0, &lb, dets, cap);
    assert_true(n >= 0);
    for (int o = 0; o < info.n_outputs; o++)
        its_free(out[o]);
    its_free(input);
    its_detector_destroy(det);
    its_engine_destroy(e);
    its_model_free(m);
    its_image_free(&img);
    return n;
}

static float iou(const float *a, const its_det *d)
{
    float ix = fminf(a[2], d->x2) - fmaxf(a[0], d->x1),
          iy = fminf(a[3], d->y2) - fmaxf(a[1], d->y1);
    if (ix <= 0 || iy <= 0)
        return 0;
    float in = ix * iy;
    return in / ((a[2] - a[0]) * (a[3] - a[1]) + (d->x2 - d->x1) * (d->y2 - d->y1) - in);
}

/* Violations of the rect rule for one photo (printed): a reference detection >= 0.5 + MARGIN
 * without a partner of ours (same class, IoU >= 0.7, score >= 0.5 - MARGIN), or one of ours
 * >= 0.5 + MARGIN without a reference partner (score >= 0.5 - MARGIN). Detections in the
 * boundary band may fall either side. */
static int compare(const golden_image *g, const its_det *d, int n, float *max_ds)
{
    const float strong = 0.5f + MARGIN, weak = 0.5f - MARGIN;
    int bad = 0;
    for (int k = 0; k < g->n; k++) {
        const golden_det *r = &g->dets[k];
        if (r->score < strong)
            continue;
        int found = -1;
        for (int j = 0; j < n && found < 0; j++)
            if (d[j].class_id == r->class_id && d[j].score >= weak && iou(r->box, &d[j]) >= 0.7f)
                found = j;
        if (found < 0) {
            printf("    %s: reference class %d score %.3f not found\n", g->name, r->class_id,
                   r->score);
            bad++;
        } else {
            *max_ds = fmaxf(*max_ds, fabsf(d[found].score - r->score));
        }
    }
    for (int j = 0; j < n; j++) {
        if (d[j].score < strong)
            continue;
        int found = 0;
        for (int k = 0; k < g->n && !found; k++)
            found = g->dets[k].class_id == d[j].class_id && g->dets[k].score >= weak &&
                    iou(g->dets[k].box, &d[j]) >= 0.7f;
        if (!found) {
            printf("    %s: class %d score %.3f box [%.0f %.0f %.0f %.0f] not in the reference\n",
                   g->name, d[j].class_id, d[j].score, d[j].x1, d[j].y1, d[j].x2, d[j].y2);
            bad++;
        }
    }
    return bad;
}

static void run_model(const char *dir, const char *file)
{
    char model[1024], jpath[1024], rel[512];
    snprintf(rel, sizeof rel, "models/%s/%s", dir, file);
    if (!its_test_shared_path(rel, model, sizeof model))
        ITS_TEST_SKIP("shared model missing");
    snprintf(rel, sizeof rel, "models/%s/expected_detections.json", dir);
    assert_non_null(its_test_shared_path(rel, jpath, sizeof jpath));
    static golden_image gold[MAX_IMAGES];
    int ng = golden_load(jpath, gold, MAX_IMAGES);
    assert_true(ng > 0);
    int bad = 0, total = 0;
    float max_ds = 0;
    static its_det dets[300];
    for (int i = 0; i < ng; i += g_every) {
        char ipath[1024];
        snprintf(rel, sizeof rel, "media/%.120s", gold[i].name);
        assert_non_null(its_test_shared_path(rel, ipath, sizeof ipath));
        int w, h;
        int n = detect_rect(model, ipath, &w, &h, dets, 300);
        int v = compare(&gold[i], dets, n, &max_ds);
        if (v)
            printf("  %s: %s at %dx%d: %d violations\n", dir, gold[i].name, w, h, v);
        bad += v;
        for (int k = 0; k < gold[i].n; k++)
            total += gold[i].dets[k].score >= 0.5f + MARGIN;
    }
    printf("  %s: rect inference, %d reference detections >= %.2f, %d violations, max |dscore| "
           "of matches %.3f\n",
           dir, total, 0.5f + MARGIN, bad, max_ds);
    assert_int_equal(bad, 0);
}

static void t_yolo11n(void **state)
{
    (void)state;
    run_model("yolo11n-fp32-dequant", "yolo11n_fp32_dequant.onnx");
}

static void t_yolov8n_qdq(void **state)
{
    (void)state;
    run_model("yolov8n-int8-qdq", "yolov8n_entropy.onnx");
}

static void t_yolox_nano(void **state)
{
    (void)state;
    run_model("yolox-nano", "yolox_nano.onnx");
}

/* Shapes after the rewrite, bad sizes, and a model that cannot be resized. */
static void t_shapes_and_refusals(void **state)
{
    (void)state;
    char model[1024], err[512];
    if (!its_test_shared_path("models/yolo11n-fp32-dequant/yolo11n_fp32_dequant.onnx", model,
                              sizeof model))
        ITS_TEST_SKIP("shared model missing");
    its_model_t *m = NULL;
    assert_int_equal(its_model_load(model, &m, err, sizeof err), 0);
    /* the model's own size: nothing changes */
    assert_int_equal(its_model_set_input_size(m, 640, 640, err, sizeof err), 0);
    assert_int_equal(its_model_output(m, 0)->dims[2], 8400);
    /* not multiples of 32, or absurd: refused, model untouched and still usable */
    assert_int_equal(its_model_set_input_size(m, 630, 360, err, sizeof err), ITS_EINVAL);
    assert_non_null(strstr(err, "multiples of 32"));
    assert_int_equal(its_model_set_input_size(m, 0, 384, err, sizeof err), ITS_EINVAL);
    assert_int_equal(its_model_set_input_size(m, 640, 65536, err, sizeof err), ITS_EINVAL);
    assert_int_equal(its_model_output(m, 0)->dims[2], 8400);
    /* 640x384: anchors 80*48 + 40*24 + 20*12 = 5040 */
    assert_int_equal(its_model_set_input_size(m, 640, 384, err, sizeof err), 0);
    const its_tensor_desc *in = its_model_input(m, 0), *out = its_model_output(m, 0);
    assert_int_equal(in->dims[2], 384);
    assert_int_equal(in->dims[3], 640);
    assert_int_equal(out->rank, 3);
    assert_int_equal(out->dims[1], 84);
    assert_int_equal(out->dims[2], 5040);
    /* and on to another size from there, batch 2 */
    assert_int_equal(its_model_set_input_size(m, 352, 640, err, sizeof err), 0);
    assert_int_equal(its_model_output(m, 0)->dims[2], 44 * 80 + 22 * 40 + 11 * 20);
    its_engine_opts eo = {.backend = "cpu", .threads = 1, .max_batch = 2};
    its_engine_t *e = NULL;
    assert_int_equal(its_engine_create(m, &eo, &e, err, sizeof err), 0);
    its_tensor_desc d;
    assert_int_equal(its_engine_output_shape(e, 0, 2, &d), 0);
    assert_int_equal(d.dims[0], 2);
    assert_int_equal(d.dims[2], 4620);
    its_engine_destroy(e);
    its_model_free(m);

    /* NanoDet's Resize has `sizes` baked for 320x320: refused, naming the node */
    if (!its_test_shared_path("models/nanodet-m/nanodet_m.onnx", model, sizeof model))
        return;
    assert_int_equal(its_model_load(model, &m, err, sizeof err), 0);
    assert_int_equal(its_model_set_input_size(m, 320, 192, err, sizeof err), ITS_EUNSUPPORTED);
    printf("  nanodet-m at 320x192: %s\n", err);
    assert_non_null(strstr(err, "Resize"));
    eo.max_batch = 1;
    assert_true(its_engine_create(m, &eo, &e, err, sizeof err) < 0);
    assert_non_null(strstr(err, "resize"));
    its_model_free(m);
}

int main(void)
{
    char probe[1024];
    if (!its_test_shared_path("models", probe, sizeof probe)) {
        return its_test_skip("shared models missing (ITS_SHARED_DIR)");
    }
#if defined(__SANITIZE_ADDRESS__)
    g_every = 1000;
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_shapes_and_refusals),
        cmocka_unit_test(t_yolo11n),
        cmocka_unit_test(t_yolov8n_qdq),
        cmocka_unit_test(t_yolox_nano),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
