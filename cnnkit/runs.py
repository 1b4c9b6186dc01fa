"""Saved runs on disk: one folder per trained model.

A Run folder holds `model.keras`, `spec.json`, `hyper.json`, `history.json`,
`metrics.json` and `run.json` (id, title, dataset, owner, creation time).
Evaluation, drawing, comparison and download all start from a Run.

Where runs live: `CNNKIT_RUNS_DIR` (default `./runs`). In class mode
(`CNNKIT_CLASS_MODE=1`, the app shared by a lecture) a student sees only the
runs their own session made, plus the runs a lecturer put beforehand in the
shared folder (`CNNKIT_SHARED_RUNS_DIR`, default `<runs dir>/shared`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnkit.errors import RunError

FILES = ("model.keras", "spec.json", "hyper.json", "history.json", "metrics.json", "run.json")


def runs_dir() -> Path:
    return Path(os.environ.get("CNNKIT_RUNS_DIR", "runs")).resolve()


def shared_runs_dir() -> Path:
    env = os.environ.get("CNNKIT_SHARED_RUNS_DIR")
    return Path(env).resolve() if env else runs_dir() / "shared"


def class_mode() -> bool:
    """True when the app is shared by a class: students then see only their own runs (and shared ones)."""
    return os.environ.get("CNNKIT_CLASS_MODE", "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(eq=False)
class Run:
    """A trained model and everything needed to explain it, as stored in one folder."""

    path: Path
    id: str
    title: str
    dataset: str
    spec_dict: dict
    hyper: dict
    history: dict[str, list[float]]
    metrics: dict[str, Any]
    created: float
    owner: str | None = None
    shared: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def spec(self):
        from cnnkit.spec import ModelSpec

        return ModelSpec.from_dict(self.spec_dict)

    @property
    def model_path(self) -> Path:
        return self.path / "model.keras"

    @property
    def label(self) -> str:
        """A one-line name for pickers: title, dataset, accuracy, when."""
        acc = self.metrics.get("test_accuracy")
        acc_txt = f" · test acc {acc:.1%}" if isinstance(acc, (int, float)) else ""
        when = time.strftime("%d %b %H:%M", time.localtime(self.created))
        shared = " · shared" if self.shared else ""
        return f"{self.title or self.id} · {self.dataset}{acc_txt} · {when}{shared}"

    def load_model(self):
        """The Keras model, loaded once per (path, file time) in this process."""
        return _load_model_cached(self.model_path)


_model_cache: dict[tuple[str, float], Any] = {}
_model_lock = threading.Lock()


def _load_model_cached(path: Path):
    try:
        key = (str(path), path.stat().st_mtime)
    except OSError:
        raise RunError(f"The model file {path} is missing. Train the model again or delete this run.") from None
    with _model_lock:
        if key not in _model_cache:
            import keras

            try:
                _model_cache[key] = keras.saving.load_model(path, safe_mode=True, compile=True)
            except Exception as err:  # a damaged or foreign file: say so instead of a traceback
                raise RunError(f"The model file {path} could not be loaded ({type(err).__name__}). "
                               "Train the model again or delete this run.") from None
        return _model_cache[key]


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-").lower()
    return s[:40] or "run"


def save_run(model, spec, hyper: dict, history: dict[str, list[float]], metrics: dict, dataset: str,
             root: Path | None = None, owner: str | None = None, title: str = "") -> Run:
    """Write a trained model and its story to a new folder under `root` (the runs folder by default)."""
    root = Path(root) if root is not None else runs_dir()
    root.mkdir(parents=True, exist_ok=True)
    created = time.time()
    run_id = f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(created))}-{_slug(title or dataset)}-{uuid.uuid4().hex[:6]}"
    tmp = root / f".{run_id}.partial"
    tmp.mkdir(parents=True)
    spec_dict = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
    meta = {"id": run_id, "title": title, "dataset": dataset, "owner": owner, "created": created}
    try:
        model.save(tmp / "model.keras")
        for name, obj in (("spec.json", spec_dict), ("hyper.json", hyper), ("history.json", history),
                          ("metrics.json", metrics), ("run.json", meta)):
            (tmp / name).write_text(json.dumps(_plain(obj), indent=2))
        final = root / run_id
        tmp.rename(final)  # a run appears whole or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_run(final)


def _plain(obj):
    """JSON-safe copy: numpy scalars and arrays become Python numbers and lists."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, float) and obj != obj:  # NaN is not JSON
        return None
    return obj


