// Implementation of cluster/cluster_config.h: range and format checks of the `cluster:` section.
#include "cluster/cluster_config.h"

#include <regex>

namespace troupe::cluster {

bool valid_slurm_time(const std::string& text) {
  // sbatch --time: "minutes", "minutes:seconds", "hours:minutes:seconds", "days-hours",
  // "days-hours:minutes" and "days-hours:minutes:seconds".
  static const std::regex re(R"(\d+(:\d+){0,2}|\d+-\d+(:\d+){0,2}|infinite|unlimited|INFINITE|UNLIMITED)");
  return std::regex_match(text, re);
}

bool valid_slurm_memory(const std::string& text) {
  static const std::regex re(R"([1-9]\d*[KMGTkmgt]?)");
  return std::regex_match(text, re);
}

namespace {

// Names that go into #SBATCH lines unquoted: partitions, accounts, QOS, MPI plugins.
bool plain_name(const std::string& s) {
  static const std::regex re(R"([A-Za-z0-9_.,+-]*)");
  return std::regex_match(s, re);
}

bool one_line(const std::string& s) { return s.find_first_of("\n\r") == std::string::npos; }

}  // namespace

void ClusterSection::validate(core::ConfigValidator& v) const {
  v.require(plain_name(partition), "partition", partition, "a partition name (letters, digits, _ . , + -)");
  v.require(nodes >= 1, "nodes", nodes, "an integer >= 1");
  v.require(ntasks >= nodes, "ntasks", ntasks, "an integer >= cluster.nodes");
  v.require(ntasks_per_node >= 0, "ntasks_per_node", ntasks_per_node, "an integer >= 0 (0 = let Slurm decide)");
  v.require(ntasks_per_node == 0 || ntasks_per_node * nodes >= ntasks, "ntasks_per_node", ntasks_per_node,
            "0, or at least cluster.ntasks / cluster.nodes");
  v.require(cpus_per_task >= 0, "cpus_per_task", cpus_per_task, "an integer >= 0 (0 = Slurm's default)");
  v.require(gpus_per_task >= 0, "gpus_per_task", gpus_per_task, "an integer >= 0");
  v.require(mem.empty() || valid_slurm_memory(mem), "mem", mem, "empty or a size such as 4096, 16G or 512M");
  v.require(time.empty() || valid_slurm_time(time), "time", time,
            "empty or a Slurm time limit: M, M:S, H:M:S, D-H, D-H:M or D-H:M:S");
  v.require(plain_name(account), "account", account, "an account name (letters, digits, _ . , + -)");
  v.require(plain_name(qos), "qos", qos, "a QOS name (letters, digits, _ . , + -)");
  for (const auto& line : extra_sbatch) {
    v.require(!line.empty() && one_line(line) && (line.rfind("-", 0) == 0 || line.rfind("#SBATCH ", 0) == 0),
              "extra_sbatch", line, "sbatch options, one per item, each starting with '-' (e.g. --exclusive)");
  }
  v.require(signal_before_s >= 0 && signal_before_s <= 65535, "signal_before_s", signal_before_s,
            "an integer in [0, 65535] seconds");
  v.require(!srun_mpi.empty() && plain_name(srun_mpi), "srun_mpi", srun_mpi, "an srun --mpi plugin, e.g. pmix");
}

}  // namespace troupe::cluster
