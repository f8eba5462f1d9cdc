/* The JSON writer: expected texts worked out by hand, and everything parsed back by jansson. */
#include "testutil.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "its/error.h"
#include "its/json.h"

static char buf[4096];

static const char *one_str(const char *s, size_t n)
{
    its_json w;
    its_json_init(&w, buf, sizeof buf);
    its_json_strn(&w, s, n);
    assert_true(its_json_finish(&w) >= 0);
    return buf;
}

static const char *one_numg(double v, int sig)
{
    its_json w;
    its_json_init(&w, buf, sizeof buf);
    its_json_numg(&w, v, sig);
    assert_true(its_json_finish(&w) >= 0);
    return buf;
}

static const char *one_fixed(double v, int dec)
{
    its_json w;
    its_json_init(&w, buf, sizeof buf);
    its_json_fixed(&w, v, dec);
    assert_true(its_json_finish(&w) >= 0);
    return buf;
}

static void test_structure(void **state)
{
    its_json w;
    its_json_init(&w, buf, sizeof buf);
    its_json_obj_begin(&w);
    its_json_kint(&w, "v", 2);
    its_json_kstr(&w, "camera", "cam-1");
    its_json_key(&w, "box");
    its_json_arr_begin(&w);
    its_json_fixed(&w, 0.25, 4);
    its_json_fixed(&w, 0.5, 4);
    its_json_arr_end(&w);
    its_json_key(&w, "empty");
    its_json_obj_begin(&w);
    its_json_obj_end(&w);
    its_json_key(&w, "arr");
    its_json_arr_begin(&w);
    its_json_arr_end(&w);
    its_json_key(&w, "nested");
    its_json_arr_begin(&w);
    its_json_obj_begin(&w);
    its_json_obj_end(&w);
    its_json_arr_begin(&w);
    its_json_int(&w, 1);
    its_json_arr_end(&w);
    its_json_arr_end(&w);
    its_json_kbool(&w, "t", 1);
    its_json_kbool(&w, "f", 0);
    its_json_knull(&w, "n");
    its_json_kstr(&w, "s", NULL);
    its_json_key(&w, "raw");
    its_json_raw(&w, "{\"a\":[1]}", 9);
    its_json_kuint(&w, "u", 7);
    its_json_obj_end(&w);
    const char *want = "{\"v\":2,\"camera\":\"cam-1\",\"box\":[0.25,0.5],\"empty\":{},\"arr\":[],"
                       "\"nested\":[{},[1]],\"t\":true,\"f\":false,\"n\":null,\"s\":null,"
                       "\"raw\":{\"a\":[1]},\"u\":7}";
    assert_int_equal(its_json_finish(&w), (int)strlen(want));
    assert_string_equal(buf, want);

    /* reset reuses the buffer from the start */
    its_json_reset(&w);
    its_json_arr_begin(&w);
    its_json_arr_end(&w);
    assert_int_equal(its_json_finish(&w), 2);
    assert_string_equal(buf, "[]");
}

static void test_strings(void **state)
{
    /* Main "St" → Süd: the arrow is E2 86 92, the umlaut C3 BC; both pass through */
    const char *name = "Main \"St\" \xE2\x86\x92 S\xC3\xBC"
                       "d";
    assert_string_equal(one_str(name, strlen(name)), "\"Main \\\"St\\\" \xE2\x86\x92 S\xC3\xBC"
                                                     "d\"");
    assert_string_equal(one_str("a\\b", 3), "\"a\\\\b\"");
    assert_string_equal(one_str("\n\r\t\b\f\x01\x1f\x7f", 8),
                        "\"\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\"");
    assert_string_equal(one_str("a\0b", 3), "\"a\\u0000b\"");
    /* a 4-byte sequence (U+1F600) passes through */
    assert_string_equal(one_str("\xF0\x9F\x98\x80", 4), "\"\xF0\x9F\x98\x80\"");
    /* invalid UTF-8: every offending byte becomes U+FFFD (EF BF BD) */
#define R "\xEF\xBF\xBD"
    assert_string_equal(one_str("a\xFF"
                                "b",
                                3),
                        "\"a" R "b\"");
    assert_string_equal(one_str("\xC0\x80", 2), "\"" R R "\"");             /* overlong NUL */
    assert_string_equal(one_str("\xED\xA0\x80", 3), "\"" R R R "\"");       /* surrogate D800 */
    assert_string_equal(one_str("\xF4\x90\x80\x80", 4), "\"" R R R R "\""); /* > U+10FFFF */
    assert_string_equal(one_str("x\xE2\x82", 3), "\"x" R R "\"");           /* truncated */
    assert_string_equal(one_str("\x80"
                                "A",
                                2),
                        "\"" R "A\""); /* stray continuation byte */
#undef R
    its_json w;
    its_json_init(&w, buf, sizeof buf);
    its_json_str(&w, NULL);
    assert_string_equal(buf, "null");
}

