"""A job's key — the hash of what it computes — and the finished Runs known by key (dedup).

`job_key(spec, hyper, fingerprint, hidden)` hashes the layers, the settings, the data and the test images (a
class challenge's hidden share is left out of the test pass), so identical submissions share one computation;
`FinishedRuns` remembers which keys already have a finished Run on disk, so an identical job after the end is
answered at once with a copy of that Run (which takes the Run's class-challenge score with it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import weakref
from pathlib import Path

import numpy as np

from cnnkit.hyper import Hyper

_FINGERPRINTS: dict[int, str] = {}


def dataset_fingerprint(ds) -> str:
    """A hash of the dataset's arrays and class names, computed once per Dataset object."""
    key = id(ds)
    fp = _FINGERPRINTS.get(key)
    if fp is None:
        h = hashlib.blake2b(digest_size=16)
        for arr in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
            a = np.ascontiguousarray(arr)
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(memoryview(a).cast("B"))
        h.update(json.dumps(list(ds.class_names)).encode())
        fp = _FINGERPRINTS[key] = h.hexdigest()
        weakref.finalize(ds, _FINGERPRINTS.pop, key, None)
    return fp


def job_key(spec, hyper: Hyper, fingerprint: str, hidden: dict | None = None) -> str:
    """The hash of what a job computes: the layers and input shape, the settings, the data, and the test images.

    The model's name is left out: two students who built the same layers train the same model. `hidden`: the
    open class challenge's share of the test split (`challenge_scoring.worker_request`), which the job's test
    pass leaves out — so a run tested on the whole split (one trained before the challenge opened, or after it
    closed) is never reused for a Start during the challenge, nor the other way round; the moment the
    challenge opened is left out (the same share and seed leave the same images).
    """
    spec_dict = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
    spec_dict = {k: v for k, v in spec_dict.items() if k != "name"}
    hyper_dict = hyper.to_dict() if hasattr(hyper, "to_dict") else dict(hyper)
    what = {"spec": spec_dict, "hyper": hyper_dict, "data": fingerprint}
    if hidden:
        what["hidden"] = {k: hidden[k] for k in ("share", "seed", "hidden_count")}
    text = json.dumps(what, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class FinishedRuns:
    """Job key → a finished Run folder to reuse: learnt from each runs folder once, then from each job that ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: dict[str, Path] = {}
        self._indexed: set[Path] = set()

    def index(self, root: Path) -> None:
        """Learn which job keys already have a finished Run in `root` (once per runs folder)."""
        if root in self._indexed:
            return
        from cnnkit import runs

        found = {}
        for run in runs.list_runs(root, only_owner=False):
            key = run.extra.get("job_key")
            if key and run.metrics.get("stopped_by") in (None, "early_stopping"):
                found.setdefault(key, run.path)
        with self._lock:
            self._indexed.add(root)
            for k, p in found.items():
                self._paths.setdefault(k, p)

    def copy(self, key: str, *, dataset_name: str, root: Path, owner: str | None, title: str,
             spec_name: str | None = None):
        """A student's own copy of the finished Run of `key`, with the source Run: `(source, copy)`, or None
        when there is none (one that can no longer be read is forgotten). The copy carries this student's
        model name (`spec_name`) and title, never the first student's."""
        from cnnkit import runs
        from cnnkit.errors import RunError

        with self._lock:
            path = self._paths.get(key)
        if path is None or not (path / "run.json").is_file():
            return None
        try:
            src = runs.load_run(path)
            model = src.model_path.read_bytes()
        except (OSError, RunError):
            self.forget(key)
            return None
        spec = dict(src.spec_dict, name=spec_name) if spec_name else src.spec_dict
        copy = runs.save_run(model, spec, src.hyper, src.history, src.metrics, dataset_name=dataset_name,
                             root=root, owner=owner, title=title, extra={"job_key": key})
        _copy_challenge_score(src.id, copy.id)
        return src, copy

    def add(self, key: str, path: Path) -> None:
        with self._lock:
            self._paths[key] = path

    def forget(self, key: str) -> None:
        with self._lock:
            self._paths.pop(key, None)


def _copy_challenge_score(source_id: str, copy_id: str) -> None:
    """The same model file scores the same on the class challenge: the copy takes its source's score at once."""
    from cnnkit import challenge_scoring

    try:
        challenge_scoring.record_copy(source_id, copy_id)
    except Exception:   # the web process's scorer copies it instead (same job key)
        logging.getLogger(__name__).exception("cnnkit: copying a challenge score")
