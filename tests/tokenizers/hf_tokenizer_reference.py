"""The reference for Troupe's general tokenizer.json support: the Hugging Face `tokenizers` package itself, run by
tests/tokenizers/hf_tokenizer_test.cpp. Nothing is downloaded: the tokenizers are trained here.

  hf_tokenizer_reference.py SOURCE_DIR OUT_DIR SEED

Trains small BPE tokenizers in the layouts of real model families on the same corpus as sentencepiece_reference.py
and writes OUT_DIR/<name>.json and OUT_DIR/cases.json:
  {"texts": [str...], "models": [{"name", "file", "ids": [[int...]...], "decoded": [str...]}]}
  * llama3: Split(Llama 3 regex, Isolated) + ByteLevel(use_regex=False), ignore_merges, special tokens;
  * qwen2: NFC normalizer and Qwen2's regex (single digits);
  * mistral: Metaspace(prepend_scheme="first", split=False), byte_fallback, <unk> with fuse_unk, and the
    Replace/ByteFallback/Fuse/Strip decoder;
  * llama2_legacy: normalizer Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer, byte_fallback;
  * gpt2_bytelevel: ByteLevel(add_prefix_space=True, use_regex=True);
  * misc: NFKC + Lowercase normalizers, Digits(individual) + Punctuation + WhitespaceSplit, <unk> without fuse_unk,
    added tokens with lstrip/rstrip/single_word and a normalized non-special one ("Hello World").
Ids are Tokenizer.encode(text, add_special_tokens=False).ids; decoded is decode(ids, skip_special_tokens=False).
"""
import json
import os
import random
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sentencepiece_reference import corpus, random_strings  # noqa: E402

LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
          r"|\s+(?!\S)|\s+")
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
         r"|\s+(?!\S)|\s+")
SPECIALS = ["<|begin_of_text|>", "<|eot_id|>", "<tool>"]
BYTES = [f"<0x{b:02X}>" for b in range(256)]


def byte_level(regex, name):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    if name == "qwen2":
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    return tok, trainer


def sentencepiece_like(legacy):
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    if legacy:
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=["<unk>", "<s>", "</s>"] + BYTES,
                                  show_progress=False)
    return tok, trainer


def gpt2_bytelevel():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    return tok, trainers.BpeTrainer(vocab_size=1500, special_tokens=["<|endoftext|>"], show_progress=False,
                                    initial_alphabet=pre_tokenizers.ByteLevel.alphabet())


def misc():
    tok = Tokenizer(models.BPE(unk_token="[UNK]", fuse_unk=False))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.Punctuation(), pre_tokenizers.WhitespaceSplit()])
    trainer = trainers.BpeTrainer(vocab_size=1500, special_tokens=["[UNK]"], show_progress=False)
    return tok, trainer


def build(name, tok, trainer, train_path, out_dir):
    tok.train([train_path], trainer)
    if name == "misc":
        tok.add_special_tokens([AddedToken("[MASK]", lstrip=True, rstrip=True), AddedToken("<tool>", single_word=True)])
        tok.add_tokens([AddedToken("Hello World", normalized=True)])
    path = os.path.join(out_dir, name + ".json")
    tok.save(path)
    return path


def main():
    source, out_dir, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    text = corpus(source)
    train_path = os.path.join(out_dir, "train.txt")
    with open(train_path, "w", encoding="utf-8") as f:
        f.write(text)
    rng = random.Random(seed)
    extras = ["<|begin_of_text|>", "<|eot_id|>", "<tool>", " [MASK] ", "[MASK]", "hello world", "HELLO WORLD", "<unk>", "<s>",
              "<0x41>", "x<tool>y", " <tool> "]
    randoms = random_strings(rng, 600)
    for i in range(0, len(randoms), 4):  # added and special tokens inside random text
        cut = rng.randint(0, len(randoms[i]))
        randoms[i] = randoms[i][:cut] + rng.choice(extras) + randoms[i][cut:]
    texts = [text[i:i + 2000] for i in range(0, len(text), 2000)] + randoms
    builders = [("llama3", lambda: byte_level(LLAMA3, "llama3")), ("qwen2", lambda: byte_level(QWEN2, "qwen2")),
                ("mistral", lambda: sentencepiece_like(False)), ("llama2_legacy", lambda: sentencepiece_like(True)),
                ("gpt2_bytelevel", gpt2_bytelevel), ("misc", misc)]
    out = []
    for name, make in builders:
        tok, trainer = make()
        path = build(name, tok, trainer, train_path, out_dir)
        tok = Tokenizer.from_file(path)
        ids = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
        decoded = [tok.decode(i, skip_special_tokens=False) for i in ids]
        out.append({"name": name, "file": path, "ids": ids, "decoded": decoded})
    with open(os.path.join(out_dir, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"texts": texts, "models": out}, f)


if __name__ == "__main__":
    main()
