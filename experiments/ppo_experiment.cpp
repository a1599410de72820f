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
#include "core/torch_runtime.h"
#include "distributed/group_relay.h"
#include "distributed/launcher.h"
#include "distributed/mpi_communicator.h"
#include "distributed/transport.h"
#include "distributed/worker_launch.h"
#include "rlhf/controller.h"
#include "rlhf/roles.h"

namespace troupe::experiments {
namespace fs = std::filesystem;

namespace {

// Roles on threads of this process. Models are built one after another on this thread (torch's global generator
// is not thread-safe), then each role serves its inproc endpoint until shutdown or until this object dies.
class InprocRoles {
 public:
  // A role that fails to build (a reward whose references cannot be read, say) stops the roles already serving
  // before the error propagates: a joinable std::thread member destroyed by the unwinding would std::terminate the
  // process without a message.
  explicit InprocRoles(const rlhf::PpoConfig& c) {
    try {
      start(c);
    } catch (...) {
      stop_and_join();
      throw;
    }
  }
  ~InprocRoles() { stop_and_join(); }
  const std::map<std::string, std::string>& endpoints() const { return endpoints_; }

 private:
  void start(const rlhf::PpoConfig& c) {
    static std::atomic<int> counter{0};
    const std::string prefix = "inproc://troupe-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-";
    for (const std::string& name : rlhf::active_role_names(c)) {
      auto role = std::shared_ptr<rlhf::Role>(rlhf::make_role(name, c));
      auto server = std::make_shared<distributed::Server>(prefix + name);
      endpoints_[name] = server->endpoint();
      threads_.emplace_back([this, role, server, threads = c.runtime.threads] {
        core::set_threads(threads);  // OpenMP's thread count is per thread: a new thread starts from the default
        distributed::ServeOptions o;
        o.should_stop = [this] { return stop_.load(); };
        try {
          distributed::serve(
              *server, [role](const distributed::Message& m) { return role->handle(m); }, o);
        } catch (const std::exception& e) {
          spdlog::error("{} stopped: {}", role->name(), e.what());
        }
      });
    }
  }
  void stop_and_join() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }

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
  for (const std::string& name : rlhf::active_role_names(c)) {
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
  if (p.launcher == rlhf::WorkerLauncher::kSrun) return true;
  return p.launcher == rlhf::WorkerLauncher::kAuto && std::getenv("SLURM_JOB_ID") != nullptr;
}

// One `troupe worker` process (or mpirun job, or srun step) per role group (distributed/worker_launch.h); the
// endpoints come back through the rendezvous store in <run>/workers.
class WorkerRoles {
 public:
  WorkerRoles(const rlhf::PpoConfig& c, const fs::path& run_dir) : store_(run_dir / "workers") {
    std::vector<distributed::WorkerGroup> groups;
    for (const std::vector<std::string>& roles : process_groups(c)) {
      distributed::WorkerGroup g;
      g.roles = roles;
      g.ranks = c.placement.ranks(roles.front());
      const auto it = c.placement.srun_args.find(distributed::worker_group_label(roles));
      if (it != c.placement.srun_args.end()) g.srun_args = it->second;
      groups.push_back(g);
    }
    distributed::WorkerLaunchOptions o;
    o.executable = core::current_executable().string();
    o.config = (run_dir / "config.yaml").string();
    o.dir = store_.dir();
    o.tcp = c.placement.transport == rlhf::WorkerTransport::kTcp;
    o.bind_host = c.placement.bind_host;
    o.ipc_prefix = "ipc:///tmp/troupe-" + std::to_string(::getpid()) + "-";
    if (use_srun(c.placement)) o.srun = required_program("srun", "placement.launcher srun");
    bool multi_rank = false;
    for (const auto& g : groups) multi_rank |= g.ranks > 1;
    if (o.srun.empty() && multi_rank) o.mpirun = required_program("mpirun", "a role with more than one rank");
    o.as_root = ::geteuid() == 0;
    for (const distributed::WorkerLaunch& launch : distributed::plan_worker_launches(groups, o)) {
      for (const auto& [role, key] : launch.keys) {
        store_.remove(key);
        keys_[role] = key;
      }
      const distributed::WorkerProcess& w = group_.start(
          "role " + launch.label + (launch.ranks > 1 ? " (" + std::to_string(launch.ranks) + " ranks)" : " rank 0"),
          launch.argv, launch.log);
      for (const auto& [role, key] : launch.keys) store_.set(role + ".pid", std::to_string(w.pid()));
    }
    // Rendezvous: wait for every worker to publish its bound endpoint (or die trying).
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(c.placement.request_timeout_s * 1000));
    for (const auto& [role, key] : keys_) {
      endpoints_[role] = store_.wait(
          key, timeout, [this] { group_.check(); }, "the endpoint of role " + role);
    }
  }
  const std::map<std::string, std::string>& endpoints() const { return endpoints_; }
  void check() const { group_.check(); }
  void terminate() { group_.terminate(std::chrono::seconds(5)); }

 private:
  distributed::FileStore store_;
  distributed::ProcessGroup group_;
  std::map<std::string, std::string> keys_;
  std::map<std::string, std::string> endpoints_;
};

int run_ppo(const rlhf::PpoConfig& c, const std::string& yaml, const std::string& command_line) {
  core::RunSession session(session_options(c, yaml, command_line));
  try {
    rlhf::ControllerOptions options;
    int code = 0;
    if (c.placement.mode == rlhf::PlacementMode::kInproc) {
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

// Publishes a bound endpoint at `file`: a key of the rendezvous store that is the file's directory.
void publish_endpoint(const std::string& file, const std::string& bound) {
  const fs::path path(file);
  distributed::FileStore(path.parent_path()).set(path.filename().string(), distributed::reachable_endpoint(bound));
}

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
    publish_endpoint(endpoint_files[0], server->endpoint());
    spdlog::info("{} ({} ranks) serving on {}", roles[0], comm->size(), server->endpoint());
  }
  distributed::ServeOptions o;
  o.should_stop = [] { return core::stop_requested(); };
  distributed::serve_group(
      *comm, server.get(), [&role](const distributed::Message& m) { return role->handle(m); }, o);
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
    publish_endpoint(endpoint_files[i], servers.back()->endpoint());
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
        distributed::serve(
            *servers[i], [&role = *built[i]](const distributed::Message& m) { return role.handle(m); }, o);
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
