"""The exported Jupyter notebook: the script's code in the lesson's four stages, and executed top to bottom
(nbclient) it repeats the app's run exactly as the exported script does (tests/test_codegen.py)."""

from __future__ import annotations

import json
import time

import nbformat
import numpy as np
import pytest

# The script's reproduction test's settings and tolerance, with one epoch: the notebook runs the same code.
from test_codegen import REPRO, REPRO_RTOL

from cnnkit import codegen, notebook, presets
from cnnkit.__main__ import main


def test_notebook_is_the_script_in_four_stages():
    p = presets.get("lecture")
    nb = nbformat.reads(notebook.notebook(p.spec, p.hyper, "mnist", title=p.title), as_version=4)
    headings = [c.source for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("# ")]
    assert headings[1:] == [f"# {s}" for s in notebook.STAGES.values()]
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "import cnnkit" not in code and "from cnnkit" not in code
    assert "model.summary()" in code and "ConfusionMatrixDisplay" in code
    assert "args = parser.parse_args([])" in code and "history.history" in code
    script = codegen.script(p.spec, p.hyper, "mnist", title=p.title)
    # every line of the script's code is in the notebook, but the command-line parse
    for line in script[script.index('"""', 3) + 3:].splitlines():
        if line.strip() and not line.startswith(('"""', "## ")) and "parse_args" not in line:
            assert line in code or line in "\n".join(c.source for c in nb.cells), line
    assert notebook.filename(p.spec) == "train_lecture.ipynb"


def test_the_architecture_stage_opens_with_the_network_picture():
    import base64
    import re

    from cnnkit import network_picture

    p = presets.get("lecture")
    nb = nbformat.reads(notebook.notebook(p.spec, p.hyper, "mnist", title=p.title), as_version=4)
    stage = next(i for i, c in enumerate(nb.cells) if c.source == f"# {notebook.STAGES['Build the model']}")
    picture = next(c for c in nb.cells[stage:] if "attachments" in c)
    assert nb.cells.index(picture) < next(i for i, c in enumerate(nb.cells) if i > stage and c.cell_type == "code")
    assert "](attachment:network.svg)" in picture.source
    assert network_picture.picture_text(network_picture.blocks(p.spec)) in picture.source   # and in words
    svg = base64.b64decode(picture.attachments["network.svg"]["image/svg+xml"]).decode()
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    # one block per layer and the input, each with its output shape: 28×28×1, …, the 10 scores
    names = re.findall(r'<tspan[^>]*font-weight="bold">([^<]+)</tspan>', svg)
    assert len(names) == len(p.spec.layers) + 1 and names[0] == "Input" and names[-1] == "Dense"
    assert ">28×28×1<" in svg and ">10<" in svg


def test_cli_exports_a_run_as_script_and_notebook(tmp_path, runs_dir, offline_ds, capsys):
    from cnnkit import training

    p = presets.get(presets.FAST)
    job = training.train(p.spec, offline_ds, p.hyper.replace(epochs=1, train_images=300), title="mine")
    assert main(["export", "--run", str(job.run.path), "--out", str(tmp_path / "a.py")]) == 0
    compile((tmp_path / "a.py").read_text(), "a.py", "exec")
    assert main(["export", "--run", str(job.run.path), "--format", "ipynb", "--out", str(tmp_path / "a.ipynb")]) == 0
    nbformat.validate(nbformat.read(tmp_path / "a.ipynb", as_version=4))
    assert main(["export", "--run", str(job.run.path), "--preset", "lecture"]) == 2


def test_executed_notebook_reproduces_the_apps_run(tmp_path, runs_dir, offline_ds):
    from nbclient import NotebookClient

    from cnnkit import training

    p = presets.get("lecture")
    job = training.train(p.spec, offline_ds, p.hyper.replace(**{**REPRO, "epochs": 1}), title="reproduce me")
    run = job.run
    assert run is not None, job.snapshot().message
    ds = offline_ds
    np.savez(tmp_path / "data.npz", x_train=ds.x_train, y_train=ds.y_train, x_test=ds.x_test, y_test=ds.y_test)
    text = notebook.notebook(run.spec, run.hyper, run.dataset_name, title=run.title,
                             options=["--npz", "data.npz", "--history", "history.json", "--out", "m.keras"])
    nb = nbformat.reads(text, as_version=4)
    started = time.monotonic()
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    print(f"notebook executed in {time.monotonic() - started:.1f} s")
    got = json.loads((tmp_path / "history.json").read_text())
    train_idx, val_idx = training.split_indices(ds.y_train, run.hyper)
    assert got["validation_indices"] == val_idx.tolist() and got["train_indices"] == train_idx.tolist()
    assert set(got["history"]) == set(run.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for key, values in run.history.items():
        np.testing.assert_allclose(got["history"][key], values, rtol=REPRO_RTOL, err_msg=key)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert sum(o.get("output_type") == "display_data" for o in outputs) >= 2  # the curves and the matrix
    printed = "".join(o.get("text", "") for o in outputs)
    assert "Test accuracy:" in printed and "precision" in printed
    assert float(printed.split("Test accuracy:")[1].split()[0]) == pytest.approx(run.metrics["test_accuracy"],
                                                                                 rel=REPRO_RTOL)
