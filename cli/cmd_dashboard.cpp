// `troupe dashboard [RUNS_DIR]`: a live local web dashboard of the runs under RUNS_DIR (dashboard/dashboard.h).
// Serves until SIGINT/SIGTERM, then exits 0. Not a remote service: loopback unless --allow-remote.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.h"
#include "core/signals.h"
#include "dashboard/dashboard.h"

namespace troupe::cli {

void add_dashboard_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("dashboard", "Serve a live web dashboard of the runs under RUNS_DIR (local only)");
  auto options = std::make_shared<dashboard::DashboardOptions>();
  cmd->add_option("runs_dir", options->runs_dir, "directory holding the runs (default: runs)");
  cmd->add_option("--port", options->port, "TCP port (0 = pick a free one)")->capture_default_str();
  cmd->add_option("--host", options->host, "address to bind (loopback unless --allow-remote)")->capture_default_str();
  cmd->add_option("--token", options->token, "access token (default: 128 random bits)");
  cmd->add_flag("--allow-remote", options->allow_remote,
                "allow a non-loopback --host (anyone who can reach it may try the token; no TLS)");
  cmd->add_option("--chart-js", options->chart_js, "Chart.js file to serve (Debian's libjs-chart.js)")
      ->capture_default_str();
  cmd->callback([options, &exit_code] {
    core::install_stop_handlers();
    dashboard::serve_dashboard(
        *options,
        [&](const std::string& url) {
          std::cout << "troupe dashboard: serving " << options->runs_dir.string() << " at " << url << std::endl;
          if (options->allow_remote && !dashboard::is_loopback_host(options->host))
            std::cout << "troupe dashboard: WARNING: listening on " << options->host
                      << ", not loopback (--allow-remote): traffic is not encrypted" << std::endl;
          std::cout << "troupe dashboard: Ctrl-C to stop" << std::endl;
        },
        [] { return core::stop_requested(); });
    std::cout << "troupe dashboard: stopped" << std::endl;
    exit_code = 0;
  });
}

}  // namespace troupe::cli
