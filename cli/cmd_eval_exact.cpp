// `troupe eval exact`: exact reward and KL of a tiny-vocabulary policy against its reference by enumerating every
// fixed-length response, plus the KL-regularised optimum for a list of β (experiments/exact_eval.h). Argument
// handling and printing only.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "cli/id_list.h"
#include "cli/options.h"
#include "core/device.h"
#include "core/errors.h"
#include "core/runtime.h"
#include "core/torch_runtime.h"
#include "experiments/exact_eval.h"
#include "models/gpt_checkpoint.h"

namespace troupe::cli {

void add_eval_exact_command(CLI::App& eval, int& exit_code) {
  struct Args {
    std::string policy, reference, pattern, json, dump_csv;
    std::vector<std::string> prompt_ids;
    std::vector<double> betas;
    int64_t all_prompts = 0, response_length = 4, batch_size = 8192;
    int threads = 0;
    std::string device = "auto";
  };
  auto args = std::make_shared<Args>();
  auto* cmd = eval.add_subcommand(
      "exact",
      "Exact E[r*] and KL(policy || reference) over every fixed-length response of a tiny-vocabulary model "
      "(no stop token), and the optimum pi*_beta ∝ pi_ref exp(r*/beta) for each --beta");
  cmd->add_option("--policy,-c", args->policy, "policy: Troupe run / checkpoint or Hugging Face GPT-2 directory")
      ->required();
  cmd->add_option("--reference,-r", args->reference, "reference policy (same forms)")->required();
  cmd->add_option("--prompt-ids", args->prompt_ids, "a prompt as comma-separated ids (repeatable)");
  cmd->add_option("--all-prompts", args->all_prompts,
                  "instead: every prompt of this many ids over [1, V) (the distribution of PPO's synthetic prompts)");
  cmd->add_option("--response-length,-L", args->response_length, "response tokens L (V^L responses per prompt)")
      ->capture_default_str();
  cmd->add_option("--pattern", args->pattern, "the true reward r*: target-pattern ids, comma-separated")->required();
  cmd->add_option("--beta", args->betas, "beta of an optimum pi*_beta to report (repeatable)");
  cmd->add_option("--batch-size", args->batch_size, "sequences per forward pass")->capture_default_str();
  cmd->add_option("--json", args->json, "also write the result as JSON to this file");
  cmd->add_option("--dump-csv", args->dump_csv,
                  "also write every (prompt, response) with both log-probs and r* as CSV");
  cmd->add_option("--threads", args->threads, "torch threads (0 = all cores)")->capture_default_str();
  add_device_option(cmd, args->device);
  cmd->callback([args, &exit_code] {
    core::set_threads(args->threads);
    models::Gpt policy = models::load_pretrained_gpt(args->policy);
    models::Gpt reference = models::load_pretrained_gpt(args->reference);
    const torch::Device device = core::resolve_device(args->device, core::local_rank(), "--device");
    policy->to(device);
    reference->to(device);
    experiments::ExactEvalOptions o;
    if (args->all_prompts > 0 && !args->prompt_ids.empty())
      throw ConfigError("give --prompt-ids or --all-prompts, not both");
    if (args->all_prompts > 0) {
      o.prompts = experiments::all_prompts(policy->config().vocab_size, args->all_prompts);
    } else {
      if (args->prompt_ids.empty()) throw ConfigError("give --prompt-ids (repeatable) or --all-prompts N");
      for (const auto& p : args->prompt_ids) o.prompts.push_back(parse_id_list<int64_t>(p, "--prompt-ids"));
    }
    o.response_length = args->response_length;
    o.betas = args->betas;
    o.batch_size = args->batch_size;
    rlhf::RewardFunctionConfig rc;
    rc.type = rlhf::RewardFunctionType::kPattern;
    rc.pattern = parse_id_list<int64_t>(args->pattern, "--pattern");
    const auto reward = rlhf::make_reward_function(rc);
    const experiments::ExactEvalResult r = experiments::exact_eval(policy, reference, *reward, o);
    std::cout << fmt::format("{} prompts x {} responses of {} tokens (probability mass error {:.2e})\n", r.prompts,
                             r.responses, o.response_length, r.max_mass_error);
    std::cout << fmt::format("{:<12} {:>10} {:>12} {:>12}\n", "", "beta", "E[r*]", "KL");
    std::cout << fmt::format("{:<12} {:>10} {:>12.6f} {:>12.6f}\n", "policy", "-", r.policy.reward, r.policy.kl);
    std::cout << fmt::format("{:<12} {:>10} {:>12.6f} {:>12.6f}\n", "reference", "-", r.reference.reward,
                             r.reference.kl);
    for (const auto& p : r.optimum)
      std::cout << fmt::format("{:<12} {:>10.4g} {:>12.6f} {:>12.6f}\n", "optimum", p.beta, p.reward, p.kl);
    if (!args->json.empty()) {
      std::ofstream out(args->json);
      out << experiments::exact_eval_json(r) << "\n";
      if (!out.flush()) throw IoError("cannot write " + args->json);
    }
    if (!args->dump_csv.empty()) experiments::write_distribution_csv(args->dump_csv, policy, reference, *reward, o);
    exit_code = 0;
  });
}

}  // namespace troupe::cli
