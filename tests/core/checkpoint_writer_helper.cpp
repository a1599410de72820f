// Test helper for checkpoint_crash_mp_test: saves checkpoint step 1 completely, then starts
// step 2 and blocks forever inside the save so the test can SIGKILL it mid-write.
// Usage: troupe_checkpoint_writer_helper <root> first|before-manifest. Not a benchmark.
#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "core/checkpoint.h"
#include "core/errors.h"

namespace {
using troupe::core::CheckpointManager;
using troupe::core::CheckpointOptions;
using troupe::core::CheckpointState;

// The known step-1 tensor the test checks for: (2, 3) float, values 0.5 * [0..5].
CheckpointState step_one() {
  CheckpointState s;
  s.step = 1;
  s.tensor_groups["model"]["w"] = torch::arange(6, torch::kFloat32).reshape({2, 3}) * 0.5;
  s.extra["marker"] = std::string("complete");
  return s;
}

// Three groups big_a, big_b, big_c of one (5M,) float tensor each: about 20 MB per file.
CheckpointState step_two() {
  CheckpointState s;
  s.step = 2;
  for (const char* group : {"big_a", "big_b", "big_c"}) {
    s.tensor_groups[group]["w"] = torch::full({5'000'000}, 2.0f);
  }
  return s;
}

[[noreturn]] void block_forever() {
  for (;;) ::pause();
}

int run(const std::string& root, const std::string& mode) {
  if (mode != "first" && mode != "before-manifest") {
    std::cerr << "mode must be first or before-manifest\n";
    return 2;
  }
  CheckpointOptions options;
  options.root = root;
  options.keep_last = 0;
  CheckpointManager(options).save(step_one());
  std::cout << "saved 1" << std::endl;

  // Files are written in group order; big_c.pt is the last data file before the manifest.
  const std::string block_on = mode == "first" ? "" : "big_c.pt";
  options.on_file_written = [&](const std::filesystem::path& path) {
    std::cout << "wrote " << path.string() << std::endl;
    if (block_on.empty() || path.filename() == block_on) block_forever();
  };
  CheckpointManager(options).save(step_two());
  std::cout << "saved 2 (the test should have killed this process)" << std::endl;
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " <root> first|before-manifest\n";
    return 2;
  }
  try {
    return run(argv[1], argv[2]);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return troupe::exit_code_for(e);
  }
}
