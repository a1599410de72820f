#include "dataprep/normalize.h"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include "core/errors.h"
#include "core/utf8.h"
#include "metrics/unicode.h"

namespace troupe::dataprep {

NormalForm parse_normal_form(const std::string& name) {
  if (name == "NFC") return NormalForm::kNfc;
  if (name == "NFD") return NormalForm::kNfd;
  if (name == "NFKC") return NormalForm::kNfkc;
  if (name == "NFKD") return NormalForm::kNfkd;
  throw ConfigError("normal form '" + name + "': expected NFC, NFD, NFKC or NFKD");
}

std::string normalize(std::string_view text, NormalForm form, const std::string& what) {
  metrics::decode_utf8(text, what);  // DataError for malformed UTF-8 (ICU would replace it silently)
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = nullptr;
  switch (form) {
    case NormalForm::kNfc: n = icu::Normalizer2::getNFCInstance(status); break;
    case NormalForm::kNfd: n = icu::Normalizer2::getNFDInstance(status); break;
    case NormalForm::kNfkc: n = icu::Normalizer2::getNFKCInstance(status); break;
    case NormalForm::kNfkd: n = icu::Normalizer2::getNFKDInstance(status); break;
  }
  if (U_FAILURE(status) || n == nullptr) throw Error(std::string("ICU normalizer unavailable: ") + u_errorName(status));
  const icu::UnicodeString in =
      icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  if (n->isNormalized(in, status) && U_SUCCESS(status)) return std::string(text);
  status = U_ZERO_ERROR;
  const icu::UnicodeString out = n->normalize(in, status);
  if (U_FAILURE(status)) throw DataError(what + ": normalisation failed: " + u_errorName(status));
  std::string utf8;
  out.toUTF8String(utf8);
  return utf8;
}

std::string clean_whitespace(std::string_view text) {
  const std::u32string in = metrics::decode_utf8(text, "text");
  std::u32string out;
  out.reserve(in.size());
  size_t newlines = 0;  // consecutive newlines just written
  bool pending_space = false;
  for (size_t i = 0; i < in.size(); ++i) {
    char32_t c = in[i];
    if (c == U'\r') {
      if (i + 1 < in.size() && in[i + 1] == U'\n') continue;  // \r\n -> \n
      c = U'\n';
    }
    if (c == U'\n') {
      pending_space = false;  // spaces at a line end are dropped
      if (out.empty()) continue;
      if (++newlines <= 2) out.push_back(U'\n');
      continue;
    }
    if (metrics::is_space(c)) {  // tabs, vertical tab, form feed, U+001C..U+001F, NEL, NBSP, ...
      pending_space = true;
      continue;
    }
    const bool control = c < 0x20 || (c >= 0x7F && c <= 0x9F);
    if (control || c == 0x200B || c == 0xFEFF || c == 0xAD) continue;
    if (pending_space && !out.empty() && out.back() != U'\n') out.push_back(U' ');
    pending_space = false;
    newlines = 0;
    out.push_back(c);
  }
  while (!out.empty() && out.back() == U'\n') out.pop_back();
  return core::encode_utf8(out);
}

}  // namespace troupe::dataprep
