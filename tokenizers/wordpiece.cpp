// WordPiece tokenizer implementation: UTF-8 decoding, BERT's BasicTokenizer rules and greedy subword matching.
// Not a Unicode library: categories come from PCRE2; case tables cover Latin, Greek and Cyrillic, accent tables Latin.
#include "tokenizers/wordpiece.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <fstream>
#include <memory>
#include <utility>

#include "core/errors.h"
#include "core/utf8.h"

namespace troupe::tokenizers {
namespace detail {
namespace {

constexpr char32_t kReplacement = 0xFFFD;
using core::append_utf8;
using core::encode_utf8;

// Decodes UTF-8; each byte of an invalid or truncated sequence becomes U+FFFD (later dropped by cleaning).
std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    int len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
    char32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    bool ok = len > 0 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      ok = (b & 0xC0) == 0x80;
      cp = (cp << 6) | (b & 0x3F);
    }
    // Reject overlong forms, surrogates and values past U+10FFFF.
    static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    ok = ok && cp >= kMin[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    out.push_back(ok ? cp : kReplacement);
    i += ok ? len : 1;
  }
  return out;
}

// The Unicode general-category groups BERT cares about.
enum class CharClass { kOther, kControl, kSpace, kPunct, kMark };

// One compiled, read-only PCRE2 pattern, shared by all threads (pcre2_code is immutable after compile);
// match data is per thread. Costs one pcre2_match per non-ASCII code point.
class UnicodeClassifier {
 public:
  UnicodeClassifier() {
    static constexpr char kPattern[] = R"(^(?:(\p{C})|(\p{Z})|(\p{P})|(\p{Mn})))";
    int err = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err,
                          &offset, nullptr);
    if (code_ == nullptr) throw Error("wordpiece: PCRE2 lacks Unicode property support");
  }
  ~UnicodeClassifier() { pcre2_code_free(code_); }
  UnicodeClassifier(const UnicodeClassifier&) = delete;
  UnicodeClassifier& operator=(const UnicodeClassifier&) = delete;

  CharClass classify(char32_t cp) const {
    struct MatchDataFree {
      void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
    };
    thread_local std::unique_ptr<pcre2_match_data, MatchDataFree> match(pcre2_match_data_create(5, nullptr));
    std::string utf8;
    append_utf8(utf8, cp);
    const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(utf8.data()), utf8.size(), 0, PCRE2_NO_UTF_CHECK,
                               match.get(), nullptr);
    if (rc <= 1) return CharClass::kOther;
    static constexpr CharClass kByGroup[] = {CharClass::kOther, CharClass::kControl, CharClass::kSpace,
                                             CharClass::kPunct, CharClass::kMark};
    return kByGroup[rc - 1];  // rc - 1 is the highest group that matched; exactly one can
  }

 private:
  pcre2_code* code_ = nullptr;
};

