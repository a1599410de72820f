// Implementation of tokenizers/foreign_formats.h: tiktoken rank files + meta.json, GPT-2 encoder.json +
// vocab.bpe, HF tokenizer.json. Parsing is strict (errors name file:line); nothing here encodes text.
#include "tokenizers/foreign_formats.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_set>

#include "core/errors.h"
#include "core/run_dir.h"
#include "tokenizers/pretokenizer.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::tokenizers {
namespace fs = std::filesystem;

namespace {

std::string read_whole_file(const fs::path& path) { return detail::read_tokenizer_file(path); }

[[noreturn]] void fail_at(const fs::path& path, size_t line, const std::string& what) {
  throw DataError(path.string() + ":" + std::to_string(line) + ": " + what);
}

// A token id from JSON: an integer in [0, INT32_MAX], else DataError "<path>:1: <what> ...". nlohmann's get<int>()
// of a float is a plain cast, undefined beyond int's range (a .meta.json special token 1e300 was a UBSan report, found
// while fixing the same bug in the token-file sidecar that fuzz/fuzz_token_file reported), and of a large integer a
// silent truncation.
int json_token_id(const nlohmann::json& value, const fs::path& path, const std::string& what) {
  if (!value.is_number_integer() || value.get<long long>() < 0 || value.get<long long>() > INT32_MAX)
    fail_at(path, 1, what + " must be an integer id in [0, 2^31), got " + value.dump());
  return value.get<int>();
}

// Calls fn(line_view, line_number) for each line, without the trailing "\r\n" / "\n".
template <typename Fn>
void for_each_line(const std::string& text, Fn&& fn) {
  size_t start = 0;
  size_t line_no = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    fn(line, ++line_no);
    start = end + 1;
  }
}

nlohmann::json parse_json_file(const fs::path& path) {
  const std::string text = read_whole_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    const size_t upto = std::min<size_t>(e.byte, text.size());
    const size_t line = 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + upto, '\n'));
    fail_at(path, line, std::string("invalid JSON: ") + e.what());
  } catch (const nlohmann::json::exception& e) {  // a number out of range
    fail_at(path, 1, std::string("invalid JSON: ") + e.what());
  }
}

bool parse_rank(std::string_view s, int& out) {
  if (s.empty()) return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size() && out >= 0;
}

// Puts (rank -> bytes) pairs into a dense vector; every rank must be < n and used once.
std::vector<std::string> dense_by_rank(std::vector<std::pair<int, std::string>> entries,
                                       const std::vector<size_t>& line_of, const fs::path& path) {
  std::vector<std::string> tokens(entries.size());
  std::vector<bool> seen(entries.size(), false);
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto rank = static_cast<size_t>(entries[i].first);
    if (rank >= tokens.size()) {
      fail_at(path, line_of[i],
              "rank " + std::to_string(rank) + " leaves a gap (" + std::to_string(tokens.size()) + " tokens in file)");
    }
    if (seen[rank]) fail_at(path, line_of[i], "rank " + std::to_string(rank) + " appears twice");
    seen[rank] = true;
    tokens[rank] = std::move(entries[i].second);
  }
  return tokens;
}

}  // namespace

namespace detail {

std::string read_tokenizer_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open tokenizer file " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError("cannot read tokenizer file " + path.string());
  return ss.str();
}

bool base64_decode(std::string_view in, std::string& out) {
  static const auto table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
    return t;
  }();
  if (in.size() % 4 == 0) {
    for (int pad = 0; pad < 2 && !in.empty() && in.back() == '='; ++pad) in.remove_suffix(1);
  }
  if (in.empty() || in.size() % 4 == 1) return false;
  out.clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    const int v = table[static_cast<unsigned char>(ch)];
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return (acc & ((1u << bits) - 1)) == 0;  // leftover bits must be zero (canonical encoding)
}

const std::array<char32_t, 256>& gpt2_byte_to_unicode() {
  static const std::array<char32_t, 256> map = [] {
    std::array<char32_t, 256> m{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      m[b] = printable ? static_cast<char32_t>(b) : next++;
    }
    return m;
  }();
  return map;
}

}  // namespace detail

