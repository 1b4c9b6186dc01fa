"""Broken disks get sentences (issue #26): a read-only or full runs or state folder never gives a traceback;
the student is told once what it means (their choices will not survive a reload; the run could not be saved),
and the lecturer's Class page says the disk is the problem. No sentence shows a server path.

The disks are real where this machine lets a test mount them (a read-only bind mount, a 64 kB tmpfs that
fills up; we run as root, where chmod stops nothing); elsewhere the write itself is made to fail with the
same errno, so nothing is skipped in CI.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from cnnkit import disk_faults, student_state
from cnnkit.hyper import Hyper
from cnnkit.jobs import registry as registry_mod

APP = str(Path(__file__).resolve().parent.parent / "app.py")
KEY = "correct horse battery staple"


@pytest.fixture(autouse=True)
def no_faults():
    disk_faults.reset()
    yield
    disk_faults.reset()


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextlib.contextmanager
def broken(folder: Path, how: str, monkeypatch):
    """`folder` made read-only ("ro": a bind mount remounted read-only) or full ("full": a 64 kB tmpfs filled
    up); where mounting is impossible, writes there fail with EROFS / ENOSPC instead."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = False
    if os.geteuid() == 0:
        if how == "ro":
            mounted = _mount("--bind", str(folder), str(folder))
            if mounted and not _mount("-o", "remount,ro,bind", str(folder)):
                subprocess.run(["umount", str(folder)])
                mounted = False
        else:
            mounted = _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder))
            if mounted:
                with contextlib.suppress(OSError), open(folder / "filler", "wb") as fh:
                    fh.write(b"\0" * 1_000_000)
    patch = pytest.MonkeyPatch()   # undone when the disk is 'fixed', at the end of the block
    if not mounted:
        code = errno.EROFS if how == "ro" else errno.ENOSPC
        real = student_state._write_atomically

        def refuse(p, data):
            if Path(p).resolve().is_relative_to(folder.resolve()):
                raise OSError(code, os.strerror(code), str(p))
            return real(p, data)

        patch.setattr(student_state, "_write_atomically", refuse)
        real_probe = disk_faults.probe

        def probe(kind, path):
            if Path(path).resolve().is_relative_to(folder.resolve()):
                return disk_faults.record(kind, OSError(code, os.strerror(code), str(path)))
            return real_probe(kind, path)

        patch.setattr(disk_faults, "probe", probe)
    try:
        yield mounted
    finally:
        patch.undo()
        if mounted:
            subprocess.run(["umount", "-l", str(folder)])


def class_page_errors(key: str) -> list[str]:
    """The errors on the lecturer's Class page once `key` unlocks it (none of it may raise)."""
    lecturer = AppTest.from_file(APP, default_timeout=90)
    lecturer.run()
    lecturer.switch_page("app_pages/class.py")
    lecturer.run()
    lecturer.text_input(key="lecturer_key_typed").input(key)
    lecturer.button[0].click().run()
    assert not lecturer.exception, lecturer.exception
    return [e.value for e in lecturer.error]


@pytest.mark.parametrize("how, words", [("ro", "is read-only"), ("full", "is full")])
def test_a_broken_state_folder_is_a_sentence_not_a_traceback(tmp_path, monkeypatch, how, words):
    state = tmp_path / "state"
    with broken(state, how, monkeypatch):
        assert student_state.save("ann", {"dataset": "mnist", "spec": {"layers": ["x" * 100_000]}}, root=state) is False
        assert student_state.keep_upload("ann", b"PK" + b"\0" * 100_000, "mine.zip", root=state) is None
        student_state.forget_upload("ann", root=state)   # never raises either
    told = disk_faults.sentence("state")
    assert words in told and "will not survive a reload" in told and str(tmp_path) not in told
    (note,) = disk_faults.problems()
    assert "disk is the problem" in note and words in note and "CNNKIT_STATE_DIR" in note and str(tmp_path) not in note
    # The disk is fixed: the next write works and the lecturer's note goes.
    assert student_state.save("ann", {"dataset": "mnist"}, root=state) is True
    assert disk_faults.problems() == []


def test_a_run_that_cannot_be_saved_fails_with_a_sentence_without_a_path(monkeypatch, tmp_path):
    from cnnkit import runs

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "runs" / "secret"))

    monkeypatch.setattr(runs, "save_run", full)
    comp = SimpleNamespace(spec=None, hyper=Hyper(epochs=1), key="k")
    job = SimpleNamespace(id="j", dataset_name="mnist", runs_root=tmp_path, owner="ann", title="mine", run=None)
    failed = registry_mod._save_runs(comp, [job], {"model": b"bytes", "history": {}, "metrics": {}})
    assert "run could not be saved" in failed["j"] and "is full" in failed["j"] and str(tmp_path) not in failed["j"]
    assert "Errno" not in failed["j"]
    assert any("the runs folder is full" in p and "CNNKIT_RUNS_DIR" in p for p in disk_faults.problems())


def test_pages_keep_working_the_student_is_told_once_and_the_class_page_names_the_disk(runs_dir, monkeypatch):
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    monkeypatch.setenv("CNNKIT_LECTURER_KEY", KEY)
    state = runs_dir / ".students"
    with broken(state, "ro", monkeypatch):
        at = AppTest.from_file(APP, default_timeout=90)
        at.run()
        at.switch_page("app_pages/training.py")
        at.run()
        assert not at.exception, at.exception
        at.selectbox(key="hp_optimizer").set_value("adadelta").run()   # a settings change: the state write
        assert not at.exception, at.exception
        notes = [w.value for w in at.sidebar.warning if "will not survive a reload" in w.value]
        assert len(notes) == 1 and "read-only" in notes[0]
        at.selectbox(key="hp_optimizer").set_value("sgd").run()        # a second change: still one note
        assert not at.exception, at.exception
        assert len([w for w in at.sidebar.warning if "will not survive a reload" in w.value]) == 1
        assert at.selectbox(key="hp_optimizer").value == "sgd"          # the page itself goes on

        disk_faults.reset()   # as after a restart: no student's write has failed yet, the page probes the disk
        errors = class_page_errors(KEY)
        assert any("disk is the problem" in e and "read-only" in e and str(runs_dir) not in e for e in errors), errors


def test_sharing_a_run_onto_a_read_only_disk_is_a_sentence(runs_dir, tmp_path, monkeypatch):
    from cnnkit import presets, runs
    from cnnkit.errors import RunError

    class FakeModel:
        def save(self, path):
            Path(path).write_bytes(b"not a real model")

    run = runs.save_run(FakeModel(), presets.get("fast_cpu").spec, {"epochs": 1}, {"loss": [1.0]},
                        {"test_accuracy": 0.9}, "mnist", owner="ann", title="mine")
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("CNNKIT_SHARED_RUNS_DIR", str(shared))
    with broken(shared, "ro", monkeypatch) as mounted:
        if not mounted:
            def refuse(*args, **kwargs):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(shared / "x"))

            monkeypatch.setattr(runs.shutil, "copytree", refuse)
        with pytest.raises(RunError) as err:
            runs.share_run(run, shared_by="ann")
    assert "read-only" in str(err.value) and str(tmp_path) not in str(err.value)
    assert any("the runs folder is read-only" in p for p in disk_faults.problems())
