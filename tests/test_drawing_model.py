"""cnnkit.predict with a real model: a model trained on the offline sample reads MNIST digits
re-drawn at canvas size as well as the digits themselves, through the compiled single-image call."""

from __future__ import annotations

import numpy as np
import pytest
from strokes import draw_digit, rerender

from cnnkit import datasets, drawing, explain, predict, presets, runs, training
from cnnkit.errors import DrawingError, RunError


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """The fast preset, 2 epochs on the offline sample (about 15 s on 2 cores), saved as a Run."""
    ds = datasets.offline_sample()
    preset = presets.get(presets.FAST)
    job = training.train(preset.spec, ds, preset.hyper.replace(epochs=2),
                         runs_root=tmp_path_factory.mktemp("runs"), title="drawing test")
    assert job.run is not None, job.snapshot().message
    return job.run


@pytest.fixture(scope="module")
def predictor(trained_run):
    return predict.predictor_for(trained_run)


def test_rerendered_digits_are_read_as_well_as_the_digits_themselves(predictor):
    ds = datasets.offline_sample()
    x, y = datasets.to_float(ds.x_test[:300]), ds.y_test[:300]
    direct = np.array([predictor.predict(d).index for d in x])
    rng = np.random.default_rng(0)
    drawn, naive = [], []
    for d in x:
        # Each digit re-drawn as a student might: any size from a third of the canvas to most of it, anywhere.
        size = int(rng.integers(90, 240))
        left, top = (int(v) for v in rng.integers(0, 280 - size, size=2))
        canvas = rerender(d[..., 0], size=size, left=left, top=top)
        drawn.append(predictor.predict(drawing.prepare_drawing(canvas).x).index)
        naive.append(predictor.predict(drawing.prepare_drawing(canvas, mode="naive").x).index)
    acc_direct = float(np.mean(direct == y))
    acc_drawn = float(np.mean(np.array(drawn) == y))
    acc_naive = float(np.mean(np.array(naive) == y))
    assert acc_direct > 0.9
    assert acc_drawn >= acc_direct - 0.03, (acc_direct, acc_drawn)
    # What most classroom apps do: far worse.
    assert acc_naive < acc_direct - 0.3, (acc_direct, acc_naive)


def test_synthetic_strokes_are_recognised(predictor):
    # Our own pen strokes, not MNIST digits: the model has never seen this handwriting.
    for digit in ("7", "1", "4"):
        for kw in ({}, {"size": 70, "left": 10, "top": 190, "width": 6}, {"polarity": "dark_on_light", "width": 40}):
            p = predictor.predict(drawing.prepare_drawing(draw_digit(digit, **kw)).x)
            assert p.label == digit, (digit, kw, p.top())


def test_compiled_call_matches_keras(predictor, trained_run):
    model = trained_run.load_model()
    x = datasets.to_float(datasets.offline_sample().x_test[:5])
    expected = model.predict(x, verbose=0)
    for xi, e in zip(x, expected, strict=True):
        np.testing.assert_allclose(predictor.predict(xi).probabilities, e, atol=1e-5)


def test_prediction_fields(predictor):
    p = predictor.predict(drawing.prepare_drawing(draw_digit("7")).x)
    assert p.class_names == tuple(str(i) for i in range(10))
    assert p.probabilities.shape == (10,) and p.probabilities.sum() == pytest.approx(1.0)
    assert p.label == p.class_names[p.index] and p.confidence == pytest.approx(p.probabilities.max())
    top = p.top(3)
    assert [name for name, _ in top][0] == p.label and top[0][1] >= top[1][1] >= top[2][1]
    d = p.to_dict()
    assert d["label"] == p.label and len(d["top"]) == 3 and d["probability"] == pytest.approx(p.confidence, abs=1e-6)
    assert p.uncertain == (p.confidence < predict.LOW_CONFIDENCE)


def test_uncertain_and_logits():
    flat = predict.Prediction(np.full(4, 0.25), ("a", "b", "c", "d"))
    assert flat.uncertain and flat.label == "a"
    # A model ending in logits (no softmax) still gives probabilities.
    probs = predict._softmax_if_needed(np.array([2.0, -1.0, 0.5]))
    assert probs.sum() == pytest.approx(1.0) and probs.argmax() == 0 and probs.min() > 0
    already = predict._softmax_if_needed(np.array([0.7, 0.2, 0.1]))
    np.testing.assert_allclose(already, [0.7, 0.2, 0.1])


