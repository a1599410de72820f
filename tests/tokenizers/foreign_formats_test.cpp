// Tests for tokenizers/foreign_formats.h: the real tiktoken / GPT-2 files load with the expected sizes, and
// malformed or truncated files fail with a DataError naming file:line. Encoding is tested elsewhere.
#include "tokenizers/foreign_formats.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/errors.h"
#include "tests/support/test_support.h"
#include "tests/support/tokenizer_test_data.h"
#include "tokenizers/pretokenizer.h"

namespace troupe::tokenizers {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// Runs fn, expecting a DataError; returns its message.
template <typename Fn>
std::string data_error_message(Fn&& fn) {
  try {
    fn();
  } catch (const DataError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected DataError";
  return "";
}

TEST(TokenizerFiles, LoadsTiktokenEncodings) {
  const BpeSpec gpt2 = tiktoken_encoding("gpt2", testing::tokenizer_data_dir());
  EXPECT_EQ(gpt2.tokens_by_rank.size(), 50256u);
  EXPECT_EQ(gpt2.tokens_by_rank[0], "!");
  EXPECT_EQ(gpt2.tokens_by_rank[220], " ");
  EXPECT_EQ(gpt2.special_tokens, (std::map<std::string, int>{{"<|endoftext|>", 50256}}));
  EXPECT_EQ(gpt2.pattern, kGpt2Pattern);
  const BpeSpec cl = tiktoken_encoding("cl100k_base", testing::tokenizer_data_dir());
  EXPECT_EQ(cl.tokens_by_rank.size(), 100256u);
  EXPECT_EQ(cl.special_tokens.at("<|endofprompt|>"), 100276);
  EXPECT_EQ(cl.pattern, kCl100kPattern);
}

TEST(TokenizerFiles, Gpt2EncoderJsonEqualsTiktokenRanks) {
  const BpeSpec original = load_gpt2_encoder(testing::tokenizer_data_dir() / "gpt2-encoder/encoder.json",
                                             testing::tokenizer_data_dir() / "gpt2-encoder/vocab.bpe");
  const BpeSpec tiktoken = tiktoken_encoding("gpt2", testing::tokenizer_data_dir());
  EXPECT_EQ(original.tokens_by_rank, tiktoken.tokens_by_rank);
  EXPECT_EQ(original.special_tokens, tiktoken.special_tokens);
}

TEST(TokenizerFiles, SavedTiktokenFilesLoadBackIdentically) {
  const BpeSpec cl = tiktoken_encoding("cl100k_base", testing::tokenizer_data_dir());
  testing::ScratchDir dir;
  save_tiktoken_files(cl, dir / "copy.tiktoken", dir / "copy.meta.json");
  const BpeSpec again = tiktoken_encoding("copy", dir.path());
  EXPECT_EQ(again.tokens_by_rank, cl.tokens_by_rank);
  EXPECT_EQ(again.special_tokens, cl.special_tokens);
  EXPECT_EQ(again.pattern, cl.pattern);
  // Byte-identical to the file it came from: the same lines in rank order.
  EXPECT_EQ(testing::read_file(dir / "copy.tiktoken"),
            testing::read_file(testing::tokenizer_data_dir() / "cl100k_base.tiktoken"));
}

TEST(TokenizerFiles, Base64) {
  std::string out;
  ASSERT_TRUE(detail::base64_decode("IQ==", out));
  EXPECT_EQ(out, "!");
  ASSERT_TRUE(detail::base64_decode("aGVsbG8=", out));
  EXPECT_EQ(out, "hello");
  ASSERT_TRUE(detail::base64_decode("/w==", out));
  EXPECT_EQ(out, "\xFF");
  EXPECT_FALSE(detail::base64_decode("", out));
  EXPECT_FALSE(detail::base64_decode("a", out));
  EXPECT_FALSE(detail::base64_decode("a$==", out));
  EXPECT_FALSE(detail::base64_decode("IQ=A", out));
}

TEST(TokenizerFiles, MalformedTiktokenLinesNameFileAndLine) {
  testing::ScratchDir dir("bpe-files");
  const auto path = dir / "bad.tiktoken";
  const std::string file = path.string();
  testing::write_file(path, "IQ== 0\nIg== 1\n*** 2\n");
  EXPECT_THAT(data_error_message([&] { load_tiktoken_file(path, kGpt2Pattern, {}); }), HasSubstr(file + ":3:"));
  testing::write_file(path, "IQ== 0\nIg== one\n");
  EXPECT_THAT(data_error_message([&] { load_tiktoken_file(path, kGpt2Pattern, {}); }), HasSubstr(file + ":2:"));
  testing::write_file(path, "IQ== 0\nIg==\n");
  EXPECT_THAT(data_error_message([&] { load_tiktoken_file(path, kGpt2Pattern, {}); }), HasSubstr(file + ":2:"));
  testing::write_file(path, "IQ== 0\nIg== 7\n");  // gap: ranks must be 0..n-1
  EXPECT_THAT(data_error_message([&] { load_tiktoken_file(path, kGpt2Pattern, {}); }), HasSubstr(file + ":2:"));
  testing::write_file(path, "IQ== 0\nIg== 0\n");
  EXPECT_THAT(data_error_message([&] { load_tiktoken_file(path, kGpt2Pattern, {}); }), HasSubstr(file + ":2:"));
  EXPECT_THROW(load_tiktoken_file(dir / "missing.tiktoken", kGpt2Pattern, {}), IoError);
}

TEST(TokenizerFiles, TruncatedEncoderJsonNamesFile) {
  testing::ScratchDir dir("bpe-files");
  const std::string full = testing::read_file(testing::tokenizer_data_dir() / "gpt2-encoder/encoder.json");
  testing::write_file(dir / "encoder.json", full.substr(0, full.size() / 2));
  EXPECT_THAT(data_error_message([&] {
                load_gpt2_encoder(dir / "encoder.json", testing::tokenizer_data_dir() / "gpt2-encoder/vocab.bpe");
              }),
              HasSubstr((dir / "encoder.json").string() + ":1:"));
}

TEST(TokenizerFiles, MalformedVocabBpeNamesFileAndLine) {
  testing::ScratchDir dir("bpe-files");
  testing::write_file(dir / "vocab.bpe", "#version: 0.2\n\xC4\xA0 t\nabc\n");
  EXPECT_THAT(data_error_message([&] {
                load_gpt2_encoder(testing::tokenizer_data_dir() / "gpt2-encoder/encoder.json", dir / "vocab.bpe");
              }),
              HasSubstr((dir / "vocab.bpe").string() + ":3:"));
}

TEST(TokenizerFiles, BadMetaJsonIsDataError) {
  testing::ScratchDir dir("bpe-files");
  testing::write_file(dir / "x.meta.json", "{\"pat_str\": 5}");
  testing::write_file(dir / "x.tiktoken", "IQ== 0\n");
  EXPECT_THAT(data_error_message([&] { tiktoken_encoding("x", dir.path()); }),
              HasSubstr((dir / "x.meta.json").string()));
  // A float id was cast by nlohmann's get<int>(): undefined behaviour beyond int's range (a UBSan report).
  testing::write_file(dir / "x.meta.json", R"({"pat_str": "a", "special_tokens": {"<x>": 1e300}})");
  EXPECT_THAT(data_error_message([&] { tiktoken_encoding("x", dir.path()); }),
              AllOf(HasSubstr((dir / "x.meta.json").string()), HasSubstr("special_tokens.<x> must be an integer id")));
}

// A Hugging Face tokenizer.json built from the GPT-2 encoder.json + vocab.bpe, as HF's own gpt2 file is.
nlohmann::json hf_gpt2_json() {
  nlohmann::json vocab =
      nlohmann::json::parse(testing::read_file(testing::tokenizer_data_dir() / "gpt2-encoder/encoder.json"));
  nlohmann::json merges = nlohmann::json::array();
  std::istringstream lines(testing::read_file(testing::tokenizer_data_dir() / "gpt2-encoder/vocab.bpe"));
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.rfind("#version", 0) != 0) merges.push_back(line);
  }
  nlohmann::json root;
  root["normalizer"] = nullptr;
  root["added_tokens"] = {{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}}};
  root["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  root["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}};
  return root;
}

