// `troupe bench train`: training tokens/s (forward, backward, clipping, AdamW step) of Troupe's GPT against the
// same architecture in eager Python torch (bench/train_peer.py), both from the same initial weights on the same
// batches, in fp32 and bf16 autocast, in one run. Also the loss-curve agreement with the fp32 peer and the model
// FLOP utilisation against a matmul peak measured in the same process.
#include <fmt/format.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "bench/commands.h"
#include "bench/stats.h"
#include "cli/options.h"
#include "core/device.h"
#include "core/errors.h"
#include "core/runtime.h"
#include "core/subprocess.h"
#include "core/torch_runtime.h"
#include "models/gpt_io.h"
#include "models/optim.h"

namespace troupe::bench {

namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct TrainBenchArgs {
  int64_t n_layer = 4, n_head = 4, n_embd = 256, block = 128, vocab = 4096, batch = 16;
  int steps = 12, warmup = 3, threads = 1;
  std::string python = core::reference_python();
  std::string peer_script = "bench/train_peer.py";
  std::string work_dir = "bench-work/train";
  std::string profile;             // when set: chrome traces of one timed Troupe step per dtype, written here
  bool compile = true;             // also run the peer under torch.compile (inductor)
  std::string attention = "auto";  // Troupe's attention: auto | sdpa | troupe
  std::vector<std::string> dtypes{"fp32", "bf16"};
  std::string device = "auto";
};

// Waits for the device's queued work (a no-op on the CPU), so that wall-clock times measure it.
void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.index());
}

struct Curve {
  std::vector<double> seconds, loss;
};

Curve run_troupe(const fs::path& init, const torch::Tensor& batches, const models::OptimConfig& oc, bool bf16,
                 int warmup, const std::string& profile, models::AttentionKernel attention,
                 const torch::Device& device) {
  models::Gpt model = models::load_hf_gpt2(init);
  model->to(device);
  model->set_attention_kernel(attention);
  model->train();
  auto opt = models::make_adamw(*model, oc);
  std::vector<torch::Tensor> params;
  for (const auto& p : model->parameters()) params.push_back(p);
  Curve c;
  for (int64_t s = 0; s < batches.size(0); ++s) {
    std::optional<torch::autograd::profiler::RecordProfile> trace;
    if (!profile.empty() && s == warmup - 1)
      trace.emplace(profile + (bf16 ? "/troupe_bf16.json" : "/troupe_fp32.json"));
    const auto t0 = Clock::now();
    const torch::Tensor b = batches[s].to(device);
    const torch::Tensor x = b.slice(1, 0, b.size(1) - 1), y = b.slice(1, 1, b.size(1));
    torch::Tensor loss;
    {
      models::Bf16Autocast autocast(bf16);
      // What the trainer does (experiments/lm_training.cpp): hidden states, then the fused LM head + loss.
      models::GptInput in;
      in.ids = x;
      loss = model->lm_loss_sum(model->hidden(in), y, -100) / static_cast<double>(y.numel());
    }
    opt->zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(params, oc.grad_clip);
    opt->step();
    c.loss.push_back(loss.item<double>());
    sync(device);
    if (s >= warmup) c.seconds.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    trace.reset();
  }
  return c;
}

// mode: "eager" or "compile" (torch.compile with inductor; compilation happens in the untimed warm-up steps).
Curve run_peer(const TrainBenchArgs& a, const fs::path& work, const std::string& dtype, const std::string& mode,
               const torch::Device& device) {
  // OpenMP and MKL size their pools from OMP_NUM_THREADS: pin them to the same count as Troupe's.
  core::SubprocessOptions o;
  o.argv = {a.python, a.peer_script, work.string(), dtype, std::to_string(a.threads), mode, device.str()};
  o.env["OMP_NUM_THREADS"] = std::to_string(a.threads);
  const std::string cmd = core::join_command(o.argv);
  // A peer that hangs (a stuck compile, a wedged GPU) is killed after two hours: a TimeoutError, not a hang.
  const core::CommandOutput peer = core::run_captured(std::move(o), std::chrono::hours(2));
  if (peer.status != 0) throw Error("train peer failed (" + cmd + "): " + peer.out + peer.err);
  const auto j = nlohmann::json::parse(peer.out);
  return {j.at("seconds").get<std::vector<double>>(), j.at("loss").get<std::vector<double>>()};
}

