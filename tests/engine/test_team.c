/*
 * test_team.c - the cpu backend's worker team (src/engine/team.c) and the convolutions it
 * splits into parts (bands of output rows, images of a batch).
 *
 * The split convolutions are checked against a direct convolution written here in double
 * precision (an independent reference, not the engine's own kernels), on geometries the
 * shipped models do not all have: odd sizes, asymmetric pads, stride 2, dilation 2,
 * depthwise groups, a fused residual, batches that do not divide into the parts, and
 * batches run image by image on the batch-1 plan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "its/engine.h"
#include "its/error.h"

#include "onnx_writer.h"
#include "team.h"

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- the team itself ---- */

typedef struct count_job {
    atomic_int runs[128];
    atomic_int bad_thread;
    int threads;
} count_job;

static void count_task(void *arg, int task, int thread)
{
    count_job *j = arg;
    if (thread < 0 || thread >= j->threads)
        atomic_store(&j->bad_thread, 1);
    atomic_fetch_add(&j->runs[task], 1);
}

/* Every task of every job runs exactly once, on a thread index of the team, whether the
 * workers spin or sleep between jobs. */
static void test_each_task_once(void **state)
{
    (void)state;
    static const int spins[] = {0, 50};
    uint32_t seed = 12345;
    for (int threads = 1; threads <= 4; threads++)
        for (size_t si = 0; si < sizeof spins / sizeof spins[0]; si++) {
            its__team *t;
            assert_int_equal(its__team_create(threads, spins[si], &t), 0);
            assert_int_equal(its__team_threads(t), threads);
            count_job *j = calloc(1, sizeof *j);
            j->threads = threads;
            for (int it = 0; it < 3000; it++) {
                seed = seed * 1103515245u + 12345u;
                int ntasks = (int)(seed >> 16) % 128;
                for (int k = 0; k < 128; k++)
                    atomic_store(&j->runs[k], 0);
                its__team_run(t, ntasks, count_task, j);
                for (int k = 0; k < 128; k++)
                    if (atomic_load(&j->runs[k]) != (k < ntasks))
                        fail_msg("threads %d spin %d job %d: task %d ran %d times", threads,
                                 spins[si], it, k, atomic_load(&j->runs[k]));
            }
            assert_int_equal(atomic_load(&j->bad_thread), 0);
            free(j);
            its__team_destroy(t);
        }
    its__team *t;
    assert_int_equal(its__team_create(0, 0, &t), ITS_EINVAL);
    assert_null(t);
    its__team_destroy(NULL);
}

typedef struct cover_job {
    int64_t n;
    atomic_uchar *seen;
    atomic_int overlap;
} cover_job;

static void cover_range(void *arg, int64_t lo, int64_t hi)
{
    cover_job *j = arg;
    if (lo < 0 || hi > j->n || lo >= hi)
        atomic_store(&j->overlap, 1);
    for (int64_t i = lo; i < hi && i < j->n; i++)
        if (atomic_fetch_add(&j->seen[i], 1) != 0)
            atomic_store(&j->overlap, 1);
}

/* its__par_range covers [0, n) exactly, on a bound team, on OpenMP and serially. */
static void test_par_range_covers(void **state)
{
    (void)state;
    static const int64_t sizes[] = {1, 7, 1000, 40000, 65536 + 17, 1 << 20};
    its__team *t;
    assert_int_equal(its__team_create(3, 20, &t), 0);
    for (int bound = 0; bound < 2; bound++) {
        its__team_bind(bound ? t : NULL);
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
            for (int64_t unit = 1; unit <= 64; unit *= 8) {
                cover_job j = {.n = sizes[k]};
                j.seen = calloc((size_t)sizes[k], 1);
                its__par_range(j.n, unit, cover_range, &j);
                for (int64_t i = 0; i < j.n; i++)
                    if (atomic_load(&j.seen[i]) != 1)
                        fail_msg("n %lld unit %lld bound %d: element %lld covered %d times",
                                 (long long)j.n, (long long)unit, bound, (long long)i,
                                 atomic_load(&j.seen[i]));
                assert_int_equal(atomic_load(&j.overlap), 0);
                free(j.seen);
            }
    }
    its__team_bind(NULL);
    its__par_range(0, 1, cover_range, NULL); /* nothing to do: fn is not called */
    its__team_destroy(t);
}

/* ---- split convolutions against a direct convolution ---- */

typedef struct conv_geo {
    int64_t cin, cout, k, stride, dil, group;
    int64_t pads[4]; /* top, left, bottom, right */
} conv_geo;

static uint32_t rng = 1;

static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 32768.f - 1.f;
}

static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1)
{
    return (in + p0 + p1 - ((k - 1) * d + 1)) / s + 1;
}

