// `troupe eval probe bias|toxicity`: the gender-occupation log-likelihood probe of evaluation/probes.h and the
// lexicon toxicity rate of metrics/toxicity.h, each printed as a table and written as JSON. Argument handling and
// printing only.
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
#include "core/runtime.h"
#include "core/torch_runtime.h"
#include "data/chat_data.h"
#include "evaluation/probes.h"
#include "metrics/toxicity.h"
#include "models/generation.h"
#include "models/gpt_checkpoint.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::cli {
namespace {

namespace fs = std::filesystem;

std::string default_tokenizer(const std::string& model, const std::string& given) {
  const fs::path p = given.empty() ? fs::path(model) / "tokenizer.json" : fs::path(given);
  if (!fs::exists(p)) throw ConfigError(fmt::format("no tokenizer: {} does not exist (give --tokenizer)", p.string()));
  return p.string();
}

void write_json(const std::string& path, const nlohmann::ordered_json& j) {
  if (path.empty()) return;
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) throw IoError(fmt::format("cannot write {}", path));
}

}  // namespace

void add_eval_probe_command(CLI::App& eval, int& exit_code) {
  auto* probe = eval.add_subcommand("probe", "Bias and toxicity probes");
  probe->require_subcommand(1);

  struct BiasArgs {
    std::string model, tokenizer, json, device = "auto";
    std::vector<std::string> occupations, templates;
    int threads = 0;
  };
  auto b = std::make_shared<BiasArgs>();
  auto* bias = probe->add_subcommand(
      "bias", "Gender-occupation probe: log p(' he') - log p(' she') after templates such as 'The nurse said that'");
  bias->add_option("--model,-c", b->model, "Troupe run / checkpoint or Hugging Face GPT-2 directory")->required();
  bias->add_option("--tokenizer,-t", b->tokenizer, "tokenizer (default: MODEL/tokenizer.json)");
  bias->add_option("--occupation", b->occupations, "an occupation (repeatable; default: WinoBias's 40)");
  bias->add_option("--template", b->templates, "a template with {occupation} (repeatable)");
  bias->add_option("--json", b->json, "also write the table as JSON");
  bias->add_option("--threads", b->threads, "torch threads (0 = all cores)")->capture_default_str();
  add_device_option(bias, b->device);
  bias->callback([b, &exit_code] {
    core::set_threads(b->threads);
    const auto tok = tokenizers::open_tokenizer(default_tokenizer(b->model, b->tokenizer));
    models::Gpt model = models::load_pretrained_gpt(b->model);
    model->to(core::resolve_device(b->device, core::local_rank(), "--device"));
    const auto r = evaluation::gender_occupation_probe(
        model, tok, b->occupations.empty() ? evaluation::default_occupations() : b->occupations,
        b->templates.empty() ? evaluation::default_bias_templates() : b->templates);
    const double per =
        static_cast<double>(b->templates.empty() ? evaluation::default_bias_templates().size() : b->templates.size());
    fmt::print("{:<22} {:>10} {:>10} {:>12}\n", "occupation", "logp_he", "logp_she", "he - she");
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (const auto& row : r.rows) {
      fmt::print("{:<22} {:>10.4f} {:>10.4f} {:>12.4f}\n", row.occupation, row.logp_he / per, row.logp_she / per,
                 row.difference() / per);
      rows.push_back(
          {{"occupation", row.occupation}, {"logp_he", row.logp_he / per}, {"logp_she", row.logp_she / per}});
    }
    fmt::print("mean(he - she) = {:.4f}  share preferring he = {:.3f}  mean |he - she| = {:.4f}  ({} occupations)\n",
               r.mean_difference, r.he_share, r.mean_abs_difference, r.rows.size());
    write_json(b->json, {{"rows", rows},
                         {"mean_difference", r.mean_difference},
                         {"he_share", r.he_share},
                         {"mean_abs_difference", r.mean_abs_difference}});
    exit_code = 0;
  });

  struct ToxArgs {
    std::string texts, model, tokenizer, prompts, chat_template, lexicon, json, device = "auto";
    double max_score = -4;
    int64_t samples = 1, max_new_tokens = 32, max_prompts = 0;
    uint64_t seed = 0;
    double temperature = 1.0;
    int threads = 0;
  };
  auto t = std::make_shared<ToxArgs>();
  auto* tox = probe->add_subcommand(
      "toxicity", "The share of texts (given, or sampled from a model) containing a word of a toxicity lexicon");
  tox->add_option("--texts", t->texts, "texts to score, one per line (instead of sampling a model)");
  tox->add_option("--model,-c", t->model, "sample this model on --prompts");
  tox->add_option("--tokenizer,-t", t->tokenizer, "tokenizer (default: MODEL/tokenizer.json)");
  tox->add_option("--prompts", t->prompts,
                  "JSONL prompts: a string field 'prompt', or 'messages' (with --chat-template)");
  tox->add_option("--chat-template", t->chat_template,
                  "tokenizer_config.json whose chat_template renders {\"messages\"} prompts");
  tox->add_option("--max-prompts", t->max_prompts, "at most N prompts (0 = all)")->capture_default_str();
  tox->add_option("--samples", t->samples, "samples per prompt")->capture_default_str();
  tox->add_option("--max-new-tokens", t->max_new_tokens, "tokens per sample")->capture_default_str();
  tox->add_option("--temperature", t->temperature, "sampling temperature")->capture_default_str();
  tox->add_option("--seed", t->seed, "sampling seed")->capture_default_str();
  tox->add_option("--lexicon", t->lexicon, "word<TAB>score TSV (AFINN) or a word list")->required();
  tox->add_option("--max-score", t->max_score, "TSV lexicons: words scored at most this are toxic")
      ->capture_default_str();
  tox->add_option("--json", t->json, "also write the result as JSON");
  tox->add_option("--threads", t->threads, "torch threads (0 = all cores)")->capture_default_str();
  add_device_option(tox, t->device);
  tox->callback([t, &exit_code] {
    if (t->texts.empty() == t->model.empty()) throw ConfigError("give either --texts or --model with --prompts");
    const auto lexicon = metrics::load_toxicity_lexicon(t->lexicon, t->max_score);
    std::vector<std::string> texts;
    if (!t->texts.empty()) {
      std::ifstream in(t->texts);
      if (!in) throw IoError(fmt::format("{}: cannot open", t->texts));
      for (std::string line; std::getline(in, line);) texts.push_back(line);
    } else {
      if (t->prompts.empty()) throw ConfigError("--model needs --prompts");
      core::set_threads(t->threads);
      const auto tok = tokenizers::open_tokenizer(default_tokenizer(t->model, t->tokenizer));
      models::Gpt model = models::load_pretrained_gpt(t->model);
      model->to(core::resolve_device(t->device, core::local_rank(), "--device"));
      const auto chat = data::load_chat_template(t->chat_template);
      std::vector<std::vector<int64_t>> rows;
      std::ifstream in(t->prompts);
      if (!in) throw IoError(fmt::format("{}: cannot open", t->prompts));
      int64_t line_no = 0;
      for (std::string line; std::getline(in, line);) {
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const auto j = nlohmann::ordered_json::parse(line, nullptr, false);
        if (!j.is_object()) throw DataError(fmt::format("{}:{}: expected a JSON object", t->prompts, line_no));
        const std::vector<int> ids =
            data::encode_prompt(tok, data::prompt_of_line(j, "prompt", chat.get(), "--chat-template",
                                                          fmt::format("{}:{}", t->prompts, line_no)));
        std::vector<int64_t> row(ids.begin(), ids.end());
        const int64_t room = model->config().block_size - t->max_new_tokens;
        if (room < 1) throw ConfigError("--max-new-tokens leaves no room for a prompt");
        if (static_cast<int64_t>(row.size()) > room) row.erase(row.begin(), row.end() - room);
        if (row.empty()) continue;
        for (int64_t s = 0; s < t->samples; ++s) rows.push_back(row);
        if (t->max_prompts > 0 && static_cast<int64_t>(rows.size()) >= t->max_prompts * t->samples) break;
      }
      models::GenerationConfig g;
      g.do_sample = true;
      g.temperature = t->temperature;
      g.max_new_tokens = t->max_new_tokens;
      g.seed = t->seed;
      const auto& specials = tok.spec().special_tokens;
      if (const auto it = specials.find("<|endoftext|>"); it != specials.end()) g.stop_tokens = {it->second};
      const auto out = models::generate(model, rows, g);
      for (const auto& toks : out.tokens) {
        std::vector<int> ids(toks.begin(), toks.end());
        if (!g.stop_tokens.empty() && !ids.empty() && ids.back() == g.stop_tokens[0]) ids.pop_back();
        texts.push_back(tok.decode_lossy_utf8(ids));
      }
    }
    const auto r = metrics::toxicity_rate(texts, lexicon);
    fmt::print("toxicity rate = {:.4f}  ({} of {} texts contain one of {} lexicon words)\n", r.rate, r.toxic, r.texts,
               lexicon.size());
    nlohmann::ordered_json examples = nlohmann::ordered_json::array();
    for (size_t i = 0; i < texts.size(); ++i) {
      if (r.flags[i]) examples.push_back({{"index", i}, {"word", r.matched[i]}, {"text", texts[i]}});
    }
    write_json(t->json, {{"rate", r.rate}, {"toxic", r.toxic}, {"texts", r.texts}, {"toxic_examples", examples}});
    exit_code = 0;
  });
}

}  // namespace troupe::cli
