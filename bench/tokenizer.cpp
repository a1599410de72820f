// `troupe tokenizer bench`: Troupe's BPE against native tiktoken (Rust), Hugging Face tokenizers (Rust) and
// sentencepiece, all measured in this one run on the same corpus. Encoding uses the given vocabulary (ids must
// equal tiktoken's exactly, and the tokenizers package's on the tokenizer.json Troupe exports); training compares
// `train_bpe_on_files` with `spm_train --model_type=bpe` on the same slice and vocab sizes.
// bench/tokenizer.sh prepares the corpus; the Python peers come from the project venv.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench/commands.h"
#include "bench/stats.h"
#include "cli/options.h"
#include "core/errors.h"
#include "core/runtime.h"
#include "core/subprocess.h"
#include "tokenizers/corpus.h"
#include "tokenizers/foreign_formats.h"
#include "tokenizers/pretokenizer.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::bench {

namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct BenchArgs {
  std::string corpus;
  std::string tokenizer;
  std::string encoding;
  std::string python = core::reference_python();
  std::string peer_script = "bench/tokenizer_peers.py";
  std::string work_dir = "bench-work";
  int runs = 3;
  int train_runs = 1;
  double train_mb = 10;
  std::vector<int> train_vocab{8192, 32768};
  int threads = 0;
  bool no_spm = false;
  std::string json_out;
};

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw IoError("cannot open " + p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Ran {
  int rc = 0;
  double seconds = 0;
  std::string out;
  std::string err;
};

// Runs argv (PATH lookup) in `cwd` with stdout/stderr captured through files in `work`; times the whole process.
Ran run(const std::vector<std::string>& argv, const fs::path& work, const std::string& cwd = "") {
  core::SubprocessOptions o;
  o.argv = argv;
  o.cwd = cwd;
  o.out = core::OutputMode::kFile;
  o.out_file = work / "peer.stdout";
  o.err = core::OutputMode::kFile;
  o.err_file = work / "peer.stderr";
  const auto start = Clock::now();
  core::Subprocess child(std::move(o));
  Ran r;
  while (true) {
    if (const auto status = child.wait_for(std::chrono::seconds(1))) {
      r.rc = *status;
      break;
    }
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.out = read_text(work / "peer.stdout");
  r.err = read_text(work / "peer.stderr");
  return r;
}

bool on_path(const std::string& program) { return core::find_on_path(program).has_value(); }

struct Row {
  std::string name;
  double seconds = 0;  // median
  int runs = 0;
  uint64_t tokens = 0;
  std::string ids;  // "identical", "differ at N", "n/a"
};

std::vector<int> read_u32_ids(const fs::path& p) {
  const std::string raw = read_text(p);
  std::vector<int> ids(raw.size() / 4);
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto* b = reinterpret_cast<const unsigned char*>(raw.data() + 4 * i);
    ids[i] = static_cast<int>(b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24));
  }
  return ids;
}

std::string compare_ids(const std::vector<int>& ours, const std::vector<int>& theirs) {
  const size_t n = std::min(ours.size(), theirs.size());
  for (size_t i = 0; i < n; ++i) {
    if (ours[i] != theirs[i]) return fmt::format("DIFFER at token {}", i);
  }
  if (ours.size() != theirs.size()) return fmt::format("DIFFER in length ({} vs {})", ours.size(), theirs.size());
  return "identical";
}

