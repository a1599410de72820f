# Reads a run log with h5py after SIGKILLing its writer: proves the layout documented in
# core/run_log.h is what a Python user sees. Not a test of the C++ reader (see *_test.cpp).
# Runs under ctest with the project venv's python (h5py from scripts/requirements.txt).
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import h5py

MIN_STEPS = 100
DEADLINE_S = 60.0
STEP_LINE = re.compile(rb"step (\d+)\n")


def last_printed_step(path):
    with open(path, "rb") as f:
        steps = STEP_LINE.findall(f.read())
    return int(steps[-1]) if steps else -1


def run_writer_and_kill(helper, log_path, out_path):
    """Starts the helper, waits (with a deadline) for >= MIN_STEPS steps, SIGKILLs it."""
    with open(out_path, "wb") as out:
        proc = subprocess.Popen([helper, log_path], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while last_printed_step(out_path) < MIN_STEPS:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"writer exited or stalled; output:\n{open(out_path).read()}")
            time.sleep(0.005)  # polling interval of the condition, not a wait for it
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    return last_printed_step(out_path)


def check_metrics(f, k):
    assert sorted(f["metrics"].keys()) == ["loss", "lr"], list(f["metrics"].keys())
    for name in ("loss", "lr"):
        g = f["metrics"][name]
        n = len(g["step"])
        assert len(g["value"]) == n and len(g["wall_time"]) == n, name
        assert k + 1 <= n <= k + 2, (name, n, k)
        assert g["step"].dtype.kind == "i" and g["value"].dtype.kind == "f"
    steps = f["metrics/loss/step"][: k + 1]
    assert list(steps) == list(range(k + 1))
    assert all(v == s * 0.5 for s, v in zip(steps, f["metrics/loss/value"][: k + 1]))
    assert all(v == 1.0 / (s + 1) for s, v in zip(steps, f["metrics/lr/value"][: k + 1]))
    wall = f["metrics/loss/wall_time"][: k + 1]
    assert wall[0] > 1.6e9 and all(a <= b for a, b in zip(wall, wall[1:]))


def check_attributes(f):
    config = f.attrs["config"]
    assert isinstance(config, str), type(config)
    try:
        import yaml
    except ImportError:
        print("note: PyYAML missing; checking the config text only")
        assert config == "model:\n  layers: 4\nseed: 1234\n", config
    else:
        assert yaml.safe_load(config) == {"model": {"layers": 4}, "seed": 1234}, config
    assert int(f.attrs["seed"]) == 1234 and int(f.attrs["world_size"]) == 1
    assert f.attrs["git_sha"] == "helper-sha" and f.attrs["version.hdf5"] == "1.10.8"


def check_table_and_events(f, k):
    t = f["tables/samples"]
    rows = len(t["step"])
    assert rows >= k // 10 + 1 and len(t["prompt"]) >= k // 10 + 1
    prompts = t["prompt"].asstr()[: k // 10 + 1]
    assert list(prompts) == [f"p{10 * i}" for i in range(k // 10 + 1)], prompts[:5]
    assert t["completion"].asstr()[0] == "c0"
    ev = f["events"]
    assert len(ev["step"]) == 1 and ev["kind"].asstr()[0] == "start"
    assert ev["message"].asstr()[0] == "writer helper"


def main():
    binary_dir = os.environ.get("TROUPE_TEST_BINARY_DIR")
    if not binary_dir:
        print("FAIL: TROUPE_TEST_BINARY_DIR is not set (run through ctest)")
        return 1
    helper = os.path.join(binary_dir, "helpers", "troupe_run_log_writer_helper")
    with tempfile.TemporaryDirectory(prefix="troupe-runlog-py-") as tmp:
        log_path = os.path.join(tmp, "log.h5")
        k = run_writer_and_kill(helper, log_path, os.path.join(tmp, "writer.out"))
        with h5py.File(log_path, "r") as f:  # the dead writer's file lock went with it
            check_metrics(f, k)
            check_attributes(f)
            check_table_and_events(f, k)
            n = len(f["metrics/loss/step"])
    print(f"OK: h5py {h5py.__version__} read {n} rows of loss (writer killed after step {k})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print(f"FAIL: {e!r}")
        raise
