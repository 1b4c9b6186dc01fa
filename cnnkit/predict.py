"""Fast prediction for one image, and what each convolution layer sees in it.

`model.predict` sets up a whole data pipeline on every call (~40 ms for one
image); a drawing page that answers as the student lifts the pen needs well
under a frame. A `Predictor` traces the model once into a compiled TensorFlow
function for a single (1, H, W, C) input and calls that (under 1 ms for the
lessons' models). `predictor_for(run)` keeps one Predictor per saved Run (and
file time) in this process, so every student reuses it; `predictor_for_model` does the same for a
model read from a student's file, per file hash.

The same Predictor gives the feature maps: the output of each Conv2D layer
(after its activation, when the next layer is one) for the image.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnkit.errors import DrawingError
from cnnkit.spec import format_shape

# Below this top probability the page warns that the model is unsure.
LOW_CONFIDENCE = 0.6
_CACHE_SIZE = 8


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one image: a probability per class."""

    probabilities: np.ndarray  # (num_classes,), sums to 1
    class_names: tuple[str, ...]

    @property
    def index(self) -> int:
        return int(np.argmax(self.probabilities))

    @property
    def label(self) -> str:
        return self.class_names[self.index]

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.index])

    @property
    def uncertain(self) -> bool:
        return self.confidence < LOW_CONFIDENCE

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [(self.class_names[i], float(self.probabilities[i])) for i in order]

    def to_dict(self, k: int = 3) -> dict[str, Any]:
        return {
            "label": self.label,
            "index": self.index,
            "probability": round(self.confidence, 6),
            "top": [{"label": name, "probability": round(p, 6)} for name, p in self.top(k)],
        }


@dataclass(frozen=True)
class FeatureMaps:
    """One convolution layer's output for one image: (h, w, channels)."""

    layer: str  # the Conv2D layer's name
    title: str  # e.g. "conv2d · 32 filters 3×3 · after ReLU"
    activations: np.ndarray  # (h, w, channels) float32

    @property
    def channels(self) -> int:
        return int(self.activations.shape[-1])

    def tiles(self, count: int) -> list[np.ndarray]:
        """The first `count` channels, each scaled to [0, 1] for display.

        A channel is divided by its own maximum so weak but patterned responses show;
        a channel that is zero everywhere (a filter this image does not excite)
        stays black rather than having noise blown up. Negative values (no ReLU)
        are shifted so 0 stays mid-grey only when there are any.
        """
        out = []
        for c in range(min(count, self.channels)):
            a = self.activations[..., c].astype(np.float32)
            low, high = float(a.min()), float(a.max())
            if low >= 0:
                out.append(a / high if high > 0 else np.zeros_like(a))
            else:
                span = max(abs(low), abs(high))
                out.append((a / span + 1.0) / 2.0)
        return out


def _softmax_if_needed(out: np.ndarray) -> np.ndarray:
    """Models ending in softmax already give probabilities; a model ending in logits is softmaxed
    (the same rule the evaluation page uses)."""
    from cnnkit.evaluation import looks_like_probabilities, softmax

    row = np.asarray(out, dtype=np.float64)[None]
    row = row / row.sum() if looks_like_probabilities(row) else softmax(row).astype(np.float64)
    return row[0]


# One picture's activations are held this many times at once: the forward pass, the feature maps kept for the
# page, and the saliency's forward and backward passes.
_PASSES = 4


def prediction_peak_bytes(model) -> int:
    """What answering for one picture adds (bytes): its activations in float32, `_PASSES` times."""
    from cnnkit.evaluation import activation_values

    return 4 * _PASSES * activation_values(model)


def check_memory(model) -> None:
    """A model whose one-picture pass would exceed the action budget is refused with a sentence (an uploaded
    model may declare a huge input; a trained run is bounded by the cost limits and always fits)."""
    from cnnkit import limits

    limits.check_memory(prediction_peak_bytes(model), DrawingError, "Running this model on one picture",
                        "Choose a smaller model (a smaller input or fewer filters) and save it again.")


