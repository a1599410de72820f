// dataprep/dedup.h: shingles and exact keys on hand-written cases; near-duplicate clusters on a seeded corpus with
// planted near-duplicates against the connected components of the exact all-pairs word-5-gram Jaccard graph at the
// threshold; determinism under reordering; the streaming and batch APIs agreeing.
#include "dataprep/dedup.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "core/errors.h"

namespace troupe::dataprep {
namespace {

using Shingles = std::vector<std::string>;

TEST(Shingles, WordsAndCharsHandComputed) {
  EXPECT_EQ(shingles(dedup_normal_text("Hello, World! foo-bar  baz"), ShingleKind::kWords, 2),
            (Shingles{"hello world", "world foo", "foo bar", "bar baz"}));
  EXPECT_EQ(shingles("caf\xc3\xa9 na\xc3\xafve", ShingleKind::kWords, 5), (Shingles{"caf\xc3\xa9 na\xc3\xafve"}));
  EXPECT_EQ(shingles("--- !!", ShingleKind::kWords, 3), Shingles{});
  EXPECT_EQ(shingles("ab c\xc3\xa9", ShingleKind::kChars, 3), (Shingles{"ab ", "b c", " c\xc3\xa9"}));
  // NFC, whitespace cleanup and Python's lower(): "E" + combining acute is "É", lowered to "é".
  EXPECT_EQ(dedup_normal_text("  CAFE\xcc\x81\t\tSTRASSE  "), "caf\xc3\xa9 strasse");
  EXPECT_THROW(shingles("a", ShingleKind::kWords, 0), ConfigError);
  EXPECT_THROW(dedup_normal_text("bad \xff"), DataError);
}

TEST(Dedup, ExactDuplicatesOfTheNormalisedTextKeepTheFirst) {
  DedupConfig config;
  config.near = false;
  const auto r = deduplicate({"The cat sat.", "the  CAT sat.", "A dog.", "The cat sat!", "the cat sat.\n"}, config);
  EXPECT_EQ(r.kept, (std::vector<size_t>{0, 2, 3}));
  EXPECT_EQ(r.cluster, (std::vector<size_t>{0, 0, 2, 3, 0}));
  EXPECT_EQ(r.exact_removed, 2u);
  EXPECT_EQ(r.near_removed, 0u);
}

// A word of 3..9 random letters: base documents drawn from ~26^6 words share almost no 5-grams.
std::string random_word(std::mt19937& rng) {
  std::string w(std::uniform_int_distribution<int>(3, 9)(rng), 'a');
  for (auto& c : w) c = static_cast<char>('a' + rng() % 26);
  return w;
}

std::vector<std::string> words_of(std::mt19937& rng, int n) {
  std::vector<std::string> w;
  for (int i = 0; i < n; ++i) w.push_back(random_word(rng));
  return w;
}

// `edits` random word substitutions, insertions and deletions.
std::vector<std::string> edited(std::vector<std::string> w, int edits, std::mt19937& rng) {
  for (int e = 0; e < edits; ++e) {
    const size_t at = rng() % w.size();
    switch (rng() % 3) {
      case 0: w[at] = random_word(rng); break;
      case 1: w.insert(w.begin() + at, random_word(rng)); break;
      default: w.erase(w.begin() + at);
    }
  }
  return w;
}

std::string join(const std::vector<std::string>& w) {
  std::string s;
  for (const auto& x : w) s += (s.empty() ? "" : " ") + x;
  return s;
}

double exact_jaccard(const std::set<std::string>& a, const std::set<std::string>& b) {
  size_t both = 0;
  for (const auto& s : a) both += b.count(s);
  return static_cast<double>(both) / static_cast<double>(a.size() + b.size() - both);
}

std::set<std::string> shingle_set(const std::string& doc) {
  const auto s = shingles(dedup_normal_text(doc), ShingleKind::kWords, 5);
  return {s.begin(), s.end()};
}

// The planted corpus: 80 base documents of 90..110 words, each followed (shuffled into the corpus) by 0..3 near
// copies (1..3 edits, exact Jaccard to the base >= threshold + 0.15) and 0..2 far copies (8..14 edits, <= threshold -
// 0.1); copies in between, or equal to the base, are drawn again. The near margin is what datasketch's balanced
// banding needs for recall >= 0.95: at threshold 0.7 (b = 14, r = 9) a pair of Jaccard 0.8 shares a band with
// probability 1 - (1 - 0.8^9)^14 = 0.87 only, 0.85 with 0.97 (with a 0.1 margin the pair recall here is 0.92).
constexpr double kNearMargin = 0.15;
constexpr double kFarMargin = 0.1;
std::vector<std::string> planted_corpus(double threshold, std::mt19937& rng) {
  std::vector<std::string> docs;
  for (int base = 0; base < 80; ++base) {
    const auto words = words_of(rng, std::uniform_int_distribution<int>(90, 110)(rng));
    const size_t first = docs.size();
    docs.push_back(join(words));
    const auto base_set = shingle_set(docs.back());
    const int near = rng() % 4, far = rng() % 3;
    for (int c = 0; c < near + far; ++c) {
      const bool is_near = c < near;
      for (;;) {
        const auto copy = join(edited(words, is_near ? 1 + rng() % 3 : 8 + rng() % 7, rng));
        const double j = exact_jaccard(base_set, shingle_set(copy));
        if (copy != docs[first] && (is_near ? j >= threshold + kNearMargin : j <= threshold - kFarMargin)) {
          docs.push_back(copy);
          break;
        }
      }
    }
  }
  std::shuffle(docs.begin(), docs.end(), rng);
  return docs;
}

// Connected components of the exact all-pairs Jaccard >= threshold graph, labelled by their lowest index.
std::vector<size_t> exact_clusters(const std::vector<std::string>& docs, double threshold) {
  std::vector<std::set<std::string>> sets;
  for (const auto& d : docs) sets.push_back(shingle_set(d));
  std::vector<size_t> label(docs.size());
  std::iota(label.begin(), label.end(), 0);
  const auto find = [&](size_t i) {
    while (label[i] != i) i = label[i];
    return i;
  };
  for (size_t i = 0; i < docs.size(); ++i) {
    for (size_t j = i + 1; j < docs.size(); ++j) {
      if (exact_jaccard(sets[i], sets[j]) >= threshold) {
        const size_t a = find(i), b = find(j);
        label[std::max(a, b)] = std::min(a, b);
      }
    }
  }
  for (size_t i = 0; i < docs.size(); ++i) label[i] = find(i);
  return label;
}

struct PairScore {
  size_t truth = 0, predicted = 0, both = 0;  // co-clustered pairs in the exact clusters, in ours, in both
  double recall() const { return truth ? static_cast<double>(both) / truth : 1.0; }
  double precision() const { return predicted ? static_cast<double>(both) / predicted : 1.0; }
};

PairScore score(const std::vector<size_t>& truth, const std::vector<size_t>& predicted) {
  PairScore s;
  for (size_t i = 0; i < truth.size(); ++i) {
    for (size_t j = i + 1; j < truth.size(); ++j) {
      const bool t = truth[i] == truth[j], p = predicted[i] == predicted[j];
      s.truth += t;
      s.predicted += p;
      s.both += t && p;
    }
  }
  return s;
}

TEST(Dedup, NearDuplicateClustersMatchExactAllPairsJaccard) {
  for (const double threshold : {0.5, 0.7}) {
    SCOPED_TRACE(threshold);
    std::mt19937 rng(2024);
    const auto docs = planted_corpus(threshold, rng);
    const auto truth = exact_clusters(docs, threshold);
    DedupConfig config;
    config.threshold = threshold;
    const auto r = deduplicate(docs, config);
    const PairScore s = score(truth, r.cluster);
    const size_t true_clusters = std::set<size_t>(truth.begin(), truth.end()).size();
    std::cout << "threshold " << threshold << ": " << docs.size() << " docs, " << true_clusters
              << " exact clusters, kept " << r.kept.size() << " (bands " << r.lsh.bands << " rows " << r.lsh.rows
              << "); pair recall " << s.recall() << " precision " << s.precision() << " over " << s.truth
              << " true pairs\n";
    EXPECT_GT(s.truth, 100u);  // the corpus does plant clusters
    EXPECT_GE(s.recall(), 0.95);
    EXPECT_GE(s.precision(), 0.95);
    EXPECT_EQ(r.exact_removed, 0u);
    EXPECT_EQ(r.kept.size() + r.near_removed, docs.size());
    for (size_t i = 0; i < docs.size(); ++i) EXPECT_LE(r.cluster[i], i);  // the lowest index is kept
  }
}

// The same documents in another order: the same partition (each cluster keeps its lowest index in the new order).
TEST(Dedup, ClustersDoNotDependOnOrderAndStreamingEqualsBatch) {
  std::mt19937 rng(7);
  auto docs = planted_corpus(0.7, rng);
  docs.push_back(docs[3]);  // an exact duplicate joins its original's cluster
  DedupConfig config;
  config.threshold = 0.7;
  const auto r = deduplicate(docs, config);
  EXPECT_EQ(r.exact_removed, 1u);
  EXPECT_EQ(r.cluster.back(), r.cluster[3]);

  Deduplicator stream(config);
  for (const auto& d : docs) stream.add(d);
  const auto s = stream.finish();
  EXPECT_EQ(s.cluster, r.cluster);
  EXPECT_EQ(s.kept, r.kept);

  std::vector<size_t> order(docs.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<std::string> shuffled;
  for (const size_t i : order) shuffled.push_back(docs[i]);
  const auto q = deduplicate(shuffled, config);
  // Same partition: two documents share a cluster in one order iff they do in the other.
  std::map<size_t, std::set<size_t>> a, b;
  for (size_t k = 0; k < order.size(); ++k) {
    a[r.cluster[order[k]]].insert(order[k]);
    b[q.cluster[k]].insert(order[k]);
  }
  std::set<std::set<size_t>> pa, pb;
  for (auto& [_, c] : a) pa.insert(c);
  for (auto& [_, c] : b) pb.insert(c);
  EXPECT_EQ(pa, pb);
}

TEST(Dedup, ConfigErrors) {
  DedupConfig c;
  c.threshold = 1.0;
  EXPECT_THROW(Deduplicator{c}, ConfigError);
  c = {};
  c.lsh = {10, 20};  // 200 > num_perm 128
  EXPECT_THROW(Deduplicator{c}, ConfigError);
  c.lsh = {16, 8};
  EXPECT_EQ(Deduplicator{c}.lsh().bands, 16);
  EXPECT_EQ(Deduplicator{DedupConfig{}}.lsh().rows, 13);  // datasketch's (9, 13) for 0.8 and 128
  EXPECT_THROW(parse_shingle_kind("lines"), ConfigError);
}

}  // namespace
}  // namespace troupe::dataprep
