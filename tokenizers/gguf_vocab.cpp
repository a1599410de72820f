// Implementation of tokenizers/gguf_vocab.h.
#include "tokenizers/gguf_vocab.h"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "core/utf8.h"
#include "tokenizers/foreign_formats.h"
#include "tokenizers/pretokenizer.h"
#include "tokenizers/sentencepiece_model.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::tokenizers {

namespace {

namespace fs = std::filesystem;

// Llama 3's and Qwen2's tokenizer.json Split regexes (llama.cpp's "llama-bpe" and "qwen2" pre-tokenizers).
constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string byte_level(const std::string& bytes) {
  const auto& table = detail::gpt2_byte_to_unicode();
  std::string out;
  for (unsigned char b : bytes) core::append_utf8(out, table[b]);
  return out;
}

// Fills ids the tokenizer does not define, up to vocab_size, as convert_hf_to_gguf does ("[PAD<i>]", UNUSED).
void pad_to(GgufVocab& v, int64_t vocab_size, const std::string& source) {
  if (static_cast<int64_t>(v.tokens.size()) > vocab_size) {
    throw ConfigError("gguf: tokenizer " + source + " has " + std::to_string(v.tokens.size()) +
                      " ids, more than the model's vocab_size " + std::to_string(vocab_size));
  }
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (v.tokens[i].empty()) {
      v.tokens[i] = "[PAD" + std::to_string(i) + "]";
      v.types[i] = static_cast<int32_t>(GgufTokenType::kUnused);
    }
  }
  while (static_cast<int64_t>(v.tokens.size()) < vocab_size) {
    v.tokens.push_back("[PAD" + std::to_string(v.tokens.size()) + "]");
    v.types.push_back(static_cast<int32_t>(GgufTokenType::kUnused));
    if (!v.scores.empty()) v.scores.push_back(-1000.0F);
  }
}

void set_token(GgufVocab& v, int id, std::string text, GgufTokenType type) {
  if (id < 0) throw ConfigError("gguf: negative token id for '" + text + "'");
  if (static_cast<size_t>(id) >= v.tokens.size()) {
    v.tokens.resize(id + 1);
    v.types.resize(id + 1, static_cast<int32_t>(GgufTokenType::kUnused));
  }
  v.tokens[id] = std::move(text);
  v.types[id] = static_cast<int32_t>(type);
}

nlohmann::json read_json(const fs::path& path) {
  try {
    return nlohmann::json::parse(detail::read_tokenizer_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(path.string() + ": not JSON: " + e.what());
  }
}

// A tokenizer_config.json token field: "text", {"content": "text"} or null.
std::string config_token(const nlohmann::json& cfg, const std::string& key) {
  if (!cfg.contains(key) || cfg[key].is_null()) return "";
  if (cfg[key].is_string()) return cfg[key].get<std::string>();
  return cfg[key].value("content", "");
}

// bos/eos/pad/add_bos_token/chat_template from the tokenizer_config.json beside a tokenizer.json, if any.
void apply_tokenizer_config(GgufVocab& v, const fs::path& dir, const std::map<std::string, int>& ids) {
  const fs::path file = dir / "tokenizer_config.json";
  if (!fs::exists(file)) return;
  const nlohmann::json cfg = read_json(file);
  const auto id_of = [&](const std::string& key) {
    const auto it = ids.find(config_token(cfg, key));
    return it == ids.end() ? -1 : it->second;
  };
  v.bos = id_of("bos_token");
  v.eos = id_of("eos_token");
  v.pad = id_of("pad_token");
  v.unk = id_of("unk_token");
  if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean()) v.add_bos = cfg["add_bos_token"] ? 1 : 0;
  if (cfg.contains("chat_template") && cfg["chat_template"].is_string()) v.chat_template = cfg["chat_template"];
}

GgufVocab vocab_from_hf_json(const fs::path& path, int64_t vocab_size) {
  const nlohmann::json root = read_json(path);
  const nlohmann::json& model = root.at("model");
  if (model.value("type", "") != "BPE") {
    throw ConfigError("gguf: " + path.string() + ": model.type '" + model.value("type", "") +
                      "'; only byte-level BPE tokenizer.json files map to GGUF's gpt2 tokenizer");
  }
  const bool byte_level_decoder =
      root.contains("decoder") && !root["decoder"].is_null() && root["decoder"].value("type", "") == "ByteLevel";
  if (!byte_level_decoder) {
    throw ConfigError("gguf: " + path.string() + ": not a byte-level BPE (its decoder is not ByteLevel)");
  }
  GgufVocab v;
  v.model = "gpt2";
  const std::string pattern = root.contains("pre_tokenizer") && !root["pre_tokenizer"].is_null()
                                  ? detail::hf_pre_tokenizer_pattern(root["pre_tokenizer"], path)
                                  : std::string();
  v.pre = gguf_pre_tokenizer(pattern);
  std::map<std::string, int> ids;
  for (const auto& [text, id] : model.at("vocab").items()) {
    set_token(v, id.get<int>(), text, GgufTokenType::kNormal);
    ids[text] = id.get<int>();
  }
  for (const auto& added : root.value("added_tokens", nlohmann::json::array())) {
    const std::string text = added.at("content");
    const bool special = added.value("special", false);
    set_token(v, added.at("id").get<int>(), text, special ? GgufTokenType::kControl : GgufTokenType::kUserDefined);
    ids[text] = added.at("id").get<int>();
  }
  for (const auto& m : model.at("merges")) {
    v.merges.push_back(m.is_string() ? m.get<std::string>()
                                     : m.at(0).get<std::string>() + " " + m.at(1).get<std::string>());
  }
  apply_tokenizer_config(v, path.parent_path(), ids);
  pad_to(v, vocab_size, path.string());
  return v;
}

