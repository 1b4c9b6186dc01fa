"""Real browser: nothing a student set is lost — not by visiting other pages, not by a reload, not by an upload.

One test per promise of the app (settings across pages, model and settings across a reload,
an uploaded dataset across a reload and back from it to MNIST, the evaluation tab staying put); each drives
Debian's Chromium against `streamlit run app.py` the way a student does.
"""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

pytestmark = pytest.mark.browser
FIRST_LOAD_MS = 180_000  # a page's first run on a cold server (TensorFlow import, dataset load) on a busy machine

PAGES = ["Home", "1 · Data", "2 · Architecture", "4 · Evaluation", "5 · Draw & predict"]


def go(page, idle, title: str) -> None:
    page.get_by_test_id("stSidebarNavLink").filter(has_text=title).first.click()
    idle(page)


def set_number(page, idle, label: str, value) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    idle(page)


def value_of(page, label: str) -> str:
    return page.get_by_label(label, exact=True).input_value()


def selected(page, label: str) -> str:
    """The shown value of a selectbox (a combobox named by its label)."""
    return page.get_by_role("combobox", name=label).first.input_value()


def pick(page, idle, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label).first.click()
    page.get_by_role("option", name=option).first.click()
    idle(page)


def set_training_settings(page, idle) -> dict[str, str]:
    settings = {"Learning rate": "0.0123", "Batch size": "48", "Epochs": "3", "Seed": "7"}
    for label, value in settings.items():
        set_number(page, idle, label, value)
    page.get_by_test_id("stRadio").filter(has_text="Learning-rate schedule").get_by_text("Constant").click()
    idle(page)
    return settings


def assert_training_settings(page, settings: dict[str, str]) -> None:
    for label, value in settings.items():
        assert float(value_of(page, label)) == float(value), label
    radio = page.get_by_test_id("stRadio").filter(has_text="Learning-rate schedule")
    assert radio.get_by_role("radio", name="Constant").is_checked()


def test_training_settings_survive_a_visit_to_every_other_page(app_server, browser_page, idle):
    page = browser_page
    page.goto(f"{app_server}/training")
    idle(page, timeout=FIRST_LOAD_MS)
    settings = set_training_settings(page, idle)
    for title in PAGES:
        go(page, idle, title)
        assert page.get_by_test_id("stException").count() == 0, title
    go(page, idle, "3 · Training")
    assert_training_settings(page, settings)
    assert page.get_by_text("must be greater than 0").count() == 0


def test_model_settings_and_dataset_survive_a_reload(app_server, browser_page, idle):
    page = browser_page
    page.goto(f"{app_server}/architecture")
    idle(page, timeout=FIRST_LOAD_MS)
    pick(page, idle, "Start from a lesson's model", "Lab A")
    page.get_by_role("button", name="Use this model").click()
    idle(page)
    page.get_by_text("542,230").first.wait_for()
    go(page, idle, "1 · Data")
    pick(page, idle, "Dataset", "Fashion-MNIST")
    page.get_by_text("60,000").first.wait_for()
    go(page, idle, "3 · Training")
    settings = set_training_settings(page, idle)

    page.reload()
    idle(page, timeout=FIRST_LOAD_MS)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("542,230 parameters").wait_for()
    assert sidebar.get_by_text("Fashion-MNIST").count() >= 1
    go(page, idle, "2 · Architecture")
    assert page.get_by_text("542,230").count() >= 1
    go(page, idle, "3 · Training")
    assert_training_settings(page, settings)


def _zip_of_two_classes() -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for cls in ("circles", "squares"):
            for i in range(12):
                img = Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8))
                png = io.BytesIO()
                img.save(png, format="PNG")
                zf.writestr(f"{cls}/{i:02d}.png", png.getvalue())
    return buf.getvalue()


