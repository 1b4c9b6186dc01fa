"""The journal of active jobs, so that a job lost to a server restart says so.

Each queued or running job has a small JSON file in `<runs folder>/.jobs/` (who, what, since when); it goes
when the job ends. After a restart the registry finds no such job in memory, reads its journal entry and
answers with a failed job whose message says what happened (`JournalEntry.message`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cnnkit.hyper import Hyper

FOLDER = ".jobs"


@dataclass(frozen=True)
class JournalEntry:
    """What the journal remembers of a job that was queued or running when the server stopped."""

    id: str
    owner: str | None
    title: str
    dataset_name: str
    hyper: Hyper
    created: float
    message: str     # the sentence the lost job shows


class Journal:
    """Active jobs on disk. `root_for(runs_root)` is the runs folder of a job (None: the registry's own)."""

    def __init__(self, root_for: Callable[[Path | None], Path]) -> None:
        self.root_for = root_for

    def write(self, job, state: str) -> None:
        """Note that `job` is `state` ("queued" or "running")."""
        try:
            d = self.root_for(job.runs_root) / FOLDER
            d.mkdir(parents=True, exist_ok=True)
            (d / f"{job.id}.json").write_text(json.dumps({
                "id": job.id, "owner": job.owner, "title": job.title, "dataset": job.dataset_name,
                "hyper": job.hyper.to_dict(), "state": state, "created": job.created}))
        except OSError:
            pass

    def remove(self, job) -> None:
        """The job has ended (or its loss has been told): forget it."""
        try:
            d = self.root_for(job.runs_root) / FOLDER
            (d / f"{job.id}.json").unlink(missing_ok=True)
            if not any(d.iterdir()):
                d.rmdir()   # no active jobs: leave the runs folder holding only runs
        except OSError:
            pass

    def lost(self, job_id: str) -> JournalEntry | None:
        """The entry of a job this process does not know, if the journal has one."""
        if not all(c in "0123456789abcdef" for c in job_id) or len(job_id) != 32:
            return None
        path = self.root_for(None) / FOLDER / f"{job_id}.json"
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        when = time.strftime("%H:%M", time.localtime(path.stat().st_mtime))
        word = "waiting to train" if meta.get("state") == "queued" else "training"
        return JournalEntry(
            id=job_id, owner=meta.get("owner"), title=meta.get("title", ""), dataset_name=meta.get("dataset", ""),
            hyper=Hyper.from_dict(meta.get("hyper") or {}), created=float(meta.get("created") or time.time()),
            message=(f"This job was lost: the server restarted while it was {word} (last seen {when}). Your finished "
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
