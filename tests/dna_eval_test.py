"""dna_eval_test.py - the Markov baselines of train/dna/eval_dna.py on inputs whose answer is
known, and the whole script on a tiny synthetic data set (run by e2e_dna_eval.sh).

    python3 tests/dna_eval_test.py     (MS_BIN: the engine, for the run with a model)
"""
import json
import os
import sys
import tempfile
import unittest

import numpy as np

SRC = os.environ.get("MS_SRC", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(SRC, "train", "dna"))
import eval_dna  # noqa: E402
import markov  # noqa: E402

RNG = np.random.default_rng(7)
# B(4, 2): every 2-mer once per 16-base cycle, so the next base is a function of the two
# before it while each base is followed by each base once (order 1 knows nothing)
DE_BRUIJN = np.array([0, 0, 1, 0, 2, 0, 3, 1, 1, 2, 1, 3, 2, 2, 3, 3], dtype=np.uint8)


def cycle(n, phase=0):
    return DE_BRUIJN[(np.arange(n) + phase) % 16]


def mean_bits(model, seq, starts):
    b = model.bits(seq, np.asarray(starts))
    return b[:, seq < 4].astype(np.float64).mean(axis=1)


class MarkovKnownAnswers(unittest.TestCase):
    def test_order2_deterministic(self):
        """k >= 2 predicts a de Bruijn cycle almost surely; k = 0, 1 are at 2 bits."""
        train = cycle(40000)
        m = markov.MarkovModel(5).fit(train, [0])
        m.tune(cycle(5000, phase=3), [0])
        bits = mean_bits(m, cycle(20000, phase=5), [0])
        self.assertTrue(np.all(np.abs(bits[:2] - 2) < 0.01), bits)
        self.assertTrue(np.all(bits[2:] < 0.01), bits)

    def test_iid_uniform_held_out(self):
        """On fresh uniform i.i.d. bases every order is ~2 bits (no overfitting)."""
        m = markov.MarkovModel(8).fit(RNG.integers(0, 4, 200000).astype(np.uint8), [0])
        m.tune(RNG.integers(0, 4, 20000).astype(np.uint8), [0])
        bits = mean_bits(m, RNG.integers(0, 4, 50000).astype(np.uint8), [0])
        self.assertTrue(np.all(np.abs(bits - 2) < 0.02), bits)

    def test_unseen_contexts_finite(self):
        """Trained on A and C only: G, T and every context with them still get p > 0, and
        every predictive distribution sums to 1."""
        m = markov.MarkovModel(6).fit(RNG.integers(0, 2, 5000).astype(np.uint8), [0])
        test = RNG.integers(0, 4, 3000).astype(np.uint8)
        bits = m.bits(test, [0])
        self.assertTrue(np.all(np.isfinite(bits)), "infinite bits on an unseen context")
        for ctx in ([], [0, 1, 0], [3, 3, 2, 2, 1, 0], [2] * 10):
            p = m.distribution(ctx)
            self.assertAlmostEqual(p.sum(), 1.0, places=6)
            self.assertTrue(np.all(p > 0), p)

    def test_contexts_stop_at_records_and_n(self):
        seq = np.array([0, 1, 2, 4, 3, 0, 1, 2, 3], dtype=np.uint8)
        avail = markov.context_lengths(seq, [0, 6])
        self.assertEqual(avail.tolist(), [0, 1, 2, -1, 0, 1, 0, 1, 2])
        # 2-mers AC CG TA | CG GT: none across the N, none across the record start (A|C)
        c2 = markov.MarkovModel(1).fit(seq, [0, 6]).counts()[1]
        self.assertEqual(int(c2.sum()), 5)
        self.assertEqual(int(c2[0 * 4 + 1]), 1)  # AC
        self.assertEqual(int(c2[1 * 4 + 2]), 2)  # CG
        self.assertEqual(int(c2[3 * 4 + 0]), 1)  # TA
        self.assertEqual(int(c2[2 * 4 + 3]), 1)  # GT


