"""cnnkit.heap: a training job's tensors come from the heap, not from fresh pages, whatever pinned glibc's
mmap threshold (Dask's environment, TensorFlow's generator-fed datasets). Each check runs in its own process:
the threshold is process-wide, and counting page faults needs a process nothing else runs in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cnnkit import heap

ROOT = Path(__file__).resolve().parent.parent

# Page faults per freshly allocated and filled 1 MiB block: about 256 when every block is a new mapping,
# a handful when the heap's freed blocks are reused.
FAULTS = textwrap.dedent("""
    import resource
    import numpy as np

    def faults_per_block(n=200):
        for _ in range(5):
            np.ones(1 << 18, np.float32)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(n):
            np.ones(1 << 18, np.float32)
        return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / n
""")

pytestmark = pytest.mark.skipif(heap._glibc() is None, reason="the heap is glibc's only on Linux")


def _run(body: str, **env) -> dict:
    out = subprocess.run([sys.executable, "-c", FAULTS + textwrap.dedent(body)], capture_output=True, text=True,
                         cwd=ROOT, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_tune_undoes_the_threshold_dasks_environment_pins():
    got = _run("""
        import json
        from cnnkit import heap
        pinned = faults_per_block()
        took = heap.tune()
        print(json.dumps({"pinned": pinned, "took": took, "tuned": faults_per_block()}))
    """, MALLOC_TRIM_THRESHOLD_="65536")
    assert got["took"] is True
    assert got["pinned"] > 100, got      # the environment Dask gives its workers: every block is fresh pages
    assert got["tuned"] < 10, got        # after tune(): the heap's blocks are reused


def test_a_training_job_keeps_its_tensors_on_the_heap_after_keras_pins_it():
    got = _run("""
        import json
        import numpy as np
        import tensorflow as tf
        from cnnkit import datasets
        from cnnkit.hyper import Hyper
        from cnnkit.progress import JobState
        from cnnkit.spec import LayerSpec, ModelSpec
        from cnnkit.training import TrainingJob

        import keras
        from cnnkit.pipeline import Batches

        # Keras fed from a PyDataset (TensorFlow's generator dataset underneath) pins glibc's mmap threshold.
        rng = np.random.default_rng(0)
        x, y = rng.integers(0, 256, (120, 28, 28, 1), np.uint8), np.arange(120) % 10
        plain = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
        plain.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        plain.fit(Batches(x, y, np.arange(120), 20, 10), epochs=1, verbose=0)
        after_keras = faults_per_block()
        ds = datasets.Dataset(name="mnist", title="random", x_train=rng.integers(0, 256, (120, 28, 28, 1), np.uint8),
                              y_train=np.arange(120) % 10, x_test=rng.integers(0, 256, (40, 28, 28, 1), np.uint8),
                              y_test=np.arange(40) % 10, class_names=tuple(datasets.DIGITS), source="file",
                              source_text="random test data")
        L = LayerSpec.new
        spec = ModelSpec((28, 28, 1), [L("Conv2D", filters=4, kernel_size=3, activation="relu"), L("Flatten"),
                                       L("Dense", units=10, activation="softmax")])
        job = TrainingJob(spec, ds, Hyper(epochs=1, batch_size=20, validation_split=0.2), save=False)
        job.start()
        assert job.wait(240).state is JobState.FINISHED
        print(json.dumps({"after_keras": after_keras, "after_job": faults_per_block()}))
    """)
    assert got["after_keras"] > 100, f"TensorFlow no longer pins the threshold (cnnkit.heap may go): {got}"
    assert got["after_job"] < 10, got


def test_trim_and_tune_are_harmless_to_call_again():
    assert heap.tune() is True and heap.tune() is True
    heap.trim()
