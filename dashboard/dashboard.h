// `troupe dashboard`: serves the dashboard page and API (dashboard_api.h) for the runs under one directory on a
// local HTTP server (http_server.h) until asked to stop. Loopback only unless remote access is allowed explicitly;
// every request needs the random access token that the printed URL carries. Not TLS: for another machine, tunnel.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace troupe::dashboard {

struct DashboardOptions {
  std::filesystem::path runs_dir = "runs";  // where the runs are (searched 4 directories deep)
  std::string host = "127.0.0.1";           // address to bind; non-loopback needs allow_remote
  int port = 6070;                          // 0 = a free port the kernel picks
  std::string token;                        // access token; empty = 128 random bits in hex
  bool allow_remote = false;                // permit a non-loopback host (anyone who can reach it and has the token)
  std::filesystem::path chart_js = "/usr/share/javascript/chart.js/chart.min.js";  // Debian's libjs-chart.js
};

// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(const std::string& host);

// 128 bits from std::random_device as 32 hex digits.
std::string random_token();

// Checks the options (ConfigError naming the option: a missing runs directory, a non-loopback host without
// allow_remote, a port outside 0..65535, a token with characters other than [A-Za-z0-9_-]), binds, calls
// on_ready(url) with "http://HOST:PORT/?token=TOKEN", and serves until should_stop() is true (checked every 100 ms).
void serve_dashboard(const DashboardOptions& options, const std::function<void(const std::string& url)>& on_ready,
                     const std::function<bool()>& should_stop);

}  // namespace troupe::dashboard