def load_run(path: str | os.PathLike) -> Run:
    """Read a run folder; a missing or damaged file gives a RunError that names it."""
    p = Path(path)
    if not p.is_dir():
        raise RunError(f"There is no run folder at {p}. Give the folder that `train --out` wrote.")
    missing = [f for f in FILES if not (p / f).is_file()]
    if missing:
        raise RunError(f"The run at {p} is incomplete: {', '.join(missing)} missing. Train it again or delete it.")
    data = {}
    for name in FILES[1:]:
        try:
            data[name] = json.loads((p / name).read_text())
        except (OSError, ValueError) as err:
            raise RunError(f"The run at {p} has a damaged {name} ({err}). Train it again or delete it.") from None
    meta = data["run.json"]
    shared_root = shared_runs_dir()
    return Run(path=p, id=meta.get("id", p.name), title=meta.get("title", ""), dataset=meta.get("dataset", ""),
               spec_dict=data["spec.json"], hyper=data["hyper.json"], history=data["history.json"],
               metrics=data["metrics.json"], created=float(meta.get("created", p.stat().st_mtime)),
               owner=meta.get("owner"), shared=_is_within(p, shared_root), extra=meta)


def _is_within(p: Path, root: Path) -> bool:
    try:
        p.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


# Listings run on every rerun of the evaluation and draw pages, for every student: a run folder is
# written once (it appears whole, by rename), so its parsed Run is kept until its run.json changes.
_listing_cache: dict[Path, tuple[float, Run]] = {}


def _scan(root: Path) -> list[Run]:
    out = []
    if not root.is_dir():
        return out
    for child in root.iterdir():
        meta = child / "run.json"
        if child.name.startswith(".") or not meta.is_file():
            continue
        try:
            mtime = meta.stat().st_mtime
            cached = _listing_cache.get(child)
            if cached is None or cached[0] != mtime:
                cached = _listing_cache[child] = (mtime, load_run(child))
            out.append(cached[1])
        except (OSError, RunError):
            _listing_cache.pop(child, None)
            continue  # a half-deleted or damaged folder is skipped in listings; load_run explains it
    return out


def list_runs(root: Path | None = None, owner: str | None = None, dataset: str | None = None,
              only_owner: bool | None = None) -> list[Run]:
    """Runs newest first, optionally for one dataset.

    On one's own laptop every run in the folder is listed. In class mode (`only_owner`, by default
    `class_mode()`) only the runs of `owner` (the student's session) and the shared runs are.
    """
    root = Path(root) if root is not None else runs_dir()
    found = {r.path.resolve(): r for r in _scan(root)}
    shared = shared_runs_dir()
    for r in _scan(shared):
        found.setdefault(r.path.resolve(), r)
    runs = list(found.values())
    if class_mode() if only_owner is None else only_owner:
        runs = [r for r in runs if r.shared or (owner is not None and r.owner == owner)]
    if dataset is not None:
        runs = [r for r in runs if r.dataset == dataset]
    return sorted(runs, key=lambda r: r.created, reverse=True)


def delete_run(run: Run) -> None:
    """Remove a run's folder (and its cached model)."""
    with _model_lock:
        for key in [k for k in _model_cache if k[0] == str(run.model_path)]:
            del _model_cache[key]
    _listing_cache.pop(run.path, None)
    shutil.rmtree(run.path, ignore_errors=True)
