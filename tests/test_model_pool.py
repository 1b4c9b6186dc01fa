"""Kept compiled models (cnnkit.model_pool): a borrowed model trains exactly like a freshly built one."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit import model_pool
from cnnkit.hyper import Hyper
from cnnkit.progress import JobState
from cnnkit.spec import LayerSpec, ModelSpec
from cnnkit.training import TrainingJob

L = LayerSpec.new


def small_spec(dropout: bool = False) -> ModelSpec:
    layers = [L("Conv2D", filters=4, kernel_size=3, activation="relu"), L("BatchNormalization"),
              L("MaxPooling2D", pool_size=4), L("Flatten")]
    if dropout:
        layers.append(L("Dropout", rate=0.3))
    layers.append(L("Dense", units=10, activation="softmax"))
    return ModelSpec((28, 28, 1), layers, name="pooled")


def hyper(seed: int, **kw) -> Hyper:
    base = dict(optimizer="rmsprop", learning_rate=0.01, batch_size=20, epochs=2, validation_split=0.2,
                seed=seed, lr_schedule="cosine", augment=True)
    base.update(kw)
    return Hyper(**base)


def train(spec, ds, h):
    """One job as a worker runs it: the trained model kept, read, then given back to the pool."""
    job = TrainingJob(spec, ds, h, save=False, keep_model=True)
    job.start()
    snap = job.wait(120)
    assert snap.state is JobState.FINISHED, snap.message
    model = job.trained_model
    weights = [np.array(v.value) for v in model.variables]
    slots = [np.array(v.value) for v in model.optimizer.variables]
    model_pool.give(model)
    return model, weights, slots, snap


@pytest.fixture(autouse=True)
def empty_pool():
    model_pool.clear()
    yield
    model_pool.clear()


@pytest.mark.parametrize("dropout", [False, True])
def test_a_borrowed_model_trains_number_for_number_like_a_fresh_one(tiny_ds, dropout):
    ds, spec = tiny_ds(n_train=200, n_test=40), small_spec(dropout)
    before = model_pool.stats()
    first, w1, s1, snap1 = train(spec, ds, hyper(1))
    second, w2, _, snap2 = train(spec, ds, hyper(2))
    assert second is first, "the second job of the same shape borrows the first one's compiled model"
    again, w3, s3, snap3 = train(spec, ds, hyper(1))
    assert again is first
    after = model_pool.stats()
    assert after["built"] - before["built"] == 1 and after["taken"] - before["taken"] == 2
    # Seed 1 on a borrowed model (after seed 2 changed every variable) = seed 1 on a fresh model, exactly.
    assert all(np.array_equal(a, b) for a, b in zip(w1, w3, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(s1, s3, strict=True))
    assert snap1.history == snap3.history and snap1.metrics["test_loss"] == snap3.metrics["test_loss"]
    assert not all(np.array_equal(a, b) for a, b in zip(w1, w2, strict=True))
    # And seed 2 on a fresh model (an empty pool) = seed 2 on the borrowed one.
    model_pool.clear()
    fresh, w2_fresh, _, snap2_fresh = train(spec, ds, hyper(2))
    assert fresh is not first
    assert all(np.array_equal(a, b) for a, b in zip(w2, w2_fresh, strict=True))
    assert snap2.history == snap2_fresh.history


def test_only_the_same_model_and_optimizer_share(tiny_ds):
    ds, spec = tiny_ds(n_train=200, n_test=40), small_spec()
    first = train(spec, ds, hyper(1))[0]
    assert train(spec, ds, hyper(1, learning_rate=0.02))[0] is not first          # another optimizer setting
    assert train(spec, ds, hyper(1, epochs=3))[0] is not first                     # another schedule length
    wider = ModelSpec(spec.input_shape, [L("Conv2D", filters=6, kernel_size=3, activation="relu"),
                                         *spec.layers[1:]], name="pooled")
    assert train(wider, ds, hyper(1))[0] is not first
    assert model_pool.stats()["idle"] <= model_pool.pool_size()


def test_the_pool_is_bounded_and_big_models_are_never_kept(tiny_ds, monkeypatch):
    ds = tiny_ds(n_train=100, n_test=20)
    for units in range(4, 4 + model_pool.pool_size() + 3):
        spec = ModelSpec((28, 28, 1), [L("Flatten"), L("Dense", units=units, activation="relu"),
                                      L("Dense", units=10, activation="softmax")], name="wide")
        train(spec, ds, hyper(1, epochs=1, augment=False))
        assert model_pool.stats()["idle"] <= model_pool.pool_size()
    monkeypatch.setattr(model_pool, "MAX_PARAMS", 10)
    model_pool.clear()
    train(small_spec(), ds, hyper(1, epochs=1))
    assert model_pool.stats()["idle"] == 0


def test_none_are_kept_when_the_setting_says_0(tiny_ds, monkeypatch):
    from cnnkit import settings

    monkeypatch.setenv("CNNKIT_WORKER_MODELS", "0")
    settings.reset()
    try:
        first = train(small_spec(), tiny_ds(n_train=100, n_test=20), hyper(1, epochs=1))[0]
        assert model_pool.stats()["idle"] == 0
        assert train(small_spec(), tiny_ds(n_train=100, n_test=20), hyper(2, epochs=1))[0] is not first
    finally:
        monkeypatch.delenv("CNNKIT_WORKER_MODELS")
        settings.reset()

