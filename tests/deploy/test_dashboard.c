/*
 * deploy/ uses only metrics that the service exports: every metric name in the Grafana
 * dashboard and the alert rules must be a row of include/its/metric_names.h (histograms with
 * their _bucket/_sum/_count series), every value of the stage label a stage of
 * include/its/stage.h. The rules may also name Prometheus' own `up` and the Redis server's
 * memory from prometheus-redis-exporter (tests/deploy/test_prometheus.py checks that one
 * against the real exporter). And the dashboard shows what an operator needs.
 */
#include <stdio.h>
#include <string.h>

#include "deploy_files.h"
#include "its/core.h"
#include "its/metrics.h"
#include "its/stage.h"
#include "promql_names.h"
#include "testutil.h"

typedef struct check {
    int unknown;
    int allow_external;
    const char *where;
    const char *expr;
    char seen[64][96];
    int nseen;
} check;

static int exported(const char *name, int allow_external)
{
    /* Prometheus' own scrape health; the Redis server's memory (its own exporter) */
    if (allow_external && (!strcmp(name, "up") || !strcmp(name, "redis_memory_used_bytes")))
        return 1;
    for (int id = 0; id < ITS_M_COUNT; id++) {
        const char *m = its_metrics_std_name((its_metric_id)id);
        size_t n = strlen(m);
        if (!strcmp(name, m))
            return 1;
        if (its_metrics_std_type((its_metric_id)id) == ITS_METRIC_HISTOGRAM &&
            !strncmp(name, m, n) &&
            (!strcmp(name + n, "_bucket") || !strcmp(name + n, "_sum") ||
             !strcmp(name + n, "_count")))
            return 1;
    }
    return 0;
}

static void on_name(void *ud, const char *name)
{
    check *c = ud;
    if (!exported(name, c->allow_external)) {
        fprintf(stderr, "%s: \"%s\" is not exported by itsd (expr: %s)\n", c->where, name, c->expr);
        c->unknown++;
    }
    for (int i = 0; i < c->nseen; i++)
        if (!strcmp(c->seen[i], name))
            return;
    if (c->nseen < 64)
        snprintf(c->seen[c->nseen++], sizeof c->seen[0], "%s", name);
}

static int seen(const check *c, const char *name)
{
    for (int i = 0; i < c->nseen; i++)
        if (!strcmp(c->seen[i], name))
            return 1;
    return 0;
}

static void collect_names(void *ud, const char *name)
{
    check *c = ud;
    if (c->nseen < 64)
        snprintf(c->seen[c->nseen++], sizeof c->seen[0], "%s", name);
}

/* Every value an expression gives the stage label (stage="x", stage!="x", stage=~"x|y") must be
 * a stage of the stage table; returns how many values were seen, or -1 at an unknown one. */
static int stage_label_values(const char *where, const char *expr)
{
    int n = 0;
    for (const char *p = expr; (p = strstr(p, "stage")); p += 5) {
        if (p > expr && (p[-1] == '_' || (p[-1] >= 'a' && p[-1] <= 'z')))
            continue; /* its_stage_latency_seconds and the like */
        const char *q = p + 5;
        if (q[0] == '=' && q[1] == '~')
            q += 2;
        else if (q[0] == '!' && (q[1] == '=' || q[1] == '~'))
            q += 2;
        else if (q[0] == '=')
            q += 1;
        else
            continue; /* "by (stage, le)", "{{stage}}" */
        if (*q != '"')
            continue;
        const char *end = strchr(++q, '"');
        if (!end)
            return -1;
        while (q < end) {
            const char *bar = memchr(q, '|', (size_t)(end - q));
            const char *stop = bar ? bar : end;
            char v[64];
            snprintf(v, sizeof v, "%.*s", (int)(stop - q), q);
            if (its_stage_find(v) < 0) {
                fprintf(stderr, "%s: stage \"%s\" is not in the stage table (expr: %s)\n", where, v,
                        expr);
                return -1;
            }
            n++;
            q = stop + 1;
        }
    }
    return n;
}

static void test_stage_label_values(void **state)
{
    assert_int_equal(stage_label_values("test", "rate(its_stage_latency_seconds_bucket{stage="
                                                "\"publish\"}[1m]) by (stage, le)"),
                     1);
    assert_int_equal(stage_label_values("test", "x{stage=~\"queue|batch\",stage!=\"total\"}"), 3);
    assert_int_equal(stage_label_values("test", "x{stage=\"infer\"}"), -1);
    char path[1024];
    expr_list l;
    int n = 0;
    its_test_source_path("deploy/grafana/dashboard.json", path, sizeof path);
    assert_int_equal(deploy_dashboard_exprs(path, 0, &l), 0);
    for (int i = 0; i < l.n; i++) {
        int k = stage_label_values("dashboard.json", l.items[i]);
        assert_true(k >= 0);
        n += k;
    }
    expr_list_free(&l);
    assert_true(n >= 1); /* the publish panel */
    its_test_source_path("deploy/prometheus/alerts.yml", path, sizeof path);
    assert_int_equal(deploy_rules_exprs(path, &l), 0);
    for (int i = 0; i < l.n; i++)
        assert_true(stage_label_values("alerts.yml", l.items[i]) >= 0);
    expr_list_free(&l);
}

