"""The worst inputs of the hostile-inputs suite, fed to a real server under Community Cloud's memory ceiling.

Two parts (both by default):

  library  Each memory case through the library in a fresh Python whose address space is capped
           (`--cap-gb`, default 8, so a missing guard fails with MemoryError instead of eating the shared
           machine), printing peak RSS and the sentence. Run it with `--root /path/to/other/checkout` to
           measure another version of the code (e.g. main before the guards) on the same files.
  server   `streamlit run app.py` started under `prlimit --as=2700000000` (2.7 GB of address space; a cgroup
           needs a writable memory controller of one's own, which this machine's sessions do not have),
           a damaged Keras cache and damaged run folders. Browser session A uploads the worst inputs one
           after another (Data page: .npz/.zip; Architecture page: model files); browser session B, a
           separate process, keeps going round the pages meanwhile. Pass: the server never dies, B never
           sees an error or exception element, and A gets a sentence each time.

    python bench/bench_hostile.py [--part library|server|both] [--root DIR] [--cap-gb 8]

The inputs are real (they decompress to what their headers say): zeros deflated inside the archive, so a
"4 × 20000 × 20000" .npz is 1.6 MB on disk. The machine is shared and noisy: the figures are peak memory,
which does not depend on load; times are only indicative.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import hostile  # noqa: E402  (the suite's generators)

CEILING = 2_700_000_000


# --- real hostile files, written as streams ------------------------------------------------------------
def stream_npz(path: Path, x_shape, x_dtype="uint8", fill=0, y=None) -> Path:
    """An .npz whose x arrays really hold `x_shape` values of `fill` (deflated as they are written)."""
    n = x_shape[0]
    y = np.arange(n) % 10 if y is None else y
    dtype = np.dtype(x_dtype)
    row = np.full(x_shape[1:], fill, dtype=dtype).tobytes()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for split in ("train", "test"):
            with zf.open(f"x_{split}.npy", "w", force_zip64=True) as f:
                f.write(hostile.npy_header(x_shape, dtype))
                for _ in range(n):
                    f.write(row)
            import io

            buf = io.BytesIO()
            np.save(buf, np.asarray(y))
            zf.writestr(f"y_{split}.npy", buf.getvalue())
    return path


def make_inputs(d: Path) -> list[dict]:
    """The worst inputs: (page, file, what the sentence must say)."""
    y_big = np.arange(60) % 10
    y_big[0] = 10_000_000
    y_31 = np.arange(60) % 10
    y_31[0] = 2**31
    bomb = hostile.png(9000, 9000)
    cases = [
        ("data", stream_npz(d / "images_5000.npz", (4, 5000, 5000)), "a side of 5,000 pixels"),
        ("data", stream_npz(d / "images_20000.npz", (4, 20000, 20000)), "a side of 20,000 pixels"),
        ("data", stream_npz(d / "labels_10M.npz", (60, 28, 28), y=y_big), "10,000,001 classes"),
        ("data", stream_npz(d / "labels_2e31.npz", (60, 28, 28), y=y_31), "2,147,483,649 classes"),
        ("data", stream_npz(d / "nan_60000.npz", (60000, 28, 28), "float32", np.nan), "NaN or infinite"),
        ("data", hostile.image_zip(d / "png_9000.zip", {f"{c}/{i}.png": bomb for c in "ab" for i in range(3)}),
         "9000×9000"),
        ("data", hostile.zip_with_bad_crc(d / "bad_crc.zip"), "checksum is wrong"),
        ("architecture", _write(d / "layers_10002.json", hostile.layers_json(10_002).encode()), "10,002 layers"),
        ("architecture", _write(d / "nested_10000.json", hostile.nested_json(10_000).encode()), "levels"),
        ("architecture", _write(d / "latin1.json", hostile.latin1_json()), "not UTF-8"),
    ]
    return [{"page": p, "file": str(f), "expect": e} for p, f, e in cases]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- part 1: library, peak RSS per memory case ----------------------------------------------------------------
LIBRARY_CASES = {
    "images_5000.npz": "from cnnkit import datasets; datasets.load_file(PATH)",
    "images_20000.npz": "from cnnkit import datasets; datasets.load_file(PATH)",
    "labels_10M.npz": "from cnnkit import datasets, exploration; ds = datasets.load_file(PATH); "
                      "exploration.class_counts(ds)",
    "labels_2e31.npz": "from cnnkit import datasets, exploration; ds = datasets.load_file(PATH); "
                       "exploration.class_counts(ds)",
    "nan_60000.npz": "from cnnkit import datasets; datasets.load_file(PATH)",
    "png_9000.zip": "from cnnkit import datasets; datasets.load_file(PATH)",
    "black_13000.png": "from cnnkit import drawing; "
                       "drawing.prepare_for(drawing.read_image(PATH), 'mnist', (28, 28, 1))",
    "layers_10002.json": "from cnnkit.spec import ModelSpec; s = ModelSpec.from_json(open(PATH, 'rb').read()); "
                         "s.summary(); s.validate(10)",
    "nested_10000.json": "from cnnkit.spec import ModelSpec; ModelSpec.from_json(open(PATH, 'rb').read())",
}


def library(root: Path, d: Path, cap_gb: float) -> list[dict]:
    (d / "black_13000.png").write_bytes(hostile.png(13000, 13000))
    cap = int(cap_gb * 2**30)

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    rows = []
    for name, body in LIBRARY_CASES.items():
        code = textwrap.dedent(f"""
            import json, sys, time
            sys.path.insert(0, {str(root)!r})
            PATH = {str(d / name)!r}
            t = time.perf_counter()
            try:
                {body}
                outcome = "accepted"
            except MemoryError:
                outcome = "MemoryError"
            except Exception as err:
                outcome = type(err).__name__ + ": " + str(err)
            hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
            print(json.dumps({{"rss_mb": hwm / 1024, "seconds": time.perf_counter() - t, "outcome": outcome}}))
        """)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900,
                              env={**os.environ, "CNNKIT_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"},
                              preexec_fn=limit_memory)
        try:
            r = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            r = {"rss_mb": float("nan"), "seconds": float("nan"),
                 "outcome": f"died (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}"}
        r["case"] = name
        rows.append(r)
        print(f"{name:<20}{r['rss_mb']:>9.0f} MB{r['seconds']:>8.1f} s  {r['outcome'][:150]}", flush=True)
    return rows


# --- part 2: the server under the ceiling, two browser sessions ------------------------------------------------------
BROWSE = textwrap.dedent("""
    import json, sys, time
    from playwright.sync_api import sync_playwright
    url, stop_file, out_file = sys.argv[1:4]
    IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
    pages = ["", "data", "architecture", "training", "evaluation", "draw"]
    seen = {"loads": 0, "errors": [], "exceptions": []}
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox",
            "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run"])
        page = b.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.set_default_timeout(120_000)
        i = 0
        import os
        while not os.path.exists(stop_file):
            target = pages[i % len(pages)]
            i += 1
            try:
                page.goto(f"{url}/{target}")
                page.wait_for_timeout(300)
                page.wait_for_selector(IDLE)
                seen["loads"] += 1
                exc = page.locator("[data-testid='stException']").all_inner_texts()
                if exc:
                    seen["exceptions"].append([target, exc[0][:300]])
                errs = page.locator("[data-testid='stAlertContentError']").all_inner_texts()
                if errs:
                    seen["errors"].append([target, errs[0][:300]])
            except Exception as err:
                seen["errors"].append([target, f"{type(err).__name__}: {str(err)[:200]}"])
        b.close()
    json.dump(seen, open(out_file, "w"))
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mem(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MB of the server process."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan"), float("nan")
    vals = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in text.splitlines()
            if line.startswith(("VmRSS", "VmHWM"))}
    return vals.get("VmRSS", float("nan")), vals.get("VmHWM", float("nan"))


