/* itsd configuration: defaults, file, environment, ${VAR} expansion, validation errors that
 * name the key, and --print-config output that loads again to the same settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "its/app.h"
#include "its/core.h"
#include "testutil.h"

static int load(its_app_config *c, const char *yaml, char *err, size_t errlen)
{
    return its_app_config_load_string(c, yaml, strlen(yaml), "t.yaml", err, errlen);
}

static void test_defaults_and_file(void **state)
{
    its_app_config c;
    char err[512];
    assert_int_equal(its_app_config_load(&c, NULL, err, sizeof err), 0);
    assert_int_equal(c.s.backend, ITS_BACKEND_CPU);
    assert_int_equal(c.s.batch_max, 4);
    assert_int_equal(c.s.high_water, 800);
    assert_int_equal(c.s.low_water, 200);
    assert_int_equal(c.s.capacity, 1000);
    assert_true(c.s.conf == 0.5);
    assert_int_equal(c.cams.cameras_count, 0);
    its_app_config_free(&c);

    const char *yaml = "engine:\n  backend: noop\nbatch:\n  max_size: 16\n"
                       "cameras:\n"
                       "  - id: cam-1\n    url: /x/a.mp4\n    loop: true\n    fps: 12.5\n"
                       "  - id: cam_2\n    url: rtsp://10.0.0.2/s\n    kind: rtsp\n"
                       "    pace: none\n    phase_s: 0.25\n";
    assert_int_equal(load(&c, yaml, err, sizeof err), 0);
    assert_int_equal(c.s.backend, ITS_BACKEND_NOOP);
    assert_int_equal(c.s.batch_max, 16);
    assert_int_equal(c.cams.cameras_count, 2);
    assert_string_equal(c.resolved[0].id, "cam-1");
    assert_int_equal(c.resolved[0].loop, 1);
    assert_true(c.resolved[0].fps == 12.5);
    assert_int_equal(c.resolved[0].realtime, 1);
    assert_true(c.resolved[0].phase_s < 0); /* spread automatically */
    assert_int_equal(c.resolved[1].realtime, 0);
    assert_true(c.resolved[1].phase_s == 0.25);
    assert_string_equal(c.resolved[1].kind, "rtsp");
    its_app_config_free(&c);
}

/* The pipeline's own defaults and itsd's are one set: options built from default settings
 * equal its_pipeline_opts_default field by field, and the batch size is the documented 4
 * (docs/service.md, batch.max_size). */
static void test_pipeline_defaults_agree(void **state)
{
    its_app_config c;
    char err[512];
    const char *yaml = "engine:\n  backend: noop\nanalytics:\n  enabled: false\n";
    assert_int_equal(load(&c, yaml, err, sizeof err), 0);
    its_pipeline_opts from_settings, lib;
    assert_int_equal(its_app_pipeline_opts(&c, &from_settings, err, sizeof err), 0);
    its_pipeline_opts_default(&lib);
    assert_int_equal(lib.batch_max, 4);
    assert_int_equal(from_settings.batch_max, 4);
    assert_int_equal(from_settings.max_cameras, lib.max_cameras);
    assert_int_equal(from_settings.engine_workers, lib.engine_workers);
    assert_int_equal(from_settings.analytics_workers, lib.analytics_workers);
    assert_true(from_settings.batch_delay_ms == lib.batch_delay_ms);
    assert_int_equal(from_settings.per_camera, lib.per_camera);
    assert_int_equal(from_settings.queue_capacity, lib.queue_capacity);
    assert_int_equal(from_settings.high_water, lib.high_water);
    assert_int_equal(from_settings.low_water, lib.low_water);
    assert_int_equal(from_settings.pixfmt, lib.pixfmt);
    assert_int_equal(from_settings.pool_frames, lib.pool_frames);
    assert_int_equal(from_settings.stall_timeout_ms, lib.stall_timeout_ms);
    assert_int_equal(from_settings.backoff_min_ms, lib.backoff_min_ms);
    assert_int_equal(from_settings.backoff_max_ms, lib.backoff_max_ms);
    assert_int_equal(from_settings.max_width, lib.max_width);
    assert_int_equal(from_settings.max_height, lib.max_height);
    if (from_settings.infer.release)
        from_settings.infer.release(from_settings.infer.ctx);
    from_settings.sink->destroy(from_settings.sink);
    its_metrics_destroy(from_settings.metrics);
    its_app_config_free(&c);
}

