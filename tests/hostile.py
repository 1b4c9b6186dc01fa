"""Hostile inputs, generated small: files whose headers claim huge sizes, broken archives, odd JSON.

Nothing here allocates what a header claims: a "20000×20000" array is a few hundred bytes of
header, and a PNG "decompression bomb" is made row by row through zlib. The test suite and
bench/bench_hostile.py both use these makers.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.lib import format as npy


def npz(path: Path, **arrays) -> Path:
    """A real .npz of the given arrays."""
    np.savez(path, **arrays)
    return path


def npy_header(shape: tuple[int, ...], dtype="uint8") -> bytes:
    """A .npy file's magic and header for `shape`, with no data after it."""
    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, {"descr": npy.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                                     "shape": tuple(shape)})
    return buf.getvalue()  # write_array_header_1_0 writes the magic too


def claimed_npz(path: Path, x_shape: tuple[int, ...], y_len: int | None = None, *, data: bytes = b"",
                x_dtype="uint8") -> Path:
    """An .npz whose x_train/x_test headers claim `x_shape` but hold only `data` (or nothing)."""
    n = x_shape[0] if y_len is None else y_len
    with zipfile.ZipFile(path, "w") as zf:
        for split in ("train", "test"):
            zf.writestr(f"x_{split}.npy", npy_header(x_shape, x_dtype) + data)
            y = np.arange(n, dtype=np.int64) % 10
            buf = io.BytesIO()
            np.save(buf, y)
            zf.writestr(f"y_{split}.npy", buf.getvalue())
    return path


def digits_like(n: int = 60, side: int = 28, seed: int = 0, classes: int = 10):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, side, side), dtype=np.uint8), np.arange(n) % classes


def _chunk(kind: bytes, data: bytes, bad_crc: bool = False) -> bytes:
    crc = zlib.crc32(kind + data) ^ (1 if bad_crc else 0)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc & 0xFFFFFFFF)


def png(width: int, height: int, *, value: int = 0, header_only: bool = False, bad_crc: bool = False) -> bytes:
    """A grey PNG of one value. Rows go through zlib one at a time, so a 13000×13000 picture
    (169 MB of pixels) costs a few hundred KB to make. `header_only`: IHDR and an empty IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    comp = zlib.compressobj(9)
    parts = []
    if not header_only:
        row = b"\x00" + bytes([value]) * width
        for _ in range(height):
            out = comp.compress(row)
            if out:
                parts.append(out)
    parts.append(comp.flush())
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr, bad_crc) + _chunk(b"IDAT", b"".join(parts))
            + _chunk(b"IEND", b""))


def small_png(seed: int, side: int = 8) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def image_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def zip_with_bad_crc(path: Path) -> Path:
    """Two class folders of small PNGs, stored uncompressed, then one byte of one image flipped."""
    files = {f"{c}/{i}.png": small_png(10 * c + i) for c in range(2) for i in range(3)}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    raw = bytearray(path.read_bytes())
    target = files["1/2.png"]
    at = raw.find(target) + len(target) // 2
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path


def nested_json(depth: int) -> str:
    return '{"input_shape": [28, 28, 1], "layers": ' + "[" * depth + "]" * depth + "}"


def layers_json(n: int) -> str:
    layer = {"type": "Dense", "params": {"units": 10, "activation": "relu"}}
    return json.dumps({"format": "cnnlab.modelspec/1", "name": "tall", "input_shape": [28, 28, 1],
                       "layers": [{"type": "Flatten", "params": {}}] + [layer] * (n - 1)})


def latin1_json() -> bytes:
    return json.dumps({"name": "modèle à moi", "input_shape": [28, 28, 1], "layers": []},
                      ensure_ascii=False).encode("latin-1")


def non_finite_spec_json(setting: str = "units", literal: str = "NaN") -> str:
    """A lesson-like model file (Conv2D, MaxPooling2D, Dropout, Flatten, Dense) with one setting written as a
    JSON `NaN`, `Infinity` or `-Infinity` literal, which Python's json reads as a float."""
    where = {"filters": 0, "kernel_size": 0, "pool_size": 1, "rate": 2, "units": 4}[setting]
    layers = [{"type": "Conv2D", "params": {"filters": 8, "kernel_size": 3, "activation": "relu"}},
              {"type": "MaxPooling2D", "params": {"pool_size": 2}},
              {"type": "Dropout", "params": {"rate": 0.25}},
              {"type": "Flatten", "params": {}},
              {"type": "Dense", "params": {"units": 10, "activation": "softmax"}}]
    layers[where]["params"][setting] = "@@"
    return json.dumps({"format": "cnnlab.modelspec/1", "name": "nan", "input_shape": [28, 28, 1],
                       "layers": layers}).replace('"@@"', literal)


def big_spec_dict(units: int = 300) -> dict:
    """Conv2D(64) on 28×28, Flatten (43,264 values), Dense(units): 13 million parameters for 300 units."""
    return {"format": "cnnlab.modelspec/1", "name": "huge", "input_shape": [28, 28, 1], "layers": [
        {"type": "Conv2D", "params": {"filters": 64, "kernel_size": 3, "activation": "relu"}},
        {"type": "Flatten", "params": {}},
        {"type": "Dense", "params": {"units": units, "activation": "relu"}},
        {"type": "Dense", "params": {"units": 10, "activation": "softmax"}}]}


def heavy_flops_spec_dict() -> dict:
    """Wide 3×3 convolutions without pooling: GFLOPs per 28×28 image, few parameters."""
    conv = {"type": "Conv2D", "params": {"filters": 256, "kernel_size": 3, "padding": "same", "activation": "relu"}}
    return {"format": "cnnlab.modelspec/1", "name": "slow", "input_shape": [28, 28, 1], "layers": [
        conv, conv, conv, {"type": "GlobalAveragePooling2D", "params": {}},
        {"type": "Dense", "params": {"units": 10, "activation": "softmax"}}]}


def write_run(root: Path, name: str, *, run_json=None, history=None, spec=None) -> Path:
    """A run folder whose JSON files are as given (defaults: a plausible MNIST run); model.keras is a stub."""
    d = root / name
    d.mkdir(parents=True)
    spec = spec if spec is not None else {"input_shape": [28, 28, 1], "layers": [
        {"type": "Flatten", "params": {}}, {"type": "Dense", "params": {"units": 10, "activation": "softmax"}}]}
    meta = run_json if run_json is not None else {"id": name, "title": name, "dataset": "mnist", "owner": None,
                                                  "created": 1.7e9}
    files = {"spec.json": spec, "hyper.json": {"optimizer": "adam"}, "history.json": history or {"loss": [1.0]},
             "metrics.json": {"test_accuracy": 0.5}, "run.json": meta}
    for fname, obj in files.items():
        (d / fname).write_text(obj if isinstance(obj, str) else json.dumps(obj))
    (d / "model.keras").write_bytes(b"not a model")
    return d
