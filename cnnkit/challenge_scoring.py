"""Scoring the class challenge: every finished run of the class on the challenge's dataset gets its accuracy on
the hidden test set (`challenge.py` owns the challenge, the hidden set, the stored scores and the leaderboard).

Two ways, so that a run is on the leaderboard within seconds of finishing and no page ever waits:
- On the training worker, right after its test pass: the registry asks `worker_request` at launch (the
  challenge's moment, share, seed and count — never an image or a label), the worker runs `score_on_worker`
  on the model it already holds, drawing the same hidden share from its own copy of the dataset, and the
  registry keeps the score as it saves the run (`record_worker_score`; a finished run copied for another
  student takes its source's score, `record_copy`). Its cost is one batched pass on the worker, none in the
  web process but a small JSON write.
- `Scorer`, a daemon thread of the web process, scores what no worker did: runs that finished before the
  challenge opened, a lecturer's hidden file, a worker that could not; the model loaded outside the runs'
  model cache, an identical model (the same job key) scored once, and when nothing changed on disk since its
  last look it reads four file times and sleeps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit import runs
from cnnkit.challenge import Challenge, ChallengeStore, challenge_runs, hidden_indices, visible_dataset
from cnnkit.datasets import Dataset

SCORE_BATCH = 256


def score_model(model: Any, x: np.ndarray, y: np.ndarray, batch: int = SCORE_BATCH) -> float:
    """Accuracy of a Keras model on uint8 images, one batch at a time (eager: nothing is traced)."""
    right = 0
    for lo in range(0, len(y), batch):
        xb = np.asarray(x[lo:lo + batch], dtype=np.float32) / np.float32(255.0)
        out = np.asarray(model(xb, training=False))
        right += int((out.argmax(axis=1) == y[lo:lo + batch]).sum())
    return right / len(y) if len(y) else 0.0


def score_run(run: runs.Run, x: np.ndarray, y: np.ndarray) -> dict:
    """A run's hidden accuracy as the score record kept for it (or why it has none)."""
    import keras

    from cnnkit.keras_guard import guarded

    start = time.perf_counter()
    try:
        with guarded():   # no clear_session in the middle of the load; the run's model cache stays untouched
            model = keras.saving.load_model(run.model_path, safe_mode=True, compile=False)
        if tuple(model.input_shape[1:]) != tuple(x.shape[1:]):
            return {"error": "its model takes other images than the hidden set's", "by": _thread_name()}
        acc = score_model(model, x, y)
    except Exception as err:   # a damaged or foreign model file: say so once, never retry it in a loop
        return {"error": f"its model could not be scored ({type(err).__name__})", "by": _thread_name()}
    return {"accuracy": acc, "images": int(len(y)), "ms": (time.perf_counter() - start) * 1000,
            "scored": time.time(), "by": _thread_name()}


# --- scoring on the training worker: the run is on the leaderboard when it is saved ----------------------
def worker_request(dataset: Any, store: ChallengeStore | None = None) -> dict | None:
    """What a training worker needs to score its model on the open challenge's hidden share right after its
    test pass — the challenge's moment, share, seed and count, never an image or a label (the worker draws
    the same share from its own copy of the dataset, checked by fingerprint). None when no challenge is open
    on a share of this dataset's test split (a lecturer's file is scored by the web process's `Scorer`)."""
    ch = (store or ChallengeStore()).current()
    if (ch is None or ch.source != "share" or getattr(dataset, "name", None) != ch.dataset_name
            or getattr(dataset, "source", "") == "file"):
        return None
    return {"opened": ch.opened, "dataset_name": ch.dataset_name, "share": ch.share, "seed": ch.seed,
            "hidden_count": ch.hidden_count}


def open_request(dataset: Any) -> dict | None:
    """`worker_request` for a Start: the open challenge's share of this dataset's test split, asked once when a
    job is submitted (the job's key and its test pass follow it); None when there is none or when the class
    folder cannot be read (a challenge file that cannot be read never stops a job from starting)."""
    try:
        return worker_request(dataset)
    except Exception:
        logging.getLogger(__name__).exception("cnnkit: the class challenge's request for a job")
        return None


def tested_on(request: dict | None, ds: Dataset) -> Dataset:
    """The dataset a job trains and tests on: with a challenge request (`worker_request`) for this dataset, the
    same training split and the test split without the hidden share — the images the students' pages use
    (`challenge.visible_dataset`), so the test accuracy a student's job reports never counts a hidden image;
    else `ds` itself."""
    if not request or ds.name != request.get("dataset_name"):
        return ds
    ch = Challenge(dataset_name=ds.name, dataset_title=ds.title, source="share",
                   hidden_count=int(request["hidden_count"]), opened=float(request["opened"]),
                   share=float(request["share"]), seed=int(request["seed"]))
    return visible_dataset(ds, ch)


def score_on_worker(request: dict | None, model: Any, ds: Dataset) -> dict | None:
    """On the worker, after the test pass: the trained model's accuracy on the hidden share (one batched
    pass), as a score record for `record_worker_score`; None when there is nothing to score or the worker's
    dataset does not give the same share (the web process's `Scorer` then scores the run)."""
    if not request or model is None or ds.name != request.get("dataset_name"):
        return None
    start = time.perf_counter()
    try:
        idx = hidden_indices(ds.y_test, float(request["share"]), int(request["seed"]))
        if len(idx) != int(request["hidden_count"]) or tuple(model.input_shape[1:]) != tuple(ds.x_test.shape[1:]):
            return None
        acc = score_model(model, ds.x_test[idx], ds.y_test[idx])
    except Exception:   # never fail a student's job over the challenge: the web process's scorer tries again
        return None
    return {"opened": request["opened"], "accuracy": acc, "images": int(len(idx)),
            "ms": (time.perf_counter() - start) * 1000, "scored": time.time(), "by": "worker"}


