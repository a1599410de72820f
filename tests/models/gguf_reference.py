"""Reference side of tests/models/gguf_test.cpp: reads Troupe's GGUF exports with the `gguf` package (GGUFReader) and
checks them against the model's own weights mapped the way llama.cpp's convert_hf_to_gguf.py maps them (gguf's
TensorNameMap, LlamaModel.permute, its per-tensor type rules, gguf.quants for the encodings), and runs them in
llama.cpp (llama-cpp-python) for the parity test. Not a converter: it only reads.

  check DIR...  each DIR holds model.gguf, troupe.safetensors (Troupe parameter names) and meta.json (config, file type,
              the tokenizer key/values written); exits 0 when every check passes, else prints what differs.
  llama DIR   DIR holds model.gguf and prompts.json (prompts [[ids...], ...], n_new, n_ctx, kv_cache "f32" or
              "f16": the KV cache type); writes llama.json: per prompt the
              greedy continuation (eval + argmax, and Llama.generate at temperature 0) and the logits of every
              evaluated position.
"""
import json
import math
import sys

import numpy as np
import torch
from safetensors.numpy import load_file

import gguf
from gguf import GGMLQuantizationType as Q

FILE_TYPES = {"f32": (Q.F32, 0), "f16": (Q.F16, 1), "bf16": (Q.BF16, 32), "q8_0": (Q.Q8_0, 7)}
ARCHS = {"gpt2": gguf.MODEL_ARCH.GPT2, "llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2}
failures = []


def expect(cond, what):
    if not cond:
        failures.append(what)


def field_value(field):
    """A metadata field as a Python value (strings decoded, arrays as lists)."""
    return field.contents()


def permute(w, n_head, n_head_kv):  # convert_hf_to_gguf LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def expected_tensors(meta, params):
    """GGUF name -> (fp32 data in torch order, GGML type) as convert_hf_to_gguf would write the model."""
    cfg, arch = meta["config"], meta["arch"]
    tmap = gguf.get_tensor_name_map(ARCHS[arch], cfg["n_layer"])
    qtype = FILE_TYPES[meta["type"]][0]
    out = {}
    for name, data in params.items():
        new_name = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
        assert new_name is not None, f"no gguf name for {name}"
        if arch == "llama" and name.endswith(("q_proj.weight", "q_proj.bias")):
            data = permute(data, cfg["n_head"], cfg["n_head"])
        if arch == "llama" and name.endswith(("k_proj.weight", "k_proj.bias")):
            data = permute(data, cfg["n_head"], meta["n_kv_head"])
        out[new_name] = data
    if arch == "gpt2" and not cfg["bias"]:
        for i in range(cfg["n_layer"]):
            for part, n in (("attn_norm", 1), ("attn_qkv", 3), ("attn_output", 1), ("ffn_norm", 1), ("ffn_down", 1)):
                out[f"blk.{i}.{part}.bias"] = np.zeros(n * cfg["n_embd"], np.float32)
            out[f"blk.{i}.ffn_up.bias"] = np.zeros(4 * cfg["n_embd"], np.float32)
        out["output_norm.bias"] = np.zeros(cfg["n_embd"], np.float32)
    if cfg.get("arch") == "llama" and cfg["rope_scaling"] == "llama3":
        out["rope_freqs.weight"] = llama3_factors(cfg, meta["head_dim"])
    typed = {}
    for name, data in out.items():
        if data.ndim <= 1 or name.endswith("_norm.weight") or name == "position_embd.weight":
            t = Q.F32
        elif name[-7:] != ".weight":
            t = Q.F32
        else:
            t = qtype
        if t == Q.Q8_0 and data.shape[-1] % 32 != 0:
            t = Q.F16  # the converter's QuantError fallback
        typed[name] = (np.ascontiguousarray(data, dtype=np.float32), t)
    return typed


def llama3_factors(cfg, dim):  # convert_hf_to_gguf LlamaModel.generate_extra_tensors
    base = cfg["rope_theta"]
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    factor, low, high = cfg["rope_factor"], cfg["rope_low_freq_factor"], cfg["rope_high_freq_factor"]
    old = cfg["rope_original_context"] or cfg["block_size"]
    low_wavelen, high_wavelen = old / low, old / high
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            factors.append(1)
        elif wavelen > low_wavelen:
            factors.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return torch.tensor(factors, dtype=torch.float32).numpy()


def expected_metadata(meta):
    cfg, arch = meta["config"], meta["arch"]
    kv = {
        "general.architecture": arch,
        "general.name": meta["name"],
        "general.file_type": FILE_TYPES[meta["type"]][1],
        "general.alignment": 32,
        "general.quantization_version": gguf.GGML_QUANT_VERSION,
        f"{arch}.context_length": cfg["block_size"],
        f"{arch}.embedding_length": cfg["n_embd"],
        f"{arch}.block_count": cfg["n_layer"],
        f"{arch}.feed_forward_length": meta["mlp_width"],
        f"{arch}.attention.head_count": cfg["n_head"],
        f"{arch}.attention.head_count_kv": meta["n_kv_head"],
        f"{arch}.vocab_size": cfg["vocab_size"],
    }
    f32 = lambda x: float(np.float32(x))
    if arch == "gpt2":
        kv[f"{arch}.attention.layer_norm_epsilon"] = f32(cfg["layer_norm_eps"])
    else:
        kv[f"{arch}.attention.layer_norm_rms_epsilon"] = f32(cfg["layer_norm_eps"])
        kv[f"{arch}.rope.freq_base"] = f32(cfg["rope_theta"])
        kv[f"{arch}.rope.dimension_count"] = meta["head_dim"]
        if cfg.get("rope_scaling") == "linear":
            kv[f"{arch}.rope.scaling.type"] = "linear"
            kv[f"{arch}.rope.scaling.factor"] = f32(cfg["rope_factor"])
    for key, value in meta["tokenizer"].items():
        kv[key] = value
    return kv


def check(d):
    meta = json.load(open(f"{d}/meta.json"))
    params = load_file(f"{d}/troupe.safetensors")
    reader = gguf.GGUFReader(f"{d}/model.gguf")
    got = {f.name: field_value(f) for f in reader.fields.values() if not f.name.startswith("GGUF.")}
    want = expected_metadata(meta)
    for key, value in want.items():
        expect(key in got, f"missing metadata key {key}")
        if key in got:
            v = got[key]
            same = (np.allclose(v, value, rtol=0, atol=0) if isinstance(value, list) and value and
                    isinstance(value[0], float) else v == value)
            expect(same, f"{key}: file has {str(v)[:200]}, expected {str(value)[:200]}")
    expect(set(got) == set(want), f"unexpected keys {sorted(set(got) - set(want))}")
    expected = expected_tensors(meta, params)
    names = [t.name for t in reader.tensors]
    expect(sorted(names) == sorted(expected), f"tensor names {sorted(names)} != {sorted(expected)}")
    worst_q8 = 0.0
    for t in reader.tensors:
        if t.name not in expected:
            continue
        data, qtype = expected[t.name]
        expect(t.tensor_type == qtype, f"{t.name}: type {t.tensor_type.name}, expected {qtype.name}")
        expect(list(t.shape) == list(reversed(data.shape)), f"{t.name}: ne {list(t.shape)} for torch {data.shape}")
        raw = np.asarray(t.data)
        ref = gguf.quants.quantize(data, qtype)  # the converter's bytes
        expect(raw.tobytes() == ref.tobytes(), f"{t.name}: {qtype.name} bytes differ from gguf.quants.quantize")
        deq = gguf.quants.dequantize(raw, qtype).reshape(data.shape)
        if qtype == Q.F32:
            expect(np.array_equal(deq, data), f"{t.name}: F32 data differ")
        elif qtype == Q.F16:
            expect(np.array_equal(deq, data.astype(np.float16).astype(np.float32)), f"{t.name}: F16 data differ")
        elif qtype == Q.BF16:
            bf = torch.from_numpy(data).to(torch.bfloat16).float().numpy()
            expect(np.array_equal(deq, bf), f"{t.name}: BF16 data differ from torch's bf16 rounding")
        else:  # Q8_0: within half a step (d / 2, d = amax / 127 per block of 32) plus d's own fp16 rounding
            blocks = data.reshape(-1, 32)
            d = np.abs(blocks).max(axis=1, keepdims=True) / 127
            err = np.abs(deq.reshape(-1, 32) - blocks)
            bound = d * 0.5 + 127 * np.abs(d - d.astype(np.float16).astype(np.float32)) + 1e-12
            expect(bool((err <= bound * 1.0001).all()), f"{t.name}: Q8_0 error above half a step")
            worst_q8 = max(worst_q8, float((err / np.maximum(d, 1e-30)).max()))
    q8 = f", q8_0 error at most {worst_q8:.3f} steps" if meta["type"] == "q8_0" else ""
    print(f"{meta['arch']} {meta['type']}: {len(names)} tensors, {len(want)} keys{q8}")


def run_llama(d):
    from llama_cpp import Llama

    spec = json.load(open(f"{d}/prompts.json"))
    kv = {"f32": 0, "f16": 1}[spec["kv_cache"]]  # GGML_TYPE_F32 / GGML_TYPE_F16 (llama.cpp's default)
    llm = Llama(model_path=f"{d}/model.gguf", n_ctx=spec["n_ctx"], n_batch=spec["n_ctx"], logits_all=True,
                verbose=False, n_threads=2, seed=0, type_k=kv, type_v=kv)
    out = []
    for prompt in spec["prompts"]:
        llm.reset()
        llm.eval(prompt)
        tokens = []
        for _ in range(spec["n_new"]):
            nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            tokens.append(nxt)
            llm.eval([nxt])
        logits = np.asarray(llm.scores[: llm.n_tokens], dtype=np.float32)
        generated = []
        for tok in llm.generate(prompt, temp=0.0, top_k=1, repeat_penalty=1.0, reset=True):
            generated.append(int(tok))
            if len(generated) == spec["n_new"]:
                break
        out.append({"tokens": tokens, "generate": generated, "logits": logits.reshape(-1).tolist()})
    json.dump(out, open(f"{d}/llama.json", "w"))


def check_all(dirs):
    for d in dirs:
        before = len(failures)
        check(d)
        failures[before:] = [f"{d}: {f}" for f in failures[before:]]
    if failures:
        print("\n".join(failures[:60]))
        sys.exit(1)


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check_all(sys.argv[2:])
    else:
        run_llama(sys.argv[2])
