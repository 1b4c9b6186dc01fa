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


def test_a_phones_confusion_matrix_says_the_count_of_every_non_zero_cell_alone():
    y_true, y_pred = _predictions()
    cm = evaluation.confusion_matrix(y_true, y_pred, 10)
    assert (cm == 0).any() and (cm[~np.eye(10, dtype=bool)] > 0).any()   # zero cells and mistakes both
    for shares in (evaluation.normalise_rows(cm), None):
        phone = charts.confusion_matrix_figure(cm, NAMES, normalised=shares, phone=True)
        heat = phone.data[0]
        assert [[heat.text[t][p] for p in range(10)] for t in range(10)] == \
            [[str(cm[t, p]) if cm[t, p] else "" for p in range(10)] for t in range(10)]   # no share under it
        assert heat.textfont.size >= charts.CHART_TEXT_PX
        # a ~360 px square and its axes: shorter than the projector's figure, no padding around the cells
        assert phone.layout.height < charts.confusion_matrix_figure(cm, NAMES, normalised=shares).layout.height
        assert tuple(phone.layout.xaxis.range) == (-0.5, 9.5) and tuple(phone.layout.yaxis.range) == (9.5, -0.5)


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


def _grid_images(html_text: str) -> list[np.ndarray]:
    import base64
    import io
    import re

    from PIL import Image

    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html_text)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(u)))) for u in uris]


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_image_grid_for_grayscale_and_colour(shape):
    import re

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (13, *shape), dtype=np.uint8)
    correct = np.array([True, False] * 6 + [True])
    captions = [f"{NAMES[i % 10]}<br>→ <b>{NAMES[(i + 1) % 10]}</b> 90%" for i in range(13)]
    grid = charts.image_grid_html(images, captions, correct, cols=5, tile_px=104)
    # every image is sent once, pixel for pixel, at its own size (the browser scales it)
    sent = _grid_images(grid)
    assert len(sent) == 13
    for img, back in zip(images, sent, strict=True):
        np.testing.assert_array_equal(back, img[..., 0] if shape[2] == 1 else img)
    # frames and captions: green for right, red for wrong; captions are escaped text with line breaks
    figures = re.findall(r"<figure>.*?</figure>", grid)
    assert charts.RIGHT_COLOUR in figures[0] and charts.RIGHT_TEXT in figures[0]
    assert charts.WRONG_COLOUR in figures[1] and charts.WRONG_TEXT in figures[1]
    assert f"{NAMES[1]}<br>→ &lt;b&gt;{NAMES[2]}&lt;/b&gt; 90%</figcaption>" in figures[1]
    # at most five 104 px tiles a row on a wide screen, fewer on a narrow one; text of 14 px
    assert "max-width:560px" in grid and "width:104px" in grid and "width:78px" in grid
    assert f"font-size:{charts.GRID_TEXT_PX}px" in grid and charts.GRID_TEXT_PX >= 14


def test_image_grid_without_labels_and_empty():
    grid = charts.image_grid_html(np.zeros((3, 8, 8), dtype=np.uint8), title="Three <blank> images")
    assert len(_grid_images(grid)) == 3 and "<figcaption" not in grid
    assert "Three &lt;blank&gt; images" in grid
    means = np.full((2, 4, 4, 1), 127.6)  # float images (means) are rounded to bytes
    assert _grid_images(charts.image_grid_html(means, ["a", "b"]))[0][0, 0] == 128
    assert _grid_images(charts.image_grid_html(np.zeros((0, 28, 28, 1), dtype=np.uint8), [], [])) == []


def test_per_class_bars_come_from_the_report():
    y_true, y_pred = _predictions(2)
    report = evaluation.classification_report(y_true, y_pred, NAMES)
    fig = charts.per_class_figure(report)
    assert [t.name for t in fig.data] == ["precision", "recall", "f1-score"]
    assert list(fig.data[0].x) == list(NAMES)
    np.testing.assert_allclose(fig.data[1].y, report.loc[list(NAMES), "recall"])


def test_every_chart_text_is_at_least_14_px():
    import pandas as pd

    from cnnkit import exploration

    rng = np.random.default_rng(0)
    cm = rng.integers(0, 50, (10, 10))
    report = evaluation.classification_report(rng.integers(0, 10, 200), rng.integers(0, 10, 200), NAMES)
    counts = pd.DataFrame({"class": list(NAMES), "train": [600] * 10, "test": [100] * 10})
    hist = pd.DataFrame({"value": np.arange(256), "pixels": np.arange(256) + 1})
    points = [{"dataset": "mnist", "parameters": 1000, "test_accuracy": 0.9, "student": "a", "architecture": "x",
               "flops": 10, "epochs": 1}]
    figures = {
        "matrix": charts.confusion_matrix_figure(cm, NAMES, normalised=evaluation.normalise_rows(cm)),
        "curves": charts.training_curves_figure(HISTORY),
        "compare": charts.compare_runs_figure({"Run 1": HISTORY, "Run 2": HISTORY}),
        "bars": charts.per_class_figure(report),
        "probabilities": charts.probability_figure(np.full(10, 0.1), NAMES),
        "scatter": charts.class_scatter_figure(points),
        "counts": exploration.class_counts_figure(counts),
        "histogram": exploration.pixel_histogram_figure(hist),
        "pixels": exploration.pixel_values_figure(rng.integers(0, 256, (28, 28)), "x", window=(0, 0, 10)),
        "one-hot": exploration.one_hot_figure(np.eye(10)[3], NAMES),
    }
    for name, fig in figures.items():
        layout = fig.layout
        sizes = [layout.font.size, layout.legend.font.size, layout.hoverlabel.font.size]
        axes = [layout[k] for k in layout if k.startswith(("xaxis", "yaxis"))]
        sizes += [ax.tickfont.size for ax in axes] + [ax.title.font.size for ax in axes]
        sizes += [a.font.size for a in layout.annotations]
        sizes += [t.colorbar.tickfont.size for t in fig.data if "colorbar" in t and t.showscale is not False]
        sizes += [t.textfont.size for t in fig.data if "textfont" in t and t.text is not None]
        assert all(s is not None and s >= charts.CHART_TEXT_PX for s in sizes), (name, sizes)
        if layout.title.text:
            assert layout.title.font.size >= charts.CHART_TEXT_PX + 2, name
    # side-by-side plots leave room for the figure's title above the plots' own titles
    for name in ("curves", "compare"):
        fig = figures[name]
        assert fig.layout.margin.t >= 2 * (charts.CHART_TEXT_PX + 2) + 30, name
    # a figure's own larger sizes are kept (the lecturer's presentation mode)
    big = charts.class_scatter_figure(points, large=True)
    assert big.layout.font.size == 22 and big.layout.xaxis.tickfont.size == 20
    # more classes than fit a number in a cell: colours only, the numbers on hover
    many = charts.confusion_matrix_figure(rng.integers(0, 9, (20, 20)), [str(i) for i in range(20)])
    assert not any(any(row) for row in many.data[0].text)
