"""Benchmark: how fast the architecture page's numbers are, against asking Keras for them.

1. summary() + validate() of a 20-layer spec, from the catalogue's formulas, with
   no TensorFlow imported (checked in sys.modules afterwards);
2. the same numbers from plain Keras in the same run: import TensorFlow once,
   then build the Sequential model and read count_params() and output shapes;
3. the architecture page's rerun time in AppTest after a widget change, before
   and after TensorFlow is in the process (the page itself never imports it).

Run: python bench/bench_spec.py [--repeats N] [--reruns N]. Prints figures and
ratios; it is not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CNNKIT_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cnnkit.spec import LayerSpec, ModelSpec  # noqa: E402

L = LayerSpec.new


def twenty_layers() -> ModelSpec:
    out = []
    for filters in (16, 32, 64, 64):
        out += [L("Conv2D", filters=filters, padding="same", activation="linear", use_bias=False),
                L("BatchNormalization"), L("ReLU"), L("MaxPooling2D", padding="same")]
    out += [L("Flatten"), L("Dropout", rate=0.3), L("Dense", units=64), L("Dense", units=10, activation="softmax")]
    spec = ModelSpec((28, 28, 1), out, name="bench20")
    assert len(spec.layers) == 20
    return spec


def per_call(fn, repeats: int) -> float:
    """Median seconds per call over 5 rounds of `repeats` calls."""
    rounds = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(repeats):
            fn()
        rounds.append((time.perf_counter() - t) / repeats)
    return statistics.median(rounds)


def page_rerun(reruns: int, when: str) -> None:
    """Median wall time of the architecture page's rerun after a widget change, in AppTest."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/architecture.py")
    at.run()
    assert not at.exception, at.exception
    times = []
    for i in range(reruns):
        rev = at.session_state["arch_rev"]
        box = at.number_input(key=f"arch{rev}_0_filters")
        t = time.perf_counter()
        box.set_value(16 + (i % 2) * 16).run()
        times.append(time.perf_counter() - t)
        assert not at.exception
    n = len(at.session_state["spec"]["layers"])
    print(f"page rerun after a widget change, {n}-layer fast preset, {when}: "
          f"median {statistics.median(times) * 1e3:.0f} ms, max {max(times) * 1e3:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2000, help="summary+validate calls per round (default 2000)")
    ap.add_argument("--keras-repeats", type=int, default=10, help="Keras model builds per round (default 10)")
    ap.add_argument("--reruns", type=int, default=10, help="page reruns to time (default 10)")
    args = ap.parse_args()

    spec = twenty_layers()

    from cnnkit import spec as spec_module

    def ours():
        s = spec.summary()
        spec.validate(10)
        return s.total_params

    def ours_cold():
        spec_module._walk_cached.cache_clear()  # as if this spec had never been seen
        return ours()

    print(f"load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (timings scale with it)")
    ours_s = per_call(ours_cold, args.repeats)
    warm_s = per_call(ours, args.repeats)
    tf_loaded = "tensorflow" in sys.modules or "keras" in sys.modules
    total = ours()
    print(f"summary + validate, 20 layers, new: {ours_s * 1e6:9.1f} µs per call   (total {total:,} params)")
    print(f"  same spec again (cached analysis): {warm_s * 1e6:9.1f} µs per call")
    print(f"tensorflow/keras imported after it:  {'YES (bad)' if tf_loaded else 'no'}")

    page_rerun(args.reruns, "TensorFlow not imported")
    assert "tensorflow" not in sys.modules, "the architecture page imported TensorFlow"

    t = time.perf_counter()
    import keras  # noqa: E402 - measured on purpose

    import_s = time.perf_counter() - t

    def plain_keras():
        from keras import layers

        model = keras.Sequential([keras.Input((28, 28, 1)), *[
            layers.Conv2D(l.params["filters"], 3, padding="same", use_bias=False) if l.type == "Conv2D" else
            layers.BatchNormalization() if l.type == "BatchNormalization" else
            layers.ReLU() if l.type == "ReLU" else
            layers.MaxPooling2D(padding="same") if l.type == "MaxPooling2D" else
            layers.Flatten() if l.type == "Flatten" else
            layers.Dropout(0.3) if l.type == "Dropout" else
            layers.Dense(l.params["units"], activation=l.params.get("activation"))
            for l in spec.layers]])
        shapes = [layer.output.shape for layer in model.layers]
        return model.count_params(), shapes

    keras_s = per_call(plain_keras, args.keras_repeats)
    assert plain_keras()[0] == total, "the catalogue and Keras disagree"
    print(f"import tensorflow/keras (once):      {import_s * 1e3:9.1f} ms")
    print(f"plain Keras: build + count_params:   {keras_s * 1e3:9.1f} ms per model")
    print(f"ratio Keras build / ours (new spec): {keras_s / ours_s:9.0f}×  "
          f"(first answer incl. import: {(import_s + keras_s) / ours_s:,.0f}×)")
    page_rerun(args.reruns, "after TensorFlow was imported (as in a server that has trained)")


if __name__ == "__main__":
    main()
