// Command-line option helpers shared by the CLI's commands and the benchmarks (bench/): a small library of its
// own, so that bench/ can use them without depending on the CLI's commands.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace troupe::cli {

// Adds `--device` (auto | cpu | cuda | cuda:N; auto = this process's GPU when one is visible, else the CPU) to
// `cmd`, checked with core::valid_device_spec; resolve it with core::resolve_device(spec, local_rank(), "--device").
void add_device_option(CLI::App* cmd, std::string& spec);

}  // namespace troupe::cli
