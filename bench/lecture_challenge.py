"""The class challenge during bench/bench_lecture.py's lecture (`--challenge`): open it on the server's class
folder, watch the lecturer's Class page in a real Chromium page, and measure from the runs and their scores.

- `open_challenge(runs_dir)`: a seeded 20 % share of MNIST's test split hidden, as the Class page opens it.
- `LecturerPage`: a thread with its own Playwright and Chromium on the Class page (unlocked with the lecturer
  key), reading its counts (runs + training + waiting) every 0.3 s; a student's Start is "seen" when that sum
  first reaches the number of Starts so far (every Start is one more job, or one more run when an identical
  run is reused at once).
- `report(...)`: finish → on the leaderboard per run (the run saved → its score recorded; and from the
  worker's end), the scoring cost per run (on the worker, or in the web process for what no worker
  scored), the lecturer page's p90, and the leaderboard itself (every run ranked, none waiting).
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from pathlib import Path

LECTURER_KEY = "bench lecture key"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def p(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


def challenge_store(runs_dir: Path):
    from cnnkit import challenge

    return challenge.ChallengeStore(Path(runs_dir).resolve() / ".class" / challenge.FOLDER)


def open_challenge(runs_dir: Path):
    from cnnkit import datasets

    store = challenge_store(runs_dir)
    ch = store.open_share(datasets.load("mnist"), 0.2, seed=3)
    print(f"challenge open: {ch.describe()}")
    return store, ch


class LecturerPage(threading.Thread):
    """The lecturer's Class page in its own Chromium, read every 0.3 s: (time, runs + training + waiting)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True, name="lecturer")
        self.url, self.samples, self.error = url, [], ""
        self.parts: list[tuple[int, int, int]] = []   # (runs, training, waiting) of each sample
        self.ready, self.done = threading.Event(), threading.Event()

    def run(self) -> None:
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
                page.set_default_timeout(180_000)
                page.goto(self.url + "/class")
                page.wait_for_selector(IDLE)
                page.get_by_label("Lecturer key").fill(LECTURER_KEY)
                page.get_by_role("button", name="Unlock").click()
                page.get_by_test_id("stMetric").first.wait_for()
                self.ready.set()
                while not self.done.is_set():
                    try:
                        texts = page.get_by_test_id("stMetric").all_inner_texts()
                    except Exception:   # the page is being redrawn (a run saved reruns it whole)
                        texts = []
                    got = {}
                    for t in texts:
                        m = re.match(r"\s*(.+?)\s*\n\s*([\d,]+)\s*$", t)
                        if m:
                            got[m.group(1)] = int(m.group(2).replace(",", ""))
                    if {"Runs", "Training now", "Waiting"} <= set(got):
                        self.samples.append((time.time(), got["Runs"] + got["Training now"] + got["Waiting"]))
                        self.parts.append((got["Runs"], got["Training now"], got["Waiting"]))
                    page.wait_for_timeout(300)
                browser.close()
        except Exception as err:
            self.error = f"{type(err).__name__}: {err}"
            self.ready.set()

    def seen_after(self, presses: list[float], unseen: set[int] = frozenset()) -> list[float]:
        """Seconds from each Start (the k-th of those that reached the server) until the page first showed k jobs
        and runs together. A press whose student saw nothing (`unseen`: the server never answered that session, so
        it may never have reached the registry) is left out and does not count towards k: counting it would leave
        every later press one short for ever."""
        out = []
        k = 0
        for i, t in enumerate(presses):
            if i in unseen:
                continue
            k += 1
            first = next((s for s, n in self.samples if n >= k and s >= t - 0.05), None)
            out.append(first - t if first is not None else float("inf"))
        return out


