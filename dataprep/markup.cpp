// HTML to text, URL replacement and Latin-1/Windows-1252 mojibake repair (dataprep/markup.h).
// Not a tokenizer that conforms to HTML5: a streaming tag scanner good enough for crawled pages before filtering.
#include "dataprep/markup.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "core/errors.h"
#include "dataprep/normalize.h"
#include "metrics/py_regex.h"
#include "metrics/unicode.h"

namespace troupe::dataprep {
namespace {

// Named character references of HTML5 in common use (the full table has 2231); the decoded UTF-8 text.
const std::unordered_map<std::string_view, std::string_view>& named_entities() {
  static const std::unordered_map<std::string_view, std::string_view> kTable = {
      {"amp", "&"},       {"lt", "<"},          {"gt", ">"},        {"quot", "\""},    {"apos", "'"},
      {"nbsp", "\u00a0"}, {"iexcl", "¡"},       {"cent", "¢"},      {"pound", "£"},    {"curren", "¤"},
      {"yen", "¥"},       {"brvbar", "¦"},      {"sect", "§"},      {"uml", "¨"},      {"copy", "©"},
      {"ordf", "ª"},      {"laquo", "«"},       {"not", "¬"},       {"shy", "\u00ad"}, {"reg", "®"},
      {"macr", "¯"},      {"deg", "°"},         {"plusmn", "±"},    {"sup2", "²"},     {"sup3", "³"},
      {"acute", "´"},     {"micro", "µ"},       {"para", "¶"},      {"middot", "·"},   {"cedil", "¸"},
      {"sup1", "¹"},      {"ordm", "º"},        {"raquo", "»"},     {"frac14", "¼"},   {"frac12", "½"},
      {"frac34", "¾"},    {"iquest", "¿"},      {"Agrave", "À"},    {"Aacute", "Á"},   {"Acirc", "Â"},
      {"Atilde", "Ã"},    {"Auml", "Ä"},        {"Aring", "Å"},     {"AElig", "Æ"},    {"Ccedil", "Ç"},
      {"Egrave", "È"},    {"Eacute", "É"},      {"Ecirc", "Ê"},     {"Euml", "Ë"},     {"Igrave", "Ì"},
      {"Iacute", "Í"},    {"Icirc", "Î"},       {"Iuml", "Ï"},      {"ETH", "Ð"},      {"Ntilde", "Ñ"},
      {"Ograve", "Ò"},    {"Oacute", "Ó"},      {"Ocirc", "Ô"},     {"Otilde", "Õ"},   {"Ouml", "Ö"},
      {"times", "×"},     {"Oslash", "Ø"},      {"Ugrave", "Ù"},    {"Uacute", "Ú"},   {"Ucirc", "Û"},
      {"Uuml", "Ü"},      {"Yacute", "Ý"},      {"THORN", "Þ"},     {"szlig", "ß"},    {"agrave", "à"},
      {"aacute", "á"},    {"acirc", "â"},       {"atilde", "ã"},    {"auml", "ä"},     {"aring", "å"},
      {"aelig", "æ"},     {"ccedil", "ç"},      {"egrave", "è"},    {"eacute", "é"},   {"ecirc", "ê"},
      {"euml", "ë"},      {"igrave", "ì"},      {"iacute", "í"},    {"icirc", "î"},    {"iuml", "ï"},
      {"eth", "ð"},       {"ntilde", "ñ"},      {"ograve", "ò"},    {"oacute", "ó"},   {"ocirc", "ô"},
      {"otilde", "õ"},    {"ouml", "ö"},        {"divide", "÷"},    {"oslash", "ø"},   {"ugrave", "ù"},
      {"uacute", "ú"},    {"ucirc", "û"},       {"uuml", "ü"},      {"yacute", "ý"},   {"thorn", "þ"},
      {"yuml", "ÿ"},      {"OElig", "Œ"},       {"oelig", "œ"},     {"Scaron", "Š"},   {"scaron", "š"},
      {"Yuml", "Ÿ"},      {"fnof", "ƒ"},        {"circ", "ˆ"},      {"tilde", "˜"},    {"ensp", "\u2002"},
      {"emsp", "\u2003"}, {"thinsp", "\u2009"}, {"zwnj", "\u200c"}, {"zwj", "\u200d"}, {"lrm", "\u200e"},
      {"rlm", "\u200f"},  {"ndash", "–"},       {"mdash", "—"},     {"lsquo", "‘"},    {"rsquo", "’"},
      {"sbquo", "‚"},     {"ldquo", "“"},       {"rdquo", "”"},     {"bdquo", "„"},    {"dagger", "†"},
      {"Dagger", "‡"},    {"bull", "•"},        {"hellip", "…"},    {"permil", "‰"},   {"prime", "′"},
      {"Prime", "″"},     {"lsaquo", "‹"},      {"rsaquo", "›"},    {"oline", "‾"},    {"frasl", "⁄"},
      {"euro", "€"},      {"trade", "™"},       {"larr", "←"},      {"uarr", "↑"},     {"rarr", "→"},
      {"darr", "↓"},      {"harr", "↔"},        {"rArr", "⇒"},      {"lArr", "⇐"},     {"hArr", "⇔"},
      {"forall", "∀"},    {"part", "∂"},        {"exist", "∃"},     {"empty", "∅"},    {"nabla", "∇"},
      {"isin", "∈"},      {"notin", "∉"},       {"prod", "∏"},      {"sum", "∑"},      {"minus", "−"},
      {"radic", "√"},     {"prop", "∝"},        {"infin", "∞"},     {"and", "∧"},      {"or", "∨"},
      {"cap", "∩"},       {"cup", "∪"},         {"int", "∫"},       {"asymp", "≈"},    {"ne", "≠"},
      {"equiv", "≡"},     {"le", "≤"},          {"ge", "≥"},        {"sub", "⊂"},      {"sup", "⊃"},
      {"loz", "◊"},       {"hearts", "♥"},      {"Alpha", "Α"},     {"Beta", "Β"},     {"Gamma", "Γ"},
      {"Delta", "Δ"},     {"Theta", "Θ"},       {"Lambda", "Λ"},    {"Pi", "Π"},       {"Sigma", "Σ"},
      {"Phi", "Φ"},       {"Psi", "Ψ"},         {"Omega", "Ω"},     {"alpha", "α"},    {"beta", "β"},
      {"gamma", "γ"},     {"delta", "δ"},       {"epsilon", "ε"},   {"zeta", "ζ"},     {"eta", "η"},
      {"theta", "θ"},     {"iota", "ι"},        {"kappa", "κ"},     {"lambda", "λ"},   {"mu", "μ"},
      {"nu", "ν"},        {"xi", "ξ"},          {"omicron", "ο"},   {"pi", "π"},       {"rho", "ρ"},
      {"sigmaf", "ς"},    {"sigma", "σ"},       {"tau", "τ"},       {"upsilon", "υ"},  {"phi", "φ"},
      {"chi", "χ"},       {"psi", "ψ"},         {"omega", "ω"}};
  return kTable;
}

// Windows-1252 at 0x80..0x9F; the five bytes it leaves undefined map to the C1 control of the same value, as in
// ftfy's sloppy-windows-1252 and HTML5's numeric-reference remap.
constexpr char32_t kCp1252High[32] = {0x20AC, 0x81,   0x201A, 0x192,  0x201E, 0x2026, 0x2020, 0x2021,
                                      0x2C6,  0x2030, 0x160,  0x2039, 0x152,  0x8D,   0x17D,  0x8F,
                                      0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                      0x2DC,  0x2122, 0x161,  0x203A, 0x153,  0x9D,   0x17E,  0x178};

constexpr const char* kFtfyBadness = R"ftfy(
    [-]
    |
    [¦¤¨¬¯¸ƒˆˇ˘˛˜†‡‰⌐◊�ªºßà-ñăąāćčďđęěēėğģįīķĺľłļœŕśşšťüźżžґﬁﬂÀ-ÑØÜÝĂĀĄĆČĎĐĘĚĒĖĞĢİĪĶĹĽŁĻŃŇŅŒŘŚŞŠŢŤŮŰŸŹŻŽҐ│┌┐┘├┤┬┼═-╬▀▄█▌▐░▒▓¡«¿©΄΅‘‚“„•‹®»˝”›™¢£¥₧€²³¹±¼½¾×µ÷⁄∂∆∏∑√∞∩∫≈≠≡≤≥№¶§] [¦¤¨¬¯¸ƒˆˇ˘˛˜†‡‰⌐◊�ªº]
    |
    [a-zA-Z] [α-ωάέήίΰа-џÞΑ-ΩΆΈΉΊΌΎΏΪΫЁ-Я] [¦¤¨¬¯¸ƒˆˇ˘˛˜†‡‰⌐◊�ªº]
    |
    [¦¤¨¬¯¸ƒˆˇ˘˛˜†‡‰⌐◊�ªº] [ßà-ñăąāćčďđęěēėğģįīķĺľłļœŕśşšťüźżžґﬁﬂÀ-ÑØÜÝĂĀĄĆČĎĐĘĚĒĖĞĢİĪĶĹĽŁĻŃŇŅŒŘŚŞŠŢŤŮŰŸŹŻŽҐ│┌┐┘├┤┬┼═-╬▀▄█▌▐░▒▓¡«¿©΄΅‘‚“„•‹®»˝”›™¢£¥₧€²³¹±¼½¾×µ÷⁄∂∆∏∑√∞∩∫≈≠≡≤≥№¶§]
    |
    [ßà-ñăąāćčďđęěēėğģįīķĺľłļœŕśşšťüźżžґﬁﬂα-ωάέήίΰа-џ│┌┐┘├┤┬┼═-╬▀▄█▌▐░▒▓®»˝”›™¢£¥₧€²³¹±¼½¾×µ÷⁄∂∆∏∑√∞∩∫≈≠≡≤≥№] [À-ÑØÜÝĂĀĄĆČĎĐĘĚĒĖĞĢİĪĶĹĽŁĻŃŇŅŒŘŚŞŠŢŤŮŰŸŹŻŽҐ]
    |
    [│┌┐┘├┤┬┼═-╬▀▄█▌▐░▒▓®»˝”›™¢£¥₧€²³¹±¼½¾×µ÷⁄∂∆∏∑√∞∩∫≈≠≡≤≥№] [ßà-ñăąāćčďđęěēėğģįīķĺľłļœŕśşšťüźżžґﬁﬂ]
    |
    [ßà-ñăąāćčďđęěēėğģįīķĺľłļœŕśşšťüźżžґﬁﬂ│┌┐┘├┤┬┼═-╬▀▄█▌▐░▒▓®»˝”›™] [¢£¥₧€]
    |
    \s [À-ÑØÜÝĂĀĄĆČĎĐĘĚĒĖĞĢİĪĶĹĽŁĻŃŇŅŒŘŚŞŠŢŤŮŰŸŹŻŽҐ] [¢£¥₧€]
    |
    [À-ÑØÜÝĂĀĄĆČĎĐĘĚĒĖĞĢİĪĶĹĽŁĻŃŇŅŒŘŚŞŠŢŤŮŰŸŹŻŽҐ│┌┐┘├┤┬┼═-╬▀▄█▌▐░▒▓] [²³¹±¼½¾×µ÷⁄∂∆∏∑√∞∩∫≈≠≡≤≥№¶§]
    |
    [ßà-ñăąāćčďđęěēėğģįīķĺľłļœŕśşšťüźżžґﬁﬂÀ-ÑØÜÝĂĀĄĆČĎĐĘĚĒĖĞĢİĪĶĹĽŁĻŃŇŅŒŘŚŞŠŢŤŮŰŸŹŻŽҐ│┌┐┘├┤┬┼═-╬▀▄█▌▐░▒▓¢£¥₧€®»˝”›™] [¡«¿©΄΅‘‚“„•‹] [²³¹±¼½¾×µ÷⁄∂∆∏∑√∞∩∫≈≠≡≤≥№]
    |
    [ßà-ñăąāćčďđęěēėğģįīķĺľłļœŕśşšťüźżžґﬁﬂÀ-ÑØÜÝĂĀĄĆČĎĐĘĚĒĖĞĢİĪĶĹĽŁĻŃŇŅŒŘŚŞŠŢŤŮŰŸŹŻŽҐ¢£¥₧€²³¹±¼½¾×µ÷⁄∂∆∏∑√∞∩∫≈≠≡≤≥№│┌┐┘├┤┬┼═-╬▀▄█▌▐░▒▓¶§] [®»˝”›™] [¡«¿©΄΅‘‚“„•‹]
    |
    [¢£¥₧€²³¹±¼½¾×µ÷⁄∂∆∏∑√∞∩∫≈≠≡≤≥№│┌┐┘├┤┬┼═-╬▀▄█▌▐░▒▓] [¡«¿©΄΅‘‚“„•‹]
    |
    [a-z] [À-ÑØÜÝĂĀĄĆČĎĐĘĚĒĖĞĢİĪĶĹĽŁĻŃŇŅŒŘŚŞŠŢŤŮŰŸŹŻŽҐ] [¡«¿©΄΅‘‚“„•‹¢£¥₧€]
    |
    [│┌┐┘├┤┬┼═-╬▀▄█▌▐░▒▓] [Ò-ÖÙ-Üò-öø-üŐŌŪŲ°]
    |
    [ßà-ñăąāćčďđęěēėğģįīķĺľłļœŕśşšťüźżžґﬁﬂÀ-ÑØÜÝĂĀĄĆČĎĐĘĚĒĖĞĢİĪĶĹĽŁĻŃŇŅŒŘŚŞŠŢŤŮŰŸŹŻŽҐ¢£¥₧€²³¹±¼½¾×µ÷⁄∂∆∏∑√∞∩∫≈≠≡≤≥№¡«¿©΄΅‘‚“„•‹®»˝”›™¶§] [│┌┐┘├┤┬┼═-╬▀▄█▌▐░▒▓]
    |
    [│┌┐┘├┤┬┼═-╬▀▄█▌▐░▒▓] [®»˝”›™]
    |
    [ßà-ñăąāćčďđęěēėğģįīķĺľłļœŕśşšťüźżžґﬁﬂÀ-ÑØÜÝĂĀĄĆČĎĐĘĚĒĖĞĢİĪĶĹĽŁĻŃŇŅŒŘŚŞŠŢŤŮŰŸŹŻŽҐ] [¡«¿©΄΅‘‚“„•‹®»˝”›™] \w
    |

