/*
 * cuda backend against the cpu backend on the real models (ARCHITECTURE §5: "the cuda backend
 * is checked against the cpu backend on the device"):
 *  - per op: every activation of the graph exported as an output (batch 1, a real photo);
 *    the maximum relative error (max |cuda - cpu| / max |cpu|) printed per op type and bounded;
 *  - end to end: photos letterboxed, run at batch 4 (fused graph), decoded with class-aware
 *    NMS: every detection with score >= 0.5 of either backend has a partner in the other's
 *    list (score >= 0.3) of the same class with IoU >= 0.7;
 *  - batch consistency: item i of a batch-4 run equals the batch-1 run of the same photo.
 * Exit 77 without a GPU. Models: $ITS_SHARED_DIR/models, photos: $ITS_SHARED_DIR/media.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <turbojpeg.h>

#include "backend_harness.h"
#include "cuda_backend_impl.h"
#include "cuda_prepost.h"
#include "its/core.h"
#include "testutil.h"

#define S 640 /* the models' exported input size */
/* The network input H x W of the harness-loaded engines: 640 x 640, or ITS_BH_INPUT_SIZE
 * (WxH) to run the parity tests at another size (the backend harness rewrites the graph). */
static int g_w = S, g_h = S;

static const char *models[] = {"models/yolo11n-fp32-dequant/yolo11n_fp32_dequant.onnx",
                               "models/yolov8n-int8-qdq/yolov8n_entropy.onnx"};
static const char *photos[] = {"media/bus.jpg", "media/zidane.jpg", "media/street_nyc_bus_lane.jpg",
                               "media/person.jpg"};

/* The cuda backend's devtools extension (loads its module; no device needed). */
static const its_cuda_devtools_i *devtools(void)
{
    const its_cuda_devtools_i *dt = its_bh_ext("cuda", ITS_CUDA_EXT_DEVTOOLS);
    if (!dt)
        fail_msg("the cuda module or its devtools extension is missing");
    return dt;
}

/* Decode a JPEG to RGB and letterbox it (the Ultralytics recipe, OpenCV-style bilinear) into
 * NCHW float; geometry in g. */
static uint8_t *last_rgb; /* the decoded pixels of the last load_photo (caller frees) */

static int load_photo(const char *rel, float *out, its_cuda_frame *g)
{
    char path[512];
    if (!its_test_shared_path(rel, path, sizeof path))
        return -1;
    size_t len;
    uint8_t *jpg = its_test_read_file(path, &len);
    if (!jpg)
        return -1;
    tjhandle tj = tjInitDecompress();
    int w, h, ss, cs;
    if (tjDecompressHeader3(tj, jpg, (unsigned long)len, &w, &h, &ss, &cs) < 0)
        return -1;
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb || tjDecompress2(tj, jpg, (unsigned long)len, rgb, w, 0, h, TJPF_RGB, 0) < 0)
        return -1;
    tjDestroy(tj);
    its_free(jpg);
    memset(g, 0, sizeof *g);
    g->width = w;
    g->height = h;
    devtools()->letterbox_plan(g, 1, g_w, g_h);
    for (int y = 0; y < g_h; y++)
        for (int x = 0; x < g_w; x++) {
            double v[3];
            int ix = x - g->left, iy = y - g->top;
            if (ix < 0 || iy < 0 || ix >= g->new_w || iy >= g->new_h) {
                v[0] = v[1] = v[2] = 114.0;
            } else {
                double sx = (ix + 0.5) * w / g->new_w - 0.5, sy = (iy + 0.5) * h / g->new_h - 0.5;
                sx = sx < 0 ? 0 : sx;
                sy = sy < 0 ? 0 : sy;
                int x0 = (int)sx < w - 1 ? (int)sx : w - 1, y0 = (int)sy < h - 1 ? (int)sy : h - 1;
                int x1 = x0 + 1 < w ? x0 + 1 : w - 1, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
                double ax = x0 == w - 1 ? 0 : sx - x0, ay = y0 == h - 1 ? 0 : sy - y0;
                for (int c = 0; c < 3; c++) {
                    double a = rgb[((size_t)y0 * w + x0) * 3 + c],
                           b = rgb[((size_t)y0 * w + x1) * 3 + c];
                    double cc = rgb[((size_t)y1 * w + x0) * 3 + c],
                           d = rgb[((size_t)y1 * w + x1) * 3 + c];
                    v[c] = (a * (1 - ax) + b * ax) * (1 - ay) + (cc * (1 - ax) + d * ax) * ay;
                }
            }
            for (int c = 0; c < 3; c++)
                out[(size_t)c * g_w * g_h + (size_t)y * g_w + x] = (float)(v[c] / 255.0);
        }
    free(last_rgb);
    last_rgb = rgb;
    return 0;
}

