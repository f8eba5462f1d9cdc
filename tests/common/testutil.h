/* Helpers shared by the tests: cmocka, paths of the shared data, skipping. */
#ifndef ITS_TESTUTIL_H
#define ITS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* ctest treats this exit code as "skipped" (SKIP_RETURN_CODE). */
#define ITS_TEST_SKIP_CODE 77

/* A test that cannot run because something outside the build is missing (a reference, a
 * service, the shared models or media) calls one of these with what is missing. Outside CI
 * the test is skipped; with CI=true in the environment the same condition is a failure, so
 * that an incomplete setup cannot pass the suite. its_test_skip() prints the reason and
 * returns the exit code for main(): ITS_TEST_SKIP_CODE, or 1 under CI. ITS_TEST_SKIP() is
 * the same inside a cmocka test: skip(), or fail_msg() under CI. */
int its_test_ci(void);
int its_test_skip(const char *what);
#define ITS_TEST_SKIP(what)                                                                        \
    do {                                                                                           \
        if (its_test_ci())                                                                         \
            fail_msg("CI=true and %s: run scripts/setup.sh", (what));                              \
        print_message("%s: skipped\n", (what));                                                    \
        skip();                                                                                    \
    } while (0)

/* $ITS_SHARED_DIR/rel (the shared models and media), or NULL if the folder is missing. */
const char *its_test_shared_path(const char *rel, char *buf, size_t len);
/* $ITS_SOURCE_DIR/rel. */
const char *its_test_source_path(const char *rel, char *buf, size_t len);
/* A fresh temporary directory for this test; removed by nobody (under /tmp). */
const char *its_test_tmpdir(char *buf, size_t len);
/* Read a whole file (its_malloc'd, ITS_MOD_TEST); NULL on error. */
uint8_t *its_test_read_file(const char *path, size_t *len);
/* Write a file; 0 on success. */
int its_test_write_file(const char *path, const void *data, size_t len);
/* Occurrences of needle in text (overlapping ones too). */
long its_test_count_in(const char *text, const char *needle);
/* Occurrences of needle in a file's text; -1 if it cannot be read. */
long its_test_count_in_file(const char *path, const char *needle);

/* A TCP port on 127.0.0.1 that was free a moment ago (for a server the test starts). */
int its_test_free_port(void);
/* One HTTP/1.0 request to 127.0.0.1:port (body may be NULL; sent as application/json); the
 * whole response, status line and headers included, NUL-terminated into buf. Returns the
 * bytes received, or -1 when the connection or the send failed. */
int its_test_http(int port, const char *method, const char *path, const char *body, char *buf,
                  size_t len);

#endif
