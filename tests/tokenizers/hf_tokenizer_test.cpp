// HfTokenizer (tokenizers/hf_tokenizer.h) against the Hugging Face `tokenizers` package itself:
// tests/tokenizers/hf_tokenizer_reference.py trains Llama-3-, Qwen2- (NFC), Mistral-, Llama-2-legacy-, GPT-2-style
// and mixed (NFKC + Lowercase) BPE tokenizers and encodes ~1 MB of text plus random strings with added tokens in them;
// every id sequence and decoded text must be identical. Plus unsupported components and malformed files.
#include "tokenizers/hf_tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>

#include "core/errors.h"
#include "tests/support/test_support.h"
#include "tokenizers/foreign_formats.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::tokenizers {
namespace {

using ::testing::HasSubstr;
using testing::ScratchDir;

std::string quoted(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

TEST(HfTokenizer, IdsAndTextsEqualTheTokenizersPackage) {
  ScratchDir dir("hf-tokenizer");
  const std::string script = (testing::source_dir() / "tests" / "tokenizers" / "hf_tokenizer_reference.py").string();
  const auto result = testing::run_process(
      {TROUPE_PYTHON, script, testing::source_dir().string(), dir.path().string(), "11"}, std::chrono::seconds(240));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto cases = nlohmann::json::parse(testing::read_file(dir / "cases.json"));
  const auto texts = cases["texts"].get<std::vector<std::string>>();
  size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();
  ASSERT_GT(texts.size(), 600u);
  for (const auto& model : cases["models"]) {
    const std::string name = model["name"].get<std::string>();
    const auto tok = HfTokenizer::from_file(model["file"].get<std::string>());
    const BpeTokenizer opened = open_tokenizer(model["file"].get<std::string>());  // what the CLI gets
    std::set<std::string> all_specials;
    for (const auto& [text, id] : opened.spec().special_tokens) all_specials.insert(text);
    size_t opened_mismatches = 0;
    size_t id_mismatches = 0;
    double seconds = 0.0;  // in encode() alone
    size_t text_mismatches = 0;
    size_t ids = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      const auto expected = model["ids"][i].get<std::vector<int>>();
      const auto t0 = std::chrono::steady_clock::now();
      const auto got = tok.encode(texts[i]);
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      ids += got.size();
      if (got != expected && id_mismatches++ == 0) {
        ADD_FAILURE() << name << ": text " << i << " " << quoted(texts[i].substr(0, 300)) << " ids differ\n  ours   "
                      << ::testing::PrintToString(got) << "\n  theirs " << ::testing::PrintToString(expected);
      }
      if (i % 4 == 0 && (opened.encode(texts[i], all_specials) != expected ||
                         opened.decode_lossy_utf8(expected) != model["decoded"][i].get<std::string>())) {
        ++opened_mismatches;
      }
      const auto decoded = tok.decode(expected);
      if (decoded != model["decoded"][i].get<std::string>() && text_mismatches++ == 0) {
        ADD_FAILURE() << name << ": decode of text " << i << ": ours " << quoted(decoded.substr(0, 300)) << " theirs "
                      << quoted(model["decoded"][i].get<std::string>().substr(0, 300));
      }
    }
    EXPECT_EQ(id_mismatches, 0u) << name;
    EXPECT_EQ(text_mismatches, 0u) << name;
    EXPECT_EQ(opened_mismatches, 0u) << name << " through open_tokenizer";
    std::printf("%s: %zu texts, %zu bytes, %zu ids, %zu id mismatches, %zu decode mismatches; encode %.2f MB/s\n",
                name.c_str(), texts.size(), bytes, ids, id_mismatches, text_mismatches, bytes / 1e6 / seconds);
  }
}

// A minimal tokenizer.json with the given normalizer / pre_tokenizer JSON.
std::string tiny_json(const std::string& normalizer, const std::string& pre_tokenizer) {
  return R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}, "normalizer": )" +
         normalizer + R"(, "pre_tokenizer": )" + pre_tokenizer + "}";
}

