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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_has_text_and_name),
        cmocka_unit_test(test_known_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
