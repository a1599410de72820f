// `troupe bench allreduce`: all-reduce bandwidth of Troupe's communicator for the device (NCCL on GPUs, MPI on the
// CPU) against torch.distributed (NCCL on GPUs, gloo on the CPU) over the same ranks, in the same run. Run it
// under mpirun (`mpirun -np 2 troupe bench allreduce --device cuda`); each rank then starts the Python peer itself,
// after its own measurements, so both sides use the same processes' GPUs.
//
// Reported as in nccl-tests: algorithm bandwidth = bytes / time, bus bandwidth = algbw * 2 (n - 1) / n (what each
// link carries in a ring all-reduce, comparable across rank counts). Times are medians over --repeats all-reduces,
// each started after a barrier and waited for on the device.
#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "bench/commands.h"
#include "bench/stats.h"
#include "cli/options.h"
#include "core/device.h"
#include "core/errors.h"
#include "core/runtime.h"
#include "core/subprocess.h"
#include "distributed/mpi_communicator.h"
#include "distributed/nccl_communicator.h"

namespace troupe::bench {

namespace {

using Clock = std::chrono::steady_clock;

struct AllreduceArgs {
  std::vector<int64_t> sizes_mib = {1, 16, 64, 256};
  int repeats = 20;
  std::string device = "auto";
  std::string python = core::reference_python();
  std::string peer_script = "bench/allreduce_peer.py";
  bool peer = true;
};

// Median seconds of one all-reduce of `bytes` over `comm`, per the method above.
double time_allreduce(distributed::Communicator& comm, int64_t bytes, int repeats, const torch::Device& device) {
  torch::Tensor x = torch::ones({bytes / 4}, torch::TensorOptions(torch::kFloat32).device(device));
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
  };
  comm.allreduce_sum(x);  // warm-up
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    comm.barrier();
    sync();
    const auto t0 = Clock::now();
    comm.allreduce_sum(x);
    sync();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return median(t);
}

// This rank's share of the peer: torch.distributed with a TCP rendezvous on rank 0's loopback (one node).
nlohmann::json run_peer(const AllreduceArgs& a, int rank, int world, int port, const torch::Device& device,
                        const std::vector<int64_t>& bytes) {
  std::string list;
  for (int64_t b : bytes) list += (list.empty() ? "" : ",") + std::to_string(b);
  core::SubprocessOptions o;
  o.argv = {a.python, a.peer_script, device.str(), list, std::to_string(a.repeats)};
  o.env = {{"RANK", std::to_string(rank)}, {"WORLD_SIZE", std::to_string(world)}, {"LOCAL_RANK", std::to_string(rank)},
           {"MASTER_ADDR", "127.0.0.1"},   {"MASTER_PORT", std::to_string(port)}, {"OMP_NUM_THREADS", "1"}};
  const std::string cmd = core::join_command(o.argv);
  // torch.distributed's rendezvous waits for every rank: a peer whose partner died is killed after 30 minutes (a
  // TimeoutError) instead of holding this rank for ever.
  const core::CommandOutput peer = core::run_captured(std::move(o), std::chrono::minutes(30));
  if (peer.status != 0) throw Error("allreduce peer failed (" + cmd + "): " + peer.out + peer.err);
  return rank == 0 ? nlohmann::json::parse(peer.out) : nlohmann::json();
}

int run_allreduce(const AllreduceArgs& a) {
  if (!distributed::launched_by_mpi())
    throw ConfigError("bench allreduce: run it under mpirun, e.g. mpirun -np 2 troupe bench allreduce");
  auto mpi = distributed::MpiCommunicator::world();
  const int rank = mpi->rank(), world = mpi->size();
  const torch::Device device = core::resolve_device(a.device, core::local_rank(), "--device");
  std::unique_ptr<distributed::Communicator> nccl;
  if (device.is_cuda()) nccl = distributed::NcclCommunicator::create(*mpi, device.index());
  distributed::Communicator& comm = nccl ? *nccl : *mpi;
  std::vector<int64_t> bytes;
  for (int64_t m : a.sizes_mib) bytes.push_back(m << 20);
  std::vector<double> ours;
  for (int64_t b : bytes) ours.push_back(time_allreduce(comm, b, a.repeats, device));
  mpi->barrier();
  nlohmann::json peer;
  if (a.peer) {
    if (!std::filesystem::exists(a.peer_script)) throw ConfigError("--peer-script " + a.peer_script + " not found");
    torch::Tensor port = torch::full({1}, 20000 + ::getpid() % 20000, torch::kLong);  // rank 0's choice
    mpi->broadcast(port, 0);
    peer = run_peer(a, rank, world, static_cast<int>(port.item<int64_t>()), device, bytes);
  }
  if (rank != 0) return 0;
  const double bus = 2.0 * (world - 1) / world;
  std::cout << fmt::format(
      "allreduce: {} ranks, device {} ({}), float32 sum, median of {}; peer torch.distributed ({})\n", world,
      device.str(), nccl ? "NCCL" : "MPI", a.repeats, device.is_cuda() ? "nccl" : "gloo");
  std::cout << fmt::format("{:>10} {:>12} {:>14} {:>14} {:>14} {:>8}\n", "size", "troupe ms", "troupe algbw",
                           "troupe busbw", "peer busbw", "ratio");
  for (size_t i = 0; i < bytes.size(); ++i) {
    const double gb = static_cast<double>(bytes[i]) / 1e9;
    const double alg = gb / ours[i];
    std::string peer_bw = "-", ratio = "-";
    if (a.peer) {
      const double ps = peer.at(std::to_string(bytes[i])).get<double>();
      peer_bw = fmt::format("{:.2f} GB/s", gb / ps * bus);
      ratio = fmt::format("{:.2f}x", ps / ours[i]);
    }
    std::cout << fmt::format("{:>7} MiB {:>12.3f} {:>9.2f} GB/s {:>9.2f} GB/s {:>14} {:>8}\n", a.sizes_mib[i],
                             ours[i] * 1e3, alg, alg * bus, peer_bw, ratio);
  }
  return 0;
}

}  // namespace

void add_bench_allreduce_command(CLI::App& bench, int& exit_code) {
  auto a = std::make_shared<AllreduceArgs>();
  auto* cmd = bench.add_subcommand("allreduce",
                                   "All-reduce bus bandwidth (NCCL on GPUs, MPI on the CPU) vs "
                                   "torch.distributed; run under mpirun");
  cmd->add_option("--sizes-mib", a->sizes_mib, "tensor sizes in MiB")->delimiter(',')->capture_default_str();
  cmd->add_option("--repeats", a->repeats, "timed all-reduces per size (median)")->capture_default_str();
  cli::add_device_option(cmd, a->device);
  cmd->add_option("--python", a->python, "python with torch")->capture_default_str();
  cmd->add_option("--peer-script", a->peer_script, "bench/allreduce_peer.py")->capture_default_str();
  cmd->add_flag("!--no-peer", a->peer, "skip the torch.distributed peer");
  cmd->callback([a, &exit_code] { exit_code = run_allreduce(*a); });
}

}  // namespace troupe::bench