GgufVocab vocab_from_sentencepiece(const fs::path& path, int64_t vocab_size) {
  const SentencePieceModel sp = load_sentencepiece_model(path);
  GgufVocab v;
  v.model = "llama";
  v.pre = "default";
  for (const auto& piece : sp.pieces) {
    v.tokens.push_back(piece.piece);
    v.scores.push_back(piece.score);
    v.types.push_back(static_cast<int32_t>(piece.type));  // SentencePiece's types are GGUF's (1..6)
  }
  const auto id = [&](int i) { return i >= 0 && i < static_cast<int>(sp.pieces.size()) ? i : -1; };
  v.bos = id(sp.trainer.bos_id);
  v.eos = id(sp.trainer.eos_id);
  v.unk = id(sp.trainer.unk_id);
  v.pad = id(sp.trainer.pad_id);
  v.add_space_prefix = sp.normalizer.add_dummy_prefix ? 1 : 0;
  const fs::path dir = path.parent_path();
  if (fs::exists(dir / "tokenizer_config.json")) {
    const nlohmann::json cfg = read_json(dir / "tokenizer_config.json");
    if (cfg.contains("chat_template") && cfg["chat_template"].is_string()) v.chat_template = cfg["chat_template"];
    if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean()) v.add_bos = cfg["add_bos_token"] ? 1 : 0;
  }
  pad_to(v, vocab_size, path.string());
  return v;
}

bool is_troupe_tokenizer_file(const fs::path& path) {
  if (path.extension() != ".json") return false;
  std::ifstream in(path);
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  return head.find("\"troupe-tokenizer\"") != std::string::npos;
}

}  // namespace

std::vector<core::GgufKeyValue> GgufVocab::key_values() const {
  std::vector<core::GgufKeyValue> kv = {
      {"tokenizer.ggml.model", model}, {"tokenizer.ggml.pre", pre}, {"tokenizer.ggml.tokens", tokens}};
  if (!scores.empty()) kv.push_back({"tokenizer.ggml.scores", scores});
  kv.push_back({"tokenizer.ggml.token_type", types});
  if (!merges.empty()) kv.push_back({"tokenizer.ggml.merges", merges});
  const auto id = [&](const std::string& key, int value) {
    if (value >= 0) kv.push_back({"tokenizer.ggml." + key, static_cast<uint32_t>(value)});
  };
  id("bos_token_id", bos);
  id("eos_token_id", eos);
  id("unknown_token_id", unk);
  id("padding_token_id", pad);
  if (add_bos >= 0) kv.push_back({"tokenizer.ggml.add_bos_token", add_bos == 1});
  if (add_space_prefix >= 0) kv.push_back({"tokenizer.ggml.add_space_prefix", add_space_prefix == 1});
  if (!chat_template.empty()) kv.push_back({"tokenizer.chat_template", chat_template});
  return kv;
}

std::string gguf_pre_tokenizer(const std::string& pattern) {
  if (pattern == kGpt2Pattern) return "gpt-2";
  if (pattern == kCl100kPattern || pattern == kLlama3Pattern) return "llama-bpe";
  if (pattern == kQwen2Pattern) return "qwen2";
  throw ConfigError("gguf: no llama.cpp pre-tokenizer splits like the tokenizer's regex '" + pattern +
                    "' (known: GPT-2's -> gpt-2, Llama 3's / cl100k's -> llama-bpe, Qwen2's -> qwen2)");
}

GgufVocab gguf_vocab_from_spec(const BpeSpec& spec, int64_t vocab_size) {
  if (spec.tokens_by_rank.empty()) {
    throw ConfigError("gguf: tokenizer '" + spec.name + "' has no byte-level ranks to write");
  }
  GgufVocab v;
  v.model = "gpt2";
  v.pre = gguf_pre_tokenizer(spec.pattern);
  for (size_t id = 0; id < spec.tokens_by_rank.size(); ++id)
    set_token(v, static_cast<int>(id), byte_level(spec.tokens_by_rank[id]), GgufTokenType::kNormal);
  for (const auto& [text, id] : spec.special_tokens) set_token(v, id, text, GgufTokenType::kControl);
  for (const auto& [rank, left, right] : derive_merges(spec)) {
    (void)rank;
    v.merges.push_back(byte_level(spec.tokens_by_rank[left]) + " " + byte_level(spec.tokens_by_rank[right]));
  }
  const auto eot = spec.special_tokens.find("<|endoftext|>");
  if (eot != spec.special_tokens.end()) v.bos = v.eos = eot->second;
  v.add_bos = 0;  // byte-level BPE as GPT-2: no token is prepended
  pad_to(v, vocab_size, "'" + spec.name + "'");
  return v;
}

GgufVocab gguf_vocab_from_file(const fs::path& path, int64_t vocab_size) {
  if (path.extension() == ".model") return vocab_from_sentencepiece(path, vocab_size);
  if (path.extension() == ".json" && !is_troupe_tokenizer_file(path)) return vocab_from_hf_json(path, vocab_size);
  const BpeTokenizer tok = open_tokenizer(path.string());
  return gguf_vocab_from_spec(tok.spec(), vocab_size);
}

}  // namespace troupe::tokenizers
