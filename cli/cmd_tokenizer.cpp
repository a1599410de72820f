// `troupe tokenizer train|encode|decode|inspect` (and `bench`, registered from cmd_tokenizer_bench.cpp).
// Thin argument handling over tokenizers/tokenizer_file.h and tokenizers/corpus.h.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "bench/commands.h"
#include "cli/commands.h"
#include "cli/id_list.h"
#include "core/errors.h"
#include "data/corpus_encoding.h"
#include "tokenizers/bpe_tokenizer.h"
#include "tokenizers/corpus.h"
#include "tokenizers/foreign_formats.h"
#include "tokenizers/pretokenizer.h"
#include "tokenizers/token_file.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::cli {

namespace {
namespace fs = std::filesystem;

constexpr const char* kTokenizerHelp =
    "a Troupe tokenizer .json, a Hugging Face tokenizer.json, a .tiktoken file (see --encoding), or GPT-2's "
    "encoder.json + vocab.bpe (the file or its directory)";

struct TokenizerArgs {
  std::string tokenizer;
  std::string encoding;
  std::string text;
  bool allow_special = false;
  std::vector<std::string> inputs;
  std::string jsonl;
  std::string output;
  std::string text_field = "text";
  std::string ids_field = "ids";
  std::string separator = "auto";
  int threads = 0;
  // train
  int vocab_size = 8192;
  int64_t min_frequency = 2;
  std::string pattern = "gpt2";
  std::vector<std::string> specials;
  std::string name;
  // export
  std::string format = "hf";
};

// Bytes shown printable: "\n", "\x80", spaces as-is.
std::string escape(const std::string& bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (c < 0x20 || c == 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  return out;
}

std::string join_ids(const std::vector<int>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

void inspect(const TokenizerArgs& a) {
  const auto tok = tokenizers::open_tokenizer(a.tokenizer, a.encoding);
  size_t total = 0;
  for (const auto& piece : tok.pieces(a.text)) {
    auto ids = tok.encode_ordinary(piece);
    total += ids.size();
    std::string shown;
    for (int id : ids) shown += (shown.empty() ? "" : " | ") + escape(tok.decode({id}));
    std::cout << fmt::format("{:<24} -> {:<28} [{}]\n", "\"" + escape(piece) + "\"", shown, join_ids(ids));
  }
  std::cout << fmt::format("{} bytes, {} tokens ({}, vocab {})\n", a.text.size(), total, tok.spec().name,
                           tok.vocab_size());
}

void encode(const TokenizerArgs& a) {
  const int modes = (!a.text.empty() ? 1 : 0) + (!a.inputs.empty() ? 1 : 0) + (!a.jsonl.empty() ? 1 : 0);
  if (modes != 1) throw ConfigError("tokenizer encode: give exactly one of TEXT, --input FILES or --jsonl FILE");
  const auto tok = tokenizers::open_tokenizer(a.tokenizer, a.encoding);
  if (!a.text.empty()) {
    std::set<std::string> allowed;
    if (a.allow_special)
      for (const auto& [name, id] : tok.spec().special_tokens) allowed.insert(name);
    std::cout << join_ids(tok.encode(a.text, allowed, /*disallowed_is_error=*/false)) << "\n";
    return;
  }
  if (a.output.empty()) throw ConfigError("tokenizer encode: --output is required with --input or --jsonl");
  if (!a.jsonl.empty()) {
    data::JsonlEncodeOptions options;
    options.text_field = a.text_field;
    options.ids_field = a.ids_field;
    options.allow_special = a.allow_special;
    options.threads = a.threads;
    const auto report = data::encode_jsonl(tok, a.jsonl, a.output, options);
    std::cout << fmt::format("{}: {} lines, {} tokens in {:.2f} s -> {}\n", a.jsonl, report.lines, report.tokens,
                             report.seconds, a.output);
    return;
  }
  data::EncodeFilesOptions options;
  options.threads = a.threads;
  options.separator = data::document_separator(tok, a.separator);
  const auto files = tokenizers::list_text_files(a.inputs);
  const auto report = data::encode_files_to_token_file(tok, files, a.output, options);
  std::cout << fmt::format("{} files, {:.1f} MB -> {} tokens ({}) in {:.2f} s ({:.1f} MB/s) -> {} (+ {}.json)\n",
                           report.files, report.bytes / 1e6, report.tokens, report.info.dtype, report.seconds,
                           report.bytes / 1e6 / std::max(report.seconds, 1e-9), a.output, a.output);
}

void decode(const TokenizerArgs& a) {
  const auto tok = tokenizers::open_tokenizer(a.tokenizer, a.encoding);
  if (!a.inputs.empty()) {
    if (a.inputs.size() != 1 || !a.text.empty())
      throw ConfigError("tokenizer decode: give ids or one --input token file");
    const tokenizers::TokenFile file(a.inputs[0]);
    std::vector<int64_t> buf(1 << 16);
    for (uint64_t at = 0; at < file.size(); at += buf.size()) {
      const uint64_t n = std::min<uint64_t>(buf.size(), file.size() - at);
      file.read(at, n, buf.data());
      std::cout << tok.decode(std::vector<int>(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n)));
    }
    return;
  }
  if (a.text.empty()) throw ConfigError("tokenizer decode: give comma-separated ids or --input tokens.bin");
  std::cout << tok.decode_lossy_utf8(parse_id_list<int>(a.text, "ids")) << "\n";
}

// Writes the tokenizer in another format: "hf" (tokenizer.json for the `tokenizers` package) or "troupe".
void export_tokenizer(const TokenizerArgs& a) {
  const auto tok = tokenizers::open_tokenizer(a.tokenizer, a.encoding);
  if (a.format == "hf") {
    tokenizers::save_hf_tokenizer_json(a.output, tok.spec());
  } else if (a.format == "troupe") {
    tokenizers::save_tokenizer_file(a.output, tokenizers::TokenizerFile{tok.spec(), {}, {}});
  } else {
    throw ConfigError("--format must be hf or troupe, not '" + a.format + "'");
  }
  std::cout << fmt::format("wrote {} ({} format, {} tokens + {} special)\n", a.output, a.format,
                           tok.spec().tokens_by_rank.size(), tok.spec().special_tokens.size());
}

void train(const TokenizerArgs& a) {
  tokenizers::BpeTrainingConfig config;
  config.vocab_size = a.vocab_size;
  config.min_frequency = a.min_frequency;
  config.pattern = resolve_pattern(a.pattern);
  config.special_tokens = a.specials;
  config.threads = a.threads;
  config.name = a.name.empty() ? fs::path(a.output).stem().string() : a.name;
  const auto files = tokenizers::list_text_files(a.inputs);
  tokenizers::BpeTrainingReport report;
  tokenizers::TokenizerFile file = tokenizers::train_bpe_on_files(files, config, &report);
  tokenizers::save_tokenizer_file(a.output, file);
  std::cout << fmt::format(
      "trained {} on {} files ({:.1f} MB, {} pieces, {} distinct): {} merges, vocab {} + {} special; "
      "counting {:.2f} s, merging {:.2f} s -> {}\n",
      config.name, report.files, report.bytes / 1e6, report.pieces, report.distinct_words, report.merges,
      file.spec.tokens_by_rank.size(), file.spec.special_tokens.size(), report.count_seconds, report.merge_seconds,
      a.output);
  if (static_cast<int>(file.spec.tokens_by_rank.size()) < a.vocab_size) {
    std::cout << fmt::format("note: stopped at {} tokens, below --vocab-size {}: no pair occurs {} or more times\n",
                             file.spec.tokens_by_rank.size(), a.vocab_size, a.min_frequency);
  }
}

}  // namespace

std::string resolve_pattern(const std::string& choice) {
  if (choice == "gpt2" || choice == "r50k_base" || choice == "p50k_base") return tokenizers::kGpt2Pattern;
  if (choice == "cl100k" || choice == "cl100k_base") return tokenizers::kCl100kPattern;
  if (choice.empty()) throw ConfigError("--pattern must not be empty");
  return choice;  // a custom regex; compiled (and checked) by the Pretokenizer
}

void add_tokenizer_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("tokenizer", "Train, inspect, encode, decode and benchmark BPE tokenizers");
  cmd->require_subcommand(1);
  auto args = std::make_shared<TokenizerArgs>();
  auto add_tokenizer = [&](CLI::App* sub) {
    sub->add_option("--tokenizer,-t", args->tokenizer, kTokenizerHelp)->required();
    sub->add_option("--encoding", args->encoding,
                    "pattern and special tokens for a .tiktoken file: gpt2, r50k_base, p50k_base or cl100k_base");
  };
  auto* insp = cmd->add_subcommand("inspect", "Show how text splits into pieces and tokens");
  add_tokenizer(insp);
  insp->add_option("text", args->text, "text to inspect")->required();
  insp->callback([args, &exit_code] {
    inspect(*args);
    exit_code = 0;
  });

