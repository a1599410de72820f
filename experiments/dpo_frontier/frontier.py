#!/usr/bin/env python3
"""Python steps of the DPO-frontier reproduction (run.sh drives them; troupe does all training and evaluation).

  tokens  a token file of a seeded random Markov chain over the 8 ids: the reference policy's pretraining corpus
  prefs   preference pairs sampled from the reference's EXACT distribution (the CSV of `troupe eval exact
          --dump-csv`): prompt x uniform, y1, y2 ~ pi_ref(.|x) independently, label from Bradley-Terry on
          scale * r*: P(y1 > y2) = sigmoid(scale * (r*(y1) - r*(y2))); written as prompt_ids/chosen_ids/rejected_ids
  plot    every run's `troupe eval exact --json`, plus the frontier, into a CSV, a markdown table and a PNG
Not a trainer and not an evaluator of models: those are `troupe train` / `troupe run` / `troupe eval exact`.
"""
import argparse
import csv
import json
import os
import sys

import numpy as np


def cmd_tokens(a):
    rng = np.random.default_rng(a.seed)
    trans = rng.dirichlet(np.full(a.vocab, a.alpha), size=a.vocab)  # row i: P(next | i)
    ids = np.empty(a.count, dtype=np.uint16)
    ids[0] = rng.integers(a.vocab)
    u = rng.random(a.count)
    cum = trans.cumsum(1)
    for t in range(1, a.count):
        ids[t] = min(int(np.searchsorted(cum[ids[t - 1]], u[t])), a.vocab - 1)
    ids.tofile(a.out)
    meta = {"format": "troupe-tokens", "version": 1, "dtype": "uint16", "count": int(a.count),
            "vocab_size": a.vocab, "documents": 0, "separator": None, "tokenizer": "markov-chain",
            "sources": [f"frontier.py tokens --seed {a.seed} --alpha {a.alpha}"]}
    with open(a.out + ".json", "w") as f:
        json.dump(meta, f)
    print(f"{a.count} tokens of a Markov chain (Dirichlet({a.alpha}) rows, seed {a.seed}) -> {a.out}")


def load_distribution(path):
    """CSV of `troupe eval exact --dump-csv` -> prompts [N, P], responses [M, L], probs [N, M], reward [N, M]."""
    prompts, responses, rows = [], [], []
    with open(path) as f:
        r = csv.reader(f)
        next(r)
        for p, y, _lp, lr, rw in r:
            rows.append((p, y, float(lr), float(rw)))
    pidx, yidx = {}, {}
    for p, y, _, _ in rows:
        pidx.setdefault(p, len(pidx))
        yidx.setdefault(y, len(yidx))
    N, M = len(pidx), len(yidx)
    logp = np.full((N, M), -np.inf)
    reward = np.zeros((N, M))
    for p, y, lr, rw in rows:
        logp[pidx[p], yidx[y]] = lr
        reward[pidx[p], yidx[y]] = rw
    prompts = [list(map(int, p.split())) for p in pidx]
    responses = [list(map(int, y.split())) for y in yidx]
    probs = np.exp(logp)
    probs /= probs.sum(1, keepdims=True)  # float32 model log-probs: renormalise the rounding away
    return prompts, responses, probs, reward


def sample_pairs(prompts, responses, probs, reward, n, scale, rng):
    """n pairs: (prompt index, y1 index, y2 index, label y1 preferred, |Δr*|)."""
    N, M = probs.shape
    x = rng.integers(N, size=n)
    cum = probs.cumsum(1)
    y1 = np.minimum((cum[x] < rng.random(n)[:, None]).sum(1), M - 1)
    y2 = np.minimum((cum[x] < rng.random(n)[:, None]).sum(1), M - 1)
    dr = reward[x, y1] - reward[x, y2]
    first = rng.random(n) < 1 / (1 + np.exp(-scale * dr))
    return x, y1, y2, first, np.abs(dr)


def write_pairs(path, prompts, responses, x, y1, y2, first):
    with open(path, "w") as f:
        for i in range(len(x)):
            c, r = (y1[i], y2[i]) if first[i] else (y2[i], y1[i])
            f.write(json.dumps({"prompt_ids": prompts[x[i]], "chosen_ids": responses[c],
                                "rejected_ids": responses[r]}) + "\n")


def cmd_prefs(a):
    prompts, responses, probs, reward = load_distribution(a.distribution)
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    for name, n in (("train", a.pairs), ("val", a.val_pairs)):
        x, y1, y2, first, adr = sample_pairs(prompts, responses, probs, reward, n, a.scale, rng)
        write_pairs(os.path.join(a.out, name + ".jsonl"), prompts, responses, x, y1, y2, first)
        print(f"{name}: {n} pairs, {np.mean(adr > 0):.3f} with r*(y1) != r*(y2), "
              f"Bayes accuracy {np.mean(1 / (1 + np.exp(-a.scale * adr))):.4f}")


