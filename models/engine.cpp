// Implementation of models/engine.h: the scheduler (admission by block reservation, chunked prefill, one decode
// token per running sequence per step, forking a shared prompt into its samples, releasing finished sequences) and
// per-sample token choice from counter-based random numbers. The forward step is engine_forward.cpp.
#include "models/engine.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <numeric>

#include "core/errors.h"
#include "core/seeding.h"
#include "models/engine_impl.h"
#include "models/engine_kernels.h"

namespace troupe::models {

// Named (not anonymous) because RolloutEngine::Impl, declared in the header, holds Seqs: in a unity build an
// anonymous type there warns (-Wsubobject-linkage).
namespace engine_detail {

struct Seq {
  size_t request = 0, sample = 0;
  bool parent = false;  // prefills a prompt shared by the request's samples, then forks into them
  std::vector<int64_t> tokens;
  int64_t prompt_len = 0, computed = 0, reserved = 0;
  std::vector<int64_t> blocks;
  uint64_t seed = 0;
  std::vector<float> logprobs;
  bool done = false, stopped = false;
};

}  // namespace engine_detail

using engine_detail::Seq;

namespace {

// A uniform double in [0, 1) from (seed, step): splitmix64 of a counter, so a sample's draws depend on nothing else.
double uniform(uint64_t seed, int64_t step) {
  const uint64_t z = core::splitmix64(seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(step));
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

struct Choice {
  int64_t token = 0;
  float logprob = 0.0f;
};

// The next token from one row of logits: greedy, or a draw from softmax(logits / T) restricted to top-k and then
// top-p (renormalised), walking the kept tokens in order of decreasing probability (index order when unfiltered).
// Unfiltered, the walk runs over 16-token blocks: their sums (engine_kernels::exp_sum's, a fixed order) are added
// in double until the next block would pass the target, then that block's tokens one by one; the total mass is the
// same block sums added in the same order, so a draw depends on the row and its own number only.
Choice choose(const float* logits, int64_t V, const SamplingParams& p, uint64_t seed, int64_t step) {
  const float inv_t = static_cast<float>(1.0 / p.temperature);
  const float mx = engine_kernels::max_value(logits, V);
  int64_t best = std::find(logits, logits + V, mx) - logits;
  if (best == V) best = 0;  // no number among the logits
  const int64_t n_blocks = (V + 15) / 16;
  thread_local std::vector<float> e, block_sums;
  e.resize(static_cast<size_t>(V));
  block_sums.resize(static_cast<size_t>(n_blocks));
  const float total = engine_kernels::exp_sum(logits, V, mx, inv_t, e.data(), block_sums.data());
  const float log_total = std::log(total);
  auto logprob = [&](int64_t i) { return (logits[i] - mx) * inv_t - log_total; };
  if (!p.do_sample) return {best, logprob(best)};
  const bool filtered = (p.top_k > 0 && p.top_k < V) || p.top_p < 1.0;
  if (!filtered) {
    double mass = 0.0;
    for (const float b : block_sums) mass += b;
    const double target = uniform(seed, step) * mass;
    double acc = 0.0;
    int64_t pick = best;
    for (int64_t b = 0; b < n_blocks; ++b) {
      const float sum = block_sums[static_cast<size_t>(b)];
      if (acc + sum <= target) {
        acc += sum;
        continue;
      }
      for (int64_t i = b * 16; i < std::min(V, b * 16 + 16); ++i) {  // the block that passes the target
        if (e[static_cast<size_t>(i)] <= 0.0f) continue;
        pick = i;
        acc += e[static_cast<size_t>(i)];
        if (acc > target) return {pick, logprob(pick)};
      }
    }
    return {pick, logprob(pick)};  // rounding left the target just out of reach: the last token walked
  }
  std::vector<int64_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  auto by_prob = [&](int64_t a, int64_t b) {
    return e[static_cast<size_t>(a)] > e[static_cast<size_t>(b)] ||
           (e[static_cast<size_t>(a)] == e[static_cast<size_t>(b)] && a < b);
  };
  const int64_t k = p.top_k > 0 ? std::min(p.top_k, V) : V;
  std::partial_sort(order.begin(), order.begin() + k, order.end(), by_prob);
  order.resize(static_cast<size_t>(k));
  if (p.top_p < 1.0) {
    double kept = 0.0;
    for (int64_t i : order) kept += e[static_cast<size_t>(i)];
    double cum = 0.0;
    size_t n = 0;
    while (n < order.size()) {
      cum += e[static_cast<size_t>(order[n++])] / kept;
      if (cum >= p.top_p) break;
    }
    order.resize(n);
  }
  double mass = 0.0;
  for (const int64_t i : order) mass += e[static_cast<size_t>(i)];
  const double target = uniform(seed, step) * mass;
  double acc = 0.0;
  int64_t pick = order.front();
  for (const int64_t i : order) {
    if (e[static_cast<size_t>(i)] <= 0.0f) continue;
    pick = i;
    acc += e[static_cast<size_t>(i)];
    if (acc > target) break;
  }
  return {pick, logprob(pick)};
}

int64_t blocks_for(int64_t positions, int64_t block_size) { return (positions + block_size - 1) / block_size; }

}  // namespace

struct RolloutEngine::Impl {
  EngineOptions options;
  EngineModel model;
  BlockAllocator blocks;
  EngineStats stats;

