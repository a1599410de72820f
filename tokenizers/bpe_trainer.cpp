// BPE trainer implementation: incremental pair counts, a pair -> words index and a lazy max-heap.
// Not streaming: all distinct words and their symbol sequences live in memory at once; only counting is parallel.
#include "tokenizers/bpe_trainer.h"

#include <algorithm>
#include <optional>
#include <queue>
#include <thread>

#include "core/errors.h"

namespace troupe::tokenizers {
namespace detail {
namespace {

using PairKey = uint64_t;  // (left rank << 32) | right rank, so key order == (left, right) lexicographic order

PairKey make_key(int left, int right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}
int key_left(PairKey key) { return static_cast<int>(key >> 32); }
int key_right(PairKey key) { return static_cast<int>(key & 0xFFFFFFFFu); }

struct Word {
  std::vector<int> symbols;  // current ranks, left to right
  int64_t count = 0;         // occurrences in the corpus
};

// Calls f(key) for each pair occurrence a left-to-right merge could use: in a run "x x x" the pair (x, x) at
// position 1 overlaps the one at position 0 and is skipped, so "aaa" yields (a,a) once and "aaaa" twice.
template <typename F>
void for_each_pair(const std::vector<int>& s, F&& f) {
  bool prev_counted_same = false;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    const bool same = s[i] == s[i + 1];
    if (same && prev_counted_same) {
      prev_counted_same = false;
      continue;
    }
    f(make_key(s[i], s[i + 1]));
    prev_counted_same = same;
  }
}

// Replaces every non-overlapping (left, right), scanning left to right, with `merged`. Returns whether any was.
bool merge_in_word(std::vector<int>& s, int left, int right, int merged) {
  size_t out = 0;
  bool changed = false;
  for (size_t i = 0; i < s.size(); ++out) {
    if (i + 1 < s.size() && s[i] == left && s[i + 1] == right) {
      s[out] = merged;
      i += 2;
      changed = true;
    } else {
      s[out] = s[i++];
    }
  }
  s.resize(out);
  return changed;
}

// A heap entry; may be stale (its count above the pair's current count) and is then re-pushed when popped.
struct HeapEntry {
  int64_t count;
  PairKey key;
  // Max-heap on count; on equal counts the smaller key (earlier-created tokens) wins.
  bool operator<(const HeapEntry& other) const { return count != other.count ? count < other.count : key > other.key; }
};

// Pair counts over all words plus the index needed to update them after each merge.
// Invariant: every pair with a positive count has a heap entry whose count is >= its current count
// (increases push a fresh entry; decreases leave the old, larger one for lazy re-checking).
class MergeState {
 public:
  explicit MergeState(std::vector<Word> words) : words_(std::move(words)) {
    for (size_t i = 0; i < words_.size(); ++i) {
      for_each_pair(words_[i].symbols, [&](PairKey key) {
        counts_[key] += words_[i].count;
        where_[key].push_back(static_cast<int>(i));
      });
    }
    for (const auto& [key, count] : counts_) heap_.push({count, key});
  }

  // The current most frequent pair and its count, or nullopt when no pairs are left.
  std::optional<HeapEntry> pop_best() {
    while (!heap_.empty()) {
      const HeapEntry top = heap_.top();
      heap_.pop();
      const auto it = counts_.find(top.key);
      const int64_t current = it == counts_.end() ? 0 : it->second;
      if (current == top.count) return top;
      if (current > 0) heap_.push({current, top.key});  // stale: re-queue at its real count
    }
    return std::nullopt;
  }

  // Merges `key` into `merged` in every word that holds it, updating only those words' pair counts.
  // Cost: O(total length of the affected words).
  void apply_merge(PairKey key, int merged) {
    std::vector<int> affected = std::move(where_[key]);
    where_.erase(key);
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
    std::unordered_map<PairKey, int64_t> delta;
    for (int w : affected) {
      Word& word = words_[w];
      std::vector<int> before = word.symbols;
      if (!merge_in_word(word.symbols, key_left(key), key_right(key), merged)) continue;  // stale index entry
      for_each_pair(before, [&](PairKey p) { delta[p] -= word.count; });
      for_each_pair(word.symbols, [&](PairKey p) {
        delta[p] += word.count;
        if (p != key) where_[p].push_back(w);
      });
    }
    for (const auto& [p, d] : delta) {
      if (d == 0) continue;
      const int64_t now = counts_[p] += d;
      if (now <= 0) {
        counts_.erase(p);
      } else if (d > 0) {
        heap_.push({now, p});
      }
    }
  }

