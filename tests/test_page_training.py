"""AppTest of the training page: settings, a short job that streams and finishes, bad input, re-attaching."""

from __future__ import annotations

import re
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from cnnkit import presets

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def open_page(owner: str | None = None, **query) -> AppTest:
    """The training page in a new session; `owner` stands for the identity a browser's cookie carries."""
    at = AppTest.from_file(APP, default_timeout=90)
    if owner is not None:
        at.session_state["owner_id"] = owner
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("app_pages/training.py")
    at.run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "success", "warning", "error")
             for e in at.get(kind)]
    parts += [p.proto.text for p in at.get("progress")]
    return "\n".join(str(p) for p in parts)


def wait_for(at: AppTest, what: str, seconds: float = 90) -> str:
    deadline = time.time() + seconds
    while time.time() < deadline:
        at.run()
        assert not at.exception, at.exception
        t = texts(at)
        if what in t:
            return t
        time.sleep(0.5)
    raise AssertionError(f"{what!r} never appeared; the page says:\n{texts(at)}")


def test_page_shows_settings_with_explanations_and_an_empty_state(runs_dir):
    at = open_page()
    t = texts(at)
    assert "No training job yet" in t
    assert "How big each update step is" in t and "Images per weight update" in t
    # The cost before Start: FLOPs per image × images × epochs, a time on this server, the wait.
    assert re.search(r"MFLOPs per image × [\d,]+ image passes per epoch × \d+ epochs? ≈ "
                     r".*3,600 training images counts 3 times.* on this server", t), t
    assert "it starts at once" in t
    # the default preset's own settings for a dataset this size (the offline sample: its small-data recipe)
    default = presets.get(presets.DEFAULT).hyper_for(4000)
    assert at.selectbox(key="hp_optimizer").value == default.optimizer == "rmsprop"
    assert at.number_input(key="hp_lr").value == default.learning_rate
    assert at.radio(key="hp_lr_schedule").value == default.lr_schedule == "cosine"
    assert "cosine lowers it smoothly" in t
    # Picking Adadelta switches the learning rate to the 1.0 the lessons relied on.
    at.selectbox(key="hp_optimizer").set_value("adadelta").run()
    assert at.number_input(key="hp_lr").value == 1.0
    at.selectbox(key="hp_optimizer").set_value("sgd").run()
    assert at.slider(key="hp_momentum").value == 0.9 and at.number_input(key="hp_lr").value == 0.01


def test_settings_are_one_hyper_that_the_architecture_page_exports_and_a_reload_keeps(runs_dir):
    at = open_page()
    at.number_input(key="hp_epochs").set_value(2).run()
    at.toggle(key="hp_augment").set_value(True).run()
    at.radio(key="hp_labels").set_value("one_hot").run()
    at.number_input(key="hp_train_images").set_value(1000).run()
    from cnnkit.hyper import Hyper

    h = Hyper.from_dict(at.session_state["hyper"])
    assert (h.epochs, h.augment, h.labels, h.train_images, h.lr_schedule) == (2, True, "one_hot", 1000, "cosine")
    at.switch_page("app_pages/architecture.py").run()
    assert not at.exception
    [code] = [c.value for c in at.code]
    assert 'parser.add_argument("--epochs", type=int, default=2)' in code and "AUGMENT = True" in code
    # A reload (same student, new browser session) gets the same settings back on the Training page.
    reloaded = open_page(owner=at.session_state["owner_id"])   # same cookie, new browser session
    assert reloaded.number_input(key="hp_epochs").value == 2 and reloaded.toggle(key="hp_augment").value
    assert reloaded.number_input(key="hp_train_images").value == 1000


def test_bad_settings_give_a_sentence_not_a_traceback(runs_dir):
    at = open_page()
    at.number_input(key="hp_lr").set_value(0.0)
    at.button[0].click().run()
    assert not at.exception
    assert "learning rate must be greater than 0" in at.error[0].value
    at.number_input(key="hp_lr").set_value(0.003)
    at.number_input(key="hp_batch").set_value(100_000)
    at.button[0].click().run()
    assert "larger than the 3600 training images" in at.error[0].value
    assert "job" not in at.query_params


