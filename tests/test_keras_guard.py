"""cnnkit.keras_guard: Streamlit's clear_session (after every script run of every session) never runs in the
middle of another session's model load or first trace."""

from __future__ import annotations

import threading

import keras

from cnnkit import evaluation, keras_guard, model_files, runs


def test_clear_session_waits_for_a_guarded_load():
    keras_guard.install()
    keras_guard.install()  # once per process, however often it is asked
    assert keras.backend.clear_session.cnnkit_guarded
    cleared = threading.Event()

    def clear() -> None:
        keras.backend.clear_session(free_memory=False)  # what Streamlit calls after a script run
        cleared.set()

    with keras_guard.guarded():
        other = threading.Thread(target=clear)
        other.start()
        assert not cleared.wait(0.3)  # held back while the load is under way
    assert cleared.wait(10)
    other.join()
    with keras_guard.guarded():
        keras.backend.clear_session(free_memory=False)  # the guarding thread itself is not blocked


def test_model_loads_hold_the_guard_and_the_guarded_first_trace_answers(tmp_path, monkeypatch):
    import numpy as np

    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3, "softmax")])
    path = tmp_path / "m.keras"
    model.save(path)
    held = []
    load = keras.saving.load_model

    def spy(*args, **kwargs):
        held.append(keras_guard.LOCK._is_owned())
        return load(*args, **kwargs)

    monkeypatch.setattr(keras.saving, "load_model", spy)
    runs._load_model_cached(path)  # a run's model (Evaluation and Draw pages)
    loaded = model_files.load_model_file(path.read_bytes(), "m.keras")  # an uploaded .keras file
    assert held == [True, True]
    fn = evaluation._batch_function(loaded, (4, 4, 1))
    probs, _, _ = fn(np.zeros((2, 4, 4, 1), np.uint8), np.zeros(2, np.int64))
    assert probs.shape == (2, 3)