static void test_integers(void **state)
{
    its_json w;
    its_json_init(&w, buf, sizeof buf);
    its_json_arr_begin(&w);
    its_json_int(&w, 0);
    its_json_int(&w, -1);
    its_json_int(&w, 1234567890);
    its_json_int(&w, INT64_MIN);
    its_json_int(&w, INT64_MAX);
    its_json_uint(&w, UINT64_MAX);
    its_json_arr_end(&w);
    assert_true(its_json_finish(&w) > 0);
    assert_string_equal(buf, "[0,-1,1234567890,-9223372036854775808,9223372036854775807,"
                             "18446744073709551615]");
    /* against printf for a spread of values */
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 10000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t u = x >> (i % 64);
        char a[32], b[32];
        size_t n = its_json_fmt_u64(a, u);
        a[n] = 0;
        snprintf(b, sizeof b, "%" PRIu64, u);
        assert_string_equal(a, b);
        n = its_json_fmt_i64(a, (int64_t)u);
        a[n] = 0;
        snprintf(b, sizeof b, "%" PRId64, (int64_t)u);
        assert_string_equal(a, b);
    }
}

static void test_floats(void **state)
{
    assert_string_equal(one_numg(0.5, 6), "0.5");
    assert_string_equal(one_numg(1.0, 6), "1");
    assert_string_equal(one_numg(100.0, 6), "100");
    assert_string_equal(one_numg(-2.5, 6), "-2.5");
    assert_string_equal(one_numg(3.14159265, 6), "3.14159");
    assert_string_equal(one_numg(123456.0, 6), "123456");
    assert_string_equal(one_numg(1234567.0, 6), "1234570");
    assert_string_equal(one_numg(0.000123456789, 6), "0.000123457");
    assert_string_equal(one_numg(9.9999996, 6), "10");
    assert_string_equal(one_numg(2.0 / 3.0, 3), "0.667");
    assert_string_equal(one_numg(123.456, 2), "120");
    assert_string_equal(one_numg(-0.0, 6), "0");
    assert_string_equal(one_numg(1e-7, 6), "1e-07");
    assert_string_equal(one_numg(1e20, 6), "1e+20");
    assert_string_equal(one_numg(NAN, 6), "null");
    assert_string_equal(one_numg(INFINITY, 6), "null");
    assert_string_equal(one_numg(-INFINITY, 6), "null");

    assert_string_equal(one_fixed(0.123456, 4), "0.1235");
    assert_string_equal(one_fixed(0.5, 4), "0.5");
    assert_string_equal(one_fixed(1.0, 4), "1");
    assert_string_equal(one_fixed(12.0625, 2), "12.06");
    assert_string_equal(one_fixed(0.05, 3), "0.05");
    assert_string_equal(one_fixed(1920, 0), "1920");
    assert_string_equal(one_fixed(-0.00004, 4), "0"); /* rounds to zero: no "-0" */
    assert_string_equal(one_fixed(-1.25, 1), "-1.3");
    assert_string_equal(one_fixed(1e20, 2), "1e+20");
    assert_string_equal(one_fixed(NAN, 3), "null");
    assert_string_equal(one_fixed(-INFINITY, 3), "null");

    its_json w;
    its_json_init(&w, buf, sizeof buf);
    its_json_obj_begin(&w);
    its_json_knum(&w, "a", 0.1);
    its_json_kfixed(&w, "b", 0.25, 2);
    its_json_obj_end(&w);
    assert_string_equal(buf, "{\"a\":0.1,\"b\":0.25}");

    /* against printf's exact conversion: within one unit of the last digit kept */
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double mant = (double)(x >> 11) / 9007199254740992.0; /* [0, 1) */
        int ex = (int)(x % 40) - 20;
        double v = (x & 1 ? -1 : 1) * mant * pow(10, ex);
        char ref[64];
        int sig = 1 + (int)(x % 9);
        snprintf(ref, sizeof ref, "%.*g", sig, v);
        double r = strtod(ref, NULL), got = strtod(one_numg(v, sig), NULL);
        double unit = v == 0 ? 0 : pow(10, floor(log10(fabs(r ? r : v))) - (sig - 1));
        assert_true(fabs(got - r) <= unit * 1.0001);
        int dec = (int)(x % 7);
        if (fabs(v) < 1e9) {
            snprintf(ref, sizeof ref, "%.*f", dec, v);
            assert_true(fabs(strtod(one_fixed(v, dec), NULL) - strtod(ref, NULL)) <=
                        pow(10, -dec) * 1.0001 + fabs(v) * 1e-15);
        }
    }
}

