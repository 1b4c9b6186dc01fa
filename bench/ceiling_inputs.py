"""The worst inputs bench/bench_memory_ceiling.py uploads: each hostile generator of tests/hostile.py in its
worst form, then 940 blank 512×512 images as .npz, 900 blank 512×512 PNGs as a .zip, a .keras whose config
unpacks to 1.5 GB and a .keras declaring Dense(100000). Real files: what they unpack to is what they claim."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import hostile  # noqa: E402  (the suite's generators)


@dataclass
class Upload:
    name: str
    page: str           # data | architecture | evaluation
    path: Path
    expect: str         # "sentence" (must be refused), "accepted", or "either" (within every limit)
    said: str = ""      # part of the sentence we expect, when refused
    outcome: dict = field(default_factory=dict)


def stream_npz(path: Path, x_shape: tuple, y=None, fill: int = 0, test: int = 0) -> Path:
    """A real .npz of `fill` images (deflated as written): x_train of x_shape minus `test` images, x_test `test`."""
    n = x_shape[0]
    y = np.arange(n) % 10 if y is None else np.asarray(y)
    row = np.full(x_shape[1:], fill, dtype=np.uint8).tobytes()
    splits = {"train": n - test, "test": test or n}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for split, count in splits.items():
            with zf.open(f"x_{split}.npy", "w", force_zip64=True) as f:
                f.write(hostile.npy_header((count,) + tuple(x_shape[1:])))
                for _ in range(count):
                    f.write(row)
            buf = io.BytesIO()
            np.save(buf, (y[:count] if split == "train" else np.arange(count) % 10))
            zf.writestr(f"y_{split}.npy", buf.getvalue())
    return path


def blank_png_zip(path: Path, n: int, side: int = 512) -> Path:
    blank = hostile.png(side, side, value=0)
    return hostile.image_zip(path, {f"class_{i % 10}/{i}.png": blank for i in range(n)})


def config_bomb_keras(path: Path, unpacked: int = 1_500_000_000) -> Path:
    """A .keras whose config.json unpacks to `unpacked` bytes (a model name of that many letters): ~1.5 MB."""
    head = b'{"module": "keras", "class_name": "Sequential", "config": {"name": "'
    tail = b'", "layers": []}, "registered_name": null}'
    chunk = b"a" * (1 << 24)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.8.0", "date_saved": "2026-12-01@10:00:00"}))
        with zf.open("config.json", "w", force_zip64=True) as f:
            f.write(head)
            left = unpacked - len(head) - len(tail)
            while left > 0:
                f.write(chunk[:left])
                left -= len(chunk)
            f.write(tail)
    return path


WIDE_KERAS = r"""
import sys, zipfile, json, keras
path = sys.argv[1]
m = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Flatten(), keras.layers.Dense(7, name="wide"),
                      keras.layers.Dense(10, activation="softmax")])
m.save(path + ".small.keras")
with zipfile.ZipFile(path + ".small.keras") as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
    for info in src.infolist():
        data = src.read(info.filename)
        if info.filename == "config.json":
            text = data.decode()
            assert '"units": 7' in text
            data = text.replace('"units": 7', '"units": 100000').encode()
        dst.writestr(info.filename, data)
"""


def wide_dense_keras(path: Path) -> Path:
    """A real Keras 3 file whose config says Dense(100000) after Flatten of 64×64×3 (1.2 billion parameters,
    4.9 GB of float32 once built) while its weights file is a Dense(7)'s, 350 KB."""
    subprocess.run([sys.executable, "-c", WIDE_KERAS, str(path)], check=True, capture_output=True,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""})
    Path(str(path) + ".small.keras").unlink()
    return path


