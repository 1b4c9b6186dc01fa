"""Where training jobs run: Dask worker processes, never the web server.

One module per primitive (in the style of dask/distributed):

- `start`      — the one Start path: `start_training` applies the class limits to every way of starting a job
                 (import it as `from cnnkit.jobs import start`), `plan_start` the same before Start.
- `registry`   — `JobRegistry`, the web process's view: submit (one Start: validate once, class mode read
                 once), share identical jobs, reuse finished Runs, stop, the poller that turns results into Runs.
- `job`        — `Job` (one student's job: `snapshot()`, `stop()`, `wait()`), the `Computation` it rides on,
                 and `Job.build_snapshot`, the one place a `JobSnapshot` is made.
- `fair_queue` — `FairQueue`: active computations served round-robin by student (`serve_order`), and waits.
- `keys`       — `job_key` / `dataset_fingerprint` (the hash of what a job computes) and `FinishedRuns` (dedup).
- `cost`       — `Throughput` (this server's measured speed), `JobCost`, `fitting_advice`, the class's budget
                 (`job_seconds_cap`, CNNKIT_JOB_SECONDS).
- `cluster`    — `connect()` (an existing cluster or the embedded LocalCluster), worker settings (count,
                 memory, jobs before recycling), the `WarmUp` plugin, `restore_workers`, `ClusterLink` (the
                 registry's client, slots, launching, recycling) and `failure_sentence`.
- `worker`     — `train_on_worker` (a worker's entry point), its CPU priority (`yield_to_web`), and the
                 progress messages it sends (`ProgressPublisher`) and the web side rebuilds (`ProgressMirror`).
- `journal`    — `Journal`: active jobs on disk, so that a job lost to a server restart says so.

`from cnnkit import jobs` gives the names callers use; each lives in one module above.
"""

from __future__ import annotations

from cnnkit.jobs.cluster import (
    LOST_WORKER_SECONDS,
    RECYCLE_SECONDS,
    ClusterLink,
    WarmUp,
    connect,
    cpu_count,
    failure_sentence,
    restore_workers,
    worker_count,
    worker_job_limit,
    worker_memory_bytes,
)
from cnnkit.jobs.cost import (
    DEFAULT_FLOPS_PER_SECOND,
    DEFAULT_OVERHEAD_SECONDS,
    JobCost,
    Throughput,
    estimate_cost,
    fitting_advice,
    job_seconds_cap,
    training_flops,
)
from cnnkit.jobs.fair_queue import FairQueue, serve_order
from cnnkit.jobs.job import Computation, Job
from cnnkit.jobs.journal import Journal, JournalEntry
from cnnkit.jobs.keys import FinishedRuns, dataset_fingerprint, job_key
from cnnkit.jobs.registry import POLL_SECONDS, JobRegistry
from cnnkit.jobs.worker import (
    PUBLISH_SECONDS,
    STOP_CHECK_SECONDS,
    WORKER_NICE,
    ProgressMirror,
    ProgressPublisher,
    progress_queue_name,
    stop_event_name,
    train_on_worker,
    worker_nice,
    yield_to_web,
)

__all__ = [
    "DEFAULT_FLOPS_PER_SECOND", "DEFAULT_OVERHEAD_SECONDS", "LOST_WORKER_SECONDS", "POLL_SECONDS",
    "PUBLISH_SECONDS", "RECYCLE_SECONDS", "STOP_CHECK_SECONDS", "WORKER_NICE", "ClusterLink", "Computation",
    "FairQueue", "FinishedRuns", "Job", "JobCost", "JobRegistry", "Journal", "JournalEntry", "ProgressMirror",
    "ProgressPublisher", "Throughput", "WarmUp", "connect", "cpu_count", "dataset_fingerprint", "estimate_cost",
    "failure_sentence", "fitting_advice", "job_key", "job_seconds_cap", "progress_queue_name", "restore_workers",
    "serve_order", "stop_event_name", "train_on_worker", "training_flops", "worker_count", "worker_job_limit",
    "worker_memory_bytes", "worker_nice", "yield_to_web",
]
