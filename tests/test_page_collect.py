"""AppTest of app_pages/collect.py (Collect drawings) and the Class page's collection section.

AppTest cannot draw on the canvas (a custom component): here `webapp.canvas.draw` hands the page a rendered
drawing (tests/strokes.py), so what the page does with it — prepare, store, count, undo, refuse — is tested;
tests/test_browser_collect.py draws on the real canvas."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit import class_drawings, identity
from tests import strokes
from webapp import canvas

PAGE = "app_pages/collect.py"


def texts(at) -> str:
    return "\n".join(str(e.value) for e in (*at.info, *at.warning, *at.error, *at.success, *at.markdown,
                                            *at.caption))


@pytest.fixture
def class_mode(runs_dir, monkeypatch):
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    return class_drawings.store_for(None, class_mode=True)


@pytest.fixture
def on_canvas(monkeypatch):
    """Put a picture on the canvas the page reads (None: an empty canvas)."""
    holder = {"image": None}
    monkeypatch.setattr(canvas, "draw", lambda size, hint="": canvas.Drawing(
        holder["image"], 0 if holder["image"] is None else 1))
    return holder


def _table(at, column: str):
    """The dataframe with this column (AppTest does not expose a dataframe's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _press(at, key):
    next(b for b in at.button if b.key == key).click().run()
    assert not at.exception, at.exception


def test_no_collection_in_class_mode_says_the_lecturer_opens_one(app_test, class_mode):
    at = app_test(PAGE)
    assert not at.exception
    assert "your lecturer opens one on the Class page" in texts(at)


def test_a_student_draws_the_class_asked_undoes_and_is_refused_when_closed(app_test, class_mode, on_canvas):
    store = class_mode
    c = store.open("shapes", "circle, square, triangle")
    at = app_test(PAGE)
    owner = at.session_state["owner_id"]
    # an empty canvas, then a dot: sentences, nothing stored
    _press(at, "collect_add")
    assert "Draw a circle on the canvas first" in texts(at)   # the class asked for, not "a digit"
    on_canvas["image"] = strokes.dot()
    _press(at, "collect_add")
    assert "a single dot, not a circle: draw the whole circle" in texts(at) and store.stamp(c.id)[0] == 0
    assert not [e for e in at.error if "digit" in e.value]
    asked = []
    for name in ("circle", "square", "triangle", "circle"):
        on_canvas["image"] = strokes.render([strokes.shape_stroke(name)])
        asked.append(c.class_names[at.session_state["collect.asked"][1]])
        _press(at, "collect_add")
        assert "Added to “shapes”" in texts(at)
    assert asked == ["circle", "square", "triangle", "circle"]   # the class with the fewest, ties by order
    assert store.class_counts(c.id) == [2, 1, 1]
    assert "You have drawn 4 of the 4 drawings" in texts(at)
    # stored exactly as the Draw page prepares the canvas
    from cnnkit import drawing

    expected = class_drawings.to_pixels(drawing.prepare_drawing(strokes.render([strokes.shape_stroke("circle")])).x)
    assert np.array_equal(store.latest(c.id, 1)[0].pixels, expected)
    assert store.student_counts(c.id) == {identity.owner_key(owner): 4}
    _press(at, "collect_undo")
    assert "Removed your last drawing (a circle)" in texts(at) and store.class_counts(c.id) == [1, 1, 1]
    store.close(c.id)
    at.run()
    assert "is closed" in texts(at)
    assert not [b for b in at.button if b.key == "collect_add"]


def test_outside_class_mode_a_student_opens_their_own(app_test, runs_dir, on_canvas):
    at = app_test(PAGE)
    assert "Draw your own dataset" in at.title[0].value
    at.text_input[0].set_value("letters")
    at.text_input[1].set_value("A, B, a")
    at.button[0].click().run()
    assert "“A” and “a” are the same name" in texts(at)
    at.text_input[1].set_value("A, B")
    at.button[0].click().run()
    assert not at.exception
    own = class_drawings.store_for(at.session_state["owner_id"], class_mode=False)
    assert own.current().class_names == ("A", "B")
    assert not class_drawings.store_for(None, class_mode=True).collections()   # not the class's


def test_the_lecturer_opens_watches_removes_and_closes(runs_dir, monkeypatch):
    from tests.test_page_class import KEY, open_class

    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    monkeypatch.setenv("CNNKIT_LECTURER_KEY", KEY)
    at = open_class()
    at.text_input(key="lecturer_key_typed").input(KEY)
    at.button[0].click().run()
    at.text_input(key="collect_classes").set_value("circle, circle")
    next(b for b in at.button if b.label == "Open the collection").click().run()
    assert "“circle” and “circle” are the same name" in "\n".join(e.value for e in at.error)
    at.text_input(key="collect_classes").set_value("circle, square, triangle")
    next(b for b in at.button if b.label == "Open the collection").click().run()
    assert not at.exception, at.exception
    store = class_drawings.store_for(None, class_mode=True)
    c = store.current()
    assert c.is_open and c.class_names == ("circle", "square", "triangle") and c.per_student == 200
    ann, bob = identity.new_owner_id(), identity.new_owner_id()
    from cnnkit import classroom

    classroom.book().set_nickname(ann, "Ann")
    for owner, n in ((ann, 3), (bob, 2)):
        for j in range(n):
            for k in range(3):
                store.add(c.id, owner, np.full((28, 28), 10 * j + k, np.uint8), k)
    at.run()
    classes = _table(at, "class")
    assert list(classes["drawings"]) == [5, 5, 5]
    people = _table(at, "student")
    assert list(people["student"])[0] == "Ann" and list(people["drawings"]) == [9, 6]
    said = "\n".join(h.proto.body for h in at.get("html"))
    assert "15 drawings by 2 students (circle 5 · square 5 · triangle 5)" in texts(at)
    assert "The latest 15 drawings" in said
    at.selectbox(key="collect_remove_student_pick").set_value(identity.owner_key(ann))
    next(b for b in at.button if b.key == "collect_remove_student").click().run()
    assert store.class_counts(c.id) == [2, 2, 2]
    at.run()
    assert list(_table(at, "class")["drawings"]) == [2, 2, 2]
    latest = store.latest(c.id, 1)[0]
    at.selectbox(key="collect_remove_pick").set_value(latest.id)
    next(b for b in at.button if b.key == "collect_remove_one").click().run()
    assert sum(store.class_counts(c.id)) == 5
    next(b for b in at.button if b.key == "collect_close").click().run()
    assert not store.get(c.id).is_open
    assert [b for b in at.button if b.key == "collect_reopen"]


def _shapes_collection(store, people=4, per_class=3, close=True):
    from cnnkit import drawing

    c = store.open("shapes", "circle, square, triangle")
    places = iter(strokes.shape_places(people * per_class * 3, seed=3))
    for _ in range(people):
        owner = identity.new_owner_id()
        for name in c.class_names:
            for _ in range(per_class):
                size, left, top = next(places)
                img = strokes.render([strokes.shape_stroke(name, size, left, top)])
                store.add(c.id, owner, class_drawings.to_pixels(drawing.prepare_drawing(img).x),
                          c.class_names.index(name))
    return store.close(c.id) if close else c


def test_a_closed_collection_is_picked_on_the_data_page_and_every_page_follows(app_test, class_mode):
    c = _shapes_collection(class_mode)
    at = app_test("app_pages/data.py")
    box = at.selectbox[0]
    assert "Class drawings: shapes, 36 images" in box.options   # as the picker words it
    box.set_value(f"drawings|class|{c.id}").run()
    assert not at.exception, at.exception
    said = texts(at)
    assert "Class drawings: shapes" in said and "Split by contributor" in said
    assert [m.value for m in at.metric if m.label == "Classes"] == ["3"]
    # a reload keeps it (kept on the server for this browser)
    from cnnkit import student_state

    assert student_state.load(at.session_state["owner_id"])["collection"]["id"] == c.id
    # the architecture page: the model's last layer has one unit per shape, and nothing is wrong with it
    at.switch_page("app_pages/architecture.py").run()
    assert not at.exception, at.exception
    assert "3 classes" in texts(at)
    assert not [e for e in at.error]


def test_an_mnist_run_is_tested_on_the_students_own_digits(runs_dir):
    from streamlit.testing.v1 import AppTest

    from cnnkit import drawing
    from tests.test_page_draw import make_run

    make_run(runs_dir)   # an (untrained) MNIST model
    owner = identity.new_owner_id()
    own = class_drawings.store_for(owner, class_mode=False)
    c = own.open("our digits")
    for digit in ("0", "1", "4", "7"):
        img = strokes.draw_digit(digit)
        own.add(c.id, owner, class_drawings.to_pixels(drawing.prepare_drawing(img).x), int(digit))
    from tests.test_page_class import APP

    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["owner_id"] = owner
    at.run()
    at.switch_page("app_pages/evaluation.py").run()
    assert not at.exception, at.exception
    box = next(s for s in at.selectbox if s.key == "ev_other_pick")
    assert box.options == ["Class drawings: our digits: all 4 drawings"]
    labels = [m.label for m in at.metric]
    assert "Class drawings: our digits (all 4 drawings)" in labels
    assert "the model is right" in texts(at)
    assert any("Confusion matrix on Class drawings" in str(c.proto.spec) for c in at.get("plotly_chart"))


def test_names_a_student_typed_stay_plain_text(app_test, runs_dir, on_canvas):
    """Outside class mode the student names the collection and its classes: the page shows them as typed,
    never as a link, an image or emphasis (cnnkit.plain_text)."""
    at = app_test(PAGE)
    owner = at.session_state["owner_id"]
    own = class_drawings.store_for(owner, class_mode=False)
    c = own.open("![x](http://h/x) *mine*", "[a](http://h/a), **b**")
    at.run()
    _press(at, "collect_add")   # nothing on the canvas: the sentence names the class asked for
    shown = texts(at)
    assert r"Draw a \[a\](http:\//h/a) on the canvas first" in shown
    assert r"Draw: **\[a\](http:\//h/a)**" in shown
    add = next(b for b in at.button if b.key == "collect_add")
    assert add.label == r"Add this \[a\](http:\//h/a)"
    on_canvas["image"] = strokes.render([strokes.shape_stroke("circle")])
    _press(at, "collect_add")
    shown = texts(at)
    assert r"Added to “!\[x\](http:\//h/x) \*mine\*” as \[a\](http:\//h/a)" in shown
    assert r"You have drawn 1 of the 1 drawings in “!\[x\](http:\//h/x) \*mine\*”" in shown
    assert "](http://" not in shown   # no link or image anywhere
    own.close(c.id)


def test_a_collection_read_while_open_says_closed_once_closed(class_mode):
    """The Class page reads the open collection every 3 s (its download): once closed, with the same drawings,
    the dataset a student picks says it is closed, not a snapshot (the shared cache knows open from closed)."""
    from webapp import drawn_collection

    store = class_mode
    c = store.open("shapes", "circle, square, triangle")
    owner = identity.new_owner_id()
    for k in (0, 1, 2) * 2:
        store.add(c.id, owner, np.full((28, 28), 50 * k, np.uint8), k)
    record = {"scope": "class", "id": c.id, "upto": None}
    assert "a snapshot" in drawn_collection.dataset_of(record).source_text
    store.close(c.id)
    assert "(closed)" in drawn_collection.dataset_of(record).source_text
