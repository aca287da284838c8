"""Time to first answer: ``solve --solver agent --time-limit S`` as a user's processes run it.

Each run is a new ``mallocmuzero solve`` process, timed from its start to its exit, with a
user cache of its own that starts empty: the first process compiles the game's kernels,
exports the agent's searches and compiles them (``agent/exported.py``); the later ones
load all of it. Writes ``BENCHMARKS-first-answer.md`` and ``.json``::

    python -m mallocmuzero.benchmarks.first_answer
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mallocmuzero.benchmarks.tables import markdown_table, write_report, written_on
from mallocmuzero.env.workload import load_workload

CLI = str(Path(sys.executable).parent / "mallocmuzero")


def run(workload: Path, fraction: float, limit: float, processes: int) -> dict:
    """Wall seconds of ``processes`` solves in turn, from an empty user cache."""
    walls = []
    with tempfile.TemporaryDirectory(prefix="mallocmuzero-first-answer-") as scratch:
        # The CLI's own compilation cache (inside the user cache), not one set outside.
        env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
        env["XDG_CACHE_HOME"] = scratch
        args = [CLI, "solve", str(workload), "--solver", "agent", "--capacity-fraction",
                f"{fraction:g}", "--time-limit", f"{limit:g}", "--out",
                f"{scratch}/solution.json"]  # fmt: skip
        for _ in range(processes):
            started = time.monotonic()
            subprocess.run(args, env=env, check=True, capture_output=True)
            walls.append(time.monotonic() - started)
    return {"workload": str(workload), "buffers": load_workload(workload).num_buffers,
            "fraction": fraction, "limit_s": limit, "walls_s": walls,
            "written": written_on()}  # fmt: skip


def markdown(result: dict) -> str:
    """The processes' wall times."""
    rows = [[str(i + 1), "empty" if i == 0 else "filled by the processes before",
             f"{wall:.1f}"] for i, wall in enumerate(result["walls_s"])]  # fmt: skip
    return "\n".join([
        "# Time to first answer",
        "",
        f"Measured {result['written']} by `python -m mallocmuzero.benchmarks.first_answer`: "
        f"`mallocmuzero solve {Path(result['workload']).name} --solver agent "
        f"--capacity-fraction {result['fraction']:g} --time-limit {result['limit_s']:g}` "
        f"({result['buffers']:,} buffers), one new process after another, each timed from "
        "its start to its exit, with a user cache that starts empty.",
        "",
        markdown_table(["process", "user cache", "wall s"], rows),
        "",
    ])  # fmt: skip


def main() -> None:
    """Measure and write the table and its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="workloads/generated/gen_transformer_0018.json")
    parser.add_argument("--fraction", type=float, default=0.25)
    parser.add_argument("--limit", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--out", default="BENCHMARKS-first-answer.md")
    args = parser.parse_args()
    result = run(Path(args.workload), args.fraction, args.limit, args.processes)
    write_report(result, args.out, markdown)


if __name__ == "__main__":
    main()
