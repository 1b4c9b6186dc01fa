"""Training: the data pipeline, and the TrainingJob that runs one `model.fit` in a
background thread — inside a Dask worker process for the app (`cnnkit.jobs`), in
the command line's own process for `python -m cnnkit train`. The settings of a
job are a `cnnkit.hyper.Hyper`.

What this module owns:
- Which images train and which validate (`split_indices`): a seeded,
  class-balanced choice by index, which the exported script repeats line for line.
- The data pipeline (`batches`, built on `cnnkit.pipeline.Batches`): images stay
  `uint8` and each job holds only index arrays; every batch is gathered by index
  and scaled to [0, 1] on its own (one-hot encoded, shifted and turned when asked),
  so no job ever holds a float copy of the dataset. Each epoch's order and each
  batch's augmentation are drawn from numpy generators seeded with (seed, epoch,
  batch), and TensorFlow runs with op determinism, so the exported script
  (`cnnkit.codegen`), which holds the same lines, trains the same model.
- `TrainingJob`: states queued → running → finished / stopped / failed. The
  training thread touches only the job; the page reads `job.snapshot()` (a
  frozen copy taken under the job's lock) and `job.events()`. Batch callbacks
  only set a few numbers under the lock, so streaming costs nothing measurable
  next to plain `model.fit` (see bench/bench_training.py).
- Where jobs run for the app, how they queue, share and stream: `cnnkit.jobs`.

A finished or stopped job is evaluated on the test set and saved as a Run
(`cnnkit.runs.save_run`); the command line and the app share this code path.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit import settings
from cnnkit.errors import SpecError, TrainingError
from cnnkit.hyper import OPTIMIZERS, Hyper
from cnnkit.spec import format_shape

# --- which images train, which validate ------------------------------------------------


def class_balanced_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """Every image index once, in a seeded random order in which any first k hold each class in proportion.

    Shuffle the indices with `np.random.default_rng(seed)`, give each image its position within its own
    class as a fraction of the class size (0, 1/n, 2/n, ...), and sort by that fraction (stable): like
    dealing the cards of every class in turn. CNN Lab and its exported scripts run these same lines.
    """
    labels = np.asarray(labels).reshape(-1)
    order = np.random.default_rng(seed).permutation(len(labels))
    rank = np.zeros(len(labels))
    for c in np.unique(labels):
        members = order[labels[order] == c]          # this class's images, in shuffled order
        rank[members] = np.arange(len(members)) / len(members)
    return order[np.argsort(rank[order], kind="stable")]


def split_indices(labels: np.ndarray, hyper: Hyper) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) index arrays, sorted: a seeded, class-balanced split chosen by index, no image copied.

    The first `hyper.train_images` images of `class_balanced_order` (all of them by default) are used;
    the first `validation` of those are held back for validation (`Hyper.split_sizes`), the rest train.
    """
    n_fit, n_val = hyper.split_sizes(len(labels))
    order = class_balanced_order(labels, hyper.seed)
    return np.sort(order[n_val:n_val + n_fit]), np.sort(order[:n_val])


def check_compatible(spec, dataset, refuse_cost: bool | None = None) -> None:
    """Raise TrainingError if the spec cannot be trained on this dataset (shape, classes, invalid layers);
    with `refuse_cost` (by default: in class mode) a model over a cost limit is refused too."""
    shape = tuple(int(s) for s in spec.input_shape)
    if shape != tuple(dataset.image_shape):
        raise TrainingError(
            f"The model expects {format_shape(shape)} images but {dataset.title} has "
            f"{format_shape(dataset.image_shape)} images; pick a preset for this dataset on the "
            "Architecture page or change the input shape.")
    if refuse_cost is None:
        refuse_cost = settings.get("class_mode")
    problems = spec.validate(num_classes=dataset.num_classes, refuse_cost=refuse_cost)
    if problems:
        more = f" ({len(problems) - 1} more problem{'s' if len(problems) > 2 else ''} on the Architecture page.)" \
            if len(problems) > 1 else ""
        raise TrainingError(f"The model cannot be trained yet. {problems[0]}{more}")


