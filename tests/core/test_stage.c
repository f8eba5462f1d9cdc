#include "testutil.h"

#include <string.h>

#include "its/ingest.h"
#include "its/stage.h"

/* SPEC's latency budget (docs/SPEC.md, ARCHITECTURE.md section 3), in ms. */
static const struct {
    const char *name;
    double budget_ms;
} spec[] = {
    {"queue", 5},   {"batch", 10},   {"inference", 50}, {"postprocess", 10}, {"analytics", 15},
    {"quality", 5}, {"modelmon", 5}, {"publish", 5},    {"total", 100},
};

static void test_every_stage_is_complete(void **state)
{
    assert_int_equal(ITS_STAGE_COUNT, (int)(sizeof spec / sizeof spec[0]));
    for (int s = 0; s < ITS_STAGE_COUNT; s++) {
        const its_stage_def *d = its_stage_get((its_stage)s);
        assert_non_null(d);
        assert_int_equal(d->id, s);
        assert_non_null(d->name);
        assert_string_equal(d->name, spec[s].name);
        assert_string_equal(its_stage_name((its_stage)s), spec[s].name);
        assert_true(d->budget_ms == spec[s].budget_ms);
        assert_true(its_stage_budget_ms((its_stage)s) == spec[s].budget_ms);
        assert_true(d->from >= 0 && d->from < ITS_TS_COUNT);
        assert_true(d->to >= 0 && d->to < ITS_TS_COUNT);
        assert_true(d->from != d->to);
        assert_non_null(d->description);
        assert_true(strlen(d->description) > 0);
        /* a Prometheus label value and a status-line word: lower case, no blanks */
        for (const char *c = d->name; *c; c++)
            assert_true((*c >= 'a' && *c <= 'z'));
        assert_int_equal(its_stage_find(d->name), s);
        for (int o = 0; o < s; o++)
            assert_string_not_equal(its_stage_name((its_stage)o), d->name);
    }
    assert_null(its_stage_get(ITS_STAGE_COUNT));
    assert_null(its_stage_get((its_stage)-1));
    assert_string_equal(its_stage_name(ITS_STAGE_COUNT), "?");
    assert_true(its_stage_budget_ms(ITS_STAGE_COUNT) == 0);
    assert_int_equal(its_stage_find("infer"), -1);
    assert_int_equal(its_stage_find(NULL), -1);
}

/* A frame through the pipeline, timestamps in the order the pipeline takes them (analytics,
 * then quality, then model metrics; the message's publication time is the moment model
 * metrics finished). The spans below are worked out by hand from the stage definitions. */
static void test_spans_of_a_frame(void **state)
{
    uint64_t ts[ITS_TS_COUNT] = {0};
    ts[ITS_TS_CAPTURE] = 1000;
    ts[ITS_TS_ENQUEUE] = 2000;
    ts[ITS_TS_BATCH] = 5000;
    ts[ITS_TS_PREP] = 6000;
    ts[ITS_TS_INFER] = 20000;
    ts[ITS_TS_POST] = 23000;
    ts[ITS_TS_DISPATCH] = 24000;
    ts[ITS_TS_ANALYTICS] = 30000;
    ts[ITS_TS_QUALITY] = 31000;
    ts[ITS_TS_MODELMON] = 33000;
    ts[ITS_TS_PUBLISH] = 33000;
    ts[ITS_TS_SENT] = 34000;
    static const uint64_t want[ITS_STAGE_COUNT] = {
        [ITS_STAGE_QUEUE] = 3000,    [ITS_STAGE_BATCH] = 1000,     [ITS_STAGE_INFER] = 14000,
        [ITS_STAGE_POST] = 3000,     [ITS_STAGE_ANALYTICS] = 7000, [ITS_STAGE_QUALITY] = 1000,
        [ITS_STAGE_MODELMON] = 2000, [ITS_STAGE_PUBLISH] = 1000,   [ITS_STAGE_TOTAL] = 32000,
    };
    uint64_t parts = 0;
    for (int s = 0; s < ITS_STAGE_COUNT; s++) {
        uint64_t ns = 0;
        assert_int_equal(its_stage_span_ns((its_stage)s, ts, &ns), 1);
        assert_int_equal(ns, want[s]);
        if (s != ITS_STAGE_TOTAL)
            parts += ns;
    }
    /* the stages tile the path from enqueue to the sinks' return: no gap, no overlap */
    assert_int_equal(parts, ts[ITS_TS_SENT] - ts[ITS_TS_ENQUEUE]);

    /* a bound not reached, or bounds out of order: nothing to record */
    uint64_t ns = 77;
    ts[ITS_TS_PREP] = 0;
    assert_int_equal(its_stage_span_ns(ITS_STAGE_BATCH, ts, &ns), 0);
    assert_int_equal(its_stage_span_ns(ITS_STAGE_INFER, ts, &ns), 0);
    ts[ITS_TS_PREP] = 4000; /* before ITS_TS_BATCH */
    assert_int_equal(its_stage_span_ns(ITS_STAGE_BATCH, ts, &ns), 0);
    assert_int_equal(its_stage_span_ns(ITS_STAGE_COUNT, ts, &ns), 0);
    assert_int_equal(ns, 77);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_stage_is_complete),
        cmocka_unit_test(test_spans_of_a_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
