#!/usr/bin/env python3
"""Results of experiments/rl_arithmetic/run.sh from the runs' log.h5 (markdown on stdout).

    .venv/bin/python experiments/rl_arithmetic/table.py runs/rl-arithmetic
    .venv/bin/python experiments/rl_arithmetic/table.py runs/rl-arithmetic/length --length

Per run: held-out sampled accuracy (eval/reward_mean on 200 test problems) before RL, after 20, 40 and 60
iterations (2560, 5120, 7680 samples); the wall-clock seconds of the 60 iterations (sum of time/iteration_s); the
mean response length of unrewarded (wrong) and rewarded (right) responses over the last 10 iterations and its
change from the first 10 (--length: the first-10 and last-10 lengths of wrong and right responses instead of the
time and staleness). Runs named <algo>_seed-<n> are averaged over seeds (mean ± sample std).
"""
import sys
from collections import defaultdict
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from runlog import mean_std, metric  # noqa: E402


def summarise(run):
    with h5py.File(run / "log.h5", "r") as f:
        steps, acc = metric(f, "eval/reward_mean")
        out = {f"acc@{int(s)}": v for s, v in zip(steps, acc)}
        out["seconds"] = float(np.sum(metric(f, "time/iteration_s")[1]))
        for kind in ("unrewarded", "rewarded"):
            v = metric(f, f"response/length_{kind}_mean")[1]
            if len(v) >= 20:
                out[f"len0_{kind}"] = float(np.mean(v[:10]))
                out[f"len_{kind}"] = float(np.mean(v[-10:]))
                out[f"dlen_{kind}"] = float(np.mean(v[-10:]) - np.mean(v[:10]))
        st = metric(f, "async/staleness")[1]
        if len(st):
            out["staleness"] = float(np.mean(st))
    return out


def main():
    root = Path(sys.argv[1])
    groups = defaultdict(list)
    for run in sorted(p for p in root.iterdir() if (p / "log.h5").exists() and p.name != "sft"):
        name = run.name.split("_seed-")[0]
        groups[name].append(summarise(run))
    accs = sorted({k for runs in groups.values() for r in runs for k in r if k.startswith("acc@")},
                  key=lambda k: int(k[4:]))
    if "--length" in sys.argv:  # the length reproduction: wrong and right answers' lengths, first and last 10
        cols = accs + ["len0_unrewarded", "len_unrewarded", "dlen_unrewarded", "len0_rewarded", "len_rewarded"]
    else:
        cols = accs + ["seconds", "len_unrewarded", "dlen_unrewarded", "len_rewarded", "staleness"]
    print("| run | seeds | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for name, runs in groups.items():
        print(f"| {name} | {len(runs)} | " + " | ".join(mean_std([r.get(c) for r in runs]) for c in cols) + " |")


if __name__ == "__main__":
    main()