# --- data pipeline -------------------------------------------------------------------
def batches(x: np.ndarray, y: np.ndarray, indices: np.ndarray, batch_size: int, *, num_classes: int,
            one_hot: bool = False, shuffle: bool = False, seed: int = 0, augment: bool = False):
    """A `cnnkit.pipeline.Batches` over `indices` of x/y (fit it with `shuffle=False`: the order is its own)."""
    from cnnkit.pipeline import Batches

    return Batches(x, y, indices, batch_size, num_classes, one_hot=one_hot, shuffle=shuffle, seed=seed,
                   augment=augment)


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

    def since(self, start: int = 0) -> list[tuple[float, float, float]]:
        """The points from index `start` on (a poll sends only the new ones)."""
        return self.points[max(0, int(start)):]


# --- jobs -------------------------------------------------------------------------------


class JobState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        return self in (JobState.QUEUED, JobState.RUNNING)


@dataclass(frozen=True)
class JobEvent:
    """One thing that happened to a job: a state change, an epoch end, a message."""

    seq: int
    time: float
    kind: str                       # "state", "phase", "epoch"
    data: dict[str, Any]


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
        return overfitting_note(self.history)


def overfitting_note(history: dict[str, list[float]]) -> str | None:
    """A sentence when validation loss has turned up while training loss kept falling, else None.

    Fires when the latest validation loss is above its best so far (by more than 1 %)
    while training loss has kept falling over the same epochs: the Fashion-MNIST
    lesson's picture of over-fitting.
    """
    loss, val = history.get("loss") or [], history.get("val_loss") or []
    n = min(len(loss), len(val))
    if n < 3:
        return None
    best = int(np.argmin(val[:n]))
    if best >= n - 1:
        return None
    if val[n - 1] > val[best] * 1.01 and loss[n - 1] < loss[best]:
        return (f"Over-fitting: validation loss was lowest after epoch {best + 1} and has risen since, while "
                "training loss keeps falling — the model is memorising the training images. Try dropout, "
                "augmentation, early stopping or fewer epochs.")
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


def diverged(losses, factor: float | None = None) -> bool:
    """True when the latest loss has grown by orders of magnitude over the smallest one before it.

    `losses` are the running (epoch-mean) losses in order. Cross-entropy starts near ln(classes)
    (2.3 for ten) and falls; a loss `factor` times (default 1000×) its smallest value so far, and
    above 100, means the weights are blowing up (a learning rate far too high) — long before NaN.
    """
    from cnnkit.limits import DIVERGENCE_FACTOR

    values = [float(v) for v in losses if v is not None]
    if len(values) < 2 or not math.isfinite(values[-1]):
        return False
    best = min(values[:-1])
    return values[-1] > 100.0 and values[-1] > (factor or DIVERGENCE_FACTOR) * max(best, 1e-3)


def cost_notes(spec, hyper, num_train: int) -> list[str]:
    """The model's and the job's cost over CNN Lab's limits (cnnkit.limits), as sentences."""
    try:
        epochs = int(hyper.epochs)
    except (TypeError, ValueError):
        epochs = None
    images = min(num_train, getattr(hyper, "train_images", None) or num_train)
    return [str(p) for p in spec.cost_problems(epochs=epochs, train_images=int(images))]


def training_cost_warnings(spec, hyper, num_train: int, refuse_cost: bool | None = None) -> list[str]:
    """`cost_notes`, refused with a TrainingError when `refuse_cost` (by default: in class mode); on one's
    own machine, returned as warnings."""
    problems = cost_notes(spec, hyper, num_train)
    if refuse_cost is None:
        refuse_cost = settings.get("class_mode")
    if problems and refuse_cost:
        raise TrainingError(" ".join(problems))
    return problems


