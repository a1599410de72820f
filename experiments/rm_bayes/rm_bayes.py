#!/usr/bin/env python3
"""Python steps of the reward-model-vs-Bayes-limit experiment (run.sh drives them; troupe trains the RMs).

  data  synthetic preference pairs from a known r*: prompt x uniform over [1, 8)^2, responses y1, y2 uniform over
        [0, 8)^4 (the reference policy is uniform), label from Bradley-Terry on scale * r*, r* = the fraction of the
        4 tokens matching the pattern 3 5 1 6. Training sets of each N are nested prefixes of one stream; the held-out
        set is separate. Prints the Bayes limit: exactly, E[sigma(scale |r*(y1) - r*(y2)|)] over the uniform
        reference (matches ~ Binomial(4, 1/8) per response), and the same mean on the held-out pairs.
  plot  final eval/accuracy of every RM run (log.h5) against N, with the Bayes limit: CSV, markdown table, PNG.
"""
import argparse
import csv
import glob
import json
import math
import os
import re
import sys

import numpy as np

PATTERN = np.array([3, 5, 1, 6])
V = 8


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def exact_bayes(scale):
    L = len(PATTERN)
    pk = [math.comb(L, k) * (1 / V) ** k * (1 - 1 / V) ** (L - k) for k in range(L + 1)]
    return sum(pk[i] * pk[j] * sigmoid(scale * abs(i - j) / L) for i in range(L + 1) for j in range(L + 1))


def make_pairs(n, scale, rng):
    x = rng.integers(1, V, size=(n, 2))
    y1 = rng.integers(0, V, size=(n, len(PATTERN)))
    y2 = rng.integers(0, V, size=(n, len(PATTERN)))
    r1 = (y1 == PATTERN).mean(1)
    r2 = (y2 == PATTERN).mean(1)
    first = rng.random(n) < sigmoid(scale * (r1 - r2))
    return x, y1, y2, first, np.abs(r1 - r2)


def write(path, x, y1, y2, first):
    with open(path, "w") as f:
        for i in range(len(x)):
            c, r = (y1[i], y2[i]) if first[i] else (y2[i], y1[i])
            f.write(json.dumps({"prompt_ids": x[i].tolist(), "chosen_ids": c.tolist(), "rejected_ids": r.tolist()}) + "\n")


def cmd_data(a):
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    sizes = [int(s) for s in a.sizes.split(",")]
    x, y1, y2, first, _ = make_pairs(max(sizes), a.scale, rng)
    for n in sizes:
        write(os.path.join(a.out, f"train_{n}.jsonl"), x[:n], y1[:n], y2[:n], first[:n])
    vx, vy1, vy2, vfirst, vadr = make_pairs(a.val_pairs, a.scale, rng)
    write(os.path.join(a.out, "val.jsonl"), vx, vy1, vy2, vfirst)
    bayes = {"scale": a.scale, "exact": exact_bayes(a.scale), "heldout_expected": float(sigmoid(a.scale * vadr).mean()),
             "heldout_ties": float((vadr == 0).mean()), "val_pairs": a.val_pairs}
    with open(os.path.join(a.out, "bayes.json"), "w") as f:
        json.dump(bayes, f, indent=1)
    print(f"train sets {sizes}, {a.val_pairs} held-out pairs; Bayes limit exact {bayes['exact']:.4f}, "
          f"on the held-out pairs {bayes['heldout_expected']:.4f} ({bayes['heldout_ties']:.3f} ties)")


def final_metric(log, name):
    import h5py
    with h5py.File(log, "r") as f:
        return float(f[f"metrics/{name}/value"][-1])


def cmd_plot(a):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bayes = json.load(open(a.bayes))
    rows = []
    for run in sorted(glob.glob(os.path.join(a.runs, "*", "log.h5"))):
        label = os.path.basename(os.path.dirname(run))
        n = int(re.search(r"train_(\d+)\.jsonl", label).group(1))
        seed = int(re.search(r"seed-(\d+)", label).group(1))
        rows.append((n, seed, final_metric(run, "eval/accuracy"), final_metric(run, "eval/loss"),
                     final_metric(run, "train/accuracy")))
    rows.sort()
    sizes = sorted({r[0] for r in rows})
    mean = {n: np.mean([r[2] for r in rows if r[0] == n]) for n in sizes}
    sd = {n: np.std([r[2] for r in rows if r[0] == n]) for n in sizes}
    with open(a.csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["pairs", "seed", "heldout_accuracy", "heldout_loss", "train_accuracy", "bayes_exact",
                    "bayes_heldout"])
        for r in rows:
            w.writerow([r[0], r[1], f"{r[2]:.4f}", f"{r[3]:.4f}", f"{r[4]:.4f}", f"{bayes['exact']:.4f}",
                        f"{bayes['heldout_expected']:.4f}"])
    with open(a.table, "w") as f:
        f.write("| training pairs N | held-out accuracy (mean ± sd over seeds) | per seed | Bayes limit |\n"
                "|---|---|---|---|\n")
        for n in sizes:
            per = ", ".join(f"{r[2]:.3f}" for r in rows if r[0] == n)
            f.write(f"| {n} | {mean[n]:.4f} ± {sd[n]:.4f} | {per} | {bayes['exact']:.4f} |\n")
        f.write(f"\nBayes limit: exact {bayes['exact']:.4f}; expected on these {bayes['val_pairs']} held-out pairs "
                f"{bayes['heldout_expected']:.4f} ({100 * bayes['heldout_ties']:.1f}% of them have r*(y1) = r*(y2), "
                "a coin flip for any model)\n")
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    ax.errorbar(sizes, [mean[n] for n in sizes], yerr=[sd[n] for n in sizes], marker="o", capsize=3,
                label="reward model (mean ± sd over seeds)")
    for r in rows:
        ax.scatter([r[0]], [r[2]], color="tab:blue", alpha=0.35, s=12)
    ax.axhline(bayes["exact"], color="k", ls="--", label=f"Bayes limit E[σ(s|Δr*|)] = {bayes['exact']:.3f}")
    ax.axhline(0.5, color="gray", ls=":", label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training pairs N")
    ax.set_ylabel(f"held-out pairwise accuracy ({bayes['val_pairs']} pairs)")
    ax.set_title(f"Reward-model accuracy vs the Bayes limit (BT labels, scale {bayes['scale']:g})")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(a.png, dpi=110)
    print(open(a.table).read())
    print(f"-> {a.csv}, {a.png}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data")
    d.add_argument("--out", required=True)
    d.add_argument("--sizes", default="64,256,1024,4096")
    d.add_argument("--val-pairs", type=int, default=2048)
    d.add_argument("--scale", type=float, default=10.0)
    d.add_argument("--seed", type=int, default=5)
    d.set_defaults(f=cmd_data)
    g = sub.add_parser("plot")
    g.add_argument("--runs", required=True)
    g.add_argument("--bayes", required=True)
    g.add_argument("--csv", required=True)
    g.add_argument("--table", required=True)
    g.add_argument("--png", required=True)
    g.set_defaults(f=cmd_plot)
    a = p.parse_args()
    a.f(a)


if __name__ == "__main__":
    sys.exit(main())
