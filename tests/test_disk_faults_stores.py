"""Broken disks get sentences everywhere (issue #26): the class book, the challenge store, the class's drawings
(SQLite) and the job journal on a read-only folder never raise a traceback into a page. The student (or the
lecturer) gets a sentence, the Class page's note names the disk and the setting, and no sentence shows a path.

The folder is made read-only for real: a read-only bind mount where the tests run as root (chmod stops nothing
there), else `chmod 555` (which stops any other user).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cnnkit import challenge, class_drawings, classroom, disk_faults, jobs
from cnnkit.hyper import Hyper


@pytest.fixture(autouse=True)
def no_faults():
    disk_faults.reset()
    yield
    disk_faults.reset()


@contextlib.contextmanager
def read_only(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    mounted = False
    if os.geteuid() == 0:
        ok = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode == 0
        if ok and subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)],
                                 capture_output=True).returncode != 0:
            subprocess.run(["umount", str(folder)])
            ok = False
        mounted = ok
    else:
        for d in (folder, *[p for p in folder.rglob("*") if p.is_dir()]):
            d.chmod(0o555)
    try:
        probe = folder / ".writable"
        try:
            probe.write_text("x")
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip("this machine cannot make a folder read-only here (root without mount)")
        yield folder
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)])
        else:
            for d in (folder, *[p for p in folder.rglob("*") if p.is_dir()]):
                d.chmod(0o755)


def _lecturer_note(folder_words: str, setting: str, tmp_path: Path) -> str:
    notes = [n for n in disk_faults.problems() if folder_words in n]
    assert len(notes) == 1, disk_faults.problems()
    assert "disk is the problem" in notes[0] and setting in notes[0] and str(tmp_path) not in notes[0]
    return notes[0]


def test_the_class_book_on_a_read_only_folder_keeps_working_in_memory_and_says_so(tmp_path, monkeypatch):
    folder = tmp_path / "class"
    monkeypatch.setenv("CNNKIT_CLASS_DIR", str(folder))
    book = classroom.ClassBook(folder / classroom.CLASS_FILE)
    assert book.number("ann") == 1
    with read_only(folder):
        assert book.number("bob") == 2                      # numbers go on, in this process's memory
        assert book.set_nickname("bob", "Bobby") == "Bobby"
        assert book.label("bob") == "Bobby" and book.label("ann") == "student 1"
        book.set_limits(classroom.ClassLimits(max_epochs=3))
        assert book.limits().max_epochs == 3
        said = disk_faults.sentence("class")
        assert said and "read-only" in said and "not kept" in said and str(tmp_path) not in said
        _lecturer_note("the class folder is read-only", "CNNKIT_CLASS_DIR", tmp_path)
    book.set_nickname("ann", "Ann")                          # the disk is fixed: the next write works
    assert disk_faults.sentence("class") is None and disk_faults.problems() == []
    assert classroom.ClassBook(folder / classroom.CLASS_FILE).label("bob") == "Bobby"


def test_the_challenge_on_a_read_only_folder_is_a_sentence_for_the_lecturer(offline_ds, runs_dir, tmp_path):
    store = challenge.ChallengeStore(tmp_path / "challenge")
    opened = store.open_share(offline_ds, 0.2, seed=1)
    with read_only(tmp_path / "challenge"):
        for action in (store.freeze, store.close, lambda: store.open_share(offline_ds, 0.2, seed=2)):
            with pytest.raises(challenge.ChallengeError) as err:
                action()
            assert "read-only" in str(err.value) and str(tmp_path) not in str(err.value)
        store.record_many(opened, {"r1": {"accuracy": 0.9}})   # the scorer's thread: no exception
        assert store.current() == opened and store.scores() == {}
        _lecturer_note("the class folder is read-only", "CNNKIT_CLASS_DIR", tmp_path)


def test_the_class_drawings_on_a_read_only_folder_are_a_sentence_not_an_sqlite_error(tmp_path):
    folder = tmp_path / "drawings"
    store = class_drawings.DrawingStore(folder / class_drawings.STORE_FILE)
    c = store.open("shapes", "circle, square")
    store.add(c.id, "ann", np.zeros((28, 28), np.uint8), 0)
    with read_only(folder):
        with pytest.raises(class_drawings.CollectionError) as err:
            store.add(c.id, "bob", np.zeros((28, 28), np.uint8), 1)
        said = str(err.value)
        assert "read-only" in said and "not kept" in said and str(tmp_path) not in said
        fresh = class_drawings.DrawingStore(tmp_path / "drawings" / "new" / class_drawings.STORE_FILE)
        with pytest.raises(class_drawings.CollectionError):
            fresh.collections()
        _lecturer_note("the class folder is read-only", "CNNKIT_CLASS_DIR", tmp_path)
    assert store.class_counts(c.id) == [1, 0]                # the drawings taken before are all there
    # A student's own store lives in the state folder: its sentence says so.
    own = class_drawings.store_for("ann", class_mode=False, root=tmp_path / "state")
    with read_only(tmp_path / "state"), pytest.raises(class_drawings.CollectionError):
        own.collections()
    assert "will not survive a reload" in disk_faults.sentence("state")


def test_the_job_journal_on_a_read_only_runs_folder_never_raises_and_the_class_page_is_told(tmp_path):
    runs = tmp_path / "runs"
    journal = jobs.Journal(lambda runs_root: runs if runs_root is None else runs_root)
    job = SimpleNamespace(id="b" * 32, owner="ann", title="tiny", dataset_name="mnist", hyper=Hyper(epochs=3),
                          created=time.time(), runs_root=None)
    with read_only(runs):
        journal.write(job, "queued")
        journal.write(job, "running")
        journal.record_end(job, "finished", "done", None)
        assert "cannot say afterwards that it was lost" in disk_faults.sentence("jobs")
        _lecturer_note("the job journal in the runs folder is read-only", "CNNKIT_RUNS_DIR", tmp_path)
    journal.write(job, "running")
    assert disk_faults.problems() == [] and (runs / ".jobs" / f"{job.id}.json").exists()


def test_pages_work_on_a_read_only_class_folder_and_the_class_page_names_it(runs_dir, tmp_path, monkeypatch):
    """The Data page (which lists the class's drawn collections), the Collect page and the lecturer's Class page
    (class book, challenge, drawings) on a read-only class folder: no exception; the Class page names the disk."""
    from streamlit.testing.v1 import AppTest
    from test_disk_faults import APP, KEY, class_page_errors

    folder = tmp_path / "class"
    monkeypatch.setenv("CNNKIT_CLASS_DIR", str(folder))
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    monkeypatch.setenv("CNNKIT_LECTURER_KEY", KEY)
    with read_only(folder):
        student = AppTest.from_file(APP, default_timeout=90)
        student.run()
        for page in ("app_pages/data.py", "app_pages/collect.py"):
            student.switch_page(page)
            student.run()
            assert not student.exception, (page, student.exception)
        assert any("read-only" in e.value for e in student.error)          # the Collect page's sentence
        errors = class_page_errors(KEY)
        assert any("disk is the problem" in e and "the class folder is read-only" in e and str(tmp_path) not in e
                   for e in errors), errors
