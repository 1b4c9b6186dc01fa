"""Benchmark (issue #23): Start → the first point of the live training curve, for one student on an idle server.

Target: the first curve point ≤ 2 s after Start for a lecture job on an idle server (3.5–6.3 s in a browser when
the issue was filed). Prints figures, asserts nothing (the machine is shared: the load average is printed). Run:

    flock /tmp/bench.lock nice -n 10 python -u bench/bench_first_point.py            # 1 cold + 5 warm jobs
    python bench/bench_first_point.py --jobs 3 --app-ref main                        # the app at a commit first

What it does: `streamlit run app.py` (offline sample, a temporary runs folder; bench_lecture.py's server and
page helpers), Debian's Chromium at 1280×720 on the Training page, the student's defaults untouched: the lecture
preset and the small-data recipe the page proposes on the 5,000-digit offline sample (RMSprop 0.012, batch 64,
3 epochs, augmentation, seed 42). Start is pressed as soon as the page has loaded (the first, cold job: the
worker may still be importing TensorFlow), then `--jobs` more jobs, each after the previous finished, with seeds
1, 2, … (a new job key each time, so no finished run is reused and no computation is shared).

Measured from the click (the page's own `click` event, `Date.now()`), by a 50 ms `setInterval` inside the page
(so no wait of Playwright's hides a moment; Python only reads the results):
  (a) first sign: the job panel (`.st-key-job_panel`) says the job's place in line, "Building the model",
      "Training…" or "Epoch e/E · batch b/B";
  running: the panel shows the job running ("Building the model…", "Training…", "Epoch e/E · …", "Measuring …");
  (b) first curve point: the panel holds a Plotly chart (`[data-testid='stPlotlyChart'] .js-plotly-plot`) whose
      figure data (`gd.data`, what Plotly drew) has the trace "training, running (smoothed)" with ≥ 1 point
      (the page draws the chart only once the job has a running point: before that it shows a caption). For a
      warm job the previous job's chart (with per-epoch traces) must first leave the panel, so it is never
      taken for the new one. With one point the thin line has no segment yet: the moment is when the point is in
      the figure, not when a line is visible;
  (c) end: the panel says "Finished …".
The server-side times come from the job's journal entry (`<runs>/.jobs/<id>.json`: `created` = submitted; the
file's mtime when its state turns "running" = the poller launched it, read every 50 ms) and the run's
`metrics.json` (`worker_began`, `phases`: the worker's "dataset" — which includes waiting for the worker's
TensorFlow import on a cold worker —, start, build, first batch, …), so the time to the first point is split into
press → submitted → launched → on the worker → first batch done → shown (the worker's progress message, the
registry's drain and the panel's poll).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_lecture import ARGS, ROOT, app_at, new_page, p90, set_number, start_server, stop_server

# Installed once in the page: `__fpArm()` before each Start; the 50 ms tick stamps (a), running, (b) and (c).
MONITOR_JS = r"""() => {
  const SIGN = /number \d+ in line|Building the model|Training…|Epoch \d+\/\d+ · batch \d+/;
  const RUNNING = /Building the model|Training…|Epoch \d+\/\d+ · |Measuring|Saving the run/;
  const FINISHED = /Finished \d+ epoch/;
  window.__fpArm = () => { window.__fp = {t0: null, a: null, aText: null, running: null, b: null, points: null,
                                          traces: null, c: null, cleared: false}; };
  window.__fpArm();
  document.addEventListener("click", (e) => {
    const b = e.target.closest("button");
    if (b && b.innerText.includes("Start training") && window.__fp.t0 === null) window.__fp.t0 = Date.now();
  }, true);
  setInterval(() => {
    const s = window.__fp;
    if (s.t0 === null || s.c !== null) return;
    const now = Date.now();
    const panel = document.querySelector(".st-key-job_panel");
    const text = panel ? panel.innerText : "";
    const old = FINISHED.test(text) && s.a === null;   // the last job's panel, until the page's run replaces it
    const sign = old ? null : text.match(SIGN);
    if (s.a === null && sign) { s.a = now; s.aText = sign[0]; }
    if (s.running === null && !old && RUNNING.test(text)) s.running = now;
    const gd = panel && panel.querySelector("[data-testid='stPlotlyChart'] .js-plotly-plot");
    const data = gd && gd.data ? gd.data : [];
    if (!s.cleared && !data.some(t => t.name === "training")) s.cleared = true;   // the last job's chart is gone
    const run = data.find(t => (t.name || "").startsWith("training, running"));
    if (s.b === null && s.cleared && run && run.x && run.x.length) {
      s.b = now; s.points = run.x.length; s.traces = gd.querySelectorAll(".scatterlayer .trace").length;
    }
    if (s.a !== null && FINISHED.test(text)) s.c = now;
  }, 50);
}"""


def journal_entry(runs: Path) -> tuple[Path, dict] | None:
    """The newest job file in the runs folder's journal and its contents (None: none yet)."""
    files = sorted((runs / ".jobs").glob("*.json"), key=lambda p: p.stat().st_mtime)
    for path in reversed(files):
        try:
            return path, json.loads(path.read_text())
        except (OSError, ValueError):   # replaced atomically, but a glob may still race a rename
            continue
    return None


