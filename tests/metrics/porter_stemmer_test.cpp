// porter_stem against NLTK's PorterStemmer (tests/metrics/porter_reference.py, run here): every WordNet 3.0 index word,
// capitalised and uppercased variants, the shared corpus's tokens and hand-picked corner cases must stem identically.
// Plus the paper's own examples, checked by hand, and malformed UTF-8.
#include "metrics/porter_stemmer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::metrics {
namespace {

using testing::ScratchDir;

nlohmann::json run_reference(const ScratchDir& dir) {
  const std::string out = (dir / "porter.json").string();
  const auto r =
      testing::run_process({TROUPE_PYTHON, (testing::source_dir() / "tests/metrics/porter_reference.py").string(), out,
                            "/usr/share/wordnet"},
                           std::chrono::seconds(300));
  if (r.exit_code != 0) throw std::runtime_error("porter_reference.py failed:\n" + r.output);
  return nlohmann::json::parse(testing::read_file(out));
}

TEST(PorterStemmer, EqualsNltkOnWordNetCorpusAndHandWords) {
  ScratchDir dir;
  const nlohmann::json ref = run_reference(dir);
  const auto& words = ref.at("words");
  const auto& stems = ref.at("stems");
  ASSERT_EQ(words.size(), stems.size());
  ASSERT_GT(ref.at("wordnet_words").get<int>(), 140000) << "the WordNet index files look incomplete";
  ASSERT_GT(words.size(), 150000u);
  int mismatches = 0;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string word = words[i].get<std::string>();
    const std::string expected = stems[i].get<std::string>();
    const std::string got = porter_stem(word);
    if (got != expected && ++mismatches <= 20) {
      ADD_FAILURE() << "word " << nlohmann::json(word).dump() << ": ours " << nlohmann::json(got).dump() << ", NLTK "
                    << nlohmann::json(expected).dump();
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << words.size() << " words";
}

// The examples of Porter (1980), one or more per rule, as NLTK_EXTENSIONS stems them.
TEST(PorterStemmer, PaperExamples) {
  const std::pair<const char*, const char*> cases[] = {
      {"caresses", "caress"},   {"ponies", "poni"},        {"ties", "tie"},
      {"cats", "cat"},          {"feed", "feed"},          {"agreed", "agre"},
      {"plastered", "plaster"}, {"bled", "bled"},          {"motoring", "motor"},
      {"sing", "sing"},         {"conflated", "conflat"},  {"hopping", "hop"},
      {"falling", "fall"},      {"filing", "file"},        {"happy", "happi"},
      {"relational", "relat"},  {"conditional", "condit"}, {"adjustment", "adjust"},
      {"effective", "effect"},  {"controll", "control"},   {"generalizations", "gener"},
      {"oscillators", "oscil"},
  };
  for (const auto& [word, stem] : cases) EXPECT_EQ(porter_stem(word), stem) << word;
}

// NLTK's own additions: the irregular-forms pool, -ies/-ied of 4 letters, 'y' only after a consonant, short words.
TEST(PorterStemmer, NltkExtensions) {
  EXPECT_EQ(porter_stem("dying"), "die");
  EXPECT_EQ(porter_stem("Skies"), "sky");
  EXPECT_EQ(porter_stem("innings"), "inning");
  EXPECT_EQ(porter_stem("dies"), "die");
  EXPECT_EQ(porter_stem("flies"), "fli");
  EXPECT_EQ(porter_stem("died"), "die");
  EXPECT_EQ(porter_stem("spied"), "spi");
  EXPECT_EQ(porter_stem("enjoy"), "enjoy");
  EXPECT_EQ(porter_stem("spy"), "spi");
  EXPECT_EQ(porter_stem("IS"), "is");
  EXPECT_EQ(porter_stem(""), "");
  EXPECT_EQ(porter_stem("RUNNING"), "run");
}

TEST(PorterStemmer, NonAsciiIsLowercasedAndCountsCodePoints) {
  EXPECT_EQ(porter_stem("CAFÉS"), "café");
  // "İ" is one code point but lowercases to two ("i" and U+0307); the short-word test sees the one.
  EXPECT_EQ(porter_stem("İİ"), "i\u0307i\u0307");
  EXPECT_THROW(porter_stem("caf\xC3"), DataError);
}

}  // namespace
}  // namespace troupe::metrics
