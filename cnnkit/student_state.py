"""What a student last chose, kept on the server so a reload gives it back.

One small JSON file per owner id (the id the app gives a student's browser) under
`<runs dir>/.students/` (or `CNNKIT_STATE_DIR`): the model spec they built, their
training settings and the dataset they picked. The runs listing skips folders whose
name starts with a dot, so these files never show up as runs.

An uploaded dataset in use is kept too: its bytes once per owner, named by their SHA-256
(`<id>.upload/<sha256>.npz|.zip`, only the one in use), and its name under the JSON's
`upload` key. A reload reads the bytes back (checking the hash) and loads them through
the same validated path as the upload itself. All students' kept files together stay under
the `kept_uploads_bytes` limit: keeping a new one removes the least recently used others
(a student whose file went reloads onto the catalogue dataset and uploads again).

Plain data in, plain data out; nothing here knows about Streamlit.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from cnnkit import disk_faults, limits, runs, settings

MAX_BYTES = 256 * 1024   # a spec and a few settings are a few kB; anything bigger is not ours to keep
KEYS = ("dataset", "spec", "spec_preset", "hyper", "hyper_for", "upload", "collection")
UPLOAD_SUFFIXES = (".npz", ".zip")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def state_dir() -> Path:
    env = settings.get("state_dir")
    return Path(env).resolve() if env else runs.runs_dir() / ".students"


def _path(owner: str, root: Path | None = None, suffix: str = ".json") -> Path:
    # An id that is not a plain token (it comes from a browser) is hashed, so it can never name another path.
    name = owner if _SAFE_ID.match(owner) else hashlib.sha256(owner.encode()).hexdigest()[:32]
    return _root(root) / f"{name}{suffix}"


def _root(root: Path | None = None) -> Path:
    return Path(root) if root is not None else state_dir()


def load(owner: str | None, root: Path | None = None) -> dict[str, Any]:
    """The student's saved choices (only the known keys); {} when there are none or the file is damaged."""
    if not owner:
        return {}
    p = _path(owner, root)
    try:
        if p.stat().st_size > MAX_BYTES:
            return {}
        data = json.loads(p.read_text())
    except (OSError, ValueError, RecursionError):   # RecursionError: nested deeper than Python's stack
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: data[k] for k in KEYS if k in data and _finite(data[k])}


def _finite(value: Any) -> bool:
    """False for a choice holding NaN or Infinity (JSON literals Python reads, CNN Lab never writes): a spec
    or settings with one would break every page that shows it, so it is dropped like a damaged file."""
    try:
        json.dumps(value, allow_nan=False)
    except (ValueError, RecursionError):
        return False
    return True


def save(owner: str | None, data: dict[str, Any], root: Path | None = None) -> bool:
    """Write the student's choices (the known keys of `data`) in one atomic step; False when not written.

    Unknown keys are dropped; a payload over MAX_BYTES is refused rather than filling the disk. A disk that
    refuses the write (read-only, full) is recorded in `disk_faults` (the student's sentence, the lecturer's
    note) instead of raising: every page keeps working, only the reload forgets.
    """
    if not owner:
        return False
    payload = json.dumps({k: data[k] for k in KEYS if k in data}, sort_keys=True)
    if len(payload) > MAX_BYTES:
        return False
    p = _path(owner, root)
    try:
        _write_atomically(p, payload.encode())
    except OSError as err:
        disk_faults.record("state", err)
        return False
    disk_faults.cleared("state")
    return True


def _write_atomically(p: Path, data: bytes) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, p)   # readers see the old file or the new one, never half of one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def merge(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """`data` with `changes` applied (a value of None removes that key), as a new dict; unknown keys are refused."""
    merged = dict(data)
    for k, v in changes.items():
        if k not in KEYS:
            raise KeyError(f"unknown student-state key {k!r}; known: {', '.join(KEYS)}")
        if v is None:
            merged.pop(k, None)
        else:
            merged[k] = v
    return merged


# --- the uploaded dataset in use ---------------------------------------------------------------
def _upload_dir(owner: str, root: Path | None = None) -> Path:
    return _path(owner, root, suffix=".upload")


def keep_upload(owner: str | None, data: bytes, filename: str, root: Path | None = None) -> dict[str, Any] | None:
    """Keep the bytes of the dataset file this student uses, replacing any file kept before.

    Returns the record to save under the `upload` key ({"sha256", "filename"}), or None when nothing
    was kept: no owner, a file type we do not read, or a file over the upload limit (`zip_bytes`).
    The same file uploaded again is not written again.
    """
    suffix = Path(filename).suffix.lower()
    if not owner or suffix not in UPLOAD_SUFFIXES or limits.exceeds("zip_bytes", len(data)):
        return None
    digest = hashlib.sha256(data).hexdigest()
    folder = _upload_dir(owner, root)
    target = folder / f"{digest}{suffix}"
    try:
        if not target.is_file() or target.stat().st_size != len(data):
            _write_atomically(target, data)
        for old in folder.iterdir():  # one file per owner: the one in use (a write under way is left alone)
            if old != target and not old.name.startswith("."):
                old.unlink(missing_ok=True)
        os.utime(target)   # just used
    except OSError as err:   # a read-only or full disk: the file is used, not kept
        disk_faults.record("state", err)
        return None
    evict_uploads(keep=target, root=root)
    return {"sha256": digest, "filename": Path(filename).name}


def evict_uploads(keep: Path | None = None, root: Path | None = None) -> list[Path]:
    """Remove the least recently used kept uploads (of any student but `keep`'s file) until all of them together
    fit the `kept_uploads_bytes` limit; returns the files removed."""
    files = []
    for f in _root(root).glob("*.upload/*"):
        try:
            st = f.stat()
        except OSError:
            continue
        if f.suffix in UPLOAD_SUFFIXES and not f.name.startswith("."):
            files.append((st.st_mtime, st.st_size, f))
    total, cap = sum(size for _, size, _ in files), limits.get("kept_uploads_bytes")
    removed = []
    for _, size, f in sorted(files, key=lambda x: x[0]):
        if total <= cap:
            break
        if f == keep:
            continue
        try:
            f.unlink(missing_ok=True)
        except OSError:
            continue
        total -= size
        removed.append(f)
    return removed


def kept_upload(owner: str | None, record: Any, root: Path | None = None) -> bytes | None:
    """The kept bytes described by `record` (from `keep_upload`), or None when they are gone, over the
    limit, or no longer match their hash (a damaged file is removed)."""
    if not owner or not isinstance(record, dict):
        return None
    digest, filename = record.get("sha256"), record.get("filename")
    if not isinstance(digest, str) or not _SHA256.match(digest) or not isinstance(filename, str):
        return None
    suffix = Path(filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        return None
    p = _upload_dir(owner, root) / f"{digest}{suffix}"
    try:
        if limits.exceeds("zip_bytes", p.stat().st_size):
            return None
        data = p.read_bytes()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != digest:
        try:
            p.unlink(missing_ok=True)
        except OSError:
            pass
        return None
    try:
        os.utime(p)   # just used: the last to go when the class's kept files outgrow their limit
    except OSError:
        pass
    return data


def forget_upload(owner: str | None, root: Path | None = None) -> None:
    """Remove the kept upload of this student (they went back to a catalogue dataset)."""
    if not owner:
        return
    folder = _upload_dir(owner, root)
    try:
        if folder.is_dir():
            for old in folder.iterdir():
                old.unlink(missing_ok=True)
            folder.rmdir()
    except OSError as err:
        disk_faults.record("state", err)
