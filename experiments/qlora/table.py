#!/usr/bin/env python3
"""Results of experiments/qlora/qlora.yaml (markdown on stdout; exit 1 when QLoRA misses the 5% goal).

    .venv/bin/python experiments/qlora/table.py runs/qlora [path/to/troupe]

1. The final validation loss (SFT responses) of bf16 LoRA and of QLoRA (NF4 base + the same adapters), and their
   ratio: the acceptance goal is QLoRA within 5% of bf16 LoRA.
2. Quantization-aware training: LM perplexity on the held-out documents of the fully fine-tuned fp32 model, of
   the same model quantized to int4 after training (PTQ), of the int4-QAT model in fake-quantized form, and of
   the QAT model converted to int4 (which must equal the fake-quantized one).
"""
import re
import subprocess
import sys
from pathlib import Path

import h5py

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from runlog import metric  # noqa: E402


def final_val_loss(run):
    with h5py.File(run / "log.h5", "r") as f:
        steps, values = metric(f, "eval/loss")
    return float(values[-1]), int(steps[-1]), sum(1 for _ in [0])


def trainable(run):
    with h5py.File(run / "log.h5", "r") as f:
        return f.attrs.get("status", "?")


def perplexity(troupe, model, tokens):
    out = subprocess.run([troupe, "eval", "perplexity", "-c", str(model), "--data", str(tokens), "--threads", "2"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"loss ([0-9.]+), perplexity ([0-9.]+)", out)
    return float(m.group(1)), float(m.group(2))


def main():
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/qlora")
    troupe = sys.argv[2] if len(sys.argv) > 2 else str(Path(__file__).resolve().parents[2] / "build/cli/troupe")
    lora, step, _ = final_val_loss(work / "sft_lora")
    qlora, _, _ = final_val_loss(work / "sft_qlora")
    ratio = qlora / lora
    print("| SFT (300 steps, rank-16 adapters on every linear) | validation loss |")
    print("|---|---|")
    print(f"| LoRA, bf16 autocast | {lora:.4f} |")
    print(f"| QLoRA, NF4 base (double-quantized scales) + bf16 adapters | {qlora:.4f} |")
    print(f"| QLoRA / LoRA | {ratio:.4f} ({100 * (ratio - 1):+.2f}%; goal within 5%) |")
    print()
    tokens = work / "tokens" / "val.bin"
    rows = [("full fine-tune, fp32", work / "sft_full"), ("full fine-tune, int4 after training (PTQ)",
                                                             work / "sft_full_int4"),
            ("int4 QAT, fake-quantized (as trained)", work / "sft_qat"),
            ("int4 QAT, converted to int4", work / "sft_qat_int4")]
    print("| model (int4: groups of 32) | held-out LM loss | perplexity |")
    print("|---|---|---|")
    for name, model in rows:
        loss, ppl = perplexity(troupe, model, tokens)
        print(f"| {name} | {loss:.4f} | {ppl:.3f} |")
    return 0 if abs(ratio - 1) <= 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
