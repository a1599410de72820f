// Implementation of cli/options.h.
#include "cli/options.h"

#include "core/device_spec.h"

namespace troupe::cli {

void add_device_option(CLI::App* cmd, std::string& spec) {
  cmd->add_option("--device", spec, "auto | cpu | cuda | cuda:N (auto: this process's GPU when one is visible)")
      ->check(CLI::Validator(
          [](std::string& v) {
            return core::valid_device_spec(v) ? std::string() : "'" + v + "' is not " + core::device_spec_expected();
          },
          "DEVICE"))
      ->capture_default_str();
}

}  // namespace troupe::cli
