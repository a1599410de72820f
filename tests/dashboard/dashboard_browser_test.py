"""End to end (label python): `troupe dashboard` in headless Chromium (Debian's chromium + chromedriver, offline).
A real quickstart run made with the troupe CLI is plotted with exactly the values h5py reads from its log.h5; a live
run (the C++ helper writing a RunLog every 100 ms) grows on the page while it is open; the token is required; text
from a log is shown as text, not HTML; SIGINT stops the server with exit 0. Saves a screenshot to
$TROUPE_TEST_BINARY_DIR/artifacts/dashboard.png."""
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))
from cli_checks import check, run_checked, verdict  # noqa: E402
from dashboard_page import browser, start_dashboard as start_dashboard_at  # noqa: E402

import h5py  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CLI = os.environ["TROUPE_CLI"]
BINARY_DIR = os.environ["TROUPE_TEST_BINARY_DIR"]
SOURCE = os.environ["TROUPE_SOURCE_DIR"]
HELPER = os.path.join(BINARY_DIR, "helpers", "troupe_dashboard_log_writer_helper")


def read_metric(log, name, wall=False):
    """steps and values (and wall times) of a metric, retrying reads that race the writer's flush (no file locking:
    h5py's locking=False, as troupe's reader)."""
    for attempt in range(20):
        try:
            with h5py.File(log, "r", locking=False) as f:
                g = f[f"metrics/{name}"]
                n = min(len(g["step"]), len(g["value"]), len(g["wall_time"]))
                out = (list(g["step"][:n]), list(g["value"][:n]))
                return out + (list(g["wall_time"][:n]),) if wall else out
        except (OSError, KeyError):
            time.sleep(0.05)
    raise RuntimeError(f"could not read {name} from {log}")




def wait_for(driver, script, timeout=30):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: d.execute_script(script))


def tensorboard_smoothing(values, weight):
    """TensorBoard's scalar smoothing (an EMA debiased for its zero start), written out here as the reference."""
    out, last, count = [], 0.0, 0
    for v in values:
        last = last * weight + (1 - weight) * v
        count += 1
        out.append(v if weight == 0 else last / (1 - weight ** count))
    return out


def http_status(url):
    try:
        return urllib.request.urlopen(url, timeout=10).status
    except urllib.error.HTTPError as e:
        return e.code


