#!/usr/bin/env python3
"""Line plots of run metrics over steps: one PNG per metric, every run a line. Drawn by `troupe report`
(which also prints the table and writes the CSVs); usable alone:

    .venv/bin/python scripts/plot_report.py --metric reward/mean --metric kl/mean --out report runs/a runs/b

Reads each run's log.h5 with h5py (/metrics/<name>/step and /value; see core/run_log.h), not the CSVs. Writes
<out>/<metric, '/' -> '_'>.png (800x500 px) and <out>/plots.json, which records for each PNG the title, axis
labels and legend entries read back from the matplotlib objects, and prints every path it writes.
Exit status: 0 ok, 2 bad arguments or a log it cannot read, 3 matplotlib or h5py not installed.
"""
import argparse
import json
import os
import re
import sys

DEBIAN_PACKAGES = {"matplotlib": "python3-matplotlib", "h5py": "python3-h5py", "numpy": "python3-numpy"}
WIDTH_IN, HEIGHT_IN, DPI = 8, 5, 100
MARKER_MAX_POINTS = 50  # mark each point on short series, so a run with one point still shows


def import_or_exit():
    # A writer may hold the log open; reading without HDF5 file locks is what `troupe log` does too.
    os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")
    try:
        import h5py
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError as e:
        name = (e.name or "matplotlib").split(".")[0]
        package = DEBIAN_PACKAGES.get(name, "python3-" + name)
        sys.stderr.write(f"plot_report.py: {sys.executable} cannot import {name}; "
                         f"on Debian/Ubuntu: apt-get install {package}\n")
        sys.exit(3)
    return h5py, plt, MaxNLocator


def read_run(h5py, path, metrics):
    """{metric: (steps, values)} for the metrics the log has; columns cut to the shortest (a crash mid-append)."""
    if os.path.isdir(path):
        path = os.path.join(path, "log.h5")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        sys.stderr.write(f"plot_report.py: {path}: cannot open run log: {e}\n")
        sys.exit(2)
    out = {}
    with f:
        for m in metrics:
            group = f.get("metrics/" + m)
            if group is None or "value" not in group:
                continue
            steps, values = group["step"][:], group["value"][:]
            n = min(len(steps), len(values))
            out[m] = (steps[:n].tolist(), values[:n].tolist())
    return out


def file_name(metric):
    return re.sub(r"[^A-Za-z0-9._-]", "_", metric) + ".png"


def plot_metric(plt, MaxNLocator, metric, runs, title, out_dir):
    fig, ax = plt.subplots(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    points = {}
    for label, data in runs:
        if metric not in data:
            continue
        steps, values = data[metric]
        points[label] = len(steps)
        marker = "o" if len(steps) <= MARKER_MAX_POINTS else None
        ax.plot(steps, values, marker=marker, markersize=3, linewidth=1.5, label=label)
    ax.set_title(f"{title}: {metric}" if title else metric)
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    legend = ax.legend(title="run", loc="best") if points else None
    fig.tight_layout()
    path = os.path.join(out_dir, file_name(metric))
    fig.savefig(path, dpi=DPI)
    width, height = fig.canvas.get_width_height()
    info = {
        "file": os.path.basename(path),
        "metric": metric,
        "title": ax.get_title(),
        "xlabel": ax.get_xlabel(),
        "ylabel": ax.get_ylabel(),
        "legend": [t.get_text() for t in legend.get_texts()] if legend else [],
        "points": points,
        "width": width,
        "height": height,
    }
    plt.close(fig)
    print(f"wrote {path}")
    return info


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run directories or their log.h5 files")
    p.add_argument("--metric", action="append", required=True, help="a metric to plot (repeat for more)")
    p.add_argument("--label", action="append", help="legend name of each run, in order (default: directory name)")
    p.add_argument("--out", default="report", help="output directory (default: %(default)s)")
    p.add_argument("--title", default="", help="prefix of every plot title")
    a = p.parse_args()
    labels = a.label or [os.path.basename(os.path.normpath(r if os.path.isdir(r) else os.path.dirname(r) or "."))
                         for r in a.runs]
    if len(labels) != len(a.runs):
        p.error(f"{len(labels)} --label for {len(a.runs)} runs")

    h5py, plt, MaxNLocator = import_or_exit()
    runs = [(label, read_run(h5py, path, a.metric)) for label, path in zip(labels, a.runs)]
    os.makedirs(a.out, exist_ok=True)
    plots = [plot_metric(plt, MaxNLocator, m, runs, a.title, a.out) for m in a.metric]
    sidecar = os.path.join(a.out, "plots.json")
    with open(sidecar, "w") as f:
        json.dump({"plots": plots}, f, indent=2)
    print(f"wrote {sidecar}")


if __name__ == "__main__":
    main()
