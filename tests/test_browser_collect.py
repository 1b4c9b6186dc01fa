"""A dataset the class draws, in a real browser: the lecturer opens a collection of three shapes on the Class
page; two students (two browser contexts: two cookies) draw with the mouse on the real canvas, each shape the
page asks for (the class with the fewest drawings), generated circles, squares and triangles at different sizes
and places (tests/strokes.py); the Class page counts them per class; the lecturer removes one student's
drawings; the collection is closed and a student picks it on the Data page.

Kept lean for CI: PER_CLASS drawings of each shape per student (the issue's full flow is ten of each; the
store, the counts and the split are the same code at any size, and tests/test_class_drawings.py covers them)."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import wait_idle
from strokes import replay, shape_places, shape_stroke

pytestmark = pytest.mark.browser

KEY = "a long phrase only the lecturer knows"
CANVAS = "[data-testid='stBidiComponentIsolated'] canvas.upper-canvas"
PER_CLASS = 2
SHAPES = ("circle", "square", "triangle")


@pytest.fixture
def lecture_url(runs_dir, tmp_path, monkeypatch, request):
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    monkeypatch.setenv("CNNKIT_LECTURER_KEY", KEY)
    return request.getfixturevalue("app_server")   # started with this environment


def _goto(page, url: str) -> None:
    page.goto(url)
    wait_idle(page, timeout=180_000)


def _student_draws(page, url: str, n: int, seed: int) -> list[str]:
    _goto(page, f"{url}/collect")
    places = iter(shape_places(n, seed=seed))
    asked = []
    for _ in range(n):
        name = page.locator(".collect-ask b").inner_text().strip()
        asked.append(name)
        canvas = page.locator(CANVAS)
        canvas.wait_for(state="visible")
        size, left, top = next(places)
        replay(page, canvas.bounding_box(), shape_stroke(name, size, left, top))
        wait_idle(page)
        page.locator(".st-key-collect_add button").click()
        page.get_by_text("Added to “shapes”").wait_for()
        wait_idle(page)
    return asked


def _counts(db) -> dict[str, int]:
    with sqlite3.connect(db) as con:
        names = con.execute("SELECT class_names FROM collections ORDER BY id DESC").fetchone()[0].split("\x1f")
        rows = dict(con.execute("SELECT class_index, COUNT(*) FROM drawings GROUP BY class_index").fetchall())
    return {names[k]: rows.get(k, 0) for k in range(len(names))}


def test_a_class_draws_shapes_and_picks_them_as_a_dataset(lecture_url, runs_dir, _browser):
    url = lecture_url
    contexts = [_browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(3)]
    lecturer, ann, bob = (c.new_page() for c in contexts)
    for p in (lecturer, ann, bob):
        p.set_default_timeout(60_000)
    try:
        # the lecturer unlocks the Class page and opens a collection of three shapes
        _goto(lecturer, f"{url}/class")
        lecturer.get_by_label("Lecturer key").fill(KEY)
        lecturer.get_by_role("button", name="Unlock").click()
        wait_idle(lecturer)
        lecturer.get_by_label("Class names, separated by commas (2–20)").fill("circle, square, triangle")
        lecturer.get_by_role("button", name="Open the collection").click()
        wait_idle(lecturer)
        lecturer.get_by_text("Class drawings: shapes").first.wait_for()

        n = PER_CLASS * len(SHAPES)
        asked_ann = _student_draws(ann, url, n, seed=1)
        asked_bob = _student_draws(bob, url, n, seed=2)
        # balanced: the page asked each shape in turn
        assert sorted(asked_ann + asked_bob) == sorted(SHAPES * (2 * PER_CLASS))
        db = runs_dir / ".class" / "drawings.sqlite3"
        assert _counts(db) == {s: 2 * PER_CLASS for s in SHAPES}
        _goto(ann, f"{url}/collect")   # the totals as of her last visit: now Bob's drawings too
        ann.get_by_text(f"You have drawn {n} of the {2 * n} drawings").wait_for()

        # the Class page shows the right per-class counts (its live section refreshes every 3 s)
        per_class = " · ".join(f"{s} {2 * PER_CLASS}" for s in SHAPES)
        lecturer.get_by_text(f"{2 * n} drawings by 2 students ({per_class})").wait_for(timeout=30_000)

        # the lecturer removes one student's drawings
        lecturer.get_by_role("button", name="Remove their drawings").click()
        wait_idle(lecturer)
        per_class = " · ".join(f"{s} {PER_CLASS}" for s in SHAPES)
        lecturer.get_by_text(f"{n} drawings by 1 student ({per_class})").wait_for(timeout=30_000)
        assert sum(_counts(db).values()) == n

        # closed, and picked on the Data page
        lecturer.get_by_role("button", name="Close the collection").click()
        wait_idle(lecturer)
        _goto(ann, f"{url}/data")
        ann.locator("[data-testid='stSelectbox']").first.click()
        ann.get_by_role("option", name=f"Class drawings: shapes, {n} images").click()
        wait_idle(ann)
        ann.get_by_text("Class drawings: shapes").first.wait_for()
        ann.get_by_text("Split by drawing, stratified by class").wait_for()   # one contributor left
    finally:
        for c in contexts:
            c.close()
