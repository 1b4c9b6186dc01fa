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

Settings given to the server: CNNKIT_CLASS_MODE=1, one embedded worker (Community Cloud has 2 CPUs: one
worker per two cores) and CNNKIT_WORKER_MEMORY = 60 % of the group's limit — what the app computes by itself on
Community Cloud, where the container's own limit is what `distributed` reads; inside a nested group on a
bigger machine it would read the machine's memory instead.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import io
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
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
import hostile  # noqa: E402  (the suite's generators)

CGROUP_MEMORY = Path("/sys/fs/cgroup/memory")
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
class MemoryGroup:
    """One cgroup-v1 memory group: made with a limit, entered by a launcher before it execs, read, removed."""

    def __init__(self, name: str, limit: int) -> None:
        self.path = self.parent() / name
        self.limit = limit

    @staticmethod
    def parent() -> Path:
        """This process's own memory group (a group made under it stays inside whatever holds this process)."""
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, rel = line.split(":", 2)
            if "memory" in controllers.split(","):
                return CGROUP_MEMORY / rel.lstrip("/")
        return CGROUP_MEMORY

    def create(self) -> str | None:
        """Make the group; None, or the sentence saying why it cannot be made here."""
        if not (CGROUP_MEMORY / "cgroup.procs").exists():
            return (f"There is no cgroup-v1 memory controller at {CGROUP_MEMORY} on this machine, so the server "
                    "cannot be put under a memory ceiling: nothing was measured.")
        try:
            self.path.mkdir()
            (self.path / "memory.limit_in_bytes").write_text(str(self.limit))
        except OSError as err:
            if self.path.exists():
                self.path.rmdir()
            return (f"The cgroup-v1 memory controller is not writable here ({err.strerror} at {self.path}; it "
                    "needs root and a controller of one's own), so the server cannot be put under a memory "
                    "ceiling: nothing was measured.")
        return None

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` started by a shell that first moves itself into the group, then execs: every process the
        server starts (the Dask nanny and its worker) is born inside."""
        return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.path / "cgroup.procs"), *argv]

    def _int(self, name: str) -> int:
        return int((self.path / name).read_text())

    def read(self) -> dict:
        oom = dict(line.split() for line in (self.path / "memory.oom_control").read_text().splitlines())
        return {"limit": self._int("memory.limit_in_bytes"), "usage": self._int("memory.usage_in_bytes"),
                "max_usage": self._int("memory.max_usage_in_bytes"), "failcnt": self._int("memory.failcnt"),
                "oom_kill": int(oom.get("oom_kill", 0)), "under_oom": int(oom.get("under_oom", 0))}

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def remove(self) -> None:
        """Remove the group once the processes this benchmark started in it have ended."""
        for _ in range(100):
            if not self.pids():
                break
            time.sleep(0.2)
        for pid in self.pids():   # only ours can be in it: it was made for this run
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.2)
        print(f"could not remove {self.path}")


def status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


class Monitor(threading.Thread):
    """Samples every process in the group: each one's peak RSS (the kernel's VmHWM, kept per pid, so a process
    that has gone keeps its last reading) and the group's usage."""

    def __init__(self, group: MemoryGroup) -> None:
        super().__init__(daemon=True, name="monitor")
        self.group = group
        self.hwm: dict[int, int] = {}
        self.cmd: dict[int, str] = {}
        self.usage_peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.sample()
            self.done.wait(0.25)

    def sample(self) -> None:
        for pid in self.group.pids():
            hwm = status_kb(pid, "VmHWM")
            self.hwm[pid] = max(self.hwm.get(pid, 0), hwm)
            if pid not in self.cmd:
                try:
                    self.cmd[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
                except OSError:
                    self.cmd[pid] = "?"
        try:
            self.usage_peak = max(self.usage_peak, self.group.read()["usage"])
        except OSError:
            pass


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
@dataclass
class Upload:
    name: str
    page: str           # data | architecture | evaluation
    path: Path
    expect: str         # "sentence" (must be refused), "accepted", or "either" (within every limit)
    said: str = ""      # part of the sentence we expect, when refused
    outcome: dict = field(default_factory=dict)


def stream_npz(path: Path, x_shape: tuple, y=None, fill: int = 0, test: int = 0) -> Path:
    """A real .npz of `fill` images (deflated as written): x_train of x_shape minus `test` images, x_test `test`."""
    n = x_shape[0]
    y = np.arange(n) % 10 if y is None else np.asarray(y)
    row = np.full(x_shape[1:], fill, dtype=np.uint8).tobytes()
    splits = {"train": n - test, "test": test or n}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for split, count in splits.items():
            with zf.open(f"x_{split}.npy", "w", force_zip64=True) as f:
                f.write(hostile.npy_header((count,) + tuple(x_shape[1:])))
                for _ in range(count):
                    f.write(row)
            buf = io.BytesIO()
            np.save(buf, (y[:count] if split == "train" else np.arange(count) % 10))
            zf.writestr(f"y_{split}.npy", buf.getvalue())
    return path


def blank_png_zip(path: Path, n: int, side: int = 512) -> Path:
    blank = hostile.png(side, side, value=0)
    return hostile.image_zip(path, {f"class_{i % 10}/{i}.png": blank for i in range(n)})


def config_bomb_keras(path: Path, unpacked: int = 1_500_000_000) -> Path:
    """A .keras whose config.json unpacks to `unpacked` bytes (a model name of that many letters): ~1.5 MB."""
    head = b'{"module": "keras", "class_name": "Sequential", "config": {"name": "'
    tail = b'", "layers": []}, "registered_name": null}'
    chunk = b"a" * (1 << 24)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.8.0", "date_saved": "2026-12-01@10:00:00"}))
        with zf.open("config.json", "w", force_zip64=True) as f:
            f.write(head)
            left = unpacked - len(head) - len(tail)
            while left > 0:
                f.write(chunk[:left])
                left -= len(chunk)
            f.write(tail)
    return path


WIDE_KERAS = r"""
import sys, zipfile, json, keras
path = sys.argv[1]
m = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Flatten(), keras.layers.Dense(7, name="wide"),
                      keras.layers.Dense(10, activation="softmax")])
m.save(path + ".small.keras")
with zipfile.ZipFile(path + ".small.keras") as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
    for info in src.infolist():
        data = src.read(info.filename)
        if info.filename == "config.json":
            text = data.decode()
            assert '"units": 7' in text
            data = text.replace('"units": 7', '"units": 100000').encode()
        dst.writestr(info.filename, data)
"""


def wide_dense_keras(path: Path) -> Path:
    """A real Keras 3 file whose config says Dense(100000) after Flatten of 64×64×3 (1.2 billion parameters,
    4.9 GB of float32 once built) while its weights file is a Dense(7)'s, 350 KB."""
    subprocess.run([sys.executable, "-c", WIDE_KERAS, str(path)], check=True, capture_output=True,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""})
    Path(str(path) + ".small.keras").unlink()
    return path


def make_inputs(d: Path) -> list[Upload]:
    """Each hostile generator of tests/hostile.py in its worst form, then the issue's four."""
    def write(name: str, data: bytes | str) -> Path:
        p = d / name
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return p

    bomb = hostile.png(9000, 9000)
    y31 = np.arange(60) % 10
    y31[0] = 2**31
    x, y = hostile.digits_like(200)
    ups = [
        Upload("npz: real digits (hostile.npz)", "data", hostile.npz(d / "digits.npz", x_train=x, y_train=y,
               x_test=x[:60], y_test=y[:60]), "accepted"),
        Upload("npz header 4×20000×20000 (claimed_npz)", "data",
               hostile.claimed_npz(d / "claims_20000.npz", (4, 20000, 20000)), "sentence", "20,000"),
        Upload("npz header 4000×512×512 (claimed_npz)", "data",
               hostile.claimed_npz(d / "claims_1e9.npz", (4000, 512, 512)), "sentence", "values"),
        Upload("npz labels 2^31 (npz)", "data", stream_npz(d / "labels_2e31.npz", (60, 28, 28), y=y31),
               "sentence", "classes"),
        Upload("zip of 9000×9000 PNG bombs (png + image_zip)", "data",
               hostile.image_zip(d / "png_bombs.zip", {f"{c}/{i}.png": bomb for c in "ab" for i in range(3)}),
               "sentence", "9000"),
        Upload("zip of header-only PNGs (png header_only)", "data",
               hostile.image_zip(d / "png_empty.zip", {f"{c}/{i}.png": hostile.png(28, 28, header_only=True)
                                                       for c in "ab" for i in range(3)}), "sentence"),
        Upload("zip of PNGs with a bad chunk CRC (png bad_crc)", "data",
               hostile.image_zip(d / "png_crc.zip", {f"{c}/{i}.png": hostile.png(28, 28, bad_crc=True)
                                                     for c in "ab" for i in range(3)}), "sentence"),
        Upload("zip with a bad CRC (zip_with_bad_crc)", "data", hostile.zip_with_bad_crc(d / "bad_crc.zip"),
               "sentence", "checksum"),
        Upload("JSON nested 10,000 deep (nested_json)", "architecture",
               write("nested.json", hostile.nested_json(10_000)), "sentence", "levels"),
        Upload("JSON of 10,002 layers (layers_json)", "architecture",
               write("layers.json", hostile.layers_json(10_002)), "sentence", "10,002"),
        Upload("JSON in Latin-1 (latin1_json)", "architecture", write("latin1.json", hostile.latin1_json()),
               "sentence", "UTF-8"),
        Upload("JSON with units NaN (non_finite_spec_json)", "architecture",
               write("nan.json", hostile.non_finite_spec_json("units", "NaN")), "sentence", "NaN"),
        Upload("JSON with pool_size Infinity (non_finite_spec_json)", "architecture",
               write("inf.json", hostile.non_finite_spec_json("pool_size", "Infinity")), "sentence", "Infinity"),
        Upload("JSON of 13 M parameters (big_spec_dict)", "architecture",
               write("huge.json", json.dumps(hostile.big_spec_dict())), "either"),
        Upload("JSON of GFLOPs (heavy_flops_spec_dict)", "architecture",
               write("slow.json", json.dumps(hostile.heavy_flops_spec_dict())), "either"),
        Upload("900 blank 512×512 PNGs as .zip", "data", blank_png_zip(d / "blank_900.zip", 900), "either"),
        Upload("940 blank 512×512 images as .npz", "data",
               stream_npz(d / "blank_940.npz", (940, 512, 512), test=140), "either"),
        Upload(".keras whose config unpacks to 1.5 GB", "evaluation", config_bomb_keras(d / "config_bomb.keras"),
               "sentence"),
        Upload(".keras with Dense(100000) (1.2 billion parameters)", "evaluation",
               wide_dense_keras(d / "dense_100000.keras"), "sentence", "parameters"),
    ]
    for u in ups:
        u.outcome["bytes"] = u.path.stat().st_size
    return ups


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
    env = {**os.environ, "CNNKIT_OFFLINE": "1", "CNNKIT_CLASS_MODE": "1", "CNNKIT_LECTURER_KEY": "bench-lecturer",
           "CNNKIT_RUNS_DIR": str(runs_dir), "CNNKIT_WORKERS": "1", "CNNKIT_WORKER_MEMORY": str(int(0.6 * limit)),
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
