// A read-only reader of the WordNet 3.0 database files (Debian's wordnet-base: index.*, data.*, *.exc) that answers
// what NLTK's WordNetCorpusReader answers for METEOR: morphy's base forms, a word's synsets in NLTK's order and their
// lemma names. It is not a WordNet API: no pointers (hypernyms...), glosses, sense keys, similarity or OMW languages.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace troupe::metrics {

// A part of speech, in NLTK's POS_LIST order (n, v, a, r); adjective satellites ('s') are read as kAdj, as
// NLTK's synsets() does when no pos is given.
enum class WordNetPos : uint8_t { kNoun = 0, kVerb = 1, kAdj = 2, kAdv = 3 };
inline constexpr std::array<WordNetPos, 4> kWordNetPosList = {WordNetPos::kNoun, WordNetPos::kVerb, WordNetPos::kAdj,
                                                              WordNetPos::kAdv};
// 'n', 'v', 'a', 'r'.
char wordnet_pos_char(WordNetPos pos);

// One synset: its part of speech (file) and byte offset in data.<pos>.
struct SynsetId {
  WordNetPos pos = WordNetPos::kNoun;
  uint32_t offset = 0;
  bool operator==(const SynsetId&) const = default;
};

class WordNet {
 public:
  static constexpr const char* kDefaultDir = "/usr/share/wordnet";

  // Reads the index.* and *.exc files of `dir` now (a few tens of ms); the data.* files on first need. A missing
  // directory or file is a DataError saying to install wordnet-base; a malformed index line names its file and line.
  explicit WordNet(const std::filesystem::path& dir = kDefaultDir);
  ~WordNet();
  WordNet(const WordNet&) = delete;
  WordNet& operator=(const WordNet&) = delete;

  // The reader of `dir` (empty: kDefaultDir), loaded on the first call for that directory and kept for the
  // process: METEOR scores sentence by sentence and must not re-read 7 MB of index per sentence. Thread-safe.
  static const WordNet& shared(const std::filesystem::path& dir = {});

  const std::filesystem::path& dir() const { return dir_; }

  // NLTK's _morphy(form, pos): the exception list's base forms if `form` is in it, else one pass of the suffix
  // rules; of [form] + those, the ones that are lemmas of `pos`, without repeats, in that order.
  // Example: morphy("mice", kNoun) == {"mouse"}; morphy("moves", kVerb) == {"move"}.
  std::vector<std::string> morphy(std::string_view form, WordNetPos pos) const;

  // NLTK's synsets(word): word lowercased (str.lower); for each pos in n, v, a, r, each morphy form, the form's
  // synsets in index order. Repeats kept, as in NLTK.
  std::vector<SynsetId> synsets(std::string_view word) const;

  // NLTK's synset.lemma_names(): the words of the synset, in data-file order, without syntactic markers such as
  // "(a)"; case as in the file ("Dr.", "U.S."), collocations joined by '_'. Throws DataError on a bad offset.
  std::vector<std::string> lemma_names(SynsetId id) const;

  // METEOR's synonyms of `word`: the lemma names without '_' of all of synsets(word), sorted and unique (a set, as
  // NLTK builds one). Computed on first use and cached for the process (the reference returned stays valid).
  const std::vector<std::string>& synonyms(std::string_view word) const;

 private:
  struct Index;     // lemma -> offsets per pos, exceptions per pos
  struct DataFile;  // one data.<pos>, read whole on first need

  const DataFile& data_file(WordNetPos pos) const;

  std::filesystem::path dir_;
  std::unique_ptr<Index> index_;
  mutable std::array<std::unique_ptr<DataFile>, 4> data_;
  mutable std::array<std::once_flag, 4> data_once_;
  mutable std::mutex synonyms_mutex_;
  mutable std::unordered_map<std::string, std::vector<std::string>> synonyms_;  // word -> synonyms(word)
};

namespace detail {
// Python's line.split() as views into `text` (its runs of non-str.isspace() code points), into `out`. Malformed
// UTF-8 is not checked here: its bytes count as non-space.
void split_python_whitespace(std::string_view text, std::vector<std::string_view>& out);
}  // namespace detail

}  // namespace troupe::metrics
