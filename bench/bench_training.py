"""Training benchmarks, each measured side by side in one run (not a test).

1. Throughput: a TrainingJob, with all its streaming (batch progress under a lock,
   epoch events, NaN guard, uint8 → float per batch), against plain `model.fit` on
   float32 arrays: same model, data, batch size and seed. Images per second over the
   epochs after the first (the first one traces the graph). Target ≥ 0.97.
2. Time to accuracy: our fast preset against the lessons' best recipe (Lab C: the
   dropout CNN with Adadelta at learning rate 1.0, batch 128), trained epoch by epoch
   on the same pipeline until test accuracy reaches the target. Only training is timed.
   Quick: the offline 5,000-digit sample, target 98 %. `--full`: all of Fashion-MNIST,
   target 92.5 % (many minutes on 2 cores; run it once).
3. Memory: the process's resident memory while 1 and then 3 jobs train on full
   Fashion-MNIST (each stopped after a few dozen batches): no job copies the dataset.

    python bench/bench_training.py            # about 2 minutes on an idle 2-core machine
    python bench/bench_training.py --full     # adds Fashion-MNIST time to accuracy
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from cnnkit import datasets, presets, training  # noqa: E402
from cnnkit.training import Hyper, TrainingJob  # noqa: E402

LESSON = "two_conv_dropout"


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- 1. throughput -------------------------------------------------------------------------
def epoch_clock():
    """A Keras callback noting wall and process CPU time at each epoch end."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.wall: list[float] = []
            self.cpu: list[float] = []

        def on_epoch_end(self, epoch, logs=None):
            self.wall.append(time.perf_counter())
            self.cpu.append(time.process_time())

    return EpochClock()


def rates(clock, n: int) -> tuple[float, float]:
    """Images per wall second and per CPU second over the epochs after the first (which traces the graph)."""
    epochs = len(clock.wall) - 1
    return epochs * n / (clock.wall[-1] - clock.wall[0]), epochs * n / (clock.cpu[-1] - clock.cpu[0])


