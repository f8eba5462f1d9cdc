/*
 * The real models in $ITS_SHARED_DIR/models load, run at batch 1 and batch 2, and a batch of
 * two equals two batch-1 runs (this exercises the Reshape batch rewrite: the exports bake
 * batch 1 into their shape constants). Inputs are deterministic pseudo-images in the value
 * range each model expects. The comparison tolerance is loose for the int8 models: batch 2
 * changes the DynamicQuantizeLinear range (it is computed over the whole batch), so equal
 * results are not expected there; for fp32 models we require 1e-4 relative agreement.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "its/alloc.h"
#include "its/engine.h"
#include "its/error.h"

/* Under AddressSanitizer our kernels run several times slower: the int8-dynamic model (whose
 * ConvInteger runs on the reference kernel) then runs at batch 1 only, and the plain-path
 * comparison runs on yolox-nano only. */
#if defined(__SANITIZE_ADDRESS__)
#define ITS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ITS_SANITIZED 1
#endif
#endif
#ifndef ITS_SANITIZED
#define ITS_SANITIZED 0
#endif

typedef struct model_case {
    const char *path;
    float scale; /* input values in [0, scale] */
    int dynamic_quant;
    double max_tol, mean_tol; /* optimized vs plain path, relative to the output range */
} model_case;

static const model_case cases[] = {
    {"models/yolo11n-fp32-dequant/yolo11n_fp32_dequant.onnx", 1.f, 0, 1e-4, 1e-6},
    /* ConvInteger runs on our reference kernel in both paths: no plain-path check */
    {"models/yolo11n-int8-dynamic/yolo11n_quantized.onnx", 1.f, 1, -1, -1},
    /* QDQ: float rounding differences flip single quantization steps (x/s vs x*(1/s) in the
     * fused post-ops), which the DFL head can turn into a few pixels of one box */
    {"models/yolov8n-int8-qdq/yolov8n_entropy.onnx", 1.f, 0, 0.25, 1e-3},
    {"models/yolox-nano/yolox_nano.onnx", 255.f, 0, 1e-4, 1e-6},
    {"models/nanodet-m/nanodet_m.onnx", 2.f, 0, 1e-4, 1e-6},
};

static void fill(float *x, size_t n, float scale, unsigned seed)
{
    /* smooth pattern plus noise: enough structure for activations to be non-trivial */
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        float noise = (float)((seed >> 16) & 0x7fff) / 32767.f;
        float wave = 0.5f + 0.5f * sinf((float)(i % 640) * 0.05f + (float)(i / 640) * 0.03f);
        x[i] = scale * (0.7f * wave + 0.3f * noise);
    }
}