/* y = conv(x) + b, NCHW, in double */
static void conv_direct(const conv_geo *g, int64_t n, int64_t h, int64_t w, const float *x,
                        const float *wt, const float *b, double *y, int64_t *oh, int64_t *ow)
{
    *oh = out_size(h, g->k, g->stride, g->dil, g->pads[0], g->pads[2]);
    *ow = out_size(w, g->k, g->stride, g->dil, g->pads[1], g->pads[3]);
    int64_t cpg = g->cin / g->group, mpg = g->cout / g->group;
    for (int64_t i = 0; i < n; i++)
        for (int64_t m = 0; m < g->cout; m++)
            for (int64_t oy = 0; oy < *oh; oy++)
                for (int64_t ox = 0; ox < *ow; ox++) {
                    double acc = b[m];
                    int64_t c0 = m / mpg * cpg;
                    for (int64_t c = 0; c < cpg; c++)
                        for (int64_t ky = 0; ky < g->k; ky++)
                            for (int64_t kx = 0; kx < g->k; kx++) {
                                int64_t yy = oy * g->stride - g->pads[0] + ky * g->dil;
                                int64_t xx = ox * g->stride - g->pads[1] + kx * g->dil;
                                if (yy < 0 || yy >= h || xx < 0 || xx >= w)
                                    continue;
                                acc += (double)x[((i * g->cin + c0 + c) * h + yy) * w + xx] *
                                       wt[((m * cpg + c) * g->k + ky) * g->k + kx];
                            }
                    y[((i * g->cout + m) * *oh + oy) * *ow + ox] = acc;
                }
}

#define N_CONV 4
/* images [N, 3, 13, 11] -> c0 (3x3) -> c1 (5x5 s2, asymmetric pads) -> c2 (depthwise 3x3,
 * dilation 2) -> c3 (1x1) + c2 (a residual the backend fuses into c3) -> out */
static const conv_geo geo[N_CONV] = {
    {3, 8, 3, 1, 1, 1, {1, 1, 1, 1}},
    {8, 16, 5, 2, 1, 1, {2, 1, 1, 2}},
    {16, 16, 3, 1, 2, 16, {2, 2, 2, 2}},
    {16, 16, 1, 1, 1, 1, {0, 0, 0, 0}},
};
enum { IH = 13, IW = 11 };

static float *wts[N_CONV], *bias[N_CONV];

static void build_model(pbw *m)
{
    pbw g = {0}, a = {0};
    char wn[8], bn[8];
    const char *ins[] = {"images", "t0", "t1", "t2"}, *outs[] = {"t0", "t1", "t2", "t3"};
    for (int i = 0; i < N_CONV; i++) {
        const conv_geo *c = &geo[i];
        int64_t wd[4] = {c->cout, c->cin / c->group, c->k, c->k};
        size_t nw = (size_t)(wd[0] * wd[1] * wd[2] * wd[3]);
        wts[i] = malloc(nw * sizeof(float));
        bias[i] = malloc((size_t)c->cout * sizeof(float));
        for (size_t k = 0; k < nw; k++)
            wts[i][k] = frand() * 0.5f;
        for (int64_t k = 0; k < c->cout; k++)
            bias[i][k] = frand() * 0.1f;
        snprintf(wn, sizeof wn, "W%d", i);
        snprintf(bn, sizeof bn, "B%d", i);
        pbw_initializer(&g, wn, 1, 4, wd, wts[i], nw * sizeof(float), 1);
        pbw_initializer(&g, bn, 1, 1, (int64_t[]){c->cout}, bias[i], (size_t)c->cout * 4, 1);
        pbw_attr_ints(&a, "kernel_shape", 2, (int64_t[]){c->k, c->k});
        pbw_attr_ints(&a, "strides", 2, (int64_t[]){c->stride, c->stride});
        pbw_attr_ints(&a, "dilations", 2, (int64_t[]){c->dil, c->dil});
        pbw_attr_ints(&a, "pads", 4, c->pads);
        pbw_attr_int(&a, "group", c->group);
        char name[8];
        snprintf(name, sizeof name, "c%d", i);
        pbw_node(&g, "Conv", name, L(ins[i], wn, bn), L(outs[i]), &a);
        pbw_free(&a);
    }
    pbw_node(&g, "Add", "res", L("t3", "t2"), L("out"), NULL);
    pbw_value_info(&g, 11, "images", 1, 4, (int64_t[]){-1, 3, IH, IW});
    pbw_value_info(&g, 12, "out", 1, -1, NULL);
    pbw_string_field(&g, 2, "team");
    memset(m, 0, sizeof *m);
    pbw_model(m, 13, &g, NULL, NULL);
    pbw_free(&g);
}

