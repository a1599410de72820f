"""Starting `troupe dashboard` and a headless Chromium for it: shared by the browser test
(tests/dashboard/dashboard_browser_test.py) and the load benchmark (bench/dashboard_load.py). Debian's chromium and
chromedriver, driven by selenium with explicit paths, so nothing is downloaded."""
import queue
import subprocess
import threading
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def start_dashboard(cli, runs, echo=False):
    """`troupe dashboard RUNS --port 0`; returns the process and the URL it prints (within 20 s)."""
    proc = subprocess.Popen([cli, "dashboard", runs, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.time()))
        except queue.Empty:
            break
        if echo:
            print("dashboard:", line.rstrip())
        if " at http://" in line:
            return proc, line.split(" at ", 1)[1].strip()
    proc.kill()
    raise RuntimeError("troupe dashboard printed no URL within 20 s")


def browser():
    """Headless Chromium, 1600x1000."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1600,1000"]:
        options.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
