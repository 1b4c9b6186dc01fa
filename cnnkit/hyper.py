"""Hyper: the training settings of one run, as plain data — the twin of `spec.py`.

`Hyper` is the only description of training settings: presets suggest one, the
training page edits one, a TrainingJob trains with one, a Run stores one
(`hyper.json`), the command line builds one from its flags and the exported
script is written from one. It goes to and from JSON (`to_dict` / `from_dict`,
unknown keys refused with a sentence), and `validate()` says in a student's words
what is wrong with it (`TrainingError`) or returns a normalised copy.

Also here: the optimizers (`OPTIMIZERS`, with their Keras class and usual
learning rate), the learning-rate schedules (`LR_SCHEDULES`), the label
encodings (`LABEL_MODES`), the one-line explanations the training page shows
(`HELP`), and the Keras optimizer a Hyper describes (`make_optimizer`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from cnnkit.errors import TrainingError
from cnnkit.layers import shown as _shown  # NaN and Infinity as JSON writes them


@dataclass(frozen=True)
class OptimizerInfo:
    key: str
    title: str
    keras_class: str  # the class in keras.optimizers
    default_lr: float
    explanation: str


OPTIMIZERS: dict[str, OptimizerInfo] = {
    "adam": OptimizerInfo(
        "adam", "Adam", "Adam", 0.001,
        "Adapts a step size for every weight from recent gradients; a safe first choice (usual learning rate "
        "0.001)."),
    "sgd": OptimizerInfo(
        "sgd", "SGD with momentum", "SGD", 0.01,
        "Plain gradient descent plus momentum (0.9 is usual): simple and robust, usually needs more epochs "
        "(usual learning rate 0.01)."),
    "rmsprop": OptimizerInfo(
        "rmsprop", "RMSprop", "RMSprop", 0.001,
        "Divides each step by a running average of recent gradient sizes; close cousin of Adam (usual learning "
        "rate 0.001)."),
    "adadelta": OptimizerInfo(
        "adadelta", "Adadelta", "Adadelta", 1.0,
        "Adapts steps from a window of past updates; the lessons used learning rate 1.0 "
        "(Keras 3's default of 0.001 barely learns)."),
}

LR_SCHEDULES: dict[str, str] = {
    "constant": "The same learning rate from the first batch to the last.",
    "cosine": "Starts at the learning rate and glides down to zero along a cosine over all planned batches, "
              "so the last epochs take small, steady steps.",
}

LABEL_MODES: dict[str, str] = {
    "integer": "Integer labels (0–9) with sparse categorical cross-entropy.",
    "one_hot": "One-hot label vectors with categorical cross-entropy (the same loss, written the other way).",
}

# One line per setting, shown next to its widget on the training page.
HELP: dict[str, str] = {
    "optimizer": "How the weights are updated from the gradient after each batch.",
    "learning_rate": "How big each update step is: too small learns slowly, too big makes the loss explode.",
    "lr_schedule": "Constant keeps the learning rate; cosine lowers it smoothly to zero by the last batch, "
                   "which settles the weights and usually adds accuracy.",
    "momentum": "SGD only: how much of the previous step carries into the next, smoothing the path downhill.",
    "batch_size": "Images per weight update: bigger batches run faster per image but update less often.",
    "epochs": "How many times the model sees every training image.",
    "validation_split": "Share of training images held back (never trained on) to watch for over-fitting.",
    "labels": "How the answers are written: integers with sparse cross-entropy, or one-hot vectors.",
    "augment": "Shift and rotate training images slightly each epoch, so the model cannot memorise them.",
    "early_stopping": "Stop when validation loss has not improved for a few epochs and keep the best weights.",
    "patience": "Epochs without improvement that early stopping waits before it stops.",
    "seed": "Fixes the random start (weights, shuffling, validation split) so a run can be repeated.",
    "train_images": "Train on a smaller share of the training images (every class in proportion, chosen by the "
                    "seed), or on all of them.",
}

MAX_EPOCHS = 200
MAX_LEARNING_RATE = 10.0
MAX_SEED = 2**31 - 1


def optimizer_key(name: str) -> str:
    """Normalise an optimizer name ("Adam", "SGD", "sgd_momentum") to a key of OPTIMIZERS."""
    key = str(name).strip().lower().replace(" ", "").replace("-", "").replace("_", "")
    if key.startswith("sgd"):
        key = "sgd"
    if key not in OPTIMIZERS:
        raise TrainingError(
            f"Unknown optimizer {name!r}; choose one of: {', '.join(o.title for o in OPTIMIZERS.values())}.")
    return key


@dataclass(frozen=True)
class Hyper:
    """The training settings of one run. Build one, `validate()` it, pass it around; it never changes."""

    optimizer: str = "adam"
    learning_rate: float = 0.001
    lr_schedule: str = "constant"   # a key of LR_SCHEDULES
    momentum: float = 0.9           # SGD only
    batch_size: int = 128
    epochs: int = 3
    validation_split: float = 0.1
    labels: str = "integer"         # a key of LABEL_MODES
    augment: bool = False
    early_stopping: bool = False
    patience: int = 2
    seed: int = 42
    train_images: int | None = None  # a seeded, class-balanced subset of this many training images; None (or
    #                                  more than the dataset has): all of them

    # --- JSON ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> Hyper:
        """Read settings written by `to_dict` (missing keys take the defaults).

        Raises TrainingError with a sentence for anything but a JSON object of known settings.
        Values are checked by `validate()`, as a ModelSpec's are by its own `validate()`.
        """
        if not isinstance(d, dict):
            raise TrainingError("Training settings must be a JSON object such as "
                                '{"optimizer": "adam", "epochs": 3}.')
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [str(k) for k in d if k not in names]
        if unknown:
            raise TrainingError(
                f"Unknown training setting{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                f"the settings are: {', '.join(names)}.")
        return cls(**d)

    def replace(self, **changes: Any) -> Hyper:
        """A copy with some settings changed (None leaves a setting as it is)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    # --- validation ------------------------------------------------------------
    def validate(self, num_train: int | None = None) -> Hyper:
        """Raise TrainingError with a sentence if a setting is unusable; return a normalised copy.

        `num_train` is the number of training images in the dataset (before the validation split);
        with it the image subset and the batch size are checked against the images there are.
        """
        opt = optimizer_key(self.optimizer)
        lr = _number(self.learning_rate, "learning rate")
        usual = f"try {OPTIMIZERS[opt].default_lr:g} for {OPTIMIZERS[opt].title}"
        if not lr > 0:
            raise TrainingError(f"The learning rate must be greater than 0 (it is {lr:g}); {usual}.")
        if lr > MAX_LEARNING_RATE:
            raise TrainingError(f"A learning rate of {lr:g} is far too large (the most this app allows is "
                                f"{MAX_LEARNING_RATE:g}); {usual}.")
        schedule = str(self.lr_schedule).strip().lower()
        if schedule not in LR_SCHEDULES:
            raise TrainingError(f"The learning-rate schedule must be one of {', '.join(LR_SCHEDULES)}, "
                                f"not {self.lr_schedule!r}.")
        momentum = _number(self.momentum, "momentum")
        if not 0 <= momentum < 1:
            raise TrainingError(f"Momentum must be from 0 up to (not including) 1 (it is {momentum:g}); 0.9 is usual.")
        epochs = _whole(self.epochs, "epochs")
        if epochs < 1:
            raise TrainingError(f"Epochs must be at least 1 (it is {epochs}); one epoch shows every image once.")
        if epochs > MAX_EPOCHS:
            raise TrainingError(f"{epochs} epochs is more than this app allows ({MAX_EPOCHS}); "
                                f"use fewer epochs, or early stopping.")
        batch = _whole(self.batch_size, "batch size")
        if batch < 1:
            raise TrainingError(f"The batch size must be at least 1 (it is {batch}); 32 to 256 are usual.")
        vs = _number(self.validation_split, "validation split")
        if not 0 <= vs <= 0.5:
            raise TrainingError(
                f"The validation split must be between 0 and 0.5 (it is {vs:g}); 0.1 to 0.2 are usual.")
        if self.labels not in LABEL_MODES:
            raise TrainingError(f"Labels must be 'integer' or 'one_hot', not {self.labels!r}.")
        patience = _whole(self.patience, "patience")
        if patience < 1:
            raise TrainingError(f"Early-stopping patience must be at least 1 epoch (it is {patience}).")
        seed = _whole(self.seed, "seed")
        if not 0 <= seed <= MAX_SEED:
            raise TrainingError(f"The seed must be a whole number from 0 to {MAX_SEED} (it is {seed}).")
        subset = None if self.train_images is None else _whole(self.train_images, "number of training images")
        if subset is not None and subset < 2:
            raise TrainingError(f"Train on at least 2 images (the setting is {subset}), or on all of them.")
        for name in ("augment", "early_stopping"):
            if not isinstance(getattr(self, name), bool):
                raise TrainingError(f"The setting {name!r} must be true or false, not {getattr(self, name)!r}.")
        h = dataclasses.replace(self, optimizer=opt, learning_rate=lr, lr_schedule=schedule, momentum=momentum,
                                epochs=epochs, batch_size=batch, validation_split=vs, patience=patience, seed=seed,
                                train_images=subset)
        if num_train is not None:
            n_fit, n_val = h.split_sizes(num_train)
            if n_fit < 1:
                raise TrainingError(f"No training images are left after holding back {n_val} for validation; "
                                    "use a smaller validation split.")
            if batch > n_fit:
                raise TrainingError(f"The batch size {batch} is larger than the {n_fit} training images; "
                                    f"choose a batch size of at most {n_fit}.")
        return h

    # --- what it means ------------------------------------------------------------
    def split_sizes(self, num_train: int) -> tuple[int, int]:
        """(images trained on, images held back for validation) out of a dataset's `num_train` training images."""
        used = num_train if self.train_images is None else min(int(self.train_images), num_train)
        n_val = 0 if self.validation_split <= 0 else max(1, int(round(used * float(self.validation_split))))
        return used - n_val, n_val

    @property
    def loss(self) -> str:
        """The Keras loss that matches the label encoding."""
        return "categorical_crossentropy" if self.labels == "one_hot" else "sparse_categorical_crossentropy"

    def describe(self) -> str:
        """The settings in one line, e.g. "Adam, learning rate 0.003, batch 64, 8 epochs, …"."""
        opt = OPTIMIZERS[optimizer_key(self.optimizer)]
        title = f"SGD with momentum {self.momentum:g}" if opt.key == "sgd" else opt.title
        images = f", {self.train_images:,} training images" if self.train_images else ""
        extra = [w for w, on in (("cosine decay", self.lr_schedule == "cosine"), ("one-hot labels",
                                 self.labels == "one_hot"), ("augmented", self.augment),
                                 (f"early stopping (patience {self.patience})", self.early_stopping)) if on]
        return (f"{title}, learning rate {self.learning_rate:g}, batch {self.batch_size}, "
                f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}, validation {self.validation_split:.0%}, "
                f"seed {self.seed}{images}" + (", " + ", ".join(extra) if extra else ""))

    def make_optimizer(self, total_steps: int | None = None):
        """A fresh Keras optimizer for one job (optimizers hold per-model state).

        With the cosine schedule and `total_steps` (the planned number of batches) the learning rate
        decays from `learning_rate` to zero at the last planned batch.
        """
        import keras

        info = OPTIMIZERS[optimizer_key(self.optimizer)]
        rate = learning_rate_schedule(float(self.learning_rate), self.lr_schedule, total_steps)
        extra = {"momentum": float(self.momentum)} if info.key == "sgd" else {}
        return getattr(keras.optimizers, info.keras_class)(learning_rate=rate, **extra)


