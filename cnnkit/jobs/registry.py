"""`JobRegistry`: the web process's view of every training job; the jobs themselves run on a Dask cluster.

One active or queued job per student (or `max_active`), identical jobs computed once (a finished identical
Run reused at once), the line served round-robin by student (`fair_queue`), the cost of a job before it
starts with a per-job cap in class mode (`cost`), and a poller that drains progress, fills free workers and
turns what comes back into Runs on disk (or sentences). The cluster side is `cluster.ClusterLink`; the memory
across restarts is `journal.Journal`.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from pathlib import Path
from typing import Any

from cnnkit import challenge_scoring, settings
from cnnkit.errors import TrainingError
from cnnkit.hyper import Hyper
from cnnkit.jobs.cluster import ClusterLink, failure_sentence, worker_job_limit
from cnnkit.jobs.cost import JobCost, Throughput, estimate_cost, job_seconds_cap
from cnnkit.jobs.fair_queue import FairQueue
from cnnkit.jobs.job import Computation, Job
from cnnkit.jobs.journal import Journal
from cnnkit.jobs.keys import FinishedRuns, dataset_fingerprint, job_key
from cnnkit.progress import JobSnapshot, JobState
from cnnkit.training import check_compatible, training_cost_warnings

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25        # how often the web process drains progress and fills free workers

# Set as this process begins to exit (SIGTERM, the end of `streamlit run`). Registered after distributed's
# own exit hooks (this module imports it first), so it runs before they close the embedded cluster: the
# workers that die then are the server's stop, not the jobs' end, and the journal keeps those jobs.
_EXITING = threading.Event()
atexit.register(_EXITING.set)


class JobRegistry:
    """Every training job of this web process; the jobs themselves run on a Dask cluster.

    `client` is a `distributed.Client` or a function that makes one (connected in the background, so
    the first page that needs the registry does not wait for the cluster to start).
    """

    def __init__(self, client: Any = None, *, runs_root: Path | str | None = None, slots: int | None = None,
                 worker_jobs: int | None = None, poll_seconds: float = POLL_SECONDS,
                 keep_seconds: float = 6 * 3600) -> None:
        self.runs_root = Path(runs_root) if runs_root is not None else None
        self.poll_seconds = poll_seconds
        self.keep_seconds = keep_seconds
        self.throughput = Throughput()
        self.stats = {"submitted": 0, "computed": 0, "shared": 0, "reused": 0, "recycled": 0, "restored": 0,
                      "failed": 0}
        self._lock = threading.RLock()
        self._lost_lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self.line = FairQueue()                        # active computations, served round-robin
        self.finished = FinishedRuns()                 # job key → a finished Run to reuse
        self.journal = Journal(self._root)
        self._wake = threading.Event()   # a new computation wakes the poller: launched now, not after its idle 1 s
        self.cluster = ClusterLink(client, slots=slots, stats=self.stats,
                                   worker_jobs=worker_jobs if worker_jobs is not None else worker_job_limit())
        self._thread = threading.Thread(target=self._loop, daemon=True, name="cnnkit-jobs")
        self._thread.start()

    @property
    def client(self):
        """The Dask client (waits up to a minute for the embedded cluster to start)."""
        return self.cluster.client

    @property
    def max_jobs(self) -> int:
        """How many jobs train at once: the cluster's worker threads (one per worker process)."""
        return self.cluster.max_jobs

    def close(self) -> None:
        """Stop polling; close the client (and the embedded cluster) if this registry made it. Jobs still
        queued or running keep their journal entries: a restarted server says they were lost."""
        self.journal.close()
        self.cluster.close()

    # -- submitting ------------------------------------------------------------------------------------
    def _root(self, runs_root) -> Path:
        from cnnkit import runs

        return Path(runs_root) if runs_root is not None else (self.runs_root or runs.runs_dir())

    def estimate(self, spec, dataset, hyper: Hyper) -> JobCost:
        """The job's cost before Start: FLOPs, estimated time on this server's measured speed, the wait."""
        h = hyper.validate(num_train=len(dataset.y_train))
        return self._estimate(spec, dataset, h, settings.get("class_mode"))

    def _estimate(self, spec, dataset, h: Hyper, class_mode: bool) -> JobCost:
        self.throughput.learn_from(self._root(None), self._lock)
        with self._lock:
            ahead = self.line.active()
            wait = self.line.wait_for(ahead, self.max_jobs)
        return estimate_cost(spec, len(dataset.y_train), h, self.throughput, wait_seconds=wait,
                             jobs_ahead=len(ahead), cap=job_seconds_cap(class_mode))

    def submit(self, spec, dataset, hyper: Hyper, *, owner: str | None = None, title: str = "",
               runs_root: Path | str | None = None, replace: bool = False, max_active: int = 1) -> Job:
        """Queue a student's job (or share an identical one, or reuse an identical finished Run).

        At most `max_active` active jobs per student (one unless a lecturer allows more in class
        mode): with `replace` their newest job is stopped first.
        """
        # One Start: the settings are validated once and the deployment's class mode read once, here.
        class_mode = settings.get("class_mode")
        h = hyper.validate(num_train=len(dataset.y_train))
        check_compatible(spec, dataset, refuse_cost=class_mode)
        training_cost_warnings(spec, h, len(dataset.y_train), refuse_cost=class_mode)  # class mode: refused
        title = title or (getattr(spec, "name", "") or "model")
        root = self._root(runs_root)
        fp = dataset_fingerprint(dataset)
        hidden = challenge_scoring.open_request(dataset)   # a challenge's hidden share: not in the test pass
        key = job_key(spec, h, fp, hidden)
        if owner is not None:
            self._make_room(owner, replace=replace, max_active=max_active)
        self.finished.index(root)
        with self._lock:
            self.stats["submitted"] += 1
        job = self._reuse(key, dataset, h, owner=owner, title=title, root=root, spec_name=getattr(spec, "name", ""))
        if job is not None:
            return job
        mine = {"owner": owner, "title": title, "dataset_name": dataset.name, "hyper": h, "runs_root": root,
                "key": key}
        with self._lock:
            comp = self.line.get(key)
            if comp is not None and not comp.stop_requested and comp.state != "done":
                self.stats["shared"] += 1
                self.line.join(comp, owner)
                return self._add_job(comp, mine)
        cost = self._estimate(spec, dataset, h, class_mode)
        if cost.advice:
            raise TrainingError(cost.advice)
        problem = self.cluster.unavailable()
        if problem:
            raise TrainingError(problem)
        with self._lock:
            comp = Computation(key=key, spec=spec, hyper=h, dataset=dataset, fingerprint=fp, title=title, cost=cost,
                               round=self.line.round_of(owner), seq=self.line.next_seq(), challenge=hidden)
            self.line.add(comp)
            self._prune_locked()
            job = self._add_job(comp, mine)
        self._wake.set()
        return job

    def _make_room(self, owner: str, *, replace: bool, max_active: int) -> None:
        current = self.active_job(owner)
        if current is not None and self.active_count(owner) >= max(1, int(max_active)):
            if not replace:
                word = "waiting" if current.state is JobState.QUEUED else "training"
                raise TrainingError(f"You already have a job {word} ({current.title}). Stop it, or replace it "
                                    "with these settings, before you start another.")
            current.stop()

    def _add_job(self, comp: Computation, mine: dict) -> Job:
        job = Job(self, comp, **mine)
        comp.jobs.append(job)
        self._jobs[job.id] = job
        self.journal.write(job, comp.state)
        return job

    def _reuse(self, key: str, dataset, h: Hyper, *, owner, title, root, spec_name: str = "") -> Job | None:
        copied = self.finished.copy(key, dataset_name=dataset.name, root=root, owner=owner, title=title,
                                    spec_name=spec_name)
        if copied is None:
            return None
        src, run = copied
        job = Job(self, None, owner=owner, title=title, dataset_name=dataset.name, hyper=h, runs_root=root, key=key)
        job.run = run
        acc = src.metrics.get("test_accuracy")
        message = ("Finished at once: this model with these settings was already trained on the same data here, "
                   "so you have your own copy of that run."
                   + (f" Test accuracy {acc:.1%}." if isinstance(acc, (int, float)) else ""))
        job.end(job.build_snapshot(JobState.FINISHED, epoch=int(src.metrics.get("epochs_run") or h.epochs),
                                   history=src.history, message=message, run_path=str(run.path),
                                   metrics=dict(src.metrics, reused_from=src.id)))
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
            job = _recall(self, job_id)
        if job is None or job.owner != owner:
            return None
        return job

    def job_for(self, owner: str | None, job_id: str | None = None) -> Job | None:  # see job_for_owner
        return job_for_owner(self, owner, job_id)

    def active_job(self, owner: str | None) -> Job | None:
        with self._lock:
            mine = [j for j in self._jobs.values() if j.owner == owner and not j.ended]
        return max(mine, key=lambda j: j.created) if mine else None

    def active_count(self, owner: str | None) -> int:
        """How many of this student's jobs are queued or running."""
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.owner == owner and not j.ended)

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def counts(self) -> dict[str, int]:
        with self._lock:
            running, queued = self.line.counts()
        return {"running": running, "queued": queued, "max_jobs": self.max_jobs}

    def snapshot(self, job: Job) -> JobSnapshot:
        """What `job` shows now: its end, or its place in line, or the worker's latest progress."""
        with self._lock:
            if job.ended:
                return job.final
            comp = job.computation
            return job.live_snapshot(self.line.place(comp, self.max_jobs) if comp.state == "queued" else None)

    # -- control -------------------------------------------------------------------------------------------
    def stop(self, job: Job) -> None:
        """Stop a student's job. A queued job leaves the line at once; a job shared with other students
        carries on for them; otherwise the worker stops after the current batch and the model so far is saved."""
        dask_key = None
        with self._lock:
            if job.ended:
                return
            comp = job.computation
            others = comp.open_jobs(but=job)
            if comp.state == "queued":
                self._end_locked(job, JobState.STOPPED, "Stopped before it started.")
                comp.jobs.remove(job)
                if not others:
                    self.line.remove(comp)
            elif others:
                n = len(others)
                self._end_locked(job, JobState.STOPPED, (
                    f"Stopped. The same training carries on for {n} other student{'s' if n != 1 else ''} who chose "
                    "the same model and settings; nothing was saved for you."))
                comp.jobs.remove(job)
            else:
                comp.stop_requested = True
                dask_key = comp.dask_key
        if dask_key is not None:
            self.cluster.stop(dask_key)

    def _end_locked(self, job: Job, state: JobState, message: str, *, result: dict | None = None,
                    comp: Computation | None = None) -> None:
        job.end_with(state, message, result=result, comp=comp)
        self.journal.record_end(job, state.value, message, str(job.run.path) if job.run is not None else None)

    # -- the poller --------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self.cluster.closed:
            busy = False
            try:
                busy = self._tick()
                with self._lock:
                    active = [j for j in self._jobs.values() if not j.ended]
                self.journal.tend(active, self.keep_seconds)
            except Exception:  # the poller must outlive any one job's surprise
                log.exception("cnnkit: job poller")
            self._wake.wait(self.poll_seconds if busy else 1.0)
            self._wake.clear()   # a computation added from here on wakes the next wait

    def _tick(self) -> bool:
        if _EXITING.is_set():
            return False   # the process is exiting: nothing ends now, the journal keeps every active job
        with self._lock:
            active = self.line.active()
            problem = self.cluster.unavailable()
            if active and problem:
                # The cluster never came up: say so to everyone waiting instead of leaving them in line.
                for comp in active:
                    self.line.remove(comp)
                    for job in comp.open_jobs():
                        self._end_locked(job, JobState.FAILED, problem, comp=comp)
                return False
        self.cluster.keep_workers()
        if not active or not self.cluster.connected:
            return bool(active)
        self.cluster.refresh_slots()
        for comp in [c for c in active if c.state == "running"]:
            comp.drain(self._lock)
            if comp.future is not None and comp.future.done():
                comp.drain(self._lock)
                self._complete(comp)
        _fill_workers(self)
        return True

    def _complete(self, comp: Computation) -> None:
        if _exit_stopped(self.cluster, comp):
            return   # the server is stopping: the journal keeps the job, a restarted server says it was lost
        result, error = _outcome(comp)
        with self._lock:
            comp.state = "done"
            comp.future = None
            self.line.remove(comp)
            jobs = comp.open_jobs()
        if result is None:
            self.stats["failed"] += 1
            with self._lock:
                for job in jobs:
                    self._end_locked(job, JobState.FAILED, failure_sentence(error), comp=comp)
            return
        state = JobState(result["state"])
        failed = _save_runs(comp, jobs, result)
        saved = [j.run for j in jobs if j.run is not None]
        if state is JobState.FINISHED and saved:
            self.finished.add(comp.key, saved[0].path)   # known before anyone hears the job ended
        with self._lock:
            for job in jobs:
                if job.id in failed:
                    self._end_locked(job, JobState.FAILED, failed[job.id], comp=comp)
                else:
                    self._end_locked(job, state, result.get("message") or "", result=result, comp=comp)
            self.throughput.observe_job(comp.cost, result, time.time() - (comp.started or time.time()))
        self.cluster.maybe_recycle(result)

    # -- memory across restarts ------------------------------------------------------------------------
    def _prune_locked(self) -> None:
        # Ended jobs stay attachable for a lecture's length, then go (their Runs stay on disk).
        cutoff = time.time() - self.keep_seconds
        for jid, job in list(self._jobs.items()):
            if job.ended and job.created < cutoff:
                del self._jobs[jid]


