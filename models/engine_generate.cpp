// models::generate's paged path (models/engine.h): GenerationConfig -> rollout requests (identical prompts grouped so
// their samples share the prompt's KV blocks) -> GenerationOutput rows in the caller's order. Not the engine itself.
#include <map>

#include "core/seeding.h"
#include "models/engine.h"
#include "models/generation.h"

namespace troupe::models {

namespace {

// Row i's seed when the caller gave no row_seeds: splitmix64 of (seed, i), so rows differ and nothing else matters.
uint64_t row_seed(uint64_t seed, size_t row) {
  return core::splitmix64(seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(row));
}

}  // namespace

bool paged_engine_runs(Gpt& model, const GenerationConfig& c) {
  return c.engine == GenerationEngine::kPaged && c.num_beams == 1 && c.repetition_penalty == 1.0 && c.use_cache &&
         model->device().is_cpu() &&
         !(model->config().llama() && model->config().rope_scaling == RopeScaling::kDynamic);
}

GenerationOutput generate_paged(Gpt& model, const std::vector<std::vector<int64_t>>& prompts,
                                const GenerationConfig& c) {
  SamplingParams params;
  params.max_new_tokens = c.max_new_tokens;
  params.do_sample = c.do_sample;
  params.temperature = c.temperature;
  params.top_k = c.top_k;
  params.top_p = c.top_p;
  params.stop_tokens = c.stop_tokens;
  std::vector<RolloutRequest> requests;
  std::map<std::vector<int64_t>, size_t> by_prompt;
  std::vector<std::vector<size_t>> rows;  // rows[request][sample] = caller's row
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto [it, fresh] = by_prompt.emplace(prompts[i], requests.size());
    if (fresh) {
      RolloutRequest r;
      r.prompt = prompts[i];
      r.params = params;
      r.seeds.clear();
      requests.push_back(std::move(r));
      rows.emplace_back();
    }
    requests[it->second].seeds.push_back(c.row_seeds.empty() ? row_seed(c.seed, i) : c.row_seeds[i]);
    rows[it->second].push_back(i);
  }
  RolloutStopFn stop;
  if (c.stop_when)
    stop = [&](size_t request, size_t sample, const std::vector<int64_t>& tokens) {
      return c.stop_when(rows[request][sample], tokens);
    };
  EngineOptions options;
  options.share_weights = true;  // the engine lives for this call only, while the model does not change
  RolloutEngine engine(model, options);
  const std::vector<RolloutSample> samples = engine.run(requests, stop);
  GenerationOutput out;
  out.tokens.resize(prompts.size());
  out.logprobs.resize(prompts.size());
  out.stopped.resize(prompts.size());
  for (const RolloutSample& s : samples) {
    const size_t row = rows[s.request][s.sample];
    out.tokens[row] = s.tokens;
    out.logprobs[row] = s.logprobs;
    out.stopped[row] = s.stopped;
  }
  return out;
}

}  // namespace troupe::models
