"""cnnkit.settings: one table of every CNNKIT_* setting, one parser per type, read once per process."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from cnnkit import limits, settings
from cnnkit.__main__ import main as cli
from cnnkit.errors import TrainingError, UserError

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("word, value", [("1", True), ("true", True), ("Yes", True), ("ON", True),
                                         ("0", False), ("false", False), ("no", False), ("off", False)])
def test_booleans_accept_the_four_pairs_of_words(monkeypatch, word, value):
    monkeypatch.setenv("CNNKIT_OFFLINE", word)
    assert settings.get("offline") is value


def test_offline_off_means_off(monkeypatch):   # it used to turn offline mode on
    monkeypatch.setenv("CNNKIT_OFFLINE", "off")
    assert settings.get("offline") is False


def test_a_bad_boolean_is_a_sentence_naming_the_variable_and_the_words(monkeypatch):
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "maybe")
    with pytest.raises(settings.SettingError, match=r"CNNKIT_CLASS_MODE must be one of 1/0, true/false, yes/no, "
                                                    r"on/off, not 'maybe'"):
        settings.get("class_mode")


def test_the_callers_error_class_is_raised(monkeypatch):
    monkeypatch.setenv("CNNKIT_WORKER_JOBS", "lots")
    with pytest.raises(TrainingError, match="CNNKIT_WORKER_JOBS must be a whole number, not 'lots'"):
        settings.get("worker_jobs", TrainingError)
    monkeypatch.setenv("CNNKIT_WORKER_JOBS", "0")
    with pytest.raises(UserError, match="at least 1"):
        settings.get("worker_jobs")


def test_other_types(monkeypatch):
    monkeypatch.setenv("CNNKIT_WORKER_MEMORY", "1.5GB")
    monkeypatch.setenv("CNNKIT_JOB_SECONDS", "45")
    monkeypatch.setenv("CNNKIT_CLASS_MAX_EPOCHS", "off")
    monkeypatch.setenv("CNNKIT_CLASS_MAX_TRAIN_IMAGES", "2_000")
    assert settings.get("worker_memory") == 1_500_000_000
    assert settings.get("job_seconds") == 45.0
    assert settings.get("class_max_epochs") is None
    assert settings.get("class_max_train_images") == 2000
    monkeypatch.setenv("CNNKIT_JOB_SECONDS", "-3")
    with pytest.raises(UserError, match="CNNKIT_JOB_SECONDS must be more than 0"):
        settings.get("job_seconds")


def test_values_are_read_once_until_reset(monkeypatch):
    monkeypatch.setenv("CNNKIT_WORKER_NICE", "7")
    assert settings.get("worker_nice") == 7
    os.environ["CNNKIT_WORKER_NICE"] = "3"      # behind the back of the table: not seen until reset
    try:
        assert settings.get("worker_nice") == 7
        settings.reset()
        assert settings.get("worker_nice") == 3
    finally:
        del os.environ["CNNKIT_WORKER_NICE"]
        settings.reset()


def test_a_mapping_can_stand_in_for_the_environment():
    assert settings.get("class_max_epochs", environ={"CNNKIT_CLASS_MAX_EPOCHS": "4"}) == 4
    assert settings.get("class_one_job", environ={}) is True


def test_table_lists_every_setting_with_value_and_source(monkeypatch):
    monkeypatch.setenv("CNNKIT_WORKER_JOBS", "9")
    monkeypatch.setenv("CNNKIT_LECTURER_KEY", "secret phrase")
    rows = {r["env"]: r for r in settings.table()}
    assert set(rows) == {s.env for s in settings.SETTINGS.values()}
    assert rows["CNNKIT_WORKER_JOBS"]["value"] == "9" and rows["CNNKIT_WORKER_JOBS"]["source"] == "environment"
    assert rows["CNNKIT_WORKER_NICE"]["source"] == "default"
    assert rows["CNNKIT_LECTURER_KEY"]["value"] == "(set)"   # never printed


def test_cli_settings_prints_every_setting(monkeypatch, capsys):
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "yes")
    assert cli(["settings"]) == 0
    out = capsys.readouterr().out
    for s in settings.SETTINGS.values():
        assert s.env in out
    assert re.search(r"CNNKIT_CLASS_MODE\s+on\s+\(environment\)", out)


def test_readme_documents_every_setting_and_limit():
    readme = (ROOT / "README.md").read_text()
    missing = [s.env for s in settings.SETTINGS.values() if s.env not in readme]
    missing += [lim.env for lim in limits.LIMITS.values() if lim.env not in readme]
    assert not missing, f"README.md does not document {missing}"


def test_no_module_reads_a_cnnkit_variable_but_settings():
    files = [*(ROOT / "cnnkit").rglob("*.py"), *(ROOT / "app_pages").glob("*.py"), *ROOT.glob("*.py")]
    if (ROOT / "webapp").is_dir():
        files += (ROOT / "webapp").rglob("*.py")
    offenders = [f"{f.relative_to(ROOT)}:{i}" for f in files if f.name != "settings.py"
                 for i, line in enumerate(f.read_text().splitlines(), 1)
                 if re.search(r"os\.environ|getenv", line) and "CNNKIT_" in line]
    assert offenders == []


def test_readme_settings_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- settings table -->\n") + len("<!-- settings table -->\n")
    assert readme[start:readme.index("\n<!-- end settings table -->")] == settings.markdown(), \
        "paste `python -m cnnkit settings --markdown` into the README"


def test_worker_memory_below_the_floor_is_refused_with_a_sentence(monkeypatch):
    from cnnkit import jobs

    for low in ("1KB", "300MB", "900MB"):   # a worker with TensorFlow imported is 0.72 GB: 300 MB never trains
        monkeypatch.setenv("CNNKIT_WORKER_MEMORY", low)
        with pytest.raises(TrainingError, match=rf"CNNKIT_WORKER_MEMORY must be at least 1,000 MB, not '{low}'"):
            jobs.worker_memory_bytes(1)
    monkeypatch.setenv("CNNKIT_WORKER_MEMORY", "1.2GB")
    assert jobs.worker_memory_bytes(1) == 1_200_000_000


def _fake_cgroups(tmp_path, monkeypatch, proc: str, files: dict[str, str]) -> None:
    from cnnkit.jobs import cluster

    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "proc-cgroup").write_text(proc)
    monkeypatch.setattr(cluster, "CGROUP_ROOT", str(tmp_path))
    monkeypatch.setattr(cluster, "PROC_CGROUP", str(tmp_path / "proc-cgroup"))


@pytest.mark.parametrize("proc, files", [
    # cgroup v1: the process's own memory group (as bench_memory_ceiling.py makes one), the root unlimited
    ("4:memory:/class\n0::/\n", {"memory/memory.limit_in_bytes": "9223372036854771712",
                                  "memory/class/memory.limit_in_bytes": "2700000000"}),
    # cgroup v2: the limit on a group above the process's own, whose memory.max is "max"
    ("0::/cloud/app\n", {"cloud/memory.max": "2700000000", "cloud/app/memory.max": "max"}),
])
def test_on_community_clouds_2_7_gb_the_worker_leaves_the_web_process_its_1_5_gb(tmp_path, monkeypatch, proc,
                                                                                 files):
    """The default worker limit read from a faked cgroup of 2.7 GB: one worker (even with 16 cores), restarted by
    its nanny at 1.2 GB, so the web process keeps 1.5 GB (60 % of 2.7 GB would leave it 1.16 GB)."""
    from cnnkit.jobs import cluster

    monkeypatch.delenv("CNNKIT_WORKER_MEMORY", raising=False)
    monkeypatch.delenv("CNNKIT_WORKERS", raising=False)
    monkeypatch.setattr(cluster, "cpu_count", lambda: 16)
    _fake_cgroups(tmp_path, monkeypatch, proc, files)
    assert cluster.memory_total() == 2_700_000_000
    assert cluster.worker_count() == 1
    limit = cluster.worker_memory_bytes(1)
    assert 2_700_000_000 - cluster.TERMINATE * limit >= cluster.WEB_RESERVE_BYTES - 1
    assert limit * cluster.TERMINATE > 1_150_000_000     # Lab B's worker (about 1.2 GB) still trains
    # With no limit in any group the machine's RAM counts, and a big machine's workers get 60 % of it, ≤ 3 GB.
    _fake_cgroups(tmp_path, monkeypatch, proc, {rel: "max" if rel.endswith(".max") else "9223372036854771712"
                                                for rel in files})
    import psutil

    assert cluster.memory_total() == psutil.virtual_memory().total
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("M", (), {"total": 16_000_000_000})())
    assert cluster.worker_count() == 8 and cluster.worker_memory_bytes(8) == 1_200_000_000
    assert cluster.worker_memory_bytes(2) == 3_000_000_000


def test_secrets_fill_the_settings_the_environment_leaves_unset(monkeypatch):
    # Community Cloud: the lecturer types the settings into the app's Secrets box (st.secrets), not the environment.
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "")           # unset here; monkeypatch restores it afterwards
    monkeypatch.setenv("CNNKIT_CLASS_MAX_EPOCHS", "3")    # the environment wins over a secret
    monkeypatch.setenv("CNNKIT_OFFLINE", "")
    settings.reset()
    assert settings.get("class_mode") is False
    taken = settings.adopt({"CNNKIT_CLASS_MODE": True, "CNNKIT_CLASS_MAX_EPOCHS": "9", "CNNKIT_OFFLINE": "1",
                            "OTHER": "x", "CNNKIT_NESTED": {"a": 1}})
    assert taken == ["CNNKIT_CLASS_MODE", "CNNKIT_OFFLINE"]
    assert settings.get("class_mode") is True and settings.get("offline") is True
    assert settings.get("class_max_epochs") == 3


def test_the_app_takes_class_mode_from_st_secrets(runs_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from webapp import lecturer

    monkeypatch.setenv("CNNKIT_CLASS_MODE", "")
    monkeypatch.setattr(lecturer, "_secrets_adopted", False)
    settings.reset()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.secrets["CNNKIT_CLASS_MODE"] = "1"
    at.run()
    assert not at.exception, at.exception
    assert settings.get("class_mode") is True
    assert [t for t in at.text_input if t.label == "Nickname"], "the sidebar offers no class-mode nickname"


def test_in_class_mode_each_core_gets_a_worker_with_one_tensorflow_thread(monkeypatch):
    """A class sends many small jobs at once: one worker per core, one TensorFlow thread each (8.0 lecture jobs a
    minute against 6.0 on 2 cores, docs/BENCHMARKS.md). A student alone keeps one worker per two cores with every
    core for their job; memory still caps the count (Community Cloud's 2.7 GB: one worker, both cores)."""
    from cnnkit.jobs import cluster

    for name in ("CNNKIT_WORKERS", "CNNKIT_WORKER_THREADS", "CNNKIT_WORKER_MEMORY", "CNNKIT_CLASS_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cluster, "cpu_count", lambda: 2)
    monkeypatch.setattr(cluster, "memory_total", lambda: 24_000_000_000)
    assert (cluster.worker_count(), cluster.worker_threads(1)) == (1, None)
    monkeypatch.setenv("CNNKIT_CLASS_MODE", "1")
    assert cluster.worker_count() == 2 and cluster.worker_threads(2) == 1
    monkeypatch.setattr(cluster, "cpu_count", lambda: 8)
    assert cluster.worker_count() == 8 and cluster.worker_threads(8) == 1
    assert cluster.worker_threads(3) == 2              # CNNKIT_WORKERS=3 on 8 cores: the cores shared out
    monkeypatch.setattr(cluster, "memory_total", lambda: 2_700_000_000)
    assert cluster.worker_count() == 1 and cluster.worker_threads(1) == 8
    monkeypatch.setenv("CNNKIT_WORKER_THREADS", "3")    # set by hand: it wins
    monkeypatch.setenv("CNNKIT_WORKERS", "4")
    assert cluster.worker_count() == 4 and cluster.worker_threads(4) == 3
