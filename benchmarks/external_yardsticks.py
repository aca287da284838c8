"""External yardsticks: MiniMalloc's challenging instances, our solvers beside OmniMalloc's.

The 11 instances of google/minimalloc's ``benchmarks/challenging`` (read from
``../shared/workloads/minimalloc``) all pack fully into their capacity (MiniMalloc finds
the packing in seconds), so in the game the optimum is every byte in fast memory. Each of
the project's solvers plays them at the same time limits; OmniMalloc's allocators
(PyPI ``omnimalloc``, an optional dependency) place every buffer at an offset with no
capacity, so their peak says whether they pack the instance, and the buffers that end
above the capacity are left in slow memory to score them in the game's terms. Every
solution is checked by the validator (no overlap, inside the capacity) and its time is
recomputed by the cost model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mallocmuzero.agent.solve import solve_agent
from mallocmuzero.benchmarks.tables import machine
from mallocmuzero.env.importers.minimalloc import import_minimalloc_csv
from mallocmuzero.env.solution import Solution, make_solution, validation_errors
from mallocmuzero.env.workload import Workload
from mallocmuzero.solvers.registry import solve

LIMITS = (5.0, 20.0)
SEARCH_SOLVERS = ("restarts", "beam", "cpsat", "canonical", "packing")
# MiniMalloc's own times on these instances, as its authors' slides give them (ms); the
# slides' other instances fall between these two.
MINIMALLOC_PUBLISHED_MS = {"A": 4910, "K": 628}
OMNIMALLOC = ("telamalloc", "supermalloc", "greedy_by_area", "best_fit")


def minimalloc_instances(folder: Path) -> list[tuple[str, Workload]]:
    """MiniMalloc's instances in ``folder`` (``A.1048576.csv`` ...): (letter, workload)."""
    paths = sorted(Path(folder).glob("*.csv"))
    return [(path.name.split(".")[0], import_minimalloc_csv(path)) for path in paths]


def instruction_starts(workload: Workload) -> np.ndarray:
    """When each instruction starts in the instance's own time units, then the end [T+1]."""
    return np.concatenate([[0], np.cumsum(workload.repeat).astype(np.int64)])


def area_share(workload: Workload, offsets: np.ndarray) -> float:
    """Share of the total area (size x live time) that ``offsets`` put in fast memory."""
    area = workload.size * workload.live_time()
    return float(area[offsets >= 0].sum() / area.sum())


def omnimalloc_placement(workload: Workload, allocator: str) -> tuple[np.ndarray, int]:
    """OmniMalloc's offsets for every buffer (no capacity) and the peak they reach."""
    from omnimalloc import Allocation, allocate

    times = instruction_starts(workload)
    buffers = [
        Allocation(b, int(workload.size[b]), int(times[workload.start[b]]),
                   int(times[workload.end[b]]))
        for b in range(workload.num_buffers)
    ]  # fmt: skip
    placed = allocate(buffers, allocator)
    offsets = np.full(workload.num_buffers, -1, dtype=np.int64)
    for allocation in placed:
        offsets[allocation.id] = allocation.offset
    return offsets, int((offsets + workload.size).max())


def row(
    workload: Workload, solver: str, limit: float | None, solution: Solution, wall_s: float
) -> dict[str, Any]:
    """One table row: validity, area share, speed-up over all-slow, full packing."""
    offsets = np.asarray(solution.offsets)
    return {
        "instance": workload.name, "buffers": workload.num_buffers, "solver": solver,
        "limit_s": limit, "wall_s": wall_s,
        "valid": validation_errors(workload, offsets, workload.capacity) == [],
        "area_share": area_share(workload, offsets),
        "speedup": solution.all_slow_time_s / solution.estimated_time_s,
        "full": bool((offsets >= 0).all()),
        "nodes": solution.extra.get("nodes"),  # the packing search's, None for the others
    }  # fmt: skip


def play(workload: Workload, solver: str, limit: float | None, checkpoint: str | None):
    """The project's ``solver`` at ``limit`` seconds: (solution, wall seconds)."""
    started = time.perf_counter()
    if solver == "agent":
        solution = solve_agent(workload, checkpoint)
    else:
        solution = solve(solver, workload, time_limit=limit)
    return solution, time.perf_counter() - started


def instance_rows(
    workload: Workload, limits: Sequence[float], checkpoint: str | None, omnimalloc: bool
) -> list[dict[str, Any]]:
    """Every solver on one instance."""
    rows = [row(workload, "msa", None, *play(workload, "msa", None, None))]
    for limit in limits:
        rows += [row(workload, s, limit, *play(workload, s, limit, None)) for s in SEARCH_SOLVERS]
    rows.append(row(workload, "agent", None, *play(workload, "agent", None, checkpoint)))
    return rows + (omnimalloc_rows(workload) if omnimalloc else [])


