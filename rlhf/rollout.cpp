// Implementation of rlhf/rollout.h.
#include "rlhf/rollout.h"

#include <torch/torch.h>

#include <algorithm>

#include "core/errors.h"
#include "core/seeding.h"
#include "data/packing.h"
#include "rlhf/ppo_math.h"

namespace troupe::rlhf {

SequenceBatch SequenceBatch::select(const at::Tensor& rows) const {
  const at::Tensor idx = rows.to(sequences.device());
  SequenceBatch s;
  s.sequences = sequences.index_select(0, idx);
  s.attention_mask = attention_mask.index_select(0, idx);
  s.response_mask = response_mask.index_select(0, idx);
  s.prompt_length = prompt_length;
  return s;
}

Rollout select_rows(const Rollout& rollout, const at::Tensor& idx) {
  Rollout r;
  static_cast<SequenceBatch&>(r) = rollout.select(idx);
  const at::Tensor i = idx.to(rollout.eos.device());
  r.eos = rollout.eos.index_select(0, i);
  r.sample_logprobs = rollout.sample_logprobs.index_select(0, i);
  return r;
}

Rollout concat_rollouts(const std::vector<Rollout>& parts, int64_t pad_id) {
  if (parts.empty()) throw DataError("concat_rollouts: no rollouts");
  int64_t P = 0, T = 0;
  for (const Rollout& r : parts) {
    P = std::max(P, r.prompt_length);
    T = std::max(T, r.response_length());
  }
  std::vector<torch::Tensor> seqs, attn, resp, eos, logp;
  for (const Rollout& r : parts) {
    const int64_t left = P - r.prompt_length, right = T - r.response_length();
    namespace F = torch::nn::functional;
    const auto pad = [&](const torch::Tensor& x, int64_t l, int64_t rr, double value) {
      return F::pad(x, F::PadFuncOptions({l, rr}).value(value));
    };
    const torch::Tensor prompt = r.sequences.slice(1, 0, r.prompt_length);
    const torch::Tensor response = r.sequences.slice(1, r.prompt_length);
    seqs.push_back(torch::cat(
        {pad(prompt, left, 0, static_cast<double>(pad_id)), pad(response, 0, right, static_cast<double>(pad_id))}, 1));
    attn.push_back(pad(r.attention_mask, left, right, 0.0));
    resp.push_back(pad(r.response_mask, 0, right, 0.0));
    logp.push_back(pad(r.sample_logprobs, 0, right, 0.0));
    eos.push_back(r.eos);
  }
  Rollout out;
  out.sequences = torch::cat(seqs, 0);
  out.attention_mask = torch::cat(attn, 0);
  out.response_mask = torch::cat(resp, 0);
  out.sample_logprobs = torch::cat(logp, 0);
  out.eos = torch::cat(eos, 0);
  out.prompt_length = P;
  return out;
}

at::Tensor positions_of(const at::Tensor& attention_mask) {
  return (attention_mask.to(torch::kLong).cumsum(1) - 1).clamp_min(0);
}

Rollout generate_rollout(models::Gpt& model, const at::Tensor& prompt_ids, const at::Tensor& prompt_mask,
                         models::GenerationConfig config, uint64_t seed) {
  const int64_t B = prompt_ids.size(0), P = prompt_ids.size(1);
  std::vector<std::vector<int64_t>> prompts(static_cast<size_t>(B));
  const torch::Tensor ids = prompt_ids.contiguous().cpu(), mask = prompt_mask.contiguous().cpu();  // read per token
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < P; ++t) {
      if (mask[b][t].item<int64_t>() != 0) prompts[static_cast<size_t>(b)].push_back(ids[b][t].item<int64_t>());
    }
  }
  config.seed = seed;
  const models::GenerationOutput out = models::generate(model, prompts, config);
  int64_t T = 1;
  for (const auto& row : out.tokens) T = std::max<int64_t>(T, static_cast<int64_t>(row.size()));
  torch::Tensor response = torch::full({B, T}, config.pad_id, torch::kLong);
  torch::Tensor response_mask = torch::zeros({B, T}, torch::kFloat32);
  torch::Tensor sample_logprobs = torch::zeros({B, T}, torch::kFloat32);
  torch::Tensor eos = torch::zeros({B}, torch::kFloat32);
  for (int64_t b = 0; b < B; ++b) {
    const auto& row = out.tokens[static_cast<size_t>(b)];
    const auto& lp = out.logprobs[static_cast<size_t>(b)];
    for (size_t t = 0; t < row.size(); ++t) {
      response[b][static_cast<int64_t>(t)] = row[t];
      response_mask[b][static_cast<int64_t>(t)] = 1.0f;
      sample_logprobs[b][static_cast<int64_t>(t)] = lp[t];
    }
    eos[b] = out.stopped[static_cast<size_t>(b)] ? 1.0f : 0.0f;
  }
  Rollout r;
  r.sequences = torch::cat({ids, response}, 1);
  r.attention_mask = torch::cat({mask.to(torch::kLong), response_mask.to(torch::kLong)}, 1);
  r.response_mask = response_mask;
  r.prompt_length = P;
  r.eos = eos;
  r.sample_logprobs = sample_logprobs;
  return r;
}

