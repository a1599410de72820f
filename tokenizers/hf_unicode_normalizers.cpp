// The Unicode normalizers of a tokenizer.json (NFC, NFD, NFKC, NFKD, Lowercase) on ICU. Declared in
// tokenizers/hf_pipeline.h (detail); the rest of the pipeline is tokenizers/hf_pipeline.cpp. Lowercase maps each
// code point on its own (full mapping, no final-sigma context), as Rust's char::to_lowercase in `tokenizers`.
#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/ustring.h>
#include <unicode/utf8.h>

#include "core/errors.h"
#include "tokenizers/hf_pipeline.h"

namespace troupe::tokenizers {
namespace {

class NormalFormNorm : public HfNormalizer {
 public:
  explicit NormalFormNorm(const icu::Normalizer2* n) : n_(n) {}
  void apply(std::string& text) const override {
    std::string out;
    icu::StringByteSink<std::string> sink(&out, static_cast<int32_t>(text.size()));
    UErrorCode status = U_ZERO_ERROR;
    n_->normalizeUTF8(0, icu::StringPiece(text.data(), static_cast<int32_t>(text.size())), sink, nullptr, status);
    if (U_FAILURE(status)) throw DataError(std::string("Unicode normalization failed: ") + u_errorName(status));
    text = std::move(out);
  }

 private:
  const icu::Normalizer2* n_;  // owned by ICU, lives for the process
};

class LowercaseNorm : public HfNormalizer {
 public:
  void apply(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    const auto* s = reinterpret_cast<const uint8_t*>(text.data());
    const auto n = static_cast<int32_t>(text.size());
    for (int32_t i = 0; i < n;) {
      UChar32 c = 0;
      U8_NEXT(s, i, n, c);
      if (c < 0) c = 0xFFFD;
      UChar in[2];
      int32_t in_len = 0;
      U16_APPEND_UNSAFE(in, in_len, c);
      UChar lower[8];
      UErrorCode status = U_ZERO_ERROR;
      const int32_t len = u_strToLower(lower, 8, in, in_len, "", &status);
      if (U_FAILURE(status)) throw DataError(std::string("lowercasing failed: ") + u_errorName(status));
      for (int32_t k = 0; k < len;) {
        UChar32 cp = 0;
        U16_NEXT_UNSAFE(lower, k, cp);
        detail::append_utf8(static_cast<char32_t>(cp), out);
      }
    }
    text = std::move(out);
  }
};

}  // namespace

namespace detail {

std::unique_ptr<HfNormalizer> make_unicode_normalizer(const std::string& type) {
  if (type == "Lowercase") return std::make_unique<LowercaseNorm>();
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = type == "NFC"    ? icu::Normalizer2::getNFCInstance(status)
                              : type == "NFD"  ? icu::Normalizer2::getNFDInstance(status)
                              : type == "NFKC" ? icu::Normalizer2::getNFKCInstance(status)
                              : type == "NFKD" ? icu::Normalizer2::getNFKDInstance(status)
                                               : nullptr;
  if (n == nullptr || U_FAILURE(status)) return nullptr;
  return std::make_unique<NormalFormNorm>(n);
}

}  // namespace detail
}  // namespace troupe::tokenizers
