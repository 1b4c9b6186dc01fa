"""Presets: the lessons' models as ModelSpecs, with the training settings (a Hyper) each lesson used.

Every preset is a function of the dataset's image shape and class count, so
the same lesson runs on MNIST (28×28×1) and CIFAR-10 (32×32×3). The parameter
counts quoted in the lessons hold for 28×28×1 and 10 classes (`lesson_params`);
tests check them against the catalogue and Keras.

`FAST` names our own preset, built for the shortest training time to a high
test accuracy on a laptop CPU: three small conv–BN–ReLU–pool blocks (32, 64,
128 filters), dropout and a softmax layer (about 15 MFLOPs per image on MNIST),
trained with Adam and a cosine learning-rate decay. bench/bench_training.py
times it against the lessons' best recipe (Lab C).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from cnnkit.errors import SpecError
from cnnkit.hyper import Hyper
from cnnkit.spec import LayerSpec, ModelSpec

L = LayerSpec.new


@dataclass(frozen=True)
class Preset:
    """A ready-made model with the training settings its lesson suggests."""

    name: str
    title: str
    description: str
    spec: ModelSpec
    hyper: Hyper  # the training settings the lesson used (the training page starts from them)
    lesson: str = ""  # where it comes from
    lesson_params: int | None = None  # total parameters the lesson quotes (28×28×1, 10 classes)
    small_data: Hyper | None = None  # its settings for a dataset of fewer than SMALL_DATA_IMAGES training images

    def hyper_for(self, num_train: int | None) -> Hyper:
        """The settings to train it with on a dataset of `num_train` training images (None: a full-size one)."""
        return _for_size(self.hyper, self.small_data, num_train)


@dataclass(frozen=True)
class _Recipe:
    title: str
    description: str
    layers: Callable[[int], list[LayerSpec]]  # num_classes -> layers
    hyper: Hyper
    lesson: str = ""
    lesson_params: int | None = None
    small_data: Hyper | None = None


# Below this many training images a dataset is "small" (the offline sample has 4,000): a preset with a
# small-data recipe then suggests it — more, smaller passes over the few images, and augmentation.
SMALL_DATA_IMAGES = 10_000


def _single_conv(n: int) -> list[LayerSpec]:
    return [
        L("Conv2D", filters=32, kernel_size=3, activation="relu"),
        L("MaxPooling2D", pool_size=2),
        L("Flatten"),
        L("Dense", units=100, activation="relu"),
        L("Dense", units=n, activation="softmax"),
    ]


def _two_conv(n: int) -> list[LayerSpec]:
    return [
        L("Conv2D", filters=32, kernel_size=3, activation="relu"),
        L("Conv2D", filters=64, kernel_size=3, activation="relu"),
        L("Flatten"),
        L("Dense", units=128, activation="relu"),
        L("Dense", units=n, activation="softmax"),
    ]


def _two_conv_dropout(n: int) -> list[LayerSpec]:
    return [
        L("Conv2D", filters=32, kernel_size=3, activation="relu"),
        L("Conv2D", filters=64, kernel_size=3, activation="relu"),
        L("MaxPooling2D", pool_size=2),
        L("Dropout", rate=0.25),
        L("Flatten"),
        L("Dense", units=128, activation="relu"),
        L("Dropout", rate=0.5),
        L("Dense", units=n, activation="softmax"),
    ]


def _fashion_blocks(dropout: bool) -> Callable[[int], list[LayerSpec]]:
    def build(n: int) -> list[LayerSpec]:
        out: list[LayerSpec] = []
        for filters, rate in ((32, 0.25), (64, 0.25), (128, 0.4)):
            out += [
                L("Conv2D", filters=filters, kernel_size=3, padding="same", activation="linear"),
                L("LeakyReLU", negative_slope=0.1),
                L("MaxPooling2D", pool_size=2, padding="same"),
            ]
            if dropout:
                out.append(L("Dropout", rate=rate))
        out += [L("Flatten"), L("Dense", units=128, activation="linear"), L("LeakyReLU", negative_slope=0.1)]
        if dropout:
            out.append(L("Dropout", rate=0.3))
        out.append(L("Dense", units=n, activation="softmax"))
        return out

    return build


def _keras_convnet(n: int) -> list[LayerSpec]:
    return [
        L("Conv2D", filters=32, kernel_size=3, activation="relu"),
        L("MaxPooling2D", pool_size=2),
        L("Conv2D", filters=64, kernel_size=3, activation="relu"),
        L("MaxPooling2D", pool_size=2),
        L("Flatten"),
        L("Dropout", rate=0.5),
        L("Dense", units=n, activation="softmax"),
    ]


def _conv_bn_relu(filters: int, **conv: int) -> list[LayerSpec]:
    """Conv2D 3×3 "same" without bias (BatchNormalization's beta does that job) → BatchNormalization → ReLU."""
    return [
        L("Conv2D", filters=filters, kernel_size=3, padding="same", activation="linear", use_bias=False, **conv),
        L("BatchNormalization", momentum=0.9),
        L("ReLU"),
    ]


def _fast(n: int) -> list[LayerSpec]:
    # Convolutions without bias: BatchNormalization's beta does that job. BN lets
    # Adam use a larger step, which is what makes the first epochs count. BN momentum
    # 0.9 (Keras's default is 0.99) lets the moving statistics used at test time
    # settle within the first epoch, even on a 4,000-image sample. Each block halves
    # the image while the filters double, so every block costs about the same; the
    # third block (128 filters on 7×7) is what lifts Fashion-MNIST past 92 %, and it
    # leaves Flatten only 3×3×128 values, so the Dense layer stays small.
    out: list[LayerSpec] = []
    for filters in (32, 64, 128):
        out += [*_conv_bn_relu(filters), L("MaxPooling2D", pool_size=2)]
    return out + [
        L("Flatten"),
        L("Dropout", rate=0.3),
        L("Dense", units=n, activation="softmax"),
    ]


def _lecture(n: int) -> list[LayerSpec]:
    # The cost of a small CNN on a CPU is set by how many values every layer writes at full resolution
    # (each is read and written again by BatchNormalization, ReLU and their gradients), far more than by its
    # multiply-adds. So the first convolution already halves the image (stride 2: 28×28 → 14×14, a quarter
    # of the values), the next two blocks double the filters while pooling halves the size again, and a small
    # Dense 64 layer with BatchNormalization combines the 3×3×64 features before the softmax: that hidden
    # layer is what lifts two epochs from 98.7 % to 99.1 % on full MNIST (bench/bench_training.py).
    out = _conv_bn_relu(16, strides=2)
    for filters in (32, 64):
        out += [*_conv_bn_relu(filters), L("MaxPooling2D", pool_size=2)]
    return out + [
        L("Flatten"),
        L("Dense", units=64, activation="linear"),
        L("BatchNormalization", momentum=0.9),
        L("ReLU"),
        L("Dense", units=n, activation="softmax"),
    ]


FAST = "fast_cpu"
LECTURE = "lecture"
DEFAULT = LECTURE    # what a student gets before choosing a model

_RECIPES: dict[str, _Recipe] = {
    "single_conv": _Recipe(
        "Lab A · one convolution",
        "Conv2D 32 3×3 → MaxPooling 2×2 → Flatten (13×13×32 = 5,408) → Dense 100 → Dense 10 softmax. "
        "The smallest complete CNN: most of its parameters sit in the Dense layer after Flatten.",
        _single_conv, Hyper(optimizer="sgd", learning_rate=0.01, momentum=0.9, batch_size=32, epochs=10),
        lesson="Lab A (MNIST): SGD lr 0.01 momentum 0.9, batch 32, 10 epochs; test accuracy 98.55 %.",
        lesson_params=542_230,
    ),
    "two_conv": _Recipe(
        "Lab B · two convolutions, no pooling",
        "Conv2D 32 → Conv2D 64 → Flatten (24×24×64 = 36,864) → Dense 128 → Dense 10. Without pooling the "
        "Dense layer gets 4.7 million parameters and the model over-fits: watch validation loss rise.",
        _two_conv, Hyper(optimizer="adam", learning_rate=0.001, batch_size=100, epochs=10),
        lesson="Lab B (MNIST): Adam, batch 100, 10 epochs; test 98.86 %, train 99.91 % — over-fitting.",
        lesson_params=4_738_826,
    ),
    "two_conv_dropout": _Recipe(
        "Lab C · two convolutions with dropout",
        "Conv2D 32 → Conv2D 64 → MaxPooling → Dropout 0.25 → Flatten → Dense 128 → Dropout 0.5 → Dense 10. "
        "Pooling divides the Dense layer by four; dropout keeps training and validation curves together.",
        _two_conv_dropout, Hyper(optimizer="adadelta", learning_rate=1.0, batch_size=128, epochs=10),
        lesson="Lab C (MNIST): Adadelta with learning rate 1.0 (Keras 3's default 0.001 barely learns), "
               "batch 128, 10 epochs; test 99.04 %.",
        lesson_params=1_199_882,
    ),
    "fashion_leaky": _Recipe(
        "Lab D · Fashion three blocks, LeakyReLU",
        "Three blocks of Conv2D (32, 64, 128 filters, padding 'same') + LeakyReLU 0.1 + MaxPooling 'same', "
        "then Dense 128 + LeakyReLU and Dense 10 softmax. Reaches 99 % on training data but about 92 % on "
        "validation: it over-fits after 4–5 epochs.",
        _fashion_blocks(False), Hyper(optimizer="adam", learning_rate=0.001, batch_size=64, epochs=20),
        lesson="Lab D (Fashion-MNIST): Adam, batch 64, 20 epochs; train 99 %, validation 92 %.",
        lesson_params=356_234,
    ),
    "fashion_leaky_dropout": _Recipe(
        "Lab D · Fashion three blocks with dropout",
        "The same three LeakyReLU blocks with Dropout 0.25 after blocks 1–2, 0.4 after block 3 and 0.3 after "
        "Dense 128: the same accuracy, a lower test loss, and curves that stay together.",
        _fashion_blocks(True), Hyper(optimizer="adam", learning_rate=0.001, batch_size=64, epochs=20),
        lesson="Lab D (Fashion-MNIST) with dropout: Adam, batch 64, 20 epochs.",
        lesson_params=356_234,
    ),
    "keras_convnet": _Recipe(
        "Keras example · simple MNIST convnet",
        "Conv2D 32 → MaxPooling → Conv2D 64 → MaxPooling → Flatten → Dropout 0.5 → Dense 10 softmax: the "
        "keras.io example, 34,826 parameters and about 99 % on MNIST.",
        _keras_convnet, Hyper(optimizer="adam", learning_rate=0.001, batch_size=128, epochs=15),
        lesson="keras.io examples/vision/mnist_convnet.py: Adam, batch 128, 15 epochs, ~99 % test.",
        lesson_params=34_826,
    ),
    FAST: _Recipe(
        "Fast on a laptop CPU (ours)",
        "Three blocks of Conv2D (32, 64, 128 filters, no bias) → BatchNormalization → ReLU → MaxPooling, then "
        "Dropout 0.3 and Dense 10 softmax: about 105,000 parameters and 15 million FLOPs per image. Adam with a "
        "cosine learning-rate decay to zero. Built to reach high test accuracy in the fewest seconds of "
        "training: 98 % on the 5,000-digit sample and 92.5 % on Fashion-MNIST sooner than Lab C.",
        _fast, Hyper(optimizer="adam", learning_rate=0.003, lr_schedule="cosine", batch_size=64, epochs=8),
        lesson="Ours, not from a lab: small enough for seconds per epoch on a laptop CPU.",
        lesson_params=104_874,
    ),
    LECTURE: _Recipe(
        "Lecture: 99 % in seconds (ours)",
        "A strided first convolution (16 filters, stride 2: 28×28 → 14×14), two Conv2D–BatchNormalization–ReLU–"
        "MaxPooling blocks of 32 and 64 filters, then Dense 64 with BatchNormalization and Dense 10 softmax: "
        "about 61,000 parameters and 3.7 million FLOPs per image, a quarter of the fast model's. Adam 0.005 with "
        "a cosine decay over 2 epochs of batch 128: 99 % on full MNIST in two epochs, so a class can train it "
        "during a lecture and watch the curves move. On a small dataset (under 10,000 images, such as the "
        "4,000-digit offline sample) it suggests batch 64, RMSprop 0.012 with the cosine decay, 3 epochs and "
        "augmentation: 98 %.",
        _lecture, Hyper(optimizer="adam", learning_rate=0.005, lr_schedule="cosine", batch_size=128, epochs=2),
        lesson="Ours, not from a lab: the cheapest model we found that reaches 99 % on full MNIST in two epochs.",
        lesson_params=None,
        # Few images: smaller batches (more steps per epoch), one more epoch, and shifted and turned copies so the
        # model cannot memorise them. RMSprop (no momentum) with the cosine decay over 3 epochs ends above 98 % on
        # the sample for each of seeds 0-9 (98.1-98.7 %), where Adam needed 4 epochs for some seeds: 3 epochs fit
        # in the 8 s budget, 4 barely (bench/bench_training.py; README "Presets").
        small_data=Hyper(optimizer="rmsprop", learning_rate=0.012, lr_schedule="cosine", batch_size=64, epochs=3,
                         augment=True),
    ),
}

# The presets on MNIST's shape; use get() for another dataset.
DEFAULT_INPUT_SHAPE: tuple[int, int, int] = (28, 28, 1)


def get(name: str, input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE, num_classes: int = 10) -> Preset:
    """The preset `name` built for images of `input_shape` and `num_classes` classes."""
    recipe = _RECIPES.get(name)
    if recipe is None:
        raise SpecError(f"There is no preset called '{name}'. Presets: {', '.join(_RECIPES)}.")
    if num_classes < 2:
        raise SpecError(f"A classifier needs at least 2 classes; the dataset has {num_classes}.")
    spec = ModelSpec(tuple(input_shape), recipe.layers(num_classes), name=name)
    return Preset(name=name, title=recipe.title, description=recipe.description, spec=spec, hyper=recipe.hyper,
                  lesson=recipe.lesson, lesson_params=recipe.lesson_params, small_data=recipe.small_data)


def names() -> list[str]:
    return list(_RECIPES)


def suggested_hyper(spec: ModelSpec, num_train: int | None = None) -> Hyper:
    """The settings to start from for `spec` on a dataset of `num_train` training images: its preset's own when
    it is a preset (its small-data recipe on a small dataset, if it has one), else the fast preset's."""
    recipe = _RECIPES[spec.name if spec.name in _RECIPES else FAST]
    return _for_size(recipe.hyper, recipe.small_data, num_train)


def _for_size(hyper: Hyper, small_data: Hyper | None, num_train: int | None) -> Hyper:
    small = small_data is not None and num_train is not None and num_train < SMALL_DATA_IMAGES
    chosen = small_data if small else hyper
    if num_train is not None:
        # A tiny dataset (a class's first drawings: 24 training images) trains in one batch of all its images.
        n_fit = chosen.split_sizes(num_train)[0]
        if 0 < n_fit < chosen.batch_size:
            chosen = replace(chosen, batch_size=n_fit)
    return chosen


PRESETS: dict[str, Preset] = {name: get(name) for name in _RECIPES}


# --- what each preset costs -------------------------------------------------------------------------

COSTS_FILE = Path(__file__).with_name("preset_costs.json")


@lru_cache(maxsize=1)
def measured_costs() -> dict[str, Any]:
    """bench/bench_training.py's measurements of every preset on this project's 2-core machine (see the file's
    "measured" note): training images per second and seconds per epoch on MNIST-shaped images, and test accuracy.
    Empty when the file is missing or unreadable: the cost table then shows only what can be worked out."""
    try:
        data = json.loads(COSTS_FILE.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass(frozen=True)
class CostRow:
    """One preset's cost and accuracy: worked out (parameters, FLOPs) and measured (time per epoch, accuracy)."""

    name: str
    title: str
    params: int
    mflops: float                      # forward MFLOPs per image (2 × multiply-adds of Conv2D and Dense)
    images_per_second: float | None    # training images per CPU-second, measured on MNIST-shaped images (None: not)
    seconds_per_epoch: float | None    # CPU-seconds for an epoch of `num_train` images at that rate
    accuracy: float | None             # measured test accuracy with the preset's own recipe
    accuracy_note: str                 # what that accuracy was measured on


def cost_table(input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE, num_classes: int = 10,
               num_train: int = 50_000) -> list[CostRow]:
    """Every preset with its parameters and FLOPs per image for this dataset's shape, plus the training speed
    measured on this project's 2-core machine when the shape is the one measured, and the measured test
    accuracy of its recipe.

    The speed is training images per CPU-second of the training process, measured while other jobs shared the
    machine (wall time there says more about the neighbours than about the model). A machine doing nothing
    else runs an epoch in at most its CPU-seconds (TensorFlow keeps at least one core busy), and in about
    half of them where it keeps both busy.
    """
    costs = measured_costs()
    measured = costs.get("presets", {}) if isinstance(costs.get("presets"), dict) else {}
    same_shape = list(input_shape) == list(costs.get("input_shape", DEFAULT_INPUT_SHAPE))
    rows = []
    for name in names():
        p = get(name, input_shape, num_classes)
        s = p.spec.summary()
        m = measured.get(name, {}) if isinstance(measured.get(name), dict) else {}
        rate = m.get("images_per_cpu_second") if same_shape else None
        rate = float(rate) if isinstance(rate, (int, float)) and rate > 0 else None
        acc = m.get("accuracy") if same_shape else None
        rows.append(CostRow(
            name=name, title=p.title, params=s.total_params, mflops=s.flops / 1e6, images_per_second=rate,
            seconds_per_epoch=num_train / rate if rate else None,
            accuracy=float(acc) if isinstance(acc, (int, float)) else None,
            accuracy_note=str(m.get("accuracy_note", "")) if acc is not None else ""))
    return rows


def cost_frame(input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE, num_classes: int = 10,
               num_train: int = 50_000):
    """`cost_table` as a pandas DataFrame with the column names the architecture page shows."""
    import pandas as pd

    rows = cost_table(input_shape, num_classes, num_train)
    return pd.DataFrame({
        "preset": [r.title for r in rows],
        "parameters": [r.params for r in rows],
        "MFLOPs / image": [round(r.mflops, 2) for r in rows],
        f"CPU-s / epoch ({num_train:,} images)": [round(r.seconds_per_epoch) if r.seconds_per_epoch else None
                                                  for r in rows],
        "images / CPU-s": [round(r.images_per_second) if r.images_per_second else None for r in rows],
        "test accuracy": [r.accuracy for r in rows],
    })


def cost_words(name: str, input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE, num_classes: int = 10,
               num_train: int = 50_000, training_time: str | None = None) -> str:
    """One line on what preset `name` costs: FLOPs per image and, where measured, CPU-seconds per epoch here.

    With `training_time` (the job system's estimate in words, `JobCost.time_words`, from the speed this server
    measured: what the Training page shows) that replaces the project machine's CPU-seconds."""
    row = next((r for r in cost_table(input_shape, num_classes, num_train) if r.name == name), None)
    if row is None:
        raise SpecError(f"There is no preset called '{name}'. Presets: {', '.join(_RECIPES)}.")
    words = f"Cost: {row.mflops:.1f} million FLOPs per image"
    if training_time:
        words += f" · training it with the suggested settings takes {training_time}"
    elif row.seconds_per_epoch is not None:
        words += (f" · about {row.seconds_per_epoch:.0f} CPU-seconds per epoch of {num_train:,} images on this "
                  f"project's 2-core machine ({row.images_per_second:,.0f} images per CPU-second)")
    if row.accuracy is not None:
        words += f" · {row.accuracy:.2%} test accuracy ({row.accuracy_note})"
    return words + "."
