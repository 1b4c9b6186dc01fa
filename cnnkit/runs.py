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
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnkit import settings
from cnnkit.errors import RunError

FILES = ("model.keras", "spec.json", "hyper.json", "history.json", "metrics.json", "run.json")


def runs_dir() -> Path:
    return Path(settings.get("runs_dir")).resolve()


def shared_runs_dir() -> Path:
    env = settings.get("shared_runs_dir")
    return Path(env).resolve() if env else runs_dir() / "shared"


@dataclass(eq=False)
class Run:
    """A trained model and everything needed to explain it, as stored in one folder."""

    path: Path
    id: str
    title: str
    dataset_name: str  # the catalogue name (or "file:…"); run.json keeps it under "dataset"
    spec_dict: dict
    hyper_dict: dict
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
    def name(self) -> str:
        """The name the student gave this run ("" when none)."""
        return str(self.extra.get("name") or "")

    @property
    def hyper(self):
        """The training settings as a Hyper. Runs saved before a setting existed read it as its default."""
        from cnnkit.errors import TrainingError
        from cnnkit.hyper import Hyper

        try:
            return Hyper.from_dict(self.hyper_dict)
        except TrainingError as err:
            raise RunError(f"The run at {self.path} has training settings this version cannot read ({err}) "
                           "Train it again or delete it.") from None

    @property
    def from_file(self) -> bool:
        """Whether this run was saved from a model file a student brought (no training here, no history)."""
        return self.metrics.get("source") == "file"

    @property
    def model_path(self) -> Path:
        return self.path / "model.keras"

    @property
    def label(self) -> str:
        """A one-line name on its own: name or architecture, the main settings, accuracy, when.

        Among other runs, `run_labels.run_labels` says what differs between them instead.
        """
        from cnnkit.run_labels import run_labels

        return run_labels([self])[self.id]

    def load_model(self):
        """The Keras model, loaded once per (path, file time) in this process (the last MODEL_CACHE_SIZE kept)."""
        return _load_model_cached(self.model_path)


# The models this process has loaded, most recently used last. Bounded: a class opens many runs, and each
# model (with its traced functions) stays in the web process while it is here. `cnnkit.predict` keeps its
# own few Predictors, each holding its model; once both have let a model go, it is freed.
MODEL_CACHE_SIZE = 8
_model_cache: OrderedDict[tuple[str, float], Any] = OrderedDict()
_model_lock = threading.Lock()


def _load_model_cached(path: Path):
    try:
        key = (str(path), path.stat().st_mtime)
    except OSError:
        raise RunError(f"The model file {path} is missing. Train the model again or delete this run.") from None
    with _model_lock:
        if key in _model_cache:
            _model_cache.move_to_end(key)
        else:
            import keras

            from cnnkit.keras_guard import guarded

            try:
                with guarded():  # another session's clear_session must not run in the middle of the load
                    _model_cache[key] = keras.saving.load_model(path, safe_mode=True, compile=True)
            except Exception as err:  # a damaged or foreign file: say so instead of a traceback
                raise RunError(f"The model file {path} could not be loaded ({type(err).__name__}). "
                               "Train the model again or delete this run.") from None
            while len(_model_cache) > MODEL_CACHE_SIZE:
                _model_cache.popitem(last=False)
        return _model_cache[key]


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-").lower()
    return s[:40] or "run"


