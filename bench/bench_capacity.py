"""Benchmark: lecture capacity — how many lecture jobs a minute the job system finishes on this machine.

Prints figures, asserts nothing (the machine is shared and noisy: every figure comes with the load average,
and the comparisons that matter are ratios measured side by side in one run). Run it at the workers'
niceness so both sides get the same share of a busy machine:

    nice -n 10 python bench/bench_capacity.py                        # capacity, breakdown, estimate
    nice -n 10 python bench/bench_capacity.py --rounds 2 --jobs 12   # A/B/A/B
    nice -n 10 python bench/bench_capacity.py --part memory          # web-process RSS, 5 vs 50 runs opened

Parts:
- capacity: N distinct lecture jobs (the default model — the lecture preset — with the settings it suggests
  for the 4,000-digit offline sample, `presets.suggested_hyper`; seed i for job i, so none is shared or
  reused), each from its own student, submitted at once to a `jobs.JobRegistry` with default settings (its
  embedded cluster), from the first Start to the last Run written; against the same N models trained by a
  plain Keras loop in this process one after the other (`model.fit` on float arrays of the same training
  and validation images, without the augmentation, then `evaluate` on the test images). Both sides are
  warmed first by one job that is not counted (the worker's and this process's first trace). Prints both
  rates (jobs a minute), their ratio, and the physical floor: the jobs' FLOPs over this machine's float32
  matmul peak.
- breakdown: one more lecture job on the idle, warm job system, end to end: Start → on the worker (queued,
  launched) → each phase the worker timed (`metrics["phases"]`: dataset, preparing, build, first batch with
  the trace, each epoch and its validation, test, model bytes, clean up) → back in the web process → Run
  written; and the job's cost estimate (`JobRegistry.estimate`, what the pages show) against its real time.
- memory: 50 saved runs of distinct lecture models opened one after another for prediction
  (`predict.predictor_for`) and evaluation (`evaluation.evaluate`) as the web process does: its RSS after
  5 and after 50, and how many models `cnnkit.runs` keeps.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("CNNKIT_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


from cnnkit import datasets, jobs, presets, training  # noqa: E402
from cnnkit.jobs.cost import training_flops  # noqa: E402


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def lecture_jobs(ds, n: int, first_seed: int):
    """The default model and N of its suggested settings for `ds`, seeds first_seed … first_seed + n - 1."""
    spec = presets.get(presets.DEFAULT).spec
    h = presets.suggested_hyper(spec, len(ds.y_train))
    return spec, [h.replace(seed=first_seed + i) for i in range(n)]


def job_flops(spec, ds, h) -> float:
    n_fit, n_val = h.split_sizes(len(ds.y_train))
    return training_flops(spec.summary().flops, n_fit, n_val, h.epochs) + spec.summary().flops * len(ds.y_test)


# --- the plain Keras loop -----------------------------------------------------------------------------
def plain_job(spec, ds, h) -> float:
    """One model trained as a plain Keras script would: float arrays in memory, `fit`, then `evaluate`."""
    import keras

    start = time.perf_counter()
    train_idx, val_idx = training.split_indices(ds.y_train, h)
    x = ds.x_train.astype("float32") / 255
    x_test = ds.x_test.astype("float32") / 255
    keras.utils.set_random_seed(h.seed)
    model = spec.to_keras()
    steps = h.epochs * math.ceil(len(train_idx) / h.batch_size)
    model.compile(optimizer=h.make_optimizer(total_steps=steps), loss=h.loss, metrics=["accuracy"])
    model.fit(x[train_idx], ds.y_train[train_idx], batch_size=h.batch_size, epochs=h.epochs, verbose=0,
              validation_data=(x[val_idx], ds.y_train[val_idx]))
    model.evaluate(x_test, ds.y_test, batch_size=max(h.batch_size, 256), verbose=0)
    del model
    keras.backend.clear_session()
    return time.perf_counter() - start


def plain_loop(spec, ds, hypers) -> float:
    start = time.perf_counter()
    for h in hypers:
        plain_job(spec, ds, h)
    return time.perf_counter() - start


# --- the job system ----------------------------------------------------------------------------------
def ready_registry(root: Path, config: str = "") -> jobs.JobRegistry:
    """A registry with default settings (or `config`, "WxT": W workers of T TensorFlow threads each, "mK" after
    it: K compiled models kept per worker, e.g. "1x2m0"), its embedded cluster up and Keras imported on every
    worker."""
    from cnnkit import settings

    for name in ("CNNKIT_WORKERS", "CNNKIT_WORKER_THREADS", "CNNKIT_WORKER_MODELS"):
        os.environ.pop(name, None)
    if "m" in config:     # "1x2m0": compiled models kept per worker (CNNKIT_WORKER_MODELS), 0 = none
        config, os.environ["CNNKIT_WORKER_MODELS"] = config.split("m")
    if config:
        workers, threads = config.split("x")
        os.environ["CNNKIT_WORKERS"], os.environ["CNNKIT_WORKER_THREADS"] = workers, threads
    settings.reset()
    reg = jobs.JobRegistry(runs_root=root)
    while not all(reg.client.run(lambda: "keras.src.models" in sys.modules).values()):   # the warm-up's import
        time.sleep(0.5)
    reg.cluster.refresh_slots()
    return reg


def submit_all(reg, spec, ds, hypers, tag: str) -> tuple[float, list]:
    """Submit every job at once (one student each); seconds from the first Start to the last Run written."""
    start = time.time()
    js = [reg.submit(spec, ds, h, owner=f"{tag}-student-{i}", title=f"{tag} {i}") for i, h in enumerate(hypers)]
    ended: dict[str, float] = {}
    while len(ended) < len(js):
        for j in js:
            if j.id not in ended and j.ended:
                ended[j.id] = time.time()
        time.sleep(0.01)
    bad = [j.snapshot().message for j in js if j.snapshot().run_path is None]
    if bad:
        print(f"  {len(bad)} job(s) without a run: {bad[0]}")
    return max(ended.values()) - start, js


def worker_stats(js) -> str:
    """Mean seconds a job spent on its worker, and the mean gap on a worker between one job and the next."""
    ms = [j.snapshot().metrics for j in js]
    ms = [m for m in ms if "worker_began" in m]
    busy = [m["worker_ended"] - m["worker_began"] for m in ms]
    by_pid: dict = {}
    for j, m in zip(js, ms, strict=False):
        by_pid.setdefault(j.snapshot().metrics.get("pid", 0), []).append(m)
    gaps = []
    for group in by_pid.values():
        group.sort(key=lambda m: m["worker_began"])
        gaps += [b["worker_began"] - a["worker_ended"] for a, b in zip(group, group[1:], strict=False)]
    fit = [m["train_seconds"] for m in ms]
    return (f"on the worker {statistics.mean(busy):.2f} s a job (fit {statistics.mean(fit):.2f} s), "
            f"gap between jobs {statistics.mean(gaps) if gaps else float('nan'):.2f} s")


def bench_capacity(args) -> None:
    import keras  # noqa: F401  (this process's import is not the loop's time)
    from bench_training import matmul_peak

    ds = datasets.offline_sample()
    spec, hypers = lecture_jobs(ds, args.jobs, first_seed=100)
    h0 = hypers[0]
    flops = job_flops(spec, ds, h0)
    print(f"{args.jobs} lecture jobs: {spec.name}, {h0.describe()}, on {ds.title}; "
          f"{flops / 1e9:.2f} GFLOP each (forward + backward + validation + test)  [{load()}]", flush=True)
    peak, _ = matmul_peak(seconds=2.0)
    floor = flops / (peak * 1e9)
    print(f"matmul peak {peak:.0f} GFLOP/s (1024² float32, TensorFlow's threads): floor {floor:.2f} s a job, "
          f"{60 / floor:.0f} jobs a minute  [{load()}]", flush=True)
    plain_job(spec, ds, h0.replace(seed=99))      # warm this process (first trace, kernels)
    root = Path(tempfile.mkdtemp(prefix="cnnkit-capacity-"))
    configs = args.configs.split(",") if args.configs else [""]
    rates: dict[str, list[float]] = {"plain": [], **{c: [] for c in configs}}
    for r in range(args.rounds):
        seeds = [h.replace(seed=h.seed + 1000 * r) for h in hypers]
        t = plain_loop(spec, ds, seeds)
        rates["plain"].append(60 * len(seeds) / t)
        print(f"round {r + 1}: plain Keras loop {t:.1f} s, {rates['plain'][-1]:.1f} jobs a minute  [{load()}]",
              flush=True)
        for c, config in enumerate(configs):
            reg = ready_registry(root / f"round{r}-{c}", config)
            try:
                reg.submit(spec, ds, h0.replace(seed=98), owner="warm-up").wait(600)   # the worker's first trace
                t, js = submit_all(reg, spec, ds, seeds, f"r{r}")
                rates[config].append(60 * len(seeds) / t)
                print(f"round {r + 1}: job system {config or 'default'} ({reg.max_jobs} slot"
                      f"{'s' if reg.max_jobs > 1 else ''}) {t:.1f} s, {rates[config][-1]:.1f} jobs a minute; ratio "
                      f"{rates[config][-1] / rates['plain'][-1]:.2f}; {worker_stats(js)}  [{load()}]", flush=True)
                if r == args.rounds - 1 and c == 0 and not args.no_breakdown:
                    breakdown(reg, spec, ds, h0.replace(seed=97))
            finally:
                reg.close()
    p = statistics.median(rates["plain"])
    for config in configs:
        j = statistics.median(rates[config])
        print(f"\nmedian of {args.rounds}: job system {config or 'default'} {j:.1f} jobs a minute, plain loop "
              f"{p:.1f}: ratio {j / p:.2f} (goal ≥ 2); floor {60 / floor:.0f} jobs a minute  [{load()}]")


def breakdown(reg, spec, ds, h) -> None:
    """One job on the idle, warm job system, phase by phase; and its estimate against its real time."""
    from cnnkit import runs

    time.sleep(1.5)   # the poller back to its idle pace, as for a student pressing Start on an idle server
    estimate = reg.estimate(spec, ds, h)
    start = time.time()
    job = reg.submit(spec, ds, h, owner="breakdown", title="breakdown")
    while not job.ended:
        time.sleep(0.005)
    ended = time.time()
    snap = job.snapshot()
    m = snap.metrics
    run = runs.load_run(snap.run_path)
    rows = [("Start → on the worker (queued, launched)", m["worker_began"] - start)]
    rows += [(f"  {k}", v) for k, v in m["phases"].items()]
    rows += [("back to the web process", run.created - m["worker_ended"]),
             ("Run written (and the job told)", ended - run.created)]
    total = ended - start
    print(f"\nOne lecture job end to end on the idle warm job system: {total:.2f} s  [{load()}]")
    for name, s in rows:
        print(f"  {name:<44} {s:6.2f} s  {s / total:5.1%}")
    print(f"  sum {sum(s for _, s in rows):.2f} s; train_seconds (fit) {m['train_seconds']:.2f} s")
    err = estimate.seconds / total - 1
    print(f"estimate before Start {estimate.seconds:.1f} s (measured on {estimate.measured_jobs} jobs: "
          f"{reg.throughput.flops_per_second / 1e9:.1f} GFLOP/s + {reg.throughput.overhead_seconds:.1f} s overhead) "
          f"against {total:.1f} s real: {err:+.0%} (target within ±30 %)  [{load()}]", flush=True)


# --- memory ------------------------------------------------------------------------------------------
def make_runs(root: Path, n: int, ds) -> list:
    """N saved runs of distinct lecture models (seeded initial weights, no training: the bytes are the same)."""
    import keras

    from cnnkit import runs

    spec = presets.get(presets.DEFAULT).spec
    h = presets.suggested_hyper(spec, len(ds.y_train))
    out = []
    for i in range(n):
        keras.utils.set_random_seed(i)
        model = spec.to_keras()
        model.compile(optimizer=h.make_optimizer(total_steps=100), loss=h.loss, metrics=["accuracy"])
        out.append(runs.save_run(model, spec, h.replace(seed=i), {}, {"test_accuracy": 0.1}, ds.name,
                                 root=root, title=f"memory {i}"))
        del model
        keras.backend.clear_session()
    return out


def bench_memory(args) -> None:
    from cnnkit import evaluation, predict, runs

    ds = datasets.offline_sample()
    root = Path(tempfile.mkdtemp(prefix="cnnkit-memory-"))
    saved = make_runs(root, args.runs, ds)
    gc.collect()
    image = ds.x_test[0].astype("float32") / 255
    base = rss_mb()
    print(f"{args.runs} runs saved; web-side RSS before opening any: {base:.0f} MB  [{load()}]", flush=True)
    marks: dict[int, float] = {}
    start = time.perf_counter()
    for i, run in enumerate(saved, start=1):
        run = runs.load_run(run.path)
        predict.predictor_for(run).predict(image)
        evaluation.evaluate(run, ds)
        if i in (5, 25, args.runs):
            gc.collect()
            marks[i] = rss_mb()
            print(f"  after {i:3d} runs opened: RSS {marks[i]:.0f} MB, models kept by cnnkit.runs "
                  f"{len(runs._model_cache)}, predictors {len(predict._cache)}  [{load()}]", flush=True)
    print(f"growth from 5 to {args.runs} runs: {marks[args.runs] - marks[5]:+.0f} MB (target ≤ 300 MB); "
          f"{(time.perf_counter() - start) / args.runs:.2f} s a run opened  [{load()}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["capacity", "memory", "all"], default="capacity")
    ap.add_argument("--jobs", type=int, default=12, help="lecture jobs per side (default 12)")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved plain/jobs rounds (default 1)")
    ap.add_argument("--configs", default="", help="job-system configurations to compare, e.g. 1x2,2x1 "
                    "(workers x TensorFlow threads each, then mK: K compiled models kept per worker, e.g. 1x2m0; "
                    "default: the default settings)")
    ap.add_argument("--runs", type=int, default=50, help="runs opened in the memory part (default 50)")
    ap.add_argument("--no-breakdown", action="store_true", help="skip the one-job breakdown")
    args = ap.parse_args()
    if args.part in ("capacity", "all"):
        bench_capacity(args)
    if args.part in ("memory", "all"):
        bench_memory(args)


if __name__ == "__main__":
    main()
