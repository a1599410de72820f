// `troupe data split`, `troupe data label-preferences` and `troupe eval policies`: argument handling over
// experiments/policy_tools.h (the data and evaluation steps of an RLHF pipeline such as the quickstart).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "cli/id_list.h"
#include "cli/options.h"
#include "core/errors.h"
#include "experiments/policy_tools.h"

namespace troupe::cli {

namespace {

struct RewardArgs {
  std::string type, lexicon, pattern;
  int64_t target_length = 16;
  double eos_bonus = 0;

  void add(CLI::App* cmd) {
    cmd->add_option("--reward", type, "programmatic reward: lexicon | length | pattern")->required();
    cmd->add_option("--lexicon", lexicon, "lexicon: word<TAB>score TSV (e.g. AFINN-165)");
    cmd->add_option("--pattern", pattern, "pattern: target ids, comma-separated");
    cmd->add_option("--target-length", target_length, "length: response tokens that score 0")->capture_default_str();
    cmd->add_option("--eos-bonus", eos_bonus, "length: bonus for ending with EOS")->capture_default_str();
  }
  rlhf::RewardFunctionConfig config() const {
    rlhf::RewardFunctionConfig c;
    c.type = core::parse_enum<rlhf::RewardFunctionType>(type);
    if (!c.type) throw ConfigError("--reward " + type + ": expected " + core::enum_choices<rlhf::RewardFunctionType>());
    c.lexicon = lexicon;
    c.target_length = target_length;
    c.eos_bonus = eos_bonus;
    if (!pattern.empty()) c.pattern = parse_id_list<int64_t>(pattern, "--pattern");
    return c;
  }
};

void add_sampling(CLI::App* cmd, experiments::SamplingOptions& s) {
  cmd->add_option("--max-new-tokens,-n", s.max_new_tokens, "response tokens at most")->capture_default_str();
  cmd->add_option("--temperature", s.temperature, "sampling temperature")->capture_default_str();
  cmd->add_option("--batch-size", s.batch_size, "prompts per generation batch")->capture_default_str();
  cmd->add_option("--seed", s.seed, "sampling seed")->capture_default_str();
}

}  // namespace

void add_policy_tool_commands(CLI::App& app, int& exit_code) {
  CLI::App* data = app.get_subcommand("data");
  CLI::App* eval = app.get_subcommand("eval");

  auto split = std::make_shared<experiments::SplitDocumentsOptions>();
  auto split_out = std::make_shared<std::string>();
  auto* sp = data->add_subcommand(
      "split",
      "Cut text files into documents at separator lines (fortune files: '%'), one file per document in "
      "OUT/docs/{train,val}/, plus SFT pairs and prompt files with --prompt-words");
  sp->add_option("--input", split->inputs, "text files or directories (recursive; binary files skipped)")->required();
  sp->add_option("--output,-o", *split_out, "output directory")->required();
  sp->add_option("--separator-line", split->separator_line,
                 "a line equal to this ends a document (\"\" = one per file)")
      ->capture_default_str();
  sp->add_option("--min-words", split->min_words, "drop shorter documents")->capture_default_str();
  sp->add_option("--max-words", split->max_words, "drop longer documents (0 = no limit)")->capture_default_str();
  sp->add_option("--max-documents", split->max_documents, "keep at most N documents (0 = all)")->capture_default_str();
  sp->add_option("--prompt-words", split->prompt_words, "> 0: SFT pairs whose prompt is the first N words")
      ->capture_default_str();
  sp->add_option("--response-words", split->response_words, "words of the SFT response at most")->capture_default_str();
  sp->add_option("--val-fraction", split->val_fraction, "share of documents for validation")->capture_default_str();
  sp->add_option("--seed", split->seed, "shuffle/split seed")->capture_default_str();
  sp->callback([split, split_out, &exit_code] {
    split->output = *split_out;
    const auto r = experiments::split_documents(*split);
    std::cout << fmt::format(
        "{} files ({} binary skipped): {} documents ({} dropped by length): {} train, {} val; {} SFT pairs -> {}\n",
        r.files, r.skipped_binary, r.documents, r.dropped_length, r.train, r.val, r.sft_pairs, split->output.string());
    exit_code = 0;
  });

  struct LabelArgs {
    experiments::LabelPreferencesOptions o;
    std::string policy, prompts, output;
    RewardArgs reward;
  };
  auto label = std::make_shared<LabelArgs>();
  auto* lp =
      data->add_subcommand("label-preferences",
                           "A programmatic labeller: sample two responses per prompt from a policy, score them with a "
                           "reward function, write preference JSONL (OUT/train.jsonl, OUT/val.jsonl)");
  lp->add_option("--policy,-c", label->policy, "HF GPT-2 directory or Troupe run/checkpoint")->required();
  lp->add_option("--tokenizer,-t", label->o.tokenizer, "tokenizer")->required();
  lp->add_option("--encoding", label->o.encoding, "encoding for a .tiktoken tokenizer");
  lp->add_option("--prompts", label->prompts, "JSONL with a string field 'prompt' or a conversation 'messages'")
      ->required();
  lp->add_option("--chat-template", label->o.chat_template,
                 "tokenizer_config.json whose chat_template renders 'messages' prompts");
  lp->add_option("--max-prompts", label->o.max_prompts, "use at most N prompts (0 = all)")->capture_default_str();
  lp->add_option("--output,-o", label->output, "output directory")->required();
  lp->add_option("--val-fraction", label->o.val_fraction, "share of pairs for validation")->capture_default_str();
  lp->add_option("--threads", label->o.threads, "torch threads (0 = all cores)")->capture_default_str();
  add_device_option(lp, label->o.device);
  label->reward.add(lp);
  add_sampling(lp, label->o.sampling);
  lp->callback([label, &exit_code] {
    label->o.policy = label->policy;
    label->o.prompts = label->prompts;
    label->o.output = label->output;
    label->o.reward = label->reward.config();
    const auto r = experiments::label_preferences(label->o);
    std::cout << fmt::format(
        "{} prompts: {} pairs ({} train, {} val), {} ties dropped; mean reward {:.4f}, mean |chosen - rejected| "
        "{:.4f} -> {}\n",
        r.prompts, r.pairs, r.train, r.val, r.ties, r.mean_reward, r.mean_gap, label->output);
    exit_code = 0;
  });

  struct EvalArgs {
    experiments::PolicyEvalOptions o;
    std::string reference, prompts, out;
    std::vector<std::string> policies;
    RewardArgs reward;
  };
  auto ev = std::make_shared<EvalArgs>();
  auto* pe = eval->add_subcommand(
      "policies",
      "Compare policies with a reference under a reward: mean reward, win rate against the reference "
      "and the sequence KL to it, from K samples per prompt");
  pe->add_option("--reference", ev->reference, "the reference policy (e.g. the SFT run)")->required();
  pe->add_option("--policy", ev->policies, "NAME=PATH of a policy to compare (repeatable)")->required();
  pe->add_option("--tokenizer,-t", ev->o.tokenizer, "tokenizer")->required();
  pe->add_option("--encoding", ev->o.encoding, "encoding for a .tiktoken tokenizer");
  pe->add_option("--prompts", ev->prompts, "JSONL with a string field 'prompt' or a conversation 'messages'")
      ->required();
  pe->add_option("--chat-template", ev->o.chat_template,
                 "tokenizer_config.json whose chat_template renders 'messages' prompts");
  pe->add_option("--max-prompts", ev->o.max_prompts, "use at most N prompts (0 = all)")->capture_default_str();
  pe->add_option("--samples", ev->o.samples, "responses per prompt and policy")->capture_default_str();
  pe->add_option("--threads", ev->o.threads, "torch threads (0 = all cores)")->capture_default_str();
  add_device_option(pe, ev->o.device);
  pe->add_option("--out", ev->out, "also write the table as JSON {columns, rows} to this file");
  ev->reward.add(pe);
  add_sampling(pe, ev->o.sampling);
  pe->callback([ev, &exit_code] {
    ev->o.reference = ev->reference;
    ev->o.prompts = ev->prompts;
    ev->o.reward = ev->reward.config();
    ev->o.policies.clear();
    for (const auto& p : ev->policies) {
      const auto eq = p.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == p.size())
        throw ConfigError("--policy " + p + ": expected NAME=PATH");
      ev->o.policies.emplace_back(p.substr(0, eq), p.substr(eq + 1));
    }
    const auto rows = experiments::evaluate_policies(ev->o);
    std::cout << experiments::format_policy_table(rows);
    if (!ev->out.empty()) {
      std::ofstream out(ev->out, std::ios::binary | std::ios::trunc);
      out << experiments::policy_table_json(rows) << "\n";
      if (!out) throw IoError("cannot write " + ev->out);
    }
    exit_code = 0;
  });
}

}  // namespace troupe::cli
