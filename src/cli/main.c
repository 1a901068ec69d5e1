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
"  mamba-stream [reads] --model DIR --bam|--cram|--sam FILE   per-read scores, aux-tagged BAM\n"
"  mamba-stream [vcf] --model DIR --fasta REF --vcf FILE      variant effect scores (LLR)\n"
"  mamba-stream logits --model DIR --ids IN.safetensors --out OUT.safetensors\n"
"  mamba-stream bench [--device cuda] [--arch mamba1|mamba2]   throughput table\n"
"  mamba-stream --version | --help\n"
"\n"
"'mamba-stream score --help', 'reads --help', 'vcf --help' and 'logits --help' list each\n"
"one's options. Without a subcommand, --bam/--cram/--sam selects reads and --vcf selects\n"
"vcf; otherwise score.\n");
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
    if (!strcmp(cmd, "reads")) return ms_cmd_reads(argc - 1, argv + 1);
    if (!strcmp(cmd, "vcf")) return ms_cmd_vcf(argc - 1, argv + 1);
    /* Options straight after the program name: the input option picks the pipeline. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--bam") || !strcmp(argv[i], "--cram") || !strcmp(argv[i], "--sam"))
            return ms_cmd_reads(argc, argv);
        if (!strcmp(argv[i], "--vcf")) return ms_cmd_vcf(argc, argv);
    }
    return ms_cmd_score(argc, argv);
}
