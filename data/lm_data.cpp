// Implementation of data/lm_data.h: file checks, the SplitMix64 window stream, and copying windows out of the
// memory map into (B, T + 1) int64 tensors.
#include "data/lm_data.h"

#include <torch/torch.h>

#include <sstream>

#include "core/errors.h"
#include "core/seeding.h"

namespace troupe::data {
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

// Opens and checks the file; every message names it.
std::unique_ptr<TokenFile> open_checked(const fs::path& path, const LmBatchOptions& options) {
  const std::string name = path.string();
  if (!fs::exists(path)) throw IoError("token file " + name + " does not exist");
  if (!fs::exists(name + ".json")) {
    throw DataError("token file " + name + " has no sidecar " + name +
                    ".json: not a Troupe token file (write one with `troupe data prepare`)");
  }
  auto file = std::make_unique<TokenFile>(path);  // DataError naming <file>.json for a bad sidecar or size
  const TokenFileInfo& info = file->info();
  if (info.vocab_size <= 0) throw DataError("token file " + name + ": vocab_size must be positive in its sidecar");
  if (info.dtype == "uint16" && info.vocab_size > 65536) {
    throw DataError("token file " + name + ": dtype uint16 cannot hold vocab_size " + std::to_string(info.vocab_size));
  }
  if (options.model_vocab_size > 0 && info.vocab_size > options.model_vocab_size) {
    throw DataError("token file " + name + " was written with vocab_size " + std::to_string(info.vocab_size) +
                    " (tokenizer '" + info.tokenizer + "'), larger than the model's vocab_size " +
                    std::to_string(options.model_vocab_size));
  }
  const uint64_t need = static_cast<uint64_t>(options.block_size) + 1;
  if (info.count < need) {
    throw DataError("token file " + name + " holds " + std::to_string(info.count) +
                    " tokens, fewer than block_size + 1 = " + std::to_string(need) + " needed for one window");
  }
  return file;
}

}  // namespace

std::vector<int64_t> LmBatchState::to_vector() const {
  return {static_cast<int64_t>(rng), static_cast<int64_t>(cursor), static_cast<int64_t>(epoch)};
}

LmBatchState LmBatchState::from_vector(const std::vector<int64_t>& v) {
  if (v.size() != 3)
    throw DataError("LM batch state: expected 3 values {rng, cursor, epoch}, got " + std::to_string(v.size()));
  return {static_cast<uint64_t>(v[0]), static_cast<uint64_t>(v[1]), static_cast<uint64_t>(v[2])};
}

std::string LmBatchState::to_string() const {
  return "rng=" + std::to_string(rng) + " cursor=" + std::to_string(cursor) + " epoch=" + std::to_string(epoch);
}

LmBatchState LmBatchState::from_string(const std::string& text) {
  std::istringstream in(text);
  LmBatchState s;
  std::string rng, cursor, epoch, rest;
  in >> rng >> cursor >> epoch;
  auto value = [&](const std::string& item, const char* key) -> uint64_t {
    const std::string prefix = std::string(key) + "=";
    if (item.rfind(prefix, 0) != 0) throw DataError("LM batch state '" + text + "': expected " + prefix + "<integer>");
    try {
      size_t used = 0;
      const std::string digits = item.substr(prefix.size());
      const uint64_t v = std::stoull(digits, &used);
      if (used != digits.size() || digits[0] == '-') throw std::invalid_argument(digits);
      return v;
    } catch (const std::exception&) {
      throw DataError("LM batch state '" + text + "': expected " + prefix + "<integer>");
    }
  };
  s.rng = value(rng, "rng");
  s.cursor = value(cursor, "cursor");
  s.epoch = value(epoch, "epoch");
  if (in >> rest) throw DataError("LM batch state '" + text + "': unexpected '" + rest + "'");
  return s;
}

LmBatchSampler::LmBatchSampler(const fs::path& path, const LmBatchOptions& options) : path_(path), options_(options) {
  if (options.batch_size <= 0)
    throw ConfigError("LM data: batch_size must be > 0, got " + std::to_string(options.batch_size));
  if (options.block_size <= 0)
    throw ConfigError("LM data: block_size must be > 0, got " + std::to_string(options.block_size));
  file_ = open_checked(path, options);
  windows_ = (file_->size() - 1) / static_cast<uint64_t>(options.block_size);
  state_.rng = core::splitmix64(options.seed);  // a mixed start, so seeds 0, 1, 2 give unrelated streams
}

LmBatchSampler::~LmBatchSampler() = default;

const TokenFileInfo& LmBatchSampler::info() const { return file_->info(); }

uint64_t LmBatchSampler::next_uniform(uint64_t n) {
  // Reject the lowest 2^64 mod n outputs so every residue is equally likely.
  const uint64_t threshold = (0 - n) % n;
  for (;;) {
    const uint64_t r = core::splitmix64(state_.rng);
    state_.rng += kGolden;
    if (r >= threshold) return r % n;
  }
}

LmBatch LmBatchSampler::next_random() {
  const uint64_t T = static_cast<uint64_t>(options_.block_size);
  const uint64_t starts_available = file_->size() - T;  // starts 0 .. N - T - 1
  std::vector<uint64_t> starts(static_cast<size_t>(options_.batch_size));
  for (uint64_t& s : starts) s = next_uniform(starts_available);
  return make_batch(starts);
}

std::optional<LmBatch> LmBatchSampler::next_sequential() {
  if (state_.cursor >= windows_) {
    state_.cursor = 0;
    ++state_.epoch;
    return std::nullopt;
  }
  const uint64_t T = static_cast<uint64_t>(options_.block_size);
  const uint64_t n = std::min<uint64_t>(static_cast<uint64_t>(options_.batch_size), windows_ - state_.cursor);
  std::vector<uint64_t> starts(n);
  for (uint64_t i = 0; i < n; ++i) starts[i] = (state_.cursor + i) * T;
  state_.cursor += n;
  return make_batch(starts);
}

void LmBatchSampler::restore(const LmBatchState& state) {
  if (state.cursor > windows_) {
    throw DataError("LM batch state for " + path_.string() + ": cursor " + std::to_string(state.cursor) +
                    " is past the file's " + std::to_string(windows_) +
                    " sequential windows (different file or block_size?)");
  }
  state_ = state;
}

LmBatch LmBatchSampler::make_batch(const std::vector<uint64_t>& starts) const {
  const int64_t T = options_.block_size;
  const auto B = static_cast<int64_t>(starts.size());
  torch::Tensor windows = torch::empty({B, T + 1}, torch::kInt64);  // (B, T + 1)
  int64_t* out = windows.data_ptr<int64_t>();
  const int64_t vocab = file_->info().vocab_size;
  for (int64_t b = 0; b < B; ++b) {
    int64_t* row = out + b * (T + 1);
    file_->read(starts[static_cast<size_t>(b)], static_cast<uint64_t>(T) + 1, row);
    // O(B*T) check, negligible next to a forward pass: a corrupt file fails here, not inside an embedding.
    for (int64_t t = 0; t <= T; ++t) {
      if (row[t] >= vocab) {
        throw DataError("token file " + path_.string() + ": id " + std::to_string(row[t]) + " at position " +
                        std::to_string(starts[static_cast<size_t>(b)] + static_cast<uint64_t>(t)) +
                        " is outside its vocab_size " + std::to_string(vocab));
      }
    }
  }
  return {windows.slice(1, 0, T).contiguous(), windows.slice(1, 1, T + 1).contiguous()};
}

}  // namespace troupe::data
