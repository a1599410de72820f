// Implementation of experiments/registry.h: the table of kinds.
#include "experiments/registry.h"

#include "core/errors.h"
#include "experiments/lm_training.h"
#include "experiments/pipeline.h"
#include "experiments/ppo_experiment.h"
#include "experiments/preference_training.h"
#include "experiments/quickstart.h"

namespace troupe::experiments {

const std::vector<ExperimentKind>& experiment_kinds() {
  static const std::vector<ExperimentKind> kinds = {quickstart_kind(), pretrain_kind(), sft_kind(),     rm_kind(),
                                                    dpo_kind(),        ppo_kind(),      pipeline_kind()};
  return kinds;
}

const ExperimentKind& find_kind(const core::ConfigNode& tree) {
  std::vector<std::string> names;
  for (const auto& k : experiment_kinds()) names.push_back(k.name);
  std::string valid;
  for (const auto& n : names) valid += (valid.empty() ? "" : ", ") + n;

  const core::ConfigNode* kind = tree.find("kind");
  if (!kind || !kind->is_scalar())
    throw ConfigError(tree.origin().describe() + ": missing top-level key 'kind' (one of: " + valid + ")");
  for (const auto& k : experiment_kinds())
    if (k.name == kind->text()) return k;
  std::string msg = kind->origin().describe() + ": kind = " + kind->text() + ": unknown experiment kind";
  const std::string guess = core::nearest_key(kind->text(), names);
  if (!guess.empty()) msg += " (did you mean '" + guess + "'?)";
  throw ConfigError(msg + "; valid kinds: " + valid);
}

}  // namespace troupe::experiments
