"""The one Start path (cnnkit/jobs/start.py): every way to start training — the Training page, the Draw page's
one-click model, `python -m cnnkit train` in class mode — meets each class limit (epochs cap, training-image
cap, one job at a time, the seconds budget), says what it changed with the value the student gave, and the
job's real settings show it. No other code calls `JobRegistry.submit` or `training.train`.

The pages' jobs go to a registry without a cluster (closed at once: a job stays queued with its real
settings, nothing trains); the command line trains a tiny model for real and its saved run is read back.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnkit import classroom, identity, jobs, runs
from cnnkit.__main__ import main
from cnnkit.errors import TrainingError
from cnnkit.hyper import Hyper
from cnnkit.jobs import start

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")


@pytest.fixture
def lecture(runs_dir, monkeypatch):
    """Class mode on, no limits from the environment, and the app's registry one without a cluster."""
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    for name in ("CNNKIT_CLASS_MAX_EPOCHS", "CNNKIT_CLASS_MAX_TRAIN_IMAGES", "CNNKIT_CLASS_ONE_JOB",
                 "CNNKIT_JOB_SECONDS", "CNNKIT_CLASS_DIR"):
        monkeypatch.delenv(name, raising=False)
    reg = jobs.JobRegistry(SimpleNamespace(submit=None), runs_root=runs_dir, slots=1)
    reg.close()   # no poller: every job stays queued with its real settings; nothing reaches a cluster
    from webapp import job_panel, training_jobs

    monkeypatch.setattr(training_jobs, "job_registry", lambda: reg)
    monkeypatch.setattr(job_panel, "job_registry", lambda: reg)
    yield reg
    for job in reg.jobs():
        job.stop()


def limit(**kw) -> None:
    classroom.book().set_limits(classroom.ClassLimits(**kw))


def page(path: str, owner: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["owner_id"] = owner
    at.run()
    at.switch_page(path)
    at.run()
    assert not at.exception, at.exception
    return at


def words(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "error", "success")
                     for e in at.get(kind))


def training_start(owner: str, epochs: int | None = None, replace: bool = False) -> AppTest:
    at = page("app_pages/training.py", owner)
    if epochs is not None:
        at.number_input(key="hp_epochs").set_value(epochs).run()
    label = "Stop my job and start one with these settings" if replace else "Start training"
    next(b for b in at.button if b.label == label).click().run()
    assert not at.exception, at.exception
    return at


def draw_start(owner: str) -> AppTest:
    at = page("app_pages/draw.py", owner)
    next(b for b in at.button if b.key == "draw_train_fast").click().run()
    assert not at.exception, at.exception
    return at


# --- the Training page ---------------------------------------------------------------------------------
def test_training_page_epochs_cap_says_the_typed_value(lecture):
    limit(max_epochs=4)
    me = identity.new_owner_id()
    at = page("app_pages/training.py", me)
    # The box is not clamped to the cap: the student types 10, and the note before Start says 10.
    at.number_input(key="hp_epochs").set_value(12).run()
    at.number_input(key="hp_epochs").set_value(10).run()
    assert at.number_input(key="hp_epochs").value == 10
    assert "so this job trains 4 instead of 10." in words(at) and "instead of 12" not in words(at)
    next(b for b in at.button if b.label == "Start training").click().run()
    job = lecture.job_for(me)
    assert job.hyper.epochs == 4 and job.computation.hyper.epochs == 4
    assert "so this job trains 4 instead of 10." in words(at)


def test_training_page_image_cap(lecture):
    limit(max_train_images=2000)
    me = identity.new_owner_id()
    at = training_start(me)
    job = lecture.job_for(me)
    assert job.hyper.train_images == 2000 and job.computation.cost.images == 1800   # 10 % validate
    assert "trains on a stratified 2,000 instead of 4,000." in words(at)


def test_training_page_one_job_at_a_time_then_replace(lecture):
    limit(one_job_at_a_time=True)
    me = identity.new_owner_id()
    training_start(me)
    first = lecture.job_for(me)
    at = page("app_pages/training.py", me)             # another tab of the same browser
    assert next(b for b in at.button if b.label == "Start training").disabled
    with pytest.raises(TrainingError, match="one training job at a time"):
        start.start_training(*_what(at), owner=me, registry=lecture)
    training_start(me, replace=True)
    assert first.state.value == "stopped" and lecture.active_count(me) == 1 and lecture.job_for(me) is not first


