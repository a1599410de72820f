// Slurm's command-line tools (sbatch, squeue, scontrol, scancel, sacct) called as subprocesses, each found on PATH,
// run with a deadline, and its failure turned into an error that says what to do. Not a Slurm API binding.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/subprocess.h"

namespace troupe::cluster {

// The absolute path of a Slurm command. IoError "sbatch not found on PATH: install slurm-client
// (scripts/install-deps.sh)" when it is missing.
std::filesystem::path slurm_program(const std::string& name);

// Runs a Slurm command (by name) and returns its result whatever the exit status. TimeoutError after `timeout`.
core::CommandOutput run_slurm(const std::string& name, const std::vector<std::string>& args,
                              std::chrono::seconds timeout = std::chrono::seconds(30),
                              const std::filesystem::path& cwd = {});

// `sbatch --parsable SCRIPT` from `cwd`; the job id ("1234" of "1234;cluster"). IoError with sbatch's message when
// it refuses the job.
std::string sbatch_submit(const std::filesystem::path& script, const std::filesystem::path& cwd);

struct JobState {
  std::string id;       // "1234", or "1234_5" for an array task
  std::string state;    // PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, ...
  std::string elapsed;  // time used, e.g. "1:02"
  std::string reason;   // node list when running, the reason when pending
  std::string source;   // "squeue" or "sacct"
};

// The state of each job (and array task) among `ids` that Slurm still knows: squeue with --states=all (finished
// jobs stay there for MinJobAge, 300 s by default), then sacct for the ids squeue no longer has. Jobs neither knows
// are absent from the result; a missing sacct or disabled accounting is not an error.
std::vector<JobState> job_states(const std::vector<std::string>& ids);

// scancel of the given job ids (array ids cancel every task). IoError with scancel's message on failure.
void scancel(const std::vector<std::string>& ids);

// Parses squeue/sacct lines "id|state|elapsed|reason" (blank lines skipped; sacct's "CANCELLED by 0" keeps
// its first word).
std::vector<JobState> parse_job_states(const std::string& text, const std::string& source);

}  // namespace troupe::cluster
