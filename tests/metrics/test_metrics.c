/* The registry: exposition text, labels and escaping, quantiles, lock-free concurrency. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "its/core.h"
#include "its/metrics.h"
#include "its/stage.h"
#include "testutil.h"

static char *render(its_metrics *reg)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(its_metrics_render(reg, &out, &len), 0);
    assert_int_equal(strlen(out), len);
    return out;
}

static void test_exposition_text(void **state)
{
    its_metrics *reg = its_metrics_create();
    its_metric_family *c = its_metrics_family(reg, ITS_METRIC_COUNTER, "t_requests_total",
                                              "Requests\nserved", "path,code", NULL, 0);
    its_metric_family *g =
        its_metrics_family(reg, ITS_METRIC_GAUGE, "t_temp", "A gauge", "", NULL, 0);
    const double bk[] = {0.1, 0.5, 1};
    its_metric_family *h =
        its_metrics_family(reg, ITS_METRIC_HISTOGRAM, "t_lat_seconds", "Lat", "", bk, 3);
    its_metric_family *empty =
        its_metrics_family(reg, ITS_METRIC_COUNTER, "t_unused_total", "Unused", "x", NULL, 0);
    assert_non_null(c);
    assert_non_null(g);
    assert_non_null(h);
    assert_non_null(empty);
    its_metric *a = its_metrics_series_v(c, "/v1/a\"b\\c\nd", "200");
    its_metric_add(a, 3);
    its_metric_inc(a);
    its_metric_add(a, -5); /* counters never go down */
    its_metric_set(its_metrics_series(g, NULL), -2.5);
    its_metric *lat = its_metrics_series(h, NULL);
    its_metric_observe(lat, 0.05);
    its_metric_observe(lat, 0.1); /* le is inclusive */
    its_metric_observe(lat, 0.7);
    its_metric_observe(lat, 5);
    char *out = render(reg);
    const char *want = "# HELP t_requests_total Requests\\nserved\n"
                       "# TYPE t_requests_total counter\n"
                       "t_requests_total{path=\"/v1/a\\\"b\\\\c\\nd\",code=\"200\"} 4\n"
                       "# HELP t_temp A gauge\n"
                       "# TYPE t_temp gauge\n"
                       "t_temp -2.5\n"
                       "# HELP t_lat_seconds Lat\n"
                       "# TYPE t_lat_seconds histogram\n"
                       "t_lat_seconds_bucket{le=\"0.1\"} 2\n"
                       "t_lat_seconds_bucket{le=\"0.5\"} 2\n"
                       "t_lat_seconds_bucket{le=\"1\"} 3\n"
                       "t_lat_seconds_bucket{le=\"+Inf\"} 4\n"
                       "t_lat_seconds_sum 5.85\n"
                       "t_lat_seconds_count 4\n";
    assert_string_equal(out, want);
    its_free(out);

    /* Hidden series leave the exposition; asking again brings them back. */
    its_metric_hide(a);
    out = render(reg);
    assert_null(strstr(out, "t_requests_total"));
    its_free(out);
    assert_ptr_equal(its_metrics_series_v(c, "/v1/a\"b\\c\nd", "200"), a);
    assert_float_equal(its_metric_value(a), 4, 0);
    its_metrics_destroy(reg);
}

