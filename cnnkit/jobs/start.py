"""The one Start path: every way to start training goes through `start_training`.

The Training page, the Draw page's one-click model, `python -m cnnkit train` and anything added later call
`start_training`; nothing else calls `JobRegistry.submit` or `training.train` (tests/test_start.py holds the
code to that). In class mode (`CNNKIT_CLASS_MODE`) it applies the class's limits — the lecturer's
`classroom.ClassLimits` from the class book: the epochs cap, the training-image cap, jobs at a time — and
the cost limits (a model or job over `cnnkit.limits` is refused, and a job over `CNNKIT_JOB_SECONDS` gets
the sentence that says how to fit), and returns the sentences that say what the limits changed, written
with the values the student gave. `plan_start` is the same decision without starting anything, for a page
to show before Start (the cost line, the note under the epochs box).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnkit import challenge_scoring, classroom, settings, training
from cnnkit.errors import TrainingError
from cnnkit.hyper import Hyper
from cnnkit.jobs.cost import Throughput, estimate_cost, job_seconds_cap

_CLASS_BOOK = object()   # the default of `limits`: in class mode, the class book's limits


@dataclass(frozen=True)
class StartPlan:
    """What a Start would train, decided before anything starts."""

    hyper: Hyper                         # the settings the job trains with, within the class limits
    notes: tuple[str, ...]               # one sentence per change the limits made
    limits: classroom.ClassLimits | None  # None outside class mode
    class_mode: bool

    @property
    def max_active(self) -> int:
        """How many jobs one student may have queued or running at once."""
        return self.limits.jobs_at_a_time if self.limits is not None else 1


@dataclass(frozen=True)
class Started:
    """A job that was started (queued on the cluster, or trained here), and what the limits changed."""

    job: Any                  # a jobs.Job (the web) or a training.TrainingJob (the command line, ended)
    notes: tuple[str, ...]


def class_limits() -> classroom.ClassLimits | None:
    """The limits a student's job meets now: the class book's in class mode (the lecturer's, else the
    environment's), None outside class mode."""
    return classroom.book().limits() if settings.get("class_mode") else None


def plan_start(hyper: Hyper, num_train: int | None = None, *, limits: Any = _CLASS_BOOK,
               active_jobs: int = 0) -> StartPlan:
    """The class limits applied to `hyper` (nothing is started). `limits`: by default the class book's in
    class mode; pass a `ClassLimits` (or None for none) to decide for a test or a preview. A student with
    `active_jobs` as many as the class allows gets a TrainingError that says so."""
    class_mode = bool(settings.get("class_mode"))
    if limits is _CLASS_BOOK:
        limits = classroom.book().limits() if class_mode else None
    if limits is None:
        return StartPlan(hyper, (), None, class_mode)
    capped, notes = classroom.apply_limits(hyper, limits, active_jobs=active_jobs, num_train=num_train)
    return StartPlan(capped, tuple(notes), limits, class_mode)


def start_training(spec, dataset, hyper: Hyper, *, owner: str | None = None, title: str = "",
                   registry=None, replace: bool = False, runs_root: Path | str | None = None,
                   limits: Any = _CLASS_BOOK,
                   on_progress: Callable[[Any], None] | None = None) -> Started:
    """Start training `spec` on `dataset` with `hyper`, within the class limits: the one Start path.

    With a `registry` (the web process's `JobRegistry`) the job is queued on the cluster for `owner`
    (`replace`: their newest job is stopped first) and this returns at once; without one (the command line)
    the job trains in this process and this returns when it has ended (`on_progress` sees its snapshots).
    Refusals (settings, a model over a cost limit in class mode, one job at a time, the seconds cap) are
    TrainingError sentences.
    """
    active = 0 if (replace or registry is None or owner is None) else registry.active_count(owner)
    plan = plan_start(hyper, len(dataset.y_train), limits=limits, active_jobs=active)
    if registry is not None:
        # The registry checks the model's and the job's cost (refused in class mode) and the seconds cap.
        job = registry.submit(spec, dataset, plan.hyper, owner=owner, title=title, runs_root=runs_root,
                              replace=replace, max_active=plan.max_active)
        return Started(job, plan.notes)
    h = plan.hyper.validate(num_train=len(dataset.y_train))
    training.check_compatible(spec, dataset, refuse_cost=plan.class_mode)
    training.training_cost_warnings(spec, h, len(dataset.y_train), refuse_cost=plan.class_mode)
    cap = job_seconds_cap(plan.class_mode)
    if cap is not None:
        speed = Throughput()
        speed.learn_from(Path(runs_root) if runs_root is not None else _runs_dir(), nullcontext())
        cost = estimate_cost(spec, len(dataset.y_train), h, speed, wait_seconds=0.0, jobs_ahead=0, cap=cap)
        if cost.advice:
            raise TrainingError(cost.advice)
    # An open class challenge's hidden share is left out of the test pass, as on a worker (challenge_scoring).
    tested = challenge_scoring.tested_on(challenge_scoring.open_request(dataset), dataset)
    job = training.train(spec, tested, h, owner=owner, title=title, runs_root=runs_root, on_progress=on_progress)
    return Started(job, plan.notes)


def _runs_dir() -> Path:
    from cnnkit import runs

    return runs.runs_dir()

