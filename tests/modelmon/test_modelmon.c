/* Drift fires on a shifted distribution (per feature) and not on a fresh sample of the
 * baseline's; baselines round-trip through files; bad baseline files are refused with the
 * line and reason; latency percentiles and throughput come out right. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "its/alloc.h"
#include "its/error.h"
#include "its/modelmon.h"

typedef struct gen {
    uint64_t s;
    double lambda, conf_mean, person_share, area_mean;
} gen;

static double urand(gen *g)
{
    g->s ^= g->s << 13;
    g->s ^= g->s >> 7;
    g->s ^= g->s << 17;
    return (double)(g->s >> 11) / 9007199254740992.0;
}

static double nrand(gen *g)
{
    return sqrt(-2 * log(urand(g) + 1e-12)) * cos(2 * M_PI * urand(g));
}

static int poisson(gen *g, double l)
{
    double L = exp(-l), p = 1;
    int k = 0;
    do {
        k++;
        p *= urand(g);
    } while (p > L);
    return k - 1;
}

static its_det dets[128];

static its_det_frame frame(gen *g, int i)
{
    int n = poisson(g, g->lambda);
    if (n > 128)
        n = 128;
    for (int k = 0; k < n; k++) {
        double u = urand(g);
        int cls = u < g->person_share ? 0 : u < g->person_share + 0.1 ? 5 : u < 0.85 ? 2 : 7;
        double frac = pow(10, g->area_mean + 0.4 * nrand(g)), ar = 1.5;
        double h = sqrt(frac * 1280 * 720 / ar), w = h * ar;
        dets[k] = (its_det){100,
                            100,
                            (float)(100 + w),
                            (float)(100 + h),
                            (float)fmin(1, fmax(0, g->conf_mean + 0.12 * nrand(g))),
                            cls,
                            0};
    }
    its_det_frame f = {dets, n, 1280, 720, i * 33333333LL, (uint64_t)i};
    return f;
}

static const gen base_gen = {0, 10, 0.7, 0.15, -2.5};

static its_modelmon_t *make(void)
{
    its_modelmon_params p;
    its_modelmon_params_default(&p);
    snprintf(p.model, sizeof p.model, "yolov8n");
    its_modelmon_t *m;
    assert_int_equal(its_modelmon_create(&p, &m), 0);
    return m;
}

static void run(its_modelmon_t *m, gen g, uint64_t seed, int frames, int start)
{
    g.s = seed;
    for (int i = 0; i < frames; i++) {
        its_det_frame f = frame(&g, start + i);
        assert_int_equal(its_modelmon_observe(m, &f), 0);
    }
}

static void report(its_modelmon_t *m, its_modelmon_report *r, const char *what)
{
    assert_int_equal(its_modelmon_get_report(m, r), 0);
    printf("%-10s", what);
    for (int f = 0; f < ITS_MM_FEATURES; f++)
        printf("  psi %.3f ks %.3f/%.3f%s", r->drift[f].psi, r->drift[f].ks, r->drift[f].ks_crit,
               r->drift[f].alert ? "*" : " ");
    printf("\n");
}

static void test_no_drift_on_baseline(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        its_modelmon_t *m = make();
        its_modelmon_report r;
        run(m, base_gen, seed * 11, 1000, 0);
        report(m, &r, "baseline");
        assert_true(r.baseline_ready);
        assert_false(r.drift[0].enough); /* no current window yet */
        run(m, base_gen, seed * 11 + 5, 1000, 1000);
        report(m, &r, "same");
        assert_false(r.drift_alert);
        for (int f = 0; f < ITS_MM_FEATURES; f++) {
            assert_true(r.drift[f].enough);
            assert_int_equal(r.drift[f].psi_level, 0);
            assert_false(r.drift[f].ks_drift);
        }
        assert_true(isnan(r.drift[ITS_MM_CLASS].ks));
        its_modelmon_destroy(m);
    }
}

