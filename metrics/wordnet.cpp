// The WordNet reader: index and exception files parsed once into string_views over their own text, data lines
// found by byte offset in the data file read whole on first need. Mirrors nltk/corpus/reader/wordnet.py (NLTK 3.10):
// _load_lemma_pos_offset_map, _load_exception_map, _morphy, synsets, _synset_from_pos_and_line.
#include "metrics/wordnet.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <sstream>

#include "core/errors.h"
#include "metrics/unicode.h"

namespace troupe::metrics {

namespace {

constexpr const char* kInstallHint =
    "install Debian's wordnet-base (apt-get install wordnet-base), or point MeteorOptions::wordnet_dir at a "
    "directory with WordNet 3.0's index.*, data.* and *.exc files";

// NLTK's _FILEMAP suffixes, in WordNetPos order.
constexpr std::array<const char*, 4> kFileSuffix = {"noun", "verb", "adj", "adv"};

// NLTK's MORPHOLOGICAL_SUBSTITUTIONS, in WordNetPos order: (old suffix, new suffix), tried in this order.
struct Substitution {
  std::string_view old_suffix, new_suffix;
};
const std::array<std::vector<Substitution>, 4> kSubstitutions = {{
    {{"s", ""},
     {"ses", "s"},
     {"ves", "f"},
     {"xes", "x"},
     {"zes", "z"},
     {"ches", "ch"},
     {"shes", "sh"},
     {"men", "man"},
     {"ies", "y"}},
    {{"s", ""}, {"ies", "y"}, {"es", "e"}, {"es", ""}, {"ed", "e"}, {"ed", ""}, {"ing", "e"}, {"ing", ""}},
    {{"er", ""}, {"est", ""}, {"er", "e"}, {"est", "e"}},
    {},
}};

bool pos_from_char(char c, WordNetPos& pos) {
  switch (c) {
    case 'n': pos = WordNetPos::kNoun; return true;
    case 'v': pos = WordNetPos::kVerb; return true;
    case 'a': pos = WordNetPos::kAdj; return true;
    case 'r': pos = WordNetPos::kAdv; return true;
    default: return false;
  }
}

std::string read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(fmt::format("WordNet file {} cannot be read: {}", path.string(), kInstallHint));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return std::move(buffer).str();
}

// Python's str.isspace() for the code point starting at text[i]; sets `len` to its UTF-8 length.
bool space_at(std::string_view text, size_t i, size_t& len) {
  const auto b = static_cast<unsigned char>(text[i]);
  if (b < 0x80) {
    len = 1;
    return b == ' ' || (b >= '\t' && b <= '\r') || (b >= 0x1c && b <= 0x1f);
  }
  len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
  if (i + len > text.size()) {
    len = 1;
    return false;
  }
  char32_t c = b & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) c = (c << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
  return is_space(c);
}

// Calls f(line, line_number) for each line of `text` (Python's universal newlines: \n, \r and \r\n end a line).
template <typename F>
void for_each_line(std::string_view text, F&& f) {
  size_t line_number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) end = text.size();
    f(text.substr(pos, end - pos), ++line_number);
    pos = end + 1;
    if (end < text.size() && text[end] == '\r' && pos < text.size() && text[pos] == '\n') ++pos;
  }
}

template <typename T>
bool parse_int(std::string_view token, T& value, int base = 10) {
  const auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), value, base);
  return ec == std::errc() && ptr == token.data() + token.size();
}

// NLTK's marker regex (.*?)(\([^()]*\))?$ on a lemma token: "long(a)" -> "long", "a(b)(c)" -> "a(b)".
std::string_view strip_syntactic_marker(std::string_view name) {
  if (name.empty() || name.back() != ')') return name;
  const size_t open = name.rfind('(');
  if (open == std::string_view::npos) return name;
  if (name.substr(open + 1, name.size() - open - 2).find(')') != std::string_view::npos) return name;
  return name.substr(0, open);
}

}  // namespace

void detail::split_python_whitespace(std::string_view text, std::vector<std::string_view>& out) {
  out.clear();
  size_t start = std::string_view::npos;
  for (size_t i = 0, len = 1; i < text.size(); i += len) {
    if (space_at(text, i, len)) {
      if (start != std::string_view::npos) out.push_back(text.substr(start, i - start));
      start = std::string_view::npos;
    } else if (start == std::string_view::npos) {
      start = i;
    }
  }
  if (start != std::string_view::npos) out.push_back(text.substr(start));
}

