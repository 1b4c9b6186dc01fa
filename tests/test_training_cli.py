"""`python -m cnnkit train`: writes a Run, prints test metrics as JSON, refuses bad input with a sentence."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from cnnkit import runs
from cnnkit.__main__ import main
from cnnkit.hyper import Hyper
from cnnkit.progress import JobSnapshot, JobState
from cnnkit.spec import LayerSpec, ModelSpec
from cnnkit.terminal_progress import TerminalProgress


@pytest.fixture
def npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=rng.integers(0, 256, (200, 28, 28), dtype=np.uint8), y_train=np.arange(200) % 10,
             x_test=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8), y_test=np.arange(50) % 10)
    return path


def test_train_a_spec_file_writes_a_run_and_prints_metrics(npz, tmp_path, capsys):
    spec = ModelSpec((28, 28, 1), [LayerSpec.new("Flatten"), LayerSpec.new("Dense", units=10, activation="softmax")],
                     name="flat")
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(spec.to_json())
    out = tmp_path / "out"
    code = main(["train", "--dataset", str(npz), "--spec", str(spec_file), "--epochs", "2", "--batch-size", "40",
                 "--optimizer", "sgd", "--seed", "3", "--one-hot", "--train-images", "150", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["state"] == "finished" and 0 <= result["test_accuracy"] <= 1 and result["epochs_run"] == 2
    run = runs.load_run(result["run"])
    assert run.path.parent == out.resolve()
    assert run.hyper.optimizer == "sgd" and run.hyper.learning_rate == 0.01   # the optimizer's usual rate
    assert (run.hyper.batch_size, run.hyper.seed, run.hyper.labels) == (40, 3, "one_hot")
    assert run.hyper.train_images == 150 and (run.metrics["num_train"], run.metrics["num_validation"]) == (135, 15)
    assert run.metrics["test_accuracy"] == result["test_accuracy"] and len(run.history["loss"]) == 2
    assert "epoch 1/2: loss" in captured.err and "Finished 2 epochs" in captured.err


@pytest.mark.parametrize("args, words", [
    (["--epochs", "0"], "Epochs must be at least 1"),
    (["--lr", "-1"], "learning rate must be greater than 0"),
    (["--lr", "100"], "far too large"),
    (["--batch-size", "5000"], "larger than the 180 training images"),
    (["--preset", "nope"], "no preset called 'nope'"),
])
def test_bad_input_exits_2_with_one_sentence(npz, tmp_path, capsys, args, words):
    code = main(["train", "--dataset", str(npz), "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err
    assert code == 2 and words in err and "Traceback" not in err


def test_terminal_progress_draws_a_bar_on_a_tty():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    bar = TerminalProgress(stream, width=10)
    snap = JobSnapshot(
        id="x", owner=None, title="t", dataset_name="mnist", state=JobState.RUNNING, phase="training",
        epoch=1, epochs=2, batch=5, batches=10, batch_loss=0.5, batch_accuracy=0.8,
        history={"loss": [0.7], "val_loss": [0.6]}, elapsed=10.0, eta=None, queue_position=None, message="",
        metrics={}, run_path=None, hyper=Hyper())
    bar(snap)
    text = stream.getvalue()
    assert "epoch 1/2: loss 0.7000  val_loss 0.6000\n" in text
    assert "[########..] Epoch 2/2 · batch 5/10 · loss 0.5000 · accuracy 80.0% | 75% of the job · 10 s elapsed" in text