  auto* enc = cmd->add_subcommand(
      "encode", "Encode TEXT (prints ids), text files into a token file (--input), or a JSONL dataset (--jsonl)");
  add_tokenizer(enc);
  enc->add_option("text", args->text, "text to encode");
  enc->add_option("--input", args->inputs, "text files or directories; each file is one document")->expected(1, -1);
  enc->add_option("--jsonl", args->jsonl, "JSONL file with one object per line holding a text field");
  enc->add_option("--output,-o", args->output, "token file (with --input) or JSONL file (with --jsonl)");
  enc->add_option("--text-field", args->text_field, "JSONL field to encode")->capture_default_str();
  enc->add_option("--ids-field", args->ids_field, "JSONL field to write the ids to")->capture_default_str();
  enc->add_option("--separator", args->separator,
                  "special token appended after each document: auto (<|endoftext|> if the tokenizer has it), "
                  "none, or a special token's text")
      ->capture_default_str();
  enc->add_option("--threads", args->threads, "threads (0 = all cores)")->capture_default_str();
  enc->add_flag("--allow-special", args->allow_special,
                "encode special-token text as special tokens (default: as ordinary text)");
  enc->callback([args, &exit_code] {
    encode(*args);
    exit_code = 0;
  });

  auto* dec = cmd->add_subcommand("decode", "Print the text of comma-separated ids, or of a token file (--input)");
  add_tokenizer(dec);
  dec->add_option("ids", args->text, "comma-separated ids, e.g. 15496,11,995 (invalid UTF-8 shown as U+FFFD)");
  dec->add_option("--input", args->inputs, "a token file written by `tokenizer encode --input`");
  dec->callback([args, &exit_code] {
    decode(*args);
    exit_code = 0;
  });

