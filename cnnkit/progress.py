"""Progress: the one vocabulary in which the worker, the pages and the command line speak about a job.

What this module owns:
- `JobState` (queued → running → finished / stopped / failed) and `JobSnapshot`, the frozen
  copy of everything a page or a terminal needs to draw a job; a Dask worker sends snapshots
  to the web process (`cnnkit.jobs`), a `TrainingJob` takes them under its lock (`cnnkit.training`).
- `RunningCurve`: the smoothed running training loss and accuracy, one point every few batches.
- `EtaEstimator`: the seconds a job has left, smoothed so it neither swings nor stands still.
- The sentences: `describe_progress` (the words under the two progress bars and the status line),
  `format_seconds`, `overfitting_note` (and `run_overfitting_note` for a saved run).

Pure Python and numpy: no Keras, no Streamlit, no disk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from cnnkit.hyper import Hyper

# --- job state -----------------------------------------------------------------------------


class JobState(str, Enum):
    """Where a job is: queued → running → finished / stopped / failed (the last three are final)."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        return self in (JobState.QUEUED, JobState.RUNNING)


@dataclass(frozen=True)
class JobSnapshot:
    """Everything a page needs to draw a job, copied under the job's lock."""

    id: str
    owner: str | None
    title: str
    dataset_name: str
    state: JobState
    phase: str                      # waiting, preparing, training, validating, testing, saving, done
    epoch: int                      # epochs completed
    epochs: int
    batch: int                      # batches done in the current epoch
    batches: int                    # batches per epoch
    batch_loss: float | None
    batch_accuracy: float | None
    history: dict[str, list[float]]
    elapsed: float                  # seconds since training started (0 while queued)
    eta: float | None               # seconds left, None until it can be estimated
    queue_position: int | None      # 1 = next to start; None when not queued
    message: str                    # a sentence for the student (why it failed, why it stopped)
    metrics: dict[str, Any]
    run_path: str | None
    hyper: Hyper
    # (epoch_position, smoothed training loss, smoothed training accuracy) every few batches (RunningCurve)
    running_points: tuple[tuple[float, float, float], ...] = ()
    shared_with: int = 0            # other students whose identical job this same computation serves
    wait_seconds: float | None = None   # expected wait before a queued job starts

    @property
    def active(self) -> bool:
        return self.state.active

    @property
    def epoch_fraction(self) -> float:
        if self.state is JobState.FINISHED:
            return 1.0
        return min(1.0, self.batch / self.batches) if self.batches else 0.0

    @property
    def job_fraction(self) -> float:
        if self.state is JobState.FINISHED:
            return 1.0
        if not self.epochs:
            return 0.0
        within = self.epoch_fraction if self.epoch < self.epochs else 0.0
        return min(1.0, (self.epoch + within) / self.epochs)

    @property
    def overfitting(self) -> str | None:
        n_val = self.metrics.get("num_validation")
        if n_val is None and self.hyper.validation_split:   # before the end: about this many (from the batches)
            n_fit = self.batches * self.hyper.batch_size
            n_val = round(n_fit * self.hyper.validation_split / (1 - self.hyper.validation_split))
        return overfitting_note(self.history, validation_images=n_val, hyper=self.hyper)


OVERFIT_MIN_RISE = 0.05   # validation loss must rise above its best by at least 5 % of it …
OVERFIT_NOISE_SIGMAS = 3  # … and by more than 3/√(validation images) of it, its noise on that many images


def overfitting_noise(validation_images: int | None) -> float:
    """The relative rise of validation loss above its best that counts as more than noise: max(5 %,
    3/√validation_images) (a loss averaged over n images wobbles by about 1/√n of itself)."""
    if not validation_images or validation_images <= 0:
        return OVERFIT_MIN_RISE
    return max(OVERFIT_MIN_RISE, OVERFIT_NOISE_SIGMAS / math.sqrt(validation_images))


