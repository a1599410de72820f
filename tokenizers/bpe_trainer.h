// Byte-level BPE training: word counts in, a tiktoken-compatible rank table out (ranks 0..255 = single bytes,
// then one rank per merge). Not a pre-tokenizer and not an encoder; see tokenizers/bpe_tokenizer.h for encoding.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace troupe::tokenizers {

struct BpeTrainerOptions {
  int vocab_size = 8192;      // final rank count, including the 256 single bytes, excluding special tokens
  int64_t min_frequency = 2;  // stop once the most frequent pair occurs fewer times than this
  int threads = 0;            // threads counting words in add_pieces; 0 = std::thread::hardware_concurrency()

  // Throws ConfigError when vocab_size < 256, min_frequency < 1 or threads < 0.
  void validate() const;
};

struct BpeTrainingResult {
  std::vector<std::string> tokens_by_rank;  // tokens_by_rank[r] = bytes of rank r; r < 256 is the byte r
  std::vector<std::pair<int, int>> merges;  // merges[i] = (left rank, right rank) that produced rank 256 + i
};

// Trains byte-level BPE on pre-tokenised pieces. Each distinct piece ("word") is stored once with its count, so
// cost scales with the number of distinct words, not the corpus size.
//
// Rules (all deterministic; two runs on the same input give identical results):
//  * Pair counts are non-overlapping, as a left-to-right merge would see them: in "aaa" the pair (a, a) counts
//    once, in "aaaa" twice.
//  * Each step merges the pair with the highest count; ties go to the smaller (left rank, right rank), i.e. the
//    pair whose tokens were created earlier (single bytes by byte value).
//  * Training stops at vocab_size ranks or when the best count < min_frequency.
//  * If a merge's concatenated bytes already have a rank (two different splits of the same bytes; a defensive
//    rule, not seen in our tests), words switch to that rank but no new rank or merge is recorded: a tiktoken
//    table holds each byte string once.
//
// Worked example ("aaabdaaabac" once, min_frequency 1): merges "aa" (aa 2 = ab 2, tie -> (97,97) first), then
// "ab" (Za 2 = ab 2, tie -> (97,98) < (256,97)), then "aaab" (ZY 2); see bpe_trainer_test.cpp.
//
// Threads: add_pieces counts large batches on `threads` threads (per-thread maps, then one merge); train() runs on
// the calling thread, as each merge depends on the previous one. Neither method is safe to call concurrently.
class BpeTrainer {
 public:
  explicit BpeTrainer(BpeTrainerOptions options);

  // Adds one occurrence per piece; empty pieces are ignored. Batches of >= 65536 pieces are split across threads.
  void add_pieces(const std::vector<std::string_view>& pieces);
  // Adds precomputed counts (e.g. from a parallel counting pass); non-positive counts are ignored.
  void add_word_counts(const std::unordered_map<std::string, int64_t>& counts);
  // Adds `count` occurrences of one word (ignored when empty or count <= 0).
  void add_word_count(std::string_view word, int64_t count);

  // Runs the merges. Does not modify the accumulated counts, so it may be called again.
  BpeTrainingResult train() const;

  size_t distinct_words() const { return word_counts_.size(); }

 private:
  BpeTrainerOptions options_;
  std::unordered_map<std::string, int64_t> word_counts_;
};

}  // namespace troupe::tokenizers
