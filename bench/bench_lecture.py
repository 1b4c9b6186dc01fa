"""Benchmark: a whole lecture trains on one small server, with the jobs on Dask worker processes.

Prints figures, asserts nothing (the machine is shared and noisy: say so next to any figure). Run:

    python bench/bench_lecture.py                       # everything
    python bench/bench_lecture.py --part lecture --students 30
    python bench/bench_lecture.py --part throughput --jobs 6
    python bench/bench_lecture.py --part memory --jobs 50
    python bench/bench_lecture.py --part lecture --students 12 --no-baseline --app-ref 623a3d7   # before/after
    python bench/bench_lecture.py --part lecture --students 100 --no-baseline --challenge   # + the class challenge

Parts:
- lecture: N simulated students against `streamlit run app.py` with its embedded cluster. By default each is a
  Streamlit websocket session (bench/st_protocol.py: the page requests, widget values, button presses, identity
  cookie and once-a-second fragment reruns a browser tab sends, without drawing the page: in a lecture every
  student's own device draws it); `--clients browser` makes each a real Chromium page (Playwright, one browser
  context each) on the server's own cores. The browsing student is always real Chromium. They press Start
  within 60 s — half on the default model, half on their own variant (another seed) — with 1 epoch
  each. Measured: how long until each sees their place in line or their progress; a browsing
  student's page-switch latency (p90) on the idle server, on today's engine with one in-thread job
  (the code before jobs moved to Dask, taken from git), and during the lecture; whether every job
  ends in a run; the web process's RSS idle and with N sessions; web + scheduler + workers together.
  With `--challenge` a class challenge is open on MNIST (20 % of its test split hidden) and the lecturer watches
  the Class page in Chromium: finish → on the leaderboard per run, the scoring cost per run, the web process's
  CPU over the whole lecture, and how soon the lecturer's page shows each Start (bench/lecture_challenge.py).
- throughput: jobs per minute for the same batch of distinct jobs with 1 and 2 embedded worker
  processes, and with 1 then 2 separate `dask worker` processes (the scale-out path).
- memory: 50 jobs in a row on one embedded worker (recycled every CNNKIT_WORKER_JOBS jobs): this
  process's (the web side's) RSS and the worker's RSS after job 5, 25 and 50.
- contribute (not in `all`): N students draw into the class's collection at once, one drawing every 3 s each
  (bench/collect_load.py: a real canvas image as the canvas component's value, then Add): pen up → count
  updated, the web process's CPU, nothing lost (the store's count against the drawings sent).

    python bench/bench_lecture.py --part contribute --students 100 --seconds 60
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CNNKIT_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
BEFORE_DASK = "3d61ffa"   # main just before training moved to Dask: today's in-thread engine
SEEN = re.compile(r"number \d+ in line|Epoch 1/1|Building the model|Training…|Finished|Measuring|Saving")


def p90(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))] if xs else float("nan")


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def tree_rss(pid: int) -> tuple[int, int]:
    """(RSS of the process, RSS of it and all its descendants)."""
    p = psutil.Process(pid)
    own = p.memory_info().rss
    total = own
    for c in p.children(recursive=True):
        try:
            total += c.memory_info().rss
        except psutil.Error:
            pass
    return own, total


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(CPU seconds of the process, of its descendants)."""
    p = psutil.Process(pid)
    t = p.cpu_times()
    kids = 0.0
    for c in p.children(recursive=True):
        try:
            ct = c.cpu_times()
            kids += ct.user + ct.system
        except psutil.Error:
            pass
    return t.user + t.system, kids


# --- a server and browsers -------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_at(ref: str, folder: Path) -> Path:
    """The app as it was at git commit `ref`, unpacked into `folder` (to measure it beside this checkout)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(f"git -C {ROOT} archive {ref} | tar -x -C {folder}", shell=True, check=True)
    return folder


def start_server(app_dir: Path, runs_dir: Path, log: Path, group=None,
                 **extra_env: str) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on a free port; inside `group` (bench/memory_group.py's MemoryGroup) when given, so
    the server, the Dask nanny and its workers all live under one memory ceiling, as on Community Cloud."""
    port = free_port()
    env = dict(os.environ, CNNKIT_OFFLINE="1", CNNKIT_RUNS_DIR=str(runs_dir), **extra_env)
    argv = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
            "--server.address", "127.0.0.1", "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    proc = subprocess.Popen(group.wrap(argv) if group is not None else argv,
                            cwd=app_dir, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def idle(page, timeout=180_000) -> None:
    page.wait_for_timeout(200)
    page.wait_for_selector(IDLE, timeout=timeout)


