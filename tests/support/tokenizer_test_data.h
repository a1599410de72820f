// The reference tokenizers and tiktoken's test vectors (tests/data/tokenizers), shared by the tokenizer tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/bpe_tokenizer.h"
#include "core/tokenizer_files.h"

namespace troupe::testing {

inline std::filesystem::path tokenizer_data_dir() {
  return std::filesystem::path(TROUPE_SOURCE_DIR) / "tests/data/tokenizers";
}

inline const core::BpeTokenizer& gpt2_tokenizer() {
  static const core::BpeTokenizer tok(core::tiktoken_encoding("gpt2", tokenizer_data_dir()));
  return tok;
}

inline const core::BpeTokenizer& cl100k_tokenizer() {
  static const core::BpeTokenizer tok(core::tiktoken_encoding("cl100k_base", tokenizer_data_dir()));
  return tok;
}

struct TokenizerVector {
  std::string text;
  std::vector<int> ids;
};

// "<name>.vectors.jsonl": one {"text", "ids"} object per line, produced by the official tiktoken.
inline std::vector<TokenizerVector> read_tokenizer_vectors(const std::string& name) {
  std::ifstream in(tokenizer_data_dir() / (name + ".vectors.jsonl"));
  std::vector<TokenizerVector> out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    out.push_back({j.at("text").get<std::string>(), j.at("ids").get<std::vector<int>>()});
  }
  return out;
}

}  // namespace troupe::testing
