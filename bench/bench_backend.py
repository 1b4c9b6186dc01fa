"""Benchmark: Keras on JAX against Keras on TensorFlow — the lecture's work on both, side by side (issue #23).

Prints figures and the ratios JAX ÷ TensorFlow, asserts nothing (the machine is shared and noisy: the load
average is printed at the start and the end, and only figures measured in the same run compare). Each backend
runs in its own fresh process (`KERAS_BACKEND=tensorflow`, then `KERAS_BACKEND=jax`), doing the same work:

1. `import keras` (which imports its backend): wall time and resident memory right after.
2. One lecture job as the class trains it: the lecture preset with its small-data recipe (RMSprop 0.012 with
   the cosine decay, batch 64, 3 epochs, augmented) on the offline 5,000-digit sample — 3,600 images train,
   400 validate (`training.split_indices`, as a job splits), fed by `cnnkit.pipeline.Batches` — then evaluated
   on the sample's 1,000 test digits. Build, first epoch (its validation and the trace/compile included),
   later epochs, evaluate, the whole job, its CPU seconds, test accuracy, peak RSS (VmHWM). Then `--jobs` (4)
   such jobs in a row with other seeds in the same process, each a new model paying its own trace/compile
   (`clear_session` between them, as bench_capacity's plain loop): jobs a minute, the capacity figure.
3. The fast preset: two epochs over the same 3,600 images; images a second in the second one.
4. Prediction: one 28×28 digit (a test image standing in for a drawing: preparing it is numpy on both sides)
   through the trained lecture model, as the Draw page asks: the first call (tracing included) and the median
   of 50 calls after warm-up.
5. Grad-CAM on that image, as the Draw page asks for the answer's map: the first call and the median of 20.

What is the same code on both sides: the dataset, the presets, `Hyper.make_optimizer`, the spec's `to_keras`,
`Batches`, `model.fit` / `evaluate`, `cnnkit.heap.tune` after each pass's first batch (a job's callback does
that) and the maps' scaling (`explain.Saliency.__call__`). What is backend-specific (the cnnkit modules that
import TensorFlow): on TensorFlow the bench uses cnnkit's own — op determinism (`training.deterministic_ops`,
as every job), `predict.Predictor` (a traced `tf.function`) and `explain.Saliency` (a `GradientTape`). On JAX it
uses its own equivalents, written here: a jitted `model.stateless_call` for prediction, and `JaxSaliency`, the
same Grad-CAM (the class score's logit gradient × the last convolution block's feature map, summed over
channels, its positive part) with `jax.value_and_grad` inside `jax.jit`, plugged into `explain.Saliency` so the
scaling and caching around it are cnnkit's. XLA on the CPU is deterministic without a switch. TensorFlow is
kept out of the JAX process, as on a machine without it (`keras.utils.set_random_seed` imports it whenever it is
installed, whatever the backend: 3–4 s and about 300 MB; `--allow-tensorflow` lets it in). As a check, the
JAX process also loads the weights the TensorFlow process trained and reports how far its probabilities and
Grad-CAM map are from TensorFlow's on the same image.

JAX is not in requirements*.txt: give an interpreter that has it (a virtual environment that sees the system
packages), else only TensorFlow is measured:

    python -m venv --system-site-packages /tmp/jaxenv && /tmp/jaxenv/bin/pip install "jax[cpu]"
    nice -n 10 python -u bench/bench_backend.py --jax-python /tmp/jaxenv/bin/python
    nice -n 10 python -u bench/bench_backend.py --jax-python /tmp/jaxenv/bin/python --rounds 2  # TF, JAX, TF, JAX
    nice -n 10 python -u bench/bench_backend.py --jax-python /tmp/jaxenv/bin/python --quick   # 1 job, 1 epoch
"""

from __future__ import annotations

import argparse
import functools
import importlib.abc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
RESULT = "RESULT "      # the child's last line: its figures as JSON
INSTALL = ("JAX cannot be imported by {python}: make an interpreter that has it with `python -m venv "
           "--system-site-packages /tmp/jaxenv && /tmp/jaxenv/bin/pip install 'jax[cpu]'` and pass "
           "`--jax-python /tmp/jaxenv/bin/python`; measuring TensorFlow only.")


