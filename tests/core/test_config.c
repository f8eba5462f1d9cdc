#include "testutil.h"

#include <cyaml/cyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/alloc.h"
#include "its/config.h"
#include "its/error.h"

typedef struct settings {
    int threads;
    double conf;
    int verbose;
    char *model;
    int backend;
    char *token;
    char *name;
} settings;

static const char *const backends[] = {"cpu", "cuda", NULL};

static const its_option opts[] = {
    ITS_OPT_STR("name", settings, name, "itsd", 0, "instance name"),
    ITS_OPT_INT("engine.threads", settings, threads, "2", 1, 64, 0, "CPU threads"),
    ITS_OPT_DOUBLE("engine.conf", settings, conf, "0.5", 0, 1, ITS_OPT_RUNTIME, "threshold"),
    ITS_OPT_STR("engine.model", settings, model, "m.onnx", 0, "ONNX model"),
    ITS_OPT_ENUM("engine.backend", settings, backend, "cpu", backends, 0, "backend"),
    ITS_OPT_BOOL("log.verbose", settings, verbose, "false", ITS_OPT_RUNTIME, "chatty"),
    ITS_OPT_STR("api.token", settings, token, "", ITS_OPT_SECRET, "bearer token"),
};

/* Typed extra fields: a list of cameras. */
typedef struct camera {
    char *id;
    char *url;
    int fps;
} camera;

typedef struct extra {
    camera *cameras;
    unsigned cameras_count;
} extra;

static const cyaml_schema_field_t camera_fields[] = {
    CYAML_FIELD_STRING_PTR("id", CYAML_FLAG_POINTER, camera, id, 1, 64),
    CYAML_FIELD_STRING_PTR("url", CYAML_FLAG_POINTER, camera, url, 1, 1024),
    CYAML_FIELD_INT("fps", CYAML_FLAG_OPTIONAL, camera, fps),
    CYAML_FIELD_END,
};
static const cyaml_schema_value_t camera_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, camera, camera_fields),
};
static const cyaml_schema_field_t extra_fields[] = {
    CYAML_FIELD_SEQUENCE("cameras", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, extra, cameras,
                         &camera_schema, 0, 1000),
    CYAML_FIELD_END,
};

static settings S;
static extra X;

static its_config make_cfg(void)
{
    memset(&S, 0, sizeof S);
    memset(&X, 0, sizeof X);
    its_config c = {.options = opts,
                    .n_options = sizeof opts / sizeof opts[0],
                    .settings = &S,
                    .extra_fields = extra_fields,
                    .extra = &X,
                    .extra_size = sizeof X};
    return c;
}

static int load(its_config *c, const char *yaml, char *err, size_t n)
{
    return its_config_load_string(c, yaml, strlen(yaml), "test.yaml", err, n);
}

static void test_defaults(void **state)
{
    its_config c = make_cfg();
    char err[256];
    assert_int_equal(its_config_load(&c, NULL, err, sizeof err), 0);
    assert_int_equal(S.threads, 2);
    assert_true(S.conf == 0.5);
    assert_string_equal(S.model, "m.onnx");
    assert_int_equal(S.backend, 0);
    assert_int_equal(S.verbose, 0);
    assert_string_equal(S.name, "itsd");
    its_config_free(&c);
}

static void test_full_document(void **state)
{
    its_config c = make_cfg();
    char err[256] = "";
    const char *y = "name: edge-1\n"
                    "engine:\n  threads: 8\n  conf: 0.25\n  backend: cuda\n  model: y.onnx\n"
                    "log:\n  verbose: yes\n"
                    "cameras:\n"
                    "  - {id: cam-1, url: rtsp://a, fps: 25}\n"
                    "  - id: cam-2\n    url: file.mp4\n";
    assert_int_equal(load(&c, y, err, sizeof err), 0);
    assert_int_equal(S.threads, 8);
    assert_true(S.conf == 0.25);
    assert_int_equal(S.backend, 1);
    assert_string_equal(S.model, "y.onnx");
    assert_string_equal(S.name, "edge-1");
    assert_int_equal(S.verbose, 1);
    assert_int_equal(X.cameras_count, 2);
    assert_string_equal(X.cameras[0].id, "cam-1");
    assert_int_equal(X.cameras[0].fps, 25);
    assert_string_equal(X.cameras[1].url, "file.mp4");
    assert_int_equal(X.cameras[1].fps, 0);
    its_config_free(&c);
}

