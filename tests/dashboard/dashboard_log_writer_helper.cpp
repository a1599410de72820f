// Test and benchmark helper: writes a run directory the dashboard can show, through the real RunLog (not h5py).
//   troupe_dashboard_log_writer_helper RUN_DIR STEPS [INTERVAL_MS] [--kind K] [--live]
// Logs STEPS steps (train/loss = 1 / (1 + step/100) + 0.01 * sin(step), lr; eval/loss every 10th step), an event
// every 1,000 steps and a "samples" table row every 100th step, INTERVAL_MS apart (0: as fast as it can), and
// prints "step N" (flushed) after each. Without --live the status file says finished at the end; with --live it
// says running and the helper keeps logging one step per INTERVAL_MS until its parent dies (a live run).
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "core/run_log.h"

namespace {

struct Args {
  std::filesystem::path dir;
  long steps = 0;
  long interval_ms = 0;
  std::string kind = "pretrain";
  bool live = false;
};

void write_status(const std::filesystem::path& dir, const char* status) {
  std::ofstream(dir / "status") << status << "\n";
}

void log_step(troupe::core::RunLog& log, int64_t step) {
  const double x = static_cast<double>(step);
  log.log_scalars(step, {{"train/loss", 1.0 / (1.0 + x / 100.0) + 0.01 * std::sin(x)}, {"train/lr", 1e-3}});
  if (step % 10 == 0) log.log_scalars(step, {{"eval/loss", 1.1 / (1.0 + x / 100.0)}});
  if (step % 100 == 0) {
    log.log_table_row("samples", step,
                      {{"prompt", "prompt " + std::to_string(step)},
                       {"completion", "completion <b>" + std::to_string(step) + "</b>"},
                       {"reward", std::to_string(x / 1000.0)}});
  }
  if (step % 1000 == 0) log.log_event(step, "checkpoint", "step " + std::to_string(step));
}

Args parse(int argc, char** argv) {
  if (argc < 3) throw std::runtime_error("usage: RUN_DIR STEPS [INTERVAL_MS] [--kind K] [--live]");
  Args a;
  a.dir = argv[1];
  a.steps = std::stol(argv[2]);
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--live") == 0) {
      a.live = true;
    } else if (std::strcmp(argv[i], "--kind") == 0 && i + 1 < argc) {
      a.kind = argv[++i];
    } else {
      a.interval_ms = std::stol(argv[i]);
    }
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    std::filesystem::create_directories(a.dir);
    troupe::core::RunMetadata meta;
    meta.start_time = "2026-12-06T08:00:00Z";
    meta.command_line = "troupe_dashboard_log_writer_helper";
    auto log =
        troupe::core::RunLog::create(a.dir / "log.h5", "kind: " + a.kind + "\nseed: 7\noptim:\n  lr: 0.001\n", meta);
    write_status(a.dir, "running");
    log.log_event(0, "start", "writer helper");
    const pid_t parent = getppid();
    for (int64_t step = 0; step < a.steps || (a.live && getppid() == parent); ++step) {
      log_step(log, step);
      std::printf("step %lld\n", static_cast<long long>(step));
      std::fflush(stdout);
      if (a.interval_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(a.interval_ms));
    }
    if (a.live) return 3;  // orphaned: whoever started us is gone
    log.log_event(a.steps, "finished", "done");
    write_status(a.dir, "finished");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