  Impl(Gpt& m, const EngineOptions& o) : options(o), model(m, o.block_size, o.bf16_weights, o.share_weights) {}

  void validate(const std::vector<RolloutRequest>& requests) const;
  std::deque<Seq> queue(const std::vector<RolloutRequest>& requests) const;
  int64_t reservation(const Seq& s, const RolloutRequest& r) const;
  struct Run {  // one run()'s sequences
    std::deque<Seq> waiting;
    std::vector<Seq> running;
    std::vector<RolloutSample> out;
    int64_t reserved = 0;  // blocks reserved by the running sequences
  };
  std::vector<RolloutSample> run(const std::vector<RolloutRequest>& requests, const RolloutStopFn& stop);
  void admit(Run& run, const std::vector<RolloutRequest>& requests) const;
  std::vector<std::pair<size_t, int64_t>> choosers(Run& run, const std::vector<size_t>& wanting,
                                                   const std::vector<RolloutRequest>& requests);
  void append_tokens(Run& run, const std::vector<std::pair<size_t, int64_t>>& rows, const torch::Tensor& logits,
                     const std::vector<RolloutRequest>& requests, const RolloutStopFn& stop);
  void retire(Run& run);
  std::vector<StepToken> plan_step(std::vector<Seq>& running, std::vector<size_t>& wanting);
  void fork(Seq& parent, const RolloutRequest& r, std::vector<Seq>& into);
  void release(Seq& s) {
    for (int64_t b : s.blocks) blocks.release(b);
    s.blocks.clear();
  }
};

void RolloutEngine::Impl::validate(const std::vector<RolloutRequest>& requests) const {
  const GptConfig& c = model.config();
  for (size_t i = 0; i < requests.size(); ++i) {
    const RolloutRequest& r = requests[i];
    const std::string what = "rollout request " + std::to_string(i) + ": ";
    if (r.prompt.empty()) throw ConfigError(what + "empty prompt");
    if (r.seeds.empty()) throw ConfigError(what + "needs at least one seed (one per sample)");
    const SamplingParams& p = r.params;
    if (p.max_new_tokens < 1 || p.temperature <= 0 || p.top_k < 0 || p.top_p <= 0 || p.top_p > 1)
      throw ConfigError(what + "max_new_tokens >= 1, temperature > 0, top_k >= 0 and top_p in (0, 1] are needed");
    if (static_cast<int64_t>(r.prompt.size()) + p.max_new_tokens > c.block_size)
      throw ConfigError(what + "prompt (" + std::to_string(r.prompt.size()) + ") + max_new_tokens (" +
                        std::to_string(p.max_new_tokens) + ") exceeds block_size " + std::to_string(c.block_size));
    for (int64_t t : r.prompt)
      if (t < 0 || t >= c.vocab_size)
        throw ConfigError(what + "token id " + std::to_string(t) + " outside the vocabulary");
  }
}

std::deque<Seq> RolloutEngine::Impl::queue(const std::vector<RolloutRequest>& requests) const {
  std::deque<Seq> q;
  for (size_t i = 0; i < requests.size(); ++i) {
    const RolloutRequest& r = requests[i];
    const bool share = options.prefix_sharing && r.seeds.size() > 1;
    for (size_t s = 0; s < (share ? 1 : r.seeds.size()); ++s) {
      Seq seq;
      seq.request = i;
      seq.sample = s;
      seq.parent = share;
      seq.tokens = r.prompt;
      seq.prompt_len = static_cast<int64_t>(r.prompt.size());
      seq.seed = r.seeds[s];
      q.push_back(std::move(seq));
    }
  }
  return q;
}

// Blocks a queued sequence may need at most (all of its samples when it is a shared prompt).
int64_t RolloutEngine::Impl::reservation(const Seq& s, const RolloutRequest& r) const {
  const int64_t bs = options.block_size, total = blocks_for(s.prompt_len + r.params.max_new_tokens, bs);
  if (!s.parent) return total;
  const int64_t shared = s.prompt_len / bs;
  return shared + static_cast<int64_t>(r.seeds.size()) * (total - shared) + 1;
}

void RolloutEngine::Impl::fork(Seq& parent, const RolloutRequest& r, std::vector<Seq>& into) {
  const int64_t bs = options.block_size, full = parent.prompt_len / bs;
  const bool partial = parent.prompt_len % bs != 0;
  for (size_t s = 0; s < r.seeds.size(); ++s) {
    Seq child;
    child.request = parent.request;
    child.sample = s;
    child.tokens = parent.tokens;
    child.prompt_len = child.computed = parent.prompt_len;
    child.seed = r.seeds[s];
    child.reserved = blocks_for(parent.prompt_len + r.params.max_new_tokens, bs) - full;
    for (int64_t b = 0; b < full; ++b) {
      blocks.retain(parent.blocks[static_cast<size_t>(b)]);
      child.blocks.push_back(parent.blocks[static_cast<size_t>(b)]);
    }
    if (partial) {  // copy-on-write: each sample writes its own tail of the prompt's last block
      const int64_t copy = blocks.allocate();
      model.ensure_capacity(blocks.capacity());
      model.copy_block(parent.blocks.back(), copy);
      child.blocks.push_back(copy);
    }
    parent.reserved -= child.reserved;  // the sample's own blocks are its reservation from now on
    into.push_back(std::move(child));
  }
  release(parent);
}

std::vector<StepToken> RolloutEngine::Impl::plan_step(std::vector<Seq>& running, std::vector<size_t>& wanting) {
  std::vector<StepToken> step;
  int64_t budget = options.max_step_tokens;
  const int64_t bs = options.block_size;
  for (size_t i = 0; i < running.size(); ++i) {
    Seq& s = running[i];
    const int64_t pending = static_cast<int64_t>(s.tokens.size()) - s.computed;
    const bool decode = pending == 1 && s.computed > 0;
    const int64_t take = decode ? 1 : std::min(pending, budget);
    if (take <= 0) continue;
    if (!decode) budget -= take;
    while (static_cast<int64_t>(s.blocks.size()) < blocks_for(s.computed + take, bs))
      s.blocks.push_back(blocks.allocate());
    for (int64_t j = 0; j < take; ++j) {
      StepToken t;
      t.position = s.computed + j;
      t.id = s.tokens[static_cast<size_t>(t.position)];
      t.blocks = &s.blocks;
      t.wants_logits = j == take - 1 && s.computed + take == static_cast<int64_t>(s.tokens.size());
      step.push_back(t);
    }
    s.computed += take;
    if (step.back().wants_logits) wanting.push_back(i);
  }
  model.ensure_capacity(blocks.capacity());
  return step;
}

// Moves queued sequences into the running batch while max_batch and max_kv_blocks allow (always at least one when
// nothing runs, so a request wider than max_batch still runs, alone).
void RolloutEngine::Impl::admit(Run& run, const std::vector<RolloutRequest>& requests) const {
  while (!run.waiting.empty()) {
    const Seq& next = run.waiting.front();
    const RolloutRequest& r = requests[next.request];
    const int64_t need = reservation(next, r);
    const int64_t width = next.parent ? static_cast<int64_t>(r.seeds.size()) : 1;
    const bool fits = static_cast<int64_t>(run.running.size()) + width <= options.max_batch &&
                      (options.max_kv_blocks == 0 || run.reserved + need <= options.max_kv_blocks);
    if (!fits && !run.running.empty()) return;
    if (!fits && options.max_kv_blocks > 0 && need > options.max_kv_blocks)
      throw ConfigError("rollout engine: request " + std::to_string(next.request) + " needs " + std::to_string(need) +
                        " KV blocks, more than max_kv_blocks " + std::to_string(options.max_kv_blocks));
    run.running.push_back(std::move(run.waiting.front()));
    run.running.back().reserved = need;
    run.reserved += need;
    run.waiting.pop_front();
  }
}

// The sequences that choose a token from this step's logits, as (index in run.running, logits row): each sequence
// that finished its prompt or decoded, and for a shared prompt, each of its samples (forked here; the parent is done).
std::vector<std::pair<size_t, int64_t>> RolloutEngine::Impl::choosers(Run& run, const std::vector<size_t>& wanting,
                                                                      const std::vector<RolloutRequest>& requests) {
  std::vector<Seq> forked;
  std::vector<std::pair<size_t, int64_t>> rows;
  const size_t base = run.running.size();
  for (size_t w = 0; w < wanting.size(); ++w) {
    Seq& s = run.running[wanting[w]];
    if (static_cast<int64_t>(s.tokens.size()) == s.prompt_len) stats.prompt_tokens += s.prompt_len;
    if (!s.parent) {
      rows.emplace_back(wanting[w], static_cast<int64_t>(w));
      continue;
    }
    const size_t first = forked.size();
    fork(s, requests[s.request], forked);
    for (size_t f = first; f < forked.size(); ++f) rows.emplace_back(base + f, static_cast<int64_t>(w));
    s.done = true;
  }
  for (Seq& f : forked) run.running.push_back(std::move(f));
  return rows;
}

// Chooses (in parallel: each sample's draw depends on its own seed only) and appends every chooser's token, then
// marks the samples a stop token, the stop callback or max_new_tokens ends.
void RolloutEngine::Impl::append_tokens(Run& run, const std::vector<std::pair<size_t, int64_t>>& rows,
                                        const torch::Tensor& logits, const std::vector<RolloutRequest>& requests,
                                        const RolloutStopFn& stop) {
  std::vector<Choice> choices(rows.size());
  const int64_t V = logits.size(1);
  const float* L = logits.data_ptr<float>();
  at::parallel_for(0, static_cast<int64_t>(rows.size()), 4, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) {
      const auto& [index, row] = rows[static_cast<size_t>(j)];
      const Seq& s = run.running[index];
      const int64_t step = static_cast<int64_t>(s.tokens.size()) - s.prompt_len;
      choices[static_cast<size_t>(j)] = choose(L + row * V, V, requests[s.request].params, s.seed, step);
    }
  });
  for (size_t j = 0; j < rows.size(); ++j) {
    Seq& s = run.running[rows[j].first];
    const SamplingParams& p = requests[s.request].params;
    s.tokens.push_back(choices[j].token);
    s.logprobs.push_back(choices[j].logprob);
    ++stats.generated_tokens;
    const std::vector<int64_t> fresh(s.tokens.begin() + s.prompt_len, s.tokens.end());
    const bool stop_token =
        std::find(p.stop_tokens.begin(), p.stop_tokens.end(), choices[j].token) != p.stop_tokens.end();
    s.stopped = stop_token || (stop && stop(s.request, s.sample, fresh));
    s.done = s.stopped || static_cast<int64_t>(fresh.size()) >= p.max_new_tokens;
  }
}

