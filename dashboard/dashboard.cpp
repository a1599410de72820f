// Implementation of dashboard/dashboard.h.
#include "dashboard/dashboard.h"

#include <fmt/format.h>

#include <memory>
#include <random>

#include "core/errors.h"
#include "dashboard/dashboard_api.h"
#include "dashboard/http_server.h"

namespace troupe::dashboard {
namespace {

void validate(const DashboardOptions& o) {
  if (!std::filesystem::is_directory(o.runs_dir))
    throw ConfigError(o.runs_dir.string() + ": no such runs directory (expected the directory holding run dirs)");
  if (o.port < 0 || o.port > 65535) throw ConfigError(fmt::format("--port {}: expected 0..65535", o.port));
  if (!is_loopback_host(o.host) && !o.allow_remote)
    throw ConfigError("--host " + o.host +
                      " is not a loopback address: anyone who can reach it could try the token; pass --allow-remote "
                      "to serve it anyway (or keep 127.0.0.1 and use an SSH tunnel)");
  for (char c : o.token)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_')
      throw ConfigError("--token: only letters, digits, '-' and '_' are allowed");
}

std::string url_host(const std::string& host) { return host.find(':') != std::string::npos ? "[" + host + "]" : host; }

}  // namespace

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

std::string random_token() {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 4; ++i) out += fmt::format("{:08x}", static_cast<uint32_t>(rd()));
  return out;
}

void serve_dashboard(const DashboardOptions& options, const std::function<void(const std::string& url)>& on_ready,
                     const std::function<bool()>& should_stop) {
  validate(options);
  HttpServerOptions server_options;
  server_options.host = options.host;
  server_options.port = options.port;
  ApiOptions api_options;
  api_options.runs_dir = std::filesystem::absolute(options.runs_dir).lexically_normal();
  api_options.token = options.token.empty() ? random_token() : options.token;
  api_options.chart_js = options.chart_js;
  std::unique_ptr<DashboardApi> api;  // made once the port is known; the server calls it only inside serve()
  HttpServer server(server_options, [&api](const HttpRequest& r) { return api->handle(r); });
  // Browsers keep cookies per host, not per port: one cookie name per port lets two dashboards coexist.
  api_options.cookie_name = fmt::format("troupe_token_{}", server.port());
  api = std::make_unique<DashboardApi>(api_options);
  on_ready(fmt::format("http://{}:{}/?token={}", url_host(options.host), server.port(), api_options.token));
  server.serve(should_stop);
}

}  // namespace troupe::dashboard
