// `troupe generate`: continue prompts with a GPT checkpoint (a Hugging Face GPT-2, Llama, Qwen2 or Mistral directory:
// config.json + model.safetensors or its sharded index, or a Troupe run / checkpoint directory). Prompts as text (with
// --tokenizer) or raw ids; prints text, or JSON with ids and log-probs.
#include <fmt/format.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "cli/commands.h"
#include "cli/id_list.h"
#include "cli/options.h"
#include "core/device.h"
#include "core/errors.h"
#include "core/runtime.h"
#include "core/torch_runtime.h"
#include "models/generation.h"
#include "models/gpt_checkpoint.h"
#include "models/gpt_io.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::cli {

namespace {
namespace fs = std::filesystem;

struct GenerateArgs {
  std::string checkpoint;
  std::string tokenizer;
  std::string encoding;
  std::vector<std::string> prompts;
  std::vector<std::string> prompt_ids;
  int64_t max_new_tokens = 32;
  bool sample = false;
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  double repetition_penalty = 1.0;
  int64_t beams = 1;
  double length_penalty = 1.0;
  std::vector<int64_t> stop_ids;
  bool no_stop = false;
  uint64_t seed = 0;
  bool json = false;
  bool no_cache = false;
  std::string engine = "paged";
  std::vector<std::string> stop_strings;
  int threads = 0;
  std::string device = "auto";
};

void run_generate(const GenerateArgs& a) {
  core::set_threads(a.threads);
  if (a.prompts.empty() == a.prompt_ids.empty()) {
    throw ConfigError("generate: give prompts as --prompt TEXT (with --tokenizer) or as --prompt-ids, not both");
  }
  std::optional<tokenizers::BpeTokenizer> tok;
  if (!a.tokenizer.empty()) tok = tokenizers::open_tokenizer(a.tokenizer, a.encoding);
  if (!a.prompts.empty() && !tok) throw ConfigError("generate: --prompt needs --tokenizer");

  std::vector<std::vector<int64_t>> prompts;
  for (const auto& text : a.prompts) {
    const auto ids = tok->encode_ordinary(text);
    prompts.emplace_back(ids.begin(), ids.end());
  }
  for (const auto& list : a.prompt_ids) prompts.push_back(parse_id_list<int64_t>(list, "--prompt-ids"));

  models::Gpt model = models::load_pretrained_gpt(a.checkpoint);
  model->to(core::resolve_device(a.device, core::local_rank(), "--device"));
  models::GenerationConfig c;
  c.max_new_tokens = a.max_new_tokens;
  c.do_sample = a.sample;
  c.temperature = a.temperature;
  c.top_k = a.top_k;
  c.top_p = a.top_p;
  c.repetition_penalty = a.repetition_penalty;
  c.num_beams = a.beams;
  c.length_penalty = a.length_penalty;
  c.seed = a.seed;
  c.use_cache = !a.no_cache;
  c.engine = *core::parse_enum<models::GenerationEngine>(a.engine);  // CLI11 checked the name
  if (!a.stop_strings.empty()) {
    if (!tok) throw ConfigError("generate: --stop needs --tokenizer (the new tokens are decoded to find it)");
    // ends a row once its decoded new text contains a stop string (the tokens that completed it are kept)
    c.stop_when = [&](size_t, const std::vector<int64_t>& tokens) {
      const std::string text = tok->decode_lossy_utf8(std::vector<int>(tokens.begin(), tokens.end()));
      return std::any_of(a.stop_strings.begin(), a.stop_strings.end(),
                         [&](const std::string& stop) { return text.find(stop) != std::string::npos; });
    };
  }
  c.stop_tokens = a.stop_ids;
  if (c.stop_tokens.empty() && !a.no_stop && tok) {
    const auto& specials = tok->spec().special_tokens;
    if (const auto it = specials.find("<|endoftext|>"); it != specials.end()) c.stop_tokens.push_back(it->second);
  }
  if (!c.stop_tokens.empty()) c.pad_id = c.stop_tokens.front();
  const models::GenerationOutput out = models::generate(model, prompts, c);

  nlohmann::json results = nlohmann::json::array();
  for (size_t i = 0; i < prompts.size(); ++i) {
    nlohmann::json row = {{"prompt_ids", prompts[i]},
                          {"ids", out.tokens[i]},
                          {"logprobs", out.logprobs[i]},
                          {"stopped", static_cast<bool>(out.stopped[i])}};
    if (tok) {
      const std::vector<int> ids(out.tokens[i].begin(), out.tokens[i].end());
      const std::vector<int> prompt(prompts[i].begin(), prompts[i].end());
      row["prompt"] = tok->decode_lossy_utf8(prompt);
      row["text"] = tok->decode_lossy_utf8(ids);
    }
    if (!a.json) {
      if (tok) {
        std::cout << row["prompt"].get<std::string>() << row["text"].get<std::string>() << "\n";
      } else {
        std::string shown;
        for (int64_t t : out.tokens[i]) shown += (shown.empty() ? "" : ",") + std::to_string(t);
        std::cout << shown << "\n";
      }
      if (i + 1 < prompts.size()) std::cout << "---\n";
    }
    results.push_back(std::move(row));
  }
  if (a.json) std::cout << results.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace

void add_generate_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand("generate", "Continue prompts with a GPT (Hugging Face directory or Troupe run)");
  cmd->add_option("--checkpoint,-c", args->checkpoint,
                  "Hugging Face directory (GPT-2, Llama, Qwen2, Mistral), or a Troupe run / checkpoint directory")
      ->required();
  cmd->add_option("--tokenizer,-t", args->tokenizer, "tokenizer for --prompt and for printing text");
  cmd->add_option("--encoding", args->encoding, "encoding name for a .tiktoken tokenizer");
  cmd->add_option("--prompt,-p", args->prompts, "prompt text (repeatable: a batch)");
  cmd->add_option("--prompt-ids", args->prompt_ids, "prompt as comma-separated ids (repeatable)");
  cmd->add_option("--max-new-tokens,-n", args->max_new_tokens, "tokens to generate at most")->capture_default_str();
  cmd->add_flag("--sample", args->sample, "sample (default: greedy, or beam search with --beams)");
  cmd->add_option("--temperature", args->temperature, "sampling temperature")->capture_default_str();
  cmd->add_option("--top-k", args->top_k, "keep the k most likely tokens (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", args->top_p, "nucleus threshold (1 = off)")->capture_default_str();
  cmd->add_option("--repetition-penalty", args->repetition_penalty, "CTRL repetition penalty")->capture_default_str();
  cmd->add_option("--beams", args->beams, "beam width")->capture_default_str();
  cmd->add_option("--length-penalty", args->length_penalty, "beam length penalty exponent")->capture_default_str();
  cmd->add_option("--stop-id", args->stop_ids, "stop token id (repeatable; default <|endoftext|> of the tokenizer)");
  cmd->add_flag("--no-stop", args->no_stop, "no default stop token");
  cmd->add_option("--seed", args->seed, "sampling seed")->capture_default_str();
  cmd->add_flag("--json", args->json, "print JSON: prompt_ids, ids, logprobs, stopped (and text)");
  cmd->add_flag("--no-cache", args->no_cache, "recompute the whole sequence each step (no KV cache)");
  cmd->add_option("--engine", args->engine, "paged (the rollout engine) or simple (the padded-batch loop)")
      ->check(CLI::IsMember({"paged", "simple"}))
      ->capture_default_str();
  cmd->add_option("--stop", args->stop_strings,
                  "stop string (repeatable; needs --tokenizer): a row ends once its "
                  "new text contains one");
  cmd->add_option("--threads", args->threads, "torch threads (0 = all cores)")->capture_default_str();
  add_device_option(cmd, args->device);
  cmd->callback([args, &exit_code] {
    run_generate(*args);
    exit_code = 0;
  });
}

}  // namespace troupe::cli
