// dataprep/augment.h: the generator is std::mt19937_64 (the standard's 10000th output pins it), augmentation is a
// function of the seed, and each operation keeps its invariant over hundreds of seeds: deletion keeps an ordered
// non-empty subsequence, swap keeps the multiset, synonyms are lemma names of the word's WordNet synsets (read here
// with synsets() and lemma_names(), not through synonyms()); rates match the configured probabilities.
#include "dataprep/augment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "core/errors.h"
#include "metrics/unicode.h"

namespace troupe::dataprep {
namespace {

using V = std::vector<std::string>;
using metrics::WordNet;

V numbered(int n) {
  V w;
  for (int i = 0; i < n; ++i) w.push_back("w" + std::to_string(i));
  return w;
}

TEST(Augment, GeneratorIsTheStandardsMt19937_64) {
  AugmentRng rng(5489);  // std::mt19937_64's default seed; its 10000th output is 9981545732273789042 ([rand.predef])
  for (int i = 0; i < 9999; ++i) rng.uniform();
  EXPECT_EQ(rng.uniform(), static_cast<double>(9981545732273789042ULL >> 11) * 0x1.0p-53);
  AugmentRng r(7);
  for (int i = 0; i < 1000; ++i) {
    const auto k = r.below(5);
    ASSERT_LT(k, 5u);
  }
  EXPECT_EQ(AugmentRng(1).below(1), 0u);
  EXPECT_THROW(AugmentRng(1).below(0), DataError);
}

TEST(Augment, SameSeedSameTextOtherSeedsDiffer) {
  const std::string text = "The quick brown fox jumps over the lazy dog near the old river bank";
  const AugmentConfig config{.p_synonym = 0.3, .p_delete = 0.2, .p_swap = 0.2};
  std::set<std::string> outs;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const auto a = augment(text, seed, config);
    EXPECT_EQ(a, augment(text, seed, config)) << seed;
    outs.insert(a);
  }
  EXPECT_GE(outs.size(), 15u);
  // pinned (the same draws replayed by an independent Python mt19937_64): a change to the order or formula of the
  // draws would otherwise change augmented data sets silently
  AugmentRng rng(42);
  EXPECT_EQ(random_swap(random_delete(numbered(8), 0.25, rng), 0.5, rng), (V{"w2", "w4", "w0", "w1", "w6", "w7"}));
}

TEST(Augment, DeletionKeepsAnOrderedNonEmptySubsequence) {
  const auto words = numbered(10);
  for (uint64_t seed = 0; seed < 300; ++seed) {
    AugmentRng rng(seed);
    const auto out = random_delete(words, seed % 3 == 0 ? 1.0 : 0.6, rng);
    ASSERT_FALSE(out.empty()) << seed;
    EXPECT_TRUE(std::includes(
        words.begin(), words.end(), out.begin(), out.end(),
        [](const std::string& a, const std::string& b) { return std::stoi(a.substr(1)) < std::stoi(b.substr(1)); }))
        << seed;
    if (seed % 3 == 0) EXPECT_EQ(out.size(), 1u);
  }
  AugmentRng rng(1);
  EXPECT_EQ(random_delete(words, 0, rng), words);
  EXPECT_EQ(random_delete({}, 1, rng), V{});
  const auto many = numbered(20000);
  const auto kept = random_delete(many, 0.3, rng).size();
  EXPECT_NEAR(1.0 - static_cast<double>(kept) / 20000.0, 0.3, 0.015);
}

TEST(Augment, SwapKeepsTheMultisetOfWords) {
  const V words = {"a", "b", "a", "c", "d", "d", "e", "f"};
  auto sorted = words;
  std::sort(sorted.begin(), sorted.end());
  int changed = 0;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    AugmentRng rng(seed);
    auto out = random_swap(words, seed % 2 ? 1.0 : 0.3, rng);
    changed += out != words;
    std::sort(out.begin(), out.end());
    EXPECT_EQ(out, sorted) << seed;
  }
  EXPECT_GT(changed, 250);
  AugmentRng rng(1);
  EXPECT_EQ(random_swap(words, 0, rng), words);
}

TEST(Augment, SynonymsComeFromTheWordsSynsets) {
  const auto& wn = WordNet::shared();
  const V words = metrics::split_whitespace("The car went quickly to the big House of zzzz");
  std::set<std::string> car_choices;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    AugmentRng rng(seed);
    const auto out = synonym_replace(words, 1.0, wn, rng);
    ASSERT_EQ(out.size(), words.size());
    for (size_t i = 0; i < words.size(); ++i) {
      const auto lw = metrics::lower(words[i]);
      std::set<std::string> lemmas;
      for (const auto& id : wn.synsets(lw))
        for (const auto& name : wn.lemma_names(id)) lemmas.insert(name);
      bool has_other = false;
      for (const auto& l : lemmas) has_other |= l.find('_') == std::string::npos && metrics::lower(l) != lw;
      if (has_other) {  // at p = 1 every word with a synonym is replaced, by a lemma name of one of its synsets
        EXPECT_TRUE(lemmas.count(out[i])) << words[i] << " -> " << out[i];
        EXPECT_NE(metrics::lower(out[i]), lw);
      } else {
        EXPECT_EQ(out[i], words[i]);
      }
    }
    car_choices.insert(out[1]);
  }
  EXPECT_GE(car_choices.size(), 5u);  // auto, automobile, machine, motorcar, railcar, ...
  EXPECT_TRUE(car_choices.count("automobile"));
  EXPECT_EQ(words.back(), "zzzz");
  AugmentRng rng(3);
  EXPECT_EQ(synonym_replace(words, 0, wn, rng), words);
}

TEST(Augment, ValidatesAndRejectsBadText) {
  EXPECT_THROW(augment("a b", 1, {.p_synonym = 1.5}), ConfigError);
  EXPECT_THROW(augment("a b", 1, {.p_swap = -0.1}), ConfigError);
  EXPECT_THROW(augment("a \xff", 1, {}), DataError);
  EXPECT_EQ(augment("", 1, {}), "");
  EXPECT_EQ(augment("one\n two", 1, {.p_synonym = 0, .p_delete = 0, .p_swap = 0}), "one two");
}

}  // namespace
}  // namespace troupe::dataprep
