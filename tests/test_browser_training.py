"""Real browser: a training job keeps streaming through widget changes, a page switch and a reload."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlparse

import pytest

pytestmark = pytest.mark.browser


def job_in_url(page) -> str | None:
    return (parse_qs(urlparse(page.url).query).get("job") or [None])[0]


def test_job_survives_widgets_page_switch_and_reload(app_server, browser_page, idle, runs_dir):
    page = browser_page
    page.goto(app_server)
    idle(page)
    page.get_by_test_id("stSidebarNavLink").filter(has_text="Training").click()
    idle(page)
    page.get_by_text("No training job yet").wait_for()
    epochs = page.get_by_label("Epochs")
    epochs.fill("10")
    epochs.press("Enter")
    idle(page)

    page.get_by_role("button", name="Start training").click()
    idle(page)
    page.get_by_text(re.compile(r"Epoch 1/10 · batch \d+/\d+")).first.wait_for(timeout=90_000)
    job_id = job_in_url(page)
    assert job_id and len(job_id) == 32

    # Another widget moves while the job trains: the job and its stream carry on.
    seed = page.get_by_label("Seed")
    seed.fill("7")
    seed.press("Enter")
    idle(page)
    assert job_in_url(page) == job_id
    first = page.locator("[data-testid='stProgress']").first.inner_text()
    page.wait_for_function(
        "t => document.querySelector(\"[data-testid='stProgress']\")?.innerText !== t", arg=first, timeout=60_000)

    # Switch page: the sidebar still reports the job, and the URL keeps its id.
    page.get_by_test_id("stSidebarNavLink").filter(has_text="Data").click()
    idle(page)
    page.get_by_text("Training:", exact=False).first.wait_for()
    assert job_in_url(page) == job_id

    # Back, then a browser reload: a new session finds the same job, still streaming.
    page.goto(f"{app_server}/training?{urlparse(page.url).query}")
    idle(page)
    page.reload()
    idle(page)
    assert job_in_url(page) == job_id
    page.get_by_text("Your job", exact=True).wait_for()
    # Still streaming: the epoch bar's words keep changing until the job ends.
    seen = {page.locator("[data-testid='stProgress']").first.inner_text()}
    deadline = time.time() + 400
    while time.time() < deadline and not page.get_by_text("Test accuracy").count():
        page.wait_for_timeout(1000)
        bars = page.locator("[data-testid='stProgress']")
        if bars.count():
            seen.add(bars.first.inner_text())
    assert len(seen) >= 2, seen
    page.get_by_text(re.compile(r"Finished 10 epochs in .* Test accuracy \d+\.\d%")).wait_for(timeout=10_000)
    assert job_in_url(page) == job_id
    # one run (beside the app's own state folders)
    assert len([p for p in runs_dir.iterdir() if (p / "run.json").is_file()]) == 1
    # The fragment shows "Finished" first, then reruns the whole page once to re-enable Start:
    # wait for that rerun rather than racing it.
    from playwright.sync_api import expect

    expect(page.get_by_role("button", name="Start training")).to_be_enabled(timeout=30_000)
