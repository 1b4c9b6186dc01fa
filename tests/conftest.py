"""Shared test fixtures: datasets, a runs folder, a live app server and a real browser.

In CI (`CI` set) nothing may be skipped: a skipped test fails the run, so the
browser tests cannot silently fall away when Chromium is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CNNKIT_OFFLINE", "1")  # never wait on a download in tests
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cnnkit import datasets, settings  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {report.longrepr}"


class _MonkeyPatch(pytest.MonkeyPatch):
    """pytest's monkeypatch, forgetting the settings read so far whenever it changes the environment
    (cnnkit.settings reads each CNNKIT_* variable once per process)."""

    def setenv(self, *args, **kwargs):
        super().setenv(*args, **kwargs)
        settings.reset()

    def delenv(self, *args, **kwargs):
        super().delenv(*args, **kwargs)
        settings.reset()

    def undo(self):
        super().undo()
        settings.reset()


@pytest.fixture
def monkeypatch():
    mp = _MonkeyPatch()
    yield mp
    mp.undo()


# --- data ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def offline_ds() -> datasets.Dataset:
    """The 5,000 real MNIST digits of the offline sample (4,000 train / 1,000 test)."""
    return datasets.offline_sample()


@pytest.fixture
def tiny_ds():
    """Factory of small random Datasets: tiny_ds(shape=(28, 28, 1), classes=10, n_train=200, n_test=50)."""

    def make(shape=(28, 28, 1), classes=10, n_train=200, n_test=50, seed=0, name=None):
        rng = np.random.default_rng(seed)
        names = datasets.CIFAR10 if shape[-1] == 3 else datasets.DIGITS
        return datasets.Dataset(
            name=name or ("cifar10" if shape[-1] == 3 else "mnist"), title="tiny test data",
            x_train=rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
            y_train=np.arange(n_train) % classes,
            x_test=rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
            y_test=np.arange(n_test) % classes,
            class_names=tuple(names[:classes]) if classes <= 10 else tuple(str(i) for i in range(classes)),
            source="file", source_text="random test data")

    return make


@pytest.fixture
def runs_dir(tmp_path, monkeypatch) -> Path:
    """An empty runs folder, set as CNNKIT_RUNS_DIR for the test (and any server it starts)."""
    d = tmp_path / "runs"
    d.mkdir()
    monkeypatch.setenv("CNNKIT_RUNS_DIR", str(d))
    monkeypatch.delenv("CNNKIT_SHARED_RUNS_DIR", raising=False)
    monkeypatch.delenv("CNNKIT_CLASS_MODE", raising=False)
    return d


# --- a live app and a real browser -------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int, runs_dir: Path, log_path: Path, timeout: float = 90) -> subprocess.Popen:
    """`streamlit run app.py` on loopback `port` over `runs_dir`, once it answers its health check."""
    env = dict(os.environ, CNNKIT_RUNS_DIR=str(runs_dir), CNNKIT_OFFLINE="1")
    log = open(log_path, "a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited: {log_path.read_text()}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"streamlit did not start within {timeout:.0f} s")


def stop_app(proc: subprocess.Popen, seconds: float = 10) -> None:
    proc.terminate()
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def app_server(runs_dir, tmp_path):
    """`streamlit run app.py` on a free loopback port; yields its base URL."""
    port = _free_port()
    proc = start_app(port, runs_dir, tmp_path / "streamlit.log")
    yield f"http://127.0.0.1:{port}"
    stop_app(proc)


@pytest.fixture(scope="session")
def _browser():
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(_browser):
    """A fresh Playwright page (its own browser context) in Debian's Chromium, 1400×1000."""
    context = _browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished running the script after an interaction."""
    page.wait_for_timeout(300)  # let a rerun start before we look for its end
    page.wait_for_selector(IDLE, timeout=timeout)


@pytest.fixture
def idle():
    """The wait_idle function, for tests: idle(page)."""
    return wait_idle


APP = str(ROOT / "app.py")


@pytest.fixture
def app_test(runs_dir):
    """Factory: a fresh AppTest of the whole app (app.py), run once, optionally switched to a page."""
    from streamlit.testing.v1 import AppTest

    def make(page: str | None = None, timeout: float = 120):
        at = AppTest.from_file(APP, default_timeout=timeout)
        at.run()
        if page is not None:
            at.switch_page(page)
            at.run()
        return at

    return make


@pytest.fixture
def seeded_runs(runs_dir):
    """Two saved runs of the fast preset on MNIST (a tiny untrained Keras model inside, trained settings and
    curves written out), so the evaluation and draw pages have something to show. Newest first."""
    import keras

    from cnnkit import presets, runs

    spec = presets.get(presets.FAST).spec
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.MaxPooling2D(4), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    history = {"loss": [1.2, 0.7, 0.5], "accuracy": [0.6, 0.78, 0.85], "val_loss": [0.9, 0.6, 0.65],
               "val_accuracy": [0.7, 0.82, 0.81]}
    saved = []
    for lr, epochs in ((0.003, 3), (0.01, 2)):
        saved.append(runs.save_run(
            model, spec, {"optimizer": "adam", "learning_rate": lr, "batch_size": 64, "epochs": epochs,
                          "lr_schedule": "cosine"},
            {k: v[:epochs] for k, v in history.items()},
            {"test_accuracy": 0.963, "test_loss": 0.12, "train_seconds": 41.0, "epochs_run": epochs},
            dataset_name="mnist", root=runs_dir, title="fast_cpu"))
        time.sleep(0.01)
    return saved[::-1]
