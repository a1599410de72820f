// Fuzz target: token files (tokenizers/token_file.h). The input is split at the first NUL byte into the JSON
// sidecar and the raw ids; the file is opened, memory-mapped and read end to end. A sidecar that disagrees with
// the data (size, dtype, count) must be a DataError, never an out-of-bounds read.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/errors.h"
#include "fuzz/fuzz_support.h"
#include "tokenizers/token_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string all(reinterpret_cast<const char*>(data), size);
  const size_t nul = all.find('\0');
  const std::string sidecar = nul == std::string::npos ? all : all.substr(0, nul);
  const std::string ids = nul == std::string::npos ? std::string() : all.substr(nul + 1);
  const auto path = troupe::fuzz::scratch() / "t.bin";
  troupe::fuzz::write(path, ids);
  troupe::fuzz::write(path.string() + ".json", sidecar);
  try {
    troupe::tokenizers::TokenFile file(path);
    const uint64_t n = std::min<uint64_t>(file.size(), 4096);
    std::vector<int64_t> out(n);
    if (n > 0) file.read(0, n, out.data());
    if (file.size() > 0) (void)file[file.size() - 1];
  } catch (const troupe::Error&) {
  }
  return 0;
}
