// The dashboard's routes: the page and its assets, and a JSON API over the runs under one root directory. Every
// request must carry the access token (query ?token= or the cookie the page sets), compared in constant time;
// run names are looked up among the discovered runs, never joined onto a path. Not the socket layer
// (http_server.h) and not the page (assets/).
//
//   GET /                                   index.html; with ?token= it sets the token cookie
//   GET /assets/<name>                      embedded app.js, style.css; chart.min.js from Debian's libjs-chart.js
//   GET /api/runs                           [{name, kind, status, step, start_time, latest{metric: value}, ...}]
//   GET /api/run?run=R                      {name, kind, config, attributes, metrics[{name, rows}], tables, events}
//   GET /api/series?run=R&metric=M          {rows, from, steps, values, wall, downsampled, reset}
//       [&from=K]                             only rows K.. (what a client holding K rows lacks)
//       [&x=step|wall&x0=A&x1=B]              only rows with x in [A, B] (a zoomed view)
//       [&max_points=2000]                    min/max-downsampled to at most this many points (kept: extremes, ends)
//   GET /api/diff?a=R1&b=R2                 {differences[{key, a, b}], equal}
//   GET /api/slurm?run=R                    {slurm: false, message} or {slurm: true, jobs[...], events[...]}
//   GET /api/table?run=R&table=T[&last=N]   {columns{name: [...]}, rows, total}: the newest N rows (200)
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>

#include "dashboard/http.h"

namespace troupe::dashboard {

struct ApiOptions {
  std::filesystem::path runs_dir;            // the root the runs are found under
  std::string token;                         // the access token every request must carry
  std::string cookie_name = "troupe_token";  // the cookie the page sets (per port: browsers share cookies by host)
  std::filesystem::path chart_js = "/usr/share/javascript/chart.js/chart.min.js";  // served as /assets/chart.min.js
  size_t default_points = 2000;          // series points when the client does not say
  size_t max_points = 20000;             // the most a client may ask for
  std::chrono::seconds slurm_cache{10};  // how long a squeue/sacct answer is reused
};

class DashboardApi {
 public:
  explicit DashboardApi(ApiOptions options);
  // The response to `request`: 403 without the token, 404 for unknown routes and runs, 400 for bad parameters.
  HttpResponse handle(const HttpRequest& request);

 private:
  HttpResponse route(const HttpRequest& request);  // handle() without turning HttpError into a response
  bool authorised(const HttpRequest& request) const;
  HttpResponse page(const HttpRequest& request) const;
  HttpResponse asset(const std::string& name) const;
  HttpResponse slurm(const HttpRequest& request);

  ApiOptions options_;
  struct CachedSlurm {
    std::chrono::steady_clock::time_point at;
    std::string body;
  };
  std::map<std::string, CachedSlurm> slurm_cache_;
};

// Whether two strings are equal, in time that depends only on their lengths.
bool constant_time_equal(const std::string& a, const std::string& b);

}  // namespace troupe::dashboard
