// dataprep/pii.h: e-mail and IPv4 masking byte-equal to datatrove's PIIFormatter (tests/dataprep/pii_reference.py
// run in the test, one formatter over a seeded corpus so the cycling replacement carries across texts) and
// is_global equal to Python's ipaddress; hand-computed cases for the IPv6 and phone masks datatrove lacks.
#include "dataprep/pii.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::dataprep {
namespace {

TEST(Pii, EqualsDatatrovesPiiFormatter) {
  testing::ScratchDir dir("troupe-pii");
  const auto out = dir / "ref.json";
  const auto r = testing::run_process(
      {TROUPE_PYTHON, (testing::source_dir() / "tests/dataprep/pii_reference.py").string(), out.string()},
      std::chrono::seconds(240));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json ref = nlohmann::json::parse(testing::read_file(out));
  const auto& texts = ref["texts"];
  ASSERT_GE(texts.size(), 3000u);
  PiiMasker masker;
  PiiCounts counts;
  size_t mismatches = 0, changed = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string text = texts[i].get<std::string>();
    const std::string got = masker.mask(text, &counts);
    const std::string want = ref["masked"][i].get<std::string>();
    changed += got != text;
    if (got != want && ++mismatches <= 5) {
      ADD_FAILURE() << "text " << i << " " << nlohmann::json(text) << ": " << nlohmann::json(got) << " vs datatrove's "
                    << nlohmann::json(want);
    }
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_GT(changed, 1000u);
  EXPECT_GT(counts.emails, 1000u);
  EXPECT_GT(counts.ipv4, 500u);
  EXPECT_EQ(counts.ipv6 + counts.phones, 0u);  // off by default

  const auto& addresses = ref["addresses"];
  size_t global = 0, wrong = 0;
  for (size_t i = 0; i < addresses.size(); ++i) {
    const std::string a = addresses[i].get<std::string>();
    const auto parsed = parse_ipv4(a);
    ASSERT_TRUE(parsed) << a;
    const bool got = is_global_ipv4(*parsed), want = ref["global"][i].get<bool>();
    global += got;
    if (got != want && ++wrong <= 5) ADD_FAILURE() << a << ": is_global " << got << " vs Python's " << want;
  }
  EXPECT_EQ(wrong, 0u);
  EXPECT_GT(global, 1000u);
  EXPECT_LT(global, addresses.size());
}

TEST(Pii, HandCasesFollowDatatrove) {
  PiiMasker masker;
  PiiCounts c;
  EXPECT_EQ(masker.mask("write to jane.doe@mail.example.com or bob@x.org.", &c),
            "write to email@example.com or firstname.lastname@example.org.");
  EXPECT_EQ(masker.mask("again: a@b.io", &c), "again: email@example.com");  // the cycle carries over texts
  EXPECT_EQ(c.emails, 3u);
  EXPECT_EQ(masker.mask("dns 8.8.8.8 and 1.1.1.1; lan 192.168.0.1, lo 127.0.0.1, cgnat 100.64.0.1", &c),
            "dns 22.214.171.124 and 126.96.36.199; lan 192.168.0.1, lo 127.0.0.1, cgnat 100.64.0.1");
  EXPECT_EQ(c.ipv4, 2u);
  EXPECT_EQ(masker.mask("zeros 08.8.8.8 stay; 1.2.3.4567 is cut", &c), "zeros 08.8.8.8 stay; 188.8.131.5267 is cut");
  EXPECT_EQ(masker.mask("192.0.0.9 is global, 192.0.0.8 not", &c), "184.108.40.206 is global, 192.0.0.8 not");
  EXPECT_EQ(masker.mask("version 1.2.3 and 300.1.1.1"), "version 1.2.3 and 300.1.1.1");
  EXPECT_THROW(masker.mask("bad \xff utf8"), DataError);

  PiiConfig all_ips;
  all_ips.only_public_ips = false;
  all_ips.emails = false;
  PiiMasker any(all_ips);
  EXPECT_EQ(any.mask("10.0.0.1 x@y.com 01.1.1.1"), "22.214.171.124 x@y.com 01.1.1.1");
  EXPECT_THROW(PiiMasker(PiiConfig{.email_replacements = {}}), ConfigError);
}

TEST(Pii, Ipv4ParserRejectsWhatIpaddressRejects) {
  EXPECT_EQ(parse_ipv4("1.2.3.4"), 0x01020304u);
  EXPECT_EQ(parse_ipv4("255.255.255.255"), 0xffffffffu);
  for (const char* bad :
       {"01.2.3.4", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3", "1.2.3.4.", "", "a.b.c.d", "1.2.3.0x1"}) {
    EXPECT_FALSE(parse_ipv4(bad)) << bad;
  }
}

TEST(Pii, Ipv6ParserAndMask) {
  const auto a = parse_ipv6("2001:db8::ff00:42:8329");
  ASSERT_TRUE(a);
  EXPECT_EQ((*a)[0], 0x20);
  EXPECT_EQ((*a)[3], 0xb8);
  EXPECT_EQ((*a)[10], 0xff);
  EXPECT_EQ((*a)[13], 0x42);
  EXPECT_EQ((*a)[15], 0x29);
  EXPECT_TRUE(parse_ipv6("::"));
  EXPECT_TRUE(parse_ipv6("::ffff:1.2.3.4"));
  EXPECT_TRUE(parse_ipv6("1:2:3:4:5:6:7:8"));
  for (const char* bad : {"1:2:3:4:5:6:7", "1::2::3", "12345::1", ":1:2", "1:2:", "g::1", "1:2:3:4:5:6:7:8:9",
                          "1::2:3:4:5:6:7:8", "::01.2.3.4"}) {
    EXPECT_FALSE(parse_ipv6(bad)) << bad;
  }
  PiiConfig cfg;
  cfg.ipv6 = true;
  PiiMasker masker(cfg);
  PiiCounts c;
  EXPECT_EQ(masker.mask("host 2606:4700:4700::1111. link fe80::1:2, doc 2001:db8::5:6, "
                        "full 2a00:1450:4001:82a:0:0:0:200e, time 12:30:45, c++ std::vector a::b",
                        &c),
            "host 2001:db8::1. link fe80::1:2, doc 2001:db8::5:6, full 2001:db8::1, time 12:30:45, "
            "c++ std::vector a::b");
  EXPECT_EQ(c.ipv6, 2u);
  EXPECT_EQ(c.ipv4, 0u);
}

TEST(Pii, PhonesAreMaskedOnlyInPhoneShapes) {
  PiiConfig cfg;
  cfg.phones = true;
  PiiMasker masker(cfg);
  PiiCounts c;
  EXPECT_EQ(masker.mask("call (555) 123-4567 or 555-123-4567 or 1-800-555-0199, +44 20 7946 0958, +4930123456.", &c),
            "call 555-0100 or 555-0100 or 555-0100, 555-0100, 555-0100.");
  EXPECT_EQ(c.phones, 5u);
  for (const char* keep : {"on 2024-01-15 at 10:30", "id abc5551234567 and x555-123-4567", "555-1234", "+1234567",
                           "1234567890", "v1.555.123.4567", "555-123-45678", "ISBN 978-0-306-40615-7"}) {
    EXPECT_EQ(masker.mask(keep), keep);
  }
}

}  // namespace
}  // namespace troupe::dataprep
