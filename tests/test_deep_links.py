"""A fresh server must route a deep link through app.py (Streamlit's old pages/ folder mode would skip it)."""


import pytest

pytestmark = pytest.mark.browser


def test_first_visit_to_a_deep_link_runs_the_app_shell(app_server, browser_page, idle):
    page = browser_page
    page.goto(f"{app_server}/data")  # the very first request this server sees
    idle(page)
    page.get_by_role("heading", name="1 · Load and explore the data").wait_for()
    assert page.get_by_test_id("stException").count() == 0
    nav = page.get_by_test_id("stSidebarNavLink").all_inner_texts()
    assert [t.split("\n")[-1].strip() for t in nav][:2] == ["Home", "1 · Data"]  # our navigation, not a folder listing
    assert page.get_by_text("Dataset:").first.is_visible()  # the sidebar app.py draws


def test_no_streamlit_pages_folder():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    assert not (root / "pages").exists(), "a pages/ folder switches Streamlit into its old multipage mode"
