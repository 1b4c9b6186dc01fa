"""The exported Keras script: readable layer code, and for every preset a real run outside the app."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnkit import codegen, layers, presets
from cnnkit.errors import SpecError, TrainingError
from cnnkit.hyper import Hyper
from cnnkit.spec import LayerSpec, ModelSpec

L = LayerSpec.new
ROOT = Path(__file__).resolve().parent.parent


def test_layer_code_reads_like_the_keras_example():
    assert codegen.layer_code("Conv2D", {"filters": 32, "activation": "relu"}) == \
        'layers.Conv2D(32, kernel_size=(3, 3), activation="relu")'
    assert codegen.layer_code("MaxPooling2D", {}) == "layers.MaxPooling2D(pool_size=(2, 2))"
    assert codegen.layer_code("Dropout", {"rate": 0.5}) == "layers.Dropout(0.5)"
    assert codegen.layer_code("Dense", {"units": 10, "activation": "softmax"}) == \
        'layers.Dense(10, activation="softmax")'
    assert codegen.layer_code("LeakyReLU", {}) == "layers.LeakyReLU(negative_slope=0.1)"
    assert codegen.layer_code("Conv2D", {"use_bias": False, "padding": "same", "strides": 2,
                                         "activation": "linear"}) == \
        'layers.Conv2D(32, kernel_size=(3, 3), strides=2, padding="same", use_bias=False)'
    assert codegen.layer_code("AveragePooling2D", {"strides": 1}) == \
        "layers.AveragePooling2D(pool_size=(2, 2), strides=1)"


def test_every_layer_type_generates_code_that_builds_the_same_layer():
    import keras

    for key, entry in layers.CATALOGUE.items():
        code = codegen.layer_code(key, entry.defaults())
        built = eval(code, {"layers": keras.layers})  # noqa: S307 - our own generated code
        direct = entry.build(entry.defaults(), "x")
        skip = {"name", "dtype", "trainable"}
        got = {k: v for k, v in built.get_config().items() if k not in skip}
        want = {k: v for k, v in direct.get_config().items() if k not in skip}
        assert got == want, key


def test_script_is_valid_python_with_the_settings():
    p = presets.get("single_conv")
    code = codegen.script(p.spec, p.hyper, "mnist", title=p.title)
    compile(code, "script.py", "exec")
    assert "LEARNING_RATE = 0.01\n" in code
    assert "keras.optimizers.SGD(learning_rate=LEARNING_RATE, momentum=0.9)" in code
    assert "BATCH_SIZE = 32" in code and 'add_argument("--epochs", type=int, default=10)' in code
    assert "NUM_CLASSES = 10" in code and f"SEED = {p.hyper.seed} " in code
    # only the loader this dataset needs
    assert "keras.datasets.mnist.load_data()" in code and "fashion" not in code and "cifar10" not in code
    assert "Title: Lab A · one convolution" in code and "542,230 parameters" in code
    assert codegen.filename(p.spec) == "train_single_conv.py"


def test_titles_cannot_break_the_docstring():
    spec = presets.get("keras_convnet").spec
    code = codegen.script(spec, Hyper(), "mnist", title='evil """ title \\')
    compile(code, "script.py", "exec")


def test_invalid_spec_or_optimizer_is_refused():
    spec = ModelSpec((28, 28, 1), [L("Conv2D"), L("Dense", units=10, activation="softmax")])
    with pytest.raises(SpecError, match="Fix the model before exporting"):
        codegen.script(spec, Hyper())
    with pytest.raises(TrainingError, match="Unknown optimizer 'lbfgs'"):
        codegen.script(presets.get("keras_convnet").spec, Hyper(optimizer="lbfgs"))


def _run(script: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""}
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env,
                          cwd=script.parent, timeout=300)


