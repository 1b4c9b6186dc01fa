"""The journal of jobs: a job survives any stop of its server until its end is recorded; another live
process's jobs are never declared lost; readers never raise (issue #26)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

from cnnkit import jobs
from cnnkit.hyper import Hyper
from cnnkit.jobs import journal as journal_mod
from cnnkit.progress import JobState


def fake_job(job_id="a" * 32, owner="ann"):
    return SimpleNamespace(id=job_id, owner=owner, title="tiny", dataset_name="mnist",
                           hyper=Hyper(epochs=3), created=time.time(), runs_root=None)


def journal_at(root):
    return jobs.Journal(lambda runs_root: root if runs_root is None else runs_root)


def test_an_open_journals_job_is_not_lost_and_a_closed_ones_is(tmp_path):
    owner, other = journal_at(tmp_path), journal_at(tmp_path)
    job = fake_job()
    owner.write(job, "running")
    assert other.lost(job.id) is None            # its registry is alive in this process
    owner.close()                                # … and now it is not
    entry = other.lost(job.id)
    assert entry is not None and entry.state == "failed" and entry.owner == "ann"
    assert "lost: the server restarted while it was training" in entry.message


def test_a_job_of_a_dead_process_is_lost_and_of_a_live_one_is_not(tmp_path):
    reader = journal_at(tmp_path)
    job = fake_job()
    reader.write(job, "queued")
    path = tmp_path / ".jobs" / f"{job.id}.json"
    meta = json.loads(path.read_text())
    # A live process of this machine (this test's parent, say) owns it: never declared lost.
    parent = os.getppid()
    meta["server"] = {"host": meta["server"]["host"], "pid": parent,
                      "started": journal_mod._process_start(parent), "instance": "x"}
    path.write_text(json.dumps(meta))
    assert reader.lost(job.id) is None
    # A process that has exited (its pid may be reused later: the start time tells them apart).
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    meta["server"] = {"host": meta["server"]["host"], "pid": int(done.stdout), "started": time.time() - 5,
                      "instance": "y"}
    path.write_text(json.dumps(meta))
    entry = reader.lost(job.id)
    assert entry is not None and "waiting to train" in entry.message


def test_another_machines_job_is_alive_while_its_heartbeat_is_fresh(tmp_path):
    reader = journal_at(tmp_path)
    job = fake_job()
    reader.write(job, "running")
    path = tmp_path / ".jobs" / f"{job.id}.json"
    meta = json.loads(path.read_text())
    meta["server"] = dict(meta["server"], host="another-machine")
    path.write_text(json.dumps(meta))
    assert reader.lost(job.id) is None
    old = time.time() - journal_mod.STALE_SECONDS - 5
    os.utime(path, (old, old))
    assert reader.lost(job.id) is not None


def test_a_recorded_end_is_found_after_a_restart(tmp_path):
    owner = journal_at(tmp_path)
    job = fake_job()
    owner.write(job, "running")
    owner.record_end(job, "finished", "Finished: 3 epochs.", str(tmp_path / "run-1"))
    # Ended entries are found even while their registry is open (another process reads them).
    entry = journal_at(tmp_path).lost(job.id)
    assert entry.state == "finished" and entry.run_path == str(tmp_path / "run-1")
    lost = jobs.Job.lost(SimpleNamespace(), entry)
    assert lost.final.state is JobState.FINISHED and lost.final.run_path == str(tmp_path / "run-1")


def test_prune_forgets_old_ends_and_keeps_active_jobs(tmp_path):
    j = journal_at(tmp_path)
    active, ended = fake_job("b" * 32), fake_job("c" * 32)
    j.write(active, "running")
    j.write(ended, "running")
    j.record_end(ended, "stopped", "Stopped.", None)
    assert j.prune(keep_seconds=3600) == 0
    time.sleep(0.05)
    assert j.prune(keep_seconds=0.01) == 1
    assert sorted(p.stem for p in (tmp_path / ".jobs").glob("*.json")) == ["b" * 32]
    j.record_end(active, "finished", "Done.", None)
    time.sleep(0.05)
    j.prune(keep_seconds=0.01)
    assert not (tmp_path / ".jobs").exists()   # the runs folder holds only runs again


def test_concurrent_readers_never_raise_and_share_one_lost_job(tmp_path):
    owner = journal_at(tmp_path)
    job = fake_job()
    owner.write(job, "running")
    owner.close()
    reg = jobs.JobRegistry(SimpleNamespace(submit=None), runs_root=tmp_path, slots=1)
    try:
        got, errors = [], []
        start = threading.Barrier(8)

        def tab():
            try:
                start.wait()
                got.append(reg.get(job.id, owner="ann"))
            except Exception as err:   # noqa: BLE001 — the point of the test
                errors.append(err)

        threads = [threading.Thread(target=tab) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert len({id(g) for g in got}) == 1 and got[0].state is JobState.FAILED
        # Readers racing a writer that replaces and a pruner that deletes never raise either.
        stop = threading.Event()

        def churn():
            while not stop.is_set():
                owner.write(fake_job("d" * 32), "running")
                (tmp_path / ".jobs" / ("d" * 32 + ".json")).unlink(missing_ok=True)

        t = threading.Thread(target=churn)
        t.start()
        for _ in range(300):
            journal_at(tmp_path).lost("d" * 32)
        stop.set()
        t.join()
    finally:
        reg.close()


def test_a_reused_run_carries_the_second_students_model_name(tmp_path):
    from cnnkit import presets, runs

    class FakeModel:
        def save(self, path):
            open(path, "wb").write(b"model")

    spec_b = presets.get("fast_cpu").spec.to_dict() | {"name": "bea's model"}
    src = runs.save_run(FakeModel(), spec_b, {"epochs": 1}, {"loss": [1.0]}, {"epochs_run": 1}, "mnist",
                        root=tmp_path, owner="bea", title="bea's model", extra={"job_key": "k"})
    finished = jobs.FinishedRuns()
    finished.add("k", src.path)
    _, copy = finished.copy("k", dataset_name="mnist", root=tmp_path, owner="cal", title="cal's model",
                            spec_name="cal's model")
    assert copy.title == "cal's model" and copy.spec_dict["name"] == "cal's model" and copy.owner == "cal"


def test_a_second_server_process_never_declares_the_firsts_live_job_lost(tmp_path):
    # Another server process over the same runs folder owns a running job; a student's `?job=` (or their
    # browser's identity) reaches this process's registry: the job is not declared lost while its owner lives,
    # its journal entry stays, and once the owner has gone it says it was lost.
    job_id = "b" * 32
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from types import SimpleNamespace\n"
        "from cnnkit import jobs; from cnnkit.hyper import Hyper\n"
        "root = Path(sys.argv[1]); journal = jobs.Journal(lambda r: root)\n"
        f"job = SimpleNamespace(id='{job_id}', owner='ann', title='tiny', dataset_name='mnist', hyper=Hyper(),"
        " created=time.time(), runs_root=None)\n"
        "journal.write(job, 'running'); print('ready', flush=True); time.sleep(300)\n"), str(tmp_path)],
        stdout=subprocess.PIPE, text=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        assert writer.stdout.readline().strip() == "ready"
        reg = jobs.JobRegistry(SimpleNamespace(submit=None), runs_root=tmp_path, slots=1)
        try:
            assert reg.get(job_id, owner="ann") is None
            assert reg.job_for("ann", job_id) is None
            assert (tmp_path / ".jobs" / f"{job_id}.json").is_file()
        finally:
            reg.close()
    finally:
        writer.kill()
        writer.wait()
    later = jobs.JobRegistry(SimpleNamespace(submit=None), runs_root=tmp_path, slots=1)
    try:
        job = later.job_for("ann", job_id)
        assert job is not None and job.state is JobState.FAILED and "was lost" in job.snapshot().message
    finally:
        later.close()
