"""Benchmark: evaluating a run on the full test set, and rendering the evaluation page, against plain Keras.

Prints figures and ratios, asserts nothing (the machine is shared and noisy). Run:

    python bench/bench_evaluation.py [--dataset fashion_mnist] [--batch-size 500] [--repeats 3]

The model is the fast preset, trained for one epoch on 3,000 images (the timings do not
depend on how well it learned). Measured in the same process:

- plain Keras: `model.evaluate(x, y)` + `model.predict(x)` on the whole test set
  already scaled to float32 (the scaling itself is not counted against Keras),
  at our batch size and at Keras's default batch size of 32;
- ours: `cnnkit.evaluation.evaluate(run, dataset)`: one batched pass giving the
  loss, the accuracy and every probability, scaling uint8 → float32 per batch;
- the page: AppTest renders the evaluation page for that run, cold (nothing
  cached: model load + tracing + evaluation + all figures) and warm (a second
  student: the evaluation comes from the shared cache).
The first calls (Keras building its functions, ours tracing its batch function)
are timed once and compared with each other; the other rows are medians of
`--repeats` calls (the batch-32 row: one call).
Ratios below 1 mean we are faster than plain Keras.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CNNKIT_OFFLINE", "1")


def best_of(fn, repeats: int) -> tuple[float, object]:
    """Median time of `repeats` calls (after the caller's warm-up) and the last result."""
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="fashion_mnist",
                    help="catalogue name (default fashion_mnist: 10,000 test images)")
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import keras
    import numpy as np

    from cnnkit import datasets, evaluation, presets, runs

    ds = datasets.load(args.dataset)
    print(f"dataset: {ds.title}, {len(ds.x_test):,} test images {ds.image_shape}, from {ds.source_text}")
    preset = presets.get(presets.FAST, input_shape=ds.image_shape, num_classes=ds.num_classes)
    keras.utils.set_random_seed(0)
    model = preset.spec.to_keras()
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    n_fit = min(3000, len(ds.x_train))
    t = time.perf_counter()
    history = model.fit(datasets.to_float(ds.x_train[:n_fit]), ds.y_train[:n_fit], epochs=1, batch_size=128,
                        validation_split=0.1, verbose=0).history
    train_seconds = time.perf_counter() - t
    print(f"model: {preset.title}, {model.count_params():,} parameters, "
          f"1 epoch on {n_fit:,} images ({train_seconds:.1f} s)")

    root = Path(tempfile.mkdtemp(prefix="bench-eval-runs-"))
    os.environ["CNNKIT_RUNS_DIR"] = str(root)
    run = runs.save_run(model, preset.spec, preset.hyper, history,
                        {"train_seconds": train_seconds, "epochs_run": 1}, dataset_name=ds.name, root=root,
                        title="bench")
    loaded = run.load_model()

    # --- plain Keras: two passes on a float copy of the test set ------------------------------------
    x = datasets.to_float(ds.x_test)
    y = ds.y_test
    rows = []
    cold_plain = 0.0
    for batch, repeats in ((args.batch_size, args.repeats), (32, 1)):
        def plain(b=batch):
            loss, acc = loaded.evaluate(x, y, batch_size=b, verbose=0)
            probs = loaded.predict(x, batch_size=b, verbose=0)
            return loss, acc, probs

        if batch == args.batch_size:
            # first call: Keras builds its evaluate and predict functions (timed for the cold comparison)
            cold_plain, _ = best_of(plain, 1)
        secs, (k_loss, k_acc, k_probs) = best_of(plain, repeats)
        rows.append((batch, secs, k_loss, k_acc, k_probs))

    # --- ours: one pass, uint8 scaled per batch ------------------------------------------------------------
    t = time.perf_counter()
    evaluation.evaluate(run, ds, batch_size=args.batch_size)  # first call: traces the batch function
    cold_ours = time.perf_counter() - t
    ours, ev = best_of(lambda: evaluation.evaluate(run, ds, batch_size=args.batch_size), args.repeats)

    plain_secs, k_loss, k_acc, k_probs = rows[0][1], rows[0][2], rows[0][3], rows[0][4]
    print()
    print(f"agreement: accuracy {ev.accuracy:.4f} vs Keras {k_acc:.4f}; loss {ev.loss:.5f} vs Keras {k_loss:.5f}; "
          f"max |Δ probability| {float(np.abs(ev.probabilities - k_probs).max()):.1e}")
    print()
    print(f"{'what':<58}{'seconds':>9}{'ratio':>8}")
    for batch, secs, *_ in rows:
        print(f"{'plain Keras evaluate + predict, batch ' + str(batch):<58}{secs:>9.3f}{'':>8}")
    print(f"{'cnnkit.evaluation.evaluate, batch ' + str(args.batch_size) + ' (one pass)':<58}{ours:>9.3f}"
          f"{ours / plain_secs:>8.2f}")
    print(f"{'  … first call (tracing), vs plain Keras first call ' + format(cold_plain, '.2f') + ' s':<58}"
          f"{cold_ours:>9.3f}{cold_ours / cold_plain:>8.2f}")
    print(f"{'  vs plain Keras at its default batch 32':<58}{'':>9}{ours / rows[1][1]:>8.2f}")

    # --- the page ---------------------------------------------------------------------------------------------
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    def render() -> float:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        at.session_state["dataset_name"] = ds.name
        at.run()
        t = time.perf_counter()
        at.switch_page("app_pages/evaluation.py")
        at.run()
        secs = time.perf_counter() - t
        if at.exception:
            raise RuntimeError(at.exception[0].value)
        shown = {m.label: m.value for m in at.metric}["Test accuracy"]
        assert shown == f"{ev.accuracy:.2%}", (shown, ev.accuracy)
        return secs

    st.cache_resource.clear()
    runs._model_cache.clear()  # a cold server: the model is loaded from disk too
    cold_page = render()
    warm_page = statistics.median(render() for _ in range(args.repeats))
    print(f"{'evaluation page, cold (load + trace + evaluate + figures)':<58}{cold_page:>9.3f}"
          f"{cold_page / cold_plain:>8.2f}  (vs plain Keras first call)")
    print(f"{'evaluation page, warm (evaluation shared from the cache)':<58}{warm_page:>9.3f}"
          f"{warm_page / plain_secs:>8.2f}")
    print()
    print(f"ratio = seconds / plain Keras evaluate + predict at batch {args.batch_size} ({plain_secs:.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
