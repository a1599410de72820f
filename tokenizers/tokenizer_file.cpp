// Implementation of tokenizers/tokenizer_file.h: the Troupe tokenizer JSON file, merge derivation, and
// open_tokenizer()'s dispatch over file formats.
#include "tokenizers/tokenizer_file.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "core/errors.h"
#include "core/run_dir.h"
#include "tokenizers/foreign_formats.h"
#include "tokenizers/pretokenizer.h"
#include "tokenizers/tokenizer_backends.h"

namespace troupe::tokenizers {
namespace fs = std::filesystem;

namespace detail {

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

}  // namespace detail

namespace {

constexpr const char* kFormatTag = "troupe-tokenizer";
constexpr const char* kTypeTag = "byte_level_bpe";

// Byte-level BPE on `bytes` restricted to ranks < cap (tiktoken's merge order: lowest rank, leftmost).
// Returns the final parts as [begin, end) offsets.
std::vector<std::pair<size_t, size_t>> merge_below(const std::unordered_map<std::string_view, int>& rank_of,
                                                   std::string_view bytes, int cap) {
  auto rank = [&](size_t b, size_t e) {
    const auto it = rank_of.find(bytes.substr(b, e - b));
    return it == rank_of.end() || it->second >= cap ? std::numeric_limits<int>::max() : it->second;
  };
  std::vector<size_t> starts;
  for (size_t i = 0; i <= bytes.size(); ++i) starts.push_back(i);
  while (starts.size() > 2) {
    int best = std::numeric_limits<int>::max();
    size_t at = 0;
    for (size_t i = 0; i + 2 < starts.size(); ++i) {
      const int r = rank(starts[i], starts[i + 2]);
      if (r < best) {
        best = r;
        at = i;
      }
    }
    if (best == std::numeric_limits<int>::max()) break;
    starts.erase(starts.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
  std::vector<std::pair<size_t, size_t>> parts;
  for (size_t i = 0; i + 1 < starts.size(); ++i) parts.emplace_back(starts[i], starts[i + 1]);
  return parts;
}

[[noreturn]] void bad_key(const fs::path& path, const std::string& key, const std::string& what) {
  throw DataError(path.string() + ": key '" + key + "': " + what);
}

nlohmann::json parse_with_position(const fs::path& path, const std::string& text) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    const size_t upto = std::min<size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    const size_t line = 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + upto, '\n'));
    const size_t line_start = text.rfind('\n', upto == 0 ? 0 : upto - 1);
    const size_t col = line_start == std::string::npos ? upto + 1 : upto - line_start;
    throw DataError(path.string() + ":" + std::to_string(line) + ":" + std::to_string(col) +
                    ": invalid JSON (truncated or malformed tokenizer file): " + e.what());
  } catch (const nlohmann::json::exception& e) {  // a number out of range (found by fuzz/fuzz_tokenizer_file)
    throw DataError(path.string() + ": invalid JSON (malformed tokenizer file): " + e.what());
  }
}

bool is_troupe_file(const nlohmann::json& root) {
  return root.is_object() && root.contains("format") && root["format"] == kFormatTag;
}

