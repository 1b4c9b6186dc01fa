"""Notebook export: the exported training script as a Jupyter notebook in the lesson's four stages.

The labs ran in Jupyter. `notebook()` takes `codegen.script` — the same code, so run on the same data
it repeats the run exactly as the script does — and cuts it at the script's own `## Heading` strings
into Markdown and code cells, grouped under the four stages (load and preprocess, architecture,
training, evaluation). Two things differ from the script, both because a notebook is not a program:
the options are parsed from a list written in the cell (`parser.parse_args([...])`, which the student
edits) instead of the command line, and the notebook draws what a script prints (the training curves,
the per-class report and a confusion matrix, with matplotlib and scikit-learn), and the architecture stage opens
with the network as the Architecture page draws it (cnnkit.network_picture, an SVG attachment). No cnnkit import
in the notebook itself.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence

from cnnkit import codegen, network_picture
from cnnkit.hyper import Hyper
from cnnkit.spec import ModelSpec

# The stage each of the script's sections belongs to, and the stage's heading.
STAGES = {
    "Settings": "1 · Load and preprocess the data",
    "Build the model": "2 · The architecture",
    "Train the model": "3 · Training",
    "Evaluate the trained model": "4 · Evaluation",
}

_CURVES = '''import matplotlib.pyplot as plt

# The training curves: loss and accuracy per epoch, on the training and the validation images.
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
for key in ("loss", "accuracy"):
    axis = left if key == "loss" else right
    axis.plot(history.history[key], marker="o", label="training")
    if "val_" + key in history.history:
        axis.plot(history.history["val_" + key], marker="o", label="validation")
    axis.set_xlabel("epoch")
    axis.set_title(key)
    axis.legend()
plt.show()'''

_REPORT = '''from sklearn.metrics import ConfusionMatrixDisplay, classification_report

# Which classes the model gets right and which it confuses.
y_pred = model.predict(test_batches, verbose=0).argmax(axis=1)
print(classification_report(y_test, y_pred, digits=3))
ConfusionMatrixDisplay.from_predictions(y_test, y_pred)
plt.show()'''

_SECTION = re.compile(r'^"""\n(## [^\n]*)\n(.*?)"""\n', re.M | re.S)


def notebook(spec: ModelSpec, hyper: Hyper, dataset_name: str = "mnist", title: str = "",
             options: Sequence[str] = ()) -> str:
    """The notebook (.ipynb JSON text) for `spec` trained with `hyper`; `options` are the script's flags
    written into the notebook's argument list (e.g. `["--npz", "data.npz"]`). Raises what `codegen.script` raises.
    """
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    code = codegen.script(spec, hyper, dataset_name, title=title)
    doc_end = code.index('"""', 3) + 3
    intro = code[3:doc_end - 3].strip()
    body = code[doc_end:].replace("args = parser.parse_args()", f"args = parser.parse_args({list(options)!r})"
                                  "  # the options, as on a command line")
    cells = [new_markdown_cell(_intro_markdown(intro))]
    pieces = _SECTION.split(body)  # code, heading, text, code, heading, text, code, ...
    cells += _code_cells(pieces[0])
    for heading, text, after in zip(pieces[1::3], pieces[2::3], pieces[3::3], strict=True):
        name = heading[3:].strip()
        if name in STAGES:
            cells.append(new_markdown_cell(f"# {STAGES[name]}"))
        cells.append(new_markdown_cell((heading + "\n\n" + text.strip()).strip()))
        if name == "Build the model":
            cells.append(_picture_cell(spec))
        cells += _code_cells(after)
        if name == "Train the model":
            cells.append(new_code_cell(_CURVES))
        elif name == "Evaluate the trained model":
            # the report comes before the model is saved and the history written
            last = cells.pop()
            split = last.source.index("model.save(")
            cells += [new_code_cell(last.source[:split].strip()), new_code_cell(_REPORT),
                      new_code_cell(last.source[split:].strip())]
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
    nbformat.validate(nb)
    return nbformat.writes(nb)


def filename(spec: ModelSpec) -> str:
    """A file name for the download: train_<model name>.ipynb."""
    return codegen.filename(spec)[: -len(".py")] + ".ipynb"


def _intro_markdown(docstring: str) -> str:
    lines = docstring.splitlines()
    head = lines[0].removeprefix("Title:").strip() if lines else "CNN Lab"
    rest = "\n".join(lines[1:]).split("Run it with")[0].strip()
    return (f"# {head}\n\n{rest}\n\nRun the cells from top to bottom (Run → Run All Cells). The options are the "
            "script's command-line flags, in the list passed to `parser.parse_args` below.")


def _picture_cell(spec: ModelSpec):
    """The network as the Architecture page draws it (an SVG attached to a Markdown cell), and in words."""
    from nbformat.v4 import new_markdown_cell

    bs = network_picture.blocks(spec)
    svg = network_picture.network_svg(bs)
    return new_markdown_cell("![The network as blocks, one per layer, each labelled with its output shape and "
                             "parameters](attachment:network.svg)\n\n" + network_picture.picture_text(bs),
                             attachments={"network.svg": {"image/svg+xml": base64.b64encode(svg.encode()).decode()}})


def _code_cells(text: str) -> list:
    from nbformat.v4 import new_code_cell

    text = text.strip()
    return [new_code_cell(text)] if text else []