namespace {

// Hidden states at the positions that predict the response tokens: [B, T, C].
torch::Tensor response_hidden(models::Gpt& model, const SequenceBatch& b) {
  const int64_t L = b.sequences.size(1), P = b.prompt_length;
  models::GptInput in;
  in.ids = b.sequences.slice(1, 0, L - 1);
  in.attention_mask = b.attention_mask.slice(1, 0, L - 1);
  in.positions = positions_of(b.attention_mask).slice(1, 0, L - 1);
  return model->hidden(in).slice(1, P - 1, L - 1);
}

}  // namespace

ResponseForward response_logprobs(models::Gpt& model, const SequenceBatch& batch, bool entropy) {
  const torch::Tensor logits = model->logits(response_hidden(model, batch)).to(torch::kFloat32);
  ResponseForward f;
  f.logprobs = logprobs_from_logits(logits, batch.sequences.slice(1, batch.prompt_length).to(logits.device()));
  if (entropy) f.entropy = entropy_from_logits(logits);
  return f;
}

namespace {

// Applies `f` to every row of `batch` alone, trimmed to its real tokens (left and right padding stripped), and
// stacks the per-token results [1, n] back into [B, T] tensors (0 at padding): one output per element of what f
// returns. A row without response tokens gives zeros.
template <class F>
std::vector<torch::Tensor> per_row(const SequenceBatch& batch, size_t outputs, F&& f) {
  const int64_t B = batch.size(), P = batch.prompt_length, T = batch.response_length();
  const torch::Tensor prompt_real = batch.attention_mask.slice(1, 0, P).sum(1).cpu();
  const torch::Tensor response_real = batch.response_mask.sum(1).cpu();
  std::vector<std::vector<torch::Tensor>> rows(outputs);
  namespace Fn = torch::nn::functional;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t p = prompt_real[b].item<int64_t>();
    const auto n = static_cast<int64_t>(response_real[b].item<double>());
    if (n == 0) {  // no response token: nothing to score
      for (auto& r : rows) r.push_back(torch::zeros({1, T}, torch::TensorOptions().device(batch.sequences.device())));
      continue;
    }
    SequenceBatch row;
    row.sequences = batch.sequences.slice(0, b, b + 1).slice(1, P - p, P + n);
    row.attention_mask = torch::ones_like(row.sequences);
    row.response_mask = batch.response_mask.slice(0, b, b + 1).slice(1, 0, n);
    row.prompt_length = p;
    const std::vector<torch::Tensor> out = f(row);  // each [1, n]
    for (size_t i = 0; i < outputs; ++i) rows[i].push_back(Fn::pad(out[i], Fn::PadFuncOptions({0, T - n})));
  }
  std::vector<torch::Tensor> out;
  for (auto& r : rows) out.push_back(torch::cat(r, 0));
  return out;
}

}  // namespace

ResponseForward response_logprobs_rowwise(models::Gpt& model, const SequenceBatch& batch, bool entropy) {
  const auto out = per_row(batch, entropy ? 2 : 1, [&](const SequenceBatch& row) {
    ResponseForward f = response_logprobs(model, row, entropy);
    return entropy ? std::vector<torch::Tensor>{f.logprobs, f.entropy} : std::vector<torch::Tensor>{f.logprobs};
  });
  ResponseForward f;
  f.logprobs = out[0];
  if (entropy) f.entropy = out[1];
  return f;
}

