// SentencePieceTokenizer (tokenizers/sentencepiece_tokenizer.h) against the `sentencepiece` package itself:
// tests/tokenizers/sentencepiece_reference.py trains BPE and Unigram models and encodes ~1 MB of text plus random
// strings; every id sequence and decoded text must be identical. Plus hand-computed cases and malformed files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "tests/support/test_support.h"
#include "tokenizers/sentencepiece_tokenizer.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::tokenizers {
namespace {

using ::testing::HasSubstr;
using testing::ScratchDir;

const std::string kSp = "\xE2\x96\x81";  // U+2581

std::string quoted(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

TEST(SentencePiece, IdsAndTextsEqualTheSentencepiecePackage) {
  ScratchDir dir("sentencepiece");
  const std::string script = (testing::source_dir() / "tests" / "tokenizers" / "sentencepiece_reference.py").string();
  const auto result = testing::run_process(
      {TROUPE_PYTHON, script, testing::source_dir().string(), dir.path().string(), "7"}, std::chrono::seconds(240));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const auto cases = nlohmann::json::parse(testing::read_file(dir / "cases.json"));
  const auto texts = cases["texts"].get<std::vector<std::string>>();
  size_t bytes = 0;
  for (const auto& t : texts) bytes += t.size();
  ASSERT_GT(texts.size(), 600u);
  for (const auto& model : cases["models"]) {
    const std::string name = model["name"].get<std::string>();
    const auto tok = SentencePieceTokenizer::from_file(model["file"].get<std::string>());
    const BpeTokenizer opened = open_tokenizer(model["file"].get<std::string>());  // what the CLI gets
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
        ADD_FAILURE() << name << ": text " << i << " " << quoted(texts[i].substr(0, 200)) << " ids differ\n  ours   "
                      << ::testing::PrintToString(got) << "\n  theirs " << ::testing::PrintToString(expected);
      }
      if (i % 4 == 0 && (opened.encode_ordinary(texts[i]) != expected ||
                         opened.decode_lossy_utf8(expected) != model["decoded"][i].get<std::string>())) {
        ++opened_mismatches;
      }
      const auto decoded = tok.decode(expected);
      if (decoded != model["decoded"][i].get<std::string>() && text_mismatches++ == 0) {
        ADD_FAILURE() << name << ": decode of text " << i << ": ours " << quoted(decoded) << " theirs "
                      << quoted(model["decoded"][i].get<std::string>());
      }
    }
    EXPECT_EQ(id_mismatches, 0u) << name;
    EXPECT_EQ(text_mismatches, 0u) << name;
    EXPECT_EQ(opened_mismatches, 0u) << name << " through open_tokenizer";
    std::printf("%s: %zu texts, %zu bytes, %zu ids, %zu id mismatches, %zu decode mismatches; encode %.2f MB/s\n",
                name.c_str(), texts.size(), bytes, ids, id_mismatches, text_mismatches, bytes / 1e6 / seconds);
  }
}

SentencePieceModel tiny_model(SentencePieceModelType type) {
  SentencePieceModel m;
  m.trainer.model_type = type;
  m.pieces = {{"<unk>", 0.0F, PieceType::kUnknown}, {"<s>", 0.0F, PieceType::kControl},
              {kSp, -1.0F, PieceType::kNormal},     {"a", -2.0F, PieceType::kNormal},
              {"b", -2.0F, PieceType::kNormal},     {kSp + "a", -1.5F, PieceType::kNormal},
              {"ab", -1.0F, PieceType::kNormal},    {kSp + "ab", -4.0F, PieceType::kNormal}};
  return m;
}

TEST(SentencePiece, UnigramViterbiByHand) {
  const SentencePieceTokenizer tok(tiny_model(SentencePieceModelType::kUnigram), "tiny");
  // "▁ab": ▁ab = -4; ▁a + b = -3.5; ▁ + ab = -2 (best); ▁ + a + b = -5.
  EXPECT_EQ(tok.encode("ab"), (std::vector<int>{2, 6}));
  // "c" has no piece: one <unk> edge at min_score - 10; "cc" is a run of unknowns merged into one <unk>.
  EXPECT_EQ(tok.encode("a cc"), (std::vector<int>{5, 2, 0}));
  EXPECT_EQ(tok.decode({5, 2, 0}), "a  \xE2\x81\x87 ");
  EXPECT_EQ(tok.encode("   "), (std::vector<int>{}));
}

TEST(SentencePiece, BpeMergesByScoreByHand) {
  const SentencePieceTokenizer tok(tiny_model(SentencePieceModelType::kBpe), "tiny");
  // "▁ab": pairs ▁a (-1.5) and ab (-1.0): ab first, then ▁ab (-4) merges ▁ + ab.
  EXPECT_EQ(tok.encode("ab"), (std::vector<int>{7}));
  EXPECT_EQ(tok.decode({7}), "ab");
}

TEST(SentencePiece, ByteFallbackAndNormalizerSpaces) {
  SentencePieceModel m = tiny_model(SentencePieceModelType::kUnigram);
  m.trainer.byte_fallback = true;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    m.pieces.push_back({name, 0.0F, PieceType::kByte});
  }
  const SentencePieceTokenizer tok(m, "tiny-bytes");
  // "é" (C3 A9) is unknown: its bytes become <0xC3> <0xA9> (ids 8 + byte).
  EXPECT_EQ(tok.encode("\xC3\xA9"), (std::vector<int>{2, 8 + 0xC3, 8 + 0xA9}));
  EXPECT_EQ(tok.decode({2, 8 + 0xC3, 8 + 0xA9}), "\xC3\xA9");
  EXPECT_EQ(tok.decode({8 + 0xC3}), "\xEF\xBF\xBD");  // a cut character decodes to U+FFFD
  EXPECT_THROW(tok.decode({9999}), DataError);
}

TEST(SentencePiece, MalformedModelsFailWithDataError) {
  const auto message = [](const std::string& bytes) {
    try {
      parse_sentencepiece_model(bytes, "bad.model");
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_THAT(message(""), HasSubstr("no pieces"));
  EXPECT_THAT(message(std::string("\x0A\x05\x0A\x01", 4)), HasSubstr("runs past the end"));  // truncated piece
  EXPECT_THAT(message(std::string("\x0D\x00\x00", 3)), HasSubstr("wrong wire type"));        // pieces as fixed32
  EXPECT_THAT(message(std::string("\x0A\x02\x18\x09", 4)), HasSubstr("piece type 9"));
  EXPECT_THAT(message(std::string("\x0A\x03\x0A\x01\x61\x12\x02\x18\x03", 9)), HasSubstr("WORD/CHAR"));
  ScratchDir dir("sentencepiece-bad");
  testing::write_file(dir / "nounk.model", std::string("\x0A\x03\x0A\x01\x61", 5));
  try {
    SentencePieceTokenizer::from_file(dir / "nounk.model");
    ADD_FAILURE() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("nounk.model: no piece of type UNKNOWN"));
  }
  EXPECT_THROW(SentencePieceTokenizer::from_file(dir / "missing.model"), IoError);
}

}  // namespace
}  // namespace troupe::tokenizers
