#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "its/alloc.h"
#include "its/error.h"
#include "its/log.h"

/* Run fn with the log sink pointed at a temporary file; return what was written. */
static char *capture(void (*fn)(void))
{
    FILE *f = tmpfile();
    assert_non_null(f);
    its_log_set_fd(fileno(f));
    fn();
    its_log_set_fd(2);
    static char buf[1 << 18];
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void emit_text(void)
{
    its_log_set_format(ITS_LOG_TEXT);
    its_log_set_level(ITS_LOG_INFO);
    its_logi("ingest", "cam-3", "connected to %s", "rtsp://x");
    its_logd("ingest", "cam-3", "hidden debug line");
    its_logw("batch", NULL, "queue at %d%%", 80);
}

static void test_text_format_and_level(void **state)
{
    unsigned long before = its_log_count(ITS_LOG_INFO);
    char *out = capture(emit_text);
    assert_non_null(strstr(out, "INFO  [ingest cam-3] connected to rtsp://x\n"));
    assert_non_null(strstr(out, "WARN  [batch] queue at 80%\n"));
    assert_null(strstr(out, "hidden debug line"));
    assert_int_equal(its_log_count(ITS_LOG_INFO), before + 1);
    /* ISO 8601 timestamp first. */
    assert_true(out[4] == '-' && out[10] == 'T' && out[23] == 'Z');
}

static void emit_json(void)
{
    its_log_set_format(ITS_LOG_JSON);
    its_loge("engine", "yolo\"11n", "bad \"node\"\n\tnext");
    its_log_set_format(ITS_LOG_TEXT);
}

static void test_json_escaping(void **state)
{
    char *out = capture(emit_json);
    assert_non_null(strstr(out, "\"level\":\"error\""));
    assert_non_null(strstr(out, "\"module\":\"engine\""));
    assert_non_null(strstr(out, "\"ctx\":\"yolo\\\"11n\""));
    assert_non_null(strstr(out, "\"msg\":\"bad \\\"node\\\"\\n\\tnext\"}\n"));
}

static void emit_long(void)
{
    char big[ITS_LOG_LINE_MAX * 3];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    its_logi("core", NULL, "%s", big);
}

static void test_long_lines_are_cut_not_overflowed(void **state)
{
    char *out = capture(emit_long);
    size_t n = strlen(out);
    assert_true(n > 100 && n < ITS_LOG_LINE_MAX * 2 + 2);
    assert_int_equal(out[n - 1], '\n');
}

static void *log_thread(void *arg)
{
    for (int i = 0; i < 200; i++)
        its_logi("t", arg, "line %d of a concurrent writer with some padding text", i);
    return NULL;
}

static void emit_concurrent(void)
{
    pthread_t th[4];
    char *names[4] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, log_thread, names[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
}

static void test_concurrent_lines_do_not_interleave(void **state)
{
    char *out = capture(emit_concurrent);
    int lines = 0;
    for (char *l = strtok(out, "\n"); l; l = strtok(NULL, "\n")) {
        assert_non_null(strstr(l, "INFO  [t "));
        assert_non_null(strstr(l, "with some padding text"));
        lines++;
    }
    assert_int_equal(lines, 800);
}

static void test_parse(void **state)
{
    its_log_level l;
    its_log_format f;
    assert_int_equal(its_log_parse_level("WARN", &l), 0);
    assert_int_equal(l, ITS_LOG_WARN);
    assert_int_equal(its_log_parse_level("loud", &l), ITS_EINVAL);
    assert_int_equal(its_log_parse_level(NULL, &l), ITS_EINVAL);
    assert_int_equal(its_log_parse_format("json", &f), 0);
    assert_int_equal(f, ITS_LOG_JSON);
    assert_int_equal(its_log_parse_format("xml", &f), ITS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_format_and_level),
        cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_long_lines_are_cut_not_overflowed),
        cmocka_unit_test(test_concurrent_lines_do_not_interleave),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
