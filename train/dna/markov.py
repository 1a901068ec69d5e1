"""markov.py - order-k Markov baselines for the DNA model, smoothed, in vectorised numpy.

A base is predicted from the k bases before it. Counts are dense arrays indexed by a
k-mer's 2-bit code (oldest base most significant), so the order-k table of (context, next
base) is indexed by the (k+1)-mer code: 4^13 = 67M uint32 at k = 12, counted from ~36 Mbp
with one np.bincount per order. Every order interpolates with the one below, down to the
uniform 1/4, so no base ever gets p = 0:

    P_k(b | ctx) = (c(ctx b) - D(c) + (alpha + sum_b' D(c(ctx b'))) P_{k-1}(b | ctx'))
                   / (c(ctx) + alpha)

ctx' is the context without its oldest base; D(c) is s * (D1, D2, D3+) for c = 1, 2, >= 3
(Chen & Goodman's modified discounts from the count-of-counts) and 0 for c = 0; a context
never seen gives P_k = P_{k-1}. alpha = 0, s = 1 is interpolated modified absolute
discounting; s = 0 is a Dirichlet prior centred on the lower order. Per order, s and alpha
are chosen on held-out data (tune()), lowest order first: DNA counts are not Zipfian, and
with the count-of-counts discounts alone k = 10..12 were worse than k = 9 (a context seen
once or twice says little about the next base, so the prior must be strong).

Why not Kneser-Ney: its lower orders count distinct left extensions, of which DNA has only
4, so for contexts shorter than ~8 every count is 4 and those orders are uniform. Tuned the
same way it gave 1.932 bits/base on val at k = 12 against 1.907 for the raw-count
interpolation here (train.npz of prepare.py, both strands).

Sequences are uint8 codes (A0 C1 G2 T3, other 4) with record start offsets. A context never
crosses a record boundary or a non-ACGT code; a base with fewer than k valid bases before
it is predicted by the longest order it has (the first base of a record by order 0).
"""
import time

import numpy as np

S_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)        # discount scale s
ALPHA_GRID = tuple(4.0 ** np.arange(-1, 7))  # prior strength alpha, 0.25 .. 4096


def run_starts(seq, starts):
    """For each position, where its run of valid bases began: runs restart after a non-ACGT
    code and at every record start."""
    n = len(seq)
    idx = np.arange(n, dtype=np.int64)
    cand = np.zeros(n, dtype=np.int64)
    bad = seq >= 4
    cand[bad] = idx[bad] + 1              # a run starts just after a non-ACGT code
    st = np.asarray(starts, dtype=np.int64)
    st = st[(st >= 0) & (st < n)]
    cand[st] = np.maximum(cand[st], st)  # ... and at a record start
    return np.maximum.accumulate(cand)


def context_lengths(seq, starts):
    """Valid context bases available before each position; -1 where the base is not ACGT."""
    avail = np.arange(len(seq), dtype=np.int64) - run_starts(seq, starts)
    avail[seq >= 4] = -1
    return avail


def kmer_codes(seq, mmax):
    """Yield (m, h) for m = 1..mmax: h[i] is the 2-bit code of the m bases ending at i (oldest
    most significant; non-ACGT read as A, so callers mask with context_lengths). The same
    array is updated in place: copy h to keep it."""
    s = np.where(seq < 4, seq, 0).astype(np.int64)
    h = s.copy()
    yield 1, h
    for m in range(2, mmax + 1):
        h[1:] = (h[:-1] << 2) | s[1:]  # the right side is built before the assignment
        h[0] = s[0]
        yield m, h


def discounts(c):
    """Modified Kneser-Ney discounts D1, D2, D3+ from the count-of-counts of array c, kept in
    (0, r). Orders whose contexts are all frequent have no singletons to estimate from;
    there the discount hardly matters and the textbook 0.5 / 0.75 is used."""
    n = [np.count_nonzero(c == r) for r in (1, 2, 3, 4)]
    if min(n) == 0:
        return np.array([0.5, 0.75, 0.75])
    y = n[0] / (n[0] + 2 * n[1])
    d = np.array([1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]])
    return np.clip(d, 0.05, np.array([0.95, 1.95, 2.95]))


