/* dna.h - base letters: the complement of an IUPAC code, case kept (internal). */
#ifndef MS_DNA_H
#define MS_DNA_H

/* A<->T, C<->G, R<->Y, K<->M, B<->V, D<->H; S, W, N self-complementary; U -> A; any other
 * byte becomes N (n for lower case letters), so a complemented sequence scores alike. */
static inline char ms_complement(char b)
{
    static const char from[] = "ACGTURYKMBVDHSWN";
    static const char to[] = "TGCAAYRMKVBHDSWN";
    int lower = b >= 'a' && b <= 'z';
    char u = lower ? (char)(b - 'a' + 'A') : b;
    for (int i = 0; from[i]; i++)
        if (from[i] == u) return lower ? (char)(to[i] - 'A' + 'a') : to[i];
    return lower ? 'n' : 'N';
}

#endif
