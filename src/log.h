/* log.h - one-line messages through the callback set with ms_set_log (internal). */
#ifndef MS_LOG_H
#define MS_LOG_H

#if defined(__GNUC__)
#define MS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MS_PRINTF(a, b)
#endif

/* level: 0 error, 1 warning, 2 info. Messages have no trailing newline. */
void ms_log(int level, const char *fmt, ...) MS_PRINTF(2, 3);
#define ms_error(...) ms_log(0, __VA_ARGS__)
#define ms_warn(...) ms_log(1, __VA_ARGS__)

#endif
