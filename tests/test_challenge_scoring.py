"""Scoring the class challenge (cnnkit.challenge_scoring): on the training worker right after its test pass — the
request names the hidden share and carries no image, the score equals an accuracy computed here on our own, the
registry keeps it for every run saved from the result and a reused run's copy takes it — and the web process's
`Scorer` for what no worker scored: an identical model (same job key) scored once, a worker's score never
overwritten, nothing read again while nothing changed."""

from __future__ import annotations

import dataclasses
import time
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from cnnkit import challenge, challenge_scoring, classroom, identity, presets, runs
from cnnkit.jobs import keys, registry


def _model(seed, train_on=None):
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                          keras.layers.Dense(10, activation="softmax")])
    if train_on is not None:
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        m.fit(train_on.x_train[:1500].astype("float32") / 255.0, train_on.y_train[:1500], epochs=1, verbose=0)
    return m


@pytest.fixture(scope="module")
def trained(offline_ds):
    return _model(3, train_on=offline_ds)


def _accuracy_here(model, ds, ch):
    idx = challenge.hidden_indices(ds.y_test, ch.share, ch.seed)
    probs = model.predict(ds.x_test[idx].astype("float32") / 255.0, verbose=0)
    return float((probs.argmax(1) == ds.y_test[idx]).mean())


def _run(model, owner, job_key=None):
    return runs.save_run(model, presets.get("fast_cpu").spec, {"epochs": 1}, {"loss": [1.0]},
                         {"test_accuracy": 0.5, "epochs_run": 1}, "mnist", owner=owner, title="fast_cpu",
                         extra={"job_key": job_key} if job_key else None)


def test_the_worker_request_names_the_share_and_carries_no_image(offline_ds, tiny_ds, runs_dir, tmp_path):
    store = challenge.ChallengeStore()
    assert challenge_scoring.worker_request(offline_ds, store) is None          # no challenge open
    ch = store.open_share(offline_ds, 0.2, seed=4)
    req = challenge_scoring.worker_request(offline_ds, store)
    assert req == {"opened": ch.opened, "dataset_name": "mnist", "share": 0.2, "seed": 4, "hidden_count": 200}
    assert not any(isinstance(v, np.ndarray | list | bytes) for v in req.values())   # no image, no label
    assert challenge_scoring.worker_request(offline_ds) == req                  # the class folder's store
    other = dataclasses.replace(offline_ds, name="fashion_mnist")
    assert challenge_scoring.worker_request(other, store) is None               # another dataset
    assert challenge_scoring.worker_request(tiny_ds(), store) is None           # a student's file
    hidden = tmp_path / "hidden.npz"
    np.savez(hidden, x_train=offline_ds.x_test[:30, ..., 0], y_train=offline_ds.y_test[:30],
             x_test=offline_ds.x_test[30:40, ..., 0], y_test=offline_ds.y_test[30:40])
    store.open_file(offline_ds, hidden)
    assert challenge_scoring.worker_request(offline_ds, store) is None          # a file: the web scorer's


def test_a_worker_score_is_the_hidden_accuracy_and_the_registry_keeps_it_for_each_saved_run(
        offline_ds, runs_dir, trained):
    store = challenge.ChallengeStore()
    ch = store.open_share(offline_ds, 0.2, seed=4)
    req = challenge_scoring.worker_request(offline_ds, store)
    score = challenge_scoring.score_on_worker(req, trained, offline_ds)
    assert score["accuracy"] == pytest.approx(_accuracy_here(trained, offline_ds, ch), abs=1e-6)
    assert score["by"] == "worker" and score["images"] == 200 and score["opened"] == ch.opened
    assert score["accuracy"] > 0.5            # a trained model: far from chance
    # a worker whose copy of the dataset gives another share (another test split) does not score
    short = dataclasses.replace(offline_ds, x_test=offline_ds.x_test[:500], y_test=offline_ds.y_test[:500])
    assert challenge_scoring.score_on_worker(req, trained, short) is None
    assert challenge_scoring.score_on_worker(None, trained, offline_ds) is None

    # the registry saves one run per student of a shared computation, and keeps the worker's score for each
    path = runs_dir.parent / "model.keras"
    trained.save(path)
    a, b = identity.new_owner_id(), identity.new_owner_id()
    comp = SimpleNamespace(spec=presets.get("fast_cpu").spec, hyper=presets.get("fast_cpu").hyper.replace(epochs=1),
                           key="k1")
    jobs = [SimpleNamespace(id=f"j{i}", run=None, dataset_name="mnist", runs_root=runs_dir, owner=o, title="fast_cpu")
            for i, o in enumerate((a, b))]
    result = {"model": path.read_bytes(), "history": {"loss": [1.0]}, "metrics": {"test_accuracy": 0.9},
              "challenge": score}
    assert registry._save_runs(comp, jobs, result) == {}
    assert "challenge" not in jobs[0].run.metrics and "hidden" not in str(jobs[0].run.metrics)  # not the run's
    kept = store.scores(ch)
    assert set(kept) == {jobs[0].run.id, jobs[1].run.id}
    assert all(k["accuracy"] == score["accuracy"] and k["by"] == "worker" and k["recorded"] >= k["scored"]
               for k in kept.values())
    board = challenge.leaderboard(ch, store, classroom.book())   # on the leaderboard, no scorer involved
    assert board.waiting == 0 and {e.owner for e in board.entries} == {a, b}
    # a score made for a challenge that was closed and opened again is not kept
    ch2 = store.open_share(offline_ds, 0.2, seed=5)
    assert challenge_scoring.record_worker_score(score, [jobs[0].run.id], store) is False
    assert store.scores(ch2) == {}


