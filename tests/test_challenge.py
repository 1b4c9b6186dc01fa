"""The class challenge (cnnkit.challenge): the hidden split, scoring on the scorer's thread, ranking and
ties, freezing, the CSV, and everything surviving a new store / class book (a server restart)."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from cnnkit import challenge, challenge_scoring, classroom, identity, presets, runs


# --- the hidden split -----------------------------------------------------------------------------
def test_hidden_split_is_seeded_stratified_and_disjoint(offline_ds):
    y = offline_ds.y_test
    hidden = challenge.hidden_indices(y, 0.2, seed=7)
    visible = challenge.visible_indices(y, 0.2, seed=7)
    assert len(np.intersect1d(hidden, visible)) == 0
    assert len(hidden) + len(visible) == len(y)
    assert np.array_equal(hidden, challenge.hidden_indices(y, 0.2, seed=7))     # seeded
    assert not np.array_equal(hidden, challenge.hidden_indices(y, 0.2, seed=8))
    counts, hidden_counts = np.bincount(y, minlength=10), np.bincount(y[hidden], minlength=10)
    assert np.all(np.abs(hidden_counts - 0.2 * counts) <= 0.5 + 1e-9)           # 20 % of every class
    # a class of one image stays whole on one side; a class of two keeps one visible
    tiny = np.array([0, 0, 1])
    assert set(tiny[challenge.visible_indices(tiny, 0.5, 0)]) == {0, 1} or len(
        challenge.hidden_indices(tiny, 0.5, 0)) == 2


def test_visible_dataset_leaves_the_hidden_images_out(offline_ds, runs_dir):
    store = challenge.ChallengeStore()
    ch = store.open_share(offline_ds, 0.25, seed=3)
    view = challenge.visible_dataset(offline_ds, ch)
    hx, hy = store.hidden_set(ch, offline_ds)
    assert len(view.y_test) + len(hy) == len(offline_ds.y_test) == 1000 and ch.hidden_count == len(hy)
    # no hidden image is among the visible ones (compared by pixels)
    seen = {bytes(img) for img in view.x_test}
    assert not any(bytes(img) in seen for img in hx)
    assert view is challenge.visible_dataset(offline_ds, ch)                 # one copy per process
    assert view.x_train is offline_ds.x_train and "held back" in view.source_text
    other = challenge.Challenge(**{**ch.__dict__, "dataset_name": "fashion_mnist"})
    assert challenge.visible_dataset(offline_ds, other) is offline_ds
    assert challenge.visible_dataset(offline_ds, None) is offline_ds


def test_a_share_outside_the_range_or_a_past_end_time_is_refused(offline_ds, runs_dir):
    store = challenge.ChallengeStore()
    with pytest.raises(challenge.ChallengeError, match="between"):
        store.open_share(offline_ds, 0.9)
    with pytest.raises(challenge.ChallengeError, match="already passed"):
        store.open_share(offline_ds, 0.2, ends_at=time.time() - 5)
    assert store.current() is None


def test_hidden_file_goes_through_the_upload_checks(offline_ds, runs_dir, tmp_path):
    store = challenge.ChallengeStore()
    good = tmp_path / "hidden.npz"
    np.savez(good, x_train=offline_ds.x_test[:40, ..., 0], y_train=offline_ds.y_test[:40],
             x_test=offline_ds.x_test[40:60, ..., 0], y_test=offline_ds.y_test[40:60])
    ch = store.open_file(offline_ds, good)
    x, y = store.hidden_set(ch, None)
    assert ch.source == "file" and ch.hidden_count == 60 and x.shape == (60, 28, 28, 1)
    assert np.array_equal(y, offline_ds.y_test[:60])
    wrong = tmp_path / "colour.npz"
    rng = np.random.default_rng(0)
    np.savez(wrong, x_train=rng.integers(0, 255, (20, 32, 32, 3), dtype=np.uint8), y_train=np.arange(20) % 2,
             x_test=rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8), y_test=np.arange(4) % 2)
    with pytest.raises(challenge.ChallengeError, match="32×32×3"):
        store.open_file(offline_ds, wrong)
    (tmp_path / "junk.npz").write_bytes(b"not a file")
    with pytest.raises(Exception, match="not a .zip or .npz"):
        store.open_file(offline_ds, tmp_path / "junk.npz")


# --- ranking ----------------------------------------------------------------------------------------
def _entry(owner, acc, params, created=0.0, run_id=None):
    return challenge.Entry(rank=0, student=owner or "command line", owner=owner, model="m", parameters=params,
                           flops=None, epochs=1, accuracy=acc, run_id=run_id or f"{owner}-{acc}-{params}",
                           created=created)


def test_ranking_ties_go_to_fewer_parameters_and_best_per_student():
    entries = [_entry("a", 0.90, 5000), _entry("b", 0.95, 9000), _entry("c", 0.95, 1000),
               _entry("a", 0.96, 20000), _entry("d", 0.90, 5000, created=1.0)]
    best = challenge.rank_entries(entries)
    assert [(e.owner, e.rank) for e in best] == [("a", 1), ("c", 2), ("b", 3), ("d", 4)]
    every = challenge.rank_entries(entries, best_only=False)
    assert [(e.owner, e.accuracy, e.rank) for e in every] == [
        ("a", 0.96, 1), ("c", 0.95, 2), ("b", 0.95, 3), ("a", 0.90, 4), ("d", 0.90, 4)]  # same acc and size: tie
    assert challenge.rank_entries([]) == []


# --- scoring, freeze, CSV, persistence ---------------------------------------------------------------
def _model(seed):
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(10, activation="softmax")])


def _run(model, owner, title="fast_cpu", dataset="mnist"):
    return runs.save_run(model, presets.get(title).spec, {"epochs": 2}, {"loss": [1.0, 0.5]},
                         {"test_accuracy": 0.5, "epochs_run": 2}, dataset, owner=owner, title=title)


def _independent_accuracy(model, x, y):
    probs = model.predict(x.astype("float32") / 255.0, verbose=0)
    return float((probs.argmax(axis=1) == y).mean())


@pytest.fixture(scope="module")
def two_models(offline_ds):
    """An untrained model (about 10 % right) and one trained for an epoch (far better)."""
    good = _model(2)
    good.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    good.fit(offline_ds.x_train.astype("float32") / 255.0, offline_ds.y_train, epochs=1, verbose=0)
    return _model(1), good


def test_scorer_scores_every_run_on_its_own_thread_before_and_after_opening(offline_ds, runs_dir, two_models):
    a, b = identity.new_owner_id(), identity.new_owner_id()
    early = _run(two_models[0], a)                      # finished before the challenge opened
    store = challenge.ChallengeStore()
    ch = store.open_share(offline_ds, 0.2, seed=11)
    scorer = challenge_scoring.Scorer(store, lambda name: offline_ds, interval=0.2).start()
    late = _run(two_models[1], b)
    _run(two_models[1], b, dataset="fashion_mnist")     # another dataset: not scored
    scorer.poke()
    deadline = time.time() + 30
    while len(store.scores(ch)) < 2 and time.time() < deadline:
        time.sleep(0.1)
    scores = store.scores(ch)
    assert set(scores) == {early.id, late.id}
    x, y = store.hidden_set(ch, offline_ds)
    for run, model in ((early, two_models[0]), (late, two_models[1])):
        assert scores[run.id]["accuracy"] == pytest.approx(_independent_accuracy(model, x, y), abs=1e-6)
        assert scores[run.id]["by"] == challenge_scoring.Scorer.THREAD_NAME and scores[run.id]["images"] == len(y)
    board = challenge.leaderboard(ch, store, classroom.book())
    expected = sorted([(scores[early.id]["accuracy"], early.id), (scores[late.id]["accuracy"], late.id)],
                      reverse=True)
    assert [e.run_id for e in board.entries] == [rid for _, rid in expected]
    assert board.entries[0].run_id == late.id and board.entries[0].parameters == 104_874 and board.waiting == 0
    # the CSV has one row per entry, names kept as text
    rows = list(csv.reader(io.StringIO(challenge.leaderboard_csv(board))))
    assert rows[0][:3] == ["rank", "student", "model"] and len(rows) == 3
    assert rows[1][6] == f"{board.entries[0].accuracy:.4f}"


def test_freeze_keeps_later_runs_off_and_everything_survives_a_new_process(offline_ds, runs_dir, two_models):
    a, b = identity.new_owner_id(), identity.new_owner_id()
    book = classroom.book()
    book.set_nickname(a, "Ada")
    store = challenge.ChallengeStore()
    ch = store.open_share(offline_ds, 0.2, seed=5)
    first = _run(two_models[0], a)
    scorer = challenge_scoring.Scorer(store, lambda name: offline_ds)
    assert scorer.score_pending() == [first.id]
    ch = store.freeze(now=time.time())
    time.sleep(0.02)
    after = _run(two_models[1], b)
    assert scorer.score_pending() == [after.id]         # scored, but not ranked
    board = challenge.leaderboard(ch, store, book)
    assert [e.run_id for e in board.entries] == [first.id] and board.frozen and board.late == 1
    assert board.entries[0].student == "Ada"
    # a new process reads the same folder: the challenge, the freeze and the scores are there
    code = ("from cnnkit import challenge, classroom;"
            "s = challenge.ChallengeStore(); c = s.current();"
            "b = challenge.leaderboard(c, s, classroom.ClassBook());"
            "print(c.is_frozen(), c.seed, [(e.student, round(e.accuracy, 6)) for e in b.entries])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "CNNKIT_RUNS_DIR": str(runs_dir)}).stdout.strip()
    assert out == f"True 5 [('Ada', {round(board.entries[0].accuracy, 6)})]"
    # unfreezing ranks the late run too; closing forgets everything
    ch = store.unfreeze()
    assert len(challenge.leaderboard(ch, store, book, best_only=False).entries) == 2
    store.close()
    assert store.current() is None and store.scores() == {}


def test_standing_and_csv_keep_formulas_as_text():
    board = challenge.Leaderboard(entries=challenge.rank_entries([_entry("a", 0.9, 10), _entry("b", 0.8, 10)]))
    assert challenge.standing(board, "b") == (board.entries[1], 2) and challenge.standing(board, "z") is None
    evil = challenge.Leaderboard(entries=[dataclasses.replace(_entry("a", 0.9, 10), student="=HYPERLINK(1)")])
    assert "'=HYPERLINK(1)" in challenge.leaderboard_csv(evil)


def test_hidden_split_is_stratified_on_uneven_classes_and_the_same_in_a_new_process():
    y = np.repeat(np.arange(5), [500, 120, 37, 2, 1])
    hidden = challenge.hidden_indices(y, 0.2, seed=21)
    assert np.bincount(y[hidden], minlength=5).tolist() == [100, 24, 7, 1, 1]   # round(20 %), at least one each
    visible = challenge.visible_indices(y, 0.2, seed=21)
    assert np.bincount(y[visible], minlength=5).tolist() == [400, 96, 30, 1, 0]  # a class of two keeps one
    assert len(np.intersect1d(hidden, visible)) == 0 and len(hidden) + len(visible) == len(y)
    code = ("import numpy as np; from cnnkit import challenge;"
            "y = np.repeat(np.arange(5), [500, 120, 37, 2, 1]);"
            "print(challenge.hidden_indices(y, 0.2, seed=21).tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(hidden.tolist())                                    # seeded: any process, same set


@pytest.mark.parametrize("name", ["<img src=x onerror=alert(1)>", "[x](javascript:alert(1))"])
def test_hostile_names_stay_plain_text_on_the_leaderboard(name, offline_ds, runs_dir):
    from cnnkit import plain_text

    owner = identity.new_owner_id()
    book = classroom.book()
    with pytest.raises(classroom.ClassroomError):     # a nickname cannot hold them at all
        book.set_nickname(owner, name)
    spec = presets.get("fast_cpu").spec
    run = runs.save_run(_model(1), spec.__class__.from_dict({**spec.to_dict(), "name": name}), {"epochs": 1},
                        {"loss": [1.0]}, {"test_accuracy": 0.5, "epochs_run": 1}, "mnist", owner=owner)
    store = challenge.ChallengeStore()
    ch = store.open_share(offline_ds, 0.2, seed=1)
    store.record(ch, run.id, {"accuracy": 0.5, "images": 200, "by": "test"})
    board = challenge.leaderboard(ch, store, book)
    assert board.entries[0].model == name                           # data: the page escapes it
    rows = list(csv.reader(io.StringIO(challenge.leaderboard_csv(board))))
    assert rows[1][2] == name                                       # one CSV cell, as typed
    # what the Class page draws with: the HTML board (chart_text) shows the tag as text; Markdown (inert) escapes
    # every bracket, so neither a tag nor a link is left
    assert "<" not in plain_text.chart_text(name) and ">" not in plain_text.chart_text(name)
    md = plain_text.inert(name)
    assert all(md[i - 1] == "\\" for i, c in enumerate(md) if c in "<>[]"), md
