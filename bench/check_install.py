"""Install check: do requirements.txt and requirements-dev.txt resolve to wheels on every supported Python?

For each supported Python version (3.11, 3.12, 3.13) and each requirements file, asks pip what it would install
for that interpreter, without installing anything:

    pip install --dry-run --ignore-installed --only-binary=:all: --python-version X.Y --report FILE -r REQS

then prints every package and the version it resolves to per Python version, and exits 1 if any file does not
resolve (no wheel of some requirement for a supported version). Run:

    python bench/check_install.py [--python 3.11 3.12 3.13] [--keep-config]

What this checks and what it does not: the resolution and the existence of a wheel for Linux x86-64 (this
machine's platform) and each CPython version; pip evaluates environment markers (`sys_platform`, …) against the
running interpreter, and nothing is imported. pip runs `--isolated` by default, so a machine-wide pip
configuration (constraints, local indexes) does not decide the answer; `--keep-config` uses it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUPPORTED = ("3.11", "3.12", "3.13")
REQUIREMENTS = ("requirements.txt", "requirements-dev.txt")


def resolve(requirements: Path, python: str, isolated: bool = True) -> tuple[dict[str, str] | None, str]:
    """{package: version} pip would install from wheels for `python`, or None and pip's last lines."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
               "--python-version", python, "--report", str(report), "--quiet", "-r", str(requirements),
               "--target", str(Path(tmp) / "target")]  # pip < 24.1 wants a target with --python-version
        if isolated:
            cmd.insert(3, "--isolated")
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0 or not report.exists():
            lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()]
            return None, "\n".join(lines[-6:])
        installs = json.loads(report.read_text())["install"]
    found = {}
    for item in installs:
        meta = item["metadata"]
        url = item.get("download_info", {}).get("url", "")
        found[meta["name"].lower()] = meta["version"] + ("" if url.endswith(".whl") else " (not a wheel)")
    return found, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", nargs="+", default=list(SUPPORTED), help="Python versions (default: %(default)s)")
    parser.add_argument("--keep-config", action="store_true", help="use this machine's pip configuration")
    args = parser.parse_args(argv)
    failed = []
    for name in REQUIREMENTS:
        results = {}
        for python in args.python:
            found, why = resolve(ROOT / name, python, isolated=not args.keep_config)
            results[python] = found
            if found is None:
                failed.append(f"{name} on Python {python}:\n{why}")
            elif any("not a wheel" in v for v in found.values()):
                failed.append(f"{name} on Python {python}: " + ", ".join(
                    f"{k} {v}" for k, v in found.items() if "not a wheel" in v))
        packages = sorted({p for found in results.values() if found for p in found})
        print(f"\n{name}: {len(packages)} packages")
        width = max([len(p) for p in packages] + [7])
        print(f"  {'package':<{width}}  " + "  ".join(f"Python {p:<10}" for p in args.python))
        for package in packages:
            cells = [(results[p] or {}).get(package, "—" if results[p] is not None else "FAILED")
                     for p in args.python]
            print(f"  {package:<{width}}  " + "  ".join(f"{c:<17}" for c in cells))
        for python in args.python:
            state = "resolves to wheels" if results[python] is not None else "DOES NOT RESOLVE"
            print(f"  Python {python}: {state}")
    if failed:
        print("\nFailed:\n" + "\n\n".join(failed))
        return 1
    print(f"\nEvery requirement resolves to a wheel on Python {', '.join(args.python)} (Linux x86-64).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
