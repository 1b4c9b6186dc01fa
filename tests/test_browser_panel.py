"""Real browser, a 1280×720 projector (issue 24): after Start, pressed at the bottom of the Training page, the
live panel — both progress bars and the curves — is what the student sees, without a scroll."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def _inside(page, locator) -> tuple[bool, dict | None]:
    box = locator.bounding_box()
    ok = box is not None and box["height"] > 0 and box["y"] >= 0 and box["y"] + box["height"] <= 720 + 1
    return ok, box


def test_after_start_the_live_panel_is_in_view(app_server, browser_page, idle):
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{app_server}/training")
    idle(page)
    page.get_by_text("No training job yet").wait_for()
    epochs = page.get_by_label("Epochs")
    epochs.fill("20")
    epochs.press("Enter")
    idle(page)
    start = page.get_by_role("button", name="Start training")
    start.scroll_into_view_if_needed()
    start.click()
    curves = page.locator(".st-key-job_panel [data-testid='stPlotlyChart']").last
    curves.wait_for(timeout=300_000)
    page.wait_for_timeout(800)
    bars = page.locator(".st-key-job_panel [data-testid='stProgress']")
    assert bars.count() == 2
    for element in (bars.nth(0), bars.nth(1), curves):
        ok, box = _inside(page, element)
        assert ok, box
    page.get_by_role("button", name="Stop", exact=True).click()
