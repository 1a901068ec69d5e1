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
"  mamba-stream generate --model DIR --prompt SEQ -n N       sample DNA after a prompt, as FASTA\n"
"  mamba-stream logits --model DIR --ids IN.safetensors --out OUT.safetensors\n"
"  mamba-stream bench [--device cuda] [--peer DIR]            throughput table (beside mamba_ssm)\n"
"  mamba-stream [audio] --model DIR --audio FILE...|-         audio labels / live keywords\n"
"  mamba-stream features --model DIR --audio FILE -o F.npy    the model's front-end frames\n"
"  mamba-stream bench-audio [--model DIR]                     real-time factor, hop latency\n"
"  mamba-stream --version | --help\n"
"\n"
"'mamba-stream score --help' (and reads, vcf, generate, audio, logits, ...) list each one's\n"
"options. Without a subcommand, --bam/--cram/--sam selects reads, --vcf selects vcf,\n"
"--audio/--audio-list selects audio; otherwise score.\n");
}

int main(int argc, char **argv)
{
    ms_blas_pick_kernel(argv);
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
    if (!strcmp(cmd, "audio")) return ms_cmd_audio(argc - 1, argv + 1);
    if (!strcmp(cmd, "features")) return ms_cmd_features(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench-audio")) return ms_cmd_bench_audio(argc - 1, argv + 1);
    if (!strcmp(cmd, "reads")) return ms_cmd_reads(argc - 1, argv + 1);
    if (!strcmp(cmd, "vcf")) return ms_cmd_vcf(argc - 1, argv + 1);
    if (!strcmp(cmd, "generate")) return ms_cmd_generate(argc - 1, argv + 1);
    /* Options straight after the program name: the input option picks the pipeline
     * (--audio/--audio-list: audio; --bam/--cram/--sam: reads; --vcf: variants; else the
     * genome path). */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--audio") || !strcmp(argv[i], "--audio-list") ||
            !strncmp(argv[i], "--audio=", 8) || !strncmp(argv[i], "--audio-list=", 13))
            return ms_cmd_audio(argc, argv);
        if (!strcmp(argv[i], "--bam") || !strcmp(argv[i], "--cram") || !strcmp(argv[i], "--sam"))
            return ms_cmd_reads(argc, argv);
        if (!strcmp(argv[i], "--vcf")) return ms_cmd_vcf(argc, argv);
    }
    return ms_cmd_score(argc, argv);
}