/* The whole chain in double; returns the output's element count. */
static size_t reference(int64_t n, const float *x, double **out)
{
    int64_t h = IH, w = IW, oh, ow;
    float *cur = malloc((size_t)(n * 3 * h * w) * sizeof(float));
    memcpy(cur, x, (size_t)(n * 3 * h * w) * sizeof(float));
    double *y = NULL, *t2 = NULL;
    size_t ne = 0;
    for (int i = 0; i < N_CONV; i++) {
        int64_t eh =
            out_size(h, geo[i].k, geo[i].stride, geo[i].dil, geo[i].pads[0], geo[i].pads[2]);
        int64_t ew =
            out_size(w, geo[i].k, geo[i].stride, geo[i].dil, geo[i].pads[1], geo[i].pads[3]);
        ne = (size_t)(n * geo[i].cout * eh * ew);
        y = malloc(ne * sizeof(double));
        conv_direct(&geo[i], n, h, w, cur, wts[i], bias[i], y, &oh, &ow);
        h = oh;
        w = ow;
        free(cur);
        cur = malloc(ne * sizeof(float));
        for (size_t k = 0; k < ne; k++)
            cur[k] = (float)y[k];
        if (i == 2) {
            t2 = y;
            y = NULL;
        } else if (i < N_CONV - 1) {
            free(y);
        }
    }
    for (size_t k = 0; k < ne; k++)
        y[k] += t2[k];
    free(t2);
    free(cur);
    *out = y;
    return ne;
}

/* An engine of max_batch `batch`, run on `batch` images and then on fewer (a smaller run on
 * a larger plan), each compared with the direct convolution. */
static void check_engine(const its_model_t *model, int threads, int batch, const char *team,
                         const char *parts)
{
    setenv("ITS_ENGINE_TEAM", team, 1);
    if (parts)
        setenv("ITS_ENGINE_PARTS", parts, 1);
    else
        unsetenv("ITS_ENGINE_PARTS");
    char err[256];
    its_engine_opts o = {.threads = threads, .max_batch = batch, .backend = "cpu"};
    its_engine_t *e;
    assert_int_equal(its_engine_create(model, &o, &e, err, sizeof err), 0);
    size_t nin = (size_t)batch * 3 * IH * IW;
    float *x = malloc(nin * sizeof(float));
    for (size_t k = 0; k < nin; k++)
        x[k] = frand();
    double *ref;
    size_t ne = reference(batch, x, &ref);
    float *y = malloc(ne * sizeof(float));
    for (int rep = 0; rep < 3; rep++) { /* the same primitives, run again */
        int n = rep < 2 ? batch : (batch + 1) / 2;
        memset(y, 0, ne * sizeof(float));
        assert_int_equal(its_engine_run(e, n, x, (float *const[]){y}), 0);
        double worst = 0;
        for (size_t k = 0; k < ne / (size_t)batch * (size_t)n; k++) {
            double d = (y[k] - ref[k]) / (1.0 + (ref[k] < 0 ? -ref[k] : ref[k]));
            d = d < 0 ? -d : d;
            worst = d > worst ? d : worst;
        }
        if (worst > 1e-4)
            fail_msg("threads %d batch %d team %s parts %s: max relative error %g", threads, batch,
                     team, parts ? parts : "default", worst);
    }
    free(ref);
    free(x);
    free(y);
    its_engine_destroy(e);
}

static void test_split_convs_match_direct(void **state)
{
    (void)state;
    pbw m;
    build_model(&m);
    its_model_t *model;
    char err[256];
    assert_int_equal(its_model_load_buffer(m.buf, m.len, &model, err, sizeof err), 0);
    for (int batch = 1; batch <= 5; batch += 2)
        for (int threads = 1; threads <= 3; threads++) {
            check_engine(model, threads, batch, "1", NULL);
            check_engine(model, threads, batch, "1", "5");  /* more parts than rows of c1 */
            check_engine(model, threads, batch, "1", "64"); /* one row per part */
            check_engine(model, threads, batch, "0", NULL); /* OpenMP threading */
            /* batches image by image on the batch-1 plan: a "cache" that holds one image's
             * activations (8 KB here) and not two */
            setenv("ITS_ENGINE_BATCH_CACHE", "10000", 1);
            check_engine(model, threads, batch, "1", NULL);
            check_engine(model, threads, batch, "0", NULL);
            unsetenv("ITS_ENGINE_BATCH_CACHE");
        }
    unsetenv("ITS_ENGINE_TEAM");
    unsetenv("ITS_ENGINE_PARTS");
    its_model_free(model);
    for (int i = 0; i < N_CONV; i++) {
        free(wts[i]);
        free(bias[i]);
    }
    pbw_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_task_once),
        cmocka_unit_test(test_par_range_covers),
        cmocka_unit_test(test_split_convs_match_direct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
