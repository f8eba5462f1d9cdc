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

#endif
