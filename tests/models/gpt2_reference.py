"""Reference GPT-2 forward in plain PyTorch (nanoGPT-style), for the C++ parity test.

usage: gpt2_reference.py MODEL_DIR IDS_FILE OUT_FILE
  MODEL_DIR: config.json + model.safetensors as Hugging Face writes them (Conv1D weights [in, out])
  IDS_FILE:  int64 little-endian [B, T] with a JSON header line "B T\n" before the raw bytes
  OUT_FILE:  float32 little-endian logits [B, T, vocab]
The safetensors file is parsed by hand (the safetensors package is not in Debian 12).
"""
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64}


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        arr = np.frombuffer(data[begin:end], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def forward(w, cfg, ids):
    n_layer, n_head, d = cfg["n_layer"], cfg["n_head"], cfg["n_embd"]
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    B, T = ids.shape
    x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][torch.arange(T)]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(n_layer):
        p = f"transformer.h.{i}."
        h = F.layer_norm(x, (d,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]  # Conv1D: x @ W[in, out] + b
        q, k, v = qkv.split(d, dim=2)
        q = q.view(B, T, n_head, d // n_head).transpose(1, 2)
        k = k.view(B, T, n_head, d // n_head).transpose(1, 2)
        v = v.view(B, T, n_head, d // n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // n_head)
        att = att.masked_fill(~causal, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, d)
        x = x + (y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"])
        h = F.layer_norm(x, (d,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        m = F.gelu(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"], approximate="tanh")
        x = x + (m @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"])
    x = F.layer_norm(x, (d,), w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)
    head = w.get("lm_head.weight", w["transformer.wte.weight"])
    return x @ head.T


def main():
    model_dir, ids_file, out_file = sys.argv[1:4]
    cfg = json.load(open(model_dir + "/config.json"))
    w = {k: v.double() for k, v in load_safetensors(model_dir + "/model.safetensors").items()}
    with open(ids_file, "rb") as f:
        B, T = map(int, f.readline().split())
        ids = torch.from_numpy(np.frombuffer(f.read(), dtype=np.int64).reshape(B, T).copy())
    with torch.no_grad():
        logits = forward(w, cfg, ids)  # float64 reference
    logits.float().numpy().astype("<f4").tofile(out_file)


if __name__ == "__main__":
    main()
