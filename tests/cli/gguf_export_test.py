# `troupe export gguf` end to end on a real run: a byte-level BPE tokenizer trained by `troupe tokenizer train`, a GPT
# pretrained for a few steps by `troupe train pretrain`, exported as f32 and q8_0 with the tokenizer found beside the
# run. The file's vocabulary must be the tokenizer's (tokens in GPT-2's byte-to-unicode spelling, computed here from
# the Troupe file's base64 bytes); llama.cpp (llama-cpp-python, when importable) must tokenize text to the ids
# `troupe tokenizer encode` gives and continue prompts greedily as `troupe generate` does. Not a test of the encodings
# (tests/models/gguf_test.cpp checks every tensor against the gguf package).
import base64
import glob
import json
import os
import subprocess
import sys
import tempfile

import gguf

CLI = os.environ["TROUPE_CLI"]
FORTUNES = "/usr/share/games/fortunes"
TEXTS = ["The quick brown fox doesn't jump over 123 lazy dogs.\n  Hello, world!",
         "A fool and his money are soon parted.", "  spaces\tand tabs\n\nand newlines ", "naïve café ü 東京 🙂"]


def run(args, timeout=600):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def corpus(out):
    """Short documents: Debian's fortunes when installed (as the quickstart uses), else generated sentences."""
    docs = []
    for f in sorted(glob.glob(os.path.join(FORTUNES, "*"))):
        if os.path.isfile(f) and not f.endswith((".dat", ".u8")):
            text = open(f, encoding="utf-8", errors="replace").read()
            docs += [d.strip() for d in text.split("\n%\n") if d.strip()]
    if len(docs) < 500:
        words = "the a fox dog runs jumps over under lazy quick brown red blue sky sea tree".split()
        docs = [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(12 + i % 9)) + "." for i in range(2000)]
    os.makedirs(out)
    for i, d in enumerate(docs[:2000]):
        with open(os.path.join(out, f"{i:05d}.txt"), "w", encoding="utf-8") as f:
            f.write(d)


def bytes_to_unicode():  # GPT-2's encoder.py
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def train_run(root):
    corpus(os.path.join(root, "docs"))
    run_dir = os.path.join(root, "run")
    os.makedirs(run_dir)
    tok = os.path.join(run_dir, "tokenizer.json")
    run([CLI, "tokenizer", "train", "--input", os.path.join(root, "docs"), "-o", tok, "--vocab-size", "400",
         "--special", "<|endoftext|>", "--threads", "2"])
    run([CLI, "data", "prepare", "-t", tok, "--input", os.path.join(root, "docs"), "-o", os.path.join(root, "tokens"),
         "--val-fraction", "0.05", "--seed", "2", "--threads", "2"])
    config = os.path.join(root, "pretrain.yaml")
    with open(config, "w") as f:
        f.write("kind: pretrain\nseed: 11\nrun: {name: pretrain}\nruntime: {threads: 2}\n"
                "checkpoint: {every: 0, keep_last: 1}\n"
                "model: {n_layer: 2, n_head: 4, n_embd: 64, block_size: 64, vocab_size: 448, dropout: 0.0}\n"
                "optim: {lr: 3.0e-3, min_lr: 3.0e-4, warmup_steps: 5, schedule: cosine, weight_decay: 0.1}\n"
                "train: {steps: 40, batch_size: 8, eval_every: 40, eval_batches: 2, log_every: 20}\n")
    run([CLI, "train", "pretrain", config, f"run.dir={run_dir}", f"data.train={root}/tokens/train.bin",
         f"data.val={root}/tokens/val.bin"])
    return run_dir, tok


def check_vocabulary(path, tok):
    spec = json.load(open(tok))
    b2u = bytes_to_unicode()
    want = ["".join(b2u[b] for b in base64.b64decode(t)) for t in spec["tokens"]]
    for text, i in spec["special_tokens"].items():
        want += [None] * (i + 1 - len(want))
        want[i] = text
    want += [f"[PAD{i}]" for i in range(len(want), 448)]
    r = gguf.GGUFReader(path)
    f = {k: v.contents() for k, v in r.fields.items() if k.startswith("tokenizer.")}
    assert f["tokenizer.ggml.tokens"] == want, "tokens differ from the Troupe file's bytes in byte-level spelling"
    assert f["tokenizer.ggml.model"] == "gpt2" and f["tokenizer.ggml.pre"] == "gpt-2", f
    eot = spec["special_tokens"]["<|endoftext|>"]
    assert f["tokenizer.ggml.eos_token_id"] == eot and f["tokenizer.ggml.token_type"][eot] == 3
    merges = f["tokenizer.ggml.merges"]
    assert len(merges) == len(spec["merges"]), (len(merges), len(spec["merges"]))
    for m, (rank, left, right) in zip(merges, spec["merges"]):
        assert m == want[left] + " " + want[right] and want[rank] == want[left] + want[right], m
    print(f"vocabulary: {len(want)} tokens, {len(merges)} merges equal the Troupe file's")


