"""Every `CNNKIT_*` setting of CNN Lab in one table, read from the environment once per process.

Shaped like `limits.py`: a named table (`SETTINGS`: name, type, default, what it does), one parser per
type, `get(name)` for a value, `table()` for `python -m cnnkit settings` and the README. Nothing else
in the code reads `os.environ` for a `CNNKIT_*` name; the limits (`CNNKIT_LIMIT_*`) read theirs through
`environ_value` here too.

Types and the words they accept:
- `bool`: 1/0, true/false, yes/no, on/off (any case); empty means the default.
- `int`: a whole number, at least the setting's minimum; empty means the default.
- `optional_int`: like `int`, and 0, none or off mean "no value" (no limit).
- `seconds`: a number of seconds above 0; empty means "no value".
- `bytes`: a size such as 2GB or 500MB (at least `minimum` bytes).
- `path`, `text`: as written (a path is not resolved here: the caller does, in its own working folder).

A value that cannot be used raises the caller's UserError subclass (like `limits.check`) with a sentence
naming the variable, what it got and what it accepts. Values are read once and kept; `reset()` forgets them
(tests that change the environment call it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cnnkit.errors import UserError

PREFIX = "CNNKIT_"
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
NONE_WORDS = ("0", "none", "off")


class SettingError(UserError):
    """A CNNKIT_* environment variable holds a value CNN Lab cannot use."""


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str                 # bool | int | optional_int | seconds | bytes | path | text
    default: Any
    what: str
    default_text: str = ""    # the default in words, where it is worked out at run time (None here)
    minimum: int | None = None
    secret: bool = False

    @property
    def env(self) -> str:
        return PREFIX + self.name.upper()


_TABLE = (
    # where things live
    Setting("runs_dir", "path", "runs", "folder where trained runs are saved (relative to the working folder)"),
    Setting("shared_runs_dir", "path", None, "folder of runs shared with the whole class",
            default_text="<runs dir>/shared"),
    Setting("state_dir", "path", None, "folder of each browser's kept choices and uploaded dataset",
            default_text="<runs dir>/.students"),
    Setting("class_dir", "path", None, "folder of the class book (nicknames, lecturer, limits)",
            default_text="<runs dir>/.class"),
    # data
    Setting("offline", "bool", False, "never try a dataset download (air-gapped rooms, tests)"),
    Setting("debian_fashion_dir", "path", "/usr/share/datasets/fashion-mnist",
            "where Debian's dataset-fashion-mnist package put Fashion-MNIST"),
    # the class
    Setting("class_mode", "bool", False, "a class shares this server: students see only their own runs (and the "
            "shared ones), and the cost limits refuse instead of warning"),
    Setting("lecturer_key", "text", None, "the key that unlocks the Class page (also read from st.secrets)",
            default_text="unset: no lecturer", secret=True),
    Setting("class_max_epochs", "optional_int", None, "in class mode, the most epochs of one job (empty, 0 or "
            "off: no cap); the Class page can change it", default_text="no cap", minimum=1),
    Setting("class_max_train_images", "optional_int", None, "in class mode, the most training images of one job",
            default_text="no cap", minimum=1),
    Setting("drawings_per_student", "int", 200, "in a class-drawn collection, the most drawings one student may "
            "add (the lecturer may set fewer when opening it)", minimum=1),
    Setting("drawings_total", "int", 20_000, "in a class-drawn collection, the most drawings in all (784 bytes "
            "each)", minimum=1),
    Setting("class_one_job", "bool", True, "in class mode, one job at a time per student (0: up to 3)"),
    Setting("job_seconds", "seconds", None, "in class mode, the most estimated seconds one job may take; a bigger "
            "job is refused with a sentence saying how to fit", default_text="no cap"),
    # the training cluster
    Setting("scheduler", "text", None, "address of an existing Dask scheduler, e.g. tcp://10.0.0.5:8786",
            default_text="unset: an embedded cluster"),
    Setting("workers", "int", None, "worker processes of the embedded cluster (each trains one job at a time)",
            default_text="one per two CPU cores (one per core in class mode), fewer where memory gives each less "
            "than 1 GB", minimum=1),
    Setting("worker_memory", "bytes", None, "memory limit per embedded worker (its nanny restarts it past 95 %)",
            default_text="what leaves the web process 1.5 GB (≤ 60 % of memory or of the cgroup's limit) ÷ workers, "
            "1–3 GB", minimum=1_000_000_000),   # a worker with TensorFlow imported is 0.72 GB, a small fit 0.88 GB
    Setting("worker_jobs", "int", 25, "a worker process is replaced by a fresh one after this many jobs", minimum=1),
    Setting("worker_threads", "int", None, "threads TensorFlow uses inside each worker process (intra- and "
            "inter-op)", default_text="one per core, TensorFlow's own; in class mode the cores ÷ the workers",
            minimum=1),
    Setting("worker_models", "int", 3, "compiled lesson-sized models a worker keeps for the next job of the same "
            "model and settings, which then skips Keras's tracing (0: none)", minimum=0),
    Setting("worker_nice", "int", 10, "how far below the web server a worker's CPU priority is (Unix niceness "
            "0–19; 0 = the same)", minimum=0),
)
SETTINGS: dict[str, Setting] = {s.name: s for s in _TABLE}

_raw: dict[str, str | None] = {}
_values: dict[str, Any] = {}


def environ_value(env: str) -> str:
    """The environment variable `env`, stripped ('' when unset), read once per process."""
    if env not in _raw:
        _raw[env] = os.environ.get(env)
    return (_raw[env] or "").strip()


def is_set(name: str) -> bool:
    return bool(environ_value(SETTINGS[name].env))


def reset() -> None:
    """Forget every value read, so the next `get` reads the environment again (for tests)."""
    _raw.clear()
    _values.clear()


def adopt(values: Mapping[str, object]) -> list[str]:
    """Take the `CNNKIT_*` entries of a secrets table (Community Cloud's *Secrets*, `.streamlit/secrets.toml`)
    that the environment leaves unset, as environment variables (so the Dask workers started later inherit
    them too), and forget the values read so far. Returns the names taken, sorted."""
    taken = sorted(k for k, v in values.items() if k.startswith(PREFIX) and not os.environ.get(k)
                   and isinstance(v, str | int | float | bool) and str(v).strip())
    for k in taken:
        os.environ[k] = str(values[k]).strip()
    if taken:
        reset()
    return taken


def get(name: str, error: type[UserError] = SettingError, environ: Mapping[str, str] | None = None) -> Any:
    """The setting's value: its environment variable parsed by its type, else its default.

    `error` is the UserError subclass raised for a value that cannot be used. With `environ` (a mapping),
    the value is parsed from it instead of the process's environment, and not kept.
    """
    s = SETTINGS[name]
    if environ is not None:
        return parse(s, str(environ.get(s.env, "") or "").strip(), error)
    if name not in _values:
        _values[name] = parse(s, environ_value(s.env), error)
    return _values[name]


# --- one parser per type ----------------------------------------------------------------------------
def parse(s: Setting, raw: str, error: type[UserError] = SettingError) -> Any:
    return _PARSERS[s.kind](s, raw, error)


def _bool(s: Setting, raw: str, error) -> bool:
    word = raw.lower()
    if not word:
        return s.default
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise error(f"{s.env} must be one of 1/0, true/false, yes/no, on/off, not {raw!r}. "
                f"Unset it for the default ({'on' if s.default else 'off'}).")


def _whole(s: Setting, raw: str, error, allowed: str = "") -> int:
    try:
        n = int(raw.replace("_", ""))
    except ValueError:
        raise error(f"{s.env} must be a whole number{allowed}, not {raw!r}.") from None
    if s.minimum is not None and n < s.minimum:
        raise error(f"{s.env} must be at least {s.minimum}{allowed}, not {n}.")
    return n


def _int(s: Setting, raw: str, error) -> int | None:
    return s.default if not raw else _whole(s, raw, error)


def _optional_int(s: Setting, raw: str, error) -> int | None:
    if not raw or raw.lower() in NONE_WORDS:
        return None
    return _whole(s, raw, error, " (or empty for no limit)")


def _seconds(s: Setting, raw: str, error) -> float | None:
    if not raw:
        return s.default
    try:
        value = float(raw)
    except ValueError:
        raise error(f"{s.env} must be a number of seconds, not {raw!r}.") from None
    if not value > 0 or value == float("inf"):
        raise error(f"{s.env} must be more than 0, not {raw!r}.")
    return value


def _bytes(s: Setting, raw: str, error) -> int | None:
    if not raw:
        return s.default
    from dask.utils import parse_bytes

    try:
        value = int(parse_bytes(raw))
    except (ValueError, TypeError):
        raise error(f"{s.env} must be a size such as 2GB, not {raw!r}.") from None
    if s.minimum is not None and value < s.minimum:
        floor = f"{s.minimum / 1e6:,.0f} MB" if s.minimum >= 1_000_000 else f"{s.minimum:,} bytes"
        raise error(f"{s.env} must be at least {floor}, not {raw!r}: a worker needs that much to start.")
    return value


def _text(s: Setting, raw: str, error) -> str | None:
    return raw or s.default


_PARSERS = {"bool": _bool, "int": _int, "optional_int": _optional_int, "seconds": _seconds, "bytes": _bytes,
            "path": _text, "text": _text}


# --- for people --------------------------------------------------------------------------------------
def _shown(s: Setting, value: Any) -> str:
    if value is None:
        return s.default_text or "unset"
    if s.secret:
        return "(set)"
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:,}" if isinstance(value, int) else str(value)


def markdown() -> str:
    """The README's settings table, made from this table (a test keeps the README's copy identical)."""
    lines = ["| variable | default | what it does |", "|---|---|---|"]
    lines += [f"| `{s.env}` | {_shown(s, s.default)} | {s.what} |" for s in _TABLE]
    return "\n".join(lines)


def table() -> list[dict]:
    """Every setting with its current value and where it came from, for `cnnkit settings` and the README.

    A value that cannot be used is shown as the sentence that says so, instead of raising."""
    rows = []
    for s in _TABLE:
        try:
            value = _shown(s, get(s.name))
        except UserError as err:
            value = f"unusable: {err}"
        rows.append({"name": s.name, "env": s.env, "type": s.kind, "value": value,
                     "default": _shown(s, s.default), "source": "environment" if is_set(s.name) else "default",
                     "what": s.what})
    return rows