ResponseForward response_logprobs_packed(models::Gpt& model, const SequenceBatch& batch, bool entropy) {
  const int64_t B = batch.size(), P = batch.prompt_length, T = batch.response_length();
  const torch::Tensor seq = batch.sequences.cpu();
  const torch::Tensor prompt_real = batch.attention_mask.slice(1, 0, P).sum(1).cpu();
  const torch::Tensor response_real = batch.response_mask.sum(1).cpu();
  // The rows with a response, packed first-fit in row order: each needs p + n − 1 input positions (its last token
  // predicts nothing).
  std::vector<int64_t> rows_packed, p_of, n_of, needs;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t p = prompt_real[b].item<int64_t>();
    const auto n = static_cast<int64_t>(response_real[b].item<double>());
    if (n == 0) continue;
    rows_packed.push_back(b);
    p_of.push_back(p);
    n_of.push_back(n);
    needs.push_back(p + n - 1);
  }
  ResponseForward out;
  out.logprobs = torch::zeros({B, T}, torch::TensorOptions().device(batch.sequences.device()));
  if (entropy) out.entropy = torch::zeros_like(out.logprobs);
  if (rows_packed.empty()) return out;
  const data::FirstFit fit = data::first_fit(needs, model->config().block_size);
  const auto bins = static_cast<int64_t>(fit.row_lengths.size());
  const int64_t L = *std::max_element(fit.row_lengths.begin(), fit.row_lengths.end());
  torch::Tensor ids = torch::zeros({bins, L}, torch::kLong), positions = torch::zeros({bins, L}, torch::kLong);
  torch::Tensor segments = torch::zeros({bins, L}, torch::kLong);  // 0 = bin padding, b + 1 = row b
  std::vector<int64_t> gather_bin, gather_pos, target, out_row, out_col;
  for (size_t i = 0; i < rows_packed.size(); ++i) {
    const int64_t b = rows_packed[i], p = p_of[i], n = n_of[i], need = needs[i];
    const int64_t bin = fit.places[i].row, offset = fit.places[i].offset;
    const torch::Tensor tokens = seq[b].slice(0, P - p, P + n);  // real prompt + response
    ids[bin].slice(0, offset, offset + need).copy_(tokens.slice(0, 0, need));
    positions[bin].slice(0, offset, offset + need).copy_(torch::arange(need, torch::kLong));
    segments[bin].slice(0, offset, offset + need).fill_(b + 1);
    for (int64_t t = 0; t < n; ++t) {  // response token t is predicted at position p − 1 + t
      gather_bin.push_back(bin);
      gather_pos.push_back(offset + p - 1 + t);
      target.push_back(tokens[p + t].item<int64_t>());
      out_row.push_back(b);
      out_col.push_back(t);
    }
  }
  models::GptInput in;
  const auto dev = batch.sequences.device();
  in.ids = ids.to(dev);
  in.positions = positions.to(dev);
  in.segment_ids = segments.to(dev);
  const torch::Tensor hidden = model->hidden(in);  // [bins, L, C]
  const auto index = [&](const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong).to(hidden.device()); };
  const torch::Tensor picked = hidden.index({index(gather_bin), index(gather_pos)});    // [N, C]
  const torch::Tensor logits = model->logits(picked.unsqueeze(0)).to(torch::kFloat32);  // [1, N, V]
  const torch::Tensor lp = logprobs_from_logits(logits, index(target).unsqueeze(0)).squeeze(0);
  const torch::Tensor rows = index(out_row), cols = index(out_col);
  out.logprobs = out.logprobs.to(lp.device()).index_put({rows, cols}, lp);
  if (entropy)
    out.entropy = out.entropy.to(lp.device()).index_put({rows, cols}, entropy_from_logits(logits).squeeze(0));
  return out;
}

ResponseForward response_logprobs(models::Gpt& model, const SequenceBatch& batch, bool entropy, bool rowwise,
                                  bool packed) {
  if (rowwise) return response_logprobs_rowwise(model, batch, entropy);
  return packed ? response_logprobs_packed(model, batch, entropy) : response_logprobs(model, batch, entropy);
}

at::Tensor response_values(models::Gpt& model, const SequenceBatch& batch) {
  return model->values(response_hidden(model, batch)).to(torch::kFloat32);
}

at::Tensor response_values(models::Gpt& model, const SequenceBatch& batch, bool rowwise) {
  if (!rowwise) return response_values(model, batch);
  return per_row(batch, 1,
                 [&](const SequenceBatch& row) { return std::vector<torch::Tensor>{response_values(model, row)}; })[0];
}

std::vector<at::Tensor> minibatch_order(int64_t n, int64_t size, uint64_t seed, int64_t iteration, int64_t epoch) {
  // Fisher-Yates over SplitMix64, identical on every platform and standard library.
  uint64_t state = core::derive_seed(seed, "minibatch", 0) ^
                   (static_cast<uint64_t>(iteration) * 0xd1b54a32d192ed03ULL) ^
                   (static_cast<uint64_t>(epoch) * 0x8cb92ba72f3d8dd7ULL);
  auto next = [&state] {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(next() % static_cast<uint64_t>(i + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  std::vector<at::Tensor> out;
  for (int64_t at = 0; at < n; at += size) {
    const int64_t end = std::min(n, at + size);
    out.push_back(torch::tensor(std::vector<int64_t>(order.begin() + at, order.begin() + end), torch::kLong));
  }
  return out;
}

}  // namespace troupe::rlhf
