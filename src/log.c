/* log.c - the library's one log sink. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

#include "mamba_stream.h"

static void default_log(int level, const char *msg, void *user)
{
    (void)user;
    fprintf(stderr, "mamba-stream: %s%s\n", level == 1 ? "warning: " : "", msg);
}

static ms_log_fn g_log = default_log;
static void *g_log_user;

void ms_set_log(ms_log_fn fn, void *user)
{
    g_log = fn ? fn : default_log;
    g_log_user = fn ? user : NULL;
}

void ms_log(int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_log(level, buf, g_log_user);
}

const char *ms_status_str(int status)
{
    switch (status) {
    case MS_OK: return "ok";
    case MS_ERR_IO: return "I/O error";
    case MS_ERR_FORMAT: return "format error";
    case MS_ERR_MODEL: return "model error";
    case MS_ERR_NOMEM: return "out of memory";
    case MS_ERR_ARG: return "invalid argument";
    case MS_ERR_BACKEND: return "backend error";
    case MS_ERR_UNSUPPORTED: return "unsupported";
    default: return "error";
    }
}
