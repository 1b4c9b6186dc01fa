"""AppTest of the class challenge: the Class page's section (open, leaderboard, all runs, presentation, freeze,
CSV) and a student's Evaluation page (their best score and rank; counts, grids and the report without a hidden
image)."""

from __future__ import annotations

import base64
import csv
import io
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnnkit import challenge, challenge_scoring, classroom, datasets, identity, presets, runs

APP = str(Path(__file__).resolve().parent.parent / "app.py")
KEY = "correct horse battery staple"
EVIL = "<img src=x onerror=alert(1)>[x](javascript:alert(1))"


def _model(seed, train_on=None):
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                          keras.layers.Dense(10, activation="softmax")])
    if train_on is not None:
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        m.fit(train_on.x_train.astype("float32") / 255.0, train_on.y_train, epochs=1, verbose=0)
    return m


@pytest.fixture(scope="module")
def models(offline_ds):
    return _model(1), _model(2, train_on=offline_ds)


def _run(model, owner, name=None):
    spec = presets.get("fast_cpu").spec
    if name:
        spec = spec.__class__.from_dict({**spec.to_dict(), "name": name})
    return runs.save_run(model, spec, {"epochs": 2}, {"loss": [1.0, 0.5]}, {"test_accuracy": 0.5, "epochs_run": 2},
                         "mnist", owner=owner, title="fast_cpu")


@pytest.fixture
def lecture(runs_dir, monkeypatch):
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    monkeypatch.setenv("CNNKIT_LECTURER_KEY", KEY)
    return runs_dir


def _page(owner, page) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["owner_id"] = owner
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def _score_all(offline_ds):
    store = challenge.ChallengeStore()
    challenge_scoring.Scorer(store, lambda name: offline_ds).score_pending()
    return store, store.current()


def test_lecturer_opens_a_challenge_and_reads_the_leaderboard(lecture, offline_ds, models):
    weak, strong = identity.new_owner_id(), identity.new_owner_id()
    book = classroom.book()
    book.set_nickname(strong, "Ada")
    _run(models[0], weak, name=EVIL)
    best = _run(models[1], strong)
    lecturer = identity.new_owner_id()
    book.unlock(lecturer, KEY, KEY)
    at = _page(lecturer, "app_pages/class.py")
    assert "Open the challenge" in [b.label for b in at.button]
    at.slider(key="challenge_share").set_value(25)
    at.number_input(key="challenge_seed").set_value(9)
    next(b for b in at.button if b.label == "Open the challenge").click().run()
    assert not at.exception, at.exception
    store, ch = _score_all(offline_ds)
    assert ch.dataset_name == "mnist" and ch.share == 0.25 and ch.seed == 9 and ch.hidden_count == 250
    at.run()
    board = next(d.value for d in at.dataframe if "Hidden accuracy" in d.value.columns)
    x, y = store.hidden_set(ch, offline_ds)
    want = [float((m.predict(x / 255.0, verbose=0).argmax(1) == y).mean()) for m in (models[1], models[0])]
    assert list(board["Student"]) == ["Ada", book.label(weak)] and list(board["Rank"]) == [1, 2]
    assert list(board["Hidden accuracy"]) == pytest.approx([100 * w for w in want], abs=1e-4)   # shown in %
    assert list(board["Parameters"]) == [104_874, 104_874] and list(board["Model"])[1] == EVIL  # plain text
    # every run: a second run of Ada's, worse, shows only with the toggle
    _run(models[0], strong)
    _score_all(offline_ds)
    at.run()
    assert len(next(d.value for d in at.dataframe if "Hidden accuracy" in d.value.columns)) == 2
    at.toggle(key="_w.class.challenge_all").set_value(True).run()
    assert len(next(d.value for d in at.dataframe if "Hidden accuracy" in d.value.columns)) == 3
    # presentation mode: large type, names escaped
    at.toggle(key="_w.class.presentation").set_value(True).run()
    big = next(h.proto.body for h in at.get("html") if "cnn-board" in h.proto.body)
    assert "<img src=x" not in big and "Ada" in big
    assert "&lt;img src=x onerror=alert(1)&gt;[x](javascript:alert(1))" in big   # st.html: no Markdown
    assert f"{want[0]:.1%}" in big
    at.toggle(key="_w.class.presentation").set_value(False).run()
    # freeze: later runs are not ranked
    next(b for b in at.button if b.label == "Freeze now").click().run()
    assert challenge.ChallengeStore().current().is_frozen()
    _run(models[1], identity.new_owner_id())
    _score_all(offline_ds)
    at.run()
    assert "1 finished after the freeze" in "\n".join(c.value for c in at.caption)
    assert "Unfreeze" in [b.label for b in at.button] and "Export CSV" in [b.label for b in at.get("download_button")]
    csv_rows = list(csv.reader(io.StringIO(challenge.leaderboard_csv(
        challenge.leaderboard(challenge.ChallengeStore().current(), store, book)))))
    assert [r[1] for r in csv_rows[1:]] == ["Ada", book.label(weak)] and best.id


def _grid_images(at) -> list[np.ndarray]:
    out = []
    for h in at.get("html"):
        for data in re.findall(r'src="data:image/png;base64,([^"]+)"', h.proto.body):
            out.append(np.asarray(Image.open(io.BytesIO(base64.b64decode(data)))))
    return out


def test_student_sees_their_rank_and_never_a_hidden_image(lecture, offline_ds, models):
    me, other = identity.new_owner_id(), identity.new_owner_id()
    _run(models[0], me)
    _run(models[1], other)
    store = challenge.ChallengeStore()
    store.open_share(datasets.load("mnist"), 0.2, seed=4)
    store, ch = _score_all(offline_ds)
    at = _page(me, "app_pages/evaluation.py")
    words = "\n".join(i.value for i in at.info)
    mine = store.scores(ch)
    assert "rank 2 of 2" in words and "hidden test set" in words
    assert f"{min(s['accuracy'] for s in mine.values()):.1%}" in words
    visible = len(offline_ds.y_test) - ch.hidden_count
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Mistakes"].endswith(f"of {visible:,}")
    report = at.table[0].value
    assert report.loc["weighted avg", "support"] == visible      # the report (and its CSV download) too
    assert report.to_csv().count("\n") == len(report) + 1
    hidden_x, _ = store.hidden_set(ch, offline_ds)
    hidden = {bytes(img[..., 0]) for img in hidden_x}
    shown = _grid_images(at)
    assert len(shown) >= 16 and not any(bytes(np.ascontiguousarray(img)) in hidden for img in shown
                                        if img.shape == (28, 28))
    # the sidebar's count is the visible one too
    assert f"{visible:,} test" in "\n".join(c.value for c in at.sidebar.caption)
