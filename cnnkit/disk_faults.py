"""Disks that refuse a write (read-only, full, not the server's to write): what failed, said as a sentence.

A write into the runs folder, the state folder, the class folder (class book, challenge, the class's drawings)
or the job journal that fails is never a traceback: the caller records it here (`record`, or the `refusing`
block) and carries on, or raises its own error with the sentence. The student hears what it means for them
(`student_sentence`: their choices will not survive a reload; the run could not be saved; the class's records
are not kept; a job cannot say it was lost), once; the lecturer's Class page reads `problems()`, which
says the disk is the problem and which setting names the folder. A later write that succeeds clears the
record. Nothing here shows a server path: the Class page is projected, and errno says enough.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# folder → (what it is, the setting that names it, what a student loses while it refuses writes)
FOLDERS = {
    "state": ("the folder of students' choices", "CNNKIT_STATE_DIR",
              "students' choices and uploaded datasets are not kept across a reload"),
    "runs": ("the runs folder", "CNNKIT_RUNS_DIR", "trained runs cannot be saved"),
    "class": ("the class folder", "CNNKIT_CLASS_DIR",
              "students' numbers and nicknames, the class limits, the challenge and the class's drawings are not "
              "kept"),
    "jobs": ("the job journal in the runs folder", "CNNKIT_RUNS_DIR",
             "a job running when the server restarts cannot say afterwards that it was lost"),
}

PROBE_SECONDS = 30.0   # how often `probe` writes a test file into a folder at most

_LOCK = threading.Lock()
_FAULTS: dict[str, Fault] = {}
_PROBED: dict[str, float] = {}


@dataclass(frozen=True)
class Fault:
    folder: str
    reason: str      # "is read-only", "is full", …
    when: float


# SQLite's primary result codes for a disk that refuses (the class's drawings are an SQLite file)
_SQLITE = {8: errno.EROFS, 13: errno.ENOSPC, 14: errno.EACCES, 10: errno.EIO, 23: errno.EACCES}


def is_disk_error(err: BaseException) -> bool:
    """An OSError, or an SQLite error that says the disk refused (read-only, full, cannot open, I/O)."""
    if isinstance(err, OSError):
        return True
    return isinstance(err, sqlite3.OperationalError) and (getattr(err, "sqlite_errorcode", 0) & 0xFF) in _SQLITE


def _read_only(path: Path | None) -> bool:
    """Is the filesystem holding `path` (or its nearest existing parent) mounted read-only?"""
    while path is not None and not path.exists() and path.parent != path:
        path = path.parent
    try:
        return path is not None and bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def reason(err: BaseException, path: Path | None = None) -> str:
    """What the disk did, in words: read-only, full, not writable by the server, or another error's name.
    SQLite says only that it cannot open its file: `path`'s filesystem tells whether it is read-only."""
    code = getattr(err, "errno", None)
    if isinstance(err, sqlite3.Error):
        code = _SQLITE.get(getattr(err, "sqlite_errorcode", 0) & 0xFF)
        if code in (errno.EACCES, errno.EIO) and _read_only(path):
            code = errno.EROFS
    if code == errno.EROFS:
        return "is read-only"
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "is full"
    if code in (errno.EACCES, errno.EPERM):
        return "may not be written by the server"
    name = errno.errorcode.get(code or -1)
    return f"refused a write ({name})" if name else "refused a write"


def record(folder: str, err: BaseException, path: Path | None = None) -> str:
    """Note that a write into `folder` (a key of FOLDERS; at `path`) failed; returns the student's sentence."""
    fault = Fault(folder, reason(err, path), time.time())
    with _LOCK:
        _FAULTS[folder] = fault
    return student_sentence(fault)


def cleared(folder: str) -> None:
    """A write into `folder` worked again."""
    if folder in _FAULTS:
        with _LOCK:
            _FAULTS.pop(folder, None)


def sentence(folder: str) -> str | None:
    """The student's sentence for `folder`'s last failed write (None when its writes work)."""
    with _LOCK:
        fault = _FAULTS.get(folder)
    return student_sentence(fault) if fault is not None else None


@contextlib.contextmanager
def refusing(folder: str, error: type[Exception] | None = None, path: Path | None = None):
    """A block of writes into `folder`: a disk that refuses them is recorded and, with `error`, raised as
    `error(the student's sentence)` (else the block just ends there); a block that succeeds clears the record.
    Other errors pass through untouched."""
    try:
        yield
    except (OSError, sqlite3.OperationalError) as err:
        if not is_disk_error(err):
            raise
        said = record(folder, err, path)
        if error is not None:
            raise error(said) from None
    else:
        cleared(folder)


def student_sentence(fault: Fault) -> str:
    if fault.folder == "state":
        return (f"Your choices could not be kept on the server (its disk {fault.reason}), so they will not survive "
                "a reload. Everything else works; the lecturer can see the problem on the Class page.")
    if fault.folder == "class":
        return (f"This could not be saved on the server: its disk {fault.reason}, so the class's records (numbers, "
                "nicknames, limits, the challenge, drawings) are not kept. Everything else works; the Class page "
                "says what to fix.")
    if fault.folder == "jobs":
        return (f"The server's disk {fault.reason}, so your job is not written down: it trains as usual, but if the "
                "server restarts meanwhile it cannot say afterwards that it was lost.")
    return (f"The run could not be saved: the server's disk {fault.reason}. Your other runs are safe; tell the "
            "lecturer (the Class page says what to fix).")


def problems() -> list[str]:
    """The lecturer's sentences, one per folder whose last write failed (none when all is well)."""
    with _LOCK:
        faults = sorted(_FAULTS.values(), key=lambda f: f.folder)
    out = []
    for f in faults:
        what, setting, loss = FOLDERS[f.folder]
        since = time.strftime("%H:%M", time.localtime(f.when))
        out.append(f"The server's disk is the problem: {what} {f.reason} (since {since}), so {loss}. Free "
                   f"some space or make the folder writable (it is set by {setting}); pages keep working meanwhile.")
    return out


def probe(folder: str, path: Path) -> None:
    """Write (and remove) a 4 kB test file in `path`, at most every PROBE_SECONDS: the lecturer's page knows a
    disk is read-only or full before any student's write has failed on it (after a restart, say)."""
    now = time.time()
    if now - _PROBED.get(folder, 0.0) < PROBE_SECONDS:
        return
    _PROBED[folder] = now
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-", delete=True) as fh:
            fh.write(b"\0" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        record(folder, err)
    else:
        cleared(folder)


def reset() -> None:
    """Forget every fault (tests)."""
    with _LOCK:
        _FAULTS.clear()
        _PROBED.clear()
