/* The option rows itsd puts in its table: defaults, YAML, environment, secrets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/api.h"
#include "its/core.h"
#include "its/publish.h"
#include "testutil.h"

typedef struct settings {
    its_publish_settings redis;
    its_api_settings api;
} settings;

static const its_option table[] = {
    ITS_PUBLISH_OPTIONS(settings, redis),
    ITS_API_OPTIONS(settings, api),
};

static void test_defaults(void **state)
{
    assert_int_equal(ITS_ARRAY_LEN(table), ITS_PUBLISH_N_OPTIONS + ITS_API_N_OPTIONS);
    settings s;
    memset(&s, 0, sizeof s);
    its_config cfg = {.options = table, .n_options = ITS_ARRAY_LEN(table), .settings = &s};
    char err[512];
    assert_int_equal(its_config_defaults(&cfg, err, sizeof err), 0);
    its_publish_config pub;
    its_cache_config cache;
    assert_int_equal(its_publish_settings_apply(&s.redis, &pub, &cache), 0); /* no host */
    assert_null(cache.host);
    its_publish_config def;
    its_publish_config_default(&def);
    assert_int_equal(pub.port, def.port);
    assert_int_equal(pub.outbox_max_msgs, def.outbox_max_msgs);
    assert_int_equal(pub.outbox_max_bytes, def.outbox_max_bytes);
    assert_int_equal(pub.max_pipeline, def.max_pipeline);
    assert_int_equal(pub.stream_maxlen, def.stream_maxlen);
    assert_int_equal(pub.connect_timeout_ms, def.connect_timeout_ms);
    assert_int_equal(pub.command_timeout_ms, def.command_timeout_ms);
    assert_int_equal(pub.backoff_min_ms, def.backoff_min_ms);
    assert_int_equal(pub.backoff_max_ms, def.backoff_max_ms);
    assert_null(pub.password);
    its_cache_config cdef;
    its_cache_config_default(&cdef);
    assert_int_equal(cache.max_entries, cdef.max_entries);
    assert_int_equal(cache.max_bytes, cdef.max_bytes);
    assert_int_equal(cache.port, cdef.port);
    assert_int_equal(cache.connect_timeout_ms, cdef.connect_timeout_ms);
    assert_int_equal(cache.command_timeout_ms, cdef.command_timeout_ms);
    its_api_config api, adef;
    its_api_settings_apply(&s.api, &api);
    its_api_config_default(&adef);
    assert_string_equal(api.bind_addr, "127.0.0.1");
    assert_int_equal(api.port, adef.port);
    assert_null(api.token);
    assert_int_equal(api.max_body_bytes, adef.max_body_bytes);
    assert_int_equal(api.max_frame_bytes, adef.max_frame_bytes);
    assert_int_equal(api.threads, adef.threads);
    assert_int_equal(api.max_connections, adef.max_connections);
    assert_int_equal(api.timeout_s, adef.timeout_s);
    assert_int_equal(api.require_redis, 0);
    its_config_free(&cfg);
}

