// Implementation of dashboard/http.h.
#include "dashboard/http.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace troupe::dashboard {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::vector<std::string_view> split(std::string_view s, std::string_view sep) {
  std::vector<std::string_view> parts;
  size_t at = 0;
  while (true) {
    const size_t next = s.find(sep, at);
    parts.push_back(s.substr(at, next == std::string_view::npos ? std::string_view::npos : next - at));
    if (next == std::string_view::npos) return parts;
    at = next + sep.size();
  }
}

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  if (query.empty()) return out;
  for (std::string_view pair : split(query, "&")) {
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    const std::string key = percent_decode(pair.substr(0, eq), true);
    out[key] = eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1), true);
  }
  return out;
}

void parse_request_line(std::string_view line, HttpRequest& r) {
  const auto parts = split(line, " ");
  if (parts.size() != 3 || parts[1].empty())
    throw HttpError(400, fmt::format("malformed request line '{}' (expected METHOD TARGET HTTP/1.1)", line));
  r.method = std::string(parts[0]);
  if (r.method != "GET" && r.method != "HEAD") throw HttpError(405, "method " + r.method + " not allowed (GET only)");
  if (parts[2] != "HTTP/1.1" && parts[2] != "HTTP/1.0")
    throw HttpError(505, fmt::format("unsupported protocol '{}'", parts[2]));
  const std::string_view target = parts[1];
  if (target.front() != '/') throw HttpError(400, fmt::format("request target '{}' is not a path", target));
  const size_t q = target.find('?');
  r.path = percent_decode(target.substr(0, q), false);
  if (q != std::string_view::npos) r.query = parse_query(target.substr(q + 1));
}

void parse_header(std::string_view line, HttpRequest& r) {
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0)
    throw HttpError(400, fmt::format("malformed header line '{}' (expected Name: value)", line.substr(0, 80)));
  r.headers[lower(trim(line.substr(0, colon)))] = std::string(trim(line.substr(colon + 1)));
}

}  // namespace

std::string HttpRequest::cookie(const std::string& name) const {
  const auto it = headers.find("cookie");
  if (it == headers.end()) return "";
  for (std::string_view part : split(it->second, ";")) {
    part = trim(part);
    const size_t eq = part.find('=');
    if (eq != std::string_view::npos && part.substr(0, eq) == name) return std::string(part.substr(eq + 1));
  }
  return "";
}

std::string HttpRequest::param(const std::string& key, const std::string& fallback) const {
  const auto it = query.find(key);
  return it == query.end() ? fallback : it->second;
}

std::string percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      const int hi = i + 2 < text.size() ? hex_digit(text[i + 1]) : -1;
      const int lo = hi >= 0 ? hex_digit(text[i + 2]) : -1;
      if (lo < 0) throw HttpError(400, fmt::format("bad percent escape in '{}'", text.substr(0, 200)));
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    if (c == '\0') throw HttpError(400, "NUL byte in the request target");
    out += c;
  }
  return out;
}

HttpRequest parse_request_head(std::string_view head) {
  const auto lines = split(head, "\r\n");
  HttpRequest r;
  parse_request_line(lines.front(), r);
  for (size_t i = 1; i < lines.size(); ++i)
    if (!lines[i].empty()) parse_header(lines[i], r);
  const auto length = r.headers.find("content-length");
  if ((length != r.headers.end() && length->second != "0") || r.headers.count("transfer-encoding") != 0)
    throw HttpError(413, "request bodies are not accepted");
  return r;
}

const char* status_text(int status) {
  switch (status) {
    case 200: return "OK";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

std::string serialize_response(const HttpResponse& response, bool head_only) {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n"
      "Referrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\n",
      response.status, status_text(response.status), response.content_type, response.body.size());
  for (const auto& [name, value] : response.headers) out += name + ": " + value + "\r\n";
  out += "\r\n";
  if (!head_only) out += response.body;
  return out;
}

HttpResponse error_response(int status, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.body = nlohmann::json{{"error", message}}.dump();
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

}  // namespace troupe::dashboard