class Predictor:
    """A Keras model wrapped for one-image-at-a-time use, traced once."""

    def __init__(self, model, class_names: Sequence[str] | None = None) -> None:
        import tensorflow as tf

        self._tf = tf
        self.model = model
        shape = tuple(int(s) for s in model.input_shape[1:])
        self.input_shape: tuple[int, ...] = shape
        check_memory(model)
        n = int(model.output_shape[-1])
        names = tuple(str(c) for c in class_names) if class_names is not None else ()
        self.class_names: tuple[str, ...] = names if len(names) == n else tuple(str(i) for i in range(n))
        signature = [tf.TensorSpec((1, *shape), tf.float32)]
        # One trace for the fixed single-image shape, kept as a concrete function: a call is
        # then only the graph run (no signature matching, no tf.data, no callbacks).
        self._forward = tf.function(lambda x: model(x, training=False),
                                    input_signature=signature).get_concrete_function()
        self._conv = self._conv_outputs()
        self._saliency = None  # explain.Saliency, traced on first use
        self._lock = threading.Lock()
        self._features = None
        if self._conv:
            import keras

            feature_model = keras.Model(inputs=model.inputs, outputs=[out for _, _, out in self._conv])
            self._features = tf.function(
                lambda x: feature_model(x, training=False), input_signature=signature
            ).get_concrete_function()

    def _conv_outputs(self) -> list[tuple[str, str, Any]]:
        """(conv layer name, title, symbolic output) per Conv2D, after its activation layer if one follows
        (past the BatchNormalization between them, as the fast preset has)."""
        from cnnkit import explain

        found = []
        for layer in explain.conv_layers(self.model):
            cfg = layer.get_config()
            kernel = format_shape(cfg.get("kernel_size", ()))
            title = f"{layer.name} · {cfg.get('filters')} filters {kernel}"
            activation = cfg.get("activation", "linear")
            after = explain.following_layers(self.model, layer)
            if after:
                title += f" · after {type(after[-1]).__name__}"
            elif activation != "linear":
                title += f" · {activation}"
            found.append((layer.name, title, explain.conv_output(self.model, layer)))
        return found

    def _batch(self, x: np.ndarray):
        x = np.asarray(x, dtype=np.float32)
        if x.shape == self.input_shape:
            x = x[None]
        if x.shape != (1, *self.input_shape):
            raise DrawingError(f"This model takes {format_shape(self.input_shape)} images, not "
                               f"{format_shape(x.shape[-3:])}: choose the run trained on this dataset.")
        return self._tf.constant(x)

    def predict(self, x: np.ndarray) -> Prediction:
        """Probabilities for one (H, W, C) float32 image in [0, 1]."""
        out = self._forward(self._batch(x))
        return Prediction(_softmax_if_needed(np.asarray(out)[0]), self.class_names)

    def feature_maps(self, x: np.ndarray) -> list[FeatureMaps]:
        """Each Conv2D layer's response to the image, first layer first ([] if the model has none)."""
        if self._features is None:
            return []
        outs = self._features(self._batch(x))
        if not isinstance(outs, (list, tuple)):
            outs = [outs]
        return [
            FeatureMaps(layer=name, title=title, activations=np.asarray(o)[0])
            for (name, title, _), o in zip(self._conv, outs, strict=True)
        ]

    def saliency(self, x: np.ndarray, class_index: int | None = None):
        """Grad-CAM (or gradients × input) for one image and class (default: the answer): an
        explain.SaliencyMap. Traced on first use, then a few milliseconds per call."""
        from cnnkit import explain

        with self._lock:
            if self._saliency is None:
                self._saliency = explain.Saliency(self.model)
        self._batch(x)  # the same shape check and sentence as predict()
        return self._saliency(x, class_index)

    def conv_arithmetic(self, x: np.ndarray, row: int, col: int, channel: int, layer: str | int | None = None):
        """One feature-map number worked out by hand (explain.conv_arithmetic) for this model."""
        from cnnkit import explain

        self._batch(x)
        return explain.conv_arithmetic(self.model, x, row, col, channel, layer=layer)


_cache: OrderedDict[tuple[str, float], Predictor] = OrderedDict()
_cache_lock = threading.Lock()


