/*
 * The public frames path (its_engine_detect_*) where it must say no: the cpu backend has no
 * GPU path (ITS_EUNSUPPORTED, naming the backend, so the service falls back to the host
 * letterbox); models whose head is not YOLOv8/YOLO11 (YOLOX, NanoDet) are refused for the
 * model's reason; bad options and calls out of order are ITS_EINVAL and count nothing; the
 * cpu backend has no pinned host allocator. The GPU side is tests/cuda/test_frames_api.c.
 */
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "its/engine.h"
#include "its/error.h"

static its_engine_t *load(const char *rel, its_model_t **m)
{
    char path[512], err[512];
    assert_non_null(its_test_shared_path(rel, path, sizeof path));
    int rc = its_model_load(path, m, err, sizeof err);
    if (rc < 0)
        fail_msg("%s: %s", rel, err);
    its_engine_opts o = {.backend = "cpu", .threads = 1, .max_batch = 1};
    its_engine_t *e = NULL;
    rc = its_engine_create(*m, &o, &e, err, sizeof err);
    if (rc < 0)
        fail_msg("%s: %s", rel, err);
    return e;
}

static void test_cpu_has_no_frames_path(void **st)
{
    (void)st;
    its_model_t *m;
    its_engine_t *e = load("models/yolo11n-fp32-dequant/yolo11n_fp32_dequant.onnx", &m);
    its_engine_counters before, after;
    its_engine_get_counters(&before);
    char err[256] = "";
    its_engine_detect_opts o = {.conf = 0.5f, .iou = 0.45f, .max_det = 100};
    int rc = its_engine_detect_setup(e, &o, err, sizeof err);
    printf("cpu, yolo11n: %s: %s\n", its_errname(rc), err);
    assert_int_equal(rc, ITS_EUNSUPPORTED);
    assert_non_null(strstr(err, "cpu backend"));
    assert_int_equal(its_engine_detect_max_det(e), 0);
    /* not set up: submit and wait refuse, touching nothing */
    uint8_t px[3 * 64 * 48] = {0};
    its_engine_frame f = {
        .data = px, .width = 64, .height = 48, .stride = 192, .pixfmt = ITS_PIX_RGB24};
    its_engine_det_list lists[1];
    its_det dets[100];
    assert_int_equal(its_engine_detect_submit(e, 1, &f), ITS_EINVAL);
    assert_int_equal(its_engine_detect_wait(e, 0, lists, dets), ITS_EINVAL);
    assert_int_equal(its_engine_detect_wait(e, -1, lists, dets), ITS_EINVAL);
    assert_int_equal(its_engine_detect_wait(e, 2, lists, dets), ITS_EINVAL);
    its_engine_get_counters(&after);
    assert_true(after.detect_batches == before.detect_batches);
    assert_true(after.detect_frames == before.detect_frames);
    /* the host path still works after the refusal */
    assert_int_equal(its_engine_max_batch(e), 1);
    its_engine_destroy(e);
    its_model_free(m);
}

static void test_bad_arguments(void **st)
{
    (void)st;
    its_model_t *m;
    its_engine_t *e = load("models/yolo11n-fp32-dequant/yolo11n_fp32_dequant.onnx", &m);
    char err[256];
    its_engine_detect_opts good = {0};
    assert_int_equal(its_engine_detect_setup(NULL, &good, err, sizeof err), ITS_EINVAL);
    assert_int_equal(its_engine_detect_setup(e, NULL, err, sizeof err), ITS_EINVAL);
    const its_engine_detect_opts bad[] = {
        {.conf = 1.5f},     {.conf = -0.1f},      {.iou = 2.0f},    {.max_det = -1},
        {.max_det = 1001},  {.max_cand = 1025},   {.max_cand = -3}, {.max_width = -1},
        {.max_height = -5}, {.max_width = 20000},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        int rc = its_engine_detect_setup(e, &bad[i], err, sizeof err);
        if (rc != ITS_EINVAL)
            fail_msg("bad options %zu: %s (%s)", i, its_errname(rc), err);
        assert_non_null(strstr(err, "out of range"));
    }
    /* NULL err is allowed */
    assert_int_equal(its_engine_detect_setup(e, &good, NULL, 0), ITS_EUNSUPPORTED);
    its_engine_det_list l;
    its_det d;
    its_engine_frame f = {0};
    assert_int_equal(its_engine_detect_submit(NULL, 1, &f), ITS_EINVAL);
    assert_int_equal(its_engine_detect_submit(e, 0, &f), ITS_EINVAL);
    assert_int_equal(its_engine_detect_submit(e, 1, NULL), ITS_EINVAL);
    assert_int_equal(its_engine_detect_wait(NULL, 0, &l, &d), ITS_EINVAL);
    assert_int_equal(its_engine_detect_wait(e, 0, NULL, &d), ITS_EINVAL);
    assert_int_equal(its_engine_detect_max_det(NULL), 0);
    its_engine_destroy(e);
    its_model_free(m);
}

/* Heads the GPU decode does not implement are refused for the model's reason, before the
 * backend is asked: the same answer on every backend. */
static void test_other_heads_refused(void **st)
{
    (void)st;
    static const char *const models[] = {"models/yolox-nano/yolox_nano.onnx",
                                         "models/nanodet-m/nanodet_m.onnx"};
    static const char *const expect[] = {"not a YOLOv8/YOLO11 head", "one of each"};
    for (int i = 0; i < 2; i++) {
        its_model_t *m;
        its_engine_t *e = load(models[i], &m);
        char err[256] = "";
        its_engine_detect_opts o = {0};
        int rc = its_engine_detect_setup(e, &o, err, sizeof err);
        printf("%s: %s: %s\n", models[i], its_errname(rc), err);
        assert_int_equal(rc, ITS_EUNSUPPORTED);
        assert_non_null(strstr(err, expect[i]));
        its_engine_destroy(e);
        its_model_free(m);
    }
}

static void test_host_alloc_cpu(void **st)
{
    (void)st;
    assert_null(its_engine_host_alloc("cpu", 4096));
    assert_null(its_engine_host_alloc(NULL, 4096));
    assert_null(its_engine_host_alloc("no-such-backend", 4096));
    if (!its_engine_backend_available("cuda")) /* compiled in or not: no GPU, no memory */
        assert_null(its_engine_host_alloc("cuda", 4096));
    its_engine_host_free("cpu", NULL);
    its_engine_host_free("no-such-backend", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_has_no_frames_path),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_other_heads_refused),
        cmocka_unit_test(test_host_alloc_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
