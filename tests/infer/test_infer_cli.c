/*
 * its-infer end to end: the binary (argv[1]) on real models and media, and every error path
 * (missing file, corrupt image, bad model, bad options) -> a clear message on stderr and a
 * non-zero exit status, while the good inputs of the same run are still processed.
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

static const char *shared(const char *rel)
{
    static char bufs[8][1024];
    static int k;
    char *b = bufs[k++ % 8];
    if (!its_test_shared_path(rel, b, 1024))
        snprintf(b, 1024, "/missing/%s", rel);
    return b;
}

static void test_images_and_draw(void **state)
{
    (void)state;
    run_result *r = its_malloc(ITS_MOD_TEST, sizeof *r);
    char args[3000];
    snprintf(args, sizeof args, "-m %s -t 1 --draw %s/draw %s %s",
             shared("models/yolox-nano/yolox_nano.onnx"), g_tmp, shared("media/bus.jpg"),
             shared("media/person.jpg"));
    run(args, r);
    if (r->status != 0)
        printf("%s", r->err);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->lines, 2);
    assert_non_null(strstr(r->out, "{\"v\":2,\"type\":\"infer\",\"camera\":\""));
    assert_non_null(strstr(r->out, "\"width\":810,\"height\":1080"));
    /* person.jpg holds a person, a dog and a horse (reference: expected_detections.json) */
    assert_non_null(strstr(r->out, "\"class\":\"person\""));
    assert_non_null(strstr(r->out, "\"class\":\"horse\""));
    char p[600];
    snprintf(p, sizeof p, "%s/draw/bus.jpg", g_tmp);
    size_t len;
    uint8_t *jpg = its_test_read_file(p, &len);
    assert_non_null(jpg);
    assert_true(len > 1000 && jpg[0] == 0xFF && jpg[1] == 0xD8);
    its_free(jpg);
    unlink(p);
    snprintf(p, sizeof p, "%s/draw/person.jpg", g_tmp);
    unlink(p);
    snprintf(p, sizeof p, "%s/draw", g_tmp);
    rmdir(p);
    /* A higher threshold can only remove detections. */
    snprintf(args, sizeof args, "-m %s -t 1 --confidence 0.99 %s",
             shared("models/yolox-nano/yolox_nano.onnx"), shared("media/bus.jpg"));
    run(args, r);
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "\"detections\":[]"));
    its_free(r);
}

static void test_video_batches(void **state)
{
    (void)state;
    run_result *r = its_malloc(ITS_MOD_TEST, sizeof *r);
    char args[3000];
    /* 3 frames with batch 2: one full batch and one partial one, frames in order. */
    snprintf(args, sizeof args, "-m %s -t 1 -b 2 --max-frames 3 %s",
             shared("models/yolox-nano/yolox_nano.onnx"),
             shared("media/traffic_road_cctv_360p.mp4"));
    run(args, r);
    if (r->status != 0)
        printf("%s", r->err);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->lines, 3);
    const char *f0 = strstr(r->out, "\"frame\":0,"), *f1 = strstr(r->out, "\"frame\":1,"),
               *f2 = strstr(r->out, "\"frame\":2,");
    assert_true(f0 && f1 && f2 && f0 < f1 && f1 < f2);
    assert_non_null(strstr(r->out, "\"width\":640,\"height\":360"));
    its_free(r);
}

