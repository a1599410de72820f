"""Peer side of `troupe tokenizer bench`: times one Python-hosted tokenizer encoding a corpus with the benchmark's
vocabulary, single-threaded, and writes the ids for the exactness check.

usage: tokenizer_peers.py tiktoken|tokenizers CORPUS RUNS IDS_OUT TIKTOKEN_FILE META_JSON HF_TOKENIZER_JSON
  tiktoken:   the native package (Rust core), Encoding built from TIKTOKEN_FILE + META_JSON, encode_ordinary
  tokenizers: Hugging Face tokenizers (Rust) on the tokenizer.json that `troupe tokenizer export` wrote
prints one JSON line: {"lib": ..., "version": ..., "seconds": [per run], "tokens": n, "load_seconds": s}
"""
import json
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # single-threaded peers, like Troupe's 1-thread row
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from array import array  # noqa: E402


def main():
    lib, corpus, runs, ids_out, tiktoken_file, meta_json, hf_json = sys.argv[1:8]
    runs = int(runs)
    text = open(corpus, encoding="utf-8").read()
    start = time.perf_counter()
    if lib == "tiktoken":
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe
        meta = json.load(open(meta_json))
        enc = tiktoken.Encoding("bench", pat_str=meta["pat_str"], mergeable_ranks=load_tiktoken_bpe(tiktoken_file),
                                special_tokens=meta["special_tokens"])
        encode = enc.encode_ordinary
        version = tiktoken.__version__
    elif lib == "tokenizers":
        import tokenizers
        tok = tokenizers.Tokenizer.from_file(hf_json)
        encode = lambda t: tok.encode(t, add_special_tokens=False).ids  # noqa: E731
        version = tokenizers.__version__
    else:
        sys.exit(f"unknown lib {lib}")
    load_seconds = time.perf_counter() - start
    seconds, ids = [], None
    for r in range(runs):
        t0 = time.perf_counter()
        out = encode(text)
        seconds.append(time.perf_counter() - t0)
        if ids is None:
            ids = out
    with open(ids_out, "wb") as f:
        array("I", ids).tofile(f)
    print(json.dumps({"lib": lib, "version": version, "seconds": seconds, "tokens": len(ids),
                      "load_seconds": load_seconds}))


if __name__ == "__main__":
    main()
