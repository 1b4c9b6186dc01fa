"""Training benchmarks, each measured side by side in one run (not a test).

1. Throughput: a TrainingJob, with all its streaming (batch progress under a lock,
   epoch events, NaN guard, uint8 → float per batch), against plain `model.fit` on
   float32 arrays: same model, data, batch size and seed. Images per second over the
   epochs after the first (the first one traces the graph). Target ≥ 0.97.
2. Time to accuracy: our fast preset against the lessons' best recipe (Lab C: the
   dropout CNN with Adadelta at learning rate 1.0, batch 128), each trained with its
   own suggested settings through a TrainingJob (the app's code path, all training
   images) and measured on the test set after every epoch, off the clock, until it
   reaches the target. Only training is timed. Lab C keeps training past its recipe's
   10 epochs (same settings) until it reaches the target or has trained `--budget` (2)
   times our slowest time; in that case the ratio is an upper bound. Quick: the offline 5,000-digit sample,
   target 98 %, ours with two seeds. `--full`: all of Fashion-MNIST, target 92.5 %
   (about 10 minutes on 2 cores; run it once).
3. Memory: the process's resident memory while 1 and then 3 jobs train on full
   Fashion-MNIST (each stopped after a few dozen batches): no job copies the dataset.

4. `--mnist60k` (only this part): full MNIST from ../shared/data/mnist_train60k.npz, 10,000 of its images held
   out as the test set. The matmul peak (GFLOP per second and per CPU-second); every preset's training speed
   through a TrainingJob (images per second and per CPU-second, seconds per epoch, share of the matmul peak);
   time to 99.0 % for the lecture preset, the fast preset and Lab C side by side (seconds, CPU-seconds, ratio
   to Lab C); the lecture preset's small-data recipe to 98 % on the offline sample. `--fashion` adds the
   lecture preset on Fashion-MNIST given 30 s and 90 s; `--write-costs` writes cnnkit/preset_costs.json, the
   measured columns of the architecture page's cost table; `--pipeline` adds TrainingJob vs plain fit on it.

    python bench/bench_training.py            # about 4 minutes on an idle 2-core machine
    python bench/bench_training.py --full     # adds Fashion-MNIST time to accuracy (10–15 minutes)
    python bench/bench_training.py --mnist60k --fashion --write-costs   # 40 minutes on the loaded machine
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from cnnkit import datasets, presets  # noqa: E402
from cnnkit.hyper import Hyper  # noqa: E402
from cnnkit.progress import JobState  # noqa: E402
from cnnkit.training import TrainingJob  # noqa: E402

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
    # The same optimizer and learning-rate schedule as the job's, so only the streaming differs.
    steps = hyper.epochs * -(-len(ds.y_train) // hyper.batch_size)
    model.compile(optimizer=hyper.make_optimizer(total_steps=steps),
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
    assert snap.state is JobState.FINISHED, snap.message
    return rates(clock, len(ds.y_train))


def bench_throughput(ds, epochs: int, rounds: int, preset_name: str = presets.FAST) -> None:
    p = presets.get(preset_name, ds.image_shape, ds.num_classes)
    hyper = p.hyper.replace(epochs=epochs, validation_split=0.0, seed=0)
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
def accuracy_clock(x_test, y_test, target: float, budget: float | None, label: str):
    """A Keras callback that measures test accuracy at every epoch end, outside the training clock.

    `seconds[i]` is the training time (wall clock from the start of fit, minus the time spent
    measuring) at the end of epoch i + 1. Training stops once the target is reached, or once
    `budget` seconds of training have passed without reaching it.
    """
    import keras

    class AccuracyClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self.cpu: list[float] = []
            self.accuracy: list[float] = []
            self.reached_at: float | None = None
            self.reached_cpu: float | None = None
            self._start = self._cpu_start = 0.0
            self._measuring = self._measuring_cpu = 0.0

        def on_train_begin(self, logs=None):
            self._start, self._cpu_start = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            t, c = time.perf_counter(), time.process_time()
            trained = t - self._start - self._measuring
            self.cpu.append(c - self._cpu_start - self._measuring_cpu)
            probs = self.model.predict(x_test, batch_size=500, verbose=0)
            acc = float(np.mean(np.argmax(probs, axis=1) == y_test))
            self.seconds.append(trained)
            self.accuracy.append(acc)
            print(f"    {label:<28} epoch {epoch + 1:2d}: test accuracy {acc:.2%}  ({trained:6.1f} s trained)",
                  flush=True)
            if acc >= target and self.reached_at is None:
                self.reached_at, self.reached_cpu = trained, self.cpu[-1]
                self.model.stop_training = True
            elif budget is not None and trained >= budget:
                self.model.stop_training = True
            self._measuring += time.perf_counter() - t
            self._measuring_cpu += time.process_time() - c

    return AccuracyClock()


@dataclass
class Race:
    label: str
    seed: int
    reached_at: float | None      # training seconds when test accuracy first reached the target
    epochs: int                   # epochs trained
    best: float                   # best test accuracy seen
    trained: float                # training seconds in all
    planned_epochs: int
    reached_cpu: float | None = None   # this process's CPU seconds of training at that point
    trained_cpu: float = 0.0


def time_to_accuracy(preset, ds, target: float, seed: int, label: str, budget: float | None = None,
                     epochs: int | None = None, **overrides) -> Race:
    """Train `preset` with its own suggested settings (and `overrides`) through a TrainingJob (the app's code
    path, all training images, no validation split) until test accuracy reaches `target`."""
    hyper = preset.hyper_for(len(ds.y_train)).replace(validation_split=0.0, seed=seed, epochs=epochs, **overrides)
    x_test = datasets.to_float(ds.x_test)
    clock = accuracy_clock(x_test, ds.y_test, target, budget, label)
    job = TrainingJob(preset.spec, ds, hyper, save=False, extra_callbacks=[clock])
    job.start()
    snap = job.wait()
    assert snap.state is JobState.FINISHED, snap.message
    return Race(label, seed, clock.reached_at, len(clock.accuracy), max(clock.accuracy, default=0.0),
                clock.seconds[-1] if clock.seconds else 0.0, hyper.epochs, clock.reached_cpu,
                clock.cpu[-1] if clock.cpu else 0.0)


def bench_time_to_accuracy(ds, target: float, seeds: list[int], budget_factor: float) -> None:
    fast = presets.get(presets.FAST, ds.image_shape, ds.num_classes)
    lesson = presets.get(LESSON, ds.image_shape, ds.num_classes)
    fh, lh = fast.hyper, lesson.hyper
    print(f"Time to {target:.1%} test accuracy on {ds.title} ({len(ds.y_train):,} train / {len(ds.y_test):,} test); "
          f"training time only (test accuracy is measured after every epoch, off the clock):", flush=True)
    print(f"  ours: {fast.title}, {fast.spec.summary().total_params:,} parameters, Adam {fh.learning_rate:g} "
          f"{fh.lr_schedule}, batch {fh.batch_size}, {fh.epochs} epochs planned")
    print(f"  Lab C: {lesson.title}, {lesson.spec.summary().total_params:,} parameters, Adadelta "
          f"{lh.learning_rate:g}, batch {lh.batch_size}, {lh.epochs} epochs planned", flush=True)
    ours = [time_to_accuracy(fast, ds, target, seed, f"ours (seed {seed})") for seed in seeds]
    reached = [r.reached_at for r in ours if r.reached_at is not None]
    # Lab C gets as many epochs as it needs (its recipe says 10; it keeps going past them, same settings)
    # until it reaches the target or has trained budget_factor × our slowest time.
    budget = budget_factor * max(reached) if reached else None
    lab = time_to_accuracy(lesson, ds, target, seeds[0], f"Lab C (seed {seeds[0]})", budget=budget,
                           epochs=max(lh.epochs, 200) if budget is not None else None)
    print(f"  {'run':<24}{'time to ' + format(target, '.1%'):>16}{'epochs':>8}{'best test acc':>15}"
          f"{'trained':>10}")
    for r in [*ours, lab]:
        got = f"{r.reached_at:.1f} s" if r.reached_at is not None else "not reached"
        print(f"  {r.label:<24}{got:>16}{f'{r.epochs}/{r.planned_epochs}':>8}{r.best:>15.2%}{r.trained:>9.1f}s")
    if not reached:
        print(f"  ours did not reach {target:.1%} (best {max(r.best for r in ours):.2%})")
        return
    slowest = max(reached)
    if len(reached) < len(ours):
        print(f"  ours reached {target:.1%} with {len(reached)} of {len(ours)} seeds")
    if lab.reached_at is not None:
        print(f"  ratio ours / Lab C: {slowest / lab.reached_at:.2f} (slowest of our seeds; target < 1)")
    else:
        print(f"  Lab C not at {target:.1%} after {lab.trained:.0f} s and {lab.epochs} epochs (best {lab.best:.2%}): "
              f"ratio ours / Lab C < {slowest / lab.trained:.2f} (slowest of our seeds; target < 1)")


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
    hyper = p.hyper.replace(epochs=1)
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

# --- 4. the lecture preset and the cost of every preset (full MNIST) ------------------------------------------------
MNIST60K_CANDIDATES = ("../shared/data/mnist_train60k.npz", "../../shared/data/mnist_train60k.npz")
COSTS_NOTE = ("measured by bench/bench_training.py --mnist60k on the project's 2-core development machine "
              "(Intel Xeon, no GPU); load average {load} (above 2, other jobs shared the cores: treat the times "
              "as upper bounds)")



def full_mnist() -> datasets.Dataset | None:
    """The 60,000 MNIST training images (../shared/data/mnist_train60k.npz), 10,000 of them held out as the
    test set (a fixed seeded draw); None when the file is not there. Only benchmarks and slow tests read it."""
    root = Path(__file__).resolve().parent.parent
    env = os.environ.get("CNNKIT_MNIST60K")
    paths = [Path(env)] if env else [root / c for c in MNIST60K_CANDIDATES]
    path = next((p for p in paths if p.is_file()), None)
    if path is None:
        return None
    with np.load(path, allow_pickle=False) as d:
        x, y = d["x_train"][..., None], d["y_train"]
    order = np.random.default_rng(12345).permutation(len(y))
    test, train = order[:10_000], np.sort(order[10_000:])
    return datasets.Dataset("mnist", "MNIST (50,000 of the training images; 10,000 held out as test)",
                            x[train], y[train], x[test], y[test], datasets.DIGITS, "file", str(path))


def matmul_peak(n: int = 1024, seconds: float = 3.0) -> tuple[float, float]:
    """This machine's float32 matmul rate with TensorFlow's default threads: (GFLOP/s of wall time, per CPU s).

    The best of repeated 1024×1024 products over a few seconds: the peak a model's convolutions
    (also matrix products inside oneDNN) could at most reach here.
    """
    import tensorflow as tf

    a = tf.random.normal((n, n), seed=1)
    b = tf.random.normal((n, n), seed=2)
    tf.matmul(a, b).numpy()
    best_wall, best_cpu, end = 0.0, 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        w, c = time.perf_counter(), time.process_time()
        for _ in range(4):
            r = tf.matmul(a, b)
        r.numpy()
        w, c = time.perf_counter() - w, time.process_time() - c
        flops = 4 * 2 * n**3
        best_wall, best_cpu = max(best_wall, flops / w / 1e9), max(best_cpu, flops / max(c, 1e-9) / 1e9)
    return best_wall, best_cpu


def batch_clock(skip: int, count: int):
    """A Keras callback timing batches skip+1 … skip+count (wall and CPU), then stopping training."""
    import keras

    class BatchClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.wall = self.cpu = None

        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 == skip:
                self._w, self._c = time.perf_counter(), time.process_time()
            elif batch + 1 == skip + count:
                self.wall, self.cpu = time.perf_counter() - self._w, time.process_time() - self._c
                self.model.stop_training = True

    return BatchClock()


def preset_speeds(ds, peak: float, peak_cpu: float, batches: int = 40) -> dict[str, dict]:
    """Every preset's training speed through a TrainingJob (its own batch size and optimizer): images per second
    over `batches` batches after the first 8 (which build and trace), seconds per epoch of this dataset's
    training images, and the share of the matmul peak that 3 × forward FLOPs per image (forward + backward)
    reach. The share compares CPU-seconds with CPU-seconds (images per CPU-second against the matmul's GFLOP
    per CPU-second), so other jobs on a shared machine do not distort it as they distort wall time."""
    out = {}
    print(f"Training speed of every preset on {ds.title}, {batches} batches each after 8 warm-up batches "
          f"(matmul peak here: {peak:.0f} GFLOP/s, {peak_cpu:.0f} GFLOP per CPU-second):")
    print(f"  {'preset':<24}{'MFLOPs':>8}{'batch':>7}{'img/s':>8}{'img/CPU-s':>11}{'s/epoch':>9}"
          f"{'CPU-s/epoch':>13}{'of peak':>9}")
    for name in presets.names():
        p = presets.get(name, ds.image_shape, ds.num_classes)
        hyper = p.hyper.replace(validation_split=0.0, seed=0, epochs=1)
        clock = batch_clock(8, batches)
        job = TrainingJob(p.spec, ds, hyper, save=False, extra_callbacks=[clock])
        job.start()
        job.wait()
        n = batches * hyper.batch_size
        rate, cpu_rate = n / clock.wall, n / clock.cpu
        flops = p.spec.summary().flops
        share = cpu_rate * 3 * flops / (peak_cpu * 1e9)
        out[name] = {"images_per_second": round(rate, 1), "images_per_cpu_second": round(cpu_rate, 1),
                     "batch_size": hyper.batch_size, "mflops": round(flops / 1e6, 3), "peak_share": round(share, 4)}
        print(f"  {name:<24}{flops / 1e6:>8.2f}{hyper.batch_size:>7}{rate:>8.0f}{cpu_rate:>11.0f}"
              f"{len(ds.y_train) / rate:>9.1f}{len(ds.y_train) / cpu_rate:>13.1f}{share:>9.1%}", flush=True)
    return out


def bench_race99(ds, lab_budget: float) -> list[Race]:
    """Time to 99.0 % test accuracy: lecture vs fast vs Lab C, each with its own recipe, side by side."""
    print(f"Time to 99.0 % test accuracy on {ds.title}; training time only (wall and this process's CPU):",
          flush=True)
    races = []
    for name, label in ((presets.LECTURE, "lecture"), (presets.FAST, "fast"), (LESSON, "Lab C")):
        p = presets.get(name, ds.image_shape, ds.num_classes)
        lab = name == LESSON
        races.append(time_to_accuracy(p, ds, 0.99, 0, label, budget=lab_budget if lab else None,
                                      epochs=200 if lab else None))
    lab = races[-1]
    print(f"  {'run':<10}{'to 99.0 %':>12}{'CPU-s':>9}{'epochs':>8}{'best':>8}{'ratio to Lab C':>16}")
    for r in races:
        got = f"{r.reached_at:.1f} s" if r.reached_at is not None else "not reached"
        cpu = f"{r.reached_cpu:.0f}" if r.reached_cpu is not None else "—"
        if r.reached_at is None:
            ratio = "—"
        elif lab.reached_at is not None:
            ratio = f"{r.reached_at / lab.reached_at:.2f}"
        else:
            ratio = f"< {r.reached_at / lab.trained:.2f}"
        print(f"  {r.label:<10}{got:>12}{cpu:>9}{f'{r.epochs}/{r.planned_epochs}':>8}{r.best:>8.2%}{ratio:>16}")
    if lab.reached_at is None:
        print(f"  Lab C stopped after {lab.trained:.0f} s ({lab.epochs} epochs) without reaching 99.0 %: "
              "its ratios are upper bounds.")
    return races


def bench_fashion_budget(fashion, budgets=(30, 90)) -> None:
    """The lecture preset on Fashion-MNIST given 30 s and 90 s: one epoch first, to measure a whole epoch's training
    time on this dataset in this run (a short burst of batches overestimates the sustained speed), then as many
    epochs as fit each budget (its cosine decay planned over them), and the test accuracy."""
    p = presets.get(presets.LECTURE, fashion.image_shape, fashion.num_classes)
    print(f"Lecture preset on {fashion.title} ({len(fashion.y_train):,} train / {len(fashion.y_test):,} test):",
          flush=True)

    def train(epochs: int):
        job = TrainingJob(p.spec, fashion, p.hyper.replace(validation_split=0.0, seed=0, epochs=epochs), save=False)
        cpu = time.process_time()
        job.start()
        snap = job.wait()
        return snap, time.process_time() - cpu

    snap, cpu = train(1)
    per_epoch = snap.metrics["train_seconds"]
    print(f"  1 epoch: trained {per_epoch:.1f} s (whole job {cpu:.0f} CPU-s), test accuracy "
          f"{snap.metrics['test_accuracy']:.2%}", flush=True)
    for budget in budgets:
        epochs = max(1, int(budget // per_epoch))
        snap, cpu = train(epochs)
        print(f"  budget {budget:>3} s: {epochs} epoch{'s' if epochs > 1 else ''}, trained "
              f"{snap.metrics['train_seconds']:.1f} s (whole job {cpu:.0f} CPU-s), "
              f"test accuracy {snap.metrics['test_accuracy']:.2%}", flush=True)


def write_costs(speeds: dict, peak: float, peak_cpu: float, load_at_start: float) -> None:
    load = f"{load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    payload = {"measured": COSTS_NOTE.format(load=load), "date": time.strftime("%Y-%m-%d"), "input_shape": [28, 28, 1],
               "matmul_gflops": round(peak, 1), "matmul_gflops_per_cpu_second": round(peak_cpu, 1),
               "presets": speeds}
    presets.COSTS_FILE.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"  wrote {presets.COSTS_FILE}", flush=True)


def bench_mnist60k(args) -> None:
    ds = full_mnist()
    if ds is None:
        print("(full MNIST: ../shared/data/mnist_train60k.npz not found; set CNNKIT_MNIST60K — skipped)")
        return
    load_at_start = os.getloadavg()[0]
    peak, peak_cpu = matmul_peak()
    print(f"Matmul peak (1024×1024 float32, TensorFlow's default threads): {peak:.0f} GFLOP/s wall, "
          f"{peak_cpu:.0f} GFLOP per CPU-second; wall/CPU = {peak / peak_cpu:.2f} cores busy", flush=True)
    speeds = preset_speeds(ds, peak, peak_cpu)
    if args.write_costs:
        write_costs(speeds, peak, peak_cpu, load_at_start)
    races = bench_race99(ds, args.lab_budget)
    if args.write_costs:
        for name, r in ((presets.LECTURE, races[0]), (presets.FAST, races[1])):
            speeds[name]["accuracy"] = round(r.best, 4)
            speeds[name]["accuracy_note"] = (f"best test accuracy on 10,000 held-out MNIST training images after "
                                             f"{r.epochs} epoch{'s' if r.epochs > 1 else ''} on the other 50,000")
        write_costs(speeds, peak, peak_cpu, load_at_start)
    sample = datasets.offline_sample()
    lecture = presets.get(presets.LECTURE)
    small = lecture.hyper_for(len(sample.y_train))
    print(f"Lecture preset on {sample.title}, its small-data recipe ({small.describe()}), to 98 %:")
    for seed in (0, 1):
        r = time_to_accuracy(lecture, sample, 0.98, seed, f"lecture (seed {seed})")
        got = f"{r.reached_at:.1f} s ({r.reached_cpu:.0f} CPU-s)" if r.reached_at is not None else "not reached"
        print(f"  seed {seed}: 98 % after {got}, best {r.best:.2%} in {r.epochs} epochs", flush=True)
    if args.fashion:
        fashion = datasets.load("fashion_mnist")
        bench_fashion_budget(fashion)
    if args.pipeline:
        bench_throughput(ds, 2, 1, preset_name=presets.LECTURE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="also time to 92.5 %% on all of Fashion-MNIST (slow)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved throughput rounds (default 2)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per throughput run (default 3)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1],
                    help="seeds for our preset on the digit sample (default 0 1; Lab C runs with the first)")
    ap.add_argument("--full-seeds", type=int, nargs="+", default=[0],
                    help="seeds for our preset on Fashion-MNIST (default 0)")
    ap.add_argument("--budget", type=float, default=2.0,
                    help="stop Lab C after this many times our slowest time to target (default 2)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["throughput", "accuracy", "memory"])
    ap.add_argument("--mnist60k", action="store_true",
                    help="only the full-MNIST part: matmul peak, every preset's speed, time to 99 %% "
                         "(lecture vs fast vs Lab C)")
    ap.add_argument("--lab-budget", type=float, default=600,
                    help="with --mnist60k: stop Lab C after this many seconds of training (default 600)")
    ap.add_argument("--fashion", action="store_true", help="with --mnist60k: lecture preset on Fashion-MNIST, 30/90 s")
    ap.add_argument("--pipeline", action="store_true",
                    help="with --mnist60k: TrainingJob against plain model.fit on the lecture preset, full MNIST")
    ap.add_argument("--write-costs", action="store_true",
                    help="with --mnist60k: write the measured speeds into cnnkit/preset_costs.json (the cost table)")
    args = ap.parse_args()
    t0 = time.time()
    if args.mnist60k:
        bench_mnist60k(args)
        print(f"(benchmark took {time.time() - t0:.0f} s)")
        return
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
        bench_time_to_accuracy(sample, 0.98, args.seeds, args.budget)
    if args.full:
        bench_time_to_accuracy(fashion, 0.925, args.full_seeds, args.budget)
    print(f"(benchmark took {time.time() - t0:.0f} s; {threading.active_count()} threads at the end)")


if __name__ == "__main__":
    main()