static void test_error_paths(void **state)
{
    (void)state;
    run_result *r = its_malloc(ITS_MOD_TEST, sizeof *r);
    char args[3000], bad_model[400], trunc[1024];
    const char *model = shared("models/yolox-nano/yolox_nano.onnx");

    /* Missing input among good ones: reported, the good one still printed, status 1. */
    snprintf(args, sizeof args, "-m %s -t 1 /nonexistent/photo.jpg %s", model,
             shared("media/dog.jpg"));
    run(args, r);
    assert_int_equal(r->status, 1);
    assert_int_equal(r->lines, 1);
    assert_non_null(strstr(r->err, "/nonexistent/photo.jpg"));
    assert_non_null(strstr(r->err, "no such file"));

    /* Corrupt (truncated) JPEG. */
    its_test_source_path("tests/media/corpus/zidane_truncated.jpg", trunc, sizeof trunc);
    snprintf(args, sizeof args, "-m %s -t 1 %s", model, trunc);
    run(args, r);
    assert_int_equal(r->status, 1);
    assert_int_equal(r->lines, 0);
    assert_non_null(strstr(r->err, "corrupt or truncated"));

    /* A file that is neither image nor video. */
    snprintf(bad_model, sizeof bad_model, "%s/junk.bin", g_tmp);
    assert_int_equal(its_test_write_file(bad_model, "not an image, not a video", 25), 0);
    snprintf(args, sizeof args, "-m %s -t 1 %s", model, bad_model);
    run(args, r);
    assert_int_equal(r->status, 1);
    assert_non_null(strstr(r->err, "junk.bin"));

    /* Garbage named .jpg (64 KiB of pseudo-random bytes, which FFmpeg opens as some raw
     * format and decodes nothing from): a clear message and status 1, not silence and 0. */
    char garbage[400];
    snprintf(garbage, sizeof garbage, "%s/garbage.jpg", g_tmp);
    uint8_t *noise = its_malloc(ITS_MOD_TEST, 65536);
    uint32_t x = 2463534242u;
    for (int i = 0; i < 65536; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise[i] = (uint8_t)x;
    }
    assert_int_equal(its_test_write_file(garbage, noise, 65536), 0);
    its_free(noise);
    snprintf(args, sizeof args, "-m %s -t 1 %s", model, garbage);
    run(args, r);
    assert_int_equal(r->status, 1);
    assert_int_equal(r->lines, 0);
    assert_non_null(strstr(r->err, "garbage.jpg"));

    /* Bad model: random bytes, a truncated real model, a missing file. */
    snprintf(args, sizeof args, "-m %s %s", bad_model, shared("media/dog.jpg"));
    run(args, r);
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "cannot load model"));
    size_t len;
    uint8_t *m = its_test_read_file(model, &len);
    assert_non_null(m);
    char cut[400];
    snprintf(cut, sizeof cut, "%s/cut.onnx", g_tmp);
    assert_int_equal(its_test_write_file(cut, m, len / 2), 0);
    its_free(m);
    snprintf(args, sizeof args, "-m %s %s", cut, shared("media/dog.jpg"));
    run(args, r);
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "cannot load model"));
    unlink(cut);
    unlink(bad_model);
    snprintf(args, sizeof args, "-m /nonexistent/model.onnx %s", shared("media/dog.jpg"));
    run(args, r);
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "/nonexistent/model.onnx"));

    /* Usage errors. */
    run("", r);
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "no model"));
    snprintf(args, sizeof args, "-m %s", model);
    run(args, r);
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "no input"));
    snprintf(args, sizeof args, "-m %s --confidence 1.5 x.jpg", model);
    run(args, r);
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "--confidence"));
    snprintf(args, sizeof args, "-m %s --batch 0 x.jpg", model);
    run(args, r);
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "--batch"));
    snprintf(args, sizeof args, "-m %s --frobnicate x.jpg", model);
    run(args, r);
    assert_int_equal(r->status, 2);
    snprintf(args, sizeof args, "-m %s --device tpu %s", model, shared("media/dog.jpg"));
    run(args, r);
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "tpu"));
    snprintf(args, sizeof args, "-m %s --family resnet %s", model, shared("media/dog.jpg"));
    run(args, r);
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "resnet"));
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
        cmocka_unit_test(test_images_and_draw),
        cmocka_unit_test(test_video_batches),
        cmocka_unit_test(test_error_paths),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char p[300];
    snprintf(p, sizeof p, "%s/out.txt", g_tmp);
    unlink(p);
    snprintf(p, sizeof p, "%s/err.txt", g_tmp);
    unlink(p);
    rmdir(g_tmp);
    return rc;
}
