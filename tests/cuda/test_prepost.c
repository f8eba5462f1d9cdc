/*
 * GPU pre/post-processing against plain C references written here from the definitions:
 * letterbox of a mixed batch (RGB, BGR, NV12; sizes up- and down-scaled, odd and tiny) and
 * YOLOv8 decode + class-aware NMS (fp32 and fp16 heads, few and very many candidates), both
 * direct and replayed from a captured CUDA graph; and the NV12 letterbox of a real camera frame
 * (in pitched planes, as NVDEC leaves them) against the host reference tests/detect/nv12_ref.c,
 * which tests/detect/test_nv12.c holds to the CPU's RGB letterbox. Exit 77 without a GPU.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "cuda_prepost.h"
#include "its/core.h"
#include "its/video.h"
#include "nv12_ref.h"
#include "testutil.h"

#define CK(x) assert_int_equal((int)(x), 0)

static uint32_t rng_state = 12345;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* ---- letterbox ---------------------------------------------------------------------- */

typedef struct host_frame {
    int w, h, fmt;
    uint8_t *pix; /* packed RGB/BGR, or Y then UV for NV12 (stride = w, uv stride = w) */
} host_frame;

static void ref_rgb(const host_frame *f, int x, int y, double *rgb)
{
    if (f->fmt == ITS_PIX_NV12) {
        double Y = f->pix[(size_t)y * f->w + x];
        const uint8_t *uv = f->pix + (size_t)f->w * f->h + (size_t)(y / 2) * f->w + (x / 2) * 2;
        double U = uv[0] - 128.0, V = uv[1] - 128.0, yy = 1.164383 * (Y - 16.0);
        double r = yy + 1.596027 * V, g = yy - 0.391762 * U - 0.812968 * V, b = yy + 2.017232 * U;
        rgb[0] = fmin(fmax(r, 0), 255);
        rgb[1] = fmin(fmax(g, 0), 255);
        rgb[2] = fmin(fmax(b, 0), 255);
        return;
    }
    const uint8_t *p = f->pix + ((size_t)y * f->w + x) * 3;
    int bgr = f->fmt == ITS_PIX_BGR24;
    rgb[0] = p[bgr ? 2 : 0];
    rgb[1] = p[1];
    rgb[2] = p[bgr ? 0 : 2];
}

/* Canvas pixel by the definition: OpenCV INTER_LINEAR sampling of the RGB image. */
static void ref_canvas(const host_frame *f, const its_cuda_frame *g, int x, int y, double *out)
{
    int ix = x - g->left, iy = y - g->top;
    if (ix < 0 || iy < 0 || ix >= g->new_w || iy >= g->new_h) {
        out[0] = out[1] = out[2] = 114.0 / 255.0;
        return;
    }
    double sx = (ix + 0.5) * f->w / g->new_w - 0.5, sy = (iy + 0.5) * f->h / g->new_h - 0.5;
    if (sx < 0)
        sx = 0;
    if (sy < 0)
        sy = 0;
    int x0 = (int)sx, y0 = (int)sy;
    if (x0 > f->w - 1)
        x0 = f->w - 1;
    if (y0 > f->h - 1)
        y0 = f->h - 1;
    int x1 = x0 + 1 < f->w ? x0 + 1 : f->w - 1, y1 = y0 + 1 < f->h ? y0 + 1 : f->h - 1;
    double ax = x0 == f->w - 1 ? 0 : sx - x0, ay = y0 == f->h - 1 ? 0 : sy - y0;
    double a[3], b[3], c[3], d[3];
    ref_rgb(f, x0, y0, a);
    ref_rgb(f, x1, y0, b);
    ref_rgb(f, x0, y1, c);
    ref_rgb(f, x1, y1, d);
    for (int k = 0; k < 3; k++)
        out[k] =
            ((a[k] * (1 - ax) + b[k] * ax) * (1 - ay) + (c[k] * (1 - ax) + d[k] * ax) * ay) / 255.0;
}

static float half_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023;
    uint32_t bits;
    if (e == 0) {
        float v = ldexpf((float)m, -24);
        return s ? -v : v;
    }
    if (e == 31)
        bits = s | 0x7F800000u | (m << 13);
    else
        bits = s | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Exact for values representable in fp16 (the tests only use such values). */