with tempfile.TemporaryDirectory() as work:
    runs = os.path.join(work, "runs")
    # A real (finished) run through the CLI: the quickstart MLP, 120 steps.
    run_checked([CLI, "run", os.path.join(SOURCE, "experiments", "quickstart", "config.yaml"), f"run.dir={runs}",
                 "run.name=quick", "task.steps=120", "runtime.threads=1"], timeout=120)
    # A live run: the helper logs a step every 100 ms until we stop it.
    live = subprocess.Popen([HELPER, os.path.join(runs, "live"), "0", "100", "--live", "--kind", "pretrain"],
                            stdout=subprocess.DEVNULL)
    dashboard, url = start_dashboard_at(CLI, runs, echo=True)
    driver = None
    try:
        base = url.split("/?")[0]
        check(url.startswith("http://127.0.0.1:") and "token=" in url, f"URL {url}")
        check(http_status(base + "/api/runs") == 403, "a request without the token was not refused")
        check(http_status(base + "/api/runs?token=wrong") == 403, "a wrong token was not refused")
        check(http_status(url.replace("/?", "/api/runs?")) == 200, "the token was refused")

        driver = browser()
        driver.get(url + "&run=quick")
        wait_for(driver, "return window.troupeDashboard && window.troupeDashboard.firstPlotMs !== null")
        shown = driver.execute_script("return window.troupeDashboard.plotted('train/loss', 'quick')")
        steps, values = read_metric(os.path.join(runs, "quick", "log.h5"), "train/loss")
        check(shown is not None and len(steps) == 120, f"plotted {shown and len(shown['x'])} of {len(steps)} rows")
        if shown:
            check(shown["x"] == [int(s) for s in steps], "the plotted steps differ from log.h5")
            check(shown["y"] == [float(v) for v in values], "the plotted train/loss differs from log.h5 (h5py)")
        rows = {r.get_attribute("data-run"): r.text for r in driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr")}
        check(set(rows) == {"quick", "live"}, f"runs listed: {sorted(rows)}")
        check("quickstart" in rows.get("quick", "") and "finished" in rows.get("quick", ""), f"quick: {rows}")
        check("running" in rows.get("live", ""), f"live: {rows.get('live')}")
        check("120" in rows.get("quick", ""), "the quick run's current step is not shown")
        smoothed = driver.execute_script("return window.troupeDashboard.smoothed('train/loss', 'quick')")
        reference = tensorboard_smoothing([float(v) for v in values], 0.6)
        check(smoothed is not None and len(smoothed) == len(reference) and
              max(abs(a - b) for a, b in zip(smoothed, reference)) < 1e-12, "smoothing differs from TensorBoard's")
        # x by wall time: seconds since the run's first row.
        driver.execute_script("const s = document.getElementById('x-axis'); s.value = 'wall'; "
                              "s.dispatchEvent(new Event('change'));")
        shown = driver.execute_script("return window.troupeDashboard.plotted('train/loss', 'quick')")
        _, _, wall = read_metric(os.path.join(runs, "quick", "log.h5"), "train/loss", wall=True)
        check(shown["x"] == [w - wall[0] for w in wall], "the wall-time axis is not seconds since the first row")
        driver.execute_script("const s = document.getElementById('x-axis'); s.value = 'step'; "
                              "s.dispatchEvent(new Event('change'));")
        # The quickstart's own samples table (example, target, prediction) shows its columns.
        driver.find_element(By.CSS_SELECTOR, "#tabs button[data-tab=samples]").click()
        wait_for(driver, "return document.querySelectorAll('#samples .sample').length > 0")
        check("prediction: " in driver.find_element(By.ID, "samples").text, "the quickstart's samples are not shown")
        driver.find_element(By.CSS_SELECTOR, "#tabs button[data-tab=config]").click()

        # The live run grows while the page is open (polled every 2 s).
        driver.get(url + "&run=live")
        wait_for(driver, "return window.troupeDashboard && window.troupeDashboard.firstPlotMs !== null")
        first = len(driver.execute_script("return window.troupeDashboard.plotted('train/loss', 'live')")["x"])
        grown = wait_for(driver, f"const p = window.troupeDashboard.plotted('train/loss', 'live'); "
                                 f"return p && p.x.length >= {first + 20} ? p.x.length : false", timeout=30)
        print(f"live run: {first} rows at the first plot, {grown} after polling")
        check(grown >= first + 20, "the live plot did not grow")
        shown = driver.execute_script("return window.troupeDashboard.plotted('train/loss', 'live')")
        steps, values = read_metric(os.path.join(runs, "live", "log.h5"), "train/loss")
        n = len(shown["x"])
        check(n <= len(steps) and shown["x"] == [int(s) for s in steps[:n]], "the live plot's steps differ")
        check(shown["y"] == [float(v) for v in values[:n]], "the live plot's values differ from log.h5")

        # Text from the log stays text: the helper's completions hold "<b>".
        driver.find_element(By.CSS_SELECTOR, "#tabs button[data-tab=samples]").click()
        wait_for(driver, "return document.querySelectorAll('#samples .sample').length > 0")
        sample = driver.find_element(By.CSS_SELECTOR, "#samples .sample").text
        check("completion <b>" in sample, f"sample shown as {sample!r}")
        check(not driver.find_elements(By.CSS_SELECTOR, "#samples b"), "log text was inserted as HTML")
        driver.find_element(By.CSS_SELECTOR, "#tabs button[data-tab=slurm]").click()
        wait_for(driver, "return document.getElementById('slurm').textContent.includes('not a Slurm run')")
        driver.find_element(By.CSS_SELECTOR, "#tabs button[data-tab=diff]").click()
        wait_for(driver, "return document.querySelectorAll('#diff tbody tr').length > 0")
        diff = driver.find_element(By.ID, "diff").text
        check("kind" in diff and "quickstart" in diff and "pretrain" in diff, f"config diff: {diff[:300]}")

        # Overlay the finished run, then the screenshot.
        driver.find_element(By.CSS_SELECTOR, "#runs tr[data-run=quick] input[type=checkbox]").click()
        wait_for(driver, "return window.troupeDashboard.plotted('train/loss', 'quick') !== null")
        driver.find_element(By.CSS_SELECTOR, "#tabs button[data-tab=samples]").click()
        time.sleep(0.5)  # let the last frame paint before the screenshot
        shots = os.path.join(BINARY_DIR, "artifacts")
        os.makedirs(shots, exist_ok=True)
        shot = os.path.join(shots, "dashboard.png")
        check(driver.save_screenshot(shot), "no screenshot")
        print("screenshot:", shot)
        check(not driver.execute_script("return window.troupeDashboard.errors"), "the page reported errors: " +
              str(driver.execute_script("return window.troupeDashboard.errors")))
    finally:
        if driver is not None:
            driver.quit()
        live.kill()
        live.wait(timeout=10)
        dashboard.send_signal(signal.SIGINT)
        try:
            code = dashboard.wait(timeout=10)
        except subprocess.TimeoutExpired:
            dashboard.kill()
            code = None
        check(code == 0, f"troupe dashboard exited with {code} on SIGINT")

sys.exit(verdict())
