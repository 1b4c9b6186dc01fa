"""The draw page in a real browser: pen strokes drawn with the mouse on the canvas (inside the
component's shadow root) reach the model — every one of them, idle and under load — and Clear
empties the canvas at once.

The 40-digit test draws the project's own handwriting (tests/strokes.py: every digit in two or three
strokes, large and small, against every edge, starting in the canvas's top band, half of them right
after Clear) at a human pace, reads back the 28×28 image the page shows as what the model sees and
compares it with the same strokes rendered to PNG and prepared by cnnkit: it must match the whole
drawing better than the drawing with any one stroke left out. Then `cnnkit predict` reads the PNGs.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, wait_idle
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from scipy import ndimage
from strokes import handwriting, render, replay
from test_page_draw import make_run

from cnnkit import datasets, drawing, presets, training
from cnnkit.errors import DrawingError

pytestmark = pytest.mark.browser

CANVAS = "[data-testid='stBidiComponentIsolated'] canvas.upper-canvas"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
# The src of the image captioned "What the model sees" (null while there is none).
SHOWN_JS = """() => {
  const box = [...document.querySelectorAll('[data-testid="stImage"]')]
      .find(e => e.innerText.includes('What the model sees'));
  return box ? box.querySelector('img').src : null;
}"""
PEN = 20  # the page's default pen


def open_draw_page(page, url):
    page.goto(url)
    wait_idle(page, timeout=180_000)  # a first page run imports TensorFlow: slow on a busy machine
    page.get_by_role("link", name="5 · Draw & predict").first.click()
    wait_idle(page, timeout=180_000)
    canvas = page.locator(CANVAS)
    canvas.wait_for(state="visible")
    return canvas


# The src of the shown image when its caption is `caption` and it is not `stale` (null otherwise).
ANSWER_JS = """([caption, stale]) => {
  const box = [...document.querySelectorAll('[data-testid="stImage"]')]
      .find(e => e.innerText.trim() === caption);
  const src = box ? box.querySelector('img').src : null;
  return src && src !== stale ? src : null;
}"""


def answered(page, strokes: int, stale: str | None = None, timeout: float = 60_000) -> str | None:
    """The shown image once the page has answered a drawing of `strokes` strokes (its caption counts the
    canvas's strokes the answer was computed from) and the page is idle; None if that never comes.

    `stale` is the previous drawing's shown image: right after Clear it stays on the page until the
    Clear's own rerun replaces it, and a previous drawing with as many strokes has the same caption."""
    arg = [f"What the model sees · {strokes} stroke{'s' * (strokes != 1)}", stale]
    deadline = time.monotonic() + timeout / 1000
    while (left := deadline - time.monotonic()) > 0:
        try:
            page.wait_for_function(ANSWER_JS, arg=arg, polling=100, timeout=left * 1000)
            page.wait_for_selector(IDLE, timeout=max(1.0, deadline - time.monotonic()) * 1000)
        except PlaywrightTimeout:
            return None
        # Still there once the page is idle: the final answer (a rerun under way may have replaced it).
        if src := page.evaluate(ANSWER_JS, arg):
            return src
    return None


# The shown image's pixels at the centres of its 28×28 cells, read in the browser (it is a lossless
# PNG, enlarged by whole pixels: exactly the model's input, rounded to 1/255).
READ_JS = """async (src) => {
  const img = [...document.querySelectorAll('[data-testid="stImage"] img')].find(i => i.src === src);
  if (!img) return null;
  await img.decode();
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, c.width, c.height).data;
  const f = Math.floor(c.width / 28), out = [];
  for (let r = 0; r < 28; r++) for (let k = 0; k < 28; k++) {
    out.push(data[((r * f + (f >> 1)) * c.width + k * f + (f >> 1)) * 4]);
  }
  return out;
}"""


def shown_input(page, src: str) -> np.ndarray | None:
    """The 28×28 model input behind the shown image."""
    values = page.evaluate(READ_JS, src)
    return None if values is None else np.asarray(values, dtype=np.float32).reshape(28, 28) / 255.0


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity after a slight blur: a one-pixel shift between renderers costs little, a
    missing stroke a lot."""
    a, b = ndimage.gaussian_filter(a, 1.0).ravel(), ndimage.gaussian_filter(b, 1.0).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))


def prepared(strokes) -> np.ndarray:
    """What cnnkit makes of the strokes; zeros when they are no digit (one stroke of a 1 is a dot)."""
    try:
        return drawing.prepare_drawing(render(strokes, width=PEN)).x[..., 0]
    except DrawingError:
        return np.zeros((28, 28), np.float32)


def _hog() -> None:
    while True:
        pass


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """The fast preset trained 2 epochs on the offline sample (~15–30 s), once per test session."""
    preset = presets.get(presets.FAST)
    job = training.train(preset.spec, datasets.offline_sample(), preset.hyper.replace(epochs=2),
                         runs_root=tmp_path_factory.mktemp("digits_runs"), title="browser digits")
    assert job.run is not None, job.snapshot().message
    return job.run


def test_draw_a_digit_then_clear(app_server, runs_dir, browser_page, tmp_path):
    make_run(runs_dir, title="browser model")
    page = browser_page
    canvas = open_draw_page(page, app_server)
    assert page.get_by_text("Draw a digit on the canvas first").is_visible()
    assert page.locator("[data-testid='stMetric']").count() == 0
    # One Clear: the component's own toolbar (with its second, disagreeing reset) is hidden.
    assert page.locator("[data-testid='stBidiComponentIsolated'] .dc-toolbar").is_hidden()

    # A 7, a little small and off-centre: top bar, then the diagonal.
    box = canvas.bounding_box()
    replay(page, box, [(56, 56), (168, 56)])
    page.wait_for_timeout(300)
    replay(page, box, [(168, 56), (98, 210)])
    assert answered(page, 2) is not None
    metric = page.locator("[data-testid='stMetric']").filter(has_text="Prediction")
    metric.wait_for(state="visible")
    assert re.search(r"Prediction\s*\d", metric.inner_text())
    # Why this answer is open by default.
    assert page.get_by_text(re.compile("Grad-CAM on conv2d_1")).first.is_visible()
    page.screenshot(path=str(tmp_path / "draw.png"), full_page=True)

    # Undo takes the last stroke back; Clear empties the canvas at once, in the browser.
    before = page.evaluate(SHOWN_JS)
    page.get_by_role("button", name="Undo").click()
    page.wait_for_function(f"(before) => {{ const s = ({SHOWN_JS})(); return s && s !== before; }}", arg=before)
    page.get_by_role("button", name="Clear").click()
    page.get_by_text(re.compile("empty: draw a digit first")).wait_for(state="visible")
    wait_idle(page)
    assert page.locator("[data-testid='stMetric']").count() == 0
    assert page.evaluate(SHOWN_JS) is None


# Where cell (row, column) of the clickable feature map is on the page, and where its red frame is.
CELL_JS = """([row, col]) => {
  const gd = document.querySelector('.st-key-draw_conv_map .js-plotly-plot');
  if (!gd || !gd._fullLayout) return null;
  const L = gd._fullLayout, box = gd.getBoundingClientRect(), frame = (gd.layout.shapes || [])[0];
  return {x: box.left + L._size.l + L.xaxis.l2p(col), y: box.top + L._size.t + L.yaxis.l2p(row),
          frame: frame ? [(frame.y0 + frame.y1) / 2, (frame.x0 + frame.x1) / 2] : null};
}"""


def slider(page, label: str):
    return page.locator("[data-testid='stSlider']").filter(has_text=label).locator("input[type='range']")


def test_clicking_the_feature_map_picks_the_position_worked_out(app_server, runs_dir, browser_page):
    make_run(runs_dir, title="browser model")  # its first layer: 4 filters 3×3, valid → 26×26 maps
    page = browser_page
    canvas = open_draw_page(page, app_server)
    box = canvas.bounding_box()
    replay(page, box, [(56, 56), (168, 56)])
    page.wait_for_timeout(300)
    replay(page, box, [(168, 56), (98, 210)])
    assert answered(page, 2) is not None
    page.get_by_text("The convolution", exact=True).click()
    page.locator(".st-key-draw_conv_map").scroll_into_view_if_needed()  # plotly draws it once it is in view
    page.wait_for_function(f"({CELL_JS})([0, 0]) !== null")
    wait_idle(page)

    for row, col in [(5, 20), (24, 1)]:
        cell = page.evaluate(CELL_JS, [row, col])
        page.mouse.click(cell["x"], cell["y"])
        page.wait_for_function(f"({CELL_JS})([{row}, {col}])?.frame?.join() === '{row},{col}'")
        wait_idle(page)
        # The sliders follow the click, and the arithmetic is worked out for that cell.
        assert (int(slider(page, "Row").input_value()), int(slider(page, "Column").input_value())) == (row, col)
        done = page.get_by_text(re.compile(r"feature map holds at")).first.inner_text()
        assert f"at ({row}, {col})" in done
        shown, computed = re.search(r"= (-?[\d.]+), .*computed (-?[\d.]+)\)", done).groups()
        assert shown == computed

    # And the other way: a slider moves the frame on the map.
    slider(page, "Column").press("ArrowRight")
    page.wait_for_function(f"({CELL_JS})([24, 2])?.frame?.join() === '24,2'")
    wait_idle(page)
    assert "at (24, 2)" in page.get_by_text(re.compile(r"feature map holds at")).first.inner_text()


@pytest.mark.parametrize("load", ["idle", "two CPU hogs"])
def test_forty_handwritten_digits_every_stroke_reaches_the_model(load, digits_run, app_server, runs_dir,
                                                                 browser_page, tmp_path):
    shutil.copytree(digits_run.path, runs_dir / digits_run.path.name)
    page = browser_page
    canvas = open_draw_page(page, app_server)
    box = canvas.bounding_box()
    plan = handwriting(40, pen=PEN)
    assert sum(h.starts_in_top_band() for h in plan) >= 8 and sum(h.right_after_clear for h in plan) == 20
    hogs = [multiprocessing.Process(target=_hog, daemon=True) for _ in range(2 if load != "idle" else 0)]
    for p in hogs:
        p.start()
    rows, waits = [], []
    started = time.time()
    try:
        for i, h in enumerate(plan):
            stale = None
            if i:
                stale = page.evaluate(SHOWN_JS)  # the previous answer, until the Clear's rerun replaces it
                page.get_by_role("button", name="Clear").click()
                if h.right_after_clear:
                    page.wait_for_timeout(50)  # no waiting for the page: draw at once
                else:
                    page.wait_for_function(f"({SHOWN_JS})() === null", polling="raf")
                    stale = None
            for j, line in enumerate(h.strokes):
                if j:
                    page.wait_for_timeout(300)  # a hand lifts the pen and moves on
                replay(page, box, line)
            pen_up = time.monotonic()
            src = answered(page, len(h.strokes), stale)
            waits.append(time.monotonic() - pen_up)
            seen = None if src is None else shown_input(page, src)
            assert seen is not None, (f"digit {i} ({h.digit}, {h.place}): the page never answered "
                                      f"its {len(h.strokes)} strokes")
            label = re.search(r"Prediction\s*(\S+)", page.locator("[data-testid='stMetric']")
                              .filter(has_text="Prediction").inner_text()).group(1)
            whole = similarity(seen, prepared(h.strokes))
            missing_one = max(similarity(seen, prepared(h.strokes[:k] + h.strokes[k + 1 :]))
                              for k in range(len(h.strokes)))
            png = tmp_path / f"digit{i:02d}_{h.digit}.png"
            Image.fromarray(render(h.strokes, width=PEN)).save(png)
            rows.append({"i": i, "digit": h.digit, "place": h.place, "after_clear": h.right_after_clear,
                         "top_band": h.starts_in_top_band(), "strokes": len(h.strokes), "page": label,
                         "whole": round(whole, 3), "best_missing_one": round(missing_one, 3), "png": str(png)})
    finally:
        for p in hogs:
            p.terminate()
    drawing_seconds = time.time() - started

    # The same strokes rendered to PNG, read by the command line.
    out = subprocess.run([sys.executable, "-m", "cnnkit", "predict", "--run", str(digits_run.path), "--json",
                          *[r["png"] for r in rows]], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr
    for r, answer in zip(rows, json.loads(out.stdout), strict=True):
        r["cli"] = answer["label"]
    right_page = sum(r["page"] == r["digit"] for r in rows)
    right_cli = sum(r["cli"] == r["digit"] for r in rows)
    agree = sum(r["page"] == r["cli"] for r in rows)
    lost = [r for r in rows if not (r["whole"] >= 0.9 and r["whole"] > r["best_missing_one"])]
    summary = (f"[{load}] {len(rows)} digits, {sum(r['strokes'] for r in rows)} strokes in {drawing_seconds:.0f} s: "
               f"strokes lost in {len(lost)}; the page read {right_page}/40 right, cnnkit predict on the PNGs "
               f"{right_cli}/40; they agree on {agree}/40; similarity to the whole drawing min "
               f"{min(r['whole'] for r in rows):.3f}, margin over any stroke left out min "
               f"{min(r['whole'] - r['best_missing_one'] for r in rows):.3f}; last pen-up to answer median "
               f"{np.median(waits):.1f} s, max {max(waits):.1f} s")
    print(summary)
    (tmp_path / "digits.json").write_text(json.dumps(rows, indent=1))
    assert not lost, f"{summary}\nlost: {lost}"
    assert agree == 40, f"{summary}\n" + "\n".join(str(r) for r in rows if r["page"] != r["cli"])