def check_llama_cpp(run_dir, tok, files):
    try:
        from llama_cpp import Llama
    except ImportError as e:
        print(f"SKIPPED llama.cpp checks: llama-cpp-python is not importable ({e})")
        return
    prompts = [[int(x) for x in run([CLI, "tokenizer", "encode", "-t", tok, t]).strip().split(",")] for t in TEXTS[:2]]
    prompts += [[400], [5, 80, 200]]
    for kind, path in files.items():
        llm = Llama(model_path=path, n_ctx=64, logits_all=True, verbose=False, n_threads=2, type_k=0, type_v=0)
        if kind == "f32":
            for text in TEXTS:
                ours = [int(x) for x in run([CLI, "tokenizer", "encode", "-t", tok, text]).strip().split(",")]
                theirs = llm.tokenize(text.encode(), add_bos=False, special=False)
                assert theirs == ours, f"llama.cpp tokenizes {text!r} as {theirs}, Troupe as {ours}"
                assert llm.detokenize(theirs).decode() == text
            print(f"llama.cpp tokenizes {len(TEXTS)} texts as Troupe does")
        same = 0
        for p in prompts:
            out = json.loads(run([CLI, "generate", "-c", run_dir, "--prompt-ids", ",".join(map(str, p)), "-n", "16",
                                  "--no-stop", "--json", "--threads", "2"]))
            ours = out[0]["ids"] if isinstance(out, list) else out["results"][0]["ids"]
            llm.reset()
            theirs = []
            for t in llm.generate(p, temp=0.0, top_k=1, repeat_penalty=1.0, reset=True):
                theirs.append(int(t))
                if len(theirs) == 16:
                    break
            same += theirs == ours
            if kind == "f32":
                assert theirs == ours, f"prompt {p}: llama.cpp {theirs}, troupe generate {ours}"
        print(f"{kind}: {same}/{len(prompts)} prompts continue with the same 16 greedy tokens in llama.cpp")


def main():
    with tempfile.TemporaryDirectory() as root:
        run_dir, tok = train_run(root)
        run_dir = os.path.join(run_dir, "pretrain")
        files = {}
        for kind in ("f32", "q8_0"):
            files[kind] = os.path.join(root, f"model-{kind}.gguf")
            out = run([CLI, "export", "gguf", run_dir, "--out", files[kind], "--type", kind])
            assert "tokenizer gpt2 from " + tok in out, out
        check_vocabulary(files["f32"], tok)
        # The run's Hugging Face copy (RUN/hf, GPT-2 layout) gives the same tensors; the tokenizer is found two levels up.
        hf = os.path.join(root, "hf.gguf")
        run([CLI, "export", "gguf", os.path.join(run_dir, "hf"), "--out", hf, "--name", "pretrain"])
        a, b = gguf.GGUFReader(files["f32"]), gguf.GGUFReader(hf)
        assert [(t.name, t.data.tobytes()) for t in a.tensors] == [(t.name, t.data.tobytes()) for t in b.tensors]
        r = gguf.GGUFReader(files["q8_0"])
        types = {t.name: t.tensor_type.name for t in r.tensors}
        assert types["blk.0.attn_qkv.weight"] == "Q8_0" and types["blk.0.attn_norm.weight"] == "F32", types
        assert types["position_embd.weight"] == "F32", types
        # No tokenizer anywhere above a copy of the checkpoint: a clear error naming --tokenizer.
        lone = os.path.join(root, "lone")
        os.makedirs(lone)
        proc = subprocess.run([CLI, "export", "gguf", os.path.join(run_dir, "checkpoints"), "--out",
                               os.path.join(lone, "x.gguf"), "--tokenizer", os.path.join(lone, "missing.json")],
                              capture_output=True, text=True)
        assert proc.returncode != 0 and "missing.json" in proc.stderr, proc.stderr
        check_llama_cpp(run_dir, tok, files)
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
