"""Memory is a budget (issue #26): `CNNKIT_LIMIT_ACTION_MEMORY` bounds what one student's action may add to the
web process. A file inside every size limit but over the budget is refused with a sentence before its pixels or
weights are allocated; the Data page's statistics read chunks sized from the budget; evaluation's batches shrink
to fit it; and the estimates are checked against the peaks tracemalloc measures (numpy reports its allocations)."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile

import hostile
import numpy as np
import pytest

from cnnkit import datasets, evaluation, exploration, limits, model_files
from cnnkit.datasets import npz, uploads
from cnnkit.errors import DatasetError, ModelFileError

ENV = "CNNKIT_LIMIT_ACTION_MEMORY"


def _peak(fn, *args):
    """(result, peak bytes allocated while `fn` ran)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out = fn(*args)
        return out, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _refused(f, budget: int, module, reader: str, monkeypatch) -> str:
    """The sentence loading `f` is refused with under `budget` bytes; `module.reader` (what would allocate the
    pixels) is never called."""
    def never(*args):
        raise AssertionError(f"{reader} ran for a file over the budget")

    monkeypatch.setenv(ENV, str(budget))
    monkeypatch.setattr(module, reader, never)
    with pytest.raises(DatasetError) as err:
        datasets.load_file(f)
    return str(err.value)


def test_the_budget_is_a_named_limit_listed_with_the_others(monkeypatch, capsys):
    from cnnkit.__main__ import main as cli

    assert limits.get("action_memory") == 300_000_000
    monkeypatch.setenv(ENV, "50_000_000")
    assert limits.get("action_memory") == 50_000_000
    assert cli(["limits"]) == 0
    assert ENV in capsys.readouterr().out
    with pytest.raises(DatasetError) as err:
        limits.check_memory(412_000_000, DatasetError, "Reading 'x.npz'", "Use fewer images.")
    assert str(err.value) == ("Reading 'x.npz' would take about 412 MB of the server's memory; one action may take "
                              "50 MB (CNNKIT_LIMIT_ACTION_MEMORY), since the whole class shares the server. "
                              "Use fewer images.")


@pytest.mark.parametrize("dtype", ["uint8", "float64"])
def test_an_npz_inside_every_size_limit_but_over_the_budget_is_a_sentence(tmp_path, monkeypatch, dtype):
    """2,000 images of 64×64 as float64 are 8 million values (far under CNNKIT_LIMIT_DATASET_VALUES) but 66 MB
    on disk and, read in chunks and converted, over a 20 MB budget: refused before a pixel is read."""
    x = np.zeros((2000, 64, 64), dtype)
    y = np.arange(2000) % 10
    f = hostile.npz(tmp_path / "big.npz", x_train=x, y_train=y, x_test=x[:500], y_test=y[:500])
    said = _refused(f, npz.peak_bytes(npz.npz_headers(f)) - 1, npz, "_read_images", monkeypatch)
    assert said.startswith("Reading 'big.npz' would take about ") and ENV in said and "uint8" in said, said
    assert str(tmp_path) not in said


@pytest.mark.parametrize("dtype, fortran", [("uint8", False), ("float64", False), ("float32", True)])
def test_the_npz_estimate_covers_the_measured_peak(tmp_path, dtype, fortran):
    x = np.zeros((1500, 48, 48), dtype)
    x = np.asfortranarray(x) if fortran else x
    y = np.eye(10, dtype=np.float32)[np.arange(1500) % 10]   # one-hot labels: the label path's copies too
    f = hostile.npz(tmp_path / "a.npz", x_train=x, y_train=y, x_test=x[:300], y_test=y[:300])
    datasets.load_file(f)   # the readers' imports are not the reading's memory
    _, peak = _peak(datasets.load_file, f)
    estimate = npz.peak_bytes(npz.npz_headers(f))
    assert peak <= estimate < 2.5 * peak + 4_000_000, (peak, estimate)


def test_a_zip_inside_every_size_limit_but_over_the_budget_is_a_sentence(tmp_path, monkeypatch):
    blank = hostile.png(128, 128)
    f = hostile.image_zip(tmp_path / "blank.zip", {f"c{i % 3}/{i}.png": blank for i in range(300)})
    datasets.load_file(f)
    _, peak = _peak(datasets.load_file, f)
    with zipfile.ZipFile(f) as zf:
        estimate = uploads.zip_peak_bytes(zf.infolist(), (128, 128), False)
    assert peak <= estimate < 1.5 * peak + 2_000_000, (peak, estimate)
    said = _refused(f, estimate - 1, uploads, "_decode_into", monkeypatch)
    assert said.startswith("Reading the 300 images in 'blank.zip' would take about ") and ENV in said, said


def test_a_zip_that_turns_to_colour_is_estimated_in_colour(tmp_path):
    from PIL import Image

    def png(mode):
        buf = io.BytesIO()
        Image.new(mode, (64, 64), (200, 0, 0) if mode == "RGB" else 30).save(buf, "PNG")
        return buf.getvalue()

    files = {f"c{i % 2}/{i:03d}.png": png("RGB" if i == 199 else "L") for i in range(200)}
    f = hostile.image_zip(tmp_path / "late.zip", files)
    datasets.load_file(f)
    ds, peak = _peak(datasets.load_file, f)
    assert ds.image_shape == (64, 64, 3)
    with zipfile.ZipFile(f) as zf:
        assert peak <= uploads.zip_peak_bytes(zf.infolist(), (64, 64), True)