TokenizerFile parse_troupe_file(const fs::path& path, const nlohmann::json& root) {
  if (!root.is_object()) bad_key(path, "(root)", "expected a JSON object");
  if (!is_troupe_file(root)) bad_key(path, "format", std::string("expected \"") + kFormatTag + "\"");
  const auto& version = root.contains("version") ? root["version"] : nlohmann::json();
  if (!version.is_number_integer()) bad_key(path, "version", "expected an integer");
  if (version.get<int>() != kTokenizerFileVersion) {
    bad_key(path, "version",
            "unsupported version " + version.dump() + " (this build reads version " +
                std::to_string(kTokenizerFileVersion) + ")");
  }
  auto require = [&](const char* key, bool ok, const char* expected) -> const nlohmann::json& {
    if (!root.contains(key)) bad_key(path, key, std::string("missing; expected ") + expected);
    if (!ok) bad_key(path, key, std::string("expected ") + expected);
    return root[key];
  };
  const auto has = [&](const char* key) { return root.contains(key); };
  require("type", has("type") && root["type"] == kTypeTag, "\"byte_level_bpe\"");
  TokenizerFile file;
  file.spec.name = require("name", has("name") && root["name"].is_string(), "a string").get<std::string>();
  file.spec.pattern = require("pattern", has("pattern") && root["pattern"].is_string(), "a string").get<std::string>();
  const auto& specials =
      require("special_tokens", has("special_tokens") && root["special_tokens"].is_object(), "an object of text -> id");
  for (const auto& [text, id] : specials.items()) {
    if (!id.is_number_integer() || id.get<long long>() < 0 || id.get<long long>() > INT32_MAX)
      bad_key(path, "special_tokens." + text, "expected an integer id in [0, 2^31)");
    file.spec.special_tokens[text] = id.get<int>();
  }
  if (has("metadata")) {
    if (!root["metadata"].is_object()) bad_key(path, "metadata", "expected an object of strings");
    for (const auto& [key, value] : root["metadata"].items()) {
      if (!value.is_string()) bad_key(path, "metadata." + key, "expected a string");
      file.metadata[key] = value.get<std::string>();
    }
  }
  const auto& tokens = require("tokens", has("tokens") && root["tokens"].is_array(), "an array of base64 strings");
  file.spec.tokens_by_rank.reserve(tokens.size());
  for (size_t r = 0; r < tokens.size(); ++r) {
    std::string bytes;
    if (!tokens[r].is_string() || !detail::base64_decode(tokens[r].get_ref<const std::string&>(), bytes) ||
        bytes.empty()) {
      bad_key(path, "tokens[" + std::to_string(r) + "]", "expected a non-empty base64 string");
    }
    file.spec.tokens_by_rank.push_back(std::move(bytes));
  }
  const int n = static_cast<int>(tokens.size());
  if (has("merges")) {
    const auto& merges = root["merges"];
    if (!merges.is_array()) bad_key(path, "merges", "expected an array of [rank, left, right]");
    int previous = -1;
    for (size_t i = 0; i < merges.size(); ++i) {
      const std::string key = "merges[" + std::to_string(i) + "]";
      const auto& m = merges[i];
      if (!m.is_array() || m.size() != 3 || !m[0].is_number_integer() || !m[1].is_number_integer() ||
          !m[2].is_number_integer()) {
        bad_key(path, key, "expected [rank, left, right] integers");
      }
      const std::array<int, 3> merge{m[0].get<int>(), m[1].get<int>(), m[2].get<int>()};
      const auto [rank, left, right] = merge;
      if (rank <= previous || rank >= n) bad_key(path, key, "rank out of range or not increasing");
      if (left < 0 || right < 0 || left >= rank || right >= rank) {
        bad_key(path, key, "left and right must be ranks below " + std::to_string(rank));
      }
      if (file.spec.tokens_by_rank[left] + file.spec.tokens_by_rank[right] != file.spec.tokens_by_rank[rank]) {
        bad_key(path, key,
                "token " + std::to_string(rank) + " is not tokens[" + std::to_string(left) + "] + tokens[" +
                    std::to_string(right) + "]");
      }
      file.merges.push_back(merge);
      previous = rank;
    }
  }
  try {
    BpeTokenizer check(file.spec);  // validates bytes, duplicates, specials and the pattern
  } catch (const Error& e) {
    throw DataError(path.string() + ": " + e.what());
  }
  return file;
}

}  // namespace

std::vector<std::array<int, 3>> derive_merges(const BpeSpec& spec) {
  std::unordered_map<std::string_view, int> rank_of;
  rank_of.reserve(spec.tokens_by_rank.size() * 2);
  for (size_t r = 0; r < spec.tokens_by_rank.size(); ++r) rank_of.emplace(spec.tokens_by_rank[r], static_cast<int>(r));
  std::vector<std::array<int, 3>> merges;
  for (size_t r = 0; r < spec.tokens_by_rank.size(); ++r) {
    const std::string_view token = spec.tokens_by_rank[r];
    if (token.size() < 2) continue;
    const auto parts = merge_below(rank_of, token, static_cast<int>(r));
    if (parts.size() != 2) continue;
    merges.push_back({static_cast<int>(r), rank_of.at(token.substr(parts[0].first, parts[0].second - parts[0].first)),
                      rank_of.at(token.substr(parts[1].first, parts[1].second - parts[1].first))});
  }
  return merges;
}

