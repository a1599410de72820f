// `troupe eval run TASKS.yaml -c MODEL`: the evaluation harness (evaluation/harness.h) over one task file or a suite
// (`tasks: [files]`), on a Troupe run/checkpoint or a Hugging Face GPT-2 directory: a progress bar, the results table
// printed (lm-eval's layout), results.json, samples_<task>.jsonl (every example's context, scores and values) and
// log.h5 (metrics eval/<task>/<metric>, table "eval_results") in --out-dir. Argument handling and printing only.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/device.h"
#include "core/errors.h"
#include "core/run_log.h"
#include "core/run_metadata.h"
#include "core/runtime.h"
#include "core/torch_runtime.h"
#include "evaluation/harness.h"
#include "models/gpt_checkpoint.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::cli {
namespace {

namespace fs = std::filesystem;

std::string progress_bar(const std::string& task, int64_t done, int64_t total) {
  const int width = 24;
  const int filled = total > 0 ? static_cast<int>(width * done / total) : width;
  return fmt::format("\r{:<20} [{}{}] {}/{}", task, std::string(filled, '#'), std::string(width - filled, '.'), done,
                     total);
}

}  // namespace

void add_eval_run_command(CLI::App& eval, int& exit_code) {
  struct Args {
    std::string tasks, model, tokenizer, out_dir, device = "auto";
    evaluation::HarnessOptions options;
    int64_t eot_id = -1;
    int threads = 0;
    bool quiet = false;
    std::vector<std::string> perturb;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = eval.add_subcommand("run",
                                  "Evaluate a model on tasks described as lm-evaluation-harness describes them "
                                  "(multiple choice, log-likelihood, generation + metric; zero/k-shot)");
  cmd->add_option("tasks", args->tasks, "a task YAML, or a suite YAML `tasks: [files]`")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--model,-c", args->model, "Troupe run / checkpoint or Hugging Face GPT-2 directory")->required();
  cmd->add_option("--tokenizer,-t", args->tokenizer, "tokenizer (default: MODEL/tokenizer.json)");
  cmd->add_option("--eot-id", args->eot_id, "end-of-text id (default: the tokenizer's <|endoftext|>)");
  cmd->add_option("--num-fewshot", args->options.num_fewshot, "override every task's num_fewshot");
  cmd->add_option("--limit", args->options.limit, "evaluate the first N documents of each task (0 = all)")
      ->capture_default_str();
  cmd->add_option("--batch-size", args->options.batch_size, "continuations / prompts per batch")->capture_default_str();
  cmd->add_option("--fewshot-seed", args->options.fewshot_seed, "seed of the few-shot draw (lm-eval's default)")
      ->capture_default_str();
  cmd->add_option("--seed", args->options.seed, "seed of sampled generations (do_sample tasks)")->capture_default_str();
  cmd->add_option("--out-dir,-o", args->out_dir, "write results.json, samples_<task>.jsonl and log.h5 here");
  cmd->add_option("--threads", args->threads, "torch threads (0 = all cores)")->capture_default_str();
  cmd->add_flag("--quiet", args->quiet, "no progress bar");
  cmd->add_option("--perturb", args->perturb,
                  "also run each task with every document's text perturbed: typos|case|whitespace|distractor[:RATE] "
                  "(repeatable; results as TASK[KIND:RATE])");
  add_device_option(cmd, args->device);
  cmd->callback([args, &exit_code] {
    core::set_threads(args->threads);
    const std::vector<evaluation::TaskSpec> specs = evaluation::load_tasks(args->tasks);  // all parse first
    fs::path tok_path = args->tokenizer.empty() ? fs::path(args->model) / "tokenizer.json" : fs::path(args->tokenizer);
    if (!fs::exists(tok_path)) {
      throw ConfigError(fmt::format("no tokenizer: {} does not exist (give --tokenizer)", tok_path.string()));
    }
    const tokenizers::BpeTokenizer tok = tokenizers::open_tokenizer(tok_path.string());
    int64_t eot = args->eot_id;
    if (eot < 0) {
      const auto& specials = tok.spec().special_tokens;
      const auto it = specials.find("<|endoftext|>");
      if (it == specials.end()) throw ConfigError("the tokenizer has no <|endoftext|>: give --eot-id");
      eot = it->second;
    }
    models::Gpt model = models::load_pretrained_gpt(args->model);
    model->to(core::resolve_device(args->device, core::local_rank(), "--device"));
    const evaluation::EvalModel m{model, tok, eot};

    std::unique_ptr<core::RunLog> log;
    if (!args->out_dir.empty()) {
      fs::create_directories(args->out_dir);
      const fs::path log_file = fs::path(args->out_dir) / "log.h5";
      if (fs::exists(log_file)) fs::remove(log_file);
      log = std::make_unique<core::RunLog>(core::RunLog::create(
          log_file, "tasks: " + args->tasks + "\nmodel: " + args->model + "\n", core::this_process_metadata()));
    }
    nlohmann::ordered_json results = nlohmann::ordered_json::object();
    std::string table = fmt::format("|{:<32}|{:>7}|{:<28}|{:>12}|{:>10}|\n|{}|{}|{}|{}|{}|\n", "task", "n-shot",
                                    "metric", "value", "stderr", std::string(32, '-'), std::string(7, '-'),
                                    std::string(28, '-'), std::string(12, '-'), std::string(10, '-'));
    std::vector<std::optional<evaluation::Perturbation>> variants{std::nullopt};
    for (const auto& p : args->perturb) variants.push_back(evaluation::parse_perturbation(p));
    for (const auto& spec : specs) {
      for (const auto& variant : variants) {
        evaluation::HarnessOptions o = args->options;
        o.perturbation = variant;
        if (!args->quiet) {
          o.progress = [&](int64_t done, int64_t total) {
            std::cerr << progress_bar(spec.name, done, total) << (done == total ? "\n" : "") << std::flush;
          };
        }
        evaluation::TaskResult r = evaluation::run_task(m, spec, o);
        if (!r.perturbation.empty()) r.task += "[" + r.perturbation + "]";
        nlohmann::ordered_json j{{"output_type", r.output_type},
                                 {"num_fewshot", r.num_fewshot},
                                 {"documents", r.documents},
                                 {"seconds", r.seconds},
                                 {"perturbation", r.perturbation}};
        std::map<std::string, double> scalars;
        for (const auto& mv : r.metrics) {
          j["metrics"][mv.name] = mv.value;
          if (mv.stderr_of_mean >= 0) j["metrics"][mv.name + "_stderr"] = mv.stderr_of_mean;
          scalars["eval/" + r.task + "/" + mv.name] = mv.value;
          table += fmt::format("|{:<32}|{:>7}|{:<28}|{:>12.4f}|{:>10}|\n", r.task, r.num_fewshot, mv.name, mv.value,
                               mv.stderr_of_mean >= 0 ? fmt::format("{:.4f}", mv.stderr_of_mean) : "");
          if (log) {
            log->log_table_row("eval_results", 0,
                               {{"task", r.task},
                                {"metric", mv.name},
                                {"score", fmt::format("{}", mv.value)},
                                {"stderr", mv.stderr_of_mean >= 0 ? fmt::format("{}", mv.stderr_of_mean) : ""},
                                {"num_fewshot", std::to_string(r.num_fewshot)}});
          }
        }
        results[r.task] = j;
        if (log) log->log_scalars(0, scalars);
        if (!args->out_dir.empty()) {
          std::ofstream s(fs::path(args->out_dir) / ("samples_" + r.task + ".jsonl"));
          for (const auto& ex : r.examples) {
            nlohmann::ordered_json e{{"doc_id", ex.doc_id}, {"context", ex.context}};
            if (!ex.continuations.empty()) {
              e["continuations"] = ex.continuations;
              e["loglikelihoods"] = ex.loglikelihoods;
              e["greedy"] = ex.greedy;
            }
            if (ex.gold >= 0) e["gold"] = ex.gold;
            if (!ex.target.empty()) e["target"] = ex.target;
            if (r.output_type == "generate_until") {
              e["generation"] = ex.generation;
              if (ex.generations.size() > 1) e["generations"] = ex.generations;
              for (const auto& f : ex.filtered) {
                e["filtered"][f.pipeline]["answer"] = f.answer;
                if (f.vote_share >= 0) e["filtered"][f.pipeline]["vote_share"] = f.vote_share;
              }
            }
            for (const auto& [k, v] : ex.values) e["values"][k] = v;
            s << e.dump() << "\n";
          }
        }
      }
    }
    std::cout << table;
    if (!args->out_dir.empty()) {
      std::ofstream out(fs::path(args->out_dir) / "results.json");
      out << nlohmann::ordered_json{{"model", args->model}, {"tasks", args->tasks}, {"results", results}}.dump(2)
          << "\n";
      if (!out) throw IoError(fmt::format("cannot write {}/results.json", args->out_dir));
      log->set_attribute("status", "finished");
      log->close();
    }
    exit_code = 0;
  });
}

}  // namespace troupe::cli