def record_worker_score(score: dict | None, run_ids: Iterable[str], store: ChallengeStore | None = None) -> bool:
    """Keep a worker's score for every run saved from its result (students who shared one computation each
    get theirs) — only if the challenge it was made for is still the open one. True when kept."""
    cpu = time.thread_time()
    ids = list(run_ids)
    if not score or not ids:
        return False
    store = store or ChallengeStore()
    ch = store.current()
    if ch is None or ch.opened != score.get("opened"):
        return False
    record = {k: v for k, v in score.items() if k != "opened"}
    record["web_ms"] = round((time.thread_time() - cpu) * 1000, 3)   # this process's CPU for it (the bench's figure)
    store.record_many(ch, {run_id: record for run_id in ids})
    return True


def record_copy(source_id: str, copy_id: str, store: ChallengeStore | None = None) -> bool:
    """A finished run copied for another student (the same model file): the source's score, if it has one."""
    store = store or ChallengeStore()
    ch = store.current()
    found = store.scores(ch).get(source_id) if ch is not None else None
    if not found or "accuracy" not in found:
        return False
    store.record_many(ch, {copy_id: dict(found, copied_from=source_id)}, replace=False)
    return True


class Scorer:
    """The web process's scoring thread, for the runs no worker scored: every `interval` seconds (or at once
    on `poke`) it scores the runs of the challenge's dataset that have no score yet, one after another
    (a model file loaded and one batched pass; an identical model — the same job key — once); when nothing
    changed on disk since its last look it reads four file times and sleeps. Pages only read the scores."""

    THREAD_NAME = "cnnkit-challenge-scorer"
    GRACE_SECONDS = 1.0   # a run the job poller has just saved gets its worker's score in milliseconds

    def __init__(self, store: ChallengeStore, dataset_for: Callable[[str], Dataset], interval: float = 1.0,
                 root: Path | None = None) -> None:
        self.store, self.dataset_for, self.interval, self.root = store, dataset_for, interval, root
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._seen: tuple | None = None   # what the disk looked like when nothing was left to do
        self.last_error = ""
        self.stats = {"passes": 0, "scored": 0, "copied": 0, "cpu_seconds": 0.0}

    def start(self) -> Scorer:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self.THREAD_NAME, daemon=True)
                self._thread.start()
        return self

    def poke(self) -> None:
        self._seen = None
        self._wake.set()

    def _loop(self) -> None:
        _name_os_thread("cnnkit-scorer")   # so `top -H` and bench/bench_lecture.py --challenge find its CPU
        while True:
            cpu = time.thread_time()
            try:
                self.score_pending()
                self.last_error = ""
            except Exception as err:   # a bad moment (a dataset that cannot load): try again next round
                self.last_error = f"{type(err).__name__}: {err}"
                self._seen = None
            self.stats["cpu_seconds"] += time.thread_time() - cpu
            self._wake.wait(self.interval)
            self._wake.clear()

    def _stamp(self) -> tuple:
        root = Path(self.root) if self.root is not None else runs.runs_dir()
        folders = []
        for d in (root, runs.shared_runs_dir()):
            try:
                folders.append(d.stat().st_mtime_ns)
            except OSError:
                folders.append(0)
        return (*folders, *self.store.changed())

    def score_pending(self) -> list[str]:
        """Score every run without a score (copy the score of an identical model); returns their ids."""
        stamp = self._stamp()
        if stamp == self._seen:
            return []
        self.stats["passes"] += 1
        challenge = self.store.current()
        if challenge is None:
            self._seen = stamp
            return []
        done = self.store.scores(challenge)
        fresh = time.time() - self.GRACE_SECONDS
        every = challenge_runs(challenge, self.root)
        found = [r for r in every if r.id not in done]
        unscored = [r for r in found if not (r.extra.get("job_key") and r.created > fresh)]
        self._seen = stamp if len(unscored) == len(found) else None   # come back for the fresh ones
        if not unscored:
            return []
        by_key = {}   # job key → a score: an identical computation's model gives the same answer
        for r in every:
            s = done.get(r.id)
            if s and "accuracy" in s and r.extra.get("job_key"):
                by_key[r.extra["job_key"]] = (r.id, s)
        data: tuple[np.ndarray, np.ndarray] | None = None
        scored = []
        for run in sorted(unscored, key=lambda r: r.created):
            if run.id in self.store.scores(challenge):
                continue   # the job poller kept its worker's score meanwhile
            key = run.extra.get("job_key")
            if key in by_key:
                source_id, s = by_key[key]
                self.store.record_many(challenge, {run.id: dict(s, copied_from=source_id)}, replace=False)
                self.stats["copied"] += 1
            else:
                if data is None:
                    ds = self.dataset_for(challenge.dataset_name) if challenge.source == "share" else None
                    data = self.store.hidden_set(challenge, ds)
                score = score_run(run, *data)
                # a worker's score that arrived meanwhile stays (it scored the model it trained)
                self.store.record_many(challenge, {run.id: score}, replace=False)
                self.stats["scored"] += 1
                if key and "accuracy" in score:
                    by_key[key] = (run.id, score)
            scored.append(run.id)
        return scored


def _thread_name() -> str:
    return threading.current_thread().name


def _name_os_thread(name: str) -> None:
    """Give this thread its name in the operating system too (Linux: /proc/<pid>/task/<tid>/comm), or nothing."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)   # 15 = PR_SET_NAME
    except Exception:   # not Linux, or no prctl: the name is only for people looking
        pass
