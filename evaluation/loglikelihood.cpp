#include "evaluation/loglikelihood.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <map>

#include "core/errors.h"

namespace troupe::evaluation {
namespace {

// The KV cache of one prefix, repeated for `rows` continuations.
models::KvCache repeat_cache(const models::KvCache& one, const models::GptConfig& config, int64_t rows,
                             int64_t capacity) {
  models::KvCache out;
  out.capacity = capacity;
  out.length = one.length;
  for (size_t l = 0; l < one.k.size(); ++l) {
    auto make = [&](const torch::Tensor& t) {
      torch::Tensor big = torch::empty({rows, t.size(1), capacity, t.size(3)}, t.options());
      big.narrow(2, 0, one.length).copy_(t.narrow(2, 0, one.length).expand({rows, -1, -1, -1}));
      return big;
    };
    out.k.push_back(make(one.k[l]));
    out.v.push_back(make(one.v[l]));
  }
  return out;
}

}  // namespace

std::vector<ContinuationScore> score_continuations(models::Gpt& model, const std::vector<ContinuationRequest>& requests,
                                                   int64_t batch_size) {
  const models::GptConfig& config = model->config();
  const int64_t block = config.block_size;
  const torch::Device device = model->device();
  if (batch_size < 1)
    throw ConfigError(fmt::format("score_continuations: batch_size must be >= 1, got {}", batch_size));

  // The fed prefix of each request after lm-eval's truncation, grouped: requests with the same prefix share its run.
  std::map<std::vector<int64_t>, std::vector<size_t>> groups;
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& r = requests[i];
    if (r.context.empty() || r.continuation.empty()) {
      throw DataError(
          fmt::format("log-likelihood request {}: empty {}", i + 1, r.context.empty() ? "context" : "continuation"));
    }
    const auto cont = static_cast<int64_t>(r.continuation.size());
    if (cont > block) {
      throw DataError(fmt::format(
          "log-likelihood request {}: continuation of {} tokens exceeds the model's {} positions", i + 1, cont, block));
    }
    const auto ctx = static_cast<int64_t>(r.context.size());
    // Keep the last block + 1 tokens of context + continuation: the context keeps its last min(ctx, block + 1 - cont).
    const int64_t keep = std::min(ctx, block + 1 - cont);
    groups[std::vector<int64_t>(r.context.end() - keep, r.context.end())].push_back(i);
  }

  std::vector<ContinuationScore> out(requests.size());
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  for (const auto& [prefix, members] : groups) {
    const auto p = static_cast<int64_t>(prefix.size());
    int64_t longest = 0;
    for (size_t i : members)
      longest = std::max<int64_t>(longest, static_cast<int64_t>(requests[i].continuation.size()));
    // The prefix runs once; its last position predicts every continuation's first token.
    models::KvCache prefix_cache(config, 1, p, torch::kFloat32, device);
    models::GptInput in;
    in.ids = torch::tensor(prefix, torch::kLong).unsqueeze(0).to(device);
    in.cache = &prefix_cache;
    const torch::Tensor hidden = model->hidden(in);
    const torch::Tensor first =
        torch::log_softmax(model->logits(hidden.select(1, p - 1)).to(torch::kFloat32), -1).squeeze(0).to(torch::kCPU);
    const auto first_a = first.accessor<float, 1>();
    const int64_t first_argmax = first.argmax().item<int64_t>();

    for (size_t start = 0; start < members.size(); start += static_cast<size_t>(batch_size)) {
      const size_t end = std::min(members.size(), start + static_cast<size_t>(batch_size));
      const auto rows = static_cast<int64_t>(end - start);
      // Continuations without their last token, right-padded (causal attention: padding after a row's real tokens
      // never reaches them), continue from the prefix's cache.
      torch::Tensor rest;
      if (longest > 1) {
        torch::Tensor ids = torch::zeros({rows, longest - 1}, torch::kLong);
        auto ids_a = ids.accessor<int64_t, 2>();
        for (int64_t r = 0; r < rows; ++r) {
          const auto& c = requests[members[start + static_cast<size_t>(r)]].continuation;
          for (size_t t = 0; t + 1 < c.size(); ++t) ids_a[r][static_cast<int64_t>(t)] = c[t];
        }
        models::KvCache cache = repeat_cache(prefix_cache, config, rows, p + longest - 1);
        models::GptInput cin;
        cin.ids = ids.to(device);
        cin.cache = &cache;
        rest = torch::log_softmax(model->logits(model->hidden(cin)).to(torch::kFloat32), -1).to(torch::kCPU);
      }
      for (int64_t r = 0; r < rows; ++r) {
        const size_t i = members[start + static_cast<size_t>(r)];
        const auto& c = requests[i].continuation;
        double sum = static_cast<double>(first_a[c[0]]);
        bool greedy = first_argmax == c[0];
        if (c.size() > 1) {
          const torch::Tensor row = rest[r];
          const auto n = static_cast<int64_t>(c.size()) - 1;
          const torch::Tensor targets = torch::tensor(std::vector<int64_t>(c.begin() + 1, c.end()), torch::kLong);
          const torch::Tensor lp = row.narrow(0, 0, n).gather(1, targets.unsqueeze(1)).squeeze(1);
          // lm-eval sums the gathered float32 log-probs as one float32 tensor before converting: do the same.
          sum = static_cast<double>(torch::cat({first.narrow(0, c[0], 1), lp}).sum().item<float>());
          greedy = greedy && row.narrow(0, 0, n).argmax(-1).equal(targets);
        }
        out[i] = {sum, greedy};
      }
    }
  }
  if (was_training) model->train();
  return out;
}

}  // namespace troupe::evaluation
