// The WordNet reader against NLTK's WordNetCorpusReader on the same files (tests/metrics/meteor_reference.py
// wordnet: thousands of words, each one's synsets with their lemma names and its morphy forms per pos), a tiny
// hand-written database, and the error cases. Not a test of METEOR (meteor_test.cpp).
#include "metrics/wordnet.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::metrics {
namespace {

using troupe::testing::ScratchDir;
using Json = nlohmann::json;

std::string names_text(const std::vector<std::string>& names) { return Json(names).dump(); }

Json run_reference(const ScratchDir& scratch, const std::string& mode) {
  const auto out = scratch / (mode + ".json");
  const auto script = troupe::testing::source_dir() / "tests/metrics/meteor_reference.py";
  const auto result =
      troupe::testing::run_process({TROUPE_PYTHON, script.string(), mode, out.string()}, std::chrono::seconds(280));
  if (result.exit_code != 0) throw std::runtime_error("meteor_reference.py failed:\n" + result.output);
  return Json::parse(troupe::testing::read_file(out));
}

TEST(WordNet, MatchesNltkSynsetsLemmaNamesAndMorphy) {
  ScratchDir scratch("wordnet-ref");
  const Json ref = run_reference(scratch, "wordnet");
  const WordNet& wn = WordNet::shared();
  size_t words = 0, with_synsets = 0, failures = 0;
  for (const Json& item : ref.at("words")) {
    const std::string word = item.at("word");
    ++words;
    std::vector<Json> got;
    for (const SynsetId& id : wn.synsets(word))
      got.push_back(Json::array({std::string(1, wordnet_pos_char(id.pos)), id.offset, wn.lemma_names(id)}));
    const Json got_synsets(got);
    if (!got.empty()) ++with_synsets;
    Json got_morphy = Json::array();
    for (WordNetPos pos : kWordNetPosList) got_morphy.push_back(wn.morphy(word, pos));
    if (got_synsets != item.at("synsets") || got_morphy != item.at("morphy")) {
      if (++failures <= 20) {
        ADD_FAILURE() << "word " << Json(word).dump() << "\n  synsets C++:  " << got_synsets.dump()
                      << "\n  synsets NLTK: " << item.at("synsets").dump() << "\n  morphy C++:  " << got_morphy.dump()
                      << "\n  morphy NLTK: " << item.at("morphy").dump();
      }
    }
  }
  EXPECT_EQ(failures, 0u) << "of " << words << " words";
  EXPECT_GT(words, 3000u);
  EXPECT_GT(with_synsets, 1000u);  // the comparison is not only of empty lists
}

// synonyms() is the set METEOR takes from synsets(): lemma names without '_', sorted, unique.
TEST(WordNet, SynonymsAreTheSortedUniqueLemmaNamesWithoutUnderscore) {
  const WordNet& wn = WordNet::shared();
  for (const std::string word : {"car", "Cars", "went", "better", "mice", "dr.", "quickly", "zzzz", ""}) {
    std::vector<std::string> expected;
    for (const SynsetId& id : wn.synsets(word))
      for (const std::string& name : wn.lemma_names(id))
        if (name.find('_') == std::string::npos) expected.push_back(name);
    std::sort(expected.begin(), expected.end());
    expected.erase(std::unique(expected.begin(), expected.end()), expected.end());
    EXPECT_EQ(names_text(wn.synonyms(word)), names_text(expected)) << word;
    EXPECT_EQ(&wn.synonyms(word), &wn.synonyms(word)) << "cached";
  }
  const auto& car = wn.synonyms("car");
  EXPECT_TRUE(std::binary_search(car.begin(), car.end(), "auto"));
  EXPECT_FALSE(std::binary_search(car.begin(), car.end(), "railway_car"));
  EXPECT_TRUE(wn.synonyms("zzzz").empty());
}

// WordNet 3.0 facts that any reader must reproduce: exception lists, then the suffix rules, filtered by the index.
TEST(WordNet, MorphyOnKnownForms) {
  const WordNet& wn = WordNet::shared();
  using V = std::vector<std::string>;
  EXPECT_EQ(wn.morphy("mice", WordNetPos::kNoun), V{"mouse"});
  EXPECT_EQ(wn.morphy("went", WordNetPos::kVerb), V{"go"});
  EXPECT_EQ(wn.morphy("churches", WordNetPos::kNoun), V{"church"});
  EXPECT_EQ(wn.morphy("dogs", WordNetPos::kNoun), V{"dog"});
  EXPECT_EQ(wn.morphy("book", WordNetPos::kAdj), V{});
  EXPECT_EQ(wn.synsets("Car"), wn.synsets("car"));  // synsets() lowercases, morphy() does not
  EXPECT_TRUE(wn.morphy("Car", WordNetPos::kNoun).empty());
}

// A database of two adjectives written by hand: offsets, the "(a)" marker, the "er"/"est" rules, an exception.
TEST(WordNet, ReadsAHandWrittenDatabase) {
  ScratchDir dir("wordnet-tiny");
  const std::string header = "  1 license line\n";
  const std::string line0 = "00000000 00 a 02 long(a) 0 lengthy(p) 0 000 | of great length  \n";
  const std::string line1 = fmt::format("{:08d} 00 s 01 far_off 0 000 | distant  \n", line0.size());
  troupe::testing::write_file(dir / "data.adj", line0 + line1);
  troupe::testing::write_file(dir / "index.adj", header + "far_off a 1 0 1 0 " + fmt::format("{:08d}", line0.size()) +
                                                     "  \nlengthy a 1 0 1 0 00000000  \nlong a 1 0 1 0 00000000  \n");
  troupe::testing::write_file(dir / "adj.exc", "longer_still long\n");
  for (const char* pos : {"noun", "verb", "adv"}) {
    troupe::testing::write_file(dir / (std::string("index.") + pos), header);
    troupe::testing::write_file(dir / (std::string("data.") + pos), "");
    troupe::testing::write_file(dir / (std::string(pos) + ".exc"), "");
  }
  const WordNet wn(dir.path());
  using V = std::vector<std::string>;
  EXPECT_EQ(wn.morphy("longest", WordNetPos::kAdj), V{"long"});
  EXPECT_EQ(wn.morphy("longer_still", WordNetPos::kAdj), V{"long"});
  EXPECT_EQ(wn.morphy("long", WordNetPos::kNoun), V{});
  ASSERT_EQ(wn.synsets("LONGER").size(), 1u);
  EXPECT_EQ(wn.lemma_names(wn.synsets("longer")[0]), (V{"long", "lengthy"}));
  EXPECT_EQ(wn.lemma_names({WordNetPos::kAdj, static_cast<uint32_t>(line0.size())}), V{"far_off"});
  EXPECT_EQ(wn.synonyms("longest"), (V{"lengthy", "long"}));
  EXPECT_TRUE(wn.synonyms("far_off").empty());                     // its only lemma name has '_'
  EXPECT_THROW(wn.lemma_names({WordNetPos::kAdj, 5}), DataError);  // no synset starts at byte 5
}

// Threads that share a fresh reader race on the first load of each data file and on the synonym cache; each must
// see what a reader used by one thread sees.
TEST(WordNet, ConcurrentFirstUseAgreesWithOneThread) {
  const std::vector<std::string> words = {"car",   "went", "better", "fast", "quick", "mice", "run",   "good", "go",
                                          "house", "big",  "say",    "tell", "man",   "day",  "price", "rose", "fell"};
  const WordNet alone;
  std::vector<std::string> expected;
  for (const std::string& w : words) expected.push_back(names_text(alone.synonyms(w)));
  const WordNet shared_reader;
  troupe::testing::on_rank_threads(4, [&](int rank) {
    for (size_t k = 0; k < words.size(); ++k) {
      const size_t i = (k + static_cast<size_t>(rank) * 5) % words.size();
      EXPECT_EQ(names_text(shared_reader.synonyms(words[i])), expected[i]) << words[i];
    }
  });
}

TEST(WordNet, MissingDirectoryIsADataErrorNamingWordnetBase) {
  try {
    WordNet::shared("/nonexistent/wordnet");
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("wordnet-base"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("/nonexistent/wordnet"), std::string::npos) << e.what();
  }
  ScratchDir dir("wordnet-empty");
  EXPECT_THROW(WordNet{dir.path()}, DataError);  // no index files
}

TEST(WordNet, MalformedIndexLineNamesFileAndLine) {
  ScratchDir dir("wordnet-bad");
  troupe::testing::write_file(dir / "index.noun", "  header\ndog n 2 0 2 0 00000001\n");  // 2 synsets, 1 offset
  try {
    WordNet wn(dir.path());
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("index.noun, line 2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace troupe::metrics
