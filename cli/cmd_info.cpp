// `troupe info`: version, git sha, library versions, the torch build and backends, devices, threads, CPU.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.h"
#include "core/build_info.h"
#include "core/device_spec.h"
#include "core/runtime.h"
#include "core/torch_runtime.h"
#include "distributed/library_versions.h"

namespace troupe::cli {

namespace {

void print_info(int threads) {
  const int applied = core::set_threads(threads);
  auto row = [](const std::string& k, const std::string& v) { std::cout << fmt::format("{:<20}{}\n", k, v); };
  row("troupe", std::string(core::troupe_version()) + " (git " + core::git_sha() + ")");
  for (const auto& [lib, version] : core::core_library_versions()) row(lib, version);
  for (const auto& [lib, version] : distributed::communication_library_versions()) row(lib, version);
  const auto torch = core::torch_info();
  row("torch build", torch.cuda_build ? "CUDA " + torch.cuda_runtime : "CPU only");
#ifdef TROUPE_WITH_CUDA
  row("troupe cuda path", "built (TROUPE_WITH_CUDA: NCCL communicator, CUDA devices)");
#else
  row("troupe cuda path", "not built (TROUPE_WITH_CUDA=OFF)");
#endif
  row("devices", torch.cuda_devices > 0
                     ? "cpu, " + std::to_string(torch.cuda_devices) + " CUDA GPU(s)" + (torch.cudnn ? ", cuDNN" : "")
                     : "cpu (no CUDA GPU visible)");
  row("blas", torch.blas);
  row("onednn", torch.onednn.empty() ? "(not built)" : torch.onednn);
  row("openmp", torch.openmp);
  row("aten cpu kernels", torch.cpu_capability);
  row("threads", std::to_string(applied) + " (ATen), " + std::to_string(core::hardware_threads()) + " hardware");
  row("cpu", core::cpu_model());
  std::string features;
  for (const auto& f : core::cpu_features()) features += (features.empty() ? "" : " ") + f;
  row("cpu features", features);
  row("python", core::reference_python());
}

}  // namespace

void add_info_command(CLI::App& app, int& exit_code) {
  auto* cmd =
      app.add_subcommand("info", "Show versions, the torch build and its backends, devices, threads and CPU features");
  auto threads = std::make_shared<int>(0);
  cmd->add_option("--threads", *threads, "ATen threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  cmd->callback([threads, &exit_code] {
    print_info(*threads);
    exit_code = 0;
  });
}

}  // namespace troupe::cli
