"""Real browser: every page on a 1280×720 projector and a 390×844 phone — nothing cut off, text large enough.

For each page and viewport the test takes a full-page screenshot (under pytest's tmp dir, and
under $CNNKIT_SHOTS_DIR when set) and fails when
- an element's text is clipped: a label, a table cell, a button, a tab, a metric or a chosen item of a
  multiselect whose content is wider than its box while its overflow is hidden (scrollWidth >
  clientWidth), or a data grid that needs a horizontal scroll to show all its columns;
- text in the page's HTML or in a chart (plotly SVG) is smaller than 14 px;
- the page is wider than the viewport (a sideways scroll on a phone);
- on the phone, the confusion matrix does not show the count of every cell that is not zero inside its cell;
- on the phone, after a digit is drawn, the draw page's prediction is not on the first screen (the
  student would have to scroll between drawing and reading the answer).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from strokes import replay

pytestmark = pytest.mark.browser
FIRST_LOAD_MS = 180_000  # a page's first run on a cold server (TensorFlow import, dataset load) on a busy machine

VIEWPORTS = {"projector": (1280, 720), "phone": (390, 844)}
MIN_TEXT_PX = 14
MIN_CHART_TEXT_PX = 14
CANVAS = "[data-testid='stBidiComponentIsolated'] canvas.upper-canvas"

# What the page's own script returns: one line per problem.
CHECK_JS = r"""
([minText, minChart]) => {
  const problems = [];
  const visible = el => {
    const r = el.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) return false;
    for (let e = el; e; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.display === 'none' || s.visibility === 'hidden') return false;
    }
    return true;
  };
  const name = el => {
    const t = (el.innerText || el.textContent || '').trim().replace(/\s+/g, ' ');
    const id = el.closest('[data-testid]');
    return `${id ? id.dataset.testid : el.tagName}: "${t.slice(0, 60)}"`;
  };
  const main = document.querySelector("[data-testid='stMain']") || document.body;
  const sel = ["label", "[data-testid='stWidgetLabel']", "th", "td", "button", "[role='tab']",
               "[data-testid='stMetricValue']", "[data-testid='stMetricLabel']", "[data-testid='stPageLink'] a",
               "[data-testid='stMultiSelect'] [data-tag]",
               "[data-testid='stMarkdownContainer'] p"].join(",");
  for (const el of main.querySelectorAll(sel)) {
    if (!visible(el) || !(el.innerText || '').trim()) continue;
    for (const node of [el, ...el.querySelectorAll('*')]) {
      if (node.clientWidth <= 2) continue;  // nothing, or a screen-reader-only text
      const s = getComputedStyle(node);
      const hides = s.overflowX !== 'visible' || s.textOverflow === 'ellipsis';
      if (hides && node.scrollWidth > node.clientWidth + 1 && !node.matches("[data-testid='stDataFrame'] *")) {
        problems.push(`clipped ${name(el)} (${node.scrollWidth} > ${node.clientWidth} px)`);
        break;
      }
    }
  }
  for (const grid of main.querySelectorAll("[data-testid='stDataFrame']")) {
    if (!visible(grid)) continue;
    const sc = grid.querySelector('.dvn-scroller');
    if (sc && sc.scrollWidth > sc.clientWidth + 2) {
      problems.push(`data grid needs a sideways scroll (${sc.scrollWidth} > ${sc.clientWidth} px): ` +
                    `${(grid.closest('[data-testid=stElementContainer]') || grid).getAttribute('class') || ''}`);
    }
  }
  const walker = document.createTreeWalker(main, NodeFilter.SHOW_TEXT);
  const small = new Map();
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!node.textContent.trim() || !el || !visible(el)) continue;
    if (el.closest('svg') ? false : el.closest("[data-testid='stCode'], code, .stTooltipIcon")) continue;
    const px = parseFloat(getComputedStyle(el).fontSize);
    const limit = el.closest('svg') ? minChart : minText;
    if (px < limit - 0.01) {
      const id = el.closest('[data-testid]'), key = `${px}px in ${id ? id.dataset.testid : el.tagName}`;
      if (!small.has(key)) small.set(key, []);
      small.get(key).push(node.textContent.trim().slice(0, 30));
    }
  }
  for (const [key, texts] of small) {
    problems.push(`small text ${key} (${texts.length}×): "${texts.slice(0, 4).join('", "')}"`);
  }
  const wide = main.scrollWidth;
  if (wide > window.innerWidth + 1) problems.push(`page wider than the screen: ${wide} > ${window.innerWidth} px`);
  return problems;
}
"""


# Each page, and what to open on it beyond its first screen (more of what a lecture shows).
PAGES = [
    ("home", "", []),
    ("data", "data", []),
    ("data-preprocessing", "data", [("text", "Preprocessing for a CNN")]),
    ("architecture", "architecture", []),
    ("training", "training", []),
    ("evaluation", "evaluation", []),
    ("evaluation-matrix", "evaluation", [("tab", "Confusion matrix")]),
    ("evaluation-compare", "evaluation", [("tab", "Compare runs")]),
    ("draw", "draw", [("stroke", "a 7")]),
]

# Where the draw page's answer is, on screen: (top, bottom) of the Prediction metric, or None.
PREDICTION_JS = """() => {
  const m = [...document.querySelectorAll("[data-testid='stMetric']")].find(e => e.innerText.includes('Prediction'));
  if (!m) return null;
  const r = m.getBoundingClientRect();
  return [r.top, r.bottom];
}"""


# The phone's confusion matrix: the numbers its cells show, the widest one and a cell's width.
PHONE_MATRIX_JS = """() => {
  const box = document.querySelector('.st-key-ev_matrix_phone');
  if (!box || getComputedStyle(box).display === 'none') return null;
  const labels = [...box.querySelectorAll('.heatmap-label')].filter(t => t.textContent.trim());
  const plot = box.querySelector('.nsewdrag'), k = box.querySelectorAll('.xtick').length;
  return {numbers: labels.map(t => t.textContent.trim()), widest: Math.max(0, ...labels.map(t => t.getBBox().width)),
          cell: plot ? plot.getBoundingClientRect().width / k : 0,
          mistakes: [...document.querySelectorAll("[data-testid='stMetric']")].map(m => m.innerText)
                      .find(t => t.includes('Mistakes')) || ''};
}"""


def phone_matrix_problems(page) -> list[str]:
    """On a phone the confusion matrix shows the count of every cell that is not zero, each inside its cell: the
    numbers shown add up to the test images counted ("Mistakes: 842 of 1,000")."""
    m = page.evaluate(PHONE_MATRIX_JS)
    if m is None:
        return ["the phone's confusion matrix is not shown"]
    total = int(m["mistakes"].split(" of ")[-1].replace(",", "").strip() or -1)
    shown = sum(int(n) for n in m["numbers"] if n.isdigit())
    problems = [] if shown == total else [f"the matrix's cells show counts adding up to {shown}, not {total}"]
    if not m["cell"] or m["widest"] > m["cell"]:
        problems.append(f"a count is wider ({m['widest']:.0f} px) than its cell ({m['cell']:.0f} px)")
    return problems


def draw_a_seven(page, idle) -> None:
    canvas = page.locator(CANVAS)
    canvas.wait_for(state="visible")
    box = canvas.bounding_box()
    replay(page, box, [(56, 56), (168, 56)])
    page.wait_for_timeout(300)
    replay(page, box, [(168, 56), (98, 210)])
    page.locator("[data-testid='stMetric']").filter(has_text="Prediction").wait_for(state="visible")
    idle(page)


def test_every_page_fits_a_projector_and_a_phone(seeded_runs, app_server, _browser, idle, runs_dir, tmp_path):
    shots = tmp_path / "shots"
    shots.mkdir()
    problems: dict[str, list[str]] = {}
    for view, (w, h) in VIEWPORTS.items():
        phone = view == "phone"
        context = _browser.new_context(viewport={"width": w, "height": h}, is_mobile=phone, has_touch=phone,
                                       device_scale_factor=1)
        page = context.new_page()
        page.set_default_timeout(60_000)
        for name, path, clicks in PAGES:
            page.goto(f"{app_server}/{path}")
            idle(page, timeout=FIRST_LOAD_MS)
            page.get_by_test_id("stMain").wait_for()
            for kind, label in clicks:
                if kind == "stroke":
                    draw_a_seven(page, idle)
                    continue
                target = page.get_by_role(kind, name=label) if kind != "text" else page.get_by_text(label, exact=True)
                target.first.click()
                idle(page)
            page.wait_for_timeout(400)  # plotly lays out after the script has finished
            assert page.get_by_test_id("stException").count() == 0, f"{name} ({view}) raised"
            found = page.evaluate(CHECK_JS, [MIN_TEXT_PX, MIN_CHART_TEXT_PX])
            if name == "evaluation-matrix" and phone:
                found += phone_matrix_problems(page)
            if name == "draw":
                page.evaluate("document.querySelector(\"[data-testid='stMain']\").scrollTo(0, 0)")
                where = page.evaluate(PREDICTION_JS)
                if where is None or where[1] > h:
                    found.append(f"the prediction is not on the first screen under the canvas: {where} of {h} px")
            if found:
                problems[f"{name} @ {view} {w}×{h}"] = found
            page.screenshot(path=str(shots / f"{name}-{view}.png"))  # the first screen, as the room sees it
            # Streamlit scrolls inside its main element: grow the window to take the whole page.
            tall = page.evaluate("document.querySelector(\"[data-testid='stMain']\").scrollHeight")
            page.set_viewport_size({"width": w, "height": min(int(tall), 12_000)})
            page.wait_for_timeout(300)
            page.screenshot(path=str(shots / f"{name}-{view}-full.png"))
            page.set_viewport_size({"width": w, "height": h})
        context.close()
    if os.environ.get("CNNKIT_SHOTS_DIR"):
        out = Path(os.environ["CNNKIT_SHOTS_DIR"])
        out.mkdir(parents=True, exist_ok=True)
        for png in shots.iterdir():
            shutil.copy(png, out / png.name)
    (tmp_path / "layout-problems.txt").write_text("\n".join(f"{k}\n  " + "\n  ".join(v) for k, v in problems.items()))
    report = "\n".join(f"{where}:\n  " + "\n  ".join(found) for where, found in problems.items())
    assert not problems, f"layout problems (screenshots in {shots}):\n{report}"
