/*
 * its-bench end to end at CI size: 3 cameras x 2 FPS of real traffic video through itsd (CPU
 * engine, YOLO11n) and a real redis-server on a free loopback port, 30 s measured. The
 * machinery must add up: for every camera, frames captured = frames processed + dropped (from
 * itsd's metrics and the messages that arrived), results flowed through Redis with
 * detections, no errors, itsd exited cleanly on SIGTERM. Speed is not judged here.
 */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "its/alloc.h"

/* Load its-bench's JSON summary and check the accounting every run must satisfy: frames
 * were captured, and each was either published (and arrived) or dropped and counted. */
static json_t *summary_accounted(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    assert_non_null(j);
    json_int_t in = json_integer_value(json_object_get(j, "frames_in"));
    json_int_t dropped = json_integer_value(json_object_get(j, "frames_dropped"));
    json_int_t messages = json_integer_value(json_object_get(j, "messages"));
    print_message("frames in %lld, messages %lld, dropped %lld\n", (long long)in,
                  (long long)messages, (long long)dropped);
    assert_true(in > 0);
    assert_int_equal(in, messages + dropped);
    return j;
}

static void test_ci_stress_run(void **state)
{
    char model[1024], video[1024], tmp[256], cmd[4096], json[512];
    if (!its_test_shared_path("models/yolo11n-fp32-dequant/yolo11n_fp32_dequant.onnx", model,
                              sizeof model) ||
        !its_test_shared_path("media/traffic_intersection_cctv_480p.mp4", video, sizeof video)) {
        exit(its_test_skip("shared models/media missing"));
    }
    if (system("command -v redis-server >/dev/null 2>&1") != 0) {
        exit(its_test_skip("redis-server not installed"));
    }
    assert_non_null(its_test_tmpdir(tmp, sizeof tmp));
    snprintf(json, sizeof json, "%s/summary.json", tmp);
    /* Sanitizer builds run the CPU engine several times slower: keep the rate modest and
     * allow drops (they must still be counted). */
    snprintf(cmd, sizeof cmd,
             "%s --cameras 3 --fps 2 --batch 4 --duration 30 --quiet --set bench.itsd=%s "
             "--set bench.model=%s --set bench.video=%s --set bench.workdir=%s "
             "--set bench.warmup_s=2 --set bench.threads=2 --set bench.json=%s > %s/out.txt 2>&1",
             ITS_BENCH_BIN, ITSD_BIN, model, video, tmp, json, tmp);
    int st = system(cmd);
    char out[512];
    snprintf(out, sizeof out, "%s/out.txt", tmp);
    size_t len;
    uint8_t *text = its_test_read_file(out, &len);
    if (text)
        print_message("%s\n", (char *)text);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);

    json_t *j = summary_accounted(json);
    json_int_t errors = json_integer_value(json_object_get(j, "errors"));
    json_int_t bad = json_integer_value(json_object_get(j, "bad_messages"));
    json_int_t frames = json_integer_value(json_object_get(j, "frames"));
    double dpm = json_real_value(json_object_get(j, "detections_per_minute")) +
                 (double)json_integer_value(json_object_get(j, "detections_per_minute"));
    assert_int_equal(errors, 0);
    assert_int_equal(bad, 0);
    assert_true(frames > 0);
    assert_true(dpm > 0);
    json_decref(j);
    its_free(text);
}

/* Two runs in one working folder (as a capacity search's steps are): the second run's
 * accounting is its own, and the GPU utilisation travels from NVML to the report. itsd's log, from
 * which the final per-camera counts are read, once accumulated across runs, so every later step
 * carried the earlier steps' frames and drops. */
static void test_runs_do_not_accumulate(void **state)
{
    (void)state;
    char video[1024], tmp[256], cmd[4096], json[512];
    if (!its_test_shared_path("media/traffic_intersection_cctv_480p.mp4", video, sizeof video) ||
        system("command -v redis-server >/dev/null 2>&1") != 0)
        ITS_TEST_SKIP("shared media or redis-server missing");
    assert_non_null(its_test_tmpdir(tmp, sizeof tmp));
    snprintf(json, sizeof json, "%s/summary.json", tmp);
    for (int run = 0; run < 2; run++) {
        /* itsd inherits the stand-in NVML (tests/metrics/fake_nvml.c: one GPU at 73%) */
        snprintf(cmd, sizeof cmd,
                 "ITS_NVML_LIBRARY=%s %s --cameras 3 --fps 5 --batch 4 --duration 4 --quiet --set "
                 "bench.itsd=%s "
                 "--set bench.backend=noop --set bench.video=%s --set bench.workdir=%s "
                 "--set bench.warmup_s=1 --set bench.json=%s > %s/out%d.txt 2>&1",
                 ITS_FAKE_NVML, ITS_BENCH_BIN, ITSD_BIN, video, tmp, json, tmp, run);
        int st = system(cmd);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    /* the GPU utilisation its-bench read from itsd's /metrics, which read it from NVML */
    json_t *j = summary_accounted(json);
    json_t *gpu = json_object_get(j, "gpu_utilization");
    assert_true(json_is_number(gpu));
    assert_float_equal(json_number_value(gpu), 73.0, 1e-6);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_ci_stress_run),
                                       cmocka_unit_test(test_runs_do_not_accumulate)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
