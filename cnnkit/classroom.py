"""The class as a lecturer sees it, and what a lecturer decides for the class.

What this module owns:
- `ClassBook`: the class's server-side record, one JSON file (`class.json` in
  `CNNKIT_CLASS_DIR`, default `<runs dir>/.class`): each student's number ("student 7")
  and optional nickname, the browsers unlocked with the lecturer key, and the
  per-student limits the lecturer set on the Class page. Students are keyed by
  `identity.owner_key`, never by their raw id. Nicknames are NFKC-normalised and cleaned
  of invisible characters; one that looks like another's (`identity.look_alike_skeleton`)
  or like "student N" is refused. The Class page's key box calls `try_lecturer_key`,
  behind the server-wide throttle of wrong keys (`identity.LECTURER_KEY_THROTTLE`).
- `ClassLimits`: per-student limits in class mode (epochs cap, training-image cap,
  one job at a time). The environment gives the defaults (`CNNKIT_CLASS_MAX_EPOCHS`,
  `CNNKIT_CLASS_MAX_TRAIN_IMAGES`, `CNNKIT_CLASS_ONE_JOB`); what the lecturer sets on
  the Class page is stored in the class book and wins. `apply_limits` is what the one
  Start path (`cnnkit.jobs.start`) applies before any job is submitted.
- `summarize`: every run and job of the class in rows a page can show (student,
  architecture, parameters, FLOPs, epochs, test accuracy), the counts at the top of the
  page and the points of the accuracy-against-parameters scatter.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnkit import disk_faults, identity, runs, settings
from cnnkit.errors import TrainingError, UserError

CLASS_FILE = "class.json"
NICKNAME_MAX = 24
PARALLEL_JOBS = 3   # jobs a student may run side by side when the lecturer lifts "one job at a time"


class ClassroomError(UserError):
    """A nickname or a class limit the lecturer or a student typed cannot be used."""


def class_dir() -> Path:
    env = settings.get("class_dir")
    return Path(env).resolve() if env else runs.runs_dir() / ".class"


# --- limits ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassLimits:
    """What one student may ask of the shared server in class mode; None = no limit."""

    max_epochs: int | None = None
    max_train_images: int | None = None
    one_job_at_a_time: bool = True

    @property
    def jobs_at_a_time(self) -> int:
        """How many jobs one student may have queued or running at once."""
        return 1 if self.one_job_at_a_time else PARALLEL_JOBS

    @classmethod
    def from_env(cls, env=None) -> ClassLimits:
        """The limits the settings give (CNNKIT_CLASS_MAX_EPOCHS, …), or those in the mapping `env`."""
        def read(name):
            return settings.get(name, ClassroomError, environ=env)

        return cls(max_epochs=read("class_max_epochs"), max_train_images=read("class_max_train_images"),
                   one_job_at_a_time=read("class_one_job"))

    def validate(self) -> ClassLimits:
        out = {}
        for name, what, low in (("max_epochs", "epochs cap", 1), ("max_train_images", "training-image cap", 10)):
            v = getattr(self, name)
            if v is None:
                out[name] = None
                continue
            try:
                n = int(v)
            except (TypeError, ValueError):
                raise ClassroomError(f"The {what} must be a whole number, not {v!r}.") from None
            if n < low:
                raise ClassroomError(f"The {what} must be at least {low} (it is {n}); leave it off for no limit.")
            out[name] = n
        return ClassLimits(one_job_at_a_time=bool(self.one_job_at_a_time), **out)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassLimits:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names}).validate()

    def sentences(self) -> list[str]:
        """The limits in a student's words, for the training page."""
        out = []
        if self.max_epochs:
            out.append(f"at most {self.max_epochs} epoch{'s' if self.max_epochs != 1 else ''} per job")
        if self.max_train_images:
            out.append(f"at most {self.max_train_images:,} training images per job")
        out.append("one job at a time" if self.one_job_at_a_time else f"up to {PARALLEL_JOBS} jobs at a time")
        return out

    def describe(self) -> str:
        parts = self.sentences()
        return ("Your lecturer's limits for this class: " + ", ".join(parts) + ".") if parts else ""


