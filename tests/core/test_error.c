#include "testutil.h"

#include <string.h>

#include "its/error.h"

static void test_every_code_has_text_and_name(void **state)
{
    int seen = 0;
    for (int c = 0; c > -100; c--) {
        if (strcmp(its_errname(c), "ITS_EUNKNOWN") == 0)
            continue;
        seen++;
        assert_string_not_equal(its_strerror(c), "unknown error");
        assert_true(strncmp(its_errname(c), "ITS_", 4) == 0);
    }
    assert_int_equal(seen, ITS_ERROR_COUNT);
}

static void test_known_values(void **state)
{
    assert_string_equal(its_strerror(ITS_OK), "success");
    assert_string_equal(its_strerror(ITS_ENOMEM), "out of memory");
    assert_string_equal(its_errname(ITS_ETIMEDOUT), "ITS_ETIMEDOUT");
    assert_string_equal(its_strerror(-12345), "unknown error");
    assert_string_equal(its_strerror(7), "unknown error");
    assert_string_equal(its_errname(-12345), "ITS_EUNKNOWN");
}

/* A module's own wrapper over its_vseterr (as the image decoder's counting one). */
static int wrap(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int wrap(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = its_vseterr(err, errlen, code, fmt, ap);
    va_end(ap);
    return rc;
}

static void test_seterr(void **state)
{
    char err[16];
    assert_int_equal(its_seterr(err, sizeof err, ITS_EINVAL, "bad %s %d", "key", 7), ITS_EINVAL);
    assert_string_equal(err, "bad key 7");
    assert_int_equal(wrap(err, sizeof err, ITS_EPROTO, "line %d: %s", 12, "no type field"),
                     ITS_EPROTO);
    assert_string_equal(err, "line 12: no typ"); /* 15 characters and the NUL */
    assert_int_equal(its_seterr(NULL, 0, ITS_ENOMEM, "nowhere"), ITS_ENOMEM);
    assert_int_equal(wrap(err, 0, ITS_EIO, "untouched"), ITS_EIO);
    assert_string_equal(err, "line 12: no typ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_has_text_and_name),
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_seterr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
