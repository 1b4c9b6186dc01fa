"""cnnkit.exploration: what the data page shows, checked against plain numpy."""

import numpy as np
import plotly.graph_objects as go
import pytest

from cnnkit import exploration


def test_first_twenty_samples_and_labels(offline_ds):
    idx = exploration.sample_indices(offline_ds, 20)
    assert idx.tolist() == list(range(20))
    imgs, captions = exploration.images_with_labels(offline_ds, idx)
    assert imgs.shape == (20, 28, 28, 1)
    assert captions[3] == f"#3: label {offline_ds.y_train[3]}"
    sevens = exploration.sample_indices(offline_ds, 5, class_index=7)
    assert (offline_ds.y_train[sevens] == 7).all()
    shuffled = exploration.sample_indices(offline_ds, 20, shuffle_seed=1)
    assert len(set(shuffled.tolist())) == 20 and shuffled.tolist() != list(range(20))


def test_class_counts(tiny_ds):
    ds = tiny_ds(n_train=25, n_test=7, classes=5)
    counts = exploration.class_counts(ds)
    assert counts["train"].tolist() == [5, 5, 5, 5, 5]
    assert counts["test"].tolist() == [2, 2, 1, 1, 1]
    assert abs(counts["train share"].sum() - 1) < 1e-9


def test_mean_images_equal_numpy_means(tiny_ds):
    ds = tiny_ds(n_train=100, classes=4)
    means = exploration.mean_images(ds)
    assert means.shape == (4, 28, 28, 1) and means.dtype == np.uint8
    for c in range(4):
        expected = np.rint(ds.x_train[ds.y_train == c].astype(np.float64).mean(axis=0))
        assert np.array_equal(means[c], expected.astype(np.uint8))


def test_pixel_histogram_counts_every_pixel(tiny_ds):
    ds = tiny_ds(shape=(8, 8, 3), n_train=10)
    hist = exploration.pixel_histogram(ds)
    assert hist["pixels"].sum() == 10 * 8 * 8 * 3
    assert hist["pixels"][17] == int((ds.x_train == 17).sum())


def test_preprocessing_demo_on_a_real_digit(offline_ds):
    demo = exploration.preprocessing_demo(offline_ds, 5)
    assert demo.raw_shape == (28, 28) and demo.model_shape == (28, 28, 1) and demo.batch_shape == (32, 28, 28, 1)
    assert demo.scaled.dtype == np.float32 and demo.scaled.min() == 0.0
    assert demo.scaled.max() == pytest.approx(demo.raw_max / 255)
    assert np.allclose(demo.scaled, offline_ds.x_train[5, ..., 0] / 255.0)
    assert demo.one_hot.sum() == 1 and demo.one_hot[demo.label] == 1 and demo.label == offline_ds.y_train[5]


def test_preprocessing_demo_colour(tiny_ds):
    demo = exploration.preprocessing_demo(tiny_ds(shape=(32, 32, 3)), 0)
    assert demo.raw_shape == (32, 32, 3) and demo.model_shape == (32, 32, 3)


def test_validation_split_is_stratified_and_complete(offline_ds):
    table = exploration.validation_split(offline_ds)
    assert table["train"].sum() == 3200 and table["validation"].sum() == 800
    assert table["validation"].tolist() == [80] * 10 and table["test"].sum() == 1000


def test_figures_build(offline_ds):
    counts = exploration.class_counts(offline_ds)
    fig = exploration.class_counts_figure(counts)
    assert isinstance(fig, go.Figure) and len(fig.data) == 2 and list(fig.data[0].y) == counts["train"].tolist()
    hist = exploration.pixel_histogram_figure(exploration.pixel_histogram(offline_ds))
    assert hist.layout.yaxis.type == "log"
    demo = exploration.preprocessing_demo(offline_ds, 0)
    heat = exploration.pixel_values_figure(demo.scaled, "scaled", decimals=1)
    assert heat.data[0].z.shape == (28, 28)
    assert list(exploration.one_hot_figure(demo.one_hot, offline_ds.class_names).data[0].y) == demo.one_hot.tolist()


def test_pixel_numbers_of_the_busiest_window(offline_ds):
    demo = exploration.preprocessing_demo(offline_ds, 0)
    r, c = exploration.busiest_window(demo.raw, 10)
    crop = demo.raw[r:r + 10, c:c + 10]
    assert crop.shape == (10, 10) and crop.min() == 0 and crop.max() > 200  # an edge: background and ink
    assert crop.std() >= demo.raw[:10, :10].std()  # the corner is empty, the window is not
    fig = exploration.pixel_values_figure(demo.raw, "stored", window=(r, c, 10))
    assert fig.data[0].z.shape == (10, 10) and list(fig.data[0].x) == list(range(c, c + 10))
    assert fig.data[0].textfont.size >= 14  # readable on a projector
