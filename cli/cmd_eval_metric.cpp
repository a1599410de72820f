// `troupe eval metric NAME --hyp FILE --ref FILE...`: a reference-exact metric of troupe::metrics over line-aligned
// files (one example per line; each --ref file is one reference stream, as sacreBLEU takes them), printed, optionally
// per example, and written as JSON. Argument handling and printing only.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "core/errors.h"
#include "metrics/classification.h"
#include "metrics/text_metrics.h"

namespace troupe::cli {
namespace {

// The lines of `path` (a final newline ends the last line; a trailing "\r" is dropped, so CRLF files read the same).
std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("{}: cannot open", path));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

double parse_number(const std::string& text, const std::string& path, size_t line) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw DataError(fmt::format("{}:{}: expected a number, got '{}'", path, line, text));
}

}  // namespace

void add_eval_metric_command(CLI::App& eval, int& exit_code) {
  struct Args {
    std::string name, hyp, json;
    std::vector<std::string> refs;
    metrics::TextMetricOptions options;
    bool sentence = false;
    std::vector<int64_t> ks{1};
    int bins = 10;
  };
  auto args = std::make_shared<Args>();
  std::string names = fmt::format("{}", fmt::join(metrics::text_metric_names(), ", "));
  auto* cmd = eval.add_subcommand(
      "metric", "A metric equal to its reference implementation, over line-aligned files: " + names +
                    "; and ece, brier (--hyp probabilities, --ref 0/1 outcomes), pass@k (--hyp lines 'n c')");
  cmd->add_option("name", args->name, "the metric")->required();
  cmd->add_option("--hyp", args->hyp, "hypotheses (predictions), one per line")->required()->check(CLI::ExistingFile);
  cmd->add_option("--ref", args->refs, "a reference stream, one per line (repeatable: several references)")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--lowercase", args->options.lowercase, "bleu/chrf/ter: case-insensitive");
  cmd->add_option("--tokenize", args->options.tokenize, "bleu: 13a | none | intl | char")->capture_default_str();
  cmd->add_option("--smooth", args->options.smooth, "bleu: none | floor | add-k | exp")->capture_default_str();
  cmd->add_flag("--stem", args->options.stem, "rouge: NLTK's Porter stemmer");
  cmd->add_flag("--sentence", args->sentence, "also print the value of every example");
  cmd->add_option("--k", args->ks, "pass@k: k (repeatable)")->capture_default_str();
  cmd->add_option("--bins", args->bins, "ece: equal-width bins")->capture_default_str();
  cmd->add_option("--json", args->json, "also write the values as JSON to this file");
  cmd->callback([args, &exit_code] {
    const auto hyps = read_lines(args->hyp);
    std::vector<std::vector<std::string>> streams;
    for (const auto& r : args->refs) {
      streams.push_back(read_lines(r));
      if (streams.back().size() != hyps.size()) {
        throw DataError(fmt::format("{} has {} lines but {} has {}: every --ref needs one line per hypothesis", r,
                                    streams.back().size(), args->hyp, hyps.size()));
      }
    }
    nlohmann::json out{{"metric", args->name}, {"hyp", args->hyp}, {"refs", args->refs}, {"examples", hyps.size()}};
    nlohmann::ordered_json values;
    if (args->name == "pass@k") {
      std::vector<int64_t> n, c;
      for (size_t i = 0; i < hyps.size(); ++i) {
        std::istringstream in(hyps[i]);
        int64_t a = -1, b = -1;
        std::string rest;
        if (!(in >> a >> b) || (in >> rest)) {
          throw DataError(fmt::format("{}:{}: expected 'n c' (samples, correct), got '{}'", args->hyp, i + 1, hyps[i]));
        }
        n.push_back(a);
        c.push_back(b);
      }
      for (int64_t k : args->ks) {
        values[fmt::format("pass@{}", k)] = metrics::mean_pass_at_k(n, c, k);
        fmt::print("pass@{} = {:.6f}  ({} problems)\n", k, values[fmt::format("pass@{}", k)].get<double>(), n.size());
      }
    } else if (args->name == "ece" || args->name == "brier") {
      if (streams.size() != 1) throw ConfigError(fmt::format("{} needs exactly one --ref (0/1 outcomes)", args->name));
      std::vector<double> p;
      std::vector<int> y;
      for (size_t i = 0; i < hyps.size(); ++i) {
        p.push_back(parse_number(hyps[i], args->hyp, i + 1));
        const double o = parse_number(streams[0][i], args->refs[0], i + 1);
        if (o != 0 && o != 1)
          throw DataError(fmt::format("{}:{}: expected 0 or 1, got '{}'", args->refs[0], i + 1, streams[0][i]));
        y.push_back(static_cast<int>(o));
      }
      const double v =
          args->name == "ece" ? metrics::expected_calibration_error(p, y, args->bins) : metrics::brier_score(p, y);
      values[args->name] = v;
      fmt::print("{} = {:.6f}  ({} examples{})\n", args->name, v, p.size(),
                 args->name == "ece" ? fmt::format(", {} bins", args->bins) : "");
    } else {
      if (streams.empty()) throw ConfigError(fmt::format("metric {} needs at least one --ref", args->name));
      std::vector<std::vector<std::string>> refs(hyps.size());
      for (size_t i = 0; i < hyps.size(); ++i) {
        for (const auto& s : streams) refs[i].push_back(s[i]);
      }
      const metrics::TextMetricResult r = metrics::compute_text_metric(args->name, hyps, refs, args->options);
      if (args->sentence) {
        for (size_t i = 0; i < r.per_example.size(); ++i) fmt::print("{}\t{:.6f}\n", i + 1, r.per_example[i]);
      }
      fmt::print("{}\n", r.summary);
      if (!r.signature.empty()) fmt::print("signature: {}\n", r.signature);
      for (const auto& [k, v] : r.values) values[k] = v;
      if (!r.signature.empty()) out["signature"] = r.signature;
      if (args->sentence) out["per_example"] = r.per_example;
    }
    out["values"] = values;
    if (!args->json.empty()) {
      std::ofstream f(args->json);
      if (!f) throw IoError(fmt::format("{}: cannot write", args->json));
      f << out.dump(2) << "\n";
    }
    exit_code = 0;
  });
}

}  // namespace troupe::cli