TEST(TokenizerFiles, HfTokenIdsMustBeIntegers) {
  testing::ScratchDir dir("bpe-files");
  const nlohmann::json good = hf_gpt2_json();
  nlohmann::json root = good;
  root["added_tokens"][0]["id"] = 1e300;  // a float: nlohmann's get<int>() cast it (undefined behaviour)
  testing::write_file(dir / "tokenizer.json", root.dump());
  EXPECT_THAT(data_error_message([&] { load_hf_tokenizer_json(dir / "tokenizer.json"); }),
              HasSubstr("added_tokens[].id must be an integer id"));
  root = good;
  root["model"]["vocab"]["!"] = 0.5;
  testing::write_file(dir / "tokenizer.json", root.dump());
  EXPECT_THAT(data_error_message([&] { load_hf_tokenizer_json(dir / "tokenizer.json"); }),
              AllOf(HasSubstr((dir / "tokenizer.json").string()), HasSubstr("model.vocab['!'] must be an integer id")));
}

TEST(TokenizerFiles, HfTokenizerJsonMatchesTiktokenGpt2) {
  testing::ScratchDir dir("bpe-files");
  nlohmann::json root = hf_gpt2_json();
  testing::write_file(dir / "tokenizer.json", root.dump());
  const BpeSpec hf = load_hf_tokenizer_json(dir / "tokenizer.json");
  const BpeSpec tiktoken = tiktoken_encoding("gpt2", testing::tokenizer_data_dir());
  EXPECT_EQ(hf.tokens_by_rank, tiktoken.tokens_by_rank);
  EXPECT_EQ(hf.special_tokens, tiktoken.special_tokens);
  EXPECT_EQ(hf.pattern, kGpt2Pattern);

  // A Sequence[Split(Regex), ByteLevel(use_regex=false)] pre_tokenizer takes the Split's regex.
  root["pre_tokenizer"] = {{"type", "Sequence"},
                           {"pretokenizers",
                            {{{"type", "Split"}, {"pattern", {{"Regex", kCl100kPattern}}}, {"behavior", "Isolated"}},
                             {{"type", "ByteLevel"}, {"use_regex", false}}}}};
  testing::write_file(dir / "tokenizer.json", root.dump());
  EXPECT_EQ(load_hf_tokenizer_json(dir / "tokenizer.json").pattern, kCl100kPattern);

  root["model"]["type"] = "WordPiece";
  testing::write_file(dir / "tokenizer.json", root.dump());
  EXPECT_THAT(data_error_message([&] { load_hf_tokenizer_json(dir / "tokenizer.json"); }),
              HasSubstr((dir / "tokenizer.json").string()));
}

}  // namespace
}  // namespace troupe::tokenizers
