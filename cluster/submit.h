// `troupe submit`: turns a launch plan into a Slurm job (one run) or job array (a sweep) and records it in
// <run>/slurm/: job.sbatch (the script), sweep.tsv (array rows), job_id (one id per line, appended on every
// submit), events (submit, start, signal, requeue and exit lines from troupe and the script) and the jobs'
// output, slurm-<id>.out or slurm-<array id>_<task>.out.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "cluster/launch_plan.h"
#include "cluster/sbatch_script.h"

namespace troupe::cluster {

struct PreparedSubmission {
  std::filesystem::path slurm_dir;  // <root>/slurm
  BatchJob job;                     // what the script runs
  std::string script;               // job.sbatch
  std::string tsv;                  // sweep.tsv ("" for a single run)
};

// The batch job for `plan`: troupe (absolute) runs `run CONFIG overrides... run.resume=auto run.overwrite=false`
// plus run.name for a single run, or `run --no-sweep CONFIG ...` plus a sweep.tsv row per array task. The job
// never overwrites: run.overwrite is applied at submit time (see check_targets), so a requeued job resumes.
PreparedSubmission prepare_submission(const LaunchPlan& plan, const std::filesystem::path& troupe,
                                      const std::filesystem::path& submit_dir);

// Before submitting: with run.overwrite, existing target directories are removed here (IoError if a troupe
// process holds one), as a local run would; without it a finished target is a ConfigError and an unfinished one is
// kept for the job to resume. With remove=false nothing is changed (dry runs).
void check_targets(const LaunchPlan& plan, bool remove);

// Writes the script (and sweep.tsv), submits it with sbatch from `submit_dir`, appends the id to job_id and a line
// to events. Returns the job id.
std::string submit(const PreparedSubmission& prepared, const std::filesystem::path& submit_dir);

// The job ids recorded in <slurm_dir>/job_id, oldest first (empty when there is none).
std::vector<std::string> read_job_ids(const std::filesystem::path& slurm_dir);
// Appends "<UTC time> troupe: <message>" to <slurm_dir>/events.
void append_event(const std::filesystem::path& slurm_dir, const std::string& message);
// The lines of <slurm_dir>/events.
std::vector<std::string> read_events(const std::filesystem::path& slurm_dir);

}  // namespace troupe::cluster