# Runs every exported script as a program (`__main__`, its own argv) in one Python process, so
# TensorFlow is imported once instead of once per preset; one preset also runs as `python script.py`.
_RUNNER = """
import contextlib, runpy, sys, traceback
for script, log in zip(sys.argv[1::2], sys.argv[2::2]):
    sys.argv = [script, "--epochs", "1", "--offline-sample", "--limit", "200", "--out", log + ".keras"]
    with open(log, "w") as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        try:
            runpy.run_path(script, run_name="__main__")
            print("EXIT 0")
        except BaseException:
            traceback.print_exc()
            print("EXIT 1")
"""


@pytest.fixture(scope="module")
def preset_runs(tmp_path_factory) -> dict[str, tuple[str, Path]]:
    """Every preset's script, exported and run outside the app: 1 epoch on 200 offline digits.

    The first preset runs as `python script.py`; the others share one runner process, alongside it.
    """
    folder = tmp_path_factory.mktemp("scripts")
    scripts = {}
    for name in presets.names():
        p = presets.get(name)
        scripts[name] = folder / codegen.filename(p.spec)
        scripts[name].write_text(codegen.script(p.spec, p.hyper, "mnist", title=p.title), encoding="utf-8")
    first, *rest = presets.names()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    args = [a for name in rest for a in (str(scripts[name]), str(folder / f"{name}.log"))]
    runner = subprocess.Popen([sys.executable, "-c", _RUNNER, *args], env=env, cwd=folder)
    program = _run(scripts[first], "--epochs", "1", "--offline-sample", "--limit", "200",
                   "--out", str(folder / f"{first}.log.keras"))
    (folder / f"{first}.log").write_text(program.stdout + program.stderr + f"\nEXIT {program.returncode}\n")
    assert runner.wait(timeout=600) == 0
    return {name: ((folder / f"{name}.log").read_text(), folder / f"{name}.log.keras") for name in presets.names()}


@pytest.mark.parametrize("name", presets.names())
def test_exported_script_runs_and_builds_the_same_model(preset_runs, name):
    log, out = preset_runs[name]
    assert "EXIT 0" in log, log[-3000:]
    expected = presets.get(name).spec.summary().total_params
    assert re.search(rf"Total params: {expected:,} ", log), log[-3000:]
    assert "200 train samples" in log and "Test accuracy:" in log
    assert out.is_file()


