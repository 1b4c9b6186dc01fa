"""What a student last chose, kept on the server so a reload gives it back.

One small JSON file per owner id (the id the app gives a student's browser) under
`<runs dir>/.students/` (or `CNNKIT_STATE_DIR`): the model spec they built, their
training settings and the dataset they picked. The runs listing skips folders whose
name starts with a dot, so these files never show up as runs.

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

from cnnkit import runs

MAX_BYTES = 256 * 1024   # a spec and a few settings are a few kB; anything bigger is not ours to keep
KEYS = ("dataset", "spec", "spec_preset", "hyper", "hyper_for")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def state_dir() -> Path:
    env = os.environ.get("CNNKIT_STATE_DIR")
    return Path(env).resolve() if env else runs.runs_dir() / ".students"


def _path(owner: str, root: Path | None = None) -> Path:
    # An id that is not a plain token (it comes from a browser) is hashed, so it can never name another path.
    name = owner if _SAFE_ID.match(owner) else hashlib.sha256(owner.encode()).hexdigest()[:32]
    return (Path(root) if root is not None else state_dir()) / f"{name}.json"


def load(owner: str | None, root: Path | None = None) -> dict[str, Any]:
    """The student's saved choices (only the known keys); {} when there are none or the file is damaged."""
    if not owner:
        return {}
    p = _path(owner, root)
    try:
        if p.stat().st_size > MAX_BYTES:
            return {}
        data = json.loads(p.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: data[k] for k in KEYS if k in data}


def save(owner: str | None, data: dict[str, Any], root: Path | None = None) -> bool:
    """Write the student's choices (the known keys of `data`) in one atomic step; False when not written.

    Unknown keys are dropped; a payload over MAX_BYTES is refused rather than filling the disk.
    """
    if not owner:
        return False
    payload = json.dumps({k: data[k] for k in KEYS if k in data}, sort_keys=True)
    if len(payload) > MAX_BYTES:
        return False
    p = _path(owner, root)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(payload)
        os.replace(tmp, p)   # readers see the old file or the new one, never half of one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def update(owner: str | None, root: Path | None = None, **changes: Any) -> dict[str, Any]:
    """Merge `changes` into the saved choices (a value of None removes that key) and save; returns the result."""
    data = load(owner, root)
    for k, v in changes.items():
        if k not in KEYS:
            raise KeyError(f"unknown student-state key {k!r}; known: {', '.join(KEYS)}")
        if v is None:
            data.pop(k, None)
        else:
            data[k] = v
    save(owner, data, root)
    return data
