// BPE trainer tests: hand-computed merge orders (textbook example, ties, non-overlapping runs), stopping rules,
// determinism and a byte round trip through a tiktoken-style encoder. Not a test of core/bpe_tokenizer.
#include "tokenizers/bpe_trainer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <climits>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/errors.h"

namespace troupe::tokenizers {
namespace {

using ::testing::ElementsAre;
using Merge = std::pair<int, int>;

BpeTrainingResult train_on(const std::unordered_map<std::string, int64_t>& counts, int vocab_size,
                           int64_t min_frequency = 1) {
  BpeTrainerOptions options;
  options.vocab_size = vocab_size;
  options.min_frequency = min_frequency;
  BpeTrainer trainer(options);
  trainer.add_word_counts(counts);
  return trainer.train();
}

std::vector<std::string> learned_tokens(const BpeTrainingResult& result) {
  return {result.tokens_by_rank.begin() + 256, result.tokens_by_rank.end()};
}

// tiktoken's byte_pair_merge: start from single bytes and repeatedly merge the adjacent pair whose concatenation
// has the lowest rank, until no adjacent concatenation is in the table. Returns ranks.
std::vector<int> encode_piece(const std::string& piece, const std::map<std::string, int>& ranks) {
  std::vector<std::string> parts;
  for (char c : piece) parts.emplace_back(1, c);
  while (parts.size() > 1) {
    int best_rank = INT_MAX;
    size_t best = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const auto it = ranks.find(parts[i] + parts[i + 1]);
      if (it != ranks.end() && it->second < best_rank) {
        best_rank = it->second;
        best = i;
      }
    }
    if (best_rank == INT_MAX) break;
    parts[best] += parts[best + 1];
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
  std::vector<int> out;
  for (const std::string& p : parts) out.push_back(ranks.at(p));
  return out;
}

std::map<std::string, int> rank_map(const BpeTrainingResult& result) {
  std::map<std::string, int> ranks;
  for (size_t r = 0; r < result.tokens_by_rank.size(); ++r) ranks.emplace(result.tokens_by_rank[r], r);
  return ranks;
}

// The plain-text licenses shipped with Debian (~260 KB), concatenated.
std::string license_corpus() {
  std::string text;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/share/common-licenses")) {
    if (!entry.is_regular_file() || entry.is_symlink()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    text += ss.str();
  }
  return text;
}

std::vector<std::string_view> split_on_spaces(std::string_view text) {
  std::vector<std::string_view> pieces;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string_view::npos) end = text.size();
    pieces.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return pieces;
}

TEST(BpeTrainerTest, TextbookExample) {
  // "aaabdaaabac" once. Non-overlapping pair counts: aa 2 (positions 0-1 and 5-6; 1-2 and 6-7 overlap them),
  // ab 2, bd 1, da 1, ba 1, ac 1. Tie aa = ab -> (97,97) < (97,98): Z = "aa" (rank 256) -> "ZabdZabac".
  // Counts: Za 2, ab 2, bd 1, dZ 1, ba 1, ac 1. Tie -> (97,98) < (256,97): Y = "ab" (257) -> "ZYdZYac".
  // Counts: ZY 2, the rest 1: X = ZY = "aaab" (258) -> "XdXac".
  const BpeTrainingResult result = train_on({{"aaabdaaabac", 1}}, 259);
  EXPECT_THAT(learned_tokens(result), ElementsAre("aa", "ab", "aaab"));
  EXPECT_THAT(result.merges, ElementsAre(Merge(97, 97), Merge(97, 98), Merge(256, 257)));
  EXPECT_THAT(encode_piece("aaabdaaabac", rank_map(result)), ElementsAre(258, 'd', 258, 'a', 'c'));
}

TEST(BpeTrainerTest, SingleBytesAreTheFirst256Ranks) {
  const BpeTrainingResult result = train_on({{"hello", 5}}, 256);
  ASSERT_EQ(result.tokens_by_rank.size(), 256u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(result.tokens_by_rank[b], std::string(1, static_cast<char>(b)));
  EXPECT_TRUE(result.merges.empty());
}

TEST(BpeTrainerTest, TiesGoToTheSmallerRankPair) {
  // "ba" and "ab" both occur twice: (97,98) < (98,97), so "ab" is merged first.
  EXPECT_THAT(learned_tokens(train_on({{"ba", 2}, {"ab", 2}}, 258)), ElementsAre("ab", "ba"));
  // A higher count beats a smaller pair: "xy" 3 > "ab" 2.
  EXPECT_THAT(learned_tokens(train_on({{"ab", 2}, {"xy", 3}}, 258)), ElementsAre("xy", "ab"));
  // Between a merged token and bytes, the bytes pair is older: "ab" (97,98) before "Zc" (256,99) at count 2,
  // where Z = "zz" (count 3) was merged first.
  EXPECT_THAT(learned_tokens(train_on({{"zz", 1}, {"zzc", 2}, {"ab", 2}}, 259)), ElementsAre("zz", "ab", "zzc"));
}

TEST(BpeTrainerTest, RunsCountNonOverlappingPairs) {
  // "aaa" x3 holds (a,a) once per word (3 in all, not the overlapping 6), so "bc" (4) is rank 256; then
  // "aa" (3) is rank 257, leaving each "aaa" as [257, 'a']; then (257, 'a') = "aaa" (3) is rank 258.
  const BpeTrainingResult result = train_on({{"aaa", 3}, {"bc", 4}}, 259);
  EXPECT_THAT(learned_tokens(result), ElementsAre("bc", "aa", "aaa"));
  EXPECT_THAT(result.merges, ElementsAre(Merge('b', 'c'), Merge('a', 'a'), Merge(257, 'a')));
  // "aaaa" holds (a,a) twice: 2 x 2 = 4 > "bc" 3.
  EXPECT_THAT(learned_tokens(train_on({{"aaaa", 2}, {"bc", 3}}, 257)), ElementsAre("aa"));
}

TEST(BpeTrainerTest, StopsAtVocabSize) {
  EXPECT_THAT(learned_tokens(train_on({{"aaabdaaabac", 1}}, 257)), ElementsAre("aa"));
  const std::string corpus = license_corpus();
  BpeTrainerOptions options;
  options.vocab_size = 300;
  BpeTrainer trainer(options);
  trainer.add_pieces(split_on_spaces(corpus));
  EXPECT_EQ(trainer.train().tokens_by_rank.size(), 300u);
}

TEST(BpeTrainerTest, StopsBelowMinFrequency) {
  // Pair counts: ab 3, cd 2, ef 1. With min_frequency 2 only "ab" and "cd" are merged despite room for more.
  const BpeTrainingResult result = train_on({{"ab", 3}, {"cd", 2}, {"ef", 1}}, 1000, 2);
  EXPECT_THAT(learned_tokens(result), ElementsAre("ab", "cd"));
}

TEST(BpeTrainerTest, PiecesAndCountsAccumulate) {
  BpeTrainerOptions options;
  options.vocab_size = 257;
  BpeTrainer trainer(options);
  trainer.add_pieces({"xy", "ab", "", "xy"});       // xy 2, ab 1
  trainer.add_word_counts({{"ab", 2}, {"zz", 0}});  // ab 3; zero counts ignored
  EXPECT_EQ(trainer.distinct_words(), 2u);
  EXPECT_THAT(learned_tokens(trainer.train()), ElementsAre("ab"));
}

TEST(BpeTrainerTest, ParallelCountingMatchesSerial) {
  const std::string corpus = license_corpus();
  std::vector<std::string_view> pieces;
  for (int copy = 0; copy < 4; ++copy) {  // >= 3 x 32768 pieces, so add_pieces uses all 3 threads
    const std::vector<std::string_view> once = split_on_spaces(corpus);
    pieces.insert(pieces.end(), once.begin(), once.end());
  }
  ASSERT_GE(pieces.size(), 3u * 32768u);
  BpeTrainerOptions options;
  options.vocab_size = 400;
  options.threads = 1;
  BpeTrainer serial(options);
  serial.add_pieces(pieces);
  options.threads = 3;
  BpeTrainer parallel(options);
  parallel.add_pieces(pieces);
  EXPECT_EQ(parallel.distinct_words(), serial.distinct_words());
  EXPECT_EQ(parallel.train().merges, serial.train().merges);
}

TEST(BpeTrainerTest, RejectsBadOptions) {
  BpeTrainerOptions options;
  options.vocab_size = 255;
  EXPECT_THROW(BpeTrainer{options}, ConfigError);
  options.vocab_size = 300;
  options.min_frequency = 0;
  EXPECT_THROW(BpeTrainer{options}, ConfigError);
  options.min_frequency = 1;
  options.threads = -1;
  EXPECT_THROW(BpeTrainer{options}, ConfigError);
}

TEST(BpeTrainerTest, TrainingIsDeterministicAndRoundTrips) {
  const std::string corpus = license_corpus();
  ASSERT_GT(corpus.size(), 200000u);
  const std::vector<std::string_view> pieces = split_on_spaces(corpus);
  BpeTrainerOptions options;
  options.vocab_size = 1000;
  const auto start = std::chrono::steady_clock::now();
  BpeTrainer first(options);
  first.add_pieces(pieces);
  const BpeTrainingResult a = first.train();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 5.0);
  BpeTrainer second(options);
  second.add_pieces(pieces);
  const BpeTrainingResult b = second.train();
  EXPECT_EQ(a.tokens_by_rank, b.tokens_by_rank);
  EXPECT_EQ(a.merges, b.merges);
  ASSERT_EQ(a.tokens_by_rank.size(), 1000u);
  ASSERT_EQ(a.merges.size(), 1000u - 256u);
  for (size_t i = 0; i < a.merges.size(); ++i) {
    const auto [left, right] = a.merges[i];
    EXPECT_EQ(a.tokens_by_rank[256 + i], a.tokens_by_rank[left] + a.tokens_by_rank[right]);
    EXPECT_LT(left, static_cast<int>(256 + i));
    EXPECT_LT(right, static_cast<int>(256 + i));
  }
  // Every piece encodes with the learned ranks and decodes back to its bytes; the learned tokens compress.
  const std::map<std::string, int> ranks = rank_map(a);
  EXPECT_EQ(ranks.size(), a.tokens_by_rank.size());  // each byte string has exactly one rank
  size_t tokens = 0;
  size_t bytes = 0;
  for (size_t i = 0; i < pieces.size(); i += 7) {
    const std::vector<int> encoded = encode_piece(std::string(pieces[i]), ranks);
    std::string decoded;
    for (int r : encoded) decoded += a.tokens_by_rank[r];
    ASSERT_EQ(decoded, pieces[i]);
    tokens += encoded.size();
    bytes += pieces[i].size();
  }
  EXPECT_LT(tokens * 2, bytes);
}

}  // namespace
}  // namespace troupe::tokenizers