def make_inputs(d: Path) -> list[Upload]:
    """Each hostile generator of tests/hostile.py in its worst form, then the issue's four."""
    def write(name: str, data: bytes | str) -> Path:
        p = d / name
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return p

    bomb = hostile.png(9000, 9000)
    y31 = np.arange(60) % 10
    y31[0] = 2**31
    x, y = hostile.digits_like(200)
    ups = [
        Upload("npz: real digits (hostile.npz)", "data", hostile.npz(d / "digits.npz", x_train=x, y_train=y,
               x_test=x[:60], y_test=y[:60]), "accepted"),
        Upload("npz header 4×20000×20000 (claimed_npz)", "data",
               hostile.claimed_npz(d / "claims_20000.npz", (4, 20000, 20000)), "sentence", "20,000"),
        Upload("npz header 4000×512×512 (claimed_npz)", "data",
               hostile.claimed_npz(d / "claims_1e9.npz", (4000, 512, 512)), "sentence", "values"),
        Upload("npz labels 2^31 (npz)", "data", stream_npz(d / "labels_2e31.npz", (60, 28, 28), y=y31),
               "sentence", "classes"),
        Upload("zip of 9000×9000 PNG bombs (png + image_zip)", "data",
               hostile.image_zip(d / "png_bombs.zip", {f"{c}/{i}.png": bomb for c in "ab" for i in range(3)}),
               "sentence", "9000"),
        Upload("zip of header-only PNGs (png header_only)", "data",
               hostile.image_zip(d / "png_empty.zip", {f"{c}/{i}.png": hostile.png(28, 28, header_only=True)
                                                       for c in "ab" for i in range(3)}), "sentence"),
        Upload("zip of PNGs with a bad chunk CRC (png bad_crc)", "data",
               hostile.image_zip(d / "png_crc.zip", {f"{c}/{i}.png": hostile.png(28, 28, bad_crc=True)
                                                     for c in "ab" for i in range(3)}), "sentence"),
        Upload("zip with a bad CRC (zip_with_bad_crc)", "data", hostile.zip_with_bad_crc(d / "bad_crc.zip"),
               "sentence", "checksum"),
        Upload("JSON nested 10,000 deep (nested_json)", "architecture",
               write("nested.json", hostile.nested_json(10_000)), "sentence", "levels"),
        Upload("JSON of 10,002 layers (layers_json)", "architecture",
               write("layers.json", hostile.layers_json(10_002)), "sentence", "10,002"),
        Upload("JSON in Latin-1 (latin1_json)", "architecture", write("latin1.json", hostile.latin1_json()),
               "sentence", "UTF-8"),
        Upload("JSON with units NaN (non_finite_spec_json)", "architecture",
               write("nan.json", hostile.non_finite_spec_json("units", "NaN")), "sentence", "NaN"),
        Upload("JSON with pool_size Infinity (non_finite_spec_json)", "architecture",
               write("inf.json", hostile.non_finite_spec_json("pool_size", "Infinity")), "sentence", "Infinity"),
        Upload("JSON of 13 M parameters (big_spec_dict)", "architecture",
               write("huge.json", json.dumps(hostile.big_spec_dict())), "either"),
        Upload("JSON of GFLOPs (heavy_flops_spec_dict)", "architecture",
               write("slow.json", json.dumps(hostile.heavy_flops_spec_dict())), "either"),
        Upload("900 blank 512×512 PNGs as .zip", "data", blank_png_zip(d / "blank_900.zip", 900), "either"),
        Upload("940 blank 512×512 images as .npz", "data",
               stream_npz(d / "blank_940.npz", (940, 512, 512), test=140), "either"),
        Upload(".keras whose config unpacks to 1.5 GB", "evaluation", config_bomb_keras(d / "config_bomb.keras"),
               "sentence"),
        Upload(".keras with Dense(100000) (1.2 billion parameters)", "evaluation",
               wide_dense_keras(d / "dense_100000.keras"), "sentence", "parameters"),
    ]
    for u in ups:
        u.outcome["bytes"] = u.path.stat().st_size
    return ups
