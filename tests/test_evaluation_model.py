"""cnnkit.evaluation with real Keras models: one batched pass agrees with model.evaluate + model.predict,
uploaded .keras files are loaded safely or refused with a sentence, runs are evaluated and compared."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from contextlib import redirect_stdout
from pathlib import Path

import keras
import numpy as np
import pytest

from cnnkit import evaluation, model_files, run_comparison, runs
from cnnkit.__main__ import main as cli_main
from cnnkit.datasets import Dataset
from cnnkit.errors import ModelFileError
from cnnkit.hyper import Hyper

DIGITS = tuple(str(i) for i in range(10))


def tiny_dataset(shape=(28, 28, 1), classes=10, n_test=300, name="mnist", seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset(
        name=name,
        title=f"tiny {name}",
        x_train=rng.integers(0, 256, (40, *shape), dtype=np.uint8),
        y_train=rng.integers(0, classes, 40),
        x_test=rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        y_test=rng.integers(0, classes, n_test),
        class_names=tuple(f"c{i}" for i in range(classes)) if classes != 10 else DIGITS,
        source="file",
        source_text="made in a test",
    )


def small_model(shape=(28, 28, 1), classes=10, softmax=True, seed=1, compile=True) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.MaxPooling2D(4),
            keras.layers.Flatten(),
            keras.layers.Dense(classes, activation="softmax" if softmax else None),
        ]
    )
    # Large weights make confident (and confidently wrong) predictions, so the loss is far from log(10).
    model.layers[-1].kernel.assign(model.layers[-1].kernel * 8)
    if compile:
        model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def keras_bytes(model) -> bytes:
    """The model as the bytes of a .keras file, as a student uploads it."""
    with tempfile.TemporaryDirectory(prefix="test-keras-") as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        return path.read_bytes()


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_one_pass_agrees_with_model_evaluate_and_predict(shape):
    ds = tiny_dataset(shape)
    model = small_model(shape)
    seen = []
    ev = evaluation.evaluate(model, ds, batch_size=64, progress=seen.append)
    x = ds.x_test.astype("float32") / 255
    loss, acc = model.evaluate(x, ds.y_test, verbose=0)
    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(ev.probabilities, probs, rtol=1e-5, atol=1e-6)
    assert ev.loss == pytest.approx(loss, rel=1e-4)
    assert ev.accuracy == pytest.approx(acc, abs=1e-6)
    assert ev.loss > 0.1 and ev.num_images == 300
    assert seen == pytest.approx([64 / 300, 128 / 300, 192 / 300, 256 / 300, 1.0])  # one call per batch


def test_logits_model_gets_softmax_applied():
    ds = tiny_dataset()
    model = small_model(softmax=False)
    ev = evaluation.evaluate(model, ds)
    assert ev.outputs_were_logits
    np.testing.assert_allclose(ev.probabilities.sum(axis=1), 1.0, rtol=1e-5)
    logits = model.predict(ds.x_test.astype("float32") / 255, verbose=0)
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    np.testing.assert_allclose(ev.probabilities, expected, rtol=1e-4, atol=1e-6)


def test_model_with_wrong_input_shape_is_refused_with_a_sentence():
    with pytest.raises(ModelFileError, match=r"expects images of shape 32×32×3.*28×28×1"):
        evaluation.evaluate(small_model((32, 32, 3)), tiny_dataset())


def test_model_with_wrong_class_count_is_refused_with_a_sentence():
    with pytest.raises(ModelFileError, match=r"outputs 5 values.*10 classes"):
        evaluation.check_model_fits(small_model(classes=5), tiny_dataset())


def test_uploaded_keras_file_round_trips():
    model = small_model()
    loaded = model_files.load_model_file(keras_bytes(model), "mine.keras")
    ds = tiny_dataset()
    np.testing.assert_allclose(
        evaluation.evaluate(loaded, ds).probabilities, evaluation.evaluate(model, ds).probabilities, rtol=1e-5
    )


def test_lambda_layer_is_refused_by_safe_mode():
    model = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Lambda(lambda x: x * 2), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    with pytest.raises(ModelFileError, match="Lambda layer"):
        model_files.load_model_file(keras_bytes(model), "lambda.keras")


@pytest.mark.parametrize(
    "data",
    [
        b"this is not a model",
        b"",
        "truncated",
        "zip without config",
    ],
)
def test_corrupted_files_are_refused_with_a_sentence(data):
    if data == "truncated":
        full = keras_bytes(small_model())
        data = full[: len(full) // 2]
    elif data == "zip without config":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("hello.txt", "hi")
        data = buf.getvalue()
    with pytest.raises(ModelFileError, match="damaged or is not a Keras model"):
        model_files.load_model_file(data, "broken.keras")


def test_wrong_extension_is_refused():
    with pytest.raises(ModelFileError, match=r"not a \.keras file"):
        model_files.load_model_file(b"whatever", "weights.h5")


def _save(model, root, title, history, accuracy=0.5):
    from cnnkit import presets

    spec = presets.get(presets.FAST).spec
    return runs.save_run(
        model,
        spec,
        Hyper(learning_rate=0.001, batch_size=32, epochs=len(history["loss"])),
        history,
        {"test_accuracy": accuracy, "test_loss": 1.0, "train_seconds": 3.5, "epochs_run": len(history["loss"])},
        dataset_name="mnist",
        root=root,
        title=title,
    )


HISTORY = {"loss": [1.0, 0.6, 0.4], "accuracy": [0.6, 0.8, 0.9],
           "val_loss": [0.8, 0.5, 0.55], "val_accuracy": [0.7, 0.85, 0.84]}


def test_runs_are_evaluated_cached_and_compared(tmp_path):
    ds = tiny_dataset()
    a = _save(small_model(seed=1, compile=False), tmp_path, "first", HISTORY)
    b = _save(small_model(seed=2, compile=False), tmp_path, "second", {k: v[:2] for k, v in HISTORY.items()})
    cache = evaluation.EvaluationCache()
    key = evaluation.run_key(a, ds)
    ev_a = cache.get_or_evaluate(key, a, ds)
    assert cache.get_or_evaluate(key, a, ds) is ev_a  # second call: no new pass
    assert evaluation.run_key(b, ds) != key
    ev_b = evaluation.evaluate(b, ds)
    table = run_comparison.compare_table([a, b], {a.id: ev_a})
    assert table["test accuracy"].tolist() == [pytest.approx(ev_a.accuracy), 0.5]  # b: saved metric
    assert table["best epoch"].tolist() == [2, 2]
    assert table["epochs run"].tolist() == [3, 2]
    assert table["optimizer"].tolist() == ["Adam"] * 2 and table["batch size"].tolist() == [32] * 2
    from cnnkit import presets

    assert table["parameters"].tolist() == [presets.get(presets.FAST).spec.summary().total_params] * 2
    assert table["run"].str.startswith("first").iloc[0] and ev_b.num_images == 300
    readable = run_comparison.compare_columns([a, b], {a.id: ev_a})
    assert list(readable.columns) == ["Run 1", "Run 2"]
    assert readable.loc["test accuracy", "Run 2"] == "50.00%" and readable.loc["epochs run"].tolist() == ["3", "2"]
    assert readable.loc["test accuracy", "Run 1"] == f"{ev_a.accuracy:.2%}"


def test_command_line_evaluate(tmp_path, monkeypatch):
    ds = tiny_dataset()
    run = _save(small_model(compile=False), tmp_path, "cli", HISTORY)
    npz = tmp_path / "tiny.npz"
    np.savez(npz, x_train=ds.x_train[..., 0], y_train=ds.y_train, x_test=ds.x_test[..., 0], y_test=ds.y_test)
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_main(["evaluate", "--run", str(run.path), "--dataset", str(npz), "--json"]) == 0
    result = json.loads(out.getvalue())
    expected = evaluation.evaluate(small_model(), ds)
    assert result["test_accuracy"] == pytest.approx(expected.accuracy)
    assert result["test_loss"] == pytest.approx(expected.loss, rel=1e-5)
    assert result["report"]["weighted avg"]["support"] == 300
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli_main(["evaluate", "--run", str(run.path), "--dataset", str(npz)]) == 0
    text = out.getvalue()
    assert "accuracy" in text and "weighted avg" in text and "precision" in text


def test_command_line_evaluate_bad_run_is_one_sentence(tmp_path, capsys):
    assert cli_main(["evaluate", "--run", str(tmp_path / "nope")]) == 2
    assert "error: There is no run folder" in capsys.readouterr().err


def test_batch_function_cache_does_not_keep_models_alive():
    import gc
    import weakref

    model = small_model(compile=False)
    evaluation.evaluate(model, tiny_dataset(n_test=20))
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