BpeSpec load_tiktoken_file(const fs::path& path, const std::string& pattern,
                           const std::map<std::string, int>& special_tokens) {
  const std::string text = read_whole_file(path);
  std::vector<std::pair<int, std::string>> entries;
  std::vector<size_t> line_of;
  std::string bytes;
  for_each_line(text, [&](std::string_view line, size_t line_no) {
    if (line.empty()) return;  // tiktoken skips blank lines
    const size_t space = line.find(' ');
    if (space == std::string_view::npos) fail_at(path, line_no, "expected '<base64> <rank>'");
    int rank = 0;
    if (!parse_rank(line.substr(space + 1), rank)) {
      fail_at(path, line_no, "rank '" + std::string(line.substr(space + 1)) + "' is not a non-negative integer");
    }
    if (!detail::base64_decode(line.substr(0, space), bytes)) {
      fail_at(path, line_no, "token '" + std::string(line.substr(0, space)) + "' is not valid base64");
    }
    entries.emplace_back(rank, bytes);
    line_of.push_back(line_no);
  });
  BpeSpec spec;
  spec.tokens_by_rank = dense_by_rank(std::move(entries), line_of, path);
  spec.pattern = pattern;
  spec.special_tokens = special_tokens;
  spec.name = path.stem().string();
  return spec;
}

BpeSpec tiktoken_encoding(const std::string& name, const fs::path& dir) {
  const fs::path meta_path = dir / (name + ".meta.json");
  const nlohmann::json meta = parse_json_file(meta_path);
  std::map<std::string, int> specials;
  std::string pattern;
  try {
    pattern = meta.at("pat_str").get<std::string>();
    for (const auto& [text, id] : meta.at("special_tokens").items())
      specials[text] = json_token_id(id, meta_path, "special_tokens." + text);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(meta_path.string() +
                    ":1: expected pat_str (string) and special_tokens (object of ints): " + e.what());
  }
  BpeSpec spec = load_tiktoken_file(dir / (name + ".tiktoken"), pattern, specials);
  spec.name = name;
  return spec;
}

namespace {

// Maps a byte-to-unicode string back to raw bytes; false when a character is not in the mapping.
bool gpt2_unicode_to_bytes(std::string_view s, std::string& out) {
  static const std::array<int, 512> reverse = [] {
    std::array<int, 512> r{};
    r.fill(-1);
    const auto& fwd = detail::gpt2_byte_to_unicode();
    for (int b = 0; b < 256; ++b) r[fwd[b]] = b;
    return r;
  }();
  out.clear();
  for (size_t i = 0; i < s.size();) {
    const auto c0 = static_cast<unsigned char>(s[i]);
    char32_t cp = 0;
    if (c0 < 0x80) {
      cp = c0;
      i += 1;
    } else if ((c0 & 0xE0) == 0xC0 && i + 1 < s.size() && (static_cast<unsigned char>(s[i + 1]) & 0xC0) == 0x80) {
      cp = (static_cast<char32_t>(c0 & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
      i += 2;
    } else {
      return false;  // every mapped code point is below U+0800
    }
    if (cp >= reverse.size() || reverse[cp] < 0) return false;
    out += static_cast<char>(reverse[cp]);
  }
  return !out.empty();
}

// Byte strings produced by the merges of vocab.bpe.
std::unordered_set<std::string> read_gpt2_merges(const fs::path& path) {
  const std::string text = read_whole_file(path);
  std::unordered_set<std::string> merged;
  std::string a, b;
  for_each_line(text, [&](std::string_view line, size_t line_no) {
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) return;
    const size_t space = line.find(' ');
    if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos) {
      fail_at(path, line_no, "expected a merge '<left> <right>'");
    }
    if (!gpt2_unicode_to_bytes(line.substr(0, space), a) || !gpt2_unicode_to_bytes(line.substr(space + 1), b)) {
      fail_at(path, line_no, "merge uses characters outside GPT-2's byte-to-unicode map");
    }
    merged.insert(a + b);
  });
  if (merged.empty()) throw DataError(path.string() + ":1: no merges");
  return merged;
}

}  // namespace

BpeSpec load_gpt2_encoder(const fs::path& encoder_json, const fs::path& vocab_bpe) {
  const std::unordered_set<std::string> merged = read_gpt2_merges(vocab_bpe);
  const nlohmann::json encoder = parse_json_file(encoder_json);
  if (!encoder.is_object()) throw DataError(encoder_json.string() + ":1: expected a JSON object of token -> id");
  std::vector<std::pair<int, std::string>> ordinary;
  std::map<std::string, int> specials;
  std::string bytes;
  for (const auto& [key, value] : encoder.items()) {
    if (!value.is_number_integer() || value.get<long long>() < 0 || value.get<long long>() > INT32_MAX) {
      throw DataError(encoder_json.string() + ":1: id of token '" + key + "' is not a non-negative integer");
    }
    const int id = value.get<int>();
    if (gpt2_unicode_to_bytes(key, bytes) && (bytes.size() == 1 || merged.count(bytes) != 0)) {
      ordinary.emplace_back(id, bytes);
    } else {
      specials[key] = id;
    }
  }
  BpeSpec spec;
  const std::vector<size_t> line_of(ordinary.size(), 1);  // encoder.json is one JSON value
  spec.tokens_by_rank = dense_by_rank(std::move(ordinary), line_of, encoder_json);
  for (const auto& [text, id] : specials) {
    if (id < static_cast<int>(spec.tokens_by_rank.size())) {
      throw DataError(encoder_json.string() + ":1: special token '" + text + "' id " + std::to_string(id) +
                      " lies inside the ordinary ranks");
    }
  }
  spec.special_tokens = std::move(specials);
  spec.pattern = kGpt2Pattern;
  spec.name = "gpt2";
  return spec;
}

