// The batch script `troupe submit` hands to sbatch: #SBATCH lines from the `cluster:` section, then bash that runs
// troupe in the background, forwards SIGUSR1/SIGTERM to it, and requeues the job when troupe checkpointed on
// SIGUSR1 (Slurm's warning before the time limit or a preemption). A pure function of its inputs, so tests
// compare its text; submitting it is slurm_client.h's job.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "cluster/cluster_config.h"

namespace troupe::cluster {

// troupe's exit status after it checkpointed on SIGUSR1 (128 + 10): the script's cue to requeue.
inline constexpr int kCheckpointedOnUsr1 = 138;

struct BatchJob {
  std::string job_name;                  // --job-name: the run (or sweep) name
  std::filesystem::path troupe;          // absolute path of the troupe binary the job runs
  std::filesystem::path submit_dir;      // absolute; the job cds here first, so the config's relative paths work
  std::filesystem::path slurm_dir;       // absolute <run>/slurm: job output, events, sweep.tsv
  std::vector<std::string> troupe_args;  // after the binary, e.g. {"run", "/abs/cfg.yaml", "run.name=x", ...}
  int array_size = 0;                    // > 0: a job array of this many tasks; task i appends the overrides in
                                         // row i of <slurm_dir>/sweep.tsv to troupe_args
  std::string created;                   // a timestamp for the header comment ("" = none)
};

// The script text. Throws ConfigError when a path cannot be written into an #SBATCH line (a '"' or a line break).
//
// Exit codes of the script (Slurm records them as the job's exit code):
//   0    troupe finished; or it checkpointed on SIGUSR1 and `scontrol requeue` succeeded (the requeued job, same
//        id and script, resumes from that checkpoint through run.resume=auto)
//   138  checkpointed on SIGUSR1 but not requeued (cluster.requeue is false, or scontrol failed)
//   143  checkpointed and stopped on SIGTERM (scancel, or the time limit without a warning); resubmit to resume
//   2    config or data error;  1  runtime failure;  other 128+N  troupe killed by signal N
std::string sbatch_script(const ClusterSection& cluster, const BatchJob& job);

// The #SBATCH option lines alone (without "#SBATCH "), in the order the script has them.
std::vector<std::string> sbatch_options(const ClusterSection& cluster, const BatchJob& job);

}  // namespace troupe::cluster