def apply_limits(hyper, limits: ClassLimits, *, active_jobs: int = 0,
                 num_train: int | None = None) -> tuple[Any, list[str]]:
    """The job's settings within the class limits, and one sentence per change made, in the values the
    student gave (`hyper`). `cnnkit.jobs.start` calls it: every Start goes through there.

    More epochs than the cap are lowered to it; training images are capped through the
    settings' `train_images` (a stratified subset) unless the dataset's `num_train` already fits.
    A student who already has as many jobs queued or running as the class allows
    (`ClassLimits.jobs_at_a_time`) gets a TrainingError.
    """
    if active_jobs >= limits.jobs_at_a_time:
        raise TrainingError(
            "Your lecturer allows one training job at a time in this class: stop your job or let it finish, then "
            "start the next." if limits.jobs_at_a_time == 1 else
            f"Your lecturer allows {limits.jobs_at_a_time} training jobs at a time in this class and you have "
            f"{active_jobs}: stop one or let it finish, then start the next.")
    notes = []
    changes: dict[str, Any] = {}
    if limits.max_epochs and int(hyper.epochs) > limits.max_epochs:
        changes["epochs"] = limits.max_epochs
        notes.append(f"Your lecturer caps jobs at {limits.max_epochs} epochs in this class, so this job trains "
                     f"{limits.max_epochs} instead of {int(hyper.epochs)}.")
    if limits.max_train_images and "train_images" in {f.name for f in dataclasses.fields(hyper)}:
        asked = hyper.train_images
        wanted = int(asked) if asked is not None else num_train   # None: all of the dataset's images
        if wanted is None or wanted > limits.max_train_images:
            changes["train_images"] = limits.max_train_images
            of = f" instead of {wanted:,}" if wanted is not None else ""
            notes.append(f"Your lecturer caps jobs at {limits.max_train_images:,} training images in this class, "
                         f"so this job trains on a stratified {limits.max_train_images:,}{of}.")
    return (dataclasses.replace(hyper, **changes) if changes else hyper), notes


# --- the class book -------------------------------------------------------------------------------
def clean_nickname(text: str) -> str:
    """A nickname as stored: NFKC-normalised, without control or bidi characters, blanks collapsed, at most
    NICKNAME_MAX letters, digits, spaces and . - _ '. An empty string clears the nickname."""
    name = identity.visible_text(str(text or ""))
    if not name:
        return ""
    if len(name) > NICKNAME_MAX:
        raise ClassroomError(f"A nickname can have at most {NICKNAME_MAX} characters; {name[:30]!r} has {len(name)}.")
    bad = sorted({c for c in name if not (c.isalnum() or c in " .-_'")})
    if bad:
        raise ClassroomError(f"A nickname can use letters, digits, spaces and . - _ ' only, not {' '.join(bad)}.")
    # Compared by what it looks like: "ѕtudent 2" with a Cyrillic ѕ, or "Student l0", is a "student N" too.
    if re.fullmatch(r"(student|lecturer)( ?[0-9lo]+)?", identity.look_alike_skeleton(name)):
        raise ClassroomError(f"{name!r} is (or looks like) how the class page names people without a nickname; "
                             "choose another.")
    return name


@dataclass(frozen=True)
class KeyAttempt:
    """What typing a lecturer key on the Class page came to: `unlocked`, or `sentence` to show."""

    unlocked: bool
    sentence: str = ""
    wait_s: float = 0.0   # > 0: refused without being compared; the server takes the next key after this


