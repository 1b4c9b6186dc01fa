"""Presets: the lessons' models with exactly the parameter counts the lessons quote, checked against Keras."""

from __future__ import annotations

import keras
import pytest

from cnnkit import presets
from cnnkit.errors import SpecError
from cnnkit.hyper import Hyper

LESSON_NUMBERS = {
    "single_conv": 542_230,
    "two_conv": 4_738_826,
    "two_conv_dropout": 1_199_882,
    "keras_convnet": 34_826,
    # Lab D does not quote its total; these are Keras's count_params() for the lab's layers.
    "fashion_leaky": 356_234,
    "fashion_leaky_dropout": 356_234,
}


def test_every_lesson_is_a_preset_and_fast_and_lecture_are_ours():
    assert set(LESSON_NUMBERS) | {presets.FAST, presets.LECTURE} == set(presets.PRESETS)
    assert presets.names()[0] == "single_conv"


@pytest.mark.parametrize("name,total", LESSON_NUMBERS.items())
def test_lesson_parameter_counts(name, total):
    p = presets.PRESETS[name]
    assert p.spec.summary().total_params == total == p.lesson_params
    assert p.spec.validate(10) == []


@pytest.mark.parametrize("shape,classes", [((28, 28, 1), 10), ((32, 32, 3), 10), ((28, 28, 1), 3)])
@pytest.mark.parametrize("name", presets.names())
def test_presets_match_keras_on_every_dataset_shape(name, shape, classes):
    p = presets.get(name, shape, classes)
    s = p.spec.summary()
    model = p.spec.to_keras(classes)
    assert model.count_params() == s.total_params
    assert [tuple(layer.output.shape[1:]) for layer in model.layers] == [r.output_shape for r in s.rows]
    assert model.output_shape == (None, classes)
    assert p.spec.input_shape == shape
    keras.backend.clear_session()


def test_lab_details():
    a = presets.get("single_conv")
    assert [r.output_shape for r in a.spec.summary().rows][:3] == [(26, 26, 32), (13, 13, 32), (5408,)]
    assert (a.hyper.optimizer, a.hyper.learning_rate, a.hyper.momentum, a.hyper.batch_size, a.hyper.epochs) == \
        ("sgd", 0.01, 0.9, 32, 10)
    c = presets.get("two_conv_dropout")
    assert (c.hyper.optimizer, c.hyper.learning_rate, c.hyper.batch_size) == ("adadelta", 1.0, 128)
    d = presets.get("fashion_leaky_dropout").spec
    assert [l.params["rate"] for l in d.layers if l.type == "Dropout"] == [0.25, 0.25, 0.4, 0.3]
    assert all(l.params["negative_slope"] == 0.1 for l in d.layers if l.type == "LeakyReLU")
    assert all(l.params["padding"] == "same" for l in d.layers if l.type in ("Conv2D", "MaxPooling2D"))
    assert presets.get("fashion_leaky").spec.summary().rows[-3].output_shape == (128,)


def test_fast_preset_is_small_and_trains_with_a_cosine_decay():
    p = presets.get(presets.FAST)
    s = p.spec.summary()
    assert s.total_params == p.lesson_params == 104_874
    assert s.flops == 14_925_312           # Conv2D and Dense multiply-adds × 2 per 28×28 image
    assert s.non_trainable_params == 2 * (32 + 64 + 128)   # BatchNormalization's moving mean and variance
    assert [l.params["filters"] for l in p.spec.layers if l.type == "Conv2D"] == [32, 64, 128]
    assert [r.output_shape for r in s.rows if r.type == "MaxPooling2D"] == [(14, 14, 32), (7, 7, 64), (3, 3, 128)]
    h = p.hyper
    assert (h.optimizer, h.learning_rate, h.lr_schedule, h.batch_size, h.epochs, h.augment) == \
        ("adam", 0.003, "cosine", 64, 8, False)
    # Every lesson keeps the constant learning rate it used.
    assert {q.hyper.lr_schedule for n, q in presets.PRESETS.items() if n in LESSON_NUMBERS} == {"constant"}


def test_hyper_and_errors():
    assert presets.get("two_conv").hyper == Hyper(optimizer="adam", learning_rate=0.001, batch_size=100, epochs=10)
    with pytest.raises(SpecError, match="no preset called 'lenet'"):
        presets.get("lenet")
    with pytest.raises(SpecError, match="at least 2 classes"):
        presets.get("single_conv", num_classes=1)


