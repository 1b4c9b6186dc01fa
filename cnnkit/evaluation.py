"""Evaluation: how well a trained model does on a dataset's test split.

This module owns everything the evaluation page and `python -m cnnkit evaluate`
compute: one batched pass over the test images (loss, accuracy and every
probability at once), scikit-learn's classification report and confusion
matrix as tables (counts and row-normalised), the test images behind any cell
of it, the most confident mistakes, a random sample with predictions, the
best epoch of a training history, and the command line's report.

Comparing runs side by side is `run_comparison`; loading an uploaded `.keras`
file safely is `model_files`. Keras is imported only to run a model, and
scikit-learn only when a report or matrix is first computed.
"""

from __future__ import annotations

import functools
import math
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cnnkit import limits
from cnnkit.errors import ModelFileError
from cnnkit.spec import format_shape

REPORT_COLUMNS = ("precision", "recall", "f1-score", "support")
DEFAULT_BATCH_SIZE = 500


# --- report and confusion matrix on plain arrays -------------------------------
def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """scikit-learn's confusion matrix over classes 0 … num_classes-1: row = true class, column = predicted."""
    if not len(y_true) and not len(y_pred):  # scikit-learn refuses an empty split; its matrix is all zeros
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    from sklearn import metrics  # imported on first use: it takes a second to import

    return metrics.confusion_matrix(y_true, y_pred, labels=np.arange(num_classes)).astype(np.int64, copy=False)


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its total: the share of each true class given each prediction.

    A class with no test image gets a row of zeros rather than NaN.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> pd.DataFrame:
    """scikit-learn's `classification_report` as a DataFrame (with `zero_division=0`).

    One row per class, then "accuracy", "macro avg" and "weighted avg"; columns
    precision, recall, f1-score, support. As in scikit-learn's printed report,
    the accuracy row holds the accuracy in the f1-score column and leaves
    precision and recall empty (NaN); unlike it, that row is there even when
    some class never occurs.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k, total = len(class_names), len(y_true)
    if total:
        from sklearn import metrics  # imported on first use: it takes a second to import

        # keyed by class index, so no class name can collide with "macro avg" or another class's name
        report = metrics.classification_report(y_true, y_pred, labels=np.arange(k), output_dict=True,
                                               zero_division=0)
    else:  # scikit-learn refuses an empty split; every figure of one is 0
        zero = dict.fromkeys(REPORT_COLUMNS, 0.0)
        report = {**{str(i): zero for i in range(k)}, "macro avg": zero, "weighted avg": zero}
    rows = {str(name): [report[str(i)][c] for c in REPORT_COLUMNS] for i, name in enumerate(class_names)}
    accuracy = float(np.mean(y_true == y_pred)) if total else 0.0
    rows["accuracy"] = [math.nan, math.nan, accuracy, total]
    for avg in ("macro avg", "weighted avg"):
        rows[avg] = [*(report[avg][c] for c in REPORT_COLUMNS[:3]), total]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(REPORT_COLUMNS))
    table["support"] = table["support"].astype("int64")
    return table


def cell_indices(y_true: np.ndarray, y_pred: np.ndarray, true_class: int, predicted_class: int) -> np.ndarray:
    """Indices (ascending) of the test images in one confusion-matrix cell."""
    return np.flatnonzero((np.asarray(y_true) == true_class) & (np.asarray(y_pred) == predicted_class))


def confident_mistakes(y_true: np.ndarray, probabilities: np.ndarray, n: int = 20) -> np.ndarray:
    """Indices of the `n` wrong predictions the model was most sure of, most sure first."""
    probabilities = np.asarray(probabilities)
    y_pred = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != np.asarray(y_true))
    confidence = probabilities[wrong, y_pred[wrong]]
    # stable sort on -confidence: ties keep the lower index first, so results are reproducible
    order = np.argsort(-confidence, kind="stable")
    return wrong[order[:n]]


def random_sample(num_images: int, n: int = 20, seed: int = 0) -> np.ndarray:
    """`n` distinct random indices (sorted) out of `num_images`, the same for the same seed."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(num_images, size=min(n, num_images), replace=False))