static uint16_t float_to_half_exact(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    uint32_t s = (b >> 16) & 0x8000, e = (b >> 23) & 255, m = b & 0x7FFFFF;
    if (e == 0)
        return (uint16_t)s;
    return (uint16_t)(s | ((e - 112) << 10) | (m >> 13));
}

static void test_letterbox_plan(void **st)
{
    (void)st;
    its_cuda_frame f[2] = {{.width = 1920, .height = 1080}, {.width = 810, .height = 1080}};
    its_cuda_letterbox_plan(f, 2, 640, 640);
    /* hand-checked: 1920x1080 -> 640x360 at (0, 140); bus.jpg 810x1080 -> 480x640 at (80, 0) */
    assert_int_equal(f[0].new_w, 640);
    assert_int_equal(f[0].new_h, 360);
    assert_int_equal(f[0].left, 0);
    assert_int_equal(f[0].top, 140);
    assert_int_equal(f[1].new_w, 480);
    assert_int_equal(f[1].new_h, 640);
    assert_int_equal(f[1].left, 80);
    assert_int_equal(f[1].top, 0);
}

static void test_letterbox_mixed_batch(void **st)
{
    (void)st;
    enum { N = 6, S = 640 };
    const int dims[N][3] = {{1920, 1080, ITS_PIX_RGB24}, {640, 480, ITS_PIX_BGR24},
                            {1280, 720, ITS_PIX_NV12},   {333, 517, ITS_PIX_RGB24},
                            {18, 10, ITS_PIX_NV12},      {3840, 2160, ITS_PIX_BGR24}};
    host_frame hf[N];
    its_cuda_frame f[N];
    memset(f, 0, sizeof f);
    for (int i = 0; i < N; i++) {
        hf[i].w = dims[i][0];
        hf[i].h = dims[i][1];
        hf[i].fmt = dims[i][2];
        size_t bytes = hf[i].fmt == ITS_PIX_NV12 ? (size_t)hf[i].w * hf[i].h * 3 / 2
                                                 : (size_t)hf[i].w * hf[i].h * 3;
        hf[i].pix = malloc(bytes);
        assert_non_null(hf[i].pix);
        /* smooth gradients plus noise: exercises interpolation, never constant */
        for (size_t k = 0; k < bytes; k++)
            hf[i].pix[k] = (uint8_t)((k * 7 / 3 + (k / (size_t)hf[i].w) * 5 + (rnd() & 15)) & 255);
        uint8_t *d;
        CK(cudaMalloc((void **)&d, bytes));
        CK(cudaMemcpy(d, hf[i].pix, bytes, cudaMemcpyHostToDevice));
        f[i].data = d;
        f[i].width = hf[i].w;
        f[i].height = hf[i].h;
        f[i].fmt = hf[i].fmt;
        if (hf[i].fmt == ITS_PIX_NV12) {
            f[i].stride = hf[i].w;
            f[i].uv = d + (size_t)hf[i].w * hf[i].h;
            f[i].uv_stride = hf[i].w;
        } else {
            f[i].stride = hf[i].w * 3;
        }
    }
    its_cuda_letterbox_plan(f, N, S, S);
    its_cuda_frame *df;
    CK(cudaMalloc((void **)&df, sizeof f));
    CK(cudaMemcpy(df, f, sizeof f, cudaMemcpyHostToDevice));
    size_t px = (size_t)N * S * S;
    uint16_t *d16;
    float *d32;
    CK(cudaMalloc((void **)&d16, px * 4 * 2));
    CK(cudaMalloc((void **)&d32, px * 3 * 4));
    CK(cudaMemset(d16, 0xFF, px * 8)); /* poison: NaN halves */
    CK(cudaMemset(d32, 0xFF, px * 12));
    CK(its_cuda_letterbox(df, N, S, S, 4, d16, 0));
    CK(its_cuda_letterbox_nchw_f32(df, N, S, S, d32, 0));
    CK(cudaDeviceSynchronize());
    uint16_t *h16 = malloc(px * 8);
    float *h32 = malloc(px * 12);
    assert_non_null(h16);
    assert_non_null(h32);
    CK(cudaMemcpy(h16, d16, px * 8, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(h32, d32, px * 12, cudaMemcpyDeviceToHost));
    double max16 = 0, max32 = 0;
    for (int i = 0; i < N; i++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                double ref[3];
                ref_canvas(&hf[i], &f[i], x, y, ref);
                size_t p = ((size_t)i * S + y) * S + x;
                for (int c = 0; c < 4; c++) {
                    double want = c < 3 ? ref[c] : 0.0;
                    float got16 = half_to_float(h16[p * 4 + c]);
                    double e16 = isfinite(got16) ? fabs(got16 - want) : 1e9;
                    if (e16 > max16)
                        max16 = e16;
                    if (c < 3) {
                        float got = h32[((size_t)i * 3 + c) * S * S + (size_t)y * S + x];
                        double e = isfinite(got) ? fabs(got - want) : 1e9;
                        if (e > max32)
                            max32 = e;
                    }
                }
            }
    printf("letterbox: max abs error fp16 NHWC %.3g, fp32 NCHW %.3g\n", max16, max32);
    assert_true(max16 < 1.0 / 1024); /* fp16 has 11 significant bits */
    assert_true(max32 < 1e-4);       /* fp32 source coordinates of 4K frames: ~0.03 grey levels */
    for (int i = 0; i < N; i++) {
        CK(cudaFree((void *)f[i].data));
        free(hf[i].pix);
    }
    CK(cudaFree(df));
    CK(cudaFree(d16));
    CK(cudaFree(d32));
    free(h16);
    free(h32);
}

/* ---- decode + NMS ------------------------------------------------------------------- */

enum { NCLS = 80, NA = 8400, MAXDET = 300, MAXCAND = 1024 };

typedef struct cand {
    float score;
    int anchor, cls;
    float b[4];
} cand;

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->anchor - y->anchor;
}