static void test_registration_rules(void **state)
{
    its_metrics *reg = its_metrics_create();
    assert_null(its_metrics_family(reg, ITS_METRIC_COUNTER, "9bad", "", "", NULL, 0));
    assert_null(its_metrics_family(reg, ITS_METRIC_COUNTER, "bad-name", "", "", NULL, 0));
    assert_null(its_metrics_family(reg, ITS_METRIC_COUNTER, "ok", "", "le", NULL, 0));
    assert_null(its_metrics_family(reg, ITS_METRIC_COUNTER, "ok", "", "__x", NULL, 0));
    assert_null(its_metrics_family(reg, ITS_METRIC_COUNTER, "ok", "", "a,,b", NULL, 0));
    assert_null(its_metrics_family(reg, ITS_METRIC_COUNTER, "ok", "", "a,b,c,d,e", NULL, 0));
    const double unsorted[] = {1, 0.5};
    assert_null(its_metrics_family(reg, ITS_METRIC_HISTOGRAM, "h", "", "", unsorted, 2));
    assert_null(its_metrics_family(reg, ITS_METRIC_HISTOGRAM, "h", "", "", NULL, 0));
    its_metric_family *f = its_metrics_family(reg, ITS_METRIC_GAUGE, "g", "", "a", NULL, 0);
    assert_non_null(f);
    assert_ptr_equal(its_metrics_family(reg, ITS_METRIC_GAUGE, "g", "", "a", NULL, 0), f);
    assert_null(its_metrics_family(reg, ITS_METRIC_COUNTER, "g", "", "a", NULL, 0));
    assert_null(its_metrics_family(reg, ITS_METRIC_GAUGE, "g", "", "b", NULL, 0));
    assert_ptr_equal(its_metrics_find(reg, "g"), f);
    assert_null(its_metrics_find(reg, "nope"));
    /* NULL-safe updates. */
    its_metric_inc(NULL);
    its_metric_observe(NULL, 1);
    its_metric_set(NULL, 1);
    assert_null(its_metrics_series(NULL, NULL));
    /* Out of memory while registering: NULL, no leak (ASan checks). */
    its_alloc_fail_after(ITS_MOD_METRICS, 0, -1);
    assert_null(its_metrics_family(reg, ITS_METRIC_GAUGE, "g2", "", "a,b", NULL, 0));
    assert_null(its_metrics_series_v(f, "x"));
    its_alloc_fail_reset();
    for (int skip = 0; skip < 12; skip++) {
        its_alloc_fail_after(ITS_MOD_METRICS, skip, 1);
        its_metrics *r2 = its_metrics_create();
        int rc = r2 ? its_metrics_std_register(r2) : ITS_ENOMEM;
        its_alloc_fail_reset();
        assert_true(rc == 0 || rc == ITS_ENOMEM);
        its_metrics_destroy(r2);
    }
    its_metrics_destroy(reg);
}

static void test_quantiles(void **state)
{
    its_metrics *reg = its_metrics_create();
    const double bk[] = {0.01, 0.02, 0.05, 0.1};
    its_metric *h = its_metrics_series(
        its_metrics_family(reg, ITS_METRIC_HISTOGRAM, "q_seconds", "", "", bk, 4), NULL);
    assert_true(isnan(its_metric_quantile(h, 0.5)));
    /* 10 samples in (0, 0.01], 10 in (0.01, 0.02], 80 in (0.02, 0.05]. */
    for (int i = 0; i < 10; i++)
        its_metric_observe(h, 0.005);
    for (int i = 0; i < 10; i++)
        its_metric_observe(h, 0.015);
    for (int i = 0; i < 80; i++)
        its_metric_observe(h, 0.03);
    /* Rank 50 of 100: 30 into the 80 of (0.02, 0.05] -> 0.02 + 0.03 * 30/80. */
    assert_float_equal(its_metric_quantile(h, 0.5), 0.02 + 0.03 * 30.0 / 80.0, 1e-12);
    /* Rank 5: half-way through the first bucket, which starts at 0. */
    assert_float_equal(its_metric_quantile(h, 0.05), 0.005, 1e-12);
    assert_float_equal(its_metric_quantile(h, 0.99), 0.02 + 0.03 * 79.0 / 80.0, 1e-12);
    its_metric_observe(h, 7); /* +Inf bucket: the highest finite bound */
    assert_float_equal(its_metric_quantile(h, 1.0), 0.1, 1e-12);
    assert_int_equal(its_metric_count(h), 101);
    assert_float_equal(its_metric_sum(h), 0.05 + 0.15 + 2.4 + 7, 1e-9);
    assert_true(isnan(its_metric_quantile(h, 1.5)));
    its_metrics_destroy(reg);
}

enum { THREADS = 4, PER = 100000 };
static its_metric *shared_c, *shared_h;

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER; i++) {
        its_metric_inc(shared_c);
        its_metric_observe(shared_h, (i % 4) * 0.25);
    }
    return NULL;
}

static void test_concurrent_updates(void **state)
{
    its_metrics *reg = its_metrics_create();
    const double bk[] = {0.1, 0.3, 0.6};
    shared_c = its_metrics_series_v(
        its_metrics_family(reg, ITS_METRIC_COUNTER, "c_total", "", "k", NULL, 0), "v");
    shared_h = its_metrics_series(
        its_metrics_family(reg, ITS_METRIC_HISTOGRAM, "h_seconds", "", "", bk, 3), NULL);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, hammer, NULL);
    /* Renders while the writers run must not block them nor crash. */
    for (int i = 0; i < 20; i++) {
        char *out = render(reg);
        its_free(out);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_float_equal(its_metric_value(shared_c), THREADS * PER, 0);
    assert_int_equal(its_metric_count(shared_h), THREADS * PER);
    /* 0, 0.25, 0.5, 0.75 each PER/4 times per thread: sum = THREADS * PER/4 * 1.5. */
    assert_float_equal(its_metric_sum(shared_h), THREADS * (PER / 4) * 1.5, 1e-6);
    char *out = render(reg);
    char line[128];
    snprintf(line, sizeof line, "h_seconds_bucket{le=\"0.3\"} %d\n", THREADS * PER / 2);
    assert_non_null(strstr(out, line));
    its_free(out);
    its_metrics_destroy(reg);
}