// The peak is the best of 5 rounds of 7 timed products: a median of one round swung 3x on a busy 2-vCPU machine
// and took the MFU column with it; the fastest round is the closest to what the hardware can do.
// On a GPU the products are 8192^3 (1024^3 is launch-bound there) and each is waited for.
double matmul_peak_gflops(torch::Dtype dtype, const torch::Device& device) {
  const int64_t n = device.is_cuda() ? 8192 : 1024;
  const auto on = torch::TensorOptions(dtype).device(device);
  const torch::Tensor a = torch::randn({n, n}, on), b = torch::randn({n, n}, on);
  double best = 0;
  for (int round = 0; round < 5; ++round) {
    std::vector<double> t;
    for (int i = 0; i < 7; ++i) {
      sync(device);
      const auto t0 = Clock::now();
      const torch::Tensor c = torch::mm(a, b);
      sync(device);
      t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    best = std::max(best, 2.0 * static_cast<double>(n * n * n) / median(t) / 1e9);
  }
  return best;
}

int run_train_bench(const TrainBenchArgs& a) {
  const int threads = core::set_threads(a.threads);
  const torch::Device device = core::resolve_device(a.device, core::local_rank(), "--device");
  const fs::path work = fs::absolute(a.work_dir);
  fs::create_directories(work);
  if (!fs::exists(a.peer_script)) throw ConfigError("--peer-script " + a.peer_script + " not found");
  models::GptConfig c;
  c.n_layer = a.n_layer;
  c.n_head = a.n_head;
  c.n_embd = a.n_embd;
  c.block_size = a.block;
  c.vocab_size = a.vocab;
  torch::manual_seed(0);
  {
    models::Gpt init(c);
    models::save_hf_gpt2(work / "init", init);
  }
  // Learnable batches: next id = (5 id + 3) mod V most of the time.
  const int64_t steps = a.steps + a.warmup;
  torch::Tensor batches = torch::empty({steps, a.batch, a.block + 1}, torch::kLong);
  {
    std::mt19937_64 rng(1);
    auto acc = batches.accessor<int64_t, 3>();
    for (int64_t s = 0; s < steps; ++s)
      for (int64_t b = 0; b < a.batch; ++b) {
        int64_t id = static_cast<int64_t>(rng() % static_cast<uint64_t>(a.vocab));
        for (int64_t t = 0; t <= a.block; ++t) {
          acc[s][b][t] = id;
          id = rng() % 10 == 0 ? static_cast<int64_t>(rng() % static_cast<uint64_t>(a.vocab)) : (5 * id + 3) % a.vocab;
        }
      }
    std::ofstream out(work / "batches.bin", std::ios::binary);
    out << steps << " " << a.batch << " " << a.block + 1 << "\n";
    out.write(static_cast<const char*>(batches.data_ptr()), batches.numel() * 8);
  }
  models::OptimConfig oc;
  oc.lr = 1e-3;
  oc.weight_decay = 0.1;
  oc.grad_clip = 1.0;
  std::ofstream(work / "settings.json")
      << nlohmann::json{{"lr", oc.lr},   {"weight_decay", oc.weight_decay}, {"betas", {oc.beta1, oc.beta2}},
                        {"eps", oc.eps}, {"grad_clip", oc.grad_clip},       {"warmup", a.warmup}}
             .dump();
  const double tokens_per_step = static_cast<double>(a.batch * a.block);
  const double flops_per_token = c.training_flops_per_token(a.block);
  std::cout << fmt::format(
      "train: GPT {}x{} (heads {}), vocab {}, context {}, batch {} ({:.2f}M params, {:.1f} MFLOP/"
      "token), {} timed steps after {} warm-up, {} thread(s), ATen CPU kernels {}, device {}\n",
      c.n_layer, c.n_embd, c.n_head, c.vocab_size, a.block, a.batch, c.parameter_count() / 1e6, flops_per_token / 1e6,
      a.steps, a.warmup, threads, core::torch_info().cpu_capability, device.str());
  if (!a.profile.empty()) {
    if (a.warmup < 1) throw ConfigError("--profile traces the last warm-up step: needs --warmup >= 1");
    fs::create_directories(a.profile);
  }
  // MFU of each run against the matmul peak of its own dtype: bf16 matmuls run ~2x faster than fp32 here.
  const double peak = matmul_peak_gflops(torch::kFloat32, device);
  const double peak_bf16 = matmul_peak_gflops(torch::kBFloat16, device);
  struct Row {
    std::string name;
    Curve curve;
  };
  std::vector<Row> rows;
  const auto attention = a.attention == "sdpa"     ? models::AttentionKernel::kSdpa
                         : a.attention == "troupe" ? models::AttentionKernel::kTroupe
                                                   : models::AttentionKernel::kAuto;
  const bool fp32 = std::count(a.dtypes.begin(), a.dtypes.end(), "fp32") > 0;
  const bool bf16 = std::count(a.dtypes.begin(), a.dtypes.end(), "bf16") > 0;
  if (fp32)
    rows.push_back(
        {"troupe fp32", run_troupe(work / "init", batches, oc, false, a.warmup, a.profile, attention, device)});
  if (bf16)
    rows.push_back(
        {"troupe bf16 autocast", run_troupe(work / "init", batches, oc, true, a.warmup, a.profile, attention, device)});
  for (const char* mode : {"eager", "compile"}) {
    if (std::string(mode) == "compile" && !a.compile) continue;
    for (const std::string dtype : {"fp32", "bf16"})
      if (dtype == "fp32" ? fp32 : bf16)
        rows.push_back({fmt::format("python {} {} (peer)", dtype, mode), run_peer(a, work, dtype, mode, device)});
  }
  std::cout << fmt::format("matmul peak (1024^3, same threads): fp32 {:.1f} GFLOP/s, bf16 {:.1f} GFLOP/s\n", peak,
                           peak_bf16);
  std::cout << fmt::format("{:<30} {:>10} {:>12} {:>8} {:>12}\n", "", "s/step", "tokens/s", "MFU", "final loss");
  double best_peer = 0;
  for (const Row& r : rows) {
    const double tps = tokens_per_step / median(r.curve.seconds);
    if (r.name.find("peer") != std::string::npos) best_peer = std::max(best_peer, tps);
    std::cout << fmt::format(
        "{:<30} {:>10.4f} {:>12.0f} {:>7.1f}% {:>12.4f}\n", r.name, median(r.curve.seconds), tps,
        100.0 * flops_per_token * tps / ((r.name.find("bf16") != std::string::npos ? peak_bf16 : peak) * 1e9),
        r.curve.loss.back());
  }
  auto max_diff_of = [](const Curve& x, const Curve& y) {
    double d = 0;
    for (size_t i = 0; i < x.loss.size() && i < y.loss.size(); ++i) d = std::max(d, std::abs(x.loss[i] - y.loss[i]));
    return d;
  };
  auto curve = [&](const std::string& name) -> const Curve& {
    for (const Row& r : rows)
      if (r.name == name) return r.curve;
    throw Error("bench train: no row " + name);
  };
  for (const std::string dtype : {"fp32", "bf16"}) {
    if (!(dtype == "fp32" ? fp32 : bf16)) continue;
    const Curve& ours = curve(dtype == "fp32" ? "troupe fp32" : "troupe bf16 autocast");
    std::cout << fmt::format("troupe {} / fastest peer: {:.2f}x (goal >= 1.5x)\n", dtype,
                             tokens_per_step / median(ours.seconds) / best_peer);
  }
  if (fp32) {
    const Curve& ours = curve("troupe fp32");
    std::cout << fmt::format("loss curve vs fp32 peer over {} steps: max |diff| {:.2e} (start {:.4f}, end {:.4f})\n",
                             ours.loss.size(), max_diff_of(ours, curve("python fp32 eager (peer)")), ours.loss.front(),
                             ours.loss.back());
  }
  if (fp32 && bf16) {
    // bf16's own noise: how far the peer's bf16 curve strays from its fp32 curve, next to how far Troupe's does.
    const Curve& ref = curve("python fp32 eager (peer)");
    std::cout << fmt::format("bf16 loss curves vs fp32 peer: troupe max |diff| {:.2e}, python max |diff| {:.2e}\n",
                             max_diff_of(curve("troupe bf16 autocast"), ref),
                             max_diff_of(curve("python bf16 eager (peer)"), ref));
  }
  return 0;
}

}  // namespace

