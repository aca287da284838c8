"""The hybrids' own-order phase at equal time: which share of the limit it should get.

``restarts_then`` can first let its search play from msa's own order (``own_order_share``
of the limit, ``--own-order-share``) before restarts and the search from restarts' best
order. For each share, the learned hybrid (the shipped agent) and the same algorithm with
beam in the agent's place run on the held-out families' generated programs (the cases of
:func:`learning_curve.pick_cases`) and on the built-in held-out split at capacity fractions
0.1, 0.25 and 0.5, beside restarts, every solver at the same limit, two jobs at a time, one
core each. Writes ``BENCHMARKS-own-order.md`` and ``.json``::

    python -m mallocmuzero.benchmarks.own_order
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mallocmuzero.benchmarks import anytime_profile, job_pool, learning_curve
from mallocmuzero.benchmarks.generalisation import TIE
from mallocmuzero.benchmarks.tables import markdown_table, write_report, written_on
from mallocmuzero.env import suite
from mallocmuzero.env.generator import HELDOUT_FAMILIES, family_of
from mallocmuzero.env.observation import SHIPPED_GAME
from mallocmuzero.env.workload import Workload, load_workload

SHARES = (0.0, 0.4)
LIMITS = (5.0, 20.0)
SETS = ("held-out families", "held-out split")


def cases(generated: Path, builtin: Path) -> list[tuple[str, str, float, Workload]]:
    """(set, program, fraction, workload) of both held-out sets."""
    mine = [(SETS[0], n, f, w) for n, f, w in learning_curve.pick_cases(generated, 12)
            if family_of(n) in HELDOUT_FAMILIES]  # fmt: skip
    programs = [load_workload(path) for path in sorted(builtin.glob("*.json"))
                if suite.split_of(path.stem) == "heldout"]  # fmt: skip
    return mine + [(SETS[1], *case) for case in anytime_profile.held_out_cases(programs)]


def run_job(job: tuple) -> dict:
    """One solver (``restarts``, or a hybrid ``KIND@SHARE``) on one case at one limit."""
    from mallocmuzero.solvers.greedy import solve_msa
    from mallocmuzero.solvers.restarts import solve_restarts

    which, name, fraction, workload, solver, limit = job
    kind, _, share = solver.partition("@")
    if kind == "restarts":
        solution = solve_restarts(workload, time_limit=limit)
    else:
        pick = (SHIPPED_GAME.pick_candidates, SHIPPED_GAME.pick_encoding)
        solution = anytime_profile.hybrid(workload, kind, limit, pick, float(share))
    return {"set": which, "workload": name, "fraction": fraction, "solver": solver,
            "limit_s": limit, "speedup_over_msa": solve_msa(workload).estimated_time_s
            / solution.estimated_time_s,
            **anytime_profile.agent_used(anytime_profile.agent_of(solver))}  # fmt: skip


def _key(row: dict) -> tuple:
    return (row["workload"], row["fraction"], row["solver"], row["limit_s"])


def summary(rows: list[dict]) -> list[dict]:
    """Per set, limit and solver: mean speed-up over msa, cases at least as good as restarts."""
    by = {_key(r): r["speedup_over_msa"] for r in rows}
    table = []
    solvers = sorted({r["solver"] for r in rows if r["solver"] != "restarts"})
    for which in SETS:
        for limit in sorted({r["limit_s"] for r in rows}):
            mine = {(r["workload"], r["fraction"]) for r in rows
                    if r["set"] == which and r["limit_s"] == limit}  # fmt: skip
            full = sorted(
                c for c in mine if all((*c, s, limit) in by for s in [*solvers, "restarts"])
            )
            if not full:
                continue
            restarts = np.array([by[(*c, "restarts", limit)] for c in full])
            beats = restarts > 1 + TIE
            for solver in solvers:
                x = np.array([by[(*c, solver, limit)] for c in full])
                wins = int(((x >= restarts * (1 - TIE)) & beats).sum())
                table.append({"set": which, "limit_s": limit, "solver": solver,
                              "cases": len(full), "speedup": float(x.mean()),
                              "restarts speedup": float(restarts.mean()),
                              "wins": wins, "restarts beats msa": int(beats.sum())})  # fmt: skip
    return table


def markdown(result: dict) -> str:
    """The table: each share's hybrids against restarts, and the agent's edge over beam."""
    table = result["summary"]
    by = {(r["set"], r["limit_s"], r["solver"]): r for r in table}
    body = []
    for r in table:
        if not r["solver"].startswith("agent@"):
            continue
        beam = by.get((r["set"], r["limit_s"], "beam" + r["solver"][len("agent") :]))
        edge = f"{100 * (r['speedup'] - beam['speedup']):+.2f} pp" if beam else "-"
        body.append([r["set"], f"{r['limit_s']:g} s", r["solver"].split("@")[1],
                     str(r["cases"]), f"{r['speedup']:.4f}",
                     f"{beam['speedup']:.4f}" if beam else "-", edge,
                     f"{r['restarts speedup']:.4f}",
                     f"{r['wins']} of {r['restarts beats msa']}"])  # fmt: skip
    header = ["cases", "limit", "own-order share", "cases measured", "restarts+agent",
              "restarts+beam", "agent over beam", "restarts",
              "agent >= restarts where restarts beats msa"]  # fmt: skip
    return "\n".join(
        [
            "# The hybrids' own-order phase",
            "",
            f"Written by `python -m mallocmuzero.benchmarks.own_order` on {result['written']}. "
            "Each hybrid: the search from msa's own order for at most the share of the limit (the "
            "agent's greedy rollouts; beam for its whole share), restarts for half of what is "
            "left, then the search from restarts' best order, the best placement kept. The "
            "agent is `checkpoints/pretrained`; beam is the same algorithm with beam in the "
            "agent's place. Mean speed-ups over msa at the same limit; two jobs at a time, one "
            "core each.",
            "",
            markdown_table(header, body),
            "",
        ]
    )


def main() -> None:
    """Measure every share at every limit and write the table and its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="checkpoints/pretrained")
    parser.add_argument("--generated", default="workloads/generated")
    parser.add_argument("--builtin", default="workloads/builtin")
    parser.add_argument("--shares", type=float, nargs="+", default=list(SHARES))
    parser.add_argument("--limits", type=float, nargs="+", default=list(LIMITS))
    parser.add_argument("--out", default="BENCHMARKS-own-order.md")
    parser.add_argument("--cache", default=".bench-own-order.jsonl")
    args = parser.parse_args()
    say = lambda line: print(line, flush=True)  # noqa: E731
    solvers = ["restarts", *(f"{kind}@{share:g}" for share in args.shares
                             for kind in ("agent", "beam"))]  # fmt: skip
    agents = {"shipped": args.checkpoint}
    done = anytime_profile.current_rows(job_pool.cached_rows(Path(args.cache), _key), agents)
    jobs = [(which, n, f, w, s, limit) for limit in args.limits
            for which, n, f, w in cases(Path(args.generated), Path(args.builtin))
            for s in solvers if (n, f, s, limit) not in done]  # fmt: skip
    rows = job_pool.run_jobs(jobs, run_job, done, _key, Path(args.cache), say,
                             "speedup_over_msa", 2, anytime_profile._init_worker,
                             (agents,))  # fmt: skip
    rows = [r for r in rows if r["solver"] in solvers and r["limit_s"] in args.limits]
    result = {"written": written_on(), "checkpoint": args.checkpoint, "rows": rows,
              "summary": summary(rows)}  # fmt: skip
    write_report(result, args.out, markdown)


if __name__ == "__main__":
    main()