// Releases the blocks and reservations of finished sequences and records finished samples.
void RolloutEngine::Impl::retire(Run& run) {
  std::vector<Seq> still;
  for (Seq& s : run.running) {
    if (!s.done) {
      still.push_back(std::move(s));
      continue;
    }
    release(s);
    run.reserved -= s.reserved;
    if (s.parent) continue;  // a shared prompt, forked into its samples
    RolloutSample r;
    r.request = s.request;
    r.sample = s.sample;
    r.tokens.assign(s.tokens.begin() + s.prompt_len, s.tokens.end());
    r.logprobs = std::move(s.logprobs);
    r.stopped = s.stopped;
    run.out.push_back(std::move(r));
  }
  run.running = std::move(still);
}

std::vector<RolloutSample> RolloutEngine::Impl::run(const std::vector<RolloutRequest>& requests,
                                                    const RolloutStopFn& stop) {
  validate(requests);
  stats = EngineStats();
  stats.kv_block_bytes = model.block_bytes();
  blocks.reset_peak();
  Run run;
  run.waiting = queue(requests);
  while (!run.waiting.empty() || !run.running.empty()) {
    admit(run, requests);
    std::vector<size_t> wanting;
    const std::vector<StepToken> step = plan_step(run.running, wanting);
    const torch::Tensor logits = model.step(step);
    ++stats.steps;
    append_tokens(run, choosers(run, wanting, requests), logits, requests, stop);
    retire(run);
  }
  stats.peak_kv_blocks = blocks.peak();
  std::sort(run.out.begin(), run.out.end(), [](const RolloutSample& a, const RolloutSample& b) {
    return a.request != b.request ? a.request < b.request : a.sample < b.sample;
  });
  return std::move(run.out);
}

RolloutEngine::RolloutEngine(Gpt& model, EngineOptions options) : impl_(std::make_unique<Impl>(model, options)) {
  if (options.max_batch < 1 || options.max_step_tokens < 1 || options.max_kv_blocks < 0)
    throw ConfigError("rollout engine: max_batch and max_step_tokens must be >= 1, max_kv_blocks >= 0");
}

RolloutEngine::~RolloutEngine() = default;

void RolloutEngine::load_weights(Gpt& model) { impl_->model.load(model); }

std::vector<RolloutSample> RolloutEngine::run(const std::vector<RolloutRequest>& requests, const RolloutStopFn& stop) {
  return impl_->run(requests, stop);
}

const EngineStats& RolloutEngine::stats() const { return impl_->stats; }

}  // namespace troupe::models
