"""What a job costs before it starts: this server's measured speed, `JobCost`, the class's budget.

- `Throughput`: training speed (FLOP/s) and per-job overhead, averaged over recent jobs; seeded from the
  runs already on disk, then from every job that ends.
- `estimate_cost`: FLOPs per image × images × epochs on that speed, plus the wait, as a `JobCost` that says
  itself in words.
- The budget: `job_seconds_cap` (CNNKIT_JOB_SECONDS, in class mode only) and `fitting_advice`, the sentence
  a job over it gets: what would fit, three ways.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from cnnkit import settings
from cnnkit.errors import TrainingError, UserError
from cnnkit.hyper import Hyper
from cnnkit.progress import format_seconds

# Before any job has finished on this server: the fast preset trains 5 epochs of full MNIST in about
# 300 s on a 2-core machine, about 4e10 FLOP/s counting forward + backward (3 × forward) passes.
DEFAULT_FLOPS_PER_SECOND = 4e10
DEFAULT_OVERHEAD_SECONDS = 6.0


def training_flops(flops_per_image: float, n_fit: int, n_val: int, epochs: int) -> float:
    """Forward + backward passes (≈ 3 × forward) over the training images, forward over validation, per epoch."""
    return float(flops_per_image) * (3 * n_fit + n_val) * epochs


def train_images(h: Hyper, n: int) -> int:
    """How many of the dataset's `n` training images a job uses (the Training images setting, if any)."""
    limit = getattr(h, "train_images", None)
    return min(n, int(limit)) if limit else n


@dataclass
class Throughput:
    """This server's measured training speed (FLOP/s) and per-job overhead, averaged over recent jobs."""

    flops_per_second: float = DEFAULT_FLOPS_PER_SECOND
    overhead_seconds: float = DEFAULT_OVERHEAD_SECONDS
    samples: int = 0

    overhead_samples: int = 0
    learnt_from: set[Path] = field(default_factory=set, repr=False)   # runs folders already read

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

    def observe_job(self, cost: JobCost, result: dict, total_seconds: float) -> None:
        """Learn from a job the cluster finished (`result` as `train_on_worker` returns it)."""
        metrics = result.get("metrics") or {}
        # Tiny jobs say more about overheads than about speed; a worker's first job also pays for its import.
        if float(metrics.get("train_seconds") or 0) < 2:
            return
        flops = training_flops(cost.flops_per_image, int(metrics.get("num_train", cost.images)),
                               int(metrics.get("num_validation", cost.validation_images)),
                               int(metrics.get("epochs_run") or cost.epochs))
        first = int(result.get("worker_jobs") or 0) <= 1
        self.observe(flops, float(metrics["train_seconds"]), None if first else total_seconds)

    def learn_from(self, root: Path, lock: AbstractContextManager) -> None:
        """Seed the speed from the newest 20 Runs in the runs folder `root` (once per folder), read outside
        `lock` and learnt inside it."""
        if root in self.learnt_from:
            return
        from cnnkit import runs

        self.learnt_from.add(root)
        for run in reversed(runs.list_runs(root, only_owner=False)[:20]):   # oldest first: the newest weigh most
            m = run.metrics
            try:
                fpi = run.spec.summary().flops
                flops = training_flops(fpi, int(m["num_train"]), int(m.get("num_validation", 0)),
                                       int(m.get("epochs_run") or 0))
                with lock:
                    self.observe(flops, float(m["train_seconds"]))
            except (KeyError, TypeError, ValueError, UserError):
                continue

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

    @property
    def basis(self) -> str:
        """Where the speed behind `seconds` comes from, in words."""
        return (f"measured on {self.measured_jobs} job{'s' if self.measured_jobs != 1 else ''} here"
                if self.measured_jobs else "until a job has finished here, a typical 2-core server's speed")

    def time_words(self) -> str:
        """The estimate in one short phrase (the Architecture page's; the Training page's `words` has the same
        seconds): 'about 12 s on this server (measured on 3 jobs here)'."""
        return f"about {format_seconds(self.seconds)} on this server ({self.basis})"

    def words(self) -> str:
        basis = self.basis
        wait = ("it starts at once" if self.jobs_ahead == 0 else
                f"expected wait about {format_seconds(self.wait_seconds)} ({self.jobs_ahead} "
                f"job{'s' if self.jobs_ahead != 1 else ''} ahead)")
        passes = 3 * self.images + self.validation_images
        per_epoch = (f"{passes:,} image passes per epoch × {self.epochs} epoch{'s' if self.epochs != 1 else ''}")
        why = (f"each of the {self.images:,} training images counts 3 times, forward + backward (a backward pass "
               f"costs about 2 × a forward one)")
        if self.validation_images:
            why += f"; the {self.validation_images:,} validation images once, forward only"
        return (f"{_flops_words(self.flops_per_image)} per image × {per_epoch} ≈ {_flops_words(self.flops)} in all "
                f"({why}): about {format_seconds(self.seconds)} on this server ({basis}); {wait}.")


def estimate_cost(spec, num_train: int, h: Hyper, throughput: Throughput, *, wait_seconds: float, jobs_ahead: int,
                  cap: float | None) -> JobCost:
    """The cost of training `spec` with the validated settings `h` on a dataset of `num_train` images."""
    n_fit, n_val = h.split_sizes(train_images(h, num_train))
    fpi = int(spec.summary().flops)
    flops = training_flops(fpi, n_fit, n_val, h.epochs)
    seconds = throughput.seconds(flops)
    advice = None
    if cap is not None and seconds > cap:
        advice = fitting_advice(seconds, cap, epochs=h.epochs, images=n_fit, flops_per_image=fpi,
                                throughput=throughput)
    return JobCost(flops_per_image=fpi, images=n_fit, validation_images=n_val, epochs=h.epochs, flops=flops,
                   seconds=seconds, wait_seconds=wait_seconds, jobs_ahead=jobs_ahead,
                   measured_jobs=throughput.samples, cap_seconds=cap, advice=advice)


def _flops_words(x: float) -> str:
    for unit, size in (("TFLOPs", 1e12), ("GFLOPs", 1e9), ("MFLOPs", 1e6), ("kFLOPs", 1e3)):
        if x >= size:
            return f"{x / size:.3g} {unit}"
    return f"{x:.0f} FLOPs"


# --- the budget -----------------------------------------------------------------------------------------
def job_seconds_cap(class_mode: bool) -> float | None:
    """CNNKIT_JOB_SECONDS: the most estimated seconds one job may take in class mode (None: no cap)."""
    if not class_mode:
        return None
    return settings.get("job_seconds", TrainingError)


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
