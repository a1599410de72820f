// Implementation of experiments/ppo_experiment.h.
#include "experiments/ppo_experiment.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "core/errors.h"
#include "core/run_session.h"
#include "core/runtime.h"
#include "core/signals.h"
#include "distributed/group_relay.h"
#include "distributed/launcher.h"
#include "distributed/mpi_communicator.h"
#include "distributed/transport.h"
#include "rlhf/controller.h"
#include "rlhf/roles.h"

namespace troupe::experiments {
namespace fs = std::filesystem;

namespace {

// Roles on threads of this process. Models are built one after another on this thread (torch's global generator
// is not thread-safe), then each role serves its inproc endpoint until shutdown or until this object dies.
class InprocRoles {
 public:
  explicit InprocRoles(const rlhf::PpoConfig& c) {
    static std::atomic<int> counter{0};
    const std::string prefix = "inproc://troupe-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-";
    for (const std::string& name : rlhf::role_names()) {
      auto role = std::shared_ptr<rlhf::Role>(rlhf::make_role(name, c));
      auto server = std::make_shared<distributed::Server>(prefix + name);
      endpoints_[name] = server->endpoint();
      threads_.emplace_back([this, role, server, threads = c.runtime.threads] {
        core::set_threads(threads);  // OpenMP's thread count is per thread: a new thread starts from the default
        distributed::ServeOptions o;
        o.should_stop = [this] { return stop_.load(); };
        try {
          distributed::serve(*server, [role](const distributed::Message& m) { return role->handle(m); }, o);
        } catch (const std::exception& e) {
          spdlog::error("{} stopped: {}", role->name(), e.what());
        }
      });
    }
  }
  ~InprocRoles() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }
  const std::map<std::string, std::string>& endpoints() const { return endpoints_; }

 private:
  std::atomic<bool> stop_{false};
  std::map<std::string, std::string> endpoints_;
  std::vector<std::thread> threads_;
};

// The worker processes: one per role, except roles that placement.colocate puts together.
std::vector<std::vector<std::string>> process_groups(const rlhf::PpoConfig& c) {
  std::vector<std::vector<std::string>> groups;
  std::set<std::string> placed;
  for (const std::string& spec : c.placement.colocate) {
    std::vector<std::string> group;
    std::stringstream ss(spec);
    for (std::string name; std::getline(ss, name, ',');) {
      if (!placed.insert(name).second) throw ConfigError("placement.colocate: role '" + name + "' appears twice");
      group.push_back(name);
    }
    groups.push_back(group);
  }
  for (const std::string& name : rlhf::role_names()) {
    if (placed.count(name) == 0) groups.push_back({name});
  }
  return groups;
}

// An executable from PATH (absolute, for exec); ConfigError saying why it is needed when it is missing.
std::string required_program(const std::string& name, const std::string& why) {
  if (auto p = core::find_on_path(name)) return p->string();
  throw ConfigError("placement: " + why + " needs " + name + " on PATH");
}

// placement.launcher: srun when asked, or (auto) when this process runs inside a Slurm job.
bool use_srun(const rlhf::PlacementSection& p) {
  if (p.launcher == "srun") return true;
  return p.launcher == "auto" && std::getenv("SLURM_JOB_ID") != nullptr;
}

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> words;
  std::stringstream ss(s);
  for (std::string w; ss >> w;) words.push_back(w);
  return words;
}

// The endpoint to publish for a bound one: a wildcard bind address is replaced by this host's name, so that a
// controller on another node can connect.
std::string reachable_endpoint(std::string endpoint) {
  for (const std::string any : {"tcp://0.0.0.0:", "tcp://*:"}) {
    if (endpoint.rfind(any, 0) == 0) return "tcp://" + core::hostname() + ":" + endpoint.substr(any.size());
  }
  return endpoint;
}

