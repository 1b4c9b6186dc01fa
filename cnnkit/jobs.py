"""Where training jobs run: Dask worker processes, never the web server.

What this module owns:
- `connect()`: the `distributed.Client` of this process. Without configuration it starts an
  embedded `LocalCluster` of worker *processes* (one thread each; `CNNKIT_WORKERS` of them, by
  default one per two CPU cores; each with a memory limit). With `CNNKIT_SCHEDULER=tcp://host:8786`
  it connects to an existing cluster instead (`dask scheduler` / `dask worker`, dask-jobqueue,
  dask-kubernetes). Both are the same code path: the embedded cluster is a real cluster.
- Job keys: `job_key(spec, hyper, fingerprint)` hashes what a job computes, so identical
  submissions share one computation and a finished identical Run is reused at once.
- `train_on_worker`: what a worker runs. It builds the model from the spec dict, loads a catalogue
  dataset itself (an uploaded one arrives scattered, once, keyed by its content hash), runs the same
  `TrainingJob` as the command line, streams progress through a `distributed.Queue` (only what is
  new, at most a few messages a second), checks a `distributed.Event` for Stop, and returns the
  Run's files (model bytes, history, metrics). The web process writes the Run: no shared disk.
- `JobRegistry`: the web process's view. One active or queued job per student, the queue served
  round-robin by student (a student's second job waits behind everyone's first), the cost of a job
  before it starts (FLOPs per image × images × epochs on this server's measured throughput, plus
  the wait), a per-job time cap in class mode (`CNNKIT_JOB_SECONDS`), faults turned into sentences,
  workers recycled after `CNNKIT_WORKER_JOBS` jobs or when their memory creeps up, and a journal
  of active jobs so that a job lost to a server restart says so.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import logging
import math
import os
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from distributed.diagnostics.plugin import WorkerPlugin

from cnnkit import settings
from cnnkit.errors import TrainingError, UserError
from cnnkit.hyper import Hyper
from cnnkit.progress import JobSnapshot, JobState, format_seconds
from cnnkit.training import TrainingJob, check_compatible, training_cost_warnings

log = logging.getLogger(__name__)

PUBLISH_SECONDS = 0.4      # a worker sends progress at most this often (≤ 2.5 messages a second)
STOP_CHECK_SECONDS = 0.2   # how often a worker looks at its Stop event
POLL_SECONDS = 0.25        # how often the web process drains progress and fills free workers
LOST_WORKER_SECONDS = 60   # an embedded worker away this long is replaced by a fresh nanny and process
RECYCLE_SECONDS = 120      # the longest a recycling waits for its worker to come back

# Before any job has finished on this server: the fast preset trains 5 epochs of full MNIST in about
# 300 s on a 2-core machine, about 4e10 FLOP/s counting forward + backward (3 × forward) passes.
DEFAULT_FLOPS_PER_SECOND = 4e10
DEFAULT_OVERHEAD_SECONDS = 6.0
WORKER_NICE = settings.SETTINGS["worker_nice"].default   # workers yield the CPU to the web server (yield_to_web)


# --- configuration -------------------------------------------------------------------------
def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def worker_count() -> int:
    """CNNKIT_WORKERS, else one worker process per two CPU cores (at least one).

    TensorFlow already spreads one job's batches over every core, so more workers than half
    the cores only make each job slower.
    """
    return settings.get("workers", TrainingError) or max(1, cpu_count() // 2)


def worker_memory_bytes(n_workers: int) -> int:
    """CNNKIT_WORKER_MEMORY (e.g. "2GB"), else 60 % of this machine's (or container's) memory shared
    by the workers, at most 3 GB each. Past 95 % of it Dask's nanny restarts the worker."""
    from distributed.system import MEMORY_LIMIT

    memory = settings.get("worker_memory", TrainingError)
    if memory:
        return memory
    return int(min(3e9, 0.6 * MEMORY_LIMIT / max(1, n_workers)))


def worker_job_limit() -> int:
    """CNNKIT_WORKER_JOBS: a worker process is replaced by a fresh one after this many jobs (default 25)."""
    return settings.get("worker_jobs", TrainingError)


def worker_nice() -> int:
    """How much lower than the web server a worker process runs (CNNKIT_WORKER_NICE, 0–19; default 10)."""
    return min(19, settings.get("worker_nice", TrainingError))


def yield_to_web(nice: int | None = None) -> int:
    """Lower this process's CPU priority to `nice` (a Unix niceness; higher yields more), thread by thread.

    Training uses every core it can get; on a machine it shares with the web server (the embedded cluster,
    Community Cloud) the pages of the whole class would wait behind it. At niceness 10 the kernel gives a
    busy training process about a tenth of what it gives the web server when both want the CPU, and all of
    it when the web server is idle, so training loses almost nothing. On Linux a niceness belongs to each
    thread and a new thread inherits its creator's, so every thread there now is lowered (TensorFlow's
    pools, made later, inherit it). Never raises priority; returns the niceness set (0 where unsupported).
    """
    nice = worker_nice() if nice is None else nice
    if nice <= 0 or not hasattr(os, "setpriority"):
        return 0
    tasks = Path("/proc/self/task")
    tids = [int(t) for t in os.listdir(tasks)] if tasks.is_dir() else [0]
    for tid in tids:
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
        except OSError:    # the thread has just ended, or this system says no
            pass
    return nice


def job_seconds_cap() -> float | None:
    """CNNKIT_JOB_SECONDS: the most estimated seconds one job may take in class mode (None: no cap)."""
    if not settings.get("class_mode"):
        return None
    return settings.get("job_seconds", TrainingError)


