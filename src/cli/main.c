/* main.c - mamba-stream: subcommand dispatch. Scoring is the default subcommand. */
#include <stdio.h>
#include <string.h>

#include <htslib/hts.h>

#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
"mamba-stream " MS_VERSION " - Mamba models over very long streams\n"
"\n"
"Usage:\n"
"  mamba-stream [score] --model DIR --fasta FILE [options]   per-base next-nucleotide scores\n"
"  mamba-stream logits --model DIR --ids IN.safetensors --out OUT.safetensors\n"
"  mamba-stream bench [--device cuda] [--arch mamba1|mamba2]   throughput table\n"
"  mamba-stream --version | --help\n"
"\n"
"'mamba-stream score --help' and 'mamba-stream logits --help' list each one's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    /* Our own error lines name the file and record; htslib's would repeat them. */
    hts_set_log_level(HTS_LOG_OFF);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("mamba-stream %s\n", MS_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "logits")) return ms_cmd_logits(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return ms_cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "score")) return ms_cmd_score(argc - 1, argv + 1);
    return ms_cmd_score(argc, argv); /* options straight after the program name */
}