static void run_model(const model_case *mc)
{
    char path[1024], err[512];
    if (!its_test_shared_path(mc->path, path, sizeof path)) {
        ITS_TEST_SKIP("shared models missing");
    }
    its_model_t *m = NULL;
    int rc = its_model_load(path, &m, err, sizeof err);
    if (rc < 0)
        fail_msg("%s: %s", mc->path, err);
    assert_int_equal(its_model_n_inputs(m), 1);
    const its_tensor_desc *in = its_model_input(m, 0);
    assert_int_equal(in->rank, 4);
    int light = ITS_SANITIZED && mc->dynamic_quant;
    its_engine_opts o = {.backend = "cpu", .threads = 2, .max_batch = light ? 1 : 2};
    its_engine_t *e = NULL;
    rc = its_engine_create(m, &o, &e, err, sizeof err);
    if (rc < 0)
        fail_msg("%s: %s", mc->path, err);
    size_t item = (size_t)(in->dims[1] * in->dims[2] * in->dims[3]);
    float *x = its_malloc(ITS_MOD_TEST, 2 * item * sizeof(float));
    assert_non_null(x);
    fill(x, item, mc->scale, 1);
    fill(x + item, item, mc->scale, 2);
    int no = its_model_n_outputs(m);
    float *o1[16], *o2[16], *ob[16];
    size_t osz[16];
    assert_true(no <= 16);
    for (int k = 0; k < no; k++) {
        its_tensor_desc d1, d2;
        assert_int_equal(its_engine_output_shape(e, k, 1, &d1), 0);
        if (!light) {
            assert_int_equal(its_engine_output_shape(e, k, 2, &d2), 0);
            assert_int_equal(d2.dims[0], 2 * d1.dims[0]);
        }
        size_t n = 1;
        for (int r = 0; r < d1.rank; r++)
            n *= (size_t)d1.dims[r];
        osz[k] = n;
        o1[k] = its_malloc(ITS_MOD_TEST, n * sizeof(float));
        o2[k] = its_malloc(ITS_MOD_TEST, n * sizeof(float));
        ob[k] = its_malloc(ITS_MOD_TEST, 2 * n * sizeof(float));
    }
    uint64_t allocs = its_alloc_count();
    assert_int_equal(its_engine_run(e, 1, x, o1), 0);
    if (!mc->dynamic_quant) /* its batch 2 cannot equal two batch-1 runs (see below) */
        assert_int_equal(its_engine_run(e, 1, x + item, o2), 0);
    if (!light)
        assert_int_equal(its_engine_run(e, 2, x, ob), 0);
    /* runs allocate nothing through its_malloc */
    assert_int_equal(its_alloc_count(), allocs);
    double maxrel = 0, maxabs = 0;
    for (int k = 0; k < no && !mc->dynamic_quant; k++) {
        for (size_t i = 0; i < 2 * osz[k]; i++) {
            float a = i < osz[k] ? o1[k][i] : o2[k][i - osz[k]];
            float b = ob[k][i];
            assert_true(isfinite(b) && isfinite(a));
            double d = fabs((double)a - b);
            maxabs = d > maxabs ? d : maxabs;
            double rel = d / (fabs((double)a) + 1e-3);
            maxrel = rel > maxrel ? rel : maxrel;
        }
    }
    if (mc->dynamic_quant)
        printf("%s: arena %zu bytes, batch 2 not compared (its quantization range spans the "
               "batch)\n",
               mc->path, its_engine_arena_bytes(e));
    else
        printf("%s: arena %zu bytes, batch2 vs 2x batch1: max abs diff %.3g, max rel diff "
               "%.3g\n",
               mc->path, its_engine_arena_bytes(e), maxabs, maxrel);
    if (!mc->dynamic_quant)
        assert_true(maxrel < 1e-4);
    /* the first output is not constant: the model really computed something */
    float mn = o1[0][0], mx = o1[0][0];
    for (size_t i = 0; i < osz[0]; i++) {
        mn = o1[0][i] < mn ? o1[0][i] : mn;
        mx = o1[0][i] > mx ? o1[0][i] : mx;
    }
    assert_true(mx > mn);
    /* the plain path (NCHW everywhere, no fusions: oneDNN's GEMM convolutions and our
     * kernels) agrees with the optimized one (NHWC, fused post-ops) */
    /* under sanitizers the plain path (slow, instrumented kernels) is checked on the
     * smallest model only; the unsanitized run checks all of them */
    if (mc->max_tol < 0 || (ITS_SANITIZED && mc->scale != 255.f))
        goto done;
    setenv("ITS_ENGINE_NCHW", "1", 1);
    setenv("ITS_ENGINE_NO_FUSE", "1", 1);
    its_engine_opts op = {.backend = "cpu", .threads = 2, .max_batch = 1};
    its_engine_t *ep = NULL;
    rc = its_engine_create(m, &op, &ep, err, sizeof err);
    unsetenv("ITS_ENGINE_NCHW");
    unsetenv("ITS_ENGINE_NO_FUSE");
    if (rc < 0)
        fail_msg("%s (plain): %s", mc->path, err);
    assert_int_equal(its_engine_run(ep, 1, x, o2), 0);
    /* error relative to each output's range; the int8 graphs amplify float rounding
     * differences into whole quantization steps, hence their looser bound */
    double prel = 0, pmean = 0;
    size_t ptot = 0;
    for (int k = 0; k < no; k++) {
        double range = 0;
        for (size_t i = 0; i < osz[k]; i++)
            range = fabs((double)o1[k][i]) > range ? fabs((double)o1[k][i]) : range;
        for (size_t i = 0; i < osz[k]; i++) {
            double d = fabs((double)o1[k][i] - o2[k][i]) / (range + 1e-6);
            prel = d > prel ? d : prel;
            pmean += d;
        }
        ptot += osz[k];
    }
    pmean /= (double)ptot;
    printf("%s: optimized vs plain path: max diff %.3g, mean diff %.3g (of output range)\n",
           mc->path, prel, pmean);
    assert_true(prel < mc->max_tol);
    assert_true(pmean < mc->mean_tol);
    its_engine_destroy(ep);
done:
    for (int k = 0; k < no; k++) {
        its_free(o1[k]);
        its_free(o2[k]);
        its_free(ob[k]);
    }
    its_free(x);
    its_engine_destroy(e);
    its_model_free(m);
}

static void test_model(void **state)
{
    run_model(*state);
}

int main(void)
{
    char probe[1024];
    FILE *f = its_test_shared_path(cases[0].path, probe, sizeof probe) ? fopen(probe, "rb") : NULL;
    if (f)
        fclose(f);
    else {
        return its_test_skip("shared models missing (ITS_SHARED_DIR)");
    }
    struct CMUnitTest tests[5];
    for (int i = 0; i < 5; i++) {
        tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(test_model, (void *)&cases[i]);
        tests[i].name = cases[i].path;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