def test_the_statistics_stay_inside_a_small_budget(monkeypatch):
    """With a 2 MB budget the histogram and the class means of a 13 MB dataset add under 2 MB (they read
    chunks of a sixteenth of the budget); with the default they read 1 M values at a time (9 MB)."""
    monkeypatch.setenv(ENV, "2000000")
    x = np.zeros((800, 128, 128, 1), np.uint8)
    x[:, ::3] = 7
    y = np.arange(800) % 10
    ds = datasets.Dataset(name="upload", title="t", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4],
                          class_names=tuple(str(i) for i in range(10)), source="file", source_text="a file")
    assert exploration.statistics_peak_bytes(ds) < 2_000_000
    for stat in (exploration.pixel_histogram, exploration.mean_images, exploration.class_counts):
        stat(ds)
        _, peak = _peak(stat, ds)
        assert peak < exploration.statistics_peak_bytes(ds), (stat.__name__, peak)
    assert exploration.pixel_histogram(ds)["pixels"][7] == x[:, ::3].size


def test_a_model_file_over_the_budget_is_a_sentence_and_builds_nothing(monkeypatch):
    """Flatten → Dense(1000) on 28×28 images: 785,000 parameters, a tenth of CNNKIT_LIMIT_MODEL_PARAMS, but
    building it takes about 16 MB: over a 10 MB budget, refused before Keras is asked."""
    from test_model_file_bounds import dense_config, keras_file

    def never(*args):
        raise AssertionError("Keras was asked to build a model over the budget")

    monkeypatch.setattr(model_files, "_keras_load", never)
    monkeypatch.setenv(ENV, "10000000")
    with pytest.raises(ModelFileError) as err:
        model_files.read_model(keras_file(json.dumps(dense_config(1000))), "wide.keras")
    said = str(err.value)
    assert said.startswith("Building the model in wide.keras (785,000 parameters) would take about 16 MB"), said
    assert ENV in said


def test_evaluation_batches_shrink_to_the_budget_and_a_model_too_big_for_it_is_a_sentence(monkeypatch):
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(32, 3, padding="same"),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    assert evaluation.activation_values(model) == 28 * 28 * 32 * 2 + 10
    x = np.zeros((600, 28, 28, 1), np.uint8)
    y = np.arange(600) % 10
    ds = datasets.Dataset(name="mnist", title="MNIST", x_train=x, y_train=y, x_test=x, y_test=y,
                          class_names=tuple(str(i) for i in range(10)), source="file", source_text="a file")
    assert evaluation.memory_plan(model, ds)[0] == evaluation.DEFAULT_BATCH_SIZE
    per_image = 5 * 784 + 8 * evaluation.activation_values(model)
    monkeypatch.setenv(ENV, str(600 * 176 + 40 * per_image))
    assert evaluation.memory_plan(model, ds) == (40, 600 * 176 + 40 * per_image)
    assert evaluation.evaluate(model, ds).num_images == 600
    monkeypatch.setenv(ENV, "100000")
    with pytest.raises(ModelFileError) as err:
        evaluation.evaluate(model, ds)
    assert "Testing this model on the 600 test images of MNIST would take about" in str(err.value)


def test_prediction_refuses_a_model_whose_one_picture_is_over_the_budget(monkeypatch):
    import keras

    from cnnkit import predict
    from cnnkit.errors import DrawingError

    model = keras.Sequential([keras.Input((256, 256, 1)), keras.layers.Conv2D(16, 3, padding="same"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
    assert predict.prediction_peak_bytes(model) > 16 * 256 * 256 * 16
    predict.Predictor(model)   # 17 MB under the default budget
    monkeypatch.setenv(ENV, "5000000")
    with pytest.raises(DrawingError) as err:
        predict.Predictor(model)
    assert str(err.value).startswith("Running this model on one picture would take about 17 MB")


def test_a_hidden_test_file_whose_join_is_over_the_budget_is_a_sentence(tmp_path, monkeypatch):
    """The lecturer's hidden file is read within the budget, then its two parts are joined (a second copy):
    that copy is counted before it is made."""
    from cnnkit import challenge

    blank = hostile.png(64, 64)
    f = hostile.image_zip(tmp_path / "hidden.zip", {f"c{i % 3}/{i}.png": blank for i in range(1000)})
    with zipfile.ZipFile(f) as zf:
        read = uploads.zip_peak_bytes(zf.infolist(), (64, 64), False)
    monkeypatch.setenv(ENV, str(read + 10_000))   # enough to read it, not to hold it twice
    x = np.zeros((30, 64, 64, 1), np.uint8)
    y = np.arange(30) % 3
    ds = datasets.Dataset(name="shapes", title="Shapes", x_train=x, y_train=y, x_test=x, y_test=y,
                          class_names=("a", "b", "c"), source="file", source_text="a file")
    store = challenge.ChallengeStore(tmp_path / "challenge")
    with pytest.raises(challenge.ChallengeError) as err:
        store.open_file(ds, f)
    assert str(err.value).startswith("Keeping hidden.zip as the hidden set (read, then joined) would take about")
    assert store.current() is None
    monkeypatch.setenv(ENV, str(3 * 1000 * 64 * 64))
    assert store.open_file(ds, f).hidden_count == 1000
