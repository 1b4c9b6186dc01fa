"""Comparing runs side by side: the Evaluation page's compare table (`compare_table`) and the columns it
shows (`compare_columns`), from each run's settings, size and test numbers. Runs are read duck-typed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from cnnkit.errors import SpecError
from cnnkit.evaluation import Evaluation, best_epoch
from cnnkit.hyper import OPTIMIZERS, optimizer_key
from cnnkit.run_labels import run_labels


def compare_table(runs: Sequence[Any], evaluations: dict[str, Evaluation] | None = None) -> pd.DataFrame:
    """One row per run: dataset, parameters, hyper-parameters, training time, best epoch, test accuracy/loss.

    Test figures come from `evaluations[run.id]` when given (measured now), else
    from the run's saved metrics.
    """
    evaluations = evaluations or {}
    labels = run_labels(list(runs))
    rows = []
    for run in runs:
        hyper = run.hyper
        metrics = dict(getattr(run, "metrics", {}) or {})
        history = dict(getattr(run, "history", {}) or {})
        ev = evaluations.get(run.id)
        rows.append(
            {
                "run": labels[run.id],
                "dataset": getattr(run, "dataset_name", ""),
                "parameters": _param_count(run),
                "layers": _layer_count(run),
                "optimizer": OPTIMIZERS[optimizer_key(hyper.optimizer)].title,
                "learning rate": hyper.learning_rate,
                "batch size": hyper.batch_size,
                "epochs run": metrics.get("epochs_run", len(history.get("loss", []))),
                "best epoch": best_epoch(history),
                "training seconds": metrics.get("train_seconds"),
                "test accuracy": ev.accuracy if ev is not None else metrics.get("test_accuracy"),
                "test loss": ev.loss if ev is not None else metrics.get("test_loss"),
            }
        )
    return pd.DataFrame(rows)


def compare_columns(runs: Sequence[Any], evaluations: dict[str, Evaluation] | None = None) -> pd.DataFrame:
    """The comparison as a readable table: one column per run ("Run 1", "Run 2", … in the order given),
    one row per figure, every cell written out (percentages, thousands separators, "—" when unknown).

    Few columns and short headers fit a projector and a phone; `run_labels` says which run is which.
    """
    table = compare_table(runs, evaluations)

    def fmt(value, how: str) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "—"
        return how.format(value)

    formats = {"test accuracy": "{:.2%}", "test loss": "{:.4f}", "parameters": "{:,}", "layers": "{}",
               "optimizer": "{}", "learning rate": "{:g}", "batch size": "{}", "epochs run": "{}",
               "best epoch": "{}", "training seconds": "{:.1f}"}
    rows = {name: [fmt(v, how) for v in table[name].tolist()] for name, how in formats.items()}
    return pd.DataFrame(rows, index=[f"Run {i + 1}" for i in range(len(table))]).T


def _param_count(run: Any) -> int | None:
    spec = getattr(run, "spec", None)
    if spec is None:
        return None
    try:
        return int(spec.summary().total_params)
    except SpecError:  # a spec the catalogue can no longer read: leave the cell empty, the row still helps
        return None


def _layer_count(run: Any) -> int | None:
    spec = getattr(run, "spec", None)
    layers = getattr(spec, "layers", None)
    return len(layers) if layers is not None else None
