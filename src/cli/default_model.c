/* default_model.c - where a command finds its model when --model is not given.
 *
 * The trained models ship in the repository's models/ folder and install to
 * <prefix>/share/mamba-stream/models. First match wins:
 *   1. $MAMBA_STREAM_MODELS/<name>            (a user's own folder of models)
 *   2. <folder of the executable>/../share/mamba-stream/models/<name>   (installed)
 *   3. the source tree's models/<name>, compiled in (a build tree: build/mamba-stream)
 * A folder counts when it holds config.json. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef MS_SOURCE_MODELS
#define MS_SOURCE_MODELS "models"
#endif

static int has_config(const char *dir)
{
    char p[2 * PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/config.json", dir);
    return access(p, R_OK) == 0;
}

int ms_cli_exe_dir(char *dir, size_t n)
{
    ssize_t len = readlink("/proc/self/exe", dir, n - 1);
    if (len <= 0) return -1;
    dir[len] = 0;
    char *slash = strrchr(dir, '/');
    if (!slash) return -1;
    *slash = 0;
    return 0;
}

const char *ms_cli_default_model(const char *name)
{
    static char found[2 * PATH_MAX];
    const char *env = getenv("MAMBA_STREAM_MODELS");
    if (env && *env) {
        snprintf(found, sizeof found, "%s/%s", env, name);
        if (has_config(found)) return found;
    }
    char exe[PATH_MAX];
    if (ms_cli_exe_dir(exe, sizeof exe) == 0) {
        snprintf(found, sizeof found, "%s/../share/mamba-stream/models/%s", exe, name);
        if (has_config(found)) return found;
    }
    snprintf(found, sizeof found, "%s/%s", MS_SOURCE_MODELS, name);
    if (has_config(found)) return found;
    fprintf(stderr, "mamba-stream: no --model given and the default model '%s' was not found "
                    "(looked in $MAMBA_STREAM_MODELS, <prefix>/share/mamba-stream/models and %s)\n",
            name, MS_SOURCE_MODELS);
    return NULL;
}
