// Loaders that turn tokenizer files (tiktoken rank files, GPT-2 encoder.json + vocab.bpe, HF
// tokenizer.json) into a BpeSpec, and the tokenizer.json writer.
// Only parsing and validation live here; encoding is tokenizers/bpe_tokenizer.h. Malformed input throws
// DataError naming file:line, an unreadable file IoError.
#pragma once

#include <array>
#include <filesystem>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "tokenizers/bpe_tokenizer.h"

namespace troupe::tokenizers {

// Reads a tiktoken rank file: one "base64(token bytes) rank" per line; ranks must be 0..n-1 with no
// gaps or repeats (any order). `pattern` and `special_tokens` are copied into the spec.
BpeSpec load_tiktoken_file(const std::filesystem::path& path, const std::string& pattern,
                           const std::map<std::string, int>& special_tokens);

// Writes `spec` as tiktoken's files, the inverse of tiktoken_encoding: `ranks` ("base64(bytes) rank" lines) and
// `meta` ({"pat_str", "special_tokens"} JSON). IoError naming the file that could not be written.
void save_tiktoken_files(const BpeSpec& spec, const std::filesystem::path& ranks, const std::filesystem::path& meta);

// Loads "<dir>/<name>.tiktoken" with pat_str and special_tokens from "<dir>/<name>.meta.json"
// (e.g. name "gpt2" or "cl100k_base").
BpeSpec tiktoken_encoding(const std::string& name, const std::filesystem::path& dir);

// Loads OpenAI's original GPT-2 files. Ids come from encoder.json (byte-to-unicode mapped strings);
// entries that are neither a single byte nor the result of a merge in vocab.bpe (<|endoftext|>)
// become special tokens. Uses kGpt2Pattern. Gives the same ids as gpt2.tiktoken.
BpeSpec load_gpt2_encoder(const std::filesystem::path& encoder_json, const std::filesystem::path& vocab_bpe);

// Loads a Hugging Face tokenizer.json whose model is a byte-level BPE (GPT-2 style vocab + merges).
// added_tokens become special tokens; the pattern is kGpt2Pattern for a ByteLevel pre_tokenizer with
// use_regex, or the Regex of a Split pre_tokenizer. Ids are used as ranks, so the merges must be in
// id order (true of GPT-2 and tiktoken-derived files); anything else (normalizers, prefix spaces,
// non-regex splits) is rejected with DataError rather than encoded differently.
BpeSpec load_hf_tokenizer_json(const std::filesystem::path& path);

// Writes `spec` as a Hugging Face tokenizer.json that the `tokenizers` package encodes to the same ids:
// a BPE model over GPT-2's byte-to-unicode alphabet, one merge per multi-byte token (derive_merges) listed in
// rank order, ignore_merges (a piece that is a whole token is emitted as is, as tiktoken does), a Split
// pre_tokenizer with the spec's regex followed by ByteLevel without its own regex, a ByteLevel decoder, and
// the special tokens as added_tokens. Throws DataError for a token that no merge builds (a hand-made table).
void save_hf_tokenizer_json(const std::filesystem::path& path, const BpeSpec& spec);

namespace detail {
// The whole file as bytes; IoError "cannot open/read tokenizer file <path>".
std::string read_tokenizer_file(const std::filesystem::path& path);
// Strict standard base64 (padding optional); returns false on any invalid character or length.
bool base64_decode(std::string_view in, std::string& out);
// GPT-2's bytes_to_unicode(): the code point each byte is written as in encoder.json / vocab.bpe.
const std::array<char32_t, 256>& gpt2_byte_to_unicode();
// The split regex of a tokenizer.json "pre_tokenizer" (as load_hf_tokenizer_json reads it; "" when none):
// ByteLevel with use_regex -> kGpt2Pattern, Split -> its Regex, a Sequence of those. DataError naming `path` otherwise.
std::string hf_pre_tokenizer_pattern(const nlohmann::json& pre, const std::filesystem::path& path);
}  // namespace detail

}  // namespace troupe::tokenizers
