# `troupe export tensorboard` read back by TensorBoard 2.21's own readers: a real `troupe run` (the MLP quickstart,
# which logs metrics, a "samples" table and events) exported once, twice, and followed live; and a log written by a
# helper that crashes and resumes (RunLog::truncate_after) while --follow runs. Every metric, step and wall time
# must equal h5py's reading of log.h5 exactly; values exactly with --precision float64 (DT_DOUBLE tensors) and
# exactly float32(value) with the default simple_value. The TensorBoard server itself (Rust and Python loaders) is
# asked over HTTP what its scalars dashboard shows. Not a test of the encoder's bytes (tests/core/*).
import glob
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import h5py
import numpy as np
from tensorboard import context
from tensorboard.backend.event_processing import (data_provider, event_accumulator, plugin_event_accumulator,
                                                  plugin_event_multiplexer)
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
from tensorboard.util import tensor_util

CLI = os.environ["TROUPE_CLI"]
SOURCE = os.environ["TROUPE_SOURCE_DIR"]
HELPER = os.path.join(os.environ["TROUPE_TEST_BINARY_DIR"], "helpers", "troupe_tensorboard_log_writer_helper")
QUICKSTART = os.path.join(SOURCE, "experiments", "quickstart", "config.yaml")
DEADLINE_S = 120.0
# A whole training run (the followed live run): alone it takes about 4 s, but under a loaded ctest -j2 start (every
# heavy test at once) its 3000-step predecessor overran 120 s, so the deadline bounds a hang, not a slow machine.
RUN_DEADLINE_S = 600.0


def run(args, timeout=180):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def quickstart(root, name, steps, extra=()):
    return [CLI, "run", QUICKSTART, f"run.dir={root}", f"run.name={name}", f"task.steps={steps}",
            "task.sample_every=20", "task.eval_every=25", "checkpoint.every=50", "runtime.threads=1", *extra]


# ---- what log.h5 holds (h5py) ---------------------------------------------------------------------------------------

def h5_metrics(log):
    out = {}
    with h5py.File(log, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Group) and "value" in obj:
                n = min(len(obj["step"]), len(obj["value"]), len(obj["wall_time"]))
                out[name] = (obj["step"][:n].tolist(), obj["value"][:n].tolist(), obj["wall_time"][:n].tolist())
        f["metrics"].visititems(visit)
    return out


def h5_tables(log):
    """table -> {step: (columns, rows)}, rows as lists of cells in column order."""
    out = {}
    with h5py.File(log, "r") as f:
        for table, g in f.get("tables", {}).items():
            columns = sorted(c for c in g.keys() if c != "step")
            data = {c: g[c].asstr()[:].tolist() for c in columns}
            by_step = {}
            for i, step in enumerate(g["step"][:].tolist()):
                by_step.setdefault(step, []).append([data[c][i] for c in columns])
            out[table] = {s: (columns, rows) for s, rows in by_step.items()}
    return out


def h5_events(log):
    with h5py.File(log, "r") as f:
        e = f["events"]
        return list(zip(e["step"][:].tolist(), e["wall_time"][:].tolist(), e["kind"].asstr()[:].tolist(),
                        e["message"].asstr()[:].tolist()))


def h5_config(log):
    with h5py.File(log, "r") as f:
        return f.attrs["config"]


# ---- what the event files hold (TensorBoard's readers) --------------------------------------------------------------

def event_files(out):
    return sorted(glob.glob(os.path.join(out, "*tfevents*")))


def check_crcs(path):
    """Walks the TFRecord framing and checks both CRCs of every record with tensorboard's masked_crc32c."""
    records = []
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[pos + 8:pos + 12])[0] == masked_crc32c(header), f"length CRC at {pos}"
        payload = data[pos + 12:pos + 12 + length]
        assert struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])[0] == masked_crc32c(payload), pos
        records.append(event_pb2.Event.FromString(payload))
        pos += 16 + length
    return records


