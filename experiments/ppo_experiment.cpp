// Implementation of experiments/ppo_experiment.h.
#include "experiments/ppo_experiment.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
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
#include "core/subprocess.h"
#include "core/torch_runtime.h"
#include "distributed/curve_keys.h"
#include "distributed/group_relay.h"
#include "distributed/heartbeat.h"
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

// The rendezvous key a worker rank beats in: <group label>.<rank>.beat.
std::string heartbeat_key(const std::string& label, int64_t rank) {
  return label + "." + std::to_string(rank) + ".beat";
}

std::chrono::milliseconds seconds_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

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
// endpoints come back through the rendezvous store in <run>/workers, and each rank of each group beats in
// <run>/workers/<label>.<rank>.beat (distributed/heartbeat.h).
class WorkerRoles {
 public:
  using Clock = std::chrono::steady_clock;
  WorkerRoles(const rlhf::PpoConfig& c, const fs::path& run_dir)
      : c_(c), store_(run_dir / "workers"), hangs_(seconds_ms(c.fault.hang_timeout_s)) {
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
    if (c.placement.curve_enabled()) {  // fresh keys at every start of the controller; workers get the file's path
      const fs::path keys = run_dir / "keys" / "curve.keys";
      fs::remove(keys);  // written with O_EXCL
      distributed::write_curve_keys(keys, distributed::generate_curve_keys());
      o.curve_keys = keys;
      curve_ = distributed::read_curve_keys(keys);
    }
    for (distributed::WorkerLaunch launch : distributed::plan_worker_launches(groups, o)) {
      Group g;
      g.name =
          "role " + launch.label + (launch.ranks > 1 ? " (" + std::to_string(launch.ranks) + " ranks)" : " rank 0");
      for (int64_t r = 0; r < launch.ranks; ++r) {
        const std::string who = "role " + launch.label + " rank " + std::to_string(r);
        g.ranks.push_back(who);
        const fs::path beat = store_.path_of(heartbeat_key(launch.label, r));
        hangs_.add(who, beat);
      }
      for (const auto& [role, key] : launch.keys) g.roles.push_back(role);
      g.launch = std::move(launch);
      groups_.push_back(std::move(g));
    }
    for (Group& g : groups_) start(g);
    wait_for_endpoints();
  }
  const std::map<std::string, std::string>& endpoints() const { return endpoints_; }
  const std::optional<distributed::CurveKeys>& curve() const { return curve_; }

  // Dead or stopped processes (ProcessGroup::check), then frozen or stuck ones (their heartbeats). `busy`: roles that
  // owe replies -> since when.
  void check(const std::map<std::string, Clock::time_point>& busy) {
    try {
      group_.check();
    } catch (const WorkerFailure& e) {  // a stopped process of a group: say which rank it is
      const std::optional<std::string> who = e.pid() != 0 ? hangs_.worker_of(e.pid()) : std::nullopt;
      if (!who) throw;
      throw WorkerFailure(std::string(e.what()) + " (process " + std::to_string(e.pid()) + " is " + *who + ")",
                          e.worker(), e.pid());
    }
    std::map<std::string, Clock::time_point> workers;
    for (const Group& g : groups_) {
      for (const std::string& role : g.roles) {
        const auto it = busy.find(role);
        if (it == busy.end()) continue;
        for (const std::string& who : g.ranks) {
          auto [at, fresh] = workers.emplace(who, it->second);
          if (!fresh) at->second = std::min(at->second, it->second);
        }
      }
    }
    hangs_.check(workers);
  }

