// `troupe data prepare`: a corpus of text files -> DIR/train.bin and DIR/val.bin token files for LM training
// (read with data/lm_data.h). Thin argument handling over tokenizers/corpus.h; it does not clean or
// deduplicate text, and SFT/preference JSONL is read directly by data/text_datasets.h instead.
//
// Split: each input file is one document. The files are sorted, shuffled with a SplitMix64 Fisher-Yates seeded by
// --seed, and the first max(1, round(fraction * n)) of that order (at most n - 1) go to val, so every split gets
// at least one document. Both outputs keep the sorted order. A single document with --val-fraction > 0 is an
// error (split the text into several files or pass --val-fraction 0): cutting a document by tokens would leak
// its context across the split. With --val-fraction 0 only train.bin is written (a stale val.bin is removed).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <optional>

#include "cli/commands.h"
#include "core/errors.h"
#include "core/seeding.h"
#include "data/arithmetic.h"
#include "data/corpus_encoding.h"
#include "tokenizers/bpe_tokenizer.h"
#include "tokenizers/corpus.h"
#include "tokenizers/token_file.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::cli {

namespace {
namespace fs = std::filesystem;

struct PrepareArgs {
  std::string tokenizer;
  std::string encoding;
  std::vector<std::string> inputs;
  std::string output;
  double val_fraction = 0.005;
  uint64_t seed = 1234;
  std::string separator = "auto";
  int threads = 0;
};

// Indices of the documents that go to val (sorted), as described at the top of this file.
std::vector<size_t> choose_val(size_t n, double fraction, uint64_t seed) {
  if (fraction == 0) return {};
  if (n < 2) {
    throw DataError(
        "data prepare: only one document (input file) to split into train and val; give several files "
        "(each file is a document) or --val-fraction 0");
  }
  const auto want = static_cast<size_t>(std::llround(fraction * static_cast<double>(n)));
  const size_t n_val = std::min(std::max<size_t>(want, 1), n - 1);
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  uint64_t state = core::splitmix64(seed);
  for (size_t i = n - 1; i > 0; --i) {
    const uint64_t bound = i + 1, threshold = (0 - bound) % bound;
    uint64_t r;
    do {
      r = core::splitmix64(state);
      state += 0x9e3779b97f4a7c15ULL;
    } while (r < threshold);
    std::swap(order[i], order[r % bound]);
  }
  std::vector<size_t> val(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n_val));
  std::sort(val.begin(), val.end());
  return val;
}

void prepare(const PrepareArgs& a) {
  if (!(a.val_fraction >= 0 && a.val_fraction < 1)) {
    throw ConfigError(fmt::format("--val-fraction must be in [0, 1), got {}", a.val_fraction));
  }
  const fs::path out_dir(a.output);
  if (fs::exists(out_dir) && !fs::is_directory(out_dir)) {
    throw ConfigError("--output " + a.output + " exists and is not a directory");
  }
  tokenizers::resolve_threads(a.threads);  // ConfigError for a negative count, before any work
  const auto tok = tokenizers::open_tokenizer(a.tokenizer, a.encoding);
  data::EncodeFilesOptions options;
  options.threads = a.threads;
  options.separator = data::document_separator(tok, a.separator);
  const std::vector<fs::path> files = tokenizers::list_text_files(a.inputs);
  const std::vector<size_t> val_index = choose_val(files.size(), a.val_fraction, a.seed);

  std::vector<fs::path> train, val;
  for (size_t i = 0, v = 0; i < files.size(); ++i) {
    if (v < val_index.size() && val_index[v] == i) {
      val.push_back(files[i]);
      ++v;
    } else {
      train.push_back(files[i]);
    }
  }
  fs::create_directories(out_dir);
  const auto train_report = data::encode_files_to_token_file(tok, train, out_dir / "train.bin", options);
  std::cout << fmt::format("train.bin: {} documents, {} tokens ({:.1f} MB of text)\n", train_report.files,
                           train_report.tokens, train_report.bytes / 1e6);
  if (!val.empty()) {
    const auto val_report = data::encode_files_to_token_file(tok, val, out_dir / "val.bin", options);
    std::cout << fmt::format("val.bin: {} documents, {} tokens ({:.1f} MB of text)\n", val_report.files,
                             val_report.tokens, val_report.bytes / 1e6);
  } else {
    std::error_code ec;
    fs::remove(out_dir / "val.bin", ec);
    fs::remove(out_dir / "val.bin.json", ec);
    std::cout << "val.bin: not written (--val-fraction 0)\n";
  }
  const auto& info = train_report.info;
  std::cout << fmt::format(
      "{} documents; dtype {}, vocab {} ({}), separator {} -> {}\n", files.size(), info.dtype, info.vocab_size,
      tok.spec().name, options.separator ? std::to_string(*options.separator) : std::string("none"), out_dir.string());
}

}  // namespace

