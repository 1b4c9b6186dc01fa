"""AppTest drives the evaluation page: empty state, one run, two runs compared, and uploads that must be refused.

Streamlit 1.67's AppTest has a real file_uploader element (`set_value((name, bytes, mime))`), so the upload
paths go through the page itself; cnnkit.model_files.load_model_file is also tested directly in
test_evaluation_model.py.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
import numpy as np
from streamlit.testing.v1 import AppTest

from cnnkit import datasets, evaluation, presets, runs
from cnnkit.hyper import Hyper

APP = str(Path(__file__).resolve().parent.parent / "app.py")

HISTORY = {"loss": [1.2, 0.7, 0.5], "accuracy": [0.6, 0.78, 0.85], "val_loss": [0.9, 0.6, 0.65],
           "val_accuracy": [0.7, 0.82, 0.81]}


def keras_bytes(model) -> bytes:
    """The model as the bytes of a .keras file, as a student uploads it."""
    with tempfile.TemporaryDirectory(prefix="test-keras-") as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        return path.read_bytes()


def _model(seed: int, shape=(28, 28, 1), classes=10, lam=False):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input(shape)]
    if lam:
        layers.append(keras.layers.Lambda(lambda x: x * 2.0))
    layers += [keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.MaxPooling2D(4), keras.layers.Flatten(),
               keras.layers.Dense(classes, activation="softmax")]
    return keras.Sequential(layers)


def _save(root, seed: int, title: str, epochs: int = 3):
    spec = presets.get(presets.FAST).spec
    history = {k: v[:epochs] for k, v in HISTORY.items()}
    return runs.save_run(_model(seed), spec, Hyper(learning_rate=0.001, batch_size=64, epochs=epochs), history,
                         {"test_accuracy": 0.1, "test_loss": 2.3, "train_seconds": 12.0, "epochs_run": epochs},
                         dataset_name="mnist", root=root, title=title)


def _open() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/evaluation.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _texts(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [m.value for m in at.caption] + [i.value for i in at.info]
                     + [e.value for e in at.error] + [w.value for w in at.warning] + [s.value for s in at.success])


def test_no_run_yet_points_to_training(runs_dir):
    at = _open()
    assert "There is no trained model for" in at.info[0].value
    training = [p for p in at.get("page_link") if "training" in p.proto.page]
    from webapp import stages

    if any(s.path == "app_pages/training.py" for s in stages.existing_stages()):
        assert training, "the empty state links to the training page"
    assert not at.metric  # nothing to evaluate yet


def test_one_run_shows_right_numbers_and_cell_gallery(runs_dir):
    run = _save(runs_dir, 1, "first run")
    at = _open()
    ds = datasets.load("mnist")  # the page's dataset: the offline sample in tests
    ev = evaluation.evaluate(run, ds)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test accuracy"] == f"{ev.accuracy:.2%}"
    assert metrics["Test loss"] == f"{ev.loss:.4f}"
    assert metrics["Mistakes"] == f"{ev.num_wrong:,} of {ev.num_images:,}"
    report = at.table[0].value
    assert list(report.index[-3:]) == ["accuracy", "macro avg", "weighted avg"]
    assert report.loc["weighted avg", "support"] == len(ds.y_test)
    # choose a cell: the gallery says how many images it holds
    cm = ev.confusion_matrix()
    t, p = np.unravel_index(np.argmax(cm - np.diag(np.diag(cm))), cm.shape)
    at.selectbox(key="_w.ev.true").set_value(str(t)).run()
    at.selectbox(key="_w.ev.pred").set_value(str(p)).run()
    assert not at.exception
    assert f"**{cm[t, p]:,}** test images of **{t}** predicted as **{p}**" in _texts(at)
    grids = [h.proto.body for h in at.get("html") if "cnnkit-grid" in h.proto.body]
    # the cell's images, then the confident mistakes and a random sample (16 each), red or green framed
    assert [g.count("<img") for g in grids] == [min(40, cm[t, p]), min(16, ev.num_wrong), 16]
    assert "Only one run for" in _texts(at)  # compare tab invites a second run
    labels = [b.label for b in at.get("download_button")]
    assert labels[:2] == ["Model (.keras)", "Report (CSV)"]


def test_two_runs_compared(runs_dir):
    a = _save(runs_dir, 1, "small", epochs=2)
    b = _save(runs_dir, 2, "bigger", epochs=3)
    at = _open()
    compare = at.multiselect(key="_w.ev.compare")
    assert set(compare.value) == {a.id, b.id}
    table = at.table[-1].value  # one column per run, newest first
    assert list(table.columns) == ["Run 1", "Run 2"] and table.loc["epochs run"].tolist() == ["3", "2"]
    assert table.loc["parameters"].tolist() == [f"{presets.get(presets.FAST).spec.summary().total_params:,}"] * 2
    # the newest run is evaluated on the page; its measured accuracy is in the table
    ds = datasets.load("mnist")
    assert table.loc["test accuracy", "Run 1"] == f"{evaluation.evaluate(b, ds).accuracy:.2%}"
    assert table.loc["test accuracy", "Run 2"] == "10.00%"  # the older one: saved metric
    # the list above the table says which run is which, by what differs (here: the epochs)
    assert "1. bigger · fast_cpu · 3 epochs" in _texts(at) and "2. small · fast_cpu · 2 epochs" in _texts(at)
    # switching run re-evaluates and keeps working
    at.selectbox(key="_w.ev.run").set_value(a.id).run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Test accuracy"] == f"{evaluation.evaluate(a, ds).accuracy:.2%}"
    # the student names the run: kept in its run.json, shown in the picker
    at.text_input(key=f"ev.name.{a.id}").set_value("two epochs only").run()
    assert not at.exception and runs.load_run(a.path).name == "two epochs only"
    assert at.selectbox(key="_w.ev.run").format_func(a.id).startswith("two epochs only · fast_cpu")


def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.segmented_control(key="_w.ev.source").set_value("Upload a .keras file").run()
    at.file_uploader(key="ev_upload").set_value((name, data, "application/octet-stream")).run()
    assert not at.exception, at.exception
    return at


def test_corrupted_upload_is_a_sentence(runs_dir):
    at = _upload(_open(), "broken.keras", b"PK\x03\x04 this is not really a zip")
    assert "damaged or is not a Keras model" in at.error[0].value
    assert not at.metric


def test_model_for_other_images_is_refused(runs_dir):
    data = keras_bytes(_model(3, shape=(32, 32, 3)))
    at = _upload(_open(), "cifar_model.keras", data)
    assert "expects images of shape 32×32×3" in at.error[0].value


def test_lambda_layer_is_refused_by_safe_mode(runs_dir):
    data = keras_bytes(_model(4, lam=True))
    at = _upload(_open(), "lambda.keras", data)
    assert "Lambda layer" in at.error[0].value


def test_good_upload_is_evaluated(runs_dir):
    model = _model(5)
    at = _upload(_open(), "mine.keras", keras_bytes(model))
    ev = evaluation.evaluate(model, datasets.load("mnist"))
    assert {m.label: m.value for m in at.metric}["Test accuracy"] == f"{ev.accuracy:.2%}"
    assert "carries no training history" in _texts(at)
