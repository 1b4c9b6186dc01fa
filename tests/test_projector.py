"""cnnkit.projector and the class scatter on a projector: counts and jobs in a line, the leaderboard and its
ties, the poll's pace, distinct accuracy ticks and labelled points."""

from __future__ import annotations

import pytest

from cnnkit import charts, classroom, identity, projector, runs
from tests.test_classroom import _job, _run

A, B, C = (identity.new_owner_id() for _ in range(3))


@pytest.fixture
def book(tmp_path):
    return classroom.ClassBook(tmp_path / "class.json")


def test_lines_and_leaderboard_agree_with_the_lists(runs_dir, book):
    _run(runs_dir, "single_conv", A, 0.98)
    keep = _run(runs_dir, "fast_cpu", B, 0.98)        # the same accuracy with fewer parameters: ranked first
    _run(runs_dir, "fast_cpu", C, 0.975)
    runs.share_run(keep, shared_by="Bo")
    book.set_nickname(B, "Bo")
    jobs = [_job(A, "running", epoch=1, epochs=4, job_fraction=0.41), _job(C, "queued", queue_position=1)]
    s = classroom.summarize(classroom.class_runs(), jobs, book)
    assert projector.counts_line(s) == "3 students · 3 runs (1 shared) · best 98.0% · 1 training · 1 waiting"
    assert projector.jobs_line(s) == f"Training: {book.label(A)} (epoch 2/4 · 41%) · Waiting: {book.label(C)}"
    board = projector.leaderboard(s)
    assert [(r["#"], r["Student"], r["Model"], r["Accuracy"]) for r in board] == [
        (1, "Bo", "fast_cpu", "98.0%"), (2, book.label(A), "single_conv", "98.0%"),
        (3, book.label(C), "fast_cpu", "97.5%")]                   # the shared copy is no second row
    assert projector.poll_seconds(s) == projector.BUSY_POLL_SECONDS
    idle = classroom.summarize(classroom.class_runs(), [], book)
    assert projector.poll_seconds(idle) == projector.IDLE_POLL_SECONDS <= 2.5   # a Start shows within 3 s
    assert projector.jobs_line(idle) == "No job is training or waiting right now."


def test_jobs_line_says_how_many_more(runs_dir, book):
    jobs = [_job(identity.new_owner_id(), "running", epoch=0, epochs=2, job_fraction=0.1) for _ in range(9)]
    line = projector.jobs_line(classroom.summarize([], jobs, book), most=3)
    assert line.count("(epoch 1/2 · 10%)") == 3 and line.endswith("and 6 more")


def test_runs_stamp_changes_when_a_run_is_saved(runs_dir, book):
    before = projector.runs_stamp()
    import time

    time.sleep(0.01)
    _run(runs_dir, "fast_cpu", A, 0.9)
    assert projector.runs_stamp() != before


def test_the_page_knows_its_runs_are_out_of_date_when_a_job_it_listed_has_ended(runs_dir, book):
    """A run saved while the page was listing (or within one tick of the folder's clock) leaves the folder's time
    where the page read it; the job that ended with that run still tells the page its listing is out of date."""
    stamp = projector.runs_stamp()
    a, b = _job(A, "running", id="ja"), _job(B, "queued", id="jb")
    assert not projector.changed_since(stamp, {"ja", "jb"}, stamp, [a, b])
    assert not projector.changed_since(stamp, {"ja"}, stamp, [a, b])           # a new job: counted live, no redraw
    assert projector.changed_since(stamp, {"ja", "jb"}, stamp, [b])            # ja ended: its run is saved
    import time

    time.sleep(0.01)
    _run(runs_dir, "fast_cpu", C, 0.9)
    assert projector.changed_since(stamp, {"ja", "jb"}, projector.runs_stamp(), [a, b])   # a run saved
    assert projector.REDRAW_SECONDS < 10 and projector.BUSY_POLL_SECONDS < 3


def test_accuracy_ticks_are_distinct_and_points_are_labelled(runs_dir, book):
    accs = [0.99, 0.985, 0.98, 0.978, 0.975, 0.97]
    for i, acc in enumerate(accs):
        owner = identity.new_owner_id()
        if i == 0:
            book.set_nickname(owner, "Ada Lovelace-Byron")
        _run(runs_dir, "fast_cpu", owner, acc)
    points = classroom.summarize(classroom.class_runs(), [], book).scatter_points()
    fig = charts.class_scatter_figure(points, large=True)
    ticks = list(fig.layout.yaxis.ticktext)
    assert len(ticks) == len(set(ticks)) >= 3, ticks              # not "99 %, 98 %, 98 %"
    assert ticks == ["97.0 %", "97.5 %", "98.0 %", "98.5 %", "99.0 %"]
    labels = [t for trace in fig.data for t in trace.text]
    assert "Ada Lovelace-…" in labels and sum(t.startswith("student ") for t in labels) == 5
    assert "text" in fig.data[0].mode


def test_a_waiting_student_polls_less_often_than_a_training_one():
    """100 students' pages asking once a second kept the web process saturated (bench_lecture, 100 students); a
    place in line moves only when a job ahead ends, so a waiting job is asked about every 3 s."""
    from cnnkit.progress import JobState, poll_seconds

    assert poll_seconds(JobState.RUNNING) == 1.0 and poll_seconds(JobState.QUEUED) == 3.0
    assert poll_seconds(JobState.QUEUED, slower=2) == 6.0
    assert all(poll_seconds(s) is None for s in (JobState.FINISHED, JobState.STOPPED, JobState.FAILED))