def test_upload_a_zip_then_back_to_mnist_without_a_stale_error(app_server, browser_page, idle, tmp_path):
    page = browser_page
    page.goto(f"{app_server}/data")
    idle(page, timeout=FIRST_LOAD_MS)
    uploader = page.locator("[data-testid='stFileUploader'] input[type='file']").first
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK this is not a zip")
    uploader.set_input_files(str(bad))
    idle(page)
    page.get_by_text(re.compile("broken.zip.* not a readable .zip")).first.wait_for()

    good = tmp_path / "shapes.zip"
    good.write_bytes(_zip_of_two_classes())
    page.locator("[data-testid='stFileUploader'] input[type='file']").first.set_input_files(str(good))
    idle(page)
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value("Your file: shapes.zip", timeout=60_000)
    assert page.get_by_text("not a readable .zip").count() == 0  # the error went with the file that caused it
    assert selected(page, "Dataset") == "Your file: shapes.zip"
    assert page.get_by_test_id("stSidebar").get_by_text("shapes").count() >= 1
    assert page.get_by_test_id("stMetricValue").nth(3).inner_text() == "2"  # two classes

    # A reload keeps the upload (kept on the server for this browser) like the rest of the student's state.
    page.reload()
    idle(page, timeout=FIRST_LOAD_MS)
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value("Your file: shapes.zip", timeout=60_000)
    assert page.get_by_test_id("stMetricValue").nth(3).inner_text() == "2"
    assert page.get_by_test_id("stSidebar").get_by_text("shapes").count() >= 1

    pick(page, idle, "Dataset", "MNIST digits")
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("4,000", timeout=60_000)
    assert selected(page, "Dataset") == "MNIST digits"
    assert page.get_by_test_id("stMetricValue").first.inner_text() == "4,000"
    assert page.get_by_test_id("stSidebar").get_by_text("MNIST digits").count() >= 1
    assert page.get_by_test_id("stSidebar").get_by_text("shapes").count() == 0
    assert page.get_by_test_id("stAlertContentError").count() == 0

    # A dataset that cannot be had here: its sentence shows once, and is gone after picking another.
    pick(page, idle, "Dataset", "CIFAR-10")
    page.get_by_text("CIFAR-10 cannot be loaded here").first.wait_for()
    go(page, idle, "Home")
    assert page.get_by_text("cannot be loaded").count() == 0
    go(page, idle, "1 · Data")
    assert page.get_by_text("cannot be loaded").count() == 0
    pick(page, idle, "Dataset", "Fashion-MNIST")
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("60,000", timeout=60_000)
    assert page.get_by_text("cannot be loaded").count() == 0


def _open_tab(page) -> str:
    return page.get_by_role("tab", selected=True).inner_text().strip()


def test_confusion_matrix_tab_stays_after_switching_run_and_clicking_a_cell(seeded_runs, app_server, browser_page,
                                                                           idle):
    page = browser_page
    page.goto(f"{app_server}/evaluation")
    idle(page, timeout=FIRST_LOAD_MS)
    page.get_by_role("tab", name="Confusion matrix").click()
    idle(page)
    assert _open_tab(page) == "Confusion matrix"
    older = seeded_runs[1]
    page.get_by_role("combobox", name="Run").click()
    page.get_by_role("option").nth(1).click()
    idle(page)
    page.get_by_text(re.compile(r"test images of \*?\*?\d")).first.wait_for()
    assert _open_tab(page) == "Confusion matrix"
    assert "lr 0.003" in selected(page, "Run") and older.id  # the older run (lr 0.003) is shown now

    # a click on the cell "true 3, predicted 5" selects it, and the tab stays open
    plot = page.get_by_test_id("stPlotlyChart").filter(has_text="predicted class").first
    plot.scroll_into_view_if_needed()  # a mouse click lands only on what is on screen
    # the cell sits where the "5" of the predicted axis and the "3" of the true axis point
    xt = plot.locator(".xtick text").filter(has_text=re.compile("^5$")).first.bounding_box()
    yt = plot.locator(".ytick text").filter(has_text=re.compile("^3$")).first.bounding_box()
    x, y = xt["x"] + xt["width"] / 2, yt["y"] + yt["height"] / 2
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    page.mouse.click(x, y)
    idle(page)
    page.wait_for_function("() => document.querySelector(\"input[aria-label='True class']\")?.value === '3'",
                           timeout=20_000)
    assert (selected(page, "True class"), selected(page, "Predicted class")) == ("3", "5")
    assert _open_tab(page) == "Confusion matrix"
    cell_text = re.compile(r"test images of 3 predicted as 5|No test image of 3 was predicted as 5")
    page.get_by_text(cell_text).first.wait_for()

    # the tab and the cell survive a visit to another page
    go(page, idle, "Home")
    go(page, idle, "4 · Evaluation")
    assert _open_tab(page) == "Confusion matrix"
    assert (selected(page, "True class"), selected(page, "Predicted class")) == ("3", "5")