def job_for_owner(registry: JobRegistry, owner: str | None, job_id: str | None = None) -> Job | None:
    """The job every tab of this student shows — the job follows the browser's identity, not the URL: their
    newest queued or running job, else their newest ended one (finished, stopped, failed, or lost to a server
    restart: the journal is read once per process, so every tab hears of the loss). `job_id` (a tab's
    `?job=`) is only a fallback, and only for its owner."""
    if not owner:
        return None
    with registry._lock:
        if getattr(registry, "_journal_index", None) is None:
            registry._journal_index = registry.journal.ids_by_owner()   # owner → ids not yet recalled
        lost = registry._journal_index.pop(owner, [])
    for lost_id in lost:
        registry.get(lost_id, owner)
    with registry._lock:
        mine = [j for j in registry._jobs.values() if j.owner == owner]
    newest = max(mine, key=lambda j: (not j.ended, j.created)) if mine else None
    return newest or registry.get(job_id, owner)


def _recall(reg: JobRegistry, job_id: str) -> Job | None:
    """A job this process does not hold, from the journal: its recorded end, or lost (None: none, or its owner
    process is alive)."""
    with reg._lost_lock:   # two tabs asking at once get one Job
        with reg._lock:
            job = reg._jobs.get(job_id)
        if job is not None:
            return job
        entry = reg.journal.lost(job_id)
        if entry is None:
            return None
        job = Job.lost(reg, entry)
        if entry.state == JobState.FAILED.value and entry.run_path is None:
            # Told once here; kept so another process over the same runs folder says the same.
            reg.journal.record_end(job, entry.state, entry.message, None)
        with reg._lock:
            reg._jobs[job_id] = job
        return job