static void test_overflow_and_misuse(void **state)
{
    char small[8];
    its_json w;
    its_json_init(&w, small, sizeof small);
    its_json_obj_begin(&w);
    its_json_kstr(&w, "camera", "cam-1");
    its_json_obj_end(&w);
    assert_int_equal(its_json_finish(&w), ITS_EOVERFLOW);
    assert_true(strlen(small) < sizeof small);

    /* exactly fitting: 2 bytes of text and the NUL */
    char three[3];
    its_json_init(&w, three, sizeof three);
    its_json_obj_begin(&w);
    its_json_obj_end(&w);
    assert_int_equal(its_json_finish(&w), 2);
    assert_string_equal(three, "{}");

    its_json_init(&w, buf, sizeof buf);
    its_json_obj_begin(&w);
    its_json_arr_end(&w);
    assert_int_equal(its_json_finish(&w), ITS_EINVAL);

    its_json_init(&w, buf, sizeof buf);
    its_json_arr_begin(&w);
    its_json_key(&w, "k");
    assert_int_equal(its_json_finish(&w), ITS_EINVAL);

    its_json_init(&w, buf, sizeof buf);
    its_json_obj_begin(&w);
    assert_int_equal(its_json_finish(&w), ITS_EINVAL); /* unclosed */

    its_json_init(&w, buf, sizeof buf);
    its_json_obj_begin(&w);
    its_json_key(&w, "k");
    its_json_obj_end(&w);
    assert_int_equal(its_json_finish(&w), ITS_EINVAL); /* a key without its value */

    its_json_init(&w, buf, sizeof buf);
    for (int i = 0; i < ITS_JSON_MAX_DEPTH; i++)
        its_json_arr_begin(&w);
    for (int i = 0; i < ITS_JSON_MAX_DEPTH; i++)
        its_json_arr_end(&w);
    assert_int_equal(its_json_finish(&w), 2 * ITS_JSON_MAX_DEPTH);
    its_json_reset(&w);
    for (int i = 0; i <= ITS_JSON_MAX_DEPTH; i++)
        its_json_arr_begin(&w);
    assert_int_equal(its_json_finish(&w), ITS_EINVAL);

    its_json_init(&w, NULL, 0);
    its_json_null(&w);
    assert_int_equal(its_json_finish(&w), ITS_EOVERFLOW);
}

