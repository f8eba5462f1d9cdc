/*
 * its-infer --track --scene end to end (argv[1]: the binary): a real video through the real
 * detector, ByteTrack and the scene's analytics; track ids on the detections, the analytics
 * summary line at the end of the video; and the option and scene errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "its/alloc.h"
#include "cli_run.h"
#include "testutil.h"

static const char *g_bin;
static char g_tmp[256];

static void run(const char *args, run_result *r)
{
    cli_run(g_bin, g_tmp, args, r);
}

static const char *path(int shared_dir, const char *rel)
{
    static char bufs[8][1024];
    static int k;
    char *b = bufs[k++ % 8];
    if (!(shared_dir ? its_test_shared_path(rel, b, 1024) : its_test_source_path(rel, b, 1024)))
        snprintf(b, 1024, "/missing/%s", rel);
    return b;
}

static void test_track_video(void **state)
{
    (void)state;
    run_result *r = its_malloc(ITS_MOD_TEST, sizeof *r);
    char args[3000];
    snprintf(args, sizeof args, "-m %s -t 1 --max-frames 6 --track --scene %s %s",
             path(1, "models/yolox-nano/yolox_nano.onnx"),
             path(0, "deploy/scenes/traffic_road_cctv_360p.yaml"),
             path(1, "media/traffic_road_cctv_360p.mp4"));
    run(args, r);
    if (r->status != 0)
        printf("%s", r->err);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->lines, 7); /* 6 frames, then the video's analytics */
    /* the frames carry track ids; cars are tracked from the second frame on */
    assert_non_null(strstr(r->out, "\"track_id\":null"));
    const char *f5 = strstr(r->out, "\"frame\":5,");
    assert_non_null(f5);
    assert_non_null(strstr(f5, "\"track_id\":1}"));
    const char *last = strstr(r->out, "{\"v\":2,\"type\":\"window\",");
    assert_non_null(last);
    assert_non_null(strstr(last, "\"report\":{\"scene\":\"road_cctv\""));
    assert_non_null(strstr(last, "\"frames\":6"));
    assert_non_null(strstr(last, "\"name\":\"main\""));
    /* still images pass with track id -1 and no analytics line */
    snprintf(args, sizeof args, "-m %s -t 1 --track --scene %s %s",
             path(1, "models/yolox-nano/yolox_nano.onnx"),
             path(0, "deploy/scenes/traffic_road_cctv_360p.yaml"), path(1, "media/bus.jpg"));
    run(args, r);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->lines, 1);
    assert_non_null(strstr(r->out, "\"track_id\":null"));
    its_free(r);
}

static void test_track_errors(void **state)
{
    (void)state;
    run_result *r = its_malloc(ITS_MOD_TEST, sizeof *r);
    char args[3000], scene[400];
    const char *model = path(1, "models/yolox-nano/yolox_nano.onnx");
    snprintf(args, sizeof args, "-m %s --track %s", model, path(1, "media/bus.jpg"));
    run(args, r);
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "--track and --scene go together"));
    snprintf(args, sizeof args, "-m %s --track --scene /nonexistent/s.yaml %s", model,
             path(1, "media/bus.jpg"));
    run(args, r);
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "/nonexistent/s.yaml: cannot open"));
    snprintf(scene, sizeof scene, "%s/bad.yaml", g_tmp);
    const char *bad = "lines:\n  - name: a\n    points: [[0, 0]]\n    positive: [0, 1]\n";
    assert_int_equal(its_test_write_file(scene, bad, strlen(bad)), 0);
    snprintf(args, sizeof args, "-m %s --track --scene %s %s", model, scene,
             path(1, "media/bus.jpg"));
    run(args, r);
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "bad.yaml: lines[0].points: 2 points needed, got 1"));
    unlink(scene);
    its_free(r);
}

int main(int argc, char **argv)
{
    char probe[1024];
    if (argc < 2 ||
        !its_test_shared_path("models/yolox-nano/yolox_nano.onnx", probe, sizeof probe)) {
        return its_test_skip("its-infer binary or shared models missing");
    }
    g_bin = argv[1];
    if (!its_test_tmpdir(g_tmp, sizeof g_tmp))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_track_video),
        cmocka_unit_test(test_track_errors),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(g_tmp);
    return rc;
}