def test_presets_are_independent_copies():
    a = presets.get("single_conv")
    a.spec.layers[0].params["filters"] = 1
    assert presets.get("single_conv").spec.layers[0].params["filters"] == 32


def test_lecture_preset_downsamples_first_and_is_the_default():
    p = presets.get(presets.LECTURE)
    s = p.spec.summary()
    assert presets.DEFAULT == presets.LECTURE
    assert s.total_params == 61_466 and s.non_trainable_params == 2 * (16 + 32 + 64 + 64)
    assert s.flops == 3_744_128                      # a quarter of the fast preset's 14.9 million
    first = p.spec.layers[0]
    assert first.type == "Conv2D" and first.params["strides"] == 2 and s.rows[0].output_shape == (14, 14, 16)
    assert [r.output_shape for r in s.rows if r.type == "MaxPooling2D"] == [(7, 7, 32), (3, 3, 64)]
    assert [r.output_shape for r in s.rows if r.type == "Dense"] == [(64,), (10,)]
    assert (p.hyper.optimizer, p.hyper.learning_rate, p.hyper.lr_schedule, p.hyper.batch_size, p.hyper.epochs,
            p.hyper.augment) == \
        ("adam", 0.005, "cosine", 128, 2, False)
    # On a small dataset it suggests its small-data recipe; a full-size one (or an unknown size) gets the recipe.
    small = p.small_data
    assert (small.optimizer, small.batch_size, small.epochs, small.augment) == ("rmsprop", 64, 3, True)
    assert p.hyper_for(4000) == presets.suggested_hyper(p.spec, 4000) == small
    assert p.hyper_for(60_000) == presets.suggested_hyper(p.spec, 60_000) == presets.suggested_hyper(p.spec) == p.hyper
    fast = presets.get(presets.FAST)
    assert fast.small_data is None and fast.hyper_for(4000) == fast.hyper


def test_cost_table_has_every_preset_with_its_flops_and_measured_speed(monkeypatch, tmp_path):
    rows = presets.cost_table()
    assert [r.name for r in rows] == presets.names()
    by = {r.name: r for r in rows}
    assert by[presets.LECTURE].mflops < by[presets.FAST].mflops / 3
    assert all(r.mflops == presets.get(r.name).spec.summary().flops / 1e6 for r in rows)
    costs = presets.measured_costs()
    assert "2-core" in costs["measured"] and set(costs["presets"]) == set(presets.names())
    lecture = by[presets.LECTURE]
    assert lecture.seconds_per_epoch == pytest.approx(50_000 / lecture.images_per_second)
    assert lecture.accuracy >= 0.99 and "held-out" in lecture.accuracy_note
    # Another image shape was not measured: FLOPs only. A missing file leaves the worked-out columns.
    cifar = {r.name: r for r in presets.cost_table((32, 32, 3), 10)}
    assert cifar[presets.LECTURE].seconds_per_epoch is None and cifar[presets.LECTURE].mflops > lecture.mflops
    words = presets.cost_words(presets.LECTURE, num_train=60_000)
    assert f"about {60_000 / lecture.images_per_second:.0f} CPU-seconds per epoch of 60,000 images" in words
    assert lecture.images_per_second == costs["presets"][presets.LECTURE]["images_per_cpu_second"]
    frame = presets.cost_frame(num_train=60_000)
    assert list(frame.columns)[3] == "CPU-s / epoch (60,000 images)" and len(frame) == len(rows)
    monkeypatch.setattr(presets, "COSTS_FILE", tmp_path / "missing.json")
    presets.measured_costs.cache_clear()
    try:
        assert all(r.images_per_second is None and r.params > 0 for r in presets.cost_table())
        assert presets.cost_words(presets.LECTURE) == "Cost: 3.7 million FLOPs per image."
    finally:
        monkeypatch.undo()
        presets.measured_costs.cache_clear()
    assert presets.cost_table()[0].images_per_second is not None


@pytest.mark.parametrize("num_train", [2, 24, 63])
def test_a_tiny_dataset_trains_in_one_batch_of_all_its_images(num_train):
    # a class's first drawings (30 drawings: 24 to train) must train on the preset the Draw page offers
    for name in presets.PRESETS:
        hyper = presets.get(name, (28, 28, 1), 3).hyper_for(num_train)
        assert hyper.batch_size <= hyper.split_sizes(num_train)[0]
        hyper.validate(num_train=num_train)   # no "batch size larger than the training images"
