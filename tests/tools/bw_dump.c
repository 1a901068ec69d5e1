/* bw_dump.c - print a bigWig as bedGraph lines (chrom, start, end, value %.6g), one per
 * base of every interval, read back through libBigWig; for the e2e tests. */
#include <stdio.h>

#define NOCURL 1 /* local files only (see src/sinks/sink_bigwig.c) */
#include <bigWig.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: bw_dump FILE.bw\n");
        return 2;
    }
    if (bwInit(1 << 17) != 0) return 1;
    bigWigFile_t *bw = bwOpen(argv[1], NULL, "r");
    if (!bw) {
        fprintf(stderr, "bw_dump: cannot open %s as bigWig\n", argv[1]);
        return 1;
    }
    for (int64_t i = 0; i < bw->cl->nKeys; i++) {
        const char *chrom = bw->cl->chrom[i];
        bwOverlappingIntervals_t *o = bwGetOverlappingIntervals(bw, chrom, 0, bw->cl->len[i]);
        if (!o) continue;
        for (uint32_t k = 0; k < o->l; k++)
            for (uint32_t p = o->start[k]; p < o->end[k]; p++)
                printf("%s\t%u\t%u\t%.6g\n", chrom, p, p + 1, o->value[k]);
        bwDestroyOverlappingIntervals(o);
    }
    bwClose(bw);
    bwCleanup();
    return 0;
}
