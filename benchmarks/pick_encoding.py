"""Choosing game v2's pick encoding and K (mallocgame.md section 3b), by measurement.

Beam search over v2 (exact-model planning, pick and place children scored by msa
completions) at widths 16 and 64, under each candidate encoding, against ``restarts`` at
the same wall time: on the training split at capacity fractions 0.1, 0.25 and 0.5, and on
MiniMalloc's 11 challenging instances (which pack fully: does the solver place every
buffer?). v1's beam16 is kept for scale. Jobs run two at a time (the machine's cores),
each under the same time limit.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mallocmuzero.benchmarks import job_pool
from mallocmuzero.benchmarks.external_yardsticks import minimalloc_instances
from mallocmuzero.env import suite
from mallocmuzero.env.workload import Workload, resolve_capacity
from mallocmuzero.solvers.beam import solve_beam
from mallocmuzero.solvers.restarts import solve_restarts

FRACTIONS = (0.1, 0.25, 0.5)
#: (label, beam width, K, encoding); width 0 is restarts.
CONFIGS = (
    ("restarts", 0, 1, "window"),
    ("beam16 v1", 16, 1, "window"),
    *(
        (f"beam{width} {encoding}{k}", width, k, encoding)
        for encoding, k in (
            ("window", 4),
            ("window", 8),
            ("window", 16),
            ("rules", 8),
            ("hybrid", 8),
            ("dynamic", 8),  # the dynamic rule in rule 7's place
            ("rules", 9),  # the dynamic rule added
        )  # fmt: skip
        for width in (16, 64)
    ),
)


def cases(workloads: list[Workload], minimalloc: Path) -> list[tuple[str, float, Workload]]:
    """The training split at each fraction, then MiniMalloc's instances (fraction 0)."""
    out = [
        (w.name, f, resolve_capacity(w, fraction=f))
        for w in workloads
        if suite.split_of(w.name) == "train"
        for f in FRACTIONS
    ]
    out += [(letter, 0.0, w) for letter, w in minimalloc_instances(minimalloc)]
    return out


def run_job(job: tuple) -> dict:
    """One solver on one case under the time limit: its speed-up and what it placed."""
    name, fraction, workload, label, width, k, encoding, limit = job
    if width == 0:
        solution = solve_restarts(workload, time_limit=limit)
    else:
        solution = solve_beam(
            workload, width=width, time_limit=limit, pick_candidates=k, pick_encoding=encoding
        )
    placed = solution.offsets >= 0
    return {
        "workload": name,
        "fraction": fraction,
        "config": label,
        "speedup": solution.all_slow_time_s / solution.estimated_time_s,
        "all_placed": bool(placed[~workload.pinned].all()),
        "placed_bytes": float(workload.size[placed].sum() / workload.size[~workload.pinned].sum()),
    }


def _key(row: dict) -> tuple:
    return (row["workload"], row["fraction"], row["config"])


def run(
    workloads: list[Workload],
    minimalloc: Path,
    limit_s: float,
    progress: Callable[[str], None],
    cache: Path,
    processes: int = 2,
) -> list[dict]:
    """Every configuration on every case; finished jobs are kept in ``cache`` (JSON lines)."""
    done = job_pool.cached_rows(cache, _key)
    jobs = [
        (name, fraction, workload, *config, limit_s)
        for name, fraction, workload in cases(workloads, minimalloc)
        for config in CONFIGS
        if (name, fraction, config[0]) not in done
    ]
    return job_pool.run_jobs(jobs, run_job, done, _key, cache, progress, "speedup", processes)


def summary(rows: list[dict]) -> list[dict]:
    """Per configuration: how it fares against restarts, on training cases and MiniMalloc.

    Training cases it wins, ties and loses; MiniMalloc instances it wins and packs fully,
    and the share of their bytes it places.
    """
    restarts = {(r["workload"], r["fraction"]): r["speedup"] for r in rows
                if r["config"] == "restarts"}  # fmt: skip
    out = []
    for label, *_ in CONFIGS:
        mine = [r for r in rows if r["config"] == label]
        train = [r for r in mine if r["fraction"] > 0]
        packs = [r for r in mine if r["fraction"] == 0]
        ratio = [r["speedup"] / restarts[(r["workload"], r["fraction"])] for r in train]
        packing_ratio = [r["speedup"] / restarts[(r["workload"], 0.0)] for r in packs]
        out.append(
            {
                "config": label,
                "wins": sum(x > 1 + 1e-9 for x in ratio),
                "ties": sum(abs(x - 1) <= 1e-9 for x in ratio),
                "losses": sum(x < 1 - 1e-9 for x in ratio),
                "mean_ratio": sum(ratio) / len(ratio) if ratio else float("nan"),
                "minimalloc_wins": sum(x > 1 + 1e-9 for x in packing_ratio),
                "full_packings": sum(r["all_placed"] for r in packs),
                "mean_placed_bytes": sum(r["placed_bytes"] for r in packs) / max(1, len(packs)),
            }
        )
    return out


def choice(summaries: list[dict]) -> str:
    """The configuration the spec's rule chooses (section 3b) from :func:`summary`'s rows.

    Most wins over restarts (training cases and MiniMalloc), then most full packings,
    then the smaller K; remaining ties: fewer losses, then more bytes placed.
    """
    k_of = {label: k for label, _, k, _ in CONFIGS}
    candidates = [s for s in summaries if s["config"] not in ("restarts", "beam16 v1")]
    best = max(candidates, key=lambda s: (s["wins"] + s["minimalloc_wins"], s["full_packings"],
                                          -k_of[s["config"]], -s["losses"],
                                          s["mean_placed_bytes"]))  # fmt: skip
    return best["config"]


def markdown(result: dict) -> str:
    """Section (g): the choice table, then every case's speed-ups."""
    rows = result["rows"]
    lines = [
        "| solver | beats restarts | ties | loses | mean ratio to restarts "
        "| MiniMalloc: beats restarts | full packings | bytes placed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in result["summary"]:
        lines.append(
            f"| {s['config']} | {s['wins']} | {s['ties']} | {s['losses']} "
            f"| {s['mean_ratio']:.4f} | {s['minimalloc_wins']} of 11 | {s['full_packings']} of 11 "
            f"| {s['mean_placed_bytes']:.1%} |"
        )
    chosen = choice(result["summary"])
    lines += ["", f"Chosen by that rule: **{chosen}** (its encoding and K are the default)."]
    labels = [c[0] for c in CONFIGS]
    lines += ["", "| case | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    by_case: dict[tuple, dict] = {}
    for r in rows:
        by_case.setdefault((r["workload"], r["fraction"]), {})[r["config"]] = r
    for (name, fraction), mine in sorted(by_case.items(), key=lambda kv: (kv[0][1] == 0, kv[0])):
        label = f"{name}@{fraction:g}" if fraction else f"MiniMalloc {name}"
        cells = []
        for config in labels:
            r = mine.get(config)
            cells.append("" if r is None else f"{r['speedup']:.4f}" + (" full" if fraction == 0
                         and r["all_placed"] else ""))  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
