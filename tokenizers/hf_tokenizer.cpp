// Implementation of tokenizers/hf_tokenizer.h, following `tokenizers` 0.2x: AddedVocabulary::find_matches
// (leftmost-longest, single_word, lstrip, rstrip), extract_and_normalize (raw-text tokens, then normalization, then
// normalized tokens), and models/bpe (merge_word with byte fallback and unk fusing, Word::merge_all by merge rank).
#include "tokenizers/hf_tokenizer.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <queue>

#include "core/errors.h"
#include "tokenizers/bpe_tokenizer.h"
#include "tokenizers/foreign_formats.h"
#include "tokenizers/pretokenizer.h"

namespace troupe::tokenizers {
namespace {

using nlohmann::json;

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

[[noreturn]] void bad(const std::string& where, const std::string& what) { throw DataError(where + ": " + what); }

constexpr long long kMaxId = 1 << 22;  // 4M: far above real vocabularies (~256k), bounds the id -> token table

size_t char_len(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  return std::min<size_t>(c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4, s.size() - i);
}

// Rust's char::is_whitespace (Unicode White_Space) on the character at `i`.
bool is_white_space_at(std::string_view s, size_t i) {
  static const Pretokenizer kSpace(R"(\A\s)");
  std::vector<std::pair<size_t, size_t>> spans;
  kSpace.matches(s.substr(i, char_len(s, i)), spans);
  return !spans.empty();
}

// Rust regex's Unicode \w (Alphabetic, marks, Nd, Pc, Join_Control), which `tokenizers` uses for single_word:
// Alphabetic is letters, Nl and Other_Alphabetic (marks, plus the circled and squared Latin letters).
bool is_word_char(std::string_view ch) {
  static const Pretokenizer kWord(
      R"(\A[\p{L}\p{Nl}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}\x{24B6}-\x{24E9}\x{1F130}-\x{1F149}\x{1F150}-\x{1F169}\x{1F170}-\x{1F189}])");
  std::vector<std::pair<size_t, size_t>> spans;
  kWord.matches(ch, spans);
  return !spans.empty();
}

// The start of the last character of s[0, end).
size_t previous_char(std::string_view s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

}  // namespace

struct HfTokenizer::Model {
  std::unordered_map<std::string, int, StringHash, std::equal_to<>> vocab;
  std::vector<std::string> tokens;                           // by id (model vocab and added tokens)
  std::unordered_map<uint64_t, std::pair<int, int>> merges;  // (left id, right id) -> (rank, merged id)
  int unk_id = -1;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
  std::vector<int> byte_ids;  // id of "<0xXX>" per byte, -1 when absent

