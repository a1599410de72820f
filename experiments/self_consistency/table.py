#!/usr/bin/env python3
"""Results of experiments/self_consistency/run.sh from the evaluations' results.json and samples (markdown on stdout).

    .venv/bin/python experiments/self_consistency/table.py runs/self-consistency

Accuracy (exact match of the extracted answer on the 200 held-out problems) of each model and decoding, as mean ±
sample std over the seeds; then, pooled over seeds, the accuracy of the 16-sample majority answer by its vote share
(the share of the 16 sampled answers that agree with it): self-consistency's confidence.
"""
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

MODELS = [("answer", "answer-only"), ("cot", "chain of thought, one working"),
          ("cot-varied", "chain of thought, varied workings")]
ROWS = {
    "answer": [("greedy", "answer_only_greedy", "answer"),
               *[(f"sample, majority of {n}", "answer_only_vote", f"maj@{n}") for n in (1, 2, 4, 8, 16)]],
    "cot": [("greedy (after ####)", "cot_greedy", "strict-match"),
            ("greedy (last number)", "cot_greedy", "flexible-extract"),
            *[(f"sample, majority of {n}", "cot_self_consistency", f"maj@{n}") for n in (1, 2, 4, 8, 16)]],
}
ROWS["cot-varied"] = ROWS["cot"]
VOTE_TASK = {"answer": "answer_only_vote", "cot": "cot_self_consistency", "cot-varied": "cot_self_consistency"}


def fmt(values):
    v = np.asarray(values, dtype=float)
    if len(v) == 1:
        return f"{v[0]:.3f}"
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def main():
    work = Path(sys.argv[1])
    results = defaultdict(list)  # (format, task, metric) -> [per seed]
    seeds = set()
    for res in sorted(work.glob("eval-*-seed-*/results.json")):
        fmt_name, seed = res.parent.name[len("eval-"):].rsplit("-seed-", 1)
        seeds.add(seed)
        for task, r in json.load(open(res))["results"].items():
            for metric, value in r["metrics"].items():
                results[(fmt_name, task, metric)].append(value)
    if not results:
        sys.exit(f"{work}: no eval-*-seed-*/results.json (run experiments/self_consistency/run.sh first)")
    print(f"| model | decoding | accuracy ({len(seeds)} seeds) | vote share |")
    print("|---|---|---|---|")
    for fmt_name, model in MODELS:
        for decoding, task, pipeline in ROWS[fmt_name]:
            acc = results.get((fmt_name, task, f"exact_match,{pipeline}"))
            share = results.get((fmt_name, task, f"vote_share,{pipeline}"))
            if acc:
                print(f"| {model} | {decoding} | {fmt(acc)} | {fmt(share) if share else '–'} |")
    print()
    print("Accuracy of the majority answer of 16 by its vote share (pooled over seeds):")
    print()
    print("| model | vote share | problems | accuracy |")
    print("|---|---|---|---|")
    bins = [(0.0, 0.5), (0.5, 0.75), (0.75, 1.0), (1.0, 1.0)]
    for fmt_name, model in MODELS:
        shares, correct = [], []
        for samples in sorted(work.glob(f"eval-{fmt_name}-seed-*/samples_{VOTE_TASK[fmt_name]}.jsonl")):
            for line in open(samples):
                s = json.loads(line)
                shares.append(s["filtered"]["maj@16"]["vote_share"])
                correct.append(s["values"]["exact_match,maj@16"])
        shares, correct = np.asarray(shares), np.asarray(correct)
        for lo, hi in bins:
            pick = (shares == 1.0) if lo == hi else (shares > lo) & (shares <= hi) & (shares < 1.0)
            label = "1 (unanimous)" if lo == hi else f"({lo:g}, {hi:g}]" if hi < 1 else f"({lo:g}, 1)"
            if pick.any():
                print(f"| {model} | {label} | {int(pick.sum())} | {correct[pick].mean():.3f} |")


if __name__ == "__main__":
    main()
