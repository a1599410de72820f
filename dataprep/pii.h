// PII masking for data cleaning: e-mail addresses and public IPv4 addresses replaced exactly as datatrove 0.10.1's
// PIIFormatter does (same regular expressions, Python 3.11 ipaddress `is_global`, the same cycling fake replacements),
// plus two masks datatrove lacks, both off by default: IPv6 addresses (strict parser) and phone numbers.
// It is not a named-entity detector: names, street addresses and IDs are left alone.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::dataprep {

struct PiiConfig {
  bool emails = true;           // datatrove remove_emails
  bool ipv4 = true;             // datatrove remove_ips
  bool only_public_ips = true;  // datatrove only_remove_public_ips: mask only ipaddress `is_global` addresses
  bool ipv6 = false;            // not in datatrove: mask IPv6 addresses (see PiiMasker::mask for what matches)
  bool phones = false;          // not in datatrove: mask North-American and E.164 phone numbers
  // Used in turn, one per masked match, continuing across texts (datatrove's PIIReplacer._replace_i).
  std::vector<std::string> email_replacements = {"email@example.com", "firstname.lastname@example.org"};
  std::vector<std::string> ip_replacements = {"22.214.171.124", "126.96.36.199",  "188.8.131.52",
                                              "184.108.40.206", "220.127.116.11", "18.104.22.168"};
  std::string ipv6_replacement = "2001:db8::1";  // documentation prefix: not global, so never re-masked
  std::string phone_replacement = "555-0100";    // a fictional North-American number
  void validate() const;                         // ConfigError when a replacement list is empty
};

struct PiiCounts {
  size_t emails = 0;  // e-mail addresses replaced
  size_t ipv4 = 0;    // IPv4 addresses replaced
  size_t ipv6 = 0;    // IPv6 addresses replaced
  size_t phones = 0;  // phone numbers replaced
  PiiCounts& operator+=(const PiiCounts& o);
};

// Stateful like datatrove's formatter: the replacement index advances with every masked match, over all texts one
// masker sees, so masking the same corpus in the same order gives datatrove's bytes. Not thread-safe; use one per
// worker (the output then depends on how texts are sharded, as datatrove's does).
class PiiMasker {
 public:
  explicit PiiMasker(PiiConfig config = {});
  ~PiiMasker();
  PiiMasker(PiiMasker&&) noexcept;
  PiiMasker& operator=(PiiMasker&&) noexcept;

  // Steps in datatrove's order: e-mails, then IPv4, then (ours) IPv6, then phones; each step sees the previous
  // step's output. UTF-8 in and out; malformed UTF-8 is a DataError.
  //  - IPv4: datatrove's unanchored dotted-quad regex, so "1.2.3.4567" masks "1.2.3.45"; a match that
  //    ipaddress rejects (leading zero octets such as "01.2.3.4") or that is not global stays as it is.
  //  - IPv6: a maximal run of hex digits, ':' and '.' not touching a letter, digit or '_', containing "::" or
  //    seven ':', that parses as RFC 4291 text (at most one "::", groups of 1-4 hex digits, an optional trailing
  //    dotted quad) and has at least 3 groups ("a::b" in C++ code is left alone). With only_public_ips the
  //    unspecified, loopback, link-local fe80::/10, unique-local fc00::/7 and documentation 2001:db8::/32
  //    addresses stay (a subset of ipaddress's non-global IPv6 list).
  //  - phones: "+CC..." E.164 numbers (8-15 digits, single spaces, '.' or '-' between digits allowed) and
  //    North-American "(555) 123-4567", "555-123-4567", "555.123.4567", "1-555-123-4567" (separators required,
  //    so dates like 2024-01-15 and digit runs like "abc5551234567" do not match), not touching a word character.
  std::string mask(std::string_view text, PiiCounts* counts = nullptr);
  // Starts both replacement cycles over (the next match gets the first replacement again): a pipeline that restarts
  // per document masks each document the same whichever worker masks it.
  void restart_cycle() { email_next_ = ip_next_ = 0; }

 private:
  struct Patterns;
  PiiConfig config_;
  std::unique_ptr<Patterns> patterns_;
  size_t email_next_ = 0;  // index into email_replacements of the next replacement
  size_t ip_next_ = 0;     // index into ip_replacements of the next replacement
};

// ipaddress.IPv4Address(text) of Python 3.11: four decimal octets 0-255, ASCII digits only, no leading zeros.
std::optional<uint32_t> parse_ipv4(std::string_view text);
// ipaddress.IPv4Address(...).is_global of Python 3.11 (the IANA special-purpose registry list in its source).
bool is_global_ipv4(uint32_t address);
// RFC 4291 text form as ipaddress.IPv6Address parses it (no zone index); the 16 bytes, network order.
std::optional<std::array<uint8_t, 16>> parse_ipv6(std::string_view text);

}  // namespace troupe::dataprep