void bench(const BenchArgs& a) {
  const fs::path work = fs::absolute(a.work_dir);
  fs::create_directories(work);
  const std::string text = read_text(a.corpus);
  const double mb = text.size() / 1e6;
  const auto tok = tokenizers::open_tokenizer(a.tokenizer, a.encoding);
  const int threads = tokenizers::resolve_threads(a.threads);
  std::cout << fmt::format("corpus {} ({:.1f} MB), tokenizer {} (vocab {}), {} runs per encoder; host {}\n", a.corpus,
                           mb, tok.spec().name, tok.vocab_size(), a.runs, core::hostname());
  nlohmann::json results = {{"corpus", a.corpus},
                            {"bytes", text.size()},
                            {"encode", nlohmann::json::array()},
                            {"train", nlohmann::json::array()}};

  // ---- encoding ----
  std::vector<Row> rows;
  std::vector<int> ours;
  {
    Row row;
    row.name = "troupe (1 thread)";
    std::vector<double> times;
    for (int r = 0; r < a.runs; ++r) {
      const auto start = Clock::now();
      std::vector<int> ids = tok.encode_ordinary(text);
      times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
      if (r == 0) ours = std::move(ids);
    }
    row.seconds = median(times);
    row.runs = a.runs;
    row.tokens = ours.size();
    row.ids = "reference";
    rows.push_back(row);
  }
  if (threads > 1) {
    Row row;
    row.name = fmt::format("troupe ({} threads)", threads);
    std::vector<double> times;
    std::vector<int> ids;
    for (int r = 0; r < a.runs; ++r) {
      const auto start = Clock::now();
      ids = tokenizers::encode_ordinary_parallel(tok, text, threads);
      times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    }
    row.seconds = median(times);
    row.runs = a.runs;
    row.tokens = ids.size();
    row.ids = compare_ids(ours, ids);
    rows.push_back(row);
  }
  const size_t first_peer = rows.size();
  if (!a.python.empty()) {
    if (!fs::exists(a.peer_script)) throw ConfigError("--peer-script " + a.peer_script + " not found");
    // The peers read the same rank file (tiktoken) and the tokenizer.json Troupe writes for it (tokenizers).
    const fs::path tiktoken_file = work / "peer.tiktoken", meta = work / "peer.meta.json",
                   hf_json = work / "peer.tokenizer.json";
    tokenizers::save_tiktoken_files(tok.spec(), tiktoken_file, meta);
    tokenizers::save_hf_tokenizer_json(hf_json, tok.spec());
    for (const std::string lib : {"tiktoken", "tokenizers"}) {
      const fs::path ids_path = work / (lib + ".ids");
      const Ran ran =
          run({a.python, fs::absolute(a.peer_script).string(), lib, fs::absolute(a.corpus).string(),
               std::to_string(a.runs), ids_path.string(), tiktoken_file.string(), meta.string(), hf_json.string()},
              work);
      if (ran.rc != 0) throw Error(lib + " peer failed (exit " + std::to_string(ran.rc) + "): " + ran.err);
      const auto j = nlohmann::json::parse(ran.out);
      Row row;
      row.name = fmt::format("{} {} (Python, Rust)", lib, j.at("version").get<std::string>());
      row.seconds = median(j.at("seconds").get<std::vector<double>>());
      row.runs = a.runs;
      row.tokens = j.at("tokens").get<uint64_t>();
      row.ids = compare_ids(ours, read_u32_ids(ids_path));
      rows.push_back(row);
    }
  }

  // ---- training (and the sentencepiece model for spm_encode) ----
  const bool spm = !a.no_spm && on_path("spm_train") && on_path("spm_encode");
  if (!a.no_spm && !spm) std::cout << "note: spm_train/spm_encode not found; sentencepiece rows skipped\n";
  const size_t train_bytes = std::min(text.size(), static_cast<size_t>(a.train_mb * 1e6));
  size_t cut = tokenizers::find_cut(text, train_bytes / 2, train_bytes);
  if (cut == std::string::npos) cut = train_bytes;
  const fs::path train_path = work / "train.txt";
  {
    std::ofstream out(train_path, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(cut));
    if (!out) throw IoError("cannot write " + train_path.string());
  }
  struct TrainRow {
    int vocab = 0;
    double troupe = 0, spm = 0;
    size_t troupe_tokens = 0;
  };
  std::vector<TrainRow> train_rows;
  fs::path spm_model;
  for (int vocab : a.train_vocab) {
    TrainRow tr;
    tr.vocab = vocab;
    std::vector<double> times;
    tokenizers::TokenizerFile trained;
    for (int r = 0; r < a.train_runs; ++r) {
      tokenizers::BpeTrainingConfig config;
      config.vocab_size = vocab;
      config.pattern = tokenizers::kGpt2Pattern;
      config.threads = threads;
      const auto start = Clock::now();
      trained = tokenizers::train_bpe_on_files({train_path}, config);
      times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    }
    tr.troupe = median(times);
    tr.troupe_tokens = trained.spec.tokens_by_rank.size();
    if (spm) {
      times.clear();
      const fs::path prefix = work / fmt::format("spm_bpe_{}", vocab);
      for (int r = 0; r < a.train_runs; ++r) {
        const Ran ran = run({"spm_train", "--input=" + train_path.string(), "--model_prefix=" + prefix.string(),
                             "--model_type=bpe", fmt::format("--vocab_size={}", vocab), "--character_coverage=1.0",
                             fmt::format("--num_threads={}", threads), "--minloglevel=1"},
                            work);
        if (ran.rc != 0)
          throw Error("spm_train failed: " + ran.err.substr(std::max<size_t>(ran.err.size(), 2000) - 2000));
        times.push_back(ran.seconds);
      }
      tr.spm = median(times);
      spm_model = prefix.string() + ".model";  // the largest vocab ends up used for spm_encode
    }
    train_rows.push_back(tr);
  }
  if (spm && !spm_model.empty()) {
    Row row;
    row.name = fmt::format("spm_encode (BPE {}k)", a.train_vocab.back() / 1024);
    std::vector<double> times;
    const fs::path ids_path = work / "spm.ids";
    for (int r = 0; r < a.runs; ++r) {
      const Ran ran = run({"spm_encode", "--model=" + spm_model.string(), "--output_format=id",
                           "--input=" + fs::absolute(a.corpus).string(), "--output=" + ids_path.string()},
                          work);
      if (ran.rc != 0) throw Error("spm_encode failed: " + ran.err);
      times.push_back(ran.seconds);
    }
    row.seconds = median(times);
    row.runs = a.runs;
    const std::string ids = read_text(ids_path);
    std::istringstream ss(ids);
    for (std::string t; ss >> t;) ++row.tokens;
    row.ids = "n/a (own vocab)";
    rows.push_back(row);
  }

  // ---- report ----
  const double ours_mbps = mb / rows[0].seconds;
  double fastest_peer = 0;
  std::string fastest_name;
  for (size_t i = first_peer; i < rows.size(); ++i) {
    const double s = mb / rows[i].seconds;
    if (s > fastest_peer) {
      fastest_peer = s;
      fastest_name = rows[i].name;
    }
  }
  std::cout << fmt::format("\nencode ({:.1f} MB, median of {} runs)\n", mb, a.runs);
  std::cout << fmt::format("{:<26} {:>9} {:>8} {:>12} {:>16}  {}\n", "encoder", "seconds", "MB/s", "Mtokens/s",
                           "troupe 1t / it", "ids vs troupe");
  for (const Row& row : rows) {
    const double mbps = mb / row.seconds;
    std::cout << fmt::format("{:<26} {:>9.3f} {:>8.2f} {:>12.3f} {:>15.2f}x  {}\n", row.name, row.seconds, mbps,
                             row.tokens / row.seconds / 1e6, ours_mbps / mbps, row.ids);
    results["encode"].push_back({{"encoder", row.name},
                                 {"seconds", row.seconds},
                                 {"mb_per_s", mbps},
                                 {"tokens", row.tokens},
                                 {"ids", row.ids}});
  }
  if (fastest_peer > 0) {
    const double ratio = ours_mbps / fastest_peer;
    std::cout << fmt::format("goal single-thread encode >= 2x the fastest peer ({}): {:.2f}x -> {}\n", fastest_name,
                             ratio, ratio >= 2 ? "met" : "NOT met");
    results["encode_ratio_vs_fastest_peer"] = ratio;
  }
  std::cout << fmt::format("\nBPE training on {:.1f} MB ({} threads, median of {} run(s))\n", cut / 1e6, threads,
                           a.train_runs);
  std::cout << fmt::format("{:<8} {:>12} {:>14} {:>10}\n", "vocab", "troupe s", "spm_train s", "speed-up");
  for (const TrainRow& tr : train_rows) {
    std::cout << fmt::format("{:<8} {:>12.2f} {:>14.2f} {:>9.2f}x\n", tr.vocab, tr.troupe, tr.spm,
                             tr.spm > 0 ? tr.spm / tr.troupe : 0.0);
    results["train"].push_back({{"vocab", tr.vocab},
                                {"troupe_seconds", tr.troupe},
                                {"spm_seconds", tr.spm},
                                {"troupe_tokens", tr.troupe_tokens}});
  }
  if (!a.json_out.empty()) std::ofstream(a.json_out) << results.dump(1) << "\n";
  for (const Row& row : rows) {
    if (row.ids.rfind("DIFFER", 0) == 0) throw Error("ids differ from Troupe's for " + row.name);
  }
}

}  // namespace

