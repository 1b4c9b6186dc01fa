"""`python -m cnnkit datasets`: every dataset, its shape and which source would serve it now."""

import json
import subprocess
import sys
from pathlib import Path

from cnnkit.__main__ import main

ROOT = Path(__file__).resolve().parent.parent


def test_datasets_table(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["dataset", "shape", "classes", "source", "now"]
    rows = {line.split()[0]: line for line in out[1:]}
    assert set(rows) == {"mnist", "fashion_mnist", "cifar10"}
    assert "28×28×1" in rows["mnist"] and "offline sample" in rows["mnist"]
    assert "32×32×3" in rows["cifar10"] and "not available offline" in rows["cifar10"]


def test_datasets_json_in_a_real_process(tmp_path):
    env = {"CNNKIT_OFFLINE": "1", "KERAS_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "cnnkit", "datasets", "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)
    assert [r["name"] for r in rows] == ["mnist", "fashion_mnist", "cifar10"]
    assert rows[0]["source"] == "offline-sample" and rows[2]["source"] is None
