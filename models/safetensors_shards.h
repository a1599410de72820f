// The weights of a Hugging Face model directory as save_pretrained lays them out: one model.safetensors, or shards
// model-0000i-of-0000n.safetensors with model.safetensors.index.json ({"metadata": {"total_size": bytes},
// "weight_map": {tensor: shard}}). Reads shard by shard (peak memory: one shard) and writes shards of at most N bytes.
// Not a tensor-name mapping (models/hf_gpt2.h, models/hf_llama.h) and not pytorch_model.bin.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "models/safetensors.h"

namespace troupe::models {

constexpr const char* kSafetensorsSingle = "model.safetensors";
constexpr const char* kSafetensorsIndex = "model.safetensors.index.json";

// True when `dir` holds model.safetensors or model.safetensors.index.json.
bool has_safetensors_weights(const std::filesystem::path& dir);

// Calls `fn` with each weight file of `dir` in turn, loaded (one file in memory at a time). As transformers does,
// model.safetensors wins when both it and the index exist. With an index: DataError naming the index and the key for
// JSON that is not {"weight_map": {tensor: file}}, a shard name that is not a plain file name, a shard that does not
// exist, a tensor the index assigns to a shard that does not hold it, and a shard tensor the index does not assign to
// that shard. IoError when neither file exists.
void for_each_safetensors_file(const std::filesystem::path& dir, const std::function<void(SafetensorsFile&)>& fn);

// Writes `tensors` into `dir` (created) in order, metadata {"format": "pt"} in every file: one model.safetensors
// when their bytes fit in max_shard_bytes, else shards of at most max_shard_bytes each (a larger tensor gets a shard
// of its own, as save_pretrained does) and the index (metadata total_size = the sum of tensor bytes). Weight files a
// previous save left in `dir` (model.safetensors, the index, model-*-of-*.safetensors) that this one did not write
// are removed afterwards. Returns the files written, in order (the index last).
std::vector<std::filesystem::path> save_safetensors_shards(const std::filesystem::path& dir,
                                                           const NamedTensors& tensors, uint64_t max_shard_bytes);

}  // namespace troupe::models
