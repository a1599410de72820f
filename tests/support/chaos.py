"""The chaos harness: runs a PPO job (worker processes: actor as a data-parallel group of 2 MPI ranks, critic, reward,
reference, an asynchronous rollout worker) and injects failures into it on a seeded schedule, then checks the outcome.

Faults: SIGKILL, SIGSTOP, or a dropped network (SIGUSR2 under TROUPE_CHAOS=1: the process drops every ZeroMQ socket
it holds, distributed/transport.h), each on a random process of the running job: the controller, a rank of the actor
group, the critic, reward, reference or rollout worker. After each fault the harness waits until the job has recovered
(a completed iteration after the restart) before the next, and records the recovery time: from the injection to the
first iteration completed after it.

With fault.tolerance restart the run must finish with exit 0, its metrics bitwise equal to an uninterrupted run of the
same config and seed, and its final weights and optimizer state equal to that run's. Without it (fail), the job must
exit non-zero within a deadline, naming the role, the rank and the cause, leave no process behind and keep a valid log
and checkpoint.

Used by tests/cli/ppo_chaos_test.py (ctest label chaos) and bench/chaos.sh (python tests/support/chaos.py --help).
"""
import argparse
import hashlib
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import zipfile

import h5py
import numpy as np

CONFIG = """kind: ppo
seed: {seed}
run: {{dir: {runs}}}
runtime: {{threads: 1}}
checkpoint: {{every: 1, keep_last: 2}}
actor:
  model: {{n_layer: 2, n_head: 4, n_embd: 128, block_size: 32, vocab_size: 8, dropout: 0.0}}
  optim: {{lr: 3.0e-3, warmup_steps: 0, schedule: cosine}}
critic: {{optim: {{lr: 3.0e-3, warmup_steps: 0, schedule: cosine}}}}
reward: {{function: {{type: pattern, pattern: [3, 5, 1, 6]}}}}
prompts: {{synthetic_count: 64, synthetic_length: 2}}
generation: {{max_new_tokens: 8, do_sample: true}}
ppo: {{iterations: {iterations}, rollout_batch: 64, minibatch: 16, epochs: 2, kl: {{init_coef: 0.02}},
      async: {{enabled: true}}}}
placement: {{mode: processes, heartbeat_s: 0.2, actor_ranks: 2}}
fault: {{tolerance: {tolerance}, hang_timeout_s: {hang}, max_restarts: 1000}}
"""

TARGETS = ["controller", "actor rank 0", "actor rank 1", "critic", "reward", "reference", "rollout"]
FAULTS = ["kill", "stop", "drop"]


def write_config(path, runs, iterations, tolerance="restart", seed=7, hang=3):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(CONFIG.format(seed=seed, runs=runs, iterations=iterations, tolerance=tolerance, hang=hang))


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        return s[s.rfind(")") + 2]
    except OSError:
        return None


