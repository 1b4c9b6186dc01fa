"""Benchmark: the class challenge's web-process scorer (cnnkit/challenge_scoring.py `Scorer`): the path for runs no
training worker scored (runs that finished before the challenge opened, a lecturer's hidden file). A run trained
while the challenge is open is scored on its worker and is on the leaderboard as it is saved: that path is measured
in a whole lecture by `bench/bench_lecture.py --part lecture --challenge`.

Prints figures, asserts nothing (the machine is shared and noisy: say the load average next to any figure). Run:

    python bench/bench_challenge.py                 # 40 runs, the presets' models, MNIST's hidden 20 %
    python bench/bench_challenge.py --runs 100 --every 0.2

Measured:
- scoring cost per run (ms: loading the model file outside the runs' cache + one eager pass over the hidden set),
  per architecture;
- from a run's folder appearing to its score being on the leaderboard (the scoring thread polls once a second):
  p50, p90, max — runs saved one every `--every` seconds, as a lecture's jobs finish;
- the page's side: the time a page's own work (reading the leaderboard, which every Class page poll does) takes
  on the calling thread with the scorer idle and while it scores, and which thread the scores were made on.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CNNKIT_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--every", type=float, default=0.3, help="seconds between two runs finishing")
    ap.add_argument("--share", type=float, default=0.2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-challenge-"))
    os.environ["CNNKIT_RUNS_DIR"] = str(work / "runs")

    from cnnkit import challenge, challenge_scoring, classroom, datasets, identity, presets, runs

    ds = datasets.load("mnist")
    names = [n for n in ("lecture", "fast_cpu", "single_conv", "keras_convnet") if n in presets.PRESETS]
    models = {n: presets.get(n).spec.to_keras(ds.num_classes) for n in names}
    store = challenge.ChallengeStore()
    ch = store.open_share(ds, args.share, seed=1)
    print(f"dataset: {ds.title} from {ds.source}, {ch.hidden_count:,} hidden test images "
          f"({args.share:.0%} of {len(ds.y_test):,}); load average {open('/proc/loadavg').read().split()[:3]}")

    book = classroom.book()

    def page_work() -> float:
        t = time.perf_counter()
        challenge.leaderboard(store.current(), store, book)
        return (time.perf_counter() - t) * 1000

    # the page's work with nothing to score
    owners = [identity.new_owner_id() for _ in range(args.runs)]
    idle_ms = [page_work() for _ in range(20)]

    challenge_scoring.Scorer(store, lambda name: ds, interval=1.0).start()   # as the web process runs it
    busy_ms: list[float] = []
    stop = threading.Event()

    def poll_like_a_page():
        while not stop.is_set():
            busy_ms.append(page_work())
            time.sleep(0.05)

    poller = threading.Thread(target=poll_like_a_page, name="page")
    poller.start()
    saved = {}
    for i in range(args.runs):
        name = names[i % len(names)]
        run = runs.save_run(models[name], presets.get(name).spec, {"epochs": 1}, {"loss": [1.0]},
                            {"test_accuracy": 0.1, "epochs_run": 1}, ds.name, owner=owners[i], title=name)
        saved[run.id] = (name, run.created)
        time.sleep(args.every)
    deadline = time.time() + 120
    while len(store.scores(ch)) < args.runs and time.time() < deadline:
        time.sleep(0.1)
    stop.set()
    poller.join()
    scores = store.scores(ch)
    lag = [scores[r]["scored"] - created for r, (_, created) in saved.items() if r in scores]
    print(f"runs scored: {len(scores)} of {args.runs}, by threads {sorted({s['by'] for s in scores.values()})}")
    for name in names:
        ms = [scores[r]["ms"] for r, (n, _) in saved.items() if n == name and r in scores]
        params = presets.get(name).spec.summary().total_params
        print(f"  scoring cost per run, {name:14s} ({params:>9,} parameters): median {statistics.median(ms):6.0f} ms, "
              f"max {max(ms):6.0f} ms  (n={len(ms)})")
    print(f"finished → on the leaderboard: p50 {pct(lag, .5):.2f} s, p90 {pct(lag, .9):.2f} s, max {max(lag):.2f} s")
    print(f"a page's leaderboard read on its own thread: idle p50 {pct(idle_ms, .5):.1f} ms (with 0 runs); "
          f"while scoring p50 {pct(busy_ms, .5):.1f} ms, p90 {pct(busy_ms, .9):.1f} ms (n={len(busy_ms)}, up to "
          f"{args.runs} runs)")
    print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
