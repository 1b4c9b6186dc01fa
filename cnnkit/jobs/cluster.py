"""The Dask cluster jobs run on: connecting, worker settings, launching, recycling, restoring.

- `connect()`: the `distributed.Client` of this process. Without configuration it starts an embedded
  `LocalCluster` of worker *processes* (one thread each; `CNNKIT_WORKERS` of them, by default one per two
  CPU cores, one per core with one TensorFlow thread each in class mode; each with a memory limit). With
  `CNNKIT_SCHEDULER=tcp://host:8786` it connects to an existing cluster instead (`dask scheduler` /
  `dask worker`, dask-jobqueue, dask-kubernetes). Both are the same code path: the embedded cluster is a real
  cluster. Every worker gets the `WarmUp` plugin.
- `ClusterLink`: the registry's side of it — the client made in the background, how many jobs train at
  once, launching a computation onto a worker, recycling a worker after `CNNKIT_WORKER_JOBS` jobs or when
  its memory creeps up, restoring workers the embedded cluster gave up on, and faults as sentences.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from cnnkit import settings
from cnnkit.errors import TrainingError
from cnnkit.jobs.worker import (
    ProgressMirror,
    import_keras,
    progress_queue_name,
    stop_event_name,
    train_on_worker,
    yield_to_web,
)

log = logging.getLogger(__name__)

LOST_WORKER_SECONDS = 60   # an embedded worker away this long is replaced by a fresh nanny and process
RECYCLE_SECONDS = 120      # the longest a recycling waits for its worker to come back
RECONNECT_SECONDS = 10     # how often a lost external scheduler is tried again
LAUNCH_GIVE_UP_SECONDS = 60  # a computation the cluster keeps refusing this long fails with a sentence


# --- worker settings -------------------------------------------------------------------------------
def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# Memory the embedded workers leave to the web process: its peak in a class of 100 students that uploads and
# evaluates (1.5 GB in the 2.7 GB cgroup of bench/bench_memory_ceiling.py, docs/BENCHMARKS.md).
WEB_RESERVE_BYTES = 1_500_000_000
# The least a worker is given: TensorFlow imported is 0.72 GB of a worker's resident memory, a small fit 0.88 GB
# (measured), so a worker with less would be restarted by its nanny before any job ended. Also the floor of
# CNNKIT_WORKER_MEMORY (settings.py).
WORKER_MIN_BYTES = 1_000_000_000
TERMINATE = 0.95           # a worker past this share of its limit is restarted by its nanny (Dask's setting)
CGROUP_ROOT = "/sys/fs/cgroup"
PROC_CGROUP = "/proc/self/cgroup"


def memory_total() -> int:
    """The memory this server may use: the smallest of the machine's RAM and every memory limit of the cgroups
    it runs in — cgroup v1's `memory.limit_in_bytes` and v2's `memory.max`, of the process's own group (from
    /proc/self/cgroup) and each group above it (Community Cloud's container is one). "max" or v1's huge number
    mean no limit."""
    import psutil

    root = Path(CGROUP_ROOT)
    files = {root / "memory" / "memory.limit_in_bytes", root / "memory.max"}
    try:
        lines = Path(PROC_CGROUP).read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        group = PurePosixPath(path.strip() or "/")   # the group's path inside the hierarchy
        for level in (group, *group.parents):
            rel = str(level).lstrip("/")
            if controllers == "":
                files.add(root / rel / "memory.max")
            elif "memory" in controllers.split(","):
                files.add(root / "memory" / rel / "memory.limit_in_bytes")
    found = [int(psutil.virtual_memory().total)]
    for f in sorted(files):
        try:
            text = f.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            found.append(int(text))
    return min(found)


def _workers_share(total: int) -> float:
    """The memory all embedded workers may hold together: 60 % of `total`, and never more than leaves the web
    process WEB_RESERVE_BYTES once each worker reaches its nanny's TERMINATE point."""
    return min(0.6 * total, (total - WEB_RESERVE_BYTES) / TERMINATE)


def worker_count() -> int:
    """CNNKIT_WORKERS, else one worker process per two CPU cores — per core in class mode — (at least one), and no
    more than the memory left beside the web process gives WORKER_MIN_BYTES each.

    Alone, TensorFlow already spreads one student's job over every core, so more workers than half the cores
    only make that job slower. A class sends many small jobs at once: then one worker per core, each with one
    TensorFlow thread (`worker_threads`), finishes more of them a minute (2 workers × 1 thread: 8.0 lecture jobs a
    minute against 6.0 for 1 × 2 on 2 cores, bench/bench_capacity.py, docs/BENCHMARKS.md)."""
    by_memory = int(_workers_share(memory_total()) // WORKER_MIN_BYTES)
    cores_each = 1 if settings.get("class_mode", TrainingError) else 2
    return settings.get("workers", TrainingError) or max(1, min(cpu_count() // cores_each, by_memory))


def worker_threads(n_workers: int) -> int | None:
    """TensorFlow's threads in each embedded worker: CNNKIT_WORKER_THREADS, else in class mode the cores shared
    out among the workers (one each when there is a worker per core), else None — TensorFlow's own, one per core,
    so a student alone gets every core for their job."""
    threads = settings.get("worker_threads", TrainingError)
    if threads or not settings.get("class_mode", TrainingError):
        return threads
    return max(1, cpu_count() // max(1, n_workers))


def worker_memory_bytes(n_workers: int) -> int:
    """CNNKIT_WORKER_MEMORY (e.g. "2GB"; at least WORKER_MIN_BYTES), else the workers' share of this machine's
    or container's memory (`memory_total`, `_workers_share`) divided among them, between WORKER_MIN_BYTES and
    3 GB each. Past 95 % of it Dask's nanny restarts the worker.

    On Community Cloud's 2.7 GB: 1.26 GB for one worker, restarted at 1.2 GB, so the web process keeps its
    1.5 GB (60 % would give the worker 1.62 GB and leave the web process 1.16 GB: the cgroup's out-of-memory
    killer then takes the largest process, the server itself)."""
    memory = settings.get("worker_memory", TrainingError)
    if memory:
        return memory
    share = _workers_share(memory_total())
    return int(min(3e9, max(WORKER_MIN_BYTES, share / max(1, n_workers))))


def worker_job_limit() -> int:
    """CNNKIT_WORKER_JOBS: a worker process is replaced by a fresh one after this many jobs (default 25)."""
    return settings.get("worker_jobs", TrainingError)


class WarmUp(WorkerPlugin):
    """Worker plugin, as each worker (or its replacement) starts: lower its CPU priority below the web
    server's (`yield_to_web`), then import Keras in the background (TensorFlow's threads set first, when
    CNNKIT_WORKER_THREADS says), so the first job on it does not wait for TensorFlow's 2–3 s import."""

    idempotent = True

    def setup(self, worker=None):
        yield_to_web()
        threading.Thread(target=_import_keras, daemon=True, name="cnnkit-warm-up").start()


def _import_keras() -> None:
    import_keras()


# --- connecting -------------------------------------------------------------------------------------
CLIENT_TIMEOUT = "15s"     # how long a client waits for an external scheduler (to connect, or to come back)


def connect(address: str | None = None, n_workers: int | None = None):
    """The Dask client jobs are submitted to: an existing cluster at `address` (or CNNKIT_SCHEDULER),
    else a new embedded LocalCluster of worker processes with one thread each."""
    import dask
    from distributed import Client, LocalCluster

    address = address or settings.get("scheduler", TrainingError)
    if address:
        try:
            client = Client(address, timeout=CLIENT_TIMEOUT, set_as_default=False)
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
    threads = worker_threads(n)
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           memory_limit=worker_memory_bytes(n), dashboard_address=":0",
                           scheduler_port=0, silence_logs=logging.ERROR,
                           # each worker process reads it as its CNNKIT_WORKER_THREADS (worker.set_tf_threads)
                           env={settings.SETTINGS["worker_threads"].env: str(threads)} if threads else None)
    client = Client(cluster, set_as_default=False)
    client.register_plugin(WarmUp(), name="cnnkit-warm-up")
    return client


def prepare_scheduler(client) -> tuple[str | None, str | None]:
    """Make a scheduler behave like the embedded one's: a job whose worker died is not tried again
    (`allowed-failures` 0: the usual cause is a model too big for memory, which would only kill the next worker).

    Returns the scheduler's id and a sentence for the lecturer when it could not be set (None when all is well).
    Run on every scheduler this process meets (a restarted one forgets the setting).
    """

    # A function made here is sent by value: the scheduler needs no copy of cnnkit to run it.
    def set_allowed_failures(dask_scheduler=None) -> dict:
        before = dask_scheduler.allowed_failures
        dask_scheduler.allowed_failures = 0
        return {"before": before, "id": dask_scheduler.id}

    try:
        answer = client.run_on_scheduler(set_allowed_failures)
    except Exception as err:
        note = (f"The training cluster's scheduler would not take CNN Lab's setting ({type(err).__name__}): a job "
                "whose worker dies may be tried again on another worker, and a model too big for memory can then "
                "stop several workers in turn. Start the scheduler with "
                "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=0.")
        log.warning("cnnkit: %s", note)
        return None, note
    if answer.get("before") != 0:
        log.warning("cnnkit: the scheduler's allowed-failures was %s; set to 0 (a job whose worker dies fails with a "
                    "sentence instead of being tried on another worker)", answer.get("before"))
    return answer.get("id"), None


def by_name(qualified: str) -> Callable:
    """A function that imports `module:function` where it runs and calls it: sent to the cluster in place of the
    function itself, so the scheduler (which unpacks every task) needs no copy of cnnkit, only the workers."""
    module, _, name = qualified.partition(":")

    def call(*args, **kwargs):
        import importlib

        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call


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


def failure_sentence(err: BaseException | None) -> str:
    """A sentence for a job the cluster could not finish."""
    from distributed.scheduler import KilledWorker

    if isinstance(err, KilledWorker):
        return ("The worker process training this job stopped unexpectedly (it was shut down, or the model ran "
                "out of memory), so nothing was saved. Press Start training to try again; if it happens again, "
                "try a smaller model or batch size.")
    if isinstance(err, ModuleNotFoundError) or "deserializ" in str(err):
        return ("The training cluster could not read this job: its scheduler or a worker has no copy of CNN Lab. "
                "Tell the lecturer: start `dask scheduler` and every `dask worker` from the repository's folder with "
                "PYTHONPATH set to it.")
    if err is None or type(err).__name__ in ("CancelledError", "FutureCancelledError"):
        return ("This job was lost: the training cluster let it go before it finished (a worker or the "
                "scheduler restarted). Press Start training to train it again.")
    return (f"Training failed unexpectedly ({type(err).__name__}: {err}). Try a smaller model or batch size; "
            "if it happens again, tell the lecturer.")


_ENTRY = f"{train_on_worker.__module__}:{train_on_worker.__name__}"
_LOST = ("The training cluster is not reachable: its scheduler stopped and has not come back, so this job could "
         "not start. Press Start training again in a moment; if it keeps happening, tell the lecturer.")


# --- the registry's side ---------------------------------------------------------------------------------
class ClusterLink:
    """One registry's hold on the cluster: its client, its slots, launching, recycling and restoring workers.

    `client` is a `distributed.Client` or a function that makes one (connected in the background, so the
    first page that needs the registry does not wait for the cluster to start); None means `connect`.
    `stats` is the registry's counter dict ("recycled", "restored" are counted here).
    """

    def __init__(self, client: Any, *, slots: int | None, worker_jobs: int, stats: dict[str, int]) -> None:
        self.fixed_slots = slots
        self.worker_jobs = worker_jobs
        self.stats = stats
        self.closed = False
        self.error: str | None = None
        self._lock = threading.Lock()
        self._client = None
        self._ready = threading.Event()
        self._slots = slots or 0
        self._slots_checked = 0.0
        self._launches = 0
        self._nonce = uuid.uuid4().hex[:6]             # Dask keys of this registry never meet another's
        self._scattered: dict[str, Any] = {}           # uploaded datasets on the cluster, by fingerprint
        self._recycling: set[str] = set()              # workers being replaced: nothing is launched meanwhile
        self._workers_missing = 0
        self._workers_seen: int | None = None          # at the last look (None: not asked yet)
        self._scheduler_id: str | None = None          # the scheduler last prepared (a restarted one has a new id)
        self.note: str | None = None                   # a sentence for the lecturer about the cluster
        self._lost_since: float | None = None          # when an external scheduler was lost (its client closed)
        self._reconnect_tried = 0.0
        self._reconnecting = threading.Lock()
        self._refused: dict[str, float] = {}           # computation key → when the cluster first refused it
        factory = client if callable(client) and not hasattr(client, "submit") else None
        if factory is None:
            if client is None:
                factory = connect
            else:
                self._client = client
                self._ready.set()
        self.owns_client = factory is not None
        self._factory = factory
        if factory is not None:
            threading.Thread(target=self._connect, args=(factory,), daemon=True, name="cnnkit-connect").start()

    def _connect(self, factory: Callable, attempts: int = 3) -> None:
        # A busy machine can be too slow for a worker process to start in time: try again before giving up.
        try:
            for attempt in range(1, attempts + 1):
                try:
                    self._client = factory()
                    return
                except Exception as err:  # say why on the page instead of hanging every Start
                    self.error = str(err) if isinstance(err, TrainingError) else (
                        f"The training cluster could not start ({type(err).__name__}: {err}).")
                    log.warning("cnnkit: no Dask client (attempt %d of %d): %s", attempt, attempts, err)
                    if attempt < attempts and not self.closed:
                        time.sleep(5)
        finally:
            self._ready.set()

    @property
    def client(self):
        """The Dask client (waits up to a minute for the embedded cluster to start)."""
        self._ready.wait(60)
        if self._client is None:
            raise TrainingError(self.error or "The training cluster is still starting; try again in a moment.")
        return self._client

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def closing(self) -> bool:
        """Is this process letting its client go (closed here, or the embedded cluster closing at exit)? An
        external cluster's client also closes by itself when its scheduler is gone: that is a loss, not a stop."""
        return self.closed or (getattr(self._client, "status", "running") in ("closing", "closed")
                               and getattr(self._client, "cluster", None) is not None)

    def unavailable(self) -> str | None:
        """A sentence when the cluster never came up, or its scheduler has been gone for a minute (None while it
        is up, starting, or briefly away)."""
        if self._client is None and self._ready.is_set():
            return self.error or "The training cluster is not available."
        if self._lost_since is not None and time.time() - self._lost_since >= LAUNCH_GIVE_UP_SECONDS:
            return _LOST
        return None

    def problems(self) -> list[str]:
        """The lecturer's sentences about the cluster: not reachable, lost, or a setting it would not take."""
        out = [u] if (u := self.unavailable()) else []
        if self._lost_since is not None and not out:
            since = time.strftime("%H:%M", time.localtime(self._lost_since))
            out.append(f"The training cluster's scheduler has been away since {since}: CNN Lab reconnects every "
                       f"{RECONNECT_SECONDS} s; waiting jobs start once it is back (or fail with a sentence after "
                       f"{LAUNCH_GIVE_UP_SECONDS} s).")
        if self.note:
            out.append(self.note)
        return out

    @property
    def max_jobs(self) -> int:
        """How many jobs train at once: the cluster's worker threads (one per worker process)."""
        return max(1, self._slots or self.fixed_slots or 1)

    def free_slots(self, running: int) -> int:
        """How many more jobs may start now: none while a worker is being replaced, or while the cluster has
        no worker at all (a job sent then would only wait inside Dask, out of the line's sight)."""
        with self._lock:
            recycling = bool(self._recycling)
        if recycling or (self._workers_seen == 0 and not self.fixed_slots):
            return 0
        return max(0, self.max_jobs - running)

    def refresh_slots(self) -> None:
        """Ask the scheduler for its workers (every 2 s at most); a scheduler met for the first time (a restarted
        one included) is prepared like the embedded one (`prepare_scheduler`, the warm-up plugin)."""
        client = self._client
        if client is None or time.time() - self._slots_checked < 2:
            return
        self._slots_checked = time.time()
        try:
            info = client.scheduler_info(n_workers=-1)
        except TypeError:
            info = client.scheduler_info()
        except Exception:
            return
        workers = info.get("workers", {})
        self._workers_seen = len(workers)
        if not self.fixed_slots:
            self._slots = sum(int(w.get("nthreads", 1)) for w in workers.values())
        if info.get("id") and info.get("id") != self._scheduler_id:
            self._prepare(client, info.get("id"))

    def _prepare(self, client, scheduler_id: str | None) -> None:
        if self._scheduler_id is not None:
            log.warning("cnnkit: the training cluster has a new scheduler (it restarted): preparing it")
            try:
                client.register_plugin(WarmUp(), name="cnnkit-warm-up")
            except Exception:
                log.exception("cnnkit: the warm-up plugin on the new scheduler")
        self._scheduler_id, self.note = prepare_scheduler(client)
        self._scheduler_id = self._scheduler_id or scheduler_id

    def watch_scheduler(self) -> None:
        """An external scheduler that went away for longer than its client waits (15 s) closes the client: make
        a new one every RECONNECT_SECONDS until the scheduler is back. Meanwhile queued jobs wait; after
        LAUNCH_GIVE_UP_SECONDS they fail with a sentence (`unavailable`)."""
        client = self._client
        if (self.closed or client is None or self._factory is None or getattr(client, "cluster", None) is not None
                or getattr(client, "status", "running") not in ("closed", "closing")):
            return
        now = time.time()
        if self._lost_since is None:
            self._lost_since = now
            log.warning("cnnkit: lost the training cluster's scheduler; reconnecting every %d s", RECONNECT_SECONDS)
        if now - self._reconnect_tried < RECONNECT_SECONDS or self._reconnecting.locked():
            return
        self._reconnect_tried = now
        threading.Thread(target=self._reconnect, daemon=True, name="cnnkit-reconnect").start()

    def _reconnect(self) -> None:
        with self._reconnecting:   # one attempt at a time
            try:
                client = self._factory()
            except Exception as err:
                self.note = str(err) if isinstance(err, TrainingError) else _LOST
                return
            if self.closed:
                client.close()
                return
            old, self._client, self._lost_since, self.note = self._client, client, None, None
        try:
            old.close()
        except Exception:
            pass
        self._workers_seen, self._slots_checked = None, 0.0
        log.warning("cnnkit: reconnected to the training cluster's scheduler")

    def launch(self, comp) -> bool:
        """Send a queued computation to a worker: its Stop event, its progress queue and mirror, its data.

        False when the cluster could not take it now (it stays in line and is tried again); raises TrainingError
        with a sentence once the cluster has refused it for LAUNCH_GIVE_UP_SECONDS."""
        try:
            if getattr(self._client, "status", "running") != "running":   # reconnecting: asking would only block
                raise ConnectionError(f"the client is {self._client.status}")
            self._launch(comp)
        except Exception as err:
            first = self._refused.setdefault(comp.key, time.time())
            while len(self._refused) > 100:   # computations stopped while refused leave an entry behind
                self._refused.pop(next(iter(self._refused)))
            log.warning("cnnkit: the cluster could not take a job yet (%s: %s)", type(err).__name__, err)
            if time.time() - first >= LAUNCH_GIVE_UP_SECONDS:
                self._refused.pop(comp.key, None)
                raise TrainingError(_LOST) from None
            return False
        self._refused.pop(comp.key, None)
        return True

    def _launch(self, comp) -> None:
        from distributed import Event, Queue

        client = self._client
        self._launches += 1
        comp.dask_key = f"cnnkit-train-{comp.key}-{self._nonce}{self._launches}"
        Event(stop_event_name(comp.dask_key), client=client).clear()
        comp.channel = Queue(progress_queue_name(comp.dask_key), client=client)
        comp.mirror = ProgressMirror(comp.hyper.epochs, math.ceil(comp.cost.images / comp.hyper.batch_size))
        data: Any
        if getattr(comp.dataset, "source", "") in ("file", "collection"):   # not loadable by name: sent whole
            data = self._scattered.get(comp.fingerprint)
            if data is None or data.status != "finished":
                data = client.scatter(comp.dataset, hash=False)
                self._scattered[comp.fingerprint] = data
                while len(self._scattered) > 4:
                    self._scattered.pop(next(iter(self._scattered)))
        else:
            data = {"name": comp.dataset.name, "fingerprint": comp.fingerprint}
        comp.future = client.submit(by_name(_ENTRY), comp.dask_key, comp.spec.to_dict(), comp.hyper.to_dict(), data,
                                    comp.title, comp.challenge, key=comp.dask_key, retries=0)

    def stop(self, dask_key: str) -> None:
        """Ask the worker training `dask_key` to stop after its current batch."""
        if self._client is not None:
            from distributed import Event

            try:
                Event(stop_event_name(dask_key), client=self._client).set()
            except Exception as err:   # the scheduler is away: the job ends as lost when its future is let go
                log.warning("cnnkit: could not ask a worker to stop (%s: %s)", type(err).__name__, err)

    def maybe_recycle(self, result: dict) -> None:
        """Replace the worker that returned `result` if it has trained enough jobs or grown too big."""
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
            # `keep_workers` opens a new one.
            try:
                self._client.restart_workers([worker], timeout=RECYCLE_SECONDS, raise_for_error=False)
            except Exception:
                if not self.closed:   # a registry closing with its cluster cuts a recycling short: no news
                    log.exception("cnnkit: recycling worker %s", worker)
            finally:
                with self._lock:
                    self._recycling.discard(worker)

        threading.Thread(target=restart, daemon=True, name="cnnkit-recycle").start()

    def keep_workers(self) -> None:
        """The embedded cluster always has the workers it was made with (see `restore_workers`); an external
        scheduler that went away is reconnected (`watch_scheduler`)."""
        if self._client is None:
            return
        self.watch_scheduler()
        try:
            missing = restore_workers(self._client)
        except Exception:
            log.exception("cnnkit: restoring workers")
            return
        if missing and not self._workers_missing:
            self.stats["restored"] += missing
            log.warning("cnnkit: the cluster gave up on %d worker(s); starting fresh ones", missing)
        self._workers_missing = missing

    def close(self) -> None:
        """Close the client (and the embedded cluster) if this link made it."""
        self.closed = True
        client = self._client
        if client is not None and self.owns_client:
            cluster = getattr(client, "cluster", None)
            try:
                client.close()
                if cluster is not None:
                    cluster.close()
            except Exception:
                pass

