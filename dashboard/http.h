// HTTP/1.1 messages for the dashboard's server: parsing a request head (request line and headers, no body), the
// query string and cookies, and writing a response. Only what a local GET-only dashboard needs: not a general HTTP
// library (no chunked bodies, no pipelining, no keep-alive: every response closes its connection).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/errors.h"

namespace troupe::dashboard {

// A request the server refuses, with the status to answer (400 malformed, 405 method, 413 too large, ...).
class HttpError : public Error {
 public:
  HttpError(int status, const std::string& what) : Error(what), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

struct HttpRequest {
  std::string method;                          // "GET" or "HEAD"
  std::string path;                            // percent-decoded, e.g. "/api/runs"
  std::map<std::string, std::string> query;    // percent-decoded key -> value ("a=1&b" -> {a: 1, b: ""})
  std::map<std::string, std::string> headers;  // names lower-cased; a repeated header keeps its last value

  // The value of cookie `name` from the Cookie header ("" when absent).
  std::string cookie(const std::string& name) const;
  // The query parameter `key`, or `fallback` when absent.
  std::string param(const std::string& key, const std::string& fallback = "") const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (Set-Cookie, Cache-Control, ...)
};

// Parses "GET /path?query HTTP/1.1\r\nName: value\r\n..." (the head without its final blank line). HttpError 400
// for a malformed line, 405 for a method other than GET/HEAD, 505 for a version other than HTTP/1.0 or 1.1, 413
// for a request with a body (Content-Length > 0 or Transfer-Encoding).
HttpRequest parse_request_head(std::string_view head);

// "%2F" -> "/", "+" -> " " when `plus_is_space`. HttpError 400 on a bad escape or a decoded NUL.
std::string percent_decode(std::string_view text, bool plus_is_space);

// The bytes of a response: status line, Content-Type, Content-Length, Connection: close, no-referrer and nosniff
// headers, the extra headers, then the body (omitted when `head_only`).
std::string serialize_response(const HttpResponse& response, bool head_only);

// A JSON error response {"error": message} with `status`.
HttpResponse error_response(int status, const std::string& message);

// "OK", "Not Found", ... for the statuses the dashboard answers.
const char* status_text(int status);

}  // namespace troupe::dashboard