static double iou(const float *a, const float *b)
{
    double iw = fmin(a[2], b[2]) - fmax(a[0], b[0]), ih = fmin(a[3], b[3]) - fmax(a[1], b[1]);
    double inter = fmax(iw, 0) * fmax(ih, 0);
    double u = fmax(a[2] - a[0], 0) * fmax(a[3] - a[1], 0) +
               fmax(b[2] - b[0], 0) * fmax(b[3] - b[1], 0) - inter;
    return u > 0 ? inter / u : 0;
}

/* Greedy class-aware NMS by the textbook definition; returns the kept count. */
static int ref_nms(const float *head, float conf, float thr, const its_cuda_frame *g, its_det *out,
                   int *n_cand)
{
    cand *c = malloc(sizeof(cand) * NA);
    assert_non_null(c);
    int n = 0;
    for (int a = 0; a < NA; a++) {
        int bc = 0;
        float best = head[4 * NA + a];
        for (int k = 1; k < NCLS; k++)
            if (head[(4 + k) * NA + a] > best) {
                best = head[(4 + k) * NA + a];
                bc = k;
            }
        if (best < conf)
            continue;
        float cx = head[a], cy = head[NA + a], w = head[2 * NA + a], h = head[3 * NA + a];
        c[n] = (cand){best, a, bc, {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2}};
        n++;
    }
    *n_cand = n;
    qsort(c, (size_t)n, sizeof *c, cand_cmp);
    if (n > MAXCAND)
        n = MAXCAND;
    int kept = 0;
    char *dead = calloc((size_t)n + 1, 1);
    for (int i = 0; i < n && kept < MAXDET; i++) {
        if (dead[i])
            continue;
        its_det d;
        d.x1 = fminf(fmaxf((c[i].b[0] - g->left) / g->scale, 0), (float)g->width);
        d.y1 = fminf(fmaxf((c[i].b[1] - g->top) / g->scale, 0), (float)g->height);
        d.x2 = fminf(fmaxf((c[i].b[2] - g->left) / g->scale, 0), (float)g->width);
        d.y2 = fminf(fmaxf((c[i].b[3] - g->top) / g->scale, 0), (float)g->height);
        d.score = c[i].score;
        d.class_id = c[i].cls;
        d.track_id = 0;
        out[kept++] = d;
        for (int j = i + 1; j < n; j++)
            if (!dead[j] && c[j].cls == c[i].cls && iou(c[i].b, c[j].b) > thr)
                dead[j] = 1;
    }
    free(dead);
    free(c);
    return kept;
}