def accumulate(out, plugin):
    """TensorBoard's legacy EventAccumulator, or (plugin=True) the one its server's Python loader runs. Both drop
    what they hold at steps >= F on a SessionLog.START at step F, but the legacy one only in its scalars (simple_value)
    and images, not in tensors (text, float64 scalars); the server's one in everything."""
    if plugin:
        acc = plugin_event_accumulator.EventAccumulator(out, tensor_size_guidance={"scalars": 0, "text": 0})
    else:
        acc = event_accumulator.EventAccumulator(out, size_guidance={event_accumulator.TENSORS: 0,
                                                                     event_accumulator.SCALARS: 0})
    acc.Reload()
    return acc


def check_scalars(acc, name, steps, values, walls, precision):
    if precision == "float64":
        events = acc.Tensors(name)
        got = [tensor_util.make_ndarray(e.tensor_proto) for e in events]
        assert all(g.dtype == np.float64 and g.shape == () for g in got), name
        assert [float(g) for g in got] == values, (name, [e.step for e in events], [float(g) for g in got], values)
        assert acc.SummaryMetadata(name).plugin_data.plugin_name == "scalars"
    else:
        plugin = isinstance(acc, plugin_event_accumulator.EventAccumulator)  # simple_value arrives as DT_FLOAT tensors
        events = acc.Tensors(name) if plugin else acc.Scalars(name)
        got = [tensor_util.make_ndarray(e.tensor_proto).item() for e in events] if plugin else [e.value for e in events]
        assert got == [float(np.float32(v)) for v in values], name  # float32 rounding, exactly
    assert [e.step for e in events] == steps, name
    assert [e.wall_time for e in events] == walls, name


def check_export(out, log, precision="float32", plugin=False):
    """The accumulated view of `out` equals log.h5 (values to `precision`); returns the accumulator."""
    files = event_files(out)
    assert len(files) == 1, files
    records = check_crcs(files[0])
    assert records[0].file_version == "brain.Event:2" and records[0].source_metadata.writer == "troupe"
    acc = accumulate(out, plugin)
    metrics = h5_metrics(log)
    scalar_tags = set(acc.Tags()["tensors" if precision == "float64" or plugin else "scalars"])
    assert set(metrics) <= scalar_tags, (sorted(metrics), sorted(scalar_tags))
    for name, (steps, values, walls) in metrics.items():
        check_scalars(acc, name, steps, values, walls, precision)
    for table, by_step in h5_tables(log).items():
        events = acc.Tensors("tables/" + table)
        assert [e.step for e in events] == sorted(by_step), table
        for e in events:
            cells = tensor_util.make_ndarray(e.tensor_proto)
            columns, rows = by_step[e.step]
            assert cells.shape == (len(rows) + 1, len(columns)), (table, e.step, cells.shape)
            assert [c.decode() for c in cells[0]] == columns
            assert [[c.decode() for c in row] for row in cells[1:]] == rows, (table, e.step)
        assert acc.SummaryMetadata("tables/" + table).plugin_data.plugin_name == "text"
    events = acc.Tensors("events")
    expected = h5_events(log)
    assert [e.step for e in events] == list(range(len(expected)))
    for e, (step, wall, kind, message) in zip(events, expected):
        cells = tensor_util.make_ndarray(e.tensor_proto)
        assert [c.decode() for c in cells.reshape(-1)] == ["step", "kind", "message", str(step), kind, message]
        assert e.wall_time == wall
    (config,) = acc.Tensors("config")
    text = tensor_util.make_ndarray(config.tensor_proto).item().decode()
    assert config.step == 0 and text == "```yaml\n" + h5_config(log) + "```", text
    return acc


