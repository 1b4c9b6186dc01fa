"""Benchmark: the class under Community Cloud's real ceiling — the whole server tree in a 2.7 GB memory cgroup.

`streamlit run app.py` in class mode is started inside a cgroup-v1 memory group of its own (limit 2.7 GB,
Community Cloud's) that the launcher enters *before* it execs the server, so the web process, the embedded
Dask scheduler, the nanny and its worker processes are all inside it and all count. Then:

1. Five students (Streamlit websocket sessions, bench/st_protocol.py: the requests, cookie and fragment reruns a
   browser tab sends) press Start training: Lab B (the largest lesson model, 4.7 million parameters), Lab A,
   Lab C, the fast model, and the lecture model on Debian's full Fashion-MNIST.
2. Meanwhile a sixth student (real Chromium, Playwright) uploads the worst inputs one after another: each
   hostile generator of tests/hostile.py in its worst form (headers claiming 20,000×20,000 pixels or a billion
   values, PNG decompression bombs in a zip, a damaged CRC, labels of 2³¹, JSON nested 10,000 deep or of
   10,002 layers, Latin-1, NaN settings, a 13-million-parameter and a GFLOP model), then 940 blank 512×512
   images as `.npz` (249 M values: under CNNKIT_LIMIT_DATASET_VALUES), 900 blank 512×512 PNGs as a `.zip`,
   a `.keras` whose config.json unpacks to 1.5 GB, a `.keras` declaring Dense(100000) on 64×64×3 inputs
   (1.2 billion parameters) with a small weights file. Damaged run folders (tests/hostile.py `write_run`)
   sit in the runs folder from the start.
3. Every student's job ends (a run, or a sentence); the server is stopped (SIGTERM) and started again in the
   same group, and each of the six students reopens every page (the uploader's kept dataset comes back).

Pass: the group's `oom_kill` stays 0, the server never dies, every student gets their run or a sentence,
every hostile upload gets a sentence (or, where it is within every limit, a correct acceptance), no page
shows an exception. Printed: memory.max_usage_in_bytes, memory.failcnt, oom_kill, the web process's peak
RSS (VmHWM) in each life, the worker's peak, and each upload's outcome with the web process's RSS after it.

Needs root and a writable cgroup-v1 memory controller (/sys/fs/cgroup/memory); elsewhere it says so and
exits 0. The group is made under this process's own memory group (on a plain host that is
/sys/fs/cgroup/memory/NAME) and removed at the end. Run it alone (the machine is shared):

    flock /tmp/bench.lock nice -n 5 python bench/bench_memory_ceiling.py [--limit-gb 2.7] [--epochs 2] \
        [--json out.json]
    nice -n 5 python bench/bench_memory_ceiling.py --lock /tmp/bench.lock   # the lock taken once the inputs are made

Settings given to the server: CNNKIT_CLASS_MODE=1 and one embedded worker (Community Cloud has 2 CPUs: one
worker per two cores). CNNKIT_WORKER_MEMORY is left to the app, which reads the group's limit from
/proc/self/cgroup (`cnnkit.jobs.cluster.memory_total`) and leaves the web process 1.5 GB of it.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
import hostile  # noqa: E402  (the suite's generators)
from ceiling_inputs import Upload, make_inputs  # noqa: E402
from memory_group import MemoryGroup, Monitor, status_kb  # noqa: E402

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGES = ["", "data", "architecture", "training", "evaluation", "draw", "collect"]
SEEN = re.compile(r"number \d+ in line|Epoch \d+/\d+|Building the model|Training…|Finished|Measuring|Saving")
STUDENTS = [  # (preset, dataset) of the five who train
    ("two_conv", "mnist"), ("single_conv", "mnist"), ("two_conv_dropout", "mnist"), ("fast_cpu", "mnist"),
    ("lecture", "fashion_mnist")]


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


# --- the memory group --------------------------------------------------------------------------------------
# --- the server --------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, group: MemoryGroup, env: dict, log: Path) -> None:
        self.group, self.env, self.log = group, env, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.lives: list[dict] = []   # one per start: pid, how it ended

    def start(self) -> None:
        argv = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
                "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats",
                "false", "--server.fileWatcherType", "none"]
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(self.group.wrap(argv), cwd=ROOT, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT)
        self.lives.append({"pid": self.proc.pid, "started": time.time(), "ended": None})
        t = time.time()
        while time.time() - t < 300:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2):
                    print(f"server pid {self.proc.pid} up in {time.time() - t:.0f} s", flush=True)
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("the server did not answer within 300 s")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def note_death(self) -> None:
        life = self.lives[-1]
        if life["ended"] is None and self.proc is not None and self.proc.poll() is not None:
            life["ended"] = f"died (exit {self.proc.returncode})"

    def stop(self) -> None:
        """SIGTERM, as a platform's restart does; the workers go with the server."""
        if not self.alive():
            self.note_death()
            return
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.lives[-1]["ended"] = "stopped (SIGTERM)"


