// The `cluster:` config section: what `troupe submit` asks Slurm for (partition, tasks, CPUs, GPUs, memory, time)
// and how the job handles preemption. Plain data with validation; it does not talk to Slurm (slurm_client.h does).
#pragma once

#include <string>
#include <vector>

#include "core/config_binder.h"

namespace troupe::cluster {

struct ClusterSection {
  std::string partition;                  // --partition; empty = the cluster's default partition
  int nodes = 1;                          // --nodes
  int ntasks = 1;                         // --ntasks; > 1 starts troupe under `srun --mpi=<srun_mpi>` (one rank each)
  int ntasks_per_node = 0;                // --ntasks-per-node; 0 = let Slurm spread the tasks
  int cpus_per_task = 0;                  // --cpus-per-task; 0 = Slurm's default (usually 1)
  int gpus_per_task = 0;                  // --gpus-per-task; 0 = none
  std::string mem;                        // --mem per node, e.g. 16G; empty = Slurm's default
  std::string time;                       // --time, e.g. 30, 04:00:00 or 2-00:00:00; empty = partition default
  std::string account;                    // --account; empty = the user's default
  std::string qos;                        // --qos; empty = the default
  std::vector<std::string> extra_sbatch;  // more sbatch options, one each, e.g. "--exclusive", "--constraint=a100"
  int signal_before_s = 120;              // SIGUSR1 to the batch script this many seconds before the time limit
  bool requeue = true;                    // on SIGUSR1: checkpoint, `scontrol requeue`, resume in the requeued job
  std::string srun_mpi = "pmix";          // srun --mpi plugin when ntasks > 1 (Open MPI here needs pmix, not pmi2)

  template <class V>
  void visit(V& v) {
    v.field("partition", partition, "sbatch --partition; empty = the cluster's default");
    v.field("nodes", nodes, "sbatch --nodes");
    v.field("ntasks", ntasks, "sbatch --ntasks; > 1 runs troupe under srun --mpi=<srun_mpi>, one rank per task");
    v.field("ntasks_per_node", ntasks_per_node, "sbatch --ntasks-per-node; 0 = let Slurm decide");
    v.field("cpus_per_task", cpus_per_task, "sbatch --cpus-per-task; 0 = Slurm's default");
    v.field("gpus_per_task", gpus_per_task, "sbatch --gpus-per-task; 0 = none");
    v.field("mem", mem, "sbatch --mem (per node), e.g. 16G; empty = Slurm's default");
    v.field("time", time, "sbatch --time, e.g. 30 (minutes), 04:00:00, 2-00:00:00; empty = partition default");
    v.field("account", account, "sbatch --account; empty = default");
    v.field("qos", qos, "sbatch --qos; empty = default");
    v.field("extra_sbatch", extra_sbatch, "more sbatch options, one per item, e.g. --exclusive");
    v.field("signal_before_s", signal_before_s, "send SIGUSR1 to the job this many seconds before its time limit");
    v.field("requeue", requeue, "on SIGUSR1: checkpoint, scontrol requeue, and resume in the requeued job");
    v.field("srun_mpi", srun_mpi, "srun --mpi plugin when ntasks > 1 (pmix for Open MPI)");
  }
  void validate(core::ConfigValidator& v) const;
};

// True for Slurm time limits sbatch accepts: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S, "infinite" / "unlimited".
bool valid_slurm_time(const std::string& text);
// True for sbatch --mem values: a positive integer with an optional K, M, G or T suffix.
bool valid_slurm_memory(const std::string& text);

}  // namespace troupe::cluster
