// Implementation of models/generation.h: a stepper that feeds new tokens with or without the KV cache, the
// sampling loop (processors in Hugging Face's order: repetition penalty, temperature, top-k, top-p) and beam search
// (finished hypotheses scored sum log p / length^length_penalty; a prompt is done once it has num_beams of them).
#include "models/generation.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <limits>

#include "core/errors.h"
#include "core/progress.h"
#include "models/engine.h"

namespace troupe::models {

void GenerationConfig::validate(core::ConfigValidator& v) const {
  v.require(max_new_tokens >= 1, "max_new_tokens", max_new_tokens, "an integer >= 1");
  v.require(temperature > 0, "temperature", temperature, "a positive number");
  v.require(top_k >= 0, "top_k", top_k, "an integer >= 0");
  v.require(top_p > 0 && top_p <= 1, "top_p", top_p, "a number in (0, 1]");
  v.require(repetition_penalty > 0, "repetition_penalty", repetition_penalty, "a positive number");
  v.require(num_beams >= 1, "num_beams", num_beams, "an integer >= 1");
  v.require(num_beams == 1 || !do_sample, "num_beams", num_beams,
            "1 when do_sample is true (beam search is deterministic)");
  v.require(pad_id >= 0, "pad_id", pad_id, "an integer >= 0");
}

void GenerationConfig::check() const {
  core::OriginMap origins;
  core::ConfigValidator validator(origins, "generation");
  validate(validator);
}

PaddedBatch left_pad(const std::vector<std::vector<int64_t>>& rows, int64_t pad_id) {
  size_t len = 0;
  for (const auto& r : rows) len = std::max(len, r.size());
  const auto B = static_cast<int64_t>(rows.size());
  const auto L = static_cast<int64_t>(len);
  PaddedBatch out;
  out.ids = torch::full({B, L}, pad_id, torch::kLong);
  out.mask = torch::zeros({B, L}, torch::kLong);
  out.positions = torch::zeros({B, L}, torch::kLong);
  auto ids = out.ids.accessor<int64_t, 2>();
  auto mask = out.mask.accessor<int64_t, 2>();
  auto pos = out.positions.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& r = rows[static_cast<size_t>(b)];
    const int64_t offset = L - static_cast<int64_t>(r.size());
    for (size_t i = 0; i < r.size(); ++i) {
      ids[b][offset + static_cast<int64_t>(i)] = r[i];
      mask[b][offset + static_cast<int64_t>(i)] = 1;
      pos[b][offset + static_cast<int64_t>(i)] = static_cast<int64_t>(i);
    }
  }
  return out;
}

namespace {

// Feeds tokens to the model on its device and returns the fp32 logits of each row's last position on the CPU, where
// all token choice happens (so a GPU and a CPU model given the same logits pick the same tokens, and sampling uses
// the CPU generator on every device). Costs one [B, V] copy per step on a GPU.
class Stepper {
 public:
  Stepper(Gpt& model, bool use_cache, int64_t batch, int64_t capacity)
      : model_(model), use_cache_(use_cache), device_(model->parameters().front().device()) {
    if (use_cache_) cache_ = KvCache(model->config(), batch, capacity, model->dtype(), device_);
  }

  torch::Tensor step(const torch::Tensor& ids_in, const torch::Tensor& mask_in, const torch::Tensor& positions_in) {
    const torch::Tensor ids = ids_in.to(device_), mask = mask_in.to(device_), positions = positions_in.to(device_);
    ids_ = ids_.defined() ? torch::cat({ids_, ids}, 1) : ids;
    mask_ = mask_.defined() ? torch::cat({mask_, mask}, 1) : mask;
    positions_ = positions_.defined() ? torch::cat({positions_, positions}, 1) : positions;
    GptInput in;
    in.attention_mask = mask_;
    if (use_cache_) {
      in.ids = ids;
      in.positions = positions;
      in.cache = &cache_;
    } else {
      in.ids = ids_;
      in.positions = positions_;
    }
    const torch::Tensor hidden = model_->hidden(in);
    return model_->logits(hidden.select(1, hidden.size(1) - 1)).to(torch::kCPU, torch::kFloat32);
  }

  void reorder(const torch::Tensor& rows_in) {
    const torch::Tensor rows = rows_in.to(device_);
    ids_ = ids_.index_select(0, rows);
    mask_ = mask_.index_select(0, rows);
    positions_ = positions_.index_select(0, rows);
    if (use_cache_) cache_.reorder(rows);
  }

