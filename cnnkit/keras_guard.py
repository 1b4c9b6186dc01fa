"""One lock between building Keras models and clearing Keras's global state, in a process that serves many.

Streamlit calls `keras.backend.clear_session()` after every script run of every session, from that
session's thread, while another session may be loading a model or tracing a function. Keras's global
state is not thread-safe: a load that races a clear fails now and then ("A total of 1 objects could not
be loaded", reproduced at about 1 load in 60 with a thread clearing in a loop), and the page would tell
the student their good run is damaged. Loads and traces run `with guarded():`; `install()` (done by the
first `guarded()`) makes `keras.backend.clear_session` wait for them, so a clear happens between two
loads, never during one. Nothing here knows about Streamlit.
"""

from __future__ import annotations

import functools
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
