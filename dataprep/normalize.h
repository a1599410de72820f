// Text normalisation for data cleaning: Unicode normal forms as Python's unicodedata.normalize computes them (ICU's
// Normalizer2, the same Unicode data version checked in the test), and the whitespace and control-character cleanup
// that every cleaning pipeline applies before filtering and de-duplication.
#pragma once

#include <string>
#include <string_view>

namespace troupe::dataprep {

enum class NormalForm { kNfc, kNfd, kNfkc, kNfkd };
// "NFC" | "NFD" | "NFKC" | "NFKD"; ConfigError naming the accepted forms otherwise.
NormalForm parse_normal_form(const std::string& name);

// unicodedata.normalize(form, text) on UTF-8 text. Malformed UTF-8 is a DataError naming `what`.
std::string normalize(std::string_view text, NormalForm form, const std::string& what = "text");

// "\r\n" and lone "\r" made "\n"; every other whitespace character (Python's str.isspace: tab, vertical tab, form
// feed, U+001C..U+001F, NEL, NBSP, the Unicode spaces) a space; the remaining control characters (category Cc) and
// the invisible U+200B ZERO WIDTH SPACE, U+FEFF BYTE ORDER MARK and U+00AD SOFT HYPHEN removed; runs of spaces within
// a line squeezed to one, spaces at line starts and ends dropped, 3+ newlines squeezed to 2 (one blank line), and
// leading and trailing newlines removed.
std::string clean_whitespace(std::string_view text);

}  // namespace troupe::dataprep
