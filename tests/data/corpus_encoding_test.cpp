// Tests for corpus encoding (data/corpus_encoding.h): text files streamed into token files and JSONL documents
// given their ids. References: tiktoken's vectors (exact ids) and single-threaded encode_ordinary.
#include "data/corpus_encoding.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/errors.h"
#include "tests/support/test_support.h"
#include "tests/support/tokenizer_test_data.h"
#include "tokenizers/corpus.h"
#include "tokenizers/foreign_formats.h"
#include "tokenizers/pretokenizer.h"

namespace troupe::data {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::read_file;
using testing::ScratchDir;
using testing::write_file;

using namespace tokenizers;

using testing::concat;
using testing::corpus_text;
using testing::error_message;

// ---- token files ------------------------------------------------------------------------------------------

TEST(TokenFiles, StreamingEncodeOfFilesMatchesWholeFileEncode) {
  ScratchDir dir;
  const std::string big = corpus_text(300 << 10);
  write_file(dir / "in/b.txt", big);
  write_file(dir / "in/a.txt", "Hello, world\n");
  write_file(dir / "in/sub/c.txt", "");
  write_file(dir / "in/.hidden", "skipped");
  const auto files = list_text_files({(dir / "in").string()});
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0].filename(), "a.txt");
  EXPECT_EQ(files[2].filename(), "c.txt");

  EncodeFilesOptions options;
  options.threads = 2;
  options.block_bytes = 4096;  // many blocks per file, each cut at a safe point
  options.separator = 50256;
  const auto report = encode_files_to_token_file(testing::gpt2_tokenizer(), files, dir / "out/tokens.bin", options);
  std::vector<int> expected = testing::gpt2_tokenizer().encode_ordinary("Hello, world\n");
  expected.push_back(50256);
  expected = concat(expected, testing::gpt2_tokenizer().encode_ordinary(big));
  expected.push_back(50256);
  expected.push_back(50256);  // the empty file is still a document
  EXPECT_EQ(report.files, 3u);
  EXPECT_EQ(report.bytes, big.size() + 13);
  ASSERT_EQ(report.tokens, expected.size());

  const TokenFile tokens(dir / "out/tokens.bin");
  EXPECT_EQ(tokens.info().dtype, "uint16");
  EXPECT_EQ(tokens.info().documents, 3u);
  EXPECT_EQ(tokens.info().separator, std::optional<int64_t>(50256));
  EXPECT_EQ(tokens.info().tokenizer, "gpt2");
  EXPECT_EQ(fs::file_size(dir / "out/tokens.bin"), expected.size() * 2);
  std::vector<int64_t> got(tokens.size());
  tokens.read(0, got.size(), got.data());
  EXPECT_TRUE(std::equal(got.begin(), got.end(), expected.begin()));
  EXPECT_FALSE(fs::exists(dir / "out/tokens.bin.tmp"));
}