/* A head with clusters of overlapping boxes of a few classes; scores on a 1/1024 grid and
 * coordinates on a 1/2 grid so that the same values are exact in fp16. `dense` puts every
 * anchor over a low threshold (more than MAXCAND candidates). */
static void make_head(float *h, int dense)
{
    for (int a = 0; a < NA; a++) {
        h[a] = (float)(rnd() % 1280) / 2;
        h[NA + a] = (float)(rnd() % 1280) / 2;
        h[2 * NA + a] = 8 + (float)(rnd() % 200) / 2;
        h[3 * NA + a] = 8 + (float)(rnd() % 200) / 2;
        for (int k = 0; k < NCLS; k++)
            h[(4 + k) * NA + a] = (float)(rnd() % (dense ? 1024 : 200)) / 1024;
    }
    for (int cl = 0; cl < 40; cl++) { /* clusters */
        float cx = 40 + (float)(rnd() % 1120) / 2, cy = 40 + (float)(rnd() % 1120) / 2;
        float w = 20 + (float)(rnd() % 300) / 2, hh = 20 + (float)(rnd() % 300) / 2;
        int cls = (int)(rnd() % 5);
        for (int m = 0; m < 12; m++) {
            int a = (int)(rnd() % NA);
            h[a] = cx + (float)((int)(rnd() % 17) - 8) / 2;
            h[NA + a] = cy + (float)((int)(rnd() % 17) - 8) / 2;
            h[2 * NA + a] = w + (float)((int)(rnd() % 17) - 8) / 2;
            h[3 * NA + a] = hh + (float)((int)(rnd() % 17) - 8) / 2;
            int c = m % 4 == 3 ? (cls + 1) % NCLS : cls;
            h[(4 + c) * NA + a] = (float)(300 + rnd() % 700) / 1024;
        }
    }
}

