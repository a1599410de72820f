// Reading the JSON files of a Hugging Face model directory (config.json, model.safetensors.index.json) with errors
// that name the file and the key. Shared by models/hf_gpt2.cpp, models/hf_llama.cpp and models/safetensors_shards.cpp;
// not a config schema (each reader decides which keys it needs) and not a writer.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

namespace troupe::models::hf_json {

// DataError "<path>: key '<key>': <what>".
[[noreturn]] void bad_key(const std::filesystem::path& path, const std::string& key, const std::string& what);

// The file parsed as a JSON object. IoError when it cannot be opened; DataError for invalid JSON or a non-object
// (`what` names the expected content, e.g. "GPT2Config").
nlohmann::json read_object(const std::filesystem::path& path, const std::string& what);

// True when j has `key` with a non-null value.
inline bool has(const nlohmann::json& j, const std::string& key) { return j.contains(key) && !j[key].is_null(); }

// Reads j[key] as T (bool, an integer, a floating point type or std::string) when present (null counts as absent);
// `fallback` when absent; DataError naming path and key when mistyped, or when absent with no fallback
// ("missing (required for <required_for>)"). Errors call the key `shown_as` when given (a nested key:
// "rope_parameters.factor").
template <class T>
T get(const std::filesystem::path& path, const nlohmann::json& j, const std::string& key, const T* fallback,
      const std::string& required_for, const std::string& shown_as = "") {
  const std::string& name = shown_as.empty() ? key : shown_as;
  if (!has(j, key)) {
    if (fallback == nullptr) bad_key(path, name, "missing (required for " + required_for + ")");
    return *fallback;
  }
  const nlohmann::json& v = j[key];
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) bad_key(path, name, "expected true or false, got " + v.dump());
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) bad_key(path, name, "expected an integer, got " + v.dump());
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) bad_key(path, name, "expected a number, got " + v.dump());
  } else {
    if (!v.is_string()) bad_key(path, name, "expected a string, got " + v.dump());
  }
  return v.get<T>();
}

}  // namespace troupe::models::hf_json