def omnimalloc_rows(workload: Workload) -> list[dict[str, Any]]:
    """Every OmniMalloc allocator on one instance; what ends above the capacity is slow."""
    rows = []
    for allocator in OMNIMALLOC:
        started = time.perf_counter()
        offsets, peak = omnimalloc_placement(workload, allocator)
        wall = time.perf_counter() - started
        inside = np.where(offsets + workload.size <= workload.capacity, offsets, -1)
        solution = make_solution(workload, inside, f"omnimalloc:{allocator}")
        rows.append({**row(workload, f"omnimalloc:{allocator}", None, solution, wall),
                     "peak_over_capacity": peak / workload.capacity})  # fmt: skip
    return rows


def warm_up(workload: Workload) -> None:
    """Compile every solver's kernels once, so no timed run pays for compilation."""
    for solver in ("msa", *SEARCH_SOLVERS):
        solve(solver, workload, time_limit=0.5)


def omnimalloc_available() -> str | None:
    """None when OmniMalloc imports, else why not."""
    try:
        import omnimalloc  # noqa: F401
    except ImportError as exc:
        return f"omnimalloc is not installed ({exc}); `make bench` installs the bench extra"
    return None


def run(
    folder: Path,
    checkpoint: str | None = None,
    limits: Sequence[float] = LIMITS,
    progress: Callable[[str], None] = print,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Every instance of ``folder``; finished instances are cached in ``cache`` (JSON lines)."""
    paths = sorted(Path(folder).glob("*.csv"))
    if not paths:
        return {"skipped": f"{folder} holds no MiniMalloc instances (../shared is absent)"}
    missing = omnimalloc_available()
    key = {"limits": list(limits), "checkpoint": checkpoint, "omnimalloc": missing is None}
    done = {}
    if cache is not None and cache.is_file():
        for line in cache.read_text().splitlines():
            record = json.loads(line)
            if record["key"] == key:
                done[record["instance"]] = record["rows"]
    warm_up(import_minimalloc_csv(paths[0]))
    rows = []
    for path in paths:
        workload = import_minimalloc_csv(path)
        if workload.name not in done:
            progress(f"  {workload.name}: {workload.num_buffers} buffers ...")
            done[workload.name] = instance_rows(workload, limits, checkpoint, missing is None)
            if cache is not None:
                with cache.open("a") as handle:
                    record = {"key": key, "instance": workload.name, "rows": done[workload.name]}
                    handle.write(json.dumps(record) + "\n")
        rows += done[workload.name]
    return {"rows": rows, "limits": list(limits), "omnimalloc_missing": missing}


def solver_label(r: dict[str, Any]) -> str:
    """``restarts @5s``, ``msa``, ``omnimalloc:telamalloc``."""
    return f"{r['solver']} @{r['limit_s']:g}s" if r["limit_s"] is not None else r["solver"]


def markdown(result: dict[str, Any]) -> str:
    """The external-yardsticks section of BENCHMARKS.md."""
    if "skipped" in result:
        return f"Skipped: {result['skipped']}."
    rows = result["rows"]
    labels = list(dict.fromkeys(solver_label(r) for r in rows))
    instances = list(dict.fromkeys(r["instance"] for r in rows))
    by = {(r["instance"], solver_label(r)): r for r in rows}
    header = "| instance | " + " | ".join(labels) + " |"
    lines = [header, "|---|" + "---|" * len(labels)]
    for name in instances:
        cells = []
        for label in labels:
            r = by[(name, label)]
            cell = f"{r['area_share']:.1%} / {r['speedup']:.2f}x / {r['wall_s']:.1f}s"
            if r["full"]:
                cell = f"**{cell} full**"
            if "peak_over_capacity" in r:
                cell += f" (peak {r['peak_over_capacity']:.2f}x cap)"
            cells.append(cell if r["valid"] else f"INVALID {cell}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    summary = []
    for label in labels:
        mine = [by[(n, label)] for n in instances]
        full = sum(r["full"] for r in mine)
        share = np.mean([r["area_share"] for r in mine])
        summary.append(f"| {label} | {full} of {len(mine)} | {share:.1%} | "
                       f"{np.mean([r['wall_s'] for r in mine]):.1f} |")  # fmt: skip
    invalid = sum(not r["valid"] for r in rows)
    note = "\n\n" + agent_limit_note(rows) if any(r["solver"] == "agent" for r in rows) else ""
    note += "" if not result.get("omnimalloc_missing") else (
        f"\n\nOmniMalloc's rows are missing: {result['omnimalloc_missing']}."
    )  # fmt: skip
    return "\n".join([
        "Each cell: share of the area (size x live time) in fast memory / speed-up over "
        "all-slow (10x is every byte fast) / wall time; **full** marks a full packing. "
        f"{len(rows) - invalid} of {len(rows)} solutions pass the validator.",
        "",
        *lines,
        "",
        "| solver | instances packed fully | mean share of the area | mean wall time (s) |",
        "|---|---|---|---|",
        *summary,
    ]) + note  # fmt: skip


def agent_limit_note(rows: list[dict[str, Any]]) -> str:
    """What keeps the agent below the packing search on full packings, from the rows."""
    limit = max((r["limit_s"] for r in rows if r["limit_s"] is not None), default=None)

    def of(solver: str, at: float | None) -> list[dict[str, Any]]:
        return [r for r in rows if r["solver"] == solver and r["limit_s"] == at]

    agent, packing, canonical = of("agent", None), of("packing", limit), of("canonical", limit)
    if not packing or not canonical:
        return ""
    full = [r for r in packing if r["full"] and r.get("nodes")]
    nodes = int(np.median([r["nodes"] for r in full])) if full else 0
    count = lambda mine: sum(r["full"] for r in mine)  # noqa: E731
    share = lambda mine: np.mean([r["area_share"] for r in mine])  # noqa: E731
    return (
        f"**What limits the agent on full packings.** The agent packs {count(agent)} of "
        f"{len(agent)} (mean {share(agent):.1%} of the area); the packing search "
        f"{count(packing)} of {len(packing)} at {limit:g} s. A full packing needs every "
        "buffer right: the packing search backtracks over whole canonical packings (a median "
        f"of {nodes:,} search nodes to each packing it found), while a game trajectory "
        "decides each buffer once and never takes a placement back. The game itself can "
        "play the canonical order (the dynamic rule's pick with the lowest-offset candidate "
        "is MiniMalloc's greedy rollout), but that greedy rollout, restarted on its ties "
        f"for {limit:g} s (`canonical`), packs {count(canonical)} of {len(canonical)} "
        f"({share(canonical):.1%} of the area): the orders that pack sit deep in a search "
        "tree that a one-pass trajectory, learned or planned over a few hundred "
        "simulations, does not reach. The lever is backtracking at solve time (the packing "
        "search as the agent's fallback where everything may fit), not the game."
    )


def packing_rows(folder: Path, limit: float, progress: Callable[[str], None]) -> list[dict]:
    """The packing search at ``limit`` on every instance, OmniMalloc's allocators beside it."""
    missing = omnimalloc_available()
    rows = []
    instances = minimalloc_instances(folder)
    if instances:
        solve("packing", instances[0][1], time_limit=0.5)  # compile before any clock starts
    for letter, workload in instances:
        packing = row(workload, "packing", limit, *play(workload, "packing", limit, None))
        progress(f"  {letter}: packing {'full' if packing['full'] else 'not full'} "
                 f"({packing['area_share']:.1%}) in {packing['wall_s']:.2f} s")  # fmt: skip
        extra = omnimalloc_rows(workload) if missing is None else []
        rows += [{**r, "letter": letter} for r in [packing, *extra]]
    return rows


def packing_markdown(rows: list[dict], limit: float, where: str) -> str:
    """Per instance: the packing search's time to a full packing (or its area share)."""
    letters = list(dict.fromkeys(r["letter"] for r in rows))
    by = {(r["letter"], r["solver"]): r for r in rows}
    allocators = [a for a in OMNIMALLOC if any((x, f"omnimalloc:{a}") in by for x in letters)]
    lines = [
        f"The packing search (`--solver packing --time-limit {limit:g}`) on MiniMalloc's 11 "
        f"challenging instances, measured on {where}; OmniMalloc's allocators in the same "
        "run (their peak over the capacity: 1.00 is a full packing). MiniMalloc's own times "
        "are its authors' (another machine).",
        "",
        "| instance | buffers | packing: time to full packing, or area share | MiniMalloc "
        "(published) | " + " | ".join(allocators) + " |",
        "|---|---|---|---|" + "---|" * len(allocators),
    ]
    for x in letters:
        p = by[(x, "packing")]
        cell = f"**full in {p['wall_s']:.2f} s**" if p["full"] else f"{p['area_share']:.1%}"
        published = MINIMALLOC_PUBLISHED_MS.get(x)
        mm = f"{published / 1000:.2f} s" if published else "0.6 to 5.4 s"
        omni = [f"{by[(x, f'omnimalloc:{a}')]['peak_over_capacity']:.2f}x in "
                f"{by[(x, f'omnimalloc:{a}')]['wall_s']:.2f} s" for a in allocators]  # fmt: skip
        lines.append(f"| {x} | {p['buffers']} | {cell} | {mm} | " + " | ".join(omni) + " |")
    full = sum(by[(x, "packing")]["full"] for x in letters)
    valid = all(r["valid"] for r in rows)
    lines += ["", f"Full packings: {full} of {len(letters)}; every solution valid: {valid}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    """``python -m mallocmuzero.benchmarks.external_yardsticks``: the packing table."""
    import argparse

    parser = argparse.ArgumentParser(description=packing_markdown.__doc__)
    default = Path(__file__).resolve().parents[2] / "shared" / "workloads" / "minimalloc"
    parser.add_argument("--minimalloc", default=str(default))
    parser.add_argument("--limit", type=float, default=20.0)
    parser.add_argument("--out", default="BENCHMARKS-packing.md")
    args = parser.parse_args()
    rows = packing_rows(Path(args.minimalloc), args.limit, print)
    if not rows:
        raise SystemExit(f"{args.minimalloc}: no MiniMalloc instances")
    where = f"{machine()}, {time.strftime('%Y-%m-%d')}"
    Path(args.out).write_text("# Full packings\n\n" + packing_markdown(rows, args.limit, where))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
