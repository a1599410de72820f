// Capture and restore for core/checkpoint_state.h: modules, optimizers, RNGs and extra state.
// Nothing here touches the disk; CheckpointManager writes and verifies what this holds.
#include "core/checkpoint_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <mutex>
#include <sstream>

namespace troupe::core {
namespace {

constexpr const char* kCudaRngGroup = "torch_rng_cuda";  // GPU index -> generator state, when GPUs were visible

at::Generator cuda_generator(int index) {
  return at::globalContext().defaultGenerator(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index)));
}

std::string shape_string(const torch::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

std::string dtype_string(const torch::Tensor& t) { return std::string(t.dtype().name()); }

// Parameters and buffers of m and its children by dotted name; undefined buffers are skipped.
std::map<std::string, torch::Tensor> module_tensors(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : m.named_parameters(/*recurse=*/true)) out[item.key()] = item.value();
  for (const auto& item : m.named_buffers(/*recurse=*/true)) {
    if (item.value().defined()) out[item.key()] = item.value();
  }
  return out;
}

// Every way `saved` fails to fit `target`, one line each; empty when they match.
std::vector<std::string> mismatches(const std::map<std::string, torch::Tensor>& saved,
                                    const std::map<std::string, torch::Tensor>& target) {
  std::vector<std::string> problems;
  for (const auto& [name, t] : target) {
    auto it = saved.find(name);
    if (it == saved.end()) {
      problems.push_back("missing '" + name + "' (in the module, not in the checkpoint)");
    } else if (!it->second.sizes().equals(t.sizes())) {
      problems.push_back("'" + name + "' has shape " + shape_string(it->second) + " in the checkpoint but " +
                         shape_string(t) + " in the module");
    } else if (it->second.scalar_type() != t.scalar_type()) {
      problems.push_back("'" + name + "' has dtype " + dtype_string(it->second) + " in the checkpoint but " +
                         dtype_string(t) + " in the module");
    }
  }
  for (const auto& [name, t] : saved) {
    if (target.find(name) == target.end()) {
      problems.push_back("unexpected '" + name + "' (in the checkpoint, not in the module)");
    }
  }
  return problems;
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

template <class Map>
std::string key_list(const Map& map) {
  std::vector<std::string> keys;
  for (const auto& entry : map) keys.push_back(entry.first);
  return keys.empty() ? "none" : join(keys, ", ");
}

// libtorch 1.13's Optimizer::load restores per-parameter state but drops the saved param-group
// options (lr, betas, weight decay...), keeping the fresh optimizer's. Python's load_state_dict
// restores them, and a resumed LR schedule needs them, so read them back here through each live
// group's (virtual, concrete-typed) OptimizerOptions::serialize.
void restore_group_options(torch::serialize::InputArchive& archive, torch::optim::Optimizer& o) {
  torch::serialize::InputArchive groups;
  archive.read("param_groups", groups);
  for (size_t i = 0; i < o.param_groups().size(); ++i) {
    torch::serialize::InputArchive group, options;
    groups.read("param_groups/" + std::to_string(i), group);
    group.read("options", options);
    o.param_groups()[i].options().serialize(options);
  }
}

}  // namespace

const char* extra_type_name(const ExtraValue& value) {
  static const char* const kNames[] = {"int64", "double", "bool", "string", "int64[]", "double[]"};
  static_assert(std::variant_size_v<ExtraValue> == 6, "keep kNames in step with ExtraValue");
  return kNames[value.index()];
}

void check_checkpoint_name(const std::string& name, const char* what) {
  bool ok = !name.empty() && name.size() <= 100;
  for (char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-');
  }
  if (!ok) {
    throw DataError(std::string("checkpoint ") + what + " name '" + name +
                    "' must be 1-100 characters of [A-Za-z0-9_-] (it becomes a file name)");
  }
}

void CheckpointState::add_module(const std::string& name, const torch::nn::Module& m) {
  check_checkpoint_name(name, "tensor group");
  std::map<std::string, torch::Tensor> group;
  for (const auto& [key, t] : module_tensors(m)) {
    group[key] = t.detach().to(torch::kCPU, /*non_blocking=*/false, /*copy=*/true);
  }
  tensor_groups[name] = std::move(group);
}

