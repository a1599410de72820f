// Implementation of tokenizers/hf_pipeline.h. Regexes and character classes go through PCRE2 (Pretokenizer, with
// \s as Unicode White_Space); splitting follows `tokenizers`' NormalizedString::split: find_matches covers the text
// with (span, is_match) pieces, the behavior merges or removes the matches, and empty pieces are dropped.
#include "tokenizers/hf_pipeline.h"

#include <array>
#include <cctype>
#include <cstdio>
#include <map>

#include "core/errors.h"
#include "tokenizers/bpe_tokenizer.h"
#include "tokenizers/foreign_formats.h"
#include "tokenizers/pretokenizer.h"

namespace troupe::tokenizers {
namespace {

using nlohmann::json;
enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
using Span = std::pair<size_t, size_t>;

[[noreturn]] void bad(const std::string& where, const std::string& what) { throw DataError(where + ": " + what); }

std::string get_string(const json& j, const char* key, const std::string& where, const std::string& fallback = "") {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_string()) bad(where + "." + key, "expected a string");
  return j[key].get<std::string>();
}

bool get_bool(const json& j, const char* key, const std::string& where, bool fallback) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if (!j[key].is_boolean()) bad(where + "." + key, "expected true or false");
  return j[key].get<bool>();
}

// Decodes one code point of valid UTF-8 at `i`, advancing it.
char32_t next_code_point(std::string_view s, size_t& i) {
  const auto c0 = static_cast<unsigned char>(s[i]);
  const size_t n = c0 < 0x80 ? 1 : c0 < 0xE0 ? 2 : c0 < 0xF0 ? 3 : 4;
  char32_t cp = n == 1 ? c0 : n == 2 ? (c0 & 0x1F) : n == 3 ? (c0 & 0x0F) : (c0 & 0x07);
  for (size_t k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}

// A regex matching `literal` exactly (each code point escaped as \x{...}).
std::string literal_regex(std::string_view literal) {
  std::string out;
  for (size_t i = 0; i < literal.size();) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "\\x{%X}", static_cast<unsigned>(next_code_point(literal, i)));
    out += buf;
  }
  return out;
}

// A {"String": s} or {"Regex": r} pattern object as a compiled regex.
Pretokenizer parse_pattern(const json& j, const std::string& where) {
  if (j.is_object() && j.contains("String") && j["String"].is_string()) {
    return Pretokenizer(literal_regex(j["String"].get<std::string>()));
  }
  if (j.is_object() && j.contains("Regex") && j["Regex"].is_string()) {
    try {
      return Pretokenizer(j["Regex"].get<std::string>());
    } catch (const ConfigError& e) {
      bad(where, e.what());
    }
  }
  bad(where, "expected {\"String\": ...} or {\"Regex\": ...}");
}

