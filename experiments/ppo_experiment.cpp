// Implementation of experiments/ppo_experiment.h.
#include "experiments/ppo_experiment.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "core/errors.h"
#include "core/run_session.h"
#include "core/runtime.h"
#include "core/signals.h"
#include "distributed/launcher.h"
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
      threads_.emplace_back([this, role, server] {
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

std::string self_exe() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw IoError("cannot resolve /proc/self/exe: " + ec.message());
  return p.string();
}

// One `troupe worker` process per role; endpoints come back through rendezvous files.
class WorkerRoles {
 public:
  WorkerRoles(const rlhf::PpoConfig& c, const fs::path& run_dir) {
    const fs::path dir = run_dir / "workers";
    fs::create_directories(dir);
    for (const std::string& name : rlhf::role_names()) {
      const fs::path file = dir / (name + ".endpoint");
      fs::remove(file);
      std::string endpoint;
      if (c.placement.transport == "tcp") {
        endpoint = "tcp://" + c.placement.bind_host + ":*";
      } else {
        // ipc paths are limited to ~107 bytes, so the sockets live in /tmp under a per-run name.
        endpoint = "ipc:///tmp/troupe-" + std::to_string(::getpid()) + "-" + name + ".sock";
      }
      const distributed::WorkerProcess& w = group_.start("role " + name + " rank 0",
                   {self_exe(), "worker", "--config", (run_dir / "config.yaml").string(), "--role", name,
                    "--endpoint", endpoint, "--endpoint-file", file.string()},
                   dir / (name + ".log"));
      std::ofstream(dir / (name + ".pid")) << w.pid() << "\n";  // for people and tests
      files_[name] = file;
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

int run_ppo_worker(const std::string& config_file, const std::string& role_name, const std::string& endpoint,
                   const std::string& endpoint_file) {
  const auto tree = core::load_config(config_file, {});
  const rlhf::PpoConfig c = core::bind_config<rlhf::PpoConfig>(tree).value;
  core::set_threads(c.runtime.threads);
  const pid_t parent = ::getppid();
  auto role = rlhf::make_role(role_name, c);
  distributed::Server server(endpoint);
  {
    const std::string tmp = endpoint_file + ".tmp";
    std::ofstream(tmp) << server.endpoint() << "\n";
    fs::rename(tmp, endpoint_file);
  }
  spdlog::info("{} serving on {}", role_name, server.endpoint());
  distributed::ServeOptions o;
  o.should_stop = [parent] { return ::getppid() != parent || core::stop_requested(); };
  distributed::serve(server, [&role](const distributed::Message& m) { return role->handle(m); }, o);
  return core::stop_requested() ? 128 + core::stop_signal() : 0;
}

}  // namespace troupe::experiments
