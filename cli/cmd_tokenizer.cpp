// `troupe tokenizer inspect|encode|decode`: look at how text tokenizes with a real vocabulary.
// Training, file/JSONL encoding and the benchmark arrive with the rest of the tokenizer issue.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "core/bpe_tokenizer.h"
#include "core/errors.h"
#include "core/tokenizer_files.h"

namespace troupe::cli {

namespace {
namespace fs = std::filesystem;

struct TokenizerArgs {
  std::string tokenizer;  // .tiktoken (with <name>.meta.json beside it), tokenizer.json, or a GPT-2 encoder dir
  std::string text;
  bool allow_special = false;
};

core::BpeTokenizer load_tokenizer(const std::string& path_text) {
  const fs::path path(path_text);
  if (fs::is_directory(path)) return core::BpeTokenizer(core::load_gpt2_encoder(path / "encoder.json", path / "vocab.bpe"));
  if (path.extension() == ".tiktoken") return core::BpeTokenizer(core::tiktoken_encoding(path.stem().string(), path.parent_path()));
  if (path.extension() == ".json") return core::BpeTokenizer(core::load_hf_tokenizer_json(path));
  throw DataError(path_text + ": expected a .tiktoken file (with <name>.meta.json beside it), a tokenizer.json, "
                  "or a directory holding encoder.json and vocab.bpe");
}

// Bytes shown printable: "\n", "\x80", spaces as-is.
std::string escape(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  return out;
}

std::string join_ids(const std::vector<int>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

std::vector<int> parse_ids(const std::string& text) {
  std::vector<int> ids;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      ids.push_back(std::stoi(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw DataError("ids: expected comma-separated integers, got '" + item + "'");
    }
  }
  return ids;
}

void inspect(const TokenizerArgs& a) {
  auto tok = load_tokenizer(a.tokenizer);
  size_t total = 0;
  for (const auto& piece : tok.pieces(a.text)) {
    auto ids = tok.encode_ordinary(piece);
    total += ids.size();
    std::string shown;
    for (int id : ids) shown += (shown.empty() ? "" : " | ") + escape(tok.decode({id}));
    std::cout << fmt::format("{:<24} -> {:<28} [{}]\n", "\"" + escape(piece) + "\"", shown, join_ids(ids));
  }
  std::cout << fmt::format("{} bytes, {} tokens\n", a.text.size(), total);
}

}  // namespace

void add_tokenizer_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("tokenizer", "Inspect, encode and decode text with a BPE vocabulary");
  cmd->require_subcommand(1);
  auto args = std::make_shared<TokenizerArgs>();
  auto add_common = [&](CLI::App* sub, const char* what) {
    sub->add_option("--tokenizer,-t", args->tokenizer,
                    "a .tiktoken file (with <name>.meta.json beside it), a tokenizer.json, or a GPT-2 "
                    "encoder.json + vocab.bpe directory")
        ->required();
    sub->add_option("text", args->text, what)->required();
  };
  auto* insp = cmd->add_subcommand("inspect", "Show how text splits into pieces and tokens");
  add_common(insp, "text to inspect");
  insp->callback([args, &exit_code] {
    inspect(*args);
    exit_code = 0;
  });
  auto* enc = cmd->add_subcommand("encode", "Print the token ids of TEXT, comma-separated");
  add_common(enc, "text to encode");
  enc->add_flag("--allow-special", args->allow_special, "encode special-token text as special tokens");
  enc->callback([args, &exit_code] {
    auto tok = load_tokenizer(args->tokenizer);
    std::set<std::string> allowed;
    if (args->allow_special)
      for (const auto& [name, id] : tok.spec().special_tokens) allowed.insert(name);
    std::cout << join_ids(tok.encode(args->text, allowed, /*disallowed_is_error=*/false)) << "\n";
    exit_code = 0;
  });
  auto* dec = cmd->add_subcommand("decode", "Print the text of comma-separated ids (invalid UTF-8 as U+FFFD)");
  add_common(dec, "comma-separated ids, e.g. 15496,11,995");
  dec->callback([args, &exit_code] {
    auto tok = load_tokenizer(args->tokenizer);
    std::cout << tok.decode_lossy_utf8(parse_ids(args->text)) << "\n";
    exit_code = 0;
  });
}

}  // namespace troupe::cli