def connect(address: str | None = None, n_workers: int | None = None):
    """The Dask client jobs are submitted to: an existing cluster at `address` (or CNNKIT_SCHEDULER),
    else a new embedded LocalCluster of worker processes with one thread each."""
    import dask
    from distributed import Client, LocalCluster

    address = address or settings.get("scheduler", TrainingError)
    if address:
        try:
            client = Client(address, timeout="15s", set_as_default=False)
            client.register_plugin(WarmUp(), name="cnnkit-warm-up")
            return client
        except (OSError, TimeoutError) as err:
            raise TrainingError(f"Could not reach the training cluster at {address} ({err}). Start it with "
                                "`dask scheduler` and `dask worker`, or unset CNNKIT_SCHEDULER to train on "
                                "this server.") from None
    n = n_workers or worker_count()
    dask.config.set({
        # A worker that dies mid-job fails that job with a sentence instead of trying it elsewhere:
        # the usual cause is a model too big for memory, which would only kill the next worker too.
        "distributed.scheduler.allowed-failures": 0,
        # Training holds its arrays in TensorFlow, not in Dask's store: spilling to disk cannot help.
        "distributed.worker.memory.target": False,
        "distributed.worker.memory.spill": False,
        "distributed.worker.memory.pause": False,
        "distributed.worker.memory.terminate": 0.95,
        # A recycled or killed worker is away from the scheduler while its nanny starts a fresh process
        # (up to 4 s for the old one to exit, then a new Python process to start and register). LocalCluster
        # closes a nanny whose worker stays away longer than this, for good; Dask's 15 s default is less
        # than such a restart takes on a busy machine, which left the class with no worker at all.
        # `restore_workers` opens a fresh nanny for any the cluster gave up on.
        "distributed.deploy.lost-worker-timeout": f"{LOST_WORKER_SECONDS}s",
    })
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           memory_limit=worker_memory_bytes(n), dashboard_address=":0",
                           scheduler_port=0, silence_logs=logging.ERROR)
    client = Client(cluster, set_as_default=False)
    client.register_plugin(WarmUp(), name="cnnkit-warm-up")
    return client


def restore_workers(client) -> int:
    """Start a fresh worker process for each one the embedded cluster gave up on; returns how many.

    LocalCluster closes a nanny whose worker has been away from the scheduler for longer than
    `distributed.deploy.lost-worker-timeout` and never opens another by itself; its spec still asks for
    every worker, so asking it to scale to that spec opens the missing ones. Nothing to do on an external
    cluster (`dask worker`'s nanny restarts its own worker).
    """
    from distributed.core import Status

    cluster = getattr(client, "cluster", None)
    spec = getattr(cluster, "worker_spec", None)
    nannies = getattr(cluster, "workers", None)
    if not spec or nannies is None or getattr(cluster, "status", None) in (Status.closing, Status.closed):
        return 0
    missing = len(set(spec) - set(nannies))
    if missing:
        cluster.scale(len(spec))   # thread-safe: it only asks the cluster's event loop to correct its state
    return missing


class WarmUp(WorkerPlugin):
    """Worker plugin, as each worker (or its replacement) starts: lower its CPU priority below the web
    server's (`yield_to_web`), then import Keras in the background, so the first job on it does not wait
    for TensorFlow's 2–3 s import."""

    idempotent = True

    def setup(self, worker=None):
        yield_to_web()
        threading.Thread(target=_import_keras, daemon=True, name="cnnkit-warm-up").start()


def _import_keras() -> None:
    import keras  # noqa: F401


# --- keys ---------------------------------------------------------------------------------------
_FINGERPRINTS: dict[int, str] = {}


def dataset_fingerprint(ds) -> str:
    """A hash of the dataset's arrays and class names, computed once per Dataset object."""
    key = id(ds)
    fp = _FINGERPRINTS.get(key)
    if fp is None:
        h = hashlib.blake2b(digest_size=16)
        for arr in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
            a = np.ascontiguousarray(arr)
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(memoryview(a).cast("B"))
        h.update(json.dumps(list(ds.class_names)).encode())
        fp = _FINGERPRINTS[key] = h.hexdigest()
        weakref.finalize(ds, _FINGERPRINTS.pop, key, None)
    return fp


