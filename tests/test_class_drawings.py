"""A dataset the class draws (cnnkit/class_drawings.py): class names, balanced class choice, caps, closed
refusal, undo, removal, the split by contributor, export/import and concurrent adds from two processes."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pytest

from cnnkit import class_drawings as cd
from cnnkit import identity
from cnnkit.class_drawings import CollectionError, DrawingStore


def _img(k: int, j: int = 0) -> np.ndarray:
    rng = np.random.default_rng(1000 * k + j)
    return rng.integers(0, 256, (28, 28), dtype=np.uint8)


@pytest.fixture
def store(tmp_path):
    return DrawingStore(tmp_path / "d.sqlite3")


def test_class_names_are_checked():
    assert cd.check_class_names("circle, square , triangle") == ("circle", "square", "triangle")
    assert cd.check_class_names(cd.DIGITS) == cd.DIGITS
    for bad, words in [("circle", "2 to 20"), ("a, ,b", "empty"), ("Kreis, KREIS", "same name"),
                       ("ﬁsh, fish", "same name"), ("x" * 25 + ", b", "longer than 24"),
                       (",".join(str(i) for i in range(21)), "2 to 20")]:
        with pytest.raises(CollectionError, match=words):
            cd.check_class_names(bad)


def test_next_class_is_the_fewest_ties_by_order(store):
    c = store.open("shapes", "circle, square, triangle")
    assert store.next_class(c.id) == 0
    store.add(c.id, "a" * 32, _img(0), 0)
    assert store.next_class(c.id) == 1
    store.add(c.id, "a" * 32, _img(1), 1)
    assert store.next_class(c.id) == 2
    store.add(c.id, "b" * 32, _img(2), 0)
    assert store.class_counts(c.id) == [2, 1, 0]
    assert store.next_class(c.id) == 2


def test_caps_and_closed_refusal_with_sentences(store):
    c = store.open("digits", per_student=2, total=3)
    store.add(c.id, "a" * 32, _img(0), 0)
    store.add(c.id, "a" * 32, _img(1), 1)
    with pytest.raises(CollectionError, match="the most one student may give"):
        store.add(c.id, "a" * 32, _img(2), 2)
    store.add(c.id, "b" * 32, _img(2), 2)
    with pytest.raises(CollectionError, match="is full"):
        store.add(c.id, "c" * 32, _img(3), 3)
    store.close(c.id)
    with pytest.raises(CollectionError, match="closed"):
        store.add(c.id, "b" * 32, _img(3), 3)
    assert store.stamp(c.id)[0] == 3
    assert store.reopen(c.id).is_open
    with pytest.raises(ValueError):
        store.add(c.id, "b" * 32, np.zeros((28, 28), np.float32), 0)


def test_default_caps_come_from_the_settings(store):
    c = store.open("digits")
    assert (c.per_student, c.total) == (200, 20_000)


def test_a_new_collection_closes_the_open_one(store):
    first = store.open("one", "a, b")
    second = store.open("two", "c, d")
    assert not store.get(first.id).is_open and store.current() == second


def test_undo_remove_and_remove_student(store):
    c = store.open("shapes", "circle, square")
    a, b = "a" * 32, "b" * 32
    ids = [store.add(c.id, a, _img(k), k % 2) for k in range(3)]
    store.add(c.id, b, _img(9), 1)
    undone = store.undo_last(c.id, a)
    assert undone.id == ids[-1] and np.array_equal(undone.pixels, _img(2))
    assert store.count_of(c.id, a) == 2
    assert store.remove(ids[0]) and not store.remove(ids[0])
    assert store.student_counts(c.id) == {identity.owner_key(a): 1, identity.owner_key(b): 1}
    assert store.remove_student(c.id, identity.owner_key(b)) == 1
    assert [d.id for d in store.latest(c.id)] == [ids[1]]
    assert store.undo_last(c.id, b) is None
    # the raw browser id is never stored
    assert a.encode() not in store.path.read_bytes()


def _fill(store, c, people: int, per_class: int):
    for p in range(people):
        owner = f"{p:032d}"
        for k in range(len(c.class_names)):
            for j in range(per_class):
                store.add(c.id, owner, _img(k, 100 * p + j), k)


def test_split_by_contributor_keeps_each_person_on_one_side(store):
    c = store.open("shapes", "circle, square, triangle")
    _fill(store, c, people=6, per_class=3)
    x, y, who = store.arrays(c.id)
    s = cd.split(y, who, seed=5)
    assert s.by_contributor and "by contributor" in s.sentence
    assert set(who[s.train]).isdisjoint(set(who[s.test]))
    assert set(y[s.test]) == set(y[s.train]) == {0, 1, 2}
    ds = cd.to_dataset(store, c.id)
    assert ds.name == c.dataset_name and ds.title == "Class drawings: shapes"
    assert ds.image_shape == (28, 28, 1) and ds.class_names == ("circle", "square", "triangle")
    assert len(ds.x_train) + len(ds.x_test) == 6 * 3 * 3
    assert "by contributor" in ds.notes[0]


def test_too_few_contributors_split_by_class_and_say_why(store):
    c = store.open("shapes", "circle, square")
    _fill(store, c, people=2, per_class=5)
    ds = cd.to_dataset(store, c.id)
    assert "only 2 people drew" in ds.notes[0]
    assert sorted(np.bincount(ds.y_test).tolist()) == [2, 2]


def test_a_class_without_drawings_is_not_a_dataset_yet(store):
    c = store.open("shapes", "circle, square")
    store.add(c.id, "a" * 32, _img(0), 0)
    with pytest.raises(CollectionError, match="no drawings of square"):
        cd.to_dataset(store, c.id)


def test_export_import_round_trip(store, tmp_path):
    from cnnkit import datasets

    c = store.open("shapes", "circle, square, triangle")
    _fill(store, c, people=2, per_class=4)
    ds = cd.to_dataset(store, c.id)
    out = cd.export_npz(ds, tmp_path / "shapes.npz")
    with np.load(out, allow_pickle=False) as f:   # Keras's layout, no pickles
        assert f["x_train"].shape == (len(ds.x_train), 28, 28) and f["x_train"].dtype == np.uint8
        assert list(f["class_names"]) == ["circle", "square", "triangle"]
    back = cd.import_npz(store, out, "shapes again")
    assert not back.is_open and back.class_names == c.class_names
    x0, y0, _ = store.arrays(c.id)
    x1, y1, _ = store.arrays(back.id)
    key = lambda x, y: sorted((int(k), img.tobytes()) for img, k in zip(x, y, strict=True))   # noqa: E731
    assert key(x0, y0) == key(x1, y1)
    # an upload of the file reads as a dataset too
    assert datasets.load_file(out).image_shape == (28, 28, 1)


def _adds(path: str, owner: str, n: int) -> None:
    s = DrawingStore(path)
    cid = s.current().id
    for j in range(n):
        s.add(cid, owner, _img(j % 3, j), j % 3)


def test_concurrent_adds_from_two_processes_lose_nothing(store):
    c = store.open("shapes", "circle, square, triangle")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_adds, args=(str(store.path), f"{i:032d}", 60)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert store.stamp(c.id)[0] == 120
    assert sorted(store.student_counts(c.id).values()) == [60, 60]


def test_store_for_class_and_student(tmp_path):
    class_store = cd.store_for("a" * 32, class_mode=True, root=tmp_path / "class")
    own = cd.store_for("a" * 32, class_mode=False, root=tmp_path / "students")
    assert class_store.path == tmp_path / "class" / cd.STORE_FILE
    assert own.path.parent == tmp_path / "students" and identity.owner_key("a" * 32) in own.path.name


def test_prepared_drawing_to_pixels():
    x = np.zeros((28, 28, 1), np.float32)
    x[3, 4, 0] = 1.0
    x[5, 6, 0] = 0.5
    px = cd.to_pixels(x)
    assert px.dtype == np.uint8 and px[3, 4] == 255 and px[5, 6] == 128


def test_command_line_export_and_import(tmp_path, capsys):
    from cnnkit.__main__ import main

    store = cd.store_for(None, class_mode=True, root=tmp_path)
    c = store.open("shapes", "circle, square, triangle")
    _fill(store, c, people=4, per_class=3)
    out = tmp_path / "shapes.npz"
    assert main(["collection", "export", "--out", str(out), "--dir", str(tmp_path)]) == 0
    assert "wrote" in capsys.readouterr().out and out.is_file()
    assert main(["collection", "import", str(out), "--dir", str(tmp_path), "--name", "again"]) == 0
    assert main(["collection", "list", "--dir", str(tmp_path)]) == 0
    listed = capsys.readouterr().out
    assert "again" in listed and "36 drawings" in listed
    assert main(["collection", "export", "--dir", str(tmp_path / "none")]) == 2


def test_what_the_pages_say(store):
    c = store.open("shapes", "circle, square", per_student=5)
    a = "a" * 32
    store.add(c.id, a, _img(0), 0)
    store.add(c.id, "b" * 32, _img(1), 1)
    assert cd.contribution_sentence(store, c.id, a) == \
        "You have drawn 1 of the 2 drawings in “shapes”; you may add 4 more."
    assert cd.class_rows(store, c.id) == [{"class": "circle", "drawings": 1}, {"class": "square", "drawings": 1}]
    rows = cd.student_rows(store, c.id, {identity.owner_key(a): "Ada"})
    assert [r["student"] for r in rows][0] == "Ada" and rows[1]["student"].startswith("student ")


def test_class_book_names_contributors_by_key(tmp_path):
    from cnnkit import classroom

    book = classroom.ClassBook(tmp_path / "class.json")
    a = "a" * 32
    book.number(a)
    assert book.labels_by_key([identity.owner_key(a), "unknown"]) == {identity.owner_key(a): "student 1"}


def test_a_model_follows_the_collections_classes():
    from cnnkit import presets

    spec = presets.get(presets.DEFAULT, input_shape=(28, 28, 1), num_classes=10).spec
    three = cd.spec_for_classes(spec, 3)
    assert three.layers[-1].params["units"] == 3 and spec.layers[-1].params["units"] == 10
    assert three.validate(num_classes=3) == [] or all(p.level != "error" for p in three.validate(num_classes=3))
    assert cd.spec_for_classes(three, 3) is three


def test_a_snapshot_stops_at_the_drawing_it_was_taken_at(store):
    from cnnkit import drawing

    c = store.open("shapes", "circle, square")
    _fill(store, c, people=2, per_class=4)
    upto = store.stamp(c.id)[1]
    store.add(c.id, "z" * 32, _img(5), 0)
    snap = cd.to_dataset(store, c.id, upto=upto)
    assert len(snap.x_train) + len(snap.x_test) == 16 and "snapshot" in snap.source_text
    assert drawing.uses_drawing(snap.name, snap.image_shape, snap.class_names)


def test_cross_evaluation_sentence_and_same_task(tiny_ds):
    from cnnkit import evaluation

    a, b = tiny_ds(classes=10), tiny_ds(classes=10, seed=1)
    assert evaluation.same_task(a, b) and not evaluation.same_task(a, tiny_ds(classes=3))
    y = np.array([0, 1, 2, 3] * 5)
    probs = np.eye(10)[y]
    good = evaluation.Evaluation(y, probs, tuple("0123456789"), loss=0.0)
    bad_probs = np.eye(10)[(y + 1) % 10]
    bad_probs[:10] = np.eye(10)[y[:10]]
    bad = evaluation.Evaluation(y, bad_probs, tuple("0123456789"), loss=1.0)
    text = evaluation.cross_sentence(good, bad, "MNIST", "the class's digits")
    assert "100.0%" in text and "50.0%" in text and "distribution shift" in text
    assert "About the same" in evaluation.cross_sentence(good, good, "MNIST", "MNIST")
