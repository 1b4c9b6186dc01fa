"""Jobs on Dask: keys, dedup, fairness, budget, progress across processes, stop, a killed worker, recycling.

One embedded cluster (one worker process, one thread) serves the whole module; models and data are tiny.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from cnnkit import jobs, progress
from cnnkit.errors import TrainingError
from cnnkit.hyper import Hyper
from cnnkit.progress import JobSnapshot, JobState
from cnnkit.spec import LayerSpec, ModelSpec

L = LayerSpec.new


def tiny_spec(name="tiny", filters=4) -> ModelSpec:
    return ModelSpec((28, 28, 1), [
        L("Conv2D", filters=filters, kernel_size=3, activation="relu"),
        L("MaxPooling2D", pool_size=4),
        L("Flatten"),
        L("Dense", units=10, activation="softmax"),
    ], name=name)


def quick(**kw) -> Hyper:
    base = {"optimizer": "adam", "learning_rate": 0.01, "batch_size": 50, "epochs": 1, "validation_split": 0.2,
            "seed": 1}
    base.update(kw)
    return Hyper(**base)


@pytest.fixture(scope="module")
def client():
    c = jobs.connect(n_workers=1)
    c.wait_for_workers(1, timeout=120)
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()


@pytest.fixture
def registry(client, tmp_path):
    reg = jobs.JobRegistry(client, runs_root=tmp_path / "runs", worker_jobs=1000)
    yield reg
    for job in reg.jobs():
        job.stop()
    for job in reg.jobs():
        job.wait(60)
    reg.close()


def wait_until(pred, seconds=120, step=0.1):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


def live_workers(client) -> dict:
    """The scheduler's workers, asked afresh."""
    return client.sync(client.scheduler.identity, n_workers=-1)["workers"]


def worker_pids(client) -> set[int]:
    try:
        return set(client.run(os.getpid).values())
    except (OSError, TimeoutError, KeyError):   # a worker leaving while it is asked
        return set()


# --- pure parts ---------------------------------------------------------------------------------
def test_job_key_is_the_hash_of_what_is_computed(tiny_ds):
    ds = tiny_ds()
    fp = jobs.dataset_fingerprint(ds)
    assert fp == jobs.dataset_fingerprint(tiny_ds())                     # same arrays, same fingerprint
    assert fp != jobs.dataset_fingerprint(tiny_ds(seed=1))
    key = jobs.job_key(tiny_spec(), quick(), fp)
    assert key == jobs.job_key(tiny_spec(name="Carol's model"), quick(), fp)   # the name is not the model
    assert key != jobs.job_key(tiny_spec(filters=5), quick(), fp)
    assert key != jobs.job_key(tiny_spec(), quick(seed=2), fp)
    assert key != jobs.job_key(tiny_spec(), quick(), jobs.dataset_fingerprint(tiny_ds(seed=1)))
    hidden = {"opened": 1.0, "dataset_name": "mnist", "share": 0.2, "seed": 4, "hidden_count": 10}
    assert key != jobs.job_key(tiny_spec(), quick(), fp, hidden)               # tested without a challenge's share
    assert jobs.job_key(tiny_spec(), quick(), fp, hidden) == jobs.job_key(tiny_spec(), quick(), fp,
                                                                        dict(hidden, opened=2.0))


def _snap(**kw) -> JobSnapshot:
    base = {"id": "x", "owner": "o", "title": "t", "dataset_name": "mnist", "state": JobState.RUNNING,
            "phase": "training", "epoch": 0, "epochs": 3, "batch": 0, "batches": 10, "batch_loss": None,
            "batch_accuracy": None, "history": {}, "elapsed": 0.0, "eta": None, "queue_position": None,
            "message": "", "metrics": {}, "run_path": None, "hyper": {}}
    base.update(kw)
    return JobSnapshot(**base)