def _fill_workers(reg: JobRegistry) -> None:
    """The poller's last step: send the first computations in line to the free workers."""
    with reg._lock:
        for comp in reg.line.order()[:reg.cluster.free_slots(len(reg.line.running()))]:
            try:
                if not reg.cluster.launch(comp):
                    continue   # the cluster cannot take it yet (a scheduler restarting): it keeps its place
            except TrainingError as err:   # … and it has refused it for a minute: a sentence
                reg.line.remove(comp)
                for job in comp.open_jobs():
                    reg._end_locked(job, JobState.FAILED, str(err), comp=comp)
                continue
            reg.line.started(comp)
            reg.stats["computed"] += 1
            for job in comp.jobs:
                reg.journal.write(job, "running")


def _exit_stopped(cluster: ClusterLink, comp: Computation) -> bool:
    """Did `comp`'s future end because this process is closing its client (SIGTERM, exit, close)?"""
    return _EXITING.is_set() or cluster.closed or (
        getattr(comp.future, "status", "") == "cancelled" and cluster.closing)


def _outcome(comp: Computation) -> tuple[dict | None, BaseException | None]:
    """What the cluster returned for `comp` (result, or the error), its future and channel let go."""
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
    for release in (future.release, comp.channel.close):
        try:
            release()
        except Exception:
            pass
    return result, error