def status_mb(key: str) -> float:
    """A line of /proc/self/status in MB: VmRSS (resident now) or VmHWM (the peak so far)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- the child: one backend, in its own process --------------------------------------------------------
def child(args) -> None:
    if os.environ.get("KERAS_BACKEND") == "jax" and not args.allow_tensorflow:
        sys.meta_path.insert(0, _NoTensorFlow())
    start = time.perf_counter()
    import keras

    out: dict = {"import_s": time.perf_counter() - start, "import_rss_mb": status_mb("VmRSS"),
                 "backend": keras.backend.backend()}
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    import numpy as np
    from bench_training import epoch_clock, rates

    from cnnkit import datasets, presets, training

    jax_side = out["backend"] == "jax"
    if not jax_side:
        training.deterministic_ops()     # as every job does on TensorFlow
    ds = datasets.offline_sample()
    lecture = presets.get(presets.LECTURE, ds.image_shape, ds.num_classes)
    h = lecture.hyper_for(len(ds.y_train)).replace(seed=args.seed, epochs=args.epochs)
    say(f"{out['backend']}: import keras {out['import_s']:.2f} s, RSS {out['import_rss_mb']:.0f} MB; "
        f"lecture job: {h.describe()}")

    model, job = lecture_job(lecture.spec, ds, h, epoch_clock)
    out.update({f"job_{k}": v for k, v in job.items()}, job_peak_mb=status_mb("VmHWM"))
    say(f"{out['backend']}: one lecture job {job['job_s']:.1f} s (first epoch {job['first_epoch_s']:.2f} s), "
        f"test accuracy {job['accuracy']:.2%}, peak RSS {out['job_peak_mb']:.0f} MB")

    image = ds.x_test[0].astype("float32") / 255
    make_forward, make_saliency = (JaxForward, jax_saliency) if jax_side else (tf_predictor, tf_saliency)
    forward, figures = timed("predict", lambda: make_forward(model, ds.class_names), lambda f: f.predict(image), 50)
    out.update(figures)
    saliency, figures = timed("gradcam", lambda: make_saliency(model), lambda s: s(image), 20)
    out.update(figures)
    answer = forward.predict(image)
    out.update(answer=answer.label, confidence=answer.confidence, method=saliency.method)
    say(f"{out['backend']}: prediction {out['predict_median_ms']:.2f} ms, Grad-CAM {out['gradcam_median_ms']:.2f} ms")

    more = []
    for i in range(args.jobs):
        keras.backend.clear_session()
        more.append(lecture_job(lecture.spec, ds, h.replace(seed=args.seed + 1 + i), epoch_clock)[1])
    seconds = [j["job_s"] for j in more]
    out.update(jobs=args.jobs, jobs_s=sum(seconds), jobs_per_minute=60 * args.jobs / sum(seconds),
               jobs_peak_mb=status_mb("VmHWM"),
               **{f"jobs_{k}": statistics.mean(j[k] for j in more) for k in ("cpu_s", "build_s", "first_epoch_s")})
    say(f"{out['backend']}: {args.jobs} jobs in a row " + ", ".join(f"{s:.1f}" for s in seconds)
        + f" s: {out['jobs_per_minute']:.1f} jobs a minute, peak RSS {out['jobs_peak_mb']:.0f} MB")

    out["fast_images_s"], out["fast_images_cpu_s"] = fast_epoch(ds, h, epoch_clock, rates)
    say(f"{out['backend']}: fast preset {out['fast_images_s']:.0f} images a second")
    out.update(tensorflow_loaded="tensorflow" in sys.modules, peak_mb=status_mb("VmHWM"))

    weights, heat, probs = (Path(args.exchange) / n for n in ("tf.weights.h5", "tf_heat.npy", "tf_probs.npy"))
    if not jax_side:
        model.save_weights(weights)
        np.save(heat, saliency(image).heat)
        np.save(probs, answer.probabilities)
    elif weights.exists():      # the same weights through JAX's code: how far from TensorFlow's answers?
        keras.backend.clear_session()
        same = lecture.spec.to_keras()
        same.load_weights(weights)
        out["check_heat"] = float(np.abs(jax_saliency(same)(image).heat - np.load(heat)).max())
        out["check_probs"] = float(np.abs(JaxForward(same, ds.class_names).predict(image).probabilities
                                          - np.load(probs)).max())
    print(RESULT + json.dumps(out), flush=True)


class _NoTensorFlow(importlib.abc.MetaPathFinder):
    """TensorFlow kept out of the JAX process, as on a machine without it: `keras.utils.set_random_seed` imports
    TensorFlow whenever it is installed, whatever the backend (3–4 s and about 300 MB)."""

    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(f"No module named {name!r} (kept out by bench_backend.py)", name=name)
        return None


def say(line: str) -> None:
    print("  " + line, flush=True)


def lecture_job(spec, ds, h, epoch_clock) -> tuple:
    """One job as a worker trains it (a fresh model, Batches, fit, evaluate), without the progress callback."""
    import keras

    from cnnkit import training

    start, cpu = time.perf_counter(), time.process_time()
    train_idx, val_idx = training.split_indices(ds.y_train, h)
    keras.utils.set_random_seed(h.seed)
    model = spec.to_keras()
    steps = h.epochs * math.ceil(len(train_idx) / h.batch_size)
    model.compile(optimizer=h.make_optimizer(total_steps=steps), loss=h.loss, metrics=["accuracy"])
    built = time.perf_counter()
    kw = dict(num_classes=ds.num_classes, one_hot=h.labels == "one_hot")
    train = training.batches(ds.x_train, ds.y_train, train_idx, h.batch_size, shuffle=True, seed=h.seed,
                             augment=h.augment, **kw)
    val = training.batches(ds.x_train, ds.y_train, val_idx, h.batch_size, **kw)
    clock = epoch_clock()
    model.fit(train, validation_data=val, epochs=h.epochs, callbacks=[clock, heap_tuner()], verbose=0,
              shuffle=False)
    fitted = time.perf_counter()
    test = training.batches(ds.x_test, ds.y_test, range(len(ds.y_test)), max(h.batch_size, 256), **kw)
    result = model.evaluate(test, verbose=0, return_dict=True, callbacks=[heap_tuner()])
    end = time.perf_counter()
    later = [b - a for a, b in zip(clock.wall, clock.wall[1:], strict=False)]
    return model, {"build_s": built - start, "first_epoch_s": clock.wall[0] - built,
                   "later_epoch_s": statistics.mean(later) if later else float("nan"), "evaluate_s": end - fitted,
                   "job_s": end - start, "cpu_s": time.process_time() - cpu, "accuracy": result["accuracy"],
                   "train_images": len(train_idx), "val_images": len(val_idx)}


def heap_tuner():
    """`cnnkit.heap.tune` after the first batch of each pass, as a job's callback does."""
    import keras

    from cnnkit import heap

    class HeapTuner(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                heap.tune()

        on_test_batch_end = on_train_batch_end

    return HeapTuner()


def fast_epoch(ds, lecture_hyper, epoch_clock, rates) -> tuple[float, float]:
    """The fast preset, two epochs over the lecture job's 3,600 training images: (images a second, per CPU s)
    in the second epoch."""
    import keras

    from cnnkit import presets, training

    p = presets.get(presets.FAST, ds.image_shape, ds.num_classes)
    h = p.hyper_for(len(ds.y_train)).replace(epochs=2, seed=lecture_hyper.seed)
    train_idx, _ = training.split_indices(ds.y_train, lecture_hyper)
    keras.backend.clear_session()
    keras.utils.set_random_seed(h.seed)
    model = p.spec.to_keras()
    model.compile(optimizer=h.make_optimizer(total_steps=2 * math.ceil(len(train_idx) / h.batch_size)),
                  loss=h.loss, metrics=["accuracy"])
    clock = epoch_clock()
    train = training.batches(ds.x_train, ds.y_train, train_idx, h.batch_size, num_classes=ds.num_classes,
                             one_hot=h.labels == "one_hot", shuffle=True, seed=h.seed, augment=h.augment)
    model.fit(train, epochs=2, callbacks=[clock, heap_tuner()], verbose=0, shuffle=False)
    return rates(clock, len(train_idx))


def timed(name: str, make, call, repeat: int) -> tuple:
    """(what `make` made, {first call with the making and its trace, median of `repeat` after warm-up} in ms)."""
    start = time.perf_counter()
    f = make()
    call(f)
    first = time.perf_counter() - start
    for _ in range(5):
        call(f)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        call(f)
        times.append(time.perf_counter() - t)
    return f, {f"{name}_first_ms": 1000 * first, f"{name}_median_ms": 1000 * statistics.median(times)}


# --- the backend-specific pieces -----------------------------------------------------------------------
def tf_predictor(model, class_names):
    from cnnkit import predict

    return predict.Predictor(model, class_names)


def tf_saliency(model):
    from cnnkit import explain

    return explain.Saliency(model)


class JaxForward:
    """The Draw page's one-image prediction on JAX: `model.stateless_call` jitted for a (1, H, W, C) input,
    the answer made as `predict.Predictor.predict` makes it."""

    def __init__(self, model, class_names) -> None:
        import jax

        self.class_names = tuple(class_names)
        self.variables = ([v.value for v in model.trainable_variables],
                          [v.value for v in model.non_trainable_variables])
        self.forward = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])

    def predict(self, x):
        import numpy as np

        from cnnkit import predict

        out = self.forward(*self.variables, np.asarray(x, dtype=np.float32)[None])
        return predict.Prediction(predict._softmax_if_needed(np.asarray(out)[0]), self.class_names)


