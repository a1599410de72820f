"""Reference side of tests/tokenizers/gguf_vocab_test.cpp: trains a small SentencePiece model with the sentencepiece
package and writes what convert_hf_to_gguf.py's _set_vocab_sentencepiece takes from it (pieces, scores, types and the
special ids), so the test can compare Troupe's GGUF vocabulary with it. Not a converter.

  python gguf_vocab_reference.py OUT_DIR   -> OUT_DIR/sp.model, OUT_DIR/sp.json
"""
import json
import os
import sys

import sentencepiece as spm

TEXT = "\n".join(
    f"the quick brown fox {i} jumps over the lazy dog; pack my box with {i * 7} dozen liquor jugs" for i in range(400))


def main():
    out = sys.argv[1]
    with open(os.path.join(out, "train.txt"), "w", encoding="utf-8") as f:
        f.write(TEXT)
    spm.SentencePieceTrainer.train(input=os.path.join(out, "train.txt"), model_prefix=os.path.join(out, "sp"),
                                   vocab_size=320, model_type="bpe", byte_fallback=True, num_threads=1,
                                   minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(out, "sp.model"))
    types = []
    for i in range(sp.vocab_size()):  # convert_hf_to_gguf's SentencePieceTokenTypes order of checks
        if sp.is_unknown(i):
            types.append(2)
        elif sp.is_control(i):
            types.append(3)
        elif sp.is_unused(i):
            types.append(5)
        elif sp.is_byte(i):
            types.append(6)
        else:
            types.append(1)
    json.dump({"tokens": [sp.id_to_piece(i) for i in range(sp.vocab_size())],
               "scores": [sp.get_score(i) for i in range(sp.vocab_size())], "types": types,
               "bos": sp.bos_id(), "eos": sp.eos_id(), "unk": sp.unk_id()},
              open(os.path.join(out, "sp.json"), "w"))


if __name__ == "__main__":
    main()