static void check_decode(int is_f16, int dense, int use_graph)
{
    enum { N = 5 };
    float conf = dense ? 0.05f : 0.25f, thr = 0.45f;
    size_t per = (size_t)(4 + NCLS) * NA;
    float *h = malloc(sizeof(float) * per * N);
    uint16_t *h16 = malloc(2 * per * N);
    assert_non_null(h);
    assert_non_null(h16);
    for (int b = 0; b < N; b++)
        make_head(h + b * per, dense);
    for (size_t i = 0; i < per * N; i++)
        h16[i] = float_to_half_exact(h[i]);
    its_cuda_frame f[N];
    memset(f, 0, sizeof f);
    for (int b = 0; b < N; b++) {
        f[b].width = 300 + (int)(rnd() % 3000);
        f[b].height = 300 + (int)(rnd() % 2000);
    }
    its_cuda_letterbox_plan(f, N, 640, 640);
    void *dh, *scr;
    its_cuda_frame *df;
    its_engine_det_list *dl;
    its_det *dd;
    CK(cudaMalloc(&dh, sizeof(float) * per * N));
    CK(cudaMemcpy(dh, is_f16 ? (void *)h16 : (void *)h, (is_f16 ? 2 : 4) * per * N,
                  cudaMemcpyHostToDevice));
    CK(cudaMalloc((void **)&df, sizeof f));
    CK(cudaMemcpy(df, f, sizeof f, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&scr, its_cuda_decode_scratch_bytes(N, NA)));
    CK(cudaMalloc((void **)&dl, sizeof(its_engine_det_list) * N));
    CK(cudaMalloc((void **)&dd, sizeof(its_det) * N * MAXDET));
    CK(cudaMemset(dl, 0xFF, sizeof(its_engine_det_list) * N));
    cudaStream_t s;
    CK(cudaStreamCreate(&s));
    if (use_graph) {
        cudaGraph_t g;
        cudaGraphExec_t ge;
        CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
        CK(its_cuda_decode_nms(dh, is_f16, N, NCLS, NA, conf, thr, MAXCAND, MAXDET, df, scr, dl, dd,
                               s));
        CK(cudaStreamEndCapture(s, &g));
        CK(cudaGraphInstantiate(&ge, g, 0));
        for (int r = 0; r < 3; r++) /* replays must not accumulate state */
            CK(cudaGraphLaunch(ge, s));
        CK(cudaGraphExecDestroy(ge));
        CK(cudaGraphDestroy(g));
    } else {
        CK(its_cuda_decode_nms(dh, is_f16, N, NCLS, NA, conf, thr, MAXCAND, MAXDET, df, scr, dl, dd,
                               s));
    }
    CK(cudaStreamSynchronize(s));
    its_engine_det_list hl[N];
    its_det *hd = malloc(sizeof(its_det) * N * MAXDET);
    its_det *rd = malloc(sizeof(its_det) * MAXDET);
    assert_non_null(hd);
    assert_non_null(rd);
    CK(cudaMemcpy(hl, dl, sizeof hl, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(hd, dd, sizeof(its_det) * N * MAXDET, cudaMemcpyDeviceToHost));
    int total = 0;
    for (int b = 0; b < N; b++) {
        int ncand;
        int k = ref_nms(h + b * per, conf, thr, &f[b], rd, &ncand);
        assert_int_equal(hl[b].n_cand, ncand);
        assert_int_equal(hl[b].truncated, ncand > MAXCAND);
        assert_int_equal(hl[b].count, k);
        for (int i = 0; i < k; i++) {
            const its_det *g = &hd[b * MAXDET + i];
            assert_int_equal(g->class_id, rd[i].class_id);
            assert_true(g->score == rd[i].score);
            assert_true(fabsf(g->x1 - rd[i].x1) < 1e-2f && fabsf(g->y1 - rd[i].y1) < 1e-2f);
            assert_true(fabsf(g->x2 - rd[i].x2) < 1e-2f && fabsf(g->y2 - rd[i].y2) < 1e-2f);
        }
        total += k;
    }
    printf("decode+nms f16=%d dense=%d graph=%d: %d detections over %d images match\n", is_f16,
           dense, use_graph, total, N);
    assert_true(total > 0);
    CK(cudaStreamDestroy(s));
    CK(cudaFree(dh));
    CK(cudaFree(df));
    CK(cudaFree(scr));
    CK(cudaFree(dl));
    CK(cudaFree(dd));
    free(h);
    free(h16);
    free(hd);
    free(rd);
}

static void test_decode_f32(void **st)
{
    (void)st;
    check_decode(0, 0, 0);
}
static void test_decode_f16_graph(void **st)
{
    (void)st;
    check_decode(1, 0, 1);
}
static void test_decode_dense(void **st)
{
    (void)st;
    check_decode(0, 1, 0);
}

static void test_bad_args(void **st)
{
    (void)st;
    assert_int_equal(its_cuda_letterbox(NULL, 0, 640, 640, 4, NULL, 0), ITS_EINVAL);
    assert_int_equal(its_cuda_letterbox(NULL, 1, 640, 640, 9, NULL, 0), ITS_EINVAL);
    assert_int_equal(
        its_cuda_decode_nms(NULL, 0, 1, 80, NA, 0.25f, 0.45f, 4096, 300, NULL, NULL, NULL, NULL, 0),
        ITS_EINVAL);
}

/* The first frame of traffic_highway_overpass_720p.mp4 as NV12 with a 1536-byte pitch (NVDEC
 * surfaces are pitched), letterboxed into 640x640 and 640x384 on the GPU, fp32 NCHW and fp16
 * NHWC. */
static void test_letterbox_nv12_real(void **st)
{
    (void)st;
    char p[1024], err[256];
    if (!its_test_shared_path("media/traffic_highway_overpass_720p.mp4", p, sizeof p))
        ITS_TEST_SKIP("shared media missing");
    its_video_t *v;
    its_video_opts o = {.decode = ITS_VIDEO_DECODE_CPU};
    assert_int_equal(its_video_open(p, &o, &v, err, sizeof err), 0);
    its_video_frame vf;
    assert_int_equal(its_video_read(v, &vf), 1);
    enum { W = 1280, H = 720, PITCH = 1536 };
    assert_int_equal(vf.width, W);
    assert_int_equal(vf.height, H);
    uint8_t *y = malloc((size_t)W * H), *uv = malloc((size_t)W * H / 2);
    uint8_t *pitched = calloc((size_t)PITCH * H * 3 / 2, 1);
    assert_non_null(y);
    assert_non_null(uv);
    assert_non_null(pitched);
    nv12_from_rgb(vf.data, W, H, y, uv);
    its_video_close(v);
    for (int j = 0; j < H; j++)
        memcpy(pitched + (size_t)j * PITCH, y + (size_t)j * W, W);
    for (int j = 0; j < H / 2; j++)
        memcpy(pitched + (size_t)PITCH * H + (size_t)j * PITCH, uv + (size_t)j * W, W);
    uint8_t *d;
    CK(cudaMalloc((void **)&d, (size_t)PITCH * H * 3 / 2));
    CK(cudaMemcpy(d, pitched, (size_t)PITCH * H * 3 / 2, cudaMemcpyHostToDevice));
    const int sizes[2][2] = {{640, 640}, {640, 384}};
    for (int s = 0; s < 2; s++) {
        int dw = sizes[s][0], dh = sizes[s][1];
        size_t px = (size_t)dw * dh;
        its_cuda_frame f = {.data = d,
                            .uv = d + (size_t)PITCH * H,
                            .width = W,
                            .height = H,
                            .stride = PITCH,
                            .uv_stride = PITCH,
                            .fmt = ITS_PIX_NV12};
        its_cuda_letterbox_plan(&f, 1, dw, dh);
        its_cuda_frame *df;
        float *d32;
        uint16_t *d16;
        CK(cudaMalloc((void **)&df, sizeof f));
        CK(cudaMemcpy(df, &f, sizeof f, cudaMemcpyHostToDevice));
        CK(cudaMalloc((void **)&d32, px * 3 * sizeof(float)));
        CK(cudaMalloc((void **)&d16, px * 4 * 2));
        CK(its_cuda_letterbox_nchw_f32(df, 1, dw, dh, d32, 0));
        CK(its_cuda_letterbox(df, 1, dw, dh, 4, d16, 0));
        CK(cudaDeviceSynchronize());
        float *h32 = malloc(px * 3 * sizeof(float)), *ref = malloc(px * 3 * sizeof(float));
        uint16_t *h16 = malloc(px * 4 * 2);
        assert_non_null(h32);
        assert_non_null(ref);
        assert_non_null(h16);
        CK(cudaMemcpy(h32, d32, px * 3 * sizeof(float), cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(h16, d16, px * 4 * 2, cudaMemcpyDeviceToHost));
        nv12_letterbox_ref(y, W, uv, W, W, H, dw, dh, ref);
        double max32 = 0, max16 = 0;
        for (size_t i = 0; i < px; i++)
            for (int c = 0; c < 3; c++) {
                double want = ref[(size_t)c * px + i];
                double e32 = fabs(h32[(size_t)c * px + i] - want);
                double e16 = fabs(half_to_float(h16[i * 4 + c]) - want);
                e32 = isfinite(e32) ? e32 : 1e9;
                e16 = isfinite(e16) ? e16 : 1e9;
                max32 = e32 > max32 ? e32 : max32;
                max16 = e16 > max16 ? e16 : max16;
            }
        printf("nv12 720p frame -> %dx%d: max abs error fp32 %.3g, fp16 %.3g\n", dw, dh, max32,
               max16);
        assert_true(max32 < 1e-4);
        assert_true(max16 < 1.0 / 1024);
        free(h32);
        free(h16);
        free(ref);
        CK(cudaFree(df));
        CK(cudaFree(d32));
        CK(cudaFree(d16));
    }
    CK(cudaFree(d));
    free(y);
    free(uv);
    free(pitched);
}

int main(void)
{
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        printf("no CUDA device: skipped\n");
        return ITS_TEST_SKIP_CODE;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_letterbox_plan),      cmocka_unit_test(test_letterbox_mixed_batch),
        cmocka_unit_test(test_decode_f32),          cmocka_unit_test(test_decode_f16_graph),
        cmocka_unit_test(test_decode_dense),        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_letterbox_nv12_real),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
