"""Benchmark: one canvas drawing prepared MNIST-style and predicted, against Keras's model.predict.

    python bench/bench_draw.py [--repeats 200] [--run RUN_DIR]

Prints the median time of each part over `--repeats` calls and the ratios against
plain Keras measured in the same run. Targets (issue 6): preparation + prediction
under 10 ms in total, the model call under 2 ms. Without --run it times the fast
preset's architecture (weights do not change the time); with --run, that run's model.
Not a test: timings depend on the machine and on what else it is doing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from cnnkit import drawing, predict, presets, runs  # noqa: E402
from strokes import draw_digit  # noqa: E402


def median_ms(fn, repeats: int) -> float:
    fn()  # warm caches and traces outside the measurement
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200, help="calls per measurement (default 200)")
    parser.add_argument("--run", help="a run folder; default: the fast preset's architecture, untrained")
    args = parser.parse_args(argv)

    import keras

    if args.run:
        run = runs.load_run(args.run)
        model = run.load_model()
        what = f"run {run.id}"
    else:
        keras.utils.set_random_seed(0)
        model = presets.get(presets.FAST).spec.to_keras()
        what = f"fast preset ({model.count_params():,} parameters)"
    t0 = time.perf_counter()
    predictor = predict.Predictor(model)
    build_ms = (time.perf_counter() - t0) * 1000.0

    canvas = draw_digit("7", size=120, left=30, top=120, width=18)  # small, off-centre, as students draw
    x = drawing.prepare_drawing(canvas).x
    batch = x[None]
    n = args.repeats

    prep = median_ms(lambda: drawing.prepare_drawing(canvas), n)
    naive = median_ms(lambda: drawing.prepare_drawing(canvas, mode="naive"), n)
    call = median_ms(lambda: predictor.predict(x), n)
    total = median_ms(lambda: predictor.predict(drawing.prepare_drawing(canvas).x), n)
    maps = median_ms(lambda: predictor.feature_maps(x), n)
    keras_predict = median_ms(lambda: model.predict(batch, verbose=0), n)
    keras_total = prep + keras_predict

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"Draw & predict benchmark — {what}, 280×280 canvas, median of {n} calls, {cpus} CPU cores")
    print(f"{'what':<58}{'ms':>9}")
    rows = [
        ("prepare drawing, MNIST-style (drawing.prepare_drawing)", prep),
        ("prepare drawing, naive shrink", naive),
        ("model call, compiled (Predictor.predict)", call),
        ("prepare + predict, one drawing", total),
        ("feature maps of every conv layer", maps),
        ("Keras model.predict on one image", keras_predict),
        ("prepare + Keras model.predict", keras_total),
    ]
    for name, ms in rows:
        print(f"{name:<58}{ms:>9.2f}")
    print(f"{'one-off: trace the compiled call (per run, cached)':<58}{build_ms:>9.0f}")
    print()
    print(f"model.predict / compiled call:          {keras_predict / call:6.1f}× slower")
    print(f"prepare+model.predict / prepare+predict: {keras_total / total:6.1f}× slower")
    ok_total, ok_call = total < 10.0, call < 2.0
    print(f"target: prepare + predict < 10 ms: {total:.2f} ms {'OK' if ok_total else 'MISSED'}; "
          f"model call < 2 ms: {call:.2f} ms {'OK' if ok_call else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
