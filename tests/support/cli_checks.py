"""Shared by the Python tests that drive the troupe CLI: checks that record failures instead of stopping at the
first, a CLI run that checks its exit code, and the final verdict as an exit status."""
import subprocess

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run_checked(argv, expect=0, timeout=300):
    """Runs argv to completion; a check that it exited with `expect` (the output goes into the failure)."""
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    check(r.returncode == expect, f"{argv[1:]}: exit {r.returncode}, expected {expect}:\n{r.stdout}{r.stderr}")
    return r


def verdict():
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0