def test_training_page_seconds_budget(lecture, monkeypatch):
    monkeypatch.setenv("CNNKIT_JOB_SECONDS", "1")
    me = identity.new_owner_id()
    at = training_start(me)
    assert lecture.job_for(me) is None
    assert "more than the class limit of 1 s per job" in words(at)


def _what(at):
    from cnnkit import datasets, presets

    ds = datasets.offline_sample()
    p = presets.get(presets.DEFAULT, ds.image_shape, ds.num_classes)
    return p.spec, ds, p.hyper_for(len(ds.y_train))


# --- the Draw page's one-click model ----------------------------------------------------------------------
def test_draw_one_click_epochs_and_image_caps(lecture):
    limit(max_epochs=2, max_train_images=2000)
    me = identity.new_owner_id()
    at = page("app_pages/draw.py", me)
    assert "2 epochs over 1,800 images" in words(at)          # the offer already says what will train
    next(b for b in at.button if b.key == "draw_train_fast").click().run()
    job = lecture.job_for(me)
    assert (job.hyper.epochs, job.hyper.train_images) == (2, 2000) and job.computation.cost.images == 1800
    assert "is training on" in words(at)


def test_draw_one_click_one_job_at_a_time(lecture):
    limit(one_job_at_a_time=True)
    me = identity.new_owner_id()
    training_start(me)
    at = page("app_pages/draw.py", me)   # the job the student has is shown, with Stop; no second Start
    assert not [b for b in at.button if b.key == "draw_train_fast"] and "is training on" in words(at)
    spec, ds, hyper = _what(at)
    with pytest.raises(TrainingError, match="one training job at a time"):
        start.start_training(spec, ds, hyper, owner=me, registry=lecture)
    limit(one_job_at_a_time=False)                          # lifted: a few side by side
    assert start.start_training(spec, ds, hyper.replace(seed=7), owner=me, registry=lecture).job.state.active


def test_draw_one_click_seconds_budget(lecture, monkeypatch):
    monkeypatch.setenv("CNNKIT_JOB_SECONDS", "1")
    me = identity.new_owner_id()
    at = draw_start(me)
    assert lecture.job_for(me) is None and "more than the class limit of 1 s per job" in words(at)


# --- the command line in class mode -----------------------------------------------------------------------
@pytest.fixture
def npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=rng.integers(0, 256, (200, 28, 28), dtype=np.uint8), y_train=np.arange(200) % 10,
             x_test=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), y_test=np.arange(50) % 10)
    return path


def _flat():
    from cnnkit.spec import LayerSpec, ModelSpec

    return ModelSpec((28, 28, 1), [LayerSpec.new("Flatten"), LayerSpec.new("Dense", units=10,
                                                                          activation="softmax")], name="flat")


def _flat_spec(tmp_path) -> str:
    f = tmp_path / "spec.json"
    f.write_text(_flat().to_json())
    return str(f)


def test_command_line_epochs_and_image_caps(lecture, npz, tmp_path, capsys):
    limit(max_epochs=1, max_train_images=100)
    code = main(["train", "--dataset", str(npz), "--spec", _flat_spec(tmp_path), "--epochs", "3",
                 "--batch-size", "30", "--quiet", "--out", str(tmp_path / "out")])
    out = capsys.readouterr()
    assert code == 0, out.err
    run = runs.load_run(json.loads(out.out)["run"])
    assert (run.hyper.epochs, run.hyper.train_images) == (1, 100)
    assert (run.metrics["epochs_run"], run.metrics["num_train"]) == (1, 90)
    assert "trains 1 instead of 3." in out.err and "stratified 100 instead of 200." in out.err


