/*
 * deploy/ uses only metrics that the service exports: every metric name in the Grafana
 * dashboard and the alert rules must be a row of include/its/metric_names.h (histograms with
 * their _bucket/_sum/_count series). And the dashboard shows what an operator needs.
 */
#include <stdio.h>
#include <string.h>

#include "deploy_files.h"
#include "its/core.h"
#include "its/metrics.h"
#include "promql_names.h"
#include "testutil.h"

typedef struct check {
    int unknown;
    int allow_up;
    const char *where;
    const char *expr;
    char seen[64][96];
    int nseen;
} check;

static int exported(const char *name, int allow_up)
{
    if (allow_up && !strcmp(name, "up")) /* Prometheus' own scrape health */
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
    if (!exported(name, c->allow_up)) {
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
    assert_int_equal(l.n, 10);
    check c = {.where = "alerts.yml", .allow_up = 1};
    for (int i = 0; i < l.n; i++) {
        c.expr = l.items[i];
        assert_true(promql_metric_names(l.items[i], on_name, &c) > 0);
    }
    expr_list_free(&l);
    assert_int_equal(c.unknown, 0);
    assert_true(seen(&c, "analytics_latency_seconds_bucket"));
    assert_true(seen(&c, "gpu_utilization_percent"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scanner),
        cmocka_unit_test(test_dashboard_metrics),
        cmocka_unit_test(test_alert_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
