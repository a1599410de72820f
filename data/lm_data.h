// Packed causal-LM batches from a token file (tokenizers/token_file.h): random windows of T+1 tokens for training
// (nanoGPT's get_batch) and non-overlapping windows in order for evaluation, with a small exportable state so a
// trainer resumes bit-exactly. Not a tokenizer, not document-aware (windows cross document separators, as in
// nanoGPT), and it never touches torch's global RNG.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tokenizers/token_file.h"

namespace troupe::data {

using tokenizers::TokenFile;  // tokenizers/token_file.h
using tokenizers::TokenFileInfo;
using tokenizers::TokenFileWriter;

// One batch of next-token prediction: targets[b][t] == input_ids[b][t + 1] of the same window.
struct LmBatch {
  at::Tensor input_ids;  // (B, T) int64
  at::Tensor targets;    // (B, T) int64, the inputs shifted left by one token
};

struct LmBatchOptions {
  int64_t batch_size = 8;        // B, windows per batch (> 0)
  int64_t block_size = 256;      // T, tokens per window (> 0); each window reads T + 1 ids
  uint64_t seed = 1234;          // seeds the random-window stream (e.g. derive_seed(base, "data", rank))
  int64_t model_vocab_size = 0;  // > 0: DataError when the file's vocab_size exceeds it
};

// Everything needed to continue a sampler exactly where it stopped. Plain integers: store them as checkpoint
// extra state (to_vector() fits an int64[] value) or as text (to_string()).
struct LmBatchState {
  uint64_t rng = 0;     // SplitMix64 state of the random-window stream
  uint64_t cursor = 0;  // next window index of the sequential pass
  uint64_t epoch = 0;   // completed sequential passes

  std::vector<int64_t> to_vector() const;                          // {rng (bit pattern), cursor, epoch}
  static LmBatchState from_vector(const std::vector<int64_t>& v);  // DataError unless 3 values
  std::string to_string() const;                                   // "rng=<u64> cursor=<u64> epoch=<u64>"
  static LmBatchState from_string(const std::string& text);        // DataError when malformed
  bool operator==(const LmBatchState& o) const { return rng == o.rng && cursor == o.cursor && epoch == o.epoch; }
};

// Reads windows from one memory-mapped token file. Not thread-safe; one per process (rank).
//
// Random mode, next_random(): B window starts drawn uniformly from [0, N - T - 1] (N ids in the file) with a
// SplitMix64 stream seeded from options.seed; each window holds ids [s, s + T], inputs its first T, targets its
// last T. Example: a file of ids 0..99, T = 4, a start s = 17 gives inputs {17,18,19,20}, targets {18,19,20,21}.
//
// Sequential mode, next_sequential(): window k holds ids [k*T, k*T + T], k = 0 .. sequential_windows() - 1,
// with sequential_windows() == floor((N - 1) / T); the tail that does not fill a window is dropped. Batches hold
// up to B windows (the last of a pass may hold fewer); std::nullopt marks the end of a pass, after which the
// cursor is back at window 0 and epoch() has grown by one.
class LmBatchSampler {
 public:
  // DataError naming the file when its sidecar is missing or wrong, its dtype does not fit its vocab_size, its
  // vocab_size exceeds options.model_vocab_size, or it holds fewer than T + 1 ids. ConfigError when B or T <= 0.
  LmBatchSampler(const std::filesystem::path& path, const LmBatchOptions& options);
  ~LmBatchSampler();
  LmBatchSampler(const LmBatchSampler&) = delete;
  LmBatchSampler& operator=(const LmBatchSampler&) = delete;

  LmBatch next_random();
  std::optional<LmBatch> next_sequential();

  uint64_t sequential_windows() const { return windows_; }
  uint64_t epoch() const { return state_.epoch; }
  const TokenFileInfo& info() const;
  const LmBatchOptions& options() const { return options_; }

  LmBatchState state() const { return state_; }
  // DataError when the cursor lies past sequential_windows() (a state from a different file or T).
  void restore(const LmBatchState& state);

 private:
  LmBatch make_batch(const std::vector<uint64_t>& starts) const;
  uint64_t next_uniform(uint64_t n);  // uniform in [0, n), unbiased (rejection)

  std::filesystem::path path_;
  LmBatchOptions options_;
  std::unique_ptr<TokenFile> file_;
  uint64_t windows_ = 0;
  LmBatchState state_;
};

}  // namespace troupe::data
