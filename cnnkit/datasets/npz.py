"""Reading a Keras-layout `.npz` (x_train, y_train, x_test, y_test) without trusting it.

Every array's shape and dtype come from its `.npy` header first and are held to
the limits before a byte of pixels is read; pixels are then converted to uint8
a few MB at a time, and labels to int64 class numbers, with a note saying how
each array was read. Object (pickled) arrays are refused. Both a user's upload
and MNIST in Keras's cache are read here.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from cnnkit import limits
from cnnkit.errors import DatasetError
from cnnkit.spec import format_shape

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_CHUNK_BYTES = 16 * 1024 * 1024  # pixels are read and converted this many bytes at a time


def npz_headers(p: Path) -> dict[str, tuple[tuple[int, ...], np.dtype, bool, zipfile.ZipInfo]]:
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


def check_header_shape(fname: str, key: str, shape: tuple[int, ...], error: type = DatasetError) -> None:
    """Image side and dataset size from a header, before a byte of pixels is read."""
    if len(shape) >= 3:
        side = max(shape[1], shape[2])
        limits.check("image_side", side, error, f"'{fname}': {key} holds {format_shape(shape[1:])} images, a side of",
                     "Resize the images (28×28 or 32×32 is what these lessons use) and save the file again.")
    limits.check("dataset_values", math.prod(shape), error,
                 f"'{fname}': {key} holds {format_shape(shape)} values, that is",
                 "Use fewer or smaller images (train on a subset) and save the file again.")


def read_npz_arrays(p: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """x_train, y_train, x_test, y_test (uint8 images with a channel axis, int64 labels) and notes on how
    they were read. Every size is checked from the arrays' headers first; pixels are converted in chunks."""
    try:
        heads = npz_headers(p)
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
        check_header_shape(p.name, f"x_{split}", xs)
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
    limits.check_memory(peak_bytes(heads), DatasetError, f"Reading '{p.name}'",
                        "Use fewer or smaller images (train on a subset), save the pixels as uint8 and the labels as "
                        "whole numbers, and try again.")
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


def peak_bytes(heads: dict) -> int:
    """The most memory reading these arrays takes at once, from their headers alone (bytes): the uint8 images
    and int64 labels it returns, plus the largest working set of one member — a chunk in the member's own dtype
    (twice: the zip reader's buffer and the bytes read), its finite mask and float32 copies (a Fortran-ordered
    member is one chunk, read whole), or a label member read, joined and, when one-hot, compared and reduced.
    Checked against `action_memory` before a byte is read."""
    kept, working = 0, 0
    for key in NPZ_KEYS:
        shape, dtype, fortran = heads[key][0], heads[key][1], heads[key][2]
        n = shape[0] if shape else 1
        values = math.prod(shape)
        member = values * dtype.itemsize
        if key.startswith("x_"):
            kept += values
            row = math.prod(shape[1:]) * dtype.itemsize
            chunk = member if fortran and len(shape) > 1 else min(member, max(row, _CHUNK_BYTES // max(row, 1) * row))
            items = chunk // max(1, dtype.itemsize)
            working = max(working, 2 * chunk if dtype == np.uint8 else 2 * chunk + 13 * items)
        else:
            kept += 8 * n
            working = max(working, 2 * member + 3 * values + 32 * n)
    return kept + working + 1_000_000   # and a megabyte for the reader's own objects


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