def test_progress_crosses_as_deltas_only_new_points_and_epochs():
    pub = jobs.ProgressPublisher()
    mirror = jobs.ProgressMirror(epochs=3, batches=10)
    first = pub.message(_snap(batch=2, running_points=((0.1, 2.3, 0.1), (0.2, 2.2, 0.15))))
    mirror.apply(json.loads(json.dumps(first)))                         # what msgpack can carry
    assert first["fields"]["batch"] == 2 and len(first["points"]) == 2
    assert pub.message(_snap(batch=2, running_points=((0.1, 2.3, 0.1), (0.2, 2.2, 0.15)))) is None  # nothing new
    second = pub.message(_snap(batch=10, epoch=1, history={"loss": [2.0], "val_loss": [2.1]},
                               running_points=((0.1, 2.3, 0.1), (0.2, 2.2, 0.15), (1.0, 2.0, 0.3))))
    assert second["points"] == [[1.0, 2.0, 0.3]]                        # only the new point
    assert set(second["fields"]) == {"batch", "epoch"}                  # only what changed
    mirror.apply(json.loads(json.dumps(second)))
    third = pub.message(_snap(batch=3, epoch=1, history={"loss": [2.0, 1.5], "val_loss": [2.1, 1.7]},
                              running_points=((0.1, 2.3, 0.1), (0.2, 2.2, 0.15), (1.0, 2.0, 0.3))))
    assert third["history"] == {"loss": [1.5], "val_loss": [1.7]} and "points" not in third
    mirror.apply(third)
    assert mirror.history == {"loss": [2.0, 1.5], "val_loss": [2.1, 1.7]}
    assert mirror.points == [(0.1, 2.3, 0.1), (0.2, 2.2, 0.15), (1.0, 2.0, 0.3)]
    assert mirror.fields["batch"] == 3 and mirror.fields["epoch"] == 1


def test_queue_is_round_robin_by_student():
    c = [SimpleNamespace(name=n, round=r, seq=s) for n, r, s in
         (("ann-2nd", 1, 1), ("bob-1st", 0, 2), ("cat-1st", 0, 3), ("ann-3rd", 2, 4), ("dan-2nd", 1, 5))]
    assert [x.name for x in jobs.serve_order(c)] == ["bob-1st", "cat-1st", "ann-2nd", "dan-2nd", "ann-3rd"]


