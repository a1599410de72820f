// Implementation of experiments/exact_eval.h: enumeration, batched sequence log-probs, exact expectations and the
// KL-regularised optimum, in float64 so KL values near 0 are not rounding noise.
#include "experiments/exact_eval.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "rlhf/rollout.h"

namespace troupe::experiments {
namespace {

at::Tensor prompts_tensor(const std::vector<std::vector<int64_t>>& prompts, int64_t vocab) {
  if (prompts.empty()) throw ConfigError("exact eval: no prompts");
  const size_t P = prompts[0].size();
  if (P == 0) throw ConfigError("exact eval: prompts need at least one token");
  std::vector<int64_t> flat;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].size() != P) {
      throw ConfigError(
          fmt::format("exact eval: prompt {} has {} tokens, prompt 0 has {}: all prompts must have one "
                      "length",
                      i, prompts[i].size(), P));
    }
    for (int64_t id : prompts[i]) {
      if (id < 0 || id >= vocab)
        throw ConfigError(fmt::format("exact eval: prompt {} has id {} outside the vocabulary [0, {})", i, id, vocab));
      flat.push_back(id);
    }
  }
  return torch::tensor(flat, torch::kInt64).view({static_cast<int64_t>(prompts.size()), static_cast<int64_t>(P)});
}

// Expectations under log-probs `logp` [N, M]: E[r] and KL against logp_ref, averaged over rows.
ExactPoint expectations(const at::Tensor& logp, const at::Tensor& logp_ref, const at::Tensor& reward, double beta) {
  const at::Tensor p = logp.exp();
  // 0 · log 0 = 0: a response the policy never emits contributes nothing even where log π = −inf.
  const at::Tensor kl_terms = torch::where(p > 0, p * (logp - logp_ref), torch::zeros_like(p));
  ExactPoint out;
  out.beta = beta;
  out.reward = (p * reward).sum(1).mean().item<double>();
  out.kl = kl_terms.sum(1).mean().item<double>();
  return out;
}

double mass_error(const at::Tensor& logp) { return (logp.exp().sum(1) - 1.0).abs().max().item<double>(); }

void check_pair(models::Gpt& policy, models::Gpt& reference, const ExactEvalOptions& o) {
  const auto& pc = policy->config();
  const auto& rc = reference->config();
  if (pc.vocab_size != rc.vocab_size) {
    throw ConfigError(fmt::format("exact eval: the policy's vocab_size {} differs from the reference's {}",
                                  pc.vocab_size, rc.vocab_size));
  }
  if (o.response_length < 1) throw ConfigError("exact eval: response length must be >= 1");
  for (double b : o.betas)
    if (!(b > 0)) throw ConfigError(fmt::format("exact eval: every beta must be > 0, got {}", b));
  if (o.batch_size < 1) throw ConfigError("exact eval: batch size must be >= 1");
  const int64_t total = static_cast<int64_t>(o.prompts.empty() ? 0 : o.prompts[0].size()) + o.response_length;
  if (total > std::min(pc.block_size, rc.block_size)) {
    throw ConfigError(fmt::format("exact eval: prompt + response = {} tokens exceeds the block size {}", total,
                                  std::min(pc.block_size, rc.block_size)));
  }
}

std::string join_ids(const at::Tensor& row) {
  std::string s;
  const auto* d = row.data_ptr<int64_t>();
  for (int64_t i = 0; i < row.numel(); ++i) s += (i ? " " : "") + std::to_string(d[i]);
  return s;
}

}  // namespace

at::Tensor enumerate_responses(int64_t vocab, int64_t length) {
  if (vocab < 1 || length < 1) throw ConfigError("exact eval: vocabulary and response length must be >= 1");
  int64_t m = 1;
  for (int64_t i = 0; i < length; ++i) {
    if (m > kMaxResponses / vocab) {
      throw ConfigError(fmt::format("exact eval: {}^{} responses is more than the {} that exact evaluation enumerates",
                                    vocab, length, kMaxResponses));
    }
    m *= vocab;
  }
  at::Tensor out = torch::empty({m, length}, torch::kInt64);
  auto* d = out.data_ptr<int64_t>();
  for (int64_t i = 0; i < m; ++i) {  // i written in base V, most significant digit first
    int64_t rest = i;
    for (int64_t t = length - 1; t >= 0; --t) {
      d[i * length + t] = rest % vocab;
      rest /= vocab;
    }
  }
  return out;
}

at::Tensor sequence_logprobs(models::Gpt& model, const at::Tensor& prompts, const at::Tensor& responses,
                             int64_t batch_size) {
  torch::NoGradGuard no_grad;
  model->eval();
  const int64_t N = prompts.size(0), P = prompts.size(1), M = responses.size(0), L = responses.size(1);
  // Row n * M + m of the flattened pair list is prompt n followed by response m.
  at::Tensor out = torch::empty({N * M}, torch::kFloat64);
  for (int64_t start = 0; start < N * M; start += batch_size) {
    const int64_t n = std::min(batch_size, N * M - start);
    const at::Tensor idx = torch::arange(start, start + n, torch::kInt64);
    rlhf::SequenceBatch b;
    b.sequences =
        torch::cat({prompts.index_select(0, idx.div(M, "floor")), responses.index_select(0, idx.remainder(M))},
                   1);  // [n, P + L]
    b.attention_mask = torch::ones({n, P + L}, torch::kInt64);
    b.response_mask = torch::ones({n, L}, torch::kFloat32);
    b.prompt_length = P;
    out.slice(0, start, start + n).copy_(rlhf::response_logprobs(model, b).logprobs.to(torch::kFloat64).sum(1));
  }
  return out.view({N, M});
}