typedef struct det {
    float b[4], score;
    int cls;
} det;

static int det_cmp(const void *a, const void *b)
{
    const det *x = a, *y = b;
    return x->score > y->score ? -1 : x->score < y->score;
}

static double iou(const float *a, const float *b)
{
    double iw = fmin(a[2], b[2]) - fmax(a[0], b[0]), ih = fmin(a[3], b[3]) - fmax(a[1], b[1]);
    double inter = fmax(iw, 0) * fmax(ih, 0);
    double u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    return u > 0 ? inter / u : 0;
}

/* YOLOv8 head [84, A] -> detections >= conf after class-aware NMS 0.45, source pixels. */
static int decode(const float *head, int na, const its_cuda_frame *g, float conf, det *out, int max)
{
    det *c = malloc(sizeof(det) * (size_t)na);
    int n = 0;
    for (int a = 0; a < na; a++) {
        int bc = 0;
        float best = head[4 * na + a];
        for (int k = 1; k < 80; k++)
            if (head[(4 + k) * na + a] > best)
                best = head[(4 + k) * na + a], bc = k;
        if (best < conf)
            continue;
        float cx = head[a], cy = head[na + a], w = head[2 * na + a], h = head[3 * na + a];
        det d = {{(cx - w / 2 - g->left) / g->scale, (cy - h / 2 - g->top) / g->scale,
                  (cx + w / 2 - g->left) / g->scale, (cy + h / 2 - g->top) / g->scale},
                 best,
                 bc};
        c[n++] = d;
    }
    qsort(c, (size_t)n, sizeof *c, det_cmp);
    int k = 0;
    for (int i = 0; i < n && k < max; i++) {
        int keep = 1;
        for (int j = 0; j < k && keep; j++)
            if (out[j].cls == c[i].cls && iou(out[j].b, c[i].b) > 0.45)
                keep = 0;
        if (keep)
            out[k++] = c[i];
    }
    free(c);
    return k;
}

/* Every det >= 0.5 in a has a partner in b (score >= 0.3, same class, IoU >= 0.7). */
static int unmatched(const det *a, int na, const det *b, int nb, const char *what)
{
    int bad = 0;
    for (int i = 0; i < na; i++) {
        if (a[i].score < 0.5f)
            continue;
        int ok = 0;
        for (int j = 0; j < nb && !ok; j++)
            ok = b[j].score >= 0.3f && b[j].cls == a[i].cls && iou(a[i].b, b[j].b) >= 0.7;
        if (!ok) {
            printf("  e2e: %s det class %d score %.3f [%.0f %.0f %.0f %.0f] has no partner\n", what,
                   a[i].cls, a[i].score, a[i].b[0], a[i].b[1], a[i].b[2], a[i].b[3]);
            bad++;
        }
    }
    return bad;
}