void add_tokenizer_bench_command(CLI::App& tokenizer, int& exit_code) {
  auto args = std::make_shared<BenchArgs>();
  auto* cmd = tokenizer.add_subcommand(
      "bench",
      "Encode and training speed against native tiktoken, HF tokenizers and sentencepiece (bench/tokenizer.sh)");
  cmd->add_option("--corpus", args->corpus, "UTF-8 text to encode (>= 20 MB for the reported figures)")->required();
  cmd->add_option("--tokenizer,-t", args->tokenizer, "GPT-2 vocabulary, e.g. tests/fixtures/tokenizers/gpt2.tiktoken")
      ->required();
  cmd->add_option("--encoding", args->encoding, "encoding name for a .tiktoken file");
  cmd->add_option("--python", args->python, "python with tiktoken and tokenizers ('' skips those peers)")
      ->capture_default_str();
  cmd->add_option("--peer-script", args->peer_script, "bench/tokenizer_peers.py")->capture_default_str();
  cmd->add_option("--work-dir", args->work_dir, "scratch folder for models and ids")->capture_default_str();
  cmd->add_option("--runs", args->runs, "encode runs per encoder (median reported)")->capture_default_str();
  cmd->add_option("--train-runs", args->train_runs, "training runs per vocab size")->capture_default_str();
  cmd->add_option("--train-mb", args->train_mb, "size of the training slice (MB)")->capture_default_str();
  cmd->add_option("--train-vocab", args->train_vocab, "vocab sizes to train")->capture_default_str();
  cmd->add_option("--threads", args->threads, "threads for training and the parallel encode row (0 = all)")
      ->capture_default_str();
  cmd->add_flag("--no-spm", args->no_spm, "skip sentencepiece");
  cmd->add_option("--json", args->json_out, "also write the results as JSON");
  cmd->callback([args, &exit_code] {
    if (args->runs < 1 || args->train_runs < 1) throw ConfigError("--runs and --train-runs must be >= 1");
    bench(*args);
    exit_code = 0;
  });
}

}  // namespace troupe::bench
