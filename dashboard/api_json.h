// The JSON bodies of the dashboard's API (routes in dashboard_api.h): runs, one run, a metric series (downsampled,
// incremental or a zoomed range), a config diff and a table's newest rows. Each reads the logs afresh (live runs
// grow between calls). Bad parameters are HttpError 400, unknown runs, metrics and tables 404.
#pragma once

#include <cstddef>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "dashboard/http.h"
#include "dashboard/run_catalog.h"

namespace troupe::dashboard {

// The run named by query parameter `key`: HttpError 400 when missing, 404 when no run of that name exists.
RunRef find_run_param(const std::filesystem::path& root, const HttpRequest& request, const std::string& key);

nlohmann::json runs_json(const std::filesystem::path& root);
nlohmann::json run_json(const std::filesystem::path& root, const HttpRequest& request);
nlohmann::json series_json(const std::filesystem::path& root, const HttpRequest& request, size_t default_points,
                           size_t max_points);
nlohmann::json diff_json(const std::filesystem::path& root, const HttpRequest& request);
nlohmann::json table_json(const std::filesystem::path& root, const HttpRequest& request);

}  // namespace troupe::dashboard