  static uint64_t key(int a, int b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  void tokenize(std::string_view word, std::vector<int>& ids) const;
};

namespace {

struct Symbol {
  int id;
  long prev;
  long next;
  size_t len;
};

// Word::merge_all: repeatedly the lowest-rank merge (leftmost on ties) among adjacent symbols.
void merge_all(std::vector<Symbol>& symbols, const HfTokenizer::Model& m) {
  struct Merge {
    long pos;
    int rank;
    int new_id;
  };
  const auto later = [](const Merge& a, const Merge& b) { return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos; };
  std::priority_queue<Merge, std::vector<Merge>, decltype(later)> queue(later);
  const auto push = [&](long left) {
    const long right = symbols[left].next;
    if (left < 0 || right < 0 || right >= static_cast<long>(symbols.size())) return;
    const auto it = m.merges.find(HfTokenizer::Model::key(symbols[left].id, symbols[right].id));
    if (it != m.merges.end()) queue.push({left, it->second.first, it->second.second});
  };
  for (long i = 0; i + 1 < static_cast<long>(symbols.size()); ++i) push(i);
  while (!queue.empty()) {
    const Merge top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.len == 0 || left.next == -1) continue;
    Symbol right = symbols[left.next];
    const auto it = m.merges.find(HfTokenizer::Model::key(left.id, right.id));
    if (it == m.merges.end() || it->second.second != top.new_id) continue;
    symbols[left.next].len = 0;
    left.id = top.new_id;
    left.len += right.len;
    left.next = right.next;
    if (right.next >= 0 && right.next < static_cast<long>(symbols.size())) symbols[right.next].prev = top.pos;
    if (left.prev >= 0) push(left.prev);
    push(top.pos);
  }
}

}  // namespace

// BPE::tokenize: a whole-word vocab hit under ignore_merges, else characters (byte pieces or <unk> for unknown
// ones) merged by rank.
void HfTokenizer::Model::tokenize(std::string_view word, std::vector<int>& ids) const {
  if (word.empty()) return;
  if (ignore_merges) {
    if (const auto it = vocab.find(word); it != vocab.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  std::vector<Symbol> symbols;
  const auto add = [&](int id, size_t len) {
    const long index = static_cast<long>(symbols.size());
    if (index > 0) symbols.back().next = index;
    symbols.push_back({id, index - 1, -1, len});
  };
  int pending_unk_len = 0;  // a held <unk> (fuse_unk joins runs of them)
  for (size_t i = 0; i < word.size();) {
    const size_t n = char_len(word, i);
    const std::string_view ch = word.substr(i, n);
    i += n;
    if (const auto it = vocab.find(ch); it != vocab.end()) {
      if (pending_unk_len > 0) add(unk_id, static_cast<size_t>(pending_unk_len));
      pending_unk_len = 0;
      add(it->second, n);
      continue;
    }
    if (byte_fallback &&
        std::all_of(ch.begin(), ch.end(), [&](char c) { return byte_ids[static_cast<unsigned char>(c)] >= 0; })) {
      for (const char c : ch) add(byte_ids[static_cast<unsigned char>(c)], 1);
      continue;
    }
    if (unk_id < 0) continue;  // no unk_token: the character is dropped, as `tokenizers` does
    if (pending_unk_len > 0 && !fuse_unk) add(unk_id, static_cast<size_t>(pending_unk_len)), pending_unk_len = 0;
    pending_unk_len += static_cast<int>(n);
  }
  if (pending_unk_len > 0) add(unk_id, static_cast<size_t>(pending_unk_len));
  merge_all(symbols, *this);
  for (const Symbol& s : symbols) {
    if (s.len != 0) ids.push_back(s.id);
  }
}

namespace {

// One piece of the input after added-token matching: a token id, or text (id -1) starting at byte `start`.
struct Segment {
  int id;
  size_t start;
  std::string_view text;
};

// Added-token contents to search for, bucketed by their first byte.
struct Patterns {
  std::array<std::vector<std::pair<std::string, size_t>>, 256> by_first;  // (content, index into added tokens)
  void add(std::string content, size_t index) {
    if (!content.empty()) by_first[static_cast<unsigned char>(content[0])].emplace_back(std::move(content), index);
  }
};

// AddedVocabulary::find_matches: leftmost-longest matches of `patterns` in `s`, then single_word, lstrip, rstrip.
std::vector<Segment> split_added(std::string_view s, const std::vector<HfAddedToken>& added, const Patterns& patterns) {
  std::vector<Segment> out;
  size_t offset = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    const std::pair<std::string, size_t>* best = nullptr;
    for (const auto& p : patterns.by_first[static_cast<unsigned char>(s[pos])]) {
      if (s.compare(pos, p.first.size(), p.first) == 0 && (best == nullptr || p.first.size() > best->first.size())) {
        best = &p;
      }
    }
    if (best == nullptr) {
      ++pos;
      continue;
    }
    const HfAddedToken& token = added[best->second];
    size_t start = pos;
    size_t stop = pos + best->first.size();
    pos = stop;
    if (token.single_word) {
      const bool start_space =
          start == 0 || !is_word_char(s.substr(previous_char(s, start), start - previous_char(s, start)));
      const bool stop_space = stop == s.size() || !is_word_char(s.substr(stop, char_len(s, stop)));
      if (!start_space || !stop_space) continue;
    }
    if (token.lstrip) {
      size_t new_start = start;
      while (new_start > 0 && is_white_space_at(s, previous_char(s, new_start)))
        new_start = previous_char(s, new_start);
      start = std::max(new_start, offset);
    }
    if (token.rstrip) {
      while (stop < s.size() && is_white_space_at(s, stop)) stop += char_len(s, stop);
      pos = std::max(pos, stop);
    }
    if (offset < start) out.push_back({-1, offset, s.substr(offset, start - offset)});
    out.push_back({token.id, start, {}});
    offset = stop;
  }
  if (offset < s.size()) out.push_back({-1, offset, s.substr(offset)});
  return out;
}

}  // namespace

struct HfTokenizer::AddedMatchers {
  Patterns raw[2];         // matched in the raw input; [1]: special tokens left out (encode_special_tokens)
  Patterns normalized[2];  // matched after normalization (contents normalized too)
};

void HfTokenizer::encode_segment(std::string_view raw, bool at_origin, bool split_special_tokens,
                                 std::vector<int>& ids) const {
  std::string normalized(raw);
  if (normalizer_) normalizer_->apply(normalized);
  for (const Segment& seg : split_added(normalized, added_, matchers_->normalized[split_special_tokens ? 0 : 1])) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    std::vector<HfSplit> splits{{std::string(seg.text), at_origin && seg.start == 0}};
    if (pre_tokenizer_) pre_tokenizer_->apply(splits);
    for (const HfSplit& split : splits) model_->tokenize(split.text, ids);
  }
}

std::vector<int> HfTokenizer::encode(std::string_view input, bool split_special_tokens, bool at_start) const {
  const std::string text = detail::utf8_replace_invalid(input);
  std::vector<int> ids;
  for (const Segment& seg : split_added(text, added_, matchers_->raw[split_special_tokens ? 0 : 1])) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
    } else {
      encode_segment(seg.text, at_start && seg.start == 0, split_special_tokens, ids);
    }
  }
  return ids;
}