Behavior parse_behavior(const json& j, const char* key, const std::string& where, Behavior fallback) {
  const std::string b = get_string(j, key, where);
  if (b.empty()) return fallback;
  if (b == "Removed") return Behavior::kRemoved;
  if (b == "Isolated") return Behavior::kIsolated;
  if (b == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::kMergedWithNext;
  if (b == "Contiguous") return Behavior::kContiguous;
  bad(where + "." + key, "unknown behavior '" + b + "'");
}

// find_matches: (span, is_match) pieces covering `text`, flags flipped when `invert`.
std::vector<std::pair<Span, bool>> find_matches(const Pretokenizer& re, std::string_view text, bool invert) {
  std::vector<Span> spans;
  re.matches(text, spans);
  std::vector<std::pair<Span, bool>> out;
  size_t previous = 0;
  for (const auto& [start, end] : spans) {
    if (start != previous) out.push_back({{previous, start}, invert});
    out.push_back({{start, end}, !invert});
    previous = end;
  }
  if (previous != text.size()) out.push_back({{previous, text.size()}, invert});
  return out;
}

// NormalizedString::split: which spans survive, merged as `behavior` says; (span, removed).
std::vector<std::pair<Span, bool>> apply_behavior(std::vector<std::pair<Span, bool>> m, Behavior behavior) {
  std::vector<std::pair<Span, bool>> acc;
  bool previous_match = false;
  switch (behavior) {
    case Behavior::kRemoved: return m;
    case Behavior::kIsolated:
      for (auto& piece : m) piece.second = false;
      return m;
    case Behavior::kContiguous:
    case Behavior::kMergedWithPrevious:
      for (const auto& [span, is_match] : m) {
        const bool merge = behavior == Behavior::kContiguous ? is_match == previous_match : is_match && !previous_match;
        if (merge && !acc.empty()) {
          acc.back().first.second = span.second;
        } else {
          acc.push_back({span, false});
        }
        previous_match = is_match;
      }
      return acc;
    case Behavior::kMergedWithNext:
      for (auto it = m.rbegin(); it != m.rend(); ++it) {
        if (it->second && !previous_match && !acc.empty()) {
          acc.back().first.first = it->first.first;
        } else {
          acc.push_back({it->first, false});
        }
        previous_match = it->second;
      }
      return {acc.rbegin(), acc.rend()};
  }
  return acc;
}

void split_into(const HfSplit& in, const Pretokenizer& re, bool invert, Behavior behavior, std::vector<HfSplit>& out) {
  for (const auto& [span, removed] : apply_behavior(find_matches(re, in.text, invert), behavior)) {
    if (removed || span.second == span.first) continue;
    out.push_back({in.text.substr(span.first, span.second - span.first), in.at_origin && span.first == 0});
  }
}

// A pre-tokenizer that splits each piece by a regex.
class SplitPre : public HfPreTokenizer {
 public:
  SplitPre(Pretokenizer re, bool invert, Behavior behavior)
      : re_(std::move(re)), invert_(invert), behavior_(behavior) {}
  void apply(std::vector<HfSplit>& splits) const override {
    std::vector<HfSplit> out;
    for (const auto& s : splits) split_into(s, re_, invert_, behavior_, out);
    splits = std::move(out);
  }

 private:
  Pretokenizer re_;
  bool invert_;
  Behavior behavior_;
};

class ByteLevelPre : public HfPreTokenizer {
 public:
  ByteLevelPre(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}
  void apply(std::vector<HfSplit>& splits) const override {
    static const Pretokenizer kGpt2(kGpt2Pattern);
    std::vector<HfSplit> out;
    for (HfSplit s : splits) {
      if (add_prefix_space_ && (s.text.empty() || s.text[0] != ' ')) s.text.insert(0, " ");
      if (use_regex_) {
        split_into(s, kGpt2, false, Behavior::kIsolated, out);
      } else if (!s.text.empty()) {
        out.push_back(std::move(s));
      }
    }
    for (auto& s : out) s.text = detail::byte_level_map(s.text);
    splits = std::move(out);
  }

 private:
  bool add_prefix_space_;
  bool use_regex_;
};

enum class Prepend { kAlways, kFirst, kNever };

class MetaspacePre : public HfPreTokenizer {
 public:
  MetaspacePre(std::string replacement, Prepend prepend, bool split)
      : replacement_(std::move(replacement)), prepend_(prepend), split_(split), re_(literal_regex(replacement_)) {}
  void apply(std::vector<HfSplit>& splits) const override {
    std::vector<HfSplit> out;
    for (HfSplit s : splits) {
      std::string replaced;
      for (const char c : s.text) {
        if (c == ' ') {
          replaced += replacement_;
        } else {
          replaced += c;
        }
      }
      s.text = std::move(replaced);
      const bool starts = s.text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (prepend_ == Prepend::kAlways || (prepend_ == Prepend::kFirst && s.at_origin))) {
        s.text.insert(0, replacement_);
      }
      if (split_) {
        split_into(s, re_, false, Behavior::kMergedWithNext, out);
      } else if (!s.text.empty()) {
        out.push_back(std::move(s));
      }
    }
    splits = std::move(out);
  }

 private:
  std::string replacement_;
  Prepend prepend_;
  bool split_;
  Pretokenizer re_;
};