class ClassBook:
    """The class's record on disk: numbers and nicknames, lecturer browsers, limits.

    One JSON file, rewritten whole by rename under a lock; reads are cached until the
    file changes, so every student's rerun can ask for a name or the limits for free.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else class_dir() / CLASS_FILE
        self._lock = threading.Lock()
        self._cache: tuple[int, dict] | None = None

    # reading and writing
    def _stamp(self) -> int | None:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    def _read_locked(self) -> dict:
        stamp = self._stamp()
        if self._cache is None or self._cache[0] != stamp:
            try:
                data = json.loads(self.path.read_text()) if stamp is not None else {}
            except (OSError, ValueError):
                data = {}  # a damaged book starts afresh (numbers are given again; runs are untouched)
            if not isinstance(data, dict):
                data = {}
            data.setdefault("students", {})
            data.setdefault("lecturers", {})
            data.setdefault("limits", None)
            self._cache = (stamp, data)
        return self._cache[1]

    def _write_locked(self, data: dict) -> None:
        """Replace the file; on a disk that refuses (read-only, full) the book lives on in this process's memory
        until the file changes, and `disk_faults` tells the student and the Class page."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        self._cache = (self._stamp(), data)
        with disk_faults.refusing("class"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
                os.replace(tmp, self.path)
            finally:
                tmp.unlink(missing_ok=True)
            self._cache = (self._stamp(), data)

    def _update(self, fn) -> Any:
        with self._lock:
            data = json.loads(json.dumps(self._read_locked()))  # a private copy to change
            result = fn(data)
            self._write_locked(data)
            return result

    # students
    def number(self, owner: str) -> int:
        """The student's number in this class, given on first sight and kept ("student 7")."""
        key = identity.owner_key(owner)
        with self._lock:
            entry = self._read_locked()["students"].get(key)
        if entry and entry.get("number"):
            return int(entry["number"])
        return self.numbers([owner])[owner]

    def numbers(self, owners: Iterable[str]) -> dict[str, int]:
        """Numbers for many students at once, new ones given in the order listed (one write at most)."""
        owners = list(dict.fromkeys(o for o in owners if o))
        keys = {o: identity.owner_key(o) for o in owners}
        with self._lock:
            students = self._read_locked()["students"]
            missing = [o for o in owners if not students.get(keys[o], {}).get("number")]
        if missing:
            def add(data):
                st = data["students"]
                nxt = max((int(e.get("number", 0)) for e in st.values()), default=0) + 1
                for o in missing:
                    e = st.setdefault(keys[o], {})
                    if not e.get("number"):
                        e["number"] = nxt
                        nxt += 1
            self._update(add)
        with self._lock:
            students = self._read_locked()["students"]
        return {o: int(students[keys[o]]["number"]) for o in owners}

    def nickname(self, owner: str) -> str:
        with self._lock:
            entry = self._read_locked()["students"].get(identity.owner_key(owner)) or {}
        return entry.get("nickname", "")

    def set_nickname(self, owner: str, text: str) -> str:
        """Store the student's nickname (cleaned; empty clears it); ClassroomError says what is wrong."""
        name = clean_nickname(text)
        key = identity.owner_key(owner)
        self.number(owner)

        def put(data):
            entry = data["students"].setdefault(key, {})
            if name:
                looks = identity.look_alike_skeleton(name)
                taken = [e["nickname"] for k, e in data["students"].items()
                         if k != key and identity.look_alike_skeleton(e.get("nickname", "")) == looks]
                if any(other.casefold() == name.casefold() for other in taken):
                    raise ClassroomError(f"Someone in this class already goes by {name!r}; add an initial or a "
                                         "number to tell you apart.")
                if taken:  # the other's nickname is not said: only the lecturer sees the class's names
                    raise ClassroomError(f"Someone in this class already goes by a nickname that looks just like "
                                         f"{name!r}; choose one that looks different (add an initial or a number).")
                entry["nickname"] = name
            else:
                entry.pop("nickname", None)
        self._update(put)
        return name

    def label(self, owner: str | None) -> str:
        """How the class page names a student: their nickname, else "student N"."""
        if not owner:
            return "command line"
        return self.nickname(owner) or f"student {self.number(owner)}"

    def labels(self, owners: Iterable[str | None]) -> dict[str | None, str]:
        owners = list(dict.fromkeys(owners))
        nums = self.numbers([o for o in owners if o])
        with self._lock:
            students = self._read_locked()["students"]
        out: dict[str | None, str] = {}
        for o in owners:
            if not o:
                out[o] = "command line"
                continue
            nick = (students.get(identity.owner_key(o)) or {}).get("nickname", "")
            out[o] = nick or f"student {nums[o]}"
        return out

    def labels_by_key(self, keys: Iterable[str]) -> dict[str, str]:
        """How the class page names students known only by their `identity.owner_key` (a drawing's contributor):
        nickname, else "student N"; a key the book has never seen is left out."""
        with self._lock:
            students = self._read_locked()["students"]
        out = {}
        for k in keys:
            e = students.get(k) or {}
            if e.get("nickname") or e.get("number"):
                out[k] = e.get("nickname") or f"student {e['number']}"
        return out

    # lecturer browsers
    def unlock(self, owner: str, typed_key: str, configured_key: str | None) -> bool:
        """Remember this browser as the lecturer's when the typed key is the configured one. Not throttled:
        a page calls `try_lecturer_key`."""
        if not identity.key_matches(typed_key, configured_key):
            return False
        token = identity.lecturer_token(owner, configured_key)

        def put(data):
            data["lecturers"][identity.owner_key(owner)] = token
        self._update(put)
        return True

    def try_lecturer_key(self, owner: str, typed_key: str, configured_key: str | None,
                         throttle: identity.KeyThrottle | None = None) -> KeyAttempt:
        """What the Class page's key box calls: `unlock` behind the server-wide throttle of wrong keys
        (`identity.LECTURER_KEY_THROTTLE`: every session's guesses count together, so ten tabs guessing
        at once are refused after the first few, without their keys being compared)."""
        throttle = throttle or identity.LECTURER_KEY_THROTTLE
        guess = throttle.guess(typed_key, configured_key)
        if guess.matches:
            self.unlock(owner, typed_key, configured_key)
            return KeyAttempt(True)
        if guess.wait_s > 0:
            return KeyAttempt(False, f"Too many wrong lecturer keys were typed on this server: the next key is "
                                     f"checked in {math.ceil(guess.wait_s)} s. Wait, then type it again.",
                              guess.wait_s)
        wait = throttle.wait_left()
        later = (f" After several wrong keys the server checks the next one in {math.ceil(wait)} s."
                 if wait > 0 else "")
        return KeyAttempt(False, "That is not the lecturer key. Check it with whoever started the app "
                                 "(CNNKIT_LECTURER_KEY in its environment or secrets)." + later)

    def lock(self, owner: str) -> None:
        """Forget that this browser holds the lecturer key."""
        def drop(data):
            data["lecturers"].pop(identity.owner_key(owner), None)
        self._update(drop)

    def is_lecturer(self, owner: str | None, configured_key: str | None) -> bool:
        if not owner or not configured_key:
            return False
        with self._lock:
            token = self._read_locked()["lecturers"].get(identity.owner_key(owner))
        return bool(token) and identity.key_matches(token, identity.lecturer_token(owner, configured_key))

    # limits
    def limits(self) -> ClassLimits:
        """The lecturer's limits if set on the Class page, else the environment's."""
        with self._lock:
            stored = self._read_locked().get("limits")
        if stored:
            try:
                return ClassLimits.from_dict(stored)
            except ClassroomError:
                pass  # a hand-edited file with a bad value: fall back to the environment's limits
        return ClassLimits.from_env()

    def limits_source(self) -> str:
        """"class page" when the lecturer set the limits there, else "environment"."""
        with self._lock:
            return "class page" if self._read_locked().get("limits") else "environment"

    def set_limits(self, limits: ClassLimits) -> ClassLimits:
        limits = limits.validate()

        def put(data):
            data["limits"] = limits.to_dict()
        self._update(put)
        return limits

    def reset_limits(self) -> ClassLimits:
        def drop(data):
            data["limits"] = None
        self._update(drop)
        return ClassLimits.from_env()


_books: dict[Path, ClassBook] = {}
_books_lock = threading.Lock()


def book(path: Path | str | None = None) -> ClassBook:
    """The process's ClassBook for this file (one lock and one read cache per file)."""
    p = (Path(path) if path is not None else class_dir() / CLASS_FILE).resolve()
    with _books_lock:
        if p not in _books:
            _books[p] = ClassBook(p)
        return _books[p]


# --- the summary ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunRow:
    """One run as the class page lists it."""

    id: str
    student: str
    architecture: str
    dataset_name: str
    parameters: int | None
    flops: int | None
    epochs: int | None
    test_accuracy: float | None
    created: float
    shared: bool               # shared with the class (a run and its shared copy are one row)
    path: str                  # the run's folder (the copy's, when only the copy is left)
    shared_from: str | None = None   # for a copy whose run is gone: the id of the run it was copied from
    shared_copy: str | None = None   # the shared copy's folder (what "Take back" removes)


@dataclass(frozen=True)
class JobRow:
    """One job queued or running, as the class page lists it."""

    student: str
    architecture: str
    dataset_name: str
    state: str                 # "running" or "queued"
    progress: str              # "epoch 3/8 · 41%" or "number 2 in line"
    fraction: float
    queue_position: int | None


@dataclass
class ClassSummary:
    runs: list[RunRow]
    jobs: list[JobRow]
    counts: dict[str, int] = field(default_factory=dict)
    best_accuracy: float | None = None   # the best test accuracy of the runs listed

    def scatter_points(self) -> list[dict[str, Any]]:
        """Test accuracy against parameters, one point per run that has both, with its hover words and its
        label on the projector (the student's name, shortened). A shared run is one point, drawn as shared."""
        return [{"parameters": r.parameters, "test_accuracy": r.test_accuracy, "student": r.student,
                 "label": short_label(r.student), "architecture": r.architecture, "dataset": r.dataset_name,
                 "epochs": r.epochs, "flops": r.flops, "shared": r.shared, "id": r.id}
                for r in self.runs if r.test_accuracy is not None and r.parameters]

    def table(self) -> list[dict[str, Any]]:
        """The runs as table rows (best test accuracy first within each dataset is the page's sort)."""
        return [{"Student": r.student, "Architecture": r.architecture, "Dataset": r.dataset_name,
                 "Parameters": r.parameters, "FLOPs": r.flops, "Epochs": r.epochs,
                 "Test accuracy": r.test_accuracy, "Shared": r.shared,
                 "When": time.strftime("%H:%M", time.localtime(r.created))} for r in self.runs]


_cost_cache: dict[tuple[str, float], tuple[int | None, int | None]] = {}


def _cost(run: runs.Run) -> tuple[int | None, int | None]:
    """Parameters and forward FLOPs of a run's model, from its spec (no Keras); cached per run."""
    key = (str(run.path), run.created)
    if key not in _cost_cache:
        from cnnkit.spec import ModelSpec

        try:
            s = ModelSpec.from_dict(run.spec_dict).summary()
            _cost_cache[key] = (int(s.total_params), int(s.flops))
        except (UserError, KeyError, TypeError, ValueError):
            _cost_cache[key] = (None, None)  # a spec this version cannot read: the row says "—"
    return _cost_cache[key]


def _epochs(run: runs.Run) -> int | None:
    n = run.metrics.get("epochs_run")
    if isinstance(n, (int, float)):
        return int(n)
    loss = run.history.get("loss")
    return len(loss) if isinstance(loss, list) else None


def _architecture(run: runs.Run) -> str:
    return str(run.spec_dict.get("name") or run.title or "unnamed model")


def run_row(run: runs.Run, student: str) -> RunRow:
    params, flops = _cost(run)
    acc = run.metrics.get("test_accuracy")
    return RunRow(id=run.id, student=student, architecture=_architecture(run), dataset_name=run.dataset_name,
                  parameters=params, flops=flops, epochs=_epochs(run),
                  test_accuracy=float(acc) if isinstance(acc, (int, float)) else None,
                  created=run.created, shared=run.shared, path=str(run.path),
                  shared_from=run.extra.get("shared_from") if run.shared else None)


def summarize(class_runs: list[runs.Run], jobs: Iterable[Any], names: ClassBook) -> ClassSummary:
    """Every run and active job of the class, named by nickname or number.

    `jobs` are job snapshots (owner, title, dataset_name, state, epoch, epochs, job_fraction,
    queue_position); only queued and running ones are listed. Students get their numbers
    in the order they first appear (oldest run or job first).
    """
    jobs = [j for j in jobs if _state(j) in ("running", "queued")]
    order = sorted([(r.created, r.owner) for r in class_runs if r.owner and not r.shared]
                   + [(float(getattr(j, "created", 0) or 0), j.owner) for j in jobs if j.owner],
                   key=lambda t: t[0])
    labels = names.labels([o for _, o in order])
    copies = {r.extra.get("shared_from"): r for r in class_runs if r.shared and r.extra.get("shared_from")}
    originals = {r.id for r in class_runs if not r.shared}
    rows = []
    for r in class_runs:
        if r.shared and r.extra.get("shared_from") in originals:
            continue   # a shared copy and the run it was copied from are one row: the run's, marked shared
        if r.shared:
            by = r.extra.get("shared_by")
            student = f"shared by {by}" if by else "shared"
        else:
            student = labels.get(r.owner) or names.label(r.owner)
        row = run_row(r, student)
        if r.shared or r.id in copies:
            row = dataclasses.replace(row, shared=True, shared_copy=str((copies.get(r.id) or r).path))
        rows.append(row)
    rows.sort(key=lambda r: r.created, reverse=True)
    job_rows = []
    for j in jobs:
        state = _state(j)
        frac = float(getattr(j, "job_fraction", 0.0) or 0.0)
        if state == "queued":
            progress = f"number {j.queue_position} in line" if j.queue_position else "waiting"
        else:
            progress = f"epoch {min(int(j.epoch) + 1, int(j.epochs))}/{int(j.epochs)} · {frac:.0%}"
        job_rows.append(JobRow(student=labels.get(j.owner) or names.label(j.owner),
                               architecture=str(j.title or "unnamed model"), dataset_name=str(j.dataset_name),
                               state=state,
                               progress=progress, fraction=frac, queue_position=j.queue_position))
    job_rows.sort(key=lambda j: (j.state != "running", j.queue_position or 0, j.student))
    # The counts are counted from the rows listed: they never say something the lists below them do not show.
    students = {o for _, o in order}
    accs = [r.test_accuracy for r in rows if r.test_accuracy is not None]
    counts = {"students": len(students), "runs": len(rows),
              "shared": sum(r.shared for r in rows), "running": sum(j.state == "running" for j in job_rows),
              "queued": sum(j.state == "queued" for j in job_rows)}
    return ClassSummary(runs=rows, jobs=job_rows, counts=counts, best_accuracy=max(accs) if accs else None)


def short_label(name: str, most: int = 14) -> str:
    """A name short enough to label a point on the projector: "Ada Lovelace-By…"."""
    name = " ".join(str(name).split())
    return name if len(name) <= most else name[:most - 1].rstrip() + "…"


def _state(job) -> str:
    s = getattr(job, "state", "")
    return str(getattr(s, "value", s))


def class_runs(root: Path | None = None) -> list[runs.Run]:
    """Every run in the runs folder and the shared folder, whoever made it (the lecturer's view)."""
    return runs.list_runs(root=root, only_owner=False)