def test_budget_refusal_says_how_to_fit(tiny_ds, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    monkeypatch.setenv("CNNKIT_JOB_SECONDS", "30")
    reg = jobs.JobRegistry(client=lambda: None, runs_root=tmp_path)
    try:
        reg.throughput = jobs.Throughput(flops_per_second=1e7, overhead_seconds=5)
        ds = tiny_ds(n_train=1000)
        cost = reg.estimate(tiny_spec(), ds, quick(epochs=4))
        assert cost.images == 800 and cost.epochs == 4 and cost.flops_per_image == tiny_spec().summary().flops
        assert cost.seconds > 30 and cost.advice is not None
        with pytest.raises(TrainingError) as err:
            reg.submit(tiny_spec(), ds, quick(epochs=4), owner="eve")
        words = str(err.value)
        assert words == cost.advice
        assert "more than the class limit of 30 s per job" in words
        assert "epoch" in words and "instead of 4" in words
        assert "Training images setting" in words and "smaller model" in words
        monkeypatch.delenv("CNNKIT_CLASS_MODE")                         # on one's own laptop: no cap
        assert reg.estimate(tiny_spec(), ds, quick(epochs=4)).advice is None
    finally:
        reg.close()


def test_a_start_validates_the_settings_once_and_reads_class_mode_once(tiny_ds, tmp_path, monkeypatch):
    from cnnkit import settings

    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    calls = {"validate": 0, "class_mode": 0}
    real_validate, real_get = Hyper.validate, settings.get

    def counting_validate(self, *args, **kwargs):
        calls["validate"] += 1
        return real_validate(self, *args, **kwargs)

    def counting_get(name, *args, **kwargs):
        calls["class_mode"] += name == "class_mode"
        return real_get(name, *args, **kwargs)

    monkeypatch.setattr(Hyper, "validate", counting_validate)
    monkeypatch.setattr(settings, "get", counting_get)
    reg = jobs.JobRegistry(SimpleNamespace(submit=None), runs_root=tmp_path, slots=1)
    reg.close()   # no poller: the job stays in line, nothing reaches a cluster
    job = reg.submit(tiny_spec(), tiny_ds(n_train=300), quick(), owner="ann")
    assert job.snapshot().state is JobState.QUEUED
    assert calls == {"validate": 1, "class_mode": 1}
    job.stop()
    assert job.snapshot().state is JobState.STOPPED


# --- on the cluster ---------------------------------------------------------------------------------
def test_identical_jobs_train_once_and_each_student_gets_a_run(registry, tiny_ds):
    ds = tiny_ds(n_train=300)
    a = registry.submit(tiny_spec(), ds, quick(epochs=2), owner="ann", title="Ann's")
    b = registry.submit(tiny_spec(name="other name"), ds, quick(epochs=2), owner="bob", title="Bob's")
    assert b.snapshot().shared_with == 1 and "trains once for all of you" in \
        progress.describe_progress(b.snapshot()).status
    sa, sb = a.wait(300), b.wait(60)
    assert sa.state is JobState.FINISHED and sb.state is JobState.FINISHED, (sa.message, sb.message)
    assert registry.stats["computed"] == 1 and registry.stats["shared"] == 1
    assert sa.run_path != sb.run_path
    metas = [json.loads((p / "run.json").read_text()) for p in (a.run.path, b.run.path)]
    assert [(m["owner"], m["title"]) for m in metas] == [("ann", "Ann's"), ("bob", "Bob's")]
    assert sa.history["loss"] == sb.history["loss"] and len(sa.history["loss"]) == 2
    # An identical job after the end is answered at once from the finished run.
    started = time.time()
    c = registry.submit(tiny_spec(), ds, quick(epochs=2), owner="cat", title="Cat's")
    assert c.state is JobState.FINISHED and time.time() - started < 5
    assert "Finished at once" in c.snapshot().message and registry.stats["computed"] == 1
    assert c.run.owner == "cat" and c.run.path not in (a.run.path, b.run.path)


def test_a_challenges_hidden_share_is_left_out_of_the_jobs_test_pass(runs_dir, registry, offline_ds):
    """With a class challenge open on a share of MNIST's test split, a student's job reports (Training page
    panel, saved run) the accuracy on the visible images only — the ones the Evaluation page uses — and a run
    tested on the whole split before the challenge opened is not reused for a Start during it."""
    import keras

    from cnnkit import challenge

    before = registry.submit(tiny_spec(), offline_ds, quick(seed=7), owner="ann")
    assert before.wait(300).metrics["num_test"] == 1000                      # no challenge: the whole split
    store = challenge.ChallengeStore()
    ch = store.open_share(offline_ds, 0.2, seed=4)
    job = registry.submit(tiny_spec(), offline_ds, quick(seed=7), owner="bob")
    snap = job.wait(300)
    assert snap.state is JobState.FINISHED and "reused_from" not in snap.metrics, snap.message
    visible = challenge.visible_indices(offline_ds.y_test, ch.share, ch.seed)
    assert snap.metrics["num_test"] == len(visible) == 800 and job.run.metrics["num_test"] == 800
    model = keras.saving.load_model(job.run.model_path, compile=False)
    probs = model.predict(offline_ds.x_test[visible].astype("float32") / 255.0, batch_size=256, verbose=0)
    here = float((probs.argmax(1) == offline_ds.y_test[visible]).mean())
    assert snap.metrics["test_accuracy"] == pytest.approx(here, abs=1e-6)
    assert job.run.metrics["test_accuracy"] == snap.metrics["test_accuracy"]
    assert store.scores(ch)[job.run.id]["images"] == 200                     # the hidden share: scored apart
    again = registry.submit(tiny_spec(), offline_ds, quick(seed=7), owner="cat")   # during the challenge: reused
    assert again.snapshot().metrics.get("reused_from") == job.run.id


def _thread_niceness() -> list[int]:
    import os

    return [os.getpriority(os.PRIO_PROCESS, int(t)) for t in os.listdir("/proc/self/task")]


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="thread niceness is read from Linux's /proc")
def test_workers_train_below_the_web_servers_cpu_priority(registry, tiny_ds, client):
    job = registry.submit(tiny_spec(), tiny_ds(n_train=200), quick(seed=31), owner="nice")
    assert job.wait(300).state is JobState.FINISHED
    # Every thread of the worker (TensorFlow's pools included, made after the worker started) yields to
    # the web server; the web side (this process) keeps its own priority.
    per_worker = client.run(_thread_niceness)
    assert per_worker and all(len(ts) > 3 and min(ts) >= jobs.WORKER_NICE for ts in per_worker.values()), \
        per_worker
    assert os.getpriority(os.PRIO_PROCESS, 0) < jobs.WORKER_NICE


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="Unix niceness")
def test_a_worker_yields_below_a_server_started_under_nice():
    """A server started at niceness 5 (its workers inherit 5): they go 10 steps lower, to 15, not level with it
    at 10 — a benchmark run under `nice -n 10` had its workers level with the web server, and 100 students'
    sessions went silent."""
    code = ("import os; from cnnkit.jobs import worker; "
            "print(worker.STARTED_AT_NICE, worker.yield_to_web(10), os.getpriority(os.PRIO_PROCESS, 0))")
    out = subprocess.run(["nice", "-n", "5", sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[1], check=True).stdout
    base = os.getpriority(os.PRIO_PROCESS, 0)
    assert out.split() == [str(base + 5), str(min(19, base + 15)), str(min(19, base + 15))]


def test_yield_to_web_never_raises_priority_and_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("CNNKIT_WORKER_NICE", "0")
    assert jobs.worker_nice() == 0 and jobs.yield_to_web() == 0
    monkeypatch.setenv("CNNKIT_WORKER_NICE", "40")
    assert jobs.worker_nice() == 19
    monkeypatch.setenv("CNNKIT_WORKER_NICE", "soon")
    with pytest.raises(TrainingError, match="CNNKIT_WORKER_NICE"):
        jobs.worker_nice()


def test_one_job_per_student_and_replace(registry, tiny_ds):
    ds = tiny_ds(n_train=400)
    first = registry.submit(tiny_spec(), ds, quick(batch_size=4, epochs=20), owner="dan")
    with pytest.raises(TrainingError, match="already have a job"):
        registry.submit(tiny_spec(), ds, quick(seed=3), owner="dan")
    assert registry.get(first.id, owner="dan") is first and registry.get(first.id, owner="eve") is None
    second = registry.submit(tiny_spec(), ds, quick(seed=3), owner="dan", replace=True)
    assert first.wait(60).state is JobState.STOPPED
    assert registry.active_job("dan") in (second, None)
    assert max((j for j in registry.jobs() if j.owner == "dan"), key=lambda j: j.created) is second
    assert second.wait(180).state is JobState.FINISHED, second.snapshot().message
    # A lecturer who lifts "one job at a time" lets a student run a few side by side (max_active), no more.
    x = registry.submit(tiny_spec(), ds, quick(seed=4, batch_size=4, epochs=20), owner="dan", max_active=2)
    y = registry.submit(tiny_spec(), ds, quick(seed=5, batch_size=4, epochs=20), owner="dan", max_active=2)
    assert registry.active_count("dan") == 2
    with pytest.raises(TrainingError, match="already have a job"):
        registry.submit(tiny_spec(), ds, quick(seed=6), owner="dan", max_active=2)
    x.stop()
    y.stop()
    assert x.wait(60).state is JobState.STOPPED and y.wait(60).state is JobState.STOPPED


def test_progress_streams_and_stop_acts_across_processes(registry, tiny_ds, client):
    ds = tiny_ds(n_train=1000)
    job = registry.submit(tiny_spec(), ds, quick(batch_size=2, epochs=50), owner="fay")
    assert wait_until(lambda: job.snapshot().phase == "training" and job.snapshot().batch > 0, 180)
    seen = set()
    assert wait_until(lambda: seen.add(job.snapshot().batch) or len(seen) >= 3, 30)   # it streams
    comp = job._comp
    assert comp.mirror.pid in worker_pids(client) and comp.mirror.pid != os.getpid()  # trained elsewhere
    asked = time.time()
    job.stop()
    # The worker stops after the current batch: no new batches within a couple of seconds.
    assert wait_until(lambda: comp.mirror.fields.get("phase") in ("testing", "saving", "done")
                      or comp.mirror.fields.get("state") != "running", 20)
    acted = time.time() - asked
    snap = job.wait(60)
    assert snap.state is JobState.STOPPED and "Stopped by you" in snap.message, snap.message
    assert acted < 5, f"stop took {acted:.1f} s to act"
    assert snap.run_path


def test_a_killed_worker_fails_the_job_with_a_sentence_and_the_app_goes_on(registry, tiny_ds, client):
    ds = tiny_ds(n_train=1000)
    job = registry.submit(tiny_spec(), ds, quick(batch_size=2, epochs=50), owner="gus")
    assert wait_until(lambda: job._comp is not None and job._comp.mirror is not None
                      and job._comp.mirror.pid is not None and job.snapshot().batch > 0, 180)
    os.kill(job._comp.mirror.pid, signal.SIGKILL)
    snap = job.wait(120)
    assert snap.state is JobState.FAILED
    assert "worker process training this job stopped unexpectedly" in snap.message
    # The nanny starts a fresh worker; the next job trains on it.
    after = registry.submit(tiny_spec(), ds, quick(), owner="gus")
    assert after.wait(240).state is JobState.FINISHED, after.snapshot().message


def fresh(pids: set[int], before: set[int]) -> bool:
    return bool(pids) and pids.isdisjoint(before)


def test_workers_are_recycled_after_n_jobs_and_the_next_job_trains_on_the_fresh_one(client, tiny_ds, tmp_path):
    reg = jobs.JobRegistry(client, runs_root=tmp_path / "runs", worker_jobs=1)
    try:
        before = worker_pids(client)
        job = reg.submit(tiny_spec(), tiny_ds(), quick(seed=11), owner="hal")
        assert job.wait(240).state is JobState.FINISHED, job.snapshot().message
        assert reg.stats["recycled"] == 1
        # Submitted while the worker is being replaced: it waits for the fresh worker instead of being killed
        # with the old one.
        nxt = reg.submit(tiny_spec(), tiny_ds(), quick(seed=12), owner="ian")
        assert nxt.wait(240).state is JobState.FINISHED, nxt.snapshot().message
        assert wait_until(lambda: len(live_workers(client)) == 1 and fresh(worker_pids(client), before), 120, 1)
        assert reg.stats["restored"] == 0
    finally:
        reg.close()


def test_a_worker_the_cluster_gave_up_on_is_started_again(client, tiny_ds, tmp_path):
    # On a busy machine a recycled worker can stay away from the scheduler longer than LocalCluster's
    # lost-worker timeout; the cluster then closes its nanny for good. Here the timeout is shorter than any
    # restart, so that always happens: the registry must open a fresh worker, and training goes on.
    import dask

    reg = jobs.JobRegistry(client, runs_root=tmp_path / "runs", worker_jobs=1)
    try:
        with dask.config.set({"distributed.deploy.lost-worker-timeout": "0.1s"}):
            job = reg.submit(tiny_spec(), tiny_ds(), quick(seed=13), owner="kim")
            assert job.wait(240).state is JobState.FINISHED, job.snapshot().message
            assert wait_until(lambda: reg.stats["restored"] == 1, 60), "the cluster never gave up on the worker"
            assert wait_until(lambda: len(live_workers(client)) == 1, 120, 1), "no worker came back"
        after = reg.submit(tiny_spec(), tiny_ds(), quick(seed=14), owner="kim")
        assert after.wait(240).state is JobState.FINISHED, after.snapshot().message
        assert len(client.cluster.workers) == 1
    finally:
        reg.close()


def test_a_job_lost_to_a_server_restart_says_so(client, tiny_ds, tmp_path):
    reg = jobs.JobRegistry(client, runs_root=tmp_path, slots=1)
    blocker = reg.submit(tiny_spec(), tiny_ds(), quick(batch_size=2, epochs=50, seed=5), owner="ivy")
    waiting = reg.submit(tiny_spec(), tiny_ds(), quick(seed=6), owner="jon")
    # The server restarts: a new registry (a new process) over the same runs folder. The old registry's
    # process is gone as far as the journal can tell (an open one keeps its jobs: see test_journal.py).
    reg.journal.close()
    restarted = jobs.JobRegistry(client, runs_root=tmp_path)
    try:
        lost = restarted.get(waiting.id, owner="jon")
        assert lost is not None and lost.state is JobState.FAILED
        assert "lost: the server restarted while it was" in lost.snapshot().message
        assert restarted.get(waiting.id, owner="someone else") is None
        assert restarted.get(blocker.id, owner="ivy").state is JobState.FAILED
    finally:
        for j in (blocker, waiting):
            reg.stop(j)
        blocker.wait(60)
        reg.close()
        restarted.close()


def test_snapshot_fields_cross_processes_by_name():
    # Every field the worker owns is published; a new field in JobSnapshot travels without changes here.
    local = jobs.worker._LOCAL_FIELDS | jobs.worker._GROWING_FIELDS
    sent = {f.name for f in dataclasses.fields(JobSnapshot)} - local
    assert {"state", "phase", "epoch", "batch", "batches", "elapsed", "eta", "message", "metrics"} <= sent


def _tf_threads() -> tuple[str | None, int]:
    from cnnkit.jobs.worker import import_keras

    import_keras()
    import tensorflow as tf

    return os.environ.get("CNNKIT_WORKER_THREADS"), tf.config.threading.get_intra_op_parallelism_threads()


def test_in_class_mode_the_embedded_workers_share_out_the_cores(monkeypatch):
    """The class-mode layout reaches the worker processes: each one's TensorFlow runs with the cores ÷ the
    workers (one thread each on a 2-core machine), set before its first op."""
    from cnnkit.jobs import cluster

    monkeypatch.delenv("CNNKIT_WORKER_THREADS", raising=False)
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    want = cluster.worker_threads(2)
    c = jobs.connect(n_workers=2)
    try:
        c.wait_for_workers(2, timeout=120)
        got = c.run(_tf_threads)
    finally:
        lc = c.cluster
        c.close()
        lc.close()
    assert len(got) == 2 and set(got.values()) == {(str(want), want)}