static void test_standard_table(void **state)
{
    its_metrics *reg = its_metrics_create();
    assert_int_equal(its_metrics_std_register(reg), 0);
    char *out = render(reg);
    for (int id = 0; id < ITS_M_COUNT; id++) {
        char type_line[160];
        snprintf(type_line, sizeof type_line, "# TYPE %s ",
                 its_metrics_std_name((its_metric_id)id));
        if (its_metrics_std_flags((its_metric_id)id) & ITS_MF_GPU) {
            /* GPU rows exist only after its_metrics_gpu_attach found a GPU. */
            assert_null(its_metrics_std(reg, (its_metric_id)id));
            assert_null(strstr(out, type_line));
        } else {
            assert_non_null(its_metrics_std(reg, (its_metric_id)id));
        }
    }
    assert_non_null(strstr(out, "analytics_latency_seconds_bucket{le=\"0.1\"} 0\n"));
    assert_non_null(strstr(out, "its_stage_budget_seconds{stage=\"inference\"} 0.05\n"));
    assert_non_null(strstr(out, "its_stage_latency_seconds_count{stage=\"publish\"} 0\n"));
    assert_non_null(strstr(out, "its_build_info{version=\"" ITS_VERSION "\"} 1\n"));
    its_free(out);
    its_metrics_destroy(reg);
}

/* Every stage of the stage table has its histogram and its budget in the exposition, in the
 * table's order, before any sample; nothing else appears under the stage label. */
static void test_stage_families_follow_the_table(void **state)
{
    its_metrics *reg = its_metrics_create();
    assert_int_equal(its_metrics_std_register(reg), 0);
    char *out = render(reg);
    /* SPEC's budgets in seconds, as the exposition writes them */
    static const char *const budget[][2] = {
        {"queue", "0.005"},      {"batch", "0.01"},      {"inference", "0.05"},
        {"postprocess", "0.01"}, {"analytics", "0.015"}, {"quality", "0.005"},
        {"modelmon", "0.005"},   {"publish", "0.005"},   {"total", "0.1"},
    };
    assert_int_equal(ITS_STAGE_COUNT, (int)(sizeof budget / sizeof budget[0]));
    const char *prev_budget = out, *prev_count = out;
    for (int s = 0; s < ITS_STAGE_COUNT; s++) {
        char line[160];
        assert_string_equal(its_stage_name((its_stage)s), budget[s][0]);
        snprintf(line, sizeof line, "its_stage_budget_seconds{stage=\"%s\"} %s\n", budget[s][0],
                 budget[s][1]);
        const char *at = strstr(out, line);
        assert_non_null(at);
        assert_true(at >= prev_budget);
        prev_budget = at;
        snprintf(line, sizeof line, "its_stage_latency_seconds_count{stage=\"%s\"} 0\n",
                 its_stage_name((its_stage)s));
        at = strstr(out, line);
        assert_non_null(at);
        assert_true(at >= prev_count);
        prev_count = at;
    }
    int n_budget = 0;
    for (const char *p = out; (p = strstr(p, "its_stage_budget_seconds{")); p++)
        n_budget++;
    assert_int_equal(n_budget, ITS_STAGE_COUNT);
    its_free(out);
    its_metrics_destroy(reg);
}

static void test_gpu_absent_is_not_an_error(void **state)
{
    its_metrics *reg = its_metrics_create();
    assert_int_equal(its_metrics_std_register(reg), 0);
    setenv("ITS_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1", 1);
    assert_int_equal(its_metrics_gpu_attach(reg), ITS_ENODEV);
    unsetenv("ITS_NVML_LIBRARY");
    char *out = render(reg);
    assert_null(strstr(out, "gpu_utilization_percent"));
    its_free(out);
    /* The real library, where there is one: either no GPU (ENODEV, no metric) or a sample
     * in [0, 100] per GPU. */
    int n = its_metrics_gpu_attach(reg);
    out = render(reg);
    if (n == ITS_ENODEV) {
        assert_null(strstr(out, "gpu_utilization_percent"));
    } else {
        assert_true(n > 0);
        its_metric *u = its_metrics_series_v(its_metrics_std(reg, ITS_M_GPU_UTIL), "0");
        assert_true(its_metric_value(u) >= 0 && its_metric_value(u) <= 100);
        assert_non_null(strstr(out, "gpu_utilization_percent{gpu=\"0\"}"));
    }
    its_free(out);
    its_metrics_destroy(reg);
}

