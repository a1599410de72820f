"""`troupe eval metric` end to end: line-aligned files in, the reference packages' numbers out (sacrebleu's BLEU,
chrF++ and TER with their signatures, rouge-score's ROUGE-L with the stemmer, scikit-learn's accuracy and Brier score,
HumanEval's pass@k), CRLF files read as LF ones, and clear errors with exit code 2."""
import json
import os
import sys
import tempfile

import numpy as np
import sacrebleu
from rouge_score import rouge_scorer
from sklearn.metrics import accuracy_score, brier_score_loss

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cli_checks import check, run_checked, verdict  # noqa: E402

CLI = os.environ["TROUPE_CLI"]


def run(*args, expect=0):
    return run_checked([CLI, "eval", "metric", *args], expect)


def write(path, lines, newline="\n"):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(newline.join(lines) + newline)


def main():
    d = tempfile.mkdtemp(prefix="troupe-eval-metric-")
    hyps, refs = corpus.make_pairs(seed=31, n=400, refs=2)
    r1, r2 = [r[0] for r in refs], [r[1] for r in refs]
    write(f"{d}/h.txt", hyps)
    write(f"{d}/r1.txt", r1, newline="\r\n")  # CRLF: the same lines
    write(f"{d}/r2.txt", r2)
    ref_args = ["--hyp", f"{d}/h.txt", "--ref", f"{d}/r1.txt", "--ref", f"{d}/r2.txt"]

    for name, ref in (("bleu", sacrebleu.metrics.BLEU()), ("chrf++", sacrebleu.metrics.CHRF(word_order=2)),
                      ("ter", sacrebleu.metrics.TER())):
        score = ref.corpus_score(hyps, [r1, r2])
        run(name, *ref_args, "--json", f"{d}/{name}.json")
        out = json.load(open(f"{d}/{name}.json"))
        key = "bleu" if name == "bleu" else name
        check(abs(out["values"][key] - score.score) < 1e-9, f"{name}: {out['values'][key]} vs sacrebleu {score.score}")
        check(out["signature"] == str(ref.get_signature()), f"{name} signature {out['signature']} vs {ref.get_signature()}")

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    per = [scorer.score_multi([a, b], h)["rougeL"].fmeasure for h, a, b in zip(hyps, r1, r2)]
    run("rougeL", *ref_args, "--stem", "--sentence", "--json", f"{d}/rl.json")
    out = json.load(open(f"{d}/rl.json"))
    check(abs(out["values"]["rougeL"] - float(np.mean(per))) < 1e-9, "rougeL corpus mean")
    check(max(abs(a - b) for a, b in zip(out["per_example"], per)) < 1e-12, "rougeL per example")

    gold = ["pos", "neg", "neu", "pos", "neg"] * 20
    pred = ["pos", "pos", "neu", "neg", "neg"] * 20
    write(f"{d}/gold.txt", gold)
    write(f"{d}/pred.txt", pred)
    run("accuracy", "--hyp", f"{d}/pred.txt", "--ref", f"{d}/gold.txt", "--json", f"{d}/acc.json")
    check(abs(json.load(open(f"{d}/acc.json"))["values"]["accuracy"] - accuracy_score(gold, pred)) < 1e-12, "accuracy")

    rng = np.random.default_rng(3)
    p = rng.random(200)
    y = (rng.random(200) < p).astype(int)
    write(f"{d}/p.txt", [repr(float(x)) for x in p])
    write(f"{d}/y.txt", [str(int(x)) for x in y])
    run("brier", "--hyp", f"{d}/p.txt", "--ref", f"{d}/y.txt", "--json", f"{d}/brier.json")
    check(abs(json.load(open(f"{d}/brier.json"))["values"]["brier"] - brier_score_loss(y, p)) < 1e-12, "brier")

    write(f"{d}/nc.txt", ["10 3", "5 0", "20 20", "7 2"])
    run("pass@k", "--hyp", f"{d}/nc.txt", "--k", "1", "--k", "5", "--json", f"{d}/pk.json")
    want = np.mean([1 - np.prod(1 - 5 / np.arange(n - c + 1, n + 1)) if n - c >= 5 else 1.0
                    for n, c in ((10, 3), (5, 0), (20, 20), (7, 2))])
    check(abs(json.load(open(f"{d}/pk.json"))["values"]["pass@5"] - want) < 1e-12, "pass@5")

    r = run("blue", *ref_args, expect=2)
    check("unknown metric 'blue'" in r.stderr, f"unknown metric message: {r.stderr}")
    write(f"{d}/short.txt", r1[:3])
    r = run("bleu", "--hyp", f"{d}/h.txt", "--ref", f"{d}/short.txt", expect=2)
    check("has 3 lines" in r.stderr, f"length mismatch message: {r.stderr}")
    write(f"{d}/bad.txt", ["0.5", "x"])
    write(f"{d}/y2.txt", ["1", "0"])
    r = run("brier", "--hyp", f"{d}/bad.txt", "--ref", f"{d}/y2.txt", expect=2)
    check("bad.txt:2: expected a number" in r.stderr, f"bad number message: {r.stderr}")
    return verdict()


if __name__ == "__main__":
    sys.exit(main())