// One `troupe worker` process per role; endpoints come back through rendezvous files.
class WorkerRoles {
 public:
  WorkerRoles(const rlhf::PpoConfig& c, const fs::path& run_dir) {
    const fs::path dir = run_dir / "workers";
    fs::create_directories(dir);
    for (const std::vector<std::string>& group : process_groups(c)) {
      std::vector<std::string> argv = {core::current_executable().string(), "worker", "--config",
                                       (run_dir / "config.yaml").string()};
      std::string label;
      for (const std::string& name : group) {
        const fs::path file = dir / (name + ".endpoint");
        fs::remove(file);
        // ipc paths are limited to ~107 bytes, so the sockets live in /tmp under a per-run name.
        const std::string endpoint = c.placement.transport == "tcp"
                                         ? "tcp://" + c.placement.bind_host + ":*"
                                         : "ipc:///tmp/troupe-" + std::to_string(::getpid()) + "-" + name + ".sock";
        argv.insert(argv.end(), {"--role", name, "--endpoint", endpoint, "--endpoint-file", file.string()});
        files_[name] = file;
        label += (label.empty() ? "" : "+") + name;
      }
      const int64_t ranks = c.placement.ranks(group.front());
      if (use_srun(c.placement)) {
        // Inside a Slurm allocation: the group is one job step (srun --mpi=pmix; `ranks` tasks form its MPI world),
        // placed by Slurm per placement.srun_args[label] (e.g. --nodes=1 --nodelist=...). Killing srun ends the step.
        std::vector<std::string> srun = {required_program("srun", "placement.launcher srun"), "--mpi=pmix", "--overlap",
                                         "--ntasks=" + std::to_string(ranks), "--kill-on-bad-exit=1",
                                         "--job-name=troupe-" + label};
        if (auto it = c.placement.srun_args.find(label); it != c.placement.srun_args.end()) {
          for (const std::string& w : split_words(it->second)) srun.push_back(w);
        }
        argv.insert(argv.begin(), srun.begin(), srun.end());
      } else if (ranks > 1) {
        // A data-parallel group: one mpirun job of `ranks` workers; its world is the role's communicator.
        std::vector<std::string> mpi = {required_program("mpirun", "a role with more than one rank")};
        if (::geteuid() == 0) mpi.push_back("--allow-run-as-root");
        mpi.insert(mpi.end(), {"--oversubscribe", "--bind-to", "none", "--mca", "btl", "self,vader", "-np",
                               std::to_string(ranks)});
        argv.insert(argv.begin(), mpi.begin(), mpi.end());
      }
      const distributed::WorkerProcess& w =
          group_.start("role " + label + (ranks > 1 ? " (" + std::to_string(ranks) + " ranks)" : " rank 0"), argv,
                       dir / (label + ".log"));
      for (const std::string& name : group) std::ofstream(dir / (name + ".pid")) << w.pid() << "\n";
    }
    // Rendezvous: wait for every worker to publish its bound endpoint (or die trying).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(c.placement.request_timeout_s);
    for (const auto& [name, file] : files_) {
      while (!fs::exists(file)) {
        group_.check();
        if (std::chrono::steady_clock::now() > deadline) throw TimeoutError("role " + name + " did not start in time");
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      std::ifstream in(file);
      std::getline(in, endpoints_[name]);
    }
  }
  const std::map<std::string, std::string>& endpoints() const { return endpoints_; }
  void check() const { group_.check(); }
  void terminate() { group_.terminate(std::chrono::seconds(5)); }

 private:
  distributed::ProcessGroup group_;
  std::map<std::string, fs::path> files_;
  std::map<std::string, std::string> endpoints_;
};

int run_ppo(const rlhf::PpoConfig& c, const std::string& yaml, const std::string& command_line) {
  core::RunSession session(session_options(c, yaml, command_line));
  try {
    rlhf::ControllerOptions options;
    int code = 0;
    if (c.placement.mode == "inproc") {
      InprocRoles roles(c);
      options.endpoints = roles.endpoints();
      code = rlhf::run_ppo_controller(c, session, options);
    } else {
      WorkerRoles roles(c, session.directory().path());
      options.endpoints = roles.endpoints();
      options.check_alive = [&roles] { roles.check(); };
      code = rlhf::run_ppo_controller(c, session, options);
      roles.terminate();
    }
    return code;
  } catch (const std::exception& e) {
    session.finish(core::RunStatus::Failed, -1, e.what());
    throw;
  }
}

}  // namespace

ExperimentKind ppo_kind() {
  return make_kind<rlhf::PpoConfig>("ppo", "RLHF with PPO: actor, critic, reward and reference roles", run_ppo);
}

