"""cnnkit.identity and cnnkit.classroom: identities, the class book, limits, sharing, and the class summary
computed on a runs folder made here."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace

import pytest

from cnnkit import classroom, identity, presets, runs
from cnnkit.errors import RunError, TrainingError

A, B, C = (identity.new_owner_id() for _ in range(3))


class _FakeModel:
    """Stands in for a Keras model: save_run only asks it to write model.keras."""

    def save(self, path):
        with open(path, "wb") as f:
            f.write(b"not a real model")


def _run(root, preset: str, owner: str | None, acc: float | None, dataset_name: str = "mnist",
         epochs: int = 3):
    spec = presets.get(preset).spec
    metrics = {"epochs_run": epochs}
    if acc is not None:
        metrics["test_accuracy"] = acc
    return runs.save_run(_FakeModel(), spec, {"epochs": epochs}, {"loss": [1.0] * epochs}, metrics, dataset_name,
                         root=root, owner=owner, title=preset)


def _job(owner, state, **kw):
    base = {"owner": owner, "title": "fast_cpu", "dataset_name": "mnist", "state": SimpleNamespace(value=state),
            "epoch": 2, "epochs": 8, "job_fraction": 0.3, "queue_position": None}
    base.update(kw)
    return SimpleNamespace(**base)


@pytest.fixture
def book(runs_dir):
    return classroom.ClassBook(runs_dir / ".class" / "class.json")


# --- identity ----------------------------------------------------------------------------------------------
def test_identities_are_random_192_bit_and_checked():
    ids = {identity.new_owner_id() for _ in range(500)}
    assert len(ids) == 500 and all(identity.is_owner_id(i) and len(i) == 32 for i in ids)
    for bad in ("", "abc", "0123456789ab", "x" * 31, "x" * 33, "a;b=c" + "x" * 27, None, 42):
        assert not identity.is_owner_id(bad)
    assert identity.owner_key(A) != identity.owner_key(B) and A not in identity.owner_key(A)


def test_lecturer_key_comparison():
    assert identity.key_matches(" secret phrase ", "secret phrase")
    assert not identity.key_matches("secret", "secret phrase")
    assert not identity.key_matches("", None) and not identity.key_matches("anything", "")


# --- the class book ----------------------------------------------------------------------------------------
def test_numbers_are_given_in_order_and_kept(book, runs_dir):
    assert book.numbers([B, A]) == {B: 1, A: 2}
    assert book.number(C) == 3 and book.number(B) == 1
    again = classroom.ClassBook(book.path)                 # another process reading the same file
    assert again.label(A) == "student 2" and again.label(None) == "command line"
    stored = (runs_dir / ".class" / "class.json").read_text()
    assert A not in stored and B not in stored             # students are keyed by a hash, not their id


def test_nicknames_are_cleaned_unique_and_clearable(book):
    assert book.set_nickname(A, "  Ada   L. ") == "Ada L."
    assert book.label(A) == "Ada L." and book.labels([A, B]) == {A: "Ada L.", B: "student 2"}
    with pytest.raises(classroom.ClassroomError, match="already goes by"):
        book.set_nickname(B, "ada l.")
    with pytest.raises(classroom.ClassroomError, match="at most 24"):
        book.set_nickname(B, "x" * 25)
    with pytest.raises(classroom.ClassroomError, match="only, not / < >"):
        book.set_nickname(B, "<b>bold</b>")
    with pytest.raises(classroom.ClassroomError, match="choose another"):
        book.set_nickname(B, "student 1")
    assert book.set_nickname(A, "") == "" and book.label(A) == "student 1"


def test_lecturer_unlock_lock_and_key_change(book):
    assert not book.unlock(A, "wrong", "the key")
    assert not book.is_lecturer(A, "the key")
    assert book.unlock(A, "the key", "the key")
    assert book.is_lecturer(A, "the key") and not book.is_lecturer(B, "the key")
    assert not book.is_lecturer(A, "a new key")            # changing the key locks every browser out
    assert not book.is_lecturer(A, None)
    book.lock(A)
    assert not book.is_lecturer(A, "the key")


def test_limits_from_environment_then_class_page(book, monkeypatch):
    monkeypatch.setenv("CNNKIT_CLASS_MAX_EPOCHS", "4")
    monkeypatch.setenv("CNNKIT_CLASS_MAX_TRAIN_IMAGES", "")
    monkeypatch.setenv("CNNKIT_CLASS_ONE_JOB", "0")
    assert book.limits() == classroom.ClassLimits(max_epochs=4, max_train_images=None, one_job_at_a_time=False)
    assert book.limits_source() == "environment"
    book.set_limits(classroom.ClassLimits(max_epochs=2, max_train_images=1000))
    assert book.limits() == classroom.ClassLimits(2, 1000, True) and book.limits_source() == "class page"
    assert classroom.ClassBook(book.path).limits().max_train_images == 1000   # stored on the server
    assert book.reset_limits().max_epochs == 4 and book.limits().max_epochs == 4
    with pytest.raises(classroom.ClassroomError, match="at least 1"):
        book.set_limits(classroom.ClassLimits(max_epochs=0))
    monkeypatch.setenv("CNNKIT_CLASS_MAX_EPOCHS", "many")
    with pytest.raises(classroom.ClassroomError, match="CNNKIT_CLASS_MAX_EPOCHS must be a whole number"):
        classroom.ClassLimits.from_env()


@dataclasses.dataclass(frozen=True)
class _Hyper:
    epochs: int = 10
    batch_size: int = 64
    train_images: int | None = None


def test_apply_limits_lowers_and_says_so():
    limits = classroom.ClassLimits(max_epochs=3, max_train_images=2000, one_job_at_a_time=True)
    h, notes = classroom.apply_limits(_Hyper(epochs=10), limits)
    assert (h.epochs, h.train_images, h.batch_size) == (3, 2000, 64)
    assert "3 instead of 10" in notes[0] and "2,000 training images" in notes[1]
    h, notes = classroom.apply_limits(_Hyper(epochs=2, train_images=500), limits)
    assert (h.epochs, h.train_images, notes) == (2, 500, [])
    with pytest.raises(TrainingError, match="one training job at a time"):
        classroom.apply_limits(_Hyper(), limits, active_jobs=1)
    several = classroom.ClassLimits(one_job_at_a_time=False)
    assert classroom.apply_limits(_Hyper(), several, active_jobs=2)[0] == _Hyper()
    with pytest.raises(TrainingError, match="3 training jobs at a time in this class and you have 3"):
        classroom.apply_limits(_Hyper(), several, active_jobs=3)
    assert several.describe() == "Your lecturer's limits for this class: up to 3 jobs at a time."
    assert "at most 3 epochs per job, at most 2,000 training images per job" in limits.describe()


# --- sharing -----------------------------------------------------------------------------------------------
def test_share_run_copies_for_the_whole_class(runs_dir, monkeypatch):
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    mine = _run(runs_dir, "fast_cpu", A, 0.97)
    assert [r.id for r in runs.list_runs(owner=B)] == []            # B sees none of A's runs
    shared = runs.share_run(mine, shared_by="Ada")
    assert shared.shared and shared.owner is None and shared.extra["shared_by"] == "Ada"
    assert shared.path.parent == runs.shared_runs_dir() and shared.id == f"{mine.id}-shared"
    assert json.loads((mine.path / "run.json").read_text())["owner"] == A   # A's own run is unchanged
    assert [r.id for r in runs.list_runs(owner=B)] == [shared.id]  # now B sees the class's copy
    assert [r.id for r in runs.list_runs(owner=A)] == [mine.id]    # A sees their run once, not twice
    assert runs.share_run(mine).path == shared.path                # sharing again gives the same copy
    with pytest.raises(RunError, match="only shared runs"):
        runs.unshare_run(mine)
    runs.unshare_run(shared)
    assert runs.list_runs(owner=B) == [] and mine.path.is_dir()


# --- the summary on a runs folder ----------------------------------------------------------------------------
def test_class_summary_counts_rows_and_scatter(runs_dir, book):
    a1 = _run(runs_dir, "single_conv", A, 0.95, epochs=2)
    _run(runs_dir, "fast_cpu", A, 0.985, epochs=8)
    b1 = _run(runs_dir, "keras_convnet", B, 0.97)
    _run(runs_dir, "fast_cpu", C, None, dataset_name="fashion_mnist")   # stopped before its test: no accuracy
    _run(runs_dir, "fast_cpu", None, 0.9)                           # trained on the command line
    book.set_nickname(B, "Ada")
    runs.share_run(b1, shared_by="Ada")
    jobs = [_job(A, "running", epoch=2, epochs=8, job_fraction=0.3), _job(C, "queued", queue_position=1),
            _job(B, "finished"), _job(None, "running")]

    s = classroom.summarize(classroom.class_runs(), jobs, book)

    assert s.counts == {"students": 3, "runs": 5, "shared": 1, "running": 2, "queued": 1}
    assert s.best_accuracy == pytest.approx(0.985)
    assert [r.created for r in s.runs] == sorted((r.created for r in s.runs), reverse=True)
    row = next(r for r in s.runs if r.id == a1.id)
    expected = presets.get("single_conv").spec.summary()
    assert (row.student, row.architecture, row.parameters, row.flops, row.epochs, row.test_accuracy) == (
        "student 2", "single_conv", expected.total_params, expected.flops, 2, 0.95)
    assert row.parameters == 542_230                               # Lab A, as Keras counts it
    # B was first seen choosing a nickname (number 1); A and C get theirs in the order they first trained.
    # The shared copy and its run are one row, the run's, marked shared (the copy is what Take back removes).
    assert {r.student for r in s.runs} == {"student 2", "Ada", "student 3", "command line"}
    shared_row = next(r for r in s.runs if r.id == b1.id)
    assert shared_row.shared and shared_row.shared_copy.endswith(f"{b1.id}-shared")
    pts = s.scatter_points()
    assert len(pts) == 4 and all(p["test_accuracy"] is not None for p in pts)   # C's run has no accuracy
    assert [p["shared"] for p in pts if p["id"] == b1.id] == [True]   # the shared copy is no second point
    assert sorted(p["parameters"] for p in pts if p["student"] == "student 2") == sorted(
        presets.get(n).spec.summary().total_params for n in ("single_conv", "fast_cpu"))
    assert [(j.student, j.state, j.progress) for j in s.jobs] == [
        ("command line", "running", "epoch 3/8 · 30%"), ("student 2", "running", "epoch 3/8 · 30%"),
        ("student 3", "queued", "number 1 in line")]
    assert len(s.table()) == 5 == s.counts["runs"]
    assert set(s.table()[0]) >= {"Student", "Architecture", "Parameters", "FLOPs", "Epochs", "Test accuracy"}


def test_a_shared_copy_whose_run_is_gone_is_its_own_row(runs_dir, book):
    mine = _run(runs_dir, "fast_cpu", A, 0.97)
    copy = runs.share_run(mine, shared_by="Ada")
    runs.delete_run(mine)
    s = classroom.summarize(classroom.class_runs(), [], book)
    assert [(r.id, r.student, r.shared, r.shared_copy) for r in s.runs] == [
        (copy.id, "shared by Ada", True, str(copy.path))]
    assert s.counts["runs"] == 1 and s.counts["students"] == 0


def test_class_summary_of_an_empty_class(runs_dir, book):
    s = classroom.summarize(classroom.class_runs(), [], book)
    assert s.runs == [] and s.jobs == [] and s.scatter_points() == [] and s.best_accuracy is None
    assert s.counts == {"students": 0, "runs": 0, "shared": 0, "running": 0, "queued": 0}


def test_scatter_figure_hover_names_the_run(runs_dir, book):
    from cnnkit import charts

    _run(runs_dir, "fast_cpu", A, 0.98)
    _run(runs_dir, "fast_cpu", B, 0.9, dataset_name="fashion_mnist")
    fig = charts.class_scatter_figure(classroom.summarize(classroom.class_runs(), [], book).scatter_points())
    assert [t.name for t in fig.data] == ["fashion_mnist", "mnist"] or [t.name for t in fig.data] == [
        "mnist", "fashion_mnist"]
    assert fig.layout.xaxis.type == "log" and fig.data[0].customdata[0][1] == "fast_cpu"
    assert "student" in fig.data[0].customdata[0][0]
    big = charts.class_scatter_figure([], large=True)
    assert big.layout.height > fig.layout.height and big.layout.annotations[0].text == "No finished runs yet"
