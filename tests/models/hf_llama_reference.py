"""The Hugging Face `transformers` side of tests/models/hf_llama_test.cpp (the venv's real package), one process for
every variant (transformers takes seconds to import).

usage: hf_llama_reference.py WORK make:NAME ... run:NAME ...  (hf_llama_test.cpp runs one process per family)
  make:NAME  a random tiny model of variant NAME (VARIANTS below), noise added to every parameter, saved with
             save_pretrained to WORK/NAME/hf (sharded when the variant gives a max_shard_size), plus WORK/NAME/ids.bin,
             logits.bin and greedy.json
  run:NAME   loads WORK/NAME/hf (a Troupe export) with AutoModelForCausalLM.from_pretrained; writes WORK/NAME/logits.bin
             for WORK/NAME/ids.bin and WORK/NAME/greedy.json
ids.bin: "B T\\n" then int64 [B, T]; logits.bin: float32 [B, T, V]; greedy.json: {"prompt", "tokens" (16 new tokens
from ids[0, :8], generate(do_sample=False)), "class", "loading" (run: from_pretrained's missing / unexpected /
mismatched keys)}.
"""
import json
import os
import sys

import numpy as np
import torch
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)

BASE = dict(vocab_size=101, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False,
            bos_token_id=None, eos_token_id=None, pad_token_id=None)
LLAMA = (LlamaConfig, LlamaForCausalLM)
QWEN2 = (Qwen2Config, Qwen2ForCausalLM)
MISTRAL = (MistralConfig, MistralForCausalLM)
# name -> (classes, config overrides, max_shard_size or None)
VARIANTS = {
    "llama_gqa": (LLAMA, {}, "20KB"),
    "llama_tied": (LLAMA, dict(tie_word_embeddings=True, num_key_value_heads=4), None),
    "llama_bias": (LLAMA, dict(attention_bias=True, mlp_bias=True, head_dim=16), None),
    "llama_linear": (LLAMA, dict(rope_parameters=dict(rope_type="linear", factor=2.0, rope_theta=5000.0)), None),
    # max_position_embeddings below the 24-token inputs, so that the dynamic scaling acts
    "llama_dynamic": (LLAMA, dict(max_position_embeddings=16,
                                  rope_parameters=dict(rope_type="dynamic", factor=2.0, rope_theta=10000.0)), None),
    "llama_llama3": (LLAMA, dict(head_dim=16, rope_parameters=dict(
        rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
        original_max_position_embeddings=16, rope_theta=10000.0)), None),
    "qwen2": (QWEN2, {}, "20KB"),
    "qwen2_window": (QWEN2, dict(use_sliding_window=True, sliding_window=5, max_window_layers=0), None),
    "mistral": (MISTRAL, dict(sliding_window=6), "20KB"),
    "mqa": (LLAMA, dict(hidden_size=64, num_attention_heads=8, num_key_value_heads=1, intermediate_size=96), None),
}


def read_ids(path):
    with open(path, "rb") as f:
        b, t = map(int, f.readline().split())
        return torch.from_numpy(np.frombuffer(f.read(), dtype=np.int64).reshape(b, t).copy())


def write_ids(path, ids):
    with open(path, "wb") as f:
        f.write(f"{ids.size(0)} {ids.size(1)}\n".encode())
        f.write(ids.numpy().astype(np.int64).tobytes())


def write_outputs(model, work, ids, loading=None):
    model.eval()
    with torch.no_grad():
        logits = model(ids).logits.float()
        prompt = ids[:1, :8]
        out = model.generate(prompt, max_new_tokens=16, do_sample=False, pad_token_id=0, eos_token_id=None,
                             attention_mask=torch.ones_like(prompt))
    logits.numpy().astype(np.float32).tofile(os.path.join(work, "logits.bin"))
    result = {"prompt": prompt[0].tolist(), "tokens": out[0, prompt.size(1):].tolist(),
              "class": type(model).__name__, "loading": loading or {}}
    with open(os.path.join(work, "greedy.json"), "w") as f:
        json.dump(result, f)


def make(work, name, seed):
    (config_class, model_class), overrides, shard = VARIANTS[name]
    torch.manual_seed(seed)
    model = model_class(config_class(**{**BASE, **overrides}))
    with torch.no_grad():  # noise everywhere (norm gains and biases too), large enough for varied greedy tokens
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    os.makedirs(work, exist_ok=True)
    kwargs = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(os.path.join(work, "hf"), **kwargs)
    ids = torch.randint(0, BASE["vocab_size"], (2, 24), generator=torch.Generator().manual_seed(seed))
    write_ids(os.path.join(work, "ids.bin"), ids)
    write_outputs(model, work, ids)


def run(work):
    model, info = AutoModelForCausalLM.from_pretrained(os.path.join(work, "hf"), output_loading_info=True)
    loading = {k: sorted(str(x) for x in v) for k, v in info.items() if k in
               ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    write_outputs(model, work, read_ids(os.path.join(work, "ids.bin")), loading)


def main():
    torch.set_num_threads(1)
    work = sys.argv[1]
    for i, arg in enumerate(sys.argv[2:]):
        mode, name = arg.split(":", 1)
        if mode == "make":
            make(os.path.join(work, name), name, 100 + i)
        elif mode == "run":
            run(os.path.join(work, name))
        else:
            sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
