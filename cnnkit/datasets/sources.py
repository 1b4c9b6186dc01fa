"""Loading a catalogue dataset from the first source that can serve it, and saying which one would.

Sources, tried in the order each catalogue entry lists them (DESIGN.md, "Data sources"):
files already on the machine (Keras's cache `~/.keras/datasets`, Debian's
`dataset-fashion-mnist` package), the Keras download (needs internet), and for
MNIST the offline sample: 5,000 real digits shipped inside the package. A damaged
file is reported in the Dataset's notes and skipped; a dataset no source can
serve gets a sentence that says what to do. `describe_sources` says, without
loading any pixels, which source would serve each dataset now
(`cnnkit datasets`, the home page). A user's own file is `uploads.load_file`.

No TensorFlow import here except for the Keras download itself.
"""

from __future__ import annotations

import copy
import pickle
import socket
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from cnnkit import settings
from cnnkit.datasets import readers
from cnnkit.datasets.catalogue import CATALOGUE, MACHINE_SOURCES, SOURCE_WORDS, DatasetInfo, get
from cnnkit.datasets.dataset import Dataset
from cnnkit.errors import DatasetError
from cnnkit.spec import format_shape


@dataclass(frozen=True)
class MachineFolder:
    """A folder on the machine where catalogue files may lie, and the words that name it."""

    path: Callable[[], Path]
    damaged: str  # how a note about a damaged file there names it
    served: str  # how a Dataset's source text names it


MACHINE_FOLDERS = {
    "keras-cache": MachineFolder(readers.keras_cache_dir, "Keras's cache", "Keras's dataset cache"),
    "debian": MachineFolder(readers.debian_fashion_dir, "Debian's Fashion-MNIST files",
                            "Debian's dataset-fashion-mnist package"),
}

# What can go wrong reading a file on the machine: each makes the source be reported and skipped.
_SOURCE_ERRORS = (OSError, ValueError, KeyError, EOFError, IndexError, TypeError, zipfile.BadZipFile,
                  pickle.UnpicklingError, DatasetError, zlib.error)


def _sources_in_order(info: DatasetInfo) -> Iterator[tuple[str, Path | None]]:
    """Each source of `info` in order, with its file or folder when it is on the machine (None for the others).

    A machine source whose files are not all there is left out: it is simply not installed."""
    for source in info.sources:
        if source not in MACHINE_SOURCES:
            yield source, None
            continue
        path = info.on_machine[source].find(MACHINE_FOLDERS[source].path())
        if path is not None:
            yield source, path


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


# --- each source --------------------------------------------------------------------
def _from_machine(info: DatasetInfo, source: str, path: Path) -> Dataset:
    arrays = info.on_machine[source].read(path)
    _check_catalogue_arrays(info, arrays, path)
    return _make(info, arrays, source, f"{MACHINE_FOLDERS[source].served} ({path}): the full {info.full_size}.")


def _check_catalogue_arrays(info: DatasetInfo, arrays: tuple[np.ndarray, ...], path: Path) -> None:
    """Files on the machine must hold what the catalogue says: the shape, and labels 0…C−1."""
    x_train, y_train, x_test, y_test = arrays
    for x, y in ((x_train, y_train), (x_test, y_test)):
        if tuple(x.shape[1:]) != info.image_shape or len(x) != len(y) or len(y) == 0:
            raise ValueError(f"{path} holds {format_shape(x.shape)} images and {len(y)} labels, "
                             f"not {format_shape(info.image_shape)} images")
        if y.min() < 0 or y.max() >= info.num_classes:
            raise ValueError(f"{path} has labels from {y.min()} to {y.max()}, not 0–{info.num_classes - 1}")


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


@lru_cache(maxsize=1)
def offline_sample() -> Dataset:
    """The 5,000 real MNIST training digits shipped with the package, split 4,000 / 1,000 (stratified)."""
    x_train, y_train, x_test, y_test = readers.read_offline_sample()
    info = CATALOGUE["mnist"]
    return _make(info, (x_train, y_train, x_test, y_test), "offline-sample",
                 "offline sample: 5,000 digits (4,000 to train, 1,000 to test) — connect to the internet "
                 "or add mnist.npz for all 70,000.")


# --- the public entry points -------------------------------------------------------
def load(name: str) -> Dataset:
    """Load a catalogue dataset from the first source that can serve it."""
    info = get(name)
    failures: list[str] = []
    for source, p in _sources_in_order(info):
        if p is not None:
            try:
                ds = _from_machine(info, source, p)
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
    raise DatasetError(f"{info.title} cannot be loaded here: "
                       f"{'; '.join(failures) if failures else 'no source is available'}. {info.hint}")


def _damaged_words(source: str, path: Path, err: BaseException) -> str:
    return (f"{MACHINE_FOLDERS[source].damaged} at {path} is damaged and was skipped ({type(err).__name__}: {err}); "
            "delete it or download it again")


def _with_notes(ds: Dataset, notes: list[str]) -> Dataset:
    """The shared offline sample with this load's notes, without touching the shared object."""
    if not notes:
        return ds
    out = copy.copy(ds)
    out.notes = [*ds.notes, *notes]
    return out


# A quick look at each file on the machine, kept until the file changes: `cnnkit datasets` and the
# home page must not claim that a damaged cache serves 60,000 images.
_probe_cache: dict[tuple[str, str, float, int], str | None] = {}


def _probe(source: str, info: DatasetInfo, p: Path) -> str | None:
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
            info.on_machine[source].probe(p, info.image_shape)
            _probe_cache[key] = None
        except _SOURCE_ERRORS as err:
            _probe_cache[key] = _damaged_words(source, p, err)
    return _probe_cache[key]


def _source_now(name: str) -> tuple[str | None, list[str]]:
    info = get(name)
    skipped: list[str] = []
    for source, p in _sources_in_order(info):
        if p is not None:
            why = _probe(source, info, p)
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