class Helpers(unittest.TestCase):
    def test_both_strands(self):
        g = eval_dna.Genome(["a", "b"], [np.array([0, 0, 1], np.uint8), np.array([2, 4], np.uint8)])
        seq, starts = eval_dna.both_strands(g)
        self.assertEqual(seq.tolist(), [0, 0, 1, 2, 4, 4, 1, 2, 3, 3])
        self.assertEqual(starts.tolist(), [0, 3, 5, 7])

    def test_repeat_mask_brute_force(self):
        s = RNG.integers(0, 4, 3000).astype(np.uint8)
        s[2000:2030] = s[100:130]                 # a forward copy
        s[2500:2525] = (3 - s[300:325])[::-1]     # a reverse-complement copy
        mask = eval_dna.repeat_mask(eval_dna.Genome(["x"], [s]))
        text = eval_dna.LETTERS[s].tobytes().decode()
        seen, want = set(), np.zeros(len(s), bool)
        for i in range(len(s) - 19):
            w = text[i:i + 20]
            if w in seen or w.translate(str.maketrans("ACGT", "TGCA"))[::-1] in seen:
                want[i:i + 20] = True
            seen.add(w)
        self.assertTrue(np.array_equal(mask, want))
        self.assertGreaterEqual(int(mask.sum()), 55)

    def test_long_orf_mask(self):
        """A 160-codon ORF planted in stop-rich sequence is found on either strand, exactly;
        the stop-rich background and a 149-codon ORF are not."""
        rng = np.random.default_rng(3)
        sense = [c for c in range(64) if c not in eval_dna.STOP_CODONS]
        def orf(n_codons):  # ATG, n - 2 sense codons, TAA: n codons, one open stretch
            cods = [14] + list(rng.choice(sense, n_codons - 2)) + [48]
            return np.array([[c // 16, c // 4 % 4, c % 4] for c in cods], np.uint8).ravel()
        # TTAA repeated: a TAA every 4 codons in all six frames (it is its own reverse complement)
        stops = np.tile(np.array([3, 3, 0, 0], np.uint8), 300)
        for strand in (0, 1):
            o = orf(160)
            if strand:
                o = (3 - o)[::-1]
            seq = np.concatenate([stops, o, stops])
            m = eval_dna.long_orf_mask(eval_dna.Genome(["x"], [seq]))
            inside = np.zeros(len(seq), bool)
            start = len(stops) + 3 * strand                     # ATG .. last sense codon
            inside[start:start + 3 * 159] = True
            self.assertTrue(m[inside].all(), f"strand {strand}: planted ORF not covered")
            # the open stretch may begin up to 3 codons early, after the background's last stop
            self.assertLessEqual(int(m[~inside].sum()), 9, f"strand {strand}: background covered")
        short = np.concatenate([stops, orf(149), stops])
        self.assertEqual(int(eval_dna.long_orf_mask(eval_dna.Genome(["x"], [short])).sum()), 0)

    def test_buckets(self):
        self.assertEqual(eval_dna.bucket_edges(32768), [0, 16, 64, 256, 1024, 4096, 16384, 32768])
        self.assertEqual(eval_dna.bucket_labels(eval_dna.bucket_edges(32768))[-1], "16K-32K")


def tiny_data(root):
    """A data directory in prepare.py's layout, random but with planted structure."""
    def npz(path, recs):
        g = eval_dna.Genome([f"r{i}" for i in range(len(recs))], recs)
        np.savez(path, seq=g.seq, starts=g.starts, names=np.array(g.names))
    rand = lambda n: RNG.integers(0, 4, n).astype(np.uint8)  # noqa: E731
    npz(os.path.join(root, "train.npz"), [rand(30000), rand(5000)])
    npz(os.path.join(root, "val.npz"), [rand(2000), rand(1000)])
    for name in ("test_species", "test_strain"):
        with open(os.path.join(root, name + ".fa"), "wb") as f:
            f.write(eval_dna.Genome([name + "_chr"], [rand(6000)]).fasta())
    with open(os.path.join(root, "splits.json"), "w") as f:
        json.dump({"test_species": {"genome": "tiny A"}, "test_strain": {"genome": "tiny B"}}, f)


class WholeScript(unittest.TestCase):
    def run_script(self, *extra):
        with tempfile.TemporaryDirectory() as d:
            tiny_data(d)
            out = os.path.join(d, "report.md")
            eval_dna.main(["--data", d, "--kmax", "4", "--out", out, *extra])
            with open(out.replace(".md", ".json")) as f:
                res = json.load(f)
            with open(out) as f:
                self.assertIn("| Markov k=4 |", f.read())
            return res

    def test_markov_only(self):
        res = self.run_script("--no-model")
        for s in eval_dna.SETS:
            self.assertTrue(all(1.9 < b < 2.1 for b in res["sets"][s]["markov"]), res["sets"][s])

    @unittest.skipUnless(os.access(os.environ.get("MS_BIN", ""), os.X_OK), "MS_BIN not set")
    def test_with_engine(self):
        model = os.path.join(SRC, "examples", "models", "dna-tiny-untrained")
        res = self.run_script("--model", model, "--mamba-stream", os.environ["MS_BIN"],
                              "--window", "2048", "--engine-args=--threads 1")
        for s in eval_dna.SETS:
            self.assertTrue(np.isfinite(res["sets"][s]["model"]))
        self.assertEqual(res["first_base_rules"]["bos"], 4)  # 2 val records, 2 test genomes
        lc = res["long_context"]["test_strain"]
        self.assertEqual(lc["windows"], 2)
        self.assertEqual(sum(b["positions"] for b in lc["buckets"]), 2 * 2048)
        self.assertEqual(res["where"]["test_species"]["rows"][0]["class"], "all")


if __name__ == "__main__":
    unittest.main(verbosity=2)