std::string load_error(const ScratchDir& dir, const std::string& text) {
  testing::write_file(dir / "tokenizer.json", text);
  try {
    HfTokenizer::from_file(dir / "tokenizer.json");
  } catch (const DataError& e) {
    return e.what();
  }
  return "no error";
}

TEST(HfTokenizer, MergesByRankByHand) {
  ScratchDir dir("hf-tokenizer-tiny");
  testing::write_file(dir / "tokenizer.json", tiny_json("null", "null"));
  const auto tok = HfTokenizer::from_file(dir / "tokenizer.json");
  EXPECT_EQ(tok.encode("abab"), (std::vector<int>{2, 2}));
  EXPECT_EQ(tok.encode("aab"), (std::vector<int>{0, 2}));
  EXPECT_EQ(tok.encode("c"), (std::vector<int>{}));  // no unk_token: dropped, as `tokenizers` does
  EXPECT_EQ(tok.decode({2, 0}), "ab a");             // no decoder: tokens joined by spaces
}

TEST(HfTokenizer, OpenedPipelineTokenizersRefuseRankExports) {
  ScratchDir dir("hf-tokenizer-export");
  testing::write_file(dir / "tokenizer.json", tiny_json(R"({"type": "Lowercase"})", "null"));
  const BpeTokenizer tok = open_tokenizer((dir / "tokenizer.json").string());
  EXPECT_EQ(tok.encode_ordinary("ABab"), (std::vector<int>{2, 2}));
  EXPECT_EQ(tok.vocab_size(), 3);
  EXPECT_EQ(tok.pieces("ABa"), (std::vector<std::string>{"ab", "a"}));  // decoded text per token (no decoder: as is)
  EXPECT_THROW(save_hf_tokenizer_json(dir / "out.json", tok.spec()), DataError);
  EXPECT_THROW(save_tiktoken_files(tok.spec(), dir / "out.tiktoken", dir / "out.meta.json"), DataError);
  EXPECT_THROW(save_tokenizer_file(dir / "out.troupe.json", TokenizerFile{tok.spec(), {}, {}}), DataError);
}

TEST(HfTokenizer, UnsupportedComponentsAndMalformedFilesAreDataErrors) {
  ScratchDir dir("hf-tokenizer-bad");
  EXPECT_THAT(load_error(dir, tiny_json(R"({"type": "BertNormalizer"})", "null")),
              HasSubstr("tokenizer.json: normalizer: normalizer type 'BertNormalizer' is not supported"));
  EXPECT_THAT(load_error(dir, tiny_json("null", R"({"type": "BertPreTokenizer"})")),
              HasSubstr("pre_tokenizer: pre_tokenizer type 'BertPreTokenizer' is not supported"));
  EXPECT_THAT(
      load_error(dir, tiny_json("null", R"({"type": "Split", "pattern": {"Regex": "("}, "behavior": "Isolated"})")),
      HasSubstr("pre_tokenizer.pattern"));
  EXPECT_THAT(load_error(dir, R"({"model": {"type": "WordPiece", "vocab": {}}})"), HasSubstr("only BPE models"));
  EXPECT_THAT(load_error(dir, R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}})"),
              HasSubstr("model.merges[0]: token 'b' is not in the vocab"));
  EXPECT_THAT(load_error(dir, R"({"model": )"), HasSubstr("invalid JSON"));
  EXPECT_THAT(load_error(dir, R"({"model": {"type": "BPE", "vocab": {"a": 99999999999}, "merges": []}})"),
              HasSubstr("model.vocab.a: expected an integer id in [0, 2^22]"));
  EXPECT_THAT(load_error(dir, R"({"model": {"type": "BPE", "vocab": {}, "merges": []},
                                  "added_tokens": [{"id": -1, "content": "x"}]})"),
              HasSubstr("added_tokens[0]: expected an id in [0, 2^22]"));
}

}  // namespace
}  // namespace troupe::tokenizers