/* Every kind of error names the file, the key and the reason. */
static void expect_error(const char *yaml, int code, const char *key, const char *reason)
{
    its_config c = make_cfg();
    char err[512] = "";
    int rc = load(&c, yaml, err, sizeof err);
    if (rc != code || !strstr(err, "test.yaml") || (key && !strstr(err, key)) ||
        !strstr(err, reason))
        fail_msg("yaml <<%s>>: rc %d (want %d), err '%s' (want key '%s', reason '%s')", yaml, rc,
                 code, err, key ? key : "", reason);
    its_config_free(&c);
}

static void test_errors(void **state)
{
    expect_error("engine:\n  threads: many\n", ITS_ECONFIG, "engine.threads", "not an integer");
    expect_error("engine:\n  threads: 0\n", ITS_ECONFIG, "engine.threads", "out of range");
    expect_error("engine:\n  threads: 1000\n", ITS_ECONFIG, "engine.threads", "out of range");
    expect_error("engine:\n  threads: 99999999999999999999\n", ITS_ECONFIG, "engine.threads",
                 "not an integer");
    expect_error("engine:\n  conf: 1.5\n", ITS_ECONFIG, "engine.conf", "out of range");
    expect_error("engine:\n  conf: nan\n", ITS_ECONFIG, "engine.conf", "not a number");
    expect_error("engine:\n  backend: tpu\n", ITS_ECONFIG, "engine.backend", "cpu, cuda");
    expect_error("log:\n  verbose: maybe\n", ITS_ECONFIG, "log.verbose", "not a boolean");
    expect_error("engine:\n  treads: 4\n", ITS_ECONFIG, "engine", "treads");
    expect_error("bogus: 1\n", ITS_ECONFIG, NULL, "bogus");
    expect_error("engine: 5\n", ITS_ECONFIG, "engine", "");
    expect_error("engine:\n  threads: [1, 2]\n", ITS_ECONFIG, "threads", "");
    expect_error("engine:\n  threads: 4\n   bad indent: [\n", ITS_ECONFIG, NULL, "");
    expect_error("cameras:\n  - {id: cam-1, fps: 25}\n", ITS_ECONFIG, "cameras", "url");
    expect_error("cameras:\n  - {id: cam-1, url: x, fps: fast}\n", ITS_ECONFIG, "fps", "");
    expect_error("cameras:\n  - {id: cam-1, url: x, colour: red}\n", ITS_ECONFIG, "cameras",
                 "colour");
}

static void test_missing_file(void **state)
{
    its_config c = make_cfg();
    char err[256];
    assert_int_equal(its_config_load(&c, "/nonexistent/its.yaml", err, sizeof err), ITS_ENOENT);
    assert_non_null(strstr(err, "/nonexistent/its.yaml"));
    its_config_free(&c);
}

static void test_environment(void **state)
{
    its_config c = make_cfg();
    char err[256];
    char name[64];
    assert_int_equal(its_config_env_name("engine.threads", name, sizeof name), 0);
    assert_string_equal(name, "ITS_ENGINE_THREADS");
    char *env[] = {"ITS_ENGINE_THREADS=12", "ITS_LOG_VERBOSE=on", "OTHER=1", NULL};
    assert_int_equal(load(&c, "engine: {threads: 3}\n", err, sizeof err), 0);
    assert_int_equal(S.threads, 3);
    assert_int_equal(its_config_apply_env(&c, env, err, sizeof err), 0);
    assert_int_equal(S.threads, 12);
    assert_int_equal(S.verbose, 1);
    char *bad[] = {"ITS_ENGINE_CONF=high", NULL};
    assert_int_equal(its_config_apply_env(&c, bad, err, sizeof err), ITS_ECONFIG);
    assert_non_null(strstr(err, "ITS_ENGINE_CONF"));
    assert_non_null(strstr(err, "not a number"));
    /* Through the process environment, as its_config_load does. */
    setenv("ITS_ENGINE_MODEL", "env.onnx", 1);
    assert_int_equal(load(&c, "engine: {model: file.onnx}\n", err, sizeof err), 0);
    assert_string_equal(S.model, "env.onnx");
    unsetenv("ITS_ENGINE_MODEL");
    its_config_free(&c);
}

