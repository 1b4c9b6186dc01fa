"""cnnkit.student_state (a student's choices kept on the server) and run labels that tell runs apart."""

import json
from types import SimpleNamespace

import pytest

from cnnkit import presets, runs, student_state
from cnnkit.hyper import Hyper
from cnnkit.run_labels import run_labels, spec_changes
from cnnkit.spec import LayerSpec


# --- student state ----------------------------------------------------------------------------
def test_round_trip_and_update(runs_dir):
    spec = presets.get(presets.FAST).spec.to_dict()
    assert student_state.load("abc123") == {}
    student_state.save("abc123", {"dataset": "fashion_mnist", "spec": spec, "not_ours": 1})
    assert student_state.load("abc123") == {"dataset": "fashion_mnist", "spec": spec}
    saved = student_state.load("abc123")
    merged = student_state.merge(saved, hyper={"epochs": 3}, dataset=None)
    assert merged == {"spec": spec, "hyper": {"epochs": 3}} and "dataset" in saved   # a new dict
    student_state.save("abc123", merged)
    assert student_state.load("abc123")["hyper"] == {"epochs": 3}
    # kept out of the runs listing: the folder starts with a dot
    assert student_state.state_dir().parent == runs_dir and student_state.state_dir().name.startswith(".")
    assert runs.list_runs() == []
    assert student_state.load("someone-else") == {}


def test_hostile_ids_and_damage_never_escape_or_crash(runs_dir, tmp_path):
    student_state.save("../../etc/passwd", {"dataset": "mnist"})
    assert not (tmp_path / "etc").exists()
    assert [p.parent for p in student_state.state_dir().iterdir()] == [student_state.state_dir()]
    assert student_state.load("../../etc/passwd") == {"dataset": "mnist"}
    student_state.save("dmg", {"dataset": "mnist"})
    (student_state.state_dir() / "dmg.json").write_text("{not json")
    assert student_state.load("dmg") == {}
    (student_state.state_dir() / "dmg.json").write_text("[1, 2]")
    assert student_state.load("dmg") == {}
    (student_state.state_dir() / "dmg.json").write_text("[" * 100_000 + "]" * 100_000)  # deeper than Python recurses
    assert student_state.load("dmg") == {}
    assert not student_state.save("big", {"spec": {"layers": ["x" * 1000] * 300}})
    assert student_state.load("big") == {} and not student_state.save("", {"dataset": "mnist"})
    with pytest.raises(KeyError):
        student_state.merge({}, colour="blue")


# --- run labels ---------------------------------------------------------------------------------
def _run(i, hyper, spec=None, name="", title="fast_cpu", acc=0.963, created=1_700_000_000.0):
    spec = spec or presets.get(presets.FAST).spec
    return SimpleNamespace(id=f"r{i}", title=title, name=name, spec_dict=spec.to_dict(), hyper=hyper,
                           metrics={"test_accuracy": acc}, created=created + 60 * i, shared=False)


BASE = {"optimizer": "adam", "learning_rate": 0.003, "epochs": 8, "batch_size": 64, "lr_schedule": "cosine",
        "augment": False, "seed": 0}


def test_labels_say_what_differs_between_runs():
    a = _run(0, BASE)
    b = _run(1, dict(BASE, optimizer="sgd", learning_rate=0.01))
    c = _run(2, dict(BASE, epochs=2))
    labels = run_labels([a, b, c])
    assert len(set(labels.values())) == 3
    assert labels["r0"].startswith("fast_cpu · Adam · lr 0.003 · 8 epochs · test 96.3%")
    assert "SGD · lr 0.01" in labels["r1"] and "2 epochs" in labels["r2"]
    assert "batch" not in labels["r0"]  # the same in every run: not worth the space
    # alone, a run says its main settings
    assert run_labels([a])["r0"].startswith("fast_cpu · Adam · lr 0.003 · 8 epochs · batch 64 · test 96.3%")


def test_identical_settings_are_told_apart_by_time_and_architecture():
    a, b = _run(0, BASE, created=100.0), _run(0, BASE, created=110.0)
    b.id = "r1"
    labels = run_labels([a, b])
    assert labels["r0"] != labels["r1"]  # same minute: seconds are shown
    spec = presets.get(presets.FAST).spec
    edited = spec.copy()
    edited.layers.insert(len(edited.layers) - 1, LayerSpec.new("Dropout", rate=0.3))
    edited.layers[0].params["filters"] = 16
    label = run_labels([_run(3, BASE, spec=edited)])["r3"]
    assert "fast_cpu (Conv2D 1 filters 32→16, +Dropout)" in label
    assert spec_changes(spec.to_dict()) == ""
    assert spec_changes({"name": "my_model", "layers": []}) == ""