def one_job(page, runs: Path, known: set[str], timeout: float) -> dict:
    """Press Start and follow the job until it finishes; the page's stamps and the server's, in seconds since 1970."""
    from playwright.sync_api import expect

    page.evaluate("() => window.__fpArm()")
    page.get_by_role("button", name="Start training").click()
    job_id = launched = None
    deadline = time.time() + timeout
    while (s := page.evaluate("() => window.__fp"))["c"] is None:
        if time.time() > deadline:
            raise SystemExit(f"the job did not finish within {timeout:.0f} s: {s}")
        found = journal_entry(runs) if launched is None else None
        if found and found[0].stem not in known:
            job_id = found[0].stem
            if found[1].get("state") == "running":
                launched = found[0].stat().st_mtime    # written as the poller launched it
        time.sleep(0.05)
    expect(page.get_by_role("button", name="Start training")).to_be_enabled(timeout=60_000)   # the page's rerun
    page.wait_for_timeout(200)
    job_id = job_id or journal_entry(runs)[0].stem
    entry = json.loads((runs / ".jobs" / f"{job_id}.json").read_text())
    known.add(job_id)
    metrics = json.loads((Path(entry["end"]["run_path"]) / "metrics.json").read_text())
    stamps = {k: s[k] / 1000 if s[k] is not None else float("nan") for k in ("t0", "a", "running", "b", "c")}
    return {**s, **stamps, "created": entry["created"], "launched": launched or float("nan"),
            "ended": entry["end"]["when"], "metrics": metrics}


def worker_times(metrics: dict) -> dict[str, float]:
    """Absolute times on the worker: began, and the end of each phase up to the first batch."""
    out = {"on worker": metrics["worker_began"]}
    t = metrics["worker_began"]
    for phase, seconds in metrics["phases"].items():
        t += seconds
        out[phase] = t
        if phase == "first batch":
            break
    return out


def report(label: str, r: dict) -> dict[str, float]:
    """Print one job's line and its split; returns the figures for the summary."""
    t0 = r["t0"]
    w = worker_times(r["metrics"])
    fig = {"sign": r["a"] - t0, "running": r["running"] - t0, "point": r["b"] - t0, "end": r["c"] - t0,
           "submitted": r["created"] - t0, "launched": r["launched"] - t0,
           "on worker": w["on worker"] - t0, "first batch": w.get("first batch", float("nan")) - t0}
    print(f"{label}: (a) first sign {fig['sign']:.2f} s ({r['aText']!r}) · page shows it running "
          f"{fig['running']:.2f} s · (b) first curve point {fig['point']:.2f} s ({r['points']} point(s), "
          f"{r['traces']} trace(s) drawn) · (c) finished {fig['end']:.2f} s")
    ph = r["metrics"]["phases"]
    print(f"    split: press → submitted {fig['submitted']:.2f} · → launched by the poller "
          f"{fig['launched'] - fig['submitted']:.2f} · → on the worker {fig['on worker'] - fig['launched']:.2f} · "
          f"→ first batch done {fig['first batch'] - fig['on worker']:.2f} "
          f"(TensorFlow import + dataset {ph.get('dataset', 0):.2f}, "
          f"start {ph.get('start', 0):.2f}, build {ph.get('build', 0):.2f}, first batch "
          f"{ph.get('first batch', 0):.2f}) · → the page shows the point {fig['point'] - fig['first batch']:.2f}"
          f" · page saw it running {fig['running'] - fig['launched']:.2f} after launch")
    return fig


def run_app(app_dir: Path, work: Path, jobs: int, timeout: float) -> None:
    from playwright.sync_api import sync_playwright

    runs = work / f"runs-{app_dir.name}"
    began = time.time()
    proc, url = start_server(app_dir, runs, work / f"server-{app_dir.name}.log")
    print(f"server up after {time.time() - began:.1f} s (load average {os.getloadavg()[0]:.1f})")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = new_page(browser, url, "training")
            page.set_viewport_size({"width": 1280, "height": 720})
            page.get_by_text("No training job yet").wait_for()
            page.evaluate(MONITOR_JS)
            print(f"Training page ready {time.time() - began:.1f} s after the server started; Start pressed now")
            known: set[str] = set()
            report("cold job (seed 42)", one_job(page, runs, known, timeout))
            warm = []
            for seed in range(1, jobs + 1):
                set_number(page, "Seed", seed)
                warm.append(report(f"warm job {seed} (seed {seed})", one_job(page, runs, known, timeout)))
            browser.close()
    finally:
        stop_server(proc)
    if warm:
        def both(key: str) -> str:
            xs = [f[key] for f in warm]
            return f"{key} {statistics.median(xs):.2f} / {p90(xs):.2f}"

        print(f"warm jobs (n={len(warm)}), median / p90 s from the click: "
              + " · ".join(both(k) for k in ("sign", "running", "point", "end")))
        for f in warm:
            f["first batch → page"] = f["point"] - f["first batch"]
        print("    server side: " + " · ".join(both(k) for k in ("submitted", "launched", "on worker", "first batch",
                                                                 "first batch → page")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=5, help="warm jobs after the cold one (default 5)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds one job may take (default 300)")
    ap.add_argument("--app-ref", action="append", default=[],
                    help="also measure the app at this git commit, before this checkout's (repeatable)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-first-point-"))
    print(f"load average at the start {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    try:
        for ref in args.app_ref:
            print(f"== the app at {ref} ==")
            run_app(app_at(ref, work / f"app-{ref}"), work, args.jobs, args.timeout)
        print("== the app of this checkout ==")
        run_app(ROOT, work, args.jobs, args.timeout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        print(f"load average at the end {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    sys.exit(main())
