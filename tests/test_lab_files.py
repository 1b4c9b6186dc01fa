"""The labs' own model files (Keras 2: lab B .h5, lab C JSON + HDF5 weights, lab D .h5py), read through the
command line with the accuracy Keras itself reported, and every bad file refused with a sentence.

The files in tests/lab_files/ were written by Keras 2 (tf-keras) with tests/lab_files/write_lab_files.py,
which also wrote expected.json: the test accuracy Keras reported for each.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from cnnkit import evaluation, model_files
from cnnkit.__main__ import main
from cnnkit.errors import ModelFileError

LABS = Path(__file__).resolve().parent / "lab_files"
EXPECTED = json.loads((LABS / "expected.json").read_text())


def _cli_json(capsys, *argv: str):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("filename", list(EXPECTED))
def test_cli_evaluates_each_lab_file_with_the_accuracy_keras_reported(capsys, filename):
    want = EXPECTED[filename]
    argv = ["evaluate", "--model", str(LABS / filename), "--dataset", want["dataset"], "--json"]
    if "weights" in want:
        argv += ["--weights", str(LABS / want["weights"])]
    got = _cli_json(capsys, *argv)
    assert got["format"] == ("json+hdf5" if "weights" in want else "hdf5")
    assert got["read"].startswith(("Keras 2 model (HDF5", "Keras 2 architecture (JSON)"))
    assert f"{want['params']:,} parameters" in got["read"]
    assert got["test_accuracy"] == pytest.approx(want["accuracy"], abs=1e-6)


def test_the_page_sentence_says_what_was_read_and_mapped():
    h5py_file = model_files.read_model_path(LABS / "fashion_model_dropout.h5py")
    assert h5py_file.sentence == "Keras 2 model (HDF5, named .h5py), read as Keras 3; 356,234 parameters."
    lab_c = model_files.read_model((LABS / "model_digit.json").read_bytes(), "model_digit.json",
                                   (LABS / "model_digit.h5").read_bytes(), "model_digit.h5")
    assert lab_c.sentence == ("Keras 2 architecture (JSON) with its weights (model_digit.h5), read as Keras 3 "
                              "(9 layer class paths mapped); 1,199,882 parameters.")


def test_cli_predicts_and_explains_with_a_lab_file(capsys, tmp_path, offline_ds):
    from PIL import Image

    Image.fromarray(255 - offline_ds.x_test[0, :, :, 0]).save(tmp_path / "digit.png")
    rows = _cli_json(capsys, "predict", "--model", str(LABS / "cnn_mnist_model.h5"), str(tmp_path / "digit.png"),
                     "--json")
    assert rows[0]["label"] in "0123456789"
    got = _cli_json(capsys, "explain", "--model", str(LABS / "model_digit.json"), "--weights",
                    str(LABS / "model_digit.h5"), str(tmp_path / "digit.png"), "--out", str(tmp_path / "h.png"),
                    "--conv", "10,12,1", "--json")
    assert (tmp_path / "h.png").is_file() and "convolution" in got


@pytest.mark.parametrize("files", [("lambda_model.h5",), ("lambda_model.h5py",),
                                   ("lambda_model.json", "lambda_weights.h5")])
def test_a_lambda_layer_is_refused_in_every_format(capsys, files):
    argv = ["evaluate", "--model", str(LABS / files[0]), "--dataset", "mnist"]
    if len(files) > 1:
        argv += ["--weights", str(LABS / files[1])]
    assert main(argv) == 2
    assert "contains a Lambda layer (Python code stored in the file)" in capsys.readouterr().err


def test_lambda_is_refused_before_keras_builds_anything(monkeypatch):
    monkeypatch.setattr(model_files, "_keras_load", lambda *a: pytest.fail("Keras was asked to load it"))
    with pytest.raises(ModelFileError, match="Lambda layer"):
        model_files.read_model_path(LABS / "lambda_model.h5")


def test_a_wrong_shape_model_is_refused_with_its_sentence(capsys):
    assert main(["evaluate", "--model", str(LABS / "cifar_shaped_model.h5"), "--dataset", "mnist"]) == 2
    assert "This model expects images of shape 32×32×3, but MNIST digits images are 28×28×1" in \
        capsys.readouterr().err


def test_a_random_binary_named_h5_is_refused(tmp_path):
    junk = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    with pytest.raises(ModelFileError, match=r"random\.h5 is not a \.keras file, a Keras 2 model \(HDF5\)"):
        model_files.read_model(junk, "random.h5")
    with pytest.raises(ModelFileError, match="starts like an HDF5 file but cannot be read"):
        model_files.read_model(model_files.HDF5_SIGNATURE + junk, "random.h5")


def test_parts_alone_or_mismatched_get_sentences():
    with pytest.raises(ModelFileError, match=r"holds only a model's weights \(model.save_weights\)"):
        model_files.read_model_path(LABS / "cnn_mnist_weights.h5")
    with pytest.raises(ModelFileError, match="without its weights"):
        model_files.read_model_path(LABS / "model_digit.json")
    with pytest.raises(ModelFileError, match="do not fit its architecture"):
        model_files.read_model_path(LABS / "model_digit.json", LABS / "cnn_mnist_weights.h5")


def test_limits_are_checked_before_the_model_is_built(monkeypatch):
    monkeypatch.setattr(model_files, "_keras_load", lambda *a: pytest.fail("Keras was asked to load it"))
    monkeypatch.setenv("CNNKIT_LIMIT_MODEL_PARAMS", "1000000")
    with pytest.raises(ModelFileError, match=r"model_digit\.(json|h5) declares 1,199,882 parameters"):
        model_files.read_model_path(LABS / "model_digit.json", LABS / "model_digit.h5")
    monkeypatch.setenv("CNNKIT_LIMIT_SPEC_LAYERS", "5")
    with pytest.raises(ModelFileError, match="fashion_model_dropout.h5py has 18 layers"):
        model_files.read_model_path(LABS / "fashion_model_dropout.h5py")
    monkeypatch.setenv("CNNKIT_LIMIT_MODEL_FILE_BYTES", "100000")
    with pytest.raises(ModelFileError, match="CNNKIT_LIMIT_MODEL_FILE_BYTES"):
        model_files.read_model_path(LABS / "cnn_mnist_model.h5")


def test_the_same_file_scores_the_same_whatever_its_name(offline_ds):
    data = (LABS / "cnn_mnist_model.h5").read_bytes()
    a = model_files.load_model_file(data, "cnn_mnist_model.h5")
    b = model_files.load_model_file(data, "no_extension")
    assert evaluation.evaluate(a, offline_ds).accuracy == evaluation.evaluate(b, offline_ds).accuracy
    assert os.path.getsize(LABS / "model_digit.h5") < 5_000_000


# --- the Evaluation page reads the lab files (AppTest) ----------------------------------------
def _evaluation_page_with(files):
    from test_page_evaluation import _open

    at = _open()
    at.segmented_control(key="_w.ev.source").set_value("A model file").run()
    at.file_uploader(key="ev_upload").set_value([(f, (LABS / f).read_bytes(), "application/octet-stream")
                                                 for f in files]).run()
    return at


@pytest.mark.parametrize("files", [("cnn_mnist_model.h5",), ("model_digit.h5", "model_digit.json")])
def test_the_evaluation_page_reads_a_lab_file_with_the_accuracy_keras_reported(runs_dir, files):
    at = _evaluation_page_with(files)
    assert not at.exception and not at.error, [e.value for e in at.error]
    want = EXPECTED["model_digit.json" if "model_digit.json" in files else files[0]]
    captions = " ".join(c.value for c in at.caption)
    assert "read as Keras 3" in captions and f"{want['params']:,} parameters" in captions
    assert {m.label: m.value for m in at.metric}["Test accuracy"] == f"{want['accuracy']:.2%}"


def test_the_evaluation_page_refuses_a_lambda_lab_file(runs_dir):
    at = _evaluation_page_with(("lambda_model.h5py",))
    assert "contains a Lambda layer" in " ".join(e.value for e in at.error)
