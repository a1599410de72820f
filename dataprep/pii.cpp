// PII masking (dataprep/pii.h): datatrove's PIIFormatter regexes on metrics::PyRegex (Python's re on PCRE2), Python's
// ipaddress rules in C++.
#include "dataprep/pii.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "core/errors.h"
#include "metrics/py_regex.h"
#include "metrics/unicode.h"

namespace troupe::dataprep {

namespace {

// datatrove/pipeline/formatters/pii.py, verbatim. Python's \b (str.isalnum() or '_') and PCRE2's UCP \b
// ([\p{L}\p{N}_] in PCRE2 10.42) agree on every assigned letter and number.
constexpr const char* kEmailPattern =
    R"(\b[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:(?:[A-Za-z0-9](?:[)"
    R"(A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?|\[(?:(?:25[0-5]|2[0-4][0-9]|[)"
    R"(01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?|[A-Za-z0-9-]*[A-Za-z0-9]:)]))";
constexpr const char* kIpv4Pattern =
    R"((?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?))";
// Candidates only; parse_ipv6 decides. Trailing dots (sentence ends) are trimmed before parsing.
constexpr const char* kIpv6Pattern = R"((?<![\w:.])[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?!\w))";
constexpr const char* kE164Pattern = R"((?<![\w+.-])\+[1-9](?:[ .-]?[0-9]){7,14}(?!\w|[.-][0-9]))";
constexpr const char* kNanpPattern =
    R"((?<![\w+.-])(?:1[ .-])?(?:\([0-9]{3}\) ?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}(?!\w|[.-][0-9]))";

struct Net {
  uint32_t base;
  int prefix;
  bool contains(uint32_t a) const { return prefix == 0 || (a >> (32 - prefix)) == (base >> (32 - prefix)); }
};
constexpr uint32_t ip(uint32_t a, uint32_t b, uint32_t c, uint32_t d) { return a << 24 | b << 16 | c << 8 | d; }

// _IPv4Constants._private_networks of Python 3.11's ipaddress.py.
constexpr Net kPrivate4[] = {{ip(0, 0, 0, 0), 8},      {ip(10, 0, 0, 0), 8},        {ip(127, 0, 0, 0), 8},
                             {ip(169, 254, 0, 0), 16}, {ip(172, 16, 0, 0), 12},     {ip(192, 0, 0, 0), 24},
                             {ip(192, 0, 0, 170), 31}, {ip(192, 0, 2, 0), 24},      {ip(192, 168, 0, 0), 16},
                             {ip(198, 18, 0, 0), 15},  {ip(198, 51, 100, 0), 24},   {ip(203, 0, 113, 0), 24},
                             {ip(240, 0, 0, 0), 4},    {ip(255, 255, 255, 255), 32}};
constexpr Net kPrivateExceptions4[] = {{ip(192, 0, 0, 9), 32}, {ip(192, 0, 0, 10), 32}};
constexpr Net kShared4 = {ip(100, 64, 0, 0), 10};  // _public_network: neither private nor global

std::string next_of(const std::vector<std::string>& list, size_t& next) {
  std::string r = list[next];
  next = (next + 1) % list.size();
  return r;
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

bool is_global_ipv6(const std::array<uint8_t, 16>& a) {
  static constexpr std::array<uint8_t, 16> kZero{};
  std::array<uint8_t, 16> loopback{};
  loopback[15] = 1;
  if (a == kZero || a == loopback) return false;
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return false;                         // fe80::/10 link-local
  if ((a[0] & 0xfe) == 0xfc) return false;                                         // fc00::/7 unique local
  if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) return false;  // 2001:db8::/32
  return true;
}

size_t count(std::string_view s, char c) {
  size_t n = 0;
  for (char x : s) n += x == c;
  return n;
}

}  // namespace

PiiCounts& PiiCounts::operator+=(const PiiCounts& o) {
  emails += o.emails;
  ipv4 += o.ipv4;
  ipv6 += o.ipv6;
  phones += o.phones;
  return *this;
}

void PiiConfig::validate() const {
  if (email_replacements.empty()) throw ConfigError("pii.email_replacements must not be empty");
  if (ip_replacements.empty()) throw ConfigError("pii.ip_replacements must not be empty");
}

std::optional<uint32_t> parse_ipv4(std::string_view text) {
  uint32_t out = 0;
  int octets = 0;
  size_t i = 0;
  while (true) {
    size_t j = i;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
    const size_t len = j - i;
    if (len == 0 || len > 3 || (len > 1 && text[i] == '0')) return std::nullopt;  // ipaddress: no leading zeros
    const uint32_t v = static_cast<uint32_t>(std::stoul(std::string(text.substr(i, len))));
    if (v > 255) return std::nullopt;
    out = out << 8 | v;
    ++octets;
    if (j == text.size()) break;
    if (text[j] != '.' || octets == 4) return std::nullopt;
    i = j + 1;
  }
  if (octets != 4) return std::nullopt;
  return out;
}

bool is_global_ipv4(uint32_t a) {
  if (kShared4.contains(a)) return false;
  bool is_private = false;
  for (const Net& n : kPrivate4) is_private = is_private || n.contains(a);
  for (const Net& n : kPrivateExceptions4) is_private = is_private && !n.contains(a);
  return !is_private;
}

std::optional<std::array<uint8_t, 16>> parse_ipv6(std::string_view text) {
  std::vector<uint16_t> head, tail;  // groups before and after "::"
  bool gap = false;
  size_t i = 0;
  if (text.substr(0, 2) == "::") {
    gap = true;
    i = 2;
  } else if (!text.empty() && text[0] == ':') {
    return std::nullopt;
  }
  std::vector<uint16_t>* groups = gap ? &tail : &head;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && is_hex(text[j])) ++j;
    if (j < text.size() && text[j] == '.') {  // trailing dotted quad: two groups
      const auto v4 = parse_ipv4(text.substr(i));
      if (!v4) return std::nullopt;
      groups->push_back(static_cast<uint16_t>(*v4 >> 16));
      groups->push_back(static_cast<uint16_t>(*v4 & 0xffff));
      i = text.size();
      break;
    }
    if (j == i || j - i > 4) return std::nullopt;
    groups->push_back(static_cast<uint16_t>(std::stoul(std::string(text.substr(i, j - i)), nullptr, 16)));
    if (j == text.size()) {
      i = j;
      break;
    }
    if (text[j] != ':') return std::nullopt;
    if (j + 1 < text.size() && text[j + 1] == ':') {
      if (gap) return std::nullopt;  // a second "::"
      gap = true;
      groups = &tail;
      i = j + 2;
    } else {
      if (j + 1 == text.size()) return std::nullopt;  // a single trailing ':'
      i = j + 1;
    }
  }
  const size_t n = head.size() + tail.size();
  if (gap ? n > 7 : n != 8) return std::nullopt;
  std::array<uint8_t, 16> out{};
  auto put = [&](size_t slot, uint16_t g) {
    out[2 * slot] = static_cast<uint8_t>(g >> 8);
    out[2 * slot + 1] = static_cast<uint8_t>(g & 0xff);
  };
  for (size_t k = 0; k < head.size(); ++k) put(k, head[k]);
  for (size_t k = 0; k < tail.size(); ++k) put(8 - tail.size() + k, tail[k]);
  return out;
}

