// Test helper for tests/cli/tensorboard_export_test.py: writes a run log slowly, the way a run that crashes and
// resumes does, so that `troupe export tensorboard --follow` sees rows arrive and then rolled back. Not a trainer.
//   helper LOG first STEPS PACE_MS      creates LOG (status running), logs steps 0..STEPS-1, exits unfinished
//   helper LOG resume FROM STEPS PACE_MS  truncate_after(FROM), logs FROM+1..STEPS-1 with new values, finishes
// Per step: "train/loss" = step / 3 (then -step / 7 after the resume), "train/lr" = 1 / (step + 1); every 5th step
// two rows of table "completions" (unicode, '|', newlines); every 10th step a "checkpoint" event.
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>

#include "core/run_log.h"

namespace {

using troupe::core::RunLog;

void log_step(RunLog& log, int64_t step, bool resumed) {
  const double s = static_cast<double>(step);
  log.log_scalars(step, {{"train/loss", resumed ? -s / 7.0 : s / 3.0}, {"train/lr", 1.0 / (s + 1.0)}});
  if (step % 5 == 0) {
    const std::string n = std::to_string(step) + (resumed ? "r" : "");
    log.log_table_row("completions", step, {{"prompt", "Q" + n + ": 2+2 | ünïcode"}, {"completion", "A\nfour " + n}});
    log.log_table_row("completions", step, {{"prompt", "Q" + n + "b"}, {"completion", "**bold** " + n}});
  }
  if (step % 10 == 0) log.log_event(step, "checkpoint", "checkpoints/step_" + std::to_string(step));
}

void pace(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }  // a slow run, not a wait

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 2 ? argv[2] : "";
  if (!((mode == "first" && argc == 5) || (mode == "resume" && argc == 6))) {
    std::fprintf(stderr, "usage: %s LOG first STEPS PACE_MS | LOG resume FROM STEPS PACE_MS\n", argv[0]);
    return 2;
  }
  try {
    const int pace_ms = std::stoi(argv[argc - 1]);
    const int64_t steps = std::stoll(argv[argc - 2]);
    if (mode == "first") {
      troupe::core::RunMetadata meta;
      meta.hostname = "helper-host";
      auto log = RunLog::create(argv[1], "seed: 7\nmodel:\n  layers: 2  # a comment\n", meta);
      log.set_attribute("status", "running");
      log.log_event(0, "start", "helper run started");
      for (int64_t step = 0; step < steps; ++step, pace(pace_ms)) log_step(log, step, false);
      return 0;  // no "finished": the run crashed
    }
    const int64_t from = std::stoll(argv[3]);
    auto log = RunLog::open_for_append(argv[1]);
    log.truncate_after(from);
    log.log_event(from, "resume", "resumed from checkpoint step " + std::to_string(from));
    for (int64_t step = from + 1; step < steps; ++step, pace(pace_ms)) log_step(log, step, true);
    log.log_event(steps - 1, "finished", "helper run done");
    log.set_attribute("status", "finished");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