    # The ligature œ when not followed by an unaccented Latin letter
    [Œœ][^A-Za-z]
    |

    # Degree signs after capital letters
    [À-ÑØÜÝĂĀĄĆČĎĐĘĚĒĖĞĢİĪĶĹĽŁĻŃŇŅŒŘŚŞŠŢŤŮŰŸŹŻŽҐ]°
    |

    # Common Windows-1252 2-character mojibake that isn't covered by the cases above
    [ÂÃÎÐ][€œŠš¢£Ÿž\xa0\xad®©°·»¡«¿©΄΅‘‚“„•‹®»˝”›™–—´]
    |
    × [²³]
    |
    # Windows-1252 mojibake of Arabic words needs to include the 'common' characters.
    # To compensate, we require four characters to be matched.
      [ØÙ] [ ­·´–—―…’¢£¥₧€¦¤¨¬¯¸ƒˆˇ˘˛˜†‡‰⌐◊�ªº²³¹±¼½¾×µ÷⁄∂∆∏∑√∞∩∫≈≠≡≤≥№¡«¿©΄΅‘‚“„•‹ŸŠ®°µ»]
      [ØÙ] [ ­·´–—―…’¢£¥₧€¦¤¨¬¯¸ƒˆˇ˘˛˜†‡‰⌐◊�ªº²³¹±¼½¾×µ÷⁄∂∆∏∑√∞∩∫≈≠≡≤≥№¡«¿©΄΅‘‚“„•‹ŸŠ®°µ»]
    |