def predictions_table(
    indices: np.ndarray, y_true: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]
) -> pd.DataFrame:
    """One row per chosen test image: its index, true and predicted class, confidence, right or wrong."""
    indices = np.asarray(indices, dtype=np.int64)
    probs = np.asarray(probabilities)[indices]
    pred = probs.argmax(axis=1) if len(indices) else np.zeros(0, dtype=np.int64)
    true = np.asarray(y_true)[indices]
    names = np.asarray(class_names, dtype=object)
    return pd.DataFrame(
        {
            "index": indices,
            "true": names[true] if len(indices) else [],
            "predicted": names[pred] if len(indices) else [],
            "confidence": probs[np.arange(len(indices)), pred] if len(indices) else [],
            "correct": true == pred,
        }
    )


def image_labels(
    indices: np.ndarray,
    y_true: np.ndarray,
    probabilities: np.ndarray,
    class_names: Sequence[str],
    short: bool = False,
) -> tuple[list[str], np.ndarray]:
    """Captions and right/wrong flags for an image grid of these test images.

    Full captions have two lines: the true class, then "✓ 97%" when right or
    "→ Shirt 97%" (the model's answer and its confidence) when wrong. Short
    captions ("#1234 · 97%") suit a gallery whose images share one true and one
    predicted class.
    """
    table = predictions_table(indices, y_true, probabilities, class_names)
    if short:
        captions = [f"#{row.index} · {row.confidence:.0%}" for row in table.itertuples()]
    else:
        captions = [
            f"{row.true}<br>✓ {row.confidence:.0%}" if row.correct
            else f"{row.true}<br>→ {row.predicted} {row.confidence:.0%}"
            for row in table.itertuples()
        ]
    return captions, table["correct"].to_numpy(dtype=bool)


def by_confidence(indices: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """The same indices, the model's most confident prediction first (ties keep index order)."""
    indices = np.asarray(indices, dtype=np.int64)
    confidence = np.asarray(probabilities)[indices].max(axis=1) if len(indices) else np.zeros(0)
    return indices[np.argsort(-confidence, kind="stable")]


def top_confusions(matrix: np.ndarray, class_names: Sequence[str], n: int = 5) -> pd.DataFrame:
    """The `n` largest off-diagonal cells: which class is most often mistaken for which."""
    matrix = np.asarray(matrix)
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None, kind="stable")[:n]
    rows = []
    for f in flat:
        t, p = divmod(int(f), matrix.shape[1])
        if off[t, p] == 0:
            break
        share = off[t, p] / matrix[t].sum()
        rows.append({"true": class_names[t], "predicted": class_names[p], "count": int(off[t, p]),
                     "share of true class": share})
    return pd.DataFrame(rows, columns=["true", "predicted", "count", "share of true class"])


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


def looks_like_probabilities(outputs: np.ndarray, tolerance: float = 1e-3) -> bool:
    """True when every row is non-negative and sums to 1 (a softmax output)."""
    outputs = np.asarray(outputs)
    if outputs.size == 0:
        return True
    return bool((outputs >= -tolerance).all() and np.allclose(outputs.sum(axis=1), 1.0, atol=tolerance))