  auto* tr = cmd->add_subcommand("train", "Train a byte-level BPE vocabulary on text files");
  tr->add_option("--input", args->inputs, "text files or directories (recursive)")->required()->expected(1, -1);
  tr->add_option("--output,-o", args->output, "Troupe tokenizer file to write (.json)")->required();
  tr->add_option("--vocab-size", args->vocab_size, "ordinary tokens including the 256 bytes")->capture_default_str();
  tr->add_option("--min-frequency", args->min_frequency, "stop when the best pair occurs fewer times")
      ->capture_default_str();
  tr->add_option("--pattern", args->pattern, "pre-tokenisation: gpt2, cl100k or a PCRE2 regex")->capture_default_str();
  tr->add_option("--special", args->specials, "special token text (repeatable); ids follow the vocabulary");
  tr->add_option("--name", args->name, "tokenizer name (default: output file stem)");
  tr->add_option("--threads", args->threads, "counting threads (0 = all cores)")->capture_default_str();
  tr->callback([args, &exit_code] {
    train(*args);
    exit_code = 0;
  });

  auto* ex = cmd->add_subcommand("export", "Write a tokenizer as a Hugging Face tokenizer.json or a Troupe file");
  add_tokenizer(ex);
  ex->add_option("--output,-o", args->output, "file to write")->required();
  ex->add_option("--format", args->format, "hf (tokenizer.json) or troupe")->capture_default_str();
  ex->callback([args, &exit_code] {
    export_tokenizer(*args);
    exit_code = 0;
  });

  bench::add_tokenizer_bench_command(*cmd, exit_code);
}

}  // namespace troupe::cli
