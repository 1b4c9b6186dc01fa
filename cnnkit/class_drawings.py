"""A dataset the class draws: collections of 28×28 drawings, stored in SQLite, and a collection as a `Dataset`.

What this module owns:
- `Collection`: one collection as plain data — a name, 2–20 class names (checked: non-empty, unique after
  NFKC and case folding, at most 24 characters), its caps (drawings per student, in all; defaults from
  `CNNKIT_DRAWINGS_PER_STUDENT` and `CNNKIT_DRAWINGS_TOTAL`) and whether it is open.
- `DrawingStore`: every collection of one place in one SQLite file (the standard library's `sqlite3`, WAL
  mode, so many small writes from several server processes queue instead of clobbering each other):
  the class's under the class folder (`store_for(owner, class_mode=True)`), a student's own under their state
  folder. A drawing is a 784-byte blob (28×28 uint8, prepared exactly as the canvas is for prediction), its
  class, its contributor (`identity.owner_key`, never the raw browser id) and its time. `add` checks the
  collection is open and the caps inside one write transaction, so two processes cannot both take the last
  place.
- `to_dataset`: a collection (a snapshot of it when open) as a `Dataset` every page can use, split train/test
  by contributor when there are enough contributors (no one's drawings on both sides) else stratified by class,
  with a sentence saying which and why; `export_npz` / `import_npz` in Keras's `.npz` layout with the class
  names.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit import disk_faults, identity, settings
from cnnkit.datasets import Dataset
from cnnkit.drawing import DRAWN_DATASET_PREFIX as DATASET_PREFIX  # drawings:<id>-<name>
from cnnkit.errors import UserError

STORE_FILE = "drawings.sqlite3"
SIDE = 28
PIXELS = SIDE * SIDE
MIN_CLASSES, MAX_CLASSES = 2, 20
CLASS_NAME_MAX = 24
NAME_MAX = 40
DIGITS = tuple(str(i) for i in range(10))
MIN_CONTRIBUTORS_FOR_GROUP_SPLIT = 4   # fewer: some class would lack test drawings or training drawings
TEST_SHARE = 0.2
IMPORTED = "imported"                  # the contributor of drawings read from a file


class CollectionError(UserError):
    """A collection cannot be opened, drawn into or turned into a dataset as asked."""


def refuse(sentence: str):
    """Raise CollectionError(sentence): for the command line's `value or refuse(...)`."""
    raise CollectionError(sentence)


@dataclass(frozen=True)
class Collection:
    id: int
    name: str
    class_names: tuple[str, ...]
    per_student: int
    total: int
    is_open: bool
    created: float

    @property
    def dataset_name(self) -> str:
        return f"{DATASET_PREFIX}{self.id}-{_slug(self.name)}"

    @property
    def title(self) -> str:
        return f"Class drawings: {self.name}"


@dataclass(frozen=True)
class Drawing:
    id: int
    contributor: str     # identity.owner_key of who drew it
    class_index: int
    pixels: np.ndarray   # (28, 28) uint8, light ink on black like MNIST
    time: float


def _slug(text: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in text.casefold()).strip("_")
    return out[:24] or "collection"