def server(d: Path, inputs: list[dict]) -> dict:
    from playwright.sync_api import sync_playwright

    keras_home = d / "keras"
    (keras_home / "datasets").mkdir(parents=True)
    (keras_home / "datasets" / "mnist.npz").write_bytes(b"PK\x03\x04 damaged download")
    runs_dir = d / "runs"
    hostile.write_run(runs_dir, "created-yesterday", run_json={"id": "a", "title": "t", "dataset": "mnist",
                                                               "created": "yesterday"})
    hostile.write_run(runs_dir, "list-json", run_json="[1, 2]")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CNNKIT_OFFLINE": "1", "KERAS_HOME": str(keras_home), "CNNKIT_RUNS_DIR": str(runs_dir),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    log = open(d / "server.log", "w")  # noqa: SIM115 (closed after the server stops)
    proc = subprocess.Popen(["prlimit", f"--as={CEILING}", sys.executable, "-m", "streamlit", "run", "app.py",
                             "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                break
        except OSError:
            time.sleep(0.5)
    stop_file, out_file = d / "stop", d / "browse.json"
    browser_b = subprocess.Popen([sys.executable, "-c", BROWSE, url, str(stop_file), str(out_file)])
    rows = []
    idle = "[data-testid='stApp'][data-test-script-state='notRunning']"
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox",
                                   "--disable-gpu", "--disable-background-networking", "--no-first-run"])
            page = b.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(300_000)
            for case in inputs:
                page.goto(f"{url}/{case['page']}")
                page.wait_for_timeout(300)
                page.wait_for_selector(idle)
                t = time.perf_counter()
                page.locator("[data-testid='stFileUploader'] input[type='file']").first.set_input_files(case["file"])
                try:  # the sentence appears once the upload has arrived and the page has run again
                    page.get_by_text(case["expect"]).first.wait_for(timeout=180_000)
                except Exception:  # noqa: BLE001 (recorded below as "no sentence")
                    pass
                page.wait_for_selector(idle)
                seconds = time.perf_counter() - t
                errors = page.locator("[data-testid='stAlertContentError']").all_inner_texts()
                exc = page.locator("[data-testid='stException']").all_inner_texts()
                rss, hwm = _mem(proc.pid)
                alive = proc.poll() is None
                said = next((e for e in errors if case["expect"] in e), None)
                rows.append({"file": Path(case["file"]).name, "page": case["page"], "seconds": round(seconds, 1),
                             "server_rss_mb": round(rss), "server_peak_mb": round(hwm), "alive": alive,
                             "sentence": said, "exception": exc[0][:300] if exc else None,
                             "other_errors": [e for e in errors if e != said]})
                print(f"{rows[-1]['file']:<20}{seconds:>6.1f} s  rss {rss:>6.0f} MB  peak {hwm:>6.0f} MB  "
                      f"alive={alive}  {'OK: ' + said[:90] if said else 'NO SENTENCE ' + str(errors)[:120]}",
                      flush=True)
                if not alive:
                    break
            b.close()
    finally:
        stop_file.write_text("stop")
        browser_b.wait(300)
        seen = json.loads(out_file.read_text()) if out_file.exists() else {"loads": 0, "errors": ["no report"]}
        alive = proc.poll() is None
        rss, hwm = _mem(proc.pid)
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    print(f"second session: {seen['loads']} page loads, {len(seen['errors'])} errors, "
          f"{len(seen['exceptions'])} exceptions {seen['errors'][:3]} {seen['exceptions'][:3]}")
    print(f"server alive at the end: {alive}; its peak RSS {hwm:.0f} MB under a {CEILING / 1e9:.1f} GB "
          "address-space limit (prlimit --as)")
    return {"inputs": rows, "second_session": seen, "server_alive": alive, "server_peak_mb": hwm}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["library", "server", "both"], default="both")
    ap.add_argument("--root", default=str(ROOT), help="the code to measure in the library part (default: this one)")
    ap.add_argument("--cap-gb", type=float, default=8.0, help="address-space cap of each library case (GB)")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        print("making the inputs…", flush=True)
        inputs = make_inputs(d)
        if args.part in ("library", "both"):
            print(f"\nlibrary, code at {args.root} (address space capped at {args.cap_gb:g} GB):")
            out["library"] = library(Path(args.root), d, args.cap_gb)
        if args.part in ("server", "both"):
            print(f"\nserver under prlimit --as={CEILING:,} with a second session browsing:")
            out["server"] = server(d, inputs)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))
    ok = True
    if "server" in out:
        s = out["server"]
        ok = (s["server_alive"] and not s["second_session"]["errors"] and not s["second_session"]["exceptions"]
              and all(r["sentence"] and r["alive"] and not r["exception"] for r in s["inputs"]))
        print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