namespace {

[[noreturn]] void hf_fail(const fs::path& path, const std::string& what) {
  throw DataError(path.string() + ":1: " + what);
}

// The regex of a HF pre_tokenizer: ByteLevel(use_regex) -> GPT-2 pattern; Split(Regex) -> that regex;
// a Sequence may hold one Split and/or a ByteLevel with use_regex false.
std::string hf_pattern(const nlohmann::json& pre, const fs::path& path) {
  const std::string type = pre.value("type", "");
  if (type == "ByteLevel") {
    if (pre.value("add_prefix_space", false)) hf_fail(path, "ByteLevel add_prefix_space is not supported");
    return pre.value("use_regex", true) ? kGpt2Pattern : "";
  }
  if (type == "Split") {
    if (!pre.contains("pattern") || !pre["pattern"].contains("Regex") || pre.value("invert", false) ||
        pre.value("behavior", "Isolated") != "Isolated") {
      hf_fail(path, "only Split pre_tokenizers with an Isolated, non-inverted Regex pattern are supported");
    }
    return pre["pattern"]["Regex"].get<std::string>();
  }
  if (type == "Sequence") {
    std::string pattern;
    for (const auto& sub : pre.at("pretokenizers")) {
      const std::string p = hf_pattern(sub, path);
      if (!p.empty() && !pattern.empty()) hf_fail(path, "more than one regex pre_tokenizer");
      if (!p.empty()) pattern = p;
    }
    return pattern;
  }
  hf_fail(path, "unsupported pre_tokenizer type '" + type + "'");
}

}  // namespace

std::string detail::hf_pre_tokenizer_pattern(const nlohmann::json& pre, const fs::path& path) {
  return hf_pattern(pre, path);
}

namespace {

// "a b" (older files) or ["a", "b"] (newer files) -> byte strings of both halves.
void hf_merge_halves(const nlohmann::json& merge, const fs::path& path, std::string& a, std::string& b) {
  std::string left, right;
  if (merge.is_string()) {
    const std::string s = merge.get<std::string>();
    const size_t space = s.find(' ');
    if (space == std::string::npos) hf_fail(path, "merge '" + s + "' is not '<left> <right>'");
    left = s.substr(0, space);
    right = s.substr(space + 1);
  } else if (merge.is_array() && merge.size() == 2) {
    left = merge[0].get<std::string>();
    right = merge[1].get<std::string>();
  } else {
    hf_fail(path, "merge entry is neither a string nor a pair");
  }
  if (!gpt2_unicode_to_bytes(left, a) || !gpt2_unicode_to_bytes(right, b)) {
    hf_fail(path, "merge '" + left + " " + right + "' is not byte-level");
  }
}

// Checks that merge order equals id order, which is what lets ids serve as tiktoken ranks.
void check_merges_in_id_order(const nlohmann::json& merges, const std::unordered_map<std::string, int>& id_of,
                              const fs::path& path) {
  std::string a, b;
  int previous = -1;
  for (const auto& merge : merges) {
    hf_merge_halves(merge, path, a, b);
    auto it = id_of.find(a + b);
    if (it == id_of.end()) hf_fail(path, "a merge produces a token missing from the vocab");
    if (it->second <= previous) hf_fail(path, "merges are not in id order; ids cannot serve as BPE ranks");
    previous = it->second;
  }
}

}  // namespace