class SequencePre : public HfPreTokenizer {
 public:
  explicit SequencePre(std::vector<std::unique_ptr<HfPreTokenizer>> steps) : steps_(std::move(steps)) {}
  void apply(std::vector<HfSplit>& splits) const override {
    for (const auto& step : steps_) step->apply(splits);
  }

 private:
  std::vector<std::unique_ptr<HfPreTokenizer>> steps_;
};

Prepend parse_prepend(const json& j, const std::string& where) {
  const std::string scheme = get_string(j, "prepend_scheme", where);
  if (scheme.empty()) return get_bool(j, "add_prefix_space", where, true) ? Prepend::kAlways : Prepend::kNever;
  if (scheme == "always") return Prepend::kAlways;
  if (scheme == "first") return Prepend::kFirst;
  if (scheme == "never") return Prepend::kNever;
  bad(where + ".prepend_scheme", "expected first, always or never, got '" + scheme + "'");
}

std::string type_of(const json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) bad(where, "expected an object with a \"type\"");
  return j["type"].get<std::string>();
}

// Normalizers.

class ReplaceNorm : public HfNormalizer {
 public:
  ReplaceNorm(Pretokenizer re, std::string content) : re_(std::move(re)), content_(std::move(content)) {}
  void apply(std::string& text) const override {
    std::vector<Span> spans;
    re_.matches(text, spans);
    if (spans.empty()) return;
    std::string out;
    size_t previous = 0;
    for (const auto& [start, end] : spans) {
      out.append(text, previous, start - previous);
      out += content_;
      previous = end;
    }
    out.append(text, previous);
    text = std::move(out);
  }

 private:
  Pretokenizer re_;
  std::string content_;
};

