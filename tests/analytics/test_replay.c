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
    replay_frame rf;
    int extra;
    char err[256];
    const char *ok =
        "{\"v\":2,\"type\":\"frame\",\"camera\":\"Main \\\"St\\\" \xE2\x86\x92 S\xC3\xBC"
        "d\",\"ts_us\":1765000000123456,\"frame\":7,\"pts_us\":233333,\"width\":1280,"
        "\"height\":720,\"detections\":[{\"class_id\":2,\"class\":\"car\",\"score\":0.9,"
        "\"box\":[0.25,0.5,0.75,1],\"track_id\":null},{\"class_id\":7,\"class\":\"truck\","
        "\"score\":0.5,\"box\":[0,0,0.1,0.2],\"track_id\":3},{\"class_id\":0,\"class\":\"person\","
        "\"score\":0.3,\"box\":[0,0,1,1],\"track_id\":null}]}\n";
    assert_int_equal(replay_parse_line(ok, strlen(ok), d, 2, &rf, &extra, err, sizeof err), 1);
    assert_int_equal(rf.f.n, 2);
    assert_int_equal(extra, 1);
    assert_int_equal(rf.f.frame_no, 7);
    assert_int_equal(rf.f.ts_ns, 233333000);
    assert_int_equal(rf.pts_ns, 233333000);
    assert_true(rf.ts_us == 1765000000123456LL);
    assert_string_equal(rf.camera, "Main \"St\" \xE2\x86\x92 S\xC3\xBC"
                                   "d");
    assert_int_equal(rf.f.width_px, 1280);
    assert_int_equal(d[0].class_id, 2);
    /* boxes back in pixels: 0.25 * 1280, 0.5 * 720, ... */
    assert_true(d[0].x1 == 320.0f && d[0].y1 == 360.0f && d[0].x2 == 960.0f && d[0].y2 == 720.0f);
    assert_true(d[1].score == 0.5f && d[1].x2 == 128.0f && d[1].y2 == 144.0f);
    const char *img = "{\"v\":2,\"type\":\"infer\",\"camera\":\"bus.jpg\",\"ts_us\":1,\"frame\":0,"
                      "\"width\":10,\"height\":10,\"detections\":[]}";
    assert_int_equal(replay_parse_line(img, strlen(img), d, 2, &rf, &extra, err, sizeof err), 1);
    assert_int_equal(rf.f.ts_ns, -1);
    assert_int_equal(rf.f.n, 0);
    const char *event = "{\"v\":2,\"type\":\"event\",\"camera\":\"x\",\"ts_us\":1}";
    assert_int_equal(replay_parse_line(event, strlen(event), d, 2, &rf, &extra, err, sizeof err),
                     0);
    assert_int_equal(replay_parse_line("  \n", 3, d, 2, &rf, &extra, err, sizeof err), 0);
#define HEAD "{\"v\":2,\"type\":\"frame\",\"camera\":\"c\",\"ts_us\":5,"
    struct {
        const char *line, *expect;
    } bad[] = {
        {"{\"frame\": 1", "not JSON"},
        {"[1, 2]", "not a JSON object"},
        {"{\"frame\": 1, \"width\": 2, \"height\": 2, \"detections\": []}", "version 2"},
        {"{\"v\":1,\"type\":\"frame\"}", "version 2"},
        {"{\"v\":2}", "\"type\" missing"},
        {"{\"v\":2,\"type\":\"frame\",\"ts_us\":5}", "\"camera\" missing"},
        {"{\"v\":2,\"type\":\"frame\",\"camera\":\"c\"}", "\"ts_us\" missing"},
        {HEAD "\"frame\": 1, \"width\": 2, \"height\": 2, \"detections\": 5}", "is not an array"},
        {HEAD "\"width\": 2, \"height\": 2, \"detections\": []}", "\"frame\" missing"},
        {HEAD "\"frame\": -1, \"width\": 2, \"height\": 2, \"detections\": []}",
         "\"frame\" missing"},
        {HEAD "\"frame\": 1, \"width\": 0, \"height\": 2, \"detections\": []}",
         "\"width\"/\"height\""},
        {HEAD "\"frame\": 1, \"width\": 2, \"height\": 2, \"pts_us\": \"x\", \"detections\": []}",
         "\"pts_us\""},
        {HEAD "\"frame\": 1, \"width\": 2, \"height\": 2, \"detections\": [{\"score\": 1, \"box\": "
              "[0, 0, 1, 1]}]}",
         "detections[0]: needs"},
        {HEAD "\"frame\": 1, \"width\": 2, \"height\": 2, \"detections\": [{\"class_id\": 1, "
              "\"score\": 1, \"box\": [0, 0, 1]}]}",
         "detections[0]: needs"},
        {HEAD "\"frame\": 1, \"width\": 2, \"height\": 2, \"detections\": [{\"class_id\": 1, "
              "\"score\": 1, \"box\": [0, 0, 1, \"1\"]}]}",
         "detections[0].box[3]"},
        {HEAD "\"frame\": 1, \"width\": 2, \"height\": 2, \"detections\": [{\"class_id\": 1, "
              "\"score\": 1, \"box\": [0, 0, 1, 1.5]}]}",
         "detections[0].box[3]"},
        {HEAD "\"frame\": 1, \"width\": 2, \"height\": 2, \"detections\": [{\"class_id\": 1, "
              "\"score\": 1.5, \"box\": [0, 0, 1, 1]}]}",
         "score 1.5 is outside"},
        {HEAD "\"frame\": 1, \"frame\": 2, \"width\": 2, \"height\": 2, \"detections\": []}",
         "not JSON"},
    };
#undef HEAD
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        int rc =
            replay_parse_line(bad[i].line, strlen(bad[i].line), d, 2, &rf, &extra, err, sizeof err);
        if (rc != ITS_EPROTO || !strstr(err, bad[i].expect)) {
            fprintf(stderr, "case %zu: rc %d '%s', expected '%s'\n", i, rc, err, bad[i].expect);
            fail();
        }
    }
}

/* Lines written the way itsd writes them, replayed: the car is counted once. */
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
                         "{\"v\":2,\"type\":\"frame\",\"camera\":\"c\",\"ts_us\":%d,\"frame\":%d,"
                         "\"pts_us\":%.0f,\"width\":1280,\"height\":720,\"detections\":[{"
                         "\"class_id\":2,\"class\":\"car\",\"score\":0.85,\"box\":[%.5f,%.5f,%.5f,"
                         "%.5f],\"track_id\":null}]}",
                         k, k, k * 1e6 / SIM_FPS, (p.x - 30) / 1280, (p.y - 40) / 720,
                         (p.x + 30) / 1280, p.y / 720);
        its_det d[4];
        replay_frame rf;
        int extra;
        char err[128];
        assert_int_equal(replay_parse_line(line, (size_t)n, d, 4, &rf, &extra, err, sizeof err), 1);
        const its_analytics_frame *r;
        assert_int_equal(its_analytics_push(a, &rf.f, &r), 0);
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
