// A tokenizer as the tokenizer.* section of a GGUF file, as llama.cpp's convert_hf_to_gguf.py writes it: byte-level
// BPE as model "gpt2" (tokens in GPT-2's byte-to-unicode spelling, merges "a b", the pre-tokenizer named by its
// split regex) and SentencePiece as model "llama" (pieces, scores, types). Not the GGUF file itself
// (core/gguf_writer.h) and not an encoder.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/gguf_writer.h"
#include "tokenizers/bpe_tokenizer.h"

namespace troupe::tokenizers {

// llama.cpp's token types (gguf-py TokenType).
enum class GgufTokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

// The vocabulary before it becomes key/values.
struct GgufVocab {
  std::string model;                // tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece)
  std::string pre;                  // tokenizer.ggml.pre: "gpt-2", "llama-bpe", "qwen2", "default"
  std::vector<std::string> tokens;  // by id; vocab_size entries ("[PAD<i>]" fills ids the tokenizer lacks)
  std::vector<float> scores;        // SentencePiece only
  std::vector<int32_t> types;       // GgufTokenType by id
  std::vector<std::string> merges;  // BPE only: "left right" in merge priority order
  int bos = -1, eos = -1, unk = -1, pad = -1;  // -1: none
  int add_bos = -1;                            // tokenizer.ggml.add_bos_token: -1 unset, 0/1
  int add_space_prefix = -1;                   // SentencePiece: tokenizer.ggml.add_space_prefix
  std::string chat_template;                   // tokenizer.chat_template ("" = none)

  std::vector<core::GgufKeyValue> key_values() const;
};

// llama.cpp's pre-tokenizer name for a split regex: "gpt-2" (GPT-2/r50k), "llama-bpe" (Llama 3 / cl100k-style),
// "qwen2". ConfigError naming the pattern for any other (llama.cpp would split the text differently).
std::string gguf_pre_tokenizer(const std::string& pattern);

// The vocabulary of a byte-level BPE spec (a Troupe tokenizer file, GPT-2's files, a .tiktoken) padded to
// vocab_size: special tokens as CONTROL, merges derived from the ranks, bos = eos = "<|endoftext|>" when present.
GgufVocab gguf_vocab_from_spec(const BpeSpec& spec, int64_t vocab_size);

// The vocabulary of the tokenizer at `path`: a Troupe tokenizer file or any byte-level source open_tokenizer reads
// (through gguf_vocab_from_spec), a Hugging Face tokenizer.json with a byte-level BPE model (vocab, merges and
// added tokens as written; bos/eos/add_bos_token and chat_template from tokenizer_config.json beside it), or a
// SentencePiece .model. ConfigError when the tokenizer has more ids than vocab_size or is of a kind GGUF's "gpt2" /
// "llama" tokenizers cannot represent (e.g. a WordPiece or non-byte-level tokenizer.json).
GgufVocab gguf_vocab_from_file(const std::filesystem::path& path, int64_t vocab_size);

}  // namespace troupe::tokenizers