static void test_drift_on_shift(void **state)
{
    (void)state;
    for (int feat = 0; feat < ITS_MM_FEATURES; feat++) {
        gen shifted = base_gen;
        if (feat == ITS_MM_CONF)
            shifted.conf_mean = 0.55;
        else if (feat == ITS_MM_CLASS)
            shifted.person_share = 0.5;
        else if (feat == ITS_MM_COUNT)
            shifted.lambda = 5;
        else
            shifted.area_mean = -2.0;
        its_modelmon_t *m = make();
        its_modelmon_report r;
        run(m, base_gen, 3, 1000, 0);
        run(m, shifted, 4, 1000, 1000);
        report(m, &r, "shifted");
        assert_true(r.drift_alert);
        for (int f = 0; f < ITS_MM_FEATURES; f++) {
            /* the class mix also moves the others a little when persons replace cars; only the
             * shifted feature must alert, and nothing else when it is not the class mix */
            if (f == feat) {
                assert_true(r.drift[f].alert);
                assert_true(r.drift[f].psi >= 0.1);
            } else if (feat != ITS_MM_CLASS) {
                assert_false(r.drift[f].alert);
            }
        }
        /* back to the baseline's distribution: the window forgets the shift */
        run(m, base_gen, 5, 1000, 2000);
        report(m, &r, "recovered");
        assert_false(r.drift_alert);
        its_modelmon_destroy(m);
    }
}