def cmd_plot(a):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front = json.load(open(a.frontier))
    opt = sorted(front["optimum"], key=lambda p: p["kl"])
    points = []  # (method, label, knob, kl, reward)
    for spec in a.runs:
        method, rest = spec.split("=", 1)  # METHOD=KNOB=PATH, where KNOB may itself hold '=' (beta=0.5)
        knob, path = rest.rsplit("=", 1)
        r = json.load(open(path))
        points.append((method, knob, r["policy"]["kl"], r["policy"]["reward"]))
    ref = front["reference"]
    # Frontier gap of a point: the optimum's reward at the same KL (linear interpolation) minus the point's.
    okl = np.array([p["kl"] for p in opt])
    orw = np.array([p["reward"] for p in opt])

    def gap(kl, rw):
        return float(np.interp(kl, okl, orw) - rw)

    with open(a.csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["method", "knob", "kl", "reward", "frontier_reward_at_kl", "gap"])
        w.writerow(["reference", "", f"{ref['kl']:.6f}", f"{ref['reward']:.6f}", "", ""])
        for p in opt:
            w.writerow(["optimum", f"beta={p['beta']:g}", f"{p['kl']:.6f}", f"{p['reward']:.6f}", "", ""])
        for m, k, kl, rw in points:
            w.writerow([m, k, f"{kl:.6f}", f"{rw:.6f}", f"{np.interp(kl, okl, orw):.6f}", f"{gap(kl, rw):.6f}"])
    with open(a.table, "w") as f:
        f.write("| method | knob | KL(π‖π_ref) | E[r*] | frontier E[r*] at that KL | gap (frontier − run) |\n|---|---|---|---|---|---|\n")
        f.write(f"| reference | | {ref['kl']:.4f} | {ref['reward']:.4f} | | |\n")
        for m, k, kl, rw in points:
            f.write(f"| {m} | {k} | {kl:.4f} | {rw:.4f} | {np.interp(kl, okl, orw):.4f} | {gap(kl, rw):+.4f} |\n")
        for m in sorted({p[0] for p in points}):
            g = [gap(kl, rw) for mm, _, kl, rw in points if mm == m]
            f.write(f"\nmean gap {m}: {np.mean(g):+.4f} over {len(g)} runs")
        f.write("\n")
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    ax.plot(okl, orw, "k-", lw=1.5, label=r"optimum $\pi^*_\beta \propto \pi_{ref}\,e^{r^*/\beta}$ (exact)")
    styles = {"DPO": ("o", "tab:blue"), "PPO (r*)": ("s", "tab:orange"), "PPO (RM)": ("^", "tab:green")}
    for m in sorted({p[0] for p in points}, key=lambda s: list(styles).index(s) if s in styles else 9):
        mk, col = styles.get(m, ("x", "tab:red"))
        xs = [p[2] for p in points if p[0] == m]
        ys = [p[3] for p in points if p[0] == m]
        ax.scatter(xs, ys, marker=mk, color=col, s=36, label=m, zorder=3)
    ax.scatter([ref["kl"]], [ref["reward"]], marker="*", color="gray", s=90, label="reference", zorder=3)
    ax.set_xlabel(r"KL($\pi\,\|\,\pi_{ref}$) (nats, exact, mean over prompts)")
    ax.set_ylabel(r"E$_\pi$[r*] (exact)")
    ax.set_title(a.title)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(a.png, dpi=110)
    print(open(a.table).read())
    print(f"-> {a.csv}, {a.png}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tokens")
    t.add_argument("--out", required=True)
    t.add_argument("--count", type=int, default=200000)
    t.add_argument("--vocab", type=int, default=8)
    t.add_argument("--alpha", type=float, default=1.0)
    t.add_argument("--seed", type=int, default=1)
    t.set_defaults(f=cmd_tokens)
    q = sub.add_parser("prefs")
    q.add_argument("--distribution", required=True)
    q.add_argument("--out", required=True)
    q.add_argument("--pairs", type=int, default=4096)
    q.add_argument("--val-pairs", type=int, default=512)
    q.add_argument("--scale", type=float, default=10.0)
    q.add_argument("--seed", type=int, default=2)
    q.set_defaults(f=cmd_prefs)
    g = sub.add_parser("plot")
    g.add_argument("--frontier", required=True)
    g.add_argument("--runs", nargs="+", required=True, help="METHOD=KNOB=eval.json ...")
    g.add_argument("--csv", required=True)
    g.add_argument("--table", required=True)
    g.add_argument("--png", required=True)
    g.add_argument("--title", default="Reward vs KL on the tiny pattern task")
    g.set_defaults(f=cmd_plot)
    a = p.parse_args()
    a.f(a)


if __name__ == "__main__":
    sys.exit(main())
