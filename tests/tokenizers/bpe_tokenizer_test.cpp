// Tests for tokenizers/bpe_tokenizer.h and tokenizers/pretokenizer.h: exact ids against tiktoken's own test vectors
// (gpt2, cl100k_base), byte round trips, special tokens and lossy decoding. Loader details are in
// tokenizer_files_test.cpp.
#include "tokenizers/bpe_tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/errors.h"
#include "tests/support/tokenizer_test_data.h"
#include "tokenizers/foreign_formats.h"
#include "tokenizers/pretokenizer.h"

namespace troupe::tokenizers {
namespace {

using Vector = testing::TokenizerVector;

// Counts vectors whose ids and decoded text both match; reports the first few failures.
size_t count_matching(const BpeTokenizer& tok, const std::vector<Vector>& vectors) {
  size_t matched = 0;
  for (const Vector& v : vectors) {
    const std::vector<int> ids = tok.encode_ordinary(v.text);
    const bool ok = ids == v.ids && tok.decode(v.ids) == v.text;
    EXPECT_EQ(ids, v.ids) << "text: " << v.text;
    EXPECT_EQ(tok.decode(v.ids), v.text);
    matched += ok ? 1 : 0;
  }
  return matched;
}

TEST(BpeTokenizer, Gpt2MatchesAllTiktokenVectors) {
  const auto vectors = testing::read_tokenizer_vectors("gpt2");
  ASSERT_EQ(vectors.size(), 291u);
  EXPECT_EQ(count_matching(testing::gpt2_tokenizer(), vectors), 291u);
}

TEST(BpeTokenizer, Cl100kMatchesAllTiktokenVectors) {
  const auto vectors = testing::read_tokenizer_vectors("cl100k_base");
  ASSERT_EQ(vectors.size(), 291u);
  EXPECT_EQ(count_matching(testing::cl100k_tokenizer(), vectors), 291u);
}

TEST(BpeTokenizer, HandCheckedSmallCases) {
  EXPECT_EQ(testing::gpt2_tokenizer().encode_ordinary("hello world"), (std::vector<int>{31373, 995}));
  EXPECT_EQ(testing::cl100k_tokenizer().encode_ordinary("hello world"), (std::vector<int>{15339, 1917}));
  EXPECT_TRUE(testing::gpt2_tokenizer().encode_ordinary("").empty());
  EXPECT_EQ(testing::gpt2_tokenizer().vocab_size(), 50257);
  EXPECT_EQ(testing::cl100k_tokenizer().vocab_size(), 100277);
}

TEST(BpeTokenizer, Gpt2EncoderJsonGivesSameIdsAsTiktokenFile) {
  const BpeTokenizer original(load_gpt2_encoder(testing::tokenizer_data_dir() / "gpt2-encoder/encoder.json",
                                                testing::tokenizer_data_dir() / "gpt2-encoder/vocab.bpe"));
  size_t matched = 0;
  for (const Vector& v : testing::read_tokenizer_vectors("gpt2")) {
    const auto ids = original.encode_ordinary(v.text);
    EXPECT_EQ(ids, v.ids) << "text: " << v.text;
    matched += ids == v.ids ? 1 : 0;
  }
  EXPECT_EQ(matched, 291u);
  EXPECT_EQ(original.encode({"<|endoftext|>"}, {"<|endoftext|>"}), (std::vector<int>{50256}));
}

// Random strings mixing raw bytes (often invalid UTF-8), ASCII and multi-byte characters.
std::string random_text(std::mt19937& rng) {
  static const std::vector<std::string> atoms = {"a",      "Z",      " ",  "  ", "\n",           "\r\n",
                                                 "'s",     "7",      "é",  "€",  "日本",         "🙂",
                                                 "\u200d", "\u0085", "\t", "-",  "<|endoftext|>"};
  std::uniform_int_distribution<int> len(0, 40), kind(0, 2), byte(0, 255);
  std::uniform_int_distribution<size_t> atom(0, atoms.size() - 1);
  std::string s;
  for (int i = len(rng); i > 0; --i) {
    if (kind(rng) == 0) {
      s += static_cast<char>(byte(rng));
    } else {
      s += atoms[atom(rng)];
    }
  }
  return s;
}

TEST(BpeTokenizer, RandomBytesRoundTrip) {
  std::mt19937 rng(20240611);
  for (int i = 0; i < 3000; ++i) {
    const std::string s = random_text(rng);
    ASSERT_EQ(testing::gpt2_tokenizer().decode(testing::gpt2_tokenizer().encode_ordinary(s)), s) << "case " << i;
    ASSERT_EQ(testing::cl100k_tokenizer().decode(testing::cl100k_tokenizer().encode_ordinary(s)), s) << "case " << i;
    std::string joined;
    for (const auto& p : testing::gpt2_tokenizer().pieces(s)) joined += p;
    ASSERT_EQ(joined, s) << "case " << i;
  }
}

TEST(BpeTokenizer, HeapMergeEqualsReferenceScan) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> len(2, 400), letter('a', 'z'), byte(0, 255), coin(0, 3);
  for (int i = 0; i < 300; ++i) {
    std::string s;
    for (int k = len(rng); k > 0; --k) s += static_cast<char>(coin(rng) == 0 ? byte(rng) : letter(rng));
    for (const BpeTokenizer* tok : {&testing::gpt2_tokenizer(), &testing::cl100k_tokenizer()}) {
      const auto heap = detail::merge_piece_for_test(*tok, s, /*use_heap=*/true);
      ASSERT_EQ(heap, detail::merge_piece_for_test(*tok, s, /*use_heap=*/false)) << "case " << i;
      ASSERT_EQ(tok->decode(heap), s);
    }
  }
  // A long single piece takes the heap path inside encode and still round-trips.
  const std::string blob(100000, '=');
  EXPECT_EQ(testing::gpt2_tokenizer().decode(testing::gpt2_tokenizer().encode_ordinary(blob)), blob);
}

TEST(BpeTokenizer, SpecialTokens) {
  const std::string text = "hi<|endoftext|>there";
  EXPECT_EQ(testing::gpt2_tokenizer().encode("<|endoftext|>", {"<|endoftext|>"}), (std::vector<int>{50256}));
  const auto with_special = testing::gpt2_tokenizer().encode(text, {"<|endoftext|>"});
  std::vector<int> expected = testing::gpt2_tokenizer().encode_ordinary("hi");
  expected.push_back(50256);
  for (int id : testing::gpt2_tokenizer().encode_ordinary("there")) expected.push_back(id);
  EXPECT_EQ(with_special, expected);
  EXPECT_EQ(testing::gpt2_tokenizer().decode(with_special), text);
  EXPECT_THROW(testing::gpt2_tokenizer().encode(text, {}), DataError);
  EXPECT_EQ(testing::gpt2_tokenizer().encode(text, {}, /*disallowed_is_error=*/false),
            testing::gpt2_tokenizer().encode_ordinary(text));
  EXPECT_EQ(testing::cl100k_tokenizer().encode("<|fim_prefix|>x<|endoftext|>", {"<|fim_prefix|>", "<|endoftext|>"}),
            (std::vector<int>{100258, testing::cl100k_tokenizer().encode_ordinary("x")[0], 100257}));
  // Allowing one special does not excuse another.
  EXPECT_THROW(testing::cl100k_tokenizer().encode("<|endoftext|><|fim_middle|>", {"<|endoftext|>"}), DataError);
}

TEST(BpeTokenizer, UnknownIdIsDataError) {
  EXPECT_THROW(testing::gpt2_tokenizer().decode({50257}), DataError);
  EXPECT_THROW(testing::gpt2_tokenizer().decode({-1}), DataError);
  EXPECT_THROW(testing::cl100k_tokenizer().decode({100256}), DataError);  // the hole between ranks and specials
  EXPECT_EQ(testing::cl100k_tokenizer().decode({100276}), "<|endofprompt|>");
}

TEST(BpeTokenizer, LossyDecodeReplacesSplitCharacter) {
  // "€" is E2 82 AC; its first two bytes alone are one maximal invalid subpart -> one U+FFFD.
  const auto head = testing::gpt2_tokenizer().encode_ordinary("\xE2\x82");
  std::vector<int> ids = head;
  for (int id : testing::gpt2_tokenizer().encode_ordinary("ok")) ids.push_back(id);
  EXPECT_EQ(testing::gpt2_tokenizer().decode(ids), "\xE2\x82ok");
  EXPECT_EQ(testing::gpt2_tokenizer().decode_lossy_utf8(ids), "\xEF\xBF\xBDok");
  EXPECT_EQ(testing::gpt2_tokenizer().decode_lossy_utf8(testing::gpt2_tokenizer().encode_ordinary("€")), "€");
  EXPECT_EQ(detail::utf8_replace_invalid("\xFF\xC3\x28"), "\xEF\xBF\xBD\xEF\xBF\xBD(");
  EXPECT_EQ(detail::utf8_replace_invalid("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

TEST(BpeTokenizer, RejectsBadSpecs) {
  BpeSpec missing_byte;
  for (int b = 1; b < 256; ++b) missing_byte.tokens_by_rank.emplace_back(1, static_cast<char>(b));
  missing_byte.pattern = kGpt2Pattern;
  EXPECT_THROW(BpeTokenizer{missing_byte}, DataError);
  BpeSpec duplicate = missing_byte;
  duplicate.tokens_by_rank.emplace_back(1, '\x01');
  EXPECT_THROW(BpeTokenizer{duplicate}, DataError);
}

TEST(BpeTokenizer, TinyVocabMergesLowestRankFirst) {
  // Ranks: bytes 0..255, then "ab" (256), "bc" (257), "abc" (258). In "abcd" the pair "ab" has the
  // lowest rank, so it merges first, then "ab"+"c" -> "abc": ids {258, 'd'}.
  BpeSpec spec;
  for (int b = 0; b < 256; ++b) spec.tokens_by_rank.emplace_back(1, static_cast<char>(b));
  spec.tokens_by_rank.insert(spec.tokens_by_rank.end(), {"ab", "bc", "abc"});
  spec.pattern = kGpt2Pattern;
  const BpeTokenizer tok(spec);
  EXPECT_EQ(tok.encode_ordinary("abcd"), (std::vector<int>{258, 'd'}));
  EXPECT_EQ(tok.encode_ordinary("bcd"), (std::vector<int>{257, 'd'}));
  EXPECT_EQ(tok.encode_ordinary("xbc"), (std::vector<int>{'x', 257}));
}

TEST(BpePretokenizer, SplitsLikeTiktoken) {
  const Pretokenizer p(kGpt2Pattern);
  std::vector<std::string_view> pieces;
  p.split("I'm here  now", pieces);
  EXPECT_EQ(pieces, (std::vector<std::string_view>{"I", "'m", " here", " ", " now"}));
  // U+0085 is Unicode White_Space (Rust's \s), so each NEL is a whitespace piece before "x".
  pieces.clear();
  p.split("\u0085\u0085x", pieces);
  EXPECT_EQ(pieces, (std::vector<std::string_view>{"\u0085", "\u0085", "x"}));
  // U+180E is not White_Space since Unicode 6.3: it is punctuation-like, one piece.
  pieces.clear();
  p.split("\u180E\u180Ex", pieces);
  EXPECT_EQ(pieces, (std::vector<std::string_view>{"\u180E\u180E", "x"}));
  // Invalid bytes form their own piece between matches.
  pieces.clear();
  p.split("ab\xFF\xFE cd", pieces);
  EXPECT_EQ(pieces, (std::vector<std::string_view>{"ab", "\xFF\xFE", " cd"}));
  const Pretokenizer cl(kCl100kPattern);
  pieces.clear();
  cl.split("12345 foo\r\n", pieces);
  EXPECT_EQ(pieces, (std::vector<std::string_view>{"123", "45", " foo", "\r\n"}));
  EXPECT_THROW(Pretokenizer("(unclosed"), ConfigError);
}

}  // namespace
}  // namespace troupe::tokenizers