def plain_fit_throughput(spec, ds, hyper: Hyper) -> tuple[float, float]:
    import keras

    keras.utils.set_random_seed(hyper.seed)
    model = spec.to_keras()
    model.compile(optimizer=training.make_optimizer(hyper.optimizer, hyper.learning_rate, hyper.momentum),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x = datasets.to_float(ds.x_train)   # the plain way: one float copy, then fit
    clock = epoch_clock()
    model.fit(x, ds.y_train, batch_size=hyper.batch_size, epochs=hyper.epochs, shuffle=True, verbose=0,
              callbacks=[clock])
    return rates(clock, len(x))


def job_throughput(spec, ds, hyper: Hyper) -> tuple[float, float]:
    clock = epoch_clock()
    job = TrainingJob(spec, ds, hyper, save=False, extra_callbacks=[clock])
    job.start()
    snap = job.wait()
    assert snap.state is training.JobState.FINISHED, snap.message
    return rates(clock, len(ds.y_train))


def bench_throughput(ds, epochs: int, rounds: int) -> None:
    p = presets.get(presets.FAST, ds.image_shape, ds.num_classes)
    hyper = Hyper.from_preset(p, epochs=epochs, validation_split=0.0, seed=0)
    plain, ours = [], []
    print(f"Throughput on {ds.title} ({len(ds.y_train):,} images, batch {hyper.batch_size}, {p.title}), "
          "images per second of wall time (and per second of this process's CPU time):")
    for r in range(rounds):  # interleaved, so a busy neighbour slows both alike
        plain.append(plain_fit_throughput(p.spec, ds, hyper))
        ours.append(job_throughput(p.spec, ds, hyper))
        print(f"  round {r + 1}: plain fit {plain[-1][0]:6.0f} ({plain[-1][1]:4.0f} per CPU s)   "
              f"TrainingJob {ours[-1][0]:6.0f} ({ours[-1][1]:4.0f} per CPU s)   ratio {ours[-1][0] / plain[-1][0]:.3f}")
    for what, pick in (("best", max), ("median", statistics.median)):
        pw, ow = pick(x[0] for x in plain), pick(x[0] for x in ours)
        pc, oc = pick(x[1] for x in plain), pick(x[1] for x in ours)
        print(f"  {what + ':':<8} plain fit {pw:6.0f} img/s   TrainingJob {ow:6.0f} img/s   ratio {ow / pw:.3f}"
              f"   (per CPU second: ratio {oc / pc:.3f})   target ≥ 0.97")


# --- 2. time to accuracy -------------------------------------------------------------------------
def time_to_accuracy(preset, ds, target: float, max_epochs: int, augment: bool = False,
                     budget: float | None = None) -> tuple[float | None, int, float, float]:
    """(seconds of training until test accuracy ≥ target or None, epochs, best accuracy, seconds trained).

    Training stops early once `budget` seconds are spent without reaching the target.
    """
    import keras

    h = Hyper.from_preset(preset, validation_split=0.0, seed=0)
    keras.utils.set_random_seed(h.seed)
    model = preset.spec.to_keras()
    model.compile(optimizer=training.make_optimizer(h.optimizer, h.learning_rate, h.momentum),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    kw = dict(num_classes=ds.num_classes)
    train = training.batches(ds.x_train, ds.y_train, np.arange(len(ds.y_train)), h.batch_size, shuffle=True,
                             seed=h.seed, augment=augment or h.augment, **kw)
    test = training.batches(ds.x_test, ds.y_test, np.arange(len(ds.y_test)), 500, **kw)
    trained, best = 0.0, 0.0
    label = preset.name + (" +aug" if augment else "")
    for epoch in range(max_epochs):
        t = time.perf_counter()
        model.fit(train, epochs=epoch + 1, initial_epoch=epoch, verbose=0, shuffle=False)
        trained += time.perf_counter() - t
        acc = model.evaluate(test, verbose=0, return_dict=True)["accuracy"]
        best = max(best, acc)
        print(f"    {label:<22} epoch {epoch + 1:2d}: test accuracy {acc:.4f}  ({trained:6.1f} s trained)", flush=True)
        if acc >= target:
            return trained, epoch + 1, acc, trained
        if budget is not None and trained > budget:
            break
    return None, epoch + 1, best, trained


def bench_time_to_accuracy(ds, target: float, max_epochs: int, with_augmentation: bool) -> None:
    fast = presets.get(presets.FAST, ds.image_shape, ds.num_classes)
    lesson = presets.get(LESSON, ds.image_shape, ds.num_classes)
    print(f"Time to {target:.1%} test accuracy on {ds.title} ({len(ds.y_train):,} train / {len(ds.y_test):,} test), "
          f"training time only, at most {max_epochs} epochs:", flush=True)
    rows = [(f"{fast.title}", time_to_accuracy(fast, ds, target, max_epochs))]
    if with_augmentation:
        rows.append((f"{fast.title} + augmentation",
                     time_to_accuracy(fast, ds, target, max_epochs, augment=True)))
    reached = [r[0] for _, r in rows if r[0] is not None]
    # The lesson only has to be beaten: once it has trained 2× longer than our slowest success, stop it.
    budget = 2 * max(reached) if reached else None
    rows.append((f"{lesson.title} (Adadelta 1.0, batch 128)",
                 time_to_accuracy(lesson, ds, target, max_epochs, budget=budget)))
    for title, (secs, ep, acc, trained) in rows:
        got = f"{secs:6.1f} s in {ep:2d} epochs" if secs is not None else f"not reached: {ep} epochs, {trained:.0f} s"
        print(f"  {title:<52} {got}   best test accuracy {acc:.2%}")
    lesson_secs, _, _, lesson_trained = rows[-1][1]
    for title, (secs, *_rest) in rows[:-1]:
        if secs is None:
            print(f"  {title}: did not reach {target:.1%}")
        elif lesson_secs is not None:
            print(f"  {title}: ratio to the lesson's wall time {secs / lesson_secs:.2f} (target < 1)")
        else:
            print(f"  {title}: ratio to the lesson's wall time < {secs / lesson_trained:.2f} "
                  f"(the lesson had not reached {target:.1%} after {lesson_trained:.0f} s; target < 1)")


# --- 3. memory -------------------------------------------------------------------------------------
def peak_rss_while(jobs: list[TrainingJob], batches: int) -> float:
    peak = rss_mb()
    for j in jobs:
        j.start()
    deadline = time.time() + 600
    while time.time() < deadline:
        peak = max(peak, rss_mb())
        snaps = [j.snapshot() for j in jobs]
        if all(s.epoch * s.batches + s.batch >= batches or not s.active for s in snaps):
            break
        time.sleep(0.1)
    peak = max(peak, rss_mb())
    for j in jobs:
        j.stop()
    for j in jobs:
        j.wait()
    return peak


def bench_memory(fashion, batches: int) -> None:
    p = presets.get(presets.FAST, fashion.image_shape, fashion.num_classes)
    hyper = Hyper.from_preset(p, epochs=1)
    import tensorflow as tf  # noqa: F401  (counted in the baseline, as in a server that has trained before)

    base = rss_mb()
    one = peak_rss_while([TrainingJob(p.spec, fashion, hyper, save=False)], batches)
    three = peak_rss_while([TrainingJob(p.spec, fashion, hyper, save=False) for _ in range(3)], batches)
    u8 = (fashion.x_train.nbytes + fashion.x_test.nbytes) / 2**20
    print(f"Memory while training on {fashion.title} ({len(fashion.y_train):,} train images; the uint8 arrays "
          f"are {u8:.0f} MB, a float32 copy would be {4 * u8:.0f} MB per job):")
    print(f"  resident before training {base:7.0f} MB")
    print(f"  peak with 1 job          {one:7.0f} MB  (+{one - base:.0f} MB: the shared uint8 tensor, the model, "
          "TensorFlow's buffers)")
    print(f"  peak with 3 jobs         {three:7.0f} MB  (+{three - base:.0f} MB; a float32 copy per job would have "
          f"added {3 * 4 * u8:.0f} MB, a uint8 copy per job {3 * u8:.0f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="also time to 92.5 %% on all of Fashion-MNIST (slow)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved throughput rounds (default 2)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per throughput run (default 3)")
    ap.add_argument("--max-epochs", type=int, default=8, help="epochs at most on the digit sample (default 8)")
    ap.add_argument("--augment", action="store_true", help="also time the fast preset with augmentation")
    ap.add_argument("--skip", nargs="*", default=[], choices=["throughput", "accuracy", "memory"])
    args = ap.parse_args()
    t0 = time.time()
    fashion = None
    if "memory" not in args.skip or args.full:
        fashion = datasets.load("fashion_mnist")
        print(f"(Fashion-MNIST from {fashion.source_text})")
    if "memory" not in args.skip:
        bench_memory(fashion, batches=40)   # first, so the baseline is TensorFlow plus the dataset, nothing else
    sample = datasets.offline_sample()
    if "throughput" not in args.skip:
        bench_throughput(sample, args.epochs, args.rounds)
    if "accuracy" not in args.skip:
        bench_time_to_accuracy(sample, 0.98, max_epochs=args.max_epochs, with_augmentation=args.augment)
    if args.full:
        bench_time_to_accuracy(fashion, 0.925, max_epochs=12, with_augmentation=args.augment)
    print(f"(benchmark took {time.time() - t0:.0f} s; {threading.active_count()} threads at the end)")


if __name__ == "__main__":
    main()
