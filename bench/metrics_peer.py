"""The Python peer of `troupe bench metrics`: writes the benchmark's sentence pairs (tests/metrics/corpus.py's seeded
generator, so the same varied text the reference tests use) to WORK/hyp.txt and WORK/ref.txt, then times the
reference implementations on all of them in this process: sacrebleu's corpus BLEU and chrF, and rouge-score's
RougeScorer.score over every pair (rouge1, rouge2, rougeL, rougeLsum; with and without the stemmer). Prints JSON:
{"seconds": {name: [run times...]}, "values": {name: score}}.

usage: metrics_peer.py WORK PAIRS RUNS SOURCE_DIR
"""
import json
import os
import sys
import time

import sacrebleu
from rouge_score import rouge_scorer


def main():
    work, pairs, runs, source = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    sys.path.insert(0, os.path.join(source, "tests", "metrics"))
    import corpus
    hyps, refs = corpus.make_pairs(seed=2024, n=pairs, refs=1)
    refs = [r[0] for r in refs]
    with open(os.path.join(work, "hyp.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(hyps) + "\n")
    with open(os.path.join(work, "ref.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(refs) + "\n")
    seconds, values = {}, {}

    def timed(name, fn):
        seconds[name] = []
        for _ in range(runs):
            start = time.perf_counter()
            values[name] = fn()
            seconds[name].append(time.perf_counter() - start)

    timed("bleu", lambda: sacrebleu.corpus_bleu(hyps, [refs]).score)
    timed("chrf", lambda: sacrebleu.corpus_chrf(hyps, [refs]).score)
    for stem in (False, True):
        scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=stem)
        name = "rouge_stem" if stem else "rouge"
        timed(name, lambda: sum(scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hyps, refs)) / len(hyps))
    print(json.dumps({"seconds": seconds, "values": values}))


if __name__ == "__main__":
    main()