def read_pid(run_dir, role):
    try:
        with open(os.path.join(run_dir, "workers", role + ".pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def troupe_processes(marker):
    """Pids of live (not zombie) processes whose command line holds `marker` (a run's config path or name)."""
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) != os.getpid() and marker in cmdline(int(p)) and state(int(p)) not in (None, "Z"):
            out.append(int(p))
    return out


class Job:
    """`troupe run CONFIG run.name=NAME` with its output read line by line, each line stamped with our clock."""

    def __init__(self, cli, config, name, runs, env_extra=None):
        env = dict(os.environ, TROUPE_CHAOS="1", **(env_extra or {}))
        with open(config) as f:
            self.supervised = "tolerance: restart" in f.read()
        self.run_dir = os.path.join(runs, name)
        self.proc = subprocess.Popen([cli, "run", config, "run.name=" + name], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=env)
        self.lines = []  # (time, line)
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append((time.monotonic(), line.rstrip("\n")))

    def output(self):
        with self.lock:
            return "\n".join(l for _, l in self.lines)

    def lines_since(self, t):
        with self.lock:
            return [(s, l) for s, l in self.lines if s >= t]

    def iteration(self):
        """The last iteration printed (0 before the first)."""
        with self.lock:
            for _, line in reversed(self.lines):
                m = re.search(r"iter +(\d+)/", line)
                if m:
                    return int(m.group(1))
        return 0

    def controller_pid(self):
        """The controller: the supervisor's child that runs `troupe run` (fault.tolerance restart), or the job."""
        for c in children(self.proc.pid):
            if " run " in cmdline(c):
                return c
        return self.proc.pid if self.proc.poll() is None and not self.supervised else None

    def pid_of(self, target):
        if target == "controller":
            return self.controller_pid()
        if target.startswith("actor rank"):
            mpirun = read_pid(self.run_dir, "actor")
            ranks = sorted(c for c in children(mpirun) if "worker" in cmdline(c)) if mpirun else []
            rank = int(target.split()[-1])
            # Open MPI starts the ranks in rank order; the one bound to the endpoint is rank 0.
            return ranks[rank] if len(ranks) == 2 else None
        return read_pid(self.run_dir, target)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None


def metrics(log):
    """metric name -> (steps, values) of a run's log.h5, without timings."""
    out = {}
    with h5py.File(log, "r") as f:
        def visit(path, obj):
            if isinstance(obj, h5py.Group) and "value" in obj and not path.startswith("time/"):
                out[path] = (obj["step"][()], obj["value"][()])
        f["metrics"].visititems(visit)
    return out


def same_metrics(a, b):
    ma, mb = metrics(os.path.join(a, "log.h5")), metrics(os.path.join(b, "log.h5"))
    if sorted(ma) != sorted(mb):
        return False, f"metric names differ: {sorted(set(ma) ^ set(mb))}"
    for k in ma:
        if not (np.array_equal(ma[k][0], mb[k][0]) and np.array_equal(ma[k][1], mb[k][1], equal_nan=True)):
            return False, f"metric {k} differs"
    return True, f"{len(ma)} metrics equal"


def archive_digest(path, ordered):
    """A digest of a torch archive's tensor payloads (archive/data/*): in order for model files, as a sorted multiset
    for optimizer files (libtorch keys optimizer state by parameter address, so the order of its entries varies
    between processes while the values do not)."""
    z = zipfile.ZipFile(path)
    blobs = [hashlib.sha256(z.read(n)).hexdigest() for n in sorted(z.namelist(), key=lambda n: (len(n), n))
             if "/data/" in n and not n.endswith(".pkl")]
    return hashlib.sha256(("\n".join(blobs if ordered else sorted(blobs))).encode()).hexdigest()


def final_state_digest(run_dir):
    ckpt = os.path.join(run_dir, "checkpoints")
    steps = sorted(d for d in os.listdir(ckpt) if d.startswith("step_"))
    last = os.path.join(ckpt, steps[-1])
    parts = []
    for f in sorted(os.listdir(last)):
        if f.endswith(".optim.pt"):
            parts.append(f + ":" + archive_digest(os.path.join(last, f), ordered=False))
        elif f.endswith(".pt"):
            parts.append(f + ":" + archive_digest(os.path.join(last, f), ordered=True))
    return steps[-1], hashlib.sha256("\n".join(parts).encode()).hexdigest()


def inject(job, target, fault):
    pid = job.pid_of(target)
    if pid is None:
        return None
    sig = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP, "drop": signal.SIGUSR2}[fault]
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return None
    return pid


def chaos_run(cli, workdir, name, faults, seed, iterations, log=print, recovery_timeout=90, cover_all=True):
    """Runs the job with `faults` injected; returns a dict of what happened. cover_all: the first len(TARGETS) faults
    hit every target once (in a seeded order), the rest are drawn at random."""
    rng = random.Random(seed)
    order = rng.sample(TARGETS, len(TARGETS)) if cover_all else []
    config = os.path.join(workdir, name + ".yaml")
    runs = os.path.join(workdir, "runs")
    write_config(config, runs, iterations)
    job = Job(cli, config, name, runs)
    report = {"injected": 0, "recovered": 0, "hangs": 0, "recovery_s": [], "faults": []}
    # Wait for the first iterations: the job is running.
    deadline = time.monotonic() + 120
    while job.iteration() < 2 and job.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    for i in range(faults):
        if job.proc.poll() is not None:
            break
        time.sleep(rng.uniform(0.2, 1.5))
        target = order[i] if i < len(order) else rng.choice(TARGETS)
        fault = rng.choice(FAULTS)
        if target == "actor rank 1" and fault == "drop":  # rank 1 holds no socket (it hears rank 0 over MPI)
            fault = rng.choice(["kill", "stop"])
        t0 = time.monotonic()
        pid = inject(job, target, fault)
        if pid is None:
            log(f"fault {i + 1}: {target} has no process right now; skipped")
            continue
        report["injected"] += 1
        # Recovered: a completed iteration after a restart that came after the injection.
        recovered_at = None
        deadline = t0 + recovery_timeout
        while time.monotonic() < deadline and job.proc.poll() is None:
            seen_restart = False
            for t, line in job.lines_since(t0):
                if "recovered from fault" in line or "resumed at iteration" in line:
                    seen_restart = True
                elif seen_restart and re.search(r"iter +\d+/", line):
                    recovered_at = t
                    break
            if recovered_at:
                break
            time.sleep(0.05)
        if recovered_at is None and job.proc.poll() is not None and job.proc.returncode == 0:
            recovered_at = time.monotonic()  # it finished meanwhile (a fault near the end)
        if recovered_at is None:
            if job.proc.poll() is None:
                report["hangs"] += 1
            log(f"fault {i + 1}: {fault} {target} (pid {pid}): NOT recovered")
            report["faults"].append((target, fault, None))
            break
        report["recovered"] += 1
        report["recovery_s"].append(recovered_at - t0)
        report["faults"].append((target, fault, recovered_at - t0))
        log(f"fault {i + 1}: {fault} {target} (pid {pid}) -> recovered in {recovered_at - t0:.2f} s, "
            f"iteration {job.iteration()}")
    code = job.wait(600)
    if code is None:
        report["hangs"] += 1
        job.proc.kill()
        code = job.wait(30)
    time.sleep(0.5)
    report["exit"] = code
    report["left_behind"] = troupe_processes(config)
    report["run_dir"] = job.run_dir
    report["output"] = job.output()
    return report


