"""The class challenge: a hidden test set, every finished run scored on it, and the leaderboard.

What this module owns:
- `Challenge`: what the lecturer opened (dataset, where the hidden set comes from, seed, end time,
  frozen or not), stored in `challenge.json` under the class folder (`classroom.class_dir()`/challenge)
  beside `scores.json` (the score of each run, cached per run) and, for a file, `hidden.npz` — so a
  server restart keeps all of it.
- The hidden set: either a seeded, stratified share of the dataset's test split (`hidden_indices`; the
  students' pages then use `visible_dataset`, the test split without those images), or every image of
  a file the lecturer uploads (read with `datasets.load_file`, the checks any upload gets).
- Scoring lives in `challenge_scoring` (on the training worker right after its test pass, else the web
  process's `Scorer` thread); this module only keeps the scores (`ChallengeStore.record_many`).
- `leaderboard`: rank, student, model, parameters, FLOPs, epochs, hidden accuracy; ties broken by
  fewer parameters, then the earlier run; one entry per student (their best) or every run;
  `standing` is one student's best and rank; `leaderboard_csv` the export.
"""

from __future__ import annotations

import json
import os
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit import classroom, disk_faults, limits, runs
from cnnkit.datasets import CATALOGUE, Dataset, load_file
from cnnkit.errors import UserError

FOLDER = "challenge"
DEFAULT_SHARE = 0.2
SHARE_RANGE = (0.05, 0.5)


class ChallengeError(UserError):
    """A challenge the lecturer asked for cannot be opened or changed as asked."""


# --- what the lecturer opened ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Challenge:
    """One open challenge: its dataset, its hidden set's origin, and when it ends."""

    dataset_name: str
    dataset_title: str
    source: str                    # "share" (of the test split) or "file" (the lecturer's upload)
    hidden_count: int
    opened: float
    share: float = 0.0
    seed: int = 0
    file_name: str = ""
    ends_at: float | None = None   # frozen from this moment on
    frozen_at: float | None = None  # frozen with the button

    def freeze_time(self) -> float | None:
        """When the leaderboard stopped taking runs (the earlier of the button and the end time), or None."""
        moments = [t for t in (self.frozen_at, self.ends_at) if t is not None]
        return min(moments) if moments else None

    def is_frozen(self, now: float | None = None) -> bool:
        t = self.freeze_time()
        return t is not None and (time.time() if now is None else now) >= t

    def describe(self) -> str:
        """One sentence on the hidden set, for the Class page."""
        if self.source == "file":
            return (f"{self.dataset_title}: the hidden test set is your file {self.file_name} "
                    f"({self.hidden_count:,} images).")
        return (f"{self.dataset_title}: {self.hidden_count:,} test images ({self.share:.0%} of each class, seed "
                f"{self.seed}) are hidden from the students' pages.")

    @classmethod
    def from_dict(cls, d: dict) -> Challenge:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def hidden_indices(y_test: np.ndarray, share: float, seed: int) -> np.ndarray:
    """The hidden part of a test split: `share` of each class's images (at least one, and one always left
    visible for a class of two or more), chosen with `seed`; sorted indices. Same labels and seed, same set."""
    y = np.asarray(y_test, dtype=np.int64)
    rng = np.random.default_rng(int(seed))
    picked = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        k = int(round(share * len(members)))
        k = min(max(k, 1), max(len(members) - 1, 1)) if len(members) else 0
        picked.append(rng.permutation(members)[:k])
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def visible_indices(y_test: np.ndarray, share: float, seed: int) -> np.ndarray:
    """The rest of the test split: what the students' pages use."""
    return np.setdiff1d(np.arange(len(y_test)), hidden_indices(y_test, share, seed))


_views: weakref.WeakKeyDictionary[Dataset, tuple[float, Dataset]] = weakref.WeakKeyDictionary()
_views_lock = threading.Lock()


def visible_dataset(ds: Dataset, challenge: Challenge | None) -> Dataset:
    """The dataset a student's page may show: with a challenge on a share of this dataset's test split, the
    same dataset with those test images left out (one copy per process and challenge); else `ds` itself."""
    if (challenge is None or challenge.source != "share" or ds.name != challenge.dataset_name
            or ds.source == "file"):
        return ds
    with _views_lock:
        found = _views.get(ds)
        if found is not None and found[0] == challenge.opened:
            return found[1]
    keep = visible_indices(ds.y_test, challenge.share, challenge.seed)
    held = len(ds.y_test) - len(keep)
    view = Dataset(name=ds.name, title=ds.title, x_train=ds.x_train, y_train=ds.y_train, x_test=ds.x_test[keep],
                   y_test=ds.y_test[keep], class_names=ds.class_names, source=ds.source,
                   source_text=f"{ds.source_text.rstrip('.')}; {held:,} test images are held back for the class "
                               "challenge", notes=list(ds.notes))
    with _views_lock:
        _views[ds] = (challenge.opened, view)
    return view


