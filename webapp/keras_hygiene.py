"""Tuning of the web process for a class: the libraries imported so far hidden from Python's cycle collector
(gc.freeze), and, once Keras is imported, Streamlit's clear of Keras's session after every script run turned
off (cnnkit.keras_guard owns both patches of `keras.backend.clear_session`). app.py calls `settle_imports()`."""

from __future__ import annotations

import gc
import sys

from cnnkit import keras_guard

_SETTLED: set[str] = set()


def settle_imports() -> bool:
    """Hide the long-lived objects of the libraries imported so far from Python's cycle collector (gc.freeze);
    True when it froze something new. Called by app.py after every full run (cheap once done).

    Streamlit collects all garbage after every script run, fragments included, and once Keras is imported
    it also clears Keras's session, which collects again. Each full collection walks every object in the
    process: the app's libraries and the embedded Dask scheduler make that 0.1–0.9 s holding the
    interpreter lock on a 2-core server (more with TensorFlow's ~470,000 objects), and every student's
    progress panel polls once a second, so a class of thirty kept the server busy collecting. Modules,
    classes and functions live as long as the process anyway; frozen, a collection only looks at what the
    sessions made since.
    """
    mark = "keras" if "keras" in sys.modules else "app"
    if mark in _SETTLED:
        return False
    if mark == "keras":
        keras_guard.keep_keras_state()
    gc.collect()  # what is garbage now goes first: frozen objects are never collected
    gc.freeze()
    _SETTLED.add(mark)
    if mark == "keras":
        _SETTLED.add("app")
    return True
