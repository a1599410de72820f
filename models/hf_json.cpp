// Implementation of models/hf_json.h.
#include "models/hf_json.h"

#include <fstream>
#include <sstream>

#include "core/errors.h"

namespace troupe::models::hf_json {

void bad_key(const std::filesystem::path& path, const std::string& key, const std::string& what) {
  throw DataError(path.string() + ": key '" + key + "': " + what);
}

nlohmann::json read_object(const std::filesystem::path& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {  // syntax, or a number out of range
    throw DataError(path.string() + ": invalid JSON: " + e.what());
  }
  if (!j.is_object()) throw DataError(path.string() + ": expected a JSON object (" + what + ")");
  return j;
}

}  // namespace troupe::models::hf_json