@functools.cache
def _jax_saliency_class():
    from cnnkit import explain

    class JaxSaliency(explain.Saliency):
        """`explain.Saliency` with its gradient in JAX, for a Sequential model whose last Conv2D block is
        followed by a Dense softmax (the presets'): only `__init__` differs, the map's scaling is cnnkit's."""

        def __init__(self, model) -> None:
            import jax
            import jax.numpy as jnp
            import numpy as np

            layers = list(model.layers)
            last = explain.conv_layers(model)[-1]
            after = explain.following_layers(model, last)
            cut = layers.index(after[-1] if after else last)
            final = layers[-1]     # explained through its logits, as explain.Saliency does
            kernel, bias = jnp.asarray(np.asarray(final.kernel)), jnp.asarray(np.asarray(final.bias))
            self.model, self.input_shape = model, tuple(int(s) for s in model.input_shape[1:])
            self.layer, self.method = last.name, f"Grad-CAM on {last.name}"

            def scores(features):
                h = features
                for layer in layers[cut + 1:-1]:
                    h = layer(h, training=False)
                return (h @ kernel + bias)[0]

            def explain_one(x, k):
                features = x
                for layer in layers[:cut + 1]:
                    features = layer(features, training=False)
                def target(f):
                    s = scores(f)
                    return s[k], s

                (_, s), grads = jax.value_and_grad(target, has_aux=True)(features)
                return jax.nn.relu(jnp.sum(grads[0] * features[0], axis=-1)), s

            self._explain = jax.jit(explain_one)
            self._tf = SimpleNamespace(constant=jnp.asarray, int32=jnp.int32)   # what Saliency's methods ask of it
            self._answer = None

    return JaxSaliency


