// Troupe's own tokenizer file (a versioned JSON document) and the one entry point that opens any
// supported tokenizer format. Loaders for foreign formats live in tokenizers/foreign_formats.h; encoding is
// tokenizers/bpe_tokenizer.h.
//
// File layout (version 1), one token and one merge per line so diffs and errors point somewhere useful:
//   {
//     "format": "troupe-tokenizer",
//     "version": 1,
//     "type": "byte_level_bpe",
//     "name": "my-8k",
//     "pattern": "<PCRE2 pre-tokenisation regex>",
//     "special_tokens": {"<|endoftext|>": 8192},
//     "metadata": {"created": "2026-11-23T15:00:00Z", ...},        (string -> string)
//     "tokens": ["AA==", "AQ==", ...],                               (base64 bytes of rank 0, 1, ...)
//     "merges": [[256, 32, 116], ...]                                ([rank, left rank, right rank])
//   }
// "merges" lists, for every multi-byte token, the pair whose concatenation it is (for an imported
// vocabulary: the last merge byte-level BPE applies to build it). It documents the vocabulary for
// other tools and is verified on load; encoding only needs the ranks.
#pragma once

#include <array>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tokenizers/bpe_tokenizer.h"

namespace troupe::tokenizers {

inline constexpr int kTokenizerFileVersion = 1;

struct TokenizerFile {
  BpeSpec spec;
  std::map<std::string, std::string> metadata;
  std::vector<std::array<int, 3>> merges;  // [rank, left, right], increasing rank
};

// Writes `file` atomically (temp file + rename). merges empty -> derived with derive_merges().
void save_tokenizer_file(const std::filesystem::path& path, TokenizerFile file);

// Reads and validates a Troupe tokenizer file. Malformed JSON names file:line:col; a wrong format tag,
// unsupported version, or bad value names the file and the key (e.g. "tokens[300]"). Throws DataError,
// or IoError when the file cannot be read.
TokenizerFile load_tokenizer_file(const std::filesystem::path& path);

// For each token of 2+ bytes, the pair byte-level BPE merges last to build it, using only lower ranks.
// A token that no such merge builds (possible in hand-made tables) is left out.
std::vector<std::array<int, 3>> derive_merges(const BpeSpec& spec);

// Pattern and special tokens of a known tiktoken encoding: gpt2 (= r50k_base), p50k_base, cl100k_base.
// Returns false for an unknown name.
bool known_encoding(const std::string& name, std::string& pattern, std::map<std::string, int>& specials);

// Opens a tokenizer from any supported source:
//   * a Troupe tokenizer file (JSON with "format": "troupe-tokenizer");
//   * a Hugging Face tokenizer.json (any other .json): GPT-2-kind byte-level BPE through tiktoken's encoder,
//     any other BPE pipeline (Llama 3, Qwen2, Mistral, ...) through tokenizers/hf_tokenizer.h;
//   * a SentencePiece .model (tokenizers/sentencepiece_tokenizer.h);
//   * a .tiktoken rank file: pattern and specials from `encoding` (a known name) when given, else from
//     <stem>.meta.json beside it, else from the known encoding named like the file's stem;
//   * GPT-2's files: a directory holding encoder.json + vocab.bpe, or the encoder.json itself.
// Errors name the path and say what was expected.
BpeTokenizer open_tokenizer(const std::string& path, const std::string& encoding = "");

namespace detail {
std::string base64_encode(std::string_view bytes);
}  // namespace detail

}  // namespace troupe::tokenizers