const std::string& HfTokenizer::token(int id) const {
  static const std::string kNone;
  return id >= 0 && id < static_cast<int>(model_->tokens.size()) ? model_->tokens[static_cast<size_t>(id)] : kNone;
}

int HfTokenizer::vocab_size() const { return static_cast<int>(model_->tokens.size()); }

std::string HfTokenizer::decode(const std::vector<int>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  for (const int id : ids) {
    if (id < 0 || id >= vocab_size() || model_->tokens[static_cast<size_t>(id)].empty()) {
      throw DataError("token id " + std::to_string(id) + " is not in the tokenizer's vocabulary");
    }
    const auto special =
        std::find_if(added_.begin(), added_.end(), [&](const HfAddedToken& t) { return t.id == id && t.special; });
    if (skip_special_tokens && special != added_.end()) continue;
    tokens.push_back(model_->tokens[static_cast<size_t>(id)]);
  }
  if (decoder_) tokens = decoder_->apply(std::move(tokens));
  std::string out;
  for (size_t i = 0; i < tokens.size(); ++i) out += (decoder_ || i == 0 ? "" : " ") + tokens[i];
  return out;
}

namespace {

bool flag(const json& j, const char* key, bool fallback, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) bad(where + "." + key, "expected true or false");
  return j[key].get<bool>();
}

