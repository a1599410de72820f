// `troupe bench metrics`: throughput of Troupe's text metrics against their Python references on the same sentence
// pairs, measured in one run: corpus BLEU and chrF vs sacrebleu, ROUGE-1/2/L/Lsum (with and without the Porter
// stemmer) vs rouge-score's RougeScorer over every pair. Both sides run in one thread, in their own process, on pairs
// the peer writes (bench/metrics_peer.py); the scores must agree to 1e-9 or the benchmark fails.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "bench/commands.h"
#include "bench/stats.h"
#include "core/errors.h"
#include "core/runtime.h"
#include "core/subprocess.h"
#include "metrics/bleu.h"
#include "metrics/chrf.h"
#include "metrics/rouge.h"

namespace troupe::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct MetricsArgs {
  int64_t pairs = 100000;
  int runs = 3;
  std::string python = core::reference_python();
  std::string peer_script = "bench/metrics_peer.py";
  std::string source_dir = ".";
  std::string work_dir = "bench-work/metrics";
  std::string json_out;
};

std::vector<std::string> lines_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw IoError("cannot open " + p.string());
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

int run_metrics(const MetricsArgs& a) {
  fs::create_directories(a.work_dir);
  const fs::path out_file = fs::path(a.work_dir) / "peer.json";
  fmt::print("metrics bench: {} sentence pairs, {} runs each, 1 thread on both sides; the Python peer first\n", a.pairs,
             a.runs);
  core::SubprocessOptions o;
  o.argv = {a.python, a.peer_script, a.work_dir, std::to_string(a.pairs), std::to_string(a.runs), a.source_dir};
  o.out = core::OutputMode::kFile;
  o.out_file = out_file;
  core::Subprocess peer(std::move(o));
  // Two hours is far beyond the peer's few minutes: past it the peer is stuck, and is killed (this loop used to
  // call wait_for(2 h) again for ever).
  const std::optional<int> status = peer.wait_for(std::chrono::hours(2));
  if (!status) {
    peer.kill();
    throw TimeoutError(fmt::format("{} did not finish within 2 hours", a.peer_script));
  }
  const int rc = *status;
  if (rc != 0) throw IoError(fmt::format("{} failed with exit code {}", a.peer_script, rc));
  std::ifstream pin(out_file);
  const nlohmann::json peer_out = nlohmann::json::parse(pin);

  const auto hyps = lines_of(fs::path(a.work_dir) / "hyp.txt");
  const auto ref_lines = lines_of(fs::path(a.work_dir) / "ref.txt");
  std::vector<std::vector<std::string>> refs;
  refs.reserve(ref_lines.size());
  for (const auto& r : ref_lines) refs.push_back({r});
  nlohmann::json result{{"pairs", hyps.size()}, {"runs", a.runs}, {"threads", 1}};
  bool agree = true;
  fmt::print("{:<22} {:>12} {:>12} {:>10} {:>14}\n", "metric", "troupe s", "python s", "speedup", "pairs/s troupe");
  auto bench = [&](const std::string& name, const std::string& label, const std::function<double()>& fn) {
    std::vector<double> times;
    double value = 0;
    for (int r = 0; r < a.runs; ++r) {
      const auto start = Clock::now();
      value = fn();
      times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    }
    const double ours = median(times);
    const double theirs = median(peer_out["seconds"][name].get<std::vector<double>>());
    const double ref_value = peer_out["values"][name].get<double>();
    const bool same = std::abs(value - ref_value) <= 1e-9 * std::max(1.0, std::abs(ref_value));
    agree = agree && same;
    fmt::print("{:<22} {:>12.3f} {:>12.3f} {:>9.1f}x {:>14.0f}{}\n", label, ours, theirs, theirs / ours,
               static_cast<double>(hyps.size()) / ours,
               same ? "" : fmt::format("  MISMATCH {} vs {}", value, ref_value));
    result["metrics"][name] = {{"troupe_seconds", ours},
                               {"python_seconds", theirs},
                               {"speedup", theirs / ours},
                               {"value", value},
                               {"reference_value", ref_value}};
  };
  bench("bleu", "BLEU (corpus)", [&] { return metrics::corpus_bleu(hyps, refs).score; });
  bench("chrf", "chrF (corpus)", [&] { return metrics::corpus_chrf(hyps, refs).score; });
  for (bool stem : {false, true}) {
    metrics::RougeOptions ro;
    ro.use_stemmer = stem;
    bench(stem ? "rouge_stem" : "rouge", stem ? "ROUGE-1/2/L/Lsum stem" : "ROUGE-1/2/L/Lsum",
          [&] { return metrics::corpus_rouge(refs, hyps, ro).at("rougeL").fmeasure; });
  }
  fmt::print("(medians of {} runs; python: sacrebleu {}, rouge-score; both single-threaded)\n", a.runs,
             "corpus_bleu/corpus_chrf");
  if (!a.json_out.empty()) {
    std::ofstream f(a.json_out);
    f << result.dump(2) << "\n";
  }
  return agree ? 0 : 1;
}

}  // namespace

void add_bench_metrics_command(CLI::App& bench, int& exit_code) {
  auto args = std::make_shared<MetricsArgs>();
  auto* cmd = bench.add_subcommand("metrics", "BLEU, chrF and ROUGE throughput vs sacrebleu and rouge-score");
  cmd->add_option("--pairs", args->pairs, "sentence pairs")->capture_default_str();
  cmd->add_option("--runs", args->runs, "timed runs per side (median)")->capture_default_str();
  cmd->add_option("--python", args->python, "python with sacrebleu and rouge-score")->capture_default_str();
  cmd->add_option("--peer-script", args->peer_script, "bench/metrics_peer.py")->capture_default_str();
  cmd->add_option("--source-dir", args->source_dir, "the source tree (for tests/metrics/corpus.py)")
      ->capture_default_str();
  cmd->add_option("--work-dir", args->work_dir, "where the pairs and the peer's output go")->capture_default_str();
  cmd->add_option("--json", args->json_out, "also write the results as JSON");
  cmd->callback([args, &exit_code] { exit_code = run_metrics(*args); });
}

}  // namespace troupe::bench
