// The GGUF tokenizer section (tokenizers/gguf_vocab.h) against independent references: GPT-2's byte-level vocabulary
// from the tiktoken ranks equals OpenAI's encoder.json strings id for id and its merges equal vocab.bpe line for line;
// a tokenizer.json Troupe writes gives the same section as the spec it came from; a SentencePiece model gives the
// pieces, scores and types the sentencepiece package reports (tests/tokenizers/gguf_vocab_reference.py). Not the file
// writer (tests/core/gguf_writer_test.cpp).
#include "tokenizers/gguf_vocab.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "tests/support/test_support.h"
#include "tokenizers/foreign_formats.h"
#include "tokenizers/pretokenizer.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::tokenizers::gguf_vocab_test {

namespace fs = std::filesystem;
using testing::ScratchDir;

fs::path fixtures() { return testing::source_dir() / "tests" / "fixtures" / "tokenizers"; }

TEST(GgufVocab, Gpt2TokensAndMergesEqualOpenAisEncoderFiles) {
  const BpeTokenizer tok = open_tokenizer((fixtures() / "gpt2.tiktoken").string());
  const GgufVocab v = gguf_vocab_from_spec(tok.spec(), 50304);  // padded as nanoGPT pads GPT-2
  const auto encoder = nlohmann::json::parse(std::ifstream(fixtures() / "gpt2-encoder" / "encoder.json"));
  ASSERT_EQ(encoder.size(), 50257u);
  for (const auto& [text, id] : encoder.items()) ASSERT_EQ(v.tokens.at(id.get<int>()), text) << "id " << id;
  EXPECT_EQ(v.tokens[50257], "[PAD50257]");
  EXPECT_EQ(v.types[50303], static_cast<int32_t>(GgufTokenType::kUnused));
  EXPECT_EQ(v.types[50256], static_cast<int32_t>(GgufTokenType::kControl));
  EXPECT_EQ(v.types[200], static_cast<int32_t>(GgufTokenType::kNormal));
  EXPECT_EQ(v.bos, 50256);
  EXPECT_EQ(v.eos, 50256);
  EXPECT_EQ(v.model, "gpt2");
  EXPECT_EQ(v.pre, "gpt-2");
  std::ifstream bpe(fixtures() / "gpt2-encoder" / "vocab.bpe");
  std::string line;
  std::getline(bpe, line);  // "#version: 0.2"
  std::vector<std::string> merges;
  while (std::getline(bpe, line)) {
    if (!line.empty()) merges.push_back(line);
  }
  EXPECT_EQ(v.merges, merges);
  EXPECT_THROW(gguf_vocab_from_spec(tok.spec(), 50000), ConfigError);  // more ids than the model has rows
}

TEST(GgufVocab, TokenizerJsonGivesTheSameSectionAsItsSpec) {
  ScratchDir dir;
  const BpeTokenizer tok = open_tokenizer((fixtures() / "cl100k_base.tiktoken").string());
  BpeSpec small = tok.spec();
  small.tokens_by_rank.resize(2000);
  small.special_tokens = {{"<|endoftext|>", 2000}};
  save_hf_tokenizer_json(dir / "tokenizer.json", small);
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"bos_token": "<|endoftext|>", "eos_token": {"content": "<|endoftext|>"}, "add_bos_token": false,
             "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}"})";
  const GgufVocab from_spec = gguf_vocab_from_spec(small, 2048);
  const GgufVocab from_json = gguf_vocab_from_file(dir / "tokenizer.json", 2048);
  EXPECT_EQ(from_json.tokens, from_spec.tokens);
  EXPECT_EQ(from_json.types, from_spec.types);
  EXPECT_EQ(from_json.merges, from_spec.merges);
  EXPECT_EQ(from_json.pre, "llama-bpe");
  EXPECT_EQ(from_json.eos, 2000);
  EXPECT_EQ(from_json.add_bos, 0);
  EXPECT_EQ(from_json.chat_template, "{% for m in messages %}{{ m.content }}{% endfor %}");
  const auto kv = from_json.key_values();
  EXPECT_EQ(kv.back().key, "tokenizer.chat_template");
}

TEST(GgufVocab, SentencePieceGivesThePackagesPiecesScoresAndTypes) {
  ScratchDir dir;
  const auto r = testing::run_process({TROUPE_PYTHON,
                                       (testing::source_dir() / "tests/tokenizers/gguf_vocab_reference.py").string(),
                                       dir.path().string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ref = nlohmann::json::parse(std::ifstream(dir / "sp.json"));
  const GgufVocab v = gguf_vocab_from_file(dir / "sp.model", 330);
  const auto tokens = ref["tokens"].get<std::vector<std::string>>();
  ASSERT_EQ(v.tokens.size(), 330u);
  EXPECT_EQ(std::vector<std::string>(v.tokens.begin(), v.tokens.begin() + 320), tokens);
  EXPECT_EQ(std::vector<float>(v.scores.begin(), v.scores.begin() + 320), ref["scores"].get<std::vector<float>>());
  EXPECT_EQ(std::vector<int32_t>(v.types.begin(), v.types.begin() + 320), ref["types"].get<std::vector<int32_t>>());
  EXPECT_EQ(v.tokens[325], "[PAD325]");
  EXPECT_EQ(v.scores[325], -1000.0F);
  EXPECT_EQ(v.model, "llama");
  EXPECT_EQ(v.bos, ref["bos"].get<int>());
  EXPECT_EQ(v.eos, ref["eos"].get<int>());
  EXPECT_EQ(v.unk, ref["unk"].get<int>());
}

TEST(GgufVocab, PreTokenizerNamesFollowTheSplitRegex) {
  EXPECT_EQ(gguf_pre_tokenizer(kGpt2Pattern), "gpt-2");
  EXPECT_EQ(gguf_pre_tokenizer(kCl100kPattern), "llama-bpe");
  EXPECT_THROW(gguf_pre_tokenizer(R"(\w+|\s+)"), ConfigError);
}

}  // namespace troupe::tokenizers::gguf_vocab_test