# --- the store under the class folder -------------------------------------------------------------------
def _write_json(path: Path, data: Any) -> None:
    """Replace `path`; a disk that refuses is a ChallengeError with the sentence (and the Class page's note)."""
    with disk_faults.refusing("class", ChallengeError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


_FOLDER_LOCKS: dict[str, threading.RLock] = {}
_FOLDER_LOCKS_LOCK = threading.Lock()


def _folder_lock(folder: Path) -> threading.RLock:
    # One lock per folder for every store of this process: the scorer thread and the job poller both write
    # scores.json (read, add, replace), and two stores with a lock each would lose each other's scores.
    with _FOLDER_LOCKS_LOCK:
        return _FOLDER_LOCKS.setdefault(str(Path(folder).resolve()), threading.RLock())


class ChallengeStore:
    """The challenge, its hidden file and its scores on disk; every method reads the disk again (a few
    small files), so a new process — or another ClassBook — sees what the last one wrote."""

    def __init__(self, folder: Path | str | None = None) -> None:
        self._folder = Path(folder) if folder is not None else None

    @property
    def _lock(self) -> threading.RLock:
        return _folder_lock(self.folder)

    @property
    def folder(self) -> Path:
        """The given folder, else the class folder's (read each time, as the class book's is)."""
        return self._folder if self._folder is not None else classroom.class_dir() / FOLDER

    @property
    def _challenge_file(self) -> Path:
        return self.folder / "challenge.json"

    @property
    def _scores_file(self) -> Path:
        return self.folder / "scores.json"

    @property
    def _hidden_file(self) -> Path:
        return self.folder / "hidden.npz"

    # the challenge
    def current(self) -> Challenge | None:
        data = _read_json(self._challenge_file)
        if not isinstance(data, dict):
            return None
        try:
            return Challenge.from_dict(data)
        except TypeError:
            return None   # a hand-edited file this version cannot read: no challenge

    def _save(self, challenge: Challenge) -> Challenge:
        with self._lock:
            _write_json(self._challenge_file, asdict(challenge))
            _write_json(self._scores_file, {"opened": challenge.opened, "scores": {}})
        return challenge

    def open_share(self, ds: Dataset, share: float = DEFAULT_SHARE, seed: int | None = None,
                   ends_at: float | None = None) -> Challenge:
        """Open a challenge whose hidden set is `share` of each class of `ds`'s test split."""
        lo, hi = SHARE_RANGE
        if not lo <= float(share) <= hi:
            raise ChallengeError(f"The hidden share must be between {lo:.0%} and {hi:.0%} of the test images, "
                                 f"not {float(share):.0%}.")
        if ds.source == "file":
            raise ChallengeError("A challenge is opened on a catalogue dataset; for your own images, upload them "
                                 "as the hidden test file instead.")
        seed = int(seed) if seed is not None else int(time.time()) % 100_000
        n = len(hidden_indices(ds.y_test, share, seed))
        with disk_faults.refusing("class", ChallengeError):
            self._hidden_file.unlink(missing_ok=True)
        return self._save(Challenge(dataset_name=ds.name, dataset_title=ds.title, source="share", hidden_count=n,
                                    opened=time.time(), share=float(share), seed=seed,
                                    ends_at=_future(ends_at)))

    def open_file(self, ds: Dataset, path: str | os.PathLike, ends_at: float | None = None,
                  file_name: str | None = None) -> Challenge:
        """Open a challenge whose hidden set is every image of the lecturer's file (train and test parts
        together), read with the checks any upload gets; its images must fit `ds`."""
        name = file_name or Path(path).name
        got = load_file(path, name=ds.name)
        if got.image_shape != ds.image_shape:
            raise ChallengeError(f"The images in {name} are {got.image_shape[0]}×{got.image_shape[1]}×"
                                 f"{got.image_shape[2]}, but {ds.title}'s are {ds.image_shape[0]}×"
                                 f"{ds.image_shape[1]}×{ds.image_shape[2]}: the hidden test set must look like "
                                 "the dataset the class trains on.")
        held = got.x_train.nbytes + got.x_test.nbytes + got.y_train.nbytes + got.y_test.nbytes
        limits.check_memory(2 * held, ChallengeError, f"Keeping {name} as the hidden set (read, then joined)",
                            "Use a smaller hidden test file (a few thousand images is plenty).")
        x = np.concatenate([got.x_train, got.x_test])
        y = np.concatenate([got.y_train, got.y_test])
        if int(y.max()) >= ds.num_classes:
            raise ChallengeError(f"{name} has labels up to {int(y.max())}, but {ds.title} has {ds.num_classes} "
                                 f"classes (labels 0–{ds.num_classes - 1}).")
        with self._lock:
            with disk_faults.refusing("class", ChallengeError):
                self.folder.mkdir(parents=True, exist_ok=True)
                tmp = self.folder / f".hidden.{os.getpid()}.npz"
                np.savez(tmp, x=x, y=y)
                os.replace(tmp, self._hidden_file)
            return self._save(Challenge(dataset_name=ds.name, dataset_title=ds.title, source="file",
                                        hidden_count=len(y), opened=time.time(), file_name=name,
                                        ends_at=_future(ends_at)))

    def _change(self, **changes) -> Challenge:
        with self._lock:
            current = self.current()
            if current is None:
                raise ChallengeError("No challenge is open: open one first.")
            changed = replace(current, **changes)
            _write_json(self._challenge_file, asdict(changed))
            return changed

    def freeze(self, now: float | None = None) -> Challenge:
        """Freeze the leaderboard now: runs that finish later are scored but not ranked."""
        return self._change(frozen_at=time.time() if now is None else now)

    def unfreeze(self) -> Challenge:
        """Take runs again (the button's freeze and the end time both lifted)."""
        return self._change(frozen_at=None, ends_at=None)

    def set_end(self, ends_at: float | None) -> Challenge:
        return self._change(ends_at=_future(ends_at))

    def close(self) -> None:
        """End the challenge: its hidden set and scores go; the students' pages show the whole test split."""
        with self._lock, disk_faults.refusing("class", ChallengeError):
            for p in (self._challenge_file, self._scores_file, self._hidden_file):
                p.unlink(missing_ok=True)

    # the hidden set
    def hidden_set(self, challenge: Challenge, ds: Dataset | None) -> tuple[np.ndarray, np.ndarray]:
        """The hidden images and labels (only the scorer and the tests read them)."""
        if challenge.source == "file":
            with np.load(self._hidden_file, allow_pickle=False) as f:
                return f["x"], f["y"].astype(np.int64)
        if ds is None:
            raise ChallengeError(f"{challenge.dataset_title} is not loaded, so its hidden share cannot be read.")
        idx = hidden_indices(ds.y_test, challenge.share, challenge.seed)
        return ds.x_test[idx], ds.y_test[idx]

    # scores, cached per run
    def scores(self, challenge: Challenge | None = None) -> dict[str, dict]:
        challenge = challenge or self.current()
        data = _read_json(self._scores_file)
        if challenge is None or not isinstance(data, dict) or data.get("opened") != challenge.opened:
            return {}
        found = data.get("scores")
        return found if isinstance(found, dict) else {}

    def record(self, challenge: Challenge, run_id: str, score: dict) -> None:
        self.record_many(challenge, {run_id: score})

    def record_many(self, challenge: Challenge, scores: dict[str, dict], replace: bool = True) -> None:
        """Keep these runs' scores (one write), each stamped with when it reached the leaderboard; with
        `replace` False a run already scored keeps its score."""
        now = time.time()
        with self._lock:
            data = _read_json(self._scores_file)
            if not isinstance(data, dict) or data.get("opened") != challenge.opened:
                data = {"opened": challenge.opened, "scores": {}}
            kept = data.setdefault("scores", {})
            for run_id, score in scores.items():
                if replace or run_id not in kept:
                    kept[run_id] = dict(score, recorded=now)
            try:
                _write_json(self._scores_file, data)
            except ChallengeError:
                pass   # the scorer's thread or the job poller: recorded for the Class page, scored again later

    def changed(self) -> tuple[int, ...]:
        """When the challenge and its scores last changed (two stats: a poller's cheap look for news)."""
        out = []
        for p in (self._challenge_file, self._scores_file):
            try:
                out.append(p.stat().st_mtime_ns)
            except OSError:
                out.append(0)
        return tuple(out)


def _future(ends_at: float | None) -> float | None:
    if ends_at is None:
        return None
    if float(ends_at) <= time.time():
        raise ChallengeError("The end time has already passed: choose a later one, or freeze the leaderboard now.")
    return float(ends_at)


# --- scoring ------------------------------------------------------------------------------------------
def challenge_runs(challenge: Challenge, root: Path | None = None) -> list[runs.Run]:
    """Every finished run of the class on the challenge's dataset (shared copies left out: the original
    counts; a model saved from a file a student brought left out: it was not trained here)."""
    return [r for r in runs.list_runs(root=root, only_owner=False, dataset_name=challenge.dataset_name)
            if not r.shared and not r.from_file]


# --- the leaderboard ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    """One line of the leaderboard."""

    rank: int
    student: str
    owner: str | None
    model: str
    parameters: int | None
    flops: int | None
    epochs: int | None
    accuracy: float
    run_id: str
    created: float


@dataclass
class Leaderboard:
    entries: list[Entry]
    waiting: int = 0         # runs not scored yet
    frozen: bool = False
    late: int = 0            # runs finished after the freeze (scored, not ranked)
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        return [{"Rank": e.rank, "Student": e.student, "Model": e.model, "Parameters": e.parameters,
                 "FLOPs": e.flops, "Epochs": e.epochs, "Hidden accuracy": e.accuracy} for e in self.entries]


def _order(e: Entry) -> tuple:
    return (-e.accuracy, e.parameters if e.parameters is not None else float("inf"), e.created, e.run_id)


def rank_entries(entries: Iterable[Entry], best_only: bool = True) -> list[Entry]:
    """Highest hidden accuracy first, ties broken by fewer parameters (then the earlier run); with
    `best_only`, each student's best entry only. Equal accuracy and parameters share a rank (1, 2, 2, 4)."""
    ordered = sorted(entries, key=_order)
    if best_only:
        seen, kept = set(), []
        for e in ordered:
            who = e.owner if e.owner is not None else "\0command line"
            if who not in seen:
                seen.add(who)
                kept.append(e)
        ordered = kept
    out: list[Entry] = []
    for i, e in enumerate(ordered):
        prev = out[-1] if out else None
        same = prev is not None and (prev.accuracy, prev.parameters) == (e.accuracy, e.parameters)
        out.append(replace(e, rank=prev.rank if same else i + 1))
    return out


def leaderboard(challenge: Challenge, store: ChallengeStore, names: classroom.ClassBook, *,
                best_only: bool = True, root: Path | None = None, now: float | None = None) -> Leaderboard:
    """The challenge's leaderboard from the runs and the cached scores (never scores anything itself)."""
    scores = store.scores(challenge)
    class_runs = challenge_runs(challenge, root)
    until = challenge.freeze_time() if challenge.is_frozen(now) else None
    labels = names.labels([r.owner for r in sorted(class_runs, key=lambda r: r.created)])
    entries, waiting, late, failed = [], 0, 0, 0
    for r in class_runs:
        s = scores.get(r.id)
        if until is not None and r.created > until:
            late += 1
            continue
        if s is None:
            waiting += 1
            continue
        if "accuracy" not in s:
            failed += 1
            continue
        row = classroom.run_row(r, labels.get(r.owner) or names.label(r.owner))
        entries.append(Entry(rank=0, student=row.student, owner=r.owner, model=row.architecture,
                             parameters=row.parameters, flops=row.flops, epochs=row.epochs,
                             accuracy=float(s["accuracy"]), run_id=r.id, created=r.created))
    notes = []
    if failed:
        notes.append(f"{failed} run{'s' if failed != 1 else ''} could not be scored (a model that does not take "
                     "the hidden images, or a damaged file).")
    return Leaderboard(entries=rank_entries(entries, best_only), waiting=waiting, frozen=until is not None,
                       late=late, notes=notes)


def standing(board: Leaderboard, owner: str) -> tuple[Entry, int] | None:
    """A student's best entry on a best-only leaderboard and how many are ranked, or None."""
    for e in board.entries:
        if e.owner == owner:
            return e, len(board.entries)
    return None


def leaderboard_csv(board: Leaderboard) -> str:
    """The leaderboard as CSV, hidden accuracy as a fraction with four decimals."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["rank", "student", "model", "parameters", "flops", "epochs", "hidden_accuracy"])
    for e in board.entries:
        w.writerow([e.rank, _csv_safe(e.student), _csv_safe(e.model), e.parameters, e.flops, e.epochs,
                    f"{e.accuracy:.4f}"])
    return buf.getvalue()


def _csv_safe(text: str) -> str:
    # A spreadsheet reads a cell starting with = + - @ as a formula: a student's name must stay text.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def catalogue_title(name: str) -> str:
    info = CATALOGUE.get(name)
    return info.title if info is not None else name
