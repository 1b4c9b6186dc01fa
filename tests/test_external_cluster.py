"""An external cluster (`dask scheduler` + `dask worker`, as the README starts them) behaves like the embedded
one: a job whose worker dies is not retried, the scheduler needs no copy of cnnkit, and after the scheduler
restarts the registry reconnects and queued jobs run — or fail with a sentence when it stays away (issue #26).

Real subprocesses, killed and restarted in the test; one tiny job per phase. Marked slow (it runs in CI too).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnkit import jobs
from cnnkit.hyper import Hyper
from cnnkit.jobs import cluster as cluster_mod
from cnnkit.progress import JobState
from cnnkit.spec import LayerSpec, ModelSpec

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spec() -> ModelSpec:
    L = LayerSpec.new
    return ModelSpec((28, 28, 1), [L("Conv2D", filters=2, kernel_size=3, activation="relu"),
                                   L("MaxPooling2D", pool_size=4), L("Flatten"),
                                   L("Dense", units=10, activation="softmax")], name="tiny")


def hyper(seed: int) -> Hyper:
    return Hyper(optimizer="adam", learning_rate=0.01, batch_size=50, epochs=1, validation_split=0.2, seed=seed)


class Cluster:
    """`dask scheduler --port P` started as the README says (no PYTHONPATH, outside the repository) and one
    `dask worker` with PYTHONPATH set to the repository."""

    def __init__(self, tmp: Path) -> None:
        self.port, self.tmp, self.procs = free_port(), tmp, []
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.env_scheduler, self.env_worker = env, dict(env, PYTHONPATH=str(REPO))

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.tmp / "cluster.log", "ab")
        self.procs = [
            subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", str(self.port),
                              "--dashboard-address", ":0"], cwd=self.tmp, env=self.env_scheduler,
                             stdout=log, stderr=subprocess.STDOUT),
            subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--nworkers", "1",
                              "--nthreads", "1", "--no-dashboard"], cwd=self.tmp, env=self.env_worker,
                             stdout=log, stderr=subprocess.STDOUT),
        ]

    def kill(self) -> None:
        for p in self.procs:   # SIGKILL: no goodbye to the client, as a crash or a pulled plug gives
            try:
                p.kill()
            except ProcessLookupError:
                pass
        for p in self.procs:
            p.wait(30)


def wait_until(pred, seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


def test_an_external_scheduler_is_prepared_and_survives_a_restart(tmp_path, tiny_ds, monkeypatch):
    def _allowed_failures(dask_scheduler=None) -> int:   # made here: sent by value (the scheduler has no tests/)
        return dask_scheduler.allowed_failures

    monkeypatch.setattr(cluster_mod, "CLIENT_TIMEOUT", "3s")       # the client gives up on a lost scheduler sooner
    monkeypatch.setattr(cluster_mod, "RECONNECT_SECONDS", 1)
    monkeypatch.setattr(cluster_mod, "LAUNCH_GIVE_UP_SECONDS", 90)
    cl = Cluster(tmp_path)
    cl.start()
    reg = jobs.JobRegistry(lambda: jobs.connect(cl.address), runs_root=tmp_path / "runs")
    try:
        data = tiny_ds(n_train=100, n_test=20)
        first = reg.submit(spec(), data, hyper(1), owner="ann")
        assert first.wait(180), "the first job did not end"
        # The scheduler had no copy of cnnkit (the README's recipe) and still ran it.
        assert first.snapshot().state is JobState.FINISHED, first.snapshot().message
        # Dask's default retries a job whose worker died three times; ours are told at once, as the embedded ones.
        assert reg.client.run_on_scheduler(_allowed_failures) == 0
        assert reg.cluster.note is None

        cl.kill()
        waiting = reg.submit(spec(), data, hyper(2), owner="bob")     # queued while the scheduler is gone
        assert wait_until(lambda: reg.cluster._lost_since is not None, 60), "the lost scheduler went unnoticed"
        assert waiting.snapshot().state is JobState.QUEUED
        cl.start()
        assert waiting.wait(180), "the queued job never ran after the scheduler came back"
        assert waiting.snapshot().state is JobState.FINISHED, waiting.snapshot().message
        assert reg.client.run_on_scheduler(_allowed_failures) == 0   # the new scheduler was prepared too

        # A scheduler that stays away: the queued job fails with a sentence instead of waiting forever.
        monkeypatch.setattr(cluster_mod, "LAUNCH_GIVE_UP_SECONDS", 3)
        cl.kill()
        stranded = reg.submit(spec(), data, hyper(3), owner="cat")
        assert stranded.wait(90), "a job waited forever for a scheduler that never came back"
        snap = stranded.snapshot()
        assert snap.state is JobState.FAILED and "not reachable" in snap.message, snap.message
        assert reg.cluster.note and "Could not reach the training cluster" in reg.cluster.note   # the lecturer's
    finally:
        reg.close()
        cl.kill()
