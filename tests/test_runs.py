"""cnnkit.runs: a Run's round-trip on disk, listing, class mode, damage."""

import json
import time

import numpy as np
import pytest

from cnnkit import runs
from cnnkit.errors import RunError
from cnnkit.hyper import Hyper


class _Spec:
    def to_dict(self):
        return {"input_shape": [4, 4, 1], "layers": []}


@pytest.fixture(scope="module")
def small_model():
    import keras

    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _save(model, root, **kw):
    hist = {"loss": [1.0, 0.5], "accuracy": [0.5, np.float32(0.75)], "val_loss": [1.1, float("nan")]}
    return runs.save_run(model, _Spec(), Hyper(batch_size=8), hist,
                         {"test_accuracy": np.float64(0.8), "test_loss": 0.4}, "mnist", root=root, **kw)


def test_round_trip(small_model, runs_dir):
    run = _save(small_model, runs_dir, title="first try", owner="abc")
    assert run.path.parent == runs_dir and run.title == "first try" and run.dataset_name == "mnist"
    again = runs.load_run(run.path)
    assert again.hyper == Hyper(batch_size=8) and again.hyper_dict == Hyper(batch_size=8).to_dict()
    assert again.history["accuracy"] == [0.5, 0.75] and again.history["val_loss"][1] is None
    assert again.metrics["test_accuracy"] == pytest.approx(0.8) and again.owner == "abc"
    model = again.load_model()
    x = np.random.default_rng(0).random((2, 4, 4, 1)).astype("float32")
    assert np.allclose(model.predict_on_batch(x), small_model.predict_on_batch(x), atol=1e-6)
    assert again.load_model() is model  # cached per process
    assert "first try" in again.label and "80.0%" in again.label
    assert not list(runs_dir.glob(".*partial"))


def test_listing_newest_first_and_by_dataset(small_model, runs_dir):
    a = _save(small_model, runs_dir)
    time.sleep(0.01)
    b = _save(small_model, runs_dir)
    listed = runs.list_runs()
    assert [r.id for r in listed] == [b.id, a.id]
    assert runs.list_runs(dataset_name="cifar10") == []


def test_class_mode_shows_own_and_shared_runs(small_model, runs_dir, monkeypatch):
    mine = _save(small_model, runs_dir, owner="me")
    _save(small_model, runs_dir, owner="someone-else")
    shared = _save(small_model, runs.shared_runs_dir(), title="lecturer's model")
    assert len(runs.list_runs(owner="me")) == 3  # on a laptop: everything
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    seen = {r.id for r in runs.list_runs(owner="me")}
    assert seen == {mine.id, shared.id}
    assert [r.shared for r in runs.list_runs(owner="nobody")] == [True]


def test_damaged_runs_give_sentences(small_model, runs_dir):
    run = _save(small_model, runs_dir)
    (run.path / "history.json").write_text("{not json")
    with pytest.raises(RunError, match="damaged history.json"):
        runs.load_run(run.path)
    assert runs.list_runs() == []  # skipped in listings
    (run.path / "metrics.json").unlink()
    with pytest.raises(RunError, match="metrics.json missing"):
        runs.load_run(run.path)
    with pytest.raises(RunError, match="no run folder"):
        runs.load_run(runs_dir / "nope")


def test_corrupt_model_file(small_model, runs_dir):
    run = _save(small_model, runs_dir)
    run.model_path.write_bytes(b"garbage")
    with pytest.raises(RunError, match="could not be loaded"):
        runs.load_run(run.path).load_model()


def test_delete(small_model, runs_dir):
    run = _save(small_model, runs_dir)
    runs.delete_run(run)
    assert not run.path.exists() and runs.list_runs() == []


def test_json_files_are_plain(small_model, runs_dir):
    run = _save(small_model, runs_dir)
    meta = json.loads((run.path / "run.json").read_text())
    assert meta["dataset"] == "mnist" and meta["id"] == run.id


def test_the_model_cache_keeps_only_its_bound_and_lets_evicted_models_go(small_model, runs_dir, monkeypatch):
    """A class opens many runs: the web process keeps the last MODEL_CACHE_SIZE models loaded, not every one;
    a model both caches (runs' and predict's Predictors) have let go is freed."""
    import gc
    import weakref

    import keras

    from cnnkit import predict

    monkeypatch.setattr(runs, "MODEL_CACHE_SIZE", 2)
    monkeypatch.setattr(predict, "_CACHE_SIZE", 2)
    digits = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(2, 3), keras.layers.Flatten(),
                               keras.layers.Dense(10, activation="softmax")])
    saved = [_save(digits, runs_dir, title=f"run {i}") for i in range(5)]
    first = runs.load_run(saved[0].path)
    first_model = weakref.ref(first.load_model())
    predict.predictor_for(first)
    assert first.load_model() is first_model()            # a hit: loaded once
    for run in saved[1:]:
        predict.predictor_for(runs.load_run(run.path))
        assert len(runs._model_cache) <= 2 and len(predict._cache) <= 2
    kept = [k[0] for k in runs._model_cache]
    assert kept == [str(saved[3].model_path), str(saved[4].model_path)]     # the most recently used
    gc.collect()
    assert first_model() is None                          # evicted from both: freed
