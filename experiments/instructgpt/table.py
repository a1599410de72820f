#!/usr/bin/env python3
"""Results table of the InstructGPT pipeline (experiments/instructgpt/pipeline.yaml).

    .venv/bin/python experiments/instructgpt/table.py runs/instructgpt [--out experiments/instructgpt/results]

Collects, per policy (pretrain, SFT, PPO, PPO-ptx):
  - the true lexicon reward, win rate over SFT and KL to SFT on held-out prompts (<run>/summary.json, written by
    the `evaluate` stage: `troupe eval policies`);
  - the pretraining validation loss and perplexity on <run>/tokens/val.bin (the `ppl_*` stages' logs:
    `troupe eval perplexity`), i.e. the "alignment tax";
  - for the PPO runs, the learned-RM reward, the KL to SFT and the ptx loss over the last 5 iterations (log.h5).
Writes results.md (Markdown table) and results.csv into --out, and prints the Markdown.
"""
import argparse
import csv
import json
import re
from pathlib import Path

import h5py
import numpy as np

LAST = 5
POLICIES = [("pretrain", "pretrain", None), ("SFT", "sft", "reference"), ("PPO", "ppo", "ppo"),
            ("PPO-ptx", "ppo_ptx", "ppo_ptx")]
PPL = re.compile(r"loss ([0-9.]+), perplexity ([0-9.]+)")


def last_mean(f, name):
    key = f"metrics/{name}/value"
    return float(np.mean(f[key][-LAST:])) if key in f else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="the pipeline's run directory (runs/instructgpt)")
    ap.add_argument("--out", type=Path, help="directory for results.md and results.csv")
    args = ap.parse_args()

    summary = json.loads((args.run / "summary.json").read_text())
    cols = summary["columns"]
    evals = {row[0]: dict(zip(cols, row)) for row in summary["rows"]}

    rows = []
    for label, name, eval_name in POLICIES:
        r = {"policy": label}
        e = evals.get(eval_name, {}) if eval_name else {}
        r["lexicon_reward"] = e.get("reward_mean", float("nan"))
        r["win_rate_vs_sft"] = e.get("win_rate", float("nan"))
        r["kl_to_sft"] = e.get("kl_to_reference", float("nan"))
        r["eos_rate"] = e.get("eos_rate", float("nan"))
        m = PPL.search((args.run / "stages" / f"ppl_{name}.log").read_text())
        r["pretrain_val_loss"] = float(m.group(1)) if m else float("nan")
        r["pretrain_val_ppl"] = float(m.group(2)) if m else float("nan")
        if name.startswith("ppo"):
            with h5py.File(args.run / name / "log.h5", "r") as f:
                r["rm_reward_last5"] = last_mean(f, "reward/mean")
                r["train_kl_last5"] = last_mean(f, "kl/mean")
                r["ptx_loss_last5"] = last_mean(f, "actor/ptx_loss")
        else:
            r["rm_reward_last5"] = r["train_kl_last5"] = r["ptx_loss_last5"] = float("nan")
        rows.append(r)

    sft_loss = rows[1]["pretrain_val_loss"]
    for r in rows:
        r["alignment_tax_vs_sft"] = r["pretrain_val_loss"] - sft_loss

    def f(x, d=3):
        return "–" if x != x else f"{x:.{d}f}"

    lines = [
        "| policy | lexicon reward (held-out) | win rate vs SFT | KL to SFT (nats/seq) | EOS rate "
        "| pretraining val loss | val perplexity | Δ val loss vs SFT | RM reward, last 5 iters | train KL, last 5 "
        "| ptx loss, last 5 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['policy']} | {f(r['lexicon_reward'])} | {f(r['win_rate_vs_sft'])} | {f(r['kl_to_sft'], 2)} "
                     f"| {f(r['eos_rate'], 2)} | {f(r['pretrain_val_loss'], 4)} | {f(r['pretrain_val_ppl'], 1)} "
                     f"| {f(r['alignment_tax_vs_sft'], 4)} | {f(r['rm_reward_last5'])} | {f(r['train_kl_last5'], 2)} "
                     f"| {f(r['ptx_loss_last5'])} |")
    md = "\n".join(lines)
    print(md)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.md").write_text(md + "\n")
        with open(args.out / "results.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
