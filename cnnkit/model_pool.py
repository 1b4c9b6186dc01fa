"""Compiled models kept for the next job of the same shape: a lecture's small jobs skip Keras's tracing.

In a lecture most jobs train the same small model with the same settings, only the seed differs. Each new
Keras model pays for tracing its train step (about 1 s on two cores), its validation step and its test step
again, several times the arithmetic of a small job. A worker process therefore keeps a few compiled models
(`take` / `give`): a job whose model and optimizer are configured exactly like a kept one borrows it, sets
every variable to the values a freshly built model with the job's seed has (weights, batch-norm statistics,
random-seed states) and every optimizer variable back to its value before the first step, and trains with
the traced functions as they are. The result is the same, number for number, as a fresh model's
(tests/test_model_pool.py; the exported script still reproduces the run).

What makes two jobs share a kept model (`pool_key`): the spec, the optimizer's full configuration (its
learning-rate schedule with the planned steps included) and the loss. Kept: at most
`pool_size()` idle models per process (CNNKIT_WORKER_MODELS, 3; 0 keeps none), least recently used first out,
and only models up to `MAX_PARAMS` parameters (the lesson-sized ones; a big model's trace is small next to its
arithmetic).

Core floor: Keras is imported inside the functions, never at import.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict

from cnnkit import settings

MAX_PARAMS = 2_000_000        # bigger models are never kept

_LOCK = threading.Lock()
_IDLE: OrderedDict[str, list] = OrderedDict()    # key → idle models, the most recently given last
_STATS = {"taken": 0, "built": 0}


def compiled_model(spec, hyper, *, total_steps: int, lock):
    """The compiled model a job trains: built with the job's seed (under `lock`: Keras's seed is process-wide),
    then a kept model of the same shape set to its variables, or the new one compiled (and ready to be kept)."""
    import keras

    with lock:
        keras.utils.set_random_seed(hyper.seed)
        fresh = spec.to_keras()
        optimizer = hyper.make_optimizer(total_steps=total_steps)
        key = pool_key(spec, optimizer, hyper.loss)
    model = take(key, fresh)
    if model is None:
        model = fresh
        model.compile(optimizer=optimizer, loss=hyper.loss, metrics=["accuracy"])
        prepare(key, model)
    return model


def pool_key(spec, optimizer, loss: str) -> str | None:
    """What a compiled model must match to be reused: None when this model is never kept."""
    import keras

    if spec.summary().total_params > MAX_PARAMS:
        return None
    return json.dumps([spec.to_dict(), keras.optimizers.serialize(optimizer), loss],
                      sort_keys=True, default=str)


def take(key: str | None, fresh):
    """A kept compiled model for `key` set to `fresh`'s variables (a just-built model with the job's seed),
    its optimizer as before its first step; or None (then compile `fresh` and `prepare` it)."""
    if key is None:
        return None
    with _LOCK:
        idle = _IDLE.get(key)
        model = idle.pop() if idle else None
        if idle == []:
            del _IDLE[key]
    if model is None:
        return None
    mine, theirs = model.variables, fresh.variables
    if len(mine) != len(theirs) or any(tuple(a.shape) != tuple(b.shape) for a, b in zip(mine, theirs, strict=True)):
        return None     # not the same model after all: never guess
    for a, b in zip(mine, theirs, strict=True):
        a.assign(b.value)
    for var, value in zip(model.optimizer.variables, model._cnnkit_pool[1], strict=True):
        var.assign(value)
    model.stop_training = False
    model.stop_evaluating = False
    with _LOCK:
        _STATS["taken"] += 1
    return model


def prepare(key: str | None, model) -> None:
    """Before a freshly compiled model's first step: build its optimizer and note every optimizer variable's
    starting value, so that a later job can borrow the model (`take`)."""
    import keras

    if key is None:
        return
    model.optimizer.build(model.trainable_variables)
    model._cnnkit_pool = (key, [keras.ops.convert_to_numpy(v.value).copy() for v in model.optimizer.variables])
    with _LOCK:
        _STATS["built"] += 1


def pool_size() -> int:
    """How many idle compiled models this process keeps (CNNKIT_WORKER_MODELS)."""
    return settings.get("worker_models")


def give(model) -> None:
    """A job is done with `model` (its weights are saved or sent): keep it for the next job of its key."""
    entry = getattr(model, "_cnnkit_pool", None)
    if entry is None:
        return
    with _LOCK:
        _IDLE.setdefault(entry[0], []).append(model)
        _IDLE.move_to_end(entry[0])
        while _IDLE and sum(len(v) for v in _IDLE.values()) > pool_size():
            oldest = next(iter(_IDLE))
            _IDLE[oldest].pop(0)
            if not _IDLE[oldest]:
                del _IDLE[oldest]


def stats() -> dict:
    """Models borrowed and models built for the pool in this process, and how many are idle now."""
    with _LOCK:
        return {**_STATS, "idle": sum(len(v) for v in _IDLE.values())}


def clear() -> None:
    """Forget every kept model (tests; a process about to clear Keras's state)."""
    with _LOCK:
        _IDLE.clear()
