"""Real browser: WCAG 2.1 AA, tested with axe-core on every page and view at a projector's and a phone's size.

One server in class mode with two shared runs (so Evaluation and Draw have a model to show), one browser;
the lecturer unlocks the Class page at the end. Each page and each of its views (the Evaluation page's tabs,
the Draw page's "look inside" views on a test digit, the Data page's preprocessing view) is checked at 1280×720,
then the viewport shrinks to 390×844 and it is checked again. axe-core (axe.min.js as bundled by the PyPI package
axe-playwright-python, injected into every frame, components' iframes included) runs the WCAG 2.0/2.1 A and AA
rules; the test fails on any violation of impact "serious" or "critical", listing each rule, where and why.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

KEY = "lecturer key for the axe test"
FIRST_LOAD_MS = 180_000
SIZES = ((1280, 720), (390, 844))
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")

# (name, path, clicks before the check): a click is (role, name); each page's later views follow its first.
VIEWS = [
    ("home", "", []),
    ("data", "data", []),
    ("data · preprocessing", None, [("option", "Preprocessing for a CNN")]),
    ("architecture", "architecture", []),
    ("training", "training", []),
    ("evaluation · report", "evaluation", []),
    *[(f"evaluation · {tab.lower()}", None, [("tab", tab)])
      for tab in ("Confusion matrix", "Mistakes & samples", "Training curves", "Compare runs", "Other data",
                  "Downloads")],
    ("draw", "draw", []),
    ("draw · why this answer", None, [("option", "A test digit")]),
    *[(f"draw · {view.lower()}", None, [("button", view)])
      for view in ("How it was prepared", "The convolution", "Feature maps")],
    ("collect", "collect", []),
]

RUN_AXE = """async tags => {
  const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html.slice(0, 160),
                              why: (n.failureSummary || '').replace(/\\s+/g, ' ').slice(0, 220)}))}));
}"""


def axe_script() -> str:
    return (resources.files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")


@pytest.fixture
def class_server(runs_dir, monkeypatch, seeded_runs):
    """Class mode with a lecturer key; the seeded runs shared with the class (a student sees them)."""
    from cnnkit import runs

    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    monkeypatch.setenv("CNNKIT_LECTURER_KEY", KEY)
    for run in seeded_runs:
        runs.share_run(run, shared_by="the lecturer")


def check(page, idle, where: str, found: dict, counts: dict, shots: Path) -> None:
    """axe at each size; the page is left at the first size."""
    for w, h in SIZES:
        page.set_viewport_size({"width": w, "height": h})
        idle(page)
        page.wait_for_timeout(300)   # plotly lays out after the script has finished
        assert page.get_by_test_id("stException").count() == 0, f"{where} raised"
        blocking = [v for v in page.evaluate(RUN_AXE, TAGS) if v["impact"] in BLOCKING]
        counts[f"{where} @ {w}×{h}"] = sum(len(v["nodes"]) for v in blocking)
        for v in blocking:
            found.setdefault(f"{v['id']} ({v['impact']}): {v['help']}", []).extend(
                f"{where} @ {w}×{h}: …{n['target'][-70:]} — {n['html']} — {n['why']}" for n in v["nodes"])
        page.screenshot(path=str(shots / f"{where.replace(' · ', '-').replace(' ', '_')}-{w}x{h}.png"))
    page.set_viewport_size({"width": SIZES[0][0], "height": SIZES[0][1]})


def test_every_page_and_view_has_no_serious_or_critical_axe_violation(class_server, app_server, _browser, idle,
                                                                       tmp_path):
    shots = Path(os.environ.get("CNNKIT_SHOTS_DIR") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    context = _browser.new_context(viewport={"width": SIZES[0][0], "height": SIZES[0][1]}, device_scale_factor=1)
    context.add_init_script(script=axe_script())   # every document and frame, Streamlit's components included
    page = context.new_page()
    page.set_default_timeout(60_000)
    found: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for where, path, clicks in VIEWS:
        if path is not None:
            page.goto(f"{app_server}/{path}")
            idle(page, FIRST_LOAD_MS)
            page.get_by_test_id("stMain").wait_for()
        for role, name in clicks:
            main = page.get_by_test_id("stMain")
            # a segmented control's option is a button whose role Streamlit does not say: found by its text
            target = (main.get_by_role(role, name=name, exact=True) if role == "tab"
                      else main.get_by_text(name, exact=True))
            target.first.click()
            idle(page)
        check(page, idle, where, found, counts, shots)

    page.goto(f"{app_server}/class")   # the lecturer's page, unlocked
    idle(page, FIRST_LOAD_MS)
    page.get_by_label("Lecturer key").fill(KEY)
    page.get_by_role("button", name="Unlock").click()
    idle(page)
    page.get_by_test_id("stMain").get_by_text("Presentation mode").wait_for()
    check(page, idle, "class (lecturer)", found, counts, shots)
    context.close()

    (shots / "axe-counts.json").write_text(json.dumps(counts, indent=1))
    (shots / "axe-found.json").write_text(json.dumps(found, indent=1, ensure_ascii=False))
    print("axe serious/critical nodes per view:", json.dumps(counts, indent=1))
    report = "\n".join(f"{rule}\n  " + "\n  ".join(nodes[:12]) + (f"\n  … {len(nodes) - 12} more" if len(nodes) > 12
                                                                   else "")
                       for rule, nodes in found.items())
    assert not found, f"axe: serious or critical WCAG 2.1 A/AA violations (screenshots in {shots}):\n{report}"