    # Windows-1252 mojibake that starts 3-character sequences for some South Asian
    # alphabets
    à[²µ¹¼½¾]
    |

    # MacRoman mojibake that isn't covered by the cases above
    √[±∂†≠®™´≤≥¥µø]
    |
    ≈[°¢]
    |
    ‚Ä[ìîïòôúùû†°¢π]
    |
    ‚[âó][àä°ê]
    |

    # Windows-1251 mojibake of characters in the U+2000 range
    вЂ
    |

    # Windows-1251 mojibake of Latin-1 characters and/or the Cyrillic alphabet.
    # Because the 2-character sequences involved here may be common, we require
    # seeing a 3-character sequence.
    [ВГРС][-¦¤¨¬¯¸ƒˆˇ˘˛˜†‡‰⌐◊�ªº¡«¿©΄΅‘‚“„•‹®»˝”›™¢£¥₧€°µ][ВГРС]
    |
    # A distinctive five-character sequence of Cyrillic letters, which can be
    # Windows-1251 mojibake on top of Latin-1 mojibake of Windows-1252 characters.
    # Require a Latin letter nearby.
    ГўВЂВ.[A-Za-z ]
    |

    # Windows-1252 encodings of 'à' and 'á', as well as \xa0 itself
    Ã[\xa0¡]
    |
    [a-z]\s?[ÃÂ][ ]
    |
    ^[ÃÂ][ ]
    |

