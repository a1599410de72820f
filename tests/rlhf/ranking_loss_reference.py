"""Reference for rlhf::ranking_loss (tests/rlhf/ranking_loss_test.cpp): the InstructGPT reward-model loss written
the slow, obvious way in Python torch (float64), one pair at a time, with its gradient from autograd. Not Troupe code.

usage: ranking_loss_reference.py IN.json OUT.json
IN:  {"rewards": [[...]], "ranks": [[...]], "mask": [[0/1...]]}   (B, K)
OUT: {"loss": x, "per_prompt": [B], "pairs": [B], "grad": [[...]]} (grad of loss w.r.t. rewards, (B, K))
"""
import json
import sys

import torch
import torch.nn.functional as F


def main(src, dst):
    with open(src) as f:
        data = json.load(f)
    rewards = torch.tensor(data["rewards"], dtype=torch.float64, requires_grad=True)
    ranks, mask = data["ranks"], data["mask"]
    per_prompt, pairs = [], []
    for b, row in enumerate(ranks):
        real = [k for k in range(len(row)) if mask[b][k]]
        terms = [F.logsigmoid(rewards[b, w] - rewards[b, l]) for w in real for l in real if row[w] < row[l]]
        pairs.append(len(terms))
        per_prompt.append(-torch.stack(terms).mean() if terms else torch.zeros((), dtype=torch.float64))
    with_pairs = [p for p, n in zip(per_prompt, pairs) if n > 0]
    loss = torch.stack(with_pairs).mean() if with_pairs else (rewards * 0).sum()
    loss.backward()
    out = {"loss": loss.item(), "per_prompt": [p.item() for p in per_prompt], "pairs": pairs,
           "grad": rewards.grad.tolist()}
    with open(dst, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
