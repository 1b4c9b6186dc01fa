"""What runs inside a Dask worker process: the job's entry point and the progress it streams back.

- `train_on_worker`: builds the model from the spec dict, loads a catalogue dataset itself (an uploaded
  one arrives scattered, once, keyed by its content hash), runs the same `TrainingJob` as the command
  line, streams progress through a `distributed.Queue` (only what is new, at most a few messages a
  second), checks a `distributed.Event` for Stop, and returns the Run's files (model bytes, history,
  metrics). The web process writes the Run: no shared disk.
- `yield_to_web` / `worker_nice`: a worker's CPU priority below the web server's.
- The messages: `ProgressPublisher` (worker side: only what changed) and `ProgressMirror` (web side:
  the latest state built up from them), and the names of a job's progress queue and Stop event.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit import heap, model_pool, settings
from cnnkit.errors import TrainingError, UserError
from cnnkit.hyper import Hyper
from cnnkit.jobs.keys import dataset_fingerprint
from cnnkit.progress import JobSnapshot, JobState
from cnnkit.training import TrainingJob

PUBLISH_SECONDS = 0.4      # a worker sends progress at most this often (≤ 2.5 messages a second)
STOP_CHECK_SECONDS = 0.2   # how often a worker looks at its Stop event
WORKER_NICE = settings.SETTINGS["worker_nice"].default   # workers yield the CPU to the web server (yield_to_web)


# --- a worker's CPU priority ------------------------------------------------------------------------
# The niceness this process started at: a worker inherits the web server's through its nanny. Read once, before
# `yield_to_web` lowers anything, so a server started under `nice` (a benchmark at 10, say) still has its
# workers below it instead of level with it.
STARTED_AT_NICE = os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else 0


def worker_nice() -> int:
    """How much lower than the web server a worker process runs (CNNKIT_WORKER_NICE, 0–19; default 10)."""
    return min(19, settings.get("worker_nice", TrainingError))


def yield_to_web(nice: int | None = None) -> int:
    """Lower this process's CPU priority `nice` steps below the niceness it started at (the web server's, for an
    embedded worker; at most 19, a Unix niceness: higher yields more), thread by thread.

    Training uses every core it can get; on a machine it shares with the web server (the embedded cluster,
    Community Cloud) the pages of the whole class would wait behind it. At niceness 10 the kernel gives a
    busy training process about a tenth of what it gives the web server when both want the CPU, and all of
    it when the web server is idle, so training loses almost nothing. On Linux a niceness belongs to each
    thread and a new thread inherits its creator's, so every thread there now is lowered (TensorFlow's
    pools, made later, inherit it). Never raises priority; returns the niceness set (0 where unsupported
    or turned off).
    """
    nice = worker_nice() if nice is None else nice
    if nice <= 0 or not hasattr(os, "setpriority"):
        return 0
    nice = min(19, STARTED_AT_NICE + nice)
    tasks = Path("/proc/self/task")
    tids = [int(t) for t in os.listdir(tasks)] if tasks.is_dir() else [0]
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:    # the thread has just ended, or this system says no
            pass
    return nice


# --- TensorFlow in a worker ---------------------------------------------------------------------------
_IMPORT_LOCK = threading.Lock()


def import_keras() -> None:
    """Import Keras in this worker process, TensorFlow's threads set first (CNNKIT_WORKER_THREADS). The warm-up
    thread and a job's thread both call it: one at a time, since TensorFlow imported from two threads at once
    can stop with Python's import deadlock error.

    Then everything imported so far is moved out of the garbage collector's sight (`gc.freeze`): TensorFlow and
    Keras leave about a million objects that every full collection would walk again — 1–3 s each on a busy
    2-core machine, after every job (`clear_session`) and now and then during training — and none of them is
    ever garbage."""
    with _IMPORT_LOCK:
        if _WORKER["frozen"]:
            return
        heap.tune()    # Dask started this process with the heap pinned (cnnkit.heap)
        set_tf_threads()
        import keras  # noqa: F401

        gc.freeze()
        _WORKER["frozen"] = True


def set_tf_threads() -> int | None:
    """TensorFlow's intra- and inter-op threads in this process (CNNKIT_WORKER_THREADS), set before its first op;
    None when not set (TensorFlow's own: one per core) or when it is too late (TensorFlow already running)."""
    threads = settings.get("worker_threads", TrainingError)
    if not threads:
        return None
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:   # TensorFlow already started: the warm-up set it, or a job came first
        return None
    return threads


# --- progress across processes -------------------------------------------------------------------
# Snapshot fields that the worker does not own (the web process fills them per student).
_LOCAL_FIELDS = {"id", "owner", "title", "dataset_name", "hyper", "queue_position", "run_path",
                 "shared_with", "wait_seconds"}
_GROWING_FIELDS = {"history", "running_points"}   # only new entries cross the wire


def stop_event_name(dask_key: str) -> str:
    return f"{dask_key}-stop"


def progress_queue_name(dask_key: str) -> str:
    return f"{dask_key}-progress"


def _plain(v):
    if isinstance(v, JobState):
        return v.value
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


class ProgressPublisher:
    """Worker side: turns successive JobSnapshots into small messages holding only what changed —
    changed scalar fields, new epochs of history, new running-curve points."""

    def __init__(self) -> None:
        self._scalars: dict[str, Any] = {}
        self._history_sent: dict[str, int] = {}
        self._points_sent = 0

    def message(self, snap: JobSnapshot, **extra) -> dict | None:
        msg: dict[str, Any] = {}
        scalars = {}
        for f in dataclasses.fields(snap):
            if f.name in _LOCAL_FIELDS or f.name in _GROWING_FIELDS:
                continue
            value = _plain(getattr(snap, f.name))
            if self._scalars.get(f.name, object()) != value:
                scalars[f.name] = value
        self._scalars.update(scalars)
        if scalars:
            msg["fields"] = scalars
        new_history = {}
        for k, values in snap.history.items():
            sent = self._history_sent.get(k, 0)
            if len(values) > sent:
                new_history[k] = [float(v) for v in values[sent:]]
                self._history_sent[k] = len(values)
        if new_history:
            msg["history"] = new_history
        points = list(getattr(snap, "running_points", None) or ())
        if len(points) > self._points_sent:
            msg["points"] = [[float(x) for x in p] for p in points[self._points_sent:]]
            self._points_sent = len(points)
        msg.update({k: _plain(v) for k, v in extra.items()})
        return msg or None


class ProgressMirror:
    """Web side: the latest state of one computation, built up from the worker's messages."""

    def __init__(self, epochs: int, batches: int) -> None:
        self.fields: dict[str, Any] = {"state": JobState.RUNNING.value, "phase": "preparing", "epoch": 0,
                                       "epochs": epochs, "batch": 0, "batches": batches, "batch_loss": None,
                                       "batch_accuracy": None, "elapsed": 0.0, "eta": None, "message": "",
                                       "metrics": {}}
        self.history: dict[str, list[float]] = {}
        self.points: list[tuple[float, ...]] = []
        self.received = time.time()
        self.messages = 0
        self.worker: str | None = None
        self.pid: int | None = None

    def apply(self, msg: dict) -> None:
        self.messages += 1
        self.received = time.time()
        self.fields.update(msg.get("fields") or {})
        for k, values in (msg.get("history") or {}).items():
            self.history.setdefault(k, []).extend(float(v) for v in values)
        self.points.extend(tuple(p) for p in msg.get("points") or ())
        self.worker = msg.get("worker", self.worker)
        self.pid = msg.get("pid", self.pid)

    def live(self) -> dict[str, Any]:
        """The fields, with elapsed time and time left moved on by the seconds since the last message."""
        f = dict(self.fields)
        if f.get("phase") in ("training", "validating"):
            since = max(0.0, time.time() - self.received)
            f["elapsed"] = float(f.get("elapsed") or 0.0) + since
            if f.get("eta") is not None:
                f["eta"] = max(0.0, float(f["eta"]) - since)
        return f


# --- the worker's entry point ---------------------------------------------------------------------------
_WORKER: dict[str, Any] = {"jobs": 0, "datasets": {}, "frozen": False}


def _catalogue_on_worker(name: str, fingerprint: str):
    from cnnkit import datasets

    cached = _WORKER["datasets"].get(name)
    if cached is None:
        ds = datasets.load(name)
        cached = (ds, dataset_fingerprint(ds))
        _WORKER["datasets"] = {name: cached}   # one catalogue dataset at a time per worker
    ds, fp = cached
    if fp != fingerprint:
        raise TrainingError(
            f"The training worker's copy of {ds.title} ({ds.source_text.rstrip('.')}) is not the app's. "
            "Give the workers the same data as the app (the same Keras cache or CNNKIT_OFFLINE setting), "
            "or upload the dataset as a file.")
    return ds


def _model_bytes(model) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        return path.read_bytes()


def train_on_worker(dask_key: str, spec_dict: dict, hyper_dict: dict, data, title: str,
                    challenge: dict | None = None) -> dict:
    """One training job, run inside a Dask worker process; returns the Run's files as plain data. With
    `challenge` (the open class challenge's hidden share at Start: cnnkit.challenge_scoring.worker_request) the
    test pass leaves that share out — the run's test metrics count the images students' pages show — and the
    model is scored on the share right after it, under "challenge" (never in the run's metrics)."""
    import psutil
    from distributed import Event, Queue, get_worker

    from cnnkit import challenge_scoring
    from cnnkit.spec import ModelSpec

    began = time.time()
    worker = get_worker()
    import_keras()     # after the warm-up's import, never alongside it
    yield_to_web()     # again: threads started since the worker did (cheap; never raises priority)
    _WORKER["jobs"] += 1
    channel = Queue(progress_queue_name(dask_key))
    stop = Event(stop_event_name(dask_key))
    publisher = ProgressPublisher()
    here = {"worker": worker.address, "pid": os.getpid()}
    try:
        ds = _catalogue_on_worker(data["name"], data["fingerprint"]) if isinstance(data, dict) else data
        got_data = time.time()
        job = TrainingJob(ModelSpec.from_dict(spec_dict), challenge_scoring.tested_on(challenge, ds),
                          Hyper.from_dict(hyper_dict), title=title, save=False, keep_model=True)
    except UserError as err:
        return {"state": JobState.FAILED.value, "message": str(err), "model": None, **here,
                "worker_jobs": _WORKER["jobs"]}
    channel.put(publisher.message(job.snapshot(), **here))
    job.start()
    last = time.monotonic()
    while job.wait(STOP_CHECK_SECONDS).active:
        if stop.is_set():
            job.stop()
        if time.monotonic() - last >= PUBLISH_SECONDS:
            last = time.monotonic()
            msg = publisher.message(job.snapshot())
            if msg:
                channel.put(msg)
    snap = job.snapshot()
    msg = publisher.message(snap)
    if msg:
        channel.put(msg)
    model = job.trained_model
    job.trained_model = None
    score = _challenge_score(challenge, model, ds)
    model_bytes = _model_bytes(model) if model is not None else None
    job.mark("model bytes")
    if model is not None:
        model_pool.give(model)     # the next job of the same shape trains it again, traces and all
    job_ended = time.time()
    metrics = dict(snap.metrics)
    if "phases" in metrics:   # where the job's time went on the worker, from receiving it to returning it
        metrics["phases"] = {"dataset": round(got_data - began, 4), **job.phase_seconds(since=got_data)}
        metrics["worker_began"] = began
    result = {"state": snap.state.value, "message": snap.message, "history": snap.history,
              "metrics": metrics, "model": model_bytes,
              "elapsed": snap.elapsed, **here, "worker_jobs": _WORKER["jobs"],
              "memory_limit": getattr(getattr(worker, "memory_manager", None), "memory_limit", None),
              "challenge": score}
    del model, job
    # One job per process at a time (one thread per worker), so clearing Keras's global state is safe;
    # it keeps memory from creeping across many fits in one process.
    import keras

    keras.backend.clear_session(free_memory=False)   # the collection once, here
    gc.collect()
    heap.trim()
    result["worker_rss"] = psutil.Process().memory_info().rss
    if "phases" in metrics:
        metrics["worker_ended"] = time.time()
        metrics["phases"]["clean up"] = round(metrics["worker_ended"] - job_ended, 4)
    return result


def _challenge_score(request: dict | None, model, ds) -> dict | None:
    """The model's accuracy on the class challenge's hidden share, scored here while the model is in memory
    (cnnkit.challenge_scoring.score_on_worker), or None."""
    if not request or model is None:
        return None
    from cnnkit import challenge_scoring

    return challenge_scoring.score_on_worker(request, model, ds)   # the whole split's hidden share
