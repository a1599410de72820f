// Implementation of models/safetensors_shards.h.
#include "models/safetensors_shards.h"

#include <cstdio>
#include <set>

#include "core/errors.h"
#include "core/run_dir.h"
#include "models/hf_json.h"

namespace troupe::models {
namespace fs = std::filesystem;

namespace shards {  // helpers, named (not anonymous) so that unity builds cannot mix them up

// The index's weight_map grouped by shard: shard file name -> the tensors it should hold.
std::map<std::string, std::set<std::string>> read_weight_map(const fs::path& index) {
  const nlohmann::json j = hf_json::read_object(index, "a safetensors index");
  if (!j.contains("weight_map") || !j["weight_map"].is_object()) {
    hf_json::bad_key(index, "weight_map", "missing or not an object of tensor name -> shard file");
  }
  std::map<std::string, std::set<std::string>> shards;
  for (const auto& [tensor, file] : j["weight_map"].items()) {
    const std::string key = "weight_map." + tensor;
    if (!file.is_string()) hf_json::bad_key(index, key, "expected a shard file name, got " + file.dump());
    const std::string name = file.get<std::string>();
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
        name.find('\\') != std::string::npos) {
      hf_json::bad_key(index, key, "'" + name + "' is not a plain file name in the model directory");
    }
    if (!fs::exists(index.parent_path() / name)) {
      hf_json::bad_key(index, key, "shard '" + name + "' does not exist in " + index.parent_path().string());
    }
    shards[name].insert(tensor);
  }
  if (shards.empty()) hf_json::bad_key(index, "weight_map", "is empty");
  return shards;
}

// The shard holds exactly the tensors the index assigns to it.
void check_shard(const fs::path& index, const SafetensorsFile& shard, const std::set<std::string>& expected) {
  std::set<std::string> held;
  for (const auto& [name, t] : shard.tensors) {
    if (!expected.count(name)) {
      throw DataError(shard.path.string() + ": tensor '" + name + "' is not assigned to this shard by " +
                      index.string() + "'s weight_map");
    }
    held.insert(name);
  }
  for (const auto& name : expected) {
    if (!held.count(name)) {
      hf_json::bad_key(index, "weight_map." + name,
                       "assigned to shard '" + shard.path.filename().string() + "', which does not hold it");
    }
  }
}

std::string shard_name(size_t i, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return buf;
}

bool is_weight_file_name(const std::string& name) {
  const std::string ext = ".safetensors";
  const bool shard = name.rfind("model-", 0) == 0 && name.find("-of-") != std::string::npos &&
                     name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0;
  return shard || name == kSafetensorsSingle || name == kSafetensorsIndex;
}

}  // namespace shards

bool has_safetensors_weights(const fs::path& dir) {
  return fs::exists(dir / kSafetensorsSingle) || fs::exists(dir / kSafetensorsIndex);
}

void for_each_safetensors_file(const fs::path& dir, const std::function<void(SafetensorsFile&)>& fn) {
  if (fs::exists(dir / kSafetensorsSingle)) {
    SafetensorsFile file = load_safetensors(dir / kSafetensorsSingle);
    fn(file);
    return;
  }
  const fs::path index = dir / kSafetensorsIndex;
  if (!fs::exists(index)) {
    throw IoError(dir.string() + ": holds neither " + kSafetensorsSingle + " nor " + kSafetensorsIndex);
  }
  for (const auto& [name, expected] : shards::read_weight_map(index)) {
    SafetensorsFile shard = load_safetensors(dir / name);
    shards::check_shard(index, shard, expected);
    fn(shard);
  }
}

std::vector<fs::path> save_safetensors_shards(const fs::path& dir, const NamedTensors& tensors,
                                              uint64_t max_shard_bytes) {
  if (max_shard_bytes == 0) throw Error("save_safetensors_shards: max_shard_bytes must be positive");
  std::vector<NamedTensors> groups(1);  // one per file
  uint64_t shard_bytes = 0, total = 0;
  for (const auto& [name, t] : tensors) {
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    if (!groups.back().empty() && shard_bytes + bytes > max_shard_bytes) {
      groups.emplace_back();
      shard_bytes = 0;
    }
    groups.back().emplace_back(name, t);
    shard_bytes += bytes;
    total += bytes;
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError("cannot create " + dir.string() + ": " + ec.message());
  const std::map<std::string, std::string> meta{{"format", "pt"}};
  std::vector<fs::path> written;
  if (groups.size() == 1) {
    save_safetensors(dir / kSafetensorsSingle, groups[0], meta);
    written.push_back(dir / kSafetensorsSingle);
  } else {
    nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
    for (size_t i = 0; i < groups.size(); ++i) {
      const std::string name = shards::shard_name(i, groups.size());
      save_safetensors(dir / name, groups[i], meta);
      written.push_back(dir / name);
      for (const auto& [tensor, t] : groups[i]) weight_map[tensor] = name;
    }
    const nlohmann::ordered_json index{{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    core::write_file_atomic(dir / kSafetensorsIndex, index.dump(2) + "\n");
    written.push_back(dir / kSafetensorsIndex);
  }
  const std::set<fs::path> keep(written.begin(), written.end());
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && shards::is_weight_file_name(entry.path().filename().string()) &&
        !keep.count(entry.path()))
      fs::remove(entry.path());
  }
  return written;
}

}  // namespace troupe::models