static void test_baseline_files(void **state)
{
    (void)state;
    char dir[512], path[600], err[512];
    its_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/base.txt", dir);
    its_modelmon_t *m = make();
    assert_int_equal(its_modelmon_baseline_save(m, path, err, sizeof err), ITS_EAGAIN);
    run(m, base_gen, 7, 1000, 0);
    assert_int_equal(its_modelmon_baseline_save(m, path, err, sizeof err), 0);
    its_modelmon_t *m2 = make();
    int rc = its_modelmon_baseline_load(m2, path, err, sizeof err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    for (int f = 0; f < ITS_MM_FEATURES; f++) {
        its_mm_hist a, b;
        its_modelmon_hist(m, (its_mm_feature)f, 1, &a);
        its_modelmon_hist(m2, (its_mm_feature)f, 1, &b);
        assert_true(a.n > 0);
        assert_memory_equal(&a, &b, sizeof a);
    }
    /* the loaded baseline is used at once: a shifted window alerts */
    gen shifted = base_gen;
    shifted.lambda = 4;
    run(m2, shifted, 8, 1000, 0);
    its_modelmon_report r;
    its_modelmon_get_report(m2, &r);
    assert_true(r.drift[ITS_MM_COUNT].alert);
    assert_int_equal(its_modelmon_baseline_load(m2, "/nonexistent/b.txt", err, sizeof err),
                     ITS_ENOENT);
    assert_non_null(strstr(err, "/nonexistent/b.txt: cannot open"));
    its_modelmon_destroy(m);
    its_modelmon_destroy(m2);
}

static void test_bad_baselines(void **state)
{
    (void)state;
    char zeros20[256] = "", zeros81[512] = "", zeros65[512] = "", zeros25[256] = "";
    for (int i = 0; i < 20; i++)
        strcat(zeros20, " 1");
    for (int i = 0; i < 81; i++)
        strcat(zeros81, " 1");
    for (int i = 0; i < 22; i++)
        strcat(zeros65, i == 0 ? " 100" : " 0");
    for (int i = 0; i < 25; i++)
        strcat(zeros25, " 1");
    char good[4096];
    snprintf(good, sizeof good,
             "its-modelmon-baseline 1\nmodel yolov8n\nframes 100\nconf 20%s\nclass 81%s\n"
             "count 22%s\narea 25%s\n",
             zeros20, zeros81, zeros65, zeros25);
    its_modelmon_t *m = make();
    char err[512];
    assert_int_equal(its_modelmon_baseline_load_string(m, good, strlen(good), "b", err, sizeof err),
                     0);
    struct {
        const char *from, *to, *expect;
    } cases[] = {
        {"its-modelmon-baseline 1", "hello", "b:1: not a baseline file"},
        {"model yolov8n", "model yolo11s", "b:2: model: baseline is for 'yolo11s'"},
        {"frames 100", "frames x", "b:3: frames: a positive integer"},
        {"frames 100", "frames 99", "b: count: 100 frames in the histogram, 99 declared"},
        {"frames 100\n", "", "b: 'frames' missing"},
        {"conf 20", "conf 19", "b:4: conf: 20 bins expected"},
        {"conf 20 1", "conf 20 -1", "b:4: conf: bin 0 is not a count"},
        {"area 25", "colour 25", "b:7: unknown key 'colour'"},
        {"class 81", "conf 20", "b:5: conf: given twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char bad[4096];
        const char *at = strstr(good, cases[i].from);
        assert_non_null(at);
        snprintf(bad, sizeof bad, "%.*s%s%s", (int)(at - good), good, cases[i].to,
                 at + strlen(cases[i].from));
        int rc = its_modelmon_baseline_load_string(m, bad, strlen(bad), "b", err, sizeof err);
        if (rc != ITS_ECONFIG || !strstr(err, cases[i].expect)) {
            fprintf(stderr, "case %zu: rc %d '%s', expected '%s'\n", i, rc, err, cases[i].expect);
            fail();
        }
    }
    char extra[4200];
    snprintf(extra, sizeof extra, "%.*s 5\n", (int)strlen(good) - 1, good);
    assert_int_equal(
        its_modelmon_baseline_load_string(m, extra, strlen(extra), "b", err, sizeof err),
        ITS_ECONFIG);
    assert_non_null(strstr(err, "area: more than 25 bins"));
    assert_int_equal(its_modelmon_baseline_load_string(m, "", 0, "b", err, sizeof err),
                     ITS_ECONFIG);
    its_modelmon_destroy(m);
}

static void test_latency_throughput(void **state)
{
    (void)state;
    its_modelmon_t *m = make();
    /* 20 s at 30 frames/s in batches of 3; latencies uniform on 1..100 ms */
    for (int i = 0; i < 200; i++)
        its_modelmon_record_inference(m, 1000000000LL + i * 100000000LL, (1 + i % 100) * 1000000LL,
                                      3);
    its_modelmon_report r;
    its_modelmon_get_report(m, &r);
    printf("latency p50 %.1f p95 %.1f p99 %.1f mean %.1f ms, %.1f fps\n", r.latency_p50_ms,
           r.latency_p95_ms, r.latency_p99_ms, r.latency_mean_ms, r.fps);
    assert_int_equal(r.inferences, 200);
    assert_true(fabs(r.latency_mean_ms - 50.5) < 1e-9);
    assert_true(fabs(r.latency_p50_ms - 50) < 50 * 0.25);
    assert_true(fabs(r.latency_p95_ms - 95) < 95 * 0.25);
    assert_true(fabs(r.latency_p99_ms - 99) < 99 * 0.25);
    assert_true(fabs(r.fps - 30) < 3.5);
    char buf[4096];
    its_json w;
    its_json_init(&w, buf, sizeof buf);
    its_modelmon_report_write(&r, &w);
    assert_true(its_json_finish(&w) > 0);
    assert_non_null(strstr(buf, "\"model\":\"yolov8n\""));
    its_json_init(&w, buf, 10);
    its_modelmon_report_write(&r, &w);
    assert_int_equal(its_json_finish(&w), ITS_EOVERFLOW);
    its_modelmon_destroy(m);
}

static void test_bad_input_and_alloc(void **state)
{
    (void)state;
    its_modelmon_t *m = make();
    its_det_frame f = {NULL, 3, 1280, 720, 0, 0};
    assert_int_equal(its_modelmon_observe(m, &f), ITS_EINVAL);
    assert_int_equal(its_modelmon_observe(m, NULL), ITS_EINVAL);
    its_modelmon_report rr;
    its_modelmon_get_report(m, &rr);
    assert_int_equal(rr.rejected, 2);
    assert_int_equal(rr.frames, 0);
    its_det odd[3] = {
        {0, 0, 0, 0, NAN, -3, 0}, {5, 5, 1, 1, 2.0f, 999, 0}, {0, 0, INFINITY, 1, 0.5f, 2, 0}};
    f = (its_det_frame){odd, 3, 0, 0, 0, 0};
    gen g = base_gen;
    g.s = 1;
    uint64_t before = 0;
    for (int i = 0; i < 3000; i++) {
        if (i == 10)
            before = its_alloc_count();
        if (i % 7 == 0) {
            assert_int_equal(its_modelmon_observe(m, &f), 0);
        } else {
            its_det_frame fr = frame(&g, i);
            assert_int_equal(its_modelmon_observe(m, &fr), 0);
        }
    }
    assert_true(its_alloc_count() == before);
    its_modelmon_destroy(m);
    its_modelmon_destroy(NULL);
    its_modelmon_params p;
    its_modelmon_params_default(&p);
    p.window_frames = 5;
    assert_int_equal(its_modelmon_create(&p, &m), ITS_EINVAL);
    its_modelmon_params_default(&p);
    for (int k = 0; k < 5; k++) {
        its_alloc_fail_after(ITS_MOD_COUNT, k, 1);
        int rc = its_modelmon_create(&p, &m);
        its_alloc_fail_reset();
        if (rc == 0) {
            its_modelmon_destroy(m);
            break;
        }
        assert_int_equal(rc, ITS_ENOMEM);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_drift_on_baseline), cmocka_unit_test(test_drift_on_shift),
        cmocka_unit_test(test_baseline_files),       cmocka_unit_test(test_bad_baselines),
        cmocka_unit_test(test_latency_throughput),   cmocka_unit_test(test_bad_input_and_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