struct PiiMasker::Patterns {
  metrics::PyRegex email{kEmailPattern};
  metrics::PyRegex ipv4{kIpv4Pattern};
  metrics::PyRegex ipv6{kIpv6Pattern};
  metrics::PyRegex e164{kE164Pattern};
  metrics::PyRegex nanp{kNanpPattern};
};

PiiMasker::PiiMasker(PiiConfig config) : config_(std::move(config)), patterns_(std::make_unique<Patterns>()) {
  config_.validate();
}
PiiMasker::~PiiMasker() = default;
PiiMasker::PiiMasker(PiiMasker&&) noexcept = default;
PiiMasker& PiiMasker::operator=(PiiMasker&&) noexcept = default;

std::string PiiMasker::mask(std::string_view text, PiiCounts* counts) {
  metrics::decode_utf8(text, "pii text");  // DataError on malformed UTF-8 before PCRE2 sees it
  PiiCounts local;
  std::string out(text);
  if (config_.emails) {
    out = patterns_->email.substitute(out, [&](std::string_view) {
      ++local.emails;
      return next_of(config_.email_replacements, email_next_);
    });
  }
  if (config_.ipv4) {
    out = patterns_->ipv4.substitute(out, [&](std::string_view m) {
      const auto a = parse_ipv4(m);
      if (!a || (config_.only_public_ips && !is_global_ipv4(*a))) return std::string(m);  // datatrove's validator
      ++local.ipv4;
      return next_of(config_.ip_replacements, ip_next_);
    });
  }
  if (config_.ipv6) {
    out = patterns_->ipv6.substitute(out, [&](std::string_view m) {
      std::string_view core = m;
      while (!core.empty() && core.back() == '.') core.remove_suffix(1);
      const std::string dots(m.size() - core.size(), '.');
      if (count(core, ':') < 7 && core.find("::") == std::string_view::npos) return std::string(m);
      const auto a = parse_ipv6(core);
      size_t groups = 0;  // non-empty ':'-separated pieces, a dotted quad counting two
      for (size_t b = 0; b <= core.size();) {
        const size_t e = std::min(core.find(':', b), core.size());
        if (e > b) groups += core.substr(b, e - b).find('.') == std::string_view::npos ? 1 : 2;
        b = e + 1;
      }
      if (!a || groups < 3 || (config_.only_public_ips && !is_global_ipv6(*a))) return std::string(m);
      ++local.ipv6;
      return config_.ipv6_replacement + dots;
    });
  }
  if (config_.phones) {
    auto phone = [&](std::string_view) {
      ++local.phones;
      return config_.phone_replacement;
    };
    out = patterns_->e164.substitute(out, phone);
    out = patterns_->nanp.substitute(out, phone);
  }
  if (counts != nullptr) *counts += local;
  return out;
}

}  // namespace troupe::dataprep