char wordnet_pos_char(WordNetPos pos) { return "nvar"[static_cast<int>(pos)]; }

struct WordNet::Index {
  // A lemma's synset offsets per pos: offsets[begin[p], begin[p] + count[p]); count 0 = not a lemma of p.
  struct Entry {
    std::array<uint32_t, 4> begin{};
    std::array<uint32_t, 4> count{};
  };
  std::array<std::string, 4> index_text;  // owns the text the views below point into
  std::array<std::string, 4> exception_text;
  std::unordered_map<std::string_view, Entry> lemmas;
  std::vector<uint32_t> offsets;
  std::array<std::unordered_map<std::string_view, std::vector<std::string_view>>, 4> exceptions;

  const Entry* find(std::string_view lemma) const {
    const auto it = lemmas.find(lemma);
    return it == lemmas.end() ? nullptr : &it->second;
  }
  bool has(std::string_view lemma, WordNetPos pos) const {
    const Entry* e = find(lemma);
    return e != nullptr && e->count[static_cast<int>(pos)] > 0;
  }

  void load_index(const std::filesystem::path& path, std::string_view text);
  void load_exceptions(WordNetPos pos, std::string_view text);
};

// One line per lemma: lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset...
// Lines starting with a space are the license header.
void WordNet::Index::load_index(const std::filesystem::path& path, std::string_view text) {
  std::vector<std::string_view> fields;
  for_each_line(text, [&](std::string_view line, size_t line_number) {
    if (line.empty() || line.front() == ' ') return;
    detail::split_python_whitespace(line, fields);
    auto bad = [&](std::string_view why) {
      throw DataError(fmt::format("WordNet index {}, line {}: {}", path.string(), line_number, why));
    };
    size_t n_synsets = 0, n_pointers = 0, n_senses = 0;
    if (fields.size() < 4 || !parse_int(fields[2], n_synsets) || n_synsets == 0 || !parse_int(fields[3], n_pointers))
      bad("expected lemma, pos, a positive synset count and a pointer count");
    const size_t senses_at = 4 + n_pointers;
    if (fields.size() < senses_at + 2 + n_synsets || !parse_int(fields[senses_at], n_senses) || n_senses != n_synsets)
      bad("the sense count differs from the synset count, or offsets are missing");
    WordNetPos pos;
    if (fields[1].size() != 1 || !pos_from_char(fields[1][0], pos)) return;  // NLTK never asks for another pos
    Entry& entry = lemmas[fields[0]];
    entry.begin[static_cast<int>(pos)] = static_cast<uint32_t>(offsets.size());
    entry.count[static_cast<int>(pos)] = static_cast<uint32_t>(n_synsets);
    for (size_t k = 0; k < n_synsets; ++k) {
      uint32_t offset = 0;
      if (!parse_int(fields[senses_at + 2 + k], offset)) bad("a synset offset is not a number");
      offsets.push_back(offset);
    }
  });
}

// One line per inflected form: form base_form... (a later line for the same form replaces an earlier one).
void WordNet::Index::load_exceptions(WordNetPos pos, std::string_view text) {
  auto& map = exceptions[static_cast<int>(pos)];
  std::vector<std::string_view> fields;
  for_each_line(text, [&](std::string_view line, size_t) {
    detail::split_python_whitespace(line, fields);
    if (fields.empty()) return;
    map[fields[0]] = std::vector<std::string_view>(fields.begin() + 1, fields.end());
  });
}

struct WordNet::DataFile {
  std::string text;
};

WordNet::WordNet(const std::filesystem::path& dir) : dir_(dir.empty() ? std::filesystem::path(kDefaultDir) : dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir_, ec))
    throw DataError(fmt::format("WordNet directory {} not found: {}", dir_.string(), kInstallHint));
  index_ = std::make_unique<Index>();
  index_->lemmas.reserve(160000);
  for (WordNetPos pos : kWordNetPosList) {
    const int p = static_cast<int>(pos);
    const auto index_path = dir_ / fmt::format("index.{}", kFileSuffix[p]);
    index_->index_text[p] = read_whole_file(index_path);
    index_->load_index(index_path, index_->index_text[p]);
    index_->exception_text[p] = read_whole_file(dir_ / fmt::format("{}.exc", kFileSuffix[p]));
    index_->load_exceptions(pos, index_->exception_text[p]);
  }
}

