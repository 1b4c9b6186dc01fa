"""The C heap under training: keep TensorFlow's tensors on the heap instead of fresh pages every step.

glibc serves a block larger than its *mmap threshold* with a fresh mapping of zeroed pages and unmaps it again
when freed; below it, from the heap, where freed memory is reused. By default that threshold adapts upwards to
the blocks a program frees, so a training loop soon allocates its batches from the heap. Two things pin it at
128 KiB instead, and then every batch's activations and gradients (megabytes each) are page faults:

- TensorFlow itself: a dataset fed from Python (`tf.data.Dataset.from_generator`, which is how Keras feeds a
  `PyDataset` such as `cnnkit.pipeline.Batches`) calls `mallopt(M_MMAP_THRESHOLD, 131072)` when its op is made
  (`tensorflow::data::ApplyPython311MemoryPatch`, found with gdb on TensorFlow 2.21);
- Dask: its nanny starts worker processes with MALLOC_TRIM_THRESHOLD_=65536, which also fixes the threshold.

Measured on the default model's lecture job (3 epochs over 3,600 images, this 2-core machine): 2.2 million
page faults and 9 s of system time a job, its epochs 3.5–5 s; with `tune()` after the dataset's op is made,
25–35 thousand faults, 0.6 s, epochs 1.6–2.2 s. `cnnkit.training`'s callback calls `tune()` after the first
batch of every epoch and of every validation pass; a worker calls `trim()` after each job, which gives the
heap's free memory back to the system. Elsewhere than Linux with glibc both do nothing.
"""

from __future__ import annotations

import ctypes
import functools

THRESHOLD = 32 * 1024 * 1024     # glibc's largest mmap threshold on a 64-bit machine
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3     # mallopt's parameter numbers (malloc.h)


@functools.cache
def _glibc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:     # not Linux with glibc: nothing to tune
        return None


def tune() -> bool:
    """Blocks up to 32 MiB come from the heap and stay there until `trim()`; True when glibc took it."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, THRESHOLD)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, THRESHOLD))


def trim() -> None:
    """Give the heap's free memory back to the system (after a job, once its tensors are gone)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
