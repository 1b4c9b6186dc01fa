"""Real browser, 1280×720 (issue 24): the Architecture page's network picture follows every edit, and the
totals and the verdict stay in view while the last layer's settings are open."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser
FIRST_LOAD_MS = 180_000
PICTURE = ".st-key-arch_picture_wide"

# The picture's words, block by block: the bold first line of each block (its type) and its shape.
BLOCKS_JS = """
(sel) => [...document.querySelectorAll(sel + ' g.annotation')]
  .map(a => [...a.querySelectorAll('tspan.line')].map(t => t.textContent).join('|'))
  .filter(t => t.includes('|'))
"""


def _in_view(page, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 720 and box["height"] > 0


def _open_architecture(page, app_server: str, idle):
    """The Architecture page at 1280×720, its picture drawn and the app idle."""
    page.set_viewport_size({"width": 1280, "height": 720})
    page.goto(f"{app_server}/architecture")
    page.wait_for_selector(PICTURE + " g.annotation", timeout=FIRST_LOAD_MS)
    idle(page)
    return page


def test_the_picture_follows_an_edit_and_the_totals_stay_in_view(app_server, browser_page, idle):
    page = _open_architecture(browser_page, app_server, idle)
    rows = page.locator("[class*='st-key-arch_layer']")
    n = rows.count()
    blocks = page.evaluate(BLOCKS_JS, PICTURE)
    assert len(blocks) == n + 1 and blocks[0].startswith("Input"), blocks   # the input and one per layer
    assert blocks[-1].startswith("Dense") and "10" in blocks[-1]

    # Open the last layer's settings (scrolled to, as a student would): the totals and the verdict stay in view.
    last = rows.nth(n - 1)
    last.locator("[class*='_info'] button:visible").first.click()
    idle(page)
    units = last.locator("input[type='number']").first
    units.scroll_into_view_if_needed()
    assert _in_view(page, "[class*='st-key-arch_layer'] input[type='number']")
    assert _in_view(page, ".st-key-arch_summary [data-testid='stMetric']")
    assert _in_view(page, ".st-key-arch_summary [data-testid='stAlert']")
    assert _in_view(page, PICTURE)

    # An edit: 7 units in the last layer. Its block says 7, turns red, and its sentence is under the picture.
    units.fill("7")
    units.press("Enter")
    idle(page)
    for _ in range(120):   # the chart is redrawn after the rerun
        if page.evaluate(BLOCKS_JS, PICTURE)[-1].split("|")[1] == "7":
            break
        page.wait_for_timeout(500)
    after = page.evaluate(BLOCKS_JS, PICTURE)
    assert len(after) == n + 1 and after[-1].split("|")[1] == "7", after
    assert page.get_by_text(f"Layer {n} (red):").count() >= 1
    assert _in_view(page, ".st-key-arch_summary [data-testid='stAlert']")

    # Removing a layer removes its block.
    rows.nth(1).locator("[class*='_rm'] button:visible").first.click()
    idle(page)
    for _ in range(120):
        if len(page.evaluate(BLOCKS_JS, PICTURE)) == n:
            break
        page.wait_for_timeout(500)
    assert len(page.evaluate(BLOCKS_JS, PICTURE)) == n


def test_clicking_a_block_opens_that_layers_settings(app_server, browser_page, idle):
    page = _open_architecture(browser_page, app_server, idle)
    rows = page.locator("[class*='st-key-arch_layer']")
    assert rows.nth(1).get_by_role("button", name="Move up").count() == 0      # closed to begin with
    # The blocks' click targets: one invisible point per layer, in layer order (the input has none).
    points = page.locator(PICTURE + " .scatterlayer path.point")
    assert points.count() == rows.count()
    points.nth(1).scroll_into_view_if_needed()                 # a click lands only inside the viewport
    box = points.nth(1).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)   # the second layer's block
    idle(page)
    rows.nth(1).get_by_role("button", name="Move up").wait_for(timeout=30_000)   # its settings are open
    assert rows.nth(0).get_by_role("button", name="Move up").count() == 0