WordNet::~WordNet() = default;

const WordNet& WordNet::shared(const std::filesystem::path& dir) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<WordNet>> readers;  // never erased: references stay valid
  const std::filesystem::path resolved = dir.empty() ? std::filesystem::path(kDefaultDir) : dir;
  const std::string key = resolved.lexically_normal().string();
  std::lock_guard lock(mutex);
  auto& reader = readers[key];
  if (!reader) {
    try {
      reader = std::make_unique<WordNet>(resolved);
    } catch (...) {
      readers.erase(key);
      throw;
    }
  }
  return *reader;
}

const WordNet::DataFile& WordNet::data_file(WordNetPos pos) const {
  const int p = static_cast<int>(pos);
  std::call_once(data_once_[p], [&] {
    auto file = std::make_unique<DataFile>();
    file->text = read_whole_file(dir_ / fmt::format("data.{}", kFileSuffix[p]));
    data_[p] = std::move(file);
  });
  return *data_[p];
}

std::vector<std::string> WordNet::morphy(std::string_view form, WordNetPos pos) const {
  const int p = static_cast<int>(pos);
  std::vector<std::string> forms{std::string(form)};
  const auto& exceptions = index_->exceptions[p];
  if (const auto it = exceptions.find(form); it != exceptions.end()) {
    for (std::string_view base : it->second) forms.emplace_back(base);
  } else {
    for (const auto& [old_suffix, new_suffix] : kSubstitutions[p]) {
      if (form.ends_with(old_suffix))
        forms.push_back(std::string(form.substr(0, form.size() - old_suffix.size())) + std::string(new_suffix));
    }
  }
  std::vector<std::string> result;
  for (auto& f : forms) {
    if (index_->has(f, pos) && std::find(result.begin(), result.end(), f) == result.end())
      result.push_back(std::move(f));
  }
  return result;
}

std::vector<SynsetId> WordNet::synsets(std::string_view word) const {
  const std::string lemma = lower(word);
  std::vector<SynsetId> out;
  for (WordNetPos pos : kWordNetPosList) {
    const int p = static_cast<int>(pos);
    for (const std::string& form : morphy(lemma, pos)) {
      const Index::Entry* entry = index_->find(form);
      for (uint32_t k = 0; k < entry->count[p]; ++k) out.push_back({pos, index_->offsets[entry->begin[p] + k]});
    }
  }
  return out;
}

// A data line: offset lex_filenum ss_type w_cnt(hex) [word lex_id(hex)]... p_cnt ... | gloss
std::vector<std::string> WordNet::lemma_names(SynsetId id) const {
  const std::string& text = data_file(id.pos).text;
  auto bad = [&](std::string_view why) {
    return DataError(
        fmt::format("WordNet data.{} at offset {}: {}", kFileSuffix[static_cast<int>(id.pos)], id.offset, why));
  };
  if (id.offset >= text.size()) throw bad("past the end of the file");
  const size_t end = text.find_first_of("\r\n", id.offset);
  std::string_view line = std::string_view(text).substr(id.offset, end == std::string::npos ? end : end - id.offset);
  if (!line.starts_with(fmt::format("{:08d}", id.offset))) throw bad("no synset starts there");
  line = line.substr(0, line.find('|'));
  std::vector<std::string_view> fields;
  detail::split_python_whitespace(line, fields);
  size_t n_lemmas = 0;
  if (fields.size() < 4 || !parse_int(fields[3], n_lemmas, 16) || fields.size() < 4 + 2 * n_lemmas)
    throw bad("malformed word list");
  std::vector<std::string> names;
  names.reserve(n_lemmas);
  for (size_t k = 0; k < n_lemmas; ++k) names.emplace_back(strip_syntactic_marker(fields[4 + 2 * k]));
  return names;
}

const std::vector<std::string>& WordNet::synonyms(std::string_view word) const {
  const std::string key(word);
  {
    std::lock_guard lock(synonyms_mutex_);
    if (const auto it = synonyms_.find(key); it != synonyms_.end()) return it->second;
  }
  std::vector<std::string> names;
  for (const SynsetId& id : synsets(word)) {
    for (std::string& name : lemma_names(id)) {
      if (name.find('_') == std::string::npos) names.push_back(std::move(name));
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  std::lock_guard lock(synonyms_mutex_);
  return synonyms_.try_emplace(key, std::move(names)).first->second;
}

}  // namespace troupe::metrics
