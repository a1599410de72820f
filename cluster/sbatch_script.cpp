// Implementation of cluster/sbatch_script.h.
#include "cluster/sbatch_script.h"

#include "core/errors.h"
#include "core/subprocess.h"

namespace troupe::cluster {
namespace {

// A value in an #SBATCH line: sbatch splits on blanks and honours double quotes.
std::string sbatch_value(const std::string& value, const char* what) {
  if (value.find_first_of("\"\n\r") != std::string::npos)
    throw ConfigError(std::string(what) + " '" + value +
                      "' cannot go into an #SBATCH line (it holds '\"' or a "
                      "line break)");
  return value.find_first_of(" \t'") == std::string::npos ? value : "\"" + value + "\"";
}

// Slurm expands %j, %A, %a ... in --output; a literal '%' in the directory must be doubled.
std::string escape_percent(const std::string& path) {
  std::string out;
  for (char c : path) out += c == '%' ? std::string("%%") : std::string(1, c);
  return out;
}

// The end of the script: what troupe's exit status means for the job (requeue on 138 when asked to).
std::string exit_block(const ClusterSection& c) {
  std::string s;
  s += "case $rc in\n"
       "  0) event \"troupe finished\"; exit 0 ;;\n"
       "  " +
       std::to_string(kCheckpointedOnUsr1) + ")\n";
  if (c.requeue) {
    s += "    event \"troupe checkpointed on SIGUSR1 (exit " + std::to_string(kCheckpointedOnUsr1) +
         "); requeueing job $SLURM_JOB_ID\"\n"
         "    if scontrol requeue \"$SLURM_JOB_ID\"; then exit 0; fi\n"
         "    event \"scontrol requeue $SLURM_JOB_ID failed\"\n";
  } else {
    s += "    event \"troupe checkpointed on SIGUSR1 (exit " + std::to_string(kCheckpointedOnUsr1) +
         "); cluster.requeue is false, not requeueing\"\n";
  }
  s += "    exit " + std::to_string(kCheckpointedOnUsr1) +
       " ;;\n"
       "  *) event \"troupe exited with status $rc\"; exit \"$rc\" ;;\n"
       "esac\n";
  return s;
}

}  // namespace

std::vector<std::string> sbatch_options(const ClusterSection& c, const BatchJob& job) {
  std::vector<std::string> o;
  o.push_back("--job-name=" + sbatch_value(job.job_name, "job name"));
  const std::string pattern = job.array_size > 0 ? "slurm-%A_%a.out" : "slurm-%j.out";
  o.push_back("--output=" + sbatch_value(escape_percent(job.slurm_dir.string()) + "/" + pattern, "run directory"));
  o.push_back("--open-mode=append");  // a requeued job appends to the same output file
  if (!c.partition.empty()) o.push_back("--partition=" + c.partition);
  if (!c.account.empty()) o.push_back("--account=" + c.account);
  if (!c.qos.empty()) o.push_back("--qos=" + c.qos);
  o.push_back("--nodes=" + std::to_string(c.nodes));
  o.push_back("--ntasks=" + std::to_string(c.ntasks));
  if (c.ntasks_per_node > 0) o.push_back("--ntasks-per-node=" + std::to_string(c.ntasks_per_node));
  if (c.cpus_per_task > 0) o.push_back("--cpus-per-task=" + std::to_string(c.cpus_per_task));
  if (c.gpus_per_task > 0) o.push_back("--gpus-per-task=" + std::to_string(c.gpus_per_task));
  if (!c.mem.empty()) o.push_back("--mem=" + c.mem);
  if (!c.time.empty()) o.push_back("--time=" + c.time);
  // B: signal only the batch shell, which forwards it to troupe (and srun, which forwards it to the tasks).
  o.push_back("--signal=B:USR1@" + std::to_string(c.signal_before_s));
  o.push_back(c.requeue ? "--requeue" : "--no-requeue");
  if (job.array_size > 0) o.push_back("--array=0-" + std::to_string(job.array_size - 1));
  for (const auto& extra : c.extra_sbatch) o.push_back(extra.rfind("#SBATCH ", 0) == 0 ? extra.substr(8) : extra);
  return o;
}

std::string sbatch_script(const ClusterSection& c, const BatchJob& job) {
  std::string s = "#!/bin/bash\n";
  s += "# Troupe batch job '" + job.job_name + "', written by `troupe submit`" +
       (job.created.empty() ? "" : " at " + job.created) + ".\n";
  s += "# Edit the config and resubmit rather than this file: a requeued job runs the script it was submitted with.\n";
  s += "# Exit codes: 0 finished, or checkpointed on SIGUSR1 and requeued (the requeued job resumes);\n";
  s += "#   138 checkpointed on SIGUSR1, not requeued; 143 checkpointed and stopped on SIGTERM (resubmit to resume);\n";
  s += "#   2 config or data error; 1 runtime failure; other 128+N troupe killed by signal N.\n";
  for (const auto& option : sbatch_options(c, job)) s += "#SBATCH " + option + "\n";
  s += "\nset -u\n";
  s += "cd " + core::shell_quote(job.submit_dir.string()) + " || exit 1\n";
  s += "# Open MPI refuses to run as root without these (under srun and as a singleton alike).\n";
  s += "if [ \"$(id -u)\" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi\n";
  s += "slurm_dir=" + core::shell_quote(job.slurm_dir.string()) + "\n";
  s += "tag=\"job ${SLURM_JOB_ID:-none}${SLURM_ARRAY_TASK_ID:+ (array ${SLURM_ARRAY_JOB_ID:-}_${SLURM_ARRAY_TASK_ID})}"
       " restart ${SLURM_RESTART_COUNT:-0}\"\n";
  s += "event() {\n"
       "  printf '%s %s: %s\\n' \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\" \"$tag\" \"$*\" >> \"$slurm_dir/events\"\n"
       "  echo \"troupe-slurm: $*\"\n"
       "}\n";
  s += "args=(";
  for (size_t i = 0; i < job.troupe_args.size(); ++i) s += (i ? " " : "") + core::shell_quote(job.troupe_args[i]);
  s += ")\n";
  if (job.array_size > 0) {
    s += "# This array task's run: row $SLURM_ARRAY_TASK_ID of sweep.tsv (index, run directory, overrides...).\n";
    s += "row=$(awk -F'\\t' -v i=\"${SLURM_ARRAY_TASK_ID:-}\" '$1 == i' \"$slurm_dir/sweep.tsv\")\n";
    s += "if [ -z \"$row\" ]; then event \"no row ${SLURM_ARRAY_TASK_ID:-?} in $slurm_dir/sweep.tsv\"; exit 2; fi\n";
    s += "IFS=$'\\t' read -r -a fields <<< \"$row\"\n";
    s += "args+=(\"${fields[@]:2}\")\n";
  }
  s += "pid=''\n"
       "pending=''\n"
       "forward() {\n"
       "  if [ -z \"$pid\" ]; then pending=$1; return; fi\n"
       "  event \"received SIG$1, forwarding it to troupe (pid $pid)\"\n"
       "  kill -s \"$1\" \"$pid\" 2>/dev/null || true\n"
       "}\n"
       "trap 'forward USR1' USR1\n"
       "trap 'forward TERM' TERM\n";
  s += "event \"starting on $(hostname): troupe ${args[*]}\"\n";
  const std::string troupe = core::shell_quote(job.troupe.string());
  if (c.ntasks > 1)
    s += "srun --mpi=" + c.srun_mpi + " " + troupe + " \"${args[@]}\" &\n";
  else
    s += troupe + " \"${args[@]}\" &\n";
  s += "pid=$!\n"
       "if [ -n \"$pending\" ]; then forward \"$pending\"; fi\n"
       "# A trapped signal interrupts `wait` (status > 128) while troupe still runs: wait again until it is gone,\n"
       "# then once more for its own status (bash keeps it for an already reaped child).\n"
       "rc=0\n"
       "while :; do\n"
       "  wait \"$pid\"; rc=$?\n"
       "  kill -0 \"$pid\" 2>/dev/null || break\n"
       "done\n"
       "wait \"$pid\" 2>/dev/null; last=$?\n"
       "if [ \"$last\" != 127 ]; then rc=$last; fi\n";
  s += exit_block(c);
  return s;
}

}  // namespace troupe::cluster
