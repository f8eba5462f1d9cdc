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
#include "testutil.h"

static const char *g_bin;
static char g_tmp[256];

typedef struct run_result {
    int status;
    char out[1 << 18];
    char err[8192];
    int lines;
} run_result;

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
}

static void run(const char *args, run_result *r)
{
    char cmd[4096], o[300], e[300];
    snprintf(o, sizeof o, "%s/out.txt", g_tmp);
    snprintf(e, sizeof e, "%s/err.txt", g_tmp);
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s'", g_bin, args, o, e);
    int st = system(cmd);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    slurp(o, r->out, sizeof r->out);
    slurp(e, r->err, sizeof r->err);
    r->lines = 0;
    for (const char *p = r->out; *p; p++)
        r->lines += *p == '\n';
    unlink(o);
    unlink(e);
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
    assert_non_null(strstr(r->out, "\"track_id\": -1"));
    const char *f5 = strstr(r->out, "\"frame\": 5,");
    assert_non_null(f5);
    assert_non_null(strstr(f5, "\"track_id\": 1"));
    const char *last = strstr(r->out, "{\"source\":");
    assert_non_null(last);
    assert_non_null(strstr(last, "\"analytics\":{\"camera\":\"road_cctv\""));
    assert_non_null(strstr(last, "\"frames\":6"));
    assert_non_null(strstr(last, "\"name\":\"main\""));
    /* still images pass with track id -1 and no analytics line */
    snprintf(args, sizeof args, "-m %s -t 1 --track --scene %s %s",
             path(1, "models/yolox-nano/yolox_nano.onnx"),
             path(0, "deploy/scenes/traffic_road_cctv_360p.yaml"), path(1, "media/bus.jpg"));
    run(args, r);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->lines, 1);
    assert_non_null(strstr(r->out, "\"track_id\": -1"));
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
        fprintf(stderr, "its-infer binary or shared models missing: skipped\n");
        return ITS_TEST_SKIP_CODE;
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
