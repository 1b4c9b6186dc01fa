"""What the lecturer's Class page shows, made for a projector: the counts and the live jobs in a line each,
the leaderboard of the class's runs, and how often the page looks for news (names a student controls are
made inert by the page with `plain_text.inert`).

Everything here reads a `classroom.ClassSummary` (the class's runs and active jobs, counted from the rows it
lists, so a count never contradicts a list) and returns words or rows; the page only draws them.

- `poll_seconds`: the live part of the page asks again every `BUSY_POLL_SECONDS` while a job is queued or
  training, every `IDLE_POLL_SECONDS` when the class is idle — an idle ask reads the registry's memory and two
  folder times (`runs_stamp`), so a Start appears within 3 s and costs next to nothing meanwhile.
- `changed_since`: whether the runs the page listed are out of date (a folder's time moved, or a job listed then
  has ended); the page then lists them afresh for its counts and redraws whole at most every `REDRAW_SECONDS`.
- `counts_line`, `jobs_line`: one line each, the projector's summary above the chart.
- `leaderboard`: the runs best first (ties: fewer parameters first), ranked, in three columns that fit beside
  the chart at 1280×720 (the chart shows the parameters).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cnnkit import runs

BUSY_POLL_SECONDS = 0.5     # while anything is queued or training: a Start shows within 3 s (p90) with 100 students
IDLE_POLL_SECONDS = 2.0     # when nothing is: a new job still shows within 3 s
REDRAW_SECONDS = 5.0        # the whole page (chart, table) redraws for news at most this often; the counts every poll
LEADERBOARD_ROWS = 8        # the best runs that fit beside the chart at 1280×720


def poll_seconds(summary) -> float:
    """How often the live part of the Class page asks for news."""
    return BUSY_POLL_SECONDS if summary.jobs else IDLE_POLL_SECONDS


def changed_since(drawn_stamp: tuple[int, int], drawn_jobs: set[str], stamp_now: tuple[int, int],
                  jobs_now: Iterable[Any]) -> bool:
    """Has the class changed since the page listed its runs (`drawn_stamp`, read before that listing, and the ids
    of the jobs active then)? A run saved, shared, taken back or deleted moves a folder's time; a job active then
    that has ended since means its run is saved (the registry saves runs before it ends their jobs) — news even
    when the folder's time did not move (two changes within one tick of the file system's clock)."""
    return tuple(stamp_now) != tuple(drawn_stamp) or bool(drawn_jobs - {j.id for j in jobs_now})


def runs_stamp(root: Path | None = None) -> tuple[int, int]:
    """When the runs folder and the shared folder last changed (a run saved, shared, taken back or deleted):
    two stats, so the page can poll it every second or two and redraw its chart only on news."""
    out = []
    for d in (Path(root) if root is not None else runs.runs_dir(), runs.shared_runs_dir()):
        try:
            out.append(d.stat().st_mtime_ns)
        except OSError:
            out.append(0)
    return out[0], out[1]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def counts_line(summary) -> str:
    """"12 students · 30 runs (2 shared) · best 98.7 % · 3 training · 1 waiting", as plain text."""
    c = summary.counts
    parts = [_plural(c["students"], "student"),
             _plural(c["runs"], "run") + (f" ({c['shared']} shared)" if c.get("shared") else "")]
    if summary.best_accuracy is not None:
        parts.append(f"best {summary.best_accuracy:.1%}")
    parts += [f"{c['running']} training", f"{c['queued']} waiting"]
    return " · ".join(parts)


def jobs_line(summary, most: int = 6) -> str:
    """The live jobs in one line: "Training: Ada (epoch 2/4 · 41%), student 3 (epoch 1/4 · 5%) · Waiting:
    student 7, Bo", at most `most` names and then how many more, as plain text."""
    running = [f"{j.student} ({j.progress})" for j in summary.jobs if j.state == "running"]
    waiting = [j.student for j in summary.jobs if j.state == "queued"]
    if not running and not waiting:
        return "No job is training or waiting right now."

    def names(items: list[str], room: int) -> str:
        shown = items[:max(1, room)]
        return ", ".join(shown) + (f" and {len(items) - len(shown)} more" if len(items) > len(shown) else "")

    parts = []
    if running:
        parts.append("Training: " + names(running, most))
    if waiting:
        parts.append("Waiting: " + names(waiting, most - min(len(running), most)))
    return " · ".join(parts)


def leaderboard(summary, most: int = LEADERBOARD_ROWS) -> list[dict[str, Any]]:
    """The class's runs with a test accuracy, best first (ties: fewer parameters first), ranked; a shared run
    and its copy are one row. Values are text, ready for a table on the projector."""
    rows = sorted((r for r in summary.runs if r.test_accuracy is not None),
                  key=lambda r: (-r.test_accuracy, r.parameters if r.parameters is not None else float("inf")))
    return [{"#": i + 1, "Student": r.student, "Model": r.architecture, "Accuracy": f"{r.test_accuracy:.1%}"}
            for i, r in enumerate(rows[:most])]

