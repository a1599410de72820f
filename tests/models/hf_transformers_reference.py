"""The Hugging Face `transformers` side of tests/models/hf_transformers_test.cpp (the venv's real package).

usage:
  hf_transformers_reference.py make DIR SEED TIED     random GPT2LMHeadModel -> DIR/hf via save_pretrained, plus
                                                     DIR/ids.bin, DIR/logits.bin, DIR/greedy.json
  hf_transformers_reference.py run DIR               loads DIR/hf with from_pretrained (a Troupe export); writes
                                                     DIR/logits.bin for DIR/ids.bin and DIR/greedy.json
ids.bin: "B T\\n" then int64 [B, T]; logits.bin: float32 [B, T, V]; greedy.json: {"prompt": [...], "tokens": [...]}
(16 new tokens from ids[0], generate(do_sample=False)).
"""
import json
import os
import sys

import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel


def read_ids(path):
    with open(path, "rb") as f:
        b, t = map(int, f.readline().split())
        return torch.from_numpy(np.frombuffer(f.read(), dtype=np.int64).reshape(b, t).copy())


def write_outputs(model, work, ids):
    model.eval()
    with torch.no_grad():
        logits = model(ids).logits.float()
        prompt = ids[:1, :8]
        out = model.generate(prompt, max_new_tokens=16, do_sample=False, pad_token_id=0,
                             attention_mask=torch.ones_like(prompt))
    logits.numpy().astype(np.float32).tofile(os.path.join(work, "logits.bin"))
    json.dump({"prompt": prompt[0].tolist(), "tokens": out[0, prompt.size(1):].tolist()},
              open(os.path.join(work, "greedy.json"), "w"))


def main():
    torch.set_num_threads(1)
    mode, work = sys.argv[1], sys.argv[2]
    if mode == "make":
        seed, tied = int(sys.argv[3]), sys.argv[4] == "1"
        torch.manual_seed(seed)
        cfg = GPT2Config(vocab_size=97, n_positions=64, n_embd=32, n_layer=3, n_head=4,
                         tie_word_embeddings=tied, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                         bos_token_id=None, eos_token_id=None)
        model = GPT2LMHeadModel(cfg)
        with torch.no_grad():  # noise everywhere (LayerNorm gains and biases too), large enough for varied tokens
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.3)
        model.save_pretrained(os.path.join(work, "hf"), safe_serialization=True)
        ids = torch.randint(0, cfg.vocab_size, (2, 24), generator=torch.Generator().manual_seed(seed))
        with open(os.path.join(work, "ids.bin"), "wb") as f:
            f.write(f"{ids.size(0)} {ids.size(1)}\n".encode())
            f.write(ids.numpy().astype(np.int64).tobytes())
        write_outputs(model, work, ids)
    elif mode == "run":
        model = GPT2LMHeadModel.from_pretrained(os.path.join(work, "hf"))
        write_outputs(model, work, read_ids(os.path.join(work, "ids.bin")))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