 private:
  Gpt& model_;
  bool use_cache_;
  torch::Device device_;
  KvCache cache_;
  torch::Tensor ids_, mask_, positions_;
};

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

torch::Tensor apply_repetition_penalty(const torch::Tensor& logits, const torch::Tensor& seen, double penalty) {
  if (penalty == 1.0) return logits;
  const torch::Tensor penalised = torch::where(logits > 0, logits / penalty, logits * penalty);
  return torch::where(seen, penalised, logits);
}

torch::Tensor top_k_filter(const torch::Tensor& logits, int64_t k) {
  if (k <= 0 || k >= logits.size(-1)) return logits;
  const torch::Tensor kth = std::get<0>(logits.topk(k, -1)).select(-1, k - 1).unsqueeze(-1);
  return logits.masked_fill(logits < kth, kNegInf);
}

torch::Tensor top_p_filter(const torch::Tensor& logits, double p) {
  if (p >= 1.0) return logits;
  const auto sorted = logits.sort(-1, /*descending=*/true);
  const torch::Tensor values = std::get<0>(sorted), order = std::get<1>(sorted);
  const torch::Tensor probs = torch::softmax(values, -1);
  // Drop a token when the tokens ranked above it already reach p; the most likely token always stays.
  torch::Tensor drop = (probs.cumsum(-1) - probs) >= p;
  drop.select(-1, 0).fill_(false);
  return logits.masked_fill(torch::zeros_like(drop).scatter(-1, order, drop), kNegInf);
}

struct StopSet {
  std::vector<int64_t> ids;
  bool contains(int64_t t) const { return std::find(ids.begin(), ids.end(), t) != ids.end(); }
};

GenerationOutput sample_or_greedy(Gpt& model, const std::vector<std::vector<int64_t>>& prompts,
                                  const GenerationConfig& c) {
  const PaddedBatch p = left_pad(prompts, c.pad_id);
  const int64_t B = p.ids.size(0), L = p.ids.size(1), V = model->config().vocab_size;
  Stepper stepper(model, c.use_cache, B, L + c.max_new_tokens);
  torch::Tensor logits = stepper.step(p.ids, p.mask, p.positions);
  torch::Tensor next_pos = p.positions.select(1, L - 1) + 1;
  torch::Tensor seen = torch::zeros({B, V}, torch::kBool);
  if (c.repetition_penalty != 1.0) seen.scatter_(1, p.ids, p.mask.to(torch::kBool));
  at::Generator gen = at::detail::createCPUGenerator(c.seed);
  std::vector<at::Generator> row_gens;
  for (uint64_t s : c.row_seeds) row_gens.push_back(at::detail::createCPUGenerator(s));
  const StopSet stops{c.stop_tokens};

  GenerationOutput out;
  out.tokens.resize(static_cast<size_t>(B));
  out.logprobs.resize(static_cast<size_t>(B));
  out.stopped.assign(static_cast<size_t>(B), false);
  std::vector<bool> finished(static_cast<size_t>(B), false);
  for (int64_t step = 0; step < c.max_new_tokens; ++step) {
    core::progress_tick();
    const torch::Tensor base_logprobs = torch::log_softmax(logits / c.temperature, -1);
    torch::Tensor scores = apply_repetition_penalty(logits, seen, c.repetition_penalty);
    torch::Tensor next;
    if (c.do_sample) {
      scores = top_p_filter(top_k_filter(scores / c.temperature, c.top_k), c.top_p);
      const torch::Tensor probs = torch::softmax(scores, -1);
      if (row_gens.empty()) {
        next = torch::multinomial(probs, 1, /*replacement=*/false, gen).squeeze(1);
      } else {  // each unfinished row from its own generator; finished rows take pad_id (ignored below)
        next = torch::full({B}, c.pad_id, torch::kLong);
        for (int64_t b = 0; b < B; ++b) {
          if (finished[static_cast<size_t>(b)]) continue;
          next[b] = torch::multinomial(probs[b], 1, /*replacement=*/false, row_gens[static_cast<size_t>(b)])[0];
        }
      }
    } else {
      next = scores.argmax(-1);
    }
    const torch::Tensor chosen_lp = base_logprobs.gather(1, next.unsqueeze(1)).squeeze(1);
    auto next_a = next.accessor<int64_t, 1>();
    auto lp_a = chosen_lp.accessor<float, 1>();
    torch::Tensor input = torch::full({B, 1}, c.pad_id, torch::kLong);
    torch::Tensor input_mask = torch::zeros({B, 1}, torch::kLong);
    bool all_done = true;
    for (int64_t b = 0; b < B; ++b) {
      const auto bi = static_cast<size_t>(b);
      if (finished[bi]) continue;
      const int64_t t = next_a[b];
      out.tokens[bi].push_back(t);
      out.logprobs[bi].push_back(lp_a[b]);
      input[b][0] = t;
      input_mask[b][0] = 1;
      if (c.repetition_penalty != 1.0) seen[b][t] = true;
      if (stops.contains(t) || (c.stop_when && c.stop_when(bi, out.tokens[bi]))) {
        finished[bi] = true;
        out.stopped[bi] = true;
      } else {
        all_done = false;
      }
    }
    if (all_done || step + 1 == c.max_new_tokens) break;
    logits = stepper.step(input, input_mask, next_pos.unsqueeze(1));
    next_pos = next_pos + 1;
  }
  return out;
}

struct Hypothesis {
  double score;
  std::vector<int64_t> tokens;
  std::vector<float> logprobs;
  bool stopped;
};

GenerationOutput beam_search(Gpt& model, const std::vector<std::vector<int64_t>>& prompts, const GenerationConfig& c) {
  const int64_t K = c.num_beams;
  std::vector<std::vector<int64_t>> expanded;
  for (const auto& prompt : prompts) {
    for (int64_t j = 0; j < K; ++j) expanded.push_back(prompt);
  }
  const PaddedBatch p = left_pad(expanded, c.pad_id);
  const int64_t N = static_cast<int64_t>(prompts.size()), R = N * K, L = p.ids.size(1);
  const int64_t V = model->config().vocab_size;
  Stepper stepper(model, c.use_cache, R, L + c.max_new_tokens);
  torch::Tensor logits = stepper.step(p.ids, p.mask, p.positions);
  torch::Tensor next_pos = p.positions.select(1, L - 1) + 1;
  torch::Tensor seen = torch::zeros({R, V}, torch::kBool);
  if (c.repetition_penalty != 1.0) seen.scatter_(1, p.ids, p.mask.to(torch::kBool));
  const StopSet stops{c.stop_tokens};
  auto normalised = [&](double sum, size_t length) {
    return sum / std::pow(static_cast<double>(std::max<size_t>(length, 1)), c.length_penalty);
  };

  // Running beams: row r = prompt * K + j.
  std::vector<double> beam_score(static_cast<size_t>(R), 0.0);
  for (int64_t r = 0; r < R; ++r) beam_score[static_cast<size_t>(r)] = r % K == 0 ? 0.0 : -1e30;
  std::vector<std::vector<int64_t>> beam_tokens(static_cast<size_t>(R));
  std::vector<std::vector<float>> beam_logprobs(static_cast<size_t>(R));
  std::vector<std::vector<Hypothesis>> done_hyps(static_cast<size_t>(N));
  std::vector<bool> done(static_cast<size_t>(N), false);

  for (int64_t step = 0; step < c.max_new_tokens; ++step) {
    core::progress_tick();
    const torch::Tensor raw_lp = torch::log_softmax(logits, -1);
    const torch::Tensor lp = torch::log_softmax(apply_repetition_penalty(logits, seen, c.repetition_penalty), -1);
    const torch::Tensor totals =
        (lp + torch::tensor(beam_score, torch::kDouble).to(torch::kFloat32).unsqueeze(1)).view({N, K * V});
    const auto top = totals.topk(std::min<int64_t>(2 * K, K * V), 1);
    auto top_v = std::get<0>(top).accessor<float, 2>();
    auto top_i = std::get<1>(top).accessor<int64_t, 2>();
    auto raw_a = raw_lp.accessor<float, 2>();

    std::vector<int64_t> source(static_cast<size_t>(R));
    std::vector<int64_t> token(static_cast<size_t>(R), c.pad_id);
    std::vector<int64_t> live(static_cast<size_t>(R), 0);
    std::vector<double> new_score(static_cast<size_t>(R), -1e30);
    std::vector<std::vector<int64_t>> new_tokens(static_cast<size_t>(R));
    std::vector<std::vector<float>> new_logprobs(static_cast<size_t>(R));
    for (int64_t n = 0; n < N; ++n) {
      const auto ni = static_cast<size_t>(n);
      int64_t filled = 0;
      if (!done[ni]) {
        for (int64_t c_i = 0; c_i < top_i.size(1) && filled < K; ++c_i) {
          const int64_t beam = top_i[n][c_i] / V, t = top_i[n][c_i] % V;
          const int64_t from = n * K + beam;
          const auto fi = static_cast<size_t>(from);
          if (beam_score[fi] <= -1e29) continue;  // an unused initial beam
          std::vector<int64_t> toks = beam_tokens[fi];
          std::vector<float> lps = beam_logprobs[fi];
          toks.push_back(t);
          lps.push_back(raw_a[from][t]);
          const double total = top_v[n][c_i];
          if (stops.contains(t)) {
            if (c_i < K) done_hyps[ni].push_back({normalised(total, toks.size()), toks, lps, true});
            continue;
          }
          const auto r = static_cast<size_t>(n * K + filled);
          source[r] = from;
          token[r] = t;
          live[r] = 1;
          new_score[r] = total;
          new_tokens[r] = std::move(toks);
          new_logprobs[r] = std::move(lps);
          ++filled;
        }
        if (static_cast<int64_t>(done_hyps[ni].size()) >= K) done[ni] = true;
      }
      for (int64_t j = filled; j < K; ++j) {
        const auto r = static_cast<size_t>(n * K + j);
        source[r] = n * K;  // keep shapes: a dead row copying beam 0, fed padding
        token[r] = c.pad_id;
        live[r] = 0;
        new_score[r] = -1e30;
      }
      if (done[ni]) {
        for (int64_t j = 0; j < K; ++j) new_score[static_cast<size_t>(n * K + j)] = -1e30;
      }
    }
    beam_score = new_score;
    beam_tokens = std::move(new_tokens);
    beam_logprobs = std::move(new_logprobs);
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; }) || step + 1 == c.max_new_tokens) break;
    const torch::Tensor rows = torch::tensor(source, torch::kLong);
    stepper.reorder(rows);
    seen = seen.index_select(0, rows);
    next_pos = next_pos.index_select(0, rows);
    const torch::Tensor input = torch::tensor(token, torch::kLong).unsqueeze(1);
    if (c.repetition_penalty != 1.0)
      seen.scatter_(1, input, torch::tensor(live, torch::kLong).to(torch::kBool).unsqueeze(1));
    logits = stepper.step(input, torch::tensor(live, torch::kLong).unsqueeze(1), next_pos.unsqueeze(1));
    next_pos = next_pos + 1;
  }
  GenerationOutput out;
  for (int64_t n = 0; n < N; ++n) {
    auto& hyps = done_hyps[static_cast<size_t>(n)];
    if (!done[static_cast<size_t>(n)]) {
      for (int64_t j = 0; j < K; ++j) {
        const auto r = static_cast<size_t>(n * K + j);
        if (beam_score[r] > -1e29)
          hyps.push_back({normalised(beam_score[r], beam_tokens[r].size()), beam_tokens[r], beam_logprobs[r], false});
      }
    }
    const auto best = std::max_element(hyps.begin(), hyps.end(),
                                       [](const Hypothesis& a, const Hypothesis& b) { return a.score < b.score; });
    out.tokens.push_back(best->tokens);
    out.logprobs.push_back(best->logprobs);
    out.stopped.push_back(best->stopped);
  }
  return out;
}

}  // namespace