def clean_run(cli, workdir, name, seed, iterations):
    config = os.path.join(workdir, name + ".yaml")
    runs = os.path.join(workdir, "runs")
    write_config(config, runs, iterations)
    r = subprocess.run([cli, "run", config, "run.name=" + name], capture_output=True, text=True, timeout=1200)
    return r.returncode, os.path.join(runs, name), r.stdout + r.stderr


def fail_run(cli, workdir, name, target, fault, deadline_s=60):
    """fault.tolerance fail: inject one fault; returns (exit code, seconds to exit, output, left-behind pids, run dir)."""
    config = os.path.join(workdir, name + ".yaml")
    runs = os.path.join(workdir, "runs")
    write_config(config, runs, 400, tolerance="fail")
    job = Job(cli, config, name, runs)
    deadline = time.monotonic() + 120
    while job.iteration() < 3 and job.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    t0 = time.monotonic()
    pid = inject(job, target, fault)
    code = job.wait(deadline_s)
    elapsed = time.monotonic() - t0
    if code is None:
        job.proc.kill()
        job.wait(30)
    time.sleep(0.5)
    return code, elapsed, job.output(), troupe_processes(config), job.run_dir, pid


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", default=os.environ.get("TROUPE_CLI", "build/cli/troupe"))
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--runs", type=int, default=10, help="chaos runs (each with its own fault schedule)")
    ap.add_argument("--faults", type=int, default=10, help="faults injected per run")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    code, clean_dir, out = clean_run(a.cli, a.workdir, "clean", 7, a.iterations)
    if code != 0:
        print(out)
        sys.exit("the clean run failed")
    clean_step, clean_hash = final_state_digest(clean_dir)
    totals = {"injected": 0, "recovered": 0, "equal": 0, "hangs": 0, "left": 0}
    recovery = []
    for r in range(a.runs):
        rep = chaos_run(a.cli, a.workdir, f"chaos{r}", a.faults, a.seed * 1000 + r, a.iterations,
                        log=lambda s, r=r: print(f"run {r}: {s}", flush=True))
        same, why = same_metrics(clean_dir, rep["run_dir"]) if rep["exit"] == 0 else (False, "exit " + str(rep["exit"]))
        step, digest = final_state_digest(rep["run_dir"]) if rep["exit"] == 0 else (None, None)
        equal = same and step == clean_step and digest == clean_hash
        totals["injected"] += rep["injected"]
        totals["recovered"] += rep["recovered"]
        totals["hangs"] += rep["hangs"]
        totals["left"] += len(rep["left_behind"])
        totals["equal"] += int(equal)
        recovery += rep["recovery_s"]
        print(f"run {r}: exit {rep['exit']}, {rep['recovered']}/{rep['injected']} recovered, final state "
              f"{'EQUAL' if equal else 'DIFFERENT (' + why + ')'}, left behind {rep['left_behind']}", flush=True)
        if not equal:
            print(rep["output"][-3000:])
    print(f"\nchaos: {a.runs} runs x {a.faults} faults, {a.iterations} iterations each")
    print(f"  failures injected:            {totals['injected']}")
    print(f"  recovered:                    {totals['recovered']}")
    print(f"  runs whose final state equals the clean run: {totals['equal']}/{a.runs}")
    print(f"  hangs:                        {totals['hangs']}")
    print(f"  processes left behind:        {totals['left']}")
    if recovery:
        print(f"  recovery time (fault -> first iteration after restart): median {statistics.median(recovery):.2f} s, "
              f"worst {max(recovery):.2f} s, over {len(recovery)} faults")
    ok = (totals["recovered"] == totals["injected"] and totals["equal"] == a.runs and totals["hangs"] == 0
          and totals["left"] == 0)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
