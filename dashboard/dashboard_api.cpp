// Implementation of dashboard/dashboard_api.h: routing, the token check, the page and its assets, Slurm states.
// The JSON of runs, series, configs and tables is built in api_json.cpp.
#include "dashboard/dashboard_api.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cluster/slurm_client.h"
#include "dashboard/api_json.h"
#include "dashboard/assets.h"
#include "dashboard/run_catalog.h"

namespace troupe::dashboard {
namespace {

HttpResponse json_response(const nlohmann::json& body) {
  HttpResponse r;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);  // bad UTF-8 in a log: U+FFFD
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

std::string read_whole(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

nlohmann::json job_json(const std::string& id, const std::vector<cluster::JobState>& states) {
  for (const auto& s : states)
    if (s.id == id)
      return {{"id", id}, {"state", s.state}, {"elapsed", s.elapsed}, {"reason", s.reason}, {"source", s.source}};
  return {{"id", id}, {"state", "unknown to Slurm now"}, {"elapsed", ""}, {"reason", ""}, {"source", ""}};
}

}  // namespace

bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

DashboardApi::DashboardApi(ApiOptions options) : options_(std::move(options)) {
  if (options_.token.empty()) throw ConfigError("dashboard: the access token is empty");
}

bool DashboardApi::authorised(const HttpRequest& request) const {
  const auto it = request.query.find("token");
  const std::string given = it != request.query.end() ? it->second : request.cookie(options_.cookie_name);
  return constant_time_equal(given, options_.token);
}

HttpResponse DashboardApi::handle(const HttpRequest& request) {
  try {
    return route(request);
  } catch (const HttpError& e) {
    return error_response(e.status(), e.what());
  }
}

HttpResponse DashboardApi::route(const HttpRequest& request) {
  if (!authorised(request))
    return error_response(403, "missing or wrong access token: open the URL that `troupe dashboard` printed");
  const std::string& path = request.path;
  if (path == "/" || path == "/index.html") return page(request);
  if (path.rfind("/assets/", 0) == 0) return asset(path.substr(8));
  if (path == "/api/slurm") return slurm(request);
  if (path == "/api/runs") return json_response(runs_json(options_.runs_dir));
  if (path == "/api/run") return json_response(run_json(options_.runs_dir, request));
  if (path == "/api/series")
    return json_response(series_json(options_.runs_dir, request, options_.default_points, options_.max_points));
  if (path == "/api/diff") return json_response(diff_json(options_.runs_dir, request));
  if (path == "/api/table") return json_response(table_json(options_.runs_dir, request));
  return error_response(404, "no such page: " + path);
}

HttpResponse DashboardApi::page(const HttpRequest& request) const {
  HttpResponse r = asset("index.html");
  if (request.query.count("token") != 0)
    r.headers.emplace_back("Set-Cookie",
                           options_.cookie_name + "=" + options_.token + "; Path=/; HttpOnly; SameSite=Strict");
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' "
                         "data:; connect-src 'self'; frame-ancestors 'none'");
  return r;
}

HttpResponse DashboardApi::asset(const std::string& name) const {
  HttpResponse r;
  r.headers.emplace_back("Cache-Control", "no-cache");
  if (name == "chart.min.js") {  // Debian's libjs-chart.js, read from its installed path (never from a CDN)
    r.body = read_whole(options_.chart_js);
    if (r.body.empty()) return error_response(404, options_.chart_js.string() + " is missing: install libjs-chart.js");
    r.content_type = content_type_for(name);
    return r;
  }
  const Asset* a = find_asset(name);
  if (a == nullptr) return error_response(404, "no such asset: " + name);
  r.body = std::string(a->body);
  r.content_type = content_type_for(name);
  return r;
}

HttpResponse DashboardApi::slurm(const HttpRequest& request) {
  const RunRef run = find_run_param(options_.runs_dir, request, "run");
  const auto now = std::chrono::steady_clock::now();
  if (auto it = slurm_cache_.find(run.name); it != slurm_cache_.end() && now - it->second.at < options_.slurm_cache)
    return json_response(nlohmann::json::parse(it->second.body));
  const SlurmRecord record = slurm_record(run);
  nlohmann::json body;
  if (!record.submitted) {
    body = {{"slurm", false}, {"message", "not a Slurm run (no slurm/job_id from `troupe submit`)"}};
  } else {
    std::vector<cluster::JobState> states;
    std::string error;
    try {
      states = cluster::job_states(record.job_ids);  // squeue, then sacct; each with a deadline
    } catch (const Error& e) {
      error = e.what();
    }
    nlohmann::json jobs = nlohmann::json::array();
    for (const auto& id : record.job_ids) jobs.push_back(job_json(id, states));
    const size_t first = record.events.size() > 100 ? record.events.size() - 100 : 0;
    body = {{"slurm", true},
            {"jobs", jobs},
            {"error", error},
            {"requeues", record.requeues},
            {"slurm_dir", record.slurm_dir.string()},
            {"events", std::vector<std::string>(record.events.begin() + static_cast<std::ptrdiff_t>(first),
                                                record.events.end())}};
  }
  slurm_cache_[run.name] = {now, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
  return json_response(body);
}

}  // namespace troupe::dashboard
