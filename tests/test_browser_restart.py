"""Real browser: a graceful restart (SIGTERM) loses no job silently — the journal survives the stop, and after
the restart every tab of the student's browser says the job was lost (issue #26)."""

from __future__ import annotations

import re
import signal
import time
from urllib.parse import parse_qs, urlparse

import pytest
from conftest import _free_port, start_app, stop_app

pytestmark = pytest.mark.browser


def job_in_url(page) -> str | None:
    return (parse_qs(urlparse(page.url).query).get("job") or [None])[0]


def test_sigterm_then_restart_every_tab_says_the_job_was_lost(_browser, runs_dir, tmp_path, idle):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "streamlit.log"
    proc = start_app(port, runs_dir, log)
    context = _browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(90_000)
        page.goto(url + "/training")
        idle(page)
        epochs = page.get_by_label("Epochs")
        epochs.fill("40")
        epochs.press("Enter")
        idle(page)
        page.get_by_role("button", name="Start training").click()
        idle(page)
        page.get_by_text(re.compile(r"Epoch 1/40 · batch \d+/\d+")).first.wait_for(timeout=120_000)
        job_id = job_in_url(page)
        assert job_id and len(job_id) == 32
        second = context.new_page()     # a second tab of the same browser (same identity cookie)
        second.set_default_timeout(90_000)
        second.goto(f"{url}/data?job={job_id}")
        idle(second)
        entry = runs_dir / ".jobs" / f"{job_id}.json"
        assert entry.exists()

        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        time.sleep(0.5)
        assert entry.exists(), f"the journal of the running job went with the server:\n{log.read_text()[-3000:]}"

        kept = entry.read_text()
        assert '"end"' not in kept, kept    # no end recorded: the server stopped, the job did not end
        proc = start_app(port, runs_dir, log)
        for tab in (page, second):      # each tab reconnects by itself and reruns its page with its URL
            try:
                tab.get_by_text(re.compile("This job was lost: the server restarted while it was training")) \
                    .first.wait_for(timeout=120_000)
            except Exception:
                main = tab.locator("[data-testid='stApp']").inner_text()
                raise AssertionError(f"{tab.url}\n{main[:1500]}") from None
    finally:
        context.close()
        stop_app(proc)