# --- the inputs --------------------------------------------------------------------------------------------
# --- the students who train (websocket sessions) -------------------------------------------------------------
def _student_class():
    from st_protocol import ProtocolSession

    class Student(ProtocolSession):
        """A protocol session that also keeps what a student reads in alerts, toasts and exceptions."""

        def __init__(self, *a, **kw) -> None:
            super().__init__(*a, **kw)
            self.alerts: list[tuple[str, str]] = []
            self.exceptions: list[str] = []

        def _handle(self, fm) -> None:
            super()._handle(fm)
            if fm.WhichOneof("type") == "delta" and fm.delta.WhichOneof("type") == "new_element":
                el = fm.delta.new_element
                which = el.WhichOneof("type")
                if which == "exception":
                    self.exceptions.append(f"{el.exception.type}: {el.exception.message[:300]}")
                elif which == "alert":
                    kind = {1: "error", 2: "warning", 3: "info", 4: "success"}.get(el.alert.format, "?")
                    self.alerts.append((kind, el.alert.body[:400]))
                elif which == "toast":
                    self.alerts.append(("toast", el.toast.body[:400]))

    return Student


class Loop:
    """An asyncio loop in a thread, for the protocol sessions."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True, name="students").start()

    def run(self, coro, timeout: float = 300):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


def seed_students(state_root: Path, n: int) -> list[dict]:
    """Owner ids whose kept choices (cnnkit.student_state) are their preset and dataset, so each one's
    Training page starts on its model as after choosing it."""
    from cnnkit import datasets, identity, presets, student_state

    out = []
    for i, (preset, ds_name) in enumerate(STUDENTS[:n]):
        entry = datasets.CATALOGUE[ds_name]
        p = presets.get(preset, entry.image_shape, len(entry.class_names))
        owner = identity.new_owner_id()
        student_state.save(owner, {"dataset": ds_name, "spec": p.spec.to_dict(), "spec_preset": preset},
                           root=state_root)
        out.append({"n": i + 1, "owner": owner, "preset": preset, "dataset": ds_name,
                    "params": p.spec.summary().total_params})
    return out


async def press_start(url: str, cookie: str, st: dict, epochs: int) -> dict:
    Student = _student_class()
    s = Student(url, cookie, st["owner"])
    await s.open("training")
    await s.set_number("Epochs", epochs)
    t = time.perf_counter()
    try:
        await s.press_and_wait("Start training", SEEN, timeout=180)
        seen = f"place or progress after {time.perf_counter() - t:.1f} s"
    except TimeoutError:
        seen = "neither place nor progress within 180 s"
    st["session"] = s
    return {"started": seen, "alerts": list(s.alerts), "exceptions": list(s.exceptions)}


async def reopen(url: str, cookie: str, owner: str, page: str) -> dict:
    """One page load as this student: a new session on `page`, run to the end."""
    Student = _student_class()
    s = Student(url, cookie, owner)
    t = time.perf_counter()
    try:
        await s.open(page)
        outcome = {"seconds": round(time.perf_counter() - t, 1)}
    except Exception as err:   # noqa: BLE001 (the server went away or never finished: reported)
        outcome = {"seconds": round(time.perf_counter() - t, 1), "failed": f"{type(err).__name__}: {err}"[:200]}
    await asyncio.sleep(0.5)   # a toast or a fragment's first run
    outcome.update(alerts=[a for a in s.alerts if a[0] in ("error", "warning", "toast")],
                   exceptions=list(s.exceptions), errors=list(s.errors))
    await s.close()
    return outcome


def runs_of(runs_dir: Path) -> dict[str, list[str]]:
    """Owner id → its saved runs' ids (run.json)."""
    out: dict[str, list[str]] = {}
    for p in runs_dir.iterdir() if runs_dir.is_dir() else []:
        meta = p / "run.json"
        if p.is_dir() and not p.name.startswith(".") and meta.is_file():
            try:
                owner = json.loads(meta.read_text()).get("owner")
            except (OSError, ValueError, AttributeError):
                continue
            out.setdefault(str(owner), []).append(p.name)
    return out