static void test_set_get_and_print_roundtrip(void **state)
{
    its_config c = make_cfg();
    char err[256], buf[64];
    assert_int_equal(its_config_load(&c, NULL, err, sizeof err), 0);
    assert_int_equal(its_config_set(&c, "engine.conf", "0.75", "api", err, sizeof err), 0);
    assert_int_equal(its_config_set(&c, "api.token", "s3cret", "api", err, sizeof err), 0);
    assert_int_equal(its_config_set(&c, "engine.model", "a \"quoted\" name", "t", err, 256), 0);
    assert_int_equal(its_config_set(&c, "nope", "1", "api", err, sizeof err), ITS_ECONFIG);
    assert_int_equal(its_config_get(&c, "engine.conf", buf, sizeof buf), 0);
    assert_string_equal(buf, "0.75");
    assert_int_equal(its_config_get(&c, "engine.backend", buf, sizeof buf), 0);
    assert_string_equal(buf, "cpu");
    assert_int_equal(its_config_get(&c, "zzz", buf, sizeof buf), ITS_ENOENT);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_int_equal(its_config_print(&c, f), 0);
    fclose(f);
    assert_null(strstr(text, "s3cret")); /* secrets are masked */
    assert_non_null(strstr(text, "# CPU threads"));
    assert_non_null(strstr(text, "(changeable at run time)"));

    /* The printed document does not load with a placeholder for the secret: it names the key
     * and the environment variable that supplies it. */
    its_config_free(&c);
    its_config d = make_cfg();
    assert_int_equal(load(&d, text, err, sizeof err), ITS_ECONFIG);
    assert_non_null(strstr(err, "api.token"));
    assert_non_null(strstr(err, "ITS_API_TOKEN"));
    its_config_free(&d);
    /* With the secret in the environment it loads back to the same values. */
    setenv("ITS_API_TOKEN", "from-env", 1);
    d = make_cfg();
    int rc = load(&d, text, err, sizeof err);
    unsetenv("ITS_API_TOKEN");
    assert_int_equal(rc, 0);
    assert_true(S.conf == 0.75);
    assert_string_equal(S.model, "a \"quoted\" name");
    assert_string_equal(S.token, "from-env");
    free(text);
    its_config_free(&d);
    /* An empty secret is no secret: printed as it is, and loads back. */
    d = make_cfg();
    assert_int_equal(its_config_load(&d, NULL, err, sizeof err), 0);
    f = open_memstream(&text, &len);
    assert_int_equal(its_config_print(&d, f), 0);
    fclose(f);
    assert_non_null(strstr(text, "  token: \"\"\n"));
    its_config_free(&d);
    d = make_cfg();
    assert_int_equal(load(&d, text, err, sizeof err), 0);
    assert_string_equal(S.token, "");
    free(text);
    its_config_free(&d);
}

/* Every allocation inside a load may fail: the result is ITS_ENOMEM (or success once the
 * injection point is past the last allocation) and nothing leaks. */
static void test_allocation_failures(void **state)
{
    const char *y = "engine: {threads: 3, model: x.onnx}\ncameras:\n  - {id: a, url: b}\n";
    int succeeded = 0;
    for (long skip = 0; skip < 200 && !succeeded; skip++) {
        its_alloc_stats s0, s1;
        its_alloc_get_stats(ITS_MOD_COUNT, &s0);
        its_config c = make_cfg();
        char err[256];
        its_alloc_fail_after(ITS_MOD_CORE, skip, 1);
        int rc = load(&c, y, err, sizeof err);
        its_alloc_fail_reset();
        if (rc == 0)
            succeeded = 1;
        else
            assert_int_equal(rc, ITS_ENOMEM);
        its_config_free(&c);
        its_alloc_get_stats(ITS_MOD_COUNT, &s1);
        assert_int_equal(s1.bytes_live, s0.bytes_live);
    }
    assert_true(succeeded);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full_document),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_environment),
        cmocka_unit_test(test_set_get_and_print_roundtrip),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
