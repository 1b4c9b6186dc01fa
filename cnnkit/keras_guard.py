"""Every patch of Keras's `keras.backend.clear_session` in a process that serves many sessions at once.

Streamlit calls `keras.backend.clear_session()` after every script run of every session, from that
session's thread, while another session may be loading a model or tracing a function. Keras's global
state is not thread-safe: a load that races a clear fails now and then ("A total of 1 objects could not
be loaded", reproduced at about 1 load in 60 with a thread clearing in a loop), and the page would tell
the student their good run is damaged. Two patches, each installed once, in either order:

- `install()` (done by the first `guarded()`): loads and traces run `with guarded():`, and
  `clear_session` waits for them, so a clear happens between two loads, never during one;
- `keep_keras_state()` (the web process only, see webapp/keras_hygiene.py): a clear called from
  Streamlit's after-run cleanup does nothing at all; calls from anywhere else still clear.

Nothing here imports Streamlit: the second patch only recognises its cleanup function by name.
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

LOCK = threading.RLock()
_installed = False


def install() -> None:
    """Make `keras.backend.clear_session` take LOCK (once per process; imports Keras)."""
    global _installed
    if _installed:
        return
    import keras

    with LOCK:
        original = keras.backend.clear_session
        if not getattr(original, "cnnkit_guarded", False):
            @functools.wraps(original)   # keeps what other wrappers marked on it
            def clear_session(*args, **kwargs):
                with LOCK:
                    return original(*args, **kwargs)

            clear_session.cnnkit_guarded = True
            keras.backend.clear_session = clear_session
        _installed = True


@contextmanager
def guarded() -> Iterator[None]:
    """Hold LOCK while Keras builds (a model load, a first trace): no clear_session in between."""
    install()
    with LOCK:
        yield


def keep_keras_state() -> None:
    """Stop Streamlit from clearing Keras's session after every script run, in this process only.

    Streamlit's `_clean_problem_modules` calls `keras.backend.clear_session()` after every script run of every
    student, fragments included. That replaces Keras's per-thread state objects for *all* threads, clears
    TensorFlow's kernel cache and runs a full garbage collection. The web process never trains (jobs run on
    Dask workers), but it evaluates and predicts: a clear in the middle of another student's evaluation
    could break it ("Only input tensors may be passed as positional arguments" was seen once), and every
    prediction after a clear rebuilt its kernels. Calls from anywhere else still clear as before.
    Does nothing until Keras is imported.
    """
    backend = getattr(sys.modules.get("keras"), "backend", None)
    original = getattr(backend, "clear_session", None)
    if original is None or getattr(original, "kept_for_streamlit", False):
        return

    @functools.wraps(original)   # keeps what other wrappers marked on it (install()'s cnnkit_guarded)
    def clear_session(*args, **kwargs):
        caller = sys._getframe(1)
        for _ in range(4):   # Streamlit's cleanup, maybe through another wrapper (install()'s)
            if caller is None:
                break
            if caller.f_code.co_name == "_clean_problem_modules":
                return None
            caller = caller.f_back
        return original(*args, **kwargs)

    clear_session.kept_for_streamlit = True
    backend.clear_session = clear_session
