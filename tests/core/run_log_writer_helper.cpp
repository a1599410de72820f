// Test helper: creates a run log at argv[1] and logs steps 0, 1, 2, ... until killed,
// printing "step N" (flushed) after step N is flushed to disk. Not a training loop.
// Per step: loss = N * 0.5, lr = 1 / (N + 1); every 10th step a table row in "samples"
// {prompt: "p<N>", completion: "c<N>"}; at step 0 an event ("start", "writer helper").
// Exits by itself if its parent dies, so a crashed test leaves no writer behind.
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <string>

#include "core/run_log.h"

namespace {

troupe::core::RunMetadata helper_metadata() {
  troupe::core::RunMetadata meta;
  meta.git_sha = "helper-sha";
  meta.hostname = "helper-host";
  meta.command_line = "troupe_run_log_writer_helper";
  meta.start_time = "2024-01-01T00:00:00Z";
  meta.seed = 1234;
  meta.world_size = 1;
  meta.versions = {{"hdf5", "1.10.8"}};
  return meta;
}

void log_step(troupe::core::RunLog& log, int64_t step) {
  log.log_scalars(step, {{"loss", step * 0.5}, {"lr", 1.0 / static_cast<double>(step + 1)}});
  if (step % 10 == 0) {
    auto n = std::to_string(step);
    log.log_table_row("samples", step, {{"prompt", "p" + n}, {"completion", "c" + n}});
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <log.h5>\n", argv[0]);
    return 2;
  }
  try {
    auto log = troupe::core::RunLog::create(argv[1], "model:\n  layers: 4\nseed: 1234\n", helper_metadata());
    log.log_event(0, "start", "writer helper");
    const pid_t parent = getppid();
    for (int64_t step = 0; getppid() == parent; ++step) {
      log_step(log, step);
      std::printf("step %lld\n", static_cast<long long>(step));
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 3;  // orphaned: the test that started us is gone
}
