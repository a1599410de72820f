// Rollouts as tensors, and the forward passes every role runs over them: sampling responses for left-padded
// prompts, per-token log-probabilities / entropies of the response under a policy, per-token values, and the
// shared minibatch schedule of the PPO update. Not the controller's bookkeeping (rlhf/controller.h).
//
// A rollout row is the left-padded prompt (P positions) followed by the right-padded response (T positions):
//   sequences       [B, P+T] int64    prompt ids (pad on the left) | response ids (pad after the end)
//   attention_mask  [B, P+T] int64    1 on real prompt and response tokens
//   response_mask   [B, T]   float32  1 on real response tokens (a prefix of ones per row)
// Response token t is predicted at sequence position P+t-1, so its log-prob and the value of the state before
// it both come from that position's hidden state.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "models/generation.h"
#include "models/gpt.h"

namespace troupe::rlhf {

struct SequenceBatch {
  at::Tensor sequences, attention_mask, response_mask;
  int64_t prompt_length = 0;  // P

  int64_t size() const { return sequences.size(0); }
  int64_t response_length() const { return sequences.size(1) - prompt_length; }
  // Rows `idx` ([n] int64) of every tensor.
  SequenceBatch select(const at::Tensor& idx) const;
};

struct Rollout : SequenceBatch {
  at::Tensor eos;              // [B] float32: 1 when the response ended with a stop token
  at::Tensor sample_logprobs;  // [B, T] float32: log-probs under the sampling distribution (0 at padding)
};

// Rows `idx` ([n] int64) of a rollout, eos and sample log-probs included.
Rollout select_rows(const Rollout& rollout, const at::Tensor& idx);

// The rows of several rollouts in order, re-padded to the longest prompt (left, with pad_id and mask 0) and the
// longest response (right). Example: prompts of 2 and 3 positions, responses of 4 and 1 -> P = 3, T = 4.
Rollout concat_rollouts(const std::vector<Rollout>& parts, int64_t pad_id);

// Position ids for left-padded rows: 0, 1, ... over the real tokens (padding gets 0). mask [B, L] -> [B, L].
at::Tensor positions_of(const at::Tensor& attention_mask);

// Samples a response for every prompt row (left-padded prompt_ids / prompt_mask [B, P]) with `config` and `seed`.
Rollout generate_rollout(models::Gpt& model, const at::Tensor& prompt_ids, const at::Tensor& prompt_mask,
                         models::GenerationConfig config, uint64_t seed);

struct ResponseForward {
  at::Tensor logprobs;  // [B, T] log p(response token t | everything before it)
  at::Tensor entropy;   // [B, T] entropy of that distribution (only when asked)
};
// One forward pass of `model` over the batch (with grad unless the caller disables it).
ResponseForward response_logprobs(models::Gpt& model, const SequenceBatch& batch, bool entropy = false);
// As response_logprobs, but batch-invariant: every row is its own forward pass over its real tokens only (left and
// right padding stripped), so a row's log-probs do not depend on which rows share its batch, how long they are or
// in which order they come — bit for bit. The deterministic mode's path for the sampler, the trainer and the
// reference alike (runtime.deterministic: true).
ResponseForward response_logprobs_rowwise(models::Gpt& model, const SequenceBatch& batch, bool entropy = false);
// As response_logprobs, with the rows packed: each row's real tokens (no padding) are placed first-fit into rows of
// the model's block_size, with positions restarting at 0 and segment ids so that attention never crosses from one
// sequence to another (models::GptInput::segment_ids). Fewer, fuller rows for batches of mixed lengths; the same
// log-probs up to float summation order. Differentiable.
ResponseForward response_logprobs_packed(models::Gpt& model, const SequenceBatch& batch, bool entropy = false);

// response_logprobs_rowwise when `rowwise`, else response_logprobs_packed when `packed`, else response_logprobs.
ResponseForward response_logprobs(models::Gpt& model, const SequenceBatch& batch, bool entropy, bool rowwise,
                                  bool packed = false);

// Per-token values [B, T] from the value head (the model needs GptHeads::value).
at::Tensor response_values(models::Gpt& model, const SequenceBatch& batch);
// As above, row by row over real tokens when `rowwise` (batch-invariant, like response_logprobs_rowwise).
at::Tensor response_values(models::Gpt& model, const SequenceBatch& batch, bool rowwise);

// The minibatches of one PPO epoch: a permutation of 0..n-1 that depends only on (seed, iteration, epoch), cut
// into chunks of `size` (the last may be shorter). Actor and critic call it with the same arguments and so
// train on the same minibatch schedule.
std::vector<at::Tensor> minibatch_order(int64_t n, int64_t size, uint64_t seed, int64_t iteration, int64_t epoch);

}  // namespace troupe::rlhf
