"""What the worst uploads within every size limit add to the web process, against the action budget.

For each input: the estimate the code checks against `CNNKIT_LIMIT_ACTION_MEMORY` before allocating, and the
peak tracemalloc measures while it is read (numpy reports its allocations to tracemalloc; the readers' imports
are done first). Inputs: 940 blank 512×512 images as an `.npz` (246 million values, just under
`CNNKIT_LIMIT_DATASET_VALUES`), 900 blank 512×512 PNGs as a zip, the Data page's statistics on the first, and the
same 940 images stored as float32 (four times the bytes: the budget refuses it).

    flock /tmp/bench.lock python bench/bench_action_memory.py

Peaks do not depend on the machine's load; the load is printed for the record.
"""

from __future__ import annotations

import os
import sys
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import hostile  # noqa: E402

from cnnkit import datasets, exploration, limits  # noqa: E402
from cnnkit.datasets import npz, uploads  # noqa: E402
from cnnkit.errors import UserError  # noqa: E402


def peak(fn, *args):
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        out = fn(*args)
        return out, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def main() -> None:
    print("load:", os.getloadavg(), "budget:", mb(limits.get("action_memory")))
    tmp = Path(tempfile.mkdtemp(prefix="bench-action-memory-"))
    small = hostile.npz(tmp / "small.npz", x_train=np.zeros((10, 8, 8), np.uint8), y_train=np.arange(10) % 2,
                        x_test=np.zeros((4, 8, 8), np.uint8), y_test=np.arange(4) % 2)
    datasets.load_file(small)   # the readers' imports (scikit-learn's split for a zip) are not the reading's
    datasets.load_file(hostile.image_zip(tmp / "small.zip", {f"c{i % 2}/{i}.png": hostile.png(8, 8)
                                                              for i in range(10)}))
    x = np.zeros((940, 512, 512), np.uint8)
    y = np.arange(940) % 10
    f = hostile.npz(tmp / "blank.npz", x_train=x[:800], y_train=y[:800], x_test=x[800:], y_test=y[800:])
    del x
    ds, used = peak(datasets.load_file, f)
    print(f".npz, 940 blank 512×512 ({f.stat().st_size / 1e3:,.0f} kB): estimate "
          f"{mb(npz.peak_bytes(npz.npz_headers(f)))}, measured peak {mb(used)} (the arrays: "
          f"{mb(ds.x_train.nbytes + ds.x_test.nbytes)})")
    for stat in (exploration.pixel_histogram, exploration.mean_images, exploration.class_counts):
        _, used = peak(stat, ds)
        print(f"  {stat.__name__}: measured peak {mb(used)} (bound {mb(exploration.statistics_peak_bytes(ds))})")
    del ds
    blank = hostile.png(512, 512)
    z = hostile.image_zip(tmp / "blank.zip", {f"c{i % 10}/{i}.png": blank for i in range(900)})
    ds, used = peak(datasets.load_file, z)
    with zipfile.ZipFile(z) as zf:
        est = uploads.zip_peak_bytes(zf.infolist(), (512, 512), False)
    print(f".zip, 900 blank 512×512 PNGs ({z.stat().st_size / 1e3:,.0f} kB): estimate {mb(est)}, measured peak "
          f"{mb(used)} (the arrays: {mb(ds.x_train.nbytes + ds.x_test.nbytes)})")
    del ds
    x = np.zeros((940, 512, 512), np.float32)
    f = hostile.npz(tmp / "float.npz", x_train=x[:800], y_train=y[:800], x_test=x[800:], y_test=y[800:])
    del x
    try:
        _, used = peak(datasets.load_file, f)
        print(f".npz as float32: accepted, peak {mb(used)}")
    except UserError as err:
        print(f".npz as float32: refused, estimate {mb(npz.peak_bytes(npz.npz_headers(f)))}: {err}")
    print("load:", os.getloadavg())


if __name__ == "__main__":
    main()
