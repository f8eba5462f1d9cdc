/*
 * The command-line convention of docs/cli.md, checked on the four tools (binaries in argv):
 * --help and --version exit 0 on stdout; an unknown option, a missing value and a bad number
 * exit 2 with exactly one line on stderr that names the option and points to --help; a short
 * option means the same long option in every tool; the confidence default is SPEC's 0.5 in
 * its-infer's help and in itsd's effective configuration.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "its/alloc.h"
#include "cli_run.h"
#include "testutil.h"

enum { ITSD, INFER, BENCH, REPLAY, NTOOLS };
static const char *const names[NTOOLS] = {"itsd", "its-infer", "its-bench", "its-replay"};
/* An option taking a number, per tool, as each tool's --help documents it. */
static const char *const number_opt[NTOOLS] = {"--duration", "--iou", "--fps", "--fps"};
/* A short option taking a value, per tool. */
static const char *const value_opt[NTOOLS] = {"-c", "-m", "-c", "-s"};
static const char *bins[NTOOLS];
static char tmp[256];
static run_result *r;

static void run(int tool, const char *args)
{
    cli_run(bins[tool], tmp, args, r);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* stderr is exactly `want` (one line), stdout empty, exit status 2. */
static void expect_usage_error(int tool, const char *want)
{
    if (strcmp(r->err, want) != 0)
        fail_msg("%s: stderr\n  got:  '%s'\n  want: '%s'", names[tool], r->err, want);
    assert_int_equal(count_lines(r->err), 1);
    assert_string_equal(r->out, "");
    assert_int_equal(r->status, 2);
}

static void test_help(void **state)
{
    (void)state;
    for (int t = 0; t < NTOOLS; t++) {
        char want[64];
        for (int k = 0; k < 2; k++) {
            run(t, k ? "-h" : "--help");
            assert_int_equal(r->status, 0);
            assert_string_equal(r->err, "");
            snprintf(want, sizeof want, "Usage: %s ", names[t]);
            if (strncmp(r->out, want, strlen(want)) != 0)
                fail_msg("%s --help starts with '%.40s'", names[t], r->out);
            /* a description, the options, and the exit codes */
            assert_true(count_lines(r->out) >= 10);
            assert_non_null(strstr(r->out, "  -h, --help"));
            assert_non_null(strstr(r->out, "      --version"));
            assert_non_null(strstr(r->out, "Exit status"));
            assert_non_null(strstr(r->out, "  0  "));
            assert_non_null(strstr(r->out, "  2  bad usage"));
            assert_non_null(strstr(r->out, number_opt[t]));
        }
    }
}

static void test_version(void **state)
{
    (void)state;
    for (int t = 0; t < NTOOLS; t++) {
        run(t, "--version");
        assert_int_equal(r->status, 0);
        assert_string_equal(r->err, "");
        assert_int_equal(count_lines(r->out), 1);
        size_t n = strlen(names[t]);
        assert_true(strncmp(r->out, names[t], n) == 0 && r->out[n] == ' ');
        /* MAJOR.MINOR.PATCH */
        int a, b, c;
        char end;
        assert_int_equal(sscanf(r->out + n + 1, "%d.%d.%d%c", &a, &b, &c, &end), 4);
        assert_int_equal(end, '\n');
    }
}

static void test_unknown_option(void **state)
{
    (void)state;
    char want[200];
    for (int t = 0; t < NTOOLS; t++) {
        run(t, "--no-such-option");
        snprintf(want, sizeof want, "%s: --no-such-option: unknown option (see %s --help)\n",
                 names[t], names[t]);
        expect_usage_error(t, want);
        run(t, "--no-such-option=3");
        expect_usage_error(t, want);
        run(t, "-Z");
        snprintf(want, sizeof want, "%s: -Z: unknown option (see %s --help)\n", names[t], names[t]);
        expect_usage_error(t, want);
    }
}

static void test_missing_value(void **state)
{
    (void)state;
    char want[200];
    for (int t = 0; t < NTOOLS; t++) {
        run(t, value_opt[t]);
        snprintf(want, sizeof want, "%s: %s: needs a value (see %s --help)\n", names[t],
                 value_opt[t], names[t]);
        expect_usage_error(t, want);
    }
}

static void test_bad_number(void **state)
{
    (void)state;
    char args[100], want[200];
    for (int t = 0; t < NTOOLS; t++) {
        snprintf(args, sizeof args, "%s abc", number_opt[t]);
        run(t, args);
        snprintf(want, sizeof want, "%s: %s: 'abc' is not a number (see %s --help)\n", names[t],
                 number_opt[t], names[t]);
        expect_usage_error(t, want);
        /* a number followed by junk is not a number either */
        snprintf(args, sizeof args, "%s=5x", number_opt[t]);
        run(t, args);
        snprintf(want, sizeof want, "%s: %s: '5x' is not a number (see %s --help)\n", names[t],
                 number_opt[t], names[t]);
        expect_usage_error(t, want);
    }
    run(INFER, "--batch 1.5");
    expect_usage_error(INFER,
                       "its-infer: --batch: '1.5' is not a whole number (see its-infer --help)\n");
    run(REPLAY, "-f 0");
    expect_usage_error(REPLAY, "its-replay: --fps: 0 is not in [0.001, 1000] (see its-replay "
                               "--help)\n");
}

/* Every "  -x, --long" pair of every help text: one letter, one long option, in all tools. */
static void test_short_options_agree(void **state)
{
    (void)state;
    char longs[128][32];
    int owner[128];
    memset(longs, 0, sizeof longs);
    int pairs = 0;
    for (int t = 0; t < NTOOLS; t++) {
        run(t, "--help");
        assert_int_equal(r->status, 0);
        for (const char *p = r->out; (p = strstr(p, "\n  -")); p++) {
            const char *q = p + 4; /* "\n  -x, --long" */
            if (!isalpha((unsigned char)q[0]) || strncmp(q + 1, ", --", 4) != 0)
                continue;
            int letter = q[0];
            char lname[32];
            size_t n = strcspn(q + 5, " =\n");
            snprintf(lname, sizeof lname, "%.*s", (int)n, q + 5);
            pairs++;
            if (!longs[letter][0]) {
                snprintf(longs[letter], sizeof longs[letter], "%s", lname);
                owner[letter] = t;
            } else if (strcmp(longs[letter], lname) != 0) {
                fail_msg("-%c is --%s in %s but --%s in %s", letter, longs[letter],
                         names[owner[letter]], lname, names[t]);
            }
        }
    }
    assert_true(pairs >= 12);
    assert_string_equal(longs['c'], "config");
    assert_string_equal(longs['h'], "help");
}

/* SPEC's confidence threshold, 0.5, is the default everywhere. */
static void test_confidence_default(void **state)
{
    (void)state;
    run(INFER, "--help");
    assert_non_null(strstr(r->out, "--confidence X    keep detections scoring at least X "
                                   "(default 0.5,"));
    run(ITSD, "--print-config");
    assert_int_equal(r->status, 0);
    const char *conf = strstr(r->out, "\n  conf: ");
    if (!conf)
        fail_msg("itsd --print-config shows no engine conf:\n%s", r->out);
    assert_true(strncmp(conf, "\n  conf: 0.5\n", 12) == 0);
}

int main(int argc, char **argv)
{
    if (argc < 1 + NTOOLS)
        return its_test_skip("tool binaries not given");
    for (int t = 0; t < NTOOLS; t++)
        bins[t] = argv[1 + t];
    if (!its_test_tmpdir(tmp, sizeof tmp))
        return 1;
    r = its_malloc(ITS_MOD_TEST, sizeof *r);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_unknown_option),
        cmocka_unit_test(test_missing_value),
        cmocka_unit_test(test_bad_number),
        cmocka_unit_test(test_short_options_agree),
        cmocka_unit_test(test_confidence_default),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    its_free(r);
    rmdir(tmp);
    return rc;
}