    # Cases where Â precedes a character as an encoding of exactly the same
    # character, and the character is common enough
    [a-z.,?!®»˝”›™] Â [ ¡«¿©΄΅‘‚“„•‹®»˝”›™]
    |

    # Windows-1253 mojibake of characters in the U+2000 range
    β€[™\xa0Ά\xad®°]
    |

    # Windows-1253 mojibake of Latin-1 characters and/or the Greek alphabet
    [ΒΓΞΟ][-¦¤¨¬¯¸ƒˆˇ˘˛˜†‡‰⌐◊�ªº¡«¿©΄΅‘‚“„•‹®»˝”›™¢£¥₧€°][ΒΓΞΟ]
    |

    # Windows-1257 mojibake of characters in the U+2000 range
    ā€
    )ftfy";

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_alnum_ascii(char c) { return is_alpha(c) || (c >= '0' && c <= '9'); }
char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
  return out;
}

enum class TagKind { kInline, kDropContent, kCell, kLine, kParagraph, kBreak };

TagKind tag_kind(const std::string& name) {
  static const std::unordered_set<std::string> kDrop = {"script", "style", "head", "noscript", "template"};
  static const std::unordered_set<std::string> kParagraph = {"p",  "h1", "h2", "h3",  "h4",
                                                             "h5", "h6", "hr", "pre", "blockquote"};
  static const std::unordered_set<std::string> kLine = {
      "div",     "li",    "ul",     "ol",         "dl",      "dt",       "dd",     "table",   "tr",
      "thead",   "tbody", "tfoot",  "caption",    "section", "article",  "header", "footer",  "nav",
      "aside",   "main",  "figure", "figcaption", "form",    "fieldset", "legend", "address", "details",
      "summary", "body",  "html",   "title",      "option",  "center",   "dialog", "menu"};
  if (name == "br") return TagKind::kBreak;
  if (name == "td" || name == "th") return TagKind::kCell;
  if (kDrop.count(name)) return TagKind::kDropContent;
  if (kParagraph.count(name)) return TagKind::kParagraph;
  if (kLine.count(name)) return TagKind::kLine;
  return TagKind::kInline;
}