def _folded(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold().strip()


def check_class_names(names: Iterable[str] | str) -> tuple[str, ...]:
    """2–20 class names, each non-empty, at most 24 characters and different from the others once
    NFKC-normalised and case-folded; a comma-separated string is split. CollectionError says what is wrong."""
    if isinstance(names, str):
        names = names.split(",")
    cleaned = tuple(identity.visible_text(unicodedata.normalize("NFKC", str(n))).strip() for n in names)
    if any(not n for n in cleaned):
        raise CollectionError("A class name is empty: write the names separated by commas, such as "
                              "“circle, square, triangle”.")
    if not MIN_CLASSES <= len(cleaned) <= MAX_CLASSES:
        raise CollectionError(f"A collection needs {MIN_CLASSES} to {MAX_CLASSES} classes, not {len(cleaned)}: "
                              "write their names separated by commas.")
    long = [n for n in cleaned if len(n) > CLASS_NAME_MAX]
    if long:
        raise CollectionError(f"The class name “{long[0][:40]}” is longer than {CLASS_NAME_MAX} characters: "
                              "use a shorter one.")
    seen: dict[str, str] = {}
    for n in cleaned:
        if _folded(n) in seen:
            raise CollectionError(f"The classes “{seen[_folded(n)]}” and “{n}” are the same name: each class "
                                  "needs its own.")
        seen[_folded(n)] = n
    return cleaned


def check_name(name: str) -> str:
    cleaned = identity.visible_text(unicodedata.normalize("NFKC", str(name))).strip()
    if not cleaned:
        raise CollectionError("Give the collection a name, such as “shapes” or “our digits”.")
    if len(cleaned) > NAME_MAX:
        raise CollectionError(f"A collection's name has at most {NAME_MAX} characters; “{cleaned[:40]}…” is longer.")
    return cleaned


def store_for(owner: str | None, class_mode: bool, root: Path | str | None = None) -> DrawingStore:
    """The class's store (under the class folder) in class mode, else this student's own (their state folder)."""
    if class_mode or not owner:
        from cnnkit.classroom import class_dir

        folder = Path(root) if root is not None else class_dir()
        return DrawingStore(folder / STORE_FILE)
    from cnnkit.student_state import state_dir

    folder = Path(root) if root is not None else state_dir()
    return DrawingStore(folder / f"{identity.owner_key(owner)}.{STORE_FILE}")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, class_names TEXT NOT NULL,
  per_student INTEGER NOT NULL, total INTEGER NOT NULL, is_open INTEGER NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS drawings (
  id INTEGER PRIMARY KEY AUTOINCREMENT, collection INTEGER NOT NULL REFERENCES collections(id),
  contributor TEXT NOT NULL, class_index INTEGER NOT NULL, pixels BLOB NOT NULL, time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS drawings_by_owner ON drawings (collection, contributor, id);
CREATE INDEX IF NOT EXISTS drawings_by_class ON drawings (collection, class_index);
"""
_SEP = "\x1f"   # the unit separator: never inside a checked class name (invisible characters are stripped)


class DrawingStore:
    """Every collection of one place (the class, or one student) in one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        # the disk_faults folder it lives in: the class folder, or the state folder for a student's own store
        self.folder = "class" if self.path.name == STORE_FILE else "state"
        self._ready = False   # the file and its tables are made on first use, not here

    @contextlib.contextmanager
    def _connect(self):
        """A connection for one step. A disk that refuses (read-only, full: in WAL mode SQLite writes even to
        read) is a CollectionError with the sentence, recorded for the Class page."""
        # A connection per call: cheap, and safe across threads and processes. WAL lets readers go on while
        # one writer writes; busy_timeout makes a second writer wait its turn instead of failing.
        with disk_faults.refusing(self.folder, CollectionError, self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA busy_timeout=30000")
                db.execute("PRAGMA synchronous=NORMAL")
                if not self._ready:
                    db.executescript(_SCHEMA)
                    self._ready = True
                yield db
            finally:
                db.close()

    # --- collections ------------------------------------------------------------------------------------
    def open(self, name: str, class_names: Iterable[str] | str = DIGITS, per_student: int | None = None,
             total: int | None = None) -> Collection:
        """A new open collection, which becomes the current one (any other open one is closed)."""
        name, names = check_name(name), check_class_names(class_names)
        per_student = settings.get("drawings_per_student") if per_student is None else int(per_student)
        total = settings.get("drawings_total") if total is None else int(total)
        if per_student < 1 or total < 1:
            raise CollectionError("The limits must be at least one drawing (per student and in all).")
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("UPDATE collections SET is_open = 0")
            cur = db.execute("INSERT INTO collections (name, class_names, per_student, total, is_open, created) "
                             "VALUES (?, ?, ?, ?, 1, ?)", (name, _SEP.join(names), per_student, total, time.time()))
            db.execute("COMMIT")
        return self.get(int(cur.lastrowid))

    def get(self, collection_id: int) -> Collection:
        with self._connect() as db:
            row = db.execute("SELECT * FROM collections WHERE id = ?", (int(collection_id),)).fetchone()
        if row is None:
            raise CollectionError(f"There is no collection number {collection_id} (it may have been deleted).")
        return _collection(row)

    def collections(self) -> list[Collection]:
        """Every collection, newest first."""
        with self._connect() as db:
            return [_collection(r) for r in db.execute("SELECT * FROM collections ORDER BY id DESC")]

    def current(self) -> Collection | None:
        """The newest collection (open or not), or None when none was ever opened."""
        found = self.collections()
        return found[0] if found else None

    def set_open(self, collection_id: int, is_open: bool) -> Collection:
        """Close a collection, or reopen it (which closes any other open one: students draw into one at a time)."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            if is_open:
                db.execute("UPDATE collections SET is_open = 0")
            db.execute("UPDATE collections SET is_open = ? WHERE id = ?", (int(is_open), int(collection_id)))
            db.execute("COMMIT")
        return self.get(collection_id)

    def close(self, collection_id: int) -> Collection:
        return self.set_open(collection_id, False)

    def reopen(self, collection_id: int) -> Collection:
        return self.set_open(collection_id, True)

    # --- drawings ---------------------------------------------------------------------------------------
    def next_class(self, collection_id: int) -> int:
        """The class to draw next: the one with the fewest drawings so far, ties by the classes' order."""
        counts = self.class_counts(collection_id)
        return int(np.argmin(counts))

    def add(self, collection_id: int, owner: str, pixels: np.ndarray, class_index: int) -> int:
        """Store one prepared drawing (28×28 uint8) of class `class_index`; its id. CollectionError when the
        collection is closed or a cap is reached."""
        arr = np.asarray(pixels)
        if arr.shape not in ((SIDE, SIDE), (SIDE, SIDE, 1)) or arr.dtype != np.uint8:
            raise ValueError(f"a drawing is 28×28 uint8, not {arr.shape} {arr.dtype}")
        who = _contributor(owner)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")   # the checks and the insert are one step for every process
            try:
                c = _collection(db.execute("SELECT * FROM collections WHERE id = ?", (int(collection_id),))
                                .fetchone())
                if not c.is_open:
                    raise CollectionError(f"The collection “{c.name}” is closed: no more drawings are taken. "
                                          "Your lecturer can reopen it.")
                if not 0 <= int(class_index) < len(c.class_names):
                    raise CollectionError(f"“{c.name}” has classes 0 to {len(c.class_names) - 1}, not {class_index}.")
                mine = db.execute("SELECT COUNT(*) FROM drawings WHERE collection = ? AND contributor = ?",
                                  (c.id, who)).fetchone()[0]
                if mine >= c.per_student:
                    raise CollectionError(f"You have given {mine} drawings to “{c.name}”, the most one student may "
                                          "give. Thank you! Undo one to draw it again.")
                everyone = db.execute("SELECT COUNT(*) FROM drawings WHERE collection = ?", (c.id,)).fetchone()[0]
                if everyone >= c.total:
                    raise CollectionError(f"“{c.name}” is full: it holds {everyone:,} drawings, its limit.")
                cur = db.execute("INSERT INTO drawings (collection, contributor, class_index, pixels, time) "
                                 "VALUES (?, ?, ?, ?, ?)",
                                 (c.id, who, int(class_index), arr.reshape(SIDE, SIDE).tobytes(), time.time()))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return int(cur.lastrowid)

    def undo_last(self, collection_id: int, owner: str) -> Drawing | None:
        """Remove this student's latest drawing in the collection; it, or None when they have none."""
        who = _contributor(owner)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT * FROM drawings WHERE collection = ? AND contributor = ? ORDER BY id DESC "
                             "LIMIT 1", (int(collection_id), who)).fetchone()
            if row is not None:
                db.execute("DELETE FROM drawings WHERE id = ?", (row[0],))
            db.execute("COMMIT")
        return None if row is None else _drawing(row)

    def remove(self, drawing_id: int) -> bool:
        with self._connect() as db:
            return db.execute("DELETE FROM drawings WHERE id = ?", (int(drawing_id),)).rowcount > 0

    def remove_student(self, collection_id: int, contributor: str) -> int:
        """Remove every drawing of one contributor (their `owner_key`, as `student_counts` lists them)."""
        with self._connect() as db:
            return db.execute("DELETE FROM drawings WHERE collection = ? AND contributor = ?",
                              (int(collection_id), contributor)).rowcount

    # --- counts and pictures ----------------------------------------------------------------------------
    def class_counts(self, collection_id: int) -> list[int]:
        n = len(self.get(collection_id).class_names)
        counts = [0] * n
        with self._connect() as db:
            for k, c in db.execute("SELECT class_index, COUNT(*) FROM drawings WHERE collection = ? "
                                   "GROUP BY class_index", (int(collection_id),)):
                if 0 <= k < n:
                    counts[k] = int(c)
        return counts

    def student_counts(self, collection_id: int) -> dict[str, int]:
        """Drawings per contributor (owner_key), most first."""
        with self._connect() as db:
            rows = db.execute("SELECT contributor, COUNT(*) AS n FROM drawings WHERE collection = ? "
                              "GROUP BY contributor ORDER BY n DESC, MIN(id)", (int(collection_id),)).fetchall()
        return {who: int(n) for who, n in rows}

    def count_of(self, collection_id: int, owner: str) -> int:
        return self.student_counts(collection_id).get(_contributor(owner), 0)

    def latest(self, collection_id: int, n: int = 24, owner: str | None = None) -> list[Drawing]:
        """The newest `n` drawings (of one student when `owner` is given), newest first."""
        query = "SELECT * FROM drawings WHERE collection = ?"
        args: list = [int(collection_id)]
        if owner is not None:
            query += " AND contributor = ?"
            args.append(_contributor(owner))
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY id DESC LIMIT ?", (*args, int(n))).fetchall()
        return [_drawing(r) for r in rows]

    def stamp(self, collection_id: int) -> tuple[int, int]:
        """(drawings, newest id): changes whenever a drawing is added or removed, for caches."""
        with self._connect() as db:
            n, top = db.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM drawings WHERE collection = ?",
                                (int(collection_id),)).fetchone()
        return int(n), int(top)

    def arrays(self, collection_id: int, upto: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every drawing (up to drawing id `upto`: a snapshot) as x (N, 28, 28, 1) uint8, y (N,) int64 and
        contributors (N,), oldest first."""
        with self._connect() as db:
            rows = db.execute("SELECT pixels, class_index, contributor FROM drawings WHERE collection = ? "
                              "AND id <= ? ORDER BY id", (int(collection_id), 2**62 if upto is None else int(upto))
                              ).fetchall()
        x = np.frombuffer(b"".join(r[0] for r in rows), dtype=np.uint8).reshape(len(rows), SIDE, SIDE, 1)
        return x.copy(), np.array([r[1] for r in rows], dtype=np.int64), np.array([r[2] for r in rows], dtype=object)


def _contributor(owner: str) -> str:
    return owner if owner == IMPORTED else identity.owner_key(owner)


def _collection(row) -> Collection:
    if row is None:
        raise CollectionError("That collection no longer exists.")
    cid, name, names, per_student, total, is_open, created = row
    return Collection(int(cid), name, tuple(names.split(_SEP)), int(per_student), int(total), bool(is_open),
                      float(created))


def _drawing(row) -> Drawing:
    did, _, who, k, blob, t = row
    return Drawing(int(did), who, int(k), np.frombuffer(blob, dtype=np.uint8).reshape(SIDE, SIDE), float(t))


def to_pixels(x: np.ndarray) -> np.ndarray:
    """A prepared model input ((28, 28, 1) float in [0, 1], `drawing.prepare_drawing(...).x`) → 28×28 uint8."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float32).reshape(SIDE, SIDE) * 255.0), 0, 255).astype(np.uint8)


# --- a collection as a dataset -------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    train: np.ndarray   # indices
    test: np.ndarray
    by_contributor: bool
    sentence: str


def split(y: np.ndarray, contributors: np.ndarray, seed: int = 13) -> Split:
    """Train/test indices, stratified by class; by contributor (no one on both sides) when at least
    MIN_CONTRIBUTORS_FOR_GROUP_SPLIT people drew and every class lands on both sides, else by drawing."""
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    counts = np.bincount(y)
    people = len(set(contributors.tolist()))
    if people >= MIN_CONTRIBUTORS_FOR_GROUP_SPLIT:
        folds = StratifiedGroupKFold(n_splits=min(round(1 / TEST_SHARE), people), shuffle=True, random_state=seed)
        train, test = next(folds.split(np.zeros(len(y)), y, groups=contributors))
        if set(y[train].tolist()) == set(y[test].tolist()) == set(range(len(counts))):
            n_test_people = len(set(contributors[test].tolist()))
            return Split(np.sort(train), np.sort(test), True,
                         f"Split by contributor: the drawings of {n_test_people} of the {people} people who drew are "
                         "the test set, the others' train, so the test measures how well the model reads handwriting "
                         "it has never seen — not drawings it was trained on.")
    if len(counts) < 2 or counts.min() < 2:
        raise CollectionError("Each class needs at least 2 drawings before the collection can be a dataset "
                              "(one to train on, one to test).")
    n_test = max(int(round(TEST_SHARE * len(y))), len(counts))
    if len(y) - n_test < len(counts):
        raise CollectionError(f"{len(y)} drawings are too few for {len(counts)} classes: draw some more.")
    train, test = train_test_split(np.arange(len(y)), test_size=n_test, stratify=y, random_state=seed)
    why = (f"only {people} {'person' if people == 1 else 'people'} drew" if people < MIN_CONTRIBUTORS_FOR_GROUP_SPLIT
           else "splitting by contributor would leave a class out of one side")
    return Split(np.sort(train), np.sort(test), False,
                 f"Split by drawing, stratified by class ({why}; by contributor needs "
                 f"{MIN_CONTRIBUTORS_FOR_GROUP_SPLIT} people and every class on both sides): the same hands drew "
                 "training and test drawings, so the test accuracy is optimistic.")


def to_dataset(store: DrawingStore, collection_id: int, seed: int = 13, upto: int | None = None) -> Dataset:
    """The collection as a Dataset: as it is now, or its drawings up to id `upto` (a snapshot of an open one,
    taken when a student picked it); CollectionError when too small."""
    c = store.get(collection_id)
    x, y, who = store.arrays(collection_id, upto)
    if len(y) == 0 or len(np.unique(y)) < len(c.class_names):
        missing = [c.class_names[k] for k in range(len(c.class_names)) if k not in set(y.tolist())]
        raise CollectionError(f"“{c.name}” has no drawings of {', '.join(missing[:5])} yet: every class needs "
                              "drawings before it can be a dataset.")
    y = y.copy()
    s = split(y, who, seed)
    state = "closed" if not c.is_open and upto is None else "a snapshot of the collection taken when you picked it"
    text = (f"your class's drawings ({state}): {len(s.train):,} training and {len(s.test):,} test drawings by "
            f"{len(set(who.tolist()))} people, {len(c.class_names)} classes.")
    return Dataset(name=c.dataset_name, title=c.title, x_train=x[s.train], y_train=y[s.train], x_test=x[s.test],
                   y_test=y[s.test], class_names=c.class_names, source="collection", source_text=text,
                   notes=[s.sentence])


def as_test_set(store: DrawingStore, collection_id: int, upto: int | None = None) -> Dataset:
    """Every drawing of a collection as test images (none to train on): to test a model trained elsewhere
    (an MNIST-trained run on the class's digits), for which all of them are new."""
    c = store.get(collection_id)
    x, y, who = store.arrays(collection_id, upto)
    if len(y) == 0:
        raise CollectionError(f"“{c.name}” has no drawings yet.")
    return Dataset(name=c.dataset_name, title=f"{c.title} (all {len(y):,} drawings)", x_train=x[:0], y_train=y[:0],
                   x_test=x, y_test=y, class_names=c.class_names, source="collection",
                   source_text=f"every drawing of “{c.name}” by {len(set(who.tolist()))} people, as test images.")


def export_npz(dataset: Dataset, path: Path | str) -> Path:
    """Write a dataset in Keras's `.npz` layout (x_train (N, 28, 28) uint8, y_train, x_test, y_test) with
    `class_names` (a plain string array: no pickle needed to read it)."""
    p = Path(path)
    np.savez_compressed(p, x_train=dataset.x_train[..., 0], y_train=dataset.y_train.astype(np.uint8),
                        x_test=dataset.x_test[..., 0], y_test=dataset.y_test.astype(np.uint8),
                        class_names=np.array(dataset.class_names, dtype=str))
    return p if p.suffix == ".npz" else p.with_name(p.name + ".npz")


def import_npz(store: DrawingStore, path: Path | str, name: str | None = None) -> Collection:
    """A closed collection made of an exported `.npz` (its train and test drawings; contributor "imported")."""
    from cnnkit.datasets.npz import read_npz_arrays

    p = Path(path)
    x_train, y_train, x_test, y_test, _ = read_npz_arrays(p)
    if tuple(x_train.shape[1:]) != (SIDE, SIDE, 1):
        raise CollectionError(f"'{p.name}' holds {x_train.shape[1:]} images; a collection holds 28×28 drawings.")
    with np.load(p, allow_pickle=False) as f:
        names = [str(n) for n in f["class_names"]] if "class_names" in f.files else \
            [str(k) for k in range(int(max(y_train.max(), y_test.max())) + 1)]
    c = store.open(name or p.stem, names, per_student=10**9, total=10**9)
    x = np.concatenate([x_train, x_test])
    y = np.concatenate([y_train, y_test])
    with store._connect() as db:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO drawings (collection, contributor, class_index, pixels, time) "
                       "VALUES (?, ?, ?, ?, ?)",
                       [(c.id, IMPORTED, int(k), img.tobytes(), time.time()) for img, k in zip(x, y, strict=True)])
        db.execute("COMMIT")
    return store.close(c.id)


def spec_for_classes(spec, num_classes: int):
    """A model built for another dataset, its last Dense layer given one unit per class of this one (a
    collection's classes are the lecturer's choice: 3 shapes, not MNIST's 10 digits). Other specs as they are."""
    if not spec.layers or spec.layers[-1].type != "Dense" or spec.layers[-1].params.get("units") == num_classes:
        return spec
    out = spec.copy()
    last = out.layers[-1]
    out.layers[-1] = type(last)(last.type, {**last.params, "units": int(num_classes)})
    return out


# --- what the pages say ------------------------------------------------------------------------------
def contribution_sentence(store: DrawingStore, collection_id: int, owner: str) -> str:
    """The student's part at a glance: their drawings, the collection's, and how many they may still add."""
    c = store.get(collection_id)
    mine, everyone = store.count_of(c.id, owner), sum(store.class_counts(c.id))
    left = max(0, c.per_student - mine)
    return (f"You have drawn {mine} of the {everyone:,} drawings in “{c.name}”"
            + (f"; you may add {left} more." if c.is_open and left else "."))


def class_rows(store: DrawingStore, collection_id: int) -> list[dict]:
    """Drawings per class, in the classes' order: the table both pages show."""
    c = store.get(collection_id)
    return [{"class": name, "drawings": n} for name, n in zip(c.class_names, store.class_counts(c.id), strict=True)]


def student_rows(store: DrawingStore, collection_id: int, labels: dict[str, str]) -> list[dict]:
    """Drawings per contributor, most first; `labels` names a contributor key ("student 7"), else a short key."""
    return [{"student": labels.get(who, "imported" if who == IMPORTED else f"student {who[:6]}"), "drawings": n,
             "key": who} for who, n in store.student_counts(collection_id).items()]
