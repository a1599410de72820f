// Log-likelihoods of continuations given contexts, as lm-evaluation-harness's `loglikelihood` requests compute
// them: log p(continuation | context) summed over the continuation's tokens, and whether greedy decoding would
// have produced exactly the continuation. Requests that share a context (the choices of a multiple-choice
// question) run the context once and continue from its KV cache, in batches of continuations.
#pragma once

#include <cstdint>
#include <vector>

#include "models/gpt.h"

namespace troupe::evaluation {

struct ContinuationRequest {
  std::vector<int64_t> context;       // at least one token (lm-eval gives an empty context the end-of-text token)
  std::vector<int64_t> continuation;  // at least one token, at most block_size
};

struct ContinuationScore {
  double logprob = 0;      // sum over the continuation's tokens of log p(token | everything before it)
  bool is_greedy = false;  // every continuation token is the argmax of its distribution
};

// lm-eval's truncation: of context + continuation only the last block_size + 1 tokens are kept (the context
// loses its oldest tokens). Runs in eval mode without gradients on the model's device; DataError on an empty
// context or continuation or a continuation longer than block_size.
std::vector<ContinuationScore> score_continuations(models::Gpt& model, const std::vector<ContinuationRequest>& requests,
                                                   int64_t batch_size = 32);

}  // namespace troupe::evaluation