def test_command_line_seconds_budget_and_one_job(lecture, npz, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CNNKIT_JOB_SECONDS", "1")
    code = main(["train", "--dataset", str(npz), "--spec", _flat_spec(tmp_path), "--quiet",
                 "--out", str(tmp_path / "out")])
    assert code == 2 and "more than the class limit of 1 s per job" in capsys.readouterr().err
    # One job at a time is per student in the web process; the command line has no student and trains in
    # its own process, so the rule cannot refuse it: the plan passes (and still caps epochs).
    limit(max_epochs=1, one_job_at_a_time=True)
    assert start.plan_start(Hyper(epochs=5), 200, active_jobs=0).hyper.epochs == 1


def test_the_command_line_tests_without_a_challenges_hidden_share(lecture, offline_ds, tmp_path):
    from cnnkit import challenge

    ch = challenge.ChallengeStore().open_share(offline_ds, 0.2, seed=4)
    got = start.start_training(_flat(), offline_ds, Hyper(epochs=1, batch_size=100, train_images=500),
                               runs_root=tmp_path / "out", limits=None)
    visible = challenge.visible_indices(offline_ds.y_test, ch.share, ch.seed)
    assert got.job.run.metrics["num_test"] == len(visible) == 800


def test_outside_class_mode_nothing_changes(runs_dir, monkeypatch):
    monkeypatch.delenv("CNNKIT_CLASS_MODE", raising=False)
    classroom.book().set_limits(classroom.ClassLimits(max_epochs=1, max_train_images=10))
    plan = start.plan_start(Hyper(epochs=9), 4000)
    assert (plan.hyper, plan.notes, plan.limits, plan.max_active) == (Hyper(epochs=9), (), None, 1)


def test_a_dataset_under_the_image_cap_is_left_alone():
    h, notes = classroom.apply_limits(Hyper(), classroom.ClassLimits(max_train_images=5000), num_train=4000)
    assert h.train_images is None and notes == []


def test_nothing_else_starts_training():
    """The one Start path is the only caller of `JobRegistry.submit` and `training.train` in the app and
    cnnkit (the benchmarks measure the registry itself)."""
    callers = []
    for path in [*ROOT.glob("app_pages/*.py"), *ROOT.glob("webapp/*.py"), *ROOT.glob("cnnkit/**/*.py"),
                 ROOT / "app.py"]:
        if path.name == "start.py" or "__pycache__" in path.parts:
            continue
        text = path.read_text()
        for m in re.finditer(r"(\w+(?:\(\))?)\.submit\(|\btraining\.train\(|\bimport train\b", text):
            if m.group(1) not in ("client", "self"):   # Dask's client.submit: the cluster link, below the registry
                callers.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
    assert callers == []


# --- the job follows the browser ---------------------------------------------------------------------------
def test_every_tab_of_a_browser_finds_and_stops_the_job(lecture):
    me = identity.new_owner_id()
    first_tab = training_start(me)
    job = lecture.job_for(me)
    assert job.state.active and first_tab.query_params["job"] == job.id
    # A second tab: the same cookie, no ?job= in its address. It finds the job with Stop and Replace, and on
    # the Draw page too; the sidebar follows it.
    second_tab = page("app_pages/training.py", me)
    assert second_tab.query_params["job"] == job.id and "Your job" in words(second_tab)
    assert [b for b in second_tab.button if b.label == "Stop my job and start one with these settings"]
    assert "**Training:** waiting" in words(page("app_pages/draw.py", me))
    next(b for b in second_tab.button if b.label == "Stop").click().run()
    assert job.state.value == "stopped"
    # Someone else's tab, even with this job's id in its address, sees nothing of it.
    assert lecture.job_for(identity.new_owner_id(), job.id) is None


def test_job_for_prefers_the_active_job_then_the_newest_ended(lecture, tiny_ds):
    ds = tiny_ds(n_train=300)
    from tests.test_jobs import quick, tiny_spec

    old = lecture.submit(tiny_spec(), ds, quick(seed=1), owner="ann")
    old.stop()
    new = lecture.submit(tiny_spec(), ds, quick(seed=2), owner="ann")
    assert lecture.job_for("ann", old.id) is new                 # the active one wins over a tab's old ?job=
    new.stop()
    assert lecture.job_for("ann") is new and lecture.job_for("bob") is None and lecture.job_for(None) is None


def test_a_job_lost_to_a_restart_is_told_in_every_tab(lecture, tiny_ds, runs_dir):
    from tests.test_jobs import quick, tiny_spec

    waiting = lecture.submit(tiny_spec(), tiny_ds(n_train=300), quick(seed=3), owner="cat")
    restarted = jobs.JobRegistry(SimpleNamespace(submit=None), runs_root=runs_dir, slots=1)
    restarted.close()
    try:
        tabs = [restarted.job_for("cat") for _ in range(3)]       # no ?job= in any tab
        assert tabs[0] is not None and tabs[0].id == waiting.id and all(t is tabs[0] for t in tabs)
        assert tabs[0].state.value == "failed" and "This job was lost" in tabs[0].snapshot().message
        assert restarted.job_for("dan") is None
    finally:
        restarted.close()