TEST(TokenFiles, Cl100kIdsAreStoredAsUint32) {
  ScratchDir dir;
  write_file(dir / "a.txt", "Hello, world! <|endoftext|> 12345");
  EncodeFilesOptions options;
  const auto report = encode_files_to_token_file(testing::cl100k_tokenizer(), {dir / "a.txt"}, dir / "t.bin", options);
  const TokenFile tokens(dir / "t.bin");
  EXPECT_EQ(tokens.info().dtype, "uint32");
  EXPECT_EQ(tokens.info().separator, std::nullopt);
  const auto expected = testing::cl100k_tokenizer().encode_ordinary("Hello, world! <|endoftext|> 12345");
  ASSERT_EQ(tokens.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(tokens[i], expected[i]);
  EXPECT_EQ(report.tokens, expected.size());
}

TEST(TokenFiles, FailuresLeaveNothingBehindAndTruncationIsDetected) {
  ScratchDir dir;
  write_file(dir / "a.txt", "fine");
  EncodeFilesOptions options;
  EXPECT_THROW(encode_files_to_token_file(testing::gpt2_tokenizer(), {dir / "a.txt", dir / "missing.txt"},
                                          dir / "t.bin", options),
               IoError);
  EXPECT_FALSE(fs::exists(dir / "t.bin"));
  EXPECT_FALSE(fs::exists(dir / "t.bin.tmp"));
  EXPECT_THROW(list_text_files({(dir / "missing").string()}), IoError);

  encode_files_to_token_file(testing::gpt2_tokenizer(), {dir / "a.txt"}, dir / "t.bin", options);
  fs::resize_file(dir / "t.bin", 1);
  EXPECT_THAT(error_message([&] { TokenFile t(dir / "t.bin"); }), HasSubstr("truncated"));
  fs::remove(dir / "t.bin.json");
  EXPECT_THAT(error_message([&] { TokenFile t(dir / "t.bin"); }), HasSubstr("sidecar"));
  TokenFileWriter writer(dir / "w.bin", 100, "tiny");
  EXPECT_THAT(error_message([&] { writer.append({5, 100}); }), HasSubstr("id 100 outside the vocabulary [0, 100)"));
}

// ---- JSONL -----------------------------------------------------------------------------------------------------

TEST(Jsonl, AddsIdsKeepsOtherFieldsAndOrder) {
  ScratchDir dir;
  std::string in;
  const auto vectors = testing::read_tokenizer_vectors("gpt2");
  for (size_t i = 0; i < vectors.size(); ++i) {
    in += nlohmann::json{{"id", i}, {"body", vectors[i].text}}.dump() + "\n";
    if (i == 3) in += "\n";  // blank lines are skipped
  }
  write_file(dir / "in.jsonl", in);
  JsonlEncodeOptions options;
  options.text_field = "body";
  options.ids_field = "tokens";
  options.threads = 3;
  options.batch_lines = 7;
  const auto report = encode_jsonl(testing::gpt2_tokenizer(), dir / "in.jsonl", dir / "out.jsonl", options);
  EXPECT_EQ(report.lines, vectors.size());
  std::ifstream out(dir / "out.jsonl");
  size_t i = 0;
  for (std::string line; std::getline(out, line); ++i) {
    const auto j = nlohmann::json::parse(line);
    ASSERT_LT(i, vectors.size());
    EXPECT_EQ(j.at("id").get<size_t>(), i);
    EXPECT_EQ(j.at("body").get<std::string>(), vectors[i].text);
    EXPECT_EQ(j.at("tokens").get<std::vector<int>>(), vectors[i].ids);
  }
  EXPECT_EQ(i, vectors.size());
}

TEST(Jsonl, BadLinesNameFileAndLineAndWriteNothing) {
  ScratchDir dir;
  JsonlEncodeOptions options;
  auto try_input = [&](const std::string& text) {
    write_file(dir / "in.jsonl", text);
    const std::string message =
        error_message([&] { encode_jsonl(testing::gpt2_tokenizer(), dir / "in.jsonl", dir / "o.jsonl", options); });
    EXPECT_FALSE(fs::exists(dir / "o.jsonl"));
    EXPECT_FALSE(fs::exists(dir / "o.jsonl.tmp"));
    return message;
  };
  const std::string where = (dir / "in.jsonl").string();
  EXPECT_THAT(try_input("{\"text\": \"a\"}\n{\"text\": \"b\"\n"), HasSubstr(where + ":2: invalid JSON"));
  EXPECT_THAT(try_input("{\"text\": \"a\"}\n\n[1]\n"), HasSubstr(where + ":3: expected a JSON object"));
  EXPECT_THAT(try_input("{\"txt\": \"a\"}\n"), HasSubstr(where + ":1: expected a string field 'text'"));
  EXPECT_THAT(try_input("{\"text\": 5}\n"), HasSubstr(where + ":1: expected a string field 'text'"));
  options.allow_special = true;
  write_file(dir / "in.jsonl", "{\"text\": \"x<|endoftext|>\"}\n");
  encode_jsonl(testing::gpt2_tokenizer(), dir / "in.jsonl", dir / "o.jsonl", options);
  EXPECT_EQ(nlohmann::json::parse(read_file(dir / "o.jsonl"))["ids"], nlohmann::json({87, 50256}));
}

}  // namespace
}  // namespace troupe::data