std::shared_ptr<HfTokenizer::Model> parse_bpe(const json& m, const std::string& where) {
  if (!m.is_object()) bad(where, "expected an object");
  if (m.contains("type") && m["type"] != "BPE") {
    bad(where + ".type", "only BPE models are supported, not " + m["type"].dump());
  }
  if (m.contains("dropout") && !m["dropout"].is_null() && m["dropout"].get<double>() != 0.0) {
    bad(where + ".dropout", "BPE dropout is not supported (it makes encoding random)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (m.contains(key) && !m[key].is_null() && m[key] != "") bad(where + "." + key, "is not supported");
  }
  auto model = std::make_shared<HfTokenizer::Model>();
  if (!m.contains("vocab") || !m["vocab"].is_object()) bad(where + ".vocab", "expected an object of token -> id");
  for (const auto& [token, id] : m["vocab"].items()) {
    if (!id.is_number_integer() || id.get<long long>() < 0 || id.get<long long>() > kMaxId) {
      bad(where + ".vocab." + token, "expected an integer id in [0, 2^22]");
    }
    const auto i = static_cast<size_t>(id.get<int>());
    if (model->tokens.size() <= i) model->tokens.resize(i + 1);
    model->tokens[i] = token;
    model->vocab.emplace(token, static_cast<int>(i));
  }
  const auto id_of = [&](const std::string& t, const std::string& key) {
    const auto it = model->vocab.find(t);
    if (it == model->vocab.end()) bad(key, "token '" + t + "' is not in the vocab");
    return it->second;
  };
  if (!m.contains("merges") || !m["merges"].is_array()) bad(where + ".merges", "expected an array");
  for (size_t r = 0; r < m["merges"].size(); ++r) {
    const json& e = m["merges"][r];
    const std::string key = where + ".merges[" + std::to_string(r) + "]";
    std::string a;
    std::string b;
    if (e.is_string() && e.get_ref<const std::string&>().find(' ') != std::string::npos) {
      const std::string& line = e.get_ref<const std::string&>();
      a = line.substr(0, line.find(' '));
      b = line.substr(line.find(' ') + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    } else {
      bad(key, "expected \"left right\" or [left, right]");
    }
    const int left = id_of(a, key);
    const int right = id_of(b, key);
    const int merged = id_of(a + b, key);
    model->merges.emplace(HfTokenizer::Model::key(left, right), std::make_pair(static_cast<int>(r), merged));
  }
  if (m.contains("unk_token") && m["unk_token"].is_string())
    model->unk_id = id_of(m["unk_token"].get<std::string>(), where + ".unk_token");
  model->fuse_unk = flag(m, "fuse_unk", false, where);
  model->byte_fallback = flag(m, "byte_fallback", false, where);
  model->ignore_merges = flag(m, "ignore_merges", false, where);
  model->byte_ids.assign(256, -1);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    if (const auto it = model->vocab.find(std::string_view(name)); it != model->vocab.end())
      model->byte_ids[b] = it->second;
  }
  return model;
}

std::vector<HfAddedToken> parse_added(const json& j, HfTokenizer::Model& model, const std::string& where) {
  std::vector<HfAddedToken> out;
  if (j.is_null()) return out;
  if (!j.is_array()) bad(where, "expected an array");
  for (size_t i = 0; i < j.size(); ++i) {
    const json& e = j[i];
    const std::string key = where + "[" + std::to_string(i) + "]";
    if (!e.is_object() || !e.contains("id") || !e["id"].is_number_integer() || !e.contains("content") ||
        !e["content"].is_string()) {
      bad(key, "expected {\"id\": int, \"content\": str, ...}");
    }
    HfAddedToken t;
    const long long id = e["id"].get<long long>();
    t.content = e["content"].get<std::string>();
    if (id < 0 || id > kMaxId || t.content.empty()) bad(key, "expected an id in [0, 2^22] and non-empty content");
    t.id = static_cast<int>(id);
    t.special = flag(e, "special", false, key);
    t.single_word = flag(e, "single_word", false, key);
    t.lstrip = flag(e, "lstrip", false, key);
    t.rstrip = flag(e, "rstrip", false, key);
    t.normalized = flag(e, "normalized", !t.special, key);
    if (model.tokens.size() <= static_cast<size_t>(t.id)) model.tokens.resize(static_cast<size_t>(t.id) + 1);
    model.tokens[static_cast<size_t>(t.id)] = t.content;
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace

HfTokenizer HfTokenizer::from_file(const std::filesystem::path& path) {
  const std::string where = path.string();
  json root;
  try {
    root = json::parse(detail::read_tokenizer_file(path));
  } catch (const json::exception& e) {
    bad(where, std::string("invalid JSON: ") + e.what());
  }
  if (!root.is_object() || !root.contains("model")) bad(where, "not a Hugging Face tokenizer.json (no \"model\")");
  HfTokenizer tok;
  try {
    auto model = parse_bpe(root["model"], where + ": model");
    tok.added_ = parse_added(root.value("added_tokens", json()), *model, where + ": added_tokens");
    tok.normalizer_ = parse_hf_normalizer(root.value("normalizer", json()), where + ": normalizer");
    for (const HfAddedToken& t : tok.added_) {  // `tokenizers` decodes a normalized added token as normalized
      if (t.normalized && tok.normalizer_) tok.normalizer_->apply(model->tokens[static_cast<size_t>(t.id)]);
    }
    tok.model_ = std::move(model);
    auto matchers = std::make_shared<AddedMatchers>();
    for (size_t i = 0; i < tok.added_.size(); ++i) {
      const HfAddedToken& t = tok.added_[i];
      std::string content = t.content;
      if (t.normalized && tok.normalizer_) tok.normalizer_->apply(content);
      for (int without_specials = 0; without_specials < 2; ++without_specials) {
        if (without_specials == 1 && t.special) continue;
        (t.normalized ? matchers->normalized : matchers->raw)[without_specials].add(content, i);
      }
    }
    tok.matchers_ = std::move(matchers);
    tok.pre_tokenizer_ = parse_hf_pre_tokenizer(root.value("pre_tokenizer", json()), where + ": pre_tokenizer");
    tok.decoder_ = parse_hf_decoder(root.value("decoder", json()), where + ": decoder");
  } catch (const json::exception& e) {
    bad(where, std::string("unexpected value: ") + e.what());
  }
  return tok;
}

}  // namespace troupe::tokenizers