static void test_env_and_expansion(void **state)
{
    setenv("ITS_BATCH_MAX_DELAY_MS", "7.5", 1);
    setenv("ITS_TEST_MEDIA", "/srv/media", 1);
    unsetenv("ITS_TEST_UNSET");
    its_app_config c;
    char err[512];
    const char *yaml = "engine:\n  backend: noop\n"
                       "cameras:\n"
                       "  - id: a\n    url: ${ITS_TEST_MEDIA}/a.mp4\n"
                       "  - id: b\n    url: ${ITS_TEST_UNSET:-../shared}/b.mp4\n";
    assert_int_equal(load(&c, yaml, err, sizeof err), 0);
    assert_true(c.s.batch_delay_ms == 7.5);
    assert_string_equal(c.resolved[0].url, "/srv/media/a.mp4");
    assert_string_equal(c.resolved[1].url, "../shared/b.mp4");
    its_app_config_free(&c);
    unsetenv("ITS_BATCH_MAX_DELAY_MS");

    char buf[64];
    assert_int_equal(its_app_expand("x${ITS_TEST_MEDIA}y", buf, sizeof buf), 12);
    assert_string_equal(buf, "x/srv/mediay");
    assert_int_equal(its_app_expand("${ITS_TEST_MEDIA", buf, sizeof buf), ITS_ECONFIG);
    assert_int_equal(its_app_expand("${}", buf, sizeof buf), ITS_ECONFIG);
    assert_int_equal(its_app_expand("${ITS_TEST_MEDIA}", buf, 5), ITS_EOVERFLOW);
}

