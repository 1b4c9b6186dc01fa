"""Benchmark: the data page in a real browser, and the server's memory with 1 and 20 sessions.

Prints figures, asserts nothing (the machine is shared and noisy). Run:

    python bench/bench_data.py [--sessions 20]

- first render: a cold server, the first student opens the data page (dataset load included);
- warm render: another student opens the same page (the dataset is shared, already loaded);
- switch: MNIST → Fashion-MNIST (first load of the 70,000 images) and back;
- memory: the server's resident memory with 1 session and with N sessions on the data page,
  and what each extra session costs (the arrays are shared: it must stay under 20 MB).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, runs_dir: Path) -> subprocess.Popen:
    env = dict(os.environ, CNNKIT_OFFLINE="1", CNNKIT_RUNS_DIR=str(runs_dir))
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--server.fileWatcherType", "none"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            return proc
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def rss_mb(proc: subprocess.Popen) -> float:
    return psutil.Process(proc.pid).memory_info().rss / 2**20


def open_home_page(context, url: str) -> float:
    page = context.new_page()
    page.set_default_timeout(120_000)
    t = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("text=What you will learn")
    page.wait_for_timeout(100)
    page.wait_for_selector(IDLE)
    return time.perf_counter() - t


def open_data_page(context, url: str) -> float:
    page = context.new_page()
    page.set_default_timeout(120_000)
    t = time.perf_counter()
    page.goto(url + "/data")
    page.wait_for_selector("[data-testid='stPlotlyChart']")
    page.wait_for_timeout(100)
    page.wait_for_selector(IDLE)
    return time.perf_counter() - t, page


def switch(page, title: str, marker: str) -> float:
    t = time.perf_counter()
    page.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name=title).click()
    page.wait_for_selector(f"text={marker}")
    page.wait_for_timeout(100)
    page.wait_for_selector(IDLE)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=20)
    args = ap.parse_args()
    import tempfile

    from playwright.sync_api import sync_playwright

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(port, Path(tmp))
        url = f"http://127.0.0.1:{port}"
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                idle_rss = rss_mb(server)
                first, page = open_data_page(browser.new_context(), url)
                to_fashion = switch(page, "Fashion-MNIST", "60,000")
                back = switch(page, "MNIST digits", "4,000")
                again = switch(page, "Fashion-MNIST", "60,000")
                switch(page, "MNIST digits", "4,000")
                time.sleep(1)
                one = rss_mb(server)  # one session, both datasets loaded
                warm, second = open_data_page(browser.new_context(), url)
                home = min(open_home_page(browser.new_context(), url) for _ in range(2))
                pages = [page, second]  # (home-page visits are extra sessions too)
                for i in range(args.sessions - 2):
                    _, p = open_data_page(browser.new_context(), url)
                    pages.append(p)
                    print(f"session {i + 3} open", file=sys.stderr)
                time.sleep(2)
                many = rss_mb(server)
                browser.close()
        finally:
            server.terminate()
            server.wait(10)

    per_session = (many - one) / (args.sessions + 1)  # sessions opened after the first: N - 1 data pages + 2 home
    print("| measure | figure |")
    print("|---|---|")
    print(f"| data page, first render (cold server, dataset load included) | {first:.2f} s |")
    print(f"| data page, render for a second student (shared dataset) | {warm:.2f} s |")
    print(f"| for scale: the home page (app shell, text only) in the same browser | {home:.2f} s |")
    print(f"| switch MNIST → Fashion-MNIST, first time (loads 70,000 images) | {to_fashion:.2f} s |")
    print(f"| switch back to MNIST | {back:.2f} s |")
    print(f"| switch to Fashion-MNIST again (already loaded) | {again:.2f} s |")
    print(f"| server memory: idle / 1 session / {args.sessions} sessions "
          f"| {idle_rss:.0f} / {one:.0f} / {many:.0f} MB |")
    print(f"| each extra session costs (target < 20 MB) | {per_session:.1f} MB |")


if __name__ == "__main__":
    main()
