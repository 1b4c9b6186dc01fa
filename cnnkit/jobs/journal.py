"""The journal of jobs, so that no job is lost without a word on a server restart.

Each job has a small JSON file in `<runs folder>/.jobs/` (who, what, since when, and which server process
owns it); it is written when the job is queued and again when it starts, and its end (state, sentence, the
saved run) is written into it when the job ends — the file is never deleted while the job is active, so a
SIGTERM, a SIGKILL or a crash leaves it behind. After a restart the registry finds no such job in memory and
reads its entry: a recorded end is shown as it was (a run that finished before the stop is found), and an
active job whose owner process is gone becomes a failed job that says it was lost (`JournalEntry.message`).

An owner process that is still alive — another server sharing the runs folder, or another registry of this
process — keeps its jobs: they are never declared lost here. On this machine the owner is its pid and start
time; on another machine its heartbeat (the file's modification time, refreshed by the owner's poller).
Files are replaced atomically, so readers in other tabs or processes never see half a file; ended entries
are pruned after the registry's keep time.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from cnnkit import disk_faults
from cnnkit.hyper import Hyper

FOLDER = ".jobs"
HEARTBEAT_SECONDS = 5.0    # how often the owner refreshes its active entries
PRUNE_SECONDS = 3600.0     # how often ended entries older than the registry's keep time are forgotten
STALE_SECONDS = 30.0       # an entry of another machine not refreshed for this long has lost its owner

_OPEN: set[str] = set()    # the journals (registries) of this process that are still open
_OPEN_LOCK = threading.Lock()


def _process_start(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


_HOST = socket.gethostname()
_PID = os.getpid()
_STARTED = _process_start(_PID)


@dataclass(frozen=True)
class JournalEntry:
    """What the journal remembers of a job this process does not hold: lost, or ended and recorded."""

    id: str
    owner: str | None
    title: str
    dataset_name: str
    hyper: Hyper
    created: float
    message: str                   # the sentence the job shows
    state: str = "failed"          # the state it shows: "failed" when lost, else the recorded end
    run_path: str | None = None    # the run it saved, where it finished before the stop


class Journal:
    """Jobs on disk. `root_for(runs_root)` is the runs folder of a job (None: the registry's own)."""

    def __init__(self, root_for: Callable[[Path | None], Path]) -> None:
        self.root_for = root_for
        self.instance = uuid.uuid4().hex[:12]
        self._server = {"host": _HOST, "pid": _PID, "started": _STARTED, "instance": self.instance}
        self._beat = 0.0
        self._pruned = 0.0
        with _OPEN_LOCK:
            _OPEN.add(self.instance)

    def close(self) -> None:
        """This registry is closing: its unfinished jobs may now be declared lost by another."""
        with _OPEN_LOCK:
            _OPEN.discard(self.instance)

    def _path(self, runs_root: Path | None, job_id: str) -> Path:
        return self.root_for(runs_root) / FOLDER / f"{job_id}.json"

    def _replace(self, path: Path, meta: dict) -> None:
        """Write a sibling, then rename over: a reader sees the old file or the new one, never half of one. A disk
        that refuses is recorded (`disk_faults`, "jobs": the Class page names it) and the job goes on."""
        with disk_faults.refusing("jobs"):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{self.instance}.tmp")
            tmp.write_text(json.dumps(meta))
            os.replace(tmp, path)

    def write(self, job, state: str) -> None:
        """Note that `job` is `state` ("queued" or "running")."""
        self._replace(self._path(job.runs_root, job.id), {
            "id": job.id, "owner": job.owner, "title": job.title, "dataset": job.dataset_name,
            "hyper": job.hyper.to_dict(), "state": state, "created": job.created, "server": self._server})

    def record_end(self, job, state: str, message: str, run_path: str | None) -> None:
        """The job has ended: keep how (its state, sentence and run) for a restarted server to show."""
        path = self._path(job.runs_root, job.id)
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError):
            return   # never journaled (a reused run) or on a disk that will not keep it
        meta["end"] = {"state": state, "message": message, "run_path": run_path, "when": time.time()}
        self._replace(path, meta)

    def tend(self, active: Iterable, keep_seconds: float) -> None:
        """The poller's round: refresh the active jobs' entries; once an hour forget old ends."""
        self.heartbeat(active)
        if time.time() - self._pruned > PRUNE_SECONDS:
            self._pruned = time.time()
            self.prune(keep_seconds)

    def heartbeat(self, jobs: Iterable, force: bool = False) -> None:
        """Refresh the entries of this registry's active jobs (another machine reads them as alive)."""
        now = time.time()
        if not force and now - self._beat < HEARTBEAT_SECONDS:
            return
        self._beat = now
        for job in jobs:
            try:
                os.utime(self._path(job.runs_root, job.id))
            except OSError:
                pass

    def lost(self, job_id: str) -> JournalEntry | None:
        """The entry of a job this process does not hold: its recorded end, or — when its owner process is
        gone — the sentence that it was lost. None when there is none, or its owner is still alive."""
        if not all(c in "0123456789abcdef" for c in job_id) or len(job_id) != 32:
            return None
        path = self._path(None, job_id)
        try:
            seen = path.stat().st_mtime
            meta = json.loads(path.read_text())
        except (OSError, ValueError):   # gone meanwhile (pruned by another process), or not there
            return None
        if not isinstance(meta, dict):
            return None
        end = meta.get("end") if isinstance(meta.get("end"), dict) else None
        if end is None and _alive(meta.get("server"), seen):
            return None
        base = {"id": job_id, "owner": meta.get("owner"), "title": str(meta.get("title", "")),
                "dataset_name": str(meta.get("dataset", "")), "hyper": Hyper.from_dict(meta.get("hyper") or {}),
                "created": _number(meta.get("created"))}
        if end is not None:
            return JournalEntry(**base, message=str(end.get("message") or ""), state=str(end.get("state")),
                                run_path=end.get("run_path") if isinstance(end.get("run_path"), str) else None)
        when = time.strftime("%H:%M", time.localtime(seen))
        word = "waiting to train" if meta.get("state") == "queued" else "training"
        return JournalEntry(**base, message=(
            f"This job was lost: the server restarted while it was {word} (last seen {when}). Your finished "
            "runs are safe; press Start training to train it again."))

    def ids_by_owner(self) -> dict[str, list[str]]:
        """The ids of the journal's jobs (this runs folder), by owner, newest first: read once by a registry
        that has just started, so every tab of a student finds a job lost to the restart."""
        found: dict[str, list[tuple[float, str]]] = {}
        try:
            paths = list((self.root_for(None) / FOLDER).glob("*.json"))
        except OSError:
            return {}
        for path in paths:
            try:
                meta = json.loads(path.read_text())
                owner, created = meta.get("owner"), float(meta.get("created") or 0)
            except (OSError, ValueError, TypeError, AttributeError):
                continue
            if isinstance(owner, str) and owner:
                found.setdefault(owner, []).append((created, path.stem))
        return {o: [i for _, i in sorted(v, reverse=True)] for o, v in found.items()}

    def prune(self, keep_seconds: float, root: Path | None = None) -> int:
        """Forget entries whose end (or loss) is older than `keep_seconds`; returns how many went."""
        d = self.root_for(root) / FOLDER
        cutoff = time.time() - keep_seconds
        gone = 0
        try:
            paths = list(d.glob("*.json"))
        except OSError:
            return 0
        for path in paths:
            try:
                seen = path.stat().st_mtime
                meta = json.loads(path.read_text())
                end = meta.get("end") or {}
                ended_at = _number(end.get("when"), seen) if end else None
                if (ended_at is not None and ended_at < cutoff) or (
                        end == {} and seen < cutoff and not _alive(meta.get("server"), seen)):
                    path.unlink(missing_ok=True)
                    gone += 1
            except (OSError, ValueError, AttributeError):
                continue
        try:
            if not any(d.iterdir()):
                d.rmdir()   # no jobs to remember: leave the runs folder holding only runs
        except OSError:
            pass
        return gone


def _number(value, default: float | None = None) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default if default is not None else time.time()


def _alive(server, seen: float) -> bool:
    """Is the process that wrote an entry still running (and its registry open)?"""
    if not isinstance(server, dict):
        return False   # an entry from before owners were recorded: its server is gone
    if server.get("host") != _HOST:
        return time.time() - seen < STALE_SECONDS
    try:
        pid = int(server.get("pid"))
        started = float(server.get("started"))
    except (TypeError, ValueError):
        return False
    if pid == _PID and _STARTED is not None and abs(started - _STARTED) < 1:
        with _OPEN_LOCK:
            return server.get("instance") in _OPEN
    now_started = _process_start(pid)
    return now_started is not None and abs(now_started - started) < 1
