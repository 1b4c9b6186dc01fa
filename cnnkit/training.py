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
  training thread touches only the job; readers take `job.snapshot()` (a frozen
  `cnnkit.progress.JobSnapshot` copied under the job's lock). Its Keras callback
  reports through a few public methods that only set numbers under the lock, so
  streaming costs nothing measurable next to plain `model.fit` (see
  bench/bench_training.py); a loss that turns NaN or blows up (`diverged`) fails the
  job with a sentence about the learning rate.
- The cost policy: `cost_notes` (the model's and job's cost over `cnnkit.limits`) and
  `training_cost_warnings` (refused in class mode, warned about otherwise).
- States, snapshots, the running curve, the ETA and the sentences about progress:
  `cnnkit.progress`; the command line's progress bar: `cnnkit.terminal_progress`.
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
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit import heap, model_pool, settings
from cnnkit.errors import SpecError, TrainingError
from cnnkit.hyper import OPTIMIZERS, Hyper
from cnnkit.progress import EtaEstimator, JobSnapshot, JobState, RunningCurve, format_seconds
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
    except (TypeError, ValueError, OverflowError):   # NaN or Infinity from a file: Hyper.validate says so
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

    Create it (the settings are validated at once), then `start()` it. Read `snapshot()` from
    any thread; `stop()` asks the model to stop after the current batch. The job's Keras
    callback reports through the methods under "-- told by the Keras callback", each of which
    sets a few numbers under the job's lock.
    """

    def __init__(self, spec, dataset, hyper: Hyper, *, owner: str | None = None, title: str = "",
                 runs_root: Path | str | None = None, save: bool = True, keep_model: bool = False,
                 extra_callbacks: list | None = None) -> None:
        self.hyper = hyper.validate(num_train=len(dataset.y_train))
        check_compatible(spec, dataset)
        training_cost_warnings(spec, self.hyper, len(dataset.y_train))   # refused here in class mode
        self.id = uuid.uuid4().hex
        self.spec = spec
        self.dataset = dataset
        self.owner = owner
        self.title = title or (getattr(spec, "name", "") or "model")
        self.runs_root = Path(runs_root) if runs_root is not None else None
        self.save = save
        self.extra_callbacks = list(extra_callbacks or [])   # more Keras callbacks (benchmarks, tools)
        self.run = None                       # the saved Run once finished/stopped
        self.keep_model = keep_model          # keep the trained model in `trained_model` (a Dask worker sends it back)
        self.trained_model = None
        self.model = None                     # the Keras model while it trains
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._stop_requested = False
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
        self._message = ""
        self._metrics: dict[str, Any] = {}
        self._stopped_by: str | None = None
        self._eta_estimator = EtaEstimator()
        self._marks: list[tuple[str, float]] = []   # (phase ended, time.time()): where the job's time went

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
                elapsed=elapsed, eta=self._eta(elapsed), queue_position=None,
                message=self._message, metrics=dict(self._metrics),
                run_path=str(self.run.path) if self.run is not None else None, hyper=self.hyper,
                running_points=tuple(self._curve.points))

    def _eta(self, elapsed: float) -> float | None:
        # Called under the lock: batches done of all batches, through a smoothed estimator.
        if self._state is not JobState.RUNNING or self._phase not in ("training", "validating"):
            return None
        total = self.hyper.epochs * self._batches
        done = self._epoch * self._batches + (self._batch if self._epoch < self.hyper.epochs else 0)
        return self._eta_estimator.update(done, total, elapsed)

    def wait(self, timeout: float | None = None) -> JobSnapshot:
        """Block until the job is finished, stopped or failed (or the timeout passes)."""
        self._done.wait(timeout)
        return self.snapshot()

    # -- control ------------------------------------------------------------------------
    def start(self) -> None:
        """Start training in a background thread."""
        with self._lock:
            if self._thread is not None or self._state is not JobState.QUEUED:
                return
            self._state = JobState.RUNNING
            self._phase = "preparing"
            self._thread = threading.Thread(target=self._run, name=f"cnnkit-train-{self.id[:8]}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current batch; a job not yet started stops at once."""
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

    # -- told by the Keras callback -----------------------------------------------------
    def mark(self, phase: str) -> None:
        """Note that `phase` has just ended (cheap: one append); `phase_seconds` turns the marks into durations."""
        self._marks.append((phase, time.time()))

    def phase_seconds(self, since: float | None = None) -> dict[str, float]:
        """Seconds per phase in order (build, first batch, each epoch's training and validation, test), each from
        the end of the one before (the first from `since`, else from when training began)."""
        out: dict[str, float] = {}
        last = since if since is not None else (self._marks[0][1] if self._marks else 0.0)
        for phase, t in self._marks:
            out[phase] = round(out.get(phase, 0.0) + max(0.0, t - last), 4)
            last = t
        return out

    @property
    def stop_requested(self) -> bool:
        """Whether `stop()` was called: the callback then ends training or evaluation at once."""
        return self._stop_requested

    def epoch_began(self) -> None:
        with self._lock:
            self._batch = 0
            self._phase = "training"

    def batch_ended(self, epoch: int, batch: int, loss: float | None, accuracy: float | None) -> bool:
        """Record training batch `batch` (1-based) of `epoch` (0-based) and Keras's running means; True
        when the job was asked to stop."""
        with self._lock:
            self._batch = batch
            self._batch_loss = loss
            self._batch_acc = accuracy
            self._curve.update(epoch, batch, loss, accuracy)
            return self._stop_requested

    def validation_began(self) -> bool:
        """The validation pass of an epoch starts; True when the job was asked to stop."""
        with self._lock:
            if self._phase == "training":
                self._phase = "validating"
        return self._stop_requested

    def epoch_ended(self, epoch: int, logs: dict[str, Any]) -> None:
        """Add a whole epoch's losses and accuracies to the history (a partial or failed epoch is none)."""
        with self._lock:
            if self._stopped_by == "nan" or (self._stop_requested and self._batch < self._batches):
                return       # a partial epoch is not an epoch: keep the curves honest
            for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
                if k in logs:
                    self._history.setdefault(k, []).append(float(logs[k]))
            self._epoch = epoch + 1
            self._batch = 0          # validation is done; the next epoch starts from its first batch
            self._phase = "training"

    def loss_blew_up(self, batch: int, diverged_from: float | None = None,
                     diverged_to: float | None = None) -> None:
        """Stop training and fail the job with a sentence about the learning rate: the loss of `batch`
        (1-based) became NaN, or grew from `diverged_from` to `diverged_to` (see `diverged`)."""
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

    # -- internals ---------------------------------------------------------------------------
    def _finish_locked(self, state: JobState, message: str) -> None:
        self._state = state
        self._phase = "done"
        self._message = message
        if self._train_started is not None and self._train_ended is None:
            self._train_ended = time.time()

    def _set_phase(self, phase: str) -> None:
        with self._lock:
            self._phase = phase

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

    def _train(self) -> tuple[JobState, str]:
        import keras

        h, ds = self.hyper, self.dataset
        one_hot = h.labels == "one_hot"
        train_idx, val_idx = self._train_idx, self._val_idx
        self.mark("start")
        deterministic_ops()
        # Seeding is process-wide in Keras, so seed + build happen together under the lock: the initial weights
        # depend only on this job's seed even with jobs in parallel. A kept compiled model may be reused.
        model = model_pool.compiled_model(self.spec, h, total_steps=h.epochs * self._batches, lock=BUILD_LOCK)
        self.mark("build")
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
        self.mark("test")
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
        metrics["phases"] = self.phase_seconds()
        with self._lock:
            self._metrics = dict(metrics)
        if self.keep_model:
            self.trained_model = model     # its holder gives it to model_pool when done with it
        if self.save:
            from cnnkit import runs

            self._set_phase("saving")
            self.run = runs.save_run(model, self.spec, h, history, metrics, dataset_name=ds.name,
                                     root=self.runs_root, owner=self.owner, title=self.title)
        if not self.keep_model:
            model_pool.give(model)
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



BUILD_LOCK = threading.Lock()


def deterministic_ops() -> None:
    """Make TensorFlow's ops give the same result every run (process-wide, once), as the exported script does."""
    import tensorflow as tf

    if not getattr(deterministic_ops, "done", False):
        tf.config.experimental.enable_op_determinism()
        deterministic_ops.done = True


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
        """Copies progress into the job (its public surface). Each batch only sets a few numbers under its lock."""

        def __init__(self, job: TrainingJob) -> None:
            super().__init__()
            self.job = job
            self.epoch = 0
            self.best_loss: float | None = None  # the smallest running loss so far, for the divergence guard
            self.first_batch_seen = False

        def on_train_begin(self, logs=None):
            if self.job.stop_requested:
                self.model.stop_training = True

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.job.epoch_began()

        def on_train_batch_end(self, batch, logs=None):
            job = self.job
            if batch == 0:
                heap.tune()     # after TensorFlow's dataset op pinned the heap (cnnkit.heap)
            if not self.first_batch_seen:
                self.first_batch_seen = True
                job.mark("first batch")     # building the data, tracing the train step, the first steps
            loss = logs.get("loss") if logs else None
            if loss is not None and not math.isfinite(loss):
                job.loss_blew_up(batch + 1)
                self.model.stop_training = True
                return
            if loss is not None:
                if self.best_loss is not None and diverged((self.best_loss, loss)):
                    job.loss_blew_up(batch + 1, diverged_from=self.best_loss, diverged_to=float(loss))
                    self.model.stop_training = True
                    return
                self.best_loss = float(loss) if self.best_loss is None else min(self.best_loss, float(loss))
            if job.batch_ended(self.epoch, batch + 1, loss, logs.get("accuracy") if logs else None):
                self.model.stop_training = True

        def on_test_begin(self, logs=None):
            self.job.mark(f"epoch {self.epoch + 1}")
            if self.job.validation_began():
                self.model.stop_evaluating = True

        def on_test_batch_end(self, batch, logs=None):
            if batch == 0:
                heap.tune()
            if self.job.stop_requested:
                self.model.stop_evaluating = True

        def on_epoch_end(self, epoch, logs=None):
            if "val_loss" in (logs or {}):
                self.job.mark(f"validation {epoch + 1}")
            else:
                self.job.mark(f"epoch {epoch + 1}")
            self.job.epoch_ended(epoch, logs or {})

    return JobCallback


def train(spec, dataset, hyper: Hyper, *, owner: str | None = None, title: str = "",
          runs_root: Path | str | None = None, on_progress: Callable[[JobSnapshot], None] | None = None,
          poll_seconds: float = 0.2) -> TrainingJob:
    """Train one job to the end in this thread's view (used by the command line and the benchmarks).

    Same TrainingJob as the app; `on_progress` is called with a snapshot every `poll_seconds`.
    """
    job = TrainingJob(spec, dataset, hyper, owner=owner, title=title, runs_root=runs_root)
    job.start()
    try:
        while (snap := job.wait(poll_seconds)).active:
            if on_progress:
                on_progress(snap)
    except KeyboardInterrupt:
        job.stop()
        job.wait()
    if on_progress:
        on_progress(job.snapshot())
    return job