BpeSpec load_hf_tokenizer_json(const fs::path& path) {
  const nlohmann::json root = parse_json_file(path);
  try {
    const auto& model = root.at("model");
    if (model.value("type", "") != "BPE") hf_fail(path, "model.type is not BPE");
    if (root.contains("normalizer") && !root["normalizer"].is_null()) hf_fail(path, "normalizers are not supported");
    BpeSpec spec;
    spec.pattern = root.contains("pre_tokenizer") && !root["pre_tokenizer"].is_null()
                       ? hf_pattern(root["pre_tokenizer"], path)
                       : "";
    if (spec.pattern.empty()) hf_fail(path, "no pre-tokenisation regex (ByteLevel use_regex or Split)");
    if (root.contains("added_tokens")) {
      for (const auto& added : root["added_tokens"])
        spec.special_tokens[added.at("content")] = json_token_id(added.at("id"), path, "added_tokens[].id");
    }
    std::vector<std::pair<int, std::string>> ordinary;
    std::unordered_map<std::string, int> id_of;
    std::string bytes;
    for (const auto& [key, value] : model.at("vocab").items()) {
      if (spec.special_tokens.count(key) != 0) continue;
      if (!gpt2_unicode_to_bytes(key, bytes)) hf_fail(path, "vocab entry '" + key + "' is not byte-level");
      const int id = json_token_id(value, path, "model.vocab['" + key + "']");
      ordinary.emplace_back(id, bytes);
      id_of.emplace(bytes, id);
    }
    check_merges_in_id_order(model.at("merges"), id_of, path);
    const std::vector<size_t> line_of(ordinary.size(), 1);  // tokenizer.json is one JSON value
    spec.tokens_by_rank = dense_by_rank(std::move(ordinary), line_of, path);
    spec.name = path.stem().string();
    return spec;
  } catch (const nlohmann::json::exception& e) {
    hf_fail(path, std::string("unexpected structure: ") + e.what());
  }
}

namespace {

// The GPT-2 byte-to-unicode spelling of `bytes`, as UTF-8 (what tokenizer.json's vocab and merges hold).
std::string gpt2_unicode_of(std::string_view bytes) {
  const auto& map = detail::gpt2_byte_to_unicode();
  std::string out;
  for (unsigned char b : bytes) {
    const char32_t cp = map[b];
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else {  // every code point of the map is below U+0800: two UTF-8 bytes
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

// A spec with no ranks belongs to a backend tokenizer (SentencePiece, a tokenizer.json pipeline): nothing to write.
void require_ranks(const BpeSpec& spec, const fs::path& path) {
  if (spec.tokens_by_rank.empty()) {
    throw DataError(path.string() + ": tokenizer '" + spec.name +
                    "' is a SentencePiece model or tokenizer.json pipeline, not byte-level BPE ranks; only byte-level "
                    "BPE tokenizers can be written in this format");
  }
}

}  // namespace

void save_tiktoken_files(const BpeSpec& spec, const fs::path& ranks, const fs::path& meta) {
  require_ranks(spec, ranks);
  std::string lines;
  for (size_t r = 0; r < spec.tokens_by_rank.size(); ++r)
    lines += detail::base64_encode(spec.tokens_by_rank[r]) + ' ' + std::to_string(r) + '\n';
  core::write_file_atomic(ranks, lines);
  core::write_file_atomic(meta,
                          nlohmann::json{{"pat_str", spec.pattern}, {"special_tokens", spec.special_tokens}}.dump());
}

void save_hf_tokenizer_json(const fs::path& path, const BpeSpec& spec) {
  using nlohmann::json;
  require_ranks(spec, path);
  const auto& tokens = spec.tokens_by_rank;
  const auto merges = derive_merges(spec);
  size_t multi_byte = 0;
  for (const auto& t : tokens) multi_byte += t.size() >= 2;
  if (merges.size() != multi_byte) {
    throw DataError(path.string() + ": " + std::to_string(multi_byte - merges.size()) + " token(s) of tokenizer '" +
                    spec.name +
                    "' are not built by any merge of lower-ranked tokens; tokenizer.json cannot express them");
  }
  json vocab = json::object();
  for (size_t r = 0; r < tokens.size(); ++r) vocab[gpt2_unicode_of(tokens[r])] = r;
  json merge_list = json::array();
  for (const auto& [rank, left, right] : merges)
    merge_list.push_back(json::array({gpt2_unicode_of(tokens[left]), gpt2_unicode_of(tokens[right])}));
  json added = json::array();
  std::vector<std::pair<int, std::string>> specials;
  for (const auto& [text, id] : spec.special_tokens) specials.emplace_back(id, text);
  std::sort(specials.begin(), specials.end());
  for (const auto& [id, text] : specials) {
    vocab[text] = id;
    added.push_back({{"id", id},
                     {"content", text},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  const json byte_level = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}};
  const json root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         json::array(
             {{{"type", "Split"}, {"pattern", {{"Regex", spec.pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
              byte_level})}}},
      {"post_processor", nullptr},
      {"decoder", byte_level},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", true},
        {"vocab", vocab},
        {"merges", merge_list}}}};
  core::write_file_atomic(path, root.dump(1) + "\n");
}

}  // namespace troupe::tokenizers
