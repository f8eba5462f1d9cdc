/* Scene files: a full valid file, every kind of error with its message, and every scene
 * shipped in deploy/scenes loads. */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "its/analytics.h"
#include "its/error.h"

static const char *good = "camera: cam-7\n"
                          "fps: 25\n"
                          "frame: [1280, 720]\n"
                          "calibration:\n"
                          "  image: [[400, 100], [880, 100], [1180, 700], [100, 700]]\n"
                          "  road: [[0, 40], [10, 40], [10, 0], [0, 0]]\n"
                          "classes: {car: [2, 67], truck: [7], bus: [5], person: [0]}\n"
                          "lines:\n"
                          "  - name: stop\n"
                          "    points: [[200, 500], [1100, 500]]\n"
                          "    positive: [0, -1]\n"
                          "    lanes: 2\n"
                          "zones:\n"
                          "  - name: box\n"
                          "    polygon: [[300, 300], [900, 300], [900, 400], [300, 400]]\n"
                          "  - name: zebra\n"
                          "    polygon: [[300, 520], [900, 520], [900, 560], [300, 560]]\n"
                          "    walk: true\n"
                          "lanes:\n"
                          "  - name: up\n"
                          "    polygon: [[400, 100], [880, 100], [1180, 700], [100, 700]]\n"
                          "    direction: [0, -1]\n"
                          "    stop_line: stop\n"
                          "analytics:\n"
                          "  stopped_time_s: 30\n"
                          "  queue_gap_m: 12.5\n"
                          "  class_vote_margin: 2\n"
                          "traffic_classes:\n"
                          "  - {name: two_wheeler, kinds: [bicycle, motorcycle]}\n"
                          "  - {name: goods, kinds: [light_goods, heavy_goods]}\n"
                          "  - {name: car, kinds: [car]}\n";

