"""One student's job as the pages see it (`Job`), the computation it rides on, and its snapshot.

A `Computation` is one unique (spec, hyper, data) training — queued in the registry, then running on the
cluster — shared by every `Job` (one per student) that asked for exactly it. `Job.build_snapshot` is the one
place a `JobSnapshot` is made: queued, running, ended, reused or lost.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnkit.hyper import Hyper
from cnnkit.jobs.cost import JobCost
from cnnkit.jobs.worker import ProgressMirror
from cnnkit.progress import JobSnapshot, JobState

if TYPE_CHECKING:
    from cnnkit.jobs.journal import JournalEntry
    from cnnkit.jobs.registry import JobRegistry

_SNAPSHOT_FIELDS = {f.name for f in dataclasses.fields(JobSnapshot)}


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
    challenge: dict | None = None         # the open challenge's hidden share at Start: left out of the test pass

    @property
    def batches(self) -> int:
        """Batches per epoch, before the worker has said."""
        return math.ceil(self.cost.images / self.hyper.batch_size)

    def drain(self, lock: AbstractContextManager) -> None:
        """Apply the progress messages the worker has sent since last time (under `lock`)."""
        try:
            messages = self.channel.get(batch=True)
        except Exception:
            return
        with lock:
            for msg in messages:
                self.mirror.apply(msg)

    def open_jobs(self, but: Job | None = None) -> list[Job]:
        """The jobs still waiting for this computation (all but `but`)."""
        return [j for j in self.jobs if j is not but and not j.ended]


class Job:
    """One student's training job as the pages see it: `snapshot()`, `stop()`, `wait()`."""

    def __init__(self, registry: JobRegistry, comp: Computation | None, *, owner: str | None, title: str,
                 dataset_name: str, hyper: Hyper, runs_root: Path | None, key: str, job_id: str | None = None,
                 created: float | None = None) -> None:
        self.id = job_id or uuid.uuid4().hex
        self.registry = registry
        self.owner = owner
        self.title = title
        self.dataset_name = dataset_name
        self.hyper = hyper
        self.key = key
        self.runs_root = runs_root
        self.created = created if created is not None else time.time()
        self.run = None
        self._comp = comp
        self._final: JobSnapshot | None = None
        self._done = threading.Event()

    @classmethod
    def lost(cls, registry: JobRegistry, entry: JournalEntry) -> Job:
        """A job the journal remembers from before a server restart: failed, saying so — or the end it
        recorded (a run that finished before the stop is found)."""
        job = cls(registry, None, owner=entry.owner, title=entry.title, dataset_name=entry.dataset_name,
                  hyper=entry.hyper, runs_root=None, key="", job_id=entry.id, created=entry.created)
        try:
            state = JobState(entry.state)
        except ValueError:
            state = JobState.FAILED
        if state.active:
            state = JobState.FAILED
        job.end(job.build_snapshot(state, message=entry.message, run_path=entry.run_path,
                                   epoch=entry.hyper.epochs if entry.run_path else 0))
        return job

    # -- what the pages use --------------------------------------------------------------------------
    @property
    def state(self) -> JobState:
        return self.snapshot().state

    def snapshot(self) -> JobSnapshot:
        return self.registry.snapshot(self)

    def stop(self) -> None:
        self.registry.stop(self)

    def wait(self, timeout: float | None = None) -> JobSnapshot:
        self._done.wait(timeout)
        return self.snapshot()

    # -- what the registry uses ----------------------------------------------------------------------
    @property
    def computation(self) -> Computation | None:
        """The computation this job rides on (None once it has ended, or when it never needed one)."""
        return self._comp

    @property
    def ended(self) -> bool:
        return self._final is not None

    @property
    def final(self) -> JobSnapshot | None:
        """The snapshot the job ended with (None while it is queued or running)."""
        return self._final

    def build_snapshot(self, state: JobState | str, **values) -> JobSnapshot:
        """The one place a JobSnapshot is made: this job's own fields, then `values`, then the defaults of
        a job that has nothing to show yet. Keys that are not snapshot fields are left out."""
        values = {"id": self.id, "owner": self.owner, "title": self.title, "dataset_name": self.dataset_name,
                  "hyper": self.hyper, "phase": "done", "epoch": 0, "epochs": self.hyper.epochs, "batch": 0,
                  "batches": 1, "batch_loss": None, "batch_accuracy": None, "history": {}, "elapsed": 0.0,
                  "eta": None, "queue_position": None, "message": "", "metrics": {}, "run_path": None,
                  **values, "state": JobState(state)}
        values["running_points"] = tuple(tuple(p) for p in values.get("running_points") or ())
        return JobSnapshot(**{k: v for k, v in values.items() if k in _SNAPSHOT_FIELDS})

    def live_snapshot(self, place: tuple[int, float] | None) -> JobSnapshot:
        """While the computation is queued (`place`: its place in line and expected wait) or running."""
        comp = self._comp
        shared = len(comp.open_jobs(but=self))
        if place is not None:
            pos, wait = place
            return self.build_snapshot(JobState.QUEUED, phase="waiting", batches=comp.batches, queue_position=pos,
                                       wait_seconds=wait, shared_with=shared)
        m = comp.mirror
        f = m.live()
        f.pop("state", None)   # running until the Run is written here: the end is reported then
        if f.get("phase") == "done":
            f["phase"] = "saving"
        mine = {"id", "owner", "title", "dataset_name", "hyper", "run_path", "shared_with"}
        return self.build_snapshot(JobState.RUNNING, **{k: v for k, v in f.items() if k not in mine},
                                   history={k: list(v) for k, v in m.history.items()}, queue_position=None,
                                   running_points=list(m.points), shared_with=shared)

    def end(self, snapshot: JobSnapshot) -> None:
        """The job is over: `snapshot` is what it shows from now on."""
        self._final = snapshot
        self._comp = None
        self._done.set()

    def end_with(self, state: JobState, message: str, *, result: dict | None = None,
                 comp: Computation | None = None) -> None:
        """End the job with what its computation got to (its mirror) or finished with (`result`)."""
        comp = comp or self._comp
        m = comp.mirror if comp is not None else None
        result = result or {}
        history = result.get("history") or (dict(m.history) if m else {})
        fields = m.fields if m else {}
        batches = fields.get("batches") or math.ceil((comp.cost.images if comp else 1) / self.hyper.batch_size)
        self.end(self.build_snapshot(
            state, epoch=int(fields.get("epoch", 0)), batch=int(fields.get("batch", 0)), batches=int(batches),
            batch_loss=fields.get("batch_loss"), batch_accuracy=fields.get("batch_accuracy"),
            history={k: list(v) for k, v in history.items()},
            elapsed=float(result.get("elapsed") or fields.get("elapsed") or 0.0), message=message,
            metrics=dict(result.get("metrics") or {}), run_path=str(self.run.path) if self.run is not None else None,
            running_points=list(m.points) if m else []))