def new_page(browser, url: str, path: str = ""):
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(180_000)
    page.goto(f"{url}/{path}")
    idle(page)
    return page


def page_switches(page, n: int) -> list[float]:
    """Seconds per page switch (sidebar link → the new page has finished running), alternating two pages."""
    out = []
    for i in range(n):
        out.append(one_switch(page, "Data" if i % 2 == 0 else "Home"))
    return out


def one_switch(page, name: str) -> float:
    link = page.get_by_test_id("stSidebarNavLink").filter(has_text=name).first
    t = time.perf_counter()
    link.click()
    page.wait_for_timeout(50)
    page.wait_for_selector(IDLE, timeout=180_000)
    return time.perf_counter() - t


def set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    idle(page)


# --- part 1: the lecture -------------------------------------------------------------------------
def baseline_today(pw, browser, old_app: Path, switches: int, work: Path) -> list[float]:
    """Today's engine: one job trains in a thread of the web server while another student browses."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    proc, url = start_server(old_app, work / "runs-old", work / "old.log")
    try:
        trainer = new_page(browser, url, "training")
        set_number(trainer, "Epochs", 3)
        trainer.get_by_role("button", name="Start training").click()
        trainer.get_by_text(re.compile(r"Epoch 1/3 · batch")).first.wait_for(timeout=300_000)
        t = time.perf_counter()
        try:
            browsing = new_page(browser, url)
            print(f"today's engine, one in-thread job: a new student's first page took {time.perf_counter() - t:.1f} s")
            today = page_switches(browsing, switches)
            print(f"today's engine, one in-thread job: page switch p90 {p90(today):.2f} s "
                  f"(median {statistics.median(today):.2f} s, n={len(today)})")
            return today
        except PlaywrightTimeout:
            print(f"today's engine, one in-thread job: a browsing student's page did not finish within "
                  f"{time.perf_counter() - t:.0f} s (the training thread holds the server's interpreter)")
            return [time.perf_counter() - t]
    finally:
        stop_server(proc)


def lecture(n_students: int, switches: int, work: Path, baseline: bool = True, app_ref: str | None = None,
            clients: str = "protocol", with_challenge: bool = False, wait_minutes: float = 30,
            press_timeout: float = 120, memory_limit: float = 0) -> None:
    from playwright.sync_api import sync_playwright

    app_dir = app_at(app_ref, work / f"app-{app_ref}") if app_ref else ROOT
    who = "real Chromium pages (Playwright)" if clients == "browser" else "Streamlit websocket sessions"
    print(f"\n== lecture: {n_students} students as {who}, a browsing student in Chromium, embedded cluster, "
          f"app {'at ' + app_ref if app_ref else 'of this checkout'} ==")
    old_app = work / "before-dask"
    if baseline:
        app_at(BEFORE_DASK, old_app)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)

        today = baseline_today(pw, browser, old_app, switches, work) if baseline else []
        browser.close()
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)

        runs_dir = work / f"runs-{app_ref or 'new'}"
        extra = {"CNNKIT_LECTURER_KEY": "bench lecture key"} if with_challenge else {}
        group = monitor = None
        if memory_limit:
            from memory_group import MemoryGroup, Monitor

            group = MemoryGroup(f"bench-lecture-{os.getpid()}", int(memory_limit))
            why = group.create()
            if why:
                raise SystemExit(why)
            monitor = Monitor(group)
        proc, url = start_server(app_dir, runs_dir, work / "new.log", group=group, **extra)
        if monitor is not None:
            monitor.start()
            print(f"the server and every process it starts are in a cgroup-v1 memory group limited to "
                  f"{mb(memory_limit)} ({group.path})")
        cpu_start = cpu_seconds(proc.pid)
        students = lecturer = None
        presses: list[float] = []
        try:
            if with_challenge:
                import lecture_challenge

                store, ch = lecture_challenge.open_challenge(runs_dir)
                lecturer = lecture_challenge.LecturerPage(url)
                lecturer.start()
                lecturer.ready.wait(300)
            browsing = new_page(browser, url)
            quiet = page_switches(browsing, switches)
            web_idle, _ = tree_rss(proc.pid)
            print(f"new engine, idle server: page switch p90 {p90(quiet):.2f} s "
                  f"(median {statistics.median(quiet):.2f} s); web process RSS {mb(web_idle)}")

            t = time.time()
            students = Students(clients, browser, url, n_students, press_timeout)
            print(f"{n_students} students ({students.kind}) opened the training page and set 1 epoch in "
                  f"{time.time() - t:.0f} s")

            seen, during = [], []
            start = time.time()
            bench_cpu = time.process_time()
            cpu_lecture = cpu_seconds(proc.pid)
            for i in range(n_students):
                presses.append(time.time())
                seen.append(students.press_start(i))
                during.append(one_switch(browsing, "Data" if i % 2 == 0 else "Home"))
                pause = start + (i + 1) * 60 / n_students - time.time()
                if pause > 0:
                    time.sleep(pause)
            pressed = time.time() - start
            web_cpu, workers_cpu = (b - a for a, b in zip(cpu_start, cpu_seconds(proc.pid), strict=True))
            peak_web, peak_sum = tree_rss(proc.pid)
            print(f"all {n_students} pressed Start within {pressed:.0f} s; place or progress seen after p90 "
                  f"{p90(seen):.2f} s, median {statistics.median(seen):.2f} s, max {max(seen):.2f} s (target ≤ 2 s)")
            print(f"CPU while they pressed: web process {web_cpu:.0f} s, its worker processes {workers_cpu:.0f} s, "
                  f"this benchmark's own process {time.process_time() - bench_cpu:.0f} s, in {pressed:.0f} s of wall "
                  f"time on {psutil.cpu_count()} cores ({students.where})")

            deadline = time.time() + 60 * wait_minutes
            while time.time() < deadline:
                done = [p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")] \
                    if runs_dir.is_dir() else []
                web, total = tree_rss(proc.pid)
                peak_web, peak_sum = max(peak_web, web), max(peak_sum, total)
                if len(done) >= n_students:
                    break
                during.append(one_switch(browsing, "Data" if len(during) % 2 == 0 else "Home"))
                time.sleep(2)
            took = time.time() - start
            web_all, workers_all = (b - a for a, b in zip(cpu_lecture, cpu_seconds(proc.pid), strict=True))
            print(f"CPU from the first Start to the last run saved ({took:.0f} s): web process {web_all:.0f} s "
                  f"({web_all / took:.0%} of one core), its worker processes {workers_all:.0f} s")
            if with_challenge:
                time.sleep(4)   # the last scores, and the lecturer's page's last reads
                lecturer.done.set()
                lecture_challenge.report(runs_dir, store, ch, lecturer, presses,
                                         lecture_challenge.thread_cpu(proc.pid, "cnnkit-scorer"), students_saw=seen,
                                         unseen=students.unseen)
            keys = set()
            import json

            for p in done:
                keys.add(json.loads((p / "run.json").read_text()).get("job_key"))
            print(f"runs saved: {len(done)} of {n_students} ({len(keys)} distinct computations) after {took:.0f} s "
                  f"from the first press — {'no job lost' if len(done) >= n_students else 'JOBS MISSING'}")
            print(f"page switch during the lecture: p90 {p90(during):.2f} s (median {statistics.median(during):.2f} s, "
                  f"n={len(during)}); ratio to idle {p90(during) / p90(quiet):.2f} (target ≤ 1.5)"
                  + (f"; today's engine with one job: {p90(today) / p90(quiet):.2f}× idle" if today else ""))
            print(f"web process RSS: idle {mb(web_idle)}, peak with {n_students} sessions {mb(peak_web)} "
                  f"(+{mb(peak_web - web_idle)}; target ≤ +300 MB)")
            print(f"web + scheduler (in the web process) + worker processes, peak: {mb(peak_sum)} "
                  f"(Community Cloud ceiling 2.7 GB; target < 2.5 GB)")
        finally:
            if lecturer is not None:
                lecturer.done.set()
                lecturer.join(30)
            if monitor is not None:
                monitor.sample()
                got = group.read()
                print(f"memory group: peak usage (memory.max_usage_in_bytes) {mb(got['max_usage'])} of "
                      f"{mb(got['limit'])}; memory.failcnt {got['failcnt']}; oom_kill {got['oom_kill']}")
                for pid, hwm in sorted(monitor.hwm.items(), key=lambda kv: -kv[1]):
                    gone = "" if psutil.pid_exists(pid) else " (ended)"
                    print(f"  peak RSS {mb(hwm):>9} pid {pid}{gone}: {monitor.cmd.get(pid, '?')[:90]}")
            stop_server(proc)
            if monitor is not None:
                monitor.done.set()
                group.remove()
            if students is not None:
                students.close()
            browser.close()


class Students:
    """The N students who press Start: real Chromium pages (`browser`) or Streamlit protocol sessions
    (`protocol`, bench/st_protocol.py: the same requests, cookies and fragment reruns, no drawing)."""

    def __init__(self, clients: str, browser, url: str, n: int, press_timeout: float = 120) -> None:
        self.press_timeout, self.unseen = press_timeout, set()   # the students whose own page showed nothing
        self.kind = {"browser": "real Chromium pages", "protocol": "Streamlit websocket sessions"}[clients]
        self.where = ("the browsers run on the same cores" if clients == "browser" else
                      "the students' pages are drawn nowhere, as on their own devices in a lecture")
        self.clients, self.pages, self.loop = clients, [], None
        if clients == "browser":
            for i in range(n):
                page = new_page(browser, url, "training")
                set_number(page, "Epochs", 1)
                if i % 2:
                    set_number(page, "Seed", 100 + i)     # their own variant
                self.pages.append(page)
            return
        import asyncio
        import threading

        from st_protocol import ProtocolSession

        from cnnkit import identity

        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True, name="students").start()

        async def open_one(i: int) -> ProtocolSession:
            s = ProtocolSession(url, identity.COOKIE_NAME)
            await s.open("training")
            await s.set_number("Epochs", 1)
            if i % 2:
                await s.set_number("Seed", 100 + i)       # their own variant
            return s

        for i in range(n):
            self.pages.append(self._run(open_one(i)))

    def _run(self, coro, timeout: float = 300):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def press_start(self, i: int) -> float:
        """Student i presses Start; seconds until they see their place in line or their progress."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        page = self.pages[i]
        if self.clients == "protocol":
            try:
                return self._run(page.press_and_wait("Start training", SEEN, timeout=self.press_timeout))
            except TimeoutError:
                self.unseen.add(i)
                print(f"  student {i + 1} saw neither place nor progress within {self.press_timeout:.0f} s "
                      f"({page.errors}); the last "
                      f"texts read: {list(page.texts)}; what was sent and received last: {list(page.events)[-8:]}; "
                      f"{self._new_tab_sees(page)}")
                return self.press_timeout
        t0 = time.perf_counter()
        page.get_by_role("button", name="Start training").click()
        try:
            page.get_by_text(SEEN).first.wait_for(timeout=self.press_timeout * 1000)
        except PlaywrightTimeout:
            self.unseen.add(i)
            print(f"  student {i + 1} saw neither place nor progress within {self.press_timeout:.0f} s: "
                  f"{page.locator('[data-testid=stMain]').inner_text()[:300]!r}")
        return time.perf_counter() - t0

    def _new_tab_sees(self, page) -> str:
        """A new tab of the same browser (the same identity cookie) opens the Training page: does it find the job
        (the press reached the registry, and only the old connection went unanswered)?"""
        from st_protocol import ProtocolSession

        name, owner = page.cookie.split("=", 1)

        async def look() -> str:
            tab = ProtocolSession(page.ws_url.replace("ws://", "http://").rsplit("/_stcore", 1)[0], name, owner)
            try:
                got = asyncio.create_task(tab.wait_for_text(SEEN, 30))
                await tab.open("training")
                await got
                return "a new tab of the same browser finds the job (the press reached the registry)"
            except TimeoutError:
                return f"a new tab of the same browser finds no job either ({list(tab.texts)[:2]})"
            finally:
                await tab.close()

        import asyncio

        try:
            return self._run(look(), timeout=60)
        except Exception as err:
            return f"a new tab could not look ({type(err).__name__})"

    def close(self) -> None:
        """Close every session at once (after the server has stopped: a busy server answers closes slowly)."""
        if self.loop is None:
            return
        import asyncio

        async def close_all() -> None:
            await asyncio.wait([asyncio.create_task(s.close()) for s in self.pages], timeout=10)

        try:
            self._run(close_all(), timeout=30)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)


