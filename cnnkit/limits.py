"""Named limits that keep one student's input from taking a shared server down.

Every limit is checked *before* memory is spent: from an array's header, an
image's header or a spec's text, never after decoding. Defaults suit Streamlit
Community Cloud's smallest useful host (2.7 GB for the whole class); each can be
changed with an environment variable (`CNNKIT_LIMIT_<NAME>`, e.g.
`CNNKIT_LIMIT_IMAGE_SIDE=1024`), read once per process through `settings.environ_value`.

Cost limits (`COST`) refuse in class mode (`CNNKIT_CLASS_MODE=1`) and only
warn on one's own machine; the others always refuse.

`check()` raises the caller's UserError subclass with a sentence that names the
limit, the value found and what to do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnnkit import settings
from cnnkit.errors import UserError


@dataclass(frozen=True)
class Limit:
    name: str
    default: int
    unit: str
    what: str

    @property
    def env(self) -> str:
        return f"CNNKIT_LIMIT_{self.name.upper()}"


_TABLE = (
    Limit("image_side", 512, "pixels", "height or width of a dataset image"),
    Limit("dataset_values", 250_000_000, "values",
          "pixel values (images × height × width × channels) of a dataset, train and test together; "
          "one byte each once loaded (CIFAR-10: 184 million)"),
    Limit("classes", 1_000, "classes", "classes in a dataset"),
    Limit("zip_files", 100_000, "files", "files inside an uploaded .zip"),
    Limit("zip_bytes", 400_000_000, "bytes", "bytes an uploaded .zip unpacks to"),
    Limit("kept_uploads_bytes", 4_000_000_000, "bytes",
          "bytes of uploaded datasets the server keeps for reloads, all students together (the least recently "
          "used go first)"),
    Limit("picture_pixels", 25_000_000, "pixels", "pixels of one picture to predict (a 6000×4000 photo is 24 million)"),
    Limit("spec_bytes", 1_000_000, "bytes", "size of a model file (JSON)"),
    Limit("json_depth", 32, "levels", "nesting depth of a model file (JSON)"),
    Limit("spec_layers", 100, "layers", "layers a model file may hold to be opened at all"),
    Limit("model_file_bytes", 100_000_000, "bytes", "size of a model file brought in (.keras, .h5, JSON, weights)"),
    Limit("run_file_bytes", 5_000_000, "bytes", "size of each JSON file in a run folder"),
    Limit("model_params", 8_000_000, "parameters", "parameters of a model to train (Lab B on CIFAR-10: 6.4 million)"),
    Limit("model_mflops", 500, "MFLOPs", "forward MFLOPs per image of a model to train (Lab B: 31)"),
    Limit("epoch_images", 1_500_000, "images",
          "epochs × training images of one training job (Lab C on full MNIST: 10 × 54,000)"),
    Limit("action_memory", 300_000_000, "bytes",
          "memory one student's action may add to the web process (an upload read, the Data page's statistics, "
          "a model file built, an evaluation or prediction): its peak is estimated before anything is allocated"),
)
LIMITS: dict[str, Limit] = {lim.name: lim for lim in _TABLE}
COST = ("model_params", "model_mflops", "epoch_images")

# The loss may grow to this many times its smallest value so far before a job is stopped as diverging.
DIVERGENCE_FACTOR = 1000.0


def get(name: str) -> int:
    """The limit's value now: its environment variable if set (a positive whole number), else its default."""
    lim = LIMITS[name]
    raw = settings.environ_value(lim.env).replace("_", "")
    if not raw:
        return lim.default
    try:
        value = int(float(raw))
    except ValueError:
        raise UserError(f"{lim.env} must be a whole number of {lim.unit}, not {raw!r}. "
                        f"Unset it to use the default ({lim.default:,}).") from None
    if value < 1:
        raise UserError(f"{lim.env} must be at least 1, not {value}. Unset it to use the default ({lim.default:,}).")
    return value


def exceeds(name: str, value: float) -> bool:
    return not math.isfinite(value) or value > get(name)


def sentence(name: str, subject: str, value: float, advice: str) -> str:
    """'<subject> is <value> <unit>; the limit is <limit> (<ENV>). <advice>'"""
    lim = LIMITS[name]
    shown = f"{value:,.0f}" if math.isfinite(value) else str(value)
    return f"{subject} {shown} {lim.unit}; the limit is {get(name):,} ({lim.env}). {advice}"


def check(name: str, value: float, error: type[UserError], subject: str, advice: str) -> None:
    """Raise `error` with a sentence when `value` is over the limit `name`."""
    if exceeds(name, value):
        raise error(sentence(name, subject, value, advice))


def check_image_size(width: int, height: int, error: type[UserError], what: str = "The picture") -> None:
    """A picture's size from its header, before any pixel is decoded."""
    check("picture_pixels", int(width) * int(height), error, f"{what} is {width}×{height}, that is",
          "Resize it (a few hundred pixels a side is plenty) and try again.")


def megabytes(n_bytes: float) -> str:
    """Bytes as a student reads them: '412 MB' (decimal megabytes, at least 1)."""
    return f"{max(1, round(n_bytes / 1e6)):,} MB"


def check_memory(need: float, error: type[UserError], doing: str, advice: str) -> None:
    """Raise `error` when an action's estimated peak memory `need` (bytes) is over the budget `action_memory`:
    '<doing> would take about 412 MB of the server's memory; one action may take 300 MB
    (CNNKIT_LIMIT_ACTION_MEMORY), since the whole class shares the server. <advice>'"""
    if exceeds("action_memory", need):
        shown = megabytes(need) if math.isfinite(need) else "more memory than it has"
        raise error(f"{doing} would take about {shown} of the server's memory; one action may take "
                    f"{megabytes(get('action_memory'))} ({LIMITS['action_memory'].env}), since the whole class "
                    f"shares the server. {advice}")


def table() -> list[dict]:
    """Every limit with its current value, for the README and `cnnkit limits`."""
    return [{"name": lim.name, "env": lim.env, "value": get(lim.name), "default": lim.default, "unit": lim.unit,
             "what": lim.what, "kind": "cost (refused in class mode, warned otherwise)" if lim.name in COST
             else "always refused"} for lim in _TABLE]
