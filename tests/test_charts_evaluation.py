"""cnnkit.charts figures used by the evaluation page build for 10-class grayscale and colour data."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from cnnkit import charts, evaluation

NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
HISTORY = {"loss": [1.0, 0.6, 0.4, 0.3], "accuracy": [0.6, 0.8, 0.9, 0.93],
           "val_loss": [0.8, 0.5, 0.45, 0.5], "val_accuracy": [0.7, 0.85, 0.86, 0.85]}


def _predictions(seed=0, n=300):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 10, n)
    y_pred = np.where(rng.random(n) < 0.8, y_true, rng.integers(0, 10, n))
    return y_true, y_pred


def test_confusion_matrix_heatmap_shows_counts_and_class_names():
    y_true, y_pred = _predictions()
    cm = evaluation.confusion_matrix(y_true, y_pred, 10)
    fig = charts.confusion_matrix_figure(cm, NAMES, normalised=evaluation.normalise_rows(cm), selected=(6, 0))
    heat, cells = fig.data[0], fig.data[1]
    assert isinstance(heat, go.Heatmap) and list(heat.x) == list(NAMES) and list(heat.y) == list(NAMES)
    np.testing.assert_allclose(np.asarray(heat.z), evaluation.normalise_rows(cm))
    assert heat.text[3][3] == f"{cm[3, 3]}<br>{cm[3, 3] / cm[3].sum():.0%}"  # count and share in the cell
    assert all(heat.text[t][p] == "" for t in range(10) for p in range(10) if cm[t, p] == 0)
    # the clickable overlay has one point per cell with (true, predicted) as customdata
    assert len(cells.x) == 100 and cells.customdata[6 * 10 + 0].tolist() == [6, 0]
    assert cells.x[6 * 10 + 0] == NAMES[0] and cells.y[6 * 10 + 0] == NAMES[6]
    assert fig.layout.shapes[0].x0 == -0.5 and fig.layout.shapes[0].y0 == 5.5
    counts = charts.confusion_matrix_figure(cm, NAMES)
    assert counts.data[0].text[3][3] == str(cm[3, 3])
    fig.to_json()  # serialisable, as st.plotly_chart needs


def test_training_curves_mark_the_best_validation_epoch():
    fig = charts.training_curves_figure(HISTORY)
    names = [t.name for t in fig.data]
    assert names.count("training") == 2 and names.count("validation") == 2
    stars = [t for t in fig.data if t.name and t.name.startswith("best validation")]
    assert stars and stars[0].name == "best validation (epoch 3)" and list(stars[0].y) == [0.45]
    assert list(stars[1].y) == [0.86]  # the accuracy panel marks the same epoch
    assert {s.x0 for s in fig.layout.shapes} == {3}
    # training only (no validation split): still builds, nothing marked
    bare = charts.training_curves_figure({"loss": [1.0, 0.5], "accuracy": [0.5, 0.7]})
    assert len(bare.data) == 2 and not bare.layout.shapes


def test_training_curves_draw_the_running_curve_under_the_epoch_points():
    running = [(i / 10, 2.0 - i / 10, 0.5 + i / 40) for i in range(1, 16)]   # 1.5 epochs, a point every 0.1
    fig = charts.training_curves_figure({"loss": [1.2], "accuracy": [0.7], "val_loss": [1.0],
                                         "val_accuracy": [0.75]}, running=running)
    thin = [t for t in fig.data if t.legendgroup == "running"]
    assert len(thin) == 2 and thin[0].mode == "lines" and thin[0].line.width < 2
    assert list(thin[0].x)[-1] == 1.5 and list(thin[1].y)[0] == pytest.approx(0.525)
    assert fig.data.index(thin[0]) < min(fig.data.index(t) for t in fig.data if t.name == "training")  # drawn under
    assert tuple(fig.layout.xaxis.range) == (0, 2.1)      # the axis reaches the running line's end
    # During the first epoch there are running points and no epoch yet: the chart still draws.
    first = charts.training_curves_figure({}, running=running[:4])
    assert [t.legendgroup for t in first.data] == ["running", "running"]
    fig.to_json()


def test_compare_runs_overlays_one_colour_per_run():
    fig = charts.compare_runs_figure({"run A": HISTORY, "run B": {k: v[:2] for k, v in HISTORY.items()}})
    a = [t for t in fig.data if t.legendgroup == "run A"]
    b = [t for t in fig.data if t.legendgroup == "run B"]
    assert len(a) == 4 and len(b) == 4
    assert {t.line.color for t in a} != {t.line.color for t in b}
    assert max(len(t.x) for t in b) == 2


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_image_grid_for_grayscale_and_colour(shape):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (13, *shape), dtype=np.uint8)
    correct = np.array([True, False] * 6 + [True])
    captions = [f"{NAMES[i % 10]} ✓ 90%" for i in range(13)]
    fig = charts.image_grid_figure(images, captions, correct, cols=5)
    mosaic = np.asarray(fig.data[0].z)
    h, w, c = shape
    frame = max(1, round(h / 14))
    gap = 2 * frame
    cell_w = w + 2 * frame + gap
    assert mosaic.shape[2] == 3 and mosaic.shape[1] == 5 * cell_w
    # the first tile's pixels are the image itself (grey repeated into RGB)
    band = mosaic.shape[0] // 3 - (h + 2 * frame + gap)
    left = gap // 2
    tile = mosaic[band + frame : band + frame + h, left + frame : left + frame + w]
    np.testing.assert_array_equal(tile, np.repeat(images[0], 3, axis=2) if c == 1 else images[0])
    # frames: green for right, red for wrong, white space between tiles
    assert tuple(mosaic[band, left]) == tuple(charts._hex_to_rgb(charts.RIGHT_COLOUR))
    assert tuple(mosaic[band, cell_w + left]) == tuple(charts._hex_to_rgb(charts.WRONG_COLOUR))
    assert tuple(mosaic[band, 0]) == (255, 255, 255)
    anns = fig.layout.annotations
    assert len(anns) == 13 and anns[1].font.color == charts.WRONG_COLOUR and anns[0].text == captions[0]


def test_image_grid_without_labels_and_empty():
    fig = charts.image_grid_figure(np.zeros((3, 8, 8), dtype=np.uint8))
    assert np.asarray(fig.data[0].z).shape[2] == 3 and not fig.layout.annotations
    charts.image_grid_figure(np.zeros((0, 28, 28, 1), dtype=np.uint8), [], [])


def test_per_class_bars_come_from_the_report():
    y_true, y_pred = _predictions(2)
    report = evaluation.classification_report(y_true, y_pred, NAMES)
    fig = charts.per_class_figure(report)
    assert [t.name for t in fig.data] == ["precision", "recall", "f1-score"]
    assert list(fig.data[0].x) == list(NAMES)
    np.testing.assert_allclose(fig.data[1].y, report.loc[list(NAMES), "recall"])