# --- part 2: throughput -------------------------------------------------------------------------------
def batch_of_jobs(reg, ds, n: int, seed0: int) -> float:
    """Submit n distinct jobs (one per student), wait for all; seconds from first submit to last run."""
    from cnnkit import presets

    preset = presets.get(presets.FAST, ds.image_shape, ds.num_classes)
    t = time.time()
    js = [reg.submit(preset.spec, ds, preset.hyper.replace(epochs=1, seed=seed0 + i), owner=f"s{seed0 + i}")
          for i in range(n)]
    for j in js:
        snap = j.wait(1800)
        if snap.state.value != "finished":
            print(f"  job ended {snap.state.value}: {snap.message}")
    return time.time() - t



def warm_then_time(reg, ds, n_workers: int, n_jobs: int, seed: int) -> tuple[float, int]:
    """Warm every worker with one job each (TensorFlow import, first graph), then time `n_jobs` distinct jobs;
    returns the seconds and the next unused seed."""
    batch_of_jobs(reg, ds, n_workers, seed)
    return batch_of_jobs(reg, ds, n_jobs, seed + 100), seed + 200

def throughput(n_jobs: int, work: Path, embedded: bool = True) -> None:
    from cnnkit import datasets, jobs

    print(f"\n== throughput: {n_jobs} distinct jobs (fast preset, 1 epoch, offline sample: 3,600 training images) ==")
    ds = datasets.offline_sample()
    rates = {}
    seed = 1000
    for n in (1, 2) if embedded else ():
        client = jobs.connect(n_workers=n)
        client.wait_for_workers(n, timeout=300)
        reg = jobs.JobRegistry(client, runs_root=work / f"tp-{n}")
        secs, seed = warm_then_time(reg, ds, n, n_jobs, seed)
        rates[f"embedded, {n} worker{'s' if n > 1 else ''}"] = n_jobs / secs * 60
        print(f"embedded LocalCluster, {n} worker process(es): {n_jobs} jobs in {secs:.0f} s = "
              f"{n_jobs / secs * 60:.2f} jobs/min")
        reg.close()
        cluster = client.cluster
        client.close()
        cluster.close()

    # The scale-out path: a scheduler and workers started as separate commands.
    sched_file = work / "scheduler.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), CNNKIT_OFFLINE="1")
    dask = shutil.which("dask") or "dask"
    procs = [subprocess.Popen([dask, "scheduler", "--scheduler-file", str(sched_file), "--port", "0",
                               "--dashboard-address", ":0"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        for _ in range(300):
            if sched_file.exists():
                break
            time.sleep(0.2)
        import json

        address = json.loads(sched_file.read_text())["address"]
        client = jobs.connect(address)
        for n in (1, 2):
            procs.append(subprocess.Popen([dask, "worker", address, "--nworkers", "1", "--nthreads", "1",
                                           "--memory-limit", "3GB"], env=env, cwd=ROOT,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            client.wait_for_workers(n, timeout=300)
            reg = jobs.JobRegistry(client, runs_root=work / f"tp-ext-{n}")
            secs, seed = warm_then_time(reg, ds, n, n_jobs, seed)
            rates[f"dask scheduler + {n} dask worker"] = n_jobs / secs * 60
            print(f"`dask scheduler` + {n} separate `dask worker` process(es): {n_jobs} jobs in {secs:.0f} s = "
                  f"{n_jobs / secs * 60:.2f} jobs/min")
            reg.close()
        client.close()
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
    x1, x2 = rates["dask scheduler + 1 dask worker"], rates["dask scheduler + 2 dask worker"]
    embedded_ratio = (f"embedded {rates['embedded, 2 workers'] / rates['embedded, 1 worker']:.2f}, "
                      if embedded else "")
    print(f"ratio 2 workers ÷ 1: {embedded_ratio}separate dask workers {x2 / x1:.2f} "
          f"(on {psutil.cpu_count()} cores shared by both workers and other users: each job already uses every core)")


# --- part 3: memory over many jobs ------------------------------------------------------------------
def memory(n_jobs: int, work: Path, train_images: int | None = None) -> None:
    from cnnkit import datasets, jobs, presets

    every = jobs.worker_job_limit()
    ds = datasets.offline_sample()
    preset = presets.get("single_conv", ds.image_shape, ds.num_classes)
    images = f"{train_images:,} of its {len(ds.y_train):,} images" if train_images else f"{len(ds.y_train):,} images"
    print(f"\n== memory: {n_jobs} jobs in a row (single_conv preset, 1 epoch on {images}), one embedded worker, "
          f"recycled every {every} jobs ==")
    client = jobs.connect(n_workers=1)
    client.wait_for_workers(1, timeout=300)
    reg = jobs.JobRegistry(client, runs_root=work / "mem")
    me = psutil.Process()
    t = time.time()
    # The worker's RSS is read just before a recycling and just after one (a fresh process), and at the end.
    marks = {5, every - 1, every + 1, n_jobs - 1 if n_jobs % every == 0 else n_jobs}
    for i in range(1, n_jobs + 1):
        h = preset.hyper.replace(epochs=1, seed=5000 + i, train_images=train_images)
        job = reg.submit(preset.spec, ds, h, owner="bench")
        snap = job.wait(900)
        if snap.state.value != "finished":
            print(f"  job {i} ended {snap.state.value}: {snap.message}")
        if i in marks:
            time.sleep(1)
            client.wait_for_workers(1, timeout=300)
            workers = client.run(lambda: (os.getpid(), psutil.Process().memory_info().rss))
            print(f"after job {i:>2}: web side RSS {mb(me.memory_info().rss)}; worker "
                  f"{', '.join(f'pid {p} RSS {mb(v)}' for p, v in workers.values())} ({time.time() - t:.0f} s)")
    print(f"recycled {reg.stats['recycled']} time(s), a worker restored {reg.stats['restored']} time(s); "
          f"{reg.stats['failed']} job(s) failed")
    reg.close()
    cluster = client.cluster
    client.close()
    cluster.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("lecture", "throughput", "scaleout", "memory", "contribute", "all"),
                    default="all",
                    help="scaleout: only the separate `dask scheduler` / `dask worker` half of throughput")
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--switches", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=60, help="contribute part: how long the class draws")
    ap.add_argument("--period", type=float, default=3.0, help="contribute part: seconds between a student's drawings")
    ap.add_argument("--clients", choices=("protocol", "browser"), default="protocol",
                    help="lecture part: the students who press Start are Streamlit websocket sessions (default; "
                         "bench/st_protocol.py) or real Chromium pages on the same cores as the server")
    ap.add_argument("--no-baseline", action="store_true", help="skip today's in-thread engine in the lecture part")
    ap.add_argument("--wait-minutes", type=float, default=30,
                    help="lecture part: report after this long from the first press even if runs are missing")
    ap.add_argument("--challenge", action="store_true",
                    help="lecture part: a class challenge is open and the lecturer watches the Class page "
                         "(bench/lecture_challenge.py)")
    ap.add_argument("--press-timeout", type=float, default=120,
                    help="lecture part: how long a student waits to see their place or progress after Start")
    ap.add_argument("--jobs", type=int, default=0, help="jobs for throughput (default 6) or memory (default 50)")
    ap.add_argument("--train-images", type=int, default=None,
                    help="memory part: train each job on this many images (the number of fits is what matters)")
    ap.add_argument("--memory-limit", type=float, default=0,
                    help="lecture part: run the server and its workers in a cgroup-v1 memory group of this many "
                         "bytes (e.g. 2.7e9, Community Cloud's ceiling; needs root)")
    ap.add_argument("--app-ref", action="append", default=[],
                    help="also run the lecture part on the app at this git commit, before this checkout's (repeatable)")
    args = ap.parse_args()
    print(f"machine: {psutil.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start "
          "(shared with other work: figures are noisy, ratios measured side by side count)")
    work = Path(tempfile.mkdtemp(prefix="bench-lecture-"))
    try:
        if args.part in ("throughput", "scaleout", "all"):
            throughput(args.jobs or 6, work, embedded=args.part != "scaleout")
        if args.part in ("memory", "all"):
            memory(args.jobs or 50, work, train_images=args.train_images)
        if args.part == "contribute":
            sys.path.insert(0, str(ROOT / "tests"))   # tests/strokes.py: the shapes as a canvas holds them
            from collect_load import contribute

            contribute(args.students, args.seconds, args.period, work, start_server, stop_server, cpu_seconds,
                       tree_rss, mb)
        if args.part in ("lecture", "all"):
            for ref in args.app_ref:
                lecture(args.students, args.switches, work, baseline=False, app_ref=ref, clients=args.clients)
            lecture(args.students, args.switches, work, baseline=not args.no_baseline, clients=args.clients,
                    with_challenge=args.challenge, wait_minutes=args.wait_minutes, press_timeout=args.press_timeout,
                    memory_limit=args.memory_limit)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
