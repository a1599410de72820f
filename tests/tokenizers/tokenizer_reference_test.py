"""Troupe's BPE against the reference packages themselves, through the `troupe` CLI:
  * native tiktoken (the Rust core) built from the same gpt2 / cl100k_base rank files, on the shared vectors and on
    2,000 seeded random strings per encoding (ASCII words, whitespace and digit runs, punctuation, CJK, Arabic,
    emoji, combining marks, and random Latin-1 bytes);
  * the Hugging Face `tokenizers` package loading the tokenizer.json that `troupe tokenizer export` writes, on the
    same strings.
Ids must be identical. Runs under ctest with the project venv's python (label: python).
"""
import json
import os
import random
import subprocess
import sys
import tempfile

import tiktoken
from tiktoken.load import load_tiktoken_bpe
from tokenizers import Tokenizer

SOURCE = os.environ["TROUPE_SOURCE_DIR"]
CLI = os.environ["TROUPE_CLI"]
DATA = os.path.join(SOURCE, "tests", "fixtures", "tokenizers")
SPECIAL = "<|endoftext|>"


def tiktoken_encoding(name):
    meta = json.load(open(os.path.join(DATA, name + ".meta.json")))
    ranks = load_tiktoken_bpe(os.path.join(DATA, name + ".tiktoken"))
    return tiktoken.Encoding(name, pat_str=meta["pat_str"], mergeable_ranks=ranks,
                             special_tokens=meta["special_tokens"])


def random_strings(seed, n):
    rng = random.Random(seed)
    pieces = [
        lambda: rng.choice(["the", "The", " quick", "brown", "fox's", "don't", "I'll", "we've", "HELLO", "naïve"]),
        lambda: " " * rng.randint(1, 6),
        lambda: rng.choice(["\n", "\r\n", "\t", "\n\n", " \n"]),
        lambda: str(rng.randint(0, 10 ** rng.randint(1, 12))),
        lambda: "".join(rng.choice("!@#$%^&*()[]{};:'\",.<>/?\\|`~-_=+") for _ in range(rng.randint(1, 4))),
        lambda: "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(rng.randint(1, 5))),  # CJK
        lambda: "".join(chr(rng.randint(0x0600, 0x06FF)) for _ in range(rng.randint(1, 5))),  # Arabic
        lambda: rng.choice(["😀", "👩‍👩‍👧", "🇫🇷", "e\u0301", "a\u0308\u0323", "\u200b"]),
        lambda: bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 8))).decode("latin-1"),
    ]
    out = []
    for _ in range(n):
        s = "".join(rng.choice(pieces)() for _ in range(rng.randint(0, 20)))
        out.append(s.replace(SPECIAL, ""))
    return out


def troupe_encode(tokenizer_args, texts, work):
    src, dst = os.path.join(work, "in.jsonl"), os.path.join(work, "out.jsonl")
    with open(src, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
    subprocess.run([CLI, "tokenizer", "encode", *tokenizer_args, "--jsonl", src, "-o", dst, "--threads", "1"],
                   check=True, stdout=subprocess.DEVNULL)
    return [json.loads(line)["ids"] for line in open(dst, encoding="utf-8")]


def compare(label, texts, expected, got):
    assert len(expected) == len(got), f"{label}: {len(got)} results for {len(expected)} texts"
    bad = [i for i in range(len(texts)) if expected[i] != got[i]]
    if bad:
        i = bad[0]
        raise AssertionError(f"{label}: {len(bad)} of {len(texts)} differ; first {texts[i]!r}: "
                             f"expected {expected[i]} got {got[i]}")
    print(f"ok  {label}: {len(texts)} strings identical")


def main():
    failures = 0
    with tempfile.TemporaryDirectory() as work:
        for seed, name in enumerate(["gpt2", "cl100k_base"]):
            enc = tiktoken_encoding(name)
            vectors = [json.loads(line) for line in open(os.path.join(DATA, name + ".vectors.jsonl"), encoding="utf-8")]
            texts = [v["text"] for v in vectors] + random_strings(seed, 2000)
            reference = [enc.encode_ordinary(t) for t in texts]
            args = ["-t", os.path.join(DATA, name + ".tiktoken")]
            ours = troupe_encode(args, texts, work)
            hf_path = os.path.join(work, name + ".tokenizer.json")
            subprocess.run([CLI, "tokenizer", "export", *args, "--format", "hf", "-o", hf_path], check=True,
                           stdout=subprocess.DEVNULL)
            hf = Tokenizer.from_file(hf_path)
            # The HF tokenizer splits special-token text out as the special token; tiktoken's encode_ordinary and
            # Troupe's default do not. Compare HF on the texts without it.
            plain = [i for i, t in enumerate(texts) if SPECIAL not in t]
            hf_ids = [e.ids for e in hf.encode_batch([texts[i] for i in plain], add_special_tokens=False)]
            for label, texts_, expected, got in [
                (f"{name}: troupe vs native tiktoken", texts, reference, ours),
                (f"{name}: tokenizers(troupe's tokenizer.json) vs native tiktoken",
                 [texts[i] for i in plain], [reference[i] for i in plain], hf_ids),
            ]:
                try:
                    compare(label, texts_, expected, got)
                except AssertionError as e:
                    failures += 1
                    print("FAIL", e)
            decoded = [hf.decode(reference[i], skip_special_tokens=False) for i in plain[:300]]
            lossy = [i for i, d in zip(plain[:300], decoded) if d != texts[i] and "\ufffd" not in d]
            if lossy:
                failures += 1
                print(f"FAIL {name}: tokenizers decodes {len(lossy)} texts differently, first {texts[lossy[0]]!r}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
