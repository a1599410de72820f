"""Soak: one long PPO run (roles as worker processes: actor, critic, reward, reference; checkpoints every 20
iterations, keep_last 2) for DURATION seconds. Every INTERVAL seconds it samples, for the controller and every
worker process, the resident memory (VmRSS), open file descriptors (/proc/PID/fd) and threads, and the iterations
completed. At the end the run is stopped with SIGTERM (it checkpoints and exits 0) and the script prints, per process,
the samples' first and last windows and their growth, and the throughput (iterations/s) of the first and last
quarter of the run. Exit 1 when a bound is broken:
  resident memory: last-quarter median <= first-quarter median * 1.10 + 16 MiB (allocator caches settle early);
  file descriptors and threads: the same count in the last quarter as in the first (max - min <= 2 over the run
  after the first sample, for the transient files of a checkpoint and a heartbeat write);
  throughput: last-quarter iterations/s >= 0.9 x first-quarter.
  python bench/soak.py --cli build/cli/troupe --workdir /tmp/soak [--duration 1800] [--interval 15]
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

CONFIG = """kind: ppo
seed: 11
run: {{dir: {runs}}}
runtime: {{threads: 1}}
checkpoint: {{every: 20, keep_last: 2}}
actor:
  model: {{n_layer: 2, n_head: 4, n_embd: 128, block_size: 32, vocab_size: 8, dropout: 0.0}}
  optim: {{lr: 1.0e-3, warmup_steps: 0}}
critic: {{optim: {{lr: 1.0e-3, warmup_steps: 0}}}}
reward: {{function: {{type: pattern, pattern: [3, 5, 1, 6]}}}}
prompts: {{synthetic_count: 256, synthetic_length: 2}}
generation: {{max_new_tokens: 8, do_sample: true}}
ppo: {{iterations: 100000000, rollout_batch: 64, minibatch: 16, epochs: 2, kl: {{init_coef: 0.02}}}}
placement: {{mode: processes, heartbeat_s: 1}}
fault: {{hang_timeout_s: 30}}
"""


def status_field(pid, name):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def sample(pids):
    out = {}
    for name, pid in pids.items():
        rss = status_field(pid, "VmRSS")
        out[name] = (rss / 1024 if rss is not None else None, fds(pid), status_field(pid, "Threads"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", default="build/cli/troupe")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--duration", type=float, default=1800)
    ap.add_argument("--interval", type=float, default=15)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    runs = os.path.join(a.workdir, "runs")
    config = os.path.join(a.workdir, "soak.yaml")
    with open(config, "w") as f:
        f.write(CONFIG.format(runs=runs))
    run_dir = os.path.join(runs, "soak")
    proc = subprocess.Popen([a.cli, "run", config, "run.name=soak", "run.overwrite=true"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    last_iter = [0]
    tail = []

    def read():
        for line in proc.stdout:
            m = re.search(r"iter +(\d+)/", line)
            if m:
                last_iter[0] = int(m.group(1))
            tail.append(line)
            del tail[:-50]

    threading.Thread(target=read, daemon=True).start()
    while last_iter[0] < 1 and proc.poll() is None:
        time.sleep(0.5)
    pids = {"controller": proc.pid}
    for role in ("actor", "critic", "reward", "reference"):
        with open(os.path.join(run_dir, "workers", role + ".pid")) as f:
            pids[role] = int(f.read())
    samples = []  # (t, iteration, {process: (rss MiB, fds, threads)})
    t0 = time.monotonic()
    while time.monotonic() - t0 < a.duration and proc.poll() is None:
        samples.append((time.monotonic() - t0, last_iter[0], sample(pids)))
        time.sleep(a.interval)
    samples.append((time.monotonic() - t0, last_iter[0], sample(pids)))
    alive = proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=120)
    print(f"soak: {samples[-1][0]:.0f} s, {samples[-1][1]} iterations, {len(samples)} samples every {a.interval} s; "
          f"stopped by SIGTERM with exit {code}")
    ok = alive and code in (0, 128 + signal.SIGTERM)
    if not alive:
        print("the run ended before the soak did:\n" + "".join(tail))
        ok = False
    q = max(1, len(samples) // 4)
    first, last = samples[:q], samples[-q:]
    print(f"{'process':<11} {'RSS MiB first q / last q':>26} {'fds min..max':>13} {'threads min..max':>17}")
    for name in pids:
        rss_f = statistics.median(s[2][name][0] for s in first)
        rss_l = statistics.median(s[2][name][0] for s in last)
        fd = [s[2][name][1] for s in samples[1:]]
        th = [s[2][name][2] for s in samples[1:]]
        print(f"{name:<11} {rss_f:>12.1f} / {rss_l:<11.1f} {min(fd):>5}..{max(fd):<6} {min(th):>8}..{max(th):<7}")
        if rss_l > rss_f * 1.10 + 16:
            print(f"  FAIL: {name}'s resident memory grew from {rss_f:.1f} to {rss_l:.1f} MiB")
            ok = False
        if max(fd) - min(fd) > 2 or max(th) - min(th) > 2:
            print(f"  FAIL: {name}'s descriptors or threads drifted")
            ok = False

    def rate(window):
        (ta, ia, _), (tb, ib, _) = window[0], window[-1]
        return (ib - ia) / (tb - ta) if tb > ta else float("nan")

    rf, rl = rate(first), rate(last)
    print(f"throughput: first quarter {rf:.2f} it/s, last quarter {rl:.2f} it/s ({rl / rf:.3f}x)")
    if not rl >= 0.9 * rf:
        print("  FAIL: throughput drifted down by more than 10%")
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