void add_bench_train_command(CLI::App& bench, int& exit_code) {
  auto a = std::make_shared<TrainBenchArgs>();
  auto* cmd = bench.add_subcommand(
      "train", "Training tokens/s and MFU vs the same GPT in Python torch (eager and torch.compile)");
  cmd->add_option("--n-layer", a->n_layer)->capture_default_str();
  cmd->add_option("--n-head", a->n_head)->capture_default_str();
  cmd->add_option("--n-embd", a->n_embd)->capture_default_str();
  cmd->add_option("--block", a->block, "context length")->capture_default_str();
  cmd->add_option("--vocab", a->vocab)->capture_default_str();
  cmd->add_option("--batch", a->batch)->capture_default_str();
  cmd->add_option("--steps", a->steps, "timed steps")->capture_default_str();
  cmd->add_option("--warmup", a->warmup, "untimed first steps")->capture_default_str();
  cmd->add_option("--threads", a->threads, "threads for both sides")->capture_default_str();
  cmd->add_option("--python", a->python, "python with torch")->capture_default_str();
  cmd->add_option("--peer-script", a->peer_script, "bench/train_peer.py")->capture_default_str();
  cmd->add_option("--work-dir", a->work_dir)->capture_default_str();
  cmd->add_option("--attention", a->attention, "Troupe's attention kernel: auto, sdpa or troupe")
      ->check(CLI::IsMember({"auto", "sdpa", "troupe"}))
      ->capture_default_str();
  cmd->add_option("--dtypes", a->dtypes, "which of fp32, bf16 to run (both sides)")
      ->delimiter(',')
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  cli::add_device_option(cmd, a->device);
  cmd->add_flag("!--no-compile", a->compile, "skip the torch.compile peers (they compile for a minute or more)");
  cmd->add_option("--profile", a->profile,
                  "directory for chrome://tracing files of Troupe's last (untimed) warm-up step, fp32 and bf16");
  cmd->callback([a, &exit_code] { exit_code = run_train_bench(*a); });
}

}  // namespace troupe::bench