void add_data_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("data", "Prepare datasets for training");
  cmd->require_subcommand(1);
  auto args = std::make_shared<PrepareArgs>();
  auto* prep = cmd->add_subcommand(
      "prepare",
      "Tokenize text files into DIR/train.bin and DIR/val.bin (each file is one document; documents are "
      "split between train and val by --seed)");
  prep->add_option("--tokenizer,-t", args->tokenizer,
                   "a Troupe tokenizer .json, a Hugging Face tokenizer.json, a .tiktoken file (see --encoding), or "
                   "GPT-2's encoder.json + vocab.bpe")
      ->required();
  prep->add_option("--encoding", args->encoding, "pattern and special tokens for a .tiktoken file");
  prep->add_option("--input", args->inputs, "text files or directories (recursive; hidden entries skipped)")
      ->required()
      ->expected(1, -1);
  prep->add_option("--output,-o", args->output, "output directory")->required();
  prep->add_option("--val-fraction", args->val_fraction,
                   "fraction of documents for val.bin, in [0, 1); at least one each when > 0")
      ->capture_default_str();
  prep->add_option("--seed", args->seed, "seed of the train/val assignment")->capture_default_str();
  prep->add_option("--separator", args->separator,
                   "special token appended after each document: auto (<|endoftext|> if the tokenizer has it), "
                   "none, or a special token's text")
      ->capture_default_str();
  prep->add_option("--threads", args->threads, "threads (0 = all cores)")->capture_default_str();
  prep->callback([args, &exit_code] {
    prepare(*args);
    exit_code = 0;
  });

  add_data_clean_command(*cmd, exit_code);
  add_data_agreement_command(*cmd, exit_code);

  auto arith = std::make_shared<data::ArithmeticOptions>();
  auto arith_out = std::make_shared<std::string>();
  auto* ar = cmd->add_subcommand(
      "arithmetic",
      "Write the arithmetic task (a verifiable-reward RL task): DIR/tokenizer.json, DIR/sft.jsonl, DIR/prompts.jsonl "
      "and DIR/test.jsonl (prompt + reference answer; test problems are disjoint from the others)");
  ar->add_option("--output,-o", *arith_out, "output directory")->required();
  ar->add_option("--digits", arith->digits, "operand digits (difficulty), 1..9")->capture_default_str();
  ar->add_option("--ops", arith->ops, "operators, some of + - *")->capture_default_str();
  ar->add_option("--sft", arith->sft_count, "SFT examples")->capture_default_str();
  ar->add_option("--prompts", arith->prompt_count, "RL prompts")->capture_default_str();
  ar->add_option("--test", arith->test_count, "held-out test problems")->capture_default_str();
  ar->add_option("--sft-error-rate", arith->sft_error_rate,
                 "fraction of SFT answers made wrong (off by one), for a weaker starting policy")
      ->capture_default_str();
  ar->add_option("--working-rate", arith->working_rate,
                 "fraction of SFT responses that show their working (\"37+5=42 42+40=82 #### 82\"); when > 0 every "
                 "response states its answer after \"#### \" (reward: answer format marker)")
      ->capture_default_str();
  ar->add_flag("--varied-working", arith->varied_working,
               "each working response takes one of the valid decompositions at random (operands swapped, places "
               "ones-up or largest-first): several reasoning paths to one answer");
  ar->add_option("--ramble-rate", arith->ramble_rate,
                 "fraction of SFT responses that repeat their working 8 times and never answer (truncated: no EOS)")
      ->capture_default_str();
  ar->add_option("--seed", arith->seed, "seed")->capture_default_str();
  ar->callback([arith, arith_out, &exit_code] {
    const data::ArithmeticTaskFiles f = data::write_arithmetic_task(*arith_out, *arith);
    std::cout << fmt::format("arithmetic ({} digits, ops '{}'): {} SFT, {} prompts, {} test -> {}\n", arith->digits,
                             arith->ops, arith->sft_count, arith->prompt_count, arith->test_count,
                             f.tokenizer.parent_path().string());
    exit_code = 0;
  });
}

}  // namespace troupe::cli