class PrependNorm : public HfNormalizer {
 public:
  explicit PrependNorm(std::string prefix) : prefix_(std::move(prefix)) {}
  void apply(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class StripNorm : public HfNormalizer {
 public:
  StripNorm(bool left, bool right)
      : re_(left && right ? R"(\A\s+|\s+\z)"
            : left        ? R"(\A\s+)"
                          : R"(\s+\z)"),
        any_(left || right) {}
  void apply(std::string& text) const override {
    if (any_) ReplaceNorm(re_, "").apply(text);
  }

 private:
  Pretokenizer re_;
  bool any_;
};

class SequenceNorm : public HfNormalizer {
 public:
  explicit SequenceNorm(std::vector<std::unique_ptr<HfNormalizer>> steps) : steps_(std::move(steps)) {}
  void apply(std::string& text) const override {
    for (const auto& step : steps_) step->apply(text);
  }

 private:
  std::vector<std::unique_ptr<HfNormalizer>> steps_;
};

// Decoders.

class ByteLevelDecoder : public HfDecoder {
 public:
  std::vector<std::string> apply(std::vector<std::string> tokens) const override {
    static const std::map<char32_t, char> kInverse = [] {
      std::map<char32_t, char> m;
      for (int b = 0; b < 256; ++b) m[detail::gpt2_byte_to_unicode()[b]] = static_cast<char>(b);
      return m;
    }();
    std::string bytes;
    for (const auto& t : tokens) {
      std::string mapped;
      bool all = true;
      for (size_t i = 0; i < t.size() && all;) {
        const auto it = kInverse.find(next_code_point(t, i));
        all = it != kInverse.end();
        if (all) mapped += it->second;
      }
      bytes += all ? mapped : t;
    }
    return {detail::utf8_replace_invalid(bytes)};
  }
};

class ByteFallbackDecoder : public HfDecoder {
 public:
  std::vector<std::string> apply(std::vector<std::string> tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    size_t count = 0;
    const auto flush = [&] {
      if (count == 0) return;
      if (detail::utf8_replace_invalid(bytes) == bytes) {
        out.push_back(bytes);
      } else {
        for (size_t i = 0; i < count; ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      bytes.clear();
      count = 0;
    };
    for (auto& t : tokens) {
      unsigned value = 0;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
          std::isxdigit(static_cast<unsigned char>(t[3])) && std::isxdigit(static_cast<unsigned char>(t[4])) &&
          std::sscanf(t.c_str() + 3, "%2x", &value) == 1) {
        bytes += static_cast<char>(value);
        ++count;
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    return out;
  }
};

class FuseDecoder : public HfDecoder {
 public:
  std::vector<std::string> apply(std::vector<std::string> tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    return {all};
  }
};

class ReplaceDecoder : public HfDecoder {
 public:
  explicit ReplaceDecoder(ReplaceNorm replace) : replace_(std::move(replace)) {}
  std::vector<std::string> apply(std::vector<std::string> tokens) const override {
    for (auto& t : tokens) replace_.apply(t);
    return tokens;
  }

 private:
  ReplaceNorm replace_;
};

// Strip: up to `start` leading and `stop` trailing copies of `content` (one character) from every token.
class StripDecoder : public HfDecoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  std::vector<std::string> apply(std::vector<std::string> tokens) const override {
    for (auto& t : tokens) {
      for (size_t i = 0; i < start_ && !content_.empty() && t.compare(0, content_.size(), content_) == 0; ++i) {
        t.erase(0, content_.size());
      }
      for (size_t i = 0; i < stop_ && !content_.empty() && t.size() >= content_.size() &&
                         t.compare(t.size() - content_.size(), content_.size(), content_) == 0;
           ++i) {
        t.resize(t.size() - content_.size());
      }
    }
    return tokens;
  }

 private:
  std::string content_;
  size_t start_;
  size_t stop_;
};

// Metaspace: the replacement becomes ' ', except in the first token when a space was prepended (dropped there).
class MetaspaceDecoder : public HfDecoder {
 public:
  MetaspaceDecoder(std::string replacement, bool drop_first)
      : replacement_(std::move(replacement)), drop_first_(drop_first) {}
  std::vector<std::string> apply(std::vector<std::string> tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      for (size_t at = 0; at < t.size();) {
        if (t.compare(at, replacement_.size(), replacement_) == 0) {
          if (!(i == 0 && drop_first_)) out += ' ';
          at += replacement_.size();
        } else {
          out += t[at++];
        }
      }
      tokens[i] = std::move(out);
    }
    return tokens;
  }

 private:
  std::string replacement_;
  bool drop_first_;
};

class SequenceDecoder : public HfDecoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<HfDecoder>> steps) : steps_(std::move(steps)) {}
  std::vector<std::string> apply(std::vector<std::string> tokens) const override {
    for (const auto& step : steps_) tokens = step->apply(std::move(tokens));
    return tokens;
  }

 private:
  std::vector<std::unique_ptr<HfDecoder>> steps_;
};

template <typename T, typename Parse>
std::vector<std::unique_ptr<T>> parse_list(const json& j, const char* key, const std::string& where, Parse parse) {
  if (!j.contains(key) || !j[key].is_array()) bad(where, std::string("expected \"") + key + "\": [...]");
  std::vector<std::unique_ptr<T>> steps;
  for (size_t i = 0; i < j[key].size(); ++i) {
    steps.push_back(parse(j[key][i], where + "." + key + "[" + std::to_string(i) + "]"));
  }
  return steps;
}

}  // namespace

namespace detail {

void append_utf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string byte_level_map(std::string_view text) {
  static const std::array<std::string, 256> kUtf8 = [] {
    std::array<std::string, 256> m;
    for (int b = 0; b < 256; ++b) append_utf8(gpt2_byte_to_unicode()[b], m[b]);
    return m;
  }();
  std::string out;
  out.reserve(text.size() * 2);
  for (const char c : text) out += kUtf8[static_cast<unsigned char>(c)];
  return out;
}

}  // namespace detail