def test_short_job_streams_finishes_and_reattaches_after_reload(runs_dir):
    at = open_page()
    at.number_input(key="hp_epochs").set_value(1)
    at.number_input(key="hp_batch").set_value(256)
    at.button[0].click().run()
    assert not at.exception and not at.error
    job_id, sid = at.query_params["job"], at.session_state["owner_id"]
    assert "sid" not in at.query_params                          # the identity is never in the URL
    from webapp import training_jobs

    # the widget reaches the job
    assert training_jobs.job_registry().get(job_id, owner=sid).hyper.lr_schedule == "cosine"
    start = [b for b in at.button if b.label == "Start training"][0]
    assert start.disabled                                        # one job per student
    wait_for(at, "Epoch 1/1 · batch")                            # batch progress while it trains
    # A reload is a new session with the same cookie: it finds the same job.
    reloaded = open_page(owner=sid, job=job_id)
    assert reloaded.query_params["job"] == job_id
    t = wait_for(reloaded, "Test accuracy", seconds=120)
    assert "Finished 1 epoch in" in t and "Saved as run" in t
    assert [m.label for m in reloaded.metric][:2] == ["Test accuracy", "Test loss"]
    assert len([p for p in runs_dir.iterdir() if not p.name.startswith(".")]) == 1   # .students: saved choices
    # Someone else with the same job id (and an old-style identity) in the URL sees no job at all.
    stranger = open_page(job=job_id, sid=sid)
    assert "No training job yet" in texts(stranger) and "job" not in stranger.query_params
    assert "sid" not in stranger.query_params and stranger.session_state["owner_id"] != sid


def test_the_web_process_hides_its_libraries_from_the_collector_once_per_new_library(monkeypatch):
    # Streamlit and Keras collect garbage after every run of every student's progress panel; frozen imports
    # keep those collections small. A second call with nothing new imported does nothing.
    import gc
    import sys
    import types

    from webapp import keras_hygiene

    monkeypatch.setattr(keras_hygiene, "_SETTLED", set())
    monkeypatch.delitem(sys.modules, "keras", raising=False)
    try:
        assert keras_hygiene.settle_imports() is True
        frozen = gc.get_freeze_count()
        assert frozen > 10_000                                          # streamlit, plotly, pandas, cnnkit…
        # frozen objects can still die
        assert keras_hygiene.settle_imports() is False and gc.get_freeze_count() <= frozen
        monkeypatch.setitem(sys.modules, "keras", types.ModuleType("keras"))   # a page imported Keras
        assert keras_hygiene.settle_imports() is True
        assert keras_hygiene.settle_imports() is False
    finally:
        gc.unfreeze()


def test_streamlit_no_longer_clears_keras_state_under_another_students_evaluation():
    # Streamlit clears Keras's session after every script run; in the web process that would reset the
    # per-thread state of every thread (another student's evaluation included) and drop TensorFlow's kernels.
    import keras
    from keras.src.backend.common import global_state
    from streamlit.runtime.scriptrunner import script_runner

    from cnnkit import keras_guard

    keras_guard.keep_keras_state()
    keras_guard.keep_keras_state()                                  # once is enough; a second call changes nothing
    assert keras.backend.clear_session.kept_for_streamlit
    keras_guard.install()       # another wrapper around it (in either order) must not hide Streamlit's call
    before = global_state.GLOBAL_STATE_TRACKER
    script_runner._clean_problem_modules()                      # what Streamlit runs after every script run
    assert global_state.GLOBAL_STATE_TRACKER is before
    keras.backend.clear_session(free_memory=False)              # anyone else still clears
    assert global_state.GLOBAL_STATE_TRACKER is not before
