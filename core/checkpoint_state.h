// What one checkpoint holds, in memory: named tensor groups, optimizer archives, RNG states and a
// typed map of extra state, with helpers to capture it from and restore it into live objects.
// Not the on-disk format, durability or directory management: see core/checkpoint_manager.h.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "core/errors.h"

namespace torch::nn {
class Module;
}
namespace torch::optim {
class Optimizer;
}

namespace troupe::core {

// One value of extra state: step counters, the data cursor, a KL coefficient, a weight version.
// Assign with the exact type (`extra["epoch"] = int64_t{3}`, `extra["kl"] = 0.1`).
using ExtraValue = std::variant<int64_t, double, bool, std::string, std::vector<int64_t>, std::vector<double>>;

// Name of the alternative `value` holds: "int64", "double", "bool", "string", "int64[]", "double[]".
const char* extra_type_name(const ExtraValue& value);

// Throws DataError unless `name` can be a file-name stem: 1-100 chars of [A-Za-z0-9_-].
// `what` says which kind of name it is ("tensor group", "optimizer", ...) for the message.
void check_checkpoint_name(const std::string& name, const char* what);

struct CheckpointState {
  int64_t step = 0;  // training step this checkpoint belongs to; names its directory step_<N>
  // group -> tensor name -> tensor (any shape and dtype). A group is one file <group>.pt.
  std::map<std::string, std::map<std::string, torch::Tensor>> tensor_groups;
  // name -> bytes of a torch::serialize::OutputArchive written by Optimizer::save.
  std::map<std::string, std::string> optimizer_blobs;
  std::optional<torch::Tensor> torch_rng;       // (S,) uint8: default CPU generator state, if captured
  std::map<std::string, std::string> std_rngs;  // engine name -> std::mt19937_64 text state
  std::map<std::string, ExtraValue> extra;      // typed scalars and small vectors

  // Copies m's parameters and buffers (recursive, dotted names like "fc1.weight") into group
  // `name`. Cost: one full detached copy of every tensor, moved to the CPU.
  void add_module(const std::string& name, const torch::nn::Module& m);
  // Copies group `name` into m's parameters and buffers under NoGradGuard, converting to each
  // target's device. Checks everything first: DataError listing every missing or unexpected
  // name and every shape or dtype mismatch, in which case m is left untouched.
  void load_module(const std::string& name, torch::nn::Module& m) const;

  // Serialises o (param groups, options and per-parameter state such as Adam moments).
  void add_optimizer(const std::string& name, const torch::optim::Optimizer& o);
  // Restores o from the blob: per-parameter state and each param group's options (lr, betas,
  // weight decay...; plain libtorch Optimizer::load keeps the fresh optimizer's options instead).
  // o must be of the same type, built over the same parameters in the same order (a fresh
  // optimizer over a model loaded with load_module). DataError if missing or unreadable.
  void load_optimizer(const std::string& name, torch::optim::Optimizer& o) const;

  // Copies/restores the state of torch's default CPU generator (dropout, randn, bernoulli).
  void capture_torch_rng();
  void restore_torch_rng() const;  // DataError if none was captured

  void add_rng(const std::string& name, const std::mt19937_64& engine);
  void load_rng(const std::string& name, std::mt19937_64& engine) const;  // DataError if missing

  // The extra value at `key` as T (one of ExtraValue's alternatives). DataError naming the key
  // if it is missing (listing the keys present) or holds another type (naming both types).
  template <class T>
  T get(const std::string& key) const;
  // As get<T>, but `fallback` when the key is missing. A present key of another type still throws.
  template <class T>
  T get_or(const std::string& key, T fallback) const;

 private:
  const ExtraValue& extra_at(const std::string& key) const;
  [[noreturn]] static void throw_wrong_type(const std::string& key, const ExtraValue& found, const char* wanted);
};

// ---- template implementations ----

template <class T>
T CheckpointState::get(const std::string& key) const {
  static_assert(std::is_constructible_v<ExtraValue, std::in_place_type_t<T>>,
                "get<T>: T must be one of ExtraValue's alternatives (int64_t, double, bool, "
                "std::string, std::vector<int64_t>, std::vector<double>)");
  const ExtraValue& value = extra_at(key);
  if (const T* typed = std::get_if<T>(&value)) return *typed;
  throw_wrong_type(key, value, extra_type_name(ExtraValue(std::in_place_type<T>)));
}

template <class T>
T CheckpointState::get_or(const std::string& key, T fallback) const {
  if (extra.find(key) == extra.end()) return fallback;
  return get<T>(key);
}

}  // namespace troupe::core
