"""cnnkit.evaluation on hand-made predictions: report and matrix agree with scikit-learn, cells hold the right
indices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics

from cnnkit import evaluation

NAMES = tuple(f"class {i}" for i in range(10))


def _random_predictions(seed: int, n: int = 400, k: int = 10):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    # mostly right, some confusions, like a real model
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.integers(0, k, n))
    return y_true, y_pred


def test_confusion_matrix_agrees_with_sklearn():
    y_true, y_pred = _random_predictions(1)
    ours = evaluation.confusion_matrix(y_true, y_pred, 10)
    np.testing.assert_array_equal(ours, metrics.confusion_matrix(y_true, y_pred, labels=range(10)))
    assert ours.sum() == len(y_true)


def test_normalised_rows_agree_with_sklearn_and_empty_rows_are_zero():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 1, 0, 1, 1, 0])
    cm = evaluation.confusion_matrix(y_true, y_pred, 4)  # class 3 has no test image
    norm = evaluation.normalise_rows(cm)
    expected = metrics.confusion_matrix(y_true, y_pred, labels=range(3), normalize="true")
    np.testing.assert_allclose(norm[:3, :3], expected)
    np.testing.assert_array_equal(norm[3], np.zeros(4))
    np.testing.assert_allclose(norm[:3].sum(axis=1), 1.0)


def _assert_report_matches_sklearn(y_true, y_pred, names):
    ours = evaluation.classification_report(y_true, y_pred, names)
    theirs = metrics.classification_report(
        y_true, y_pred, labels=list(range(len(names))), target_names=list(names), output_dict=True, zero_division=0
    )
    assert list(ours.columns) == ["precision", "recall", "f1-score", "support"]
    assert list(ours.index) == [*names, "accuracy", "macro avg", "weighted avg"]
    for row in [*names, "macro avg", "weighted avg"]:
        for col in ["precision", "recall", "f1-score", "support"]:
            assert ours.loc[row, col] == pytest.approx(theirs[row][col]), (row, col)
    # scikit-learn adds "accuracy" only when every label occurs; otherwise it reports a micro average equal to it
    accuracy = theirs.get("accuracy", theirs.get("micro avg", {}).get("f1-score"))
    assert ours.loc["accuracy", "f1-score"] == pytest.approx(accuracy)
    assert ours.loc["accuracy", "f1-score"] == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    assert np.isnan(ours.loc["accuracy", "precision"]) and ours.loc["accuracy", "support"] == len(y_true)
    assert ours["support"].dtype == np.int64


def test_report_agrees_with_sklearn():
    y_true, y_pred = _random_predictions(2)
    _assert_report_matches_sklearn(y_true, y_pred, NAMES)


def test_report_with_a_class_never_predicted_and_one_never_present():
    y_true = np.array([0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 1, 0, 1])  # class 2 never predicted, class 3 absent
    _assert_report_matches_sklearn(y_true, y_pred, ("a", "b", "c", "d"))
    table = evaluation.classification_report(y_true, y_pred, ("a", "b", "c", "d"))
    assert table.loc["c", "precision"] == 0 and table.loc["d", "support"] == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=60))
def test_report_matches_sklearn_for_any_predictions(pairs):
    y_true = np.array([t for t, _ in pairs])
    y_pred = np.array([p for _, p in pairs])
    _assert_report_matches_sklearn(y_true, y_pred, ("a", "b", "c", "d", "e"))


def test_cell_indices_hold_exactly_the_images_of_that_cell():
    y_true, y_pred = _random_predictions(3)
    cm = evaluation.confusion_matrix(y_true, y_pred, 10)
    seen = []
    for t in range(10):
        for p in range(10):
            idx = evaluation.cell_indices(y_true, y_pred, t, p)
            assert len(idx) == cm[t, p]
            assert (y_true[idx] == t).all() and (y_pred[idx] == p).all()
            assert (np.diff(idx) > 0).all()
            seen.extend(idx.tolist())
    assert sorted(seen) == list(range(len(y_true)))  # every image is in exactly one cell


def test_cell_indices_by_hand():
    y_true = np.array([3, 1, 3, 3, 0])
    y_pred = np.array([5, 1, 3, 5, 5])
    np.testing.assert_array_equal(evaluation.cell_indices(y_true, y_pred, 3, 5), [0, 3])
    assert evaluation.cell_indices(y_true, y_pred, 1, 5).size == 0


def test_confident_mistakes_are_wrong_and_sorted_by_confidence():
    probs = np.array(
        [
            [0.9, 0.1, 0.0],  # right
            [0.2, 0.8, 0.0],  # wrong (true 0), conf 0.8
            [0.05, 0.0, 0.95],  # wrong (true 1), conf 0.95
            [0.6, 0.4, 0.0],  # wrong (true 2), conf 0.6
            [0.0, 0.0, 1.0],  # right
        ]
    )
    y_true = np.array([0, 0, 1, 2, 2])
    np.testing.assert_array_equal(evaluation.confident_mistakes(y_true, probs, 10), [2, 1, 3])
    np.testing.assert_array_equal(evaluation.confident_mistakes(y_true, probs, 2), [2, 1])


def test_random_sample_is_reproducible_distinct_and_in_range():
    a = evaluation.random_sample(1000, 20, seed=7)
    assert len(set(a.tolist())) == 20 and a.min() >= 0 and a.max() < 1000
    np.testing.assert_array_equal(a, evaluation.random_sample(1000, 20, seed=7))
    assert not np.array_equal(a, evaluation.random_sample(1000, 20, seed=8))
    assert len(evaluation.random_sample(5, 20)) == 5


def test_predictions_table_and_captions():
    probs = np.array([[0.7, 0.3], [0.1, 0.9], [0.45, 0.55]], dtype=np.float32)
    y_true = np.array([0, 0, 1])
    table = evaluation.predictions_table(np.array([2, 1]), y_true, probs, ("cat", "dog"))
    assert table.to_dict("list") == {
        "index": [2, 1],
        "true": ["dog", "cat"],
        "predicted": ["dog", "dog"],
        "confidence": [pytest.approx(0.55), pytest.approx(0.9)],
        "correct": [True, False],
    }
    captions, correct = evaluation.image_labels(np.array([0, 1]), y_true, probs, ("cat", "dog"))
    assert captions == ["cat<br>✓ 70%", "cat<br>→ dog 90%"]
    assert correct.tolist() == [True, False]
    short, _ = evaluation.image_labels(np.array([2]), y_true, probs, ("cat", "dog"), short=True)
    assert short == ["#2 · 55%"]
    np.testing.assert_array_equal(evaluation.by_confidence(np.array([0, 1, 2]), probs), [1, 0, 2])
    empty = evaluation.predictions_table(np.array([], dtype=int), y_true, probs, ("cat", "dog"))
    assert len(empty) == 0


def test_top_confusions():
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([0, 2, 2, 0, 1, 1, 2, 2, 2])
    table = evaluation.top_confusions(evaluation.confusion_matrix(y_true, y_pred, 3), ("a", "b", "c"), n=2)
    assert table.iloc[0][["true", "predicted", "count"]].tolist() == ["a", "c", 2]
    assert table.iloc[0]["share of true class"] == pytest.approx(2 / 3)
    assert len(table) == 2


def test_logits_are_recognised():
    assert evaluation.looks_like_probabilities(np.array([[0.2, 0.8], [1.0, 0.0]]))
    assert not evaluation.looks_like_probabilities(np.array([[2.0, -1.0], [0.3, 0.1]]))
    np.testing.assert_allclose(evaluation.softmax(np.array([[0.0, 0.0]])), [[0.5, 0.5]])


def test_best_epoch():
    assert evaluation.best_epoch({"val_loss": [0.5, 0.3, 0.4], "val_accuracy": [0.8, 0.85, 0.9]}) == 2
    assert evaluation.best_epoch({"val_accuracy": [0.8, 0.9, 0.85]}) == 2
    assert evaluation.best_epoch({"loss": [1.0]}) is None


def test_evaluation_dataclass_derives_everything_from_probabilities():
    y_true, y_pred = _random_predictions(4, n=200)
    probs = np.full((200, 10), 0.02, dtype=np.float32)
    probs[np.arange(200), y_pred] = 0.82
    ev = evaluation.Evaluation(y_true=y_true, probabilities=probs, class_names=NAMES, loss=1.0)
    assert ev.accuracy == pytest.approx(metrics.accuracy_score(y_true, y_pred))
    assert ev.num_wrong == int((y_true != y_pred).sum())
    np.testing.assert_array_equal(ev.confusion_matrix(), metrics.confusion_matrix(y_true, y_pred, labels=range(10)))
    assert set(ev.confident_mistakes(500).tolist()) == set(np.flatnonzero(y_true != y_pred).tolist())
    pd.testing.assert_frame_equal(ev.classification_report(), evaluation.classification_report(y_true, y_pred, NAMES))
    assert ev.summary()["num_images"] == 200
    name, f1 = ev.weakest_class()
    f1s = metrics.f1_score(y_true, y_pred, labels=range(10), average=None, zero_division=0)
    assert name == NAMES[int(np.argmin(f1s))] and f1 == pytest.approx(f1s.min())


def test_cache_is_lru_and_thread_safe_enough():
    cache = evaluation.EvaluationCache(max_entries=2)
    ev = evaluation.Evaluation(np.array([0]), np.array([[1.0]], dtype=np.float32), ("a",), 0.0)
    cache.put("a", ev)
    cache.put("b", ev)
    assert cache.get("a") is ev  # touch a: b is now the oldest
    cache.put("c", ev)
    assert cache.get("b") is None and cache.get("a") is ev and len(cache) == 2
