"""Real browser, class mode: an identity is a cookie, never a URL.

Browser A trains; browser B opens A's full URL and gets its own identity (no run, no job, no Stop of A's);
A's reload keeps A's identity, job and run; the Class page refuses without the lecturer key and shows A's
run with it; sharing the run with the class makes it appear for B.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

KEY = "lecturer key for the browser test"


@pytest.fixture
def lecture_env(runs_dir, monkeypatch):
    """Class mode and a lecturer key for the server app_server starts (requested before app_server)."""
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    monkeypatch.setenv("CNNKIT_LECTURER_KEY", KEY)
    for name in ("CNNKIT_CLASS_MAX_EPOCHS", "CNNKIT_CLASS_MAX_TRAIN_IMAGES", "CNNKIT_CLASS_ONE_JOB"):
        monkeypatch.delenv(name, raising=False)


def cookie(page) -> str | None:
    """The identity cookie, once the page's snippet has written it (it runs when the page has mounted)."""
    page.wait_for_function("document.cookie.includes('cnnlab_id=')", timeout=30_000)
    return next((c["value"] for c in page.context.cookies() if c["name"] == "cnnlab_id"), None)


PICKERS = """pattern => new RegExp(pattern).test(Array.from(document.querySelectorAll("[data-testid='stSelectbox']"))
    .map(e => e.innerText + " " + Array.from(e.querySelectorAll("input")).map(i => i.value).join(" ")).join("\\n"))"""


def wait_for_picker(page, pattern: str, timeout: float = 120_000) -> None:
    """Wait until a select box (its shown text or its input's value) matches `pattern`."""
    page.wait_for_function(PICKERS, arg=pattern, timeout=timeout)


def query(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def nav(page, idle, title: str) -> None:
    page.get_by_test_id("stSidebarNavLink").filter(has_text=title).click()
    idle(page)


def test_identity_is_the_browser_not_the_url(lecture_env, app_server, browser_page, _browser, idle, runs_dir):
    a = browser_page
    # --- A's very first visit: no cookie yet; the id made now must survive A's reloads ---
    a.goto(app_server)
    idle(a)
    expect(a.get_by_test_id("stSidebarNavLink").filter(has_text="Class")).to_have_count(0, timeout=60_000)
    nav(a, idle, "Training")
    # Long enough to still be training when A stops it below: on an idle machine the lecture preset's small-data
    # recipe trains an epoch of the sample in about a second.
    epochs = a.get_by_label("Epochs")
    epochs.fill("60")
    epochs.press("Enter")
    idle(a)
    a.get_by_role("button", name="Start training").click()
    idle(a)
    # Training, at whatever epoch the page first shows (the first one can be over before the panel's next poll).
    a.get_by_text(re.compile(r"Epoch \d+/60 · batch [1-9]\d*/")).first.wait_for(timeout=300_000)
    a_id = cookie(a)
    assert a_id and len(a_id) == 32 and "sid" not in query(a) and a_id not in a.url
    job_id = query(a)["job"]

    # --- B opens A's full URL (and an old-style link carrying A's id): nothing of A's ---
    b_ctx = _browser.new_context(viewport={"width": 1400, "height": 1000})
    b = b_ctx.new_page()
    b.set_default_timeout(60_000)
    b.goto(a.url + f"&sid={a_id}")
    idle(b)
    b.get_by_text("No training job yet").wait_for()
    assert b.get_by_role("button", name="Stop").count() == 0
    assert b.get_by_text("Training:", exact=False).count() == 0           # no job line in B's sidebar
    assert "job" not in query(b) and "sid" not in query(b)                # the URL is cleaned
    assert cookie(b) and cookie(b) != a_id
    b.reload()
    idle(b)
    b.get_by_text("No training job yet").wait_for()

    # --- A reloads: same identity, same job, still training; then A stops it and it is saved ---
    a.reload()
    idle(a)
    assert cookie(a) == a_id and query(a)["job"] == job_id
    a.get_by_text("Your job", exact=True).wait_for()
    a.get_by_role("button", name="Stop", exact=True).click()
    a.get_by_text(re.compile(r"Stopped by you after \d+ batches")).wait_for(timeout=300_000)  # test + save
    [run_dir] = [p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert json.loads((run_dir / "run.json").read_text())["owner"] == a_id
    a.reload()
    idle(a)
    # A's run, after a reload: the Evaluation page offers it (its label names the test accuracy).
    a.get_by_test_id("stSidebarNavLink").filter(has_text="Evaluation").click()
    wait_for_picker(a, r"test \d+\.\d%")

    # --- B still sees no run of A's ---
    nav(b, idle, "Evaluation")
    b.get_by_text("There is no trained model for").wait_for()

    # --- the lecturer: refused without the key, A's run with it, then shares it ---
    c_ctx = _browser.new_context(viewport={"width": 1400, "height": 1000})
    c = c_ctx.new_page()
    c.set_default_timeout(60_000)
    c.goto(f"{app_server}/class")
    idle(c)
    c.get_by_text("This page is for the lecturer").wait_for()
    assert c.get_by_text("Every run of the class").count() == 0
    c.get_by_label("Lecturer key").fill("not the key")
    c.get_by_role("button", name="Unlock").click()
    idle(c)
    c.get_by_text("That is not the lecturer key").wait_for()
    c.get_by_label("Lecturer key").fill(KEY)
    c.get_by_role("button", name="Unlock").click()
    idle(c)
    c.get_by_text("Every run of the class").wait_for()
    expect(c.get_by_test_id("stSidebarNavLink").filter(has_text="Class")).to_have_count(1, timeout=60_000)
    c.get_by_test_id("stPlotlyChart").first.wait_for()
    expect(c.get_by_test_id("stMetricValue").nth(1)).to_have_text("1", timeout=60_000)          # one run
    c.reload()
    idle(c)
    c.get_by_text("Every run of the class").wait_for()                        # unlocked for this browser
    c.get_by_role("button", name="Share with the class").click()
    idle(c)
    expect(c.get_by_text("Shared run to take back")).to_be_visible(timeout=60_000)

    # --- now B sees the shared run, named after A's nickname-less number ---
    b.reload()
    wait_for_picker(b, r"shared by student \d+")
    assert b.get_by_text("There is no trained model for").count() == 0
    b_ctx.close()
    c_ctx.close()
