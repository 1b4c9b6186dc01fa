"""The house rules that ARCHITECTURE.md states, checked on the code itself (with `ast`, nothing imported):
imports only point down a floor, no circles, no Streamlit under the app side, no room too big, and every
module on the map."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# cnnkit's floors, lowest first (ARCHITECTURE.md, "Floors"). A module may import its own floor or lower.
FLOORS = {
    "ground": {"settings", "limits", "errors", "identity", "plain_text", "disk_faults"},
    "plain data": {"spec", "hyper", "layers", "presets"},
    "core": {"training", "model_pool", "heap", "pipeline", "progress", "datasets", "drawing", "keras_guard", "runs",
             "run_labels"},
    "services": {"jobs", "classroom", "evaluation", "model_files", "predict", "explain", "charts", "codegen",
                 "student_state", "exploration", "run_comparison", "projector", "notebook", "challenge",
                 "challenge_scoring", "network_picture", "class_drawings"},
    "command line": {"__main__", "terminal_progress"},
}
LEVEL = {unit: i for i, units in enumerate(FLOORS.values()) for unit in units}
APP_SIDE = ("webapp", "session")   # the Streamlit side's shared parts (whichever exists)
MAX_LINES = 600
MAX_CLASS_LINES = 300
# ModelSpec is one cohesive concept (the model as plain data: layers, shapes, validation, Keras build);
# splitting it would only scatter it, so it may stay a little over.
CLASS_EXCEPTIONS = {("spec.py", "ModelSpec"): 340}
FILE_EXCEPTIONS = {"spec.py": 660}


def _unit(path: Path) -> str:
    """cnnkit/jobs/registry.py -> 'jobs'; cnnkit/spec.py -> 'spec'."""
    rel = path.relative_to(ROOT / "cnnkit")
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> set[str]:
    """Top-level names imported by `path`, lazy imports inside functions included."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            if node.module == "cnnkit":
                out |= {f"cnnkit.{a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level:   # relative: inside a package
            out.add(f".{node.module or ''}")
    return out


def _cnnkit_files() -> list[Path]:
    return sorted(p for p in (ROOT / "cnnkit").rglob("*.py") if "__pycache__" not in p.parts)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in _cnnkit_files():
        unit = _unit(path)
        if unit == "__init__":
            continue
        deps = {name.split(".")[1] for name in _imports(path) if name.startswith("cnnkit.")}
        graph.setdefault(unit, set()).update(deps - {unit})
    return graph


def test_every_cnnkit_module_has_a_floor():
    assert set(_graph()) - set(LEVEL) == set(), "add the new module to FLOORS here and in ARCHITECTURE.md"


def test_imports_only_point_down():
    upward = [f"{unit} ({floor_name(unit)}) imports {dep} ({floor_name(dep)})"
              for unit, deps in _graph().items() for dep in deps if dep in LEVEL and LEVEL[dep] > LEVEL[unit]]
    assert upward == []


def floor_name(unit: str) -> str:
    return list(FLOORS)[LEVEL[unit]]


def test_no_import_circles():
    graph = _graph()
    circles = []

    def visit(node, trail):
        for dep in sorted(graph.get(node, ())):
            if dep in trail:
                circles.append(" -> ".join(trail[trail.index(dep):] + [dep]))
            elif dep not in done:
                visit(dep, trail + [dep])
        done.add(node)

    done: set[str] = set()
    for unit in sorted(graph):
        if unit not in done:
            visit(unit, [unit])
    assert circles == []


def test_cnnkit_never_reaches_up_to_streamlit_or_the_app():
    bad = [f"{p.relative_to(ROOT)} imports {name}" for p in _cnnkit_files() for name in _imports(p)
           if name.split(".")[0] in ("streamlit", "app", "app_pages", *APP_SIDE)]
    assert bad == []


def _app_files() -> list[Path]:
    files = [ROOT / "app.py", *sorted((ROOT / "app_pages").glob("*.py"))]
    for side in APP_SIDE:
        if (ROOT / side).is_dir():
            files += sorted((ROOT / side).rglob("*.py"))
        elif (ROOT / f"{side}.py").is_file():
            files.append(ROOT / f"{side}.py")
    return [f for f in files if "__pycache__" not in f.parts]


def test_the_app_side_never_imports_a_page():
    side_files = [f for f in _app_files() if f.parts[-2] in APP_SIDE or f.stem in APP_SIDE]
    bad = [f"{f.relative_to(ROOT)} imports {name}" for f in side_files for name in _imports(f)
           if name.split(".")[0] in ("app", "app_pages")]
    pages = [f"{f.relative_to(ROOT)} imports {name}" for f in (ROOT / "app_pages").glob("*.py")
             for name in _imports(f) if name.split(".")[0] == "app_pages"]
    assert bad + pages == []


def test_no_room_too_big():
    files = _cnnkit_files() + _app_files()
    long_files = [f"{f.relative_to(ROOT)} ({n})" for f in files
                  if (n := len(f.read_text().splitlines())) > FILE_EXCEPTIONS.get(f.name, MAX_LINES)]
    big_classes = []
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ClassDef):
                n = node.end_lineno - node.lineno + 1
                if n > CLASS_EXCEPTIONS.get((f.name, node.name), MAX_CLASS_LINES):
                    big_classes.append(f"{f.relative_to(ROOT)}:{node.name} ({n})")
    assert long_files + big_classes == []


def test_architecture_md_names_every_module():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    missing = [str(f.relative_to(ROOT)) for f in _cnnkit_files() + _app_files()
               if f.stem != "__init__" and f"{f.stem}" not in text]
    assert missing == [], "ARCHITECTURE.md must say what each of these owns"
    assert "ARCHITECTURE.md" in (ROOT / "README.md").read_text()