def save_run(model, spec, hyper, history: dict[str, list[float]], metrics: dict, dataset_name: str,
             root: Path | None = None, owner: str | None = None, title: str = "", extra: dict | None = None) -> Run:
    """Write a trained model and its story to a new folder under `root` (the runs folder by default).

    `model` is a Keras model or the bytes of a `.keras` file (what a Dask worker sends back);
    `spec` is a ModelSpec and `hyper` the Hyper it was trained with (stored as `Hyper.to_dict()`; a dict
    of its settings is read with `Hyper.from_dict`, so unknown keys are refused here, not when the run is read);
    `extra` goes into run.json (the job key that lets an identical job reuse this run).
    """
    from cnnkit.hyper import Hyper

    hyper = hyper if isinstance(hyper, Hyper) else Hyper.from_dict(hyper)
    root = Path(root) if root is not None else runs_dir()
    root.mkdir(parents=True, exist_ok=True)
    created = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(created))
    run_id = f"{stamp}-{_slug(title or dataset_name)}-{uuid.uuid4().hex[:6]}"
    tmp = root / f".{run_id}.partial"
    tmp.mkdir(parents=True)
    spec_dict = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
    meta = {**(extra or {}), "id": run_id, "title": title, "dataset": dataset_name, "owner": owner, "created": created}
    try:
        if isinstance(model, (bytes, bytearray)):
            (tmp / "model.keras").write_bytes(model)
        else:
            model.save(tmp / "model.keras")
        for name, obj in (("spec.json", spec_dict), ("hyper.json", hyper.to_dict()), ("history.json", history),
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
    from cnnkit import limits

    data = {}
    for name in FILES[1:]:
        try:
            size = (p / name).stat().st_size
            if limits.exceeds("run_file_bytes", size):
                raise RunError(f"The run at {p} is damaged: " + limits.sentence(
                    "run_file_bytes", f"its {name} is", size, "Train it again or delete it."))
            data[name] = json.loads((p / name).read_bytes().decode("utf-8"))
        except (OSError, ValueError, RecursionError) as err:
            raise RunError(f"The run at {p} has a damaged {name} ({type(err).__name__}: {err}). "
                           "Train it again or delete it.") from None
    meta = _checked_meta(p, data)
    shared_root = shared_runs_dir()
    return Run(path=p, id=meta["id"], title=meta["title"], dataset_name=meta["dataset"],
               spec_dict=data["spec.json"], hyper_dict=data["hyper.json"], history=data["history.json"],
               metrics=data["metrics.json"], created=meta["created"], owner=meta["owner"],
               shared=_is_within(p, shared_root), extra=meta)


def _checked_meta(p: Path, data: dict) -> dict:
    """run.json and its neighbours checked field by field; a RunError names the first bad one."""
    from cnnkit.errors import SpecError, TrainingError
    from cnnkit.hyper import Hyper
    from cnnkit.spec import ModelSpec

    def bad(what: str) -> RunError:
        return RunError(f"The run at {p} is damaged: {what}. Train it again or delete it.")

    for name in FILES[1:]:
        if not isinstance(data[name], dict):
            raise bad(f"{name} holds a {type(data[name]).__name__}, not a JSON object")
    meta = dict(data["run.json"])
    for key in ("id", "title", "dataset"):
        value = meta.get(key, p.name if key == "id" else "")
        if not isinstance(value, str):
            raise bad(f"run.json's \"{key}\" is {value!r}, not text")
        meta[key] = value
    if not isinstance(meta.get("name", ""), str):
        raise bad(f"run.json's \"name\" is {meta['name']!r}, not text")
    owner = meta.get("owner")
    if owner is not None and not isinstance(owner, str):
        raise bad(f"run.json's \"owner\" is {owner!r}, not text")
    meta["owner"] = owner
    created = meta.get("created", p.stat().st_mtime)
    if isinstance(created, bool) or not isinstance(created, (int, float)) or not 0 < created < 32503680000:
        raise bad(f"run.json's \"created\" is {created!r}, not a time (seconds since 1970)")
    meta["created"] = float(created)
    try:
        ModelSpec.from_dict(data["spec.json"])
    except SpecError as err:
        raise bad(f"spec.json is not a model ({err})") from None
    try:
        Hyper.from_dict(data["hyper.json"])
    except TrainingError as err:
        raise bad(f"hyper.json is not a set of training settings ({err})") from None
    for key, values in data["history.json"].items():
        if not isinstance(values, list) or not all(
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values):
            raise bad(f"history.json's \"{key}\" is not a list of numbers")
    return meta


def check_model_matches(run: Run, model) -> None:
    """Raise RunError unless the run's model takes its dataset's images and gives one score per class."""
    from cnnkit import datasets
    from cnnkit.spec import format_shape

    try:
        got_in = tuple(int(s) for s in model.input_shape[1:])
        got_out = int(model.output_shape[-1])
    except (AttributeError, TypeError, ValueError, IndexError):
        raise RunError(f"The model in {run.path} has no single image input and class output. "
                       "Train it again or delete this run.") from None
    info = datasets.CATALOGUE.get(run.dataset_name)
    want_in = tuple(info.image_shape) if info else tuple(run.spec_dict.get("input_shape", got_in))
    want_out = info.num_classes if info else None
    if got_in != want_in or (want_out is not None and got_out != want_out):
        title = info.title if info else run.dataset_name
        classes = f" and {want_out} classes" if want_out is not None else ""
        raise RunError(f"The model in {run.path} takes {format_shape(got_in)} images and gives {got_out} class "
                       f"scores, but the run's dataset {title} has {format_shape(want_in)} images{classes}. "
                       "This run's files do not belong together: train it again or delete it.")


def _is_within(p: Path, root: Path) -> bool:
    try:
        p.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


# Listings run on every rerun of the evaluation and draw pages, for every student: a run folder is
# written once (it appears whole, by rename), so its parsed Run is kept until its run.json changes.
_listing_cache: dict[Path, tuple[float, Run]] = {}


# Damaged run folders seen by the last listings, with the sentence saying why (see `damaged_runs`).
_damaged: dict[Path, tuple[float, str]] = {}


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
            _damaged.pop(child, None)
            out.append(cached[1])
        except (OSError, RunError) as err:
            # A damaged folder is listed as damaged (damaged_runs), never breaks a listing.
            _listing_cache.pop(child, None)
            if isinstance(err, RunError):
                _damaged[child] = (time.time(), str(err))
    return out


def damaged_runs(root: Path | None = None) -> list[tuple[Path, str]]:
    """Run folders under the runs folder (and the shared one) that cannot be read, each with why."""
    roots = [Path(root) if root is not None else runs_dir(), shared_runs_dir()]
    _scan(roots[0])
    _scan(roots[1])
    return sorted((p, why) for p, (_, why) in _damaged.items()
                  if p.is_dir() and any(_is_within(p, r) for r in roots))


def list_runs(root: Path | None = None, owner: str | None = None, dataset_name: str | None = None,
              only_owner: bool | None = None) -> list[Run]:
    """Runs newest first, optionally for one dataset.

    On one's own laptop every run in the folder is listed. In class mode (`only_owner`, by default
    the `class_mode` setting) only the runs of `owner` (the student's session) and the shared runs are.
    A shared copy of one of `owner`'s own runs is left out: they see their run once.
    """
    root = Path(root) if root is not None else runs_dir()
    found = {r.path.resolve(): r for r in _scan(root)}
    shared = shared_runs_dir()
    for r in _scan(shared):
        found.setdefault(r.path.resolve(), r)
    runs = list(found.values())
    if settings.get("class_mode") if only_owner is None else only_owner:
        runs = [r for r in runs if r.shared or (owner is not None and r.owner == owner)]
    if owner is not None:
        # A student never sees their own run twice: the class's copy of it goes (their own run stays).
        mine = {r.id for r in runs if not r.shared and r.owner == owner}
        runs = [r for r in runs if not (r.shared and r.extra.get("shared_from") in mine)]
    if dataset_name is not None:
        runs = [r for r in runs if r.dataset_name == dataset_name]
    return sorted(runs, key=lambda r: r.created, reverse=True)


def delete_run(run: Run) -> None:
    """Remove a run's folder (and its cached model)."""
    with _model_lock:
        for key in [k for k in _model_cache if k[0] == str(run.model_path)]:
            del _model_cache[key]
    _listing_cache.pop(run.path, None)
    shutil.rmtree(run.path, ignore_errors=True)


def name_run(run: Run, name: str) -> Run:
    """Give a run the student's own name (kept in its run.json); an empty name removes it."""
    name = " ".join(str(name).split())[:80]
    meta_path = run.path / "run.json"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as err:
        raise RunError(f"The run at {run.path} cannot be renamed ({err}). Train it again or delete it.") from None
    if name:
        meta["name"] = name
    else:
        meta.pop("name", None)
    tmp = run.path / ".run.json.tmp"
    tmp.write_text(json.dumps(_plain(meta), indent=2))
    os.replace(tmp, meta_path)  # readers see the old name or the new one
    return load_run(run.path)


def share_run(run: Run, shared_by: str = "") -> Run:
    """Copy a run into the shared folder, where every student of the class can evaluate it and draw with it.

    The copy belongs to nobody (its owner is cleared) and says who shared it; sharing the
    same run again returns the copy already there.
    """
    if run.shared:
        return run
    root = shared_runs_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunError(_unwritable(err)) from None
    shared_id = f"{run.id}-shared"  # its own id: the owner lists both their run and the class's copy
    final = root / shared_id
    if (final / "run.json").is_file():
        return load_run(final)
    tmp = root / f".{shared_id}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        shutil.copytree(run.path, tmp)
        meta = dict(run.extra)
        meta.update({"id": shared_id, "owner": None, "shared_by": shared_by, "shared_at": time.time(),
                     "shared_from": run.id})
        (tmp / "run.json").write_text(json.dumps(_plain(meta), indent=2))
        tmp.rename(final)
    except FileNotFoundError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RunError(f"The run {run.id} is no longer on the server; it cannot be shared.") from None
    except OSError as err:   # a read-only or full disk: a sentence, no server path
        shutil.rmtree(tmp, ignore_errors=True)
        raise RunError(_unwritable(err)) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_run(final)


def _unwritable(err: OSError) -> str:
    from cnnkit import disk_faults

    return disk_faults.record("runs", err)


def unshare_run(run: Run) -> None:
    """Take a shared run away from the class (the student's own run, if any, stays)."""
    if not run.shared:
        raise RunError(f"The run {run.id} is not a shared run; only shared runs can be taken back.")
    delete_run(run)


def damaged_note(root: Path | None = None) -> str | None:
    """One sentence about run folders that cannot be read (they are left out of every listing), or None."""
    bad = damaged_runs(root)
    if not bad:
        return None
    n = len(bad)
    head = f"{n} run folder{'s' if n > 1 else ''} could not be read and {'are' if n > 1 else 'is'} not listed."
    if settings.get("class_mode"):  # a student sees no other student's folder names
        return head + " The lecturer can see which with `python -m cnnkit runs`."
    return head + " " + " ".join(why for _, why in bad[:3])