def test_a_reused_run_takes_its_sources_score_at_once(offline_ds, runs_dir, trained):
    store = challenge.ChallengeStore()
    ch = store.open_share(offline_ds, 0.2, seed=4)
    src = _run(trained, identity.new_owner_id(), job_key="same")
    store.record(ch, src.id, {"accuracy": 0.75, "images": 200, "by": "worker", "scored": time.time()})
    finished = keys.FinishedRuns()
    finished.add("same", src.path)
    _, copy = finished.copy("same", dataset_name="mnist", root=runs_dir, owner=identity.new_owner_id(), title="t")
    got = store.scores(ch)[copy.id]
    assert got["accuracy"] == 0.75 and got["copied_from"] == src.id


def test_the_scorer_scores_one_model_per_job_key_and_never_overwrites_a_worker(offline_ds, runs_dir, trained,
                                                                            monkeypatch):
    store = challenge.ChallengeStore()
    ch = store.open_share(offline_ds, 0.2, seed=4)
    weak = _model(1)
    first = _run(weak, identity.new_owner_id(), job_key="k-weak")
    twin = _run(weak, identity.new_owner_id(), job_key="k-weak")     # an identical computation's copy
    worked = _run(trained, identity.new_owner_id(), job_key="k-trained")
    monkeypatch.setattr(challenge_scoring.Scorer, "GRACE_SECONDS", 0.0)
    scorer = challenge_scoring.Scorer(store, lambda name: offline_ds)
    loads = []
    real = challenge_scoring.score_run
    monkeypatch.setattr(challenge_scoring, "score_run", lambda run, x, y: loads.append(run.id) or real(run, x, y))
    # the worker's score lands while the scorer is about to score that run: the worker's stays
    store.record(ch, worked.id, {"accuracy": 0.5, "images": 200, "by": "worker", "scored": time.time()})
    assert set(scorer.score_pending()) == {first.id, twin.id}
    assert loads == [first.id]                                          # one load for the job key
    scores = store.scores(ch)
    assert scores[twin.id]["accuracy"] == scores[first.id]["accuracy"] == pytest.approx(
        _accuracy_here(weak, offline_ds, ch), abs=1e-6)
    assert scores[twin.id]["copied_from"] == first.id and scores[worked.id]["by"] == "worker"
    assert scorer.stats["scored"] == 1 and scorer.stats["copied"] == 1
    store.record_many(ch, {worked.id: {"accuracy": 0.1, "by": "web"}}, replace=False)
    assert store.scores(ch)[worked.id]["by"] == "worker"
    # nothing changed on disk: the next looks read four file times, not the runs
    scorer.score_pending()
    passes = scorer.stats["passes"]
    monkeypatch.setattr(challenge_scoring, "challenge_runs", lambda *a, **k: pytest.fail("read the runs again"))
    assert scorer.score_pending() == [] and scorer.stats["passes"] == passes


def test_a_fresh_run_from_a_job_waits_a_moment_for_its_workers_score(offline_ds, runs_dir, trained):
    store = challenge.ChallengeStore()
    ch = store.open_share(offline_ds, 0.2, seed=4)
    fresh = _run(trained, identity.new_owner_id(), job_key="k")
    plain = _run(trained, identity.new_owner_id())           # no job key (the command line, a test): at once
    scorer = challenge_scoring.Scorer(store, lambda name: offline_ds)
    assert scorer.score_pending() == [plain.id]
    store.record(ch, fresh.id, {"accuracy": 0.5, "by": "worker", "images": 200, "scored": time.time()})
    assert scorer.score_pending() == [] and store.scores(ch)[fresh.id]["by"] == "worker"
