"""The package's shape: one import name, imports flowing one way, no cycle.

The source tree keeps one folder per concern (``ingest/``, ``storage/``, ``search/`` …)
mapped to subpackages of ``hikitsugi`` by pyproject.toml. Static import analysis (grimp,
import-linter) walks a package on disk, so the tests stage the package as it will be
installed — the same mapping, read from pyproject.toml — and analyse that copy.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PACKAGE_DIR: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]


def stage(dest: Path) -> Path:
    """Copy every mapped folder's Python files to where the wheel puts them; return the root."""
    for pkg, folder in PACKAGE_DIR.items():
        target = dest.joinpath(*pkg.split("."))
        for f in (REPO / folder).rglob("*.py"):
            out = target / f.relative_to(REPO / folder)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, out)
    return dest


CHECK = textwrap.dedent("""
    import sys
    import grimp

    graph = grimp.build_graph("hikitsugi", cache_dir=None)
    # Tarjan's strongly connected components over module-level imports (including imports
    # inside functions: a deferred import is still a dependency).
    index, low, stack, on, out = {}, {}, [], set(), []
    def visit(v):
        index[v] = low[v] = len(index); stack.append(v); on.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    sys.setrecursionlimit(10000)
    for m in sorted(graph.modules):
        if m not in index:
            visit(m)
    for comp in out:
        print("import cycle: " + " <-> ".join(comp))
    sys.exit(1 if out else 0)
""")


def _run(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*args], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def _cycles(root: Path) -> subprocess.CompletedProcess:
    return _run(root, sys.executable, "-c", CHECK)


def _layers(root: Path) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).parent / "lint-imports"
    return _run(root, str(lint), str(REPO / "pyproject.toml"), "--no-cache")


@pytest.fixture()
def staged(tmp_path) -> Path:
    return stage(tmp_path / "site")


def test_every_package_maps_to_a_folder_and_nothing_else_is_installed():
    packages = PYPROJECT["tool"]["setuptools"]["packages"]
    assert all(p == "hikitsugi" or p.startswith("hikitsugi.") for p in packages), packages
    for pkg in packages:
        top = max((k for k in PACKAGE_DIR if pkg == k or pkg.startswith(k + ".")), key=len)
        folder = REPO / PACKAGE_DIR[top] / Path(*pkg[len(top):].strip(".").split(".") if pkg != top else ())
        assert (folder / "__init__.py").is_file(), f"{pkg}: no {folder}/__init__.py"


def test_no_import_cycle(staged):
    r = _cycles(staged)
    assert r.returncode == 0, r.stdout + r.stderr


def test_imports_follow_the_declared_layers(staged):
    r = _layers(staged)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_the_checks_catch_a_cycle_and_a_layer_violation(staged):
    """The two checks above must be able to fail: plant a cycle (storage -> search -> storage)."""
    db = staged / "hikitsugi" / "storage" / "database.py"
    db.write_text(db.read_text() + "\n\ndef _planted():\n    from hikitsugi.search import service  # noqa\n")
    r = _cycles(staged)
    assert r.returncode == 1 and "import cycle" in r.stdout and "hikitsugi.storage.database" in r.stdout
    r = _layers(staged)
    assert r.returncode != 0 and "hikitsugi.storage.database" in r.stdout


def test_txtai_is_imported_only_by_the_peer_benchmark() -> None:
    """txtai is a benchmark-only extra (``.[peers]``): the product must never import it."""
    import re

    root = Path(__file__).resolve().parent.parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if ".venv" not in p.parts and "tests" not in p.parts and p.name != "peers.py"
                 and re.search(r"^\s*(from|import)\s+txtai\b", p.read_text(encoding="utf-8"), re.M)]
    assert offenders == []
