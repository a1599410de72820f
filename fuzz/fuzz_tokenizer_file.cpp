// Fuzz target: tokenizer files through open_tokenizer. The first byte picks the format (Troupe/Hugging Face
// JSON, or a .tiktoken rank file with its .meta.json), the rest is the file; a loaded tokenizer then encodes and
// decodes a short text. Malformed files must be DataError / ConfigError naming the file.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/errors.h"
#include "fuzz/fuzz_support.h"
#include "tokenizers/tokenizer_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto dir = troupe::fuzz::scratch();
  std::string path;
  if (data[0] % 2 == 0) {
    path = (dir / "tok.json").string();
    troupe::fuzz::write(path, body);
  } else {
    path = (dir / "fz.tiktoken").string();
    troupe::fuzz::write(path, body);
    troupe::fuzz::write(dir / "fz.meta.json", R"({"pattern": "gpt2", "special_tokens": {"<|endoftext|>": 300}})");
  }
  try {
    const auto tok = troupe::tokenizers::open_tokenizer(path);
    const auto ids = tok.encode_ordinary("Hello, world! 123 fuzz");
    (void)tok.decode_lossy_utf8(ids);
  } catch (const troupe::Error&) {
  }
  return 0;
}