  // ControllerOptions::restart: the groups hosting `roles`, the one `failed` names (all when neither names one), and
  // any that has exited are killed (with their whole process group) and started again; a restarted actor or rollout
  // worker takes the other along when weights travel over a collective between them (the group is formed anew).
  std::map<std::string, std::string> restart(const std::set<std::string>& roles, const std::string& failed) {
    std::set<size_t> chosen;
    for (size_t i = 0; i < groups_.size(); ++i) {
      const Group& g = groups_[i];
      bool pick = (roles.empty() && failed.empty()) || g.name == failed ||
                  std::find(g.ranks.begin(), g.ranks.end(), failed) != g.ranks.end() || g.process->poll().has_value();
      for (const std::string& role : g.roles) pick = pick || roles.count(role) != 0;
      if (pick) chosen.insert(i);
    }
    if (c_.ppo.async_rollouts.enabled && c_.ppo.async_rollouts.weight_sync == rlhf::WeightSync::kCollective) {
      const auto hosts = [&](const std::string& role) {
        for (size_t i = 0; i < groups_.size(); ++i) {
          const auto& r = groups_[i].roles;
          if (std::find(r.begin(), r.end(), role) != r.end()) return i;
        }
        return groups_.size();
      };
      const size_t actor = hosts("actor"), rollout = hosts("rollout");
      if (chosen.count(actor) != 0 || chosen.count(rollout) != 0) chosen.insert({actor, rollout});
    }
    for (size_t i : chosen) restart_group(groups_[i]);
    wait_for_endpoints();
    return endpoints_;
  }
  void terminate() { group_.terminate(std::chrono::seconds(5)); }

 private:
  struct Group {
    std::string name;                // "role actor rank 0", "role critic (2 ranks)": its ProcessGroup name
    std::vector<std::string> ranks;  // "role critic rank 0", ...: the workers its heartbeats are watched as
    std::vector<std::string> roles;
    distributed::WorkerLaunch launch;
    distributed::WorkerProcess* process = nullptr;
  };

  // Clears the group's rendezvous keys and heartbeats (a restart must not read its predecessor's) and notes what
  // must be waited for.
  void clear(Group& g) {
    for (const auto& [role, key] : g.launch.keys) {
      store_.remove(key);
      endpoints_.erase(role);
      pending_[role] = key;
    }
    for (int64_t r = 0; r < g.launch.ranks; ++r) store_.remove(heartbeat_key(g.launch.label, r));
    for (const std::string& who : g.ranks) hangs_.reset(who);
  }
  void publish(Group& g) {
    for (const auto& [role, key] : g.launch.keys) store_.set(role + ".pid", std::to_string(g.process->pid()));
  }
  void restart_group(Group& g) {
    spdlog::warn("restarting worker {}", g.name);
    clear(g);
    g.process = &group_.restart(g.name);
    publish(g);
  }
  void start(Group& g) {
    clear(g);
    g.process = &group_.start(g.name, g.launch.argv, g.launch.log, g.launch.env);
    publish(g);
  }
  // Rendezvous: waits for every worker started since the last wait to publish its bound endpoint. One that dies or
  // stops before it has is restarted under fault.tolerance restart (at most fault.max_restarts times in all), and
  // otherwise ends the wait with its WorkerFailure.
  void wait_for_endpoints() {
    const auto timeout = seconds_ms(c_.placement.request_timeout_s);
    while (!pending_.empty()) {
      const auto [role, key] = *pending_.begin();
      try {
        endpoints_[role] = store_.wait(
            key, timeout, [this] { group_.check(); }, "the endpoint of role " + role);
        pending_.erase(role);
      } catch (const WorkerFailure& e) {
        if (c_.fault.tolerance != rlhf::FaultTolerance::kRestart || startup_restarts_ >= c_.fault.max_restarts) throw;
        ++startup_restarts_;
        spdlog::warn("fault while the workers start: {}", e.what());
        for (Group& g : groups_)
          if (g.name == e.worker()) restart_group(g);
      }
    }
  }

  const rlhf::PpoConfig& c_;
  distributed::FileStore store_;
  distributed::ProcessGroup group_;
  distributed::HangWatch hangs_;
  std::vector<Group> groups_;
  std::optional<distributed::CurveKeys> curve_;
  std::map<std::string, std::string> pending_;  // role -> rendezvous key not yet waited for
  int64_t startup_restarts_ = 0;
  std::map<std::string, std::string> endpoints_;
};

