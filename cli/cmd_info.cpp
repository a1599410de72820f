// `troupe info`: version, git sha, library versions, the BLAS in use, threads, CPU features.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "core/build_info.h"
#include "core/runtime.h"
#include "distributed/library_versions.h"

namespace troupe::cli {

namespace {

void print_info(int threads) {
  const int applied = core::set_threads(threads);
  auto row = [](const std::string& k, const std::string& v) { std::cout << fmt::format("{:<20}{}\n", k, v); };
  row("troupe", std::string(core::troupe_version()) + " (git " + core::git_sha() + ")");
  for (const auto& [lib, version] : core::core_library_versions()) row(lib, version);
  for (const auto& [lib, version] : distributed::communication_library_versions()) row(lib, version);
  const auto blas = core::blas_info();
  row("blas", blas.name + (blas.core.empty() ? "" : " (core " + blas.core + ")"));
  row("blas library", blas.library.empty() ? "(not loaded)" : blas.library);
  if (!blas.config.empty()) row("blas config", blas.config);
  row("threads", std::to_string(applied) + " (ATen), " + std::to_string(blas.threads) + " (BLAS), " +
                     std::to_string(core::hardware_threads()) + " hardware");
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  row("OPENBLAS_CORETYPE", coretype ? coretype : "(unset)");
  row("cpu", core::cpu_model());
  std::string features;
  for (const auto& f : core::cpu_features()) features += (features.empty() ? "" : " ") + f;
  row("cpu features", features);
#ifdef TROUPE_WITH_CUDA
  row("cuda", "built with TROUPE_WITH_CUDA");
#else
  row("cuda", "not built (TROUPE_WITH_CUDA=OFF)");
#endif
  if (blas.name == "reference BLAS")
    std::cout << "warning: the reference BLAS is in use; install libopenblas0-pthread (make deps)\n";
}

}  // namespace

void add_info_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("info", "Show versions, the BLAS in use, threads and CPU features");
  auto threads = std::make_shared<int>(0);
  cmd->add_option("--threads", *threads, "ATen and OpenBLAS threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  cmd->callback([threads, &exit_code] {
    print_info(*threads);
    exit_code = 0;
  });
}

}  // namespace troupe::cli