def _save_runs(comp: Computation, jobs: list[Job], result: dict) -> dict[str, str]:
    """Write each student's own Run of what the worker returned; the jobs whose Run could not be saved, with why."""
    from cnnkit import disk_faults, runs

    model = result.get("model")
    failed: dict[str, str] = {}
    for job in jobs if model is not None else ():
        try:
            job.run = runs.save_run(model, comp.spec, comp.hyper.to_dict(), result.get("history") or {},
                                    result.get("metrics") or {}, dataset_name=job.dataset_name,
                                    root=job.runs_root, owner=job.owner, title=job.title,
                                    extra={"job_key": comp.key})
        except OSError as err:   # a read-only or full runs folder: a sentence, no server path
            failed[job.id] = disk_faults.record("runs", err)
        else:
            disk_faults.cleared("runs")
    if result.get("challenge"):
        _keep_challenge_score(result["challenge"], [j.run.id for j in jobs if j.run is not None and j.id not in failed])
    return failed


def _keep_challenge_score(score: dict, run_ids: list[str]) -> None:
    """The worker's score on the class challenge's hidden share, kept for each run just saved: the runs are on the
    leaderboard as they appear (cnnkit.challenge_scoring.record_worker_score)."""
    try:
        challenge_scoring.record_worker_score(score, run_ids)
    except Exception:   # the challenge's files: the web process's scorer scores these runs instead
        log.exception("cnnkit: keeping a worker's challenge score")