int run_ppo_controller_process(const rlhf::PpoConfig& c, const std::string& yaml, const std::string& command_line) {
  core::RunSession session(session_options(c, yaml, command_line));
  try {
    if (std::getenv("TROUPE_CHAOS") != nullptr) distributed::drop_sockets_on_sigusr2();
    // The supervisor (fault.tolerance restart) watches this beat: a frozen or stuck controller is restarted.
    const distributed::HeartbeatWriter beat(session.directory().path() / "controller.beat",
                                            seconds_ms(c.placement.heartbeat_s));
    rlhf::ControllerOptions options;
    int code = 0;
    if (c.placement.mode == rlhf::PlacementMode::kInproc) {
      InprocRoles roles(c);
      options.endpoints = roles.endpoints();
      code = rlhf::run_ppo_controller(c, session, options);
    } else {
      WorkerRoles roles(c, session.directory().path());
      options.endpoints = roles.endpoints();
      options.curve = roles.curve();
      options.check_alive = [&roles](const auto& busy) { roles.check(busy); };
      options.restart = [&roles](const std::set<std::string>& suspects, const std::string& failed) {
        return roles.restart(suspects, failed);
      };
      code = rlhf::run_ppo_controller(c, session, options);
      roles.terminate();
    }
    return code;
  } catch (const std::exception& e) {
    session.finish(core::RunStatus::Failed, -1, e.what());
    throw;
  }
}

// This process's command line, exactly (/proc/self/cmdline: NUL-separated).
std::vector<std::string> own_argv() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> argv;
  for (std::string arg; std::getline(in, arg, '\0');) argv.push_back(arg);
  if (argv.empty()) throw IoError("cannot read /proc/self/cmdline");
  argv[0] = core::current_executable().string();
  return argv;
}

// fault.tolerance restart: this process becomes a supervisor that runs the controller as a child (`troupe run` again,
// marked by TROUPE_SUPERVISED) and restarts it, resuming from its last checkpoint, when it dies by a signal it was
// not sent by us (SIGKILL, SIGSEGV, ...) or freezes (its controller.beat stops, as a frozen worker's would).
// A controller that exits by itself — finished, failed beyond its own restarts, a config error — is not restarted:
// its exit code is ours. SIGINT/SIGTERM are passed on to the controller, which checkpoints and stops.
int supervise(const rlhf::PpoConfig& c) {
  std::vector<std::string> argv = own_argv();
  // The run directory must be the same for every start: fix a timestamp name once.
  const std::string name =
      c.run.name.empty() ? core::format_utc(std::chrono::system_clock::now(), "%Y%m%d-%H%M%S") : c.run.name;
  if (c.run.name.empty()) argv.push_back("run.name=" + name);
  core::install_stop_handlers();
  const auto period = seconds_ms(c.placement.heartbeat_s);
  const fs::path run_dir = fs::path(c.run.dir) / name;
  int restarts = 0;
  while (true) {
    core::SubprocessOptions o;
    o.argv = argv;
    if (restarts > 0) o.argv.insert(o.argv.end(), {"run.resume=must", "run.overwrite=false"});
    o.env["TROUPE_SUPERVISED"] = "1";
    o.parent_death_signal = SIGKILL;  // a killed supervisor takes its controller (and so the workers) along
    std::error_code ec;
    fs::remove(run_dir / "controller.beat", ec);
    core::Subprocess child(o);
    distributed::HangWatch watch(seconds_ms(c.fault.hang_timeout_s));
    watch.add("controller", run_dir / "controller.beat");
    std::string cause;
    std::optional<int> status;
    bool forwarded = false;
    while (!(status = child.wait_for(period))) {
      if (core::stop_requested() && !forwarded) {
        child.signal(core::stop_signal());
        forwarded = true;
      }
      try {
        // Frozen only (its beats stop: SIGSTOP, a deadlocked process). Progress is not asked of the controller: it
        // may legitimately compute for long between waits (tokenizing a large prompt file at start, say).
        watch.check({});
      } catch (const WorkerFailure& e) {
        cause = e.what();
        spdlog::error("supervisor: {}; killing it", cause);
        status = child.kill();
        break;
      }
    }
    const bool crashed = !cause.empty() || (*status > 128 && !forwarded && *status != 128 + SIGINT &&
                                            *status != 128 + SIGTERM && *status != 128 + SIGUSR1);
    if (!crashed || forwarded) return *status;
    if (cause.empty()) cause = fmt::format("the controller died with status {} (signal {})", *status, *status - 128);
    if (restarts >= c.fault.max_restarts) {
      spdlog::error("supervisor: {}; giving up after {} controller restarts (fault.max_restarts)", cause, restarts);
      return *status == 0 ? 1 : *status;
    }
    ++restarts;
    spdlog::warn("supervisor: {}; restarting the controller ({}/{}) from the last checkpoint", cause, restarts,
                 c.fault.max_restarts);
  }
}