def learning_rate_schedule(learning_rate: float, schedule: str = "constant", total_steps: int | None = None):
    """The learning rate to give a Keras optimizer: a number, or a schedule over `total_steps` batches."""
    if schedule == "constant" or not total_steps:
        return learning_rate
    if schedule not in LR_SCHEDULES:
        raise TrainingError(f"The learning-rate schedule must be one of {', '.join(LR_SCHEDULES)}, not {schedule!r}.")
    import keras

    # Decays to 0 exactly at the last planned batch; the optimizer's own step counter drives it,
    # so it carries on correctly across several fit() calls on the same model.
    return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=int(total_steps), alpha=0.0)


def _number(v: Any, what: str, kind: str = "a number") -> float:
    if isinstance(v, bool):
        raise TrainingError(f"The {what} must be {kind}, not {v!r}.")
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise TrainingError(f"The {what} must be {kind}, not {v!r}.") from None
    except OverflowError:  # an int beyond a float's range
        raise TrainingError(f"The {what} must be {kind} of a usual size, not one of {len(str(v))} digits.") from None
    if not math.isfinite(x):
        raise TrainingError(f"The {what} must be {kind}, not {_shown(x)}.")
    return x


def _whole(v: Any, what: str) -> int:
    x = _number(v, what, "a whole number")
    if x != int(x):
        raise TrainingError(f"The {what} must be a whole number, not {_shown(v)}.")
    return int(x)


__all__ = [
    "HELP",
    "LABEL_MODES",
    "LR_SCHEDULES",
    "MAX_EPOCHS",
    "MAX_LEARNING_RATE",
    "MAX_SEED",
    "OPTIMIZERS",
    "Hyper",
    "OptimizerInfo",
    "learning_rate_schedule",
    "optimizer_key",
]