/* Each bad document fails with ITS_ECONFIG and a message naming the key. */
static void test_errors(void **state)
{
    static const struct {
        const char *yaml, *expect;
    } cases[] = {
        {"batch:\n  max_size: 64\n", "batch.max_size"},
        {"batch:\n  max_size: lots\n", "batch.max_size"},
        {"batch:\n  high_water: 100\n  low_water: 200\n", "low_water"},
        {"engine:\n  backend: tpu\n", "engine.backend"},
        {"engine:\n  input_size: 640x360\n", "engine.input_size"},
        {"engine:\n  input_size: 640\n", "engine.input_size"},
        {"engine:\n  input_size: 640x384x3\n", "engine.input_size"},
        {"engine:\n  input_size: 0x0\n", "engine.input_size"},
        {"bogus: 1\n", "bogus"},
        {"cameras:\n  - id: a\n    url: x\n  - id: a\n    url: y\n", "used twice"},
        {"cameras:\n  - id: 'a b'\n    url: x\n", "cameras[0].id"},
        {"cameras:\n  - id: a\n    url: x\n    kind: ftp\n", "cameras[0].kind"},
        {"cameras:\n  - id: a\n    url: x\n    pace: warp\n", "cameras[0].pace"},
        {"cameras:\n  - id: a\n    url: x\n    fps: -3\n", "out of range"},
        {"cameras:\n  - id: a\n    color: red\n    url: x\n", "color"},
        {"cameras:\n  - url: x\n", "id"},
        {"cameras:\n  - id: a\n    url: ${NOPE\n", "cameras[0].url"},
        {"sink:\n  type: file\n", "sink.path"},
        {"log:\n  level: loud\n", "log.level"},
        {"ingest:\n  backoff_min_ms: 900\n  backoff_max_ms: 100\n", "backoff"},
        {"cameras: 3\n", "cameras"},
        {"[1, 2\n", "t.yaml"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        its_app_config c;
        char err[512] = "";
        int rc = load(&c, cases[i].yaml, err, sizeof err);
        if (rc != ITS_ECONFIG || !strstr(err, cases[i].expect) || !strstr(err, "t.yaml"))
            fail_msg("case %zu: rc %d, err '%s', expected '%s'", i, rc, err, cases[i].expect);
        its_app_config_free(&c);
    }
    /* a file that does not exist */
    its_app_config c;
    char err[512];
    assert_int_equal(its_app_config_load(&c, "/nonexistent/itsd.yaml", err, sizeof err),
                     ITS_ENOENT);
    its_app_config_free(&c);
}

static void test_print_roundtrip(void **state)
{
    its_app_config c, d;
    char err[512];
    const char *yaml = "engine:\n  backend: noop\n  conf: 0.4\nbatch:\n  per_camera: 3\n"
                       "cameras:\n  - id: q\n    url: \"/a b/\\\"c\\\".mp4\"\n    loop: true\n"
                       "    scene: s.yaml\n    replay_frames: 30\n";
    assert_int_equal(load(&c, yaml, err, sizeof err), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(its_app_config_print(&c, f), 0);
    fclose(f);
    if (its_app_config_load_string(&d, buf, len, "printed", err, sizeof err) < 0)
        fail_msg("printed config does not load: %s\n%s", err, buf);
    assert_true(d.s.conf == c.s.conf);
    assert_int_equal(d.s.per_camera, 3);
    assert_int_equal(d.cams.cameras_count, 1);
    assert_string_equal(d.resolved[0].url, "/a b/\"c\".mp4");
    assert_string_equal(d.resolved[0].scene, "s.yaml");
    assert_int_equal(d.resolved[0].replay_frames, 30);
    assert_int_equal(d.resolved[0].loop, 1);
    free(buf);
    its_app_config_free(&c);
    its_app_config_free(&d);
}

/* The shipped deploy/itsd.yaml loads, and its files exist beside the checkout. */
static void test_deploy_config(void **state)
{
    char path[1024], shared[1024];
    its_test_source_path("deploy/itsd.yaml", path, sizeof path);
    if (!its_test_shared_path("models", shared, sizeof shared))
        ITS_TEST_SKIP("shared models missing");
    its_app_config c;
    char err[512];
    if (its_app_config_load(&c, path, err, sizeof err) < 0)
        fail_msg("%s", err);
    assert_true(c.cams.cameras_count >= 3);
    assert_int_equal(c.s.backend, ITS_BACKEND_CPU);
    /* its relative paths (scenes) are relative to the repository root, where itsd runs */
    char root[1024];
    its_test_source_path(".", root, sizeof root);
    assert_int_equal(chdir(root), 0);
    if (its_app_config_check_files(&c, err, sizeof err) < 0)
        fail_msg("%s", err);
    its_app_config_free(&c);
    /* the GPU template: the cuda engine, two engine workers, batches of up to 16 */
    its_test_source_path("deploy/itsd-gpu.yaml", path, sizeof path);
    if (its_app_config_load(&c, path, err, sizeof err) < 0)
        fail_msg("%s", err);
    assert_int_equal(c.s.backend, ITS_BACKEND_CUDA);
    assert_int_equal(c.s.engine_workers, 2);
    assert_int_equal(c.s.batch_max, 16);
    assert_true(c.s.analytics_workers >= 4);
    if (its_app_config_check_files(&c, err, sizeof err) < 0)
        fail_msg("%s", err);
    its_app_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_file), cmocka_unit_test(test_pipeline_defaults_agree),
        cmocka_unit_test(test_env_and_expansion), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_print_roundtrip),   cmocka_unit_test(test_deploy_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
