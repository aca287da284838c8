"""The wiring's layering: roles and cores never import the composition root (cluster/).

Read from the sources (every import, module-level or inside a function), so a lazy import
cannot hide a dependency. Top-level folders form no cycle; root modules count as their
own node (``cli``, ``errors``, the package's ``__init__``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORES = ("env", "agent", "actors", "learner", "replay", "solvers")
ROOTS = {"cluster", "cli", "__init__"}  # the composition root and what reaches it


def node_of(path: Path) -> str:
    relative = path.relative_to(ROOT)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_nodes(path: Path) -> set[str]:
    """Top-level nodes of ``mallocmuzero`` that ``path`` imports."""
    found = set()
    for item in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(item, ast.ImportFrom) and item.module and item.level == 0:
            names = [item.module] + [f"{item.module}.{a.name}" for a in item.names]
        elif isinstance(item, ast.Import):
            names = [a.name for a in item.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "mallocmuzero":  # the bare package is its lazy facade, __init__
                found.add(parts[1] if len(parts) > 1 else "__init__")
    return found


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in ROOT.glob("**/*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in (".venv", "tests", "build") or relative.parts[0].startswith("."):
            continue
        node = node_of(path)
        edges.setdefault(node, set()).update(imported_nodes(path) - {node})
    return edges


def test_roles_and_cores_never_import_the_composition_root():
    offenders = [
        f"{path.relative_to(ROOT)} imports {sorted(imported_nodes(path) & ROOTS)}"
        for folder in CORES
        for path in (ROOT / folder).glob("**/*.py")
        if imported_nodes(path) & ROOTS
    ]
    assert offenders == []


def test_no_import_cycle_between_top_level_folders():
    edges = graph()
    assert {"env", "agent", "actors", "learner", "replay", "solvers", "cluster"} <= set(edges)

    def cycle_from(start: str, node: str, seen: tuple[str, ...]) -> tuple[str, ...] | None:
        for nxt in sorted(edges.get(node, ())):
            if nxt == start:
                return (*seen, nxt)
            if nxt not in seen:
                found = cycle_from(start, nxt, (*seen, nxt))
                if found:
                    return found
        return None

    cycles = [c for n in sorted(edges) if (c := cycle_from(n, n, (n,)))]
    assert cycles == [], cycles


def test_only_the_cli_and_the_package_facade_reach_the_training_wiring():
    """Inference lives in agent/: outside cluster/, only the CLI and the package's lazy
    facade (``mmz.train_sync``, ...) name cluster/ (benchmarks of training aside)."""
    edges = graph()
    reaching = sorted(node for node, to in edges.items() if "cluster" in to and node != "cluster")
    assert reaching == ["benchmarks", "cli"], reaching


def test_loading_the_agent_through_the_package_imports_no_training_wiring():
    """``import mallocmuzero as mmz; mmz.load_agent`` leaves cluster/ unimported."""
    code = (
        "import sys, mallocmuzero as mmz\n"
        "assert callable(mmz.load_agent) and callable(mmz.solve_agent)\n"
        "print(sorted(m for m in sys.modules if m.startswith('mallocmuzero.cluster')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