static void test_scanner(void **state)
{
    check c = {0};
    promql_metric_names("histogram_quantile(0.99, sum by (stage, le) (rate(its_stage_latency_"
                        "seconds_bucket{instance=~\"$instance\",stage=\"a{b}\"}[1m]))) > 1e-3",
                        collect_names, &c);
    assert_int_equal(c.nseen, 1);
    assert_string_equal(c.seen[0], "its_stage_latency_seconds_bucket");
    c.nseen = 0;
    promql_metric_names("sum by (level) (rate(a_total[5m])) / ignoring(level) group_left "
                        "sum(rate(b_total[5m] offset 1h)) and on (x) c unless d == bool 0.5",
                        collect_names, &c);
    assert_int_equal(c.nseen, 4);
    assert_string_equal(c.seen[0], "a_total");
    assert_string_equal(c.seen[1], "b_total");
    assert_string_equal(c.seen[2], "c");
    assert_string_equal(c.seen[3], "d");
    c.nseen = 0;
    promql_metric_names("label_values(its_build_info, instance)", collect_names, &c);
    assert_int_equal(c.nseen, 1);
    assert_string_equal(c.seen[0], "its_build_info");
    /* The check itself rejects a name that is not in the table. */
    assert_false(exported("its_bogus_total", 0));
    assert_false(exported("its_frames_total_bucket", 0));
    assert_true(exported("its_batch_size_bucket", 0));
    assert_false(exported("up", 0));
    assert_false(exported("redis_memory_used_bytes", 0));
    assert_true(exported("redis_memory_used_bytes", 1));
}

static void test_dashboard_metrics(void **state)
{
    char path[1024];
    its_test_source_path("deploy/grafana/dashboard.json", path, sizeof path);
    expr_list l;
    assert_int_equal(deploy_dashboard_exprs(path, 0, &l), 0);
    assert_true(l.n >= 20);
    check c = {.where = "dashboard.json"};
    for (int i = 0; i < l.n; i++) {
        c.expr = l.items[i];
        assert_true(promql_metric_names(l.items[i], on_name, &c) > 0);
    }
    expr_list_free(&l);
    assert_int_equal(c.unknown, 0);
    /* The panels the issue asks for. */
    static const char *const needed[] = {
        "analytics_latency_seconds_bucket",
        "its_stage_latency_seconds_bucket",
        "its_stage_budget_seconds",
        "its_frames_total",
        "its_batch_size_bucket",
        "its_queue_depth",
        "gpu_utilization_percent",
        "its_frames_dropped_total",
        "its_vehicle_count_total",
        "its_flow_rate_vehicles_per_hour",
        "its_camera_fps",
        "its_redis_up",
        "its_publish_dropped_total",
        "its_errors_total",
    };
    for (size_t i = 0; i < ITS_ARRAY_LEN(needed); i++)
        if (!seen(&c, needed[i]))
            fail_msg("dashboard lacks %s", needed[i]);
}

static void test_alert_metrics(void **state)
{
    char path[1024];
    its_test_source_path("deploy/prometheus/alerts.yml", path, sizeof path);
    expr_list l;
    assert_int_equal(deploy_rules_exprs(path, &l), 0);
    assert_int_equal(l.n, 23);
    check c = {.where = "alerts.yml", .allow_external = 1};
    for (int i = 0; i < l.n; i++) {
        c.expr = l.items[i];
        assert_true(promql_metric_names(l.items[i], on_name, &c) > 0);
    }
    expr_list_free(&l);
    assert_int_equal(c.unknown, 0);
    /* SPEC's two rules, its KPI table and its capacity limits */
    static const char *const needed[] = {
        "analytics_latency_seconds_bucket",
        "gpu_utilization_percent",
        "its_stage_latency_seconds_bucket",
        "its_frames_total",
        "its_queue_depth",
        "its_gpu_memory_used_bytes",
        "redis_memory_used_bytes",
        "its_cameras",
        "its_redis_up",
        "its_model_drift_score",
    };
    for (size_t i = 0; i < ITS_ARRAY_LEN(needed); i++)
        if (!seen(&c, needed[i]))
            fail_msg("alerts.yml lacks %s", needed[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scanner),
        cmocka_unit_test(test_dashboard_metrics),
        cmocka_unit_test(test_alert_metrics),
        cmocka_unit_test(test_stage_label_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