def check_data_provider(out, log):  # --precision float64
    """The Python data provider behind TensorBoard's scalars dashboard (--load_fast=false) reads the float64
    tensors as scalars, values unrounded."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={"scalars": 0, "text": 0})
    multiplexer.AddRunsFromDirectory(out)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, out)
    scalars = provider.read_scalars(context.RequestContext(), experiment_id="", plugin_name="scalars", downsample=10**9)
    (run_name,) = scalars
    for name, (steps, values, walls) in h5_metrics(log).items():
        data = scalars[run_name][name]
        assert [d.step for d in data] == steps and [d.value for d in data] == values, name
        assert [d.wall_time for d in data] == walls, name
    texts = provider.list_tensors(context.RequestContext(), experiment_id="", plugin_name="text")
    assert {"config", "events"} <= set(texts[run_name]), texts


def served_scalars(logdir, load_fast, tag):
    """Starts `tensorboard --logdir` (load_fast: "true" = the Rust data server, TensorBoard's default when it runs;
    "false" = the Python loader) and returns its scalars dashboard's data for `tag`: [[wall_time, step, value]]."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tb = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "tensorboard"), "--logdir", logdir,
                           "--port", str(port), "--host", "127.0.0.1", f"--load_fast={load_fast}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def get(path):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
            return json.load(reply)

    try:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            try:
                tags = get("/data/plugin/scalars/tags")
                if any(tag in run_tags for run_tags in tags.values()):
                    return get(f"/data/plugin/scalars/scalars?run={next(iter(tags))}&tag={tag}")
            except OSError:
                pass  # not listening yet
            assert tb.poll() is None and time.monotonic() < deadline, f"tensorboard ({load_fast}) showed no {tag}"
            time.sleep(0.2)  # polling interval of the condition, not a wait for it
    finally:
        tb.terminate()
        tb.wait(timeout=30)


def check_tensorboard_shows(out, log, precision):
    steps, values, walls = h5_metrics(log)["train/loss"]
    for load_fast in ("true", "false"):
        shown = served_scalars(out, load_fast, "train/loss")
        expected = values if precision == "float64" else [float(np.float32(v)) for v in values]
        assert [[w, s, v] for w, s, v in shown] == [list(x) for x in zip(walls, steps, expected)], load_fast


# ---- the tests ------------------------------------------------------------------------------------------------------

def test_export_of_a_real_run(tmp):
    run(quickstart(tmp, "qs", 120))
    run_dir = os.path.join(tmp, "qs")
    log = os.path.join(run_dir, "log.h5")
    printed = run([CLI, "export", "tensorboard", run_dir])
    out = os.path.join(run_dir, "tensorboard")
    assert os.path.basename(event_files(out)[0]).startswith("events.out.tfevents."), event_files(out)
    assert "samples" in h5_tables(log) and len(h5_metrics(log)) >= 4, (h5_tables(log).keys(), h5_metrics(log).keys())
    check_export(out, log)
    check_tensorboard_shows(out, log, "float32")
    exact = os.path.join(tmp, "tb64")
    run([CLI, "export", "tensorboard", run_dir, "--out", exact, "--precision", "float64"])
    check_export(exact, log, "float64")
    check_data_provider(exact, log)
    first = event_files(out)[0]
    # Twice into the same directory: the earlier file is replaced, nothing is doubled.
    run([CLI, "export", "tensorboard", log])  # a log.h5 argument: RUN/tensorboard beside it
    assert event_files(out) != [first]
    check_export(out, log)
    # Another writer's file is never overwritten: a clear refusal naming it.
    foreign = os.path.join(out, "events.out.tfevents.1.someone-else")
    with open(foreign, "wb") as f:
        f.write(b"\0" * 20)
    proc = subprocess.run([CLI, "export", "tensorboard", run_dir], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "someone-else" in proc.stderr, (proc.returncode, proc.stderr)
    os.remove(foreign)
    print("one-shot export:", printed.strip().splitlines()[-1])


def wait_for(predicate, what, proc=None):
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)  # polling interval of the condition, not a wait for it


def raw_counts(out):
    """(tag -> [steps in file order]) and the steps of SessionLog.START records, from the raw records."""
    tags, starts = {}, []
    for record in check_crcs(event_files(out)[0]):
        if record.HasField("session_log"):
            starts.append(record.step)
        for v in record.summary.value:
            tags.setdefault(v.tag, []).append(record.step)
    return tags, starts