/* A driver library that reports a GPU (the stand-in tests/metrics/fake_nvml.c): one series
 * per GPU with the driver's figures, refreshed on every render. */
static void test_gpu_from_the_driver_library(void **state)
{
    (void)state;
    its_metrics *reg = its_metrics_create();
    assert_int_equal(its_metrics_std_register(reg), 0);
    setenv("ITS_NVML_LIBRARY", ITS_FAKE_NVML, 1);
    assert_int_equal(its_metrics_gpu_attach(reg), 1);
    unsetenv("ITS_NVML_LIBRARY");
    char *out = render(reg);
    assert_non_null(strstr(out, "gpu_utilization_percent{gpu=\"0\"} 73"));
    assert_non_null(strstr(out, "its_gpu_memory_used_bytes{gpu=\"0\"} 1073741824"));
    its_free(out);
    its_metrics_destroy(reg);
}

/* Collectors own their state through a release callback: the registry calls it once per
 * collector when destroyed, newest first, and never for a collector it refused. */
static int released[4], n_released;

static void nop_collect(void *ud, its_metrics *reg) {}

static void note_release(void *ud)
{
    released[n_released++] = *(int *)ud;
}

static void test_collector_release(void **state)
{
    (void)state;
    static int ids[2] = {1, 2};
    n_released = 0;
    its_metrics *reg = its_metrics_create();
    assert_int_equal(its_metrics_add_collector(reg, nop_collect, &ids[0], note_release), 0);
    assert_int_equal(its_metrics_add_collector(reg, nop_collect, &ids[1], note_release), 0);
    int added = 2;
    static int refused = 99;
    while (its_metrics_add_collector(reg, nop_collect, NULL, NULL) == 0)
        added++;
    assert_int_equal(its_metrics_add_collector(reg, nop_collect, &refused, note_release),
                     ITS_EFULL);
    assert_true(added > 2);
    assert_int_equal(n_released, 0);
    its_metrics_destroy(reg);
    assert_int_equal(n_released, 2);
    assert_int_equal(released[0], 2);
    assert_int_equal(released[1], 1);
}

/* The GPU and scaling collectors' state goes with the registry: every byte the metrics module
 * allocated for them is back once it is destroyed, and attaching twice adds nothing. */
static void test_attached_state_is_released(void **state)
{
    (void)state;
    its_alloc_stats before, after;
    its_alloc_get_stats(ITS_MOD_METRICS, &before);
    its_metrics *reg = its_metrics_create();
    assert_int_equal(its_metrics_std_register(reg), 0);
    setenv("ITS_NVML_LIBRARY", ITS_FAKE_NVML, 1);
    assert_int_equal(its_metrics_gpu_attach(reg), 1);
    its_alloc_stats once;
    its_alloc_get_stats(ITS_MOD_METRICS, &once);
    assert_int_equal(its_metrics_gpu_attach(reg), 1);
    unsetenv("ITS_NVML_LIBRARY");
    assert_int_equal(its_metrics_scaling_attach(reg), 0);
    its_alloc_stats scaled;
    its_alloc_get_stats(ITS_MOD_METRICS, &scaled);
    assert_int_equal(its_metrics_scaling_attach(reg), 0);
    its_alloc_stats twice;
    its_alloc_get_stats(ITS_MOD_METRICS, &twice);
    assert_true(scaled.bytes_live > once.bytes_live);
    assert_int_equal(twice.bytes_live, scaled.bytes_live);
    its_metrics_destroy(reg);
    its_alloc_get_stats(ITS_MOD_METRICS, &after);
    assert_int_equal(after.bytes_live, before.bytes_live);
}

static void test_scaling_decision(void **state)
{
    /* SPEC AutoScalingConfig: out if ANY above SCALE_OUT, in if ALL below SCALE_IN. */
    const its_scaling_inputs low = {0.40, 50, 0.050, 0.0005, 0.20};
    its_scaling_inputs in = low;
    assert_int_equal(its_scaling_decide(&in), -1);
    in = low, in.gpu_utilization = 0.95;
    assert_int_equal(its_scaling_decide(&in), 1);
    in = low, in.queue_depth = 601;
    assert_int_equal(its_scaling_decide(&in), 1);
    in = low, in.latency_p99_s = 0.081;
    assert_int_equal(its_scaling_decide(&in), 1);
    in = low, in.error_rate = 0.006;
    assert_int_equal(its_scaling_decide(&in), 1);
    in = low, in.cpu_utilization = 0.71;
    assert_int_equal(its_scaling_decide(&in), 1);
    in = low, in.queue_depth = 600; /* at the trigger: not above it, not below 100 */
    assert_int_equal(its_scaling_decide(&in), 0);
    in = low, in.latency_p99_s = 0.070;
    assert_int_equal(its_scaling_decide(&in), 0);
    in = low, in.gpu_utilization = 0.50; /* scale in needs strictly below */
    assert_int_equal(its_scaling_decide(&in), 0);
    in = low, in.gpu_utilization = NAN, in.latency_p99_s = NAN; /* no GPU, no samples */
    assert_int_equal(its_scaling_decide(&in), -1);
}

