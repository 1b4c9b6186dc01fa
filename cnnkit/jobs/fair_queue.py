"""The line of computations waiting for (or holding) a worker, served round-robin by student.

A student's second job waits behind everyone's first: each computation carries the round of its students
(how many jobs they have started so far) and is served by round, then first come first served. The line
also says how long a job will wait. Not thread-safe by itself: the registry holds its lock around it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from cnnkit.jobs.job import Computation


def serve_order(queued: list[Computation]) -> list[Computation]:
    """Round-robin by student: a computation whose students have had fewer jobs so far goes first;
    within a round, first come first served."""
    return sorted(queued, key=lambda c: (c.round, c.seq))


class FairQueue:
    """The registry's active computations by job key: queued → running, until they end."""

    def __init__(self) -> None:
        self._comps: dict[str, Computation] = {}
        self._served: dict[str | None, int] = {}      # jobs started per owner: the round-robin rounds
        self._seq = 0

    def get(self, key: str) -> Computation | None:
        return self._comps.get(key)

    def round_of(self, owner: str | None) -> int:
        return self._served.get(owner, 0)

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add(self, comp: Computation) -> None:
        self._comps[comp.key] = comp

    def join(self, comp: Computation, owner: str | None) -> None:
        """A student shares `comp`: it is served no later than that student's own round."""
        comp.round = min(comp.round, self.round_of(owner))

    def remove(self, comp: Computation) -> None:
        self._comps.pop(comp.key, None)

    def active(self) -> list[Computation]:
        return [c for c in self._comps.values() if c.state in ("queued", "running")]

    def running(self) -> list[Computation]:
        return [c for c in self._comps.values() if c.state == "running"]

    def order(self) -> list[Computation]:
        """The queued computations in the order they will start."""
        return serve_order([c for c in self._comps.values() if c.state == "queued"])

    def started(self, comp: Computation) -> None:
        comp.state = "running"
        comp.started = time.time()
        for owner in {j.owner for j in comp.jobs}:
            self._served[owner] = self._served.get(owner, 0) + 1

    def counts(self) -> tuple[int, int]:
        """(running, queued)."""
        return len(self.running()), sum(1 for c in self._comps.values() if c.state == "queued")

    # -- waiting times ----------------------------------------------------------------------------------
    def wait_for(self, ahead: Iterable[Computation], slots: int) -> float:
        """Seconds until a job behind `ahead` can start on `slots` workers."""
        ahead = list(ahead)
        if not ahead:
            return 0.0
        if len(self.running()) < slots and all(c.state == "running" for c in ahead):
            return 0.0
        return sum(_remaining(c) for c in ahead) / slots

    def place(self, comp: Computation, slots: int) -> tuple[int, float]:
        """A queued computation's place in line (1 = next) and its expected wait."""
        order = self.order()
        pos = order.index(comp) + 1 if comp in order else 1
        running = self.running()
        wait = self.wait_for(running + order[:pos - 1], slots) if running or pos > 1 else 0.0
        return pos, wait


def _remaining(comp: Computation) -> float:
    if comp.state == "queued" or comp.mirror is None:
        return comp.cost.seconds
    eta = comp.mirror.live().get("eta")
    if eta is not None:
        return float(eta)
    return max(0.0, comp.cost.seconds - (time.time() - (comp.started or time.time())))