static void test_yaml_env_and_secrets(void **state)
{
    settings s;
    memset(&s, 0, sizeof s);
    its_config cfg = {.options = table, .n_options = ITS_ARRAY_LEN(table), .settings = &s};
    const char *yaml =
        "redis:\n  host: 10.1.2.3\n  port: 6380\n  db: 2\n  password: hunter2\n"
        "  outbox_max_msgs: 500\napi:\n  bind: 0.0.0.0\n  max_body_kb: 8\n  require_redis: yes\n";
    char err[512];
    char *env[] = {"ITS_API_TOKEN=tok-from-env", "ITS_REDIS_MAX_PIPELINE=64", NULL};
    assert_int_equal(its_config_load_string(&cfg, yaml, strlen(yaml), "test.yaml", err, sizeof err),
                     0);
    assert_int_equal(its_config_apply_env(&cfg, env, err, sizeof err), 0);
    its_publish_config pub;
    its_cache_config cache;
    assert_int_equal(its_publish_settings_apply(&s.redis, &pub, &cache), 1);
    assert_string_equal(pub.host, "10.1.2.3");
    assert_int_equal(pub.port, 6380);
    assert_int_equal(pub.db, 2);
    assert_string_equal(pub.password, "hunter2");
    assert_int_equal(pub.outbox_max_msgs, 500);
    assert_int_equal(pub.max_pipeline, 64);
    assert_string_equal(cache.host, "10.1.2.3");
    assert_int_equal(cache.db, 2);
    its_api_config api;
    its_api_settings_apply(&s.api, &api);
    assert_string_equal(api.bind_addr, "0.0.0.0");
    assert_string_equal(api.token, "tok-from-env");
    assert_int_equal(api.max_body_bytes, 8 * 1024);
    assert_int_equal(api.require_redis, 1);
    /* Secrets never reach --print-config. */
    char path[256], dir[128];
    assert_non_null(its_test_tmpdir(dir, sizeof dir));
    snprintf(path, sizeof path, "%s/print.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_int_equal(its_config_print(&cfg, f), 0);
    fclose(f);
    size_t n = 0;
    uint8_t *text = its_test_read_file(path, &n);
    assert_non_null(text);
    text[n] = 0;
    assert_null(strstr((char *)text, "hunter2"));
    assert_null(strstr((char *)text, "tok-from-env"));
    assert_non_null(strstr((char *)text, "10.1.2.3"));
    its_free(text);
    /* Out of range and unknown keys are refused with the key named. */
    its_config_free(&cfg);
    memset(&s, 0, sizeof s);
    const char *bad = "redis:\n  port: 70000\n";
    assert_true(its_config_load_string(&cfg, bad, strlen(bad), "bad.yaml", err, sizeof err) < 0);
    assert_non_null(strstr(err, "redis.port"));
    its_config_free(&cfg);
}

/* Secrets from files (systemd credentials, Kubernetes secrets): api.token_file and
 * redis.password_file, from YAML or ITS_*_FILE, without the trailing newline; both a secret
 * and its file is an error, and so is an unreadable file. */
static void test_secret_files(void **state)
{
    char dir[128], tok[256], pw[256], yaml[1024], err[512];
    assert_non_null(its_test_tmpdir(dir, sizeof dir));
    snprintf(tok, sizeof tok, "%s/token", dir);
    snprintf(pw, sizeof pw, "%s/redis-password", dir);
    assert_int_equal(its_test_write_file(tok, "tok-from-file\n", 14), 0);
    assert_int_equal(its_test_write_file(pw, "pw-from-file", 12), 0);
    settings s;
    memset(&s, 0, sizeof s);
    its_config cfg = {.options = table, .n_options = ITS_ARRAY_LEN(table), .settings = &s};
    snprintf(yaml, sizeof yaml, "redis:\n  host: h\napi:\n  token_file: %s\n", tok);
    char env_pw[300];
    snprintf(env_pw, sizeof env_pw, "ITS_REDIS_PASSWORD_FILE=%s", pw);
    char *env[] = {env_pw, NULL};
    assert_int_equal(its_config_load_string(&cfg, yaml, strlen(yaml), "t.yaml", err, sizeof err),
                     0);
    assert_int_equal(its_config_apply_env(&cfg, env, err, sizeof err), 0);
    its_api_config api;
    its_api_settings_apply(&s.api, &api);
    assert_string_equal(api.token, "tok-from-file");
    its_publish_config pub;
    its_cache_config cache;
    assert_int_equal(its_publish_settings_apply(&s.redis, &pub, &cache), 1);
    assert_string_equal(pub.password, "pw-from-file");
    its_config_free(&cfg);

    /* the token and its file both: refused, naming both */
    memset(&s, 0, sizeof s);
    snprintf(yaml, sizeof yaml, "api:\n  token: other\n  token_file: %s\n", tok);
    assert_int_equal(its_config_load_string(&cfg, yaml, strlen(yaml), "t.yaml", err, sizeof err),
                     ITS_ECONFIG);
    assert_non_null(strstr(err, "api.token and api.token_file"));
    its_config_free(&cfg);
    /* a file that is not there */
    memset(&s, 0, sizeof s);
    snprintf(yaml, sizeof yaml, "api:\n  token_file: %s/absent\n", dir);
    assert_int_equal(its_config_load_string(&cfg, yaml, strlen(yaml), "t.yaml", err, sizeof err),
                     ITS_ECONFIG);
    assert_non_null(strstr(err, "api.token_file"));
    its_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_yaml_env_and_secrets),
        cmocka_unit_test(test_secret_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