static void test_scaling_collector(void **state)
{
    its_metrics *reg = its_metrics_create();
    assert_int_equal(its_metrics_std_register(reg), 0);
    assert_int_equal(its_metrics_scaling_attach(reg), 0);
    its_metric *rec = its_metrics_series(its_metrics_std(reg, ITS_M_SCALING), NULL);
    its_metric *e2e = its_metrics_series(its_metrics_std(reg, ITS_M_LATENCY), NULL);
    its_metric *q = its_metrics_series_v(its_metrics_std(reg, ITS_M_QUEUE_DEPTH), "batch");
    its_metric *frames = its_metrics_series_v(its_metrics_std(reg, ITS_M_FRAMES), "c");
    its_metric *errs = its_metrics_series_v(its_metrics_std(reg, ITS_M_ERRORS), "engine", "x");
    char *out = render(reg); /* first window: primes, holds */
    its_free(out);
    assert_float_equal(its_metric_value(rec), 0, 0);

    /* Window 2: every frame at 150 ms -> p99 in (0.12, 0.15] > 80 ms: scale out. */
    for (int i = 0; i < 100; i++)
        its_metric_observe(e2e, 0.14);
    its_metric_add(frames, 100);
    out = render(reg);
    its_free(out);
    its_scaling_inputs in;
    int d;
    assert_int_equal(its_metrics_scaling_last(reg, &in, &d), 0);
    assert_true(in.latency_p99_s > 0.12 && in.latency_p99_s <= 0.15);
    assert_float_equal(in.error_rate, 0, 0);
    assert_true(isnan(in.gpu_utilization));
    assert_int_equal(d, 1);
    assert_float_equal(its_metric_value(rec), 1, 0);

    /* Window 3: fast frames only; the slow ones of window 2 no longer count. */
    for (int i = 0; i < 100; i++)
        its_metric_observe(e2e, 0.004);
    its_metric_add(frames, 100);
    its_metric_add(errs, 2); /* 2% errors: above SPEC's 0.5% */
    out = render(reg);
    its_free(out);
    assert_int_equal(its_metrics_scaling_last(reg, &in, &d), 0);
    assert_true(in.latency_p99_s <= 0.005);
    assert_float_equal(in.error_rate, 0.02, 1e-12);
    assert_int_equal(d, 1);

    /* Window 4: nothing processed, queue above 600. */
    its_metric_set(q, 700);
    out = render(reg);
    its_free(out);
    assert_int_equal(its_metrics_scaling_last(reg, &in, &d), 0);
    assert_true(isnan(in.latency_p99_s));
    assert_true(isnan(in.error_rate));
    assert_float_equal(in.queue_depth, 700, 0);
    assert_int_equal(d, 1);

    /* Window 5: quiet; the decision follows the host CPU, whatever it is now. */
    its_metric_set(q, 10);
    out = render(reg);
    its_free(out);
    assert_int_equal(its_metrics_scaling_last(reg, &in, &d), 0);
    assert_int_equal(d, its_scaling_decide(&in));
    assert_true(d == -1 || d == 0 || (d == 1 && in.cpu_utilization > 0.70));
    assert_float_equal(its_metric_value(rec), d, 0);
    its_metrics_destroy(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exposition_text),
        cmocka_unit_test(test_registration_rules),
        cmocka_unit_test(test_quantiles),
        cmocka_unit_test(test_concurrent_updates),
        cmocka_unit_test(test_standard_table),
        cmocka_unit_test(test_stage_families_follow_the_table),
        cmocka_unit_test(test_gpu_absent_is_not_an_error),
        cmocka_unit_test(test_gpu_from_the_driver_library),
        cmocka_unit_test(test_scaling_decision),
        cmocka_unit_test(test_scaling_collector),
        cmocka_unit_test(test_collector_release),
        cmocka_unit_test(test_attached_state_is_released),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
