"""Every teaching sentence right (issue 24, part 3): one test per sentence that once taught something wrong.

- pooling: only max pooling keeps the largest value; average pooling says what it does instead;
- counts of parameters are called parameters, not weights;
- the convolution worked out: no bias for a bias-less layer, never "− -0.0629", the stride explained;
- "why not 8?": the class named once, every class's map on the answer's scale;
- class axes name every class (≤ 20); the compare legend says "run · train/validation".
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from cnnkit import charts, layers, presets

# --- words of the catalogue and the presets -----------------------------------------------------


def _catalogue_texts():
    for t in layers.CATALOGUE.values():
        yield t.key, t.summary + " " + t.explain + " " + " ".join(p.help for p in t.params)


def _preset_texts():
    for name in presets.names():
        p = presets.get(name, (28, 28, 1), 10)
        yield name, " ".join(str(getattr(p, f, "") or "") for f in ("title", "description", "lesson"))


def test_only_max_pooling_keeps_the_largest_value():
    keeps_largest = re.compile(r"keeps? (only )?the (largest|strongest|biggest)", re.I)
    for key, text in [*_catalogue_texts(), *_preset_texts()]:
        for sentence in re.split(r"(?<=[.:;])\s+", text):
            if keeps_largest.search(sentence):  # said of max pooling, by name, and of nothing else
                assert key == "MaxPooling2D" or "max pooling keeps" in sentence.lower(), (key, sentence)
    average = layers.get("AveragePooling2D").explain
    assert "mean" in average and "counts equally" in average


def test_counts_of_parameters_are_called_parameters():
    # "320 weights", "4.7 million weights": a count that includes biases is a count of parameters.
    counted_weights = re.compile(r"\d[\d,.]*( million| thousand)? weights\b")
    for key, text in [*_catalogue_texts(), *_preset_texts()]:
        assert not counted_weights.search(text), (key, text)
    assert "parameters" in layers.get("Dense").explain.split("holds most of a CNN's")[1]
    # A convolution without bias says so in its count.
    conv = layers.get("Conv2D")
    p = conv.resolve({"filters": 32, "use_bias": False})
    assert conv.explain_count((28, 28, 1), p) == (
        "3×3 kernel × 1 input channel × 32 filters (no biases) = 288 parameters.")
    assert conv.explain_count((28, 28, 1), conv.resolve({"filters": 32})).endswith("= 320 parameters.")
    assert "when it uses biases" in conv.explain


# --- the convolution worked out ------------------------------------------------------------------


def _model(stack, shape=(28, 28, 1), seed=0, negative=False):
    """A tiny model with trained-looking statistics; `negative` makes every bias, BatchNormalization mean and
    beta negative, where a careless formula prints "− -0.0629"."""
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(shape), *stack])
    rng = np.random.default_rng(seed)
    sign = -1.0 if negative else 1.0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "BatchNormalization":
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign((sign * rng.uniform(0.05, 0.4, n)).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.2, 2.0, n).astype("float32"))
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
            layer.beta.assign((sign * rng.uniform(0.05, 0.3, n)).astype("float32"))
        if kind == "Conv2D" and layer.use_bias:
            layer.bias.assign((sign * rng.uniform(0.05, 0.2, layer.bias.shape[0])).astype("float32"))
    return model


@pytest.fixture(scope="module")
def conv_bn_relu():
    from keras import layers as L

    return _model([L.Conv2D(4, 3, padding="same", use_bias=False), L.BatchNormalization(), L.ReLU(),
                   L.Conv2D(3, 3, use_bias=False), L.BatchNormalization(), L.ReLU(),
                   L.Flatten(), L.Dense(10)], negative=True)


def _everything_shown(a) -> str:
    return " ".join([a.sentence(), *(f"{s.title}: {s.formula}" for s in a.steps)])


def test_a_convolution_without_bias_shows_no_bias(conv_bn_relu):
    from cnnkit import explain, predict

    x = np.random.default_rng(0).uniform(0, 1, (28, 28, 1)).astype("float32")
    a = explain.conv_arithmetic(conv_bn_relu, x, 5, 6, 2)
    assert not a.has_bias
    assert [s.title for s in a.steps] == ["BatchNormalization", "ReLU"]
    shown = _everything_shown(a)
    assert "+ 0.0000" not in shown and "plus the bias" not in shown and "has no bias" in shown
    # The feature map's number is still the model's own.
    fm = predict.Predictor(conv_bn_relu).feature_maps(x)[0].activations
    assert a.value == pytest.approx(float(fm[5, 6, 2]), abs=1e-5)
    deeper = explain.deeper_layer_sentence(conv_bn_relu, 1)
    assert "plus one bias" not in deeper and "no bias" in deeper and "BatchNormalization" in deeper


def test_no_minus_before_a_negative_number(conv_bn_relu):
    from keras import layers as L

    from cnnkit import explain

    with_bias = _model([L.Conv2D(4, 3, activation="linear"), L.BatchNormalization(), L.LeakyReLU(0.1),
                        L.Flatten(), L.Dense(10)], negative=True)
    rng = np.random.default_rng(1)
    doubled = re.compile(r"[−+-]\s*-|×\s*-|\^−")
    checked = 0
    for model in (conv_bn_relu, with_bias):
        for _ in range(12):
            x = rng.uniform(0, 1, (28, 28, 1)).astype("float32")
            a = explain.conv_arithmetic(model, x, int(rng.integers(20)), int(rng.integers(20)), int(rng.integers(3)))
            shown = _everything_shown(a)
            assert not doubled.search(shown), shown
            checked += 1
    # The formula still says the right thing: z − (−m) is written z + m.
    a = explain.conv_arithmetic(with_bias, np.zeros((28, 28, 1), "float32"), 3, 3, 0)
    bias, bn = a.steps[0], a.steps[1]
    assert bias.formula.startswith(f"{a.total:.4f} − {-a.bias:.4f} = ")  # the bias is negative
    assert f"({bias.value:.4f} + " in bn.formula  # the moving mean is negative: − (−m) reads + m
    assert checked == 24


def test_a_stride_says_why_the_window_starts_where_it_does():
    from keras import layers as L

    from cnnkit import explain

    model = _model([L.Conv2D(3, 3, strides=2, padding="valid", activation="relu"), L.Flatten(), L.Dense(10)])
    x = np.random.default_rng(2).uniform(0, 1, (28, 28, 1)).astype("float32")
    a = explain.conv_arithmetic(model, x, 1, 6, 0)
    assert a.origin == (2, 12)
    assert a.where() == ("Output cell (1, 6) reads the 3×3 window starting at input (2, 12) because the stride "
                         "is 2: 1 × 2 = 2, 6 × 2 = 12.")
    assert "because the stride is 2" in a.sentence()
    # Padding "same" moves the window too, and says so; a plain stride-1 "valid" layer needs no reason.
    same = _model([L.Conv2D(3, 3, strides=2, padding="same"), L.Flatten(), L.Dense(10)])
    b = explain.conv_arithmetic(same, x, 3, 4, 0)
    assert b.origin == (6, 8) and b.where().endswith("because the stride is 2: 3 × 2 = 6, 4 × 2 = 8.")
    plain = _model([L.Conv2D(3, 3, activation="relu"), L.Flatten(), L.Dense(10)])
    assert explain.conv_arithmetic(plain, x, 4, 5, 0).where() == (
        "Output cell (4, 5) reads the 3×3 window starting at input (4, 5).")
    padded = _model([L.Conv2D(3, 3, padding="same", activation="relu"), L.Flatten(), L.Dense(10)])
    assert explain.conv_arithmetic(padded, x, 4, 5, 0).where().endswith(
        'padding "same" adds 1 zero row above and 1 zero column on the left: 4 − 1 = 3, 5 − 1 = 4.')


# --- "why not 8?" ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weak_class_model():
    """Class 1's Dense column is 1 % of class 0's: the same places speak for it, a hundred times more weakly."""
    from keras import layers as L

    model = _model([L.Conv2D(4, 3, padding="same", activation="relu"), L.Flatten(), L.Dense(3)], seed=4)
    dense = model.layers[-1]
    kernel = np.abs(np.asarray(dense.kernel))
    kernel[:, 1] = kernel[:, 0] * 0.01
    kernel[:, 2] = -kernel[:, 0]
    dense.kernel.assign(kernel)
    dense.bias.assign(np.zeros(3, "float32"))
    return model


def test_why_not_names_the_class_once(weak_class_model):
    from cnnkit import explain, predict

    p = predict.Predictor(weak_class_model, ("7", "8", "9"))
    x = np.random.default_rng(3).uniform(0, 1, (28, 28, 1)).astype("float32")
    assert p.predict(x).index == 0
    text = explain.saliency_sentence(p.saliency(x, 1), p.class_names, 0)
    assert text.count("**8**") == 1 and "8, 8" not in text and "**8**, **8**" not in text
    answer = explain.saliency_sentence(p.saliency(x, 0), p.class_names, 0)
    assert answer.count("**7**") == 1 and "its answer, **7**" in answer


def test_every_class_is_drawn_on_the_answers_scale(weak_class_model):
    from cnnkit import explain, predict

    p = predict.Predictor(weak_class_model, ("7", "8", "9"))
    x = np.random.default_rng(3).uniform(0, 1, (28, 28, 1)).astype("float32")
    answer, weak, against = p.saliency(x, 0), p.saliency(x, 1), p.saliency(x, 2)
    assert answer.heat.max() == pytest.approx(1.0) and answer.relative == pytest.approx(1.0)
    # A hundred times less evidence is a hundred times darker, not as bright as the answer.
    assert weak.relative == pytest.approx(0.01, rel=1e-3)
    assert weak.heat.max() == pytest.approx(0.01, rel=1e-3)
    np.testing.assert_allclose(weak.heat, answer.heat * 0.01, atol=1e-6)
    assert against.heat.max() == 0 and against.strength == 0
    assert "1% as strong as the answer's" in explain.saliency_sentence(weak, p.class_names, 0)
    # The answer asked for by default is the same map.
    np.testing.assert_allclose(p.saliency(x).heat, answer.heat)


# --- charts ----------------------------------------------------------------------------------------


def test_class_axes_name_every_class_up_to_twenty():
    names = [str(i) for i in range(10)]
    axis = charts.class_axis(names)
    assert axis["type"] == "category" and axis["dtick"] == 1 and axis["tickmode"] == "linear"
    assert "dtick" not in charts.class_axis([f"c{i}" for i in range(21)])
    report = pd.DataFrame({"precision": np.full(10, 0.9), "recall": np.full(10, 0.8), "f1-score": np.full(10, 0.85)},
                          index=names)
    fig = charts.per_class_figure(report)
    assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.type == "category"


def test_compare_legend_says_run_and_curve():
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.6], "accuracy": [0.5, 0.8], "val_accuracy": [0.5, 0.7]}
    fig = charts.compare_runs_figure({"Run 1": history, "Run 2": history})
    shown = [t.name for t in fig.data if t.showlegend]
    assert shown == ["Run 1 · validation", "Run 1 · train", "Run 2 · validation", "Run 2 · train"]
    assert "Run 1" not in shown


# --- the cost line, run labels, the Data page, Home, the over-fitting note (issue 24, part 3) -------------


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def test_the_cost_lines_numbers_multiply_to_its_total():
    from cnnkit.hyper import Hyper
    from cnnkit.jobs import cost
    from cnnkit.presets import get

    spec = get("fast_cpu", (28, 28, 1), 10).spec
    units = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    for n, epochs, split in ((4000, 8, 0.1), (60000, 1, 0.2), (500, 40, 0.0)):
        h = Hyper(epochs=epochs, validation_split=split).validate(num_train=n)
        words = cost.estimate_cost(spec, n, h, cost.Throughput(), wait_seconds=0, jobs_ahead=0, cap=None).words()
        m = re.match(r"([\d.]+) ([kMGT])FLOPs per image × ([\d,]+) image passes per epoch × (\d+) epochs? "
                     r"≈ ([\d.]+) ([kMGT])FLOPs in all \(each of the ([\d,]+) training images counts 3 times, "
                     r"forward \+ backward \(a backward pass costs about 2 × a forward one\)", words)
        assert m, words
        fpi = _number(m[1]) * units[m[2]]
        total = _number(m[5]) * units[m[6]]
        assert _number(m[3]) * _number(m[4]) * fpi == pytest.approx(total, rel=0.01), words
        n_fit, n_val = h.split_sizes(n)
        assert _number(m[3]) == 3 * n_fit + n_val and _number(m[7]) == n_fit
        assert (f"the {n_val:,} validation images once" in words) == (n_val > 0)


def test_a_run_stopped_early_says_so():
    from types import SimpleNamespace

    from cnnkit.run_labels import run_labels

    def run(rid, epochs_run, epochs=40):
        return SimpleNamespace(id=rid, hyper={"optimizer": "adam", "learning_rate": 0.001, "epochs": epochs,
                                              "batch_size": 64}, spec_dict={}, created=1.7e9,
                               metrics={"epochs_run": epochs_run, "test_accuracy": 0.9}, name="", title="")

    labels = run_labels([run("a", 9), run("b", 40)])
    assert "9 of 40 epochs (stopped)" in labels["a"] and "40 epochs" not in labels["a"].replace("of 40", "")
    assert "stopped" not in labels["b"]
    alone = run_labels([run("a", 9)])["a"]
    assert "9 of 40 epochs (stopped)" in alone and "· 40 epochs" not in alone


def test_the_data_pages_class_charts_name_every_class():
    from cnnkit import exploration

    names = tuple(str(i) for i in range(10))
    counts = pd.DataFrame({"class": list(names), "train": np.arange(10), "test": np.arange(10)})
    for fig in (exploration.class_counts_figure(counts), exploration.one_hot_figure(np.eye(10)[3], names)):
        assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.type == "category"


def test_min_max_scaling_says_whose_min_and_max():
    from cnnkit import datasets, exploration

    ds = datasets.load("mnist")
    text = exploration.scaling_sentence(exploration.preprocessing_demo(ds, 0))
    assert "min-max scaling" in text and "0 to 255" in text and "not of each image" in text
    assert "= x / 255" not in text.replace("becomes x / 255", "")
    line = exploration.source_line(ds)
    assert "MNIST" in line and "\n" not in line and len(line) < 260


def test_home_says_max_pooling_and_parameters():
    from pathlib import Path

    home = Path(__file__).resolve().parents[1].joinpath("app_pages", "home.py").read_text()
    assert "strongest response" not in home and "max pooling keeps the largest value of each 2×2 window" in home
    assert '(average "\n    "pooling keeps their mean)' in home
    assert "320 weights" not in home and "320 parameters (288 weights + " in home


def test_the_sum_line_says_when_there_is_no_bias(conv_bn_relu):
    from cnnkit import explain

    x = np.random.default_rng(0).uniform(0, 1, (28, 28, 1)).astype("float32")
    a = explain.conv_arithmetic(conv_bn_relu, x, 5, 6, 2)
    assert a.sum_line().endswith("(no bias: this layer has none)") and a.sum_line().startswith("Sum of the 9 products")
    from keras import layers as L

    biased = _model([L.Conv2D(3, 3, strides=2, activation="relu"), L.Flatten(), L.Dense(10)])
    b = explain.conv_arithmetic(biased, x, 1, 6, 0)
    assert "no bias" not in b.sum_line() and "because the stride is 2" in b.where()


def test_over_fitting_needs_two_rises_beyond_noise():
    from cnnkit import progress
    from cnnkit.hyper import Hyper

    # The example: 0.0907 → 0.0929 on 400 validation images is noise (15 % would be needed), and
    # training loss above validation loss is not over-fitting anyway.
    noisy = {"loss": [0.30, 0.20, 0.15, 0.12], "val_loss": [0.10, 0.0907, 0.0915, 0.0929]}
    assert progress.overfitting_note(noisy, validation_images=400) is None
    assert progress.overfitting_noise(400) == pytest.approx(0.15) and progress.overfitting_noise(10_000) == 0.05
    real = {"loss": [0.5, 0.3, 0.2, 0.1], "val_loss": [0.5, 0.30, 0.34, 0.40]}
    assert progress.overfitting_note(real, validation_images=400)          # +33 %, rose twice, training fell
    assert progress.overfitting_note(real, validation_images=30) is None   # 3/√30 = 55 %: still noise
    once = {"loss": [0.5, 0.3, 0.2, 0.1], "val_loss": [0.5, 0.30, 0.45, 0.40]}
    assert progress.overfitting_note(once, validation_images=6000) is None  # fell in the last epoch
    above = {"loss": [0.9, 0.8, 0.7, 0.6], "val_loss": [0.5, 0.30, 0.34, 0.40]}
    assert progress.overfitting_note(above, validation_images=6000) is None  # training loss above validation
    # It never suggests what is already on.
    everything = progress.overfitting_note(real, validation_images=6000, dropout=True,
                                           hyper=Hyper(augment=True, early_stopping=True))
    assert everything and "Try fewer epochs." in everything
    for word in ("dropout", "augmentation", "early stopping"):
        assert word not in everything.split("Try")[1]
    none_on = progress.overfitting_note(real, validation_images=6000, dropout=False, hyper=Hyper())
    assert "Try dropout, augmentation, early stopping or fewer epochs." in none_on
    assert "epoch 2" in none_on and "33% above" in none_on
    # A saved run: its own validation images, settings and layers.
    from types import SimpleNamespace

    run = SimpleNamespace(history=noisy, metrics={"num_validation": 400}, hyper=Hyper(augment=True),
                          spec_dict={"layers": [{"type": "Conv2D"}, {"type": "Dropout"}]})
    assert progress.run_overfitting_note(run) is None
    run.history = real
    assert "Try early stopping or fewer epochs." in progress.run_overfitting_note(run)
