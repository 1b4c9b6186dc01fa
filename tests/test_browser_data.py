"""Real browser: open the app in Debian's Chromium, go to the data page, see the sample grid."""

import pytest

pytestmark = pytest.mark.browser


def test_open_app_go_to_data_page_and_see_samples(app_server, browser_page, idle, tmp_path):
    page = browser_page
    page.goto(app_server)
    idle(page)
    assert page.get_by_role("heading", name="CNN Lab").first.is_visible()
    page.get_by_role("link", name="1 · Data").first.click()
    idle(page)
    page.get_by_role("heading", name="1 · Load and explore the data").wait_for()
    # the sample grid: the first 20 images with their labels
    grid = page.locator(".cnnkit-grid").first
    grid.wait_for()
    assert grid.locator("img").count() == 20
    page.get_by_text("The first 20 training images").first.wait_for()
    assert page.get_by_text("#0: label").first.is_visible()
    assert page.get_by_text("offline sample").first.is_visible()
    page.screenshot(path=str(tmp_path / "data.png"), full_page=True)
    # switching to Fashion-MNIST re-renders with its class names
    page.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name="Fashion-MNIST").click()
    idle(page)
    page.get_by_text("Ankle boot").first.wait_for()
    assert page.get_by_text("60,000").first.is_visible()
