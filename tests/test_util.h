/* test_util.h - small helpers shared by the cmocka tests. */
#ifndef MS_TEST_UTIL_H
#define MS_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* $MS_FIXTURES/<rel> in a static buffer (one of 8 rotating). */
const char *tu_fixture(const char *rel);
/* A fresh directory under $TMPDIR (or /tmp), removed at exit. */
const char *tu_tmpdir(void);
/* ||a - b|| / ||b|| in double. */
double tu_rel_err(const float *a, const float *b, size_t n);
/* Write a whole file; returns 0 on success. */
int tu_write_file(const char *path, const void *data, size_t n);
/* Capture the library's log lines; tu_log_text() returns all captured since tu_log_capture(). */
void tu_log_capture(void);
const char *tu_log_text(void);

#endif