static const char *label_of(void *ctx, int class_id)
{
    return class_id == 2 ? "car" : NULL;
}

/* The envelope and the detections of messages v2, worked out by hand: 100..400 of 1000 px
 * is 0.1..0.4, 160..360 of 800 px is 0.2..0.45; a box past the frame is clamped. */
static void test_message_pieces(void **state)
{
    its_det d[2] = {{100, 160, 400, 360, 0.91f, 2, 7}, {-10, -10, 1200, 900, 0.5f, 0, 0}};
    its_json w;
    its_json_init(&w, buf, sizeof buf);
    its_json_msg_begin(&w, "frame", "c\"1", 5, 6);
    its_json_frame_dets(&w, d, 2, 1000, 800, label_of, NULL);
    its_json_obj_end(&w);
    assert_true(its_json_finish(&w) > 0);
    assert_string_equal(buf, "{\"v\":2,\"type\":\"frame\",\"camera\":\"c\\\"1\",\"ts_us\":5,"
                             "\"frame\":6,\"width\":1000,\"height\":800,\"detections\":[{"
                             "\"class_id\":2,\"class\":\"car\",\"score\":0.91,\"box\":[0.1,0.2,"
                             "0.4,0.45],\"track_id\":7},{\"class_id\":0,\"class\":\"class_0\","
                             "\"score\":0.5,\"box\":[0,0,1,1],\"track_id\":null}]}");
    /* no camera (a model baseline), no labels at all */
    its_json_init(&w, buf, sizeof buf);
    its_json_msg_begin(&w, "model_baseline", NULL, 1, 0);
    its_json_frame_dets(&w, d, 0, 0, 0, NULL, NULL);
    its_json_obj_end(&w);
    assert_string_equal(buf, "{\"v\":2,\"type\":\"model_baseline\",\"ts_us\":1,\"frame\":0,"
                             "\"width\":0,\"height\":0,\"detections\":[]}");
}

/* Random bytes and random numbers: jansson (which checks UTF-8 strictly) must parse every
 * document, valid UTF-8 strings come back unchanged, numbers come back as written. */
static void test_parse_back(void **state)
{
    uint64_t x = 0x2545F4914F6CDD1DULL;
    char s[64];
    for (int it = 0; it < 5000; it++) {
        size_t n = 0;
        for (; n < sizeof s - 1; n++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            if (x % 23 == 0)
                break;
            s[n] = (char)(x >> 24);
            if (s[n] == 0)
                s[n] = 1;
        }
        s[n] = 0;
        double v = (double)(int64_t)x / 1e12;
        its_json w;
        its_json_init(&w, buf, sizeof buf);
        its_json_obj_begin(&w);
        its_json_kstr(&w, "s", s);
        its_json_kstr(&w, "ok",
                      "Main \"St\" \xE2\x86\x92 S\xC3\xBC"
                      "d\\");
        its_json_knum(&w, "v", v);
        its_json_kint(&w, "i", (int64_t)x);
        its_json_obj_end(&w);
        assert_true(its_json_finish(&w) > 0);
        json_error_t e;
        json_t *j = json_loads(buf, 0, &e);
        if (!j)
            fail_msg("jansson rejected %s: %s", buf, e.text);
        assert_string_equal(json_string_value(json_object_get(j, "ok")),
                            "Main \"St\" \xE2\x86\x92 S\xC3\xBC"
                            "d\\");
        json_t *ref = json_string(s); /* NULL unless s itself is valid UTF-8 */
        if (ref)
            assert_string_equal(json_string_value(json_object_get(j, "s")), s);
        json_decref(ref);
        double got = json_number_value(json_object_get(j, "v"));
        assert_true(fabs(got - v) <= fabs(v) * 5.01e-6);
        assert_true(json_integer_value(json_object_get(j, "i")) == (json_int_t)(int64_t)x);
        json_decref(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_overflow_and_misuse),
        cmocka_unit_test(test_parse_back),
        cmocka_unit_test(test_message_pieces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