class TrainingJob:
    """One `model.fit` of a spec on a dataset, in a background thread.

    Create it (the settings are validated at once), then `start()` it — directly, or
    through a JobRegistry that starts it when a slot is free. Read `snapshot()` from
    any thread; `stop()` asks the model to stop after the current batch.
    """

    def __init__(self, spec, dataset, hyper: Hyper, *, owner: str | None = None, title: str = "",
                 runs_root: Path | str | None = None, save: bool = True, keep_model: bool = False,
                 extra_callbacks: list | None = None) -> None:
        self.hyper = hyper.validate(num_train=len(dataset.y_train))
        check_compatible(spec, dataset)
        self.warnings = training_cost_warnings(spec, self.hyper, len(dataset.y_train))
        self.id = uuid.uuid4().hex
        self.spec = spec
        self.dataset = dataset
        self.owner = owner
        self.title = title or (getattr(spec, "name", "") or "model")
        self.runs_root = Path(runs_root) if runs_root is not None else None
        self.save = save
        self.extra_callbacks = list(extra_callbacks or [])   # more Keras callbacks (benchmarks, tools)
        self.created = time.time()
        self.run = None                       # the saved Run once finished/stopped
        self.keep_model = keep_model          # keep the trained model in `trained_model` (a Dask worker sends it back)
        self.trained_model = None
        self.model = None                     # the Keras model while it trains
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop_requested = False
        self._on_done: Callable[[TrainingJob], None] | None = None
        self._events: list[JobEvent] = []
        self._train_idx, self._val_idx = split_indices(dataset.y_train, self.hyper)
        self._n_fit = len(self._train_idx)
        # Mutable progress, only touched under self._lock.
        self._state = JobState.QUEUED
        self._phase = "waiting"
        self._epoch = 0
        self._batch = 0
        self._batches = math.ceil(self._n_fit / self.hyper.batch_size)
        self._batch_loss: float | None = None
        self._batch_acc: float | None = None
        self._curve = RunningCurve(self._batches, self.hyper.batch_size, self._n_fit, self.hyper.epochs)
        self._history: dict[str, list[float]] = {}
        self._train_started: float | None = None
        self._train_ended: float | None = None
        self._queue_position: int | None = None
        self._message = ""
        self._metrics: dict[str, Any] = {}
        self._stopped_by: str | None = None
        self._eta_estimator = EtaEstimator()
        self._emit("state", state=JobState.QUEUED.value)

    # -- reading ---------------------------------------------------------------------
    @property
    def state(self) -> JobState:
        with self._lock:
            return self._state

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            elapsed = 0.0
            if self._train_started is not None:
                elapsed = (self._train_ended or time.time()) - self._train_started
            return JobSnapshot(
                id=self.id, owner=self.owner, title=self.title, dataset_name=self.dataset.name,
                state=self._state, phase=self._phase, epoch=self._epoch, epochs=self.hyper.epochs,
                batch=self._batch, batches=self._batches, batch_loss=self._batch_loss,
                batch_accuracy=self._batch_acc, history={k: list(v) for k, v in self._history.items()},
                elapsed=elapsed, eta=self._eta(elapsed), queue_position=self._queue_position,
                message=self._message, metrics=dict(self._metrics),
                run_path=str(self.run.path) if self.run is not None else None, hyper=self.hyper,
                running_points=tuple(self._curve.points))

    def running_points(self, since: int = 0) -> list[tuple[float, float, float]]:
        """The running-curve points from index `since` on: a poll asks only for the ones it lacks."""
        with self._lock:
            return self._curve.since(since)

    def _eta(self, elapsed: float) -> float | None:
        # Called under the lock: batches done of all batches, through a smoothed estimator.
        if self._state is not JobState.RUNNING or self._phase not in ("training", "validating"):
            return None
        total = self.hyper.epochs * self._batches
        done = self._epoch * self._batches + (self._batch if self._epoch < self.hyper.epochs else 0)
        return self._eta_estimator.update(done, total, elapsed)

    def events(self, since: int = 0) -> list[JobEvent]:
        """Events with seq ≥ since (state changes, phases, epoch ends), oldest first."""
        with self._lock:
            return [e for e in self._events if e.seq >= since]

    def wait(self, timeout: float | None = None) -> JobSnapshot:
        """Block until the job is finished, stopped or failed (or the timeout passes)."""
        self._done.wait(timeout)
        return self.snapshot()

    # -- control ------------------------------------------------------------------------
    def start(self) -> None:
        """Start training in a background thread (the registry calls this when a slot is free)."""
        with self._lock:
            if self._thread is not None or self._state is not JobState.QUEUED:
                return
            self._queue_position = None
            self._state = JobState.RUNNING
            self._phase = "preparing"
            self._emit_locked("state", state=JobState.RUNNING.value)
            self._thread = threading.Thread(target=self._run, name=f"cnnkit-train-{self.id[:8]}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current batch; a queued job is taken off the queue at once."""
        with self._lock:
            self._stop_requested = True
            if self._state is JobState.QUEUED:
                self._finish_locked(JobState.STOPPED, "Stopped before it started.")
                queued = True
            else:
                queued = False
            model = self.model
        if model is not None:
            model.stop_training = True
            model.stop_evaluating = True
        if queued:
            self._done.set()
            if self._on_done:
                self._on_done(self)

    # -- internals ---------------------------------------------------------------------------
    def _emit(self, kind: str, **data) -> None:
        with self._lock:
            self._emit_locked(kind, **data)

    def _emit_locked(self, kind: str, **data) -> None:
        self._events.append(JobEvent(len(self._events), time.time(), kind, data))

    def _finish_locked(self, state: JobState, message: str) -> None:
        self._state = state
        self._phase = "done"
        self._message = message
        self._queue_position = None
        if self._train_started is not None and self._train_ended is None:
            self._train_ended = time.time()
        self._emit_locked("state", state=state.value, message=message)

    def _set_phase(self, phase: str) -> None:
        with self._lock:
            if self._phase != phase:
                self._phase = phase
                self._emit_locked("phase", phase=phase)

    def _run(self) -> None:
        try:
            state, message = self._train()
        except (TrainingError, SpecError) as err:
            state, message = JobState.FAILED, str(err)
        except Exception as err:  # a bug or resource problem: say so, keep the server alive
            state, message = JobState.FAILED, (
                f"Training failed unexpectedly ({type(err).__name__}: {err}). "
                "Try a smaller model or batch size; if it happens again, tell the lecturer.")
        finally:
            self.model = None     # the Run on disk keeps the weights; free the memory here
        with self._lock:
            self._finish_locked(state, message)
        self._done.set()
        if self._on_done:
            self._on_done(self)

    def _train(self) -> tuple[JobState, str]:
        import keras

        h, ds = self.hyper, self.dataset
        one_hot = h.labels == "one_hot"
        train_idx, val_idx = self._train_idx, self._val_idx
        _deterministic_ops()
        with _BUILD_LOCK:
            # Seeding is process-wide in Keras, so seed + build happen together: the
            # initial weights depend only on this job's seed even with jobs in parallel.
            keras.utils.set_random_seed(h.seed)
            model = self.spec.to_keras()
            optimizer = h.make_optimizer(total_steps=h.epochs * self._batches)
            model.compile(optimizer=optimizer, loss=h.loss, metrics=["accuracy"])
        kw = dict(num_classes=ds.num_classes, one_hot=one_hot)
        train = batches(ds.x_train, ds.y_train, train_idx, h.batch_size, shuffle=True, seed=h.seed,
                        augment=h.augment, **kw)
        val = batches(ds.x_train, ds.y_train, val_idx, h.batch_size, **kw) if len(val_idx) else None
        callbacks: list = [_job_callback(self), *self.extra_callbacks]
        early = None
        if h.early_stopping:
            early = keras.callbacks.EarlyStopping(monitor="val_loss" if val is not None else "loss",
                                                  patience=h.patience, restore_best_weights=True)
            callbacks.append(early)
        with self._lock:
            self.model = model
            if self._stop_requested:
                return JobState.STOPPED, "Stopped before training began."
            self._train_started = time.time()
            self._phase = "training"
            self._emit_locked("phase", phase="training")
        # shuffle=False: the pipeline already shuffles the indices every epoch.
        model.fit(train, validation_data=val, epochs=h.epochs, callbacks=callbacks, verbose=0, shuffle=False)
        with self._lock:
            self._train_ended = time.time()
            nan = self._stopped_by == "nan"
            user_stop = self._stop_requested
            epochs_run = self._epoch
            batches_run = self._epoch * self._batches + (self._batch if self._epoch < h.epochs else 0)
            history = {k: list(v) for k, v in self._history.items()}
            seconds = self._train_ended - self._train_started
        if nan:
            return JobState.FAILED, self._message
        if user_stop and batches_run == 0:
            return JobState.STOPPED, "Stopped before the first batch finished; nothing was saved."
        early_stopped = early is not None and early.stopped_epoch > 0
        # Test metrics: one pass over the test set, batch by batch like training.
        self._set_phase("testing")
        model.stop_evaluating = False
        test = batches(ds.x_test, ds.y_test, np.arange(len(ds.y_test)), max(h.batch_size, 256), **kw)
        result = model.evaluate(test, verbose=0, return_dict=True)
        metrics = {
            "test_loss": float(result["loss"]), "test_accuracy": float(result["accuracy"]),
            "train_seconds": round(seconds, 3), "epochs_run": epochs_run,
            "stopped_early": bool(user_stop or early_stopped),
            "stopped_by": "user" if user_stop else ("early_stopping" if early_stopped else None),
            "num_train": len(train_idx), "num_validation": len(val_idx),
            "num_test": len(ds.y_test),
        }
        if early_stopped and early.best_epoch is not None:
            metrics["best_epoch"] = int(early.best_epoch) + 1
        with self._lock:
            self._metrics = dict(metrics)
        if self.keep_model:
            self.trained_model = model
        if self.save:
            from cnnkit import runs

            self._set_phase("saving")
            self.run = runs.save_run(model, self.spec, h, history, metrics, dataset_name=ds.name,
                                     root=self.runs_root, owner=self.owner, title=self.title)
        acc = f"{metrics['test_accuracy']:.1%}"
        if user_stop:
            return JobState.STOPPED, (f"Stopped by you after {batches_run} batches ({epochs_run} full "
                                      f"epoch{'s' if epochs_run != 1 else ''}); "
                                      f"the model so far is saved; its test accuracy is {acc}.")
        if early_stopped:
            return JobState.FINISHED, (f"Early stopping ended training after epoch {epochs_run}: validation loss "
                                       f"had not improved for {h.patience} epochs. Test accuracy {acc}.")
        return JobState.FINISHED, (f"Finished {epochs_run} epoch{'s' if epochs_run != 1 else ''} in "
                                   f"{format_seconds(seconds)}. Test accuracy {acc}.")

    def _nan(self, batch: int, diverged_from: float | None = None, diverged_to: float | None = None) -> None:
        with self._lock:
            h = self.hyper
            info = OPTIMIZERS[h.optimizer]
            lower = min(info.default_lr, h.learning_rate / 10)
            self._stopped_by = "nan"
            what = ("the loss became NaN (not a number)" if diverged_to is None else
                    f"the loss grew from {diverged_from:.3g} to {diverged_to:.3g}, orders of magnitude above its "
                    "best, so training was diverging")
            self._message = (
                f"Training stopped in epoch {self._epoch + 1}, batch {batch}: {what}. "
                f"The weights blew up, most likely because the learning rate {h.learning_rate:g} is too high for "
                f"{info.title}; try {lower:g} and start again.")
        model = self.model
        if model is not None:
            model.stop_training = True


_BUILD_LOCK = threading.Lock()


def _deterministic_ops() -> None:
    """Make TensorFlow's ops give the same result every run (process-wide, once), as the exported script does."""
    import tensorflow as tf

    if not getattr(_deterministic_ops, "done", False):
        tf.config.experimental.enable_op_determinism()
        _deterministic_ops.done = True


_CALLBACK_CLASS = None


def _job_callback(job: TrainingJob):
    """The job's Keras callback; the class is made on first use so importing this module skips Keras."""
    global _CALLBACK_CLASS
    if _CALLBACK_CLASS is None:
        _CALLBACK_CLASS = _make_callback_class()
    return _CALLBACK_CLASS(job)


def _make_callback_class():
    import keras

    class JobCallback(keras.callbacks.Callback):
        """Copies progress into the job. Each batch only sets a few numbers under the lock."""

        def __init__(self, job: TrainingJob) -> None:
            super().__init__()
            self.job = job
            self.epoch = 0
            self.best_loss: float | None = None  # the smallest running loss so far, for the divergence guard

        def on_train_begin(self, logs=None):
            if self.job._stop_requested:
                self.model.stop_training = True

        def on_epoch_begin(self, epoch, logs=None):
            job = self.job
            self.epoch = epoch
            with job._lock:
                job._batch = 0
                job._phase = "training"

        def on_train_batch_end(self, batch, logs=None):
            job = self.job
            loss = logs.get("loss") if logs else None
            if loss is not None and not math.isfinite(loss):
                job._nan(batch + 1)
                self.model.stop_training = True
                return
            if loss is not None:
                if self.best_loss is not None and diverged((self.best_loss, loss)):
                    job._nan(batch + 1, diverged_from=self.best_loss, diverged_to=float(loss))
                    self.model.stop_training = True
                    return
                self.best_loss = float(loss) if self.best_loss is None else min(self.best_loss, float(loss))
            with job._lock:
                job._batch = batch + 1
                job._batch_loss = loss
                job._batch_acc = logs.get("accuracy") if logs else None
                job._curve.update(self.epoch, batch + 1, loss, job._batch_acc)
                if job._stop_requested:
                    self.model.stop_training = True

        def on_test_begin(self, logs=None):
            job = self.job
            with job._lock:
                if job._phase == "training":
                    job._phase = "validating"
            if job._stop_requested:
                self.model.stop_evaluating = True

        def on_test_batch_end(self, batch, logs=None):
            if self.job._stop_requested:
                self.model.stop_evaluating = True

        def on_epoch_end(self, epoch, logs=None):
            job = self.job
            logs = logs or {}
            with job._lock:
                if job._stopped_by == "nan" or (job._stop_requested and job._batch < job._batches):
                    return       # a partial epoch is not an epoch: keep the curves honest
                for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
                    if k in logs:
                        job._history.setdefault(k, []).append(float(logs[k]))
                job._epoch = epoch + 1
                job._batch = 0          # validation is done; the next epoch starts from its first batch
                job._phase = "training"
                job._emit_locked("epoch", epoch=epoch + 1, **{k: float(v) for k, v in logs.items()})

    return JobCallback


class TerminalProgress:
    """The command line's progress bar: redrawn in place on a terminal, one line per epoch otherwise."""

    def __init__(self, stream, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._epochs_shown = 0
        self._last = ""

    def __call__(self, snap: JobSnapshot) -> None:
        text = describe_progress(snap)
        for e in range(self._epochs_shown, len(snap.history.get("loss", []))):
            self._clear()
            self.stream.write(f"epoch {e + 1}/{snap.epochs}: " + "  ".join(
                f"{k} {v[e]:.4f}" for k, v in snap.history.items() if len(v) > e) + "\n")
            self._epochs_shown = e + 1
        if self.tty and snap.active:
            filled = int(round(snap.job_fraction * self.width))
            line = f"[{'#' * filled}{'.' * (self.width - filled)}] {text.epoch} | {text.job}"
            self._clear()
            self.stream.write(line)
            self._last = line
        self.stream.flush()

    def _clear(self) -> None:
        if self.tty and self._last:
            self.stream.write("\r" + " " * len(self._last) + "\r")
            self._last = ""

    def close(self, snap: JobSnapshot) -> None:
        self(snap)
        self._clear()
        self.stream.write(snap.message + "\n")
        self.stream.flush()


def train(spec, dataset, hyper: Hyper, *, owner: str | None = None, title: str = "",
          runs_root: Path | str | None = None, on_progress: Callable[[JobSnapshot], None] | None = None,
          poll_seconds: float = 0.2) -> TrainingJob:
    """Train one job to the end in this thread's view (used by the command line and the benchmarks).

    Same TrainingJob as the app; `on_progress` is called with a snapshot every `poll_seconds`.
    """
    job = TrainingJob(spec, dataset, hyper, owner=owner, title=title, runs_root=runs_root)
    job.start()
    try:
        while not job._done.wait(poll_seconds):
            if on_progress:
                on_progress(job.snapshot())
    except KeyboardInterrupt:
        job.stop()
        job.wait()
    if on_progress:
        on_progress(job.snapshot())
    return job
