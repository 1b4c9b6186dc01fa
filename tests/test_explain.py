"""cnnkit.explain with tiny models: the convolution worked out by hand equals the model's own feature map,
Grad-CAM finds the half of the image the answer depends on, the lessons' 1-D example."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit import explain, predict
from cnnkit.errors import UserError


def test_lessons_1d_example():
    steps = explain.conv1d()
    assert [s.total for s in steps] == [36, 33, 37, 45]  # 2·1+5·2+8·3, 5·1+8·2+4·3, …
    assert steps[0].formula == "2×1 + 5×2 + 8×3 = 36"
    assert steps[-1].window == (4, 7, 9) and steps[-1].products == (4, 14, 27)
    with pytest.raises(UserError):
        explain.conv1d([1, 2], [1, 2, 3])


def _model(layers, shape=(28, 28, 1), seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(shape), *layers])
    # Give every BatchNormalization moving statistics that are not the identity, as a trained one has.
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.3, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.2, 2.0, n).astype("float32"))
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.2, n).astype("float32"))
        if type(layer).__name__ == "Conv2D" and layer.use_bias:
            layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape[0]).astype("float32"))
    return model


def _models():
    from keras import layers as L

    return {
        "same, relu": _model([L.Conv2D(6, 3, padding="same", activation="relu"), L.Flatten(),
                              L.Dense(10, activation="softmax")]),
        "valid, 5×5, tanh": _model([L.Conv2D(4, 5, padding="valid", activation="tanh"), L.Flatten(), L.Dense(10)]),
        "same, stride 2": _model([L.Conv2D(5, 3, strides=2, padding="same", activation="relu"), L.Flatten(),
                                  L.Dense(10)]),
        "valid, stride 2, even kernel": _model([L.Conv2D(3, 4, strides=2, padding="valid"), L.Flatten(), L.Dense(10)]),
        "conv-BN-ReLU (fast preset)": _model([L.Conv2D(8, 3, padding="same", use_bias=False), L.BatchNormalization(),
                                              L.ReLU(), L.MaxPooling2D(),
                                              L.Conv2D(6, 3, padding="valid", activation="relu"),
                                              L.Flatten(), L.Dense(10, activation="softmax")]),
        "colour, LeakyReLU": _model([L.Conv2D(4, 3, padding="same"), L.LeakyReLU(negative_slope=0.1),
                                     L.Conv2D(3, 3, padding="same", activation="relu"), L.Flatten(), L.Dense(10)],
                                    shape=(32, 32, 3)),
    }


@pytest.fixture(scope="module")
def models():
    return _models()


def test_shown_arithmetic_equals_the_models_activation(models):
    rng = np.random.default_rng(1)
    checked = 0
    for name, model in models.items():
        p = predict.Predictor(model)
        for _ in range(3):
            x = rng.uniform(0, 1, p.input_shape).astype("float32")
            maps = p.feature_maps(x)
            for layer_index, fm in enumerate(maps):
                h, w, c = fm.activations.shape
                for _ in range(6):
                    row, col, ch = int(rng.integers(h)), int(rng.integers(w)), int(rng.integers(c))
                    # Corners too: that is where padding "same" puts zeros into the window.
                    if _ % 3 == 0:
                        row, col = int(rng.choice([0, h - 1])), int(rng.choice([0, w - 1]))
                    a = explain.conv_arithmetic(model, x, row, col, ch, layer=layer_index)
                    assert a.value == pytest.approx(float(fm.activations[row, col, ch]), abs=1e-5), (name, row, col, ch)
                    # The shown pieces add up: window × kernel = products, their sum, plus the bias.
                    np.testing.assert_allclose(a.products, a.window * a.kernel, atol=1e-7)
                    assert a.total == pytest.approx(float(a.products.sum()), abs=1e-6)
                    if a.has_bias:  # a layer without bias shows no bias step (issue 24)
                        assert a.steps[0].value == pytest.approx(a.total + a.bias, abs=1e-6)
                    checked += 1
    assert checked > 100


def test_a_click_on_the_feature_map_picks_the_position_worked_out(models):
    """The draw page's clickable feature map: the cell a click reports is the (row, column) whose
    arithmetic is shown, and the figure's number there is the model's own activation."""
    from cnnkit import charts

    rng = np.random.default_rng(2)
    for name in ("same, relu", "valid, stride 2, even kernel"):
        model = models[name]
        p = predict.Predictor(model)
        x = rng.uniform(0, 1, p.input_shape).astype("float32")
        fm = p.feature_maps(x)[0].activations
        h, w, c = fm.shape
        for _ in range(5):
            ch = int(rng.integers(c))
            fig = charts.feature_map_figure(fm[..., ch], picked=(0, 0))
            cells = fig.data[0]
            k = int(rng.integers(h * w))
            # What Streamlit reports for a click on marker k (plotly's point fields; x is the column).
            click = {"curve_number": 0, "point_index": k, "x": cells.x[k], "y": cells.y[k]}
            row, col = charts.picked_cell([click], (h, w))
            assert (row, col) == divmod(k, w), name
            assert cells.customdata[k] == pytest.approx(float(fm[row, col, ch]))
            a = explain.conv_arithmetic(model, x, row, col, ch)
            assert a.value == pytest.approx(float(cells.customdata[k]), abs=1e-5), (name, row, col, ch)
        # The frame marks the picked cell; an emptied selection or a point off the map picks nothing.
        frame = charts.feature_map_figure(fm[..., 0], picked=(2, 3)).layout.shapes[0]
        assert (frame.x0 + frame.x1) / 2 == 3 and (frame.y0 + frame.y1) / 2 == 2
    assert charts.picked_cell([], (5, 5)) is None
    assert charts.picked_cell([{"x": 7, "y": 1}], (5, 5)) is None
    assert charts.picked_cell([{"x": 1, "y": 2}, {"x": 4.0, "y": 0.0}], (5, 5)) == (0, 4)  # the last click
    with pytest.raises(ValueError):
        charts.feature_map_figure(np.zeros((3, 3, 2)))


def test_padding_same_window_hangs_over_the_edge(models):
    model = models["same, relu"]
    x = np.ones((28, 28, 1), dtype="float32")
    corner = explain.conv_arithmetic(model, x, 0, 0, 0)
    assert corner.origin == (-1, -1)
    assert corner.padding_mask.sum() == 5  # the top row and the left column of the 3×3 window
    assert corner.window[corner.padding_mask].sum() == 0 and corner.window[~corner.padding_mask].min() == 1
    inside = explain.conv_arithmetic(model, x, 10, 10, 0)
    assert not inside.padding_mask.any() and inside.origin == (9, 9)
    assert "padding" in corner.sentence() and "0." in corner.sentence()


def test_fast_preset_chain_is_shown_step_by_step(models):
    model = models["conv-BN-ReLU (fast preset)"]
    a = explain.conv_arithmetic(model, np.full((28, 28, 1), 0.5, "float32"), 5, 6, 3)
    assert [s.title for s in a.steps] == ["BatchNormalization", "ReLU"]  # no bias step: use_bias=False (issue 24)
    assert a.bias == 0.0  # use_bias=False
    assert "√" in a.steps[0].formula


def test_bad_position_or_model_says_what_is_wrong(models):
    with pytest.raises(UserError, match="no \\(40, 0\\)"):
        explain.conv_arithmetic(models["same, relu"], np.zeros((28, 28, 1), "float32"), 40, 0, 0)
    from keras import layers as L

    dense_only = _model([L.Flatten(), L.Dense(10)])
    with pytest.raises(UserError, match="no Conv2D"):
        explain.conv_arithmetic(dense_only, np.zeros((28, 28, 1), "float32"), 0, 0, 0)


def test_deeper_layer_sentence_and_filter_images(models):
    model = models["conv-BN-ReLU (fast preset)"]
    sentence = explain.deeper_layer_sentence(model, 1)
    assert "8 channels" in sentence and "3×3×8" in sentence and "72 products" in sentence
    filters = explain.filter_images(model)
    assert len(filters) == 8 and filters[0].shape == (3, 3)
    assert all(0 <= f.min() and f.max() <= 1 for f in filters)
    colour = explain.filter_images(models["colour, LeakyReLU"])
    assert colour[0].shape == (3, 3, 3)


def _half_model(pool: bool, conv: bool = True):
    """A model whose answer depends on the left half of the image only: the Dense weights of every
    right-half position are zero."""
    from keras import layers as L

    body = [L.Conv2D(4, 3, padding="same", activation="relu")] if conv else []
    if pool:
        body += [L.MaxPooling2D(), L.Conv2D(4, 3, padding="same", activation="relu")]
    model = _model([*body, L.Flatten(), L.Dense(2, activation="softmax")], seed=3)
    last = [layer for layer in model.layers if type(layer).__name__ in ("Conv2D",)]
    h, w, c = (last[-1].output.shape[1:] if conv else (28, 28, 1))
    dense = model.layers[-1]
    kernel = np.asarray(dense.kernel).reshape(h, w, c, 2)
    kernel[:, w // 2 :] = 0.0
    dense.kernel.assign(kernel.reshape(-1, 2))
    return model


@pytest.mark.parametrize("pool,conv", [(False, True), (True, True), (False, False)],
                         ids=["conv", "conv-pool-conv", "no conv"])
def test_saliency_finds_the_half_the_answer_depends_on(pool, conv):
    model = _half_model(pool, conv)
    p = predict.Predictor(model)
    rng = np.random.default_rng(0)
    left = np.zeros((28, 28), bool)
    left[:, :14] = True
    for _ in range(3):
        x = rng.uniform(0, 1, (28, 28, 1)).astype("float32")  # ink everywhere, in both halves
        for k in (0, 1):
            smap = p.saliency(x, k)
            assert smap.class_index == k
            if smap.strength > 0:
                assert smap.share(left) > 0.9, (pool, conv, k, smap.share(left))
        assert p.saliency(x).class_index == p.predict(x).index
    expected = "Grad-CAM on " + explain.conv_layers(model)[-1].name if conv else "gradients × input"
    assert p.saliency(x).method == expected


def test_saliency_of_the_answer_and_of_another_class(models):
    p = predict.Predictor(models["conv-BN-ReLU (fast preset)"])
    x = np.random.default_rng(2).uniform(0, 1, (28, 28, 1)).astype("float32")
    mine = p.saliency(x)
    other = p.saliency(x, (mine.class_index + 1) % 10)
    assert mine.heat.shape == other.heat.shape == (28, 28)
    assert mine.heat.max() == pytest.approx(1.0) or mine.strength == 0
    assert not np.allclose(mine.heat, other.heat)
    text = explain.saliency_sentence(other, p.class_names, mine.class_index)
    assert "would find evidence" in text or "Nothing in this image" in text
    with pytest.raises(UserError):
        p.saliency(np.zeros((32, 32, 3), "float32"))


def test_overlay_is_an_rgb_image():
    x = np.zeros((28, 28, 1), "float32")
    heat = np.zeros((28, 28), "float32")
    heat[:, :14] = 1.0
    img = explain.overlay(x, heat)
    assert img.shape == (28, 28, 3) and 0 <= img.min() and img.max() <= 1
    assert img[:, :14].mean() > img[:, 14:].mean()


def test_digits_files_are_drawn_like_mnist():
    from cnnkit import drawing

    digits = tuple(str(i) for i in range(10))
    assert drawing.uses_drawing("mnist", (28, 28, 1))
    assert drawing.uses_drawing("file:mnist_full", (28, 28, 1), digits)
    assert not drawing.uses_drawing("file:mnist_full", (28, 28, 1), ("cat", "dog"))
    assert not drawing.uses_drawing("fashion_mnist", (28, 28, 1), digits)
    assert not drawing.uses_drawing("file:cifar", (32, 32, 3), digits)
    from strokes import draw_digit

    # A small 7 in a corner: prepared like MNIST (cropped and centred), not shrunk whole.
    prepared = drawing.prepare_for(draw_digit("7", size=80, left=10, top=10), "file:mnist_full", (28, 28, 1), digits)
    assert prepared.mode == "mnist"


def test_cli_explain_writes_a_heatmap_and_works_out_a_convolution(tmp_path, capsys):
    import json

    from PIL import Image
    from strokes import draw_digit
    from test_page_draw import make_run

    from cnnkit.__main__ import main

    run = make_run(tmp_path / "runs")
    png = tmp_path / "seven.png"
    Image.fromarray(draw_digit("7", polarity="dark_on_light")).save(png)
    out = tmp_path / "heat.png"
    assert main(["explain", "--run", str(run.path), str(png), "--out", str(out), "--class", "3",
                 "--conv", "5,6,2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["explained"] == "3" and result["method"] == "Grad-CAM on conv2d_1"
    assert Image.open(out).size == (280, 280)
    conv = result["convolution"]
    assert conv["layer"] == "conv2d" and conv["filter"] == 2 and "feature map's number at (5, 6)" in conv["sentence"]
    assert main(["explain", "--run", str(run.path), str(png), "--out", str(out), "--class", "x"]) == 2
    assert "there is no class 'x'" in capsys.readouterr().err


def test_cli_dataset_name_equals_file(tmp_path, capsys):
    from cnnkit.__main__ import main

    rng = np.random.default_rng(0)
    f = tmp_path / "digits.npz"
    np.savez(f, x_train=rng.integers(0, 256, (30, 28, 28), dtype=np.uint8), y_train=np.arange(30) % 10,
             x_test=rng.integers(0, 256, (10, 28, 28), dtype=np.uint8), y_test=np.arange(10) % 10)
    assert main(["summary", "--dataset", f"mnist={f}"]) == 0
    assert "input 28×28×1" in capsys.readouterr().out