void CheckpointState::load_module(const std::string& name, torch::nn::Module& m) const {
  auto group = tensor_groups.find(name);
  if (group == tensor_groups.end()) {
    throw DataError("checkpoint has no tensor group '" + name + "' (groups: " + key_list(tensor_groups) + ")");
  }
  auto target = module_tensors(m);
  auto problems = mismatches(group->second, target);
  if (!problems.empty()) {
    throw DataError("checkpoint tensor group '" + name + "' does not match the module: " + join(problems, "; "));
  }
  torch::NoGradGuard no_grad;
  for (auto& [key, t] : target) t.copy_(group->second.at(key));
}

void CheckpointState::add_optimizer(const std::string& name, const torch::optim::Optimizer& o) {
  check_checkpoint_name(name, "optimizer");
  torch::serialize::OutputArchive archive;
  o.save(archive);
  std::ostringstream os;
  archive.save_to(os);
  optimizer_blobs[name] = os.str();
}

void CheckpointState::load_optimizer(const std::string& name, torch::optim::Optimizer& o) const {
  auto blob = optimizer_blobs.find(name);
  if (blob == optimizer_blobs.end()) {
    throw DataError("checkpoint has no optimizer '" + name + "' (optimizers: " + key_list(optimizer_blobs) + ")");
  }
  try {
    // State tensors land on the device of the optimizer's parameters, whatever device wrote them.
    std::optional<torch::Device> device;
    for (const auto& group : o.param_groups())
      if (!group.params().empty() && !device) device = group.params().front().device();
    torch::serialize::InputArchive archive;
    archive.load_from(blob->second.data(), blob->second.size(), device);
    o.load(archive);
    restore_group_options(archive, o);
  } catch (const c10::Error& e) {
    throw DataError("cannot restore optimizer '" + name + "' from the checkpoint: " + e.what_without_backtrace());
  }
}

void CheckpointState::capture_torch_rng() {
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    torch_rng = gen.get_state();
  }
  // Each visible GPU's default generator too (dropout on a GPU draws from it), as tensor group torch_rng_cuda.
  const int gpus = static_cast<int>(torch::cuda::device_count());
  if (gpus == 0) return;
  auto& states = tensor_groups[kCudaRngGroup];
  for (int i = 0; i < gpus; ++i) {
    auto gen = cuda_generator(i);
    std::lock_guard<std::mutex> lock(gen.mutex());
    states[std::to_string(i)] = gen.get_state();
  }
}

void CheckpointState::restore_torch_rng() const {
  if (!torch_rng) throw DataError("checkpoint holds no torch RNG state to restore");
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  try {
    gen.set_state(*torch_rng);
  } catch (const c10::Error& e) {
    throw DataError(std::string("checkpoint torch RNG state is invalid: ") + e.what_without_backtrace());
  }
  // GPU generators only where the same GPU exists now: a checkpoint written on a GPU resumes on the CPU (the CPU
  // draws then continue exactly; GPU draws cannot, there is no GPU).
  const auto cuda = tensor_groups.find(kCudaRngGroup);
  if (cuda == tensor_groups.end()) return;
  const int gpus = static_cast<int>(torch::cuda::device_count());
  for (const auto& [index, state] : cuda->second) {
    const int i = std::stoi(index);
    if (i >= gpus) continue;
    auto g = cuda_generator(i);
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_state(state);
  }
}

void CheckpointState::add_rng(const std::string& name, const std::mt19937_64& engine) {
  std::ostringstream os;
  os << engine;
  std_rngs[name] = os.str();
}

void CheckpointState::load_rng(const std::string& name, std::mt19937_64& engine) const {
  auto it = std_rngs.find(name);
  if (it == std_rngs.end()) {
    throw DataError("checkpoint has no RNG engine '" + name + "' (engines: " + key_list(std_rngs) + ")");
  }
  std::istringstream is(it->second);
  std::mt19937_64 restored;
  is >> restored;
  if (!is) throw DataError("checkpoint RNG engine '" + name + "' has an unreadable state");
  engine = restored;
}

const ExtraValue& CheckpointState::extra_at(const std::string& key) const {
  auto it = extra.find(key);
  if (it == extra.end()) {
    throw DataError("checkpoint extra state has no key '" + key + "' (keys: " + key_list(extra) + ")");
  }
  return it->second;
}

void CheckpointState::throw_wrong_type(const std::string& key, const ExtraValue& found, const char* wanted) {
  throw DataError("checkpoint extra state '" + key + "' holds " + extra_type_name(found) + ", not " + wanted);
}

}  // namespace troupe::core
