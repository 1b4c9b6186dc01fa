"""Real browser, class mode: the lecture as one experience.

- A new student's Draw one-click training under a 2,000-image cap trains 2,000 images (read from the saved
  run), and a second tab of the same browser — its address without `?job=` — sees the student's job and
  stops it.
- The lecturer's Class page, idle, shows a student's new job within 3 s of the Start.
- Presentation mode at 1280×720: no clipped text, the chart's points labelled with the students' names, the
  chart and the leaderboard on the first screen (screenshots at 1280×720 and 390×844 under
  $CNNKIT_SHOTS_DIR when set).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from test_browser_identity import cookie
from test_browser_layout import CHECK_JS

pytestmark = pytest.mark.browser

KEY = "lecturer key for the lecture test"
FIRST_LOAD_MS = 180_000


@pytest.fixture
def lecture_env(runs_dir, monkeypatch):
    """Class mode, a lecturer key and a 2,000-image cap for the server app_server starts."""
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    monkeypatch.setenv("CNNKIT_LECTURER_KEY", KEY)
    monkeypatch.setenv("CNNKIT_CLASS_MAX_TRAIN_IMAGES", "2000")
    for name in ("CNNKIT_CLASS_MAX_EPOCHS", "CNNKIT_CLASS_ONE_JOB", "CNNKIT_JOB_SECONDS"):
        monkeypatch.delenv(name, raising=False)


def open_page(context, url: str, idle, size=(1280, 720)):
    page = context.new_page()
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.set_default_timeout(60_000)
    page.goto(url)
    idle(page, FIRST_LOAD_MS)
    return page


def saved_runs(runs_dir: Path) -> list:
    from cnnkit import runs

    return [runs.load_run(p) for p in runs_dir.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / "run.json").is_file()]


def test_draw_one_click_obeys_the_image_cap_and_a_second_tab_stops_the_job(lecture_env, app_server, _browser,
                                                                             idle, runs_dir):
    ctx = _browser.new_context(viewport={"width": 1280, "height": 720})
    first = open_page(ctx, f"{app_server}/draw", idle)
    first.get_by_text(re.compile(r"\d+ epochs over 1,800 images")).wait_for()   # the offer says the cap
    first.get_by_role("button", name=re.compile("Train the lecture preset")).click()
    first.get_by_text("is training on").wait_for(timeout=FIRST_LOAD_MS)
    me = cookie(first)
    # A second tab of the same browser, its address bare: it finds the job, with Stop, on the Training page.
    second = open_page(ctx, f"{app_server}/training", idle)
    second.get_by_text("Your job", exact=True).wait_for()
    assert "job=" in second.url                      # the bare address found the cookie's job
    if second.get_by_role("button", name="Stop", exact=True).count() == 0:
        # A quick machine may have finished the small job already: the tab then shows its result.
        # The metric's label (the finished sentence also says "Test accuracy": exact, one element).
        second.get_by_text("Test accuracy", exact=True).wait_for(timeout=FIRST_LOAD_MS)
    else:
        assert second.get_by_role("button", name="Stop my job and start one with these settings").count() == 1
    # The one-click run, when saved, trained on the capped 2,000 images (1,800 fitted, 200 validating).
    deadline = time.time() + 600
    while not saved_runs(runs_dir) and time.time() < deadline:
        time.sleep(1)
    [run] = saved_runs(runs_dir)
    assert run.owner == me and run.hyper.train_images == 2000 and run.metrics["num_train"] == 1800

    # A long job from the first tab; the second tab (reloaded bare) sees it and stops it.
    first.goto(f"{app_server}/training")
    idle(first)
    epochs = first.get_by_label("Epochs")
    epochs.fill("60")
    epochs.press("Enter")
    idle(first)
    first.get_by_role("button", name="Start training").click()
    idle(first)
    second.goto(f"{app_server}/training")
    idle(second)
    second.get_by_text(re.compile(r"Epoch \d+/60|Waiting|number \d+ in line")).first.wait_for(timeout=FIRST_LOAD_MS)
    second.get_by_role("button", name="Stop", exact=True).click()
    second.get_by_text(re.compile(r"Stopped")).first.wait_for(timeout=300_000)
    first.reload()
    idle(first)
    first.get_by_text(re.compile(r"Stopped")).first.wait_for()        # the first tab says the same
    ctx.close()


METRICS_JS = """() => Object.fromEntries([...document.querySelectorAll("[data-testid='stMetric']")].map(m =>
    [m.querySelector("[data-testid='stMetricLabel']").innerText.trim(),
     m.querySelector("[data-testid='stMetricValue']").innerText.trim()]))"""


def unlock(page, idle) -> None:
    page.get_by_label("Lecturer key").fill(KEY)
    page.get_by_role("button", name="Unlock").click()
    idle(page)


def test_class_page_shows_a_new_job_within_3_seconds(lecture_env, app_server, _browser, idle):
    lecturer = open_page(_browser.new_context(viewport={"width": 1280, "height": 720}), f"{app_server}/class", idle)
    unlock(lecturer, idle)
    lecturer.get_by_text("No job is training or waiting right now.").wait_for()
    student = open_page(_browser.new_context(viewport={"width": 1280, "height": 720}),
                        f"{app_server}/training", idle)
    lecturer.wait_for_timeout(2500)          # the Class page is idle: polling at its slow pace
    started = time.monotonic()
    student.get_by_role("button", name="Start training").click()
    student.get_by_text("Your job", exact=True).wait_for(timeout=120_000)
    submitted = time.monotonic()             # the student's own page shows the job: it is in the registry
    lecturer.wait_for_function(f"""() => {{
        const m = ({METRICS_JS})();
        return m["Students"] === "1" && (m["Training now"] === "1" || m["Waiting"] === "1");
    }}""", timeout=30_000, polling=100)
    seen = time.monotonic()
    load = open("/proc/loadavg").read().split()[0]
    print(f"the Class page showed the new job {seen - started:.2f} s after the Start click and "
          f"{seen - submitted:.2f} s after the student's own page showed it (load average {load})")
    # The Class page's own delay: at most one idle poll (2 s) and its rerun. (From the click, the student's own
    # rerun comes first: on an idle server a fraction of a second, on a machine far over its cores seconds.)
    assert seen - submitted < 3.0
    counts = lecturer.evaluate(METRICS_JS)
    assert counts["Students"] == "1" and counts["Runs"] == "0"   # the counts agree with the job listed
    student.context.close()
    lecturer.context.close()


def _seed_class(runs_dir: Path) -> list[str]:
    from cnnkit import classroom, identity, presets, runs

    class Fake:
        def save(self, path):
            Path(path).write_bytes(b"not a real model")

    names = ["Ada Lovelace-Byron", "Grace H.", "", "", "Alan T.", "", "Katherine Johnson", ""]
    labels = []
    for i, name in enumerate(names):
        owner = identity.new_owner_id()
        if name:
            classroom.book().set_nickname(owner, name)
        preset = ("fast_cpu", "single_conv", "keras_convnet")[i % 3]
        run = runs.save_run(Fake(), presets.get(preset).spec, {"epochs": 3}, {"loss": [1.0, 0.5, 0.3]},
                            {"test_accuracy": 0.99 - 0.004 * i, "epochs_run": 3}, "mnist", owner=owner,
                            title=preset)
        if i == 0:
            runs.share_run(run, shared_by=name)
        labels.append(classroom.book().label(owner))
    return labels


def test_presentation_mode_fits_a_projector_with_labelled_points(lecture_env, runs_dir, app_server, _browser, idle):
    labels = _seed_class(runs_dir)
    page = open_page(_browser.new_context(viewport={"width": 1280, "height": 720}), f"{app_server}/class", idle)
    unlock(page, idle)
    page.get_by_text("Presentation mode").click()
    idle(page)
    page.locator("[data-testid='stPlotlyChart'] g.textpoint text").first.wait_for()
    point_labels = page.locator("[data-testid='stPlotlyChart'] g.textpoint text").all_text_contents()
    from cnnkit import classroom

    # one point per run (the shared copy is no second one), each named: nickname or "student N", shortened
    assert sorted(point_labels) == sorted(classroom.short_label(lab) for lab in labels)
    assert "Ada Lovelace-…" in point_labels and "Grace H." in point_labels
    ticks = page.locator("[data-testid='stPlotlyChart'] g.ytick text").all_text_contents()
    assert len(ticks) == len(set(ticks)) >= 3, ticks
    problems = page.evaluate(CHECK_JS, [14, 14])
    assert problems == [], problems
    if os.environ.get("CNNKIT_SHOTS_DIR"):
        out = Path(os.environ["CNNKIT_SHOTS_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out / "class-presentation-1280x720.png"))
    # The first screen is what a lecturer projects: the chart and the leaderboard, whole.
    chart = page.get_by_test_id("stPlotlyChart").bounding_box()
    board = page.get_by_test_id("stTable").bounding_box()
    assert chart["y"] + chart["height"] <= 720 and board["y"] < 720 and board["x"] > chart["x"]
    assert page.evaluate("""() => [...document.querySelectorAll("[data-testid='stTable']")].every(
        t => t.scrollWidth <= t.clientWidth + 1)"""), "the leaderboard needs a sideways scroll"
    assert page.get_by_test_id("stTable").get_by_text("Ada Lovelace-Byron").count() == 1   # shared: one row
    if os.environ.get("CNNKIT_SHOTS_DIR"):
        page.set_viewport_size({"width": 390, "height": 844})
        idle(page)
        page.screenshot(path=str(out / "class-presentation-390x844.png"), full_page=True)
    page.context.close()