GenerationOutput generate(Gpt& model, const std::vector<std::vector<int64_t>>& prompts, const GenerationConfig& c) {
  c.check();
  if (prompts.empty()) throw ConfigError("generate: no prompts");
  size_t longest = 0;
  for (const auto& prompt : prompts) {
    if (prompt.empty()) throw ConfigError("generate: empty prompt (give at least one token)");
    longest = std::max(longest, prompt.size());
    for (int64_t t : prompt) {
      if (t < 0 || t >= model->config().vocab_size) {
        throw ConfigError("generate: prompt token " + std::to_string(t) + " outside the vocabulary of " +
                          std::to_string(model->config().vocab_size));
      }
    }
  }
  if (static_cast<int64_t>(longest) + c.max_new_tokens > model->config().block_size) {
    throw ConfigError("generate: prompt of " + std::to_string(longest) + " tokens + max_new_tokens " +
                      std::to_string(c.max_new_tokens) + " exceeds block_size " +
                      std::to_string(model->config().block_size));
  }
  if (c.stop_when && c.num_beams > 1)
    throw ConfigError("generate: stop_when is for greedy and sampling, not beam search");
  if (!c.row_seeds.empty() && c.row_seeds.size() != prompts.size()) {
    throw ConfigError("generate: " + std::to_string(c.row_seeds.size()) + " row_seeds for " +
                      std::to_string(prompts.size()) + " prompts");
  }
  if (paged_engine_runs(model, c)) return generate_paged(model, prompts, c);
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  GenerationOutput out;
  try {
    out = c.num_beams > 1 ? beam_search(model, prompts, c) : sample_or_greedy(model, prompts, c);
  } catch (...) {
    model->train(was_training);
    throw;
  }
  model->train(was_training);
  return out;
}

}  // namespace troupe::models
