/* its-replay's reader of its-infer JSON lines: valid frames, summary lines, every malformed
 * kind refused with a reason; and a recorded sequence replayed through the analytics. */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "its/analytics.h"
#include "its/error.h"
#include "replay.h"
#include "sim.h"

static void test_parse(void **state)
{
    (void)state;
    its_det d[2];
    its_det_frame f;
    int extra;
    char err[256];
    const char *ok = "{\"source\": \"v.mp4\", \"frame\": 7, \"pts_ms\": 233.333, \"width\": 1280, "
                     "\"height\": 720, \"detections\": [{\"class_id\": 2, \"label\": \"car\", "
                     "\"score\": 0.9, \"box\": [1, 2, 30.5, 40]}, {\"class_id\": 7, \"score\": "
                     "0.5, \"box\": [5, 6, 7, 8], \"track_id\": 3}, {\"class_id\": 0, \"score\": "
                     "0.3, \"box\": [0, 0, 1, 1]}]}\n";
    assert_int_equal(replay_parse_line(ok, strlen(ok), d, 2, &f, &extra, err, sizeof err), 1);
    assert_int_equal(f.n, 2);
    assert_int_equal(extra, 1);
    assert_int_equal(f.frame_no, 7);
    assert_int_equal(f.ts_ns, 233333000);
    assert_int_equal(f.width_px, 1280);
    assert_int_equal(d[0].class_id, 2);
    assert_true(d[0].x2 == 30.5f && d[1].score == 0.5f);
    const char *img = "{\"frame\": 0, \"width\": 10, \"height\": 10, \"detections\": []}";
    assert_int_equal(replay_parse_line(img, strlen(img), d, 2, &f, &extra, err, sizeof err), 1);
    assert_int_equal(f.ts_ns, -1);
    assert_int_equal(f.n, 0);
    const char *summary = "{\"source\": \"v.mp4\", \"analytics\": {\"camera\": \"x\"}}";
    assert_int_equal(replay_parse_line(summary, strlen(summary), d, 2, &f, &extra, err, sizeof err),
                     0);
    assert_int_equal(replay_parse_line("  \n", 3, d, 2, &f, &extra, err, sizeof err), 0);
    struct {
        const char *line, *expect;
    } bad[] = {
        {"{\"frame\": 1", "not JSON"},
        {"[1, 2]", "not a JSON object"},
        {"{\"frame\": 1, \"width\": 2, \"height\": 2, \"detections\": 5}", "is not an array"},
        {"{\"width\": 2, \"height\": 2, \"detections\": []}", "\"frame\" missing"},
        {"{\"frame\": -1, \"width\": 2, \"height\": 2, \"detections\": []}", "\"frame\" missing"},
        {"{\"frame\": 1, \"width\": 0, \"height\": 2, \"detections\": []}", "\"width\"/\"height\""},
        {"{\"frame\": 1, \"width\": 2, \"height\": 2, \"pts_ms\": \"x\", \"detections\": []}",
         "\"pts_ms\""},
        {"{\"frame\": 1, \"width\": 2, \"height\": 2, \"detections\": [{\"score\": 1, \"box\": "
         "[1, 2, 3, 4]}]}",
         "detections[0]: needs"},
        {"{\"frame\": 1, \"width\": 2, \"height\": 2, \"detections\": [{\"class_id\": 1, "
         "\"score\": 1, \"box\": [1, 2, 3]}]}",
         "detections[0]: needs"},
        {"{\"frame\": 1, \"width\": 2, \"height\": 2, \"detections\": [{\"class_id\": 1, "
         "\"score\": 1, \"box\": [1, 2, 3, \"4\"]}]}",
         "detections[0].box[3]"},
        {"{\"frame\": 1, \"width\": 2, \"height\": 2, \"detections\": [{\"class_id\": 1, "
         "\"score\": 1.5, \"box\": [1, 2, 3, 4]}]}",
         "score 1.5 is outside"},
        {"{\"frame\": 1, \"frame\": 2, \"width\": 2, \"height\": 2, \"detections\": []}",
         "not JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        int rc =
            replay_parse_line(bad[i].line, strlen(bad[i].line), d, 2, &f, &extra, err, sizeof err);
        if (rc != ITS_EPROTO || !strstr(err, bad[i].expect)) {
            fprintf(stderr, "case %zu: rc %d '%s', expected '%s'\n", i, rc, err, bad[i].expect);
            fail();
        }
    }
}

/* Lines written the way its-infer writes them, replayed: the car is counted once. */
static void test_replay_sequence(void **state)
{
    (void)state;
    its_scene s;
    sim_scene(&s);
    sim_add_line(&s, "mid", 20);
    its_analytics_t *a;
    assert_int_equal(its_analytics_create(&s, NULL, &a), 0);
    for (int k = 0; k < 90; k++) {
        its_pt p = sim_to_img(&s, (its_pt){5, 8 + 10 * k / SIM_FPS});
        char line[512];
        int n = snprintf(line, sizeof line,
                         "{\"source\": \"v\", \"frame\": %d, \"pts_ms\": %.3f, \"width\": 1280, "
                         "\"height\": 720, \"detections\": [{\"class_id\": 2, \"label\": \"car\", "
                         "\"score\": 0.8500, \"box\": [%.1f, %.1f, %.1f, %.1f]}]}",
                         k, k * 1000 / SIM_FPS, p.x - 30, p.y - 40, p.x + 30, p.y);
        its_det d[4];
        its_det_frame f;
        int extra;
        char err[128];
        assert_int_equal(replay_parse_line(line, (size_t)n, d, 4, &f, &extra, err, sizeof err), 1);
        const its_analytics_frame *r;
        assert_int_equal(its_analytics_push(a, &f, &r), 0);
    }
    its_analytics_report rep;
    its_analytics_get_report(a, &rep);
    assert_int_equal(rep.lines[0].total[ITS_CLS_CAR][0], 1);
    its_analytics_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_replay_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
