"""Hyper: the training settings as plain data — validation sentences, JSON round-trip, the optimizer table."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit import hyper as hp
from cnnkit import presets
from cnnkit.errors import TrainingError
from cnnkit.hyper import Hyper
from cnnkit.spec import ModelSpec


def quick(**kw) -> Hyper:
    base = dict(optimizer="adam", learning_rate=0.01, batch_size=50, epochs=1, validation_split=0.2, seed=1)
    base.update(kw)
    return Hyper(**base)


valid_hypers = st.builds(
    Hyper,
    optimizer=st.sampled_from(list(hp.OPTIMIZERS)),
    learning_rate=st.floats(min_value=1e-6, max_value=hp.MAX_LEARNING_RATE),
    lr_schedule=st.sampled_from(list(hp.LR_SCHEDULES)),
    momentum=st.floats(min_value=0.0, max_value=0.99),
    batch_size=st.integers(1, 4096),
    epochs=st.integers(1, hp.MAX_EPOCHS),
    validation_split=st.floats(min_value=0.0, max_value=0.5),
    labels=st.sampled_from(list(hp.LABEL_MODES)),
    augment=st.booleans(),
    early_stopping=st.booleans(),
    patience=st.integers(1, 50),
    seed=st.integers(0, hp.MAX_SEED),
    train_images=st.none() | st.integers(2, 10**6),
)


@settings(max_examples=200, deadline=None)
@given(valid_hypers)
def test_json_round_trip_of_valid_settings(h):
    assert Hyper.from_dict(json.loads(json.dumps(h.to_dict()))) == h
    assert h.validate() == h          # valid settings are already normal: validate changes nothing


# Each setting with values a student (or a hand-edited JSON file) could give that cannot be used.
BAD_VALUES = {
    "optimizer": st.sampled_from(["lbfgs", "", "adamw", "nadam", 3]),
    "learning_rate": st.sampled_from([0, -0.1, 50, float("nan"), float("inf"), "fast", None, True]),
    "lr_schedule": st.sampled_from(["step", "", "exponential"]),
    "momentum": st.sampled_from([1.0, -0.5, 7, "high", None]),
    "batch_size": st.sampled_from([0, -32, 2.5, "big", None, float("inf")]),
    "epochs": st.sampled_from([0, -3, 1000, 2.5, "ten", None]),
    "validation_split": st.sampled_from([0.9, -0.1, 1, "a lot", None]),
    "labels": st.sampled_from(["words", "onehot", None]),
    "augment": st.sampled_from(["yes", 1, None]),
    "early_stopping": st.sampled_from(["no", 0, None]),
    "patience": st.sampled_from([0, -1, 1.5, None]),
    "seed": st.sampled_from([-1, 2**31, 0.5, "seven", None]),
    "train_images": st.sampled_from([0, 1, -5, 2.5, "some"]),
}


@settings(max_examples=300, deadline=None)
@given(valid_hypers, st.sampled_from(sorted(BAD_VALUES)).flatmap(lambda k: st.tuples(st.just(k), BAD_VALUES[k])))
def test_every_invalid_setting_gives_a_sentence(h, bad):
    key, value = bad
    broken = Hyper.from_dict({**h.to_dict(), key: value})
    with pytest.raises(TrainingError) as err:
        broken.validate()
    message = str(err.value)
    assert message.endswith(".") and (message[0].isupper() or message[0].isdigit()) and "Traceback" not in message


@pytest.mark.parametrize("kw, words", [
    (dict(epochs=0), "at least 1"),
    (dict(epochs=1000), "more than this app allows"),
    (dict(epochs=2.5), "whole number"),
    (dict(learning_rate=0), "greater than 0"),
    (dict(learning_rate=50), "far too large"),
    (dict(learning_rate=float("nan")), "not NaN"),
    (dict(learning_rate="fast"), "must be a number"),
    (dict(batch_size=0), "at least 1"),
    (dict(validation_split=0.9), "between 0 and 0.5"),
    (dict(optimizer="lbfgs"), "Unknown optimizer"),
    (dict(labels="words"), "integer"),
    (dict(momentum=1.0), "Momentum"),
    (dict(patience=0), "patience"),
    (dict(seed=-1), "seed"),
    (dict(lr_schedule="step"), "schedule must be one of constant, cosine"),
    (dict(train_images=1), "at least 2 images"),
])
def test_bad_settings_say_what_is_wrong(kw, words):
    with pytest.raises(TrainingError, match=words):
        quick(**kw).validate(num_train=200)


def test_from_dict_refuses_unknown_keys_and_non_objects():
    with pytest.raises(TrainingError, match="Unknown training setting 'learning_rte'; the settings are: optimizer"):
        Hyper.from_dict({"learning_rte": 0.1})
    with pytest.raises(TrainingError, match="must be a JSON object"):
        Hyper.from_dict([1, 2])
    assert Hyper.from_dict({}) == Hyper()                     # missing keys: the defaults (older runs)
    assert Hyper.from_dict({"optimizer": "adam", "batch_size": 8}).batch_size == 8


def test_batch_larger_than_the_data_is_refused():
    # 200 images, 20 % held back for validation: 160 left to train on.
    with pytest.raises(TrainingError, match="larger than the 160 training images; choose a batch size of at most 160"):
        quick(batch_size=161).validate(num_train=200)
    assert quick(batch_size=160).validate(num_train=200).batch_size == 160
    # With a subset, the batch is checked against the subset.
    with pytest.raises(TrainingError, match="larger than the 90 training images"):
        quick(batch_size=100, validation_split=0.1, train_images=100).validate(num_train=200)


def test_validate_normalises_names_and_types():
    h = Hyper(optimizer="SGD", learning_rate="0.05", batch_size=32.0, epochs="2", lr_schedule=" Cosine ").validate(1000)
    assert (h.optimizer, h.learning_rate, h.batch_size, h.epochs, h.lr_schedule) == ("sgd", 0.05, 32, 2, "cosine")
    assert Hyper.from_dict(h.to_dict()) == h


def test_split_sizes():
    assert Hyper(validation_split=0.1).split_sizes(60_000) == (54_000, 6_000)
    assert Hyper(validation_split=0.0).split_sizes(10) == (10, 0)
    assert Hyper(validation_split=0.2, train_images=1000).split_sizes(60_000) == (800, 200)
    assert Hyper(validation_split=0.01).split_sizes(20) == (19, 1)       # at least one image validates
    # More images asked for than there are (a class cap above a small dataset's size): all of them.
    assert Hyper(validation_split=0.1, train_images=10_000).split_sizes(4000) == (3600, 400)
    assert Hyper(train_images=10_000).validate(num_train=4000).train_images == 10_000


def test_presets_carry_a_valid_hyper():
    for name in presets.names():
        p = presets.get(name)
        assert isinstance(p.hyper, Hyper) and p.hyper.validate() == p.hyper, name
    lab_a = presets.get("single_conv").hyper
    assert (lab_a.optimizer, lab_a.momentum, lab_a.lr_schedule) == ("sgd", 0.9, "constant")
    fast = presets.get(presets.FAST).hyper
    assert (fast.optimizer, fast.learning_rate, fast.lr_schedule, fast.augment) == ("adam", 0.003, "cosine", False)


def test_suggested_settings_follow_the_preset():
    lab_c = presets.get("two_conv_dropout")
    h = presets.suggested_hyper(lab_c.spec)
    assert (h.optimizer, h.learning_rate, h.batch_size, h.lr_schedule) == ("adadelta", 1.0, 128, "constant")
    own = ModelSpec((28, 28, 1), lab_c.spec.layers, name="my own")
    assert presets.suggested_hyper(own) == presets.get(presets.FAST).hyper


def test_every_setting_has_a_one_line_explanation():
    for f in Hyper.__dataclass_fields__:
        assert f in hp.HELP and hp.HELP[f].endswith(".")
    assert hp.OPTIMIZERS["adadelta"].default_lr == 1.0
    for info in hp.OPTIMIZERS.values():
        assert info.explanation.endswith(".")


def test_describe_names_the_settings():
    words = Hyper(optimizer="sgd", momentum=0.8, labels="one_hot", augment=True, early_stopping=True,
                  patience=3, lr_schedule="cosine", train_images=1000, epochs=1).describe()
    assert words.startswith("SGD with momentum 0.8, learning rate 0.001, batch 128, 1 epoch, validation 10%, seed 42")
    assert "1,000 training images" in words and "cosine decay" in words and "one-hot labels" in words
    assert "augmented" in words and "early stopping (patience 3)" in words


def test_cosine_schedule_decays_to_zero_over_the_planned_batches():
    assert hp.learning_rate_schedule(0.003, "constant", 100) == 0.003
    assert hp.learning_rate_schedule(0.003, "cosine", None) == 0.003
    sched = hp.learning_rate_schedule(0.003, "cosine", 100)
    at = [float(sched(step)) for step in (0, 50, 100, 150)]
    assert at == pytest.approx([0.003, 0.0015, 0.0, 0.0], abs=1e-9)
    opt = Hyper(learning_rate=0.003, lr_schedule="cosine").make_optimizer(total_steps=100)
    assert float(opt.learning_rate) == pytest.approx(0.003)        # step 0
    sgd = Hyper(optimizer="sgd", learning_rate=0.01, momentum=0.8).make_optimizer()
    assert type(sgd).__name__ == "SGD" and float(sgd.momentum) == pytest.approx(0.8)
    for key, info in hp.OPTIMIZERS.items():
        assert type(Hyper(optimizer=key).make_optimizer()).__name__ == info.keras_class