def test_exported_script_reads_an_npz_for_an_uploaded_dataset(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "tiny.npz", x_train=rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8),
             y_train=np.arange(64) % 4, x_test=rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8),
             y_test=np.arange(16) % 4)
    p = presets.get(presets.FAST, (32, 32, 3), 4)
    script = tmp_path / "train.py"
    script.write_text(codegen.script(p.spec, p.hyper, "my_photos"), encoding="utf-8")
    proc = _run(script, "--epochs", "1", "--npz", str(tmp_path / "tiny.npz"), "--out", str(tmp_path / "m.keras"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Total params: {p.spec.summary().total_params:,} " in proc.stdout
    # without --npz, a dataset Keras does not know gets a sentence, not a traceback
    proc = _run(script, "--epochs", "1")
    assert proc.returncode == 1 and "pass --npz" in proc.stderr


def test_cosine_schedule_is_exported_like_the_app_trains_it():
    p = presets.get(presets.FAST)
    assert p.hyper.lr_schedule == "cosine"
    code = codegen.script(p.spec, p.hyper, "mnist", title=p.title)
    assert "keras.optimizers.schedules.CosineDecay(" in code and "decay_steps=args.epochs" in code
    compile(code, "train.py", "exec")
    constant = codegen.script(p.spec, p.hyper.replace(lr_schedule="constant"), "mnist")
    assert "CosineDecay" not in constant and "LEARNING_RATE = 0.003\n" in constant
    assert "keras.optimizers.Adam(learning_rate=LEARNING_RATE)" in constant


# --- the exported script repeats the app's run ------------------------------------------------
# Non-default settings that touch every part of the pipeline: seed, one-hot labels, augmentation,
# cosine schedule, early stopping, a 20 % validation split (and a class-balanced image subset).
REPRO = dict(seed=7, labels="one_hot", augment=True, lr_schedule="cosine", early_stopping=True, patience=1,
             validation_split=0.2, epochs=2, batch_size=64, train_images=1500)
# The two runs execute the same float32 operations in the same order with op determinism on, and are
# expected to agree exactly; the tolerance only allows for last-bit differences should TensorFlow pick a
# different thread split for a reduction in a fresh process (float32 epsilon is 1.2e-7).
REPRO_RTOL = 1e-5


def test_exported_script_reproduces_the_apps_run(tmp_path, runs_dir):
    from cnnkit import datasets, training

    ds = datasets.load("mnist")   # the 5,000-digit sample offline, or full MNIST where Keras has it cached
    p = presets.get("lecture")
    job = training.train(p.spec, ds, p.hyper.replace(**REPRO), title="reproduce me")
    assert job.run is not None, job.snapshot().message
    run = job.run
    # The script is exported from the saved run, as the Evaluation page does, and run on the same images.
    script = tmp_path / codegen.filename(run.spec)
    script.write_text(codegen.script(run.spec, run.hyper, run.dataset_name, title=run.title), encoding="utf-8")
    np.savez(tmp_path / "data.npz", x_train=ds.x_train, y_train=ds.y_train, x_test=ds.x_test, y_test=ds.y_test)
    proc = _run(script, "--npz", str(tmp_path / "data.npz"), "--history", str(tmp_path / "history.json"),
                "--out", str(tmp_path / "m.keras"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads((tmp_path / "history.json").read_text())

    train_idx, val_idx = training.split_indices(ds.y_train, run.hyper)
    assert got["validation_indices"] == val_idx.tolist() and got["train_indices"] == train_idx.tolist()
    assert len(val_idx) == run.metrics["num_validation"] == 300
    assert set(got["history"]) == set(run.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for key, values in run.history.items():
        assert len(values) == 2
        np.testing.assert_allclose(got["history"][key], values, rtol=REPRO_RTOL, err_msg=key)
    test_accuracy = float(re.search(r"Test accuracy: ([0-9.]+)", proc.stdout).group(1))
    assert test_accuracy == pytest.approx(run.metrics["test_accuracy"], rel=REPRO_RTOL)


def test_same_settings_give_the_same_batches_and_a_new_order_every_epoch(tiny_ds):
    from cnnkit import training

    ds = tiny_ds(n_train=100)
    make = lambda: training.batches(ds.x_train, ds.y_train, np.arange(100), 32, num_classes=10,  # noqa: E731
                                    shuffle=True, seed=5, augment=True)
    a, b = make(), make()
    first = [a[i][0] for i in range(len(a))]
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate([b[i][0] for i in range(len(b))]))
    a.on_epoch_end()
    assert not np.array_equal(a.order(), b.order()) and sorted(a.order()) == sorted(b.order())
    assert not np.array_equal(a[0][0], first[0])


@pytest.mark.parametrize("dataset_name", [*codegen.DATASETS, "my_photos"])
def test_each_script_loads_only_its_dataset_and_passes_the_linter(tmp_path, dataset_name):
    p = presets.get(presets.FAST, (32, 32, 3) if dataset_name in ("cifar10", "my_photos") else (28, 28, 1))
    code = codegen.script(p.spec, p.hyper.replace(augment=True, early_stopping=True), dataset_name)
    others = [d for d in codegen.DATASETS if d != dataset_name]
    assert not any(f"keras.datasets.{d}" in code for d in others)
    assert ("read_idx" in code) == (dataset_name == "fashion_mnist")
    assert ("--offline-sample" in code) == (dataset_name == "mnist")
    path = tmp_path / "train.py"
    path.write_text(code, encoding="utf-8")
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", "--line-length", "120",
                           "--select", "E,F,W,I,B,UP", str(path)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
