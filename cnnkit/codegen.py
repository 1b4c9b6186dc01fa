"""Code export: a ModelSpec and its training settings → a runnable, readable Keras script that
trains the same model CNN Lab trained.

The script reads top to bottom like keras-io's `mnist_convnet.py` (settings, data, model, train,
evaluate, save) and runs outside CNN Lab with `python script.py`. Run on the same data, it repeats the
app's run: the same seed and deterministic TensorFlow ops, the same validation images (it holds
`cnnkit.training.class_balanced_order`), and the same batches in the same order with the same
augmentation (it holds `cnnkit.pipeline.Batches` and `shift_and_turn`); those pieces are copied from
cnnkit's own source, so the two cannot drift apart. It loads only the dataset it needs, with the loader
its catalogue entry holds (`cnnkit.datasets.catalogue`: MNIST falls back to the 5,000-digit sample shipped with cnnkit
offline, Fashion-MNIST reads Debian's dataset-fashion-mnist files), or a Keras-layout `.npz` given with
`--npz`. Flags `--epochs`, `--limit` and `--offline-sample` keep a trial
run short; `--history` writes the per-epoch history and the split as JSON.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

from cnnkit import layers
from cnnkit.datasets.catalogue import CATALOGUE, export_loader
from cnnkit.errors import SpecError
from cnnkit.hyper import LABEL_MODES, OPTIMIZERS, Hyper
from cnnkit.spec import ModelSpec, keras_model_name

DATASETS = tuple(CATALOGUE)  # each has its own loader in the script; any other name needs --npz

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


@cache
def _source(module: str, name: str) -> str:
    """The source of one top-level function or class of a cnnkit module, read without importing it."""
    text = (Path(__file__).parent / f"{module}.py").read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            return ast.get_source_segment(text, node)
    raise LookupError(f"cnnkit/{module}.py has no {name}")


def _optimizer_code(h: Hyper) -> str:
    """The lines that set the learning rate and make the optimizer, as the app's training job does."""
    lines = [f"LEARNING_RATE = {h.learning_rate!r}"]
    rate = "LEARNING_RATE"
    if h.lr_schedule == "cosine":
        lines += ["# Cosine schedule: glide from LEARNING_RATE down to zero over every planned batch.",
                  "learning_rate = keras.optimizers.schedules.CosineDecay(LEARNING_RATE, "
                  "decay_steps=args.epochs * len(train_batches))"]
        rate = "learning_rate"
    extra = f", momentum={h.momentum!r}" if h.optimizer == "sgd" else ""
    lines.append(f"optimizer = keras.optimizers.{OPTIMIZERS[h.optimizer].keras_class}(learning_rate={rate}{extra})")
    return "\n".join(lines)


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
    if h.early_stopping:
        monitor = '"val_loss" if val_batches is not None else "loss"'
        callbacks = ("# Stop when the validation loss has not improved for PATIENCE epochs; keep the best weights.\n"
                     f"PATIENCE = {h.patience}\n"
                     f"monitor = {monitor}\n"
                     "callbacks = [keras.callbacks.EarlyStopping(monitor=monitor, patience=PATIENCE, "
                     "restore_best_weights=True)]")
    else:
        callbacks = "callbacks = []"
    return _TEMPLATE.format(
        heading=heading,
        script_name=filename(spec),
        total=f"{summary.total_params:,}",
        dataset=_docstring_safe(dataset_name),
        dataset_literal=json.dumps(dataset_name),
        settings=textwrap.fill(f"Settings: {_docstring_safe(h.describe())}.", width=100, break_on_hyphens=False),
        input_shape=tuple(spec.input_shape),
        num_classes=num_classes,
        seed=h.seed,
        **{f"loader_{k}": v for k, v in dataclasses.asdict(export_loader(dataset_name)).items()},
        validation_split=h.validation_split,
        train_images=h.train_images,
        class_balanced_order=_source("training", "class_balanced_order"),
        batch_size=h.batch_size,
        one_hot=h.labels == "one_hot",
        labels_comment=LABEL_MODES[h.labels],
        augment=h.augment,
        augment_title=", shifted and turned" if h.augment else "",
        shift_and_turn=_source("pipeline", "shift_and_turn"),
        batches_class=_source("pipeline", "Batches"),
        epochs=h.epochs,
        layer_lines=layer_lines,
        model_name=json.dumps(keras_model_name(name)),
        loss=json.dumps(h.loss),
        optimizer=_optimizer_code(h),
        callbacks=callbacks,
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

{settings}
Run on the same data, this script trains the same model CNN Lab trained with these settings: the same
seed, the same validation images, the same batches in the same order with the same augmentation.

Run it with `python {script_name}`. Options:
  --epochs N          train for N epochs instead of {epochs}
  --limit N           use only the first N training and N test images (a quick trial)
{loader_options}  --npz PATH          read x_train, y_train, x_test, y_test from a Keras-layout .npz file
  --out PATH          where to save the trained model (default {out})
  --history PATH      also write the per-epoch history and the validation split as JSON
"""

import argparse
{loader_imports}import json
import math
{loader_more_imports}
import keras
import numpy as np
import tensorflow as tf
from keras import layers

"""
## Settings
"""

DATASET = {dataset_literal}
INPUT_SHAPE = {input_shape}
NUM_CLASSES = {num_classes}
SEED = {seed}  # fixes the starting weights, the validation images, the batch order and the augmentation

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--epochs", type=int, default={epochs})
parser.add_argument("--limit", type=int, default=0)
{loader_flags}parser.add_argument("--npz", default="")
parser.add_argument("--out", default="{out}")
parser.add_argument("--history", default="")
args = parser.parse_args()
# The same numbers on every run: TensorFlow uses only deterministic kernels.
tf.config.experimental.enable_op_determinism()

"""
## Prepare the data
"""


{loader_code}

(x_train, y_train), (x_test, y_test) = load_data()
if args.limit:
    x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    x_test, y_test = x_test[: args.limit], y_test[: args.limit]

# Images keep their 0-255 bytes here: each batch is scaled to [0, 1] when it is made (see Batches below).
# Make sure images have a channel axis: (28, 28) -> (28, 28, 1)
if x_train.ndim == 3:
    x_train = np.expand_dims(x_train, -1)
    x_test = np.expand_dims(x_test, -1)
x_train, x_test = x_train.astype("uint8"), x_test.astype("uint8")
y_train = np.asarray(y_train).reshape(-1).astype("int64")
y_test = np.asarray(y_test).reshape(-1).astype("int64")
print("x_train shape:", x_train.shape)
print(x_train.shape[0], "train samples")
print(x_test.shape[0], "test samples")
if x_train.shape[1:] != INPUT_SHAPE:
    raise SystemExit(f"This model expects images of shape {{INPUT_SHAPE}}, but the data has {{x_train.shape[1:]}}.")

"""
## Hold back validation images

Shuffle the indices with the seed, then deal the classes in turn, so any first k images hold every
class in proportion; the first ones validate, the rest train.
"""

VALIDATION_SPLIT = {validation_split}
TRAIN_IMAGES = {train_images}  # train on this many images (every class in proportion); None: all of them


{class_balanced_order}


order = class_balanced_order(y_train, SEED)
used = len(y_train) if TRAIN_IMAGES is None else min(TRAIN_IMAGES, len(y_train))
n_val = 0 if VALIDATION_SPLIT <= 0 else max(1, int(round(used * VALIDATION_SPLIT)))
val_idx = np.sort(order[:n_val])
train_idx = np.sort(order[n_val:used])
print(len(train_idx), "images train,", len(val_idx), "validate")

"""
## Batches: a new order every epoch{augment_title}
"""

BATCH_SIZE = {batch_size}
ONE_HOT = {one_hot}  # {labels_comment}
AUGMENT = {augment}  # shift and turn training images slightly, differently every epoch


{shift_and_turn}


{batches_class}


train_batches = Batches(x_train, y_train, train_idx, BATCH_SIZE, NUM_CLASSES, one_hot=ONE_HOT, shuffle=True,
                        seed=SEED, augment=AUGMENT)
val_batches = Batches(x_train, y_train, val_idx, BATCH_SIZE, NUM_CLASSES, one_hot=ONE_HOT) if n_val else None

"""
## Build the model
"""

keras.utils.set_random_seed(SEED)  # the same starting weights as in CNN Lab
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

{optimizer}
model.compile(loss={loss}, optimizer=optimizer, metrics=["accuracy"])
{callbacks}
# shuffle=False: Batches already visits the images in a new order every epoch.
history = model.fit(train_batches, validation_data=val_batches, epochs=args.epochs, callbacks=callbacks,
                    shuffle=False)

"""
## Evaluate the trained model
"""

test_batches = Batches(x_test, y_test, np.arange(len(y_test)), max(BATCH_SIZE, 256), NUM_CLASSES, one_hot=ONE_HOT)
score = model.evaluate(test_batches, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])

model.save(args.out)
print("Saved the trained model to", args.out)
if args.history:
    with open(args.history, "w") as f:
        json.dump({{"history": history.history, "train_indices": train_idx.tolist(),
                   "validation_indices": val_idx.tolist()}}, f)
'''