int run_ppo(const rlhf::PpoConfig& c, const std::string& yaml, const std::string& command_line) {
  if (c.fault.tolerance == rlhf::FaultTolerance::kRestart && std::getenv("TROUPE_SUPERVISED") == nullptr) {
    return supervise(c);
  }
  return run_ppo_controller_process(c, yaml, command_line);
}

}  // namespace

ExperimentKind ppo_kind() {
  return make_kind<rlhf::PpoConfig>("ppo", "RLHF with PPO: actor, critic, reward and reference roles", run_ppo);
}

namespace {

// Where a worker rank beats: <rendezvous dir>/<group label>.<rank>.beat (WorkerRoles watches the same names).
fs::path heartbeat_file(const std::string& endpoint_file, const std::vector<std::string>& roles, int64_t rank) {
  return fs::path(endpoint_file).parent_path() / heartbeat_key(distributed::worker_group_label(roles), rank);
}

// The run's CURVE keys, from the file the launcher named in TROUPE_CURVE_KEYS, when placement.curve is on.
std::optional<distributed::CurveKeys> worker_curve_keys(const rlhf::PpoConfig& c) {
  if (!c.placement.curve_enabled()) return std::nullopt;
  auto keys = distributed::curve_keys_from_env();
  if (!keys) throw ConfigError("troupe worker: placement.curve is on but TROUPE_CURVE_KEYS is not set");
  return keys;
}

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
  const distributed::HeartbeatWriter beat(heartbeat_file(endpoint_files[0], roles, comm->rank()),
                                          seconds_ms(c.placement.heartbeat_s));
  auto role = rlhf::make_role(roles[0], c, comm.get());
  std::unique_ptr<distributed::Server> server;
  if (comm->rank() == 0) {
    server = std::make_unique<distributed::Server>(endpoints[0], distributed::DecodeLimits{}, worker_curve_keys(c));
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
  // Dies with the process that started it: the controller, or the mpirun of a data-parallel group (whose own death
  // would otherwise leave its ranks running).
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) return 1;  // it died before the line above
  if (std::getenv("TROUPE_CHAOS") != nullptr) distributed::drop_sockets_on_sigusr2();
  if (distributed::launched_by_mpi()) return run_group_worker(c, roles, endpoints, endpoint_files);
  const distributed::HeartbeatWriter beat(heartbeat_file(endpoint_files[0], roles, 0),
                                          seconds_ms(c.placement.heartbeat_s));
  // Build every model first (torch's global generator is not thread-safe), then serve each role on a thread.
  const std::optional<distributed::CurveKeys> curve = worker_curve_keys(c);
  std::vector<std::unique_ptr<rlhf::Role>> built;
  std::vector<std::unique_ptr<distributed::Server>> servers;
  for (size_t i = 0; i < roles.size(); ++i) {
    built.push_back(rlhf::make_role(roles[i], c));
    servers.push_back(std::make_unique<distributed::Server>(endpoints[i], distributed::DecodeLimits{}, curve));
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
