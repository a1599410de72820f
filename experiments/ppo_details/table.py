#!/usr/bin/env python3
"""Results table of the PPO-details ablation sweep (experiments/ppo_details/sweep.yaml) from the runs' log.h5.

    .venv/bin/python experiments/ppo_details/table.py runs/ppo-details [--csv OUT.csv] > table.md

Runs are grouped by how their resolved config differs from the baseline's (every key except seed and run.*); the
baseline is the group whose config has no difference from base.yaml's values. Per run: the pattern reward
(reward/raw_mean, before the EOS penalty and clipping, so comparable across ablations), the reward PPO optimised
(reward/mean), the sequence KL to the initial policy (kl/mean) and the EOS rate, each as the mean over the last
5 iterations, and the first iteration whose pattern reward is >= 0.8. Each cell: mean ± sample std over seeds.
"""
import argparse
import csv
import sys
from pathlib import Path

import h5py
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from runlog import mean_std, metric  # noqa: E402

LAST = 5
THRESHOLD = 0.8


def flatten(tree, prefix=""):
    out = {}
    for k, v in (tree or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def read_run(run_dir):
    with h5py.File(run_dir / "log.h5", "r") as f:
        config = flatten(yaml.safe_load(f.attrs["config"]))
        status = f.attrs.get("status", "")
        m = {}
        for name in ("reward/raw_mean", "reward/mean", "kl/mean", "response/eos_rate"):
            m[name] = metric(f, name)
    return config, status, m


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="the sweep directory (runs/ppo-details)")
    ap.add_argument("--csv", type=Path, help="also write one row per run to this CSV")
    ap.add_argument("--plot", type=Path, help="also draw each group's mean curve (± std over seeds) to this PNG")
    args = ap.parse_args()

    runs = sorted((p for p in args.root.iterdir() if (p / "log.h5").exists()),
                  key=lambda p: int(p.name.split("_")[0]) if p.name.split("_")[0].isdigit() else 1 << 30)
    if not runs:
        sys.exit(f"no runs with a log.h5 under {args.root}")
    data = [(p, *read_run(p)) for p in runs]
    ignore = lambda k: k == "seed" or k.startswith("run.")
    # The baseline: the config most runs share key by key (every ablation changes one key; the baseline none).
    keys = sorted({k for _, c, _, _ in data for k in c if not ignore(k)})
    baseline = {}
    for k in keys:
        vals = [repr(c.get(k)) for _, c, _, _ in data]
        baseline[k] = max(set(vals), key=vals.count)
    groups = {}
    for p, c, status, m in data:
        diff = [f"{k}={c.get(k)}" for k in keys if repr(c.get(k)) != baseline[k]]
        name = ", ".join(diff) if diff else "baseline (all details on)"
        groups.setdefault(name, []).append((p, c, status, m))

    rows = []
    table = []
    for name, members in groups.items():
        cols = {"raw": [], "rew": [], "kl": [], "eos": [], "reach": []}
        for p, c, status, m in members:
            steps, raw = m["reward/raw_mean"]
            cols["raw"].append(float(np.mean(raw[-LAST:])))
            cols["rew"].append(float(np.mean(m["reward/mean"][1][-LAST:])))
            cols["kl"].append(float(np.mean(m["kl/mean"][1][-LAST:])))
            cols["eos"].append(float(np.mean(m["response/eos_rate"][1][-LAST:])))
            hit = np.nonzero(raw >= THRESHOLD)[0]
            cols["reach"].append(float(steps[hit[0]]) if len(hit) else None)
            rows.append({"group": name, "run": p.name, "seed": c.get("seed"), "status": status,
                         "iterations": int(steps[-1]), "pattern_reward_last5": cols["raw"][-1],
                         "ppo_reward_last5": cols["rew"][-1], "kl_last5": cols["kl"][-1],
                         "eos_rate_last5": cols["eos"][-1],
                         "iters_to_0.8": "" if cols["reach"][-1] is None else int(cols["reach"][-1])})
        reached = [r for r in cols["reach"] if r is not None]
        reach = mean_std(reached, 1) + ("" if len(reached) == len(members) else f" ({len(reached)}/{len(members)} reached)")
        table.append((name, len(members), mean_std(cols["raw"]), mean_std(cols["rew"]), mean_std(cols["kl"], 2),
                      mean_std(cols["eos"], 2), reach))

    print(f"| ablation (vs baseline) | seeds | pattern reward, last {LAST} | PPO reward (after EOS penalty/clip), last {LAST} "
          f"| KL to init (nats/seq), last {LAST} | EOS rate, last {LAST} | iterations to pattern reward ≥ {THRESHOLD} |")
    print("|---|---|---|---|---|---|---|")
    for t in table:
        print("| " + " | ".join(str(x) for x in t) + " |")
    if args.plot:
        plot(groups, args.plot)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)


def plot(groups, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [("reward/raw_mean", "pattern reward"), ("response/eos_rate", "EOS rate"), ("kl/mean", "KL to init (nats/seq)")]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5))
    for ax, (key, label) in zip(axes, panels):
        for name, members in groups.items():
            n = min(len(m[key][1]) for _, _, _, m in members)
            ys = np.stack([m[key][1][:n] for _, _, _, m in members])
            steps = members[0][3][key][0][:n]
            mean, std = ys.mean(0), ys.std(0)
            short = name if len(name) < 40 else name[:37] + "..."
            (line,) = ax.plot(steps, mean, label=f"{short} (n={len(members)})", lw=1.5)
            ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.12)
        ax.set_xlabel("PPO iteration")
        ax.set_ylabel(label)
        ax.set_title(f"{label}: mean ± std over seeds")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


if __name__ == "__main__":
    main()
