"""Naming runs: what a page shows to tell runs apart in a list.

`run_labels` gives each run a one-line label that says what differs between it and the runs
listed with it (name, architecture and its changes against its preset, the training settings
that differ, test accuracy, when); `spec_changes` is that architecture diff in a few words.
Runs are read duck-typed (a `runs.Run` or anything with the same fields), so this module
never touches the disk store (and `runs.Run.label` can use it).
"""

from __future__ import annotations

import time
from typing import Any

from cnnkit.hyper import OPTIMIZERS

# --- telling runs apart --------------------------------------------------------------------------
# The settings a label may mention, in the order it mentions them, with how each is written.
_LABEL_FIELDS: tuple[tuple[str, Any], ...] = (
    ("optimizer", lambda v: OPTIMIZERS[v].keras_class if v in OPTIMIZERS else str(v)),
    ("learning_rate", lambda v: f"lr {v:g}"),
    ("lr_schedule", lambda v: "cosine decay" if v == "cosine" else "constant lr"),
    ("momentum", lambda v: f"momentum {v:g}"),
    ("epochs", lambda v: f"{v} epoch{'s' if v != 1 else ''}"),
    ("batch_size", lambda v: f"batch {v}"),
    ("validation_split", lambda v: f"validation {v:.0%}"),
    ("augment", lambda v: "augmented" if v else "not augmented"),
    ("early_stopping", lambda v: "early stopping" if v else "no early stopping"),
    ("labels", lambda v: "one-hot" if v == "one_hot" else "integer labels"),
    ("seed", lambda v: f"seed {v}"),
    ("train_images", lambda v: "all images" if v is None else f"{v:,} images"),
)
_ALWAYS = ("optimizer", "learning_rate", "epochs", "batch_size")  # what a label says when nothing differs


def _hyper_of(run: Any) -> dict:
    h = getattr(run, "hyper", None) or {}
    return h.to_dict() if hasattr(h, "to_dict") else dict(h)


def _from_file(run: Any) -> bool:
    return (getattr(run, "metrics", {}) or {}).get("source") == "file"


def spec_changes(spec_dict: dict, limit: int = 2) -> str:
    """How a run's architecture differs from the preset it is named after, in a few words.

    "" when it is the preset unchanged (or is not named after one); else e.g. "+Dropout",
    "−MaxPooling2D", "Conv2D 1 filters 32→16", joined by ", " and cut to `limit` changes.
    """
    import difflib

    from cnnkit import presets
    from cnnkit.errors import UserError

    name = spec_dict.get("name") or ""
    if name not in presets.names():
        return ""
    try:
        shape = tuple(spec_dict.get("input_shape") or presets.DEFAULT_INPUT_SHAPE)
        layers_now = [(d.get("type"), d.get("params") or {}) for d in spec_dict.get("layers", [])]
        last_units = next((p.get("units") for t, p in reversed(layers_now) if t == "Dense"), 10)
        base = presets.get(name, shape, int(last_units or 10)).spec
    except (UserError, TypeError, ValueError):
        return ""
    layers_base = [(layer.type, layer.resolved()) for layer in base.layers]
    from cnnkit import layers as catalogue

    def resolved(t, p):
        try:
            return catalogue.get(t).resolve(p)
        except (KeyError, UserError):
            return p

    layers_now = [(t, resolved(t, p)) for t, p in layers_now]
    changes: list[str] = []
    matcher = difflib.SequenceMatcher(a=[t for t, _ in layers_base], b=[t for t, _ in layers_now], autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            for k in range(a1 - a0):
                (t, pa), (_, pb) = layers_base[a0 + k], layers_now[b0 + k]
                for key in pa:
                    if pa.get(key) != pb.get(key):
                        changes.append(f"{t} {b0 + k + 1} {key} {pa.get(key)}→{pb.get(key)}")
        if op in ("replace", "delete"):
            changes += [f"−{t}" for t, _ in layers_base[a0:a1]]
        if op in ("replace", "insert"):
            changes += [f"+{t}" for t, _ in layers_now[b0:b1]]
    if len(changes) > limit:
        more = len(changes) - limit
        return ", ".join(changes[:limit]) + f", {more} more change{'s' if more > 1 else ''}"
    return ", ".join(changes)


def _stopped_epochs(h: dict, metrics: dict) -> str:
    """ "9 of 40 epochs (stopped)" for a run that stopped before its epochs were done (early stopping, a
    Stop), else ""."""
    try:
        run, planned = int(metrics.get("epochs_run") or 0), int(h.get("epochs") or 0)
    except (TypeError, ValueError):
        return ""
    if 0 < run < planned:
        return f"{run} of {planned} epochs (stopped)"
    return ""


def run_labels(runs: list[Any]) -> dict[str, str]:
    """One line per run that tells it apart from the others listed with it.

    Name (the student's, else the architecture's, with a short diff against its preset),
    then the settings whose values differ between these runs (optimizer, learning rate,
    epochs, batch size, … — the main four when nothing differs), test accuracy and when. A run that
    stopped early says so: "9 of 40 epochs (stopped)".
    """
    hypers = {r.id: _hyper_of(r) for r in runs if not _from_file(r)}  # a file's run has no settings of ours
    differing = [k for k, _ in _LABEL_FIELDS if len({repr(h.get(k)) for h in hypers.values()}) > 1]
    shown = differing if len(runs) > 1 and differing else list(_ALWAYS)
    stamp = "%d %b %H:%M"
    minutes = [time.strftime(stamp, time.localtime(r.created)) for r in runs]
    if len(set(minutes)) < len(minutes):
        stamp = "%d %b %H:%M:%S"  # two runs in one minute: the seconds tell them apart
    labels = {}
    for r in runs:
        h = hypers.get(r.id, {})
        spec_dict = getattr(r, "spec_dict", {}) or {}
        arch = spec_dict.get("name") or ""
        diff = spec_changes(spec_dict)
        head = getattr(r, "name", "") or getattr(r, "title", "") or arch or str(r.id)
        if arch and arch != head:
            head += f" · {arch}"
        if diff:
            head += f" ({diff})"
        metrics = getattr(r, "metrics", {}) or {}
        stopped = _stopped_epochs(h, metrics)
        parts = [head] + [stopped if k == "epochs" and stopped else fmt(h[k])
                          for k, fmt in _LABEL_FIELDS if (k in shown or (k == "epochs" and stopped)) and k in h]
        if _from_file(r):
            parts.append("from a file")
        acc = metrics.get("test_accuracy")
        if isinstance(acc, (int, float)):
            parts.append(f"test {acc:.1%}")
        parts.append(time.strftime(stamp, time.localtime(r.created)))
        if getattr(r, "shared", False):
            by = (getattr(r, "extra", {}) or {}).get("shared_by")
            parts.append(f"shared by {by}" if by else "shared")
        labels[r.id] = " · ".join(parts)
    return labels
