// Implementation of distributed/worker_launch.h.
#include "distributed/worker_launch.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/errors.h"
#include "core/run_dir.h"
#include "core/runtime.h"
#include "distributed/curve_keys.h"

namespace troupe::distributed {
namespace fs = std::filesystem;

FileStore::FileStore(fs::path dir) : dir_(std::move(dir)) {
  std::error_code ec;
  if (!dir_.parent_path().empty()) fs::create_directories(dir_.parent_path(), ec);
  if (ec) throw IoError("rendezvous: cannot create " + dir_.parent_path().string() + ": " + ec.message());
  // Only this user may list, read or plant endpoints here: a planted endpoint would send the controller elsewhere.
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST)
    throw IoError("rendezvous: cannot create " + dir_.string() + ": " + std::strerror(errno));
}

fs::path FileStore::path_of(const std::string& key) const {
  const bool ok = !key.empty() &&
                  key.find_first_not_of(
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                      "0123456789._+-") == std::string::npos &&
                  key[0] != '.';
  if (!ok) throw ConfigError("rendezvous: bad key '" + key + "' (letters, digits and ._+- only)");
  return dir_ / key;
}

void FileStore::set(const std::string& key, const std::string& value) const {
  core::write_file_atomic(path_of(key), value + "\n", 0600);
}

std::optional<std::string> FileStore::get(const std::string& key) const {
  std::ifstream in(path_of(key));
  if (!in) return std::nullopt;
  std::string value;
  std::getline(in, value);
  return value;
}

void FileStore::remove(const std::string& key) const {
  std::error_code ec;
  fs::remove(path_of(key), ec);
}

std::string FileStore::wait(const std::string& key, std::chrono::milliseconds timeout,
                            const std::function<void()>& check, const std::string& what) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (auto value = get(key)) return *value;
    if (check) check();
    if (std::chrono::steady_clock::now() > deadline) {
      throw TimeoutError((what.empty() ? "rendezvous key '" + key + "'" : what) + " did not appear in " +
                         dir_.string() + " within " + std::to_string(timeout.count() / 1000) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string worker_group_label(const std::vector<std::string>& roles) {
  std::string label;
  for (const std::string& role : roles) label += (label.empty() ? "" : "+") + role;
  return label;
}

std::vector<WorkerLaunch> plan_worker_launches(const std::vector<WorkerGroup>& groups, const WorkerLaunchOptions& o) {
  std::vector<WorkerLaunch> launches;
  for (const WorkerGroup& group : groups) {
    WorkerLaunch w;
    w.label = worker_group_label(group.roles);
    w.ranks = group.ranks;
    w.argv = {o.executable, "worker", "--config", o.config};
    for (const std::string& role : group.roles) {
      const std::string key = role + ".endpoint";
      const std::string endpoint = o.tcp ? "tcp://" + o.bind_host + ":*" : o.ipc_prefix + role + ".sock";
      w.argv.insert(w.argv.end(), {"--role", role, "--endpoint", endpoint, "--endpoint-file", (o.dir / key).string()});
      w.keys[role] = key;
    }
    std::vector<std::string> prefix;
    if (!o.srun.empty()) {
      // Inside a Slurm allocation: the group is one job step (srun --mpi=pmix; `ranks` tasks form its MPI world),
      // placed by Slurm per its srun_args (e.g. --nodes=1 --nodelist=...). Killing srun ends the step.
      prefix = {o.srun,
                "--mpi=pmix",
                "--overlap",
                "--ntasks=" + std::to_string(group.ranks),
                "--kill-on-bad-exit=1",
                "--job-name=troupe-" + w.label};
      std::stringstream words(group.srun_args);
      for (std::string word; words >> word;) prefix.push_back(word);
    } else if (group.ranks > 1) {
      // A data-parallel group: one mpirun job of `ranks` workers; its world is the role's communicator.
      if (o.mpirun.empty()) throw ConfigError("placement: a role with more than one rank needs mpirun on PATH");
      prefix = {o.mpirun};
      if (o.as_root) prefix.push_back("--allow-run-as-root");
      prefix.insert(prefix.end(), {"--oversubscribe", "--bind-to", "none", "--mca", "btl", "self,vader", "-np",
                                   std::to_string(group.ranks)});
      if (!o.curve_keys.empty()) prefix.insert(prefix.end(), {"-x", kCurveKeysEnv});  // the name, not the value
    }
    // srun exports the whole environment by default (--export=ALL), so the key file's name reaches every task.
    if (!o.curve_keys.empty()) w.env[kCurveKeysEnv] = o.curve_keys.string();
    w.argv.insert(w.argv.begin(), prefix.begin(), prefix.end());
    w.log = o.dir / (w.label + ".log");
    launches.push_back(std::move(w));
  }
  return launches;
}

bool is_loopback_host(const std::string& host) {
  std::string h = host;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h == "localhost" || h == "::1") return true;
  // 127.a.b.c: four dot-separated decimal parts, the first 127.
  std::stringstream parts(h);
  int count = 0;
  bool ok = h.rfind("127.", 0) == 0;
  for (std::string part; ok && std::getline(parts, part, '.');) {
    ok = !part.empty() && part.size() <= 3 && part.find_first_not_of("0123456789") == std::string::npos &&
         std::stoi(part) <= 255;
    ++count;
  }
  return ok && count == 4;
}

std::string reachable_endpoint(const std::string& bound) {
  for (const std::string any : {"tcp://0.0.0.0:", "tcp://*:"}) {
    if (bound.rfind(any, 0) == 0) return "tcp://" + core::hostname() + ":" + bound.substr(any.size());
  }
  return bound;
}

}  // namespace troupe::distributed