CharClass char_class(char32_t cp) {
  if (cp < 0x80) {
    if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') return CharClass::kSpace;
    if (cp < 0x20 || cp == 0x7F) return CharClass::kControl;
    // BERT treats every non-alphanumeric printable ASCII char as punctuation ($, +, ^, ` included).
    const bool punct = (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || cp >= 123;
    return punct ? CharClass::kPunct : CharClass::kOther;
  }
  static const UnicodeClassifier classifier;
  return classifier.classify(cp);
}

// HF's _is_chinese_char: the CJK Unified Ideographs blocks (not Hiragana, Katakana or Hangul).
bool is_cjk(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// Appends the lower-case form of cp (one code point, or two for U+0130 as in Python's str.lower).
void append_lower(std::u32string& out, char32_t cp) {
  char32_t lower = cp;
  if ((cp >= 'A' && cp <= 'Z') || (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7)) {
    lower = cp + 0x20;
  } else if (cp == 0x130) {  // İ -> i + COMBINING DOT ABOVE
    out.push_back('i');
    out.push_back(0x307);
    return;
  } else if (cp >= 0x100 && cp <= 0x17F) {
    // Latin Extended-A pairs upper/lower as (even, odd), except 0x139-0x148 and 0x179-0x17E (odd, even),
    // the caseless 0x131, 0x138, 0x149, 0x17F, and Ÿ (0x178) whose lower case is ÿ in Latin-1.
    const bool odd_upper = (cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E);
    if (cp == 0x178) {
      lower = 0xFF;
    } else if (cp != 0x131 && cp != 0x138 && cp != 0x149 && cp != 0x17F && (cp % 2 == 1) == odd_upper) {
      lower = cp + 1;
    }
  } else if ((cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) || (cp >= 0x410 && cp <= 0x42F)) {
    lower = cp + 0x20;  // Greek capitals, Cyrillic А-Я
  } else if (cp >= 0x400 && cp <= 0x40F) {
    lower = cp + 0x50;  // Cyrillic Ѐ-Џ
  } else if (cp == 0x386) {
    lower = 0x3AC;
  } else if (cp >= 0x388 && cp <= 0x38A) {
    lower = cp + 0x25;
  } else if (cp == 0x38C || cp == 0x38E || cp == 0x38F) {
    lower = cp + (cp == 0x38C ? 0x40 : 0x3F);
  }
  out.push_back(lower);
}

// Base letter of a precomposed Latin letter (its NFD without the marks), or 0 when it has no canonical
// decomposition. Rows are U+00C0.., U+0100.. in steps of one code point; '.' means "none".
char32_t accent_base(char32_t cp) {
  static constexpr std::string_view kLatin1 =  // U+00C0 - U+00FF
      "AAAAAA.CEEEEIIII.NOOOOO..UUUUY..aaaaaa.ceeeeiiii.nooooo..uuuuy.y";
  static constexpr std::string_view kExtendedA =  // U+0100 - U+017F
      "AaAaAaCcCcCcCcDd..EeEeEeEeEeGgGg"
      "GgGgHh..IiIiIiIiI...JjKk.LlLlLl."
      "...NnNnNn...OoOoOo..RrRrRrSsSsSs"
      "SsTtTt..UuUuUuUuUuUuWwYyYZzZzZz.";
  char c = '.';
  if (cp >= 0xC0 && cp <= 0xFF) c = kLatin1[cp - 0xC0];
  if (cp >= 0x100 && cp <= 0x17F) c = kExtendedA[cp - 0x100];
  return c == '.' ? 0 : static_cast<char32_t>(c);
}

// Drops control characters, U+0000 and U+FFFD; maps all whitespace to ' '; spaces out CJK ideographs.
std::u32string clean_text(const std::u32string& text, bool split_cjk) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t cp : text) {
    if (cp == 0 || cp == kReplacement) continue;
    const CharClass cls = char_class(cp);
    if (cls == CharClass::kControl) continue;
    if (cls == CharClass::kSpace) {
      out.push_back(' ');
    } else if (split_cjk && is_cjk(cp)) {
      out.append({U' ', cp, U' '});
    } else {
      out.push_back(cp);
    }
  }
  return out;
}

// Lower-cases and/or strips accents of one whitespace-free word, then splits it so each punctuation char
// stands alone: "hello," -> {"hello", ","}.
void split_word(const std::u32string& word, bool lower, bool strip, std::vector<std::string>& out) {
  std::u32string cased;
  if (lower) {
    for (char32_t cp : word) append_lower(cased, cp);
  } else {
    cased = word;
  }
  std::u32string current;
  for (char32_t cp : cased) {
    if (strip) {
      if (const char32_t base = accent_base(cp)) cp = base;
      if (cp >= 0x80 && char_class(cp) == CharClass::kMark) continue;
    }
    if (char_class(cp) == CharClass::kPunct) {
      if (!current.empty()) out.push_back(encode_utf8(current));
      current.clear();
      out.push_back(encode_utf8(std::u32string(1, cp)));
    } else {
      current.push_back(cp);
    }
  }
  if (!current.empty()) out.push_back(encode_utf8(current));
}

}  // namespace
}  // namespace detail

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> vocab, WordPieceOptions options)
    : vocab_(std::move(vocab)), options_(std::move(options)) {
  if (options_.max_input_chars_per_word < 1) throw ConfigError("wordpiece: max_input_chars_per_word must be >= 1");
  if (options_.continuation_prefix.empty()) throw ConfigError("wordpiece: continuation_prefix must not be empty");
  strip_accents_ = options_.strip_accents.value_or(options_.lower_case);
  ids_.reserve(vocab_.size());
  for (size_t i = 0; i < vocab_.size(); ++i) {
    if (vocab_[i].empty()) throw DataError("wordpiece: empty token at id " + std::to_string(i));
    if (!ids_.emplace(vocab_[i], static_cast<int>(i)).second) {
      throw DataError("wordpiece: duplicate token '" + vocab_[i] + "' at id " + std::to_string(i));
    }
  }
  unk_id_ = token_to_id(options_.unk_token);
  if (unk_id_ < 0) throw DataError("wordpiece: unk_token '" + options_.unk_token + "' is not in the vocab");
}

