"""The draw page in a real browser: strokes drawn with the mouse on the canvas (inside the
component's shadow root) give a prediction and the prepared image; Clear removes them."""

from __future__ import annotations

import re

import pytest

from conftest import wait_idle
from test_page_draw import make_run

pytestmark = pytest.mark.browser

CANVAS = "[data-testid='stBidiComponentIsolated'] canvas.upper-canvas"


def stroke(page, box, points) -> None:
    """One pen stroke through `points` given as fractions of the canvas."""
    x0, y0 = box["x"], box["y"]
    w, h = box["width"], box["height"]
    page.mouse.move(x0 + points[0][0] * w, y0 + points[0][1] * h)
    page.mouse.down()
    for fx, fy in points[1:]:
        page.mouse.move(x0 + fx * w, y0 + fy * h, steps=12)
    page.mouse.up()


def test_draw_a_digit_then_clear(app_server, runs_dir, browser_page, tmp_path):
    make_run(runs_dir, title="browser model")
    page = browser_page
    page.goto(app_server)
    wait_idle(page)
    page.get_by_role("link", name="5 · Draw & predict").first.click()
    wait_idle(page)
    canvas = page.locator(CANVAS)
    canvas.wait_for(state="visible")
    assert page.get_by_text("Draw a digit on the canvas first").is_visible()
    assert page.locator("[data-testid='stMetric']").count() == 0

    # A 7, a little small and off-centre: top bar, then the diagonal.
    box = canvas.bounding_box()
    stroke(page, box, [(0.2, 0.2), (0.6, 0.2), (0.35, 0.75)])
    wait_idle(page)
    metric = page.locator("[data-testid='stMetric']").filter(has_text="Prediction")
    metric.wait_for(state="visible")
    assert re.search(r"Prediction\s*\d", metric.inner_text())
    assert page.get_by_text("What the model sees").is_visible()
    assert page.get_by_text(re.compile("Centred in 28×28")).first.is_visible()
    page.screenshot(path=str(tmp_path / "draw.png"), full_page=True)

    page.get_by_role("button", name="Clear").click()
    wait_idle(page)
    page.get_by_text("Draw a digit on the canvas first").wait_for(state="visible")
    assert page.locator("[data-testid='stMetric']").count() == 0
    assert page.get_by_text("What the model sees").count() == 0