class Level:
    """One order: counts of (context, base), and per context the total count and the summed
    discounts (the mass handed to the lower order)."""

    def __init__(self, counts):
        self.counts = counts
        cols = [counts[b::4] for b in range(4)]  # count of each next base, per context
        self.total = (cols[0] + cols[1]).astype(np.uint32) + cols[2] + cols[3]
        self.d = discounts(counts)
        dtab = np.array([0.0, *self.d], dtype=np.float32)  # discount by count 0, 1, 2, >= 3
        self.dsum = sum(dtab[np.minimum(col, 3)] for col in cols)
        self.s, self.alpha = 1.0, 1.0  # until tuned

    def interpolate(self, idx, lower, s=None, alpha=None):
        """P(b | ctx) for the (context, base) codes idx, given the lower order's P at idx."""
        s = self.s if s is None else s
        alpha = self.alpha if alpha is None else alpha
        c = self.counts[idx].astype(np.float64)
        ctx = idx >> 2
        den = self.total[ctx] + alpha
        d = s * self.d[np.minimum(c, 3).astype(np.int64) - 1]  # D1, D2, D3+ by count
        d[c == 0] = 0.0
        p = (c - d + (alpha + s * self.dsum[ctx]) * lower) / np.where(den > 0, den, 1.0)
        return np.where(den > 0, p, lower)


class MarkovModel:
    """Interpolated Markov models of orders 0..kmax from one set of counts."""

    def __init__(self, kmax):
        self.kmax = kmax
        self.levels = []  # levels[k]: counts of (k+1)-mers

    def fit(self, seq, starts, log=None):
        """Count every (k+1)-mer of seq that lies inside one run of ACGT of one record."""
        t0 = time.time()
        avail = context_lengths(seq, starts)
        counts = []
        for m, h in kmer_codes(seq, self.kmax + 1):
            counts.append(np.bincount(h[avail >= m - 1], minlength=4 ** m).astype(np.uint32))
        if log:
            log(f"markov: (k+1)-mers of {len(seq):,} positions counted, k <= {self.kmax} "
                f"({time.time() - t0:.1f} s)")
        return self.set_counts(counts)

    def set_counts(self, counts):
        self.kmax = len(counts) - 1
        self.levels = [Level(c) for c in counts]
        return self

    def counts(self):
        return [lv.counts for lv in self.levels]

    def tune(self, seq, starts):
        """Choose s and alpha of each order, lowest first, to minimise the bits on held-out
        seq at the positions where that order is the one predicting. Returns [(s, alpha)]."""
        avail = context_lengths(seq, starts)
        lower = np.full(len(seq), 0.25)
        for m, h in kmer_codes(seq, self.kmax + 1):
            lv, use = self.levels[m - 1], avail >= m - 1
            hu, lu = h[use], lower[use]

            def cost(sa):
                return -np.log2(lv.interpolate(hu, lu, *sa)).sum()
            lv.s, lv.alpha = min(((s, a) for s in S_GRID for a in ALPHA_GRID), key=cost)
            lower = lv.interpolate(h, lower)
        return self.params()

    def params(self):
        return [(float(lv.s), float(lv.alpha)) for lv in self.levels]

    def set_params(self, params):
        for lv, (s, a) in zip(self.levels, params):
            lv.s, lv.alpha = s, a

    def bits(self, seq, starts, reset=None, orders=None):
        """-log2 p of every base under the order-k models: float32 [len(orders), len(seq)]
        (orders: default 0..kmax), NaN where the base is not ACGT. reset: more offsets where
        the context restarts (window starts)."""
        orders = list(range(self.kmax + 1)) if orders is None else list(orders)
        if reset is not None:
            starts = np.union1d(starts, reset)
        avail = context_lengths(seq, starts)
        out = np.full((len(orders), len(seq)), np.nan, dtype=np.float32)
        p = np.full(len(seq), 0.25)  # order -1: uniform
        best = p                       # the order-min(k, avail) prediction so far
        for m, h in kmer_codes(seq, max(orders) + 1):
            k = m - 1
            p = self.levels[k].interpolate(h, p)
            # a base with fewer than k context bases keeps the longest order it has
            best = np.where(avail >= k, p, best)
            if k in orders:
                out[orders.index(k)] = -np.log2(best)
        out[:, avail < 0] = np.nan
        return out

    def distribution(self, context):
        """P(A, C, G, T | context) at the longest order the context allows (for tests)."""
        ctx = np.asarray(context, dtype=np.uint8)
        seqs = [np.append(ctx, np.uint8(b)) for b in range(4)]
        return np.array([2.0 ** -float(self.bits(s, [0])[-1, -1]) for s in seqs])