def test_feature_maps_of_each_conv_layer(predictor):
    maps = predictor.feature_maps(drawing.prepare_drawing(draw_digit("4")).x)
    assert [m.layer for m in maps] == [c.name for c in explain.conv_layers(predictor.model)] and len(maps) == 3
    assert [m.activations.shape for m in maps] == [(28, 28, 32), (14, 14, 64), (7, 7, 128)]
    # The fast preset puts BatchNormalization + ReLU after each conv: we show after the ReLU.
    assert all("after ReLU" in m.title for m in maps)
    assert all(m.activations.min() >= 0 for m in maps)
    tiles = maps[0].tiles(6)
    assert len(tiles) == 6 and all(t.shape == (28, 28) and 0 <= t.min() and t.max() <= 1 for t in tiles)
    assert len(maps[1].tiles(500)) == 64


def test_feature_map_tiles_scale_each_channel():
    a = np.zeros((3, 3, 3), np.float32)
    a[..., 0] = [[0, 1, 2]] * 3  # positive: divided by its max
    a[..., 2] = [[-2, 0, 1]] * 3  # negative values: 0 maps to mid-grey
    fm = predict.FeatureMaps("c", "c", a)
    t = fm.tiles(3)
    np.testing.assert_allclose(t[0][0], [0, 0.5, 1])
    np.testing.assert_allclose(t[1], 0)  # a silent filter stays black
    np.testing.assert_allclose(t[2][0], [0, 0.5, 0.75])


def test_wrong_shape_is_a_user_error(predictor):
    with pytest.raises(DrawingError, match="28×28×1"):
        predictor.predict(np.zeros((32, 32, 3), np.float32))


def test_predictor_is_cached_per_run(trained_run):
    again = runs.load_run(trained_run.path)
    assert predict.predictor_for(again) is predict.predictor_for(trained_run)


def test_missing_model_file_is_a_run_error(trained_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained_run.path, copy)
    run = runs.load_run(copy)
    (copy / "model.keras").unlink()
    with pytest.raises(RunError):
        predict.predictor_for(run)


def test_model_without_conv_layers_has_no_feature_maps():
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    p = predict.Predictor(model, ["x", "y", "z"])
    assert p.feature_maps(np.zeros((28, 28, 1), np.float32)) == []
    assert p.predict(np.zeros((28, 28, 1), np.float32)).class_names == ("x", "y", "z")
    # Names that do not match the model's outputs fall back to numbers.
    assert predict.Predictor(model, ["a"]).class_names == ("0", "1", "2")


def test_class_names_for_catalogue_datasets():
    assert predict.class_names_for("fashion_mnist", 10)[0] == "T-shirt/top"
    assert predict.class_names_for("fashion_mnist", 3) is None
    assert predict.class_names_for("my upload") is None


# --- the command line: python -m cnnkit predict ----------------------------------------------
def _png(path, rgba):
    from PIL import Image

    Image.fromarray(rgba).save(path)
    return str(path)


def test_cli_predict_prepares_files_like_the_canvas(trained_run, tmp_path, capsys):
    import json

    from cnnkit.__main__ import main

    seven = _png(tmp_path / "seven.png", draw_digit("7", polarity="dark_on_light", size=90, left=20, top=30))
    one = _png(tmp_path / "one.png", draw_digit("1"))
    assert main(["predict", "--run", str(trained_run.path), seven, one, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["file"] for r in rows] == [seven, one]
    assert [r["label"] for r in rows] == ["7", "1"]
    # Exactly the canvas's preparation: the same numbers as the page would show.
    expected = predict.predictor_for(trained_run).predict(drawing.prepare_drawing(draw_digit("1")).x)
    assert rows[1]["probability"] == pytest.approx(expected.confidence, abs=1e-5)
    assert len(rows[0]["top"]) == 3 and rows[0]["top"][0]["label"] == "7"

    assert main(["predict", "--run", str(trained_run.path), seven]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{seven}\t7\t") and "top 3: 7 " in line


def test_cli_predict_reports_bad_files_and_goes_on(trained_run, tmp_path, capsys):
    from cnnkit.__main__ import main

    blank = _png(tmp_path / "blank.png", np.zeros((100, 100, 4), np.uint8))
    seven = _png(tmp_path / "seven.png", draw_digit("7"))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    assert main(["predict", "--run", str(trained_run.path), blank, str(junk), seven]) == 2
    out, err = capsys.readouterr()
    assert "blank.png: error: The canvas is (nearly) empty" in err
    assert "junk.png is not an image" in err
    assert out.startswith(f"{seven}\t7\t")
    assert main(["predict", "--run", str(tmp_path / "nowhere"), seven]) == 2
    assert "There is no run folder" in capsys.readouterr().err