// The end of the tag starting at `lt` (one past its '>', quoted attribute values skipped), or the text's end.
size_t tag_end(std::string_view s, size_t lt) {
  char quote = 0;
  for (size_t i = lt + 1; i < s.size(); ++i) {
    if (quote != 0) {
      if (s[i] == quote) quote = 0;
    } else if (s[i] == '"' || s[i] == '\'') {
      quote = s[i];
    } else if (s[i] == '>') {
      return i + 1;
    }
  }
  return s.size();
}

size_t find_ci(std::string_view s, std::string_view needle, size_t from) {
  for (size_t i = from; i + needle.size() <= s.size(); ++i) {
    size_t k = 0;
    while (k < needle.size() && ascii_lower(s[i + k]) == needle[k]) ++k;
    if (k == needle.size()) return i;
  }
  return std::string_view::npos;
}

char32_t numeric_reference(uint64_t v) {
  if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0xFFFD;
  if (v >= 0x80 && v <= 0x9F) return kCp1252High[v - 0x80];
  return static_cast<char32_t>(v);
}

// Decodes the character reference at s[amp] == '&' into out; the bytes consumed, 0 when it is not one.
size_t decode_reference(std::string_view s, size_t amp, std::string& out) {
  size_t i = amp + 1;
  if (i < s.size() && s[i] == '#') {
    const bool hex = i + 1 < s.size() && (s[i + 1] == 'x' || s[i + 1] == 'X');
    size_t j = i + (hex ? 2 : 1), start = j;
    uint64_t v = 0;
    while (j < s.size() &&
           (hex ? std::isxdigit(static_cast<unsigned char>(s[j])) : std::isdigit(static_cast<unsigned char>(s[j])))) {
      const int d = std::isdigit(static_cast<unsigned char>(s[j])) ? s[j] - '0' : ascii_lower(s[j]) - 'a' + 10;
      v = std::min<uint64_t>(v * (hex ? 16 : 10) + d, 0x110000);
      ++j;
    }
    if (j == start) return 0;
    metrics::append_utf8(out, numeric_reference(v));
    return (j < s.size() && s[j] == ';' ? j + 1 : j) - amp;
  }
  size_t j = i;
  while (j < s.size() && is_alnum_ascii(s[j])) ++j;
  if (j == i || j >= s.size() || s[j] != ';') return 0;
  const auto& table = named_entities();
  const auto it = table.find(s.substr(i, j - i));
  if (it == table.end()) return 0;
  out += it->second;
  return j + 1 - amp;
}

