"""Benchmark jobs on a process pool, two at a time, with finished rows kept in a cache.

A rerun reads the cache (JSON lines) and runs only the jobs it lacks, so an interrupted
bench resumes where it stopped.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any


def cached_rows(cache: Path, key: Callable[[dict], Hashable]) -> dict[Hashable, dict]:
    """The rows a previous run finished, by ``key``."""
    if not cache.is_file():
        return {}
    rows = (json.loads(line) for line in cache.read_text().splitlines())
    return {key(row): row for row in rows}


def run_jobs(
    jobs: Sequence[tuple],
    run_job: Callable[[tuple], dict],
    done: dict[Hashable, dict],
    key: Callable[[dict], Hashable],
    cache: Path,
    progress: Callable[[str], None],
    figure: str,
    processes: int = 2,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> list[dict]:
    """Run ``jobs`` on ``processes`` spawned workers; every row, cached ones included.

    Each finished row is appended to ``cache`` at once and reported through ``progress``
    with its key and its ``figure`` field.
    """
    progress(f"  {len(jobs)} jobs ({len(done)} cached), {processes} at a time")
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, initializer=initializer, initargs=initargs) as pool:
        for row in pool.imap_unordered(run_job, jobs):
            done[key(row)] = row
            with cache.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            progress(f"  {' '.join(map(str, key(row)))}: {row[figure]:.4f}")
    return list(done.values())