def run_overfitting_note(run: Any) -> str | None:
    """`overfitting_note` for a saved run (duck-typed `runs.Run`): its validation images, its settings, and
    whether its model has a dropout layer."""
    try:
        hyper = run.hyper
    except Exception:   # a run whose settings no longer read: suggest everything
        hyper = None
    kinds = [str(d.get("type", "")) for d in (getattr(run, "spec_dict", {}) or {}).get("layers", [])]
    return overfitting_note(run.history or {}, validation_images=(run.metrics or {}).get("num_validation"),
                            hyper=hyper, dropout=any("Dropout" in k for k in kinds))


def overfitting_note(history: dict[str, list[float]], *, validation_images: int | None = None,
                     hyper: Hyper | None = None, dropout: bool | None = None) -> str | None:
    """A sentence when the curves show over-fitting, else None.

    The rule (all of it must hold):
    - validation loss rose in each of the last 2 epochs;
    - the latest validation loss is above its best so far by more than its noise: more than
      max(5 %, 3/√validation_images) of the best (`overfitting_noise`; 15 % on 400 images, 5 % from 3,600);
    - training loss fell over those same 2 epochs and is below the validation loss.
    The suggestions leave out what is already on: dropout when the model has it (`dropout`; None: not
    known), augmentation and early stopping when `hyper` has them.
    """
    loss, val = history.get("loss") or [], history.get("val_loss") or []
    n = min(len(loss), len(val))
    if n < 3:
        return None
    loss, val = [float(v) for v in loss[:n]], [float(v) for v in val[:n]]
    best = int(np.argmin(val))
    rose_twice = val[-1] > val[-2] > val[-3]
    beyond_noise = val[-1] - val[best] > overfitting_noise(validation_images) * val[best]
    training_fell = loss[-1] < loss[-3] and loss[-1] < val[-1]
    if not (rose_twice and beyond_noise and training_fell):
        return None
    tries = []
    if dropout is not True:
        tries.append("dropout" if dropout is False else "dropout (if the model has none)")
    if not (hyper is not None and hyper.augment):
        tries.append("augmentation")
    if not (hyper is not None and hyper.early_stopping):
        tries.append("early stopping")
    tries.append("fewer epochs")
    how = ", ".join(tries[:-1]) + (" or " if len(tries) > 1 else "") + tries[-1]
    return (f"Over-fitting: validation loss was lowest after epoch {best + 1} and has risen in each of the last "
            f"2 epochs, {val[-1] / val[best] - 1:.0%} above that best (more than its noise), while training loss "
            f"keeps falling — the model is memorising the training images. Try {how}.")
    best = int(np.argmin(val[:n]))
    if best >= n - 1:
        return None
    if val[n - 1] > val[best] * 1.01 and loss[n - 1] < loss[best]:
        return (f"Over-fitting: validation loss was lowest after epoch {best + 1} and has risen since, while "
                "training loss keeps falling — the model is memorising the training images. Try dropout, "
                "augmentation, early stopping or fewer epochs.")
    return None


RUNNING_POLL_SECONDS = 1.0   # a page showing a training job asks for its progress this often
QUEUED_POLL_SECONDS = 3.0    # a job waiting in line: its place moves only when a job ahead ends


def poll_seconds(state: JobState, slower: float = 1.0) -> float | None:
    """How often a page showing a job asks for news (`slower` times less often for a second look, the sidebar's):
    every second while it trains, every 3 s while it waits in line — a lecture's 100 students asking once a
    second for places that move every few seconds kept the web process saturated — and never once it has ended."""
    if state is JobState.RUNNING:
        return RUNNING_POLL_SECONDS * slower
    if state is JobState.QUEUED:
        return QUEUED_POLL_SECONDS * slower
    return None


