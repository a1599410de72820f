// Fuzz target: the safetensors reader (models/safetensors.h). The input is the file: header length, JSON header and
// data buffer; it is written to a scratch file, its header read alone and then the whole file loaded. A header that
// disagrees with the file (lengths, offsets, shapes, dtypes, coverage) must be a DataError naming the file, never an
// out-of-bounds read or an allocation the file does not back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/errors.h"
#include "fuzz/fuzz_support.h"
#include "models/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = troupe::fuzz::scratch() / "fz.safetensors";
  troupe::fuzz::write(path, std::string_view(reinterpret_cast<const char*>(data), size));
  try {
    const troupe::models::SafetensorsHeader header = troupe::models::read_safetensors_header(path);
    const troupe::models::SafetensorsFile file = troupe::models::load_safetensors(path);
    if (file.tensors.size() != header.entries.size()) std::abort();
    for (const auto& [name, t] : file.tensors) (void)file.get(name);
  } catch (const troupe::Error&) {
  }
  return 0;
}