WordPieceTokenizer WordPieceTokenizer::from_vocab_file(const std::filesystem::path& vocab_txt,
                                                       WordPieceOptions options) {
  std::ifstream in(vocab_txt, std::ios::binary);
  if (!in) throw IoError("wordpiece: cannot open vocab file " + vocab_txt.string());
  std::vector<std::string> vocab;
  std::unordered_map<std::string, int> first_line;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = vocab_txt.string() + ":" + std::to_string(line_no) + ": ";
    if (line.empty()) throw DataError(where + "empty token");
    const auto [it, inserted] = first_line.emplace(line, line_no);
    if (!inserted) {
      throw DataError(where + "duplicate token '" + line + "' (first on line " + std::to_string(it->second) + ")");
    }
    vocab.push_back(std::move(line));
  }
  if (in.bad()) throw IoError("wordpiece: error reading vocab file " + vocab_txt.string());
  if (first_line.count(options.unk_token) == 0) {
    throw DataError(vocab_txt.string() + ": unk_token '" + options.unk_token + "' is not in the vocab");
  }
  return WordPieceTokenizer(std::move(vocab), std::move(options));
}

std::vector<std::string> WordPieceTokenizer::basic_tokenize(std::string_view text) const {
  const std::u32string cleaned = detail::clean_text(detail::decode_utf8(text), options_.tokenize_chinese_chars);
  std::vector<std::string> out;
  size_t start = 0;
  while (start < cleaned.size()) {
    if (cleaned[start] == ' ') {
      ++start;
      continue;
    }
    size_t end = cleaned.find(U' ', start);
    if (end == std::u32string::npos) end = cleaned.size();
    detail::split_word(cleaned.substr(start, end - start), options_.lower_case, strip_accents_, out);
    start = end;
  }
  return out;
}

void WordPieceTokenizer::encode_word(std::string_view word, std::vector<int>& out) const {
  const std::u32string chars = detail::decode_utf8(word);
  if (chars.size() > static_cast<size_t>(options_.max_input_chars_per_word)) {
    out.push_back(unk_id_);
    return;
  }
  const size_t first_piece = out.size();
  size_t start = 0;
  while (start < chars.size()) {
    // Longest match first: shrink the candidate from the right until it is in the vocab. O(n^2) per word,
    // bounded by max_input_chars_per_word.
    int found = -1;
    size_t end = chars.size();
    for (; end > start; --end) {
      std::string piece = start > 0 ? options_.continuation_prefix : std::string();
      piece += detail::encode_utf8(chars.substr(start, end - start));
      found = token_to_id(piece);
      if (found >= 0) break;
    }
    if (found < 0) {
      out.resize(first_piece);
      out.push_back(unk_id_);
      return;
    }
    out.push_back(found);
    start = end;
  }
}

std::vector<int> WordPieceTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  for (const std::string& word : basic_tokenize(text)) encode_word(word, ids);
  return ids;
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> tokens;
  for (int id : encode(text)) tokens.push_back(vocab_[id]);
  return tokens;
}

std::string WordPieceTokenizer::decode(const std::vector<int>& ids) const {
  const std::string& prefix = options_.continuation_prefix;
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string& token = id_to_token(ids[i]);
    if (i > 0 && token.compare(0, prefix.size(), prefix) == 0) {
      out.append(token, prefix.size());
    } else {
      if (i > 0) out.push_back(' ');
      out += token;
    }
  }
  return out;
}

int WordPieceTokenizer::token_to_id(std::string_view token) const {
  const auto it = ids_.find(std::string(token));
  return it == ids_.end() ? -1 : it->second;
}

const std::string& WordPieceTokenizer::id_to_token(int id) const {
  if (id < 0 || id >= vocab_size()) {
    throw DataError("wordpiece: token id " + std::to_string(id) + " outside [0, " + std::to_string(vocab_size()) + ")");
  }
  return vocab_[id];
}

}  // namespace troupe::tokenizers