# --- the uploader (real Chromium) ------------------------------------------------------------------------
def idle(page, timeout: float = 300_000) -> None:
    page.wait_for_timeout(300)
    page.wait_for_selector(IDLE, timeout=timeout)


def settled(page, timeout: float = 300_000) -> None:
    """The script has run to the end and stays so (an upload's rerun starts a moment after the PUT)."""
    for _ in range(3):
        idle(page, timeout)
        page.wait_for_timeout(1000)
        if page.locator(IDLE).count():
            return


def page_report(page) -> dict:
    # An alert's text starts with its icon's name ("error"): only the sentence is kept.
    errors = [re.sub(r"^\w+\s*\n+", "", e).strip()
              for e in page.locator("[data-testid='stAlertContentError']").all_inner_texts()]
    exc = page.locator("[data-testid='stException']").all_inner_texts()
    return {"errors": [e[:400] for e in errors], "exceptions": [e[:400] for e in exc]}


def upload_one(page, url: str, up: Upload) -> dict:
    page.goto(f"{url}/{up.page}")
    settled(page)
    if up.page == "evaluation":
        page.get_by_role("radio", name="A model file").click()   # the segmented control's
        settled(page)
    box = page.locator("[data-testid='stFileUploader']").first
    t = time.perf_counter()
    box.locator("input[type='file']").set_input_files(str(up.path))
    page.wait_for_timeout(1500)
    settled(page)
    seconds = time.perf_counter() - t
    rep = page_report(page)
    main = page.locator("[data-testid='stMain']").inner_text()
    said = next((e for e in rep["errors"] if not up.said or up.said in e), rep["errors"][0] if rep["errors"] else "")
    got = "exception" if rep["exceptions"] else "sentence" if said else "accepted"
    if got == "accepted":
        note = ""
        if up.page == "data":
            note = next((line for line in main.splitlines() if up.path.name in line and "from" in line), "")
        elif up.page == "architecture":
            note = next((line for line in main.splitlines() if "parameters" in line), "")
        else:
            note = next((line for line in main.splitlines() if "parameters" in line), "")
        rep["accepted_as"] = note[:300]
    ok = got != "exception" and (up.expect == "either" or up.expect == got) and \
        (got != "sentence" or not up.said or up.said in said)
    return {"got": got, "sentence": said[:400], "seconds": round(seconds, 1), "ok": ok, **rep}


