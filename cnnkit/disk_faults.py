"""Disks that refuse a write (read-only, full, not the server's to write): what failed, said as a sentence.

A write into the runs folder or the state folder that fails is never a traceback: the caller records it here
(`record`) and carries on. The student hears what it means for them (`student_sentence`: their choices will
not survive a reload; the run could not be saved), once; the lecturer's Class page reads `problems()`, which
says the disk is the problem and which setting names the folder. A later write that succeeds clears the
record. Nothing here shows a server path: the Class page is projected, and errno says enough.
"""

from __future__ import annotations

import errno
import os
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


def reason(err: OSError) -> str:
    """What the disk did, in words: read-only, full, not writable by the server, or another error's name."""
    code = getattr(err, "errno", None)
    if code == errno.EROFS:
        return "is read-only"
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "is full"
    if code in (errno.EACCES, errno.EPERM):
        return "may not be written by the server"
    name = errno.errorcode.get(code or -1)
    return f"refused a write ({name})" if name else "refused a write"


def record(folder: str, err: OSError) -> str:
    """Note that a write into `folder` ("state" or "runs") failed; returns the student's sentence."""
    fault = Fault(folder, reason(err), time.time())
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


def student_sentence(fault: Fault) -> str:
    if fault.folder == "state":
        return (f"Your choices could not be kept on the server (its disk {fault.reason}), so they will not survive "
                "a reload. Everything else works; the lecturer can see the problem on the Class page.")
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