namespace {

// One rank of a role's data-parallel group (started under mpirun): every rank builds the role over the group's
// communicator; rank 0 binds the endpoint and relays each request to the others.
int run_group_worker(const rlhf::PpoConfig& c, const std::vector<std::string>& roles,
                     const std::vector<std::string>& endpoints, const std::vector<std::string>& endpoint_files) {
  if (roles.size() != 1) throw ConfigError("troupe worker: a data-parallel group hosts exactly one role");
  // Requests may keep the other ranks waiting as long as the controller waits for a reply.
  auto comm = distributed::MpiCommunicator::world(
      std::chrono::milliseconds(static_cast<int64_t>(c.placement.request_timeout_s * 1000) + 60000));
  auto role = rlhf::make_role(roles[0], c, comm.get());
  std::unique_ptr<distributed::Server> server;
  if (comm->rank() == 0) {
    server = std::make_unique<distributed::Server>(endpoints[0]);
    const std::string tmp = endpoint_files[0] + ".tmp";
    std::ofstream(tmp) << reachable_endpoint(server->endpoint()) << "\n";
    fs::rename(tmp, endpoint_files[0]);
    spdlog::info("{} ({} ranks) serving on {}", roles[0], comm->size(), server->endpoint());
  }
  distributed::ServeOptions o;
  o.should_stop = [] { return core::stop_requested(); };
  distributed::serve_group(*comm, server.get(), [&role](const distributed::Message& m) { return role->handle(m); }, o);
  return core::stop_requested() ? 128 + core::stop_signal() : 0;
}

}  // namespace

int run_ppo_worker(const std::string& config_file, const std::vector<std::string>& roles,
                   const std::vector<std::string>& endpoints, const std::vector<std::string>& endpoint_files) {
  if (roles.empty() || roles.size() != endpoints.size() || roles.size() != endpoint_files.size()) {
    throw ConfigError("troupe worker: give one --endpoint and one --endpoint-file per --role");
  }
  const auto tree = core::load_config(config_file, {});
  const rlhf::PpoConfig c = core::bind_config<rlhf::PpoConfig>(tree).value;
  core::set_threads(c.runtime.threads);
  const pid_t parent = ::getppid();
  if (const char* job = std::getenv("SLURM_JOB_ID"); job != nullptr) {
    const char* step = std::getenv("SLURM_STEP_ID");
    spdlog::info("worker on {} in slurm job {} step {}", core::hostname(), job, step != nullptr ? step : "(batch)");
  }
  if (distributed::launched_by_mpi()) return run_group_worker(c, roles, endpoints, endpoint_files);
  // Build every model first (torch's global generator is not thread-safe), then serve each role on a thread.
  std::vector<std::unique_ptr<rlhf::Role>> built;
  std::vector<std::unique_ptr<distributed::Server>> servers;
  for (size_t i = 0; i < roles.size(); ++i) {
    built.push_back(rlhf::make_role(roles[i], c));
    servers.push_back(std::make_unique<distributed::Server>(endpoints[i]));
    const std::string tmp = endpoint_files[i] + ".tmp";
    std::ofstream(tmp) << reachable_endpoint(servers.back()->endpoint()) << "\n";
    fs::rename(tmp, endpoint_files[i]);
    spdlog::info("{} serving on {}", roles[i], servers.back()->endpoint());
  }
  std::atomic<int> running{static_cast<int>(roles.size())};
  std::vector<std::thread> threads;
  for (size_t i = 0; i < roles.size(); ++i) {
    threads.emplace_back([&, i] {
      core::set_threads(c.runtime.threads);
      distributed::ServeOptions o;
      o.should_stop = [parent] { return ::getppid() != parent || core::stop_requested(); };
      try {
        distributed::serve(*servers[i], [&role = *built[i]](const distributed::Message& m) { return role.handle(m); }, o);
      } catch (const std::exception& e) {
        spdlog::error("{} stopped: {}", roles[i], e.what());
      }
      --running;
    });
  }
  for (auto& t : threads) t.join();
  return core::stop_requested() ? 128 + core::stop_signal() : 0;
}

}  // namespace troupe::experiments