def format_seconds(seconds: float | None) -> str:
    """A duration for people: "45 s", "3 min 05 s", "1 h 02 min"; an em dash when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


class EtaEstimator:
    """Seconds a job has left: measured after the first batches, smoothed, None until it means something.

    The first batches are slow (the graph is traced and compiled), so the rate is measured from
    the end of `warmup_batches`; an estimate appears once `min_fraction` of the job and
    `min_seconds` have passed since then. Each new estimate moves the shown one only part of the
    way (time constant `smoothing_seconds`), and between updates the shown one counts down, so
    it neither swings nor stands still.
    """

    def __init__(self, warmup_batches: int = 3, min_fraction: float = 0.05, min_seconds: float = 5.0,
                 smoothing_seconds: float = 10.0) -> None:
        self.warmup_batches = warmup_batches
        self.min_fraction = min_fraction
        self.min_seconds = min_seconds
        self.smoothing_seconds = smoothing_seconds
        self._start: tuple[int, float] | None = None    # (batches done, elapsed) when the warm-up ended
        self._shown: tuple[float, float] | None = None  # (estimate, elapsed) last returned

    def update(self, done: int, total: int, elapsed: float) -> float | None:
        if total <= 0 or done >= total:
            return 0.0 if total > 0 else None
        if self._start is None:
            if done >= self.warmup_batches:
                self._start = (done, elapsed)
            return None
        d0, t0 = self._start
        if done - d0 < max(1, self.min_fraction * total) or elapsed - t0 < self.min_seconds:
            return None
        raw = (elapsed - t0) / (done - d0) * (total - done)
        if self._shown is not None:
            shown, at = self._shown
            counted_down = max(0.0, shown - (elapsed - at))
            weight = 1.0 - math.exp(-max(0.0, elapsed - at) / self.smoothing_seconds)
            raw = counted_down + weight * (raw - counted_down)
        self._shown = (raw, elapsed)
        return raw


@dataclass(frozen=True)
class ProgressText:
    """The words under the two progress bars and the status line, for the page and the terminal."""

    epoch: str
    job: str
    status: str


def describe_progress(snap: JobSnapshot, max_jobs: int | None = None) -> ProgressText:
    """What the epoch bar, the job bar and the status line say for this snapshot."""
    shared = ""
    if snap.active and snap.shared_with:
        n = snap.shared_with
        shared = (f" {n} other student{'s' if n != 1 else ''} chose the same model, settings and data: it trains "
                  "once for all of you, and each gets their own run.")
    if snap.state is JobState.QUEUED:
        slots = f" (at most {max_jobs} train at a time)" if max_jobs else ""
        pos = snap.queue_position or 1
        ahead = "you are next" if pos == 1 else f"{pos - 1} job{'s' if pos > 2 else ''} ahead of you"
        wait = (f"; expected wait about {format_seconds(snap.wait_seconds)}"
                if snap.wait_seconds is not None and snap.wait_seconds >= 1 else "")
        return ProgressText("Epoch —", "Waiting", f"Waiting for a free training slot: number {pos} in line, "
                                                   f"{ahead}{slots}{wait}.{shared}")
    n_epoch = min(snap.epoch + 1, snap.epochs)
    if snap.phase == "validating":
        epoch_words = f"Epoch {n_epoch}/{snap.epochs} · checking the validation images"
    elif snap.phase in ("testing", "saving", "done") or snap.epoch >= snap.epochs:
        epoch_words = f"Epoch {snap.epoch}/{snap.epochs}"
    else:
        epoch_words = f"Epoch {n_epoch}/{snap.epochs} · batch {snap.batch}/{snap.batches}"
    if snap.batch_loss is not None and snap.phase == "training":
        epoch_words += f" · loss {snap.batch_loss:.4f}"
        if snap.batch_accuracy is not None:
            epoch_words += f" · accuracy {snap.batch_accuracy:.1%}"
    job_words = f"{snap.job_fraction:.0%} of the job · {format_seconds(snap.elapsed)} elapsed"
    if snap.state is JobState.RUNNING and snap.eta is not None:
        job_words += f" · about {format_seconds(snap.eta)} left"
    phase_words = {
        "preparing": "Building the model…",
        "training": "Training…",
        "validating": "Measuring validation loss and accuracy…",
        "testing": "Measuring accuracy on the test images…",
        "saving": "Saving the run…",
    }
    status = snap.message if not snap.active else phase_words.get(snap.phase, "Training…")
    status += shared
    return ProgressText(epoch_words, job_words, status)


# --- running curve ---------------------------------------------------------------------------

RUNNING_POINTS_PER_EPOCH = 100     # at most this many running points per epoch…
RUNNING_POINTS_MAX = 2000          # …and at most this many in a whole job (long jobs get fewer per epoch)


class RunningCurve:
    """The smoothed running training loss and accuracy, one point every few batches (pure Python).

    After each batch Keras reports the mean loss and accuracy over the epoch so far,
    weighted by images. Two such cumulative means give the exact mean over the
    batches in between: (mean_k · n_k − mean_j · n_j) / (n_k − n_j), n = images seen
    this epoch. Every `every` batches (and at the last batch of each epoch) the
    recorder takes that window mean since its previous point, smooths it with an
    exponential moving average whose time constant is counted in images (about
    3 % of an epoch, at least 512 images; bias-corrected, so the first point is not
    pulled towards zero) and appends (epoch_position, loss, accuracy): epoch 0.5 is
    half-way through the first epoch, 1.0 its end, where the per-epoch point sits.

    `every` is chosen so one epoch gives about RUNNING_POINTS_PER_EPOCH points (all
    its batches when it has fewer) and a whole job at most RUNNING_POINTS_MAX.
    `update` does one integer comparison on the batches between points.
    """

    def __init__(self, batches_per_epoch: int, batch_size: int, num_images: int, epochs: int = 1, *,
                 points_per_epoch: int = RUNNING_POINTS_PER_EPOCH, max_points: int = RUNNING_POINTS_MAX) -> None:
        if batches_per_epoch < 1 or batch_size < 1 or num_images < 1 or epochs < 1:
            raise ValueError("RunningCurve needs at least one batch, image and epoch.")
        self.batches_per_epoch = int(batches_per_epoch)
        self.batch_size = int(batch_size)
        self.num_images = int(num_images)
        self.every = max(1, self.batches_per_epoch // max(1, points_per_epoch),
                         math.ceil(epochs * self.batches_per_epoch / max(1, max_points)))
        self.tau = max(512.0, 0.03 * self.num_images)   # smoothing time constant, in images
        self.points: list[tuple[float, float, float]] = []
        self._epoch = -1
        self._last_batch = 0
        self._last_n = 0
        self._last_loss_sum = 0.0
        self._last_acc_sum = 0.0
        self._ema: list[float] = [0.0, 0.0]
        self._weight = 0.0

    def images_after(self, batch: int) -> int:
        """Images seen in an epoch after `batch` batches (the last batch may be short)."""
        return min(batch * self.batch_size, self.num_images)

    def update(self, epoch: int, batch: int, loss: float | None, accuracy: float | None) -> bool:
        """Feed Keras's cumulative epoch means after `batch` batches (1-based) of `epoch` (0-based).

        Returns True when a point was appended. Batches may be skipped (steps_per_execution > 1
        reports every few); a report from an earlier batch than the last one is ignored.
        """
        if epoch != self._epoch:
            if epoch < self._epoch:
                return False
            self._epoch, self._last_batch, self._last_n = epoch, 0, 0
            self._last_loss_sum = self._last_acc_sum = 0.0
        if batch - self._last_batch < self.every and batch < self.batches_per_epoch:
            return False
        if batch <= self._last_batch or loss is None or not math.isfinite(loss):
            return False
        acc = accuracy if accuracy is not None and math.isfinite(accuracy) else 0.0
        n = self.images_after(batch)
        loss_sum, acc_sum = loss * n, acc * n
        window = n - self._last_n
        if window <= 0:
            return False
        w_loss = (loss_sum - self._last_loss_sum) / window
        w_acc = min(1.0, max(0.0, (acc_sum - self._last_acc_sum) / window))
        self._last_batch, self._last_n = batch, n
        self._last_loss_sum, self._last_acc_sum = loss_sum, acc_sum
        keep = math.exp(-window / self.tau)
        self._ema[0] = keep * self._ema[0] + (1 - keep) * w_loss
        self._ema[1] = keep * self._ema[1] + (1 - keep) * w_acc
        self._weight = keep * self._weight + (1 - keep)
        position = epoch + min(1.0, batch / self.batches_per_epoch)
        self.points.append((round(position, 5), self._ema[0] / self._weight, self._ema[1] / self._weight))
        return True