def jax_saliency(model):
    """A JaxSaliency for `model` (the class is made on first use: it needs cnnkit.explain)."""
    return _jax_saliency_class()(model)


# --- the parent: both backends, the table ------------------------------------------------------------
ROWS = [   # (key, what, format)
    ("import_s", "import keras (+ backend), s", "{:.2f}"),
    ("import_rss_mb", "RSS right after the import, MB", "{:.0f}"),
    ("job_build_s", "lecture job: build + compile, s", "{:.2f}"),
    ("job_first_epoch_s", "  first epoch (trace/compile, validation), s", "{:.2f}"),
    ("job_later_epoch_s", "  later epochs (mean, validation), s", "{:.2f}"),
    ("job_evaluate_s", "  evaluate on 1,000 test digits, s", "{:.2f}"),
    ("job_job_s", "  whole job, s", "{:.2f}"),
    ("job_cpu_s", "  whole job, CPU s", "{:.2f}"),
    ("job_accuracy", "  test accuracy", "{:.2%}"),
    ("job_peak_mb", "  peak RSS (VmHWM) after it, MB", "{:.0f}"),
    ("jobs_per_minute", "more jobs in a row (--jobs): jobs a minute", "{:.2f}"),
    ("jobs_cpu_s", "  CPU s a job", "{:.2f}"),
    ("jobs_build_s", "  build + compile a job, s", "{:.2f}"),
    ("jobs_first_epoch_s", "  first epoch a job (its trace/compile), s", "{:.2f}"),
    ("jobs_peak_mb", "  peak RSS after them, MB", "{:.0f}"),
    ("fast_images_s", "fast preset, 2nd epoch: images a second", "{:.0f}"),
    ("fast_images_cpu_s", "  images a CPU second", "{:.0f}"),
    ("predict_first_ms", "prediction, first call (trace), ms", "{:.1f}"),
    ("predict_median_ms", "prediction, median of 50, ms", "{:.2f}"),
    ("gradcam_first_ms", "Grad-CAM, first call (trace), ms", "{:.1f}"),
    ("gradcam_median_ms", "Grad-CAM, median of 20, ms", "{:.2f}"),
    ("peak_mb", "peak RSS of the whole process, MB", "{:.0f}"),
]


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def run_side(backend: str, python: str, args, exchange: str) -> dict | None:
    env = {**os.environ, "KERAS_BACKEND": backend, "CNNKIT_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [python, "-u", __file__, "--child", "--jobs", str(args.jobs), "--epochs", str(args.epochs),
           "--seed", str(args.seed), "--exchange", exchange] + (["--allow-tensorflow"] * args.allow_tensorflow)
    print(f"{backend} ({python})  [{load()}]", flush=True)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    result = None
    for line in proc.stdout:
        if line.startswith(RESULT):
            result = json.loads(line[len(RESULT):])
        else:
            print(line, end="", flush=True)
    if proc.wait() != 0 or result is None:
        print(f"  the {backend} process failed (exit {proc.returncode}); its error is above")
    return result


