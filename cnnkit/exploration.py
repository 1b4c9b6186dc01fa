"""Exploring a dataset before any model: samples, class balance, mean images,
pixel values, and the preprocessing a CNN needs, shown on a real image.

Everything the data page shows comes from here (the image grids use
`cnnkit.charts.image_grid_html`, the figures `cnnkit.charts.readable` text). Statistics work on the shared uint8 arrays
in chunks (`chunk_values`: a sixteenth of the action budget `CNNKIT_LIMIT_ACTION_MEMORY`, at most CHUNK_VALUES
pixel values): no float or int64 copy of a whole dataset, so their extra memory is at most 9 bytes a chunk value
plus 24 bytes an image (`statistics_peak_bytes`), within the budget however large the dataset (the tests hold it
under 64 MB for 940 images of 512×512, and under a 2 MB budget).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from cnnkit import limits
from cnnkit.charts import class_axis, readable
from cnnkit.datasets import Dataset, one_hot, to_float
from cnnkit.plain_text import inert

TRAIN_COLOUR = "#1f77b4"
TEST_COLOUR = "#ff7f0e"
# Statistics read the dataset at most this many pixel values at a time (1 MB of uint8; 8 MB once bincount widens
# them to 8-byte integers), fewer where the action budget is small (`chunk_values`).
CHUNK_VALUES = 1 << 20


def chunk_values() -> int:
    """Pixel values the statistics read at a time: a sixteenth of the action budget (each value costs 9 bytes at
    the peak, its uint8 copy and bincount's int64), at most CHUNK_VALUES, at least 1,024."""
    return int(min(CHUNK_VALUES, max(1024, limits.get("action_memory") // 16)))


def statistics_peak_bytes(ds: Dataset) -> int:
    """The most memory one statistic adds (bytes): a chunk at 9 bytes a value, the class means' sort of the
    labels (24 bytes a training image), their float64 sum and result and one image copied whole where it is larger
    than a chunk (17 bytes a pixel value of one image)."""
    return 9 * chunk_values() + 24 * len(ds.y_train) + 17 * int(np.prod(ds.image_shape))


def source_line(ds: Dataset, description: str | None = None) -> str:
    """The one line above the Data page's images: the dataset, where it came from, what it holds (Markdown; the
    dataset's own words, which come from the catalogue or are built from a file's name as plain text)."""
    from cnnkit.datasets import CATALOGUE

    icon = ":material/cloud_off:" if ds.source == "offline-sample" else ":material/check_circle:"
    source = ds.source_text.rstrip(".")
    if ds.source == "file":   # a student's file name: shown as plain text, never as Markdown
        source = inert(source)
    line = f"{icon} **{inert(ds.title) if ds.source == 'file' else ds.title}** from {source}"
    if description is None and ds.source != "file" and ds.name in CATALOGUE:
        description = CATALOGUE[ds.name].description
    return line + (f" · {description}" if description else "")


def notes_title(ds: Dataset) -> str | None:
    """The folded title of the notes on how a dataset was read (None: no notes)."""
    n = len(ds.notes)
    return f"How this dataset was read ({n} note{'s' if n != 1 else ''})" if n else None


def sample_indices(ds: Dataset, n: int = 20, class_index: int | None = None, split: str = "train",
                   shuffle_seed: int | None = None) -> np.ndarray:
    """The first `n` images of a split (the lesson's "first 20 digits"), optionally of one class or shuffled."""
    y = ds.y_train if split == "train" else ds.y_test
    idx = np.arange(len(y)) if class_index is None else np.flatnonzero(y == class_index)
    if shuffle_seed is not None:
        idx = np.random.default_rng(shuffle_seed).permutation(idx)
    return idx[:n]


def images_with_labels(ds: Dataset, indices: np.ndarray, split: str = "train") -> tuple[np.ndarray, list[str]]:
    x = ds.x_train if split == "train" else ds.x_test
    y = ds.y_train if split == "train" else ds.y_test
    captions = [f"#{i}: {ds.class_names[y[i]]}" if not ds.class_names[y[i]].isdigit() else f"#{i}: label {y[i]}"
                for i in indices]
    return x[indices], captions


def class_counts(ds: Dataset) -> pd.DataFrame:
    """Images per class in the train and test splits, with each class's share of the training set."""
    k = ds.num_classes
    train = np.bincount(ds.y_train, minlength=k)[:k]
    test = np.bincount(ds.y_test, minlength=k)[:k]
    return pd.DataFrame({"class": list(ds.class_names), "train": train, "test": test,
                         "train share": train / max(1, train.sum())})


def mean_images(ds: Dataset) -> np.ndarray:
    """The average training image of each class, as uint8 `(K, H, W, C)`.

    Memory: the result, one class's float64 sum (H×W×C × 8 bytes), the images of one chunk
    (at most `chunk_values()` pixel values, copied as uint8) and one index per training image; never a
    copy of the whole dataset, whatever its size.
    """
    k = ds.num_classes
    means = np.zeros((k,) + ds.image_shape, dtype=np.uint8)
    order = np.argsort(ds.y_train, kind="stable")  # the images of each class together, in their order
    ends = np.searchsorted(ds.y_train[order], np.arange(k + 1), side="left")
    step = _images_per_chunk(ds.x_train)
    total = np.zeros(ds.image_shape, dtype=np.float64)
    for c in range(k):
        members = order[ends[c]:ends[c + 1]]
        if not len(members):
            continue
        total[...] = 0
        for start in range(0, len(members), step):
            total += ds.x_train[members[start:start + step]].sum(axis=0, dtype=np.float64)
        means[c] = np.rint(total / len(members))
    return means


def pixel_histogram(ds: Dataset) -> pd.DataFrame:
    """How many training pixels have each grey level 0–255 (all channels together).

    Memory: `np.bincount` turns what it counts into 8-byte integers, so it is given at most
    `chunk_values()` pixel values at a time (8 MB of them by default), never the dataset at once.
    """
    counts = np.zeros(256, dtype=np.int64)
    for piece in _value_chunks(ds.x_train):
        counts += np.bincount(piece, minlength=256)[:256]
    return pd.DataFrame({"value": np.arange(256), "pixels": counts, "share": counts / max(1, counts.sum())})


def _images_per_chunk(x: np.ndarray) -> int:
    """How many images of `x` make at most `chunk_values()` values (at least one)."""
    per_image = max(1, int(np.prod(x.shape[1:], dtype=np.int64)))
    return max(1, chunk_values() // per_image)


def _value_chunks(x: np.ndarray):
    """The values of `x` as flat uint8 pieces of at most `chunk_values()` values each: views where `x` is
    contiguous, else copies of one image at a time when an image is larger than a chunk."""
    chunk = chunk_values()
    step = _images_per_chunk(x)
    for start in range(0, len(x), step):
        flat = np.ascontiguousarray(x[start:start + step]).reshape(-1)
        for at in range(0, flat.size, chunk):
            yield flat[at:at + chunk]


@dataclass
class PreprocessingDemo:
    """One real training image walked through the preprocessing a CNN needs."""

    index: int
    raw: np.ndarray            # uint8 (H, W) or (H, W, 3) as stored on disk
    raw_shape: tuple[int, ...]
    raw_min: int
    raw_max: int
    scaled: np.ndarray         # float32 in [0, 1], same shape as raw
    model_shape: tuple[int, ...]  # (H, W, C): what the model's input layer expects
    batch_shape: tuple[int, ...]  # (batch, H, W, C)
    label: int
    label_name: str
    one_hot: np.ndarray        # float32 (K,)


def scaling_sentence(demo: PreprocessingDemo) -> str:
    """Step 1 of the preprocessing: min-max scaling with the format's range (0 and 255), not the image's own."""
    return ("**1. Scale the pixels to 0–1.** Networks learn best from small inputs. This is min-max scaling, "
            "(x − min) / (max − min), with the min and max of the format — a byte holds 0 to 255 — not of each "
            f"image: so each value becomes x / 255. This image's own values run from {demo.raw_min} to "
            f"{demo.raw_max}; afterwards from {demo.scaled.min():.2f} to {demo.scaled.max():.2f}, the same "
            "scale for every image.")


def preprocessing_demo(ds: Dataset, index: int = 0, batch_size: int = 32) -> PreprocessingDemo:
    """Scaling 0–255 → 0–1 ((x − min) / (max − min) with min 0 and max 255), the channel axis, and the labels."""
    index = int(np.clip(index, 0, len(ds.x_train) - 1))
    img = ds.x_train[index]
    raw = img[..., 0] if ds.is_grayscale else img
    label = int(ds.y_train[index])
    return PreprocessingDemo(
        index=index, raw=raw, raw_shape=tuple(raw.shape), raw_min=int(raw.min()), raw_max=int(raw.max()),
        scaled=to_float(raw), model_shape=tuple(img.shape), batch_shape=(batch_size,) + tuple(img.shape),
        label=label, label_name=ds.class_names[label], one_hot=one_hot(np.array([label]), ds.num_classes)[0])


def validation_split(ds: Dataset, fraction: float = 0.2, seed: int = 13) -> pd.DataFrame:
    """Per-class counts of a stratified hold-out (as `train_test_split(test_size=0.2, random_state=13)`)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(ds.y_train))
    tr, va = train_test_split(idx, test_size=fraction, random_state=seed, stratify=ds.y_train)
    k = ds.num_classes
    return pd.DataFrame({"class": list(ds.class_names),
                         "train": np.bincount(ds.y_train[tr], minlength=k)[:k],
                         "validation": np.bincount(ds.y_train[va], minlength=k)[:k],
                         "test": np.bincount(ds.y_test, minlength=k)[:k]})


# --- figures ---------------------------------------------------------------------------
def class_counts_figure(counts: pd.DataFrame) -> go.Figure:
    fig = go.Figure([go.Bar(name="train", x=counts["class"], y=counts["train"], marker_color=TRAIN_COLOUR),
                     go.Bar(name="test", x=counts["class"], y=counts["test"], marker_color=TEST_COLOUR)])
    fig.update_layout(barmode="group", title="Images per class", xaxis=class_axis(list(counts["class"]), title="class"),
                      yaxis_title="images", margin=dict(l=10, r=10, t=40, b=10), height=340,
                      legend=dict(orientation="h", y=1.12))
    return readable(fig)


def pixel_histogram_figure(hist: pd.DataFrame, log_scale: bool = True) -> go.Figure:
    fig = go.Figure(go.Bar(x=hist["value"], y=hist["pixels"], marker_color=TRAIN_COLOUR))
    fig.update_layout(title="Pixel values in the training images (0 = black, 255 = white)",
                      xaxis_title="grey level", yaxis_title="pixels", bargap=0, height=340,
                      margin=dict(l=10, r=10, t=40, b=10))
    if log_scale:
        fig.update_yaxes(type="log")
    return readable(fig)


def busiest_window(image: np.ndarray, size: int = 10) -> tuple[int, int]:
    """Top-left (row, column) of the size×size window whose values vary most: where a stroke's edge is.

    Its numbers are the instructive ones (0s, 255s and the grey levels between), and a window
    that small keeps them large enough to read on a projector and a phone.
    """
    img = image if image.ndim == 2 else image.mean(axis=-1)
    h, w = img.shape
    size = min(size, h, w)
    windows = np.lib.stride_tricks.sliding_window_view(img.astype(np.float32), (size, size))
    spread = windows.std(axis=(-1, -2))
    r, c = np.unravel_index(int(np.argmax(spread)), spread.shape)
    return int(r), int(c)


def pixel_values_figure(image: np.ndarray, title: str, decimals: int = 0,
                        window: tuple[int, int, int] | None = None) -> go.Figure:
    """A grey image as a heatmap with each pixel's number written in it (the numbers a CNN sees).

    `window` = (row, column, size) shows only that square, numbers at 14 px, axes giving the
    pixels' real row and column numbers.
    """
    img = image if image.ndim == 2 else image.mean(axis=-1)
    rows, cols = np.arange(img.shape[0]), np.arange(img.shape[1])
    if window is not None:
        r0, c0, size = window
        img, rows, cols = img[r0:r0 + size, c0:c0 + size], rows[r0:r0 + size], cols[c0:c0 + size]
    text = np.vectorize(lambda v: f"{v:.{decimals}f}")(img) if decimals else img.astype(int).astype(str)
    small = window is None and max(img.shape) > 12
    # Light numbers on dark pixels and dark numbers on light ones.
    fig = go.Figure(go.Heatmap(z=img, x=cols, y=rows, text=text, texttemplate="%{text}",
                               textfont=dict(size=7 if small else 14),
                               colorscale="gray", showscale=False, zmin=0, zmax=1 if decimals else 255,
                               hovertemplate="row %{y}, column %{x}: %{z}<extra></extra>"))
    axis = dict(visible=not small, tickfont=dict(size=14), dtick=2, showgrid=False)
    fig.update_layout(title=title, height=460 if small else 440, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis=dict(axis, title=None), yaxis=dict(axis, autorange="reversed", scaleanchor="x"))
    return readable(fig)


def one_hot_figure(vector: np.ndarray, class_names: tuple[str, ...]) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(class_names), y=vector, marker_color=TRAIN_COLOUR,
                           text=[f"{v:g}" for v in vector], textposition="outside"))
    fig.update_layout(title="The same label as a one-hot vector", yaxis=dict(range=[0, 1.25]), height=260,
                      xaxis=class_axis(class_names),
                      margin=dict(l=10, r=10, t=40, b=10))
    return readable(fig)
