"""The reference for Troupe's SentencePiece tokenizer: the `sentencepiece` package itself, run by
tests/tokenizers/sentencepiece_test.cpp. Nothing is downloaded: the models are trained here.

  sentencepiece_reference.py SOURCE_DIR OUT_DIR SEED

Trains small BPE and Unigram models (nmt_nfkc, nmt_nfkc_cf and identity normalization, with and without
byte_fallback, user-defined and control symbols, Llama-2-style whitespace options, whitespace as suffix) on a corpus of the Debian
fortunes files when installed plus the repo's README and docs, writes them as OUT_DIR/<name>.model, and writes
OUT_DIR/cases.json:
  {"texts": [str...], "models": [{"name", "file", "ids": [[int...]...], "decoded": [str...]}]}
The texts are the corpus cut into ~2 KB chunks (newlines, tabs and runs of spaces kept), then seeded random
strings: random bytes decoded as UTF-8 with errors='replace', and random code points from many scripts
(full-width forms, ligatures and compatibility characters that NFKC rewrites, CJK, emoji, combining marks,
Unicode spaces).
"""
import glob
import json
import os
import random
import sys

import sentencepiece as spm

FORTUNES = ["computers", "cookie", "definitions", "people"]
# Code point ranges for random strings (no surrogates): ASCII, Latin-1, Greek, Cyrillic, Arabic, Devanagari,
# general punctuation and spaces, letterlike symbols, CJK, Hangul, full-width forms, ligatures, emoji, math.
RANGES = [(0x20, 0x7E), (0xA0, 0xFF), (0x370, 0x3FF), (0x400, 0x4FF), (0x600, 0x6FF), (0x900, 0x97F),
          (0x2000, 0x206F), (0x2100, 0x214F), (0x3000, 0x303F), (0x4E00, 0x4EFF), (0xAC00, 0xAC7F),
          (0xFB00, 0xFB06), (0xFF01, 0xFF5E), (0x1F600, 0x1F64F), (0x1D400, 0x1D4FF), (0x300, 0x36F)]


def corpus(source):
    parts = []
    for name in FORTUNES:
        path = os.path.join("/usr/share/games/fortunes", name)
        if os.path.exists(path):
            parts.append(open(path, encoding="utf-8", errors="replace").read())
    for path in [os.path.join(source, "README.md")] + sorted(glob.glob(os.path.join(source, "docs", "*.md"))):
        parts.append(open(path, encoding="utf-8", errors="replace").read())
    return "\n".join(parts)


def random_strings(rng, n):
    out = []
    for i in range(n):
        if i % 3 == 0:
            out.append(bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 60))).decode("utf-8", errors="replace"))
            continue
        chars = []
        for _ in range(rng.randint(0, 40)):
            r = rng.random()
            if r < 0.15:
                chars.append(rng.choice([" ", "  ", "   ", "\t", "\n", "\u3000", "\u00a0", "\u2002", "\r\n"]))
            elif r < 0.35:
                chars.append(rng.choice(["the", " and", "ing", "tion", "Hello", "world", "1234", "<tool>", "@@"]))
            else:
                lo, hi = rng.choice(RANGES)
                chars.append(chr(rng.randint(lo, hi)))
        out.append("".join(chars))
    return out


MODELS = [
    ("unigram_nfkc", dict(model_type="unigram")),
    ("unigram_nfkc_bytes_user", dict(model_type="unigram", byte_fallback=True, user_defined_symbols=["<tool>", "@@"],
                                     control_symbols=["<ctl>"])),
    ("unigram_identity_bytes", dict(model_type="unigram", normalization_rule_name="identity", byte_fallback=True)),
    ("unigram_nfkc_cf_noprefix", dict(model_type="unigram", normalization_rule_name="nmt_nfkc_cf",
                                      add_dummy_prefix=False)),
    ("bpe_nfkc", dict(model_type="bpe")),
    ("bpe_llama2_style", dict(model_type="bpe", normalization_rule_name="identity", byte_fallback=True,
                              remove_extra_whitespaces=False, split_digits=True, allow_whitespace_only_pieces=True)),
    ("bpe_nfkc_bytes_user", dict(model_type="bpe", byte_fallback=True, user_defined_symbols=["<tool>", "@@"])),
    ("unigram_suffix_keep_spaces", dict(model_type="unigram", treat_whitespace_as_suffix=True,
                                        remove_extra_whitespaces=False)),
    ("bpe_suffix_bytes", dict(model_type="bpe", treat_whitespace_as_suffix=True, byte_fallback=True)),
]


def main():
    source, out_dir, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    text = corpus(source)
    train_path = os.path.join(out_dir, "train.txt")
    with open(train_path, "w", encoding="utf-8") as f:
        f.write(text)
    rng = random.Random(seed)
    texts = [text[i:i + 2000] for i in range(0, len(text), 2000)] + random_strings(rng, 600)
    models = []
    for name, options in MODELS:
        prefix = os.path.join(out_dir, name)
        spm.SentencePieceTrainer.train(input=train_path, model_prefix=prefix, vocab_size=1500, num_threads=2,
                                       max_sentence_length=100000, minloglevel=2, **options)
        sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
        ids = sp.encode(texts)
        models.append({"name": name, "file": prefix + ".model", "ids": ids, "decoded": sp.decode(ids)})
    with open(os.path.join(out_dir, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"texts": texts, "models": models}, f)


if __name__ == "__main__":
    main()