# --- the run ---------------------------------------------------------------------------------------------
def run(args) -> int:
    from cnnkit import identity

    limit = int(args.limit_gb * 1e9)
    group = MemoryGroup(f"cnnlab-bench-{os.getpid()}", limit)
    why = group.create()
    if why:
        print(why)
        return 0
    print(f"memory group {group.path}: limit {limit:,} bytes ({args.limit_gb:g} GB); load average "
          f"{Path('/proc/loadavg').read_text().strip()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-ceiling-"))
    runs_dir = work / "runs"
    (work / "keras").mkdir()
    hostile.write_run(runs_dir, "created-yesterday", run_json={"id": "a", "title": "t", "dataset": "mnist",
                                                               "created": "yesterday"})
    hostile.write_run(runs_dir, "list-json", run_json="[1, 2]")
    inherited = {k: v for k, v in os.environ.items() if k != "CNNKIT_WORKER_MEMORY"}   # the app computes it
    env = {**inherited, "CNNKIT_OFFLINE": "1", "CNNKIT_CLASS_MODE": "1", "CNNKIT_LECTURER_KEY": "bench-lecturer",
           "CNNKIT_RUNS_DIR": str(runs_dir), "CNNKIT_WORKERS": "1",
           "KERAS_HOME": str(work / "keras"), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    server = Server(group, env, work / "server.log")
    monitor = Monitor(group)
    loop = Loop()
    report: dict = {"limit": limit, "uploads": [], "students": [], "reopen": {}, "json": args.json}
    students: list[dict] = []
    try:
        print("making the inputs…", flush=True)
        t = time.time()
        uploads = make_inputs(work)
        print(f"  {len(uploads)} inputs in {time.time() - t:.0f} s", flush=True)
        if args.lock:   # the inputs are made; the measuring waits for the machine to be ours
            lock = open(args.lock, "a")  # noqa: SIM115 (held until this process ends)
            t = time.time()
            fcntl.flock(lock, fcntl.LOCK_EX)
            print(f"took {args.lock} after {time.time() - t:.0f} s; load average "
                  f"{Path('/proc/loadavg').read_text().strip()}", flush=True)
        students = seed_students(runs_dir / ".students", args.students)
        monitor.start()
        server.start()
        cookie = identity.COOKIE_NAME
        t0 = time.time()
        for st in students:   # they press Start within a minute, as in a lecture
            r = loop.run(press_start(server.url, cookie, st, args.epochs))
            st.update(r)
            print(f"student {st['n']} ({st['preset']} on {st['dataset']}, {st['params']:,} parameters): "
                  f"{r['started']}", flush=True)
        report["students_pressed_s"] = round(time.time() - t0)
        uploads_done = upload_all(server, group, monitor, uploads, report)
        wait_for_jobs(server, students, runs_dir, args.job_timeout)
        web_first = [life["pid"] for life in server.lives]
        print("\nrestart: SIGTERM, then the same server again in the same group", flush=True)
        server.stop()
        monitor.sample()
        server.start()
        reopen_all(server, loop, students, uploads_done, report)
        server.stop()
        monitor.sample()
        report["web_pids_before_restart"] = web_first
    finally:
        monitor.done.set()
        monitor.join(5)
        if server.alive():
            server.stop()
        figures = group.read()
        group.remove()
        loop.loop.call_soon_threadsafe(loop.loop.stop)
    return summarize(report, figures, server, monitor, students, runs_dir, work)


def upload_all(server: Server, group: MemoryGroup, monitor: Monitor, uploads: list[Upload], report: dict):
    """The sixth student uploads every input in a row; a server that died is noted and started again."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    page = ctx.new_page()
    page.set_default_timeout(300_000)
    print("\nthe sixth student uploads:", flush=True)
    for up in uploads:
        before = group.read()["oom_kill"]
        try:
            out = upload_one(page, server.url, up)
        except Exception as err:   # noqa: BLE001 (a page that never finished: the server may have died)
            out = {"got": "no answer", "ok": False, "sentence": f"{type(err).__name__}: {str(err)[:200]}"}
        monitor.sample()
        g = group.read()
        web = server.lives[-1]["pid"]
        out.update(alive=server.alive(), oom_kills=g["oom_kill"] - before, web_rss=status_kb(web, "VmRSS"),
                   web_peak=monitor.hwm.get(web, 0), group_usage=g["usage"])
        out["ok"] = out["ok"] and out["alive"] and not out["oom_kills"]
        up.outcome.update(out)
        report["uploads"].append({"name": up.name, "file": up.path.name, "page": up.page, "expect": up.expect,
                                  **up.outcome})
        print(f"  {'ok  ' if out['ok'] else 'FAIL'} {up.name} ({up.outcome['bytes']:,} bytes, {up.page}): "
              f"{out['got']}{' — ' + out['sentence'][:160] if out.get('sentence') else ''}"
              f"{' — ' + out.get('accepted_as', '')[:120] if out.get('accepted_as') else ''}"
              f" [{out.get('seconds', '?')} s; web RSS {mb(out['web_rss'])}, web peak {mb(out['web_peak'])}, "
              f"group {mb(g['usage'])}]", flush=True)
        if not server.alive():
            server.note_death()
            print(f"  the server died ({server.lives[-1]['ended']}; oom_kill {g['oom_kill']}): starting it again",
                  flush=True)
            server.start()
    return {"pw": pw, "browser": browser, "ctx": ctx, "page": page}


def wait_for_jobs(server: Server, students: list[dict], runs_dir: Path, timeout: float) -> None:
    t = time.time()
    if any((life["ended"] or "").startswith("died") for life in server.lives):
        timeout = min(timeout, 30)   # jobs running when the server died are lost: the restart must say so
    while time.time() - t < timeout:
        have = runs_of(runs_dir)
        if all(have.get(st["owner"]) for st in students) or not server.alive():
            break
        time.sleep(3)
    have = runs_of(runs_dir)
    for st in students:
        s = st.pop("session", None)
        st["runs"] = have.get(st["owner"], [])
        st["seen"] = [a for a in (s.alerts if s else []) if a[0] in ("error", "warning", "toast")][-3:]
        st["exceptions"] = list(s.exceptions) if s else []
    print(f"jobs: {sum(bool(st['runs']) for st in students)} of {len(students)} students have their run "
          f"{time.time() - t:.0f} s after the uploads", flush=True)


def reopen_all(server: Server, loop: Loop, students: list[dict], browser: dict, report: dict) -> None:
    from cnnkit import identity

    print("every student reopens every page:", flush=True)
    for st in students:
        pages = {p or "home": loop.run(reopen(server.url, identity.COOKIE_NAME, st["owner"], p)) for p in PAGES}
        report["reopen"][f"student {st['n']}"] = pages
        _print_reopen(f"student {st['n']}", pages, server)
    page = browser["page"]
    pages = {}
    for p in PAGES:
        t = time.perf_counter()
        try:
            page.goto(f"{server.url}/{p}")
            settled(page)
            rep = page_report(page)
            pages[p or "home"] = {"seconds": round(time.perf_counter() - t, 1), "alerts": rep["errors"],
                                  "exceptions": rep["exceptions"]}
        except Exception as err:   # noqa: BLE001
            pages[p or "home"] = {"failed": f"{type(err).__name__}: {str(err)[:200]}", "exceptions": []}
    report["reopen"]["the uploader"] = pages
    _print_reopen("the uploader (its kept upload)", pages, server)
    browser["browser"].close()
    browser["pw"].stop()


def _print_reopen(who: str, pages: dict, server: Server) -> None:
    bad = {p: o for p, o in pages.items() if o.get("exceptions") or o.get("failed")}
    said = sorted({str(a[-1] if isinstance(a, (list, tuple)) else a)[:140] for o in pages.values()
                   for a in o.get("alerts", [])})
    web = server.lives[-1]["pid"]
    print(f"  {who}: {len(pages) - len(bad)} of {len(pages)} pages without an exception"
          f"{'; ' + json.dumps(bad)[:400] if bad else ''}; server alive {server.alive()}; web RSS "
          f"{mb(status_kb(web, 'VmRSS'))}, peak {mb(status_kb(web, 'VmHWM'))}"
          f"{'; read: ' + ' | '.join(said)[:500] if said else ''}", flush=True)


def summarize(report: dict, g: dict, server: Server, monitor: Monitor, students: list[dict], runs_dir: Path,
              work: Path) -> int:
    web_pids = [life["pid"] for life in server.lives]
    web_peaks = [monitor.hwm.get(p, 0) for p in web_pids]
    others = {p: h for p, h in monitor.hwm.items() if p not in web_pids}
    worker_peak = max(others.values(), default=0)
    deaths = [life["ended"] for life in server.lives if life["ended"] and life["ended"].startswith("died")]
    have = runs_of(runs_dir)
    print("\n== figures ==")
    print(f"memory.max_usage_in_bytes {g['max_usage']:,} ({mb(g['max_usage'])} of {mb(g['limit'])}); "
          f"memory.failcnt {g['failcnt']:,}; oom_kill {g['oom_kill']}")
    print(f"web process peak RSS (VmHWM) per life: {', '.join(mb(p) for p in web_peaks)}; "
          f"the largest other process in the group (a Dask worker) {mb(worker_peak)}; "
          f"the group's sampled peak {mb(monitor.usage_peak)}")
    for st in students:
        runs = have.get(st["owner"], [])
        # Without a run, what their Training page said after the restart (the job was lost), or before it.
        said = [a[1] for a in report["reopen"].get(f"student {st['n']}", {}).get("training", {}).get("alerts", [])]
        said = said or [a[1] for a in st.get("seen", [])]
        st["outcome"] = f"run {runs[0]}" if runs else (f"sentence: {said[-1][:200]}" if said
                                                       else "NO RUN AND NO SENTENCE")
        print(f"student {st['n']} ({st['preset']} on {st['dataset']}): {st['outcome']}")
    ok_uploads = sum(u["ok"] for u in report["uploads"])
    reopen_bad = sum(bool(o.get("exceptions") or o.get("failed")) for pages in report["reopen"].values()
                     for o in pages.values())
    served = sum(not st["outcome"].startswith("NO RUN") for st in students)
    passed = (g["oom_kill"] == 0 and not deaths and served == len(students) and ok_uploads == len(report["uploads"])
              and reopen_bad == 0)
    print(f"uploads with a sentence or a correct acceptance: {ok_uploads} of {len(report['uploads'])}; "
          f"students with their run or a sentence: {served} of {len(students)}; server deaths: {len(deaths)}; "
          f"page loads after the restart with an exception or no answer: {reopen_bad}")
    print(f"load average at the end: {Path('/proc/loadavg').read_text().strip()}")
    print("PASS" if passed else "FAIL")
    report.update(cgroup=g, web_peaks=web_peaks, worker_peak=worker_peak, deaths=deaths, passed=passed,
                  students=[{k: v for k, v in st.items() if k != "session"} for st in students],
                  group_sampled_peak=monitor.usage_peak)
    report["server_log_tail"] = (work / "server.log").read_text()[-4000:] if (work / "server.log").exists() else ""
    if report.get("json"):
        Path(report["json"]).write_text(json.dumps(report, indent=2, default=str))
    shutil.rmtree(work, ignore_errors=True)
    return 0 if passed else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit-gb", type=float, default=2.7, help="the group's memory limit (Community Cloud: 2.7)")
    ap.add_argument("--students", type=int, default=5, help="students who train (at most 5)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of each student's job")
    ap.add_argument("--job-timeout", type=float, default=900, help="seconds to wait for the jobs after the uploads")
    ap.add_argument("--json", help="write every figure and outcome to this file")
    ap.add_argument("--lock", help="take this lock file (e.g. /tmp/bench.lock) once the inputs are made, so other "
                                   "benchmarks do not run while this one measures (not under `flock` of the same file)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # a stopped run still removes its group
    print(f"load average at the start: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