at::Tensor reward_table(const rlhf::RewardFunction& reward, const at::Tensor& prompts, const at::Tensor& responses) {
  const int64_t N = prompts.size(0), M = responses.size(0);
  at::Tensor out = torch::empty({N, M}, torch::kFloat64);
  auto* d = out.data_ptr<double>();
  rlhf::RewardSample s;
  for (int64_t n = 0; n < N; ++n) {
    const at::Tensor p = prompts[n].contiguous();
    s.prompt.assign(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + p.numel());
    for (int64_t m = 0; m < M; ++m) {
      const at::Tensor r = responses[m].contiguous();
      s.response.assign(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
      d[n * M + m] = reward.score(s);
    }
  }
  return out;
}

ExactPoint exact_point(const at::Tensor& logp, const at::Tensor& logp_ref, const at::Tensor& reward) {
  return expectations(logp, logp_ref, reward, 0.0);
}

ExactPoint optimal_point(const at::Tensor& logp_ref, const at::Tensor& reward, double beta) {
  const at::Tensor unnorm = logp_ref + reward / beta;
  const at::Tensor logp = unnorm - unnorm.logsumexp(1, /*keepdim=*/true);
  return expectations(logp, logp_ref, reward, beta);
}

ExactEvalResult exact_eval(models::Gpt& policy, models::Gpt& reference, const rlhf::RewardFunction& reward,
                           const ExactEvalOptions& options) {
  check_pair(policy, reference, options);
  const at::Tensor prompts = prompts_tensor(options.prompts, policy->config().vocab_size);
  const at::Tensor responses = enumerate_responses(policy->config().vocab_size, options.response_length);
  const at::Tensor logp = sequence_logprobs(policy, prompts, responses, options.batch_size);
  const at::Tensor logp_ref = sequence_logprobs(reference, prompts, responses, options.batch_size);
  const at::Tensor r = reward_table(reward, prompts, responses);
  ExactEvalResult out;
  out.policy = exact_point(logp, logp_ref, r);
  out.reference = exact_point(logp_ref, logp_ref, r);
  for (double beta : options.betas) out.optimum.push_back(optimal_point(logp_ref, r, beta));
  out.max_mass_error = std::max(mass_error(logp), mass_error(logp_ref));
  out.prompts = prompts.size(0);
  out.responses = responses.size(0);
  return out;
}

std::vector<std::vector<int64_t>> all_prompts(int64_t vocab, int64_t length, int64_t first_id) {
  if (first_id < 0 || first_id >= vocab) throw ConfigError("exact eval: first prompt id outside the vocabulary");
  const at::Tensor digits = enumerate_responses(vocab - first_id, length) + first_id;
  std::vector<std::vector<int64_t>> out;
  const auto* d = digits.data_ptr<int64_t>();
  for (int64_t i = 0; i < digits.size(0); ++i) out.emplace_back(d + i * length, d + (i + 1) * length);
  return out;
}

void write_distribution_csv(const std::filesystem::path& path, models::Gpt& policy, models::Gpt& reference,
                            const rlhf::RewardFunction& reward, const ExactEvalOptions& options) {
  check_pair(policy, reference, options);
  const at::Tensor prompts = prompts_tensor(options.prompts, policy->config().vocab_size);
  const at::Tensor responses = enumerate_responses(policy->config().vocab_size, options.response_length);
  const at::Tensor logp = sequence_logprobs(policy, prompts, responses, options.batch_size);
  const at::Tensor logp_ref = sequence_logprobs(reference, prompts, responses, options.batch_size);
  const at::Tensor r = reward_table(reward, prompts, responses);
  std::ofstream out(path);
  if (!out) throw IoError("cannot write " + path.string());
  out << "prompt,response,logp_policy,logp_reference,reward\n";
  const int64_t N = prompts.size(0), M = responses.size(0);
  const auto* lp = logp.data_ptr<double>();
  const auto* lr = logp_ref.data_ptr<double>();
  const auto* rw = r.data_ptr<double>();
  std::vector<std::string> response_text;
  for (int64_t m = 0; m < M; ++m) response_text.push_back(join_ids(responses[m].contiguous()));
  for (int64_t n = 0; n < N; ++n) {
    const std::string prompt = join_ids(prompts[n].contiguous());
    for (int64_t m = 0; m < M; ++m) {
      const int64_t k = n * M + m;
      out << prompt << ',' << response_text[static_cast<size_t>(m)] << ','
          << fmt::format("{:.17g},{:.17g},{:.17g}\n", lp[k], lr[k], rw[k]);
    }
  }
  if (!out.flush()) throw IoError("cannot write " + path.string());
}

std::string exact_eval_json(const ExactEvalResult& r) {
  auto point = [](const ExactPoint& p) { return nlohmann::json{{"beta", p.beta}, {"reward", p.reward}, {"kl", p.kl}}; };
  nlohmann::json j{{"policy", point(r.policy)},
                   {"reference", point(r.reference)},
                   {"optimum", nlohmann::json::array()},
                   {"max_mass_error", r.max_mass_error},
                   {"prompts", r.prompts},
                   {"responses_per_prompt", r.responses}};
  for (const auto& p : r.optimum) j["optimum"].push_back(point(p));
  return j.dump(2);
}

}  // namespace troupe::experiments
