"""Peer of `troupe bench train`: the same GPT-2 architecture written nanoGPT-style in PyTorch 2.x (the venv's
torch): scaled_dot_product_attention, fused AdamW, and optionally torch.compile (inductor); trained on the same
batches from the same initial weights with the same AdamW settings.

usage: train_peer.py WORK_DIR fp32|bf16 THREADS [eager|compile [DEVICE]]   (DEVICE: cpu (default), cuda, cuda:N)
  WORK_DIR/init/{config.json, model.safetensors}: initial weights (Hugging Face layout, written by Troupe)
  WORK_DIR/batches.bin: int64 [steps, B, T+1] token windows
  WORK_DIR/settings.json: lr, weight_decay, betas, eps, grad_clip, warmup (untimed steps)
prints one JSON line: {"seconds": [per timed step], "loss": [per step]}
"""
import json
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def load_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[b:end], dtype=np.float32).reshape(e["shape"]).copy())
    return out


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.ln_1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q = q.view(B, T, self.h, C // self.h).transpose(1, 2)
        k = k.view(B, T, self.h, C // self.h).transpose(1, 2)
        v = v.view(B, T, self.h, C // self.h).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, L = cfg["n_embd"], cfg["n_layer"]
        self.wte = nn.Embedding(cfg["vocab_size"], d)
        self.wpe = nn.Embedding(cfg["n_positions"], d)
        self.h = nn.ModuleList([Block(d, cfg["n_head"]) for _ in range(L)])
        self.ln_f = nn.LayerNorm(d)

    def forward(self, idx, targets):
        T = idx.size(1)
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for b in self.h:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))


def load_init(model, w, L):
    sd = {"wte.weight": w["transformer.wte.weight"], "wpe.weight": w["transformer.wpe.weight"],
          "ln_f.weight": w["transformer.ln_f.weight"], "ln_f.bias": w["transformer.ln_f.bias"]}
    for i in range(L):
        p = f"transformer.h.{i}."
        for ours, theirs, conv in [("ln_1", "ln_1", False), ("ln_2", "ln_2", False), ("c_attn", "attn.c_attn", True),
                                   ("c_proj", "attn.c_proj", True), ("c_fc", "mlp.c_fc", True),
                                   ("mlp_proj", "mlp.c_proj", True)]:
            sd[f"h.{i}.{ours}.weight"] = w[p + theirs + ".weight"].t() if conv else w[p + theirs + ".weight"]
            sd[f"h.{i}.{ours}.bias"] = w[p + theirs + ".bias"]
    model.load_state_dict(sd, strict=False)


def main():
    work, dtype, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    mode = sys.argv[4] if len(sys.argv) > 4 else "eager"
    device = torch.device(sys.argv[5] if len(sys.argv) > 5 else "cpu")
    torch.set_num_threads(threads)
    cfg = json.load(open(work + "/init/config.json"))
    s = json.load(open(work + "/settings.json"))
    model = GPT(cfg)
    load_init(model, load_safetensors(work + "/init/model.safetensors"), cfg["n_layer"])
    model.to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith(("wte", "wpe"))]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and not n.startswith(("wte", "wpe")))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": s["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=s["lr"], betas=tuple(s["betas"]), eps=s["eps"], fused=True)
    step_model = torch.compile(model) if mode == "compile" else model  # compiles in the first (untimed) step
    raw = open(work + "/batches.bin", "rb")
    steps, B, T1 = map(int, raw.readline().split())
    batches = torch.from_numpy(np.frombuffer(raw.read(), dtype=np.int64).reshape(steps, B, T1).copy()).to(device)
    seconds, losses = [], []
    for step in range(steps):
        t0 = time.perf_counter()
        x, y = batches[step, :, :-1], batches[step, :, 1:]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            loss = step_model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s["grad_clip"])
        opt.step()
        losses.append(loss.item())
        if step >= s["warmup"]:
            seconds.append(time.perf_counter() - t0)
    print(json.dumps({"seconds": seconds, "loss": losses}))


if __name__ == "__main__":
    main()