static void test_model(const char *rel)
{
    char path[512], err[512];
    assert_non_null(its_test_shared_path(rel, path, sizeof path));
    const char *name = strrchr(rel, '/') + 1;
    size_t in1 = (size_t)3 * g_w * g_h;
    float *x = malloc(in1 * 4 * sizeof(float));
    its_cuda_frame geo[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(load_photo(photos[i], x + i * in1, &geo[i]), 0);

    /* ---- per op, batch 1 ---- */
    its_bh cpu, gpu;
    int rc = its_bh_load(&cpu, path, "cpu", 1, 1, err, sizeof err);
    if (rc < 0)
        printf("cpu probe load: %s\n", err);
    assert_int_equal(rc, 0);
    rc = its_bh_load(&gpu, path, "cuda", 1, 1, err, sizeof err);
    if (rc < 0)
        printf("cuda probe load: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(cpu.g.n_outputs, gpu.g.n_outputs);
    int no = cpu.g.n_outputs;
    void **oc = calloc((size_t)no, sizeof(void *)), **og = calloc((size_t)no, sizeof(void *));
    const its_shape *sc = its_bh_shapes(&cpu, 1);
    for (int k = 0; k < no; k++) {
        size_t n = (size_t)its__shape_numel(&sc[cpu.g.outputs[k]]);
        oc[k] = calloc(n ? n : 1, sizeof(float));
        og[k] = calloc(n ? n : 1, sizeof(float));
    }
    const void *in[1] = {x};
    assert_int_equal(its_bh_run(&cpu, 1, 1, in, oc), 0);
    assert_int_equal(its_bh_run(&gpu, 1, 1, in, og), 0);
    double worst[ITS_OP_COUNT] = {0};
    int count[ITS_OP_COUNT] = {0};
    int nan = 0;
    for (int k = 0; k < no; k++) {
        int t = cpu.g.outputs[k];
        int p = cpu.g.tensors[t].producer;
        int op = p >= 0 ? (int)cpu.g.nodes[p].op : 0;
        size_t n = (size_t)its__shape_numel(&sc[t]);
        double md = 0, mr = 0;
        const float *a = og[k], *b = oc[k];
        for (size_t i = 0; i < n; i++) {
            if (!isfinite(a[i]))
                nan++;
            md = fmax(md, fabs((double)a[i] - b[i]));
            mr = fmax(mr, fabs((double)b[i]));
        }
        double rerr = md / (mr > 1e-6 ? mr : 1e-6);
        if (rerr > worst[op])
            worst[op] = rerr;
        count[op]++;
    }
    printf("parity %s: %d tensors compared (batch 1, %s)\n", name, no, photos[0]);
    int is_qdq = strstr(name, "entropy") != NULL;
    double limit = is_qdq ? 0.5 : 0.05;
    int over = 0;
    for (int op = 0; op < ITS_OP_COUNT; op++) {
        if (!count[op])
            continue;
        printf("op %-18s %-28s tensors %4d  max rel error %.2e%s\n", its__op_name((its_op)op), name,
               count[op], worst[op], worst[op] > limit ? "  OVER" : "");
        over += worst[op] > limit;
    }
    assert_int_equal(nan, 0);
    if (!is_qdq)
        assert_int_equal(over, 0);
    for (int k = 0; k < no; k++) {
        free(oc[k]);
        free(og[k]);
    }
    free(oc);
    free(og);
    its_bh_free(&cpu);
    its_bh_free(&gpu);

    /* ---- end to end, fused graph, batch 4 and 1 ---- */
    assert_int_equal(its_bh_load(&cpu, path, "cpu", 4, 0, err, sizeof err), 0);
    rc = its_bh_load(&gpu, path, "cuda", 4, 0, err, sizeof err);
    if (rc < 0)
        printf("cuda load: %s\n", err);
    assert_int_equal(rc, 0);
    int na = (int)its_bh_shapes(&gpu, 4)[gpu.g.outputs[0]].dims[2];
    size_t o1 = (size_t)84 * na;
    float *hc = malloc(o1 * 4 * sizeof(float)), *hg = malloc(o1 * 4 * sizeof(float));
    float *hg1 = malloc(o1 * sizeof(float));
    void *outc[1] = {hc}, *outg[1] = {hg};
    assert_int_equal(its_bh_run(&cpu, 4, 4, in, outc), 0);
    assert_int_equal(its_bh_run(&gpu, 4, 4, in, outg), 0);
    int bad = 0, total = 0;
    double bdiff = 0, bmax = 0;
    for (int i = 0; i < 4; i++) {
        det dc[300], dg[300];
        int nc = decode(hc + i * o1, na, &geo[i], 0.25f, dc, 300);
        int ng = decode(hg + i * o1, na, &geo[i], 0.25f, dg, 300);
        bad += unmatched(dc, nc, dg, ng, "cpu") + unmatched(dg, ng, dc, nc, "cuda");
        for (int j = 0; j < nc; j++)
            total += dc[j].score >= 0.5f;
        const void *in1p[1] = {x + i * in1};
        void *out1[1] = {hg1};
        assert_int_equal(its_bh_run(&gpu, 1, 1, in1p, out1), 0);
        for (size_t j = 0; j < o1; j++) {
            bdiff = fmax(bdiff, fabs((double)hg1[j] - hg[i * o1 + j]));
            bmax = fmax(bmax, fabs((double)hg[i * o1 + j]));
        }
    }
    printf("e2e %s: %d cpu detections >= 0.5 over %d photos, %d unmatched; batch-4 vs batch-1 "
           "max rel difference %.2e\n",
           name, total, 4, bad, bdiff / bmax);
    assert_true(total > 0);
    assert_int_equal(bad, 0);
    assert_true(bdiff / bmax < 1e-2);
    free(hc);
    free(hg);
    free(hg1);
    free(x);
    its_bh_free(&cpu);
    its_bh_free(&gpu);
}

/* The frames path: 8-bit RGB and BGR frames of different sizes -> GPU letterbox, network,
 * decode and NMS in one graph -> compact lists; against the cpu backend on the reference
 * letterbox with the same decode. Two batches in flight (both staging slots). */
static void test_frames_path(void **st)
{
    (void)st;
    char path[512], err[512];
    assert_non_null(its_test_shared_path(models[0], path, sizeof path));
    size_t in1 = (size_t)3 * g_w * g_h;
    float *x = malloc(in1 * 4 * sizeof(float));
    uint8_t *pix[4];
    its_cuda_frame geo[4], fr[4];
    memset(fr, 0, sizeof fr);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(load_photo(photos[i], x + i * in1, &geo[i]), 0);
        pix[i] = last_rgb;
        last_rgb = NULL;
        fr[i].width = geo[i].width;
        fr[i].height = geo[i].height;
        fr[i].stride = geo[i].width * 3;
        fr[i].fmt = i % 2 ? ITS_PIX_BGR24 : ITS_PIX_RGB24;
        if (i % 2) /* swap to BGR in place */
            for (size_t k = 0; k < (size_t)geo[i].width * geo[i].height; k++) {
                uint8_t t = pix[i][3 * k];
                pix[i][3 * k] = pix[i][3 * k + 2];
                pix[i][3 * k + 2] = t;
            }
        fr[i].data = pix[i];
    }
    its_bh cpu, gpu;
    assert_int_equal(its_bh_load(&cpu, path, "cpu", 4, 0, err, sizeof err), 0);
    assert_int_equal(its_bh_load(&gpu, path, "cuda", 4, 0, err, sizeof err), 0);
    its__cuda_det_opts o = {.conf = 0.25f,
                            .iou = 0.45f,
                            .max_cand = 1024,
                            .max_det = 300,
                            .max_frame_bytes = (size_t)4096 * 2160 * 3};
    int rc = devtools()->detect_setup(gpu.ctx, &o);
    assert_int_equal(rc, 0);
    int t0 = devtools()->detect_submit(gpu.ctx, 4, 4, fr);
    int t1 = devtools()->detect_submit(gpu.ctx, 4, 3, fr); /* padded batch, second slot */
    assert_true(t0 >= 0 && t1 >= 0 && t0 != t1);
    assert_int_equal(devtools()->detect_submit(gpu.ctx, 4, 4, fr), ITS_EBUSY);
    its_engine_det_list l0[4], l1[4];
    its_det *d0 = malloc(sizeof(its_det) * 4 * 300);
    its_det *d1 = malloc(sizeof(its_det) * 4 * 300);
    assert_int_equal(devtools()->detect_wait(gpu.ctx, t0, l0, d0), 4);
    assert_int_equal(devtools()->detect_wait(gpu.ctx, t1, l1, d1), 3);
    int na = (int)its_bh_shapes(&cpu, 4)[cpu.g.outputs[0]].dims[2];
    size_t o1 = (size_t)84 * na;
    float *hc = malloc(o1 * 4 * sizeof(float));
    const void *in[1] = {x};
    void *outc[1] = {hc};
    assert_int_equal(its_bh_run(&cpu, 4, 4, in, outc), 0);
    int bad = 0, total = 0;
    for (int i = 0; i < 4; i++) {
        det dc[300], dg[300];
        int nc = decode(hc + i * o1, na, &geo[i], 0.25f, dc, 300);
        int ng = l0[i].count;
        for (int j = 0; j < ng; j++) {
            const its_det *e = &d0[i * 300 + j];
            det q = {{e->x1, e->y1, e->x2, e->y2}, e->score, e->class_id};
            dg[j] = q;
        }
        bad += unmatched(dc, nc, dg, ng, "cpu") + unmatched(dg, ng, dc, nc, "cuda frames");
        for (int j = 0; j < nc; j++)
            total += dc[j].score >= 0.5f;
        if (i < 3) { /* the second batch (3 real frames) gives the same lists */
            assert_int_equal(l1[i].count, l0[i].count);
            for (int j = 0; j < l0[i].count; j++)
                assert_true(fabsf(d1[i * 300 + j].score - d0[i * 300 + j].score) < 1e-6f);
        }
    }
    printf("e2e frames path (GPU letterbox RGB/BGR + decode + NMS, batch 4, 2 in flight): %d cpu "
           "detections >= 0.5, %d unmatched\n",
           total, bad);
    assert_true(total > 0);
    assert_int_equal(bad, 0);
    for (int i = 0; i < 4; i++)
        free(pix[i]);
    free(d0);
    free(d1);
    free(hc);
    free(x);
    free(last_rgb);
    last_rgb = NULL;
    its_bh_free(&cpu);
    its_bh_free(&gpu);
}

/* The public API with the cuda backend: its_engine_create, its_engine_run, and the
 * asynchronous its_engine_submit / its_engine_wait pair (same result as run). */
static void test_public_api(void **st)
{
    (void)st;
    /* the public API loads the model at its own 640 x 640, whatever ITS_BH_INPUT_SIZE says */
    int saved_w = g_w, saved_h = g_h;
    g_w = g_h = S;
    char path[512], err[512];
    assert_non_null(its_test_shared_path(models[0], path, sizeof path));
    its_model_t *m;
    assert_int_equal(its_model_load(path, &m, err, sizeof err), 0);
    its_engine_opts o = {.backend = "cuda", .max_batch = 2};
    its_engine_t *e;
    int rc = its_engine_create(m, &o, &e, err, sizeof err);
    if (rc < 0)
        printf("create: %s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(its_engine_backend_name(e), "cuda");
    assert_true(its_engine_arena_bytes(e) > 0);
    size_t in1 = (size_t)3 * S * S, o1 = (size_t)84 * 8400;
    float *x = malloc(in1 * 2 * sizeof(float));
    its_cuda_frame g;
    assert_int_equal(load_photo(photos[0], x, &g), 0);
    assert_int_equal(load_photo(photos[1], x + in1, &g), 0);
    float *a = malloc(o1 * 2 * sizeof(float)), *b = malloc(o1 * 2 * sizeof(float));
    float *outa[1] = {a}, *outb[1] = {b};
    assert_int_equal(its_engine_run(e, 2, x, outa), 0);
    const void *in[1] = {x};
    memset(b, 0xFF, o1 * 2 * sizeof(float));
    assert_int_equal(its_engine_submit(e, 2, in, (void *const *)outb), 0);
    assert_int_equal(its_engine_wait(e), 0);
    assert_memory_equal(a, b, o1 * 2 * sizeof(float));
    assert_int_equal(its_engine_run(e, 1, x + in1, outb), 0); /* batch 1 plan */
    double md = 0, mx = 0;
    for (size_t i = 0; i < o1; i++) {
        md = fmax(md, fabs((double)b[i] - a[o1 + i]));
        mx = fmax(mx, fabs((double)a[o1 + i]));
    }
    printf("public API: run == submit/wait bit for bit; batch-1 vs batch-2 max rel %.2e\n",
           md / mx);
    assert_true(md / mx < 1e-2);
    its_engine_destroy(e);
    its_model_free(m);
    free(x);
    free(a);
    free(b);
    free(last_rgb);
    last_rgb = NULL;
    g_w = saved_w;
    g_h = saved_h;
}

static void test_yolo11n(void **st)
{
    (void)st;
    test_model(models[0]);
}

static void test_yolov8n_qdq(void **st)
{
    (void)st;
    test_model(models[1]);
}

int main(void)
{
    if (!its_engine_backend_available("cuda")) {
        printf("no CUDA device: skipped\n");
        return ITS_TEST_SKIP_CODE;
    }
    const char *isz = getenv("ITS_BH_INPUT_SIZE");
    if (isz && *isz &&
        (sscanf(isz, "%dx%d", &g_w, &g_h) != 2 || g_w < 32 || g_h < 32 || g_w > 4096 ||
         g_h > 4096)) {
        printf("ITS_BH_INPUT_SIZE '%s' is not WxH\n", isz);
        return 1;
    }
    char p[512];
    if (!its_test_shared_path(models[0], p, sizeof p)) {
        return its_test_skip("shared models missing");
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yolo11n), cmocka_unit_test(test_yolov8n_qdq),
        cmocka_unit_test(test_frames_path), cmocka_unit_test(test_public_api)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