// Accumulates text with pending line breaks, emitted only before the next text so that runs of block tags give
// one break (or one blank line), never a pile of empty lines.
class TextSink {
 public:
  void text(std::string_view t) {
    if (!out_.empty()) out_.append(pending_, '\n');
    pending_ = 0;
    out_ += t;
  }
  void lines(size_t n) { pending_ = std::max(pending_, n); }
  void line_break() { ++pending_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
  size_t pending_ = 0;  // newlines owed before the next text
};

const metrics::PyRegex& badness() {
  static const metrics::PyRegex kBad(std::string("(?x)") + kFtfyBadness);  // Python's re.VERBOSE = PCRE2 (?x)
  return kBad;
}

// `text` as the bytes of Latin-1 (cp1252 == false) or of ftfy's sloppy-windows-1252; nullopt when a character
// has no byte there, or is U+FFFD / U+001A, which ftfy treats as lost bytes (outside the repaired class).
std::optional<std::string> encode_single_byte(const std::u32string& text, bool cp1252) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c == 0x1A) return std::nullopt;
    if (c < 0x80 || (c >= 0xA0 && c <= 0xFF) || (!cp1252 && c <= 0xFF)) {
      out += static_cast<char>(c);
      continue;
    }
    if (!cp1252) return std::nullopt;
    const auto* hit = std::find(std::begin(kCp1252High), std::end(kCp1252High), c);
    if (hit == std::end(kCp1252High)) return std::nullopt;
    out += static_cast<char>(0x80 + (hit - std::begin(kCp1252High)));
  }
  return out;
}