void save_tokenizer_file(const fs::path& path, TokenizerFile file) {
  if (file.spec.tokens_by_rank.empty()) {
    throw DataError(path.string() + ": tokenizer '" + file.spec.name +
                    "' has no byte-level BPE ranks (a SentencePiece model or tokenizer.json pipeline); it cannot be "
                    "written as a Troupe tokenizer file");
  }
  BpeTokenizer check(file.spec);  // refuse to write what could not be loaded back
  if (file.merges.empty()) file.merges = derive_merges(file.spec);
  using nlohmann::json;
  std::string out;
  out.reserve(file.spec.tokens_by_rank.size() * 24 + 4096);
  out += "{\n";
  out += "  \"format\": " + json(kFormatTag).dump() + ",\n";
  out += "  \"version\": " + std::to_string(kTokenizerFileVersion) + ",\n";
  out += "  \"type\": " + json(kTypeTag).dump() + ",\n";
  out += "  \"name\": " + json(file.spec.name).dump() + ",\n";
  out += "  \"pattern\": " + json(file.spec.pattern).dump() + ",\n";
  out += "  \"special_tokens\": " + json(file.spec.special_tokens).dump() + ",\n";
  out += "  \"metadata\": " + json(file.metadata).dump() + ",\n";
  out += "  \"tokens\": [\n";
  for (size_t r = 0; r < file.spec.tokens_by_rank.size(); ++r) {
    out += "    \"" + detail::base64_encode(file.spec.tokens_by_rank[r]) + "\"";
    out += r + 1 < file.spec.tokens_by_rank.size() ? ",\n" : "\n";
  }
  out += "  ],\n  \"merges\": [\n";
  for (size_t i = 0; i < file.merges.size(); ++i) {
    const auto& [rank, left, right] = file.merges[i];
    out += "    [" + std::to_string(rank) + ", " + std::to_string(left) + ", " + std::to_string(right) + "]";
    out += i + 1 < file.merges.size() ? ",\n" : "\n";
  }
  out += "  ]\n}\n";
  core::write_file_atomic(path, out);
}

TokenizerFile load_tokenizer_file(const fs::path& path) {
  return parse_troupe_file(path, parse_with_position(path, detail::read_tokenizer_file(path)));
}

bool known_encoding(const std::string& name, std::string& pattern, std::map<std::string, int>& specials) {
  if (name == "gpt2" || name == "r50k_base") {
    pattern = kGpt2Pattern;
    specials = {{"<|endoftext|>", 50256}};
  } else if (name == "p50k_base") {
    pattern = kGpt2Pattern;
    specials = {{"<|endoftext|>", 50256}};
  } else if (name == "cl100k_base") {
    pattern = kCl100kPattern;
    specials = {{"<|endoftext|>", 100257},
                {"<|fim_prefix|>", 100258},
                {"<|fim_middle|>", 100259},
                {"<|fim_suffix|>", 100260},
                {"<|endofprompt|>", 100276}};
  } else {
    return false;
  }
  return true;
}

BpeTokenizer open_tokenizer(const std::string& path_text, const std::string& encoding) {
  const fs::path path(path_text);
  if (!fs::exists(path)) throw ConfigError("tokenizer '" + path_text + "': no such file or directory");
  if (fs::is_directory(path)) {
    if (!fs::exists(path / "encoder.json") || !fs::exists(path / "vocab.bpe")) {
      throw DataError(path_text + ": a tokenizer directory must hold GPT-2's encoder.json and vocab.bpe");
    }
    return BpeTokenizer(load_gpt2_encoder(path / "encoder.json", path / "vocab.bpe"));
  }
  if (path.extension() == ".tiktoken") {
    std::string pattern;
    std::map<std::string, int> specials;
    const std::string stem = path.stem().string();
    if (!encoding.empty()) {
      if (!known_encoding(encoding, pattern, specials)) {
        throw ConfigError("--encoding '" + encoding + "': expected gpt2, r50k_base, p50k_base or cl100k_base");
      }
    } else if (fs::exists(path.parent_path() / (stem + ".meta.json"))) {
      BpeSpec spec = tiktoken_encoding(stem, path.parent_path());
      return BpeTokenizer(std::move(spec));
    } else if (!known_encoding(stem, pattern, specials)) {
      throw ConfigError(path_text +
                        ": cannot tell this .tiktoken file's pattern and special tokens: give "
                        "--encoding gpt2|cl100k_base or put " +
                        stem + ".meta.json beside it");
    }
    BpeSpec spec = load_tiktoken_file(path, pattern, specials);
    spec.name = encoding.empty() ? stem : encoding;
    return BpeTokenizer(std::move(spec));
  }
  if (path.filename() == "encoder.json") {
    return BpeTokenizer(load_gpt2_encoder(path, path.parent_path() / "vocab.bpe"));
  }
  if (path.extension() == ".json") {
    const nlohmann::json root = parse_with_position(path, detail::read_tokenizer_file(path));
    if (is_troupe_file(root)) return BpeTokenizer(parse_troupe_file(path, root).spec);
    try {  // GPT-2-kind byte-level BPE: tiktoken's exact encoder, as before
      return BpeTokenizer(load_hf_tokenizer_json(path));
    } catch (const DataError&) {  // anything else the general pipeline supports (Llama 3, Qwen2, Mistral, ...)
      return open_hf_tokenizer(path);
    }
  }
  if (path.extension() == ".model") return open_sentencepiece_model(path);
  throw DataError(path_text +
                  ": expected a Troupe tokenizer .json, a Hugging Face tokenizer.json, a SentencePiece .model, a "
                  ".tiktoken file, or GPT-2's encoder.json + vocab.bpe (file or directory)");
}

}  // namespace troupe::tokenizers
