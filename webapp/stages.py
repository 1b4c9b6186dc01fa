"""The app's pages in lesson order (a `Stage` each): app.py registers them, the home page links to them,
and a page links to another only when that page exists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stage:
    path: str
    title: str
    icon: str
    blurb: str
    lecturer: bool = False   # shown in the navigation only to a browser unlocked with the lecturer key


# The pages in lesson order. app.py registers them; the home page links to them.
STAGES: tuple[Stage, ...] = (
    Stage("app_pages/home.py", "Home", ":material/home:", "What CNN Lab teaches and where to start."),
    Stage("app_pages/data.py", "1 · Data", ":material/dataset:",
          "Load and explore the images: samples, class balance, mean images, pixel values, and the "
          "preprocessing a CNN needs (scaling, channel axis, labels, validation split)."),
    Stage("app_pages/architecture.py", "2 · Architecture", ":material/account_tree:",
          "Stack layers, watch every output shape and parameter count update as Keras would report them, "
          "start from the lessons' models, export a runnable Keras script."),
    Stage("app_pages/training.py", "3 · Training", ":material/model_training:",
          "Pick the optimizer, learning rate, batch size and epochs; watch loss fall and accuracy rise, "
          "training against validation, epoch by epoch."),
    Stage("app_pages/evaluation.py", "4 · Evaluation", ":material/analytics:",
          "Test accuracy, the classification report, the confusion matrix and the images behind each "
          "mistake; compare your runs."),
    Stage("app_pages/draw.py", "5 · Draw & predict", ":material/draw:",
          "Draw a digit and watch your own model read it: every preprocessing step, the probabilities, "
          "and what each filter sees."),
    Stage("app_pages/collect.py", "Collect drawings", ":material/gesture:",
          "Add drawings to a dataset the class draws together (or to your own), one class at a time."),
    Stage("app_pages/class.py", "Class", ":material/groups:",
          "The lecturer's view: who is training, every run of the class, accuracy against parameters, "
          "sharing a model with everyone, per-student limits.", lecturer=True),
)

_ROOT = Path(__file__).resolve().parent.parent   # the app's folder: the stages' paths are relative to it


def existing_stages(lecturer: bool = False) -> list[Stage]:
    """The pages that exist, in lesson order; the lecturer's pages only when asked for."""
    return [s for s in STAGES if (_ROOT / s.path).is_file() and (lecturer or not s.lecturer)]
