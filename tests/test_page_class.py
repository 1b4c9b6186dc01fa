"""AppTest of the lecturer's Class page: no key configured, the key box, the view, sharing, limits; and the
nickname box and limits a student meets in class mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cnnkit import classroom, identity, presets, runs

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGE = "app_pages/class.py"
KEY = "correct horse battery staple"


class _FakeModel:
    def save(self, path):
        Path(path).write_bytes(b"not a real model")


def _run(owner, preset="fast_cpu", acc=0.97):
    return runs.save_run(_FakeModel(), presets.get(preset).spec, {"epochs": 3}, {"loss": [1.0, 0.5, 0.3]},
                         {"test_accuracy": acc, "epochs_run": 3}, "mnist", owner=owner, title=preset)


def open_class(owner: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if owner is not None:
        at.session_state["owner_id"] = owner
    at.run()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, at.exception
    return at


def words(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "error", "success")
                     for e in at.get(kind))


@pytest.fixture
def lecture(runs_dir, monkeypatch):
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    monkeypatch.setenv("CNNKIT_LECTURER_KEY", KEY)
    for name in ("CNNKIT_CLASS_MAX_EPOCHS", "CNNKIT_CLASS_MAX_TRAIN_IMAGES", "CNNKIT_CLASS_ONE_JOB"):
        monkeypatch.delenv(name, raising=False)
    return runs_dir


def test_without_a_key_configured_the_page_says_how_to_set_one(runs_dir, monkeypatch):
    monkeypatch.delenv("CNNKIT_LECTURER_KEY", raising=False)
    at = open_class()
    assert "no lecturer key is set" in words(at) and "CNNKIT_LECTURER_KEY" in words(at)
    assert not at.text_input and not at.dataframe


def test_key_box_refuses_then_unlocks_and_shows_the_class(lecture):
    student = identity.new_owner_id()
    mine = _run(student, "single_conv", 0.95)
    at = open_class()
    assert not at.dataframe and not at.get("plotly_chart") and mine.id not in words(at)
    at.text_input(key="lecturer_key_typed").input("a wrong guess")
    at.button[0].click().run()
    assert "not the lecturer key" in at.error[0].value and not at.dataframe
    at.text_input(key="lecturer_key_typed").input(KEY)
    at.button[0].click().run()
    assert not at.exception and not [t for t in at.text_input if t.key == "lecturer_key_typed"]
    assert len(at.get("plotly_chart")) == 1
    table = at.dataframe[-1].value
    assert list(table["Student"]) == [classroom.book().label(student)] and list(table["Architecture"]) == [
        "single_conv"]
    assert int(table["Parameters"][0]) == 542_230 and float(table["Test accuracy"][0]) == pytest.approx(0.95)
    assert [m.value for m in at.metric][:2] == ["1", "1"]  # one student, one run
    # The same browser later (a reload keeps its cookie, here its owner id): still unlocked.
    again = open_class(owner=at.session_state["owner_id"])
    assert len(again.get("plotly_chart")) == 1
    # Another browser is not.
    assert not open_class().get("plotly_chart")


def _unlocked(lecture) -> AppTest:
    lecturer = identity.new_owner_id()
    classroom.book().unlock(lecturer, KEY, KEY)
    return open_class(owner=lecturer)


def test_share_with_the_class_and_take_back(lecture):
    student = identity.new_owner_id()
    mine = _run(student, "keras_convnet", 0.98)
    classroom.book().set_nickname(student, "Ada")
    at = _unlocked(lecture)
    assert at.selectbox(key="class_share_pick").value == mine.id
    next(b for b in at.button if b.label == "Share with the class").click().run()
    assert not at.exception
    [copy] = runs.list_runs(owner=identity.new_owner_id())   # any other student now sees it
    assert copy.shared and copy.extra["shared_by"] == "Ada" and copy.owner is None
    # The copy and its run are one row (marked shared), and the student sees their run once, not twice.
    table = at.dataframe[-1].value
    assert list(table["Student"]) == ["Ada"] and list(table["Shared"]) == [True]
    assert [r.id for r in runs.list_runs(owner=student)] == [mine.id]
    next(b for b in at.button if b.label == "Take back").click().run()
    assert runs.list_runs(owner=identity.new_owner_id()) == []


def test_limits_saved_on_the_page_are_stored_on_the_server(lecture):
    def _cap(at, label):   # by label: the page has other number boxes (the class challenge's)
        return next(n for n in at.number_input if n.label == label)

    at = _unlocked(lecture)
    assert "environment" in words(at)
    _cap(at, "Epochs cap").set_value(3)
    _cap(at, "Training-image cap").set_value(1500)
    next(b for b in at.button if b.label == "Save limits").click().run()
    assert not at.exception
    assert classroom.ClassBook(classroom.class_dir() / classroom.CLASS_FILE).limits() == classroom.ClassLimits(
        max_epochs=3, max_train_images=1500, one_job_at_a_time=True)
    assert "Set on this page" in words(at) and _cap(at, "Epochs cap").value == 3
    next(b for b in at.button if b.label == "Use the environment's limits").click().run()
    assert classroom.book().limits() == classroom.ClassLimits() and _cap(at, "Epochs cap").value is None


def test_presentation_mode_enlarges_the_chart_and_lists_the_best_runs(lecture):
    for i in range(3):
        _run(identity.new_owner_id(), acc=0.9 + i / 100)
    at = _unlocked(lecture)
    small = at.get("plotly_chart")[0].proto.spec
    at.toggle(key="_w.class.presentation").set_value(True).run()
    assert not at.exception
    big = at.get("plotly_chart")[0].proto.spec
    import json

    assert json.loads(big)["layout"]["height"] > json.loads(small)["layout"]["height"]
    assert len(at.table) == 1 and "3 best of 3 runs" in words(at)
    # the lecturer shows another page and comes back: still in presentation mode
    at.switch_page("app_pages/evaluation.py").run()
    at.switch_page("app_pages/class.py").run()
    assert not at.exception and at.toggle(key="_w.class.presentation").value is True
    assert at.get("plotly_chart")[0].proto.spec == big


def test_students_do_not_see_the_class_page_and_can_pick_a_nickname(lecture):
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    from webapp import stages

    assert "Class" not in [s.title for s in stages.existing_stages()]
    at.text_input[0].input("Grace H.")
    at.button[0].click().run()  # the nickname form's Save
    assert classroom.book().nickname(at.session_state["owner_id"]) == "Grace H."


def test_training_page_enforces_the_class_limits(lecture):
    classroom.book().set_limits(classroom.ClassLimits(max_epochs=2, one_job_at_a_time=True))
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    at.switch_page("app_pages/training.py")
    at.run()
    assert not at.exception, at.exception
    # The box keeps what the preset suggests (3 here); the note before Start says what the cap makes of it.
    epochs = at.number_input(key="hp_epochs")
    assert epochs.value == 3 and "so this job trains 2 instead of 3." in words(at)
    assert "Your lecturer's limits for this class: at most 2 epochs per job, one job at a time." in words(at)