def report(runs_dir: Path, store, ch, lecturer: LecturerPage | None, presses: list[float],
           scorer_cpu: float | None = None, students_saw: list[float] | None = None,
           unseen: set[int] = frozenset()) -> None:
    from cnnkit import challenge, classroom, runs

    scores = store.scores(ch)
    class_runs = [r for r in runs.list_runs(root=runs_dir, only_owner=False) if not r.shared]
    lag, from_worker, how = [], [], {}
    for r in class_runs:
        s = scores.get(r.id)
        if s is None or "recorded" not in s:
            continue
        lag.append(s["recorded"] - r.created)
        end = r.metrics.get("worker_ended")
        if end and not s.get("copied_from"):   # a reused run's copy carries its source's metrics
            from_worker.append(s["recorded"] - end)
        kind = "copied" if s.get("copied_from") else ("worker" if s.get("by") == "worker" else "web process")
        how.setdefault(kind, []).append(s)
    print(f"challenge: {len(scores)} of {len(class_runs)} runs scored; "
          + ", ".join(f"{k}: {len(v)}" for k, v in sorted(how.items())))
    if lag:
        print(f"finish → on the leaderboard (run saved → its score kept): p50 {p(lag, .5):.2f} s, p90 "
              f"{p(lag, .9):.2f} s, max {max(lag):.2f} s (target p90 ≤ 5 s; the Class page's board then "
              "polls every 3 s)")
    if from_worker:
        print(f"  from the worker's end (result sent, run written, score kept): p50 {p(from_worker, .5):.2f} s, "
              f"p90 {p(from_worker, .9):.2f} s")
    for kind in ("worker", "web process"):
        ms = [s["ms"] for s in how.get(kind, []) if "ms" in s]
        if ms:
            print(f"scoring cost per run, {kind}: median {statistics.median(ms):.0f} ms, p90 {p(ms, .9):.0f} ms, "
                  f"max {max(ms):.0f} ms (n={len(ms)}, {ch.hidden_count} hidden images)")
    book = classroom.ClassBook(Path(runs_dir).resolve() / ".class" / classroom.CLASS_FILE)
    t = time.perf_counter()
    board = challenge.leaderboard(ch, store, book, best_only=False, root=runs_dir)
    board_ms = (time.perf_counter() - t) * 1000
    web_ms = [s["web_ms"] for s in scores.values() if "web_ms" in s]
    if web_ms:
        print(f"web process CPU to keep a worker's score (per computation, JSON read + write): median "
              f"{statistics.median(web_ms):.1f} ms, total {sum(web_ms) / 1000:.2f} s")
    if scorer_cpu is not None:
        print(f"web process CPU of the scorer thread (polls every second; idle on unchanged files) over the whole "
              f"lecture: {scorer_cpu:.2f} s")
    print(f"one leaderboard read with {len(class_runs)} runs (what the Class page's board does every 3 s): "
          f"{board_ms:.0f} ms here")
    print(f"leaderboard: {len(board.entries)} runs ranked, {board.waiting} waiting; best "
          f"{board.entries[0].accuracy:.1%}" if board.entries else "leaderboard: empty")
    if lecturer is not None:
        if lecturer.error:
            print(f"lecturer's page: failed ({lecturer.error})")
        else:
            seen = lecturer.seen_after(presses, unseen)
            if unseen:
                print(f"lecturer's Class page: {len(unseen)} presses left out (their students' own pages showed "
                      "nothing: the server never answered those sessions)")
            shown = [s for s in seen if s != float("inf")]
            if len(shown) < len(seen):
                on_disk = len([r for r in class_runs])
                last = lecturer.parts[-1] if lecturer.parts else None
                print(f"lecturer's Class page: {len(seen) - len(shown)} Starts never counted; the most it counted "
                      f"was {max((n for _, n in lecturer.samples), default=0)} (runs + training + waiting); its last "
                      f"read (runs, training, waiting) {last}, {on_disk} runs on disk")
            print(f"lecturer's Class page (Chromium, 1280×720) saw each Start after p50 {p(shown, .5):.2f} s, p90 "
                  f"{p(seen, .9):.2f} s, max {max(seen):.2f} s (n={len(seen)}, {len(lecturer.samples)} reads; "
                  "target p90 ≤ 3 s)")
            if students_saw:
                # the student's own page shows the Start once the press has reached the registry: what is left is
                # the lecturer's page (its poll, its run, the browser)
                own = [o for i, o in enumerate(students_saw) if i not in unseen]
                after = [s - o for s, o in zip(seen, own, strict=True) if s != float("inf")]
                print(f"  of which after the student's own page showed it: p50 {p(after, .5):.2f} s, p90 "
                      f"{p(after, .9):.2f} s, max {max(after):.2f} s")


def thread_cpu(pid: int, name: str) -> float | None:
    """CPU seconds of the thread of process `pid` the operating system knows by `name` (Linux), or None."""
    import os

    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            if (task / "comm").read_text().strip() == name:
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / tick   # utime, stime
        except OSError:
            continue
    return None