def job_key(spec, hyper: Hyper, fingerprint: str) -> str:
    """The hash of what a job computes: the layers and input shape, the settings, the data.

    The model's name is left out: two students who built the same layers train the same model.
    """
    spec_dict = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
    spec_dict = {k: v for k, v in spec_dict.items() if k != "name"}
    hyper_dict = hyper.to_dict() if hasattr(hyper, "to_dict") else dict(hyper)
    text = json.dumps({"spec": spec_dict, "hyper": hyper_dict, "data": fingerprint}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


# --- progress across processes -------------------------------------------------------------------
# Snapshot fields that the worker does not own (the web process fills them per student).
_LOCAL_FIELDS = {"id", "owner", "title", "dataset_name", "hyper", "queue_position", "run_path",
                 "shared_with", "wait_seconds"}
_GROWING_FIELDS = {"history", "running_points"}   # only new entries cross the wire


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


def stop_event_name(dask_key: str) -> str:
    return f"{dask_key}-stop"


def progress_queue_name(dask_key: str) -> str:
    return f"{dask_key}-progress"


# --- the worker side --------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {"jobs": 0, "datasets": {}}


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


def train_on_worker(dask_key: str, spec_dict: dict, hyper_dict: dict, data, title: str) -> dict:
    """One training job, run inside a Dask worker process; returns the Run's files as plain data."""
    import psutil
    from distributed import Event, Queue, get_worker

    from cnnkit.spec import ModelSpec

    worker = get_worker()
    yield_to_web()     # again: threads started since the worker did (cheap; never raises priority)
    _WORKER["jobs"] += 1
    channel = Queue(progress_queue_name(dask_key))
    stop = Event(stop_event_name(dask_key))
    publisher = ProgressPublisher()
    here = {"worker": worker.address, "pid": os.getpid()}
    try:
        ds = _catalogue_on_worker(data["name"], data["fingerprint"]) if isinstance(data, dict) else data
        job = TrainingJob(ModelSpec.from_dict(spec_dict), ds, Hyper.from_dict(hyper_dict), title=title,
                          save=False, keep_model=True)
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
    result = {"state": snap.state.value, "message": snap.message, "history": snap.history,
              "metrics": snap.metrics, "model": _model_bytes(model) if model is not None else None,
              "elapsed": snap.elapsed, **here, "worker_jobs": _WORKER["jobs"],
              "memory_limit": getattr(getattr(worker, "memory_manager", None), "memory_limit", None)}
    del model, job
    # One job per process at a time (one thread per worker), so clearing Keras's global state is safe;
    # it keeps memory from creeping across many fits in one process.
    import keras

    keras.backend.clear_session()
    gc.collect()
    result["worker_rss"] = psutil.Process().memory_info().rss
    return result


# --- cost and budget ----------------------------------------------------------------------------------
def training_flops(flops_per_image: float, n_fit: int, n_val: int, epochs: int) -> float:
    """Forward + backward passes (≈ 3 × forward) over the training images, forward over validation, per epoch."""
    return float(flops_per_image) * (3 * n_fit + n_val) * epochs


@dataclass
class Throughput:
    """This server's measured training speed (FLOP/s) and per-job overhead, averaged over recent jobs."""

    flops_per_second: float = DEFAULT_FLOPS_PER_SECOND
    overhead_seconds: float = DEFAULT_OVERHEAD_SECONDS
    samples: int = 0

    overhead_samples: int = 0

    def observe(self, flops: float, train_seconds: float, total_seconds: float | None = None) -> None:
        if not (flops > 0 and train_seconds > 0.05):
            return
        w = 1.0 if self.samples == 0 else 0.3
        self.flops_per_second = (1 - w) * self.flops_per_second + w * flops / train_seconds
        self.samples += 1
        if total_seconds is not None and total_seconds >= train_seconds:
            w = 1.0 if self.overhead_samples == 0 else 0.3
            self.overhead_seconds = (1 - w) * self.overhead_seconds + w * (total_seconds - train_seconds)
            self.overhead_samples += 1

    def seconds(self, flops: float) -> float:
        return flops / self.flops_per_second + self.overhead_seconds


@dataclass(frozen=True)
class JobCost:
    """What a job will cost before it starts, in words a student can act on."""

    flops_per_image: int
    images: int                 # training images per epoch (after the validation split)
    validation_images: int
    epochs: int
    flops: float
    seconds: float              # estimated training time on this server
    wait_seconds: float         # expected wait before it starts
    jobs_ahead: int
    measured_jobs: int          # how many finished jobs the speed was measured on (0: the built-in figure)
    cap_seconds: float | None   # the class's cap per job, if any
    advice: str | None          # how to fit under the cap, when over it

    def words(self) -> str:
        basis = (f"measured on {self.measured_jobs} job{'s' if self.measured_jobs != 1 else ''} here"
                 if self.measured_jobs else "until a job has finished here, a typical 2-core server's speed")
        wait = ("it starts at once" if self.jobs_ahead == 0 else
                f"expected wait about {format_seconds(self.wait_seconds)} ({self.jobs_ahead} "
                f"job{'s' if self.jobs_ahead != 1 else ''} ahead)")
        return (f"{_flops_words(self.flops_per_image)} per image × {self.images:,} training images × "
                f"{self.epochs} epoch{'s' if self.epochs != 1 else ''} ≈ {_flops_words(self.flops)} in all: "
                f"about {format_seconds(self.seconds)} on this server ({basis}); {wait}.")


def _flops_words(x: float) -> str:
    for unit, size in (("TFLOPs", 1e12), ("GFLOPs", 1e9), ("MFLOPs", 1e6), ("kFLOPs", 1e3)):
        if x >= size:
            return f"{x / size:.3g} {unit}"
    return f"{x:.0f} FLOPs"


def fitting_advice(cost_seconds: float, cap: float, *, epochs: int, images: int, flops_per_image: float,
                   throughput: Throughput) -> str:
    """The sentence shown when a job's estimate is over the class cap: what would fit, three ways."""
    budget = max(0.0, cap - throughput.overhead_seconds)
    scale = budget / max(1e-9, cost_seconds - throughput.overhead_seconds)
    ways = []
    fit_epochs = int(math.floor(epochs * scale))
    if 1 <= fit_epochs < epochs:
        ways.append(f"train {fit_epochs} epoch{'s' if fit_epochs != 1 else ''} instead of {epochs}")
    fit_images = int(math.floor(images * scale / 100) * 100)
    if fit_images >= 100:
        ways.append(f"train on about {fit_images:,} images (the Training images setting) instead of {images:,}")
    fit_flops = flops_per_image * scale
    ways.append(f"choose a smaller model (this one needs {_flops_words(flops_per_image)} per image; about "
                f"{_flops_words(fit_flops)} would fit)")
    how = "; or ".join(ways)
    return (f"This job would take about {format_seconds(cost_seconds)} on this server, more than the class limit "
            f"of {format_seconds(cap)} per job. To fit: {how}.")


# --- fairness -------------------------------------------------------------------------------------------
def serve_order(queued: list[Computation]) -> list[Computation]:
    """Round-robin by student: a computation whose students have had fewer jobs so far goes first;
    within a round, first come first served."""
    return sorted(queued, key=lambda c: (c.round, c.seq))


# --- the web side -----------------------------------------------------------------------------------------
@dataclass(eq=False)
class Computation:
    """One unique (spec, hyper, data) training: queued here, then running on the cluster."""

    key: str
    spec: Any
    hyper: Hyper
    dataset: Any
    fingerprint: str
    title: str
    cost: JobCost
    round: int
    seq: int
    jobs: list[Job] = field(default_factory=list)
    state: str = "queued"                 # queued → running → done
    future: Any = None
    dask_key: str = ""
    channel: Any = None
    mirror: ProgressMirror | None = None
    stop_requested: bool = False
    started: float | None = None


class Job:
    """One student's training job as the pages see it: `snapshot()`, `stop()`, `wait()`."""

    def __init__(self, registry: JobRegistry, comp: Computation | None, *, owner: str | None, title: str,
                 dataset_name: str, hyper: Hyper, runs_root: Path | None, key: str) -> None:
        self.id = uuid.uuid4().hex
        self.registry = registry
        self.owner = owner
        self.title = title
        self.dataset_name = dataset_name
        self.hyper = hyper
        self.key = key
        self.runs_root = runs_root
        self.created = time.time()
        self.run = None
        self._comp = comp
        self._final: JobSnapshot | None = None
        self._done = threading.Event()

    @property
    def state(self) -> JobState:
        return self.snapshot().state

    def snapshot(self) -> JobSnapshot:
        return self.registry._snapshot(self)

    def stop(self) -> None:
        self.registry.stop(self)

    def wait(self, timeout: float | None = None) -> JobSnapshot:
        self._done.wait(timeout)
        return self.snapshot()


def _snapshot(**values) -> JobSnapshot:
    names = {f.name for f in dataclasses.fields(JobSnapshot)}
    values["state"] = JobState(values["state"])
    if "running_points" in names:
        values["running_points"] = tuple(tuple(p) for p in values.get("running_points") or ())
    return JobSnapshot(**{k: v for k, v in values.items() if k in names})


def failure_sentence(err: BaseException | None) -> str:
    """A sentence for a job the cluster could not finish."""
    from distributed.scheduler import KilledWorker

    if isinstance(err, KilledWorker):
        return ("The worker process training this job stopped unexpectedly (it was shut down, or the model ran "
                "out of memory), so nothing was saved. Press Start training to try again; if it happens again, "
                "try a smaller model or batch size.")
    if err is None or type(err).__name__ in ("CancelledError", "FutureCancelledError"):
        return ("This job was lost: the training cluster let it go before it finished (a worker or the "
                "scheduler restarted). Press Start training to train it again.")
    return (f"Training failed unexpectedly ({type(err).__name__}: {err}). Try a smaller model or batch size; "
            "if it happens again, tell the lecturer.")


class JobRegistry:
    """Every training job of this web process; the jobs themselves run on a Dask cluster.

    `client` is a `distributed.Client` or a function that makes one (connected in the background, so
    the first page that needs the registry does not wait for the cluster to start).
    """

    def __init__(self, client: Any = None, *, runs_root: Path | str | None = None, slots: int | None = None,
                 worker_jobs: int | None = None, poll_seconds: float = POLL_SECONDS,
                 keep_seconds: float = 6 * 3600) -> None:
        self.runs_root = Path(runs_root) if runs_root is not None else None
        self.fixed_slots = slots
        self.worker_jobs = worker_jobs if worker_jobs is not None else worker_job_limit()
        self.poll_seconds = poll_seconds
        self.keep_seconds = keep_seconds
        self.throughput = Throughput()
        self.stats = {"submitted": 0, "computed": 0, "shared": 0, "reused": 0, "recycled": 0, "restored": 0,
                      "failed": 0}
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._comps: dict[str, Computation] = {}       # active computations by job key
        self._served: dict[str, int] = {}              # jobs started per owner: the round-robin rounds
        self._seq = 0
        self._launches = 0
        self._nonce = uuid.uuid4().hex[:6]             # Dask keys of this registry never meet another's
        self._scattered: dict[str, Any] = {}           # uploaded datasets on the cluster, by fingerprint
        self._finished: dict[str, Path] = {}           # job key → a finished Run to reuse
        self._indexed_roots: set[Path] = set()
        self._throughput_roots: set[Path] = set()
        self._slots = slots or 0
        self._slots_checked = 0.0
        self._recycling: set[str] = set()              # workers being replaced: nothing is launched meanwhile
        self._workers_missing = 0
        self._closed = False
        self._client = None
        self._client_error: str | None = None
        self._client_ready = threading.Event()
        factory = client if callable(client) and not hasattr(client, "submit") else None
        if factory is None:
            self._client = client if client is not None else None
            if client is None:
                factory = connect
            else:
                self._client_ready.set()
        self._owns_client = factory is not None
        if factory is not None:
            threading.Thread(target=self._connect, args=(factory,), daemon=True, name="cnnkit-connect").start()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="cnnkit-jobs")
        self._thread.start()

    # -- the cluster -------------------------------------------------------------------------------
    def _connect(self, factory: Callable, attempts: int = 3) -> None:
        # A busy machine can be too slow for a worker process to start in time: try again before giving up.
        try:
            for attempt in range(1, attempts + 1):
                try:
                    self._client = factory()
                    return
                except Exception as err:  # say why on the page instead of hanging every Start
                    self._client_error = str(err) if isinstance(err, TrainingError) else (
                        f"The training cluster could not start ({type(err).__name__}: {err}).")
                    log.warning("cnnkit: no Dask client (attempt %d of %d): %s", attempt, attempts, err)
                    if attempt < attempts and not self._closed:
                        time.sleep(5)
        finally:
            self._client_ready.set()

    @property
    def client(self):
        """The Dask client (waits up to a minute for the embedded cluster to start)."""
        self._client_ready.wait(60)
        if self._client is None:
            raise TrainingError(self._client_error or "The training cluster is still starting; try again in a moment.")
        return self._client

    @property
    def max_jobs(self) -> int:
        """How many jobs train at once: the cluster's worker threads (one per worker process)."""
        return max(1, self._slots or self.fixed_slots or 1)

    def _refresh_slots(self) -> None:
        if self.fixed_slots or self._client is None or time.time() - self._slots_checked < 2:
            return
        self._slots_checked = time.time()
        try:
            workers = self._client.scheduler_info(n_workers=-1).get("workers", {})
        except TypeError:
            workers = self._client.scheduler_info().get("workers", {})
        except Exception:
            return
        self._slots = sum(int(w.get("nthreads", 1)) for w in workers.values())

    def close(self) -> None:
        """Stop polling; close the client (and the embedded cluster) if this registry made it."""
        self._closed = True
        client = self._client
        if client is not None and self._owns_client:
            cluster = getattr(client, "cluster", None)
            try:
                client.close()
                if cluster is not None:
                    cluster.close()
            except Exception:
                pass

    # -- submitting ------------------------------------------------------------------------------------
    def _root(self, runs_root) -> Path:
        from cnnkit import runs

        return Path(runs_root) if runs_root is not None else (self.runs_root or runs.runs_dir())

    def estimate(self, spec, dataset, hyper: Hyper) -> JobCost:
        """The job's cost before Start: FLOPs, estimated time on this server's measured speed, the wait."""
        h = hyper.validate(num_train=len(dataset.y_train))
        self._learn_throughput(self._root(None))
        n_total = _train_images(h, len(dataset.y_train))
        n_fit, n_val = h.split_sizes(n_total)
        fpi = int(spec.summary().flops)
        flops = training_flops(fpi, n_fit, n_val, h.epochs)
        seconds = self.throughput.seconds(flops)
        with self._lock:
            ahead = [c for c in self._comps.values() if c.state in ("queued", "running")]
            wait = self._wait_for(ahead)
        cap = job_seconds_cap()
        advice = None
        if cap is not None and seconds > cap:
            advice = fitting_advice(seconds, cap, epochs=h.epochs, images=n_fit, flops_per_image=fpi,
                                    throughput=self.throughput)
        return JobCost(flops_per_image=fpi, images=n_fit, validation_images=n_val, epochs=h.epochs, flops=flops,
                       seconds=seconds, wait_seconds=wait, jobs_ahead=len(ahead),
                       measured_jobs=self.throughput.samples, cap_seconds=cap, advice=advice)

    def submit(self, spec, dataset, hyper: Hyper, *, owner: str | None = None, title: str = "",
               runs_root: Path | str | None = None, replace: bool = False, max_active: int = 1) -> Job:
        """Queue a student's job (or share an identical one, or reuse an identical finished Run).

        At most `max_active` active jobs per student (one unless a lecturer allows more in class
        mode): with `replace` their newest job is stopped first.
        """
        h = hyper.validate(num_train=len(dataset.y_train))
        check_compatible(spec, dataset)
        training_cost_warnings(spec, h, len(dataset.y_train))  # over a cost limit: a TrainingError in class mode
        title = title or (getattr(spec, "name", "") or "model")
        root = self._root(runs_root)
        fp = dataset_fingerprint(dataset)
        key = job_key(spec, h, fp)
        if owner is not None:
            current = self.active_job(owner)
            if current is not None and self.active_count(owner) >= max(1, int(max_active)):
                if not replace:
                    word = "waiting" if current.state is JobState.QUEUED else "training"
                    raise TrainingError(f"You already have a job {word} ({current.title}). Stop it, or replace it "
                                        "with these settings, before you start another.")
                current.stop()
        self._index_runs(root)
        with self._lock:
            self.stats["submitted"] += 1
            done_run = self._finished.get(key)
        if done_run is not None and (done_run / "run.json").is_file():
            job = self._reuse(done_run, spec, dataset, h, owner=owner, title=title, root=root, key=key)
            if job is not None:
                return job
        with self._lock:
            comp = self._comps.get(key)
            if comp is not None and not comp.stop_requested and comp.state != "done":
                self.stats["shared"] += 1
                comp.round = min(comp.round, self._served.get(owner, 0))
                job = Job(self, comp, owner=owner, title=title, dataset_name=dataset.name, hyper=h, runs_root=root,
                          key=key)
                comp.jobs.append(job)
                self._jobs[job.id] = job
                self._journal(job, comp.state)
                return job
        cost = self.estimate(spec, dataset, h)
        if cost.advice:
            raise TrainingError(cost.advice)
        if self._client is None and self._client_ready.is_set():
            raise TrainingError(self._client_error or "The training cluster is not available.")
        with self._lock:
            self._seq += 1
            comp = Computation(key=key, spec=spec, hyper=h, dataset=dataset, fingerprint=fp, title=title, cost=cost,
                               round=self._served.get(owner, 0), seq=self._seq)
            job = Job(self, comp, owner=owner, title=title, dataset_name=dataset.name, hyper=h, runs_root=root, key=key)
            comp.jobs.append(job)
            self._comps[key] = comp
            self._jobs[job.id] = job
            self._prune_locked()
            self._journal(job, "queued")
        return job

    def _reuse(self, run_path: Path, spec, dataset, h: Hyper, *, owner, title, root, key) -> Job | None:
        from cnnkit import runs
        from cnnkit.errors import RunError

        try:
            src = runs.load_run(run_path)
            model = src.model_path.read_bytes()
        except (OSError, RunError):
            with self._lock:
                self._finished.pop(key, None)
            return None
        run = runs.save_run(model, src.spec_dict, src.hyper, src.history, src.metrics, dataset_name=dataset.name,
                            root=root, owner=owner, title=title, extra={"job_key": key})
        job = Job(self, None, owner=owner, title=title, dataset_name=dataset.name, hyper=h, runs_root=root, key=key)
        job.run = run
        acc = src.metrics.get("test_accuracy")
        message = ("Finished at once: this model with these settings was already trained on the same data here, "
                   "so you have your own copy of that run."
                   + (f" Test accuracy {acc:.1%}." if isinstance(acc, (int, float)) else ""))
        job._final = _snapshot(
            id=job.id, owner=owner, title=title, dataset_name=dataset.name, state=JobState.FINISHED, phase="done",
            epoch=int(src.metrics.get("epochs_run") or h.epochs), epochs=h.epochs, batch=0, batches=1,
            batch_loss=None, batch_accuracy=None, history=src.history, elapsed=0.0, eta=None, queue_position=None,
            message=message, metrics=dict(src.metrics, reused_from=src.id), run_path=str(run.path),
            hyper=h, running_points=[])
        job._done.set()
        with self._lock:
            self.stats["reused"] += 1
            self._jobs[job.id] = job
        return job

    # -- reading -----------------------------------------------------------------------------------------
    def get(self, job_id: str | None, owner: str | None = None) -> Job | None:
        """The job with this id — only if it belongs to `owner`. A job lost to a server restart comes back
        as a failed job that says so."""
        if not job_id:
            return None
        job_id = str(job_id)
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            job = self._lost_job(job_id)
        if job is None or job.owner != owner:
            return None
        return job

    def active_job(self, owner: str | None) -> Job | None:
        with self._lock:
            mine = [j for j in self._jobs.values() if j.owner == owner and j._final is None]
        return max(mine, key=lambda j: j.created) if mine else None

    def active_count(self, owner: str | None) -> int:
        """How many of this student's jobs are queued or running."""
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.owner == owner and j._final is None)

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def counts(self) -> dict[str, int]:
        with self._lock:
            running = sum(1 for c in self._comps.values() if c.state == "running")
            queued = sum(1 for c in self._comps.values() if c.state == "queued")
        return {"running": running, "queued": queued, "max_jobs": self.max_jobs}

    def queue_order(self) -> list[Computation]:
        with self._lock:
            return serve_order([c for c in self._comps.values() if c.state == "queued"])

    def _remaining(self, comp: Computation) -> float:
        if comp.state == "queued" or comp.mirror is None:
            return comp.cost.seconds
        eta = comp.mirror.live().get("eta")
        if eta is not None:
            return float(eta)
        return max(0.0, comp.cost.seconds - (time.time() - (comp.started or time.time())))

    def _wait_for(self, ahead: list[Computation]) -> float:
        if not ahead:
            return 0.0
        slots = self.max_jobs
        running = sum(1 for c in self._comps.values() if c.state == "running")
        if running < slots and all(c.state == "running" for c in ahead):
            return 0.0
        return sum(self._remaining(c) for c in ahead) / slots

    def _snapshot(self, job: Job) -> JobSnapshot:
        with self._lock:
            if job._final is not None:
                return job._final
            comp = job._comp
            others = sum(1 for j in comp.jobs if j is not job and j._final is None)
            base = dict(id=job.id, owner=job.owner, title=job.title, dataset_name=job.dataset_name,
                        hyper=job.hyper, run_path=None, shared_with=others)
            if comp.state == "queued":
                order = self.queue_order()
                pos = order.index(comp) + 1 if comp in order else 1
                running = [c for c in self._comps.values() if c.state == "running"]
                wait = self._wait_for(running + order[:pos - 1]) if running or pos > 1 else 0.0
                n_fit = comp.cost.images
                return _snapshot(**base, state=JobState.QUEUED, phase="waiting", epoch=0, epochs=job.hyper.epochs,
                                 batch=0, batches=math.ceil(n_fit / job.hyper.batch_size), batch_loss=None,
                                 batch_accuracy=None, history={}, elapsed=0.0, eta=None, queue_position=pos,
                                 message="", metrics={}, wait_seconds=wait, running_points=[])
            m = comp.mirror
            f = m.live()
            f["state"] = JobState.RUNNING.value   # the end is reported once the Run is written here
            if f.get("phase") == "done":
                f["phase"] = "saving"
            return _snapshot(**base, **{k: v for k, v in f.items() if k not in base},
                             history={k: list(v) for k, v in m.history.items()}, queue_position=None,
                             running_points=list(m.points))

    # -- control -------------------------------------------------------------------------------------------
    def stop(self, job: Job) -> None:
        """Stop a student's job. A queued job leaves the line at once; a job shared with other students
        carries on for them; otherwise the worker stops after the current batch and the model so far is saved."""
        event_name = None
        with self._lock:
            if job._final is not None:
                return
            comp = job._comp
            others = [j for j in comp.jobs if j is not job and j._final is None]
            if comp.state == "queued":
                self._end_locked(job, JobState.STOPPED, "Stopped before it started.")
                comp.jobs.remove(job)
                if not others:
                    self._comps.pop(comp.key, None)
            elif others:
                n = len(others)
                self._end_locked(job, JobState.STOPPED, (
                    f"Stopped. The same training carries on for {n} other student{'s' if n != 1 else ''} who chose "
                    "the same model and settings; nothing was saved for you."))
                comp.jobs.remove(job)
            else:
                comp.stop_requested = True
                event_name = stop_event_name(comp.dask_key)
        if event_name is not None and self._client is not None:
            from distributed import Event

            Event(event_name, client=self._client).set()

    def _end_locked(self, job: Job, state: JobState, message: str, *, result: dict | None = None,
                    comp: Computation | None = None) -> None:
        comp = comp or job._comp
        m = comp.mirror if comp is not None else None
        history = (result or {}).get("history") or (dict(m.history) if m else {})
        fields = m.fields if m else {}
        batches = fields.get("batches") or math.ceil((comp.cost.images if comp else 1) / job.hyper.batch_size)
        job._final = _snapshot(
            id=job.id, owner=job.owner, title=job.title, dataset_name=job.dataset_name, state=state, phase="done",
            epoch=int(fields.get("epoch", 0)), epochs=job.hyper.epochs, batch=int(fields.get("batch", 0)),
            batches=int(batches), batch_loss=fields.get("batch_loss"), batch_accuracy=fields.get("batch_accuracy"),
            history={k: list(v) for k, v in history.items()}, elapsed=float((result or {}).get("elapsed")
                                                                             or fields.get("elapsed") or 0.0),
            eta=None, queue_position=None, message=message, metrics=dict((result or {}).get("metrics") or {}),
            run_path=str(job.run.path) if job.run is not None else None, hyper=job.hyper,
            running_points=list(m.points) if m else [])
        job._comp = None
        job._done.set()
        self._unjournal(job)

    # -- the poller --------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._closed:
            busy = False
            try:
                busy = self._tick()
            except Exception:  # the poller must outlive any one job's surprise
                log.exception("cnnkit: job poller")
            time.sleep(self.poll_seconds if busy else 1.0)

    def _tick(self) -> bool:
        with self._lock:
            active = [c for c in self._comps.values() if c.state in ("queued", "running")]
            if active and self._client is None and self._client_ready.is_set():
                # The cluster never came up: say so to everyone waiting instead of leaving them in line.
                for comp in active:
                    self._comps.pop(comp.key, None)
                    for job in [j for j in comp.jobs if j._final is None]:
                        self._end_locked(job, JobState.FAILED, self._client_error or "The training cluster is "
                                         "not available.", comp=comp)
                return False
        if self._client is not None:
            self._keep_workers()
        if not active or self._client is None:
            return bool(active)
        self._refresh_slots()
        for comp in [c for c in active if c.state == "running"]:
            self._drain(comp)
            if comp.future is not None and comp.future.done():
                self._drain(comp)
                self._complete(comp)
        with self._lock:
            running = sum(1 for c in self._comps.values() if c.state == "running")
            free = 0 if self._recycling else self.max_jobs - running   # a job must not start on a worker being replaced
            to_launch = self.queue_order()[:max(0, free)]
            for comp in to_launch:
                self._launch_locked(comp)
        return True

    def _drain(self, comp: Computation) -> None:
        try:
            messages = comp.channel.get(batch=True)
        except Exception:
            return
        with self._lock:
            for msg in messages:
                comp.mirror.apply(msg)

    def _launch_locked(self, comp: Computation) -> None:
        from distributed import Event, Queue

        client = self._client
        self._launches += 1
        comp.dask_key = f"cnnkit-train-{comp.key}-{self._nonce}{self._launches}"
        Event(stop_event_name(comp.dask_key), client=client).clear()
        comp.channel = Queue(progress_queue_name(comp.dask_key), client=client)
        n_fit = comp.cost.images
        comp.mirror = ProgressMirror(comp.hyper.epochs, math.ceil(n_fit / comp.hyper.batch_size))
        data: Any
        if getattr(comp.dataset, "source", "") == "file":
            data = self._scattered.get(comp.fingerprint)
            if data is None or data.status != "finished":
                data = client.scatter(comp.dataset, hash=False)
                self._scattered[comp.fingerprint] = data
                while len(self._scattered) > 4:
                    self._scattered.pop(next(iter(self._scattered)))
        else:
            data = {"name": comp.dataset.name, "fingerprint": comp.fingerprint}
        comp.future = client.submit(train_on_worker, comp.dask_key, comp.spec.to_dict(), comp.hyper.to_dict(), data,
                                    comp.title, key=comp.dask_key, retries=0)
        comp.state = "running"
        comp.started = time.time()
        self.stats["computed"] += 1
        for owner in {j.owner for j in comp.jobs}:
            self._served[owner] = self._served.get(owner, 0) + 1
        for job in comp.jobs:
            self._journal(job, "running")

    def _complete(self, comp: Computation) -> None:
        from cnnkit import runs

        future = comp.future
        result: dict | None = None
        error: BaseException | None = None
        if future.status == "finished":
            try:
                result = future.result()
            except Exception as err:
                error = err
        elif future.status == "error":
            error = future.exception()
        try:
            future.release()
        except Exception:
            pass
        try:
            comp.channel.close()
        except Exception:
            pass
        with self._lock:
            comp.state = "done"
            comp.future = None
            self._comps.pop(comp.key, None)
            jobs = [j for j in comp.jobs if j._final is None]
        if result is None:
            self.stats["failed"] += 1
            with self._lock:
                for job in jobs:
                    self._end_locked(job, JobState.FAILED, failure_sentence(error), comp=comp)
            return
        state = JobState(result["state"])
        model = result.get("model")
        failed: dict[str, str] = {}
        for job in jobs:
            if model is not None:
                try:
                    job.run = runs.save_run(model, comp.spec, comp.hyper.to_dict(), result.get("history") or {},
                                            result.get("metrics") or {}, dataset_name=job.dataset_name,
                                            root=job.runs_root, owner=job.owner, title=job.title,
                                            extra={"job_key": comp.key})
                except OSError as err:
                    failed[job.id] = f"The trained model could not be saved ({err})."
        saved = [j.run for j in jobs if j.run is not None]
        with self._lock:
            if state is JobState.FINISHED and saved:
                self._finished[comp.key] = saved[0].path   # known before anyone hears the job ended
            for job in jobs:
                if job.id in failed:
                    self._end_locked(job, JobState.FAILED, failed[job.id], comp=comp)
                else:
                    self._end_locked(job, state, result.get("message") or "", result=result, comp=comp)
        metrics = result.get("metrics") or {}
        # Tiny jobs say more about overheads than about speed; a worker's first job also pays for its import.
        if float(metrics.get("train_seconds") or 0) >= 2:
            flops = training_flops(comp.cost.flops_per_image, int(metrics.get("num_train", comp.cost.images)),
                                   int(metrics.get("num_validation", comp.cost.validation_images)),
                                   int(metrics.get("epochs_run") or comp.hyper.epochs))
            with self._lock:
                first = int(result.get("worker_jobs") or 0) <= 1
                self.throughput.observe(flops, float(metrics["train_seconds"]),
                                        None if first else time.time() - comp.started)
        self._maybe_recycle(result)

    def _maybe_recycle(self, result: dict) -> None:
        worker = result.get("worker")
        if not worker:
            return
        limit = result.get("memory_limit")
        rss = result.get("worker_rss")
        too_many = int(result.get("worker_jobs") or 0) >= self.worker_jobs
        too_big = bool(limit and rss and rss > 0.7 * limit)
        if not (too_many or too_big):
            return
        self.stats["recycled"] += 1
        with self._lock:
            self._recycling.add(worker)   # before the poller's next launch: the next job goes to the fresh worker

        def restart() -> None:
            # The nanny stops the worker process and starts a fresh one; this returns once the scheduler has its
            # workers back (or after RECYCLE_SECONDS). Should the cluster give up on the nanny meanwhile,
            # `_keep_workers` opens a new one.
            try:
                self._client.restart_workers([worker], timeout=RECYCLE_SECONDS, raise_for_error=False)
            except Exception:
                if not self._closed:   # a registry closing with its cluster cuts a recycling short: no news
                    log.exception("cnnkit: recycling worker %s", worker)
            finally:
                with self._lock:
                    self._recycling.discard(worker)

        threading.Thread(target=restart, daemon=True, name="cnnkit-recycle").start()

    def _keep_workers(self) -> None:
        """The embedded cluster always has the workers it was made with (see `restore_workers`)."""
        try:
            missing = restore_workers(self._client)
        except Exception:
            log.exception("cnnkit: restoring workers")
            return
        if missing and not self._workers_missing:
            self.stats["restored"] += missing
            log.warning("cnnkit: the cluster gave up on %d worker(s); starting fresh ones", missing)
        self._workers_missing = missing

    # -- memory across restarts ------------------------------------------------------------------------
    def _journal_dir(self, job: Job) -> Path:
        return self._root(job.runs_root) / ".jobs"

    def _journal(self, job: Job, state: str) -> None:
        try:
            d = self._journal_dir(job)
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{job.id}.json").write_text(json.dumps({
                "id": job.id, "owner": job.owner, "title": job.title, "dataset": job.dataset_name,
                "hyper": job.hyper.to_dict(), "state": state, "created": job.created}))
        except OSError:
            pass

    def _unjournal(self, job: Job) -> None:
        try:
            d = self._journal_dir(job)
            (d / f"{job.id}.json").unlink(missing_ok=True)
            if not any(d.iterdir()):
                d.rmdir()   # no active jobs: leave the runs folder holding only runs
        except OSError:
            pass

    def _lost_job(self, job_id: str) -> Job | None:
        if not all(c in "0123456789abcdef" for c in job_id) or len(job_id) != 32:
            return None
        path = self._root(None) / ".jobs" / f"{job_id}.json"
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        h = Hyper.from_dict(meta.get("hyper") or {})
        job = Job(self, None, owner=meta.get("owner"), title=meta.get("title", ""),
                  dataset_name=meta.get("dataset", ""),
                  hyper=h, runs_root=None, key="")
        job.id = job_id
        job.created = float(meta.get("created") or time.time())
        when = time.strftime("%H:%M", time.localtime(path.stat().st_mtime))
        word = "waiting to train" if meta.get("state") == "queued" else "training"
        job._final = _snapshot(
            id=job_id, owner=job.owner, title=job.title, dataset_name=job.dataset_name, state=JobState.FAILED,
            phase="done",
            epoch=0, epochs=h.epochs, batch=0, batches=1, batch_loss=None, batch_accuracy=None, history={},
            elapsed=0.0, eta=None, queue_position=None, metrics={}, run_path=None, hyper=h,
            message=(f"This job was lost: the server restarted while it was {word} (last seen {when}). Your finished "
                     "runs are safe; press Start training to train it again."), running_points=[])
        job._done.set()
        self._unjournal(job)
        with self._lock:
            self._jobs[job_id] = job
        return job

    def _index_runs(self, root: Path) -> None:
        """Learn which job keys already have a finished Run on disk (once per runs folder)."""
        if root in self._indexed_roots:
            return
        from cnnkit import runs

        found = {}
        for run in runs.list_runs(root, only_owner=False):
            key = run.extra.get("job_key")
            if key and run.metrics.get("stopped_by") in (None, "early_stopping"):
                found.setdefault(key, run.path)
        with self._lock:
            self._indexed_roots.add(root)
            for k, p in found.items():
                self._finished.setdefault(k, p)

    def _learn_throughput(self, root: Path) -> None:
        """Seed this server's speed from the runs already on disk (newest 20), once per runs folder."""
        if root in self._throughput_roots:
            return
        from cnnkit import runs
        from cnnkit.errors import UserError

        self._throughput_roots.add(root)
        for run in reversed(runs.list_runs(root, only_owner=False)[:20]):
            m = run.metrics
            try:
                fpi = run.spec.summary().flops
                flops = training_flops(fpi, int(m["num_train"]), int(m.get("num_validation", 0)),
                                       int(m.get("epochs_run") or 0))
                with self._lock:
                    self.throughput.observe(flops, float(m["train_seconds"]))
            except (KeyError, TypeError, ValueError, UserError):
                continue

    def _prune_locked(self) -> None:
        # Ended jobs stay attachable for a lecture's length, then go (their Runs stay on disk).
        cutoff = time.time() - self.keep_seconds
        for jid, job in list(self._jobs.items()):
            if job._final is not None and job.created < cutoff:
                del self._jobs[jid]


def _train_images(h: Hyper, n: int) -> int:
    limit = getattr(h, "train_images", None)
    return min(n, int(limit)) if limit else n
