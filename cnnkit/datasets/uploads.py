"""A user's own dataset file: checks that say what is wrong, and loading it as a `Dataset`.

Two layouts are accepted (DESIGN.md, "Data sources"): an `.npz` in Keras's
layout (x_train, y_train, x_test, y_test; read by `npz.py`), or a `.zip` with
one folder of images per class (optionally under train/ and test/). Every size
is held to the limits before pixels are decoded: file count, unpacked bytes,
each image's side from its header, the dataset's values; labels must run
0…C−1 with training images for every class. A file whose shape and classes fit
a catalogue entry stands in for it; otherwise it is its own dataset, named
after the file.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np

from cnnkit import limits
from cnnkit.datasets.catalogue import CATALOGUE
from cnnkit.datasets.dataset import Dataset
from cnnkit.datasets.npz import read_npz_arrays
from cnnkit.errors import DatasetError
from cnnkit.spec import format_shape

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


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
    x_train, y_train, x_test, y_test, notes = read_npz_arrays(p)
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
        depth = 0
        while all(len(pt) > 2 for pt in paths) and len({pt[0] for pt in paths}) == 1:
            paths = [pt[1:] for pt in paths]
            depth += 1
        if any(len(pt) < 2 for pt in paths):
            raise DatasetError(f"'{p.name}' has images outside class folders. Put every image inside the folder "
                               "named after its class (e.g. cat/img1.png, dog/img2.png).")
        split_mode = {pt[0].lower() for pt in paths} <= {"train", "test"} and all(len(pt) >= 3 for pt in paths)
        labels_of = [(pt[1] if split_mode else pt[0]) for pt in paths]
        class_names = tuple(sorted(set(labels_of)))
        empty = _empty_folders(zf.infolist(), depth + int(split_mode), class_names)
        if len(class_names) < 2:
            raise DatasetError(f"'{p.name}' has only one class folder ('{class_names[0]}'). A classifier needs at "
                               "least two: add a folder of images for each class.")
        # Every image's size from its header first: one huge picture (or a PNG that claims to be one) is
        # refused before any pixel is decoded.
        sizes: dict[tuple[int, int], str] = {}
        values, colour = 0, False
        for info in images:
            w, h, bands, palette = _image_header(zf, info, p.name)
            limits.check("image_side", max(w, h), DatasetError, f"'{p.name}': {info.filename} is {w}×{h}, a side of",
                         "Resize the images (28×28 or 32×32 is what these lessons use) and zip them again.")
            sizes.setdefault((w, h), info.filename)
            if len(sizes) > 1:
                (s1, f1), (s2, f2) = list(sizes.items())[:2]
                raise DatasetError(f"'{p.name}' mixes image sizes: {f1} is {s1[0]}×{s1[1]} but {f2} is "
                                   f"{s2[0]}×{s2[1]}. Resize all images to one size first.")
            values += w * h * min(bands, 3)
            colour = colour or bands > 1 or palette   # a palette may hold colours
        limits.check("dataset_values", values, DatasetError, f"'{p.name}' holds {len(images):,} images with",
                     "Use fewer or smaller images and zip them again.")
        limits.check_memory(zip_peak_bytes(images, next(iter(sizes)), colour), DatasetError,
                            f"Reading the {len(images):,} images in '{p.name}'",
                            "Use fewer or smaller images (or grey ones) and zip them again.")
        index = {c: k for k, c in enumerate(class_names)}
        y = np.array([index[c] for c in labels_of], dtype=np.int64)
        if split_mode:
            is_test = np.array([pt[0].lower() == "test" for pt in paths])
            if is_test.all() or not is_test.any():
                raise DatasetError(f"'{p.name}' has train/ and test/ folders but one of them is empty.")
            train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
        else:
            train, test = _split(y, p.name)
        x_train, x_test = _decode_into(zf, images, (train, test), next(iter(sizes)), p.name)
    arrays = (x_train, y[train], x_test, y[test])
    ds = _custom(p, name, arrays, len(class_names), class_names)
    if empty:
        many = len(empty) > 1
        ds.notes.append(f"The folder{'s' if many else ''} {', '.join(repr(e) for e in empty[:10])}"
                        f"{' …' if len(empty) > 10 else ''} held no images, so {'they are' if many else 'it is'} not "
                        "a class here. Put the images in, or leave the folder out of the zip.")
    return ds


# What the decoder keeps per image besides its pixels: its label, its place in the split, the zip's index entry.
_PER_IMAGE_BYTES = 800


def zip_peak_bytes(images: list[zipfile.ZipInfo], size: tuple[int, int], colour: bool) -> int:
    """The most memory decoding these images takes at once (bytes), from the zip's index and the images' headers:
    the uint8 arrays (three channels when any image may be in colour: more than one band, or a palette), the
    per-image bookkeeping, and the decoder's working copies of one image — its compressed bytes (the largest
    member), the decoded picture and its conversions (4 bytes a pixel each, three of them)."""
    w, h = size
    channels = 3 if colour else 1
    largest = max((i.file_size for i in images), default=0)
    # and a megabyte for the reader's own objects (PIL's plugins, the split's arrays)
    return len(images) * (w * h * channels + _PER_IMAGE_BYTES) + largest + 3 * 4 * w * h + 1_000_000


def _empty_folders(infos: list[zipfile.ZipInfo], level: int, class_names: tuple[str, ...]) -> list[str]:
    """Class-level folders of the zip (at `level` after the common top folder) that hold no image."""
    folders = set()
    for i in infos:
        parts = PurePosixPath(i.filename.replace("\\", "/")).parts
        if "__MACOSX" in parts or any(pt.startswith(".") for pt in parts):
            continue
        if len(parts) > level + (0 if i.is_dir() else 1):
            folders.add(parts[level])
    return sorted(folders - set(class_names))


def _palette_has_colour(img) -> bool:
    rgb = np.asarray(img.convert("RGB"))
    return bool(np.any(rgb[..., 0] != rgb[..., 1]) or np.any(rgb[..., 1] != rgb[..., 2]))


_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, zlib.error, zipfile.BadZipFile, IndexError)


def _image_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, fname: str) -> tuple[int, int, int, bool]:
    """(width, height, bands, has a palette) of an image inside a zip from its first bytes, without decoding it."""
    from PIL import Image

    try:
        with zf.open(info) as f:
            head = f.read(256 * 1024)
        with Image.open(io.BytesIO(head)) as img:
            return int(img.size[0]), int(img.size[1]), len(img.getbands()), img.mode in ("P", "PA")
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


def _is_colour(img) -> bool:
    return img.mode not in ("L", "1", "I", "I;16", "LA", "P") or (img.mode == "P" and _palette_has_colour(img))


def _decode_into(zf: zipfile.ZipFile, images: list[zipfile.ZipInfo], parts: tuple[np.ndarray, ...],
                 size: tuple[int, int], fname: str) -> list[np.ndarray]:
    """The images decoded one at a time straight into their rows of each part's uint8 array (`parts`: the
    images' indices in each split). Grey unless an image is in colour: then every image is read as RGB, those
    already read decoded again. Memory: the arrays themselves and one image, never a list of decoded
    pictures, a stacked copy and split copies on top (that was four times the dataset's size)."""
    w, h = size
    where = {int(i): (k, row) for k, idx in enumerate(parts) for row, i in enumerate(idx)}
    out = [np.empty((len(idx), h, w, 1), dtype=np.uint8) for idx in parts]
    colour = False

    def put(i: int, img) -> None:
        k, row = where[i]
        a = np.asarray(img.convert("RGB" if colour else "L"), dtype=np.uint8)
        out[k][row] = a if colour else a[..., None]

    for i, info in enumerate(images):
        img = _decode_image(zf, info, fname)
        if not colour and _is_colour(img):
            colour = True
            out = []   # the grey arrays go before the colour ones are made (those images are decoded again)
            out = [np.empty((len(idx), h, w, 3), dtype=np.uint8) for idx in parts]
            for j in range(i):
                put(j, _decode_image(zf, images[j], fname))
        put(i, img)
        img.close()
    return out


def _error_words(err: BaseException) -> str:
    """The reader's complaint in words: no Python repr (PIL names its `<_io.BytesIO object at 0x…>`), no path."""
    text = str(err) or type(err).__name__
    if "CRC" in text:
        return "its checksum is wrong: the zip is damaged"
    if text.startswith("cannot identify image file"):
        return "its contents are not an image format the server can read"
    text = re.sub(r"\s*<[^<>]*\bobject at 0x[0-9a-fA-F]+>", "", text)
    return re.sub(r"(?<![\w.])/(?:[\w.-]+/)+[\w.-]*", "a file on the server", text).strip() or type(err).__name__


def _split(y: np.ndarray, fname: str) -> tuple[np.ndarray, np.ndarray]:
    """The training and test images' indices: 80 % / 20 %, stratified, with a fixed seed, as the lessons'
    train_test_split(random_state=13) (the split depends only on the labels, so indices split as images would)."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(y)
    if counts.min() < 2:
        small = int(np.argmin(counts))
        raise DatasetError(f"'{fname}': a class has only {counts.min()} image (class #{small}). Each class needs at "
                           "least 2 images so some can be held out for testing.")
    n_test = max(int(round(0.2 * len(y))), len(counts))
    if len(y) - n_test < len(counts):
        raise DatasetError(f"'{fname}' has too few images ({len(y)}) for {len(counts)} classes. Add more images.")
    train, test = train_test_split(np.arange(len(y)), test_size=n_test, stratify=y, random_state=13)
    return train, test