def test_student_names_a_run(runs_dir):
    import keras

    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    run = runs.save_run(model, presets.get(presets.FAST).spec, Hyper(**BASE), {"loss": [1.0]}, {"test_accuracy": 0.5},
                        "mnist", title="fast_cpu")
    named = runs.name_run(run, "  my   best  try ")
    assert named.name == "my best try" and json.loads((run.path / "run.json").read_text())["name"] == "my best try"
    assert named.label.startswith("my best try · fast_cpu · Adam")
    assert runs.list_runs()[0].name == "my best try"  # the listing sees the new name
    assert runs.name_run(named, "").name == ""


# --- the kept upload -------------------------------------------------------------------------------
def test_upload_is_kept_once_by_hash_and_checked_on_the_way_back(runs_dir, monkeypatch):
    import hashlib

    data = b"PK\x03\x04" + bytes(range(256)) * 10
    record = student_state.keep_upload("abc", data, "shapes.ZIP")
    assert record == {"sha256": hashlib.sha256(data).hexdigest(), "filename": "shapes.ZIP"}
    assert student_state.kept_upload("abc", record) == data
    assert student_state.kept_upload("someone-else", record) is None  # another owner's file is not read
    # a second file replaces the first: one per owner
    record2 = student_state.keep_upload("abc", data + b"!", "x.npz")
    assert student_state.kept_upload("abc", record) is None
    assert len(list(student_state._upload_dir("abc").iterdir())) == 1
    # damaged on disk: refused and removed
    (path,) = student_state._upload_dir("abc").iterdir()
    path.write_bytes(b"tampered")
    assert student_state.kept_upload("abc", record2) is None and not path.exists()
    # not ours to keep: unknown types, bad records, files over the upload limit
    assert student_state.keep_upload("abc", data, "model.keras") is None
    assert student_state.keep_upload("", data, "a.zip") is None
    for bad in (None, [], {"sha256": "../../x", "filename": "a.zip"}, {"sha256": "0" * 64, "filename": "a.py"}):
        assert student_state.kept_upload("abc", bad) is None
    monkeypatch.setenv("CNNKIT_LIMIT_ZIP_BYTES", "100")
    assert student_state.keep_upload("abc", data, "a.zip") is None
    student_state.forget_upload("abc")
    assert not student_state._upload_dir("abc").exists()
    student_state.forget_upload("abc")  # nothing kept: nothing to do


def test_kept_uploads_of_the_whole_class_stay_under_their_limit_least_recently_used_first(runs_dir, monkeypatch):
    import os

    monkeypatch.setenv("CNNKIT_LIMIT_KEPT_UPLOADS_BYTES", "2500")
    records = {}
    for i, owner in enumerate(("ann", "bob", "cat")):
        records[owner] = student_state.keep_upload(owner, bytes([i]) * 1000, f"{owner}.npz")
        os.utime(next(student_state._upload_dir(owner).iterdir()), (1_000 + i, 1_000 + i))
    # Keeping cat's file (3,000 bytes in all) removed the least recently used one, ann's.
    assert student_state.evict_uploads() == []            # under the limit now
    assert student_state.kept_upload("ann", records["ann"]) is None
    assert student_state.kept_upload("bob", records["bob"]) == bytes([1]) * 1000   # read: now the most recent
    # A fourth student's file pushes out the least recently used other one: cat's, not bob's just-read file.
    dan = student_state.keep_upload("dan", b"d" * 1000, "dan.zip")
    assert student_state.kept_upload("cat", records["cat"]) is None
    assert student_state.kept_upload("bob", records["bob"]) is not None
    assert student_state.kept_upload("dan", dan) == b"d" * 1000
    # One file over the whole limit is still kept for its own student (the upload limit bounds it).
    monkeypatch.setenv("CNNKIT_LIMIT_KEPT_UPLOADS_BYTES", "10")
    eve = student_state.keep_upload("eve", b"e" * 500, "eve.npz")
    assert student_state.kept_upload("eve", eve) == b"e" * 500
    assert student_state.kept_upload("bob", records["bob"]) is None and student_state.kept_upload("dan", dan) is None