std::unique_ptr<HfPreTokenizer> parse_hf_pre_tokenizer(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, where);
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array()) bad(where, "expected \"pretokenizers\": [...]");
    std::vector<std::unique_ptr<HfPreTokenizer>> steps;
    for (size_t i = 0; i < j["pretokenizers"].size(); ++i) {
      steps.push_back(
          parse_hf_pre_tokenizer(j["pretokenizers"][i], where + ".pretokenizers[" + std::to_string(i) + "]"));
    }
    return std::make_unique<SequencePre>(std::move(steps));
  }
  if (type == "Split") {
    return std::make_unique<SplitPre>(parse_pattern(j.value("pattern", json()), where + ".pattern"),
                                      get_bool(j, "invert", where, false),
                                      parse_behavior(j, "behavior", where, Behavior::kIsolated));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPre>(get_bool(j, "add_prefix_space", where, true),
                                          get_bool(j, "use_regex", where, true));
  }
  if (type == "Metaspace") {
    return std::make_unique<MetaspacePre>(get_string(j, "replacement", where, "\xE2\x96\x81"), parse_prepend(j, where),
                                          get_bool(j, "split", where, true));
  }
  if (type == "Digits") {
    return std::make_unique<SplitPre>(
        Pretokenizer(R"(\p{N})"), false,
        get_bool(j, "individual_digits", where, false) ? Behavior::kIsolated : Behavior::kContiguous);
  }
  if (type == "Punctuation") {
    return std::make_unique<SplitPre>(Pretokenizer(R"([\p{P}!-/:-@\[-`{-~])"), false,
                                      parse_behavior(j, "behavior", where, Behavior::kIsolated));
  }
  if (type == "WhitespaceSplit") return std::make_unique<SplitPre>(Pretokenizer(R"(\s)"), false, Behavior::kRemoved);
  if (type == "Whitespace")
    return std::make_unique<SplitPre>(Pretokenizer(R"(\w+|[^\w\s]+)"), true, Behavior::kRemoved);
  bad(where, "pre_tokenizer type '" + type +
                 "' is not supported (expected Sequence, Split, ByteLevel, Metaspace, Digits, Punctuation, "
                 "WhitespaceSplit or Whitespace)");
}

std::unique_ptr<HfNormalizer> parse_hf_normalizer(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, where);
  if (type == "Sequence") {
    return std::make_unique<SequenceNorm>(parse_list<HfNormalizer>(j, "normalizers", where, parse_hf_normalizer));
  }
  if (type == "Prepend") return std::make_unique<PrependNorm>(get_string(j, "prepend", where));
  if (type == "Replace") {
    return std::make_unique<ReplaceNorm>(parse_pattern(j.value("pattern", json()), where + ".pattern"),
                                         get_string(j, "content", where));
  }
  if (type == "Strip") {
    return std::make_unique<StripNorm>(get_bool(j, "strip_left", where, true), get_bool(j, "strip_right", where, true));
  }
  if (auto unicode = detail::make_unicode_normalizer(type)) return unicode;
  bad(where, "normalizer type '" + type +
                 "' is not supported (expected Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace or Strip)");
}

std::unique_ptr<HfDecoder> parse_hf_decoder(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, where);
  if (type == "Sequence")
    return std::make_unique<SequenceDecoder>(parse_list<HfDecoder>(j, "decoders", where, parse_hf_decoder));
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Replace") {
    return std::make_unique<ReplaceDecoder>(
        ReplaceNorm(parse_pattern(j.value("pattern", json()), where + ".pattern"), get_string(j, "content", where)));
  }
  if (type == "Strip") {
    return std::make_unique<StripDecoder>(get_string(j, "content", where, " "), j.value("start", size_t{0}),
                                          j.value("stop", size_t{0}));
  }
  if (type == "Metaspace") {
    return std::make_unique<MetaspaceDecoder>(get_string(j, "replacement", where, "\xE2\x96\x81"),
                                              parse_prepend(j, where) != Prepend::kNever);
  }
  bad(where, "decoder type '" + type +
                 "' is not supported (expected Sequence, ByteLevel, ByteFallback, Fuse, "
                 "Replace, Strip or Metaspace)");
}

}  // namespace troupe::tokenizers
