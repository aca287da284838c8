"""The wheel holds the whole package and the shipped checkpoint, and works installed.

The wheel is built from this checkout and installed (not editable, ``--no-deps``) into a
fresh venv that sees the locked dependencies through a ``.pth`` line; the CLI run from a
folder outside the checkout then solves with the default (shipped) agent checkpoint.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from mallocmuzero.cluster.package_shipping import package_sources

from harness import ENV, ROOT

CHECKPOINT = ("config.json", "meta.json", "params.msgpack")


def run(*args: str, cwd: Path, timeout: float = 600) -> str:
    result = subprocess.run(list(args), cwd=cwd, env=ENV, capture_output=True, text=True,
                            timeout=timeout)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def site_packages(venv: Path) -> Path:
    return next(venv.glob("lib/python3*/site-packages"))


def test_wheel_contents_and_a_non_editable_install_solves_with_the_agent(small_suite, tmp_path):
    # Built from a copy: pip builds in the source tree, which must stay clean.
    source, wheels = tmp_path / "source", tmp_path / "wheels"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".*", "__pycache__", "runs", "workloads", "build", "*.egg-info"))  # fmt: skip
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", str(wheels), str(source), cwd=tmp_path)  # fmt: skip
    [wheel] = wheels.glob("mallocmuzero-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {f"mallocmuzero/{p.as_posix()}" for p in package_sources()}
    assert sources <= names, sorted(sources - names)
    assert "mallocmuzero/agent/search.py" in names
    assert {f"mallocmuzero/checkpoints/pretrained/{f}" for f in CHECKPOINT} <= names
    assert not [n for n in names if n.startswith(("mallocmuzero/tests/", "mallocmuzero/.venv"))]

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", str(venv), cwd=tmp_path)
    locked = Path(sys.prefix) / site_packages(Path(sys.prefix)).relative_to(sys.prefix)
    (site_packages(venv) / "locked-dependencies.pth").write_text(f"{locked}\n")
    python = str(venv / "bin" / "python")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
        "--no-index", str(wheel), cwd=tmp_path)  # fmt: skip

    where = run(python, "-c", "import mallocmuzero; print(mallocmuzero.__file__)", cwd=tmp_path)
    assert Path(where.strip()).is_relative_to(site_packages(venv))

    cli, workload = str(venv / "bin" / "mallocmuzero"), str(small_suite / "rnn_scan.json")
    run(cli, "solve", workload, "--solver", "agent", "--capacity-fraction", "0.25",
        "--out", "agent.json", cwd=tmp_path)  # fmt: skip
    solution = json.loads((tmp_path / "agent.json").read_text())
    assert solution["solver"] == "agent"
    run(cli, "validate", workload, "agent.json", cwd=tmp_path)
