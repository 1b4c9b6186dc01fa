"""A lab's model file behaves like a run: the Draw page reads it (its own upload, or the one kept from the
Evaluation page), and the Evaluation page saves it as one of the student's runs, with no training history.

The files are the committed Keras 2 files in tests/lab_files/ (see test_lab_files.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnkit import datasets, evaluation, model_files, predict, run_comparison, run_labels, runs

LABS = Path(__file__).resolve().parent / "lab_files"
EXPECTED = json.loads((LABS / "expected.json").read_text())
DRAW = "app_pages/draw.py"


def _files(*names):
    return [(n, (LABS / n).read_bytes(), "application/octet-stream") for n in names]


def _texts(at) -> str:
    parts = [e.value for e in (*at.info, *at.warning, *at.error, *at.success, *at.markdown, *at.caption)]
    return "\n".join(str(p) for p in parts)


def test_a_lab_model_saved_as_a_run_round_trips(runs_dir, offline_ds):
    found = model_files.read_model_path(LABS / "cnn_mnist_model.h5")
    ev = evaluation.evaluate(found.model, offline_ds)
    run = model_files.save_as_run(found, "mnist", owner="me", test_accuracy=ev.accuracy, test_loss=ev.loss)
    again = runs.load_run(run.path)
    assert again.from_file and again.history == {} and again.owner == "me"
    assert again.metrics["file"] == "cnn_mnist_model.h5" and again.metrics["format"] == "hdf5"
    assert again.metrics["params"] == EXPECTED["cnn_mnist_model.h5"]["params"]
    assert again.metrics["read"] == found.sentence
    # the saved model is the file's model: the same answers, through the runs' own loader and checks
    assert evaluation.evaluate(again, offline_ds).accuracy == pytest.approx(EXPECTED["cnn_mnist_model.h5"]["accuracy"],
                                                                            abs=1e-6)
    assert [r.id for r in runs.list_runs(owner="me", dataset_name="mnist")] == [again.id]
    # listed as from a file, without training settings it never had
    label = run_labels.run_labels([again])[again.id]
    assert label.startswith("From cnn_mnist_model.h5 · from a file · test 84.7%") and "Adam" not in label
    row = run_comparison.compare_table([again]).iloc[0]
    assert row["parameters"] == 74250 and row["optimizer"] is None and row["epochs run"] == 0
    assert not runs.load_run(run.path).spec.layers


def test_the_evaluation_page_saves_a_lab_file_as_a_run(app_test, runs_dir):
    at = app_test("app_pages/evaluation.py")
    at.segmented_control(key="_w.ev.source").set_value("A model file").run()
    at.file_uploader(key="ev_upload").set_value(_files("model_digit.json", "model_digit.h5")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    # file names are a student's: shown as plain text (cnnkit.plain_text), with what was read
    assert ("model_digit.json and model_digit.h5: Keras 2 architecture (JSON) with its weights (model_digit.h5), "
            "read as Keras 3") in _texts(at)
    assert "no training history" in _texts(at)  # an upload alone: no curves
    at.button(key="ev_save_upload").click().run()
    assert not at.exception and not at.error
    saved = runs.list_runs(owner=at.session_state["owner_id"])
    assert len(saved) == 1 and saved[0].from_file and saved[0].history == {}
    # the page now shows the saved run, with the same test accuracy and no empty curves
    assert at.segmented_control(key="_w.ev.source").value == "A run I trained"
    assert at.selectbox(key="_w.ev.run").value == saved[0].id
    want = EXPECTED["model_digit.json"]["accuracy"]
    assert {m.label: m.value for m in at.metric}["Test accuracy"] == f"{want:.2%}"
    assert saved[0].metrics["test_accuracy"] == pytest.approx(want, abs=1e-6)
    assert "This run came from a file: it has no training history." in [i.value for i in at.info]
    assert not [c for c in at.get("plotly_chart") if "ev_curves" in str(c.proto.id)]
    assert "no Keras script to export" in _texts(at)


def test_the_draw_page_reads_a_lab_file_like_a_run(app_test, runs_dir):
    at = app_test(DRAW)
    assert "no trained model for **MNIST digits** yet" in _texts(at)
    at.button(key="draw_use_file").click().run()
    at.file_uploader(key="draw_model_upload").set_value(_files("cnn_mnist_model.h5")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "cnn_mnist_model.h5: Keras 2 model (HDF5), read as Keras 3; 74,250 parameters." in _texts(at)
    at.segmented_control(key="_w.draw_source").set_value("A test digit").run()
    at.number_input(key="_w.draw_test_index").set_value(3).run()
    assert not at.exception and not at.error
    ds = datasets.offline_sample()
    model = model_files.read_model_path(LABS / "cnn_mnist_model.h5").model
    want = predict.Predictor(model, ds.class_names).predict(datasets.to_float(ds.x_test[3:4])[0])
    assert next(m for m in at.metric if m.label == "Prediction").value == want.label
    assert next(m for m in at.metric if m.label == "Confidence").value == f"{want.confidence:.1%}"
    assert "Grad-CAM on" in _texts(at)
    at.segmented_control(key="_w.draw_view").set_value("The convolution").run()
    assert not at.exception and "feature map holds" in _texts(at)
    at.segmented_control(key="_w.draw_view").set_value("Feature maps").run()
    assert not at.exception and "filters 3×3" in _texts(at)
    # kept while the student keeps it: another page and back, the file is still the model
    at.switch_page("app_pages/home.py").run()
    at.switch_page(DRAW).run()
    assert not at.exception and next(m for m in at.metric if m.label == "Prediction").value == want.label
    # and it is the Evaluation page's upload too
    at.switch_page("app_pages/evaluation.py").run()
    at.segmented_control(key="_w.ev.source").set_value("A model file").run()
    assert {m.label: m.value for m in at.metric}["Test accuracy"] == \
        f"{EXPECTED['cnn_mnist_model.h5']['accuracy']:.2%}"
    # Forget drops it from both
    at.button(key="ev_upload_forget").click().run()
    assert not at.metric
    at.switch_page(DRAW).run()
    assert not at.exception and not [m for m in at.metric if m.label == "Prediction"]


def test_the_draw_page_refuses_a_lambda_lab_file_with_its_sentence(app_test, runs_dir):
    at = app_test(DRAW)
    at.button(key="draw_use_file").click().run()
    at.file_uploader(key="draw_model_upload").set_value(_files("lambda_model.json", "lambda_weights.h5")).run()
    assert not at.exception
    assert "contains a Lambda layer" in " ".join(e.value for e in at.error)
    assert not [m for m in at.metric if m.label == "Prediction"]


def test_a_model_from_a_file_does_not_enter_the_class_challenge(runs_dir, offline_ds):
    from cnnkit import challenge, presets

    found = model_files.read_model_path(LABS / "cnn_mnist_model.h5")
    from_file = model_files.save_as_run(found, "mnist", owner="me")
    trained = runs.save_run(found.model, presets.get("fast_cpu").spec, {"epochs": 1}, {"loss": [1.0]},
                            {"epochs_run": 1}, "mnist", owner="me", title="fast_cpu")
    ch = challenge.ChallengeStore().open_share(offline_ds, 0.2, seed=11)
    assert [r.id for r in challenge.challenge_runs(ch)] == [trained.id]
    assert from_file.id in [r.id for r in runs.list_runs(dataset_name="mnist")]