static void test_good(void **state)
{
    (void)state;
    its_scene s;
    char err[512] = "";
    int rc = its_scene_load_string(good, strlen(good), "good.yaml", &s, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(s.camera, "cam-7");
    assert_true(s.fps == 25);
    assert_int_equal(s.width_px, 1280);
    assert_int_equal(s.n_lines, 1);
    assert_int_equal(s.n_zones, 2);
    assert_int_equal(s.zones[0].walk, 0);
    assert_int_equal(s.zones[1].walk, 1);
    assert_true(s.params.class_vote_margin == 2);
    assert_true(s.params.rider_overlap == 0.3); /* default kept */
    assert_int_equal(s.n_tclasses, 3);
    assert_string_equal(s.tclasses[0].name, "two_wheeler");
    assert_int_equal(s.tclasses[0].kinds, 1u << ITS_TK_BICYCLE | 1u << ITS_TK_MOTORCYCLE);
    assert_int_equal(s.tclasses[1].kinds, 1u << ITS_TK_LIGHT_GOODS | 1u << ITS_TK_HEAVY_GOODS);
    assert_int_equal(s.tclasses[2].kinds, 1u << ITS_TK_CAR);
    assert_int_equal(s.n_lanes, 1);
    assert_int_equal(s.lines[0].lanes, 2);
    assert_int_equal(s.lanes[0].stop_line, 0);
    assert_int_equal(s.class_map[67], ITS_CLS_CAR);
    assert_int_equal(s.class_map[3], -1); /* the classes section replaces the default map */
    assert_true(s.params.stopped_time_s == 30);
    assert_true(s.params.queue_gap_m == 12.5);
    assert_true(s.params.speed_window_s == 1.0); /* default kept */
    /* the fitted homography maps the calibration points onto the road points */
    for (int i = 0; i < 4; i++) {
        its_pt r = its_scene_to_road(&s, s.calib_image[i]);
        assert_true(fabs(r.x - s.calib_road[i].x) < 1e-9);
        assert_true(fabs(r.y - s.calib_road[i].y) < 1e-9);
    }
    /* an empty document is the default scene */
    assert_int_equal(its_scene_load_string("", 0, "empty.yaml", &s, err, sizeof err), 0);
    assert_int_equal(s.class_map[2], ITS_CLS_CAR);
    assert_int_equal(s.n_lines, 0);
}

/* Every analytics: key lands in its own field (the table in scene.c follows the struct). */
static void test_params(void **state)
{
    (void)state;
    const char *y = "analytics:\n  speed_window_s: 1.5\n  line_hysteresis_px: 3\n"
                    "  track_timeout_s: 4\n  stopped_speed_kmh: 6\n  stopped_time_s: 25\n"
                    "  wrong_way_time_s: 3.5\n  wrong_way_min_speed_kmh: 12\n"
                    "  speed_drop_kmh: 35\n  speed_drop_window_s: 2.5\n"
                    "  speed_drop_ratio: 0.45\n  queue_speed_kmh: 4\n  queue_gap_m: 11\n"
                    "  forecast_alpha: 0.35\n  forecast_beta: 0.15\n  duplicate_iou: 0.65\n";
    its_scene s;
    char err[512] = "";
    int rc = its_scene_load_string(y, strlen(y), "p.yaml", &s, err, sizeof err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    const its_analytics_params *p = &s.params;
    assert_true(p->speed_window_s == 1.5 && p->line_hysteresis_px == 3 && p->track_timeout_s == 4 &&
                p->stopped_speed_kmh == 6 && p->stopped_time_s == 25 &&
                p->wrong_way_time_s == 3.5 && p->wrong_way_min_speed_kmh == 12 &&
                p->speed_drop_kmh == 35 && p->speed_drop_window_s == 2.5 &&
                p->speed_drop_ratio == 0.45 && p->queue_speed_kmh == 4 && p->queue_gap_m == 11 &&
                p->forecast_alpha == 0.35 && p->forecast_beta == 0.15 && p->duplicate_iou == 0.65);
}

typedef struct bad_case {
    const char *yaml;
    const char *expect; /* substring of the message, after "bad.yaml: " */
} bad_case;

static const bad_case bad[] = {
    {"camera: \"unterminated\n", "bad.yaml: "},
    {"- 1\n- 2\n", "(document)"},
    {"colour: red\n", "Unexpected key"},
    {"fps: fast\n", "fps: Invalid FLOAT value"},
    {"fps: 0\n", "fps: 0 is outside"},
    {"frame: [1280]\n", "frame: [width, height] needed, got 1"},
    {"frame: [1280, -5]\n", "frame: width and height must be positive"},
    {"lines: 3\n", "lines: Expecting SEQUENCE"},
    {"lines:\n  - points: [[0, 0], [10, 0]]\n    positive: [0, 1]\n", "lines[0].name: missing"},
    {"lines:\n  - name: a\n    points: [[0, 0], [10, 0]]\n    positive: [0, 1]\n"
     "  - name: a\n    points: [[0, 5], [10, 5]]\n    positive: [0, 1]\n",
     "lines[1].name: 'a' is used twice"},
    {"lines:\n  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", "lines[0].name: longer than"},
    {"lines:\n  - name: a\n    points: [[0, 0], [10, 0], [20, 0]]\n    positive: [0, 1]\n",
     "lines[0].points: 2 points needed, got 3"},
    {"lines:\n  - name: a\n    points: [[0, 0, 1], [10, 0]]\n", "lines[0].points[0]"},
    {"lines:\n  - name: a\n    points: [[0, 0], [x, 0]]\n", "Invalid FLOAT value"},
    {"lines:\n  - name: a\n    points: [[0, 0], [0, 0]]\n    positive: [0, 1]\n",
     "lines[0].points: the two points coincide"},
    {"lines:\n  - name: a\n    points: [[0, 0], [10, 0]]\n", "lines[0].positive: a direction"},
    {"lines:\n  - name: a\n    points: [[0, 0], [10, 0]]\n    positive: [5, 0]\n",
     "lines[0].positive: runs along the line"},
    {"lines:\n  - name: a\n    points: [[0, 0], [10, 0]]\n    positive: [0, 1]\n    lanes: 0\n",
     "lines[0].lanes: 0 is outside"},
    {"frame: [640, 480]\nlines:\n  - name: a\n    points: [[0, 0], [700, 0]]\n"
     "    positive: [0, 1]\n",
     "lines[0].points: not finite or outside the 640x480 frame"},
    {"lines:\n  - name: a\n    points: [[0, 0], [10, 0]]\n    positive: [0, 1]\n    colour: 1\n",
     "lines[0]: Unexpected key: colour"},
    {"zones:\n  - name: z\n    polygon: [[0, 0], [10, 0]]\n", "zones[0].polygon: 3..32 points"},
    {"zones:\n  - name: z\n    polygon: [[0, 0], [10, 0], [20, 0]]\n",
     "zones[0].polygon: has zero area"},
    {"zones:\n  - name: z\n    polygon: [[0, 0], [10, 10], [10, 0], [0, 10]]\n",
     "zones[0].polygon: is self-intersecting"},
    {"zones:\n  - polygon: [[0, 0], [10, 10], [10, 0]]\n", "zones[0].name: missing"},
    {"lanes:\n  - name: l\n    polygon: [[0, 0], [10, 0], [10, 10]]\n",
     "lanes[0].direction: a direction"},
    {"lanes:\n  - name: l\n    polygon: [[0, 0], [10, 0], [10, 10]]\n    direction: [0, 0]\n",
     "lanes[0].direction: a non-zero direction"},
    {"lanes:\n  - name: l\n    polygon: [[0, 0], [10, 0], [10, 10]]\n    direction: [0, 1]\n"
     "    stop_line: nowhere\n",
     "lanes[0].stop_line: no line named 'nowhere'"},
    {"lines:\n  - name: a\n    points: [[0, 0], [10, 0]]\n    positive: [0, 1]\n"
     "lanes:\n  - name: l\n    polygon: [[0, 0], [10, 0], [10, 10]]\n    direction: [0, 1]\n"
     "    stop_line: a\n",
     "lanes[0].stop_line: queue length needs a calibration"},
    {"calibration:\n  image: [[0, 0], [10, 0], [10, 10]]\n  road: [[0, 0], [1, 0], [1, 1], [0, "
     "1]]\n",
     "calibration.image: 4 points needed, got 3"},
    {"calibration:\n  image: [[0, 0], [10, 0], [10, 10], [0, 10]]\n",
     "calibration.road: 4 points needed, got 0"},
    {"calibration:\n  image: [[0, 0], [10, 0], [20, 0], [0, 10]]\n"
     "  road: [[0, 0], [1, 0], [1, 1], [0, 1]]\n",
     "calibration: three of the four points are collinear"},
    {"calibration:\n  image: [[0, 0], [10, 0], [10, 10], [0, 10]]\n"
     "  road: [[0, 0], [1, 0], [0, 1], [1, 1]]\n",
     "calibration: the points are not in the same order"},
    {"frame: [1280, 720]\ncalibration:\n  image: [[535, 690], [785, 690], [687, 385], [567, 385]]\n"
     "  road: [[0, 0], [3.65, 0], [3.65, 60], [0, 60]]\n"
     "lines:\n  - {name: a, points: [[100, 50], [1000, 50]], positive: [0, 1]}\n",
     "lines[0].points: beyond the horizon of the calibration"},
    {"speed_zone: [[0, 0], [10, 0], [10, 10]]\n", "speed_zone: needs a calibration section"},
    {"calibration:\n  image: [[0, 0], [10, 0], [10, 10], [0, 10]]\n"
     "  road: [[0, 0], [1, 0], [1, 1], [0, 1]]\nspeed_zone: [[0, 0], [10, 0]]\n",
     "speed_zone: 3..32 points needed, got 2"},
    {"calibration:\n  image: [[0, 0], [10, 0], [10, 10], [0, 10]]\n"
     "  road: [[0, 0], [1, 0], [1, 1], [0, 1]]\nspeed_zone: [[0, 0], [10, 10], [10, 0], [0, 10]]\n",
     "speed_zone: is self-intersecting"},
    {"classes: {car: [2, 300]}\n", "classes.car: class id 300 is outside 0..255"},
    {"classes: {car: [2], truck: [2]}\n", "classes.truck: class id 2 is already in group car"},
    {"classes: {tractor: [2]}\n", "classes: Unexpected key: tractor"},
    {"analytics: {stopped_time_s: 0.1}\n", "analytics.stopped_time_s: 0.1 is outside"},
    {"analytics: {forecast_alpha: 2}\n", "analytics.forecast_alpha: 2 is outside"},
    {"analytics: {speed: 1}\n", "analytics: Unexpected key: speed"},
    {"analytics: {class_vote_margin: 0.5}\n", "analytics.class_vote_margin: 0.5 is outside"},
    {"zones:\n  - {name: z, polygon: [[0, 0], [10, 0], [10, 10]], walk: [1]}\n", "walk"},
    {"traffic_classes:\n  - {name: a, kinds: [car, tractor]}\n",
     "traffic_classes[0].kinds: unknown kind 'tractor'"},
    {"traffic_classes:\n  - {name: a, kinds: [car]}\n  - {name: b, kinds: [bus, car]}\n",
     "traffic_classes[1].kinds: a kind is already in another class"},
    {"traffic_classes:\n  - {name: a, kinds: [car]}\n  - {name: a, kinds: [bus]}\n",
     "traffic_classes[1].name: 'a' is used twice"},
    {"traffic_classes:\n  - {kinds: [car]}\n", "traffic_classes[0].name: missing"},
};

static void test_errors(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        its_scene s;
        char err[512] = "";
        int rc = its_scene_load_string(bad[i].yaml, strlen(bad[i].yaml), "bad.yaml", &s, err,
                                       sizeof err);
        if (rc != ITS_ECONFIG || strncmp(err, "bad.yaml: ", 10) || !strstr(err, bad[i].expect)) {
            fprintf(stderr, "case %zu: rc %d, message '%s', expected '%s'\n", i, rc, err,
                    bad[i].expect);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_limits_and_files(void **state)
{
    (void)state;
    char yaml[8192];
    size_t n = (size_t)snprintf(yaml, sizeof yaml, "lines:\n");
    for (int i = 0; i < ITS_SCENE_MAX_LINES + 1; i++)
        n += (size_t)snprintf(yaml + n, sizeof yaml - n,
                              "  - {name: l%d, points: [[0, %d], [10, %d]], positive: [0, 1]}\n", i,
                              i, i);
    its_scene s;
    char err[512];
    assert_int_equal(its_scene_load_string(yaml, n, "many.yaml", &s, err, sizeof err), ITS_ECONFIG);
    assert_non_null(strstr(err, "many.yaml: lines: 17 lines, at most 16"));
    assert_int_equal(its_scene_load("/nonexistent/scene.yaml", &s, err, sizeof err), ITS_ENOENT);
    assert_non_null(strstr(err, "/nonexistent/scene.yaml: cannot open"));
    assert_int_equal(its_scene_load(NULL, &s, err, sizeof err), ITS_EINVAL);
}

/* Every scene shipped for the test videos loads and fits the frame it is for, and its JSON
 * (its_scene_write) loads back to the same scene. */
static void test_shipped_scenes(void **state)
{
    (void)state;
    char dir[1024];
    its_test_source_path("deploy/scenes", dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d)
        ITS_TEST_SKIP("deploy/scenes not found (ITS_SOURCE_DIR)");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".yaml"))
            continue;
        char path[2048], err[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        its_scene s;
        int rc = its_scene_load(path, &s, err, sizeof err);
        if (rc < 0)
            fprintf(stderr, "%s\n", err);
        assert_int_equal(rc, 0);
        assert_true(s.width_px > 0 && s.n_lines > 0 && s.has_calibration);
        /* written as JSON (GET /v1/cameras/{id}/scene) it reads back as the same scene */
        static char json[65536];
        its_json w;
        its_json_init(&w, json, sizeof json);
        its_scene_write(&s, &w);
        int len = its_json_finish(&w);
        assert_true(len > 0);
        its_scene back;
        rc = its_scene_load_string(json, (size_t)len, "json", &back, err, sizeof err);
        if (rc < 0)
            fprintf(stderr, "%s\n%s\n", err, json);
        assert_int_equal(rc, 0);
        assert_memory_equal(&back, &s, sizeof s);
        n++;
    }
    closedir(d);
    assert_true(n >= 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),           cmocka_unit_test(test_params),
        cmocka_unit_test(test_errors),         cmocka_unit_test(test_limits_and_files),
        cmocka_unit_test(test_shipped_scenes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
