/*
 * Prometheus' own checker on our output: /metrics text passes `promtool check metrics`,
 * alerts.yml passes `promtool check rules`, alerts_test.yml (`promtool test rules`) shows
 * every alert firing, prometheus.yml passes `promtool check config`, and every dashboard
 * expression parses (checked as recording rules). Skipped only without promtool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deploy_files.h"
#include "its/core.h"
#include "its/metrics.h"
#include "testutil.h"

static char tmp[256];

/* Runs a shell command; on failure prints its output. Returns the exit status. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[4096], log[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(log, sizeof log, "%s/out.log", tmp);
    char full[4800];
    snprintf(full, sizeof full, "(%s) >%s 2>&1", cmd, log);
    int st = system(full);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    size_t n = 0;
    uint8_t *out = its_test_read_file(log, &n);
    fprintf(stderr, "$ %s -> %d\n%.*s", cmd, rc, (int)(n > 4000 ? 4000 : n),
            out ? (const char *)out : "");
    its_free(out);
    return rc;
}

static void test_metrics_text(void **state)
{
    its_metrics *reg = its_metrics_create();
    assert_int_equal(its_metrics_std_register(reg), 0);
    /* One series for every labelled family, with awkward label values. */
    const char *awkward = "cam \"7\"\\\nnorth";
    for (int id = 0; id < ITS_M_COUNT; id++) {
        its_metric_family *f = its_metrics_std(reg, (its_metric_id)id);
        if (!f) { /* GPU rows: registered as the GPU attach would */
            f = its_metrics_family(reg, its_metrics_std_type((its_metric_id)id),
                                   its_metrics_std_name((its_metric_id)id), "GPU metric", "gpu",
                                   NULL, 0);
            assert_non_null(f);
        }
        its_metric *m = its_metrics_series_v(f, awkward, "queue_full", "car");
        assert_non_null(m);
        its_metric_inc(m);
        its_metric_set(m, 0.25);
        its_metric_observe(m, 0.042);
    }
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(its_metrics_render(reg, &text, &len), 0);
    char path[300];
    snprintf(path, sizeof path, "%s/metrics.txt", tmp);
    assert_int_equal(its_test_write_file(path, text, len), 0);
    its_free(text);
    its_metrics_destroy(reg);
    assert_int_equal(run("promtool check metrics < %s", path), 0);
    /* Control: the checker does reject a broken exposition. */
    snprintf(path, sizeof path, "%s/broken.txt", tmp);
    const char *broken = "# TYPE x counter\nx{a=\"b} 1\n";
    assert_int_equal(its_test_write_file(path, broken, strlen(broken)), 0);
    assert_int_not_equal(run("promtool check metrics < %s", path), 0);
}

static void test_rules(void **state)
{
    char dir[1024];
    its_test_source_path("deploy/prometheus", dir, sizeof dir);
    assert_int_equal(run("cd %s && promtool check rules alerts.yml", dir), 0);
    assert_int_equal(run("cd %s && promtool test rules alerts_test.yml", dir), 0);
    assert_int_equal(run("cd %s && promtool check config prometheus.yml", dir), 0);
}

/* Every alert of alerts.yml has, in alerts_test.yml, a case where it fires (a non-empty
 * exp_alerts) and one where it does not (exp_alerts: []). */
static void test_every_rule_tested(void **state)
{
    char path[1024];
    size_t n = 0, tn = 0;
    its_test_source_path("deploy/prometheus/alerts.yml", path, sizeof path);
    char *rules = (char *)its_test_read_file(path, &n);
    its_test_source_path("deploy/prometheus/alerts_test.yml", path, sizeof path);
    char *tests = (char *)its_test_read_file(path, &tn);
    assert_non_null(rules);
    assert_non_null(tests);
    int nrules = 0;
    for (const char *p = rules; (p = strstr(p, "- alert: ")); nrules++) {
        p += 9;
        char name[96], key[128];
        size_t len = strcspn(p, " \n");
        assert_true(len > 0 && len < sizeof name);
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        snprintf(key, sizeof key, "alertname: %s\n", name);
        int firing = 0, quiet = 0;
        for (const char *q = tests; (q = strstr(q, key)); q += strlen(key)) {
            const char *e = q + strlen(key);
            e += strspn(e, " ");
            assert_true(!strncmp(e, "exp_alerts:", 11));
            e += 11;
            if (!strncmp(e, " []", 3))
                quiet++;
            else if (strstr(e, "exp_labels:") &&
                     (!strstr(e, "alertname:") ||
                      strstr(e, "exp_labels:") < strstr(e, "alertname:")))
                firing++;
        }
        if (!firing || !quiet)
            fail_msg("%s: %d firing and %d quiet cases in alerts_test.yml", name, firing, quiet);
    }
    assert_int_equal(nrules, 23);
    its_free(rules);
    its_free(tests);
}

static void test_dashboard_expressions_parse(void **state)
{
    char path[1024];
    its_test_source_path("deploy/grafana/dashboard.json", path, sizeof path);
    expr_list l;
    assert_int_equal(deploy_dashboard_exprs(path, 1, &l), 0);
    assert_true(l.n > 0);
    char rules[300];
    snprintf(rules, sizeof rules, "%s/dashboard_rules.yml", tmp);
    FILE *f = fopen(rules, "w");
    assert_non_null(f);
    fprintf(f, "groups:\n  - name: dashboard\n    rules:\n");
    for (int i = 0; i < l.n; i++) {
        /* A YAML single-quoted scalar: double any single quote. */
        fprintf(f, "      - record: dashboard:expr_%d\n        expr: '", i);
        for (const char *p = l.items[i]; *p; p++)
            fputs(*p == '\'' ? "''" : (char[]){*p, 0}, f);
        fprintf(f, "'\n");
    }
    fclose(f);
    expr_list_free(&l);
    assert_int_equal(run("promtool check rules %s", rules), 0);
}

int main(void)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        return its_test_skip("promtool not found (Debian package prometheus)");
    }
    if (!its_test_tmpdir(tmp, sizeof tmp))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_text),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_every_rule_tested),
        cmocka_unit_test(test_dashboard_expressions_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
