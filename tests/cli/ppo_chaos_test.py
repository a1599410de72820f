"""Chaos (ctest label chaos): a PPO job whose roles are worker processes (the actor a data-parallel group of two MPI
ranks, an asynchronous rollout worker besides critic, reward and reference) survives faults injected on a seeded
schedule — SIGKILL, SIGSTOP and dropped sockets, hitting the controller, each actor rank and every other role — and
ends with exactly the metrics and final weights and optimizer state of an uninterrupted run. Without
fault.tolerance restart the same faults end the job within a deadline, naming the role, the rank and the cause, with
no process left behind and the log and last checkpoint readable. The harness is tests/support/chaos.py."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
import chaos  # noqa: E402
from cli_checks import check, verdict  # noqa: E402

import h5py  # noqa: E402

CLI = os.environ["TROUPE_CLI"]
ITERATIONS = 150
FAULTS = 11

with tempfile.TemporaryDirectory() as work:
    code, clean_dir, out = chaos.clean_run(CLI, work, "clean", 7, ITERATIONS)
    check(code == 0, f"the uninterrupted run failed:\n{out[-3000:]}")
    clean_step, clean_digest = chaos.final_state_digest(clean_dir)

    rep = chaos.chaos_run(CLI, work, "chaos", FAULTS, seed=2026, iterations=ITERATIONS)
    print(f"chaos: {rep['recovered']}/{rep['injected']} recovered, recovery times {rep['recovery_s']}")
    check(rep["injected"] >= 10, f"only {rep['injected']} faults were injected")
    check(rep["recovered"] == rep["injected"], f"recovered {rep['recovered']} of {rep['injected']}:\n"
          + rep["output"][-4000:])
    hit = {t for t, _, _ in rep["faults"]}
    check(hit == set(chaos.TARGETS), f"targets hit: {sorted(hit)}")
    check(rep["hangs"] == 0, "the job hung")
    check(rep["exit"] == 0, f"the chaos run exited with {rep['exit']}:\n" + rep["output"][-4000:])
    check(rep["left_behind"] == [], f"processes left behind: {rep['left_behind']}")
    if rep["exit"] == 0:
        same, why = chaos.same_metrics(clean_dir, rep["run_dir"])
        check(same, f"metrics differ from the uninterrupted run: {why}")
        step, digest = chaos.final_state_digest(rep["run_dir"])
        check(step == clean_step, f"final checkpoint {step}, uninterrupted {clean_step}")
        check(digest == clean_digest, "the final weights or optimizer state differ from the uninterrupted run's")

    # fault.tolerance fail: the job stops, naming who failed and why.
    for target, fault, names in [("actor rank 1", "stop", ["role actor rank 1", "state T"]),
                                 ("reward", "drop", ["worker role reward rank 0 is stuck", "no progress"]),
                                 ("critic", "kill", ["role critic rank 0", "signal 9"]),
                                 ("controller", "kill", [])]:
        name = f"fail-{target.replace(' ', '')}-{fault}"
        code, elapsed, out, left, run_dir, pid = chaos.fail_run(CLI, work, name, target, fault, deadline_s=30)
        what = f"fail mode, {fault} {target} (pid {pid})"
        check(pid is not None, f"{what}: no process to hit")
        check(code not in (None, 0), f"{what}: exit {code}")
        check(elapsed < 30, f"{what}: took {elapsed:.1f} s to exit")
        for n in names:
            check(n in out, f"{what}: the output does not name '{n}':\n{out[-2500:]}")
        check(left == [], f"{what}: processes left behind: {left}")
        try:
            with h5py.File(os.path.join(run_dir, "log.h5"), "r") as f:
                check(len(f["metrics/reward/mean/value"]) >= 3, f"{what}: the log lost its rows")
        except OSError as e:
            check(False, f"{what}: log.h5 unreadable: {e}")
        gen = subprocess.run([CLI, "generate", "-c", run_dir, "--prompt-ids", "2,4", "-n", "2", "--no-stop"],
                             capture_output=True, text=True, timeout=120)
        check(gen.returncode == 0, f"{what}: the last checkpoint does not load:\n{gen.stdout}{gen.stderr}")

sys.exit(verdict())