def class_names_for(dataset_name: str, num_classes: int | None = None) -> tuple[str, ...] | None:
    """The catalogue's class names for a run's dataset name, if it is a catalogue dataset."""
    from cnnkit import datasets

    info = datasets.CATALOGUE.get(dataset_name)
    if info is None or (num_classes is not None and info.num_classes != num_classes):
        return None
    return info.class_names


def predictor_for(run, class_names: Sequence[str] | None = None) -> Predictor:
    """The Predictor of a saved Run, built once per (model file, file time) in this process.

    `class_names` is for runs on an uploaded dataset; catalogue datasets name their own.
    """
    model = run.load_model()  # cached by cnnkit.runs; a RunError explains a missing or damaged file
    from cnnkit.runs import check_model_matches

    check_model_matches(run, model)  # a model that does not fit its run's dataset must not answer
    key = (str(run.model_path), run.model_path.stat().st_mtime)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    names = class_names or class_names_for(run.dataset_name, int(model.output_shape[-1]))
    return _kept(key, Predictor(model, names))


def predictor_for_model(model, digest: str, class_names: Sequence[str] | None = None) -> Predictor:
    """The Predictor of a model read from a file a student brought, built once per file hash (`digest`) in
    this process, in the same bounded cache as the runs' (the least recently used goes first)."""
    key = (f"file:{digest}", 0.0)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    return _kept(key, Predictor(model, class_names))


def _kept(key: tuple[str, float], predictor: Predictor) -> Predictor:
    with _cache_lock:
        predictor = _cache.setdefault(key, predictor)
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return predictor


# --- no model yet: the fast preset, and how long it takes ------------------------------------
# Training runs at about this many FLOPs per second on a 2-core server with TensorFlow's CPU
# kernels (measured with the three-block fast preset: ~40 GFLOP/s on the offline sample, ~75 on
# Fashion-MNIST; the lower figure keeps the estimate on the safe side).
TRAIN_FLOPS_PER_SECOND = 40e9
# Building the model, tracing and saving the run.
TRAIN_OVERHEAD_SECONDS = 5.0


@dataclass(frozen=True)
class FirstModelPlan:
    """What the draw page offers to train when a student has no model yet."""

    spec: Any  # ModelSpec of the fast preset for this dataset
    hyper: Any  # cnnkit.hyper.Hyper: what will train (the preset's settings within the class limits)
    title: str
    seconds: float  # estimated wall time on one free training slot
    images: int  # training images per epoch
    asked: Any = None  # the preset's own settings, which Start is given (the one Start path applies the limits)

    @property
    def words(self) -> str:
        from cnnkit.hyper import OPTIMIZERS
        from cnnkit.progress import format_seconds

        return (f"{self.hyper.epochs} epochs over {self.images:,} images with "
                f"{OPTIMIZERS[self.hyper.optimizer].title}: about {format_seconds(self.seconds)}")


def first_model_plan(dataset, limits=None) -> FirstModelPlan:
    """The default (lecture) preset on `dataset` with its settings for the dataset's size, and an estimate of
    the training time; with the class's `limits` (a `classroom.ClassLimits`), what those let it train.

    Training costs about three forward passes per image (forward, then the gradients
    of activations and of weights); validation and the final test are forward only.
    """
    from cnnkit import presets

    preset = presets.get(presets.DEFAULT, tuple(dataset.image_shape), dataset.num_classes)
    asked = preset.hyper_for(len(dataset.y_train))
    hyper = asked
    if limits is not None:
        from cnnkit import classroom

        hyper = classroom.apply_limits(asked, limits, num_train=len(dataset.y_train))[0]
    n_fit, n_val = hyper.split_sizes(len(dataset.y_train))
    flops = preset.spec.summary().flops
    work = flops * (3 * n_fit * hyper.epochs + n_val * hyper.epochs + len(dataset.y_test))
    seconds = work / TRAIN_FLOPS_PER_SECOND + TRAIN_OVERHEAD_SECONDS
    return FirstModelPlan(spec=preset.spec, hyper=hyper, title="Lecture preset (quick start)",
                          seconds=seconds, images=n_fit, asked=asked)