def test_follow_a_real_run(tmp):
    out = os.path.join(tmp, "tb-follow")
    train = subprocess.Popen(quickstart(tmp, "live", 1500), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = os.path.join(tmp, "live", "log.h5")
    try:
        wait_for(lambda: os.path.exists(log), "log.h5 of the live run", train)
        follow = subprocess.run([CLI, "export", "tensorboard", os.path.join(tmp, "live"), "--out", out, "--follow",
                                 "--poll-seconds", "0.2"], capture_output=True, text=True, timeout=RUN_DEADLINE_S)
        assert follow.returncode == 0, follow.stderr
        train.wait(timeout=RUN_DEADLINE_S)
        assert train.returncode == 0, train.stderr.read()
    finally:
        if train.poll() is None:
            train.kill()
            train.wait(timeout=10)
    polls = [line for line in follow.stdout.splitlines() if line.startswith("exported up to step")]
    assert len(polls) >= 2, follow.stdout  # the export ran while the run was still writing
    check_export(out, log)
    tags, starts = raw_counts(out)
    assert starts == [0], starts  # no rollback: the opening START only
    for name, (steps, _, _) in h5_metrics(log).items():
        assert tags[name] == steps, name  # every row once, in order, nothing written twice
    print(f"follow of a live run: {len(polls)} polls wrote data; {len(h5_metrics(log)['train/loss'][0])} loss rows")


def test_follow_through_a_rollback(tmp):
    log = os.path.join(tmp, "crashy.h5")
    out = os.path.join(tmp, "tb-crashy")
    first = subprocess.Popen([HELPER, log, "first", "40", "15"])
    wait_for(lambda: os.path.exists(log), "the helper's log", first)
    follow = subprocess.Popen([CLI, "export", "tensorboard", log, "--out", out, "--follow", "--poll-seconds", "0.05"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []  # the exporter's stdout, read by a thread so that no read here blocks without a deadline
    reader = threading.Thread(target=lambda: lines.extend(follow.stdout), daemon=True)
    reader.start()
    try:
        first.wait(timeout=DEADLINE_S)
        assert first.returncode == 0
        wait_for(lambda: any("exported up to step 39" in line for line in lines),
                 "the export of step 39 before the crash", follow)
        run([HELPER, log, "resume", "22", "50", "5"])
        follow.wait(timeout=DEADLINE_S)
        reader.join(timeout=10)
        assert follow.returncode == 0, follow.stderr.read()
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait(timeout=10)
    stdout = "".join(lines)
    assert "rewritten" in stdout, stdout
    tags, starts = raw_counts(out)
    # One purge, from the first lost step (23) or, when a poll caught the log halfway through truncate_after, from a
    # little earlier (20 seen: everything from there is rewritten, which is still right); rows before it once.
    assert starts[0] == 0 and len(starts) == 2 and 0 < starts[1] <= 23, starts
    assert [s for s in tags["train/loss"] if s < starts[1]] == list(range(starts[1]))
    # What TensorBoard's server shows after the purge equals the resumed log: its Python loader's accumulator, the
    # legacy accumulator's scalars, and both loaders over HTTP (the Rust data server drops a tag's records at steps
    # >= a step that comes again).
    acc = check_export(out, log, plugin=True)
    loss = [tensor_util.make_ndarray(e.tensor_proto).item() for e in acc.Tensors("train/loss")]
    assert loss[23] == np.float32(-23 / 7) and loss[22] == np.float32(22 / 3) and len(loss) == 50, loss
    legacy = accumulate(out, plugin=False)
    steps, values, walls = h5_metrics(log)["train/loss"]
    check_scalars(legacy, "train/loss", steps, values, walls, "float32")
    check_tensorboard_shows(out, log, "float32")
    samples = acc.Tensors("tables/completions")
    assert [e.step for e in samples] == list(range(0, 50, 5))
    assert tensor_util.make_ndarray(samples[5].tensor_proto)[1][1].decode().startswith("Q25r"), samples[5]
    print(f"follow through a rollback: START at steps {starts}")


def main():
    tests = [test_export_of_a_real_run, test_follow_a_real_run, test_follow_through_a_rollback]
    for test in tests:
        with tempfile.TemporaryDirectory(prefix="troupe-tb-") as tmp:
            started = time.monotonic()
            test(tmp)
            print(f"ok {test.__name__} ({time.monotonic() - started:.1f} s)", flush=True)
    print(f"{len(tests)} passed")


if __name__ == "__main__":
    sys.exit(main())
