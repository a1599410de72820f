// `troupe bench matmul`: fp32 matmul GFLOP/s at 1 and N threads (median of repeats),
// next to the same matmul in Python torch measured in the same run, as a ratio.
#include <fmt/format.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>

#include "bench/commands.h"
#include "bench/stats.h"
#include "cli/options.h"
#include "core/errors.h"
#include "core/runtime.h"
#include "core/subprocess.h"
#include "core/torch_runtime.h"

namespace troupe::bench {

namespace {

struct MatmulArgs {
  std::vector<int64_t> sizes = {512, 1024, 2048};
  std::vector<int> threads;  // empty = {1, all cores}
  int repeats = 7;
  std::string peer = core::reference_python();
  double min_gflops = 0;  // fail when the best 1-thread figure is below this
};

// Median seconds of one n×n×n fp32 matmul with `threads` threads.
double time_matmul(int64_t n, int threads, int repeats) {
  core::set_threads(threads);
  torch::manual_seed(0);
  auto a = torch::randn({n, n});
  auto b = torch::randn({n, n});
  auto c = torch::empty({n, n});
  for (int i = 0; i < 2; ++i) torch::matmul_out(c, a, b);  // warm-up: thread pools, caches
  std::vector<double> secs;
  for (int i = 0; i < repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    torch::matmul_out(c, a, b);
    secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return median(secs);
}

// Runs the same measurement in Python torch; returns {(threads, n) -> median seconds}.
// One interpreter per thread count, with OMP_NUM_THREADS set as well as torch.set_num_threads.
std::map<std::pair<int, int64_t>, double> time_peer(const MatmulArgs& args, const std::vector<int>& threads) {
  std::ostringstream sizes;
  for (auto n : args.sizes) sizes << n << ",";
  std::map<std::pair<int, int64_t>, double> out;
  for (int t : threads) {
    const std::string script =
        "import time,statistics,torch\n"
        "torch.set_num_threads(" +
        std::to_string(t) +
        ")\n"
        "for n in [" +
        sizes.str() +
        "]:\n"
        " torch.manual_seed(0); a=torch.randn(n,n); b=torch.randn(n,n); c=torch.empty(n,n)\n"
        " for _ in range(2): torch.matmul(a,b,out=c)\n"
        " s=[]\n"
        " for _ in range(" +
        std::to_string(args.repeats) +
        "):\n"
        "  t0=time.perf_counter(); torch.matmul(a,b,out=c); s.append(time.perf_counter()-t0)\n"
        " print(n, statistics.median(s))\n";
    core::SubprocessOptions o;
    o.argv = {args.peer, "-c", script};
    o.env["OMP_NUM_THREADS"] = std::to_string(t);
    core::CommandOutput peer;
    try {
      // A peer that hangs is killed after 30 minutes (TimeoutError); one that cannot start means no peer column.
      peer = core::run_captured(std::move(o), std::chrono::minutes(30));
    } catch (const IoError&) {
      return out;
    }
    std::istringstream lines(peer.out);
    long long n = 0;
    double s = 0;
    while (lines >> n >> s) out[{t, n}] = s;
  }
  return out;
}

int run_matmul(const MatmulArgs& args) {
  std::vector<int> threads = args.threads;
  if (threads.empty()) threads = {1, core::hardware_threads()};
  threads.erase(std::unique(threads.begin(), threads.end()), threads.end());
  const auto torch_info = core::torch_info();
  std::cout << fmt::format("matmul fp32, median of {} | BLAS: {} | ATen CPU kernels: {}\n", args.repeats,
                           torch_info.blas, torch_info.cpu_capability);
  auto peer = args.peer.empty() ? decltype(time_peer(args, threads)){} : time_peer(args, threads);
  std::cout << fmt::format("{:>8}{:>7}{:>14}{:>18}{:>10}\n", "threads", "n", "troupe GF/s", "python torch GF/s",
                           "ratio");
  double best_one_thread = 0;
  for (int t : threads) {
    for (auto n : args.sizes) {
      const double flops = 2.0 * static_cast<double>(n) * n * n;
      const double ours = flops / time_matmul(n, t, args.repeats) / 1e9;
      if (t == 1) best_one_thread = std::max(best_one_thread, ours);
      auto it = peer.find({t, n});
      if (it == peer.end()) {
        std::cout << fmt::format("{:>8}{:>7}{:>14.1f}{:>18}{:>10}\n", t, n, ours, "n/a", "n/a");
      } else {
        const double theirs = flops / it->second / 1e9;
        std::cout << fmt::format("{:>8}{:>7}{:>14.1f}{:>18.1f}{:>9.2f}x\n", t, n, ours, theirs, ours / theirs);
      }
    }
  }
  if (peer.empty() && !args.peer.empty()) std::cout << "(peer " << args.peer << " with torch not available)\n";
  std::cout << fmt::format("best 1-thread: {:.1f} GFLOP/s\n", best_one_thread);
  if (args.min_gflops > 0 && best_one_thread < args.min_gflops) {
    std::cout << fmt::format("FAIL: below the required {:.1f} GFLOP/s (is the reference BLAS in use?)\n",
                             args.min_gflops);
    return 1;
  }
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
  auto* bench = app.add_subcommand("bench", "Benchmarks, each printing ratios against a peer measured in the same run");
  bench->require_subcommand(1);
  auto args = std::make_shared<MatmulArgs>();
  auto* matmul = bench->add_subcommand("matmul", "fp32 matmul GFLOP/s at 1 and N threads vs Python torch");
  matmul->add_option("--sizes", args->sizes, "matrix sizes n (n×n×n)")->delimiter(',')->capture_default_str();
  matmul->add_option("--threads", args->threads, "thread counts (default: 1 and all cores)")->delimiter(',');
  matmul->add_option("--repeats", args->repeats, "timed repeats per point (median reported)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  matmul->add_option("--peer", args->peer, "python with torch for the peer measurement ('' to skip)")
      ->capture_default_str();
  matmul->add_option("--min-gflops", args->min_gflops, "exit 1 if the best 1-thread GFLOP/s is below this");
  matmul->callback([args, &exit_code] { exit_code = run_matmul(*args); });
  add_bench_decode_command(*bench, exit_code);
  add_bench_train_command(*bench, exit_code);
  add_bench_transport_command(*bench, exit_code);
  add_bench_allreduce_command(*bench, exit_code);
  add_bench_metrics_command(*bench, exit_code);
  add_bench_quantize_command(*bench, exit_code);
  add_bench_rollout_command(*bench, exit_code);
}

}  // namespace troupe::bench