# --- the result of one evaluation -----------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    """A model's outputs on a test split, with everything derived from them."""

    y_true: np.ndarray  # int64 (N,)
    probabilities: np.ndarray  # float32 (N, K), rows sum to 1
    class_names: tuple[str, ...]
    loss: float  # sparse categorical cross-entropy, as model.evaluate reports it
    seconds: float = 0.0  # time the batched pass took
    outputs_were_logits: bool = False  # the model had no softmax; we applied one

    @property
    def y_pred(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def accuracy(self) -> float:
        return float((self.y_pred == self.y_true).mean()) if len(self.y_true) else 0.0

    @property
    def num_images(self) -> int:
        return len(self.y_true)

    @property
    def num_wrong(self) -> int:
        return int((self.y_pred != self.y_true).sum())

    # scikit-learn's report and matrix cost tens of milliseconds; a page rerun asks for them several
    # times, and a cached Evaluation serves a whole class: each is computed once per evaluation.
    @functools.cached_property
    def _report(self) -> pd.DataFrame:
        return classification_report(self.y_true, self.y_pred, self.class_names)

    @functools.cached_property
    def _matrix(self) -> np.ndarray:
        return confusion_matrix(self.y_true, self.y_pred, len(self.class_names))

    # Each operation has one name: the method is the module function of the same name on this evaluation.
    def classification_report(self) -> pd.DataFrame:
        return self._report.copy()  # a copy: a caller may change its table

    def confusion_matrix(self, normalised: bool = False) -> np.ndarray:
        return normalise_rows(self._matrix) if normalised else self._matrix.copy()

    def cell_indices(self, true_class: int, predicted_class: int) -> np.ndarray:
        return cell_indices(self.y_true, self.y_pred, true_class, predicted_class)

    def confident_mistakes(self, n: int = 20) -> np.ndarray:
        return confident_mistakes(self.y_true, self.probabilities, n)

    def random_sample(self, n: int = 20, seed: int = 0) -> np.ndarray:
        return random_sample(self.num_images, n, seed)

    def image_labels(self, indices: np.ndarray, short: bool = False) -> tuple[list[str], np.ndarray]:
        return image_labels(indices, self.y_true, self.probabilities, self.class_names, short=short)

    def by_confidence(self, indices: np.ndarray) -> np.ndarray:
        return by_confidence(indices, self.probabilities)

    def weakest_class(self) -> tuple[str, float]:
        """The class with the lowest F1 score, and that score (first one on a tie)."""
        scores = self.classification_report().loc[list(self.class_names), "f1-score"]
        name = str(scores.idxmin())
        return name, float(scores[name])

    def top_confusions(self, n: int = 5) -> pd.DataFrame:
        return top_confusions(self.confusion_matrix(), self.class_names, n)

    def summary(self) -> dict[str, Any]:
        """Plain numbers for JSON output and comparison tables."""
        return {
            "test_accuracy": self.accuracy,
            "test_loss": self.loss,
            "num_images": self.num_images,
            "num_wrong": self.num_wrong,
            "seconds": self.seconds,
        }


# --- checking and running a model ------------------------------------------------
def check_model_fits(model: Any, dataset: Any) -> None:
    """Raise ModelFileError (with a sentence) unless the model takes this dataset's images and classes."""
    try:
        input_shape = tuple(model.input_shape)
        output_shape = tuple(model.output_shape)
    except (AttributeError, ValueError, TypeError):
        raise ModelFileError(
            "This model has no single fixed input and output, so it cannot be evaluated here; "
            "save a Sequential or functional model with one image input and one class output."
        ) from None
    if input_shape and isinstance(input_shape[0], tuple):
        raise ModelFileError(
            f"This model has {len(input_shape)} inputs; CNN Lab evaluates models with one image input."
        )
    expected = tuple(dataset.image_shape)
    got = tuple(input_shape[1:])
    if got != expected:
        want = format_shape(expected)
        raise ModelFileError(
            f"This model expects images of shape {format_shape(got)}, but {dataset.title} images are "
            f"{want}; pick the dataset it was trained on, or a model built for {want} input."
        )
    if len(output_shape) != 2 or output_shape[-1] != dataset.num_classes:
        units = output_shape[-1] if output_shape else "no"
        raise ModelFileError(
            f"This model outputs {units} values per image, but {dataset.title} has {dataset.num_classes} "
            f"classes; the last layer must be Dense({dataset.num_classes}) with a softmax."
        )


def _resolve_model(run_or_model: Any) -> Any:
    # A Run (or anything with load_model) gives its cached model; a Keras model is used as it is.
    load = getattr(run_or_model, "load_model", None)
    return load() if callable(load) else run_or_model


def activation_values(model: Any) -> int:
    """The values one image makes as it passes through the model: the sum of every layer's output size (read
    from the built model's shapes; a layer whose shape is unknown counts nothing)."""
    total = 0
    for layer in getattr(model, "layers", []):
        try:
            outputs = layer.output
        except (AttributeError, ValueError, RuntimeError):
            continue
        for out in outputs if isinstance(outputs, (list, tuple)) else [outputs]:
            dims = [int(d) for d in tuple(getattr(out, "shape", ()))[1:] if d is not None]
            total += math.prod(dims) if dims else 0
    return total


def memory_plan(model: Any, dataset: Any, batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[int, int]:
    """(batch size, peak bytes) of evaluating `model` on `dataset`'s test split within the action budget.

    The pass keeps N × K outputs (float32), their softmax (float64 on the way, float32 kept) and two losses per
    image (16 bytes); each image of a batch costs its uint8 copy and float32 input (5 bytes a value) and its
    activations (float32, counted twice: a layer's input and output live together). The batch is as large as the
    budget allows after what is kept, at most `batch_size`; ModelFileError with a sentence where even one image
    does not fit."""
    n, k = len(dataset.x_test), max(1, int(dataset.num_classes))
    kept = n * (k * 16 + 16)
    per_image = 5 * math.prod(dataset.image_shape) + 8 * activation_values(model)
    budget = limits.get("action_memory")
    batch = int(max(1, min(batch_size, (budget - kept) // max(1, per_image))))
    peak = kept + batch * per_image
    title = getattr(dataset, "title", "the dataset")
    limits.check_memory(peak, ModelFileError, f"Testing this model on the {n:,} test images of {title}",
                        "Test a smaller model, or a dataset with fewer test images or classes.")
    return batch, peak


def evaluate(
    run_or_model: Any,
    dataset: Any,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[float], None] | None = None,
) -> Evaluation:
    """Run the model once over the dataset's test split: loss, accuracy and every probability.

    The uint8 images are scaled to float32 in [0, 1] one batch at a time, so no
    float copy of the whole test set is ever made. Each batch gives both the
    probabilities and Keras's own sparse categorical cross-entropy (computed
    from the softmax's logits, as `model.evaluate` does), which saves the second
    pass that `model.evaluate` + `model.predict` would take.
    `progress(fraction)` is called after each batch. Batches are smaller than `batch_size` where the action
    budget needs it (`memory_plan`).
    """
    model = _resolve_model(run_or_model)
    check_model_fits(model, dataset)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    batch_size, _ = memory_plan(model, dataset, batch_size)
    x, y = dataset.x_test, np.asarray(dataset.y_test, dtype=np.int64)
    n = len(x)
    step = _batch_function(model, tuple(dataset.image_shape))
    start = time.perf_counter()
    out = np.empty((n, dataset.num_classes), dtype=np.float32)
    loss_softmax = np.empty(n, dtype=np.float64)  # per image, treating the outputs as probabilities
    loss_logits = np.empty(n, dtype=np.float64)  # per image, treating them as logits (a model without softmax)
    for lo in range(0, n, batch_size):
        hi = min(lo + batch_size, n)
        probs, l_soft, l_logit = step(np.ascontiguousarray(x[lo:hi]), y[lo:hi])
        out[lo:hi], loss_softmax[lo:hi], loss_logits[lo:hi] = probs, l_soft, l_logit
        if progress is not None:
            progress(hi / n)
    logits = not looks_like_probabilities(out)
    return Evaluation(
        y_true=y,
        probabilities=softmax(out) if logits else out,
        class_names=tuple(dataset.class_names),
        loss=float((loss_logits if logits else loss_softmax).mean()) if n else 0.0,
        seconds=time.perf_counter() - start,
        outputs_were_logits=logits,
    )


# One compiled batch function per model (and image shape), kept while the model lives.
_batch_functions: weakref.WeakKeyDictionary[Any, dict[tuple[int, ...], Callable]] = weakref.WeakKeyDictionary()
_batch_lock = threading.Lock()


def _batch_function(model: Any, image_shape: tuple[int, ...]) -> Callable[[np.ndarray, np.ndarray], tuple]:
    """uint8 batch + labels -> (probabilities, per-image loss as probabilities, per-image loss as logits).

    Scaling happens inside the compiled graph, batch by batch. The loss goes
    through `keras.losses.sparse_categorical_crossentropy`, which reads the
    logits behind a softmax exactly as `model.evaluate` does, so both losses
    agree to float precision even for confidently wrong predictions (where
    clipped probabilities would not).
    """
    with _batch_lock:
        per_model = _batch_functions.setdefault(model, {})
        if image_shape in per_model:
            return per_model[image_shape]
    import keras
    import tensorflow as tf

    from cnnkit.keras_guard import guarded

    # The cache is keyed weakly by the model, so the function must not hold the model strongly either;
    # once traced it holds only the model's variables.
    model_ref = weakref.ref(model)

    @tf.function(
        input_signature=[tf.TensorSpec((None, *image_shape), tf.uint8), tf.TensorSpec((None,), tf.int64)],
        reduce_retracing=True,
    )
    def graph(images, labels):
        outputs = model_ref()(tf.cast(images, tf.float32) / 255.0, training=False)
        as_probs = keras.losses.sparse_categorical_crossentropy(labels, outputs)
        # straight from tf.nn: Keras's loss would swap in the softmax's logits here as well
        as_logits = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=outputs)
        return outputs, as_probs, as_logits

    traced = threading.Event()

    def fn(images: np.ndarray, labels: np.ndarray) -> tuple:
        if traced.is_set():
            probs, a, b = graph(images, labels)
        else:
            with guarded():  # the first call traces the graph: no clear_session in the middle of it
                probs, a, b = graph(images, labels)
            traced.set()
        return probs.numpy(), a.numpy(), b.numpy()

    with _batch_lock:
        _batch_functions.setdefault(model, {})[image_shape] = fn
    return fn


class EvaluationCache:
    """A small thread-safe LRU of Evaluations, shared by every session of the app.

    The page keeps one in `st.cache_resource` and keys it by what changes the
    result (run folder + model file mtime + dataset identity), so a student who
    reopens the page, or a class looking at the same run, pays for one pass only.
    """

    def __init__(self, max_entries: int = 16) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, Evaluation] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Evaluation | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: Hashable, value: Evaluation) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def get_or_evaluate(
        self, key: Hashable, run_or_model: Any, dataset: Any, progress: Callable[[float], None] | None = None
    ) -> Evaluation:
        found = self.get(key)
        if found is None:
            found = evaluate(run_or_model, dataset, progress=progress)
            self.put(key, found)
        return found


def dataset_key(dataset: Any) -> tuple[str, str, int]:
    """What identifies a dataset's test split for caching: name, source and size."""
    return (str(dataset.name), str(getattr(dataset, "source", "")), len(dataset.y_test))


def run_key(run: Any, dataset: Any) -> tuple[Any, ...]:
    """Cache key for evaluating a saved run: its folder, its model file's mtime and the dataset."""
    path = Path(run.path)
    model_file = Path(getattr(run, "model_path", path / "model.keras"))
    mtime = model_file.stat().st_mtime_ns if model_file.exists() else 0
    return ("run", str(path.resolve()), mtime, *dataset_key(dataset))


# --- the training history -----------------------------------------------------------
def best_epoch(history) -> int | None:
    """1-based epoch with the lowest validation loss (what EarlyStopping watches), else best val accuracy."""
    for key, pick in (("val_loss", np.nanargmin), ("val_accuracy", np.nanargmax)):
        values = np.asarray(history.get(key) or [], dtype=np.float64)
        if values.size and np.isfinite(values).any():
            return int(pick(np.where(np.isfinite(values), values, np.nan))) + 1
    return None


# --- command line --------------------------------------------------------------------
def dataset_for_run(run: Any, name_or_file: str | None = None) -> Any:
    """The dataset to test a run on: its own by default, else a catalogue name or an .npz/.zip path.

    A file stands in for the run's catalogue dataset when shapes match (so it keeps the class names).
    """
    from cnnkit import datasets

    if not name_or_file:
        return datasets.load(run.dataset_name)
    if name_or_file in datasets.CATALOGUE:
        return datasets.load(name_or_file)
    path = Path(name_or_file)
    if path.suffix.lower() in (".npz", ".zip") or path.exists():
        return datasets.load_file(path, name=run.dataset_name or None)
    names = ", ".join(datasets.CATALOGUE)
    from cnnkit.errors import DatasetError

    raise DatasetError(f"'{name_or_file}' is neither a dataset name ({names}) nor an .npz/.zip file; "
                       "check the spelling or path.")


def to_json_dict(ev: Evaluation, run: Any = None, dataset: Any = None) -> dict[str, Any]:
    """Everything the command line prints with --json: metrics, report rows, confusion matrix."""
    report = ev.classification_report()
    rows = {
        str(name): {col: (None if isinstance(v, float) and math.isnan(v) else v) for col, v in row.items()}
        for name, row in report.to_dict(orient="index").items()
    }
    out: dict[str, Any] = {
        **ev.summary(),
        "class_names": list(ev.class_names),
        "report": rows,
        "confusion_matrix": ev.confusion_matrix().tolist(),
    }
    if run is not None:
        out = {"run": str(run.path), "run_title": getattr(run, "title", ""), **out}
    if dataset is not None:
        out = {"dataset": dataset.name, "dataset_source": dataset.source_text, **out}
    return out


def report_text(ev: Evaluation, run: Any = None, dataset: Any = None) -> str:
    """A plain-text report like scikit-learn's, headed by accuracy and loss."""
    lines = []
    if run is not None:
        lines.append(f"run:       {run.path}")
    if dataset is not None:
        lines.append(f"dataset:   {dataset.title} ({ev.num_images:,} test images; {dataset.source_text})")
    lines.append(f"accuracy:  {ev.accuracy:.4f}  ({ev.num_images - ev.num_wrong:,} of {ev.num_images:,} right)")
    lines.append(f"loss:      {ev.loss:.4f}  (sparse categorical cross-entropy)")
    if run is not None and dataset is not None and getattr(run, "dataset_name", dataset.name) != dataset.name:
        lines.append(f"note:      this run was trained on {run.dataset_name}, not on {dataset.name}")
    if ev.outputs_were_logits:
        lines.append("note:      the model has no softmax at the end; one was applied to its outputs")
    lines.append("")
    report = ev.classification_report()
    width = max(12, *(len(str(i)) for i in report.index)) + 2
    lines.append(f"{'':<{width}}{'precision':>10}{'recall':>10}{'f1-score':>10}{'support':>10}")
    for name, row in report.iterrows():
        if name == "accuracy":
            lines.append("")
            lines.append(f"{name:>{width - 2}}  {'':>10}{'':>10}{row['f1-score']:>10.4f}{int(row['support']):>10}")
            continue
        lines.append(
            f"{name:>{width - 2}}  {row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1-score']:>10.4f}"
            f"{int(row['support']):>10}"
        )
    return "\n".join(lines)


# --- cross-evaluation: a model on another dataset of the same task ------------------------------------------
def same_task(a: Any, b: Any) -> bool:
    """Whether a model of dataset `a` can be tested on dataset `b`: the same image shape and class names."""
    return tuple(a.image_shape) == tuple(b.image_shape) and tuple(a.class_names) == tuple(b.class_names)


def cross_sentence(own: Evaluation, other: Evaluation, own_title: str, other_title: str) -> str:
    """One sentence on what the gap between the two accuracies means."""
    gap = own.accuracy - other.accuracy
    head = (f"On {own_title}'s test images the model is right {own.accuracy:.1%} of the time; on "
            f"{other_title} {other.accuracy:.1%}.")
    if gap > 0.05:
        return (f"{head} The {gap:.0%} it loses is distribution shift: the other images were made differently "
                "(other hands, other pens, another way of drawing), and a model only knows the data it was trained "
                "on — add such images to its training data to close the gap.")
    if gap < -0.05:
        return (f"{head} The other images are easier for it than its own test set: they are probably cleaner or "
                "more alike than the data it was tested on.")
    return (f"{head} About the same: for this model the two datasets look alike, so what it learnt carries over.")
