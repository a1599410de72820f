"""Dashboard load time: from navigation to the first plot drawn, for a run with 100,000 logged steps. A C++ helper
(troupe_dashboard_log_writer_helper, through the real RunLog) writes the run: train/loss and train/lr at every step,
eval/loss every 10th (100,000 + 100,000 + 10,000 rows). `troupe dashboard` serves it on a free port; headless
Chromium (Debian's chromium + chromedriver) loads the page LOADS times in fresh tabs and reads the mark the page sets
after the frame that shows its first plots (window.troupeDashboard.firstPlotMs, performance.now() from the start of
navigation). Prints each load, the median, and the median time of the page's /api/series requests and of a direct
full-range series request (2,000 points of 100,000 rows). Exit 1 when the median is over --goal-ms (1000).
  python bench/dashboard_load.py --cli build/cli/troupe --helper build/tests/helpers/troupe_dashboard_log_writer_helper
         [--steps 100000] [--loads 7] [--workdir DIR]
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support"))
from dashboard_page import browser, start_dashboard  # noqa: E402




def one_load(driver, url):
    """Loads the page in a fresh tab; returns (first plot ms, [series request ms], points plotted)."""
    driver.switch_to.new_window("tab")
    driver.get(url)
    WebDriverWait(driver, 60, poll_frequency=0.05).until(
        lambda d: d.execute_script("return window.troupeDashboard && window.troupeDashboard.firstPlotMs !== null"))
    first = driver.execute_script("return window.troupeDashboard.firstPlotMs")
    series = driver.execute_script(
        "return performance.getEntriesByType('resource').filter(e => e.name.includes('/api/series'))"
        ".map(e => e.duration)")
    points = driver.execute_script("const p = window.troupeDashboard.plotted('train/loss', 'big'); "
                                   "return p ? p.x.length : 0")
    rows = driver.execute_script("const h = window.troupeDashboard.held('train/loss', 'big'); return h ? h.rows : 0")
    driver.close()
    driver.switch_to.window(driver.window_handles[0])
    return first, series, points, rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cli", default="build/cli/troupe")
    p.add_argument("--helper", default="build/tests/helpers/troupe_dashboard_log_writer_helper")
    p.add_argument("--steps", type=int, default=100000)
    p.add_argument("--loads", type=int, default=7)
    p.add_argument("--goal-ms", type=float, default=1000)
    p.add_argument("--workdir", default=None)
    a = p.parse_args()
    work = a.workdir or tempfile.mkdtemp(prefix="dashboard-load-")
    runs = os.path.join(work, "runs")
    run = os.path.join(runs, "big")
    if not os.path.exists(os.path.join(run, "log.h5")):
        t = time.time()
        subprocess.run([a.helper, run, str(a.steps)], check=True, stdout=subprocess.DEVNULL, timeout=600)
        print(f"wrote {a.steps} steps to {run}/log.h5 in {time.time() - t:.1f} s "
              f"({os.path.getsize(os.path.join(run, 'log.h5')) / 2**20:.1f} MiB)")
    dashboard, url = start_dashboard(a.cli, runs)
    driver = None
    try:
        direct = []
        for _ in range(5):
            t = time.perf_counter()
            body = urllib.request.urlopen(url.replace("/?", "/api/series?") + "&run=big&metric=train/loss",
                                          timeout=30).read()
            direct.append((time.perf_counter() - t) * 1000)
        print(f"GET /api/series (train/loss, {a.steps} rows -> 2000 points, {len(body)} bytes): "
              f"median {statistics.median(direct):.1f} ms")
        driver = browser()
        driver.get("about:blank")
        loads = []
        series_ms = []
        one_load(driver, url + "&run=big")  # warm-up: Chromium's first start of a renderer
        for i in range(a.loads):
            first, series, points, rows = one_load(driver, url + "&run=big")
            loads.append(first)
            series_ms.extend(series)
            print(f"load {i + 1}: first plot at {first:.0f} ms ({points} points of {rows} rows of train/loss plotted)")
        median = statistics.median(loads)
        print(f"series requests inside the page: median {statistics.median(series_ms):.1f} ms "
              f"({len(series_ms)} requests)")
        print(f"median first plot over {a.loads} loads: {median:.0f} ms (goal < {a.goal_ms:.0f} ms)")
        return 0 if median < a.goal_ms else 1
    finally:
        if driver is not None:
            driver.quit()
        dashboard.send_signal(signal.SIGINT)
        dashboard.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
