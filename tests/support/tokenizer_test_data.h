// The reference tokenizers and tiktoken's test vectors (tests/fixtures/tokenizers), shared by the tokenizer tests.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/errors.h"
#include "tokenizers/bpe_tokenizer.h"
#include "tokenizers/foreign_formats.h"

namespace troupe::testing {

inline std::filesystem::path tokenizer_data_dir() {
  return std::filesystem::path(TROUPE_SOURCE_DIR) / "tests/fixtures/tokenizers";
}

inline const tokenizers::BpeTokenizer& gpt2_tokenizer() {
  static const tokenizers::BpeTokenizer tok(tokenizers::tiktoken_encoding("gpt2", tokenizer_data_dir()));
  return tok;
}

inline const tokenizers::BpeTokenizer& cl100k_tokenizer() {
  static const tokenizers::BpeTokenizer tok(tokenizers::tiktoken_encoding("cl100k_base", tokenizer_data_dir()));
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

// At least `min_bytes` of mixed text: every reference vector, joined by lines of prose, repeated with variations.
inline std::string corpus_text(size_t min_bytes) {
  const auto vectors = read_tokenizer_vectors("gpt2");
  std::string text;
  std::mt19937 rng(7);
  const char* joins[] = {"\n", "\nThe quick brown fox.\n", "  \n", "\n\n", " ", "\r\n", "\nA\n1\n"};
  while (text.size() < min_bytes) {
    for (const TokenizerVector& v : vectors) {
      text += v.text;
      text += joins[rng() % 7];
    }
  }
  return text;
}

// The message of the troupe::Error `fn` throws ("" and a test failure when it throws none).
template <typename Fn>
inline std::string error_message(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error";
  return "";
}

// a followed by b.
inline std::vector<int> concat(std::vector<int> a, const std::vector<int>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace troupe::testing