bool valid_utf8(const std::string& bytes) {
  try {
    metrics::decode_utf8(bytes);
    return true;
  } catch (const DataError&) {
    return false;
  }
}

}  // namespace

std::string html_to_text(std::string_view s) {
  TextSink sink;
  std::string run;  // text since the last tag, references decoded, source whitespace made spaces
  auto flush = [&] {
    if (!run.empty()) sink.text(run);
    run.clear();
  };
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (c == '&') {
      const size_t n = decode_reference(s, i, run);
      if (n > 0) {
        i += n;
        continue;
      }
    }
    if (c != '<' || i + 1 >= s.size()) {
      run += (c == '\n' || c == '\r' || c == '\t' || c == '\f') ? ' ' : c;
      ++i;
      continue;
    }
    if (s.substr(i, 4) == "<!--") {
      const size_t e = s.find("-->", i + 4);
      i = e == std::string_view::npos ? s.size() : e + 3;
      continue;
    }
    if (s[i + 1] == '!' || s[i + 1] == '?') {
      i = tag_end(s, i);
      continue;
    }
    const bool closing = s[i + 1] == '/';
    size_t j = i + (closing ? 2 : 1);
    if (j >= s.size() || !is_alpha(s[j])) {  // "a < b": text
      run += c;
      ++i;
      continue;
    }
    const size_t name_start = j;
    while (j < s.size() && (is_alnum_ascii(s[j]) || s[j] == '-')) ++j;
    const std::string name = lower_ascii(s.substr(name_start, j - name_start));
    i = tag_end(s, i);
    flush();
    switch (tag_kind(name)) {
      case TagKind::kDropContent:
        if (!closing) {
          const size_t close = find_ci(s, "</" + name, i);
          i = close == std::string_view::npos ? s.size() : tag_end(s, close);
        }
        break;
      case TagKind::kBreak: sink.line_break(); break;
      case TagKind::kLine: sink.lines(1); break;
      case TagKind::kParagraph: sink.lines(2); break;
      case TagKind::kCell: run += ' '; break;
      case TagKind::kInline: break;
    }
  }
  flush();
  return clean_whitespace(sink.take());
}

std::string replace_urls(std::string_view text, std::string_view placeholder) {
  static const metrics::PyRegex kUrl(R"((?<![\w.@/])(?:(?:https?|ftp)://|www\.)[^\s<>"']*[^\s<>"'.,;:!?)\]}])");
  return kUrl.substitute(text, [&](std::string_view) { return std::string(placeholder); });
}

std::string fix_mojibake(std::string_view input) {
  std::u32string text = metrics::decode_utf8(input, "mojibake text");
  std::string current(input);
  while (true) {
    const bool ascii = std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x80; });
    if (ascii || !badness().search(current)) return current;
    std::optional<std::string> fixed;
    for (const bool cp1252 : {false, true}) {  // ftfy's CHARMAP_ENCODINGS order: latin-1, sloppy-windows-1252
      const auto bytes = encode_single_byte(text, cp1252);
      if (!bytes) continue;
      if (valid_utf8(*bytes)) {
        fixed = *bytes;
        break;
      }
    }
    if (!fixed || *fixed == current) return current;
    current = *fixed;
    text = metrics::decode_utf8(current);
  }
}

}  // namespace troupe::dataprep
