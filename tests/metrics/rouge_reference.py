"""Reference scores for tests/metrics/rouge_test.cpp: Google's rouge-score (RougeScorer.score / score_multi) on
variants of the shared test corpus, with and without the Porter stemmer, one and several references, and texts whose
sentences are joined by "\\n" (for rougeLsum's summary-level LCS); per variant also numpy's mean of the per-pair
scores (the corpus value corpus_rouge reports).

usage: rouge_reference.py OUT.json
"""
import json
import os
import random
import sys

import numpy as np
from rouge_score import rouge_scorer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402

TYPES = ["rouge1", "rouge2", "rouge3", "rougeL", "rougeLsum"]
MORE_TYPES = ["rouge1", "rouge4", "rouge9", "rougeLsum", "rougeL"]


def multiline(seed, n, refs):
    """Pairs whose texts are 1 to 4 corpus texts joined by "\\n" (sometimes "\\n\\n", a leading or trailing "\\n");
    the hypothesis's sentences are perturbations of the references' in the same or a shuffled order."""
    rng = random.Random(seed)
    hyps, refs_per_pair = corpus.make_pairs(seed=seed, n=4 * n, refs=refs)
    out_hyps, out_refs = [], []
    for i in range(n):
        k = rng.randint(1, 4)
        idx = list(range(4 * i, 4 * i + k))
        sep = "\n\n" if rng.random() < 0.15 else "\n"
        hyp_idx = idx[:]
        if rng.random() < 0.5:
            rng.shuffle(hyp_idx)
        if rng.random() < 0.2:
            hyp_idx = hyp_idx[:-1] or hyp_idx
        hyp = sep.join(hyps[j] for j in hyp_idx)
        if rng.random() < 0.1:
            hyp = "\n" + hyp + "\n"
        out_hyps.append(hyp)
        out_refs.append([sep.join(refs_per_pair[j][r] for j in idx) for r in range(refs)])
    return out_hyps, out_refs


def variants():
    yield "seed21_refs1", TYPES, corpus.make_pairs(seed=21, n=200, refs=1)
    yield "seed22_refs3", TYPES, corpus.make_pairs(seed=22, n=150, refs=3)
    yield "seed23_refs1_more_types", MORE_TYPES, corpus.make_pairs(seed=23, n=100, refs=1)
    yield "seed24_refs1_multiline", TYPES, multiline(24, 120, 1)
    yield "seed25_refs3_multiline", TYPES, multiline(25, 100, 3)


def as_list(score):
    return [float(score.precision), float(score.recall), float(score.fmeasure)]


def main():
    out = []
    for name, types, (hyps, refs) in variants():
        for use_stemmer in (False, True):
            scorer = rouge_scorer.RougeScorer(types, use_stemmer=use_stemmer)
            scores = []
            for hyp, rs in zip(hyps, refs):
                s = scorer.score(rs[0], hyp) if len(rs) == 1 else scorer.score_multi(rs, hyp)
                scores.append({t: as_list(s[t]) for t in types})
            mean = {t: [float(x) for x in np.mean(np.array([s[t] for s in scores]), axis=0)] for t in types}
            out.append({"name": name, "types": types, "use_stemmer": use_stemmer, "hyps": hyps, "refs": refs,
                        "scores": scores, "mean": mean})
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump({"variants": out}, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