 private:
  std::vector<Word> words_;
  std::unordered_map<PairKey, int64_t> counts_;          // pair -> occurrences weighted by word count
  std::unordered_map<PairKey, std::vector<int>> where_;  // pair -> words that held it (may repeat or be stale)
  std::priority_queue<HeapEntry> heap_;
};

// Distinct words in lexicographic order (so training never depends on hash-map iteration order), as bytes.
std::vector<Word> initial_words(const std::unordered_map<std::string, int64_t>& counts) {
  std::vector<std::pair<std::string_view, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (const auto& [text, count] : sorted) {
    Word word;
    word.count = count;
    word.symbols.reserve(text.size());
    for (char c : text) word.symbols.push_back(static_cast<unsigned char>(c));
    words.push_back(std::move(word));
  }
  return words;
}

// Counts pieces[begin, end) into a map keyed by views into the caller's pieces (no string copies).
std::unordered_map<std::string_view, int64_t> count_range(const std::vector<std::string_view>& pieces, size_t begin,
                                                          size_t end) {
  std::unordered_map<std::string_view, int64_t> counts;
  for (size_t i = begin; i < end; ++i) {
    if (!pieces[i].empty()) ++counts[pieces[i]];
  }
  return counts;
}

// Below this many pieces, starting threads costs more than it saves.
constexpr size_t kMinPiecesPerThread = 1 << 15;

}  // namespace
}  // namespace detail

void BpeTrainerOptions::validate() const {
  if (vocab_size < 256) {
    throw ConfigError("bpe_trainer: vocab_size must be >= 256 (the single bytes), got " + std::to_string(vocab_size));
  }
  if (min_frequency < 1) {
    throw ConfigError("bpe_trainer: min_frequency must be >= 1, got " + std::to_string(min_frequency));
  }
  if (threads < 0) throw ConfigError("bpe_trainer: threads must be >= 0, got " + std::to_string(threads));
}

BpeTrainer::BpeTrainer(BpeTrainerOptions options) : options_(options) { options_.validate(); }

void BpeTrainer::add_pieces(const std::vector<std::string_view>& pieces) {
  const size_t wanted = options_.threads > 0 ? options_.threads : std::max(1u, std::thread::hardware_concurrency());
  const size_t threads = std::max<size_t>(1, std::min(wanted, pieces.size() / detail::kMinPiecesPerThread));
  std::vector<std::unordered_map<std::string_view, int64_t>> partial(threads);
  std::vector<std::thread> workers;
  const size_t chunk = (pieces.size() + threads - 1) / threads;
  for (size_t t = 1; t < threads; ++t) {
    workers.emplace_back(
        [&, t] { partial[t] = detail::count_range(pieces, t * chunk, std::min(pieces.size(), (t + 1) * chunk)); });
  }
  partial[0] = detail::count_range(pieces, 0, std::min(pieces.size(), chunk));
  for (std::thread& w : workers) w.join();
  // Single-threaded merge into the owned map: one string copy per distinct word per batch.
  for (const auto& counts : partial) {
    for (const auto& [word, count] : counts) word_counts_[std::string(word)] += count;
  }
}

void BpeTrainer::add_word_counts(const std::unordered_map<std::string, int64_t>& counts) {
  for (const auto& [word, count] : counts) {
    if (!word.empty() && count > 0) word_counts_[word] += count;
  }
}

void BpeTrainer::add_word_count(std::string_view word, int64_t count) {
  if (word.empty() || count <= 0) return;
  const auto it = word_counts_.find(std::string(word));
  if (it != word_counts_.end()) {
    it->second += count;
  } else {
    word_counts_.emplace(std::string(word), count);
  }
}

BpeTrainingResult BpeTrainer::train() const {
  BpeTrainingResult result;
  std::unordered_map<std::string, int> rank_of;
  for (int b = 0; b < 256; ++b) {
    result.tokens_by_rank.emplace_back(1, static_cast<char>(b));
    rank_of.emplace(result.tokens_by_rank.back(), b);
  }
  detail::MergeState state(detail::initial_words(word_counts_));
  while (static_cast<int>(result.tokens_by_rank.size()) < options_.vocab_size) {
    const auto best = state.pop_best();
    if (!best || best->count < options_.min_frequency) break;
    const int left = detail::key_left(best->key);
    const int right = detail::key_right(best->key);
    std::string bytes = result.tokens_by_rank[left] + result.tokens_by_rank[right];
    const auto [it, fresh] = rank_of.emplace(bytes, static_cast<int>(result.tokens_by_rank.size()));
    if (fresh) {
      result.tokens_by_rank.push_back(std::move(bytes));
      result.merges.emplace_back(left, right);
    }
    state.apply_merge(best->key, it->second);
  }
  return result;
}

}  // namespace troupe::tokenizers
