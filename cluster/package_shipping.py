"""Ship the driver's own ``mallocmuzero`` package to the workers of a Ray cluster.

The repository root *is* the package, whatever the checkout's folder is called, so a
``ray job submit --working-dir .`` upload cannot be imported as ``mallocmuzero`` by the
actors, and a cluster's nodes may hold another version of it or none. The driver
therefore copies the package's Python sources into a folder named ``mallocmuzero`` and
hands it to every role as a ``py_modules`` runtime environment: Ray uploads it once (keyed
by its content) and puts it first on each worker's import path, so the actors run exactly
the driver's code. Only package folders (those with an ``__init__.py``) and their
``.py`` files travel: no checkouts' venvs, runs, workloads or checkpoints.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mallocmuzero.cache import PACKAGE_ROOT

PACKAGE = "mallocmuzero"


def package_sources() -> list[Path]:
    """The package's ``.py`` files, relative to its root (sub-packages included)."""
    root = PACKAGE_ROOT
    found, folders = [], [root]
    while folders:  # only folders with an __init__.py: never a venv, tests or runs
        folder = folders.pop()
        found += [p.relative_to(root) for p in folder.glob("*.py")]
        folders += [d for d in folder.iterdir() if (d / "__init__.py").is_file()]
    return sorted(found)


def stage_package(scratch: Path) -> Path:
    """Copy the package's sources into ``scratch/mallocmuzero`` (recreated); return it."""
    root = PACKAGE_ROOT
    target = scratch / PACKAGE
    shutil.rmtree(target, ignore_errors=True)
    for relative in package_sources():
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, target / relative)
    return target
