// Tests of dashboard/http.h: request heads, percent decoding, cookies, and the statuses bad requests get.
#include "dashboard/http.h"

#include <gtest/gtest.h>

namespace troupe::dashboard {
namespace {

int status_of(const std::string& head) {
  try {
    parse_request_head(head);
  } catch (const HttpError& e) {
    return e.status();
  }
  return 200;
}

TEST(Http, ParsesPathQueryAndHeaders) {
  const HttpRequest r = parse_request_head(
      "GET /api/series?run=sweep%2Flr_0.1&metric=train/loss&from=12&flag HTTP/1.1\r\nHost: x\r\n"
      "Cookie: a=1; troupe_token_80=abc ; b=2\r\nX-Empty:\r\n");
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/api/series");
  EXPECT_EQ(r.param("run"), "sweep/lr_0.1");
  EXPECT_EQ(r.param("metric"), "train/loss");
  EXPECT_EQ(r.param("from"), "12");
  EXPECT_EQ(r.query.at("flag"), "");
  EXPECT_EQ(r.param("missing", "dflt"), "dflt");
  EXPECT_EQ(r.headers.at("host"), "x");
  EXPECT_EQ(r.headers.at("x-empty"), "");
  EXPECT_EQ(r.cookie("troupe_token_80"), "abc");
  EXPECT_EQ(r.cookie("b"), "2");
  EXPECT_EQ(r.cookie("c"), "");
}

TEST(Http, PercentDecoding) {
  EXPECT_EQ(percent_decode("a%20b+c%2fd", true), "a b c/d");
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
  EXPECT_THROW(percent_decode("%2", true), HttpError);
  EXPECT_THROW(percent_decode("%zz", true), HttpError);
  EXPECT_THROW(percent_decode("a%00b", true), HttpError);
  EXPECT_THROW(percent_decode("%", true), HttpError);
}

TEST(Http, BadRequestsGetTheirStatus) {
  EXPECT_EQ(status_of("GET / HTTP/1.1"), 200);
  EXPECT_EQ(status_of("GET /"), 400);                   // no version
  EXPECT_EQ(status_of("GET  / HTTP/1.1"), 400);         // empty target
  EXPECT_EQ(status_of("GET http://x/ HTTP/1.1"), 400);  // not a path
  EXPECT_EQ(status_of("POST / HTTP/1.1"), 405);
  EXPECT_EQ(status_of("GET / HTTP/2.0"), 505);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nno colon here"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nContent-Length: 5"), 413);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nTransfer-Encoding: chunked"), 413);
  EXPECT_EQ(status_of("GET /a%zz HTTP/1.1"), 400);
}

TEST(Http, SerializesResponses) {
  HttpResponse r;
  r.body = "{\"a\":1}";
  r.headers.emplace_back("Set-Cookie", "t=1");
  const std::string full = serialize_response(r, false);
  EXPECT_EQ(full.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_NE(full.find("Content-Length: 7\r\n"), std::string::npos);
  EXPECT_NE(full.find("Connection: close\r\n"), std::string::npos);
  EXPECT_NE(full.find("Set-Cookie: t=1\r\n"), std::string::npos);
  EXPECT_EQ(full.substr(full.size() - 7), r.body);
  const std::string head = serialize_response(r, true);
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");
  EXPECT_EQ(error_response(404, "gone").body, "{\"error\":\"gone\"}");
}

}  // namespace
}  // namespace troupe::dashboard