def jax_importable(python: str) -> bool:
    probe = subprocess.run([python, "-c", "import jax"], capture_output=True)
    return probe.returncode == 0


def median_side(results: list[dict]) -> dict | None:
    """Each figure's median over the rounds (the words from the last round)."""
    if not results:
        return None
    numbers = {k: statistics.median(r[k] for r in results) for k, v in results[-1].items()
               if isinstance(v, float) and all(k in r for r in results)}
    return {**results[-1], **numbers}


def table(rounds: dict[str, list[dict]]) -> None:
    sides = {name: median_side(results) for name, results in rounds.items()}
    tf, jx = sides.get("tensorflow"), sides.get("jax")
    n = max(len(r) for r in rounds.values())
    what = f"what ({'median of ' + str(n) + ' rounds' if n > 1 else 'one round'}: noisy, see the load)"
    print(f"\n{what:<46} {'TensorFlow':>12} {'JAX':>12} {'JAX ÷ TF':>9}")
    for key, what, fmt in ROWS:
        a, b = (s.get(key) if s else None for s in (tf, jx))
        ratio = f"{b / a:.2f}" if a and b is not None else ""
        print(f"{what:<46} {fmt.format(a) if a is not None else '—':>12} "
              f"{fmt.format(b) if b is not None else '—':>12} {ratio:>9}")
    for name, s in sides.items():
        if s:
            print(f"{name}: the digit read as {s['answer']} ({s['confidence']:.1%}); {s['method']}; "
                  f"{s['jobs']} jobs in {s['jobs_s']:.1f} s; TensorFlow loaded: {s['tensorflow_loaded']}")
    if jx and "check_heat" in jx:
        print(f"JAX's code on TensorFlow's trained weights: probabilities within {jx['check_probs']:.1e}, "
              f"Grad-CAM map within {jx['check_heat']:.1e} of TensorFlow's (maps scaled to [0, 1])")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jax-python", default=sys.executable, help="an interpreter that can import jax "
                    "(default: this one)")
    ap.add_argument("--jobs", type=int, default=4, help="lecture jobs in a row for the capacity figure (4)")
    ap.add_argument("--epochs", type=int, default=3, help="the lecture job's epochs (its recipe's 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=1, help="TF, JAX, TF, JAX …: the table shows medians (1)")
    ap.add_argument("--quick", action="store_true", help="a trial: 1 job in a row, 1 epoch")
    ap.add_argument("--allow-tensorflow", action="store_true", help="let the JAX process import TensorFlow "
                    "(Keras's set_random_seed does when it is installed; kept out by default)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--exchange", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.jobs, args.epochs = 1, 1
    if args.child:
        child(args)
        return
    print(f"Keras on TensorFlow and on JAX, side by side; each in a fresh process  [{load()} at the start]")
    rounds: dict[str, list[dict]] = {"tensorflow": [], "jax": []}
    with_jax = jax_importable(args.jax_python)
    if not with_jax:
        print(INSTALL.format(python=args.jax_python))
    for r in range(args.rounds):     # TF, JAX, TF, JAX …: a busy neighbour slows both alike
        with tempfile.TemporaryDirectory(prefix="cnnkit-backend-") as exchange:
            for backend, python in (("tensorflow", sys.executable), ("jax", args.jax_python))[:1 + with_jax]:
                print(f"round {r + 1} of {args.rounds}: ", end="")
                result = run_side(backend, python, args, exchange)
                if result:
                    rounds[backend].append(result)
    table(rounds)
    print(f"[{load()} at the end]")


if __name__ == "__main__":
    main()
